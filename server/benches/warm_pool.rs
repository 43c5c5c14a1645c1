//! Warm pool benchmark: prints figures, asserts nothing.
//!
//! Time to serving of a scale-out by one instance — from the capacity change to the new
//! instance in the load balancer's pool (running, healthy, settled) — taken from a warm
//! pool parked `running`, `paused`, `saved` or `stopped`, against a cold create, on a mock
//! whose operations take 2 s (±10 %). The mock resumes a paused VM in 5 % of that, restores
//! a saved one in 25 %, boots a stopped (prepared) one in 60 % and creates one in 100 %:
//! the figures show what the control plane adds to those (reconcile, records, probes).
//! Each figure is the median of five scale-outs, the pool refilled in between.
//!
//! Run: `cargo bench -p flotilla --bench warm_pool` (or `make bench`).

mod common;

use std::time::{Duration, Instant};

use common::Bench;
use flotilla_backend::mock::MockConfig;
use flotilla_control::{Fleet, FleetConfig};
use flotilla_domain::ScaleSetSpec;
use flotilla_domain::WarmPoolState;
use flotilla_domain::warm_pool::WarmPool;

const ROUNDS: usize = 5;
const LATENCY: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bench = Bench::start_on(
        FleetConfig::default(),
        MockConfig::instant()
            .with_latency(LATENCY)
            .with_jitter(0.1)
            .with_seed(19),
    )
    .await?;
    let fleet = &bench.fleet;
    println!(
        "scale-out 1 → 2, mock operations of {:.1} s ± 10 %: median time to serving of {ROUNDS}",
        LATENCY.as_secs_f64()
    );
    let mut cold = None;
    for state in [None]
        .into_iter()
        .chain(WarmPoolState::ALL.iter().copied().map(Some))
    {
        let name = format!("w-{}", state.map_or("cold", |s| s.as_str()));
        let mut spec = ScaleSetSpec::example(&name, 1);
        spec.warm_pool = state.map(|pool_state| WarmPool {
            min_size: 1,
            max_prepared_capacity: None,
            pool_state,
            reuse_on_scale_in: false,
        });
        fleet.create_scale_set(spec, "bench").await?;
        let mut times = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            settle(fleet, &name, 1, state.is_some()).await?;
            let started = Instant::now();
            fleet.set_capacity(&name, 2, "bench").await?;
            serving(fleet, &name, 2).await?;
            times.push(started.elapsed().as_secs_f64());
            fleet.set_capacity(&name, 1, "bench").await?;
        }
        times.sort_by(f64::total_cmp);
        let median = times[ROUNDS / 2];
        let cold_median = *cold.get_or_insert(median);
        println!(
            "  {:<16} {median:>6.2} s  ({:>5.1} % of a cold create; fastest {:.2} s, slowest {:.2} s)",
            state.map_or("cold create".to_string(), |s| format!("warm, {s}")),
            median / cold_median * 100.0,
            times[0],
            times[ROUNDS - 1],
        );
        fleet.delete_scale_set(&name, "bench").await?;
    }
    bench.stop().await;
    Ok(())
}

/// Waits until `n` instances serve and, with a pool, its member is prepared and parked.
async fn settle(fleet: &Fleet, name: &str, n: usize, pooled: bool) -> anyhow::Result<()> {
    serving(fleet, name, n).await?;
    if !pooled {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let pool = fleet.warm_pool(name).await?;
        if pool.items.len() == 1
            && pool.items.iter().all(|m| {
                m.warm.warm_prepared_at.is_some()
                    && m.warm
                        .warm_pool_state
                        .is_some_and(|s| s.power_state() == m.power_state)
            })
        {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{name}'s pool was not prepared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until exactly `n` instances are in the load balancer's pool.
async fn serving(fleet: &Fleet, name: &str, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let all = fleet.list_instances(name).await?;
        if all.len() == n && all.iter().all(|i| i.in_pool()) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{name} did not reach {n} serving"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
