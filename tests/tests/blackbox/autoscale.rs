//! Metrics and autoscale end to end over HTTP: the mock's synthetic demand drives CPU, the
//! collector and the autoscaler run every second, decisions are stored and listed, scale
//! actions are announced to a signed webhook, and bad settings are refused whole.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_tests::{Api, TestServer, wait_until};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const FAST: [&str; 4] = ["--autoscale-interval", "1s", "--metrics-interval", "1s"];

fn rule(operator: &str, threshold: f64, direction: &str, value: u32, cooldown: u32) -> Value {
    json!({"metric": "cpu_percent", "statistic": "average", "time_grain_seconds": 5,
           "time_window_seconds": 5, "time_aggregation": "average", "operator": operator,
           "threshold": threshold, "direction": direction, "type": "change_count",
           "value": value, "cooldown_seconds": cooldown})
}

/// CPU above 70 % for 5 s → +2 (cooldown 5 s); below 30 % for 5 s → −1 (cooldown 4 s);
/// 2–6 instances; new instances' metrics ignored for 10 s (the mock's warm-up).
fn cpu_setting(webhook: Option<&str>) -> Value {
    json!({
        "enabled": true,
        "initialization_seconds": 10,
        "profiles": [{
            "name": "default",
            "capacity": {"minimum": 2, "maximum": 6, "default": 2},
            "rules": [rule("greater_than", 70.0, "increase", 2, 5),
                      rule("less_than", 30.0, "decrease", 1, 4)],
            "target_tracking": null, "recurrence": null, "fixed_date": null,
        }],
        "notifications": {"webhooks": webhook.map(|url| vec![json!({"url": url, "secret": "s3cret"})]).unwrap_or_default()},
    })
}

/// One request a receiver got: its head and its body.
pub(super) type Received = (String, Vec<u8>);

/// A webhook receiver: records each request and answers with the next status of `statuses`
/// (then 200).
pub(super) struct Receiver {
    pub(super) url: String,
    pub(super) requests: Arc<Mutex<Vec<Received>>>,
}

pub(super) async fn receiver(statuses: Vec<u16>) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/scale", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        let mut statuses = statuses.into_iter();
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let n = stream.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break (String::new(), Vec::new());
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    while buf.len() < end + 4 + length {
                        let n = stream.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    break (head, buf[end + 4..].to_vec());
                }
            };
            let status = statuses.next().unwrap_or(200);
            seen.lock().unwrap().push((head, body));
            let answer =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    Receiver { url, requests }
}

pub(super) fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::sign(&key, body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The set's metrics over the last minute, one point per second.
pub(super) fn recent(set: &str, metrics: &str) -> String {
    let from = chrono::Utc::now() - chrono::Duration::seconds(60);
    format!(
        "/scale-sets/{set}/metrics?metric={metrics}&step=1&from={}",
        from.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

pub(super) async fn capacity(api: &Api, set: &str) -> u64 {
    api.get(&format!("/scale-sets/{set}")).await.1["capacity"]
        .as_u64()
        .unwrap()
}

/// The capacities the autoscaler moved through, oldest first.
pub(super) async fn scale_actions(api: &Api, set: &str) -> Vec<(String, u64, u64)> {
    let (status, page) = api
        .get(&format!(
            "/scale-sets/{set}/autoscale/decisions?changed=true&limit=100"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    let mut actions: Vec<(String, u64, u64)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["operation"].as_str().unwrap().to_string(),
                d["current"].as_u64().unwrap(),
                d["new_capacity"].as_u64().unwrap(),
            )
        })
        .collect();
    actions.reverse();
    actions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demand_step_scales_out_then_back_in_without_oscillating() {
    let dir = tempfile::tempdir().unwrap();
    // The webhook receiver listens on loopback, which webhooks may reach only when allowed.
    let flags = [&FAST[..], &["--webhook-allow", "127.0.0.0/8"]].concat();
    let server = TestServer::start_with(dir.path(), &flags).await;
    let api = server.api();
    // The first delivery fails (500): the second attempt succeeds.
    let hook = receiver(vec![500]).await;
    api.create_set(
        "shop",
        2,
        json!({"demand": {"pattern": "constant", "rps": 40, "noise_percent": 0}}),
    )
    .await;
    api.wait_healthy("shop", 2).await;
    let (status, answer) = api
        .put("/scale-sets/shop/autoscale", cpu_setting(Some(&hook.url)))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["saved"], true);
    assert_eq!(answer["warnings"], json!([]));
    assert_eq!(
        answer["autoscale"]["notifications"]["webhooks"][0]["secret"],
        "(redacted)"
    );

    // 40 rps over 2 instances of 2 vCPUs: about 22 % CPU, which the metrics show.
    wait_until("CPU is measured", Duration::from_secs(30), || async {
        let (_, m) = api.get(&recent("shop", "cpu_percent")).await;
        m["series"][0]["points"]
            .as_array()
            .and_then(|p| p.last())
            .is_some_and(|p| (15.0..30.0).contains(&p["average"].as_f64().unwrap_or(0.0)))
    })
    .await;
    let (_, m) = api.get(&recent("shop", "demand_requests_per_second")).await;
    assert_eq!(
        m["series"][0]["points"].as_array().unwrap().last().unwrap()["average"],
        40.0
    );
    // Nothing to do at 22 %: the decisions say so.
    wait_until("a decision is stored", Duration::from_secs(10), || async {
        let (_, page) = api
            .get("/scale-sets/shop/autoscale/decisions?limit=1")
            .await;
        page["items"][0]["operation"] == "none"
    })
    .await;
    assert_eq!(capacity(&api, "shop").await, 2);

    // The step: 400 rps saturates 2 instances.
    let step = Instant::now();
    let (status, set) = api
        .put(
            "/scale-sets/shop/demand",
            json!({"pattern": "constant", "rps": 400, "noise_percent": 0}),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    wait_until("the set scales out", Duration::from_secs(20), || async {
        capacity(&api, "shop").await > 2
    })
    .await;
    let reacted = step.elapsed();
    // One 5 s window plus one evaluation (1 s) and one collector tick (1 s), with slack.
    assert!(reacted < Duration::from_secs(12), "took {reacted:?}");
    // 400 rps needs 6 instances below 70 %: the maximum.
    wait_until("the set reaches 6", Duration::from_secs(60), || async {
        capacity(&api, "shop").await == 6
    })
    .await;
    api.wait_healthy("shop", 6).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(capacity(&api, "shop").await, 6, "stays at the maximum");

    // The demand falls: back to the minimum, one instance at a time.
    api.put(
        "/scale-sets/shop/demand",
        json!({"pattern": "constant", "rps": 40, "noise_percent": 0}),
    )
    .await;
    wait_until(
        "the set scales back in",
        Duration::from_secs(90),
        || async { capacity(&api, "shop").await == 2 },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(capacity(&api, "shop").await, 2, "stays at the minimum");

    // No oscillation: every scale-out came before every scale-in, each step in its
    // direction, and the path was 2 → … → 6 → … → 2.
    let actions = scale_actions(&api, "shop").await;
    let first_in = actions
        .iter()
        .position(|(op, ..)| op == "scale_in")
        .expect("scale-ins");
    assert!(
        actions[..first_in]
            .iter()
            .all(|(op, from, to)| op == "scale_out" && to > from),
        "{actions:?}"
    );
    assert!(
        actions[first_in..]
            .iter()
            .all(|(op, from, to)| op == "scale_in" && to + 1 == *from),
        "{actions:?}"
    );
    assert_eq!(actions.first().map(|a| a.1), Some(2));
    assert_eq!(actions[first_in].1, 6);
    assert_eq!(actions.last().map(|a| a.2), Some(2));
    for pair in actions.windows(2) {
        assert_eq!(
            pair[0].2, pair[1].1,
            "each action starts where the last ended: {actions:?}"
        );
    }

    // A scale-out decision explains itself: the rule's grains, value and comparison.
    let (_, page) = api
        .get("/scale-sets/shop/autoscale/decisions?operation=scale_out&limit=100")
        .await;
    let first_out = page["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(first_out["profile"], "default");
    assert_eq!(first_out["rules"][0]["fired"], true);
    assert!(first_out["rules"][0]["value"].as_f64().unwrap() > 70.0);
    assert_eq!(first_out["cooldown_seconds"], 5);
    // The activity log names the decision.
    let (_, log) = api
        .get("/activity?scale_set=shop&operation=autoscale.scale&limit=100")
        .await;
    let entries = log["items"].as_array().unwrap();
    assert_eq!(entries.len(), actions.len());
    assert!(
        entries
            .iter()
            .all(|e| e["details"]["decision_id"].as_i64().is_some())
    );

    // Every action reached the webhook, signed, after retrying the one refusal.
    wait_until(
        "webhooks are delivered",
        Duration::from_secs(30),
        || async {
            let (_, log) = api
                .get("/activity?scale_set=shop&operation=autoscale.webhook&limit=100")
                .await;
            let items = log["items"].as_array().unwrap().clone();
            items.len() == actions.len() && items.iter().all(|e| e["result"] == "succeeded")
        },
    )
    .await;
    let (_, log) = api
        .get("/activity?scale_set=shop&operation=autoscale.webhook&limit=100")
        .await;
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["details"]["attempts"] == 2),
        "the refused delivery was retried: {log}"
    );
    let requests = hook.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), actions.len() + 1);
    for (head, body) in &requests {
        let signature = head
            .lines()
            .find_map(|l| l.strip_prefix("X-Flotilla-Signature: sha256="))
            .expect("signed");
        assert_eq!(signature, hmac_hex("s3cret", body));
        let payload: Value = serde_json::from_slice(body).unwrap();
        assert!(payload["decision_id"].as_i64().is_some());
        assert!(payload["old_capacity"] != payload["new_capacity"]);
    }
    let first: Value = serde_json::from_slice(&requests[0].1).unwrap();
    assert_eq!(first["operation"], "scale_out");
    assert_eq!(first["old_capacity"], 2);
    server.stop().await;
}

/// Target tracking on CPU at 60 % scaling up to 20, fast (1000 % per 15 s), with or
/// without `size_from_load`.
fn tracking(size_from_load: bool) -> Value {
    json!({
        "enabled": true,
        "initialization_seconds": 2,
        "profiles": [{
            "name": "default",
            "capacity": {"minimum": 2, "maximum": 20, "default": 2},
            "target_tracking": {"metric": "cpu_percent", "target": 60, "window_seconds": 3,
                "size_from_load": size_from_load,
                "scale_up": {"stabilization_window_seconds": 0,
                             "policies": [{"type": "percent", "value": 1000, "period_seconds": 15}]},
                "scale_down": {"stabilization_window_seconds": 300,
                               "policies": [{"type": "percent", "value": 100, "period_seconds": 15}]}},
        }],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_cpu_sizes_the_scale_out_from_the_load_on_the_mock() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), &FAST).await;
    let api = server.api();
    api.create_set(
        "sized",
        2,
        json!({"demand": {"pattern": "constant", "rps": 40, "noise_percent": 0}}),
    )
    .await;
    api.wait_healthy("sized", 2).await;
    let operator = server.api_as("sizer", "Contributor", Some("sized")).await;
    // Live: sized from the load; shadow: the HPA's arithmetic, on the same metrics.
    let (status, body) = operator
        .put("/scale-sets/sized/autoscale", tracking(true))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = operator
        .put("/scale-sets/sized/autoscale/shadow", tracking(false))
        .await;
    assert_eq!(status, 200, "{body}");
    // Unsaturated at 40 rps (about 22 %): the load one instance carries per point is noted.
    wait_until(
        "the load per point is measured",
        Duration::from_secs(20),
        || async {
            let (_, page) = operator
                .get("/scale-sets/sized/autoscale/decisions?limit=1")
                .await;
            page["items"][0]["tracking"]["load_per_point"].is_number()
        },
    )
    .await;
    // 1,000 rps saturates 2 instances of 100 rps each at 100 %.
    let (status, body) = operator
        .put(
            "/scale-sets/sized/demand",
            json!({"pattern": "constant", "rps": 1000, "noise_percent": 0}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_until("the set reaches 14", Duration::from_secs(30), || async {
        capacity(&api, "sized").await >= 14
    })
    .await;
    // Oldest first.
    let scale_outs = |page: Value| {
        let mut items = page["items"].as_array().unwrap().clone();
        items.reverse();
        items
    };
    let (_, page) = operator
        .get("/scale-sets/sized/autoscale/decisions?changed=true&limit=100")
        .await;
    let live = scale_outs(page);
    // Once a window is saturated, at once to what 1,000 rps needs at 60 % (about 17), not
    // ⌈2 × 100 / 60⌉ = 4: within the first two scale-outs (the first may see a window the
    // step only half filled).
    let sized = live
        .iter()
        .take(2)
        .find(|d| {
            d["tracking"]["note"]
                .as_str()
                .is_some_and(|n| n.contains("saturated"))
        })
        .unwrap_or_else(|| panic!("{live:?}"));
    assert!(
        (14..=20).contains(&sized["new_capacity"].as_u64().unwrap()),
        "{sized}"
    );
    // The HPA's arithmetic on the same metrics climbs: each step at most ×100/60.
    let (_, page) = operator
        .get("/scale-sets/sized/autoscale/decisions?changed=true&shadow=true&limit=100")
        .await;
    let shadow = scale_outs(page);
    assert!(shadow.len() >= 2, "{shadow:?}");
    for d in &shadow[..2] {
        let (from, to) = (
            d["current"].as_u64().unwrap(),
            d["new_capacity"].as_u64().unwrap(),
        );
        assert!(to <= (from * 100).div_ceil(60), "{d}");
    }
}

#[tokio::test]
async fn manual_capacity_is_refused_while_autoscale_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set("web", 2, json!({})).await;
    let (status, _) = api
        .put("/scale-sets/web/autoscale", cpu_setting(None))
        .await;
    assert_eq!(status, 200);
    let (status, problem) = api
        .put("/scale-sets/web/capacity", json!({"capacity": 5}))
        .await;
    assert_eq!(status, 409, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("autoscale"));
    let (status, problem) = api.patch("/scale-sets/web", json!({"capacity": 5})).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "capacity");
    // Disabled: manual again.
    let mut off = cpu_setting(None);
    off["enabled"] = json!(false);
    assert_eq!(api.put("/scale-sets/web/autoscale", off).await.0, 200);
    assert_eq!(
        api.put("/scale-sets/web/capacity", json!({"capacity": 3}))
            .await
            .0,
        200
    );
    // Evaluating a disabled setting decides nothing.
    let (status, decision) = api.post_empty("/scale-sets/web/autoscale/evaluate").await;
    assert_eq!((status, decision), (200, Value::Null));
    server.stop().await;
}

#[tokio::test]
async fn bad_settings_name_each_field_and_save_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set("web", 2, json!({})).await;
    let mut bad = cpu_setting(Some("ftp://hooks.example/x"));
    bad["profiles"][0]["capacity"] = json!({"minimum": 5, "maximum": 3, "default": 4});
    bad["profiles"][0]["rules"][0]["metric"] = json!("cpu");
    bad["profiles"][0]["rules"][1]["time_window_seconds"] = json!(0);
    bad["profiles"].as_array_mut().unwrap().extend([
        json!({"name": "christmas", "capacity": {"minimum": 1, "maximum": 10, "default": 11},
               "fixed_date": {"time_zone": "Europe/Paris", "start": "2026-12-24T00:00:00", "end": "2026-12-27T00:00:00"}}),
        json!({"name": "new-year", "capacity": {"minimum": 1, "maximum": 10, "default": 2},
               "fixed_date": {"time_zone": "Mars/Olympus", "start": "2026-12-26T00:00:00", "end": "2027-01-02T00:00:00"}}),
        json!({"name": "sales", "capacity": {"minimum": 1, "maximum": 10, "default": 2},
               "fixed_date": {"time_zone": "UTC", "start": "2026-12-26T00:00:00", "end": "2027-01-02T00:00:00"}}),
    ]);
    let (status, problem) = api.put("/scale-sets/web/autoscale", bad).await;
    assert_eq!(status, 422, "{problem}");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for field in [
        "profiles[0].capacity.minimum",
        "profiles[0].rules[0].metric",
        "profiles[0].rules[1].time_window_seconds",
        "profiles[1].capacity.default",
        "profiles[2].fixed_date.time_zone",
        "profiles[3].fixed_date",
        "notifications.webhooks[0].url",
    ] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
    // Nothing saved.
    assert_eq!(api.get("/scale-sets/web/autoscale").await.1, Value::Null);
    // A wrong type names its field too.
    let mut wrong = cpu_setting(None);
    wrong["profiles"][0]["rules"][0]["operator"] = json!("bigger");
    let (status, problem) = api.put("/scale-sets/web/autoscale", wrong).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem.to_string().contains("operator"), "{problem}");
    // A dry run validates and warns without saving.
    let mut narrow = cpu_setting(None);
    narrow["profiles"][0]["rules"][1]["threshold"] = json!(65);
    let (status, answer) = api
        .put("/scale-sets/web/autoscale?dry_run=true", narrow)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["saved"], false);
    let warnings = answer["warnings"].as_array().unwrap();
    let warned = |field: &str, says: &str| {
        warnings
            .iter()
            .any(|w| w["field"] == field && w["message"].as_str().is_some_and(|m| m.contains(says)))
    };
    assert!(warned("profiles[0].rules[1]", "flap"), "{answer}");
    // 5 s windows at the default 10 s collection interval often hold no sample.
    assert_eq!(answer["metrics_interval_seconds"], 10, "{answer}");
    assert!(
        warned(
            "profiles[0].rules[0].time_window_seconds",
            "shorter than two metric collection intervals"
        ),
        "{answer}"
    );
    assert_eq!(api.get("/scale-sets/web/autoscale").await.1, Value::Null);

    // Demand and metrics queries refuse bad input by field.
    let (status, problem) = api
        .put(
            "/scale-sets/web/demand",
            json!({"pattern": "sine", "min_rps": 10, "max_rps": 5, "period_seconds": 600}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "max_rps");
    let (status, problem) = api
        .get("/scale-sets/web/metrics?metric=cpu,capacity&from=yesterday&step=0")
        .await;
    assert_eq!(status, 422, "{problem}");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"from"), "{fields:?}");
    let (status, problem) = api.get("/scale-sets/web/metrics?metric=cpu").await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "metric");
    let (status, _) = api.get("/scale-sets/nope/metrics").await;
    assert_eq!(status, 404);
    server.stop().await;
}

/// Webhooks go to public addresses only: a loopback or cloud-metadata address given as an
/// IP is refused when saved, naming the field; a name that resolves to loopback is refused
/// when sending (resolved once, checked, never connected to), once, with the reason — the
/// receiver listening there gets nothing.
#[tokio::test]
async fn webhooks_never_reach_the_host_or_its_network() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), &FAST).await;
    let api = server.api();
    api.create_set("web", 1, json!({})).await;
    let hook = receiver(vec![]).await;
    let port = hook
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for (url, class) in [
        (hook.url.clone(), "loopback"),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "link-local",
        ),
        ("http://[::ffff:10.0.0.1]/x".to_string(), "private"),
        ("http://0x7f.1/x".to_string(), "parsers"),
        ("http://a\r\nb/".to_string(), "must not contain"),
    ] {
        let (status, problem) = api
            .put("/scale-sets/web/autoscale", cpu_setting(Some(&url)))
            .await;
        assert_eq!(status, 422, "{url}: {problem}");
        assert_eq!(
            problem["errors"][0]["field"],
            "notifications.webhooks[0].url"
        );
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(class),
            "{url}: {problem}"
        );
    }
    // A name that resolves to loopback: saved (names are checked when sending), and the
    // first scale action's delivery is refused.
    let by_name = format!("http://localhost:{port}/hooks/scale");
    let setting = json!({"enabled": true, "profiles": [{"name": "default",
        "capacity": {"minimum": 1, "maximum": 3, "default": 2}}],
        "notifications": {"webhooks": [{"url": by_name, "secret": "s"}]}});
    let (status, answer) = api.put("/scale-sets/web/autoscale", setting).await;
    assert_eq!(status, 200, "{answer}");
    wait_until(
        "the delivery is refused",
        Duration::from_secs(20),
        || async {
            let (_, log) = api
                .get("/activity?scale_set=web&operation=autoscale.webhook")
                .await;
            log["items"][0]["result"] == "failed"
        },
    )
    .await;
    let (_, log) = api
        .get("/activity?scale_set=web&operation=autoscale.webhook")
        .await;
    let entry = &log["items"][0];
    assert!(
        entry["error"]
            .as_str()
            .unwrap()
            .contains("loopback address"),
        "{entry}"
    );
    assert_eq!(
        entry["details"]["attempts"], 1,
        "a refusal is not retried: {entry}"
    );
    assert_eq!(
        entry["details"]["url"],
        format!("http://localhost:{port}/(redacted)")
    );
    assert!(
        hook.requests.lock().unwrap().is_empty(),
        "nothing reached the receiver"
    );
    server.stop().await;
}
