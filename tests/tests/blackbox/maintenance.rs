//! Host maintenance end to end on the mock (one simulated host per zone × fault domain): a
//! host of a 9-instance set is emptied by surge under traffic through the load balancer
//! without a failed request, and takes new instances again once returned; a moved instance
//! is drained and waits for the terminating hook; busy and protected instances wait, with
//! the reason shown; an unreachable host is closed and its instances replaced; a control
//! plane killed mid-move finishes it without a duplicate or an orphan; bad requests and
//! roles are refused, changing nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use flotilla_tests::{Api, TestServer, free_port, wait_until};
use serde_json::{Value, json};

use super::cli::cli;
use super::health::fast_probe;
use super::lifecycle::{complete, frontend, gone, hook, kill, serve, vm_ids};
use super::rollouts::{Watch, serving};

/// Instances of `set` per fault domain of zone 1.
async fn per_fault_domain(api: &Api, set: &str) -> BTreeMap<u64, usize> {
    let mut out = BTreeMap::new();
    for i in api.instances(set).await {
        assert_eq!(i["zone"], "1");
        *out.entry(i["fault_domain"].as_u64().unwrap()).or_default() += 1;
    }
    out
}

/// The closed host `name` as `GET /backend/maintenance` shows it.
async fn status_of(api: &Api, name: &str) -> Option<Value> {
    let (status, body) = api.get("/backend/maintenance").await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["host"] == name)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_of_a_nine_instance_set_is_emptied_without_a_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let port = free_port();
    api.create_set(
        "web",
        9,
        json!({"zones": ["1"], "load_balancer": frontend(port),
               "health_probe": fast_probe("/health", 2)}),
    )
    .await;
    api.wait_healthy("web", 9).await;
    wait_until("the pool holds nine", Duration::from_secs(15), || async {
        serving(&api, "web").await == 9
    })
    .await;
    assert_eq!(
        per_fault_domain(&api, "web").await,
        BTreeMap::from([(0, 3), (1, 3), (2, 3)])
    );
    // The mock's hosts: one per zone × fault domain.
    let (_, backend) = api.get("/backend").await;
    let hosts: Vec<&str> = backend["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(hosts.len(), 9, "{backend}");
    assert!(hosts.contains(&"1-fd0"), "{hosts:?}");

    // Refused, changing nothing: another role, an unknown host, ending what is not closed.
    let contributor = server.api_as("carl", "Contributor", None).await;
    let (status, _) = contributor
        .post_empty("/backend/hosts/1-fd0/maintenance")
        .await;
    assert_eq!(status, 403);
    let (status, body) = api.post_empty("/backend/hosts/nowhere/maintenance").await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("nowhere"),
        "{body}"
    );
    let (status, body) = api.post_empty("/backend/hosts/1-fd0/maintenance/end").await;
    assert_eq!(status, 409, "{body}");
    assert!(status_of(&api, "1-fd0").await.is_none());

    let watch = Watch::start(&api, "web", port);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = api.post_empty("/backend/hosts/1-fd0/maintenance").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["instances_at_start"], 3, "{body}");
    assert_eq!(body["reason"], "maintenance");
    assert_eq!(body["empty"], false);
    // Asking again changes nothing.
    let (status, again) = api.post_empty("/backend/hosts/1-fd0/maintenance").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["started_at"], body["started_at"]);

    // One move at a time (the repair limit of 9 is 1): the others wait, saying why.
    wait_until(
        "a move waits for the budget",
        Duration::from_secs(20),
        || async {
            status_of(&api, "1-fd0").await.is_some_and(|m| {
                m["waiting"].as_array().unwrap().iter().any(|w| {
                    w["step"] == "waiting"
                        && w["reason"].as_str().unwrap().contains("at most 1 at once")
                })
            })
        },
    )
    .await;
    wait_until("the host is empty", Duration::from_secs(120), || async {
        status_of(&api, "1-fd0")
            .await
            .is_some_and(|m| m["empty"] == true)
    })
    .await;
    api.wait_healthy("web", 9).await;
    wait_until(
        "the pool holds nine again",
        Duration::from_secs(15),
        || async { serving(&api, "web").await == 9 },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, failed, min_serving) = watch.finish().await;
    assert_eq!(failed, 0, "{ok} answered, {failed} failed");
    assert!(ok > 100, "only {ok} requests");
    assert!(
        min_serving >= 9,
        "surge keeps nine serving, saw {min_serving}"
    );
    let placed = per_fault_domain(&api, "web").await;
    assert_eq!(placed.get(&0), None, "{placed:?}");
    assert_eq!(placed.values().sum::<usize>(), 9);
    let m = status_of(&api, "1-fd0").await.unwrap();
    assert_eq!(m["moved"], 3, "{m}");
    assert_eq!(m["waiting"], json!([]));
    let (_, log) = api.get("/activity?scale_set=web&limit=200").await;
    let moves = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["operation"] == "host.move")
        .count();
    assert_eq!(moves, 6, "3 retired, 3 left: {log}");

    // The CLI shows it.
    let (ok, out, err) = cli(&server, &["host", "status"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("host 1-fd0 (zone 1, fault domain 0)"), "{out}");
    assert!(out.contains("3 of 3 moved, empty"), "{out}");
    let (ok, out, err) = cli(&server, &["hosts"]).await;
    assert!(ok, "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("1-fd0 "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.ends_with("under maintenance"), "{row}");
    assert!(
        row.contains("/unlimited"),
        "the mock's hosts have no limit: {row}"
    );

    // Returned, it takes new instances again: the emptiest fault domain gets them.
    let (ok, out, err) = cli(&server, &["host", "end-maintenance", "1-fd0"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("takes new instances again"), "{out}");
    assert!(status_of(&api, "1-fd0").await.is_none());
    let (status, body) = api
        .put("/scale-sets/web/capacity", json!({"capacity": 12}))
        .await;
    assert_eq!(status, 200, "{body}");
    api.wait_healthy("web", 12).await;
    assert_eq!(per_fault_domain(&api, "web").await.get(&0), Some(&3));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_wait_for_busy_and_protected_instances_and_the_terminating_hook() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let port = free_port();
    api.create_set(
        "web",
        6,
        json!({"zones": ["1"], "load_balancer": frontend(port),
               "lifecycle_hooks": [hook("drain", "terminating", 3600, "continue")]}),
    )
    .await;
    let all = api.wait_healthy("web", 6).await;
    let on_fd0: Vec<String> = all
        .iter()
        .filter(|i| i["fault_domain"] == 0)
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(on_fd0.len(), 2);
    let (busy, protected) = (&on_fd0[0], &on_fd0[1]);
    let (status, body) = api
        .put(
            &format!("/scale-sets/web/instances/{busy}/busy"),
            json!({"seconds": 600}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api
        .put(
            &format!("/scale-sets/web/instances/{protected}/protection"),
            json!({"protect_from_scale_in": false, "protect_from_scale_set_actions": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = api.post_empty("/backend/hosts/1-fd0/maintenance").await;
    assert_eq!(status, 200, "{body}");
    let reasons = |m: &Value| -> BTreeMap<String, String> {
        m["waiting"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["instance"].as_str().unwrap().to_string(),
                    w["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let m = status_of(&api, "1-fd0").await.unwrap();
    let why = reasons(&m);
    assert!(why[busy].starts_with("busy until"), "{m}");
    assert_eq!(why[protected], "protected from scale-set actions", "{m}");
    // Nothing moves while they hold.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(api.instances("web").await.len(), 6);

    // The lease ends: the busy one moves — its replacement first, then it is drained and
    // held by the terminating hook until completed.
    let (status, body) = api
        .put(
            &format!("/scale-sets/web/instances/{busy}/busy"),
            json!({"seconds": 0}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_until(
        "the moved instance waits for the hook",
        Duration::from_secs(60),
        || async {
            status_of(&api, "1-fd0").await.is_some_and(|m| {
                reasons(&m)[busy.as_str()] == "drained; waiting for terminating hook drain"
            })
        },
    )
    .await;
    let items = api.instances("web").await;
    let old = items.iter().find(|i| &i["id"] == busy).unwrap();
    assert_eq!(old["provisioning_state"], "deleting", "{old}");
    assert_eq!(old["lifecycle_state"], "terminating_wait", "{old}");
    let serving_now = items
        .iter()
        .filter(|i| i["provisioning_state"] == "succeeded" && i["health_state"] == "healthy")
        .count();
    assert_eq!(
        serving_now, 6,
        "the replacement serves before the old one leaves"
    );
    let (status, body) = complete(&api, "web", busy, "drain", "continue").await;
    assert_eq!(status, 200, "{body}");
    gone(&api, "web", busy).await;
    let m = status_of(&api, "1-fd0").await.unwrap();
    assert_eq!(m["moved"], 1, "{m}");
    assert_eq!(m["empty"], false, "the protected one stays");
    assert_eq!(reasons(&m).len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_host_is_closed_its_instances_replaced_and_it_opens_when_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), &["--host-unreachable-after", "1s"]).await;
    let api = server.api();
    api.create_set(
        "web",
        3,
        json!({"zones": ["1"], "health_probe": fast_probe("/health", 1)}),
    )
    .await;
    api.wait_healthy("web", 3).await;
    assert_eq!(
        per_fault_domain(&api, "web").await,
        BTreeMap::from([(0, 1), (1, 1), (2, 1)])
    );
    // A host fault names a host the mock has, by field; nothing changes otherwise.
    for host in ["", "nowhere"] {
        let (status, body) = api
            .post(
                "/backend/faults",
                json!({"kind": "host_down", "host": host}),
            )
            .await;
        assert_eq!(status, 422, "{host:?}: {body}");
        assert_eq!(body["errors"][0]["field"], "host", "{body}");
    }
    let (_, faults) = api.get("/backend/faults").await;
    assert_eq!(faults["items"], json!([]), "{faults}");
    let (status, body) = api
        .post(
            "/backend/faults",
            json!({"kind": "host_down", "host": "1-fd1"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    wait_until(
        "the host is closed as unreachable",
        Duration::from_secs(20),
        || async {
            status_of(&api, "1-fd1")
                .await
                .is_some_and(|m| m["reason"] == "unreachable" && m["started_by"] == "system:hosts")
        },
    )
    .await;
    wait_until(
        "its instance is replaced on the zone's other hosts",
        Duration::from_secs(60),
        || async {
            let placed = per_fault_domain(&api, "web").await;
            !placed.contains_key(&1) && placed.values().sum::<usize>() == 3
        },
    )
    .await;
    api.wait_healthy("web", 3).await;
    let (_, log) = api.get("/activity?operation=host.unreachable").await;
    assert_eq!(log["items"][0]["target"], "1-fd1", "{log}");

    let (status, body) = api
        .post(
            "/backend/faults",
            json!({"kind": "host_up", "host": "1-fd1"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    wait_until(
        "the host opens by itself",
        Duration::from_secs(20),
        || async { status_of(&api, "1-fd1").await.is_none() },
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_killed_mid_move_finishes_it_without_duplicates_or_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (child, api) = serve(dir.path(), port, "1s").await;
    api.create_set("web", 6, json!({"zones": ["1"]})).await;
    api.wait_healthy("web", 6).await;
    let (status, body) = api.post_empty("/backend/hosts/1-fd0/maintenance").await;
    assert_eq!(status, 200, "{body}");
    wait_until("a move has begun", Duration::from_secs(30), || async {
        api.instances("web")
            .await
            .iter()
            .any(|i| i["retiring"] == true)
    })
    .await;
    kill(child);
    let (child, api) = serve(dir.path(), port, "1s").await;
    wait_until("the host is empty", Duration::from_secs(90), || async {
        status_of(&api, "1-fd0")
            .await
            .is_some_and(|m| m["empty"] == true)
    })
    .await;
    let items = api.wait_healthy("web", 6).await;
    assert!(items.iter().all(|i| i["fault_domain"] != 0), "{items:?}");
    let records: std::collections::BTreeSet<String> = items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    wait_until(
        "every VM has its record",
        Duration::from_secs(30),
        || async { vm_ids(&api).await == records },
    )
    .await;
    kill(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_maintenance_mid_move_stops_the_move() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    // A launching hook holds every new instance out of service until completed: the move's
    // replacement never serves until the test says so.
    api.create_set(
        "web",
        3,
        json!({"zones": ["1"], "lifecycle_hooks": [hook("warm", "launching", 3600, "continue")]}),
    )
    .await;
    let waiting_on_warm = || async {
        api.instances("web")
            .await
            .into_iter()
            .filter(|i| {
                i["lifecycle_state"] == "launching_wait" && i["lifecycle_deadline"].is_string()
            })
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    wait_until("three wait to launch", Duration::from_secs(30), || async {
        waiting_on_warm().await.len() == 3
    })
    .await;
    for id in waiting_on_warm().await {
        let (status, body) = complete(&api, "web", &id, "warm", "continue").await;
        assert_eq!(status, 200, "{body}");
    }
    api.wait_healthy("web", 3).await;

    let (status, body) = api.post_empty("/backend/hosts/1-fd0/maintenance").await;
    assert_eq!(status, 200, "{body}");
    wait_until(
        "the move's replacement waits to launch",
        Duration::from_secs(30),
        || async { waiting_on_warm().await.len() == 1 },
    )
    .await;
    let moving: Vec<Value> = api
        .instances("web")
        .await
        .into_iter()
        .filter(|i| i["retiring"] == true)
        .collect();
    assert_eq!(moving.len(), 1, "{moving:?}");
    assert_eq!(moving[0]["fault_domain"], 0);

    let (status, body) = api.post_empty("/backend/hosts/1-fd0/maintenance/end").await;
    assert_eq!(status, 200, "{body}");
    wait_until("the move stops", Duration::from_secs(30), || async {
        api.instances("web")
            .await
            .iter()
            .all(|i| i["retiring"] == false)
    })
    .await;
    let (_, log) = api.get("/activity?operation=host.move&scale_set=web").await;
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["details"]["step"] == "stay"),
        "{log}"
    );
    // The replacement is surplus: scale-in brings the set back to three (launching any
    // instance still waiting).
    wait_until("three again", Duration::from_secs(30), || async {
        for id in waiting_on_warm().await {
            complete(&api, "web", &id, "warm", "continue").await;
        }
        api.instances("web").await.len() == 3
    })
    .await;
    api.wait_healthy("web", 3).await;
    server.stop().await;
}
