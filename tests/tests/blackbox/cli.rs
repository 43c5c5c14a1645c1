//! The CLI (`flotilla scale-set …`, `flotilla instance …`) against a real server.

use flotilla_tests::{TestServer, binary};
use serde_json::Value;
use tokio::process::Command;

async fn cli(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary())
        .args(args)
        .args(["--server", &server.url])
        .env("USER", "tester")
        .env("FLOTILLA_TOKEN", server.token.as_deref().expect("a token"))
        // No stored credentials of whoever runs the tests.
        .env("XDG_CONFIG_HOME", server.data_dir.join("cli-config"))
        .output()
        .await
        .expect("run the CLI");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn cli_manages_scale_sets_and_instances() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let run = |args: &'static [&'static str]| cli(&server, args);

    let (ok, out, err) = run(&[
        "scale-set",
        "create",
        "cli",
        "--capacity",
        "3",
        "--zones",
        "1,2",
    ])
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("name:          cli"), "{out}");
    api.wait_running("cli", 3).await;

    let (ok, out, _) = run(&["scale-set", "list"]).await;
    assert!(ok);
    assert!(out.starts_with("NAME"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("cli ") && l.contains("1,2")),
        "{out}"
    );

    let (ok, out, _) = run(&["scale-set", "show", "cli"]).await;
    assert!(ok);
    assert!(out.contains("3 instances: 3 running"), "{out}");

    let (ok, out, _) = run(&["instance", "list", "cli", "--output", "json"]).await;
    assert!(ok);
    let json: Value = serde_json::from_str(&out).expect("--output json prints JSON");
    assert_eq!(json["items"].as_array().unwrap().len(), 3);

    let (ok, out, err) = run(&["instance", "restart", "cli", "cli_0"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("cli_0"), "{out}");

    let (ok, _, err) = run(&["scale-set", "scale", "cli", "1"]).await;
    assert!(ok, "{err}");
    api.wait_running("cli", 1).await;

    // Refusals print the server's message and the field, and exit non-zero.
    let (ok, _, err) = run(&["scale-set", "create", "Bad_Name", "--vcpus", "99"]).await;
    assert!(!ok);
    assert!(
        err.contains("name:") && err.contains("model.vcpus:"),
        "{err}"
    );
    let (ok, _, err) = run(&["scale-set", "show", "missing"]).await;
    assert!(!ok);
    assert!(err.contains("not found"), "{err}");
    let (ok, _, err) = run(&["instance", "stop", "cli", "cli_99"]).await;
    assert!(!ok);
    assert!(err.contains("not found"), "{err}");

    let (ok, out, _) = run(&["activity", "--scale-set", "cli"]).await;
    assert!(ok);
    assert!(
        out.contains("cli:tester") && out.contains("instance.restart"),
        "{out}"
    );

    let (ok, out, err) = run(&["scale-set", "delete", "cli", "--wait"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("deleted scale set cli"), "{out}");
    assert_eq!(api.get_status("/scale-sets/cli").await, 404);
    server.stop().await;
}

#[tokio::test]
async fn cli_reports_an_unreachable_server() {
    let out = Command::new(binary())
        .args(["scale-set", "list", "--server", "http://127.0.0.1:9"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the Flotilla server"));
}

#[tokio::test]
async fn cli_configures_probes_and_frontends_drains_and_shows_repairs() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set("web", 2, serde_json::json!({})).await;
    api.wait_healthy("web", 2).await;
    let port = flotilla_tests::free_port();
    let patch = dir.path().join("patch.json");
    std::fs::write(
        &patch,
        serde_json::json!({
            "health_probe": {"protocol": "http", "port": 80, "path": "/health",
                             "interval_seconds": 2, "timeout_seconds": 1},
            "automatic_repairs": {"enabled": true, "grace_period_seconds": 60},
            "load_balancer": {"frontends": [{"name": "web", "protocol": "http", "port": port}]},
        })
        .to_string(),
    )
    .unwrap();
    let patch = patch.display().to_string();
    let (ok, out, err) = cli(&server, &["scale-set", "update", "web", "--file", &patch]).await;
    assert!(ok, "{err}");
    assert!(out.contains("name:          web"), "{out}");

    let (ok, out, err) = cli(&server, &["repairs", "show", "web"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("repairs:       enabled"), "{out}");
    assert!(out.contains("limit:         1 at once"), "{out}");

    let (ok, out, err) = cli(&server, &["instance", "drain", "web", "web_0"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("web_0"), "{out}");
    let (_, instance) = api.get("/scale-sets/web/instances/web_0").await;
    assert_eq!(instance["load_balancer_enabled"], false);
    let (ok, _, err) = cli(&server, &["instance", "enable", "web", "web_0"]).await;
    assert!(ok, "{err}");

    let (ok, out, err) = cli(&server, &["load-balancer", "web"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("web/web  http on 127.0.0.1:{port}")),
        "{out}"
    );

    // The console of an instance and the backend's hosts (the mock: zones, no hosts).
    let (ok, out, err) = cli(&server, &["instance", "console", "web", "web_0"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("[mock] web_0 — a simulated VM of scale set web"),
        "{out}"
    );
    let (ok, out, err) = cli(&server, &["hosts"]).await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with("backend mock\nzones: 1 (3 fault domains), 2 (3 fault domains)"),
        "{out}"
    );
    let (ok, _, err) = cli(&server, &["instance", "console", "web", "web_9"]).await;
    assert!(!ok);
    assert!(err.contains("web_9"), "{err}");

    // Refusals name the field and exit non-zero.
    let (ok, _, err) = cli(&server, &["repairs", "resume", "web"]).await;
    assert!(!ok);
    assert!(err.contains("not suspended"), "{err}");
}

#[tokio::test]
async fn cli_changes_the_model_previews_rolls_out_and_compares_versions() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set("cli-ro", 2, serde_json::json!({"zones": ["1"]}))
        .await;
    api.wait_healthy("cli-ro", 2).await;
    let model = dir.path().join("model.json");
    std::fs::write(
        &model,
        r#"{"image":"ubuntu-24.04","vcpus":2,"memory_mib":2048,"disk_gib":10,"app_port":80}"#,
    )
    .unwrap();
    let model = model.to_str().unwrap();

    let (ok, out, err) = cli(&server, &["rollout", "preview", "cli-ro", "--file", model]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("INSTANCE"), "{out}");
    assert!(
        out.contains("cli-ro_0") && out.contains("v1 → v2") && out.contains("reimage"),
        "{out}"
    );
    // Manual mode, the whole set: the rolling policy's batches (20 % of 2 → 1).
    assert!(out.contains("2 batch(es) of at most 1"), "{out}");

    let (ok, out, err) = cli(&server, &["model", "set", "cli-ro", "--file", model]).await;
    assert!(ok, "{err}");
    assert!(out.contains("model version 2"), "{out}");
    // Manual mode: a person starts it, here for one instance.
    let (ok, out, err) = cli(
        &server,
        &["rollout", "start", "cli-ro", "--instances", "cli-ro_1"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("rollout 1 (Manual)"), "{out}");
    flotilla_tests::wait_until(
        "the rollout completes",
        std::time::Duration::from_secs(30),
        || async {
            cli(&server, &["rollout", "list", "cli-ro"])
                .await
                .1
                .contains("completed")
        },
    )
    .await;
    let (ok, out, _) = cli(&server, &["rollout", "show", "cli-ro", "1"]).await;
    assert!(ok);
    assert!(
        out.contains("cli-ro_1") && out.contains("succeeded"),
        "{out}"
    );

    let (ok, out, _) = cli(&server, &["model", "versions", "cli-ro"]).await;
    assert!(ok);
    assert!(
        out.contains("v1") && out.contains("v2") && out.contains("cli:tester"),
        "{out}"
    );
    let (ok, out, _) = cli(&server, &["model", "diff", "cli-ro", "1", "2"]).await;
    assert!(ok);
    assert!(
        out.contains("image") && out.contains("\"ubuntu-24.04\""),
        "{out}"
    );

    // Refused: nothing left to upgrade on cli-ro_1; an unknown rollout.
    let (ok, _, err) = cli(
        &server,
        &["rollout", "start", "cli-ro", "--instances", "cli-ro_1"],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("nothing to upgrade"), "{err}");
    let (ok, _, err) = cli(&server, &["rollout", "pause", "cli-ro", "7"]).await;
    assert!(!ok);
    assert!(err.contains("not found"), "{err}");
}
