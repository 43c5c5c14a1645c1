//! The autoscale lab over HTTP: a backtest replays a stored live run of the mock through the
//! saved setting and gives the live decisions again; other settings are compared on the same
//! load; a demand pattern is replayed; bad requests are refused by field. A Reader of the
//! set runs them: a what-if changes nothing.

use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use flotilla_tests::{Api, TestServer, wait_until};
use serde_json::{Value, json};

use super::autoscale::{capacity, scale_actions};

const FAST: [&str; 4] = ["--autoscale-interval", "1s", "--metrics-interval", "1s"];

fn rule(operator: &str, threshold: f64, direction: &str, value: u32, cooldown: u32) -> Value {
    json!({"metric": "cpu_percent", "statistic": "average", "time_grain_seconds": 2,
           "time_window_seconds": 6, "time_aggregation": "average", "operator": operator,
           "threshold": threshold, "direction": direction, "type": "change_count",
           "value": value, "cooldown_seconds": cooldown})
}

/// Above 70 % → +2, below 30 % → −1; 2–6 instances.
fn setting() -> Value {
    json!({
        "enabled": true,
        "initialization_seconds": 5,
        "profiles": [{
            "name": "default",
            "capacity": {"minimum": 2, "maximum": 6, "default": 2},
            "rules": [rule("greater_than", 70.0, "increase", 2, 5),
                      rule("less_than", 30.0, "decrease", 1, 4)],
        }],
    })
}

fn demand(rps: f64) -> Value {
    json!({"pattern": "constant", "rps": rps, "noise_percent": 0})
}

/// Every decision of `set` in [from, to), oldest first, without the store's ids.
async fn live_decisions(
    api: &Api,
    set: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Value> {
    let (status, page) = api
        .get(&format!(
            "/scale-sets/{set}/autoscale/decisions?limit=1000&since={}&until={}",
            from.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .replace('+', "%2B"),
            to.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .replace('+', "%2B"),
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page["next_before"].is_null(), "one page holds them");
    let mut items: Vec<Value> = page["items"].as_array().unwrap().clone();
    items.reverse();
    items.iter_mut().for_each(without_id);
    items
}

fn without_id(d: &mut Value) {
    d.as_object_mut().unwrap().remove("id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtest_of_a_live_run_gives_its_decisions_again_and_compares_settings() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), &FAST).await;
    let owner = server.api();
    owner
        .create_set("lab", 2, json!({"demand": demand(40.0)}))
        .await;
    owner.wait_healthy("lab", 2).await;
    let analyst = server.api_as("analyst", "Reader", Some("lab")).await;
    // Nothing recorded yet with a setting: the saved one is what a backtest runs.
    let (status, body) = analyst
        .post("/scale-sets/lab/autoscale/backtest", json!({"history": {"from": Utc::now() - chrono::Duration::minutes(5), "to": Utc::now()}}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "settings", "{body}");

    let (status, body) = owner.put("/scale-sets/lab/autoscale", setting()).await;
    assert_eq!(status, 200, "{body}");
    let from = Utc::now();
    // A live run: 400 rps saturates 2 instances (out to 6), then 40 (back in to 2).
    wait_until("a decision is stored", Duration::from_secs(10), || async {
        let (_, page) = owner
            .get("/scale-sets/lab/autoscale/decisions?limit=1")
            .await;
        page["items"][0]["operation"] == "none"
    })
    .await;
    owner.put("/scale-sets/lab/demand", demand(400.0)).await;
    wait_until("the set reaches 6", Duration::from_secs(60), || async {
        capacity(&owner, "lab").await == 6
    })
    .await;
    owner.wait_healthy("lab", 6).await;
    owner.put("/scale-sets/lab/demand", demand(40.0)).await;
    wait_until("the set is back at 2", Duration::from_secs(90), || async {
        capacity(&owner, "lab").await == 2
    })
    .await;
    // The range ends on a minute the collector has written (its ticks are stored when it
    // ends), after the set has been steady long enough to calibrate its instances on.
    let to = (Utc::now() + chrono::Duration::seconds(40))
        .duration_trunc(chrono::Duration::minutes(1))
        .unwrap()
        + chrono::Duration::minutes(1);
    let wait = (to - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(3);
    tokio::time::sleep(wait).await;
    let live = live_decisions(&owner, "lab", from, to).await;
    let live_actions = live.iter().filter(|d| d["operation"] != "none").count();
    assert!(
        live_actions >= 6,
        "2 → 6 in steps of 2, back in steps of 1: {live_actions}"
    );

    let (status, answer) = analyst
        .post(
            "/scale-sets/lab/autoscale/backtest",
            json!({"history": {"from": from, "to": to}, "decisions": "all"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"].as_array().unwrap().len(), 1);
    let mut replayed: Vec<Value> = answer["results"][0]["decisions"]
        .as_array()
        .unwrap()
        .clone();
    replayed.iter_mut().for_each(without_id);
    assert_eq!(replayed.len(), live.len(), "one evaluation per live one");
    for (r, l) in replayed.iter().zip(&live) {
        assert_eq!(r, l, "the replay decides as live did");
    }
    let scores = &answer["results"][0]["scores"];
    assert_eq!(scores["scale_actions"], live_actions);
    for name in [
        "under_provisioning_accuracy",
        "over_provisioning_accuracy",
        "under_provisioning_timeshare",
        "over_provisioning_timeshare",
        "jitter",
        "instability",
        "slo_violation_seconds",
        "instance_hours",
    ] {
        assert!(scores[name].is_number(), "{name}: {scores}");
    }
    assert!(
        scores["slo_violation_seconds"].as_f64().unwrap() > 0.0,
        "400 rps on 2 instances: {scores}"
    );
    let calibration = &answer["calibration"];
    assert_eq!(calibration["capacity_source"], "measured", "{calibration}");
    // The mock: 2 vCPUs × 50 requests per second per 100 CPU points, 2 % idle.
    let measured = calibration["instance_capacity_rps"].as_f64().unwrap();
    assert!((90.0..110.0).contains(&measured), "{calibration}");
    assert_eq!(calibration["boot_source"], "measured");
    let series = answer["results"][0]["series"].as_array().unwrap();
    assert!(series.iter().any(|p| p["load"].as_f64().unwrap() > 300.0));
    assert!(
        series
            .iter()
            .any(|p| p["ideal_capacity"].as_f64().unwrap() >= 5.0),
        "400 rps need 5+ at 80 %"
    );

    // The saved setting beside a draft capped at 4 instances, on the same record: the draft
    // costs less and misses the SLO no less, and nothing live changed.
    let actions_before = scale_actions(&owner, "lab").await;
    let saved = owner.get("/scale-sets/lab/autoscale").await.1;
    let mut capped = setting();
    capped["profiles"][0]["capacity"]["maximum"] = json!(4);
    let (status, answer) = analyst
        .post(
            "/scale-sets/lab/autoscale/backtest",
            json!({"history": {"from": from, "to": to}, "settings": [saved, capped]}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let score = |i: usize, name: &str| results[i]["scores"][name].as_f64().unwrap();
    let scores = || format!("{} / {}", results[0]["scores"], results[1]["scores"]);
    assert!(
        score(1, "instance_hours") < score(0, "instance_hours"),
        "{}",
        scores()
    );
    assert!(
        score(1, "slo_violation_seconds") >= score(0, "slo_violation_seconds"),
        "{}",
        scores()
    );
    assert_ne!(results[0]["decisions"], results[1]["decisions"]);
    assert!(
        results[0]["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["operation"] != "none")
    );
    assert_eq!(capacity(&owner, "lab").await, 2);
    assert_eq!(scale_actions(&owner, "lab").await, actions_before);

    // A demand pattern replayed for an hour (with the set's measured fleet).
    let (status, answer) = analyst
        .post(
            "/scale-sets/lab/autoscale/backtest",
            json!({"demand": {"pattern": "step", "rps": 40, "step_rps": 400, "after_seconds": 600, "duration_seconds": 1200},
                   "duration_seconds": 3600, "boot_seconds": [8, 10, 14]}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let decisions = answer["results"][0]["decisions"].as_array().unwrap();
    let outs: Vec<&Value> = decisions
        .iter()
        .filter(|d| d["operation"] == "scale_out")
        .collect();
    let ins: Vec<&Value> = decisions
        .iter()
        .filter(|d| d["operation"] == "scale_in")
        .collect();
    assert!(!outs.is_empty() && !ins.is_empty(), "{decisions:?}");
    assert_eq!(answer["calibration"]["boot_source"], "given");
    assert_eq!(
        answer["calibration"]["boot_seconds"],
        json!([8.0, 10.0, 14.0])
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_backtests_are_refused_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), &FAST).await;
    let owner = server.api();
    owner.create_set("lab", 1, json!({})).await;
    owner.put("/scale-sets/lab/autoscale", setting()).await;
    let analyst = server.api_as("analyst", "Reader", Some("lab")).await;
    let refused = |body: Value, field: &'static str| {
        let analyst = &analyst;
        async move {
            let (status, answer) = analyst
                .post("/scale-sets/lab/autoscale/backtest", body.clone())
                .await;
            assert_eq!(status, 422, "{body}: {answer}");
            let fields: Vec<&str> = answer["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["field"].as_str().unwrap())
                .collect();
            assert!(fields.contains(&field), "{body}: {answer}");
        }
    };
    // A range without data.
    let long_ago = Utc::now() - chrono::Duration::days(30);
    refused(
        json!({"history": {"from": long_ago, "to": long_ago + chrono::Duration::hours(1)}}),
        "history.from",
    )
    .await;
    // An oversized CSV (more points than a trace may hold, within the body limit).
    let mut csv = String::from("0,1\n");
    for t in 1..=100_001 {
        csv.push_str(&format!("{t},1\n"));
    }
    refused(
        json!({"demand": {"pattern": "csv", "csv": csv}, "duration_seconds": 600}),
        "demand.csv",
    )
    .await;
    // An unknown metric in a draft, and a draft that fails validation otherwise.
    let mut unknown = setting();
    unknown["profiles"][0]["rules"][0]["metric"] = json!("cpu_load");
    refused(
        json!({"demand": {"pattern": "constant", "rps": 5}, "duration_seconds": 600, "settings": [unknown]}),
        "settings[0].profiles[0].rules[0].metric",
    )
    .await;
    let mut bounds = setting();
    bounds["profiles"][0]["capacity"]["minimum"] = json!(9);
    refused(
        json!({"demand": {"pattern": "constant", "rps": 5}, "duration_seconds": 600, "settings": [bounds]}),
        "settings[0].profiles[0].capacity.minimum",
    )
    .await;
    refused(json!({"demand": {"pattern": "constant", "rps": 5}, "duration_seconds": 600, "slo": {"metric": "cpu_load", "limit": 80}}), "slo.metric").await;
    refused(
        json!({"demand": {"pattern": "constant", "rps": 5}}),
        "duration_seconds",
    )
    .await;
    refused(json!({}), "demand").await;
    // Not JSON of the right shape: 422 too, never a 500.
    let (status, _) = analyst
        .post(
            "/scale-sets/lab/autoscale/backtest",
            json!({"boot_seconds": "soon"}),
        )
        .await;
    assert_eq!(status, 422);
    // Nothing changed: the saved setting is as it was.
    assert_eq!(
        owner.get("/scale-sets/lab/autoscale").await.1["profiles"][0]["rules"][0]["threshold"],
        70.0
    );
    let (status, _) = analyst
        .post("/scale-sets/nope/autoscale/backtest", json!({}))
        .await;
    assert!(status == 403 || status == 404, "{status}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_setting_decides_beside_the_live_one_and_never_acts() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), &FAST).await;
    let owner = server.api();
    owner
        .create_set("duo", 2, json!({"demand": demand(40.0)}))
        .await;
    owner.wait_healthy("duo", 2).await;
    // The live setting holds 2 whatever happens.
    let mut fixed = setting();
    fixed["profiles"][0]["capacity"] = json!({"minimum": 2, "maximum": 2, "default": 2});
    assert_eq!(
        owner
            .put("/scale-sets/duo/autoscale", fixed.clone())
            .await
            .0,
        200
    );
    let reader = server.api_as("viewer", "Reader", Some("duo")).await;
    let contributor = server.api_as("tuner", "Contributor", Some("duo")).await;
    // A Reader may look, not set; nothing to promote yet.
    let (status, _) = reader
        .put("/scale-sets/duo/autoscale/shadow", setting())
        .await;
    assert_eq!(status, 403);
    let (status, body) = contributor
        .post_empty("/scale-sets/duo/autoscale/shadow/promote")
        .await;
    assert_eq!(status, 409, "{body}");
    let mut bad = setting();
    bad["profiles"][0]["rules"][0]["metric"] = json!("cpu");
    let (status, body) = contributor
        .put("/scale-sets/duo/autoscale/shadow", bad)
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["errors"][0]["field"], "profiles[0].rules[0].metric",
        "{body}"
    );
    assert!(
        reader
            .get("/scale-sets/duo/autoscale/shadow")
            .await
            .1
            .is_null()
    );

    // Its webhook secret is never read back: not from the shadow, the set, nor once live.
    let mut candidate = setting();
    candidate["notifications"] = json!({"webhooks": [
        {"url": "https://hooks.example.com/flotilla?token=t0k3n", "secret": "sh4dow-s3cret"}]});
    let (status, body) = contributor
        .put("/scale-sets/duo/autoscale/shadow", candidate)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["saved"], true);
    let (_, shown) = reader.get("/scale-sets/duo/autoscale/shadow").await;
    assert_eq!(shown["profiles"][0]["capacity"]["maximum"], 6);
    assert_eq!(
        shown["notifications"]["webhooks"][0]["secret"],
        "(redacted)"
    );
    for (path, who) in [
        ("/scale-sets/duo/autoscale/shadow", &reader),
        ("/scale-sets/duo", &owner),
    ] {
        let text = who.get(path).await.1.to_string();
        assert!(
            !text.contains("sh4dow-s3cret") && !text.contains("t0k3n"),
            "{path}: {text}"
        );
    }
    // 400 rps saturate the 2 live instances: the shadow scales its own fleet out.
    owner.put("/scale-sets/duo/demand", demand(400.0)).await;
    wait_until("the shadow scales out", Duration::from_secs(30), || async {
        let (_, page) = reader
            .get("/scale-sets/duo/autoscale/decisions?shadow=true&changed=true&limit=10")
            .await;
        page["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|d| d["new_capacity"].as_u64() >= Some(4)))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, page) = reader
        .get("/scale-sets/duo/autoscale/decisions?shadow=true&limit=1000")
        .await;
    let shadow = page["items"].as_array().unwrap();
    assert!(shadow.iter().all(|d| d["shadow"] == true));
    // The shadow's own capacity goes on from where its last action left it.
    let mut actions: Vec<&Value> = shadow.iter().filter(|d| d["operation"] != "none").collect();
    actions.reverse();
    assert_eq!(actions[0]["current"], 2, "{actions:?}");
    for pair in actions.windows(2) {
        assert_eq!(pair[0]["new_capacity"], pair[1]["current"], "{actions:?}");
    }
    // Nothing acted: the capacity is 2, no live decision scaled, no scale was recorded.
    assert_eq!(capacity(&owner, "duo").await, 2);
    assert_eq!(scale_actions(&owner, "duo").await, vec![]);
    let (_, live) = reader
        .get("/scale-sets/duo/autoscale/decisions?limit=1000")
        .await;
    assert!(
        live["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["shadow"] == false)
    );
    let (_, log) = owner
        .get("/activity?scale_set=duo&operation=autoscale.scale&limit=10")
        .await;
    assert_eq!(log["items"], json!([]));

    // Promoted, the candidate is the live setting and acts.
    let (status, body) = contributor
        .post_empty("/scale-sets/duo/autoscale/shadow/promote")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["autoscale"]["profiles"][0]["capacity"]["maximum"], 6);
    assert_eq!(
        body["autoscale"]["notifications"]["webhooks"][0]["secret"],
        "(redacted)"
    );
    assert!(!body.to_string().contains("sh4dow-s3cret"), "{body}");
    assert!(
        reader
            .get("/scale-sets/duo/autoscale/shadow")
            .await
            .1
            .is_null()
    );
    wait_until(
        "the live setting scales out",
        Duration::from_secs(30),
        || async { capacity(&owner, "duo").await > 2 },
    )
    .await;
    let (_, log) = owner
        .get("/activity?scale_set=duo&operation=autoscale.promote&limit=10")
        .await;
    assert!(
        log["items"][0]["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("tuner")),
        "{log}"
    );
    server.stop().await;
}
