//! Warm pools end to end on the mock: the pool is filled to AWS's formula with members
//! prepared (found healthy once) then parked, kept apart from `…/instances` and the load
//! balancer; scale-out takes prepared members first and the pool is refilled; with
//! `reuse_on_scale_in` scaled-in instances return to the pool; a new model refreshes the
//! pool; removing the pool deletes its members; bad settings are refused by field.

use std::collections::BTreeSet;
use std::time::Duration;

use flotilla_tests::{Api, TestServer, free_port, wait_until};

use super::cli::cli;
use super::lifecycle::{answered, frontend};
use serde_json::{Value, json};

async fn pool(api: &Api, set: &str) -> Value {
    let (status, body) = api.get(&format!("/scale-sets/{set}/warm-pool")).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn ids(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until the pool holds exactly `n` members, every one prepared, parked in `state`
/// and on `model_version`; returns them.
async fn prepared(api: &Api, set: &str, n: usize, state: &str, model_version: u64) -> Vec<Value> {
    let ready = |p: &Value| {
        let items = p["items"].as_array().cloned().unwrap_or_default();
        items.len() == n
            && items.iter().all(|i| {
                i["warm_prepared_at"].is_string()
                    && i["warm_pool_state"] == state
                    && i["power_state"] == state
                    && i["model_version"] == model_version
            })
    };
    wait_until(
        &format!("{set}'s warm pool holds {n} members parked {state} on version {model_version}"),
        Duration::from_secs(30),
        || async { ready(&pool(api, set).await) },
    )
    .await;
    pool(api, set).await["items"].as_array().cloned().unwrap()
}

async fn vm_count(api: &Api) -> usize {
    let (status, vms) = api.get("/backend/vms").await;
    assert_eq!(status, 200, "{vms}");
    vms["items"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_fills_to_its_size_scale_out_takes_it_first_and_scale_in_returns_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let port = free_port();
    api.create_set(
        "web",
        2,
        json!({"load_balancer": frontend(port),
               "warm_pool": {"min_size": 1, "max_prepared_capacity": 5, "pool_state": "paused"}}),
    )
    .await;
    // max(1, 5 − 2) = 3 members, apart from the two in service.
    let first = prepared(&api, "web", 3, "paused", 1).await;
    let shown = pool(&api, "web").await;
    assert_eq!(shown["sizing"]["size"], 3, "{shown}");
    assert_eq!(
        shown["explanation"],
        "max(min_size 1, max prepared 5 − capacity 2) = 3"
    );
    let serving = api.wait_healthy("web", 2).await;
    let in_service = ids(&serving);
    let members = ids(&first);
    assert!(
        in_service.is_disjoint(&members),
        "{in_service:?} {members:?}"
    );
    assert!(
        first.iter().all(|m| m["address"].is_null()),
        "parked: no address"
    );
    assert_eq!(vm_count(&api).await, 5);
    // The load balancer sends nothing to the pool: once it follows the two found healthy,
    // they answer every request.
    wait_until("the two serve", Duration::from_secs(20), || async {
        answered(port, 30).await.is_ok_and(|s| s == in_service)
    })
    .await;
    // A person cannot act on a member (but may delete it).
    let member = first[0]["id"].as_str().unwrap();
    let (status, body) = api
        .post_empty(&format!("/scale-sets/web/instances/{member}/restart"))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("warm pool"), "{body}");

    // Scale out 2 → 4: two members go into service; the pool (max(1, 5 − 4) = 1) keeps the
    // third, so nothing new is created.
    let (status, body) = api
        .put("/scale-sets/web/capacity", json!({"capacity": 4}))
        .await;
    assert_eq!(status, 200, "{body}");
    let four = api.wait_healthy("web", 4).await;
    let taken: BTreeSet<String> = ids(&four).difference(&in_service).cloned().collect();
    assert_eq!(taken.len(), 2);
    assert!(taken.is_subset(&members), "{taken:?} came from {members:?}");
    let left = prepared(&api, "web", 1, "paused", 1).await;
    assert!(members.contains(left[0]["id"].as_str().unwrap()));
    assert_eq!(vm_count(&api).await, 5, "taken, not created");
    let (_, activity) = api.get("/activity?scale_set=web&limit=200").await;
    assert!(
        activity.to_string().contains("from the warm pool"),
        "{activity}"
    );
    wait_until("the four serve", Duration::from_secs(20), || async {
        answered(port, 40).await.is_ok_and(|s| s == ids(&four))
    })
    .await;

    // Reuse on scale-in, stopped: 4 → 1 gives a pool of max(1, 5 − 1) = 4: the three
    // victims return to it (stopped) beside the one left; nothing is deleted.
    let (status, body) = api
        .patch(
            "/scale-sets/web",
            json!({"warm_pool": {"min_size": 1, "max_prepared_capacity": 5,
                                 "pool_state": "stopped", "reuse_on_scale_in": true}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api
        .put("/scale-sets/web/capacity", json!({"capacity": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    let returned = prepared(&api, "web", 4, "stopped", 1).await;
    let back = ids(&returned);
    assert_eq!(
        back.intersection(&ids(&four)).count(),
        3,
        "the victims are in the pool: {back:?}"
    );
    assert_eq!(vm_count(&api).await, 5, "reused, not deleted");
    let one = api.wait_healthy("web", 1).await;
    assert!(back.is_disjoint(&ids(&one)));

    // A new model refreshes the pool: every member is replaced on version 2.
    let (status, body) = api
        .put(
            "/scale-sets/web/model",
            json!({"image": "ubuntu-24.04", "vcpus": 2, "memory_mib": 2048, "disk_gib": 10,
                   "user_data": null, "app_port": 80}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let fresh = prepared(&api, "web", 4, "stopped", 2).await;
    assert!(ids(&fresh).is_disjoint(&back));

    // Without the pool its members go.
    let (status, body) = api
        .patch("/scale-sets/web", json!({"warm_pool": null}))
        .await;
    assert_eq!(status, 200, "{body}");
    wait_until("the pool is emptied", Duration::from_secs(30), || async {
        pool(&api, "web").await["items"]
            .as_array()
            .is_some_and(|i| i.is_empty())
            && vm_count(&api).await == 1
    })
    .await;
    assert!(pool(&api, "web").await["sizing"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pool_settings_are_refused_by_field_and_readers_may_only_look() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let body = json!({
        "name": "web",
        "model": {"image": "debian-12", "vcpus": 2, "memory_mib": 2048, "disk_gib": 10, "user_data": null, "app_port": 80},
        "capacity": 1,
        "zones": ["1"],
        "warm_pool": {"min_size": 10001, "max_prepared_capacity": 20000, "pool_state": "frozen"},
    });
    let (status, answer) = api.post("/scale-sets", body.clone()).await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer.to_string().contains("pool_state"), "{answer}");
    let mut body = body;
    body["warm_pool"]["pool_state"] = json!("saved");
    let (status, answer) = api.post("/scale-sets", body).await;
    assert_eq!(status, 422, "{answer}");
    let text = answer.to_string();
    assert!(
        text.contains("warm_pool.min_size") && text.contains("warm_pool.max_prepared_capacity"),
        "{text}"
    );
    let (status, _) = api.get("/scale-sets/web").await;
    assert_eq!(status, 404, "nothing was created");

    api.create_set("web", 1, json!({"warm_pool": {"min_size": 1}}))
        .await;
    let members = prepared(&api, "web", 1, "stopped", 1).await;
    // The CLI shows the arithmetic and the member; the instance list leaves it out.
    let (ok, out, err) = cli(&server, &["instance", "warm-pool", "web"]).await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with("max(min_size 1, capacity 1 − capacity 1) = 1"),
        "{out}"
    );
    let member = members[0]["id"].as_str().unwrap();
    assert!(
        out.lines()
            .any(|l| l.starts_with(member) && l.contains("stopped")),
        "{out}"
    );
    let (ok, out, _) = cli(&server, &["instance", "list", "web"]).await;
    assert!(ok && !out.contains(member), "{out}");
    let reader = server.api_as("rita", "Reader", None).await;
    assert_eq!(
        pool(&reader, "web").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (status, _) = reader
        .patch("/scale-sets/web", json!({"warm_pool": null}))
        .await;
    assert_eq!(status, 403);
    let (status, answer) = api
        .patch("/scale-sets/web", json!({"warm_pool": {"min_size": -1}}))
        .await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer.to_string().contains("min_size"), "{answer}");
    assert_eq!(pool(&api, "web").await["sizing"]["size"], 1, "unchanged");
    let (status, _) = api.get("/scale-sets/nope/warm-pool").await;
    assert_eq!(status, 404);
}
