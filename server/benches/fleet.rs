//! Fleet benchmark: prints figures, asserts nothing.
//!
//! With a zero-latency mock on SQLite (a file in a temporary directory):
//! - wall time of capacity 0 → 1,000 until every instance is running;
//! - wall time of 1,000 → 10,000;
//! - one reconcile pass over 10,000 steady instances (median of several);
//! - one `/metrics` scrape at 10,000 instances behind a load balancer frontend: its size
//!   and time (median of several), set-level series only (the default) and with
//!   `--metrics-per-instance`;
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
    create(fleet, 0).await?;

    for (from, to) in [(0u32, 1_000u32), (1_000, 10_000)] {
        let started = Instant::now();
        fleet.set_capacity("bench", to, "bench").await?;
        wait_all_running(fleet, u64::from(to)).await?;
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
    fleet.collect_metrics_now().await?;
    scrape(fleet, "set-level series").await?;
    println!("peak resident memory: {} MiB", peak_rss_mib());
    bench.stop().await;

    // A fleet of the same size with a series per instance (`--metrics-per-instance`).
    let per_instance = Bench::start(flotilla_control::FleetConfig {
        metrics: flotilla_control::MetricsConfig {
            per_instance: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await?;
    create(&per_instance.fleet, 10_000).await?;
    wait_all_running(&per_instance.fleet, 10_000).await?;
    // The pool sync hands the load balancer its members every 50 ms.
    tokio::time::sleep(Duration::from_millis(200)).await;
    per_instance.fleet.collect_metrics_now().await?;
    scrape(&per_instance.fleet, "per instance too").await?;
    per_instance.stop().await;
    Ok(())
}

/// Creates the set `bench` with a load balancer frontend, as a real fleet has: its pool
/// holds every instance.
async fn create(fleet: &Fleet, capacity: u32) -> anyhow::Result<()> {
    let mut spec = ScaleSetSpec::example("bench", capacity);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    spec.load_balancer = Some(serde_json::from_value(
        serde_json::json!({"frontends": [{"name": "web", "protocol": "http", "port": port}]}),
    )?);
    fleet.create_scale_set(spec, "bench").await?;
    Ok(())
}

/// Times `/metrics` (the same rendering the endpoint answers with) and prints its size.
async fn scrape(fleet: &Fleet, what: &str) -> anyhow::Result<()> {
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..7 {
        let started = Instant::now();
        size = flotilla::ops::render(fleet).await?.len();
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "/metrics at 10,000 instances, {what}: {:>8.1} KB, median {:>6.1} ms (min {:.1}, max {:.1})",
        size as f64 / 1000.0,
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    );
    Ok(())
}

/// Waits until the set has `n` instances, all running and provisioned — asking the store to
/// count them (a read of every record each time would slow down what it measures).
async fn wait_all_running(fleet: &Fleet, n: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let counts = fleet.instance_counts(None).await?;
        let of_bench = counts.iter().filter(|c| c.scale_set == "bench");
        let total: u64 = of_bench.clone().map(|c| c.count).sum();
        let ready: u64 = of_bench
            .filter(|c| {
                c.power_state == PowerState::Running
                    && c.provisioning_state == ProvisioningState::Succeeded
            })
            .map(|c| c.count)
            .sum();
        if total == n && ready == n {
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
