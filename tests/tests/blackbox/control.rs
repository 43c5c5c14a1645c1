//! The control plane's own state over the API: every task's status, and what `/metrics`
//! exposes by default and with `--metrics-per-instance`.

use std::time::Duration;

use flotilla_tests::TestServer;
use serde_json::{Value, json};

const TASKS: [&str; 12] = [
    "reconciler",
    "prober",
    "pool_sync",
    "metrics",
    "autoscaler",
    "webhooks",
    "rollouts",
    "orphan_sweep",
    "retention",
    "backend_events",
    "host_watch",
    "relay",
];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A set of two behind a frontend, running.
async fn web(server: &TestServer) {
    let api = server.api();
    api.create_set(
        "web",
        2,
        json!({"load_balancer": {"frontends": [{"name": "web", "protocol": "http", "port": free_port()}]}}),
    )
    .await;
    api.wait_running("web", 2).await;
}

#[tokio::test]
async fn every_task_reports_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), &["--metrics-interval", "1s"]).await;
    web(&server).await;
    let api = server.api();
    let task = |items: &Value, name: &str| -> Value {
        items["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no task {name} in {items}"))
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let tasks = loop {
        let (status, tasks) = api.get("/control/tasks").await;
        assert_eq!(status, 200, "{tasks}");
        let busy = [
            "reconciler",
            "prober",
            "pool_sync",
            "metrics",
            "autoscaler",
            "rollouts",
        ];
        // The prober says what it probes once its tick after the first read has passed.
        if busy
            .iter()
            .all(|name| task(&tasks, name)["activations"].as_u64() > Some(0))
            && task(&tasks, "prober")["doing"] == "probing 2 instance(s)"
        {
            break tasks;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tasks idle: {tasks}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let names: Vec<&str> = tasks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, TASKS);
    for t in tasks["items"].as_array().unwrap() {
        for key in [
            "activations",
            "last_started",
            "last_duration_ms",
            "last_result",
            "consecutive_failures",
            "doing",
        ] {
            assert!(t.get(key).is_some(), "{key} missing in {t}");
        }
        assert_ne!(t["doing"], "stopped", "{t}");
    }
    let reconciler = task(&tasks, "reconciler");
    assert!(
        reconciler["last_result"]
            .as_str()
            .unwrap()
            .starts_with("web: "),
        "{reconciler}"
    );
    assert_eq!(reconciler["consecutive_failures"], 0, "{reconciler}");
    assert!(reconciler["last_started"].is_string(), "{reconciler}");
    let prober = task(&tasks, "prober");
    assert_eq!(prober["doing"], "probing 2 instance(s)", "{prober}");
    // The per-set loops stay visible beside the tasks.
    let (status, loops) = api.get("/control/loops").await;
    assert_eq!(status, 200);
    assert_eq!(loops["items"][0]["scale_set"], "web", "{loops}");
    server.stop().await;
}

async fn scrape(server: &TestServer) -> String {
    server
        .http()
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits until the collector and the pool sync have seen the set, then scrapes.
async fn scrape_when_collected(server: &TestServer) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(server).await;
        if text.contains("flotilla_scale_set_instances_running{scale_set=\"web\"} 2")
            && text.contains("flotilla_lb_frontend_requests_total{scale_set=\"web\"")
        {
            return text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn metrics_are_set_level_unless_asked_per_instance() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), &["--metrics-interval", "1s"]).await;
    web(&server).await;
    let text = scrape_when_collected(&server).await;
    assert!(!text.contains("flotilla_instance_"), "{text}");
    assert!(!text.contains("flotilla_lb_backend_"), "{text}");
    server.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        dir.path(),
        &["--metrics-interval", "1s", "--metrics-per-instance"],
    )
    .await;
    web(&server).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape_when_collected(&server).await;
        if text.contains("flotilla_instance_cpu_percent{scale_set=\"web\",instance=\"web_0\"}")
            && text.contains("flotilla_lb_backend_requests_total{pool=\"web\",backend=\"web_0\"")
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_query_parameter_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    for path in [
        "/events?scale_sets=web",
        "/activity?operations=reconcile",
        "/scale-sets/web/metrics?metrics=cpu_percent",
    ] {
        let (status, problem) = api.get(path).await;
        assert_eq!(status, 422, "{path}: {problem}");
        let field = path.split(['?', '=']).nth(1).unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{path}: {problem}");
    }
    server.stop().await;
}
