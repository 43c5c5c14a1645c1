//! The rollout engine: moves a scale set's instances to a model version in the batches the
//! pure planner (`flotilla_domain::rollout::plan`) made, with the health gates between
//! them, and the facade's rollout operations (preview, start, pause, resume, cancel,
//! rollback, compare versions).
//!
//! One task steps every active rollout every [`TICK`] (and when woken). A step reads the
//! set, its instances and the rollout, and moves each instance of the current batch through
//! `pending → draining → updating → waiting_healthy → succeeded | failed`:
//! - in place, the record gets the target version and a pending reimage; the reconciler
//!   takes it out of the load balancer's pool, waits for its requests to drain, reimages it,
//!   and the prober finds it healthy again;
//! - with surge, the record is marked `retiring`: it keeps serving but no longer counts
//!   toward capacity, so the reconciler creates its replacement on the target version; once
//!   the replacement is healthy the old instance is deleted (a failed replacement is
//!   deleted instead and the old instance kept).
//!
//! Every change is written to the instance records first and to the rollout after (both
//! generation-guarded), and every step is idempotent, so a control plane killed at any
//! point resumes where it stopped: an instance already on the target version is not
//! updated twice, a retiring instance is not marked twice.
//!
//! Rules the engine adds to the plan:
//! - new instances (scale-out, repairs) are created on the set's current model version,
//!   which during a rollout is the version being rolled out;
//! - a batch starts only while the instances out of service (in transition outside the
//!   batch: scale-out, repairs, a person's actions) plus the batch fit in the set's limit,
//!   `max(repair limit, batch size)` — repairs count the rollout's instances against their
//!   own limit the same way, so the two never take more than that out together;
//! - a breached gate after a batch (or while baking) faults the rollout; with
//!   `rollback_failed_instances_on_policy_breach` a rollback to the version the rollout
//!   started from begins at once. A rollback makes that version's model the newest version
//!   again (like `kubectl rollout undo`), so scale-outs meanwhile get the good model; its
//!   instances still on a model equal to it are relabelled without a restart;
//! - a failed gate before a batch holds the rollout for up to the instance timeout, then
//!   faults it;
//! - policy changes mid-rollout: gates, pauses, the instance timeout and the bake time
//!   apply from the next step (batches stay as planned); switching the mode or surge is
//!   refused until the rollout ends.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flotilla_domain::repair::repair_limit;
use flotilla_domain::rollout::{
    self, FieldChange, GateCheck, Hold, InstanceStep, PlanInput, Rollout, RolloutKind, RolloutPlan,
    RolloutState, RolloutView, UpgradeAction,
};
use flotilla_domain::scale_set::{RollingPolicy, UpgradeMode, UpgradePolicy};
use flotilla_domain::{
    ActivityResult, Event, Instance, Model, NewActivity, PendingAction, ProvisioningState,
    ScaleSet, ScaleSetState,
};
use flotilla_store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result, chain};
use crate::fleet::{Fleet, Shared};

/// How often active rollouts are stepped.
pub const TICK: Duration = Duration::from_millis(200);
/// How often sets are checked for a model change no rollout has picked up (after a crash
/// between storing the model and starting its rollout).
const CATCH_UP: Duration = Duration::from_secs(10);

/// `POST /scale-sets/{name}/rollouts/preview`: what a rollout would do.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewRequest {
    /// The model to preview (as if stored as the next version); absent: the current one.
    #[serde(default)]
    pub model: Option<Model>,
    /// A policy to preview with; absent: the set's.
    #[serde(default)]
    pub upgrade_policy: Option<UpgradePolicy>,
    /// Only these instances (a manual upgrade).
    #[serde(default)]
    pub instances: Option<Vec<String>>,
}

/// `POST /scale-sets/{name}/rollouts`: start a rollout to the current model version.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StartRollout {
    /// Upgrade only these instances, all at once (Azure's manual upgrade); absent: every
    /// out-of-date instance, in the rolling policy's batches (all at once in Automatic
    /// mode).
    #[serde(default)]
    pub instances: Option<Vec<String>>,
}

/// `POST /scale-sets/{name}/rollouts/{id}/rollback`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RollbackRequest {
    /// The version to go back to; absent: the one the rollout started from.
    #[serde(default)]
    pub version: Option<u32>,
}

/// A person's control of a running rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutControl {
    Pause,
    Resume,
    Cancel,
}

impl RolloutControl {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pause" => Some(Self::Pause),
            "resume" => Some(Self::Resume),
            "cancel" => Some(Self::Cancel),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Cancel => "cancel",
        }
    }
}

/// The most instances out of service at once while a rollout runs.
pub fn out_of_service_limit(set: &ScaleSet, rollout: &Rollout) -> usize {
    repair_limit(set.spec.capacity).max(rollout.plan.batch_size as usize)
}

fn stale(operation: &str) -> Error {
    Error::Conflict {
        message: format!("the rollout changed concurrently during {operation}; retry"),
    }
}

impl Fleet {
    /// The set's rollouts, newest first.
    pub async fn rollouts(&self, name: &str, limit: u32) -> Result<Vec<RolloutView>> {
        self.read_set(name).await?;
        let all = self
            .shared()
            .store
            .list_rollouts(name, limit)
            .await
            .map_err(Error::store("list rollouts"))?;
        Ok(all.into_iter().map(RolloutView::from).collect())
    }

    pub async fn rollout(&self, name: &str, id: i64) -> Result<RolloutView> {
        read_rollout(self.shared(), name, id).await.map(Into::into)
    }

    /// The fields that differ between two of the set's model versions.
    pub async fn compare_versions(
        &self,
        name: &str,
        from: u32,
        to: u32,
    ) -> Result<Vec<FieldChange>> {
        self.read_set(name).await?;
        let a = model_version(self.shared(), name, from, "from").await?;
        let b = model_version(self.shared(), name, to, "to").await?;
        Ok(rollout::diff(&a, &b))
    }

    /// What a rollout would do now, or after storing `request.model`.
    pub async fn preview_rollout(
        &self,
        name: &str,
        request: PreviewRequest,
    ) -> Result<RolloutPlan> {
        let mut set = self.read_set(name).await?;
        let mut request = request;
        if let Some(model) = &mut request.model {
            model.keep_user_data(Some(&set.spec.model));
        }
        let mut errors = flotilla_domain::ValidationErrors::default();
        if let Some(model) = &request.model {
            errors.nest("model", model.validate());
        }
        if let Some(policy) = &request.upgrade_policy {
            errors.nest("upgrade_policy", policy.validate());
        }
        errors.into_result().map_err(Error::Invalid)?;
        let mut extra = None;
        if let Some(model) = request.model {
            set.model_version += 1;
            set.spec.model = model.clone();
            extra = Some((set.model_version, model));
        }
        if let Some(policy) = request.upgrade_policy {
            set.spec.upgrade_policy = policy;
        }
        let instances = self.list_instances(name).await?;
        let (kind, only) = chosen(&instances, request.instances.as_deref())?;
        let boot = self.boot_seconds(name).await?;
        make_plan(
            self.shared(),
            &set,
            &instances,
            kind,
            only.as_ref(),
            boot,
            extra,
        )
        .await
    }

    /// Starts a rollout to the set's current model version (a person's: the whole set in
    /// the rolling policy's batches, or chosen instances at once).
    pub async fn start_rollout(
        &self,
        name: &str,
        request: StartRollout,
        actor: &str,
    ) -> Result<RolloutView> {
        let set = self.read_set(name).await?;
        refuse_deleting(&set)?;
        let instances = self.list_instances(name).await?;
        let (kind, only) = chosen(&instances, request.instances.as_deref())?;
        let rollout = begin(self, &set, &instances, kind, only.as_ref(), None, actor).await?;
        if rollout.plan.batches.is_empty() && rollout.plan.relabel.is_empty() {
            return Err(Error::InvalidState {
                message: format!(
                    "nothing to upgrade: no chosen instance is out of date and unprotected ({})",
                    describe_skipped(&rollout.plan)
                ),
            });
        }
        let rollout = insert(self, rollout, actor).await?;
        Ok(rollout.into())
    }

    /// Pauses, resumes (approving a canary or checkpoint) or cancels a rollout.
    pub async fn control_rollout(
        &self,
        name: &str,
        id: i64,
        control: RolloutControl,
        actor: &str,
    ) -> Result<RolloutView> {
        let started = self.now();
        let shared = self.shared();
        for _ in 0..5 {
            let mut r = read_rollout(shared, name, id).await?;
            if !r.state.is_active() {
                return Err(Error::InvalidState {
                    message: format!(
                        "rollout {id} is {}: only a running or paused rollout can be {}d",
                        r.state.as_str(),
                        control.as_str()
                    ),
                });
            }
            let now = self.now();
            match control {
                RolloutControl::Pause => {
                    if matches!(r.hold, Some(Hold::Paused { .. })) {
                        return Ok(r.into());
                    }
                    r.hold = Some(Hold::Paused { by: actor.into() });
                    r.state = RolloutState::Paused;
                }
                RolloutControl::Resume => {
                    if let Some(Hold::Paused { .. } | Hold::Approval { .. } | Hold::Gate { .. }) =
                        &r.hold
                    {
                        r.hold = None;
                    }
                    r.state = RolloutState::RollingForward;
                }
                RolloutControl::Cancel => {
                    release_retiring(shared, &r).await?;
                    finish(
                        &mut r,
                        RolloutState::Cancelled,
                        format!("cancelled by {actor}"),
                        now,
                    );
                }
            }
            r.updated_at = now;
            match shared.store.update_rollout(&r).await {
                Ok(stored) => {
                    publish(shared, &stored);
                    shared
                        .record(activity(
                            &stored,
                            &format!("rollout.{}", control.as_str()),
                            actor,
                            started,
                            ActivityResult::Succeeded,
                            None,
                        ))
                        .await;
                    self.wake_rollouts();
                    self.wake(name);
                    return Ok(stored.into());
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(Error::store("update rollout")(e)),
            }
        }
        Err(stale("a rollout control"))
    }

    /// Rolls the set back to `version` (default: the version rollout `id` started from):
    /// that version's model becomes the newest version and a rollback rollout moves the
    /// instances to it; rollout `id` is cancelled first if it still runs.
    pub async fn rollback_rollout(
        &self,
        name: &str,
        id: i64,
        request: RollbackRequest,
        actor: &str,
    ) -> Result<RolloutView> {
        let shared = self.shared();
        let original = read_rollout(shared, name, id).await?;
        let version = request.version.unwrap_or(original.from_version);
        let set = self.read_set(name).await?;
        refuse_deleting(&set)?;
        if version == 0 || version > set.model_version {
            return Err(Error::invalid(
                "version",
                format!(
                    "version {version} does not exist: {name:?} has versions 1 to {}",
                    set.model_version
                ),
            ));
        }
        rollback(self, original, version, actor, "by request").await
    }

    pub(crate) fn wake_rollouts(&self) {
        self.shared().rollout_wake.notify_one();
    }

    /// The active rollout of a set, if any.
    pub(crate) async fn active_rollout(&self, name: &str) -> Result<Option<Rollout>> {
        let all = self
            .shared()
            .store
            .list_rollouts(name, 1)
            .await
            .map_err(Error::store("list rollouts"))?;
        Ok(all.into_iter().find(|r| r.state.is_active()))
    }

    /// After a model change: starts the rollout the upgrade policy asks for (none in
    /// Manual mode).
    pub(crate) async fn after_model_change(&self, set: &ScaleSet, actor: &str) {
        if set.spec.upgrade_policy.mode == UpgradeMode::Manual {
            return;
        }
        if let Err(e) = self.start_policy_rollout(set, actor).await {
            tracing::warn!(scale_set = %set.name(), error = %chain(&e), "could not start the rollout of the new model");
        }
    }

    async fn start_policy_rollout(&self, set: &ScaleSet, actor: &str) -> Result<()> {
        let instances = self.list_instances(set.name()).await?;
        let rollout = begin(
            self,
            set,
            &instances,
            RolloutKind::Upgrade,
            None,
            None,
            actor,
        )
        .await?;
        insert(self, rollout, actor).await?;
        Ok(())
    }
}

fn refuse_deleting(set: &ScaleSet) -> Result<()> {
    if set.state == ScaleSetState::Deleting {
        return Err(Error::InvalidState {
            message: format!("scale set {:?} is being deleted", set.name()),
        });
    }
    Ok(())
}

/// The kind of a person's rollout and its chosen instances (each checked to exist): a
/// manual upgrade of those, or an upgrade of every out-of-date one.
fn chosen(
    instances: &[Instance],
    ids: Option<&[String]>,
) -> Result<(RolloutKind, Option<BTreeSet<String>>)> {
    let Some(ids) = ids else {
        return Ok((RolloutKind::Upgrade, None));
    };
    if ids.is_empty() {
        return Err(Error::invalid("instances", "name at least one instance"));
    }
    let known: BTreeSet<&str> = instances.iter().map(|i| i.id.as_str()).collect();
    let unknown: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| !known.contains(id))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::invalid(
            "instances",
            format!("no such instance: {}", unknown.join(", ")),
        ));
    }
    Ok((RolloutKind::Manual, Some(ids.iter().cloned().collect())))
}

fn describe_skipped(plan: &RolloutPlan) -> String {
    if plan.skipped.is_empty() {
        return "no instances".into();
    }
    plan.skipped
        .iter()
        .take(5)
        .map(|s| format!("{}: {}", s.id, s.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

async fn model_version(shared: &Shared, name: &str, version: u32, field: &str) -> Result<Model> {
    shared
        .store
        .get_model_version(name, version)
        .await
        .map_err(Error::store("get model version"))?
        .map(|v| v.model)
        .ok_or_else(|| Error::invalid(field, format!("version {version} does not exist")))
}

async fn read_rollout(shared: &Shared, name: &str, id: i64) -> Result<Rollout> {
    shared
        .store
        .get_rollout(name, id)
        .await
        .map_err(Error::store("get rollout"))?
        .ok_or_else(|| Error::NotFound {
            kind: "rollout",
            name: id.to_string(),
        })
}

/// The rolling policy a rollout of `kind` runs under: the set's, except that a rollback
/// (back to a good version) takes the broken instances first, without canary or checkpoints.
fn policy_for(kind: RolloutKind, set: &ScaleSet) -> RollingPolicy {
    let mut policy = set.spec.upgrade_policy.rolling.clone();
    if kind == RolloutKind::Rollback {
        policy.prioritize_unhealthy_instances = true;
        policy.canary_instances = 0;
        policy.checkpoints.clear();
    }
    policy
}

/// The plan of a rollout of `kind` over `instances` to the set's current version.
async fn make_plan(
    shared: &Shared,
    set: &ScaleSet,
    instances: &[Instance],
    kind: RolloutKind,
    only: Option<&BTreeSet<String>>,
    boot_seconds: Option<u32>,
    extra: Option<(u32, Model)>,
) -> Result<RolloutPlan> {
    let mut models: BTreeMap<u32, Model> = BTreeMap::new();
    let wanted: BTreeSet<u32> = instances
        .iter()
        .map(|i| i.model_version)
        .chain([set.model_version])
        .collect();
    for v in wanted {
        if let Some((extra_version, model)) = &extra
            && *extra_version == v
        {
            models.insert(v, model.clone());
            continue;
        }
        if let Some(stored) = shared
            .store
            .get_model_version(set.name(), v)
            .await
            .map_err(Error::store("get model version"))?
        {
            models.insert(v, stored.model);
        }
    }
    let policy = policy_for(kind, set);
    let mode = match (kind, set.spec.upgrade_policy.mode) {
        (RolloutKind::Manual, _) | (_, UpgradeMode::Automatic) => UpgradeMode::Automatic,
        _ => UpgradeMode::Rolling,
    };
    Ok(rollout::plan(PlanInput {
        capacity: set.spec.capacity,
        instances,
        target_version: set.model_version,
        models: &models,
        mode,
        policy: &policy,
        only,
        boot_seconds,
    }))
}

/// A new rollout record (not stored yet).
async fn begin(
    fleet: &Fleet,
    set: &ScaleSet,
    instances: &[Instance],
    kind: RolloutKind,
    only: Option<&BTreeSet<String>>,
    rollback_of: Option<i64>,
    actor: &str,
) -> Result<Rollout> {
    let boot = fleet.boot_seconds(set.name()).await?;
    let plan = make_plan(fleet.shared(), set, instances, kind, only, boot, None).await?;
    let now = fleet.now();
    let from_version = instances
        .iter()
        .filter(|i| i.model_version != set.model_version)
        .map(|i| i.model_version)
        .max()
        .unwrap_or(set.model_version);
    let policy = policy_for(kind, set);
    let mut r = Rollout {
        id: 0,
        scale_set: set.name().into(),
        kind,
        state: RolloutState::RollingForward,
        from_version,
        target_version: set.model_version,
        policy,
        instances: rollout::initial_progress(&plan, now),
        plan,
        current_batch: 1,
        batch_started: false,
        gates: Vec::new(),
        hold: None,
        message: None,
        rollback_of,
        rolled_back_by: None,
        created_by: actor.into(),
        created_at: now,
        updated_at: now,
        finished_at: None,
        generation: 0,
    };
    if r.plan.batches.is_empty() {
        let message = if r.plan.relabel.is_empty() {
            "nothing to upgrade".to_string()
        } else {
            format!(
                "{} instance(s) relabelled: the models differ in tags only",
                r.plan.relabel.len()
            )
        };
        finish(&mut r, RolloutState::Completed, message, now);
    }
    Ok(r)
}

/// Stores a new rollout (refused while another runs), logs and announces it; relabels.
async fn insert(fleet: &Fleet, rollout: Rollout, actor: &str) -> Result<Rollout> {
    let shared = fleet.shared();
    let stored = match shared.store.insert_rollout(&rollout).await {
        Ok(r) => r,
        Err(StoreError::AlreadyExists { .. }) => {
            let running = fleet.active_rollout(&rollout.scale_set).await?;
            return Err(Error::InvalidState {
                message: format!(
                    "rollout {} of {:?} is still running: pause, cancel or wait for it first",
                    running.map_or_else(|| "?".into(), |r| r.id.to_string()),
                    rollout.scale_set
                ),
            });
        }
        Err(e) => return Err(Error::store("insert rollout")(e)),
    };
    relabel(shared, &stored).await?;
    publish(shared, &stored);
    shared
        .record(activity(
            &stored,
            "rollout.start",
            actor,
            stored.created_at,
            ActivityResult::Succeeded,
            None,
        ))
        .await;
    fleet.wake_rollouts();
    Ok(stored)
}

/// Moves the records of relabelled instances to the target version (no restart).
async fn relabel(shared: &Shared, r: &Rollout) -> Result<()> {
    if r.plan.relabel.is_empty() {
        return Ok(());
    }
    let ids: BTreeSet<&str> = r.plan.relabel.iter().map(|p| p.id.as_str()).collect();
    let records = shared
        .store
        .list_instances(&r.scale_set)
        .await
        .map_err(Error::store("list instances"))?;
    let updates: Vec<Instance> = records
        .into_iter()
        .filter(|i| ids.contains(i.id.as_str()) && i.model_version != r.target_version)
        .map(|mut i| {
            i.model_version = r.target_version;
            i
        })
        .collect();
    write_instances(shared, updates).await.map(drop)
}

/// Writes the records (generation-guarded) and announces them; answers the ids not
/// written because they changed meanwhile.
async fn write_instances(shared: &Shared, updates: Vec<Instance>) -> Result<Vec<String>> {
    if updates.is_empty() {
        return Ok(Vec::new());
    }
    let written = shared
        .store
        .update_instances(&updates)
        .await
        .map_err(Error::store("update instances"))?;
    for i in written.written {
        shared.events.publish(Event::InstanceChanged {
            instance: Box::new(i),
        });
    }
    Ok(written.stale)
}

/// Clears `retiring` on the instances a cancelled or faulted surge batch left.
async fn release_retiring(shared: &Shared, r: &Rollout) -> Result<()> {
    let ids: BTreeSet<&str> = r
        .instances
        .values()
        .filter(|p| p.action == UpgradeAction::Replace && !p.step.is_finished())
        .map(|p| p.id.as_str())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let records = shared
        .store
        .list_instances(&r.scale_set)
        .await
        .map_err(Error::store("list instances"))?;
    let updates = records
        .into_iter()
        .filter(|i| i.retiring && ids.contains(i.id.as_str()))
        .map(|mut i| {
            i.retiring = false;
            i
        })
        .collect();
    write_instances(shared, updates).await.map(drop)
}

fn finish(r: &mut Rollout, state: RolloutState, message: String, now: DateTime<Utc>) {
    r.state = state;
    r.hold = None;
    r.message = Some(message);
    r.finished_at = Some(now);
    r.updated_at = now;
}

fn publish(shared: &Shared, r: &Rollout) {
    shared.events.publish(Event::RolloutChanged {
        rollout: Box::new(r.clone().into()),
    });
}

fn activity(
    r: &Rollout,
    operation: &str,
    actor: &str,
    started: DateTime<Utc>,
    result: ActivityResult,
    error: Option<String>,
) -> NewActivity {
    NewActivity {
        operation: operation.into(),
        actor: actor.into(),
        scale_set: Some(r.scale_set.clone()),
        target: format!("rollout {}", r.id),
        started_at: started,
        ended_at: Some(r.updated_at.max(started)),
        result,
        error,
        details: json!({
            "rollout_id": r.id,
            "kind": r.kind,
            "state": r.state,
            "from_version": r.from_version,
            "target_version": r.target_version,
            "batches": r.plan.batches.len(),
            "message": r.message,
        }),
    }
}

/// Ends `original` (if still running) and starts a rollback to `version`.
async fn rollback(
    fleet: &Fleet,
    mut original: Rollout,
    version: u32,
    actor: &str,
    why: &str,
) -> Result<RolloutView> {
    let shared = fleet.shared();
    let name = original.scale_set.clone();
    let model = model_version(shared, &name, version, "version").await?;
    if original.state.is_active() {
        release_retiring(shared, &original).await?;
        let now = fleet.now();
        finish(
            &mut original,
            RolloutState::Cancelled,
            format!("cancelled for a rollback to version {version} ({why})"),
            now,
        );
        original = shared
            .store
            .update_rollout(&original)
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => stale("a rollback"),
                e => Error::store("update rollout")(e),
            })?;
        publish(shared, &original);
    }
    // The good model becomes the newest version (scale-outs meanwhile get it).
    let author = format!(
        "{actor} (rollback of rollout {} to version {version})",
        original.id
    );
    let (_, set) = fleet
        .modify(&name, &author, |current| {
            let mut next = current.clone();
            next.spec.model = model.clone();
            next.model_version = current.model_version + 1;
            Ok(next)
        })
        .await?;
    fleet
        .after_change(
            &set,
            "scale_set.model",
            actor,
            fleet.now(),
            json!({"new_version": set.model_version, "restored_version": version, "rollout_id": original.id}),
        )
        .await;
    let instances = fleet.list_instances(&name).await?;
    let rollout = begin(
        fleet,
        &set,
        &instances,
        RolloutKind::Rollback,
        None,
        Some(original.id),
        actor,
    )
    .await?;
    let rollout = insert(fleet, rollout, actor).await?;
    original.rolled_back_by = Some(rollout.id);
    match shared.store.update_rollout(&original).await {
        Ok(stored) => publish(shared, &stored),
        Err(e) => {
            tracing::warn!(rollout = original.id, error = %chain(&e), "could not link the rollback");
        }
    }
    Ok(rollout.into())
}

// ---- the engine ----

/// The engine task: steps every active rollout every [`TICK`] or when woken; starts the
/// rollouts of model changes nothing picked up every [`CATCH_UP`].
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let fleet = Fleet::from_shared(shared.clone());
    let mut last_catch_up: Option<tokio::time::Instant> = None;
    loop {
        if last_catch_up.is_none_or(|t| t.elapsed() >= CATCH_UP) {
            last_catch_up = Some(tokio::time::Instant::now());
            if let Err(e) = catch_up(&fleet).await {
                tracing::warn!(error = %chain(&e), "rollouts: catch-up failed");
            }
        }
        match shared.store.active_rollouts().await {
            Ok(active) => {
                for r in active {
                    if cancel.is_cancelled() {
                        return;
                    }
                    let id = r.id;
                    if let Err(e) = step(&fleet, r).await {
                        tracing::warn!(rollout = id, error = %chain(&e), "rollout step failed");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %chain(&e), "rollouts: could not list"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = shared.rollout_wake.notified() => {}
            () = tokio::time::sleep(TICK) => {}
        }
    }
}

/// Sets in Automatic or Rolling mode whose current version no rollout ever targeted,
/// with instances out of date: their rollout starts now.
async fn catch_up(fleet: &Fleet) -> Result<()> {
    for set in fleet.read_sets().await? {
        if set.state != ScaleSetState::Active || set.spec.upgrade_policy.mode == UpgradeMode::Manual
        {
            continue;
        }
        let latest = fleet
            .shared()
            .store
            .list_rollouts(set.name(), 1)
            .await
            .map_err(Error::store("list rollouts"))?;
        if latest
            .first()
            .is_some_and(|r| r.state.is_active() || r.target_version >= set.model_version)
        {
            continue;
        }
        let instances = fleet.list_instances(set.name()).await?;
        if instances
            .iter()
            .all(|i| i.model_version == set.model_version || i.protect_from_scale_set_actions)
        {
            continue;
        }
        fleet.start_policy_rollout(&set, "system:rollouts").await?;
    }
    Ok(())
}

/// What one step found to do after writing the rollout.
enum After {
    Nothing,
    Rollback { version: u32, why: String },
}

/// Advances one rollout as far as it can go now.
async fn step(fleet: &Fleet, mut r: Rollout) -> Result<()> {
    let shared = fleet.shared();
    let now = fleet.now();
    let before = r.clone();
    let Some(set) = shared
        .store
        .get_scale_set(&r.scale_set)
        .await
        .map_err(Error::store("get scale set"))?
    else {
        return Ok(());
    };
    let mut after = After::Nothing;
    if set.state == ScaleSetState::Deleting {
        finish(
            &mut r,
            RolloutState::Cancelled,
            "the scale set is being deleted".into(),
            now,
        );
    } else if set.model_version != r.target_version {
        release_retiring(shared, &r).await?;
        finish(
            &mut r,
            RolloutState::Cancelled,
            format!(
                "superseded: the model moved on to version {}",
                set.model_version
            ),
            now,
        );
    } else {
        adopt_policy(&mut r, &set);
        let instances = shared
            .store
            .list_instances(&r.scale_set)
            .await
            .map_err(Error::store("list instances"))?;
        after = advance(fleet, &mut r, &set, &instances, now).await?;
    }
    if r != before {
        r.updated_at = now;
        let stored = match shared.store.update_rollout(&r).await {
            Ok(s) => s,
            // Someone (a person's pause or cancel) got there first: next tick.
            Err(StoreError::Conflict { .. }) => return Ok(()),
            Err(e) => return Err(Error::store("update rollout")(e)),
        };
        publish(shared, &stored);
        if stored.state != before.state && !stored.state.is_active() {
            let result = if stored.state == RolloutState::Completed {
                ActivityResult::Succeeded
            } else {
                ActivityResult::Failed
            };
            let error = (result == ActivityResult::Failed)
                .then(|| stored.message.clone().unwrap_or_default());
            shared
                .record(activity(
                    &stored,
                    &format!("rollout.{}", stored.state.as_str()),
                    "system:rollouts",
                    stored.created_at,
                    result,
                    error,
                ))
                .await;
        }
        if let After::Rollback { version, why } = after {
            rollback(fleet, stored, version, "system:rollouts", &why).await?;
        }
    }
    Ok(())
}

/// Rolling fields changed on the set (gates, pauses, timeout, bake) apply from the next
/// step; the batches stay as planned.
fn adopt_policy(r: &mut Rollout, set: &ScaleSet) {
    let policy = &set.spec.upgrade_policy.rolling;
    if r.kind == RolloutKind::Rollback || *policy == r.policy || r.plan.mode != UpgradeMode::Rolling
    {
        return;
    }
    r.policy = policy.clone();
}

/// Whether `next` can apply to a running rollout planned under `current`.
pub(crate) fn policy_change_refused(
    current: &UpgradePolicy,
    next: &UpgradePolicy,
) -> Option<&'static str> {
    if current.mode != next.mode {
        Some("upgrade_policy.mode")
    } else if current.rolling.max_surge != next.rolling.max_surge {
        Some("upgrade_policy.rolling.max_surge")
    } else {
        None
    }
}

async fn advance(
    fleet: &Fleet,
    r: &mut Rollout,
    set: &ScaleSet,
    instances: &[Instance],
    now: DateTime<Utc>,
) -> Result<After> {
    let shared = fleet.shared();
    let by_id: HashMap<&str, &Instance> = instances.iter().map(|i| (i.id.as_str(), i)).collect();
    let timeout = chrono::Duration::seconds(i64::from(r.policy.instance_timeout_seconds));
    let gated = r.kind != RolloutKind::Manual && r.plan.mode == UpgradeMode::Rolling;
    // A rollback is what repairs an unhealthy set: the gate before batches does not hold it.
    let gated_before = gated && r.kind != RolloutKind::Rollback;
    // A person's pause: instances in flight finish their step, nothing new starts.
    let paused = matches!(r.hold, Some(Hold::Paused { .. }));

    // Holds: approvals, the pause between batches, baking.
    match r.hold.clone() {
        Some(Hold::Paused { .. }) => {}
        Some(Hold::Approval { until, .. }) => match until {
            Some(t) if now >= t => {
                r.hold = None;
                r.state = RolloutState::RollingForward;
            }
            _ => return Ok(After::Nothing),
        },
        Some(Hold::Between { until }) => {
            if now < until {
                return Ok(After::Nothing);
            }
            r.hold = None;
        }
        Some(Hold::Bake { until }) => {
            let check = upgraded_gate(r, &by_id, set, "bake", 0, now);
            if !check.passed {
                return Ok(breach(r, check, now));
            }
            if now >= until {
                finish(r, RolloutState::Completed, completed_message(r), now);
            }
            return Ok(After::Nothing);
        }
        Some(Hold::Gate { .. }) | None => {}
    }

    let batches = r.plan.batches.len() as u32;
    if r.current_batch > batches {
        if paused {
            return Ok(After::Nothing);
        }
        return Ok(end_of_batches(r, now));
    }
    let number = r.current_batch;
    let members: Vec<String> = r
        .instances
        .values()
        .filter(|p| p.batch == number)
        .map(|p| p.id.clone())
        .collect();

    if !r.batch_started {
        if paused {
            return Ok(After::Nothing);
        }
        if gated_before {
            let check = rollout::gate_before(number, instances, set.spec.capacity, &r.policy, now);
            if !check.passed {
                let until = match &r.hold {
                    Some(Hold::Gate { until, .. }) => *until,
                    _ => {
                        r.gates.push(check.clone());
                        now + timeout
                    }
                };
                if now >= until {
                    finish(
                        r,
                        RolloutState::Faulted,
                        format!(
                            "the set stayed unhealthy before batch {number}: {}",
                            check.detail
                        ),
                        now,
                    );
                } else {
                    r.hold = Some(Hold::Gate {
                        until,
                        detail: check.detail,
                    });
                }
                return Ok(After::Nothing);
            }
            r.gates.push(check);
            r.hold = None;
            // The shared limit: what else is out of service plus this batch.
            let busy = instances
                .iter()
                .filter(|i| i.is_active() && i.in_transition() && !members.contains(&i.id))
                .count();
            let limit = out_of_service_limit(set, r);
            if busy + members.len() > limit && busy > 0 {
                let until = match &r.hold {
                    Some(Hold::Gate { until, .. }) => *until,
                    _ => now + timeout,
                };
                r.hold = Some(Hold::Gate {
                    until,
                    detail: format!(
                        "{busy} instance(s) already out of service (scale-out, repairs or a person's action); at most {limit} at once"
                    ),
                });
                r.gates.pop();
                return Ok(After::Nothing);
            }
        }
        r.batch_started = true;
    }

    // Start what is pending, observe what is moving.
    let mut updates: Vec<Instance> = Vec::new();
    let replacements = find_replacements(r, instances, number);
    for id in &members {
        let progress = r.instances.get(id).cloned().expect("member of the batch");
        if progress.step.is_finished() {
            continue;
        }
        let record = by_id.get(id.as_str()).copied();
        if progress.step == InstanceStep::Pending {
            if paused {
                continue;
            }
            match record {
                None => {
                    mark(
                        r,
                        id,
                        InstanceStep::Removed,
                        Some("deleted meanwhile".into()),
                        now,
                    );
                }
                Some(i) if !i.is_active() => {
                    mark(
                        r,
                        id,
                        InstanceStep::Removed,
                        Some("deleted meanwhile".into()),
                        now,
                    );
                }
                Some(i) if i.protect_from_scale_set_actions => {
                    mark(
                        r,
                        id,
                        InstanceStep::Removed,
                        Some("protected from scale-set actions meanwhile".into()),
                        now,
                    );
                }
                Some(i)
                    if i.provisioning_state == ProvisioningState::Creating
                        || i.pending.is_some() =>
                {
                    // Let it settle first (its own action finishes, then it is updated).
                }
                Some(i) => {
                    let mut next = i.clone();
                    if progress.action == UpgradeAction::Replace {
                        next.retiring = true;
                    } else {
                        next.model_version = r.target_version;
                        next.pending = Some(PendingAction::Reimage);
                        next.provisioning_state = ProvisioningState::Updating;
                    }
                    next.updated_at = now;
                    updates.push(next);
                    let p = r.instances.get_mut(id).expect("member");
                    p.step = if progress.action == UpgradeAction::Replace {
                        InstanceStep::Updating
                    } else {
                        InstanceStep::Draining
                    };
                    p.started_at = Some(now);
                }
            }
            continue;
        }
        if progress.action == UpgradeAction::Replace
            && progress.replacement.is_none()
            && let Some(new_id) = replacements.get(id.as_str())
        {
            r.instances.get_mut(id).expect("member").replacement = Some(new_id.clone());
        }
        let progress = r.instances.get(id).cloned().expect("member");
        let replacement = progress
            .replacement
            .as_deref()
            .and_then(|rid| by_id.get(rid).copied());
        let (mut step, mut detail) = rollout::observe_step(
            &progress,
            record,
            replacement,
            r.target_version,
            timeout,
            now,
        );
        // Back in the pool before it counts: the next batch must not start while the load
        // balancer is still adding this one.
        if step == InstanceStep::Succeeded
            && set
                .spec
                .load_balancer
                .as_ref()
                .is_some_and(|lb| !lb.frontends.is_empty())
            && let Some(subject) = replacement.or(record)
            && subject.load_balancer_enabled
            && !shared.balancer.lb.serves(&subject.id)
        {
            step = InstanceStep::WaitingHealthy;
            detail = Some("healthy; joining the load balancer's pool".into());
        }
        if step != progress.step || detail != progress.detail {
            mark(r, id, step, detail, now);
        }
    }
    for id in write_instances(shared, updates).await? {
        // Changed concurrently (a probe, the reconciler): started again next tick.
        if let Some(p) = r.instances.get_mut(&id) {
            p.step = InstanceStep::Pending;
            p.started_at = None;
        }
    }

    // With surge: a served replacement retires its instance; a failed one is removed and
    // its instance kept.
    let mut leaving: Vec<String> = Vec::new();
    let mut kept: Vec<Instance> = Vec::new();
    for id in &members {
        let p = &r.instances[id];
        if p.action != UpgradeAction::Replace {
            continue;
        }
        let Some(old) = by_id.get(id.as_str()) else {
            continue;
        };
        match p.step {
            InstanceStep::Succeeded if old.is_active() => leaving.push(id.clone()),
            InstanceStep::Failed => {
                if let Some(rid) = &p.replacement
                    && by_id.get(rid.as_str()).is_some_and(|i| i.is_active())
                {
                    leaving.push(rid.clone());
                }
                if old.retiring {
                    let mut back = (*old).clone();
                    back.retiring = false;
                    kept.push(back);
                }
            }
            _ => {}
        }
    }
    write_instances(shared, kept).await?;
    if !leaving.is_empty() {
        match shared.store.mark_deleting(set, &leaving, false, now).await {
            Ok((_, marked)) => {
                for i in marked {
                    shared.events.publish(Event::InstanceChanged {
                        instance: Box::new(i),
                    });
                }
                fleet.wake(set.name());
            }
            // The set changed meanwhile: next tick.
            Err(StoreError::Conflict { .. }) => return Ok(After::Nothing),
            Err(e) => return Err(Error::store("remove replaced instances")(e)),
        }
    }
    // Done when every member finished and, with surge, every replaced instance is gone
    // (so the next batch's replacements never stack on this one's).
    let replaced_left = members.iter().any(|id| {
        r.instances[id].action == UpgradeAction::Replace
            && r.instances[id].step == InstanceStep::Succeeded
            && by_id.contains_key(id.as_str())
    });
    if replaced_left || members.iter().any(|id| !r.instances[id].step.is_finished()) {
        fleet.wake(set.name());
        return Ok(After::Nothing);
    }

    // The batch is done: the gate after it.
    r.batch_started = false;
    if gated || r.kind == RolloutKind::Rollback {
        let check = upgraded_gate(r, &by_id, set, "after", number, now);
        let passed = check.passed;
        r.gates.push(check.clone());
        if !passed && r.kind != RolloutKind::Rollback {
            return Ok(breach(r, check, now));
        }
    }
    r.current_batch += 1;
    if paused {
        return Ok(After::Nothing);
    }
    if r.current_batch > batches {
        return Ok(end_of_batches(r, now));
    }
    let pause = r
        .plan
        .batches
        .get(number as usize - 1)
        .and_then(|b| b.pause_after.clone());
    if let Some(pause) = pause {
        r.hold = Some(Hold::Approval {
            reason: pause.reason,
            until: pause
                .wait_seconds
                .map(|s| now + chrono::Duration::seconds(i64::from(s))),
        });
        r.state = RolloutState::Paused;
    } else if gated && r.policy.pause_time_between_batches_seconds > 0 {
        r.hold = Some(Hold::Between {
            until: now
                + chrono::Duration::seconds(i64::from(r.policy.pause_time_between_batches_seconds)),
        });
    }
    Ok(After::Nothing)
}

/// With surge: new instances on the target version created since the batch started,
/// matched to the batch's retiring instances by zone (then any), one each.
fn find_replacements<'a>(
    r: &Rollout,
    instances: &'a [Instance],
    number: u32,
) -> HashMap<String, String> {
    let taken: BTreeSet<&str> = r
        .instances
        .values()
        .filter_map(|p| p.replacement.as_deref())
        .chain(r.instances.keys().map(String::as_str))
        .collect();
    let mut free: Vec<&'a Instance> = instances
        .iter()
        .filter(|i| {
            i.is_active()
                && !i.retiring
                && i.model_version == r.target_version
                && !taken.contains(i.id.as_str())
        })
        .collect();
    let mut out = HashMap::new();
    let waiting: Vec<(&String, &str, DateTime<Utc>)> = r
        .instances
        .iter()
        .filter(|(_, p)| {
            p.batch == number && p.action == UpgradeAction::Replace && p.replacement.is_none()
        })
        .filter_map(|(id, p)| {
            let zone = instances
                .iter()
                .find(|i| &i.id == id)
                .map(|i| i.zone.as_str())?;
            Some((id, zone, p.started_at?))
        })
        .collect();
    for (id, zone, started) in waiting {
        let pick = free
            .iter()
            .position(|i| i.zone == zone && i.created_at >= started)
            .or_else(|| free.iter().position(|i| i.created_at >= started));
        if let Some(k) = pick {
            out.insert(id.clone(), free.remove(k).id.clone());
        }
    }
    out
}

fn mark(r: &mut Rollout, id: &str, step: InstanceStep, detail: Option<String>, now: DateTime<Utc>) {
    if let Some(p) = r.instances.get_mut(id) {
        p.step = step;
        p.detail = detail;
        if step.is_finished() {
            p.finished_at = Some(now);
        }
    }
}

/// The gate over the instances this rollout moved so far.
fn upgraded_gate(
    r: &Rollout,
    by_id: &HashMap<&str, &Instance>,
    set: &ScaleSet,
    name: &str,
    batch: u32,
    now: DateTime<Utc>,
) -> GateCheck {
    let mut upgraded: Vec<&Instance> = Vec::new();
    let mut failed = 0;
    for p in r
        .instances
        .values()
        .filter(|p| p.action != UpgradeAction::Relabel)
    {
        match p.step {
            InstanceStep::Succeeded => {
                let subject = p.replacement.as_deref().unwrap_or(&p.id);
                if let Some(i) = by_id.get(subject) {
                    upgraded.push(i);
                }
            }
            InstanceStep::Failed => failed += 1,
            _ => {}
        }
    }
    rollout::gate_after(
        name,
        batch,
        &upgraded,
        failed,
        set.spec.capacity,
        &r.policy,
        now,
    )
}

/// A breached gate: the rollout faults, and rolls back when the policy says so.
fn breach(r: &mut Rollout, check: GateCheck, now: DateTime<Utc>) -> After {
    r.gates.push(check.clone());
    let rollback =
        r.policy.rollback_failed_instances_on_policy_breach && r.kind != RolloutKind::Rollback;
    finish(
        r,
        RolloutState::Faulted,
        format!(
            "stopped: {}{}",
            check.detail,
            if rollback {
                format!("; rolling back to version {}", r.from_version)
            } else {
                String::new()
            }
        ),
        now,
    );
    if rollback {
        After::Rollback {
            version: r.from_version,
            why: format!("policy breach: {}", check.detail),
        }
    } else {
        After::Nothing
    }
}

fn end_of_batches(r: &mut Rollout, now: DateTime<Utc>) -> After {
    let bake = r.policy.bake_time_seconds;
    if bake > 0 && r.plan.mode == UpgradeMode::Rolling && r.kind == RolloutKind::Upgrade {
        if !matches!(r.hold, Some(Hold::Bake { .. })) {
            r.hold = Some(Hold::Bake {
                until: now + chrono::Duration::seconds(i64::from(bake)),
            });
        }
        return After::Nothing;
    }
    finish(r, RolloutState::Completed, completed_message(r), now);
    After::Nothing
}

fn completed_message(r: &Rollout) -> String {
    let p = r.progress();
    format!(
        "{} instance(s) on version {}{}{}",
        p.successful,
        r.target_version,
        if p.failed > 0 {
            format!(", {} failed", p.failed)
        } else {
            String::new()
        },
        if p.skipped > 0 {
            format!(", {} skipped", p.skipped)
        } else {
            String::new()
        }
    )
}
