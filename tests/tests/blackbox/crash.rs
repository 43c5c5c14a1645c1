//! Crash safety: a `flotilla serve` process killed (SIGKILL) in the middle of a scale-out
//! is started again on the same data directory and converges with no duplicate instance and
//! no orphan VM.

use std::collections::BTreeSet;
use std::time::Duration;

use flotilla_tests::{
    ADMIN, ADMIN_PASSWORD, Api, free_port, instance_root, spawn_serve, wait_until,
};
use serde_json::{Value, json};

/// Asserts that every VM belongs to an instance record, every record has its VM, ids are
/// unique, and each instance serves its own id.
async fn assert_converged(api: &Api, sets: &[(String, usize)]) {
    let mut all_ids = BTreeSet::new();
    for (name, n) in sets {
        let items: Vec<Value> = api.wait_running(name, *n).await;
        for i in &items {
            assert!(
                all_ids.insert(i["id"].as_str().unwrap().to_string()),
                "duplicate {}",
                i["id"]
            );
        }
        let zones = flotilla_tests::count_by(&items, "zone");
        let counts: Vec<usize> = zones.values().copied().collect();
        assert!(
            counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
            "{name}: zones {zones:?}"
        );
    }
    let (_, vms) = api.get("/backend/vms").await;
    let vm_ids: BTreeSet<String> = vms["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        vm_ids, all_ids,
        "every VM belongs to an instance and every instance has its VM"
    );
    for (name, _) in sets {
        for i in api.instances(name).await.iter().step_by(17) {
            assert_eq!(instance_root(i).await["instance_id"], i["id"]);
        }
    }
}

#[tokio::test]
async fn killed_mid_scale_out_converges_without_duplicates_or_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let api = Api::new(&url);
    let mut sets: Vec<(String, usize)> = Vec::new();
    // Kill at several moments after the request that starts a scale-out: before the
    // reconciler wrote its intent, while it creates VMs, while it records results.
    for (round, delay_ms) in [0u64, 3, 10, 25, 60, 150].into_iter().enumerate() {
        let mut child = spawn_serve(dir.path(), port, "400ms");
        wait_until("server up", Duration::from_secs(30), || async {
            api.get_status("/readyz").await == 200
        })
        .await;
        let api = Api::signed_in(&url, ADMIN, ADMIN_PASSWORD).await;
        let name = format!("crash-{round}");
        api.create_set(&name, 150, json!({})).await;
        sets.push((name.clone(), 150));
        // Grow an existing set too, so scale-out of a running set is interrupted as well.
        if round > 0 {
            let (grown, n) = &mut sets[round - 1];
            *n += 30;
            let (status, body) = api
                .put(
                    &format!("/scale-sets/{grown}/capacity"),
                    json!({"capacity": *n}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        child.kill().expect("SIGKILL");
        child.wait().unwrap();

        let mut child = spawn_serve(dir.path(), port, "400ms");
        wait_until("server up again", Duration::from_secs(30), || async {
            api.get_status("/readyz").await == 200
        })
        .await;
        assert_converged(&api, &sets).await;
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
