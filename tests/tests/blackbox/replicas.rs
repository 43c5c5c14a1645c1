//! Several control-plane replicas on one PostgreSQL database, as real processes (run when
//! FLOTILLA_TEST_POSTGRES is set; CI sets it): one leads and acts, every one serves and
//! sees every change, a paused leader is fenced when it wakes, a killed one is replaced
//! within the lease time.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flotilla_tests::{ADMIN, ADMIN_PASSWORD, Api, binary, free_port, wait_until};
use serde_json::{Value, json};

/// The lease's time to live: a successor takes over at most this long after the last
/// renewal, plus its retry period and the test's polling.
const LEASE: Duration = Duration::from_secs(15);

/// A `flotilla serve` process on the shared database.
struct Replica {
    child: Child,
    url: String,
}

impl Replica {
    fn spawn(data_dir: &Path, database: &str) -> Self {
        let port = free_port();
        let child = Command::new(binary())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--mock-latency", "200ms", "--reconcile-interval", "1s"])
            .args(["--metrics-interval", "1s"])
            .env("FLOTILLA_DATABASE_URL", database)
            .env("FLOTILLA_LOG", "warn")
            .env("FLOTILLA_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start flotilla serve");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Waits until it serves, and signs in.
    async fn api(&self) -> Api {
        let anonymous = Api::new(&self.url);
        wait_until("the replica serves", Duration::from_secs(30), || async {
            anonymous.get_status("/readyz").await == 200
        })
        .await;
        Api::signed_in(&self.url, ADMIN, ADMIN_PASSWORD).await
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} failed");
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A replica's own view of its leadership, from its `/metrics` (`None` while it does not
/// answer: a process just woken may drop the connections kept from before its pause).
struct Leadership {
    replica: String,
    leading: bool,
    generation: i64,
    refusals: u64,
}

async fn try_leadership(api: &Api) -> Option<Leadership> {
    let (status, text) = api.get("/metrics").await;
    if status != 200 {
        return None;
    }
    let text = text.as_str().expect("the text exposition").to_string();
    let value = |name: &str| -> (String, String) {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{")))
            .unwrap_or_else(|| panic!("{name} missing from /metrics"));
        let replica = line.split('"').nth(1).unwrap().to_string();
        let value = line.rsplit(' ').next().unwrap().to_string();
        (replica, value)
    };
    let (replica, leading) = value("flotilla_leader");
    Some(Leadership {
        replica,
        leading: leading == "1",
        generation: value("flotilla_lease_generation").1.parse().unwrap(),
        refusals: value("flotilla_lease_fence_refusals_total")
            .1
            .parse()
            .unwrap(),
    })
}

async fn leadership(api: &Api) -> Leadership {
    try_leadership(api).await.expect("/metrics answers")
}

/// Activity entries, newest first.
async fn activity(api: &Api) -> Vec<Value> {
    let (status, body) = api.get("/activity?limit=1000").await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().cloned().unwrap()
}

#[tokio::test]
async fn every_replica_serves_one_leads_and_all_see_its_changes() {
    let Some((database, _guard)) = flotilla_store::conformance::fresh_postgres().await else {
        return;
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Replica::spawn(dir_a.path(), &database);
    let api_a = a.api().await;
    let b = Replica::spawn(dir_b.path(), &database);
    let api_b = b.api().await;
    let (la, lb) = (leadership(&api_a).await, leadership(&api_b).await);
    assert!(la.leading && !lb.leading, "the first replica leads");

    let (status, replicas) = api_b.get("/control/replicas").await;
    assert_eq!(status, 200, "{replicas}");
    let items = replicas["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{replicas}");
    let holder = items
        .iter()
        .find(|r| !r["leases"].as_array().unwrap().is_empty())
        .unwrap();
    assert_eq!(holder["id"], la.replica.as_str());
    assert_eq!(holder["leases"][0]["name"], "leader");
    assert_eq!(holder["leases"][0]["generation"], la.generation);

    // A browser on B sees what A's tasks do.
    let mut stream = api_b.open("/events").await;
    assert_eq!(stream.status(), 200);
    api_b.create_set("web", 3, json!({})).await;
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        let mut text = String::new();
        while let Some(chunk) = stream.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("\"power_state\":\"running\"") {
                return text;
            }
        }
        text
    })
    .await
    .expect("B's event stream shows an instance A started");
    assert!(seen.contains("event: instance_changed"), "{seen}");
    api_b.wait_running("web", 3).await;

    // Only the leader's tasks ran; entries say who acted, and under which term.
    let (_, tasks) = api_b.get("/control/tasks").await;
    let reconciler = tasks["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "reconciler")
        .unwrap()
        .clone();
    assert_eq!(reconciler["activations"], 0, "{reconciler}");
    let entries = activity(&api_a).await;
    let create = entries
        .iter()
        .find(|e| e["operation"] == "scale_set.create")
        .unwrap();
    assert_eq!(create["replica"], lb.replica.as_str());
    assert_eq!(create["lease_generation"], Value::Null);
    let reconciles: Vec<&Value> = entries
        .iter()
        .filter(|e| e["operation"] == "reconcile")
        .collect();
    assert!(!reconciles.is_empty());
    for e in reconciles {
        assert_eq!(e["replica"], la.replica.as_str(), "{e}");
        assert_eq!(e["lease_generation"], la.generation, "{e}");
    }
}

#[tokio::test]
async fn a_paused_leader_is_fenced_and_a_killed_one_is_replaced() {
    let Some((database, _guard)) = flotilla_store::conformance::fresh_postgres().await else {
        return;
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Replica::spawn(dir_a.path(), &database);
    let api_a = a.api().await;
    let b = Replica::spawn(dir_b.path(), &database);
    let api_b = b.api().await;
    let first = leadership(&api_a).await;
    assert!(first.leading);
    api_a.create_set("web", 2, json!({})).await;
    api_a.wait_running("web", 2).await;

    // A stalls past its lease: B takes over within the lease time.
    a.signal("-STOP");
    let paused = Instant::now();
    wait_until("B leads", LEASE + Duration::from_secs(5), || async {
        try_leadership(&api_b).await.is_some_and(|l| l.leading)
    })
    .await;
    eprintln!("failover after a pause: {:?}", paused.elapsed());
    let second = leadership(&api_b).await;
    assert!(second.generation > first.generation);

    // A wakes: its writes are refused by the fence, and it steps down.
    a.signal("-CONT");
    wait_until(
        "A stepped down after a refused write",
        Duration::from_secs(10),
        || async {
            try_leadership(&api_a)
                .await
                .is_some_and(|l| !l.leading && l.refusals > 0)
        },
    )
    .await;
    let entries = activity(&api_b).await;
    let took_over = entries
        .iter()
        .find(|e| e["operation"] == "control.lead" && e["lease_generation"] == second.generation)
        .expect("B recorded its term")["id"]
        .as_i64()
        .unwrap();
    let late: Vec<&Value> = entries
        .iter()
        .filter(|e| {
            e["lease_generation"] == first.generation && e["id"].as_i64().unwrap() > took_over
        })
        .collect();
    assert!(
        late.is_empty(),
        "A wrote under its old term after B took over: {late:?}"
    );
    assert!(
        entries.iter().any(
            |e| e["operation"] == "control.step_down" && e["replica"] == first.replica.as_str()
        ),
        "A recorded its step-down"
    );

    // B dies: A takes over within the lease time and acts.
    let mut b = b;
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let killed = Instant::now();
    wait_until("A leads again", LEASE + Duration::from_secs(5), || async {
        try_leadership(&api_a).await.is_some_and(|l| l.leading)
    })
    .await;
    eprintln!("failover after a kill: {:?}", killed.elapsed());
    let third = leadership(&api_a).await;
    assert!(third.generation > second.generation);
    api_a
        .put("/scale-sets/web/capacity", json!({"capacity": 3}))
        .await;
    api_a.wait_running("web", 3).await;
    drop(api_b);
}
