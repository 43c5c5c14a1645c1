//! Model versions and rollouts end to end over HTTP: a rolling upgrade under traffic through
//! a real load balancer frontend, a bad release that rolls itself back, surge, pause,
//! resume and the canary, manual upgrades, a control plane killed mid-rollout, and bad
//! input refused whole.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use flotilla_tests::{
    ADMIN, ADMIN_PASSWORD, Api, TestServer, free_port, instance_root, spawn_serve, wait_until,
};
use serde_json::{Value, json};

/// A probe every 2 s that flips after one result.
fn probe() -> Value {
    json!({"protocol": "http", "port": 80, "path": "/health", "interval_seconds": 2,
           "timeout_seconds": 1, "healthy_threshold": 1, "unhealthy_threshold": 1})
}

fn model(image: &str, user_data: Option<&str>) -> Value {
    json!({"image": image, "vcpus": 2, "memory_mib": 2048, "disk_gib": 10,
           "user_data": user_data, "app_port": 80})
}

fn rolling(extra: Value) -> Value {
    let mut rolling = json!({"max_batch_instance_percent": 20,
        "max_unhealthy_instance_percent": 20, "max_unhealthy_upgraded_instance_percent": 20});
    if let (Some(r), Some(e)) = (rolling.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            r.insert(k.clone(), v.clone());
        }
    }
    json!({"mode": "rolling", "rolling": rolling})
}

async fn rollouts(api: &Api, set: &str) -> Vec<Value> {
    let (status, body) = api.get(&format!("/scale-sets/{set}/rollouts")).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

/// Waits until rollout `id` of `set` is in `state`; answers it.
async fn wait_state(api: &Api, set: &str, id: i64, state: &str, timeout: Duration) -> Value {
    wait_until(
        &format!("rollout {id} of {set} is {state}"),
        timeout,
        || async {
            let (_, r) = api.get(&format!("/scale-sets/{set}/rollouts/{id}")).await;
            r["state"] == state
        },
    )
    .await;
    api.get(&format!("/scale-sets/{set}/rollouts/{id}")).await.1
}

fn versions(items: &[Value]) -> Vec<u64> {
    items
        .iter()
        .map(|i| i["model_version"].as_u64().unwrap())
        .collect()
}

/// Members of the set's frontends the load balancer sends new requests to.
pub(super) async fn serving(api: &Api, set: &str) -> usize {
    let (_, lb) = api.get(&format!("/scale-sets/{set}/load-balancer")).await;
    let ids: BTreeSet<String> = lb["stats"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["backends"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["state"] == "serving")
        .map(|b| b["id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.len()
}

/// Traffic through a frontend and a sampler of its pool, until stopped.
pub(super) struct Watch {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    min_serving: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Watch {
    pub(super) fn start(api: &Api, set: &str, port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let min_serving = Arc::new(AtomicU64::new(u64::MAX));
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let answer = http.get(format!("http://127.0.0.1:{port}/")).send().await;
                    match answer {
                        Ok(r) if r.status().is_success() => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
        let (api, set, stop2, min) = (
            api.clone(),
            set.to_string(),
            stop.clone(),
            min_serving.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop2.load(Ordering::Relaxed) {
                let n = serving(&api, &set).await as u64;
                min.fetch_min(n, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
        Watch {
            stop,
            ok,
            failed,
            min_serving,
            tasks,
        }
    }

    /// Stops; answers (requests answered, requests failed, fewest members serving).
    pub(super) async fn finish(self) -> (u64, u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.min_serving.load(Ordering::Relaxed),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_ten_at_twenty_percent_keeps_eight_serving_without_a_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let port = free_port();
    api.create_set(
        "web",
        10,
        json!({"health_probe": probe(), "upgrade_policy": rolling(json!({})),
               "load_balancer": {"frontends": [{"name": "web", "protocol": "http", "port": port}]}}),
    )
    .await;
    api.wait_healthy("web", 10).await;
    wait_until("the pool holds ten", Duration::from_secs(10), || async {
        serving(&api, "web").await == 10
    })
    .await;

    // The preview: zones of 4, 3 and 3 at 2 per batch, one zone at a time; nothing changes.
    let (status, plan) = api
        .post(
            "/scale-sets/web/rollouts/preview",
            json!({"model": model("ubuntu-24.04", None)}),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    let sizes: Vec<usize> = plan["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["instances"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [2, 2, 2, 1, 2, 1]);
    assert_eq!(plan["batch_size"], 2);
    assert_eq!(plan["changes"]["1"][0]["field"], "image");
    assert!(plan["expected_seconds"].as_u64().unwrap() > 0);
    for b in plan["batches"].as_array().unwrap() {
        let zone = &b["zone"];
        assert!(
            b["instances"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| &i["zone"] == zone && i["action"] == "reimage")
        );
    }
    assert!(rollouts(&api, "web").await.is_empty());
    assert_eq!(versions(&api.instances("web").await), [1; 10]);

    let watch = Watch::start(&api, "web", port);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, set) = api
        .put("/scale-sets/web/model", model("ubuntu-24.04", None))
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["model_version"], 2);
    let started = rollouts(&api, "web").await;
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["kind"], "upgrade");
    assert_eq!(started[0]["target_version"], 2);
    let id = started[0]["id"].as_i64().unwrap();
    let done = wait_state(&api, "web", id, "completed", Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, failed, min_serving) = watch.finish().await;

    assert_eq!(failed, 0, "{ok} answered, {failed} failed");
    assert!(ok > 100, "only {ok} requests");
    assert!(min_serving >= 8, "the pool fell to {min_serving}");
    assert_eq!(done["progress"]["successful"], 10, "{done}");
    assert_eq!(done["percent_done"], 100);
    let gates = done["gates"].as_array().unwrap();
    assert_eq!(gates.iter().filter(|g| g["gate"] == "before").count(), 6);
    assert_eq!(gates.iter().filter(|g| g["gate"] == "after").count(), 6);
    assert!(gates.iter().all(|g| g["passed"] == true), "{gates:?}");
    let items = api.instances("web").await;
    assert_eq!(versions(&items), [2; 10]);
    assert!(items.iter().all(|i| i["latest_model"] == true));
    for i in items.iter().step_by(3) {
        assert_eq!(instance_root(i).await["image"], "ubuntu-24.04");
    }
    let (_, log) = api.get("/activity?scale_set=web&limit=200").await;
    let ops: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["operation"].as_str())
        .collect();
    assert!(
        ops.contains(&"rollout.start") && ops.contains(&"rollout.completed"),
        "{ops:?}"
    );
    // The versions compare field by field.
    let (status, cmp) = api
        .get("/scale-sets/web/model/versions/compare?from=1&to=2")
        .await;
    assert_eq!(status, 200, "{cmp}");
    assert_eq!(
        cmp["changes"],
        json!([{"field": "image", "from": "debian-12", "to": "ubuntu-24.04"}])
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_release_stops_after_the_first_batch_and_rolls_back_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set(
        "app",
        10,
        json!({"health_probe": probe(), "upgrade_policy": rolling(json!({
            "max_unhealthy_upgraded_instance_percent": 10,
            "rollback_failed_instances_on_policy_breach": true,
            "instance_timeout_seconds": 10}))}),
    )
    .await;
    api.wait_healthy("app", 10).await;
    let (status, body) = api
        .put(
            "/scale-sets/app/model",
            model(
                "debian-12",
                Some("#cloud-config\nflotilla-mock: unhealthy\n"),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let first = rollouts(&api, "app").await[0]["id"].as_i64().unwrap();
    let faulted = wait_state(&api, "app", first, "faulted", Duration::from_secs(60)).await;
    // Only the first batch was touched: two failed, the rest never started.
    let steps: Vec<&str> = faulted["instances"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps.iter().filter(|s| **s == "failed").count(),
        2,
        "{steps:?}"
    );
    assert_eq!(
        steps.iter().filter(|s| **s == "pending").count(),
        8,
        "{steps:?}"
    );
    let breach = faulted["gates"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(breach["gate"], "after");
    assert_eq!(breach["passed"], false);
    assert!(
        faulted["message"]
            .as_str()
            .unwrap()
            .contains("rolling back to version 1"),
        "{faulted}"
    );

    // The rollback: version 1's model is the newest version again; the two broken
    // instances are reimaged, the eight others relabelled.
    let back = wait_until(
        "the rollback is linked",
        Duration::from_secs(10),
        || async {
            let (_, r) = api.get(&format!("/scale-sets/app/rollouts/{first}")).await;
            r["rolled_back_by"].is_i64()
        },
    );
    back.await;
    let (_, r) = api.get(&format!("/scale-sets/app/rollouts/{first}")).await;
    let rollback = r["rolled_back_by"].as_i64().unwrap();
    let done = wait_state(&api, "app", rollback, "completed", Duration::from_secs(60)).await;
    assert_eq!(done["kind"], "rollback");
    assert_eq!(done["rollback_of"], first);
    assert_eq!(done["plan"]["relabel"].as_array().unwrap().len(), 8);
    assert_eq!(
        done["plan"]["batches"][0]["instances"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (_, set) = api.get("/scale-sets/app").await;
    assert_eq!(set["model_version"], 3);
    let (_, cmp) = api
        .get("/scale-sets/app/model/versions/compare?from=1&to=3")
        .await;
    assert_eq!(cmp["changes"], json!([]));
    let items = api.wait_healthy("app", 10).await;
    assert_eq!(versions(&items), [3; 10]);
    let (_, log) = api
        .get("/activity?scale_set=app&operation=rollout.faulted")
        .await;
    assert_eq!(log["items"].as_array().unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_creates_replacements_first_and_keeps_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let port = free_port();
    api.create_set(
        "surge",
        4,
        json!({"health_probe": probe(), "zones": ["1"],
               "upgrade_policy": rolling(json!({"max_batch_instance_percent": 50,
                   "max_unhealthy_instance_percent": 50, "max_surge": true})),
               "load_balancer": {"frontends": [{"name": "web", "protocol": "http", "port": port}]}}),
    )
    .await;
    api.wait_healthy("surge", 4).await;
    wait_until("the pool holds four", Duration::from_secs(10), || async {
        serving(&api, "surge").await == 4
    })
    .await;
    let watch = Watch::start(&api, "surge", port);
    let most = Arc::new(AtomicU64::new(0));
    let counting = Arc::new(AtomicBool::new(true));
    let counter = {
        let (api, most, counting) = (api.clone(), most.clone(), counting.clone());
        tokio::spawn(async move {
            while counting.load(Ordering::Relaxed) {
                let n = api.instances("surge").await.len() as u64;
                most.fetch_max(n, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let (status, _) = api
        .put("/scale-sets/surge/model", model("alpine-3.20", None))
        .await;
    assert_eq!(status, 200);
    let id = rollouts(&api, "surge").await[0]["id"].as_i64().unwrap();
    let done = wait_state(&api, "surge", id, "completed", Duration::from_secs(90)).await;
    counting.store(false, Ordering::Relaxed);
    counter.await.unwrap();
    let (ok, failed, min_serving) = watch.finish().await;
    assert_eq!(failed, 0, "{ok} answered");
    assert!(min_serving >= 4, "the pool fell to {min_serving}");
    assert!(most.load(Ordering::Relaxed) <= 6, "at most one batch extra");
    let replaced: Vec<&Value> = done["instances"].as_object().unwrap().values().collect();
    assert!(
        replaced
            .iter()
            .all(|p| p["action"] == "replace" && p["replacement"].is_string())
    );
    let items = api.wait_healthy("surge", 4).await;
    assert_eq!(versions(&items), [2; 4]);
    // New instances, the old ones gone.
    assert!(
        items.iter().all(|i| i["ordinal"].as_u64().unwrap() >= 4),
        "{items:?}"
    );
    assert!(items.iter().all(|i| i["retiring"] == false));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_pause_and_resume_hold_the_rollout_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set(
        "canary",
        5,
        json!({"health_probe": probe(), "zones": ["1"],
               "upgrade_policy": rolling(json!({"canary_instances": 1,
                   "pause_time_between_batches_seconds": 2}))}),
    )
    .await;
    api.wait_healthy("canary", 5).await;
    api.put("/scale-sets/canary/model", model("ubuntu-24.04", None))
        .await;
    let id = rollouts(&api, "canary").await[0]["id"].as_i64().unwrap();
    // The canary batch, then a wait for approval.
    let held = wait_state(&api, "canary", id, "paused", Duration::from_secs(30)).await;
    assert_eq!(held["hold"]["kind"], "approval");
    assert_eq!(held["hold"]["reason"], "canary");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let on_two = versions(&api.instances("canary").await)
        .iter()
        .filter(|v| **v == 2)
        .count();
    assert_eq!(on_two, 1, "only the canary moved");
    // Scale-out meanwhile creates instances on the version being rolled out.
    let (status, body) = api
        .put("/scale-sets/canary/capacity", json!({"capacity": 6}))
        .await;
    assert_eq!(status, 200, "{body}");
    let items = api.wait_healthy("canary", 6).await;
    let newest = items
        .iter()
        .find(|i| i["id"] == "canary_5")
        .expect("the new instance");
    assert_eq!(newest["model_version"], 2);
    let path = format!("/scale-sets/canary/rollouts/{id}");
    let (status, r) = api.post_empty(&format!("{path}/resume")).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["state"], "rolling_forward");
    // A person's pause holds it between batches.
    wait_until(
        "the next batch is done",
        Duration::from_secs(30),
        || async { api.get(&path).await.1["current_batch"].as_u64().unwrap() >= 3 },
    )
    .await;
    let (status, r) = api.post_empty(&format!("{path}/pause")).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["hold"]["kind"], "paused");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let moved = api.get(&path).await.1["progress"]["successful"].clone();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, r) = api.get(&path).await;
    assert_eq!(r["state"], "paused");
    assert_eq!(
        r["progress"]["successful"], moved,
        "nothing moves while paused"
    );
    let (status, _) = api.post_empty(&format!("{path}/resume")).await;
    assert_eq!(status, 200);
    wait_state(&api, "canary", id, "completed", Duration::from_secs(60)).await;
    assert_eq!(versions(&api.instances("canary").await), [2; 6]);
    // An ended rollout takes no more controls.
    let (status, body) = api.post_empty(&format!("{path}/pause")).await;
    assert_eq!(status, 409, "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_mode_upgrades_only_the_chosen_instances() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set("hand", 3, json!({"zones": ["1"]})).await;
    api.wait_healthy("hand", 3).await;
    api.put("/scale-sets/hand/model", model("alpine-3.20", None))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        rollouts(&api, "hand").await.is_empty(),
        "manual: nothing starts"
    );
    let items = api.instances("hand").await;
    assert!(items.iter().all(|i| i["latest_model"] == false));
    let (status, r) = api
        .post(
            "/scale-sets/hand/rollouts",
            json!({"instances": ["hand_1"]}),
        )
        .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["kind"], "manual");
    let id = r["id"].as_i64().unwrap();
    wait_state(&api, "hand", id, "completed", Duration::from_secs(30)).await;
    let items = api.wait_healthy("hand", 3).await;
    assert_eq!(versions(&items), [1, 2, 1]);
    // Nothing left to do for the chosen instance.
    let (status, body) = api
        .post(
            "/scale-sets/hand/rollouts",
            json!({"instances": ["hand_1"]}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    server.stop().await;
}

fn field_errors(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rollout_input_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    // Out of range, batch above the unhealthy limit, checkpoints that do not rise.
    let (status, body) = api
        .post(
            "/scale-sets",
            json!({"name": "bad", "model": model("debian-12", None), "capacity": 1,
                   "health_probe": probe(),
                   "upgrade_policy": {"mode": "rolling", "rolling": {
                       "max_batch_instance_percent": 150, "max_unhealthy_upgraded_instance_percent": 101,
                       "checkpoints": [{"percent": 50}, {"percent": 40}], "instance_timeout_seconds": 1}}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let fields = field_errors(&body);
    for f in [
        "upgrade_policy.rolling.max_batch_instance_percent",
        "upgrade_policy.rolling.max_unhealthy_upgraded_instance_percent",
        "upgrade_policy.rolling.checkpoints[1].percent",
        "upgrade_policy.rolling.instance_timeout_seconds",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
    }
    let (status, _) = api.get("/scale-sets/bad").await;
    assert_eq!(status, 404, "nothing created");

    api.create_set(
        "slow",
        5,
        json!({"health_probe": probe(), "zones": ["1"],
               "upgrade_policy": rolling(json!({"pause_time_between_batches_seconds": 600}))}),
    )
    .await;
    api.wait_healthy("slow", 5).await;
    let (status, body) = api
        .patch(
            "/scale-sets/slow",
            json!({"upgrade_policy": rolling(json!({"max_batch_instance_percent": 50}))}),
        )
        .await;
    assert_eq!(status, 422, "batch above the unhealthy limit: {body}");
    assert_eq!(
        field_errors(&body),
        ["upgrade_policy.rolling.max_batch_instance_percent"]
    );
    api.put("/scale-sets/slow/model", model("ubuntu-24.04", None))
        .await;
    let id = rollouts(&api, "slow").await[0]["id"].as_i64().unwrap();
    wait_until(
        "the first batch is done",
        Duration::from_secs(30),
        || async {
            api.get(&format!("/scale-sets/slow/rollouts/{id}")).await.1["hold"]["kind"] == "between"
        },
    )
    .await;
    // Another rollout, another model, a mode switch: refused while it runs.
    let (status, body) = api.post("/scale-sets/slow/rollouts", json!({})).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = api
        .put("/scale-sets/slow/model", model("alpine-3.20", None))
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = api
        .patch(
            "/scale-sets/slow",
            json!({"upgrade_policy": {"mode": "manual"}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(field_errors(&body), ["upgrade_policy.mode"]);
    // Rolling back to a version that does not exist; an unknown action.
    let path = format!("/scale-sets/slow/rollouts/{id}");
    let (status, body) = api
        .post(&format!("{path}/rollback"), json!({"version": 9}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(field_errors(&body), ["version"]);
    let (status, body) = api.post_empty(&format!("{path}/explode")).await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = api.get("/scale-sets/slow/rollouts/999").await;
    assert_eq!(status, 404);
    let (status, body) = api
        .get("/scale-sets/slow/model/versions/compare?from=1")
        .await;
    assert_eq!(status, 422, "{body}");
    // Nothing changed: still version 2, the rollout still holding.
    let (_, set) = api.get("/scale-sets/slow").await;
    assert_eq!(set["model_version"], 2);
    assert_eq!(set["upgrade_policy"]["mode"], "rolling");
    assert_eq!(rollouts(&api, "slow").await.len(), 1);
    // A manual rollback to version 1 cancels it and restores the old model.
    let (status, back) = api.post_empty(&format!("{path}/rollback")).await;
    assert_eq!(status, 200, "{back}");
    let (_, old) = api.get(&path).await;
    assert_eq!(old["state"], "cancelled");
    let done = wait_state(
        &api,
        "slow",
        back["id"].as_i64().unwrap(),
        "completed",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(done["target_version"], 3);
    assert_eq!(versions(&api.wait_healthy("slow", 5).await), [3; 5]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_rollout_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let api = Api::new(&url);
    let mut child = spawn_serve(dir.path(), port, "300ms");
    wait_until("the server is ready", Duration::from_secs(30), || async {
        api.get_status("/readyz").await == 200
    })
    .await;
    let api = Api::signed_in(&url, ADMIN, ADMIN_PASSWORD).await;
    api.create_set(
        "crash",
        6,
        json!({"health_probe": probe(), "upgrade_policy": rolling(json!({}))}),
    )
    .await;
    api.wait_healthy("crash", 6).await;
    api.put("/scale-sets/crash/model", model("ubuntu-24.04", None))
        .await;
    let id = rollouts(&api, "crash").await[0]["id"].as_i64().unwrap();
    let path = format!("/scale-sets/crash/rollouts/{id}");
    wait_until("two batches are done", Duration::from_secs(60), || async {
        api.get(&path).await.1["current_batch"]
            .as_u64()
            .unwrap_or(0)
            >= 3
    })
    .await;
    child.kill().expect("SIGKILL");
    child.wait().unwrap();

    let mut child = spawn_serve(dir.path(), port, "300ms");
    wait_until("the server is back", Duration::from_secs(30), || async {
        api.get_status("/readyz").await == 200
    })
    .await;
    let done = wait_state(&api, "crash", id, "completed", Duration::from_secs(90)).await;
    assert_eq!(done["progress"]["successful"], 6, "{done}");
    assert_eq!(
        rollouts(&api, "crash").await.len(),
        1,
        "resumed, not started again"
    );
    let items = api.wait_healthy("crash", 6).await;
    assert_eq!(versions(&items), [2; 6]);
    let ids: BTreeSet<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    let (_, vms) = api.get("/backend/vms").await;
    let vm_ids: BTreeSet<&str> = vms["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vm_ids, "no duplicate or orphan");
    for i in &items {
        assert_eq!(instance_root(i).await["model_version"], 2);
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
