//! The standalone mock hypervisor: `flotilla mock-hypervisor` as a process, a
//! `flotilla serve --mock-url` process on it, and what each of them shows of the same VMs;
//! the flags `--mock-url` refuses; the token it generates when given none.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::time::Duration;

use flotilla_backend::Backend;
use flotilla_tests::{
    ADMIN, ADMIN_PASSWORD, Api, MockHypervisor, TestServer, binary, free_port, instance_root,
    wait_until,
};
use serde_json::json;

/// A scale set of 2 made through a control plane on a standalone mock hypervisor runs in
/// the hypervisor's process: the API shows both instances running, the hypervisor lists
/// both VMs for the control plane's installation, and each VM answers as itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_runs_its_vms_on_a_standalone_mock_hypervisor() {
    let mock_dir = tempfile::tempdir().unwrap();
    let serve_dir = tempfile::tempdir().unwrap();
    let hypervisor = MockHypervisor::start(mock_dir.path(), &["--mock-latency", "100ms"]).await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut serve = hypervisor
        .serve_command(serve_dir.path(), port)
        .spawn()
        .expect("start flotilla serve");
    let anonymous = Api::new(&url);
    wait_until("serve is up", Duration::from_secs(30), || async {
        anonymous.get_status("/readyz").await == 200
    })
    .await;
    let api = Api::signed_in(&url, ADMIN, ADMIN_PASSWORD).await;
    api.create_set("web", 2, json!({})).await;
    let instances = api.wait_running("web", 2).await;
    let ids: BTreeSet<String> = instances
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();

    let (status, vms) = api.get("/backend/vms").await;
    assert_eq!(status, 200, "{vms}");
    let installation = vms["items"][0]["installation_id"]
        .as_str()
        .expect("the VMs carry the installation id")
        .to_string();
    let listed = hypervisor
        .client(&installation)
        .await
        .list(Some("web"))
        .await
        .expect("list on the hypervisor");
    let listed_ids: BTreeSet<String> = listed.iter().map(|vm| vm.id.clone()).collect();
    assert_eq!(listed_ids, ids, "the hypervisor holds the instances' VMs");
    assert!(listed.iter().all(|vm| vm.address.is_some()), "{listed:?}");
    for instance in &instances {
        assert_eq!(instance_root(instance).await["instance_id"], instance["id"]);
    }
    let (status, backend) = api.get("/backend").await;
    assert_eq!(
        (status, backend["kind"].as_str()),
        (200, Some("mock")),
        "{backend}"
    );
    let _ = serve.kill();
    let _ = serve.wait();
}

/// Faults injected through a control plane's API are the hypervisor's: a zone taken down
/// through an in-process server on the hypervisor is down for its installation there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_injected_through_the_api_reach_the_hypervisor() {
    let mock_dir = tempfile::tempdir().unwrap();
    let serve_dir = tempfile::tempdir().unwrap();
    let hypervisor = MockHypervisor::start(mock_dir.path(), &["--mock-latency", "0"]).await;
    let server = TestServer::start_with(serve_dir.path(), &["--mock-url", &hypervisor.url]).await;
    let api = server.api();
    api.create_set("web", 1, json!({})).await;
    api.wait_running("web", 1).await;
    let (_, vms) = api.get("/backend/vms").await;
    let installation = vms["items"][0]["installation_id"].as_str().unwrap();
    let (status, body) = api
        .post("/backend/faults", json!({"kind": "zone_down", "zone": "2"}))
        .await;
    assert!(status < 300, "{status} {body}");
    let zones = hypervisor.client(installation).await.zones().await.unwrap();
    let down: Vec<&str> = zones
        .iter()
        .filter(|z| !z.available)
        .map(|z| z.name.as_str())
        .collect();
    assert_eq!(down, ["2"]);
    server.stop().await;
}

/// `serve --mock-url` takes the simulator as the hypervisor runs it: a simulator flag with it
/// is an error naming both, before anything starts.
#[test]
fn serve_with_a_mock_url_refuses_the_simulators_flags() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(binary())
        .args(["serve", "--mock-url", "http://127.0.0.1:3900"])
        .args(["--mock-latency", "1s"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("run flotilla serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--mock-latency") && stderr.contains("--mock-url"),
        "{stderr}"
    );
}

/// A control plane with a wrong token does not start: the hypervisor refuses it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_a_wrong_token_does_not_start() {
    let mock_dir = tempfile::tempdir().unwrap();
    let serve_dir = tempfile::tempdir().unwrap();
    let hypervisor = MockHypervisor::start(mock_dir.path(), &[]).await;
    let output = hypervisor
        .serve_command(serve_dir.path(), free_port())
        .env("FLOTILLA_MOCK_TOKEN", "not-the-token")
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run flotilla serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("connecting to the mock hypervisor") && stderr.contains("token"),
        "{stderr}"
    );
}

/// Without `FLOTILLA_MOCK_TOKEN` the hypervisor makes a token and prints it once on
/// standard output: that token is taken, and no request goes without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hypervisor_without_a_token_makes_one_and_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = std::process::Command::new(binary())
        .args(["mock-hypervisor", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("FLOTILLA_MOCK_TOKEN")
        .env("FLOTILLA_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start flotilla mock-hypervisor");
    // Kept open to the end: the hypervisor prints more after the first line.
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("a line on stdout");
    let token = first
        .trim()
        .rsplit(' ')
        .next()
        .expect("the token ends the line")
        .to_string();
    assert_eq!(token.len(), 64, "{first}");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let healthz = format!("http://127.0.0.1:{port}/v1/healthz");
    let mut answered = false;
    for _ in 0..100 {
        if let Ok(response) = http.get(&healthz).bearer_auth(&token).send().await {
            assert_eq!(response.status(), 200);
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered, "the hypervisor did not answer");
    let refused = http.get(&healthz).send().await.expect("request");
    assert_eq!(refused.status(), 401);
    let _ = child.kill();
    let _ = child.wait();
}
