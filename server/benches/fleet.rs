//! Fleet benchmark: prints figures, asserts nothing.
//!
//! With a zero-latency mock on SQLite (a file in a temporary directory):
//! - wall time of capacity 0 → 1,000 until every instance is running;
//! - wall time of 1,000 → 10,000;
//! - one reconcile pass over 10,000 steady instances (median of several);
//! - peak resident memory of the process.
//!
//! Run: `cargo bench -p flotilla --bench fleet` (or `make bench`).

mod common;

use std::time::{Duration, Instant};

use common::Bench;
use flotilla_control::Fleet;
use flotilla_domain::{PowerState, ProvisioningState, ScaleSetSpec};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bench = Bench::start(flotilla_control::FleetConfig::default()).await?;
    let fleet = &bench.fleet;
    fleet
        .create_scale_set(ScaleSetSpec::example("bench", 0), "bench")
        .await?;

    for (from, to) in [(0u32, 1_000u32), (1_000, 10_000)] {
        let started = Instant::now();
        fleet.set_capacity("bench", to, "bench").await?;
        wait_all_running(fleet, to as usize).await?;
        println!(
            "capacity {from:>5} → {to:>5}: all running after {:>8.3} s",
            started.elapsed().as_secs_f64()
        );
    }

    let mut passes = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        fleet.reconcile_now("bench").await?;
        passes.push(started.elapsed());
    }
    passes.sort();
    println!(
        "reconcile pass over 10,000 steady instances: median {:>8.1} ms (min {:.1}, max {:.1})",
        ms(passes[passes.len() / 2]),
        ms(passes[0]),
        ms(passes[passes.len() - 1])
    );
    println!("peak resident memory: {} MiB", peak_rss_mib());
    bench.stop().await;
    Ok(())
}

async fn wait_all_running(fleet: &Fleet, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let instances = fleet.list_instances("bench").await?;
        if instances.len() == n
            && instances.iter().all(|i| {
                i.power_state == PowerState::Running
                    && i.provisioning_state == ProvisioningState::Succeeded
            })
        {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "not all {n} running after 300 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// VmHWM from /proc/self/status (Linux), in MiB.
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}
