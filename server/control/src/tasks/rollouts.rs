//! The `rollouts` task (the rollout engine): moves a scale set's instances to a model
//! version in the batches the pure planner (`flotilla_domain::rollout::plan`) made, with the
//! health gates between them; and the rollout operations the facade shares with it (begin,
//! insert, rollback, release).
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
    self, GateCheck, Hold, InstanceStep, PlanInput, Rollout, RolloutKind, RolloutPlan,
    RolloutState, RolloutView, UpgradeAction,
};
use flotilla_domain::scale_set::{RollingPolicy, UpgradeMode, UpgradePolicy};
use flotilla_domain::{
    ActivityResult, Event, Instance, Model, NewActivity, PendingAction, ProvisioningState,
    ScaleSet, ScaleSetState,
};
use flotilla_store::StoreError;
use futures::future::BoxFuture;
use serde_json::json;
use tokio::sync::Notify;

use crate::context::Context;
use crate::error::{Error, Result, chain};
use crate::tasks::reconciler::driver::SetWaker;
use crate::tasks::{Control, Task};

/// How often active rollouts are stepped.
pub const TICK: Duration = Duration::from_millis(200);
/// How often sets are checked for a model change no rollout has picked up (after a crash
/// between storing the model and starting its rollout).
const CATCH_UP: Duration = Duration::from_secs(10);

/// The most instances out of service at once while a rollout runs.
pub fn out_of_service_limit(set: &ScaleSet, rollout: &Rollout) -> usize {
    repair_limit(set.spec.capacity).max(rollout.plan.batch_size as usize)
}

pub(crate) fn stale(operation: &str) -> Error {
    Error::Conflict {
        message: format!("the rollout changed concurrently during {operation}; retry"),
    }
}

/// What one step found to do after writing the rollout.
enum After {
    Nothing,
    Rollback { version: u32, why: String },
}

/// The engine and what it shares with the facade's rollout operations.
pub(crate) struct RolloutEngine {
    pub(crate) ctx: Context,
    /// Sets whose instances a step changed are reconciled at once.
    pub(crate) wake: SetWaker,
    /// Wakes the engine before its next tick.
    notify: Notify,
}

impl RolloutEngine {
    pub(crate) fn new(ctx: Context, wake: SetWaker) -> Self {
        Self {
            ctx,
            wake,
            notify: Notify::new(),
        }
    }
}

pub(crate) async fn model_version(
    shared: &Context,
    name: &str,
    version: u32,
    field: &str,
) -> Result<Model> {
    shared
        .store
        .get_model_version(name, version)
        .await
        .map_err(Error::store("get model version"))?
        .map(|v| v.model)
        .ok_or_else(|| Error::invalid(field, format!("version {version} does not exist")))
}

pub(crate) async fn read_rollout(shared: &Context, name: &str, id: i64) -> Result<Rollout> {
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
pub(crate) async fn make_plan(
    shared: &Context,
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
pub(crate) async fn begin(
    ctx: &Context,
    set: &ScaleSet,
    instances: &[Instance],
    kind: RolloutKind,
    only: Option<&BTreeSet<String>>,
    rollback_of: Option<i64>,
    actor: &str,
) -> Result<Rollout> {
    let boot = flotilla_domain::instance::boot_seconds(instances);
    let plan = make_plan(ctx, set, instances, kind, only, boot, None).await?;
    let now = ctx.now();
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

/// The active rollout of a set, if any.
pub(crate) async fn active_rollout(ctx: &Context, name: &str) -> Result<Option<Rollout>> {
    let all = ctx
        .store
        .list_rollouts(name, 1)
        .await
        .map_err(Error::store("list rollouts"))?;
    Ok(all.into_iter().find(|r| r.state.is_active()))
}

impl RolloutEngine {
    /// Stores a new rollout (refused while another runs), logs and announces it; relabels.
    pub(crate) async fn insert(&self, rollout: Rollout, actor: &str) -> Result<Rollout> {
        let shared = &self.ctx;
        let stored = match shared.store.insert_rollout(&rollout).await {
            Ok(r) => r,
            Err(StoreError::AlreadyExists { .. }) => {
                let running = active_rollout(shared, &rollout.scale_set).await?;
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
        self.wake();
        Ok(stored)
    }
}

/// Moves the records of relabelled instances to the target version (no restart).
async fn relabel(shared: &Context, r: &Rollout) -> Result<()> {
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
    shared.write_instances(updates).await.map(drop)
}

/// Clears `retiring` on the instances a cancelled or faulted surge batch left.
pub(crate) async fn release_retiring(shared: &Context, r: &Rollout) -> Result<()> {
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
    shared.write_instances(updates).await.map(drop)
}

pub(crate) fn finish(r: &mut Rollout, state: RolloutState, message: String, now: DateTime<Utc>) {
    r.state = state;
    r.hold = None;
    r.message = Some(message);
    r.finished_at = Some(now);
    r.updated_at = now;
}

pub(crate) fn publish(shared: &Context, r: &Rollout) {
    shared.events.publish(Event::RolloutChanged {
        rollout: Box::new(r.clone().into()),
    });
}

pub(crate) fn activity(
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

impl RolloutEngine {
    /// Ends `original` (if still running) and starts a rollback to `version`.
    pub(crate) async fn rollback(
        &self,
        mut original: Rollout,
        version: u32,
        actor: &str,
        why: &str,
    ) -> Result<RolloutView> {
        let shared = &self.ctx;
        let name = original.scale_set.clone();
        let model = model_version(shared, &name, version, "version").await?;
        if original.state.is_active() {
            release_retiring(shared, &original).await?;
            let now = shared.now();
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
        let (_, set) = shared
            .modify_set(&name, &author, |current| {
                let mut next = current.clone();
                next.spec.model = model.clone();
                next.model_version = current.model_version + 1;
                Ok(next)
            })
            .await?;
        shared
        .set_changed(
            &set,
            "scale_set.model",
            actor,
            shared.now(),
            json!({"new_version": set.model_version, "restored_version": version, "rollout_id": original.id}),
        )
        .await;
        self.wake.wake(&name);
        let instances = shared
            .store
            .list_instances(&name)
            .await
            .map_err(Error::store("list instances"))?;
        let rollout = begin(
            shared,
            &set,
            &instances,
            RolloutKind::Rollback,
            None,
            Some(original.id),
            actor,
        )
        .await?;
        let rollout = self.insert(rollout, actor).await?;
        original.rolled_back_by = Some(rollout.id);
        match shared.store.update_rollout(&original).await {
            Ok(stored) => publish(shared, &stored),
            Err(e) => {
                tracing::warn!(rollout = original.id, error = %chain(&e), "could not link the rollback");
            }
        }
        Ok(rollout.into())
    }
}

// ---- the engine ----

impl Task for RolloutEngine {
    fn name(&self) -> &'static str {
        "rollouts"
    }

    /// Steps every active rollout every [`TICK`] or when activated; starts the rollouts of
    /// model changes nothing picked up every [`CATCH_UP`].
    fn run(self: Arc<Self>, control: Control) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut last_catch_up: Option<tokio::time::Instant> = None;
            loop {
                let catch_up = last_catch_up.is_none_or(|t| t.elapsed() >= CATCH_UP);
                if catch_up {
                    last_catch_up = Some(tokio::time::Instant::now());
                }
                control.activation(self.step_all(catch_up, &control)).await;
                tokio::select! {
                    () = control.stop().cancelled() => return,
                    () = control.activated() => {}
                    () = self.notify.notified() => {}
                    () = tokio::time::sleep(TICK) => {}
                }
            }
        })
    }
}

impl RolloutEngine {
    /// Wakes the engine before its next tick.
    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }

    /// One activation: the catch-up when due, then a step of every active rollout.
    async fn step_all(&self, catch_up: bool, control: &Control) -> Result<String> {
        if catch_up && let Err(e) = self.catch_up().await {
            tracing::warn!(error = %chain(&e), "rollouts: catch-up failed");
        }
        let active = self
            .ctx
            .store
            .active_rollouts()
            .await
            .map_err(Error::store("list active rollouts"))?;
        let count = active.len();
        control.doing(format!("{count} active rollout(s)"));
        for r in active {
            if control.stop().is_cancelled() {
                break;
            }
            let id = r.id;
            if let Err(e) = self.step(r).await {
                tracing::warn!(rollout = id, error = %chain(&e), "rollout step failed");
            }
        }
        Ok(format!("{count} active rollout(s) stepped"))
    }

    /// Starts the rollout the set's upgrade policy asks for, of every out-of-date instance.
    pub(crate) async fn start_policy_rollout(&self, set: &ScaleSet, actor: &str) -> Result<()> {
        let instances = self
            .ctx
            .store
            .list_instances(set.name())
            .await
            .map_err(Error::store("list instances"))?;
        let rollout = begin(
            &self.ctx,
            set,
            &instances,
            RolloutKind::Upgrade,
            None,
            None,
            actor,
        )
        .await?;
        self.insert(rollout, actor).await?;
        Ok(())
    }

    /// Sets in Automatic or Rolling mode whose current version no rollout ever targeted,
    /// with instances out of date: their rollout starts now.
    async fn catch_up(&self) -> Result<()> {
        for set in self.ctx.read_sets().await? {
            if set.state != ScaleSetState::Active
                || set.spec.upgrade_policy.mode == UpgradeMode::Manual
            {
                continue;
            }
            let latest = self
                .ctx
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
            let instances = self
                .ctx
                .store
                .list_instances(set.name())
                .await
                .map_err(Error::store("list instances"))?;
            if instances
                .iter()
                .all(|i| i.model_version == set.model_version || i.protect_from_scale_set_actions)
            {
                continue;
            }
            self.start_policy_rollout(&set, "system:rollouts").await?;
        }
        Ok(())
    }

    /// Advances one rollout as far as it can go now.
    async fn step(&self, mut r: Rollout) -> Result<()> {
        let shared = &self.ctx;
        let now = shared.now();
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
            after = self.advance(&mut r, &set, &instances, now).await?;
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
                self.rollback(stored, version, "system:rollouts", &why)
                    .await?;
            }
        }
        Ok(())
    }

    async fn advance(
        &self,
        r: &mut Rollout,
        set: &ScaleSet,
        instances: &[Instance],
        now: DateTime<Utc>,
    ) -> Result<After> {
        let shared = &self.ctx;
        let by_id: HashMap<&str, &Instance> =
            instances.iter().map(|i| (i.id.as_str(), i)).collect();
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
                let check =
                    rollout::gate_before(number, instances, set.spec.capacity, &r.policy, now);
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
        for id in shared.write_instances(updates).await? {
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
        shared.write_instances(kept).await?;
        if !leaving.is_empty() {
            match shared.store.mark_deleting(set, &leaving, false, now).await {
                Ok((_, marked)) => {
                    for i in marked {
                        shared.events.publish(Event::InstanceChanged {
                            instance: Box::new(i),
                        });
                    }
                    self.wake.wake(set.name());
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
            self.wake.wake(set.name());
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
                    + chrono::Duration::seconds(i64::from(
                        r.policy.pause_time_between_batches_seconds,
                    )),
            });
        }
        Ok(After::Nothing)
    }
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
