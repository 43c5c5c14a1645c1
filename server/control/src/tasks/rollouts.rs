//! The `rollouts` task (the rollout engine): moves a scale set's instances to a model
//! version in the batches the pure planner (`flotilla_domain::rollout::plan`) made, with the
//! health gates between them; and the rollout operations the facade shares with it (begin,
//! insert, rollback, release).
//!
//! The task steps every active rollout every [`TICK`] (and when woken). A step gathers the
//! rollout, its set, the set's instances and which of them the load balancer serves, asks
//! the pure [`rollout::step`] what to do — instance steps, holds, gates, the next batch,
//! the end — and writes and acts in the order that function's documentation gives: the
//! instance records first, the rollout after (both generation-guarded). Every step decides
//! afresh from what was written, so a control plane killed at any point resumes where it
//! stopped. The reconciler carries out what the records ask (a pending reimage after the
//! load balancer drained the instance; a retiring instance's replacement), the prober finds
//! the instances healthy again.
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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flotilla_domain::rollout::{
    self, PlanInput, Rollout, RolloutKind, RolloutPlan, RolloutState, RolloutView, StepInput,
};
use flotilla_domain::scale_set::{RollingPolicy, UpgradeMode};
use flotilla_domain::{
    ActivityResult, Event, Instance, Model, NewActivity, ScaleSet, ScaleSetState,
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

pub(crate) fn stale(operation: &str) -> Error {
    Error::Conflict {
        message: format!("the rollout changed concurrently during {operation}; retry"),
    }
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
    ctx: &Context,
    name: &str,
    version: u32,
    field: &str,
) -> Result<Model> {
    ctx.store
        .get_model_version(name, version)
        .await
        .map_err(Error::store("get model version"))?
        .map(|v| v.model)
        .ok_or_else(|| Error::invalid(field, format!("version {version} does not exist")))
}

pub(crate) async fn read_rollout(ctx: &Context, name: &str, id: i64) -> Result<Rollout> {
    ctx.store
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
    ctx: &Context,
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
        if let Some(stored) = ctx
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
        r.finish(RolloutState::Completed, message, now);
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
        let ctx = &self.ctx;
        let stored = match ctx.store.insert_rollout(&rollout).await {
            Ok(r) => r,
            Err(StoreError::AlreadyExists { .. }) => {
                let running = active_rollout(ctx, &rollout.scale_set).await?;
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
        relabel(ctx, &stored).await?;
        publish(ctx, &stored);
        ctx.record(activity(
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
async fn relabel(ctx: &Context, r: &Rollout) -> Result<()> {
    if r.plan.relabel.is_empty() {
        return Ok(());
    }
    let ids: BTreeSet<&str> = r.plan.relabel.iter().map(|p| p.id.as_str()).collect();
    let records = ctx.read_instances(&r.scale_set).await?;
    let updates: Vec<Instance> = records
        .into_iter()
        .filter(|i| ids.contains(i.id.as_str()) && i.model_version != r.target_version)
        .map(|mut i| {
            i.model_version = r.target_version;
            i
        })
        .collect();
    ctx.write_instances(updates).await.map(drop)
}

/// Clears `retiring` on the instances a cancelled or faulted surge batch left
/// ([`rollout::release_retiring`]).
pub(crate) async fn release_retiring(ctx: &Context, r: &Rollout) -> Result<()> {
    let records = ctx.read_instances(&r.scale_set).await?;
    ctx.write_instances(rollout::release_retiring(r, &records))
        .await
        .map(drop)
}

pub(crate) fn publish(ctx: &Context, r: &Rollout) {
    ctx.events.publish(Event::RolloutChanged {
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
        let ctx = &self.ctx;
        let name = original.scale_set.clone();
        let model = model_version(ctx, &name, version, "version").await?;
        if original.state.is_active() {
            release_retiring(ctx, &original).await?;
            let now = ctx.now();
            original.finish(
                RolloutState::Cancelled,
                format!("cancelled for a rollback to version {version} ({why})"),
                now,
            );
            original = ctx
                .store
                .update_rollout(&original)
                .await
                .map_err(|e| match e {
                    StoreError::Conflict { .. } => stale("a rollback"),
                    e => Error::store("update rollout")(e),
                })?;
            publish(ctx, &original);
        }
        // The good model becomes the newest version (scale-outs meanwhile get it).
        let author = format!(
            "{actor} (rollback of rollout {} to version {version})",
            original.id
        );
        let (_, set) = ctx
            .modify_set(&name, &author, |current| {
                let mut next = current.clone();
                next.spec.model = model.clone();
                next.model_version = current.model_version + 1;
                Ok(next)
            })
            .await?;
        ctx
        .set_changed(
            &set,
            "scale_set.model",
            actor,
            ctx.now(),
            json!({"new_version": set.model_version, "restored_version": version, "rollout_id": original.id}),
        )
        .await;
        self.wake.wake(&name);
        let instances = ctx.read_instances(&name).await?;
        let rollout = begin(
            ctx,
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
        match ctx.store.update_rollout(&original).await {
            Ok(stored) => publish(ctx, &stored),
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
        let active = self.ctx.active_rollouts().await?;
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
        let instances = self.ctx.read_instances(set.name()).await?;
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
            let instances = self.ctx.read_instances(set.name()).await?;
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

    /// Advances one rollout as far as it can go now: gathers, asks the pure
    /// [`rollout::step`], then writes and acts in the order its documentation gives.
    async fn step(&self, r: Rollout) -> Result<()> {
        let ctx = &self.ctx;
        let now = ctx.now();
        let Some(set) = ctx
            .store
            .get_scale_set(&r.scale_set)
            .await
            .map_err(Error::store("get scale set"))?
        else {
            return Ok(());
        };
        let instances = ctx.read_instances(&r.scale_set).await?;
        let lb = &ctx.balancer.lb;
        let mut plan = rollout::step(&StepInput {
            rollout: &r,
            set: Some(&set),
            instances: &instances,
            serving: &|id| lb.serves(id),
            now,
        });
        let stale = ctx.write_instances(std::mem::take(&mut plan.start)).await?;
        plan.unstart(&stale);
        ctx.write_instances(std::mem::take(&mut plan.release))
            .await?;
        if !plan.delete.is_empty() {
            match ctx
                .store
                .mark_deleting(&set, &plan.delete, false, now)
                .await
            {
                Ok((_, marked)) => ctx.publish_instances(marked),
                // The set changed meanwhile: what the instances did is kept, the rest is
                // decided again next tick.
                Err(StoreError::Conflict { .. }) => {
                    return self.store_step(&r, plan.progressed, now).await.map(drop);
                }
                Err(e) => return Err(Error::store("remove replaced instances")(e)),
            }
        }
        if plan.wake_set {
            self.wake.wake(set.name());
        }
        if let Some(stored) = self.store_step(&r, plan.rollout, now).await?
            && let Some((version, why)) = plan.rollback
        {
            self.rollback(stored, version, "system:rollouts", &why)
                .await?;
        }
        Ok(())
    }

    /// Stores what a step made of `before` (nothing when it is unchanged, or when a
    /// person's pause or cancel got there first), announces it and logs its end.
    async fn store_step(
        &self,
        before: &Rollout,
        mut next: Rollout,
        now: DateTime<Utc>,
    ) -> Result<Option<Rollout>> {
        if next == *before {
            return Ok(None);
        }
        let ctx = &self.ctx;
        next.updated_at = now;
        let stored = match ctx.store.update_rollout(&next).await {
            Ok(s) => s,
            Err(StoreError::Conflict { .. }) => return Ok(None),
            Err(e) => return Err(Error::store("update rollout")(e)),
        };
        publish(ctx, &stored);
        if stored.state != before.state && !stored.state.is_active() {
            let result = if stored.state == RolloutState::Completed {
                ActivityResult::Succeeded
            } else {
                ActivityResult::Failed
            };
            let error = (result == ActivityResult::Failed)
                .then(|| stored.message.clone().unwrap_or_default());
            ctx.record(activity(
                &stored,
                &format!("rollout.{}", stored.state.as_str()),
                "system:rollouts",
                stored.created_at,
                result,
                error,
            ))
            .await;
        }
        Ok(Some(stored))
    }
}
