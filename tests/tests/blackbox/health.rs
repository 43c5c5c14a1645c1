//! Health probes, the load balancer and automatic repairs end to end over HTTP: traffic
//! through a real frontend to the mock's instances, faults injected through the API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flotilla_tests::{Api, TestServer, free_port, wait_until};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A probe that flips after one result, every 2 s (the fastest valid one).
pub(super) fn fast_probe(path: &str, unhealthy_threshold: u32) -> Value {
    json!({"protocol": "http", "port": 80, "path": path, "interval_seconds": 2,
           "timeout_seconds": 1, "healthy_threshold": 1,
           "unhealthy_threshold": unhealthy_threshold})
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Which instance answered `GET /` through the frontend.
async fn served_by(http: &reqwest::Client, port: u16) -> Result<String, String> {
    let resp = http
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {body}"));
    }
    Ok(body["instance_id"].as_str().unwrap_or_default().to_string())
}

async fn spread(http: &reqwest::Client, port: u16, n: usize) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for _ in 0..n {
        *by.entry(served_by(http, port).await.unwrap()).or_default() += 1;
    }
    by
}

async fn wait_health(api: &Api, set: &str, want: &[(&str, &str)]) {
    wait_until(
        &format!("{set}: health {want:?}"),
        Duration::from_secs(30),
        || async {
            let items = api.instances(set).await;
            want.iter().all(|(id, state)| {
                items
                    .iter()
                    .any(|i| i["id"] == *id && i["health_state"] == *state)
            })
        },
    )
    .await;
}

pub(super) async fn fault(api: &Api, kind: &str, instance: &str) {
    let (status, body) = api
        .post(
            "/backend/faults",
            json!({"kind": kind, "instance": instance}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
}

#[tokio::test]
async fn traffic_spreads_and_follows_health_without_failed_requests() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let port = free_port();
    api.create_set(
        "web",
        3,
        json!({"health_probe": fast_probe("/health", 2),
               "load_balancer": {"frontends": [{"name": "web", "protocol": "http", "port": port}]}}),
    )
    .await;
    api.wait_running("web", 3).await;
    wait_health(
        &api,
        "web",
        &[
            ("web_0", "healthy"),
            ("web_1", "healthy"),
            ("web_2", "healthy"),
        ],
    )
    .await;
    let items = api.instances("web").await;
    for i in &items {
        let probe = &i["last_probe"];
        assert_eq!(probe["success"], true, "{i}");
        assert_eq!(probe["detail"], "200 OK");
        assert!(i["health_changed_at"].is_string());
    }
    let http = client();
    wait_until(
        "the pool has three members",
        Duration::from_secs(10),
        || {
            let http = http.clone();
            async move { spread(&http, port, 3).await.len() == 3 }
        },
    )
    .await;

    // Round robin: 30 requests, 10 each.
    let by = spread(&http, port, 30).await;
    assert_eq!(
        by.values().copied().collect::<Vec<_>>(),
        [10, 10, 10],
        "{by:?}"
    );

    // Client-IP hash (changed in place): every request from 127.0.0.1 to one instance.
    let (status, body) = api
        .patch(
            "/scale-sets/web",
            json!({"load_balancer": {"frontends": [{"name": "web", "protocol": "http",
                   "port": port, "algorithm": "ip_hash"}]}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(spread(&http, port, 12).await.len(), 1);
    api.patch(
        "/scale-sets/web",
        json!({"load_balancer": {"frontends": [{"name": "web", "protocol": "http", "port": port}]}}),
    )
    .await;

    // Traffic runs the whole time; no request may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let served: Arc<std::sync::Mutex<Vec<(Instant, String)>>> = Default::default();
    let load = tokio::spawn({
        let (stop, failures, served, http) =
            (stop.clone(), failures.clone(), served.clone(), http.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                match served_by(&http, port).await {
                    Ok(id) => served.lock().unwrap().push((Instant::now(), id)),
                    Err(e) => {
                        eprintln!("failed request: {e}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });

    // Unhealthy: out of the pool within thresholds × interval (2 × 2 s) plus the phase of
    // the first failing probe, with slack for a loaded machine.
    let injected = Instant::now();
    fault(&api, "unhealthy", "web_1").await;
    wait_health(&api, "web", &[("web_1", "unhealthy")]).await;
    let left_after = injected.elapsed();
    assert!(left_after <= Duration::from_secs(10), "{left_after:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let marked = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let late: Vec<String> = served
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, id)| *t > marked && id == "web_1")
        .map(|(_, id)| id.clone())
        .collect();
    assert!(
        late.is_empty(),
        "web_1 still served after it was found unhealthy"
    );
    let (_, lb) = api.get("/scale-sets/web/load-balancer").await;
    let members: Vec<&str> = lb["stats"][0]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["state"] == "serving")
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert!(!members.contains(&"web_1"), "{lb}");

    // Healthy again: back in the pool.
    fault(&api, "healthy", "web_1").await;
    wait_health(&api, "web", &[("web_1", "healthy")]).await;
    let back = Instant::now();
    wait_until("web_1 serves again", Duration::from_secs(10), || {
        let served = served.clone();
        async move {
            served
                .lock()
                .unwrap()
                .iter()
                .any(|(t, id)| *t > back && id == "web_1")
        }
    })
    .await;

    // A person drains web_2: nothing new reaches it, and it is back when enabled.
    let (status, body) = api
        .put(
            "/scale-sets/web/instances/web_2/load-balancer",
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(
        (status, &body["load_balancer_enabled"]),
        (200, &json!(false))
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let drained = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !served
            .lock()
            .unwrap()
            .iter()
            .any(|(t, id)| *t > drained && id == "web_2"),
        "a drained instance got new requests"
    );
    api.put(
        "/scale-sets/web/instances/web_2/load-balancer",
        json!({"enabled": true}),
    )
    .await;

    // Deleting an instance drains it first: still no failed request.
    let (status, _) = api
        .post_empty("/scale-sets/web/instances/web_0/delete")
        .await;
    assert_eq!(status, 202);
    wait_until("web_0 is gone", Duration::from_secs(30), || async {
        !api.instances("web")
            .await
            .iter()
            .any(|i| i["id"] == "web_0")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "failed client requests"
    );
    assert!(served.lock().unwrap().len() > 100);

    // Statistics: in the API and in /metrics.
    let (_, lb) = api.get("/scale-sets/web/load-balancer").await;
    let stats = &lb["stats"][0];
    assert_eq!(stats["name"], "web");
    assert!(stats["requests"].as_u64().unwrap() > 100, "{stats}");
    assert_eq!(stats["responses"]["server_error"], 0, "{stats}");
    let metrics = server
        .http()
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("scale_set=\"web\""),
        "no load balancer series in /metrics"
    );
    assert!(metrics.contains("flotilla_lb_"), "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn tls_frontend_terminates_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let port = free_port();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
    api.create_set(
        "secure",
        1,
        json!({"load_balancer": {"frontends": [{"name": "tls", "protocol": "https", "port": port,
               "tls": {"certificate_pem": cert_pem, "private_key_pem": key_pem}}]}}),
    )
    .await;
    api.wait_running("secure", 1).await;
    wait_health(&api, "secure", &[("secure_0", "healthy")]).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let answer = Arc::new(std::sync::Mutex::new(String::new()));
    wait_until(
        "the https frontend answers",
        Duration::from_secs(10),
        || {
            let connector = connector.clone();
            let answer = answer.clone();
            async move {
                let Ok(tcp) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                    return false;
                };
                let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
                tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    .await
                    .unwrap();
                let mut text = String::new();
                tls.read_to_string(&mut text).await.ok();
                let ok = text.starts_with("HTTP/1.1 200");
                *answer.lock().unwrap() = text;
                ok
            }
        },
    )
    .await;
    let answer = answer.lock().unwrap().clone();
    assert!(answer.contains("secure_0"), "{answer}");

    // The key is never shown; sent back as shown, it is kept.
    let (_, set) = api.get("/scale-sets/secure").await;
    let lb = set["load_balancer"].clone();
    assert_eq!(lb["frontends"][0]["tls"]["private_key_pem"], "(redacted)");
    assert!(!set.to_string().contains("PRIVATE KEY"), "{set}");
    let (_, all) = api.get("/scale-sets").await;
    assert!(!all.to_string().contains("PRIVATE KEY"));
    let (status, patched) = api
        .patch("/scale-sets/secure", json!({"load_balancer": lb}))
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        patched["load_balancer"]["frontends"][0]["tls"]["private_key_pem"],
        "(redacted)"
    );
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector
        .connect(name, tcp)
        .await
        .expect("still serves TLS with the kept key");
    server.stop().await;
}

#[tokio::test]
async fn frontend_input_is_checked_and_nothing_is_half_applied() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let free = free_port();
    let base = |lb: Value| {
        json!({"name": "web", "model": {"image": "debian-12", "vcpus": 2, "memory_mib": 2048,
               "disk_gib": 10, "user_data": null, "app_port": 80}, "capacity": 1,
               "load_balancer": lb})
    };
    let cases = [
        (
            json!({"frontends": [{"name": "a", "protocol": "http", "port": free},
                                 {"name": "b", "protocol": "http", "port": taken_port}]}),
            "load_balancer.frontends[1].port",
        ),
        (
            json!({"frontends": [{"name": "a", "protocol": "https", "port": free,
                   "tls": {"certificate_pem": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
                           "private_key_pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}}]}),
            "load_balancer.frontends[0].tls.certificate_pem",
        ),
        (
            json!({"frontends": [{"name": "a", "protocol": "http", "port": free,
                   "rules": [{"path_prefix": "/api", "scale_set": "nowhere"}]}]}),
            "load_balancer.frontends[0].rules[0].scale_set",
        ),
        (
            json!({"frontends": [{"name": "a", "protocol": "http", "port": 70000}]}),
            "load_balancer.frontends[0].port",
        ),
    ];
    for (lb, field) in cases {
        let (status, body) = api.post("/scale-sets", base(lb)).await;
        assert!(status == 422 || status == 400, "{status} {body}");
        let named = body["errors"]
            .as_array()
            .map(|e| e.iter().any(|e| e["field"] == field))
            .unwrap_or(false)
            || body.to_string().contains(field);
        assert!(named, "expected {field} in {body}");
        assert_eq!(
            api.get_status("/scale-sets/web").await,
            404,
            "nothing stored"
        );
        // The first frontend of the refused set was not left listening.
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", free)).is_ok(),
            "port {free} left bound after {field}"
        );
    }
    // A refused patch leaves the running frontend as it was.
    api.create_set(
        "web",
        1,
        json!({"load_balancer": {"frontends": [{"name": "a", "protocol": "http", "port": free}]}}),
    )
    .await;
    let (status, body) = api
        .patch(
            "/scale-sets/web",
            json!({"load_balancer": {"frontends": [{"name": "a", "protocol": "http", "port": taken_port}]}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string().contains("load_balancer.frontends[0].port"),
        "{body}"
    );
    let (_, set) = api.get("/scale-sets/web").await;
    assert_eq!(set["load_balancer"]["frontends"][0]["port"], free);
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", free))
            .await
            .is_ok(),
        "the old frontend still listens"
    );
    drop(taken);
    server.stop().await;
}

/// Repair activity entries of a set, oldest first.
pub(super) async fn repairs(api: &Api, set: &str) -> Vec<Value> {
    let (_, body) = api
        .get(&format!("/scale-sets/{set}/activity?limit=1000"))
        .await;
    let mut items: Vec<Value> = body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["operation"] == "instance.repair")
        .collect();
    items.reverse();
    items
}

#[tokio::test]
async fn repairs_replace_after_the_grace_period_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set(
        "web",
        3,
        json!({"health_probe": fast_probe("/health", 1),
               "automatic_repairs": {"enabled": true, "grace_period_seconds": 4,
                                     "repair_action": "replace"}}),
    )
    .await;
    api.wait_running("web", 3).await;
    wait_health(
        &api,
        "web",
        &[
            ("web_0", "healthy"),
            ("web_1", "healthy"),
            ("web_2", "healthy"),
        ],
    )
    .await;
    let injected = chrono::Utc::now();
    fault(&api, "unhealthy", "web_0").await;
    fault(&api, "unhealthy", "web_1").await;
    // While both wait, at most one is being repaired at a time (3 instances: one at a time).
    let saw_waiting = AtomicBool::new(false);
    wait_until("both are replaced", Duration::from_secs(60), || async {
        let (_, overview) = api.get("/scale-sets/web/repairs").await;
        assert_eq!(overview["limit"], 1);
        if overview["waiting"].as_array().is_some_and(|w| {
            w.iter()
                .any(|w| w["reason"].as_str().unwrap_or("").contains("at most 1"))
        }) {
            saw_waiting.store(true, Ordering::Relaxed);
        }
        let items = api.instances("web").await;
        let transitional = items
            .iter()
            .filter(|i| {
                i["provisioning_state"] != "succeeded" || i["health_state"] == "initializing"
            })
            .count();
        assert!(
            transitional <= 2,
            "one replaced and its successor at most: {items:?}"
        );
        !items
            .iter()
            .any(|i| i["id"] == "web_0" || i["id"] == "web_1")
            && items.len() == 3
            && items.iter().all(|i| i["health_state"] == "healthy")
    })
    .await;
    assert!(
        saw_waiting.load(Ordering::Relaxed),
        "the second repair never waited for the first"
    );
    let done = repairs(&api, "web").await;
    assert_eq!(done.len(), 2, "{done:?}");
    let targets: Vec<&str> = done.iter().map(|a| a["target"].as_str().unwrap()).collect();
    assert_eq!(targets.len(), 2);
    for a in &done {
        assert_eq!(a["details"]["action"], "replace");
        assert!(
            a["details"]["reason"]
                .as_str()
                .unwrap()
                .starts_with("unhealthy since")
        );
        let at: chrono::DateTime<chrono::Utc> = a["started_at"].as_str().unwrap().parse().unwrap();
        assert!(
            at - injected >= chrono::Duration::seconds(4),
            "repaired before the grace period: {a}"
        );
    }
    let t0: chrono::DateTime<chrono::Utc> =
        done[0]["started_at"].as_str().unwrap().parse().unwrap();
    let t1: chrono::DateTime<chrono::Utc> =
        done[1]["started_at"].as_str().unwrap().parse().unwrap();
    assert!(t1 > t0, "one at a time");
    server.stop().await;
}

#[tokio::test]
async fn repeated_failed_repairs_suspend_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    // The probe asks for a path the app does not serve: no instance is ever healthy.
    api.create_set(
        "broken",
        1,
        json!({"health_probe": fast_probe("/not-served", 1),
               "automatic_repairs": {"enabled": true, "grace_period_seconds": 0,
                                     "repair_action": "replace"}}),
    )
    .await;
    wait_until("repairs suspend", Duration::from_secs(90), || async {
        let (_, set) = api.get("/scale-sets/broken").await;
        set["repairs"]["suspended_at"].is_string()
    })
    .await;
    let (_, set) = api.get("/scale-sets/broken").await;
    let reason = set["repairs"]["suspended_reason"].as_str().unwrap();
    assert!(reason.contains("3 repairs in a row"), "{reason}");
    let before = repairs(&api, "broken").await.len();
    assert!(before >= 3, "{before}");
    let (_, activity) = api.get("/scale-sets/broken/activity?limit=1000").await;
    assert!(
        activity["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["operation"] == "repairs.suspended" && a["result"] == "failed"),
        "no suspension entry"
    );
    // Suspended: no more repairs.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(repairs(&api, "broken").await.len(), before);
    let (_, overview) = api.get("/scale-sets/broken/repairs").await;
    assert!(
        overview["waiting"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("repairs are suspended"),
        "{overview}"
    );
    // A person resumes: the status is cleared and repairs start again.
    let (status, set) = api.post_empty("/scale-sets/broken/repairs/resume").await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["repairs"]["consecutive_failures"], 0);
    assert!(set["repairs"]["suspended_at"].is_null());
    wait_until("repairs run again", Duration::from_secs(30), || async {
        repairs(&api, "broken").await.len() > before
    })
    .await;
    let (status, _) = api.post_empty("/scale-sets/nope/repairs/resume").await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn a_zone_outage_is_replaced_in_the_healthy_zones() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set(
        "web",
        3,
        json!({"zone_balance": false, "health_probe": fast_probe("/health", 1),
               "automatic_repairs": {"enabled": true, "grace_period_seconds": 0,
                                     "repair_action": "restart"}}),
    )
    .await;
    api.wait_running("web", 3).await;
    let (status, body) = api
        .post("/backend/faults", json!({"kind": "zone_down", "zone": "2"}))
        .await;
    assert_eq!(status, 204, "{body}");
    wait_until(
        "three running instances outside zone 2",
        Duration::from_secs(60),
        || async {
            let items = api.instances("web").await;
            let serving: Vec<&Value> = items
                .iter()
                .filter(|i| {
                    i["power_state"] == "running"
                        && i["health_state"] == "healthy"
                        && i["provisioning_state"] == "succeeded"
                })
                .collect();
            serving.len() == 3 && serving.iter().all(|i| i["zone"] != "2")
        },
    )
    .await;
    let done = repairs(&api, "web").await;
    assert!(
        done.iter()
            .any(|a| a["details"]["reason"] == "zone 2 is down"
                && a["details"]["action"] == "replace"),
        "{done:?}"
    );
    let (status, _) = api
        .post("/backend/faults", json!({"kind": "zone_up", "zone": "2"}))
        .await;
    assert_eq!(status, 204);
    // Back in balance: one instance per zone again, never fewer than three serving.
    wait_until("one instance per zone", Duration::from_secs(60), || async {
        let items = api.instances("web").await;
        let serving: Vec<&Value> = items
            .iter()
            .filter(|i| i["power_state"] == "running" && i["health_state"] == "healthy")
            .collect();
        assert!(
            serving.len() >= 2,
            "capacity fell during the rebalance: {items:?}"
        );
        let zones: std::collections::BTreeSet<&str> = serving
            .iter()
            .map(|i| i["zone"].as_str().unwrap())
            .collect();
        items.len() == 3 && serving.len() == 3 && zones.len() == 3
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn path_rules_send_a_prefix_to_another_scale_sets_pool() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set("api", 1, json!({})).await;
    let port = free_port();
    api.create_set(
        "web",
        1,
        json!({"load_balancer": {"frontends": [{"name": "web", "protocol": "http", "port": port,
               "rules": [{"path_prefix": "/health", "scale_set": "api"}]}]}}),
    )
    .await;
    api.wait_healthy("api", 1).await;
    api.wait_healthy("web", 1).await;
    let http = client();
    wait_until("the frontend serves web", Duration::from_secs(10), || {
        let http = http.clone();
        async move { served_by(&http, port).await.as_deref() == Ok("web_0") }
    })
    .await;
    for _ in 0..5 {
        let resp = http
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let (_, lb) = api.get("/scale-sets/web/load-balancer").await;
    let requests = |pool: &str| -> u64 {
        lb["stats"][0]["backends"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["pool"] == pool)
            .map(|b| b["requests"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(requests("api"), 5, "{lb}");
    assert!(requests("web") >= 1, "{lb}");
    server.stop().await;
}

#[tokio::test]
async fn tcp_frontend_spreads_connections() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let port = free_port();
    api.create_set(
        "raw",
        3,
        json!({"load_balancer": {"frontends": [{"name": "tcp", "protocol": "tcp", "port": port}]}}),
    )
    .await;
    api.wait_healthy("raw", 3).await;
    // One HTTP exchange per TCP connection, spoken by hand through the L4 frontend.
    let once = || async move {
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: raw\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut text = String::new();
        tcp.read_to_string(&mut text).await.ok()?;
        let body = text.split("\r\n\r\n").nth(1)?;
        let v: Value = serde_json::from_str(body).ok()?;
        v["instance_id"].as_str().map(str::to_string)
    };
    wait_until(
        "the pool has three members",
        Duration::from_secs(10),
        || async {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..3 {
                seen.extend(once().await);
            }
            seen.len() == 3
        },
    )
    .await;
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..9 {
        *by.entry(once().await.expect("an answer through the TCP frontend"))
            .or_default() += 1;
    }
    assert_eq!(
        by.values().copied().collect::<Vec<_>>(),
        [3, 3, 3],
        "{by:?}"
    );
    let (_, lb) = api.get("/scale-sets/raw/load-balancer").await;
    assert_eq!(lb["stats"][0]["protocol"], "tcp");
    assert!(lb["stats"][0]["bytes_out"].as_u64().unwrap() > 0, "{lb}");
    server.stop().await;
}

/// A member's address is its host's, with a port forwarded to the model's app port: a
/// frontend or a probe may aim at that port only. `backend_port` equal to the app port
/// reaches the app (it once answered 502 to everything); any other port — which would be
/// one of the *host's* services — is refused naming the field. A set stored before the rule
/// still loads, says what to fix, and still reaches only its app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frontends_and_probes_reach_the_app_port_and_never_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let port = free_port();
    api.create_set(
        "web",
        2,
        json!({"health_probe": fast_probe("/health", 2),
               "load_balancer": {"frontends": [{"name": "web", "protocol": "http",
                                                "port": port, "backend_port": 80}]}}),
    )
    .await;
    api.wait_running("web", 2).await;
    wait_health(&api, "web", &[("web_0", "healthy"), ("web_1", "healthy")]).await;
    let http = client();
    wait_until("the frontend serves", Duration::from_secs(10), || {
        let http = http.clone();
        async move { spread(&http, port, 2).await.len() == 2 }
    })
    .await;

    // A host service the frontend or a probe could otherwise reach.
    let host_service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = host_service.local_addr().unwrap().port();
    let base = |extra: Value| {
        let mut body = json!({"name": "db", "model": {"image": "debian-12", "vcpus": 1,
            "memory_mib": 512, "disk_gib": 10, "user_data": null, "app_port": 80},
            "capacity": 1});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    for (extra, field) in [
        (
            json!({"load_balancer": {"frontends": [{"name": "db", "protocol": "tcp",
                   "port": free_port(), "backend_port": host_port}]}}),
            "load_balancer.frontends[0].backend_port",
        ),
        (
            json!({"health_probe": {"protocol": "tcp", "port": host_port}}),
            "health_probe.port",
        ),
    ] {
        let (status, problem) = api.post("/scale-sets", base(extra)).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("only the model's app_port (80)"),
            "{problem}"
        );
    }
    let (status, problem) = api
        .patch(
            "/scale-sets/web",
            json!({"load_balancer": {"frontends": [{"name": "web", "protocol": "http",
                   "port": port, "backend_port": host_port}]}}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(api.get_status("/scale-sets/db").await, 404);
    server.stop().await;

    // A set stored before the rule, aiming at the host's service: it loads, the activity
    // log says what to fix, and traffic and probes still reach only the app.
    {
        let store = flotilla_store::connect(&format!(
            "sqlite:{}",
            dir.path().join("flotilla.db").display()
        ))
        .await
        .unwrap();
        let mut set = store.get_scale_set("web").await.unwrap().unwrap();
        set.spec.load_balancer.as_mut().unwrap().frontends[0].backend_port = Some(host_port);
        set.spec.health_probe.as_mut().unwrap().port = host_port;
        store
            .update_scale_set(&set, "an older version")
            .await
            .unwrap();
    }
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let (_, log) = api.get("/activity?operation=scale_set.warning").await;
    let warning = log["items"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        warning.contains("backend_port") && warning.contains("health_probe.port"),
        "{log}"
    );
    wait_until("the frontend serves", Duration::from_secs(15), || {
        let http = http.clone();
        async move { spread(&http, port, 2).await.len() == 2 }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in api.instances("web").await {
        assert_eq!(i["health_state"], "healthy", "probed on its app port: {i}");
    }
    // The host's service never saw a connection.
    host_service.set_nonblocking(true).unwrap();
    assert!(
        host_service.accept().is_err(),
        "nothing reached the host's own port {host_port}"
    );
    server.stop().await;
}
