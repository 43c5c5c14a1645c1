//! Several control-plane replicas on one PostgreSQL database and one standalone mock
//! hypervisor, as real processes (run when FLOTILLA_TEST_POSTGRES is set; CI sets it): one
//! leads and acts, every one serves and sees every change, a paused leader is fenced when
//! it wakes, a leader killed at a random instant of a scale-out or a rolling upgrade is
//! replaced within the lease time with no duplicate, orphan or lost VM and the rollout
//! resumed, a leader killed during repairs has each broken instance replaced once, a
//! webhook delivery retried across a failover succeeds once and the autoscaler keeps its
//! cooldown, and a killed replica's load balancer costs only the requests sent through it;
//! a standby shows the leader's probe results and metric ticks, and the leader counts
//! every replica's frontends. `FLOTILLA_FAILOVER_TRIALS` (default 1 of each) runs more kills and prints
//! the failover times (the closing figures use 20).

use std::collections::BTreeSet;
use std::process::Child;
use std::time::{Duration, Instant};

use flotilla_backend::Backend;
use flotilla_tests::{ADMIN, ADMIN_PASSWORD, Api, MockHypervisor, free_port, wait_until};
use serde_json::{Value, json};

use crate::autoscale::{capacity, receiver, recent, scale_actions};
use crate::health::{fast_probe, fault, repairs};

/// The lease's time to live: a successor takes over at most this long after the last
/// renewal, plus its retry period and the test's polling.
const LEASE: Duration = Duration::from_secs(15);

/// A `flotilla serve` process on the shared database and hypervisor.
struct Replica {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Replica {
    fn spawn_in(
        dir: tempfile::TempDir,
        hypervisor: &MockHypervisor,
        database: &str,
        extra: &[&str],
    ) -> Self {
        let port = free_port();
        let child = hypervisor
            .serve_command(dir.path(), port)
            .args(["--metrics-interval", "1s"])
            .args(extra)
            .env("FLOTILLA_DATABASE_URL", database)
            .spawn()
            .expect("start flotilla serve");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
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
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// `kill -9`, and the data directory back for a successor.
    fn kill(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A replica's own view of its leadership, from its `/metrics`.
struct Leadership {
    replica: String,
    leading: bool,
    generation: i64,
    refusals: u64,
}

/// `None` while it does not answer: a process just woken may drop the connections kept
/// from before its pause.
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

/// The replicas, their clients, and the one leading.
struct Cluster {
    hypervisor: MockHypervisor,
    database: String,
    /// The flags every replica (and every successor) gets.
    flags: Vec<String>,
    replicas: Vec<(Replica, Api)>,
}

impl Cluster {
    /// `n` replicas serving no load balancer frontends, with `extra` flags.
    async fn start(hypervisor: MockHypervisor, database: String, n: usize, extra: &[&str]) -> Self {
        let mut cluster = Self {
            hypervisor,
            database,
            flags: ["--lb-frontends", "none"]
                .iter()
                .chain(extra)
                .map(|f| f.to_string())
                .collect(),
            replicas: Vec::new(),
        };
        for _ in 0..n {
            cluster.spawn(tempfile::tempdir().unwrap()).await;
        }
        cluster
    }

    /// Starts one more replica over `dir` and waits until it serves.
    async fn spawn(&mut self, dir: tempfile::TempDir) {
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        let replica = Replica::spawn_in(dir, &self.hypervisor, &self.database, &flags);
        let api = replica.api().await;
        self.replicas.push((replica, api));
    }

    /// The index of the replica leading now, waiting up to `within` for one.
    async fn leader(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            for (i, (_, api)) in self.replicas.iter().enumerate() {
                if try_leadership(api).await.is_some_and(|l| l.leading) {
                    return i;
                }
            }
            assert!(Instant::now() < deadline, "no replica leads");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the leader (`kill -9`) after `after`, starts a successor process in its
    /// place, and answers how long until another replica led and began acting (its
    /// `control.lead` entry).
    async fn kill_leader(&mut self, after: Duration) -> Duration {
        let leader = self.leader(Duration::from_secs(5)).await;
        let old = leadership(&self.replicas[leader].1).await.generation;
        tokio::time::sleep(after).await;
        let (replica, _) = self.replicas.remove(leader);
        let killed = Instant::now();
        let dir = replica.kill();
        self.spawn(dir).await;
        let next = self.leader(LEASE + Duration::from_secs(5)).await;
        let took = killed.elapsed();
        let new = leadership(&self.replicas[next].1).await.generation;
        assert!(new > old, "a new term: {old} then {new}");
        took
    }

    fn any(&self) -> &Api {
        &self.replicas[0].1
    }
}

/// [`assert_vms_are_the_records`], and no instance was replaced: the new leader found the
/// VMs its predecessor made.
async fn assert_no_duplicate_or_orphan(
    cluster: &Cluster,
    set: &str,
    expected: usize,
) -> Vec<Option<i64>> {
    let (records, generations) = assert_vms_are_the_records(cluster, set, expected).await;
    let expected_ids: BTreeSet<String> = (0..expected).map(|n| format!("{set}_{n}")).collect();
    assert_eq!(
        records.into_iter().collect::<BTreeSet<_>>(),
        expected_ids,
        "instances were replaced"
    );
    generations
}

/// What the hypervisor holds for the fleet's installation, against the instance records:
/// every record has its VM and every VM its record, each once, each made under a lease.
/// Answers the records' ids and the generations recorded in the VMs.
async fn assert_vms_are_the_records(
    cluster: &Cluster,
    set: &str,
    expected: usize,
) -> (Vec<String>, Vec<Option<i64>>) {
    let api = cluster.any();
    let (_, backend) = api.get("/backend/vms").await;
    let installation = backend["items"][0]["installation_id"]
        .as_str()
        .expect("the fleet's VMs carry its installation id")
        .to_string();
    let client = cluster.hypervisor.client(&installation).await;
    let listed = client.list(Some(set)).await.unwrap();
    let generations: Vec<Option<i64>> = listed.iter().map(|vm| vm.lease_generation).collect();
    assert!(
        generations.iter().all(Option::is_some),
        "VMs made outside a lease: {listed:?}"
    );
    let vms: Vec<String> = listed.into_iter().map(|vm| vm.id).collect();
    let records: Vec<String> = api
        .instances(set)
        .await
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    let unique: BTreeSet<&String> = vms.iter().collect();
    assert_eq!(unique.len(), vms.len(), "duplicate VMs: {vms:?}");
    assert_eq!(
        unique,
        records.iter().collect::<BTreeSet<_>>(),
        "VMs and records differ"
    );
    assert_eq!(records.len(), expected);
    (records, generations)
}

fn trials() -> usize {
    std::env::var("FLOTILLA_FAILOVER_TRIALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// A pseudo-random instant in `0..max` (a fresh seed each run, printed to replay).
fn random_delay(max: Duration, seed: &mut u64) -> Duration {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    max.mul_f64((*seed % 1000) as f64 / 1000.0)
}

async fn fresh() -> Option<(
    MockHypervisor,
    String,
    Box<dyn std::any::Any>,
    tempfile::TempDir,
)> {
    let (database, guard) = flotilla_store::conformance::fresh_postgres().await?;
    let dir = tempfile::tempdir().unwrap();
    let hypervisor = MockHypervisor::start(dir.path(), &["--mock-latency", "300ms"]).await;
    Some((hypervisor, database, Box::new(guard), dir))
}

#[tokio::test]
async fn every_replica_serves_one_leads_and_all_see_its_changes() {
    let Some((hypervisor, database, _guard, _dir)) = fresh().await else {
        return;
    };
    let cluster = Cluster::start(hypervisor, database, 2, &[]).await;
    let (api_a, api_b) = (&cluster.replicas[0].1, &cluster.replicas[1].1);
    let (la, lb) = (leadership(api_a).await, leadership(api_b).await);
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
    api_b
        .create_set("web", 3, json!({"health_probe": fast_probe("/health", 1)}))
        .await;
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

    // B does not probe: it shows the results A's prober shared.
    wait_until(
        "B shows every instance's last probe",
        Duration::from_secs(20),
        || async {
            api_b
                .instances("web")
                .await
                .iter()
                .all(|i| i["last_probe"]["success"] == true)
        },
    )
    .await;
    // B does not collect metrics: its live charts are the leader's ticks (every second
    // here), not only the minute roll-ups.
    wait_until(
        "B's chart has the leader's ticks",
        Duration::from_secs(20),
        || async {
            let (_, m) = api_b.get(&recent("web", "instances_running")).await;
            let points = m["series"][0]["points"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            points.len() >= 5 && points.last().is_some_and(|p| p["average"] == 3.0)
        },
    )
    .await;
    // Evaluating autoscale is the leader's work: a standby says where to go.
    let (status, problem) = api_b.post_empty("/scale-sets/web/autoscale/evaluate").await;
    assert_eq!(status, 503, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("leader lease"),
        "{problem}"
    );
    let (status, decision) = api_a.post_empty("/scale-sets/web/autoscale/evaluate").await;
    assert_eq!((status, decision), (200, Value::Null), "autoscale is off");

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
    let entries = activity(api_a).await;
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
    let made = assert_no_duplicate_or_orphan(&cluster, "web", 3).await;
    assert_eq!(made, [Some(la.generation); 3], "each VM records A's term");
}

#[tokio::test]
async fn a_paused_leader_is_fenced_when_it_wakes() {
    let Some((hypervisor, database, _guard, _dir)) = fresh().await else {
        return;
    };
    let cluster = Cluster::start(hypervisor, database, 2, &[]).await;
    let ((a, api_a), (_, api_b)) = (&cluster.replicas[0], &cluster.replicas[1]);
    let first = leadership(api_a).await;
    assert!(first.leading);
    api_a.create_set("web", 2, json!({})).await;
    api_a.wait_running("web", 2).await;

    // A stalls past its lease: B takes over within the lease time.
    a.signal("-STOP");
    let paused = Instant::now();
    wait_until("B leads", LEASE + Duration::from_secs(5), || async {
        try_leadership(api_b).await.is_some_and(|l| l.leading)
    })
    .await;
    eprintln!("failover after a pause: {:?}", paused.elapsed());
    let second = leadership(api_b).await;
    assert!(second.generation > first.generation);
    api_b
        .put("/scale-sets/web/capacity", json!({"capacity": 4}))
        .await;

    // A wakes: its writes are refused by the fence, and it steps down.
    a.signal("-CONT");
    wait_until(
        "A stepped down after a refused write",
        Duration::from_secs(10),
        || async {
            try_leadership(api_a)
                .await
                .is_some_and(|l| !l.leading && l.refusals > 0)
        },
    )
    .await;
    api_b.wait_running("web", 4).await;
    let entries = activity(api_b).await;
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
    assert_no_duplicate_or_orphan(&cluster, "web", 4).await;
}

#[tokio::test]
async fn a_leader_killed_during_a_scale_out_or_a_rollout_is_replaced_without_a_trace() {
    let Some((hypervisor, database, _guard, _dir)) = fresh().await else {
        return;
    };
    let mut cluster = Cluster::start(hypervisor, database, 3, &[]).await;
    let mut seed = (std::process::id() as u64) << 20 | 0x9e37;
    eprintln!("failover trials, seed {seed}");
    let mut failovers = Vec::new();
    for trial in 0..trials() {
        let set = format!("t{trial}");
        // Scaled 0 → 30 through a replica that does not lead.
        let leader = cluster.leader(Duration::from_secs(5)).await;
        let other = &cluster.replicas[(leader + 1) % cluster.replicas.len()].1;
        other
            .create_set(
                &set,
                0,
                json!({"health_probe": {"protocol": "http", "port": 80, "path": "/health",
                        "interval_seconds": 2, "timeout_seconds": 1, "healthy_threshold": 1,
                        "unhealthy_threshold": 2},
                       "upgrade_policy": {"mode": "rolling", "rolling": {
                    "max_batch_instance_percent": 20, "max_unhealthy_instance_percent": 20,
                    "max_unhealthy_upgraded_instance_percent": 20}}}),
            )
            .await;
        let (status, body) = other
            .put(
                &format!("/scale-sets/{set}/capacity"),
                json!({"capacity": 30}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let took = cluster
            .kill_leader(random_delay(Duration::from_secs(3), &mut seed))
            .await;
        eprintln!("trial {trial}: failover during a scale-out: {took:?}");
        failovers.push(took);
        cluster.any().wait_running(&set, 30).await;
        assert_no_duplicate_or_orphan(&cluster, &set, 30).await;

        // A rolling upgrade, its leader killed midway: the rollout resumes and completes.
        let (status, body) = cluster
            .any()
            .put(
                &format!("/scale-sets/{set}/model"),
                json!({"image": "ubuntu-24.04", "vcpus": 2, "memory_mib": 2048,
                       "disk_gib": 10, "user_data": null, "app_port": 80}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let took = cluster
            .kill_leader(random_delay(Duration::from_secs(4), &mut seed))
            .await;
        eprintln!("trial {trial}: failover during a rollout: {took:?}");
        failovers.push(took);
        let api = cluster.any();
        wait_until(
            "the rollout completed",
            Duration::from_secs(180),
            || async {
                let (_, list) = api.get(&format!("/scale-sets/{set}/rollouts")).await;
                list["items"][0]["state"] == "completed"
            },
        )
        .await;
        let instances = api.wait_running(&set, 30).await;
        assert!(
            instances.iter().all(|i| i["model_version"] == 2),
            "every instance on version 2"
        );
        assert_no_duplicate_or_orphan(&cluster, &set, 30).await;
        let entries = activity(api).await;
        let scaled = entries
            .iter()
            .filter(|e| e["operation"] == "scale_set.scale" && e["scale_set"] == set.as_str())
            .count();
        assert_eq!(scaled, 1, "the scale request recorded once");
    }
    failovers.sort();
    eprintln!(
        "failover over {} kills: median {:?}, max {:?}",
        failovers.len(),
        failovers[failovers.len() / 2],
        failovers[failovers.len() - 1]
    );
}

/// A header's value in a request head as a receiver got it.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[tokio::test]
async fn a_leader_killed_during_repairs_or_a_webhook_delivery_acts_once() {
    let Some((hypervisor, database, _guard, _dir)) = fresh().await else {
        return;
    };
    // The webhook receiver listens on loopback, which webhooks may reach only when allowed.
    let flags = [
        "--webhook-allow",
        "127.0.0.0/8",
        "--autoscale-interval",
        "1s",
    ];
    let mut cluster = Cluster::start(hypervisor, database, 3, &flags).await;
    let mut seed = (std::process::id() as u64) << 20 | 0x7f4a;
    eprintln!("repair failover trials, seed {seed}");
    for trial in 0..trials() {
        // Two instances found unhealthy; the leader killed at a random instant of their
        // repairs: each is replaced once, and nothing else.
        let set = format!("r{trial}");
        let api = cluster.any().clone();
        api.create_set(
            &set,
            3,
            json!({"health_probe": fast_probe("/health", 1),
                   "automatic_repairs": {"enabled": true, "grace_period_seconds": 2,
                                         "repair_action": "replace"}}),
        )
        .await;
        api.wait_healthy(&set, 3).await;
        let broken = [format!("{set}_0"), format!("{set}_1")];
        for id in &broken {
            fault(&api, "unhealthy", id).await;
        }
        wait_until("a repair began", Duration::from_secs(30), || async {
            !repairs(&api, &set).await.is_empty()
        })
        .await;
        let took = cluster
            .kill_leader(random_delay(Duration::from_secs(3), &mut seed))
            .await;
        eprintln!("trial {trial}: failover during repairs: {took:?}");
        let api = cluster.any().clone();
        wait_until(
            "both are replaced and all are healthy",
            Duration::from_secs(120),
            || async {
                let items = api.instances(&set).await;
                items.len() == 3
                    && items.iter().all(|i| {
                        i["health_state"] == "healthy" && !broken.iter().any(|b| i["id"] == *b)
                    })
            },
        )
        .await;
        assert_vms_are_the_records(&cluster, &set, 3).await;
        let repaired: Vec<String> = repairs(&api, &set)
            .await
            .iter()
            .filter(|e| e["result"] == "succeeded")
            .map(|e| e["target"].as_str().unwrap().to_string())
            .collect();
        let mut once = repaired.clone();
        once.sort();
        once.dedup();
        assert_eq!(once.len(), repaired.len(), "repaired twice: {repaired:?}");
        assert!(
            repaired.iter().all(|t| broken.contains(t)),
            "a healthy instance was repaired: {repaired:?}"
        );
    }

    // One scale-out, its webhook failing at first; the leader killed while it retries:
    // the next leader sends the same delivery until it succeeds, and the autoscaler, in
    // its cooldown, does not act again.
    let hook = receiver(vec![503, 503, 503]).await;
    let api = cluster.any().clone();
    api.create_set(
        "auto",
        2,
        json!({"demand": {"pattern": "constant", "rps": 20, "noise_percent": 0}}),
    )
    .await;
    api.wait_running("auto", 2).await;
    let rule = |operator: &str, threshold: f64, direction: &str| {
        json!({"metric": "demand_requests_per_second", "statistic": "average",
               "time_grain_seconds": 5, "time_window_seconds": 5, "time_aggregation": "average",
               "operator": operator, "threshold": threshold, "direction": direction,
               "type": "change_count", "value": 2, "cooldown_seconds": 600})
    };
    let (status, body) = api
        .put(
            "/scale-sets/auto/autoscale",
            json!({"enabled": true, "initialization_seconds": 0,
                   "profiles": [{"name": "default",
                                 "capacity": {"minimum": 2, "maximum": 10, "default": 2},
                                 "rules": [rule("greater_than", 100.0, "increase")],
                                 "target_tracking": null, "recurrence": null, "fixed_date": null}],
                   "notifications": {"webhooks": [{"url": hook.url, "secret": "s3cret"}]}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api
        .put(
            "/scale-sets/auto/demand",
            json!({"pattern": "constant", "rps": 400, "noise_percent": 0}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_until(
        "the webhook failed twice",
        Duration::from_secs(60),
        || async { hook.requests.lock().unwrap().len() >= 2 },
    )
    .await;
    let took = cluster.kill_leader(Duration::ZERO).await;
    eprintln!("failover during a webhook's retries: {took:?}");
    let api = cluster.any().clone();
    wait_until(
        "the delivery succeeded",
        Duration::from_secs(60),
        || async {
            activity(&api)
                .await
                .iter()
                .any(|e| e["operation"] == "autoscale.webhook" && e["result"] == "succeeded")
        },
    )
    .await;
    // Long enough for a second action or a second delivery to show.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        scale_actions(&api, "auto").await,
        [("scale_out".to_string(), 2, 4)],
        "one scale-out: the new leader kept the cooldown"
    );
    assert_eq!(capacity(&api, "auto").await, 4);
    let deliveries: Vec<Value> = activity(&api)
        .await
        .into_iter()
        .filter(|e| e["operation"] == "autoscale.webhook")
        .collect();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    let requests = hook.requests.lock().unwrap().clone();
    // Three answered 503, the fourth 200 — and none after it.
    assert_eq!(requests.len(), 4, "one successful delivery");
    let entry = deliveries[0]["id"].as_i64().unwrap().to_string();
    for (head, _) in &requests {
        assert_eq!(
            header(head, "X-Flotilla-Delivery"),
            Some(entry.as_str()),
            "{head}"
        );
    }
    let decisions: BTreeSet<&str> = requests
        .iter()
        .filter_map(|(head, _)| header(head, "X-Flotilla-Decision"))
        .collect();
    assert_eq!(decisions.len(), 1, "one decision: {decisions:?}");
}

/// Sends requests one after another to `url` for `period`; answers how many succeeded and
/// how many failed, and when the first failure came.
async fn traffic(url: String, period: Duration) -> (u64, u64, Option<Duration>) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let started = Instant::now();
    let (mut ok, mut failed, mut first_failure) = (0, 0, None);
    while started.elapsed() < period {
        match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => ok += 1,
            _ => {
                failed += 1;
                first_failure.get_or_insert(started.elapsed());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    (ok, failed, first_failure)
}

#[tokio::test]
async fn a_killed_replica_costs_only_the_connections_its_load_balancer_held() {
    let Some((hypervisor, database, _guard, _dir)) = fresh().await else {
        return;
    };
    // Two replicas on one machine, each serving the frontends on its own address.
    let spawn = |address: &str| {
        let extra = ["--lb-frontends", "all", "--lb-address", address];
        Replica::spawn_in(tempfile::tempdir().unwrap(), &hypervisor, &database, &extra)
    };
    let a = spawn("127.0.0.2");
    let api_a = a.api().await;
    let b = spawn("127.0.0.3");
    let api_b = b.api().await;
    let port = free_port();
    // Created through B: A (the leader) builds the set; both replicas serve its frontend.
    api_b
        .create_set(
            "web",
            2,
            json!({"load_balancer": {"frontends": [{"name": "web", "protocol": "http", "port": port}]}}),
        )
        .await;
    api_a.wait_running("web", 2).await;
    let (via_a, via_b) = (
        format!("http://127.0.0.2:{port}/"),
        format!("http://127.0.0.3:{port}/"),
    );
    for url in [&via_a, &via_b] {
        wait_until(
            &format!("{url} serves"),
            Duration::from_secs(20),
            || async {
                reqwest::Client::builder()
                    .no_proxy()
                    .build()
                    .unwrap()
                    .get(url.as_str())
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            },
        )
        .await;
    }
    // Traffic through B only: the leader's metrics count it (each replica records its
    // frontends' counters; the leader adds them).
    let only_b = tokio::spawn(traffic(via_b.clone(), Duration::from_secs(6)));
    wait_until(
        "the leader counts B's requests",
        Duration::from_secs(15),
        || async {
            let (_, m) = api_a.get(&recent("web", "requests_per_second")).await;
            m["series"][0]["points"]
                .as_array()
                .and_then(|p| p.last())
                .is_some_and(|p| p["average"].as_f64().unwrap_or(0.0) > 5.0)
        },
    )
    .await;
    let (b_only_ok, _, _) = only_b.await.unwrap();
    let (_, lb_a) = api_a.get("/scale-sets/web/load-balancer").await;
    let served_by_a = lb_a["stats"][0]["requests"].as_u64().unwrap();
    assert!(
        served_by_a < 5 && b_only_ok > 50,
        "A's frontend served {served_by_a}, B's {b_only_ok}: the rate must be B's"
    );

    let period = Duration::from_secs(6);
    let through_a = tokio::spawn(traffic(via_a, period));
    let through_b = tokio::spawn(traffic(via_b, period));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed = Instant::now();
    drop(b);
    let (a_ok, a_failed, _) = through_a.await.unwrap();
    let (b_ok, b_failed, b_first) = through_b.await.unwrap();
    eprintln!(
        "through A: {a_ok} answered, {a_failed} failed; through B: {b_ok} answered, {b_failed} failed"
    );
    assert_eq!(
        a_failed, 0,
        "the surviving replica's frontend lost requests"
    );
    assert!(a_ok > 50, "only {a_ok} requests through A");
    assert!(
        b_ok > 10,
        "only {b_ok} requests through B before it was killed"
    );
    assert!(
        b_failed > 0,
        "B's frontend still answered after B was killed"
    );
    assert!(
        b_first.is_some_and(|t| t + Duration::from_millis(500) >= Duration::from_secs(2)),
        "B failed before it was killed ({killed:?})"
    );
}
