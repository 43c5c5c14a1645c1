//! Predictive autoscale over HTTP in accelerated time: a sine demand with a one-minute
//! period on the mock, instances that take seconds to boot, metrics and evaluations every
//! second. Once a season of history is in, the capacity each part of the wave needs is
//! raised about the measured boot time before the load needs it; the forecast, its accuracy
//! and its lead are in each decision, on `…/autoscale/forecast` and in the CLI.

use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use flotilla_tests::{PortalSession, TestServer};
use serde_json::{Value, json};

const FAST: [&str; 4] = ["--autoscale-interval", "1s", "--metrics-interval", "1s"];
/// The wave: 20 to 300 requests per second, at its top at every whole minute.
const LOW: f64 = 20.0;
const HIGH: f64 = 300.0;
/// Requests per second one instance is planned for: the top needs ⌈300 / 50⌉ = 6.
const PER_INSTANCE: f64 = 50.0;

/// The load of the wave at `t`.
fn load(t: DateTime<Utc>) -> f64 {
    let phase = (t.timestamp_millis().rem_euclid(60_000)) as f64 / 60_000.0;
    let mid = (LOW + HIGH) / 2.0;
    mid + (HIGH - mid) * (phase * std::f64::consts::TAU).cos()
}

/// The first instant after `from` (within 60 s) at which the wave needs `n` instances.
fn needs(n: u32, from: DateTime<Utc>) -> DateTime<Utc> {
    (0..60_000)
        .step_by(50)
        .map(|ms| from + chrono::Duration::milliseconds(ms))
        .find(|t| (load(*t) / PER_INSTANCE).ceil() as u32 >= n)
        .expect("the wave reaches its top every minute")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predictive_autoscale_scales_out_before_each_peak_by_about_the_boot_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), &FAST).await;
    let owner = server.api();
    // Instances take about 8 s from creation to healthy.
    let (status, body) = owner
        .post(
            "/backend/faults",
            json!({"kind": "slow_boot", "seconds": 6}),
        )
        .await;
    assert!(status < 300, "{body}");
    let demand = json!({"pattern": "sine", "min_rps": LOW, "max_rps": HIGH,
                        "period_seconds": 60, "noise_percent": 0});
    owner
        .create_set("ahead", 2, json!({"demand": demand}))
        .await;
    owner.wait_healthy("ahead", 2).await;
    let operator = server.api_as("planner", "Contributor", Some("ahead")).await;
    let setting = json!({
        "enabled": true,
        "initialization_seconds": 0,
        "profiles": [{
            "name": "default",
            "capacity": {"minimum": 2, "maximum": 10, "default": 2},
            // Reactive on the same load, to scale in after each top.
            "target_tracking": {"metric": "demand_requests_per_second", "target": PER_INSTANCE,
                "window_seconds": 3,
                "scale_up": {"stabilization_window_seconds": 0,
                             "policies": [{"type": "percent", "value": 100, "period_seconds": 15}]},
                "scale_down": {"stabilization_window_seconds": 0,
                               "policies": [{"type": "percent", "value": 100, "period_seconds": 15}]}},
            "predictive": {"metric": "demand_requests_per_second", "target": PER_INSTANCE,
                           "mode": "forecast_and_scale", "season_seconds": 60},
        }],
    });
    let (status, body) = operator.put("/scale-sets/ahead/autoscale", setting).await;
    assert_eq!(status, 200, "{body}");
    let saved = Utc::now();
    // A season of history (from the set's creation) and three whole waves after it.
    // (The first wave's trough, half a minute before its top, is a season and more after.)
    let first = (saved + chrono::Duration::seconds(155))
        .duration_trunc(chrono::Duration::minutes(1))
        .unwrap();
    let until = first + chrono::Duration::minutes(3);
    tokio::time::sleep((until - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(2))
        .await;

    let (status, page) = operator
        .get("/scale-sets/ahead/autoscale/decisions?limit=1000")
        .await;
    assert_eq!(status, 200, "{page}");
    let mut decisions: Vec<Value> = page["items"].as_array().unwrap().clone();
    decisions.reverse();
    let at = |d: &Value| d["at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
    // Before a season of history the forecast says what it lacks.
    let early = &decisions[0]["forecast"];
    assert!(
        early["note"]
            .as_str()
            .unwrap()
            .starts_with("needs a season (60 s)"),
        "{early}"
    );
    // Each wave: the instances its top needs are there about the lead before it needs them.
    let mut lead_seen = None;
    for wave in 0..3 {
        // The rising half of the wave: from its trough (30 s before the top).
        let trough = first + chrono::Duration::seconds(60 * wave - 30);
        let need = needs(6, trough);
        let out = decisions
            .iter()
            .find(|d| at(d) >= trough && d["new_capacity"].as_u64().unwrap() >= 6)
            .unwrap_or_else(|| panic!("wave {wave}: never reached 6"));
        let forecast = &out["forecast"];
        assert_eq!(forecast["lead_source"], "measured", "{forecast}");
        let lead = forecast["lead_seconds"].as_f64().unwrap();
        assert!(
            (6.0..20.0).contains(&lead),
            "the measured boot time: {forecast}"
        );
        lead_seen = Some(lead);
        let ahead = (need - at(out)).num_milliseconds() as f64 / 1000.0;
        assert!(
            (lead - 3.5..=lead + 2.0).contains(&ahead),
            "wave {wave}: 6 instances {ahead:.1} s before the load needs them (lead {lead} s): {out}"
        );
        assert!(
            out["reason"].as_str().unwrap().contains("forecast"),
            "{out}"
        );
        assert!(forecast["mape"].as_f64().is_some(), "{forecast}");
        assert_eq!(forecast["capacity"], 6, "{forecast}");
    }
    // Scale-ins are target tracking's, never the forecast's.
    for d in decisions.iter().filter(|d| d["operation"] == "scale_in") {
        assert!(
            d["reason"].as_str().unwrap().starts_with("target tracking"),
            "{d}"
        );
    }

    // The forecast as charted: a Reader reads it.
    let reader = server.api_as("viewer", "Reader", Some("ahead")).await;
    let (status, body) = reader.get("/scale-sets/ahead/autoscale/forecast").await;
    assert_eq!(status, 200, "{body}");
    let item = &body["items"][0];
    assert_eq!(
        (item["profile"].as_str(), item["shadow"].as_bool()),
        (Some("default"), Some(false))
    );
    let f = &item["forecast"];
    assert_eq!(f["ready"], true, "{f}");
    let lead = f["lead_seconds"].as_f64().unwrap();
    assert!(
        lead_seen.is_some_and(|seen| (lead - seen).abs() <= 3.0),
        "the measured boot time, as in the decisions: {f}"
    );
    let mape = f["mape"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["model"] == f["model"])
        .and_then(|e| e["mape"].as_f64())
        .expect("the model is scored");
    assert!(mape < 25.0, "a noiseless wave is forecast closely: {f}");
    let points = f["points"].as_array().unwrap();
    let past = points.iter().filter(|p| p["load"].is_number()).count();
    let ahead = points
        .iter()
        .filter(|p| p["load"].is_null() && p["forecast"].is_number())
        .count();
    assert_eq!((past, ahead), (60, 60), "a season back, a season ahead");
    let top = points
        .iter()
        .filter_map(|p| p["forecast"].as_f64())
        .fold(0.0, f64::max);
    assert!((250.0..=320.0).contains(&top), "{top}");

    // And on the Monitoring and Scaling tabs, drawn by the server.
    let portal = PortalSession::sign_in(&server.url, "viewer", "viewer-password-123").await;
    for tab in ["monitoring", "scaling"] {
        let page = portal
            .get(&format!("/scale-sets/ahead/{tab}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains("Load forecast"), "{tab}");
        assert!(page.contains("data-lead=\""), "{tab}: the lead");
        assert!(page.contains("data-chart=\"forecast\""), "{tab}: the chart");
    }

    // And in the CLI.
    let (ok, out, err) = super::cli::cli(&server, &["autoscale", "forecast", "ahead"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("default") && out.contains("demand_requests_per_second at 50"),
        "{out}"
    );
    assert!(
        out.contains("→ 6 instances") || out.contains("→ 7 instances"),
        "the top, about 300: {out}"
    );
}
