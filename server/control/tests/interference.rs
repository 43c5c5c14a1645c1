//! Concurrent writers, made to come in at the worst moment by a store that lets another
//! writer go first on cue: the reconciler acts only on the intent it wrote, a person's
//! instance action re-reads the set a concurrent writer changed, and retention keeps what
//! is still needed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flotilla_backend::mock::{Mock, MockConfig};
use flotilla_backend::{Backend, FaultInjection};
use flotilla_control::{Fleet, FleetConfig, ManualClock};
use flotilla_domain::access::{ApiToken, RoleAssignment, User};
use flotilla_domain::autoscale::decision::{Decision, DecisionFilter};
use flotilla_domain::lifecycle::LifecycleHook;
use flotilla_domain::metrics::{Metric, MinuteTicks, Rollup};
use flotilla_domain::replica::{Lease, Replica};
use flotilla_domain::rollout::Rollout;
use flotilla_domain::{
    Activity, ActivityFilter, ActivityResult, DesiredPower, Fault, Instance, InstanceAction,
    LifecycleResult, LifecycleState, LifecycleTransition, NewActivity, PowerState,
    ProvisioningState, RepairStatus, ScaleSet, ScaleSetSpec,
};
use flotilla_store::{ModelVersion, Notices, Result, Store, Writer, Written};

/// Who goes first, and when.
#[derive(Default)]
enum Cue {
    #[default]
    None,
    /// Before the next `update_instances` batch that marks instance `id` updating, someone
    /// else writes it (sets its desired power to stopped: a person's stop).
    StopBeforeUpdating(String),
    /// Before the next `mark_deleting`, someone else writes the set (a new generation).
    TouchSetBeforeMarking,
    /// Before the next `update_instances` batch that makes instance `id` wait on a
    /// terminating hook, someone else writes it (a new generation, nothing else changed).
    TouchBeforeHolding(String),
}

struct Interfering {
    inner: Arc<dyn Store>,
    /// Shared by the handles `with_writer` makes.
    cue: Arc<Mutex<Cue>>,
}

impl Interfering {
    fn cue(&self, cue: Cue) {
        *self.cue.lock().unwrap() = cue;
    }
}

#[async_trait]
impl Store for Interfering {
    async fn update_instances(&self, instances: &[Instance]) -> Result<Written> {
        let hit = match &*self.cue.lock().unwrap() {
            Cue::StopBeforeUpdating(id) => instances
                .iter()
                .find(|i| &i.id == id && i.provisioning_state == ProvisioningState::Updating)
                .map(|i| (i.id.clone(), Some(DesiredPower::Stopped))),
            Cue::TouchBeforeHolding(id) => instances
                .iter()
                .find(|i| {
                    &i.id == id
                        && i.lifecycle.lifecycle_state == Some(LifecycleState::TerminatingWait)
                })
                .map(|i| (i.id.clone(), None)),
            _ => None,
        };
        if let Some((id, power)) = hit {
            self.cue(Cue::None);
            let mut current = self.inner.get_instance(&id).await?.unwrap();
            if let Some(power) = power {
                current.desired_power = power;
            }
            self.inner.update_instances(&[current]).await?;
        }
        self.inner.update_instances(instances).await
    }
    async fn mark_deleting(
        &self,
        set: &ScaleSet,
        ids: &[String],
        decrement_capacity: bool,
        now: DateTime<Utc>,
    ) -> Result<(ScaleSet, Vec<Instance>)> {
        let touch = matches!(*self.cue.lock().unwrap(), Cue::TouchSetBeforeMarking);
        if touch {
            self.cue(Cue::None);
            let current = self.inner.get_scale_set(set.name()).await?.unwrap();
            self.inner.update_scale_set(&current, "autoscale").await?;
        }
        self.inner
            .mark_deleting(set, ids, decrement_capacity, now)
            .await
    }

    // Everything else as the store does it.
    async fn create_scale_set(&self, set: &ScaleSet, by: &str) -> Result<ScaleSet> {
        self.inner.create_scale_set(set, by).await
    }
    async fn get_scale_set(&self, name: &str) -> Result<Option<ScaleSet>> {
        self.inner.get_scale_set(name).await
    }
    async fn list_scale_sets(&self) -> Result<Vec<ScaleSet>> {
        self.inner.list_scale_sets().await
    }
    async fn update_scale_set(&self, set: &ScaleSet, by: &str) -> Result<ScaleSet> {
        self.inner.update_scale_set(set, by).await
    }
    async fn delete_scale_set(&self, name: &str) -> Result<()> {
        self.inner.delete_scale_set(name).await
    }
    async fn set_repair_status(&self, name: &str, status: &RepairStatus) -> Result<()> {
        self.inner.set_repair_status(name, status).await
    }
    async fn next_ordinal(&self, set: &str) -> Result<u64> {
        self.inner.next_ordinal(set).await
    }
    async fn get_model_version(&self, set: &str, version: u32) -> Result<Option<ModelVersion>> {
        self.inner.get_model_version(set, version).await
    }
    async fn list_model_versions(&self, set: &str) -> Result<Vec<ModelVersion>> {
        self.inner.list_model_versions(set).await
    }
    async fn list_instances(&self, set: &str) -> Result<Vec<Instance>> {
        self.inner.list_instances(set).await
    }
    async fn list_all_instances(&self) -> Result<Vec<Instance>> {
        self.inner.list_all_instances().await
    }
    async fn get_instance(&self, id: &str) -> Result<Option<Instance>> {
        self.inner.get_instance(id).await
    }
    async fn instances_version(&self, set: &str) -> Result<flotilla_store::InstancesVersion> {
        self.inner.instances_version(set).await
    }
    async fn count_instances(
        &self,
        scale_set: Option<&str>,
    ) -> Result<Vec<flotilla_domain::instance::StateCount>> {
        self.inner.count_instances(scale_set).await
    }
    async fn insert_instances(
        &self,
        set: &str,
        instances: &[Instance],
        next_ordinal: u64,
    ) -> Result<Vec<Instance>> {
        self.inner
            .insert_instances(set, instances, next_ordinal)
            .await
    }
    async fn delete_instances(&self, ids: &[String]) -> Result<()> {
        self.inner.delete_instances(ids).await
    }
    async fn append_activity(&self, entry: &NewActivity) -> Result<Activity> {
        self.inner.append_activity(entry).await
    }
    async fn finish_activity(
        &self,
        id: i64,
        ended_at: DateTime<Utc>,
        result: ActivityResult,
        error: Option<&str>,
        details: &serde_json::Value,
    ) -> Result<Activity> {
        self.inner
            .finish_activity(id, ended_at, result, error, details)
            .await
    }
    async fn list_activity(&self, filter: &ActivityFilter) -> Result<Vec<Activity>> {
        self.inner.list_activity(filter).await
    }
    async fn append_decision(&self, decision: &Decision) -> Result<Decision> {
        self.inner.append_decision(decision).await
    }
    async fn list_decisions(&self, filter: &DecisionFilter) -> Result<Vec<Decision>> {
        self.inner.list_decisions(filter).await
    }
    async fn write_rollups(&self, rows: &[Rollup]) -> Result<()> {
        self.inner.write_rollups(rows).await
    }
    async fn read_rollups(
        &self,
        set: &str,
        metrics: &[Metric],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Rollup>> {
        self.inner.read_rollups(set, metrics, from, to).await
    }
    async fn write_ticks(&self, rows: &[MinuteTicks]) -> Result<()> {
        self.inner.write_ticks(rows).await
    }
    async fn read_ticks(
        &self,
        set: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MinuteTicks>> {
        self.inner.read_ticks(set, from, to).await
    }
    async fn prune_ticks(&self, before: DateTime<Utc>) -> Result<u64> {
        self.inner.prune_ticks(before).await
    }
    async fn prune_history(&self, before: DateTime<Utc>) -> Result<u64> {
        self.inner.prune_history(before).await
    }
    async fn prune_activity(&self, before: DateTime<Utc>) -> Result<u64> {
        self.inner.prune_activity(before).await
    }
    async fn delete_model_versions(&self, set: &str, versions: &[u32]) -> Result<u64> {
        self.inner.delete_model_versions(set, versions).await
    }
    async fn close(&self) {
        self.inner.close().await;
    }
    async fn installation_id(&self, fresh: &str, at: DateTime<Utc>) -> Result<String> {
        self.inner.installation_id(fresh, at).await
    }
    async fn insert_rollout(&self, rollout: &Rollout) -> Result<Rollout> {
        self.inner.insert_rollout(rollout).await
    }
    async fn update_rollout(&self, rollout: &Rollout) -> Result<Rollout> {
        self.inner.update_rollout(rollout).await
    }
    async fn get_rollout(&self, set: &str, id: i64) -> Result<Option<Rollout>> {
        self.inner.get_rollout(set, id).await
    }
    async fn list_rollouts(&self, set: &str, limit: u32) -> Result<Vec<Rollout>> {
        self.inner.list_rollouts(set, limit).await
    }
    async fn active_rollouts(&self) -> Result<Vec<Rollout>> {
        self.inner.active_rollouts().await
    }
    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> Result<User> {
        self.inner.create_user(user, password_hash).await
    }
    async fn get_user(&self, name: &str) -> Result<Option<(User, Option<String>)>> {
        self.inner.get_user(name).await
    }
    async fn list_users(&self) -> Result<Vec<User>> {
        self.inner.list_users().await
    }
    async fn count_users(&self) -> Result<u64> {
        self.inner.count_users().await
    }
    async fn set_user_password(&self, name: &str, password_hash: &str) -> Result<()> {
        self.inner.set_user_password(name, password_hash).await
    }
    async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<()> {
        self.inner.set_user_disabled(name, disabled).await
    }
    async fn put_role_assignment(&self, assignment: &RoleAssignment) -> Result<RoleAssignment> {
        self.inner.put_role_assignment(assignment).await
    }
    async fn delete_role_assignment(&self, user: &str, set: Option<&str>) -> Result<bool> {
        self.inner.delete_role_assignment(user, set).await
    }
    async fn list_role_assignments(&self, user: Option<&str>) -> Result<Vec<RoleAssignment>> {
        self.inner.list_role_assignments(user).await
    }
    async fn insert_token(&self, token: &ApiToken, hash: &str) -> Result<ApiToken> {
        self.inner.insert_token(token, hash).await
    }
    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        self.inner.token_by_hash(hash).await
    }
    async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>> {
        self.inner.list_tokens(user).await
    }
    async fn revoke_token(&self, id: i64, at: DateTime<Utc>) -> Result<Option<ApiToken>> {
        self.inner.revoke_token(id, at).await
    }
    async fn touch_tokens(&self, used: &[(i64, DateTime<Utc>)]) -> Result<()> {
        self.inner.touch_tokens(used).await
    }
    async fn save_session(&self, id: &str, data: &str, expires_at: DateTime<Utc>) -> Result<()> {
        self.inner.save_session(id, data, expires_at).await
    }
    async fn load_session(&self, id: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        self.inner.load_session(id, now).await
    }
    async fn delete_session(&self, id: &str) -> Result<()> {
        self.inner.delete_session(id).await
    }
    async fn prune_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        self.inner.prune_sessions(now).await
    }
    async fn check_fence(&self) -> Result<()> {
        self.inner.check_fence().await
    }
    fn with_writer(&self, writer: Writer) -> Arc<dyn Store> {
        Arc::new(Interfering {
            inner: self.inner.with_writer(writer),
            cue: self.cue.clone(),
        })
    }
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        force: bool,
    ) -> Result<Option<Lease>> {
        self.inner.acquire_lease(name, holder, ttl, force).await
    }
    async fn release_lease(&self, name: &str, holder: &str, generation: i64) -> Result<()> {
        self.inner.release_lease(name, holder, generation).await
    }
    async fn list_leases(&self) -> Result<Vec<Lease>> {
        self.inner.list_leases().await
    }
    async fn heartbeat(&self, replica: &Replica, forget_after: Duration) -> Result<Replica> {
        self.inner.heartbeat(replica, forget_after).await
    }
    async fn list_replicas(&self) -> Result<Vec<Replica>> {
        self.inner.list_replicas().await
    }
    async fn remove_replica(&self, id: &str) -> Result<()> {
        self.inner.remove_replica(id).await
    }
    async fn put_frontend_counters(
        &self,
        replica: &str,
        frontends: &[flotilla_domain::load_balancer::FrontendStats],
    ) -> Result<()> {
        self.inner.put_frontend_counters(replica, frontends).await
    }
    async fn list_frontend_counters(
        &self,
    ) -> Result<Vec<flotilla_domain::replica::FrontendCounters>> {
        self.inner.list_frontend_counters().await
    }
    async fn put_probe_results(
        &self,
        results: &[(String, flotilla_domain::ProbeResult)],
    ) -> Result<()> {
        self.inner.put_probe_results(results).await
    }
    async fn list_probe_results(
        &self,
        scale_set: Option<&str>,
    ) -> Result<Vec<(String, flotilla_domain::ProbeResult)>> {
        self.inner.list_probe_results(scale_set).await
    }
    async fn put_host_maintenance(
        &self,
        record: &flotilla_domain::maintenance::HostMaintenance,
    ) -> Result<flotilla_domain::maintenance::HostMaintenance> {
        self.inner.put_host_maintenance(record).await
    }
    async fn list_host_maintenance(
        &self,
    ) -> Result<Vec<flotilla_domain::maintenance::HostMaintenance>> {
        self.inner.list_host_maintenance().await
    }
    async fn delete_host_maintenance(&self, host: &str) -> Result<bool> {
        self.inner.delete_host_maintenance(host).await
    }
    async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        self.inner.notify(channel, payload).await
    }
    async fn listen(&self, channel: &str) -> Result<Option<Box<dyn Notices>>> {
        self.inner.listen(channel).await
    }
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

struct Setup {
    fleet: Fleet,
    store: Arc<Interfering>,
    mock: Arc<Mock>,
    clock: Arc<ManualClock>,
}

/// A fleet on in-memory SQLite behind [`Interfering`] and a zero-latency mock, whose loops
/// never run by themselves: each activation is an explicit `reconcile_now`.
async fn setup(config: FleetConfig) -> Setup {
    let store = Arc::new(Interfering {
        inner: flotilla_store::connect("sqlite::memory:").await.unwrap(),
        cue: Arc::default(),
    });
    let mock = Arc::new(Mock::open(MockConfig::instant()).await.unwrap());
    let clock = Arc::new(ManualClock::new(t0()));
    let fleet = Fleet::new(
        store.clone(),
        mock.clone(),
        clock.clone(),
        FleetConfig {
            reconcile_interval: Duration::from_secs(3600),
            settle_interval: Duration::from_secs(3600),
            ..config
        },
    );
    assert!(fleet.lead_by_hand().await.unwrap());
    Setup {
        fleet,
        store,
        mock,
        clock,
    }
}

async fn converge(fleet: &Fleet, name: &str) {
    for _ in 0..10 {
        if let flotilla_control::Outcome::Done {
            actions: 0,
            settling: false,
            ..
        } = fleet.reconcile_now(name).await.unwrap()
        {
            return;
        }
    }
    panic!("{name} did not converge");
}

/// A VM crashed; the reconciler plans to start it again and writes that intent — but a
/// person's stop got there first. The reconciler must not start it (it used to, from the
/// record it had read), and the next activation leaves it stopped as the person asked.
#[tokio::test]
async fn the_reconciler_acts_only_on_the_intent_it_wrote() {
    let s = setup(FleetConfig::default()).await;
    s.fleet
        .create_scale_set(ScaleSetSpec::example("web", 1), "test")
        .await
        .unwrap();
    converge(&s.fleet, "web").await;
    s.mock
        .inject(Fault::Crash {
            instance: "web_0".into(),
        })
        .await
        .unwrap();
    s.store.cue(Cue::StopBeforeUpdating("web_0".into()));
    s.fleet.reconcile_now("web").await.unwrap();
    assert_eq!(
        s.mock.get("web_0").await.unwrap().unwrap().power_state,
        PowerState::Stopped,
        "the start planned from a stale record was not carried out"
    );
    converge(&s.fleet, "web").await;
    let vm = s.mock.get("web_0").await.unwrap().unwrap();
    assert_eq!(vm.power_state, PowerState::Stopped, "as the person asked");
    let record = s.fleet.get_instance("web", "web_0").await.unwrap();
    assert_eq!(record.desired_power, DesiredPower::Stopped);
}

/// A person deletes an instance while another writer (the autoscaler) bumps the set: the
/// action re-reads the set and goes through, instead of retrying with the stale one until
/// it gives up.
#[tokio::test]
async fn an_instance_delete_re_reads_a_set_changed_meanwhile() {
    let s = setup(FleetConfig::default()).await;
    s.fleet
        .create_scale_set(ScaleSetSpec::example("web", 2), "test")
        .await
        .unwrap();
    converge(&s.fleet, "web").await;
    s.store.cue(Cue::TouchSetBeforeMarking);
    let deleted = s
        .fleet
        .instance_action("web", "web_1", InstanceAction::Delete, "alice")
        .await
        .unwrap();
    assert_eq!(deleted.provisioning_state, ProvisioningState::Deleting);
    converge(&s.fleet, "web").await;
    assert_eq!(s.fleet.get_scale_set("web").await.unwrap().spec.capacity, 1);
    assert!(s.mock.get("web_1").await.unwrap().is_none());
}

/// A person deletes an instance of a set with a terminating hook, and another writer gets
/// to its record between the reconciler's read and its write of the wait. The VM must stay
/// (it used to be deleted from the record read before, which did not wait on the hook),
/// and the next activation holds it for the hook.
#[tokio::test]
async fn a_terminating_hook_holds_an_instance_written_meanwhile() {
    let s = setup(FleetConfig::default()).await;
    let mut spec = ScaleSetSpec::example("web", 2);
    spec.lifecycle_hooks = vec![LifecycleHook {
        name: "drain".into(),
        transition: LifecycleTransition::Terminating,
        heartbeat_timeout_seconds: 600,
        default_result: LifecycleResult::Continue,
        notification_webhooks: Vec::new(),
    }];
    s.fleet.create_scale_set(spec, "test").await.unwrap();
    converge(&s.fleet, "web").await;
    s.fleet
        .instance_action("web", "web_1", InstanceAction::Delete, "alice")
        .await
        .unwrap();
    s.store.cue(Cue::TouchBeforeHolding("web_1".into()));
    s.fleet.reconcile_now("web").await.unwrap();
    assert!(
        s.mock.get("web_1").await.unwrap().is_some(),
        "the VM was deleted without waiting on the hook"
    );
    s.fleet.reconcile_now("web").await.unwrap();
    let record = s.fleet.get_instance("web", "web_1").await.unwrap();
    assert_eq!(
        record.lifecycle.lifecycle_state,
        Some(LifecycleState::TerminatingWait)
    );
    assert_eq!(record.lifecycle.lifecycle_hook.as_deref(), Some("drain"));
    assert!(s.mock.get("web_1").await.unwrap().is_some());
}

/// Retention: ended activity entries older than the retention go (those in progress stay);
/// model versions beyond the newest kept go, but never one an instance is on.
#[tokio::test]
async fn retention_keeps_what_is_recent_or_still_needed() {
    let s = setup(FleetConfig {
        activity_retention: Duration::from_secs(24 * 3600),
        model_versions_kept: 2,
        ..FleetConfig::default()
    })
    .await;
    s.fleet
        .create_scale_set(ScaleSetSpec::example("web", 1), "test")
        .await
        .unwrap();
    converge(&s.fleet, "web").await;
    let in_progress = s
        .store
        .append_activity(&NewActivity {
            operation: "autoscale.webhook".into(),
            actor: "system:autoscale".into(),
            scale_set: Some("web".into()),
            target: "web".into(),
            started_at: t0(),
            ended_at: None,
            result: ActivityResult::InProgress,
            error: None,
            details: serde_json::json!({}),
        })
        .await
        .unwrap();
    // Five more versions; Manual mode: web_0 stays on version 1.
    for vcpus in 2..=6 {
        let mut model = ScaleSetSpec::example("web", 1).model;
        model.vcpus = vcpus;
        s.fleet.set_model("web", model, "test").await.unwrap();
    }
    s.clock.advance(chrono::Duration::days(2));
    s.fleet.set_capacity("web", 1, "test").await.unwrap();
    let (activity, versions) = s.fleet.retention_now().await.unwrap();
    assert!(activity > 0, "old entries went");
    assert_eq!(versions, 3, "versions 2, 3 and 4 went");
    let kept: Vec<u32> = s
        .fleet
        .model_versions("web")
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(kept, [1, 5, 6], "1 is web_0's, 5 and 6 the newest two");
    let left = s
        .fleet
        .activity(&ActivityFilter {
            limit: 1000,
            ..ActivityFilter::default()
        })
        .await
        .unwrap();
    assert!(
        left.iter().any(|a| a.id == in_progress.id),
        "in progress stays"
    );
    assert!(
        left.iter()
            .filter(|a| a.id != in_progress.id)
            .all(|a| a.started_at > t0() + chrono::Duration::days(1)),
        "{left:?}"
    );
    assert_eq!(s.fleet.retention_now().await.unwrap(), (0, 0));
}
