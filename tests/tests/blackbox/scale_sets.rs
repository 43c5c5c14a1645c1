//! Scale sets end to end over HTTP: placement, scale-in policy, instance actions, restarts,
//! events and the OpenAPI document.

use std::collections::BTreeSet;
use std::time::Duration;

use flotilla_tests::{Api, TestServer, count_by, instance_root, wait_until};
use serde_json::{Value, json};

#[tokio::test]
async fn five_across_three_zones_reach_running_balanced_and_serve_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let set = api.create_set("web", 5, json!({})).await;
    assert_eq!(set["name"], "web");
    assert_eq!(set["capacity"], 5);
    assert_eq!(set["model_version"], 1);

    let items = api.wait_running("web", 5).await;
    let zones = count_by(&items, "zone");
    assert_eq!(
        zones.values().copied().collect::<Vec<_>>(),
        [2, 2, 1],
        "{zones:?}"
    );
    for zone in ["1", "2"] {
        let fds: BTreeSet<u64> = items
            .iter()
            .filter(|i| i["zone"] == zone)
            .map(|i| i["fault_domain"].as_u64().unwrap())
            .collect();
        assert_eq!(
            fds.len(),
            2,
            "zone {zone}'s two instances sit in different fault domains"
        );
    }
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["web_0", "web_1", "web_2", "web_3", "web_4"]);
    for i in &items {
        for field in [
            "id",
            "zone",
            "fault_domain",
            "model_version",
            "latest_model",
            "provisioning_state",
            "power_state",
            "health_state",
            "protect_from_scale_in",
            "protect_from_scale_set_actions",
            "created_at",
            "address",
        ] {
            assert!(i.get(field).is_some(), "instance lacks {field}: {i}");
        }
        assert_eq!(i["latest_model"], true);
        let body = instance_root(i).await;
        assert_eq!(body["instance_id"], i["id"]);
        assert_eq!(body["zone"], i["zone"]);
        assert_eq!(body["model_version"], 1);
    }
    // The activity log recorded the create and the reconcile that carried it out.
    let (_, activity) = api.get("/activity?scale_set=web").await;
    let ops: Vec<&str> = activity["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["operation"].as_str().unwrap())
        .collect();
    assert!(
        ops.contains(&"scale_set.create") && ops.contains(&"reconcile"),
        "{ops:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn scale_in_five_to_two_newest_vm_spares_protected() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set(
        "api",
        5,
        json!({"scale_in_policy": {"rules": ["newest_vm"]}}),
    )
    .await;
    api.wait_running("api", 5).await;
    // web_4 is the newest; protect it from scale-in.
    let (status, i) = api
        .put(
            "/scale-sets/api/instances/api_4/protection",
            json!({"protect_from_scale_in": true}),
        )
        .await;
    assert_eq!(status, 200, "{i}");
    assert_eq!(i["protect_from_scale_in"], true);

    let (status, set) = api
        .put("/scale-sets/api/capacity", json!({"capacity": 2}))
        .await;
    assert_eq!(status, 200, "{set}");
    let items = api.wait_running("api", 2).await;
    let ids: BTreeSet<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    // Zone balance first (zones 1 and 2 hold two each), newest first within it, never api_4:
    // api_3 (zone 1), api_1 (zone 2 still holds two), then api_2; api_0 and api_4 stay.
    assert_eq!(ids, BTreeSet::from(["api_0", "api_4"]));
    let (_, vms) = api.get("/backend/vms").await;
    let vm_ids: BTreeSet<&str> = vms["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        vm_ids, ids,
        "the backend holds exactly the remaining instances"
    );
    server.stop().await;
}

#[tokio::test]
async fn instance_actions_and_wrong_states() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set("ops", 3, json!({})).await;
    api.wait_running("ops", 3).await;

    let (status, i) = api.post_empty("/scale-sets/ops/instances/ops_0/stop").await;
    assert_eq!(status, 202, "{i}");
    assert_eq!(i["desired_power"], "stopped");
    wait_until("ops_0 stopped", Duration::from_secs(20), || async {
        let (_, i) = api.get("/scale-sets/ops/instances/ops_0").await;
        i["power_state"] == "stopped"
            && i["provisioning_state"] == "succeeded"
            && i["address"].is_null()
    })
    .await;
    // Restarting a stopped instance is refused and changes nothing.
    let (status, problem) = api
        .post_empty("/scale-sets/ops/instances/ops_0/restart")
        .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("start it instead"),
        "{problem}"
    );
    let (_, i) = api.get("/scale-sets/ops/instances/ops_0").await;
    assert_eq!(i["power_state"], "stopped");

    let (status, answer) = api
        .post_empty("/scale-sets/ops/instances/ops_0/start")
        .await;
    assert_eq!(status, 202, "{answer}");
    let (status, answer) = api
        .post_empty("/scale-sets/ops/instances/ops_1/restart")
        .await;
    assert_eq!(status, 202, "{answer}");
    let (status, answer) = api
        .post_empty("/scale-sets/ops/instances/ops_2/reimage")
        .await;
    assert_eq!(status, 202, "{answer}");
    // A second one-shot action while one waits is refused.
    let (status, problem) = api
        .post_empty("/scale-sets/ops/instances/ops_2/restart")
        .await;
    assert!(status == 409 || status == 202, "{problem}");
    api.wait_running("ops", 3).await;

    let (status, i) = api
        .post_empty("/scale-sets/ops/instances/ops_1/delete")
        .await;
    assert_eq!(status, 202, "{i}");
    assert_eq!(i["provisioning_state"], "deleting");
    let (_, set) = api.get("/scale-sets/ops").await;
    assert_eq!(
        set["capacity"], 2,
        "deleting an instance lowers the capacity"
    );
    let items = api.wait_running("ops", 2).await;
    assert!(items.iter().all(|i| i["id"] != "ops_1"));
    let (status, _) = api
        .post_empty("/scale-sets/ops/instances/ops_1/start")
        .await;
    assert_eq!(status, 404);
    let (status, problem) = api
        .post_empty("/scale-sets/ops/instances/ops_0/explode")
        .await;
    assert_eq!(status, 404, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "action");

    let (_, activity) = api
        .get("/activity?scale_set=ops&operation=instance.stop")
        .await;
    assert_eq!(activity["items"].as_array().unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn instances_survive_a_restart_of_the_control_plane() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set("keep", 3, json!({})).await;
    let before = api.wait_running("keep", 3).await;
    server.stop().await;

    let server = TestServer::start(&dir).await;
    let api = server.api();
    let after = api.wait_running("keep", 3).await;
    let ids = |v: &[Value]| {
        v.iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&before), ids(&after));
    for i in &after {
        assert_eq!(instance_root(i).await["instance_id"], i["id"]);
    }
    server.stop().await;
}

#[tokio::test]
async fn model_update_makes_a_version_and_new_instances_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set("ver", 1, json!({})).await;
    api.wait_running("ver", 1).await;
    let (status, set) = api
        .put(
            "/scale-sets/ver/model",
            json!({"image": "ubuntu-24.04", "vcpus": 4, "memory_mib": 4096, "disk_gib": 20}),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["model_version"], 2);
    let (_, versions) = api.get("/scale-sets/ver/model/versions").await;
    assert_eq!(versions["items"].as_array().unwrap().len(), 2);
    api.put("/scale-sets/ver/capacity", json!({"capacity": 2}))
        .await;
    let items = api.wait_running("ver", 2).await;
    assert_eq!(items[0]["model_version"], 1);
    assert_eq!(items[0]["latest_model"], false);
    assert_eq!(items[1]["model_version"], 2);
    assert_eq!(items[1]["latest_model"], true);
    server.stop().await;
}

#[tokio::test]
async fn events_stream_instance_changes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let http = server.http();
    let mut resp = http
        .get(format!("{}/api/v1/events?scale_set=live", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    api.create_set("live", 2, json!({})).await;
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(text.contains("event: instance_changed")
        && text.matches("\"power_state\":\"running\"").count() >= 2)
    {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: scale_set_changed"));
    assert!(!text.contains("\"scale_set\":\"other\""));
    server.stop().await;
}

#[tokio::test]
async fn openapi_health_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let (status, doc) = api.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/scale-sets",
        "/scale-sets/{name}",
        "/scale-sets/{name}/capacity",
        "/scale-sets/{name}/instances",
        "/scale-sets/{name}/instances/{id}/{action}",
        "/scale-sets/{name}/model",
        "/scale-sets/{name}/autoscale",
        "/scale-sets/{name}/autoscale/decisions",
        "/scale-sets/{name}/metrics",
        "/scale-sets/{name}/demand",
        "/scale-sets/{name}/rollouts",
        "/scale-sets/{name}/rollouts/preview",
        "/scale-sets/{name}/rollouts/{id}",
        "/scale-sets/{name}/rollouts/{id}/{action}",
        "/scale-sets/{name}/model/versions/compare",
        "/activity",
        "/events",
        "/backend",
        "/backend/faults",
    ] {
        assert!(doc["paths"].get(path).is_some(), "OpenAPI lacks {path}");
    }
    assert!(doc["components"]["schemas"].get("ScaleSetSpec").is_some());
    assert!(doc["components"]["schemas"].get("RolloutView").is_some());
    assert_eq!(api.get_status("/healthz").await, 200);
    assert_eq!(api.get_status("/readyz").await, 200);
    api.create_set("m", 1, json!({})).await;
    api.wait_running("m", 1).await;
    let http = server.http();
    let text = http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("flotilla_scale_set_capacity{scale_set=\"m\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "flotilla_instances_by_power_state{scale_set=\"m\",power_state=\"running\"} 1"
        ),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn delete_removes_every_instance_then_the_set() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set(
        "gone",
        3,
        json!({"new_instances_protected_from_scale_in": true}),
    )
    .await;
    api.wait_running("gone", 3).await;
    let (status, set) = api.delete("/scale-sets/gone").await;
    assert_eq!(status, 202, "{set}");
    assert_eq!(set["state"], "deleting");
    let (status, _) = api
        .put("/scale-sets/gone/capacity", json!({"capacity": 5}))
        .await;
    assert_eq!(status, 409, "no changes while deleting");
    wait_until("the set is gone", Duration::from_secs(20), || async {
        api.get_status("/scale-sets/gone").await == 404
    })
    .await;
    let (_, vms) = api.get("/backend/vms").await;
    assert_eq!(
        vms["items"].as_array().unwrap().len(),
        0,
        "no VM left behind"
    );
    server.stop().await;
}

#[tokio::test]
async fn fault_injection_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api: Api = server.api();
    api.create_set("f", 3, json!({})).await;
    api.wait_running("f", 3).await;
    let (status, body) = api
        .post("/backend/faults", json!({"kind": "zone_down", "zone": "2"}))
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = api
        .post(
            "/backend/faults",
            json!({"kind": "unhealthy", "instance": "f_0"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (_, faults) = api.get("/backend/faults").await;
    assert_eq!(faults["items"].as_array().unwrap().len(), 2, "{faults}");
    let (_, backend) = api.get("/backend").await;
    let zone2 = backend["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["name"] == "2")
        .unwrap()
        .clone();
    assert_eq!(zone2["available"], false);
    wait_until(
        "f_1 in zone 2 is stopped",
        Duration::from_secs(20),
        || async {
            let (_, i) = api.get("/scale-sets/f/instances/f_1").await;
            i["power_state"] == "stopped"
        },
    )
    .await;
    assert_eq!(api.delete("/backend/faults").await.0, 204);
    let (_, faults) = api.get("/backend/faults").await;
    assert_eq!(faults["items"].as_array().unwrap().len(), 0);
    api.wait_running("f", 3).await;
    server.stop().await;
}

/// Fleet-wide limits: scale sets and the instances they ask for in all. A create, a
/// capacity change or a PATCH past them is refused naming the field, and nothing changes.
#[tokio::test]
async fn fleet_limits_refuse_by_field_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        dir.path(),
        &["--max-scale-sets", "2", "--max-instances", "5"],
    )
    .await;
    let api = server.api();
    api.create_set("a", 2, json!({})).await;
    api.create_set("b", 3, json!({})).await;
    let body = |name: &str, capacity: u32| {
        json!({"name": name, "model": {"image": "debian-12", "vcpus": 1, "memory_mib": 512,
               "disk_gib": 10, "user_data": null, "app_port": 80}, "capacity": capacity})
    };
    let (status, problem) = api.post("/scale-sets", body("c", 0)).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "name");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("--max-scale-sets")
    );
    let (status, problem) = api
        .put("/scale-sets/a/capacity", json!({"capacity": 3}))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "capacity");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 2 here"),
        "{problem}"
    );
    let (status, problem) = api.patch("/scale-sets/b", json!({"capacity": 4})).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "capacity");
    // Within the limit: fine.
    let (status, body) = api
        .put("/scale-sets/a/capacity", json!({"capacity": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api.patch("/scale-sets/b", json!({"capacity": 4})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        api.get("/scale-sets").await.1["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    server.stop().await;

    // A limit lowered below what the fleet holds: growing is refused, shrinking is not.
    let server = TestServer::start_with(dir.path(), &["--max-instances", "3"]).await;
    let api = server.api();
    let (status, problem) = api
        .put("/scale-sets/a/capacity", json!({"capacity": 2}))
        .await;
    assert_eq!(status, 422, "{problem}");
    let (status, body) = api
        .put("/scale-sets/b/capacity", json!({"capacity": 3}))
        .await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}
