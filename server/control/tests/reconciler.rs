//! Scenario tests of the reconciler: a recording wrapper around the stepped mock asserts the
//! exact backend calls each activation makes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flotilla_backend::mock::{Mock, MockConfig};
use flotilla_backend::{Backend, FaultInjection, Result as BackendResult, VmMetrics, VmSpec};
use flotilla_control::{Fleet, FleetConfig, ManualClock};
use flotilla_domain::{
    Fault, InstanceAction, Model, ObservedVm, PowerState, ProvisioningState, ScaleSetSpec,
    WarmPoolState, ZoneStatus,
};

/// Wraps a backend and records every mutating call as `op id`.
struct Recording {
    inner: Mock,
    calls: Mutex<Vec<String>>,
}

impl Recording {
    fn take(&self) -> Vec<String> {
        let mut calls = std::mem::take(&mut *self.calls.lock().unwrap());
        calls.sort();
        calls
    }
    fn record(&self, op: &str, id: &str) {
        self.calls.lock().unwrap().push(format!("{op} {id}"));
    }
}

#[async_trait]
impl Backend for Recording {
    fn kind(&self) -> &'static str {
        "recording"
    }
    fn installation_id(&self) -> &str {
        self.inner.installation_id()
    }
    async fn adopt(&self, id: &str) -> BackendResult<ObservedVm> {
        self.record("adopt", id);
        self.inner.adopt(id).await
    }
    async fn zones(&self) -> BackendResult<Vec<ZoneStatus>> {
        self.inner.zones().await
    }
    async fn images(&self) -> BackendResult<Vec<String>> {
        self.inner.images().await
    }
    async fn create(&self, spec: &VmSpec) -> BackendResult<ObservedVm> {
        self.record("create", &spec.id);
        self.inner.create(spec).await
    }
    async fn delete(&self, id: &str, force: bool) -> BackendResult<()> {
        self.record("delete", id);
        self.inner.delete(id, force).await
    }
    async fn start(&self, id: &str) -> BackendResult<ObservedVm> {
        self.record("start", id);
        self.inner.start(id).await
    }
    async fn stop(&self, id: &str, force: bool) -> BackendResult<ObservedVm> {
        self.record("stop", id);
        self.inner.stop(id, force).await
    }
    async fn deallocate(&self, id: &str) -> BackendResult<ObservedVm> {
        self.record("deallocate", id);
        self.inner.deallocate(id).await
    }
    async fn restart(&self, id: &str) -> BackendResult<ObservedVm> {
        self.record("restart", id);
        self.inner.restart(id).await
    }
    async fn reimage(&self, id: &str, model: &Model, version: u32) -> BackendResult<ObservedVm> {
        self.record("reimage", id);
        self.inner.reimage(id, model, version).await
    }
    async fn park(&self, id: &str, state: WarmPoolState) -> BackendResult<ObservedVm> {
        self.record("park", id);
        self.inner.park(id, state).await
    }
    async fn list(&self, scale_set: Option<&str>) -> BackendResult<Vec<ObservedVm>> {
        self.inner.list(scale_set).await
    }
    async fn get(&self, id: &str) -> BackendResult<Option<ObservedVm>> {
        self.inner.get(id).await
    }
    async fn metrics(&self, scale_set: Option<&str>) -> BackendResult<Vec<VmMetrics>> {
        self.inner.metrics(scale_set).await
    }
    fn faults(&self) -> Option<&dyn FaultInjection> {
        Some(&self.inner)
    }
}

struct Scenario {
    fleet: Fleet,
    backend: Arc<Recording>,
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A fleet on in-memory SQLite and a zero-latency mock whose loops never run by themselves
/// (the period is an hour): each step is an explicit `reconcile_now`.
async fn scenario() -> Scenario {
    let store = flotilla_store::connect("sqlite::memory:").await.unwrap();
    let mock = Mock::open(MockConfig::instant()).await.unwrap();
    recorded(
        store,
        mock,
        Arc::new(ManualClock::new(t0())),
        FleetConfig::default(),
    )
    .await
}

/// A fleet over `store` and a recording wrapper of `mock`, whose loops never run by
/// themselves (the period is an hour), with `config`'s other settings.
async fn recorded(
    store: Arc<dyn flotilla_store::Store>,
    mock: Mock,
    clock: Arc<ManualClock>,
    config: FleetConfig,
) -> Scenario {
    let backend = Arc::new(Recording {
        inner: mock,
        calls: Mutex::new(vec![]),
    });
    let fleet = Fleet::new(
        store,
        backend.clone(),
        clock,
        FleetConfig {
            reconcile_interval: Duration::from_secs(3600),
            settle_interval: Duration::from_secs(3600),
            ..config
        },
    );
    assert!(fleet.lead_by_hand().await.unwrap());
    Scenario { fleet, backend }
}

impl Scenario {
    /// Runs activations until one does nothing; returns the backend calls made.
    async fn converge(&self, name: &str) -> Vec<String> {
        for _ in 0..10 {
            if let flotilla_control::Outcome::Done { actions: 0, .. } =
                self.fleet.reconcile_now(name).await.unwrap()
            {
                break;
            }
        }
        self.backend.take()
    }
}

#[tokio::test]
async fn three_to_five_issues_exactly_two_creates_and_no_delete() {
    let s = scenario().await;
    s.fleet
        .create_scale_set(ScaleSetSpec::example("web", 3), "test")
        .await
        .unwrap();
    assert_eq!(
        s.converge("web").await,
        ["create web_0", "create web_1", "create web_2"]
    );
    s.fleet.set_capacity("web", 5, "test").await.unwrap();
    assert_eq!(s.converge("web").await, ["create web_3", "create web_4"]);
    assert_eq!(
        s.converge("web").await,
        Vec::<String>::new(),
        "steady state calls nothing"
    );
}

#[tokio::test]
async fn five_to_two_deletes_three_and_never_the_protected() {
    let s = scenario().await;
    s.fleet
        .create_scale_set(ScaleSetSpec::example("web", 5), "test")
        .await
        .unwrap();
    s.converge("web").await;
    let protect = flotilla_domain::Protection {
        protect_from_scale_in: true,
        protect_from_scale_set_actions: false,
    };
    s.fleet
        .set_protection("web", "web_4", protect, "test")
        .await
        .unwrap();
    s.fleet.set_capacity("web", 2, "test").await.unwrap();
    let calls = s.converge("web").await;
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(calls.iter().all(|c| c.starts_with("delete ")), "{calls:?}");
    assert!(!calls.contains(&"delete web_4".to_string()));
}

#[tokio::test]
async fn actions_become_exactly_one_backend_call_each() {
    let s = scenario().await;
    s.fleet
        .create_scale_set(ScaleSetSpec::example("web", 3), "test")
        .await
        .unwrap();
    s.converge("web").await;
    s.fleet
        .instance_action("web", "web_0", InstanceAction::Stop, "t")
        .await
        .unwrap();
    s.fleet
        .instance_action("web", "web_1", InstanceAction::Reimage, "t")
        .await
        .unwrap();
    s.fleet
        .instance_action("web", "web_2", InstanceAction::Deallocate, "t")
        .await
        .unwrap();
    assert_eq!(
        s.converge("web").await,
        ["deallocate web_2", "reimage web_1", "stop web_0"]
    );
    let instances = s.fleet.list_instances("web").await.unwrap();
    assert!(
        instances
            .iter()
            .all(|i| i.provisioning_state == ProvisioningState::Succeeded)
    );
    assert_eq!(instances[0].power_state, PowerState::Stopped);
    assert_eq!(instances[2].power_state, PowerState::Deallocated);
    s.fleet
        .instance_action("web", "web_0", InstanceAction::Start, "t")
        .await
        .unwrap();
    s.fleet
        .instance_action("web", "web_1", InstanceAction::Delete, "t")
        .await
        .unwrap();
    assert_eq!(s.converge("web").await, ["delete web_1", "start web_0"]);
    assert_eq!(s.fleet.get_scale_set("web").await.unwrap().spec.capacity, 2);
}

#[tokio::test]
async fn failed_creates_are_replaced() {
    let s = scenario().await;
    s.fleet
        .inject_fault(Fault::CreateFailureRate { rate: 1.0 }, "test")
        .await
        .unwrap();
    s.fleet
        .create_scale_set(ScaleSetSpec::example("web", 2), "test")
        .await
        .unwrap();
    s.fleet.reconcile_now("web").await.unwrap();
    let instances = s.fleet.list_instances("web").await.unwrap();
    assert!(
        instances
            .iter()
            .all(|i| i.provisioning_state == ProvisioningState::Failed)
    );
    assert!(
        instances[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("creat"),
        "{:?}",
        instances[0].last_error
    );
    s.backend.take();
    s.fleet.clear_faults("test").await.unwrap();
    let calls = s.converge("web").await;
    // The failed records are deleted (their VMs never existed) and two new ones created.
    assert_eq!(
        calls,
        [
            "create web_2",
            "create web_3",
            "delete web_0",
            "delete web_1"
        ]
    );
    let ids: Vec<String> = s
        .fleet
        .list_instances("web")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, ["web_2", "web_3"]);
}

#[tokio::test]
async fn deleting_a_set_deletes_every_vm_then_the_record() {
    let s = scenario().await;
    let mut spec = ScaleSetSpec::example("web", 3);
    spec.new_instances_protected_from_scale_in = true;
    s.fleet.create_scale_set(spec, "test").await.unwrap();
    s.converge("web").await;
    s.fleet.delete_scale_set("web", "test").await.unwrap();
    let outcome = s.fleet.reconcile_now("web").await.unwrap();
    assert!(matches!(
        outcome,
        flotilla_control::Outcome::Done { actions: 3, .. }
    ));
    assert_eq!(
        s.backend.take(),
        ["delete web_0", "delete web_1", "delete web_2"]
    );
    assert_eq!(
        s.fleet.reconcile_now("web").await.unwrap(),
        flotilla_control::Outcome::Gone
    );
    assert!(s.fleet.get_scale_set("web").await.is_err());
}

/// A scale-in on a mock whose operations take time: the delete takes the latency, as a
/// real host's does, so the victim's record stays `deleting` until its VM is gone (which
/// serves no more from the start), and the VM is never taken for an orphan.
#[tokio::test]
async fn a_scale_in_victim_stays_deleting_for_the_mocks_latency() {
    let store = flotilla_store::connect("sqlite::memory:").await.unwrap();
    let mock = Mock::open(MockConfig::stepped().with_jitter(0.0))
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let s = recorded(store, mock, clock, FleetConfig::default()).await;
    let mock = &s.backend.inner;
    s.fleet
        .create_scale_set(ScaleSetSpec::example("web", 2), "test")
        .await
        .unwrap();
    s.converge("web").await;
    mock.advance(Duration::from_secs(1)).await;
    s.converge("web").await;
    s.fleet.set_capacity("web", 1, "test").await.unwrap();

    let watch = async {
        // The activation is in the delete once a VM of the set is on its way out.
        let victim = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let vms = mock.list(Some("web")).await.unwrap();
                if let Some(vm) = vms.iter().find(|v| v.power_state == PowerState::Stopping) {
                    break vm.id.clone();
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("while the activation waits for its delete, the victim is listed stopping");
        let record = s.fleet.get_instance("web", &victim).await.unwrap();
        assert_eq!(record.provisioning_state, ProvisioningState::Deleting);
        mock.advance(Duration::from_millis(999)).await;
        assert!(mock.get(&victim).await.unwrap().is_some(), "not before 1 s");
        mock.advance(Duration::from_millis(1)).await;
        victim
    };
    let (outcome, victim) = tokio::join!(s.fleet.reconcile_now("web"), watch);
    outcome.unwrap();
    assert_eq!(s.backend.take(), [format!("delete {victim}")]);
    assert_eq!(mock.get(&victim).await.unwrap(), None);
    let ids: Vec<String> = s
        .fleet
        .list_instances("web")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids.len(), 1);
    assert!(!ids.contains(&victim));
    assert_eq!(s.converge("web").await, Vec::<String>::new());
}

fn vm_spec(id: &str, set: &str) -> VmSpec {
    VmSpec {
        id: id.into(),
        scale_set: set.into(),
        zone: "1".into(),
        fault_domain: 0,
        model_version: 1,
        model: ScaleSetSpec::example(set, 1).model,
        lease_generation: None,
        closed_fault_domains: Vec::new(),
    }
}

/// What `start` and the orphan sweep do with each kind of VM the backend holds: this
/// installation's VMs of known sets are kept; a VM of an unknown set is noticed and removed
/// only after the grace period; another installation's VMs (even of a set with the same
/// name) are never touched; VMs from before installations had ids are adopted when they
/// have a record here, else left alone.
#[tokio::test]
async fn start_adopts_known_vms_and_removes_orphans_only_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let journal = |id: &str| {
        MockConfig::instant()
            .with_state_dir(dir.path())
            .with_installation_id(id)
    };
    // Another installation's VMs on the same (simulated) hosts, one in a set named like ours.
    let other = Mock::open(journal("other")).await.unwrap();
    other.create(&vm_spec("theirs_0", "theirs")).await.unwrap();
    other.create(&vm_spec("web_7", "web")).await.unwrap();
    other.close().await;

    let store = flotilla_store::connect("sqlite::memory:").await.unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let s = recorded(
        store,
        Mock::open(journal("ours")).await.unwrap(),
        clock.clone(),
        FleetConfig {
            orphan_grace: Duration::from_secs(600),
            ..FleetConfig::default()
        },
    )
    .await;
    let (fleet, backend) = (s.fleet.clone(), s.backend.clone());
    fleet
        .create_scale_set(ScaleSetSpec::example("web", 2), "test")
        .await
        .unwrap();
    assert_eq!(s.converge("web").await, ["create web_0", "create web_1"]);
    // A VM left behind by a scale set that no longer exists (a crash between steps, or a
    // database restored from an older backup).
    backend
        .inner
        .create(&vm_spec("ghost_0", "ghost"))
        .await
        .unwrap();
    backend.take();

    fleet.start().await.unwrap();
    fleet.sweep_orphans_now().await.unwrap();
    assert_eq!(
        backend.take(),
        Vec::<String>::new(),
        "nothing touched at first sight"
    );
    let noticed = fleet
        .activity(&flotilla_domain::ActivityFilter {
            operation: Some("backend.orphans".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(noticed.len(), 1, "{noticed:?}");
    assert_eq!(noticed[0].scale_set.as_deref(), Some("ghost"));
    assert_eq!(noticed[0].details["vms"], serde_json::json!(["ghost_0"]));
    // Reconciling "web" leaves the other installation's web_7 alone, and its load is not
    // this set's: the metrics count the set's own two instances.
    assert_eq!(s.converge("web").await, Vec::<String>::new());
    fleet.collect_metrics_now().await.unwrap();
    let now = fleet.now();
    let answer = fleet
        .metrics(
            "web",
            &flotilla_control::MetricsQuery {
                metric: Some("cpu_percent".into()),
                from: Some(now - chrono::Duration::minutes(1)),
                to: Some(now + chrono::Duration::seconds(1)),
                step: Some(1),
                instance: None,
            },
        )
        .await
        .unwrap();
    // Every tick (the collector's own, at start, and this one) fell in the same second.
    let ticks = fleet.collector_stats().ticks;
    let last = answer.series[0].points.last().expect("a point");
    assert_eq!(
        u64::from(last.count),
        2 * ticks,
        "two VMs a tick: {answer:?}"
    );

    clock.advance(chrono::Duration::seconds(599));
    fleet.sweep_orphans_now().await.unwrap();
    assert_eq!(
        backend.take(),
        Vec::<String>::new(),
        "not before the grace period"
    );
    clock.advance(chrono::Duration::seconds(1));
    fleet.sweep_orphans_now().await.unwrap();
    assert_eq!(backend.take(), ["delete ghost_0"]);
    let ids: Vec<String> = backend
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(ids, ["theirs_0", "web_0", "web_1", "web_7"]);
    let removed = fleet
        .activity(&flotilla_domain::ActivityFilter {
            operation: Some("backend.orphans_removed".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        removed[0].details["removed"],
        serde_json::json!(["ghost_0"])
    );
    let listed = fleet.backend_vms().await.unwrap();
    let foreign: Vec<&str> = listed
        .iter()
        .filter(|v| v.foreign)
        .map(|v| v.vm.id.as_str())
        .collect();
    assert_eq!(foreign, ["theirs_0", "web_7"]);
    fleet.shutdown().await;
}

/// A fleet from before installations had ids: at the first start after the upgrade, the VMs
/// that have a record here become this installation's; the others are left alone.
#[tokio::test]
async fn the_first_start_after_an_upgrade_adopts_the_vms_it_has_records_of() {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        MockConfig::instant()
            .with_state_dir(dir.path())
            .with_installation_id("ours")
    };
    let store = flotilla_store::connect("sqlite::memory:").await.unwrap();
    let fleet = Fleet::new(
        store.clone(),
        Arc::new(Mock::open(config()).await.unwrap()),
        Arc::new(ManualClock::new(t0())),
        FleetConfig {
            reconcile_interval: Duration::from_secs(3600),
            settle_interval: Duration::from_secs(3600),
            ..FleetConfig::default()
        },
    );
    assert!(fleet.lead_by_hand().await.unwrap());
    fleet
        .create_scale_set(ScaleSetSpec::example("web", 2), "test")
        .await
        .unwrap();
    while fleet.reconcile_now("web").await.unwrap()
        != (flotilla_control::Outcome::Done {
            actions: 0,
            failures: 0,
            settling: false,
        })
    {}
    fleet.shutdown().await;
    drop(fleet);
    // Strip the ids, as the journal of an older version holds them, and add a VM of no set.
    let path = dir.path().join(flotilla_backend::mock::JOURNAL_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace(",\"installation_id\":\"ours\"", "")).unwrap();
    {
        let mock = Mock::open(config()).await.unwrap();
        assert!(
            mock.list(None)
                .await
                .unwrap()
                .iter()
                .all(|v| v.installation_id.is_none())
        );
        mock.close().await;
    }
    let Scenario { fleet, backend } = recorded(
        store,
        Mock::open(config()).await.unwrap(),
        Arc::new(ManualClock::new(t0())),
        FleetConfig::default(),
    )
    .await;
    fleet.start().await.unwrap();
    assert_eq!(backend.take(), ["adopt web_0", "adopt web_1"]);
    assert!(
        backend
            .list(None)
            .await
            .unwrap()
            .iter()
            .all(|v| v.installation_id.as_deref() == Some("ours"))
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn driver_activates_periodically_backs_off_on_failure_and_resets() {
    let store = flotilla_store::connect("sqlite::memory:").await.unwrap();
    let fleet = Fleet::new(
        store,
        Arc::new(Mock::open(MockConfig::instant()).await.unwrap()),
        Arc::new(flotilla_control::SystemClock),
        FleetConfig {
            reconcile_interval: Duration::from_millis(100),
            settle_interval: Duration::from_millis(100),
            ..FleetConfig::default()
        },
    );
    // Nothing runs before the registry starts the tasks: a wake does nothing.
    fleet
        .create_scale_set(ScaleSetSpec::example("web", 1), "test")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(fleet.loops().is_empty(), "{:?}", fleet.loops());
    fleet.start().await.unwrap();
    let status = |fleet: &Fleet| fleet.loops().into_iter().find(|l| l.scale_set == "web");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // Periodic: activations keep coming without any wake.
    while status(&fleet).is_none_or(|s| s.activations < 5) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no periodic activations"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every create fails: consecutive failures grow, and the backoff (1 s, 2 s, …) slows
    // activations far below the 100 ms period.
    fleet
        .inject_fault(Fault::CreateFailureRate { rate: 1.0 }, "test")
        .await
        .unwrap();
    fleet.set_capacity("web", 3, "test").await.unwrap();
    while status(&fleet).is_none_or(|s| s.consecutive_failures < 2) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "failures not counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The registry's reconciler task sums the loops up: the worst run of failures.
    let task = |fleet: &Fleet| {
        fleet
            .tasks()
            .into_iter()
            .find(|t| t.name == "reconciler")
            .expect("the reconciler task")
    };
    assert!(task(&fleet).consecutive_failures >= 2, "{:?}", task(&fleet));
    assert!(
        task(&fleet).last_result.starts_with("web: "),
        "{:?}",
        task(&fleet)
    );
    let before = status(&fleet).unwrap().activations;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let during = status(&fleet).unwrap().activations - before;
    assert!(during <= 1, "backing off: {during} activations in 600 ms");
    // Success resets the backoff.
    fleet.clear_faults("test").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while status(&fleet).is_none_or(|s| s.consecutive_failures != 0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "backoff never reset"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(task(&fleet).consecutive_failures, 0);
    fleet.shutdown().await;
    assert_eq!(task(&fleet).doing, "stopped");
}
