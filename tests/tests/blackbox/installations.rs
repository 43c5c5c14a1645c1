//! Installations: every VM carries its installation's id, and no installation ever removes
//! or adopts another's. Two installations one after the other on one mock journal (a second
//! database pointed at the same VMs — a typo in `--database-url`, a fresh data directory on
//! existing hosts) delete nothing of each other's; a database restored from an old backup
//! removes its own installation's VMs of sets it does not know only after the grace period,
//! saying so first. (Two installations at once on libvirt's test driver: `libvirt.rs`.)

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use flotilla_tests::{Api, TestServer, wait_until};
use serde_json::Value;

/// Every VM the backend holds: id → (installation id, foreign).
pub async fn backend_vms(api: &Api) -> BTreeMap<String, (String, bool)> {
    let (status, body) = api.get("/backend/vms").await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_string(),
                (
                    v["installation_id"].as_str().unwrap_or("").to_string(),
                    v["foreign"].as_bool().unwrap(),
                ),
            )
        })
        .collect()
}

fn sqlite(dir: &Path, file: &str) -> String {
    format!("sqlite:{}", dir.join(file).display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_installations_on_one_mock_journal_never_touch_each_other() {
    let data = tempfile::tempdir().unwrap();
    let other_db = tempfile::tempdir().unwrap();
    let a_db = sqlite(data.path(), "flotilla.db");
    let b_db = sqlite(other_db.path(), "b.db");
    // Short grace periods and reconcile intervals: whatever they would remove, they would
    // remove within the waits below.
    let flags = |db: &str| -> Vec<String> {
        ["--database-url", db, "--orphan-grace", "1s"]
            .map(String::from)
            .to_vec()
    };
    let start = |db: String| {
        let path = data.path().to_path_buf();
        async move {
            let flags = flags(&db);
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            TestServer::start_with(&path, &flags).await
        }
    };

    let a = start(a_db.clone()).await;
    a.api().create_set("web", 2, serde_json::json!({})).await;
    a.api().wait_running("web", 2).await;
    let seen_by_a = backend_vms(&a.api()).await;
    let a_id = seen_by_a["web_0"].0.clone();
    assert!(!a_id.is_empty() && !seen_by_a["web_0"].1, "{seen_by_a:?}");
    a.stop().await;

    // A second installation on the same VMs: its own database (a fresh data directory on
    // existing hosts would be the same).
    let b = start(b_db.clone()).await;
    let api = b.api();
    let seen = backend_vms(&api).await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.values().all(|(id, foreign)| *id == a_id && *foreign));
    api.create_set("api", 1, serde_json::json!({})).await;
    api.wait_running("api", 1).await;
    // Well past B's grace period and several reconcile passes: A's VMs are all there.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let seen = backend_vms(&api).await;
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        ["api_0", "web_0", "web_1"],
        "{seen:?}"
    );
    let b_id = seen["api_0"].0.clone();
    assert_ne!(b_id, a_id);
    assert!(!seen["api_0"].1, "B's own VM is not foreign to B");
    let (_, log) = api.get("/activity?operation=backend.orphans_removed").await;
    assert_eq!(log["items"], serde_json::json!([]), "B removed nothing");
    b.stop().await;

    // A again: its set as it left it, B's VM foreign and left alone.
    let a = start(a_db).await;
    let api = a.api();
    let web = api.wait_running("web", 2).await;
    let ids: Vec<&str> = web.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["web_0", "web_1"], "the same VMs, none replaced");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seen = backend_vms(&api).await;
    assert_eq!(seen["api_0"], (b_id, true));
    assert_eq!(seen.len(), 3);
    a.stop().await;
}

/// Copies the SQLite database (and its journal files) of `dir` to `to`.
fn copy_database(dir: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for file in ["flotilla.db", "flotilla.db-wal", "flotilla.db-shm"] {
        let from = dir.join(file);
        let target = to.join(file);
        if from.exists() {
            std::fs::copy(&from, &target).unwrap();
        } else {
            let _ = std::fs::remove_file(&target);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_backup_removes_its_unknown_sets_vms_only_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    server
        .api()
        .create_set("early", 1, serde_json::json!({}))
        .await;
    server.api().wait_running("early", 1).await;
    server.stop().await;
    copy_database(dir.path(), backup.path());

    let server = TestServer::start(&dir).await;
    server
        .api()
        .create_set("late", 1, serde_json::json!({}))
        .await;
    server.api().wait_running("late", 1).await;
    server.stop().await;
    // The backup from before "late" comes back.
    copy_database(backup.path(), dir.path());

    let server = TestServer::start_with(dir.path(), &["--orphan-grace", "4s"]).await;
    let api = server.api();
    // Noticed at once, with when it will go; not removed yet.
    wait_until("the orphan is noticed", Duration::from_secs(10), || async {
        let (_, log) = api
            .get("/activity?operation=backend.orphans&scale_set=late")
            .await;
        log["items"].as_array().is_some_and(|i| i.len() == 1)
    })
    .await;
    let (_, log) = api
        .get("/activity?operation=backend.orphans&scale_set=late")
        .await;
    let noticed: &Value = &log["items"][0];
    assert_eq!(noticed["details"]["vms"], serde_json::json!(["late_0"]));
    assert!(noticed["details"]["remove_after"].is_string(), "{noticed}");
    assert!(backend_vms(&api).await.contains_key("late_0"));
    // After the grace period it goes, and says so; the known set is untouched.
    wait_until("the orphan is removed", Duration::from_secs(20), || async {
        !backend_vms(&api).await.contains_key("late_0")
    })
    .await;
    let (_, log) = api
        .get("/activity?operation=backend.orphans_removed&scale_set=late")
        .await;
    assert_eq!(
        log["items"][0]["details"]["removed"],
        serde_json::json!(["late_0"])
    );
    let early = api.wait_running("early", 1).await;
    assert_eq!(early[0]["id"], "early_0");
    server.stop().await;
}
