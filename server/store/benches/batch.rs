//! Times the batch operations the control plane leans on — inserting, updating and listing
//! 10,000 instances — on each store, and prints the figures (nothing is asserted).
//!
//! `cargo bench -p flotilla-store --bench batch [-- FILTER]` (only the stores whose name
//! contains FILTER: `file`, `memory`, `postgres`); set `FLOTILLA_TEST_POSTGRES` to include
//! PostgreSQL. Besides wall time it reports the CPU time this process spent (all threads,
//! from `/proc/self/task/*/schedstat` on Linux), which a busy machine disturbs less; for
//! PostgreSQL that leaves out the server's share.

use std::time::{Duration, Instant};

use flotilla_domain::{HealthState, Instance, PowerState, ProvisioningState};
use flotilla_store::conformance::{self, Harness, at, instance, scale_set};

const N: u64 = 10_000;
const ROUNDS: usize = 15;

#[tokio::main]
async fn main() {
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    let mut harnesses: Vec<(&str, Harness)> = Vec::new();
    if "sqlite file".contains(&filter) {
        let harness = conformance::sqlite_file().await.expect("sqlite file");
        harnesses.push(("sqlite file", harness));
    }
    if "sqlite memory".contains(&filter) {
        let harness = conformance::sqlite_memory().await.expect("sqlite memory");
        harnesses.push(("sqlite memory", harness));
    }
    if "postgres".contains(&filter)
        && let Some(harness) = conformance::postgres().await
    {
        harnesses.push(("postgres", harness));
    }
    println!("{N} instances, {ROUNDS} rounds: wall median (min–max), this process's CPU mean");
    for (name, harness) in &harnesses {
        let store = harness.store();
        let mut timings: [Vec<(Duration, Option<Duration>)>; 4] = Default::default();
        for round in 0..ROUNDS {
            let set_name = format!("bench{round}");
            let set = store
                .create_scale_set(&scale_set(&set_name, N as u32), "bench")
                .await
                .unwrap();
            let batch: Vec<Instance> = (0..N).map(|n| instance(&set_name, n)).collect();

            let t = Timer::start();
            store.insert_instances(&set_name, &batch, N).await.unwrap();
            timings[0].push(t.stop());

            let t = Timer::start();
            let listed = store.list_instances(&set_name).await.unwrap();
            timings[1].push(t.stop());
            assert_eq!(listed.len() as u64, N);

            let changed: Vec<Instance> = listed
                .into_iter()
                .map(|i| Instance {
                    provisioning_state: ProvisioningState::Succeeded,
                    power_state: PowerState::Running,
                    health_state: HealthState::Healthy,
                    updated_at: at(60),
                    ..i
                })
                .collect();
            let t = Timer::start();
            let written = store.update_instances(&changed).await.unwrap();
            timings[2].push(t.stop());
            assert_eq!(written.written.len() as u64, N);

            let ids: Vec<String> = changed.iter().map(|i| i.id.clone()).collect();
            let t = Timer::start();
            store
                .mark_deleting(&set, &ids, true, at(120))
                .await
                .unwrap();
            timings[3].push(t.stop());

            store.delete_scale_set(&set_name).await.unwrap();
        }
        let labels = [
            "insert_instances",
            "list_instances",
            "update_instances",
            "mark_deleting",
        ];
        for (label, samples) in labels.into_iter().zip(timings) {
            let mut wall: Vec<Duration> = samples.iter().map(|s| s.0).collect();
            wall.sort();
            let cpu: Option<Duration> = samples.iter().map(|s| s.1).sum();
            let cpu = cpu.map_or("n/a".to_owned(), |c| {
                format!("{:.1} ms", ms(c) / ROUNDS as f64)
            });
            println!(
                "{name:>14}  {label:<17} {:>7.1} ms  ({:.1}–{:.1})  cpu {cpu}",
                ms(wall[wall.len() / 2]),
                ms(wall[0]),
                ms(wall[wall.len() - 1]),
            );
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Wall and CPU time of one operation.
struct Timer {
    wall: Instant,
    cpu: Option<Duration>,
}

impl Timer {
    fn start() -> Self {
        Self {
            cpu: process_cpu(),
            wall: Instant::now(),
        }
    }

    fn stop(self) -> (Duration, Option<Duration>) {
        let wall = self.wall.elapsed();
        let cpu = process_cpu()
            .zip(self.cpu)
            .map(|(end, start)| end.saturating_sub(start));
        (wall, cpu)
    }
}

/// CPU time of every thread of this process so far (Linux; `None` elsewhere).
fn process_cpu() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}
