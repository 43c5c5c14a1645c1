//! Times the batch operations the control plane leans on — inserting, updating and listing
//! 10,000 instances — on each store, and prints the figures (nothing is asserted).
//!
//! `cargo bench -p flotilla-store --bench batch`; set `FLOTILLA_TEST_POSTGRES` to include
//! PostgreSQL.

use std::time::{Duration, Instant};

use flotilla_domain::{HealthState, Instance, PowerState, ProvisioningState};
use flotilla_store::conformance::{self, Harness, at, instance, scale_set};

const N: u64 = 10_000;
const ROUNDS: usize = 15;

#[tokio::main]
async fn main() {
    let mut harnesses: Vec<(&str, Harness)> = Vec::new();
    harnesses.push((
        "sqlite file",
        conformance::sqlite_file().await.expect("sqlite file"),
    ));
    harnesses.push((
        "sqlite memory",
        conformance::sqlite_memory().await.expect("sqlite memory"),
    ));
    if let Some(pg) = conformance::postgres().await {
        harnesses.push(("postgres", pg));
    }
    println!("{N} instances, median of {ROUNDS} rounds (min–max)");
    for (name, harness) in &harnesses {
        let store = harness.store();
        let mut timings: [Vec<Duration>; 4] = Default::default();
        for round in 0..ROUNDS {
            let set_name = format!("bench{round}");
            let set = store
                .create_scale_set(&scale_set(&set_name, N as u32), "bench")
                .await
                .unwrap();
            let batch: Vec<Instance> = (0..N).map(|n| instance(&set_name, n)).collect();

            let t = Instant::now();
            store.insert_instances(&set_name, &batch, N).await.unwrap();
            timings[0].push(t.elapsed());

            let t = Instant::now();
            let listed = store.list_instances(&set_name).await.unwrap();
            timings[1].push(t.elapsed());
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
            let t = Instant::now();
            let written = store.update_instances(&changed).await.unwrap();
            timings[2].push(t.elapsed());
            assert_eq!(written.written.len() as u64, N);

            let ids: Vec<String> = changed.iter().map(|i| i.id.clone()).collect();
            let t = Instant::now();
            store
                .mark_deleting(&set, &ids, true, at(120))
                .await
                .unwrap();
            timings[3].push(t.elapsed());

            store.delete_scale_set(&set_name).await.unwrap();
        }
        let labels = [
            "insert_instances",
            "list_instances",
            "update_instances",
            "mark_deleting",
        ];
        for (label, mut times) in labels.into_iter().zip(timings) {
            times.sort();
            println!(
                "{name:>14}  {label:<17} {:>7.1} ms  ({:.1}–{:.1})",
                ms(times[times.len() / 2]),
                ms(times[0]),
                ms(times[times.len() - 1]),
            );
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
