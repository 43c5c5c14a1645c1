//! Rollout benchmark: prints figures, asserts nothing.
//!
//! - Planning: the pure planner over 10,000 instances in 3 zones at 20 % batches (zone by
//!   zone, and cross-zone with unhealthy instances first), median of repeated runs.
//! - A rolling upgrade of one scale set of 1,000 zero-latency mock instances (serving HTTP
//!   on 127.0.0.1, probed every 2 s) at 20 % batches: wall time from the model change to
//!   the rollout's completion, with the engine's steps persisted in SQLite.
//!
//! Run: `cargo bench -p flotilla --bench rollouts` (or `make bench`).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::Bench;
use flotilla_control::FleetConfig;
use flotilla_domain::instance::HealthState;
use flotilla_domain::rollout::{self, PlanInput, RolloutState};
use flotilla_domain::scale_set::{RollingPolicy, UpgradeMode};
use flotilla_domain::{Instance, ScaleSetSpec};
use serde_json::json;

const PLANNED: u64 = 10_000;
const ROLLED: u32 = 1_000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn planning() {
    let spec = ScaleSetSpec::example("big", PLANNED as u32);
    let mut next = spec.model.clone();
    next.image = "ubuntu-24.04".into();
    let models = BTreeMap::from([(1, spec.model.clone()), (2, next)]);
    let zones = ["1", "2", "3"];
    let instances: Vec<Instance> = (0..PLANNED)
        .map(|o| {
            let mut i: Instance = serde_json::from_value(json!({
                "id": Instance::make_id("big", o), "scale_set": "big", "ordinal": o,
                "zone": zones[(o % 3) as usize], "fault_domain": o % 5, "model_version": 1,
                "provisioning_state": "succeeded", "power_state": "running",
                "health_state": "healthy", "desired_power": "running",
                "protect_from_scale_in": false, "protect_from_scale_set_actions": o % 97 == 0,
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                "generation": 1,
            }))
            .expect("an instance");
            if o % 50 == 0 {
                i.health_state = HealthState::Unhealthy;
            }
            i
        })
        .collect();
    for (label, cross) in [
        ("zone by zone", false),
        ("cross-zone, unhealthy first", true),
    ] {
        let policy = RollingPolicy {
            enable_cross_zone_upgrade: cross,
            prioritize_unhealthy_instances: cross,
            ..RollingPolicy::default()
        };
        let mut times = Vec::new();
        let mut batches = 0;
        for _ in 0..21 {
            let started = Instant::now();
            let plan = rollout::plan(PlanInput {
                capacity: PLANNED as u32,
                instances: &instances,
                target_version: 2,
                models: &models,
                mode: UpgradeMode::Rolling,
                policy: &policy,
                only: None,
                boot_seconds: Some(30),
            });
            times.push(started.elapsed());
            batches = plan.batches.len();
        }
        println!(
            "planning a rollout of {PLANNED} instances (3 zones, 20 % batches, {label}): {:.2} ms median of 21, {batches} batches",
            median(times).as_secs_f64() * 1e3
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    planning();

    let bench = Bench::start(FleetConfig::default()).await?;
    let fleet = &bench.fleet;
    let mut spec = ScaleSetSpec::example("roll", ROLLED);
    spec.health_probe = Some(serde_json::from_value(json!({
        "protocol": "http", "port": 80, "path": "/health", "interval_seconds": 2,
        "timeout_seconds": 1, "healthy_threshold": 1, "unhealthy_threshold": 2}))?);
    spec.upgrade_policy = serde_json::from_value(json!({"mode": "rolling"}))?;
    let created = Instant::now();
    fleet.create_scale_set(spec.clone(), "bench").await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let all = fleet.list_instances("roll").await?;
        if all.len() == ROLLED as usize
            && all.iter().all(|i| i.health_state == HealthState::Healthy)
        {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "not all healthy after 600 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "{ROLLED} instances healthy after {:.1} s",
        created.elapsed().as_secs_f64()
    );

    let mut model = spec.model.clone();
    model.image = "ubuntu-24.04".into();
    let started = Instant::now();
    fleet.set_model("roll", model, "bench").await?;
    let rollout = loop {
        let latest = fleet.rollouts("roll", 1).await?;
        if let Some(r) = latest.first()
            && !r.rollout.state.is_active()
        {
            break r.clone();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(900),
            "the rollout did not end in 900 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let wall = started.elapsed();
    anyhow::ensure!(
        rollout.rollout.state == RolloutState::Completed,
        "the rollout ended {:?}: {:?}",
        rollout.rollout.state,
        rollout.rollout.message
    );
    println!(
        "rolling upgrade of {ROLLED} zero-latency mock instances at 20 % ({} batches of at most {}, probes every 2 s): {:.1} s wall, {:.2} s per batch, {} succeeded",
        rollout.rollout.plan.batches.len(),
        rollout.rollout.plan.batch_size,
        wall.as_secs_f64(),
        wall.as_secs_f64() / rollout.rollout.plan.batches.len().max(1) as f64,
        rollout.progress.successful,
    );
    bench.stop().await;
    Ok(())
}
