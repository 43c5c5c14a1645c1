//! Metrics and autoscale benchmark: prints figures, asserts nothing.
//!
//! 1,000 scale sets of 10 mock instances (10,000 VMs serving HTTP on 127.0.0.1), each with
//! a synthetic demand and an autoscale setting that combines two CPU rules with target
//! tracking on requests per instance:
//! - the metrics pipeline at a 1 s interval over a steady window: the collector's time per
//!   tick and its share of one core, the whole process's CPU, and the memory the collector
//!   holds once its per-instance rings are full (120 ticks);
//! - one evaluation pass over the 1,000 sets through the Fleet (metrics read from memory,
//!   each decision stored in SQLite), and the pure decision function alone.
//!
//! Run: `cargo bench -p flotilla --bench autoscale` (or `make bench`).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Bench, cpu_seconds};
use flotilla_control::{FleetConfig, MetricsConfig};
use flotilla_domain::autoscale::decision::Inputs;
use flotilla_domain::autoscale::{AutoscaleSetting, decide_setting};
use flotilla_domain::metrics::{Metric, Point};
use flotilla_domain::{PowerState, ScaleSetSpec};
use serde_json::json;

const SETS: usize = 1_000;
const PER_SET: u32 = 10;
const WINDOW: Duration = Duration::from_secs(30);

fn setting() -> AutoscaleSetting {
    let rule = |operator: &str, threshold: f64, direction: &str| {
        json!({"metric": "cpu_percent", "statistic": "average", "time_grain_seconds": 60,
               "time_window_seconds": 300, "time_aggregation": "average", "operator": operator,
               "threshold": threshold, "direction": direction, "type": "change_count",
               "value": 1, "cooldown_seconds": 300})
    };
    serde_json::from_value(json!({
        "enabled": true,
        "initialization_seconds": 0,
        "profiles": [{
            "name": "default",
            "capacity": {"minimum": 5, "maximum": 20, "default": 10},
            "rules": [rule("greater_than", 90.0, "increase"), rule("less_than", 5.0, "decrease")],
            "target_tracking": {"metric": "network_in_bytes_per_second", "target": 1.0e9},
        }],
    }))
    .expect("a valid setting")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bench = Bench::start(FleetConfig {
        // The benchmark runs the evaluation pass itself.
        autoscale_interval: Duration::from_secs(3600),
        metrics: MetricsConfig {
            interval: Duration::from_secs(1),
            ..MetricsConfig::default()
        },
        ..FleetConfig::default()
    })
    .await?;
    let fleet = &bench.fleet;
    let created = Instant::now();
    for i in 0..SETS {
        let mut spec = ScaleSetSpec::example(&format!("set-{i:04}"), PER_SET);
        spec.demand = Some(serde_json::from_value(
            json!({"pattern": "constant", "rps": 100 + (i % 10) * 50, "seed": i}),
        )?);
        spec.autoscale = Some(setting());
        fleet.create_scale_set(spec, "bench").await?;
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let all = fleet.list_all_instances().await?;
        if all.len() == SETS * PER_SET as usize
            && all.iter().all(|i| i.power_state == PowerState::Running)
        {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "not all running after 600 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "{SETS} sets × {PER_SET} instances running after {:.1} s",
        created.elapsed().as_secs_f64()
    );

    // Steady state at 1 s.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = fleet.collector_stats();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    tokio::time::sleep(WINDOW).await;
    let after = fleet.collector_stats();
    let elapsed = started.elapsed().as_secs_f64();
    let ticks = after.ticks - before.ticks;
    let busy = (after.busy - before.busy).as_secs_f64();
    println!(
        "metrics at 1 s, {} instances in {} sets over {elapsed:.0} s: {ticks} ticks, {:.1} ms per tick (last {:.1} ms), collector busy {:.0} % of one core; whole process {:.0} % of one core",
        after.instances,
        after.scale_sets,
        busy / ticks.max(1) as f64 * 1e3,
        after.last.as_secs_f64() * 1e3,
        busy / elapsed * 100.0,
        (cpu_seconds() - cpu_before) / elapsed * 100.0,
    );
    // Fill the per-instance rings (120 ticks), then report the memory held.
    let fill = 125u64.saturating_sub(after.ticks);
    tokio::time::sleep(Duration::from_secs(fill)).await;
    let full = fleet.collector_stats();
    println!(
        "memory held by the collector after {} ticks: {} points, {:.1} MiB ({:.0} B per instance)",
        full.ticks,
        full.points_held,
        full.bytes_held as f64 / (1 << 20) as f64,
        full.bytes_held as f64 / full.instances.max(1) as f64,
    );

    // One evaluation pass over every set through the Fleet.
    let started = Instant::now();
    let mut changed = 0;
    for i in 0..SETS {
        let decision = fleet.evaluate_autoscale(&format!("set-{i:04}")).await?;
        if decision.is_some_and(|d| d.new_capacity != d.current) {
            changed += 1;
        }
    }
    let pass = started.elapsed();
    println!(
        "evaluation pass over {SETS} sets (rules + target tracking, decisions stored): {:.0} ms, {:.0} µs per set, {changed} scale actions",
        pass.as_secs_f64() * 1e3,
        pass.as_secs_f64() * 1e6 / SETS as f64,
    );

    // The decision function alone: 5 minutes of 1 s points for each metric.
    let setting = setting();
    let now = chrono::Utc::now();
    let points: BTreeMap<Metric, Vec<Point>> =
        [Metric::CpuPercent, Metric::NetworkInBytesPerSecond]
            .into_iter()
            .map(|m| {
                let series = (1..=300)
                    .rev()
                    .map(|s| {
                        Point::of(
                            now - chrono::Duration::seconds(s),
                            (0..PER_SET).map(|i| 40.0 + f64::from(i)),
                        )
                        .expect("values")
                    })
                    .collect();
                (m, series)
            })
            .collect();
    let points: BTreeMap<Metric, &[Point]> =
        points.iter().map(|(m, p)| (*m, p.as_slice())).collect();
    let runs = 10 * SETS;
    let started = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(decide_setting(&Inputs {
            scale_set: "bench",
            now,
            setting: &setting,
            current: PER_SET,
            counted: PER_SET,
            points: &points,
            history: &[],
            explain: true,
            forecasts: &[],
        }));
    }
    println!(
        "decide_setting alone (300 points per metric): {:.1} µs per evaluation",
        started.elapsed().as_secs_f64() * 1e6 / runs as f64
    );
    bench.stop().await;
    Ok(())
}
