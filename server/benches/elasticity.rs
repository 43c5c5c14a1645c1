//! Elasticity benchmark: prints figures, asserts nothing.
//!
//! The standard traces — a step, a ramp, a periodic (diurnal) load, spikes, and one real
//! public trace shipped in `benches/traces/` (U.S. flight departures by time of day, its
//! source in the file) — replayed by the backtest engine (the live autoscaler's own decision
//! function, a simulated fleet) through:
//! - **HPA-style**: target tracking on CPU at 60 % with Kubernetes' defaults (tolerance 0.1,
//!   no scale-up stabilization, 300 s scale-down stabilization, +100 % or +4 per 15 s);
//! - **Azure rule template**: CPU > 70 % over 10 min → +1, < 30 % → −1, cooldown 5 min;
//! - **Flotilla: load**: target tracking on the load itself (requests per second per
//!   instance, at the rate one instance serves at 60 % CPU);
//! - **Flotilla: CPU+load**: HPA-style target tracking on CPU at 60 % with `size_from_load`:
//!   while CPU is saturated, the scale-out is sized from the load, so it does not climb in
//!   steps;
//! - **Flotilla best (predictive + reactive)**: "Flotilla: load" with predictive autoscale
//!   on the same load (`forecast_and_scale`, models chosen by their own MAPE, the lead from
//!   the boot times), its season the trace's period (a day; an hour for the spikes). It
//!   forecasts nothing before a season of history, so on the 6-hour traces without an
//!   hourly period it is "Flotilla: load".
//!
//! Every run: 2 vCPU instances (100 requests per second per 100 CPU points, 2 % idle), boot
//! times of 40–90 s, metrics every 10 s, evaluations every 30 s, SLO: CPU at most 80 %.
//! Then the engine's speed: a year of 1-minute history through each setting.
//!
//! Run: `cargo bench -p flotilla --bench elasticity` (or `make bench`).

use std::time::Instant;

use chrono::{DateTime, Utc};
use flotilla_domain::autoscale::AutoscaleSetting;
use flotilla_domain::autoscale::backtest::{self, FleetModel, Keep, Replay, Slo};
use flotilla_domain::demand::parse_trace;
use serde_json::json;

const STEP: i64 = 10;
const EVALUATE: i64 = 30;
const PEAK_RPS: f64 = 1_000.0;

fn hpa() -> AutoscaleSetting {
    serde_json::from_value(json!({
        "enabled": true, "initialization_seconds": 60,
        "profiles": [{"name": "default", "capacity": {"minimum": 1, "maximum": 40, "default": 2},
            "target_tracking": {"metric": "cpu_percent", "target": 60}}],
    }))
    .expect("valid")
}

fn azure() -> AutoscaleSetting {
    let rule = |operator: &str, threshold: f64, direction: &str| {
        json!({"metric": "cpu_percent", "statistic": "average", "time_grain_seconds": 60,
               "time_window_seconds": 600, "time_aggregation": "average", "operator": operator,
               "threshold": threshold, "direction": direction, "type": "change_count",
               "value": 1, "cooldown_seconds": 300})
    };
    serde_json::from_value(json!({
        "enabled": true, "initialization_seconds": 60,
        "profiles": [{"name": "default", "capacity": {"minimum": 1, "maximum": 40, "default": 2},
            "rules": [rule("greater_than", 70.0, "increase"), rule("less_than", 30.0, "decrease")]}],
    }))
    .expect("valid")
}

fn flotilla_cpu() -> AutoscaleSetting {
    serde_json::from_value(json!({
        "enabled": true, "initialization_seconds": 60,
        "profiles": [{"name": "default", "capacity": {"minimum": 1, "maximum": 40, "default": 2},
            "target_tracking": {"metric": "cpu_percent", "target": 60, "size_from_load": true}}],
    }))
    .expect("valid")
}

fn flotilla() -> AutoscaleSetting {
    serde_json::from_value(json!({
        "enabled": true, "initialization_seconds": 60,
        "profiles": [{"name": "default", "capacity": {"minimum": 1, "maximum": 40, "default": 2},
            "target_tracking": {"metric": "demand_requests_per_second", "target": 58,
                                "tolerance": 0.05, "window_seconds": 60}}],
    }))
    .expect("valid")
}

/// Flotilla's best: [`flotilla`]'s reactive target tracking on the load, with predictive
/// autoscale on the same load over `season` seconds raising the floor ahead of each peak.
fn flotilla_best(season: u32) -> AutoscaleSetting {
    let mut setting = flotilla();
    setting.profiles[0].predictive = Some(
        serde_json::from_value(json!({
            "metric": "demand_requests_per_second", "target": 58,
            "mode": "forecast_and_scale", "season_seconds": season,
        }))
        .expect("valid"),
    );
    setting
}

/// A trace: its name, the load every [`STEP`] seconds, and the period predictive autoscale
/// looks for in it (a day where the trace has none: it never has a season of history).
struct Trace {
    name: &'static str,
    load: Vec<f64>,
    season: u32,
}

fn traces() -> Vec<Trace> {
    let hours = |h: i64| (h * 3600 / STEP) as usize;
    let at = |i: usize| i as f64 * STEP as f64;
    let step = (0..hours(6))
        .map(|i| {
            if (3600.0..3.0 * 3600.0).contains(&at(i)) {
                800.0
            } else {
                100.0
            }
        })
        .collect();
    let ramp = (0..hours(6))
        .map(|i| {
            let t = at(i) / 3600.0;
            let up = ((t - 1.0) / 2.0).clamp(0.0, 1.0);
            let down = ((t - 3.0) / 2.0).clamp(0.0, 1.0);
            100.0 + 900.0 * (up - down)
        })
        .collect();
    let periodic = (0..hours(72))
        .map(|i| {
            let phase = at(i) / 86_400.0 * std::f64::consts::TAU;
            100.0 + 900.0 * (1.0 - phase.cos()) / 2.0
        })
        .collect();
    let spikes = (0..hours(6))
        .map(|i| {
            if at(i) % 3600.0 < 300.0 {
                PEAK_RPS
            } else {
                200.0
            }
        })
        .collect();
    let csv = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/traces/flight-departures.csv"
    ))
    .expect("the flight trace");
    let trace = parse_trace(&csv).expect("a valid trace");
    let top = trace.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let day = 86_400.0;
    let flights = (0..hours(72))
        .map(|i| {
            // Three days of the one day, linearly interpolated, scaled to the peak.
            let t = at(i) % day;
            let k = trace.partition_point(|(s, _)| *s <= t).max(1);
            let (t0, v0) = trace[k - 1];
            let (t1, v1) = trace.get(k).copied().unwrap_or((day, trace[0].1));
            let v = v0 + (v1 - v0) * (t - t0) / (t1 - t0);
            (v / top * PEAK_RPS).max(10.0)
        })
        .collect();
    vec![
        Trace {
            name: "step",
            load: step,
            season: 86400,
        },
        Trace {
            name: "ramp",
            load: ramp,
            season: 86400,
        },
        Trace {
            name: "periodic (3 days)",
            load: periodic,
            season: 86400,
        },
        Trace {
            name: "spikes",
            load: spikes,
            season: 3600,
        },
        Trace {
            name: "flights (3 days, real)",
            load: flights,
            season: 86400,
        },
    ]
}

fn main() {
    let start: DateTime<Utc> = "2026-01-05T00:00:00Z".parse().expect("a date");
    let fleet = FleetModel {
        instance_capacity_rps: 100.0,
        idle_cpu_percent: 2.0,
        boot_seconds: vec![40.0, 45.0, 50.0, 55.0, 60.0, 70.0, 80.0, 90.0],
    };
    let slo = Slo::default();
    let settings = [
        ("HPA-style", hpa()),
        ("Azure template", azure()),
        ("Flotilla: load", flotilla()),
        ("Flotilla: CPU+load", flotilla_cpu()),
    ];
    println!(
        "{:<24} {:<20} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>7}",
        "trace",
        "setting",
        "under %",
        "over %",
        "u-time %",
        "o-time %",
        "jitter/h",
        "instab %",
        "SLO viol s",
        "inst-h",
        "actions"
    );
    for trace in traces() {
        let times: Vec<DateTime<Utc>> = (0..trace.load.len())
            .map(|i| start + chrono::Duration::seconds(i as i64 * STEP))
            .collect();
        let end = start + chrono::Duration::seconds(trace.load.len() as i64 * STEP);
        let evaluations: Vec<DateTime<Utc>> = (1..)
            .map(|k| start + chrono::Duration::seconds(k * EVALUATE))
            .take_while(|t| *t < end)
            .collect();
        let replay = Replay {
            scale_set: "bench",
            start,
            times: &times,
            load: &trace.load,
            end,
            recorded: None,
            live: &[],
            evaluations: &evaluations,
            metrics_interval_seconds: STEP as u32,
            capacity: 2,
            fleet: &fleet,
            slo: &slo,
            keep: Keep::Actions,
        };
        let best = flotilla_best(trace.season);
        let compared = settings
            .iter()
            .map(|(n, s)| (*n, s))
            .chain([("Flotilla best (pred.)", &best)]);
        for (name, setting) in compared {
            let s = backtest::run(&replay, setting).scores;
            println!(
                "{:<24} {:<20} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9.0} {:>9.1} {:>7}",
                trace.name,
                name,
                s.under_provisioning_accuracy,
                s.over_provisioning_accuracy,
                s.under_provisioning_timeshare,
                s.over_provisioning_timeshare,
                s.jitter,
                s.instability,
                s.slo_violation_seconds,
                s.instance_hours,
                s.scale_actions
            );
        }
    }

    // A year of 1-minute history, evaluated every minute.
    let minutes = 525_600;
    let times: Vec<DateTime<Utc>> = (0..minutes)
        .map(|i| start + chrono::Duration::minutes(i))
        .collect();
    let load: Vec<f64> = (0..minutes)
        .map(|i| {
            let phase = i as f64 / 1440.0 * std::f64::consts::TAU;
            100.0 + 900.0 * (1.0 - phase.cos()) / 2.0
        })
        .collect();
    let end = start + chrono::Duration::minutes(minutes);
    let replay = Replay {
        scale_set: "bench",
        start,
        times: &times,
        load: &load,
        end,
        recorded: None,
        live: &[],
        evaluations: &times,
        metrics_interval_seconds: 60,
        capacity: 2,
        fleet: &fleet,
        slo: &slo,
        keep: Keep::Actions,
    };
    println!("\na year of 1-minute history (525,600 evaluations) per setting:");
    let best = flotilla_best(86_400);
    let compared = settings
        .iter()
        .map(|(n, s)| (*n, s))
        .chain([("Flotilla best (pred.)", &best)]);
    for (name, setting) in compared {
        let started = Instant::now();
        let out = backtest::run(&replay, setting);
        println!(
            "  {name:<20} {:>7.0} ms ({} scale actions)",
            started.elapsed().as_secs_f64() * 1e3,
            out.scores.scale_actions
        );
    }
}
