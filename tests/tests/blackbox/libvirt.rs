//! `flotilla serve --backend libvirt` on libvirt's test driver (run with the `libvirt`
//! feature; `make test` builds with it): three simulated hosts, one per zone, carry a scale
//! set through the REST API — spread over the zones, scaled in, deleted, nothing left —, a
//! VM larger than any host fails with the host's numbers, and a bad hosts file stops the
//! server with a message naming it.

use flotilla_tests::{TestServer, count_by, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

/// A hosts file with three simulated hosts (zones 1–3, 8 vCPUs and 16 GiB each).
fn hosts_file(dir: &std::path::Path) -> String {
    let hosts: Vec<Value> = ["1", "2", "3"]
        .iter()
        .map(|zone| {
            let node = dir.join(format!("host-{zone}.xml"));
            std::fs::write(&node, "<node><memory>16777216</memory></node>").unwrap();
            json!({"uri": format!("test://{}", node.display()), "zone": zone,
                   "vcpus": 8, "memory_mib": 16384})
        })
        .collect();
    let file = dir.join("hosts.json");
    std::fs::write(
        &file,
        json!({"hosts": hosts, "images": ["debian-12", "ubuntu-24.04"]}).to_string(),
    )
    .unwrap();
    file.display().to_string()
}

#[tokio::test]
async fn a_scale_set_runs_on_libvirt_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let file = hosts_file(dir.path());
    let server = TestServer::start_with(
        dir.path(),
        &["--backend", "libvirt", "--libvirt-hosts", &file],
    )
    .await;
    let api = server.api();
    api.create_set("web", 3, json!({})).await;
    let items = api.wait_running("web", 3).await;
    assert_eq!(count_by(&items, "zone").len(), 3, "{items:?}");
    for i in &items {
        let address = i["address"].as_str().unwrap_or_default();
        assert!(address.starts_with("127.0.0.1:200"), "{i}");
    }
    // A model larger than any host: the create fails naming the host and its free
    // capacity, on the instance, and no domain is left behind.
    let big = json!({"model": {"image": "debian-12", "vcpus": 16, "memory_mib": 2048,
                               "disk_gib": 10, "user_data": null, "app_port": 80}});
    api.create_set("big", 1, big).await;
    wait_until(
        "the big instance fails",
        Duration::from_secs(30),
        || async {
            api.instances("big").await.iter().any(|i| {
                i["provisioning_state"] == "failed"
                    && i["last_error"].as_str().is_some_and(|e| {
                        e.contains("out of capacity") && e.contains("needs 16 vCPUs")
                    })
            })
        },
    )
    .await;
    let vms = |body: Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, listed) = api.get("/backend/vms").await;
    assert!(
        vms(listed.clone()).iter().all(|id| id.starts_with("web_")),
        "{listed}"
    );

    // Scale in, then delete: the backend holds no VM afterwards.
    let (status, body) = api
        .put("/scale-sets/web/capacity", json!({"capacity": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    api.wait_running("web", 1).await;
    for set in ["web", "big"] {
        let (status, body) = api.delete(&format!("/scale-sets/{set}")).await;
        assert_eq!(status, 202, "{body}");
    }
    wait_until("the sets are gone", Duration::from_secs(30), || async {
        api.get_status("/scale-sets/web").await == 404
            && api.get_status("/scale-sets/big").await == 404
    })
    .await;
    let (_, listed) = api.get("/backend/vms").await;
    assert!(
        vms(listed.clone()).is_empty(),
        "no VM left behind: {listed}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_bad_hosts_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.json");
    std::fs::write(&file, "{\"hosts\": 3}").unwrap();
    let args = flotilla_tests::serve_args(
        dir.path(),
        &[
            "--backend",
            "libvirt",
            "--libvirt-hosts",
            &file.display().to_string(),
        ],
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = flotilla::run(args, listener, std::future::pending())
        .await
        .expect_err("a bad hosts file stops the server");
    let text = format!("{error:#}");
    assert!(
        text.contains("hosts.json: not a libvirt hosts file"),
        "{text}"
    );
}
