//! Lifecycle hooks and busy leases end to end on the mock: a launching hook holds an
//! instance out of the load balancer until it is completed; every removal path (scale-in,
//! a person's delete, a repair, a rollout's reimage, the set's deletion) drains the
//! instance, keeps its VM while a terminating hook waits and removes it once completed;
//! heartbeats extend a wait and timeouts apply the default result; a busy instance is
//! passed over by scale-in; notices reach the hooks' webhooks signed; a control plane
//! killed during a wait resumes it with what remains of its timeout.

use std::collections::BTreeSet;
use std::time::Duration;

use flotilla_tests::{ADMIN, ADMIN_PASSWORD, Api, TestServer, free_port, spawn_serve, wait_until};
use serde_json::{Value, json};

use super::autoscale::{hmac_hex, receiver};
use super::health::{fast_probe, fault};

pub(super) fn frontend(port: u16) -> Value {
    json!({"frontends": [{"name": "web", "protocol": "http", "port": port, "backend_port": 80}]})
}

pub(super) fn hook(name: &str, transition: &str, timeout: u32, default: &str) -> Value {
    json!({"name": name, "transition": transition, "heartbeat_timeout_seconds": timeout,
           "default_result": default})
}

async fn instance(api: &Api, set: &str, id: &str) -> Option<Value> {
    api.instances(set).await.into_iter().find(|i| i["id"] == id)
}

/// Waits until instance `id` waits on `hook` (with its clock started), and returns it.
async fn waiting(api: &Api, set: &str, id: &str, state: &str, hook: &str) -> Value {
    wait_until(
        &format!("{id} is {state} on {hook}"),
        Duration::from_secs(30),
        || async {
            instance(api, set, id).await.is_some_and(|i| {
                i["lifecycle_state"] == state
                    && i["lifecycle_hook"] == hook
                    && i["lifecycle_deadline"].is_string()
            })
        },
    )
    .await;
    instance(api, set, id).await.unwrap()
}

/// Makes model version 2 of `web` (another image).
async fn new_model(api: &Api) {
    let (status, body) = api
        .put(
            "/scale-sets/web/model",
            json!({"image": "ubuntu-24.04", "vcpus": 2, "memory_mib": 2048, "disk_gib": 10,
                   "user_data": null, "app_port": 80}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Waits until instance `id` of `web` waits on no hook.
async fn in_service(api: &Api, id: &str, what: &str, timeout: Duration) {
    wait_until(what, timeout, || async {
        instance(api, "web", id)
            .await
            .is_some_and(|i| i["lifecycle_state"].is_null())
    })
    .await;
}

pub(super) async fn complete(
    api: &Api,
    set: &str,
    id: &str,
    hook: &str,
    result: &str,
) -> (u16, Value) {
    api.post(
        &format!("/scale-sets/{set}/instances/{id}/lifecycle/{hook}/complete"),
        json!({ "result": result }),
    )
    .await
}

pub(super) async fn vm_ids(api: &Api) -> BTreeSet<String> {
    let (status, vms) = api.get("/backend/vms").await;
    assert_eq!(status, 200, "{vms}");
    vms["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

/// The instances that answered `n` requests through the frontend.
pub(super) async fn served(port: u16, n: usize) -> BTreeSet<String> {
    answered(port, n).await.unwrap_or_else(|e| panic!("{e}"))
}

/// The instances that answered `n` requests through the frontend, or the first refusal
/// (a pool the load balancer has not filled yet answers 503).
pub(super) async fn answered(port: u16, n: usize) -> Result<BTreeSet<String>, String> {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut ids = BTreeSet::new();
    for _ in 0..n {
        let response = http
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .expect("the frontend answers");
        if !response.status().is_success() {
            return Err(format!("the frontend answered {}", response.status()));
        }
        let body: Value = response.json().await.unwrap();
        ids.insert(body["instance_id"].as_str().unwrap().to_string());
    }
    Ok(ids)
}

/// Which instance is `deleting` and held by `hook`, once one is.
async fn held_by(api: &Api, set: &str, hook: &str) -> Value {
    let find = || async {
        api.instances(set).await.into_iter().find(|i| {
            i["lifecycle_state"] == "terminating_wait"
                && i["lifecycle_hook"] == hook
                && i["lifecycle_deadline"].is_string()
        })
    };
    wait_until(
        &format!("an instance of {set} waits on {hook}"),
        Duration::from_secs(30),
        || async { find().await.is_some() },
    )
    .await;
    find().await.unwrap()
}

pub(super) async fn gone(api: &Api, set: &str, id: &str) {
    wait_until(
        &format!("{id} is removed"),
        Duration::from_secs(30),
        || async { instance(api, set, id).await.is_none() && !vm_ids(api).await.contains(id) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_hook_holds_an_instance_out_of_the_load_balancer_until_completed() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), &["--webhook-allow", "127.0.0.0/8"]).await;
    let api = server.api();
    let hooks = receiver(vec![]).await;
    let url = format!("{}/t0ken-in-the-path", hooks.url);
    let port = free_port();
    // The event stream tells of the wait too.
    let mut events = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/api/v1/events?scale_set=web", server.url))
        .bearer_auth(server.token.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let mut register = hook("register", "launching", 600, "abandon");
    register["notification_webhooks"] = json!([{"url": url, "secret": "s3cret"}]);
    api.create_set(
        "web",
        1,
        json!({"load_balancer": frontend(port), "lifecycle_hooks": [register]}),
    )
    .await;
    let web0 = waiting(&api, "web", "web_0", "launching_wait", "register").await;
    assert_eq!(web0["provisioning_state"], "succeeded");
    assert_eq!(web0["power_state"], "running");
    let sse = tokio::time::timeout(Duration::from_secs(20), async move {
        let mut text = String::new();
        while let Ok(Some(chunk)) = events.chunk().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("event: lifecycle") && text.contains("\"event\":\"wait\"") {
                break;
            }
        }
        text
    })
    .await
    .expect("a lifecycle event within 20 s");
    assert!(sse.contains("\"hook\":\"register\""), "{sse}");
    // Held out of the load balancer: nobody serves.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let answer = http
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        503,
        "no member serves while the hook holds it"
    );
    // The hook's webhook was told, signed; its URL and secret are never read back.
    wait_until("the webhook is told", Duration::from_secs(20), || async {
        !hooks.requests.lock().unwrap().is_empty()
    })
    .await;
    let (head, body) = hooks.requests.lock().unwrap()[0].clone();
    assert!(head.contains("X-Flotilla-Event: lifecycle.wait"), "{head}");
    assert!(head.contains("X-Flotilla-Instance: web_0"), "{head}");
    let signature = head
        .lines()
        .find_map(|l| l.strip_prefix("X-Flotilla-Signature: sha256="))
        .expect("signed");
    assert_eq!(signature, hmac_hex("s3cret", &body));
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["notice"]["instance"], "web_0");
    assert_eq!(payload["notice"]["hook"], "register");
    assert_eq!(payload["notice"]["transition"], "launching");
    for path in ["/scale-sets/web", "/activity?scale_set=web&limit=100"] {
        let (_, shown) = api.get(path).await;
        let text = shown.to_string();
        assert!(
            !text.contains("t0ken") && !text.contains("s3cret"),
            "{path}: {text}"
        );
    }
    // A Reader may not complete it; the wrong hook is refused naming the right one.
    let reader = server.api_as("rita", "Reader", None).await;
    let (status, _) = complete(&reader, "web", "web_0", "register", "continue").await;
    assert_eq!(status, 403);
    let (status, body) = complete(&api, "web", "web_0", "other", "continue").await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("register"), "{body}");
    let (status, body) = complete(&api, "web", "web_0", "register", "maybe").await;
    assert_eq!(status, 422, "{body}");
    // Completed: it serves.
    let (status, body) = complete(&api, "web", "web_0", "register", "continue").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["lifecycle_state"].is_null(), "{body}");
    wait_until("web_0 serves", Duration::from_secs(20), || async {
        http.get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    let (_, log) = api
        .get("/activity?scale_set=web&operation=instance.lifecycle.complete")
        .await;
    assert_eq!(log["items"][0]["target"], "web_0", "{log}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_removal_path_drains_then_waits_for_the_terminating_hook() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let port = free_port();
    api.create_set(
        "web",
        4,
        json!({"load_balancer": frontend(port),
               "health_probe": fast_probe("/health", 1),
               "automatic_repairs": {"enabled": true, "grace_period_seconds": 0,
                                     "repair_action": "replace"},
               "lifecycle_hooks": [hook("drain", "terminating", 3600, "continue")]}),
    )
    .await;
    api.wait_healthy("web", 4).await;

    // Each path: the instance leaves the load balancer, keeps its VM while the hook waits,
    // and goes once the hook is completed.
    let check_held = |victim: Value| {
        let api = &api;
        async move {
            let id = victim["id"].as_str().unwrap().to_string();
            assert_eq!(victim["provisioning_state"], "deleting", "{victim}");
            assert!(vm_ids(api).await.contains(&id), "{id}'s VM is kept");
            assert!(
                !served(port, 12).await.contains(&id),
                "{id} is drained: no request reaches it"
            );
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let still = instance(api, "web", &id).await.expect("still there");
            assert_eq!(still["lifecycle_state"], "terminating_wait");
            let (status, body) = complete(api, "web", &id, "drain", "continue").await;
            assert_eq!(status, 200, "{body}");
            gone(api, "web", &id).await;
            id
        }
    };

    // 1. Scale-in.
    let (status, body) = api
        .put("/scale-sets/web/capacity", json!({"capacity": 3}))
        .await;
    assert_eq!(status, 200, "{body}");
    let victim = held_by(&api, "web", "drain").await;
    check_held(victim).await;
    api.wait_healthy("web", 3).await;

    // 2. A person's delete.
    let (status, body) = api
        .post_empty("/scale-sets/web/instances/web_1/delete")
        .await;
    assert_eq!(status, 202, "{body}");
    let victim = waiting(&api, "web", "web_1", "terminating_wait", "drain").await;
    check_held(victim).await;
    api.wait_healthy("web", 2).await;

    // 3. A repair (replace): the replacement is created while the old one waits.
    let doomed = api.instances("web").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    fault(&api, "unhealthy", &doomed).await;
    let victim = waiting(&api, "web", &doomed, "terminating_wait", "drain").await;
    wait_until(
        "the replacement is created",
        Duration::from_secs(30),
        || async { api.instances("web").await.len() == 3 },
    )
    .await;
    check_held(victim).await;
    api.wait_healthy("web", 2).await;

    // 4. A rollout's reimage (a manual upgrade of one instance to the new model): the
    //    reimage waits for the hook, then runs.
    new_model(&api).await;
    let target = api.instances("web").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = api
        .post("/scale-sets/web/rollouts", json!({"instances": [target]}))
        .await;
    assert_eq!(status, 201, "{body}");
    let held = waiting(&api, "web", &target, "terminating_wait", "drain").await;
    assert_eq!(held["provisioning_state"], "updating");
    assert!(!served(port, 12).await.contains(&target), "drained first");
    let (status, body) = complete(&api, "web", &target, "drain", "continue").await;
    assert_eq!(status, 200, "{body}");
    wait_until("the reimage ran", Duration::from_secs(30), || async {
        instance(&api, "web", &target).await.is_some_and(|i| {
            i["provisioning_state"] == "succeeded"
                && i["model_version"] == 2
                && i["lifecycle_state"].is_null()
                && i["health_state"] == "healthy"
        })
    })
    .await;

    // 5. Deleting the set: every instance waits; the set goes once each is completed.
    let (status, body) = api.delete("/scale-sets/web").await;
    assert_eq!(status, 202, "{body}");
    wait_until("both wait", Duration::from_secs(30), || async {
        let items = api.instances("web").await;
        items.len() == 2
            && items
                .iter()
                .all(|i| i["lifecycle_state"] == "terminating_wait")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(vm_ids(&api).await.len(), 2, "the VMs are kept meanwhile");
    for i in api.instances("web").await {
        let id = i["id"].as_str().unwrap();
        let (status, body) = complete(&api, "web", id, "drain", "abandon").await;
        assert_eq!(status, 200, "{body}");
    }
    wait_until("the set is gone", Duration::from_secs(30), || async {
        api.get_status("/scale-sets/web").await == 404
    })
    .await;
    assert!(vm_ids(&api).await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_extend_a_wait_and_the_timeout_applies_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set(
        "web",
        2,
        json!({"lifecycle_hooks": [hook("slow", "launching", 30, "continue")]}),
    )
    .await;
    let first = waiting(&api, "web", "web_0", "launching_wait", "slow").await;
    let deadline = |i: &Value| {
        chrono::DateTime::parse_from_rfc3339(i["lifecycle_deadline"].as_str().unwrap()).unwrap()
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (status, beat) = api
        .post_empty("/scale-sets/web/instances/web_0/lifecycle/slow/heartbeat")
        .await;
    assert_eq!(status, 200, "{beat}");
    let moved = (deadline(&beat) - deadline(&first)).num_seconds();
    assert!((4..=7).contains(&moved), "the deadline moved by {moved} s");
    assert!(beat["lifecycle_limit"].is_string());
    let (status, _) = api
        .post_empty("/scale-sets/web/instances/web_0/lifecycle/other/heartbeat")
        .await;
    assert_eq!(status, 409);
    // web_1 times out first (continue: it serves), web_0 about five seconds later.
    in_service(
        &api,
        "web_1",
        "web_1 times out into service",
        Duration::from_secs(45),
    )
    .await;
    let web0 = instance(&api, "web", "web_0").await.unwrap();
    assert_eq!(
        web0["lifecycle_state"], "launching_wait",
        "extended: {web0}"
    );
    in_service(
        &api,
        "web_0",
        "web_0 times out too",
        Duration::from_secs(20),
    )
    .await;
    let (_, log) = api
        .get("/activity?scale_set=web&operation=lifecycle.timed_out")
        .await;
    assert_eq!(log["items"].as_array().unwrap().len(), 2, "{log}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_instance_is_skipped_by_scale_in_but_not_by_a_person() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    // Hooks are checked by field, their webhooks as autoscale's are: a hook cannot be
    // made into a request to the host's network or a cloud's metadata service.
    let bad = json!({"name": "bad", "model": {"image": "debian-12", "vcpus": 2,
        "memory_mib": 2048, "disk_gib": 10, "user_data": null, "app_port": 80},
        "capacity": 1, "zones": ["1"],
        "lifecycle_hooks": [
            {"name": "x", "transition": "launching", "heartbeat_timeout_seconds": 10},
            {"name": "y", "transition": "terminating", "notification_webhooks":
                [{"url": "http://169.254.169.254/latest/meta-data/", "secret": "s"}]}]});
    let (status, body) = api.post("/scale-sets", bad).await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "lifecycle_hooks[0].heartbeat_timeout_seconds",
            "lifecycle_hooks[1].notification_webhooks[0].url"
        ],
        "{body}"
    );
    assert_eq!(
        api.get_status("/scale-sets/bad").await,
        404,
        "nothing was made"
    );
    api.create_set("web", 3, json!({})).await;
    api.wait_healthy("web", 3).await;
    // The default rule would take web_2 (zone 3, highest id) first.
    let (status, body) = api
        .put(
            "/scale-sets/web/instances/web_2/busy",
            json!({"seconds": 600}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["busy_until"].is_string());
    for bad in [json!({"seconds": 3601}), json!({"seconds": -1}), json!({})] {
        let (status, body) = api
            .put("/scale-sets/web/instances/web_2/busy", bad.clone())
            .await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let reader = server.api_as("rita", "Reader", None).await;
    let (status, _) = reader
        .put(
            "/scale-sets/web/instances/web_2/busy",
            json!({"seconds": 1}),
        )
        .await;
    assert_eq!(status, 403);
    api.put("/scale-sets/web/capacity", json!({"capacity": 1}))
        .await;
    let left = api.wait_healthy("web", 1).await;
    assert_eq!(left[0]["id"], "web_2", "the busy one stays");
    // A person's delete does not wait for the lease.
    let (status, body) = api
        .post_empty("/scale-sets/web/instances/web_2/delete")
        .await;
    assert_eq!(status, 202, "{body}");
    gone(&api, "web", "web_2").await;
    server.stop().await;
}

/// Starts `flotilla serve` on `dir` and `port` (mock operations taking `mock_latency`) and
/// signs in.
pub(super) async fn serve(
    dir: &std::path::Path,
    port: u16,
    mock_latency: &str,
) -> (std::process::Child, Api) {
    let child = spawn_serve(dir, port, mock_latency);
    let url = format!("http://127.0.0.1:{port}");
    wait_until("the server is up", Duration::from_secs(30), || async {
        Api::new(&url).get_status("/readyz").await == 200
    })
    .await;
    (child, Api::signed_in(&url, ADMIN, ADMIN_PASSWORD).await)
}

pub(super) fn kill(mut child: std::process::Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_survives_a_kill_with_what_remains_of_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (child, api) = serve(dir.path(), port, "0").await;
    api.create_set(
        "web",
        1,
        json!({"lifecycle_hooks": [hook("warm", "launching", 30, "continue"),
                                   hook("drain", "terminating", 3600, "continue")]}),
    )
    .await;
    let before = waiting(&api, "web", "web_0", "launching_wait", "warm").await;
    let deadline =
        chrono::DateTime::parse_from_rfc3339(before["lifecycle_deadline"].as_str().unwrap())
            .unwrap();
    kill(child);
    let (child, api) = serve(dir.path(), port, "0").await;
    let after = instance(&api, "web", "web_0").await.unwrap();
    assert_eq!(after["lifecycle_state"], "launching_wait");
    assert_eq!(after["lifecycle_deadline"], before["lifecycle_deadline"]);
    // The timeout applies at the deadline set before the kill, not a whole timeout later.
    in_service(
        &api,
        "web_0",
        "the launch wait times out",
        Duration::from_secs(45),
    )
    .await;
    let late = (chrono::Utc::now() - deadline.with_timezone(&chrono::Utc)).num_seconds();
    assert!(late <= 5, "timed out {late} s after its deadline");

    // A terminating wait keeps its VM across a kill, and goes on once completed.
    api.put("/scale-sets/web/capacity", json!({"capacity": 0}))
        .await;
    let held = waiting(&api, "web", "web_0", "terminating_wait", "drain").await;
    kill(child);
    let (child, api) = serve(dir.path(), port, "0").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = instance(&api, "web", "web_0").await.expect("still waiting");
    assert_eq!(after["lifecycle_state"], "terminating_wait");
    assert_eq!(after["lifecycle_deadline"], held["lifecycle_deadline"]);
    assert!(vm_ids(&api).await.contains("web_0"));
    let (status, body) = complete(&api, "web", "web_0", "drain", "continue").await;
    assert_eq!(status, 200, "{body}");
    gone(&api, "web", "web_0").await;
    kill(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_rebalance_and_a_surge_rollout_wait_for_the_terminating_hook_too() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let (status, body) = api
        .post("/backend/faults", json!({"kind": "zone_down", "zone": "2"}))
        .await;
    assert_eq!(status, 204, "{body}");
    api.create_set(
        "web",
        3,
        json!({"lifecycle_hooks": [hook("drain", "terminating", 3600, "continue")]}),
    )
    .await;
    let placed = api.wait_running("web", 3).await;
    assert!(placed.iter().all(|i| i["zone"] != "2"), "{placed:?}");
    let (status, _) = api
        .post("/backend/faults", json!({"kind": "zone_up", "zone": "2"}))
        .await;
    assert_eq!(status, 204);
    // The rebalance adds one in zone 2, then removes one from the fullest zone: that one
    // waits on the hook with its VM kept, the new one serving meanwhile.
    let victim = held_by(&api, "web", "drain").await;
    let zones = flotilla_tests::count_by(&placed, "zone");
    assert_eq!(zones[victim["zone"].as_str().unwrap()], 2, "{victim}");
    let items = api.instances("web").await;
    assert!(items.iter().any(|i| i["zone"] == "2"), "{items:?}");
    let id = victim["id"].as_str().unwrap();
    let (status, body) = complete(&api, "web", id, "drain", "continue").await;
    assert_eq!(status, 200, "{body}");
    gone(&api, "web", id).await;
    let items = api.wait_healthy("web", 3).await;
    assert_eq!(flotilla_tests::count_by(&items, "zone").len(), 3);

    // A rolling upgrade with surge: each replaced instance waits on the hook once its
    // replacement serves.
    let (status, body) = api
        .patch(
            "/scale-sets/web",
            json!({"health_probe": fast_probe("/health", 1),
                   "upgrade_policy": {"mode": "rolling", "rolling": {
                       "max_batch_instance_percent": 50, "max_unhealthy_instance_percent": 50,
                       "max_unhealthy_upgraded_instance_percent": 50, "max_surge": true}}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    new_model(&api).await;
    let old: BTreeSet<String> = items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    let mut completed = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let items = api.instances("web").await;
        for i in &items {
            let id = i["id"].as_str().unwrap();
            if i["lifecycle_state"] == "terminating_wait" && i["lifecycle_deadline"].is_string() {
                assert!(old.contains(id), "only the old instances leave: {i}");
                assert!(vm_ids(&api).await.contains(id));
                let (status, body) = complete(&api, "web", id, "drain", "continue").await;
                assert_eq!(status, 200, "{body}");
                completed.insert(id.to_string());
            }
        }
        let (_, rollouts) = api.get("/scale-sets/web/rollouts").await;
        if rollouts["items"][0]["state"] == "completed" && completed.len() == old.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rollout did not complete: {rollouts}; completed {completed:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(completed, old, "every replaced instance waited on the hook");
    let items = api.wait_healthy("web", 3).await;
    assert!(items.iter().all(|i| i["model_version"] == 2), "{items:?}");
    server.stop().await;
}
