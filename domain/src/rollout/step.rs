//! One step of a running rollout, decided without I/O: the engine (`flotilla-control`'s
//! `rollouts`) gathers the stored rollout, its set, the set's instances and which of them
//! the load balancer serves, calls [`step`], then writes and acts on the [`StepPlan`].
//!
//! A step moves each instance of the current batch through
//! `pending → draining | updating → waiting_healthy → succeeded | failed`: in place, the
//! record gets the target version and a pending reimage; with surge it is marked `retiring`
//! so the reconciler creates its replacement, and leaves once the replacement serves (a
//! failed replacement leaves instead and the instance stays). Holds (a person's pause, an
//! approval, the pause between batches, baking, the gate before a batch) stop it first, and
//! a finished batch is followed by the gate after it, a pause or the end.
//!
//! # Applying a plan
//! In this order, each write generation-guarded, so a control plane killed at any point
//! resumes where it stopped (the next step decides again from what was written):
//! 1. write `start`; for the ids the store reports stale call [`StepPlan::unstart`];
//! 2. write `release` (stale ones are left to the next step);
//! 3. mark `delete` deleting; when the set changed meanwhile (a conflict), store `progressed`
//!    if it differs from the input and stop there: no wake, no rollback (the next step
//!    tries again);
//! 4. wake the set's reconcile loop when `wake_set`;
//! 5. when `rollout` differs from the input, store it with `updated_at = now` (the plan
//!    leaves `updated_at` to the engine, so an unchanged step compares equal);
//! 6. start the rollback when `rollback` says so.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;

use chrono::{DateTime, Utc};

use super::{
    GateCheck, Hold, InstanceStep, Rollout, RolloutKind, RolloutState, UpgradeAction, gate_after,
    gate_before, observe_step,
};
use crate::instance::{Instance, PendingAction, ProvisioningState};
use crate::repair::repair_limit;
use crate::scale_set::{ScaleSet, ScaleSetState, UpgradeMode, UpgradePolicy};

/// Everything one step reads (gathered by the engine).
pub struct StepInput<'a> {
    /// The stored record of an active rollout (the engine steps only those).
    pub rollout: &'a Rollout,
    /// The rollout's set; `None`: the set is gone, nothing to do.
    pub set: Option<&'a ScaleSet>,
    /// The set's instance records.
    pub instances: &'a [Instance],
    /// Whether the load balancer serves instance `id` now (the engine asks its balancer).
    pub serving: &'a dyn Fn(&str) -> bool,
    pub now: DateTime<Utc>,
}

/// What one step decided; the module documentation says how the engine applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPlan {
    /// The rollout as it should be stored (equal to the input when nothing changed: the
    /// engine then writes nothing). `updated_at` is left to the engine, which sets it to
    /// `now` when it writes (a rollout the step finished has it already).
    pub rollout: Rollout,
    /// The record after the instance sub-steps but before the batch-completion sub-step
    /// (equal to `rollout` when the step stopped earlier): what the engine stores instead of
    /// `rollout` when `delete` could not be written because the set changed concurrently.
    pub progressed: Rollout,
    /// Instance records to write first, generation-guarded: started in place (target
    /// version, reimage pending) or with surge (retiring).
    pub start: Vec<Instance>,
    /// Records whose `retiring` is cleared: a failed replacement's old instance, and on a
    /// superseded rollout the instances its surge batch left retiring.
    pub release: Vec<Instance>,
    /// Instances to mark deleting: an old instance whose replacement serves, a failed
    /// replacement.
    pub delete: Vec<String>,
    /// Wake the set's reconcile loop: instances of the batch are still moving, or some are
    /// to be deleted.
    pub wake_set: bool,
    /// After storing: start a rollback to this version, and why (a breached gate under
    /// `rollback_failed_instances_on_policy_breach`).
    pub rollback: Option<(u32, String)>,
}

impl StepPlan {
    /// Nothing to do: the rollout as it is, nothing to write.
    fn unchanged(rollout: &Rollout) -> Self {
        Self {
            rollout: rollout.clone(),
            progressed: rollout.clone(),
            start: Vec::new(),
            release: Vec::new(),
            delete: Vec::new(),
            wake_set: false,
            rollback: None,
        }
    }

    /// Puts the instances whose `start` records the store refused as stale (changed
    /// meanwhile: a probe, the reconciler) back to pending in both records, so the next step
    /// starts them again.
    ///
    /// The engine used to do this right after writing, before deciding retirements and
    /// the batch's completion; doing it after [`step`] decides the same. Those instances
    /// were pending when the step began and were started by it, so they are unfinished
    /// whether pending or started (the batch cannot complete either way), and neither a
    /// pending nor a just-started instance (draining, or updating without a replacement) is
    /// retired or released.
    pub fn unstart(&mut self, stale_ids: &[String]) {
        for r in [&mut self.rollout, &mut self.progressed] {
            for id in stale_ids {
                if let Some(p) = r.instances.get_mut(id) {
                    p.step = InstanceStep::Pending;
                    p.started_at = None;
                }
            }
        }
    }
}

/// Decides how far one rollout advances now: the record to store and what to write and do.
pub fn step(input: &StepInput<'_>) -> StepPlan {
    let mut plan = StepPlan::unchanged(input.rollout);
    let Some(set) = input.set else {
        return plan;
    };
    let mut progressed = None;
    if end_if_obsolete(&mut plan, set, input).is_continue() {
        adopt_policy(&mut plan.rollout, set);
        let facts = Facts::new(input, set, &plan.rollout);
        if let ControlFlow::Continue(batch) = move_batch(&mut plan, &facts) {
            progressed = Some(plan.rollout.clone());
            complete_batch(&mut plan, &facts, &batch);
        }
    }
    plan.progressed = progressed.unwrap_or_else(|| plan.rollout.clone());
    plan
}

/// The most instances out of service at once while a rollout runs: the set's repair
/// limit, or the rollout's batch when larger.
pub fn out_of_service_limit(set: &ScaleSet, rollout: &Rollout) -> usize {
    repair_limit(set.spec.capacity).max(rollout.plan.batch_size as usize)
}

/// The records of the instances a cancelled or superseded surge batch left retiring
/// (started, unfinished replacements), with `retiring` cleared: they count toward capacity
/// again.
pub fn release_retiring(rollout: &Rollout, instances: &[Instance]) -> Vec<Instance> {
    let ids: BTreeSet<&str> = rollout
        .instances
        .values()
        .filter(|p| p.action == UpgradeAction::Replace && !p.step.is_finished())
        .map(|p| p.id.as_str())
        .collect();
    instances
        .iter()
        .filter(|i| i.retiring && ids.contains(i.id.as_str()))
        .map(|i| Instance {
            retiring: false,
            ..i.clone()
        })
        .collect()
}

/// Whether `next` can apply to a running rollout planned under `current`: the mode and
/// surge shape the plan's batches and actions, so changing them is refused (answered with
/// the field) until the rollout ends; every other rolling field is adopted by the next step.
pub fn policy_change_refused(
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

/// What every sub-step reads: the input, and what follows from the rollout's kind, mode
/// and (adopted) policy.
struct Facts<'a> {
    set: &'a ScaleSet,
    instances: &'a [Instance],
    by_id: HashMap<&'a str, &'a Instance>,
    serving: &'a dyn Fn(&str) -> bool,
    now: DateTime<Utc>,
    timeout: chrono::Duration,
    /// Rolling upgrades and rollbacks have gates and pauses; Automatic mode and a person's
    /// manual upgrade are one batch without.
    gated: bool,
    /// A rollback is what repairs an unhealthy set: the gate before batches does not hold it.
    gated_before: bool,
    /// A person's pause: instances in flight finish their step, nothing new starts.
    paused: bool,
}

impl<'a> Facts<'a> {
    fn new(input: &StepInput<'a>, set: &'a ScaleSet, r: &Rollout) -> Self {
        let gated = r.kind != RolloutKind::Manual && r.plan.mode == UpgradeMode::Rolling;
        Self {
            set,
            instances: input.instances,
            by_id: input.instances.iter().map(|i| (i.id.as_str(), i)).collect(),
            serving: input.serving,
            now: input.now,
            timeout: chrono::Duration::seconds(i64::from(r.policy.instance_timeout_seconds)),
            gated,
            gated_before: gated && r.kind != RolloutKind::Rollback,
            paused: matches!(r.hold, Some(Hold::Paused { .. })),
        }
    }
}

/// The batch a step works on.
struct Current {
    /// 1-based.
    number: u32,
    /// Its instances' ids, in id order.
    members: Vec<String>,
}

/// A rollout whose set is being deleted, or whose model moved on (a newer version, a
/// rollback), ends cancelled; a superseded one first releases what its surge batch left
/// retiring.
fn end_if_obsolete(plan: &mut StepPlan, set: &ScaleSet, input: &StepInput<'_>) -> ControlFlow<()> {
    let r = &mut plan.rollout;
    if set.state == ScaleSetState::Deleting {
        r.finish(
            RolloutState::Cancelled,
            "the scale set is being deleted".into(),
            input.now,
        );
    } else if set.model_version != r.target_version {
        plan.release = release_retiring(r, input.instances);
        r.finish(
            RolloutState::Cancelled,
            format!(
                "superseded: the model moved on to version {}",
                set.model_version
            ),
            input.now,
        );
    } else {
        return ControlFlow::Continue(());
    }
    ControlFlow::Break(())
}

/// Rolling fields changed on the set (gates, pauses, timeout, bake) apply from this step;
/// the batches stay as planned. A rollback keeps the policy it was made with, and a
/// one-batch rollout has nothing to adopt.
fn adopt_policy(r: &mut Rollout, set: &ScaleSet) {
    let policy = &set.spec.upgrade_policy.rolling;
    if r.kind == RolloutKind::Rollback || *policy == r.policy || r.plan.mode != UpgradeMode::Rolling
    {
        return;
    }
    r.policy = policy.clone();
}

/// Everything before the batch's completion: the holds, the start of the batch, each
/// member's start or observation, and the retirement of replaced instances. Breaks where
/// the step ends.
fn move_batch(plan: &mut StepPlan, f: &Facts<'_>) -> ControlFlow<(), Current> {
    holds(plan, f)?;
    let batch = current_batch(&mut plan.rollout, f)?;
    start_batch(&mut plan.rollout, f, &batch)?;
    // Matched before any member moves, as one decision over the batch.
    let replacements = find_replacements(&plan.rollout, f.instances, batch.number);
    for id in &batch.members {
        match plan.rollout.instances[id].step {
            step if step.is_finished() => {}
            InstanceStep::Pending => start_pending(plan, f, id),
            _ => observe_moving(&mut plan.rollout, f, id, &replacements),
        }
    }
    retire_replaced(plan, f, &batch);
    ControlFlow::Continue(batch)
}

/// The holds: an approval waits for a person or its time, the pause between batches for
/// its end, and baking watches the upgraded instances until it completes or breaches. A
/// person's pause and the gate's hold are dealt with where they apply.
fn holds(plan: &mut StepPlan, f: &Facts<'_>) -> ControlFlow<()> {
    let r = &mut plan.rollout;
    match r.hold.clone() {
        Some(Hold::Paused { .. } | Hold::Gate { .. }) | None => ControlFlow::Continue(()),
        Some(Hold::Approval { until, .. }) => match until {
            Some(t) if f.now >= t => {
                r.hold = None;
                r.state = RolloutState::RollingForward;
                ControlFlow::Continue(())
            }
            _ => ControlFlow::Break(()),
        },
        Some(Hold::Between { until }) => {
            if f.now < until {
                return ControlFlow::Break(());
            }
            r.hold = None;
            ControlFlow::Continue(())
        }
        Some(Hold::Bake { until }) => {
            let check = upgraded_gate(r, f, "bake", 0);
            if !check.passed {
                plan.rollback = breach(r, check, f.now);
            } else if f.now >= until {
                let message = completed_message(r);
                r.finish(RolloutState::Completed, message, f.now);
            }
            ControlFlow::Break(())
        }
    }
}

/// The batch in progress or next; past the last one the rollout ends (bakes or completes),
/// unless a person paused it.
fn current_batch(r: &mut Rollout, f: &Facts<'_>) -> ControlFlow<(), Current> {
    if r.current_batch > r.plan.batches.len() as u32 {
        if !f.paused {
            end_of_batches(r, f.now);
        }
        return ControlFlow::Break(());
    }
    let number = r.current_batch;
    let members = r
        .instances
        .values()
        .filter(|p| p.batch == number)
        .map(|p| p.id.clone())
        .collect();
    ControlFlow::Continue(Current { number, members })
}

/// A batch not started yet starts unless a person paused the rollout and, when gated
/// before, once it passes the gate before it.
fn start_batch(r: &mut Rollout, f: &Facts<'_>, batch: &Current) -> ControlFlow<()> {
    if r.batch_started {
        return ControlFlow::Continue(());
    }
    if f.paused {
        return ControlFlow::Break(());
    }
    if f.gated_before {
        gate_before_batch(r, f, batch)?;
    }
    r.batch_started = true;
    ControlFlow::Continue(())
}

/// The gate before a batch: too many unhealthy instances in the set hold the rollout for
/// up to the instance timeout (counted from the first failed check, which is recorded),
/// then fault it. Then the shared limit: what else is out of service (scale-out, repairs,
/// a person's actions) plus the batch must fit in [`out_of_service_limit`] — repairs count
/// the rollout's instances against their own limit the same way, so the two never take
/// more than that out together. A batch alone may exceed it.
fn gate_before_batch(r: &mut Rollout, f: &Facts<'_>, batch: &Current) -> ControlFlow<()> {
    let number = batch.number;
    let check = gate_before(number, f.instances, f.set.spec.capacity, &r.policy, f.now);
    if !check.passed {
        let until = match &r.hold {
            Some(Hold::Gate { until, .. }) => *until,
            _ => {
                r.gates.push(check.clone());
                f.now + f.timeout
            }
        };
        if f.now >= until {
            r.finish(
                RolloutState::Faulted,
                format!(
                    "the set stayed unhealthy before batch {number}: {}",
                    check.detail
                ),
                f.now,
            );
        } else {
            r.hold = Some(Hold::Gate {
                until,
                detail: check.detail,
            });
        }
        return ControlFlow::Break(());
    }
    let busy = f
        .instances
        .iter()
        .filter(|i| i.is_active() && i.in_transition() && !batch.members.contains(&i.id))
        .count();
    let limit = out_of_service_limit(f.set, r);
    if busy + batch.members.len() > limit && busy > 0 {
        // Held without recording the passed check; the deadline moves with every step, so
        // this hold never faults (a failing health check after it inherits the deadline).
        r.hold = Some(Hold::Gate {
            until: f.now + f.timeout,
            detail: format!(
                "{busy} instance(s) already out of service (scale-out, repairs or a person's action); at most {limit} at once"
            ),
        });
        return ControlFlow::Break(());
    }
    r.gates.push(check);
    r.hold = None;
    ControlFlow::Continue(())
}

/// A pending member of the started batch (left pending while paused): removed when deleted
/// or protected meanwhile, left to settle while being created or while an action of its
/// own waits, else started — in place its record gets the target version and a pending
/// reimage (draining), with surge it is marked retiring so the reconciler creates its
/// replacement (updating).
fn start_pending(plan: &mut StepPlan, f: &Facts<'_>, id: &str) {
    if f.paused {
        return;
    }
    let r = &mut plan.rollout;
    let Some(record) = f.by_id.get(id).copied().filter(|i| i.is_active()) else {
        mark(
            r,
            id,
            InstanceStep::Removed,
            Some("deleted meanwhile".into()),
            f.now,
        );
        return;
    };
    if record.protect_from_scale_set_actions {
        mark(
            r,
            id,
            InstanceStep::Removed,
            Some("protected from scale-set actions meanwhile".into()),
            f.now,
        );
        return;
    }
    if record.provisioning_state == ProvisioningState::Creating || record.pending.is_some() {
        return;
    }
    let target = r.target_version;
    let p = r.instances.get_mut(id).expect("a member of the batch");
    let mut next = record.clone();
    if p.action == UpgradeAction::Replace {
        next.retiring = true;
        p.step = InstanceStep::Updating;
    } else {
        next.model_version = target;
        next.pending = Some(PendingAction::Reimage);
        next.provisioning_state = ProvisioningState::Updating;
        p.step = InstanceStep::Draining;
    }
    next.updated_at = f.now;
    p.started_at = Some(f.now);
    plan.start.push(next);
}

/// A started member: with surge its replacement is found, then its step is read from the
/// records ([`observe_step`]) — and held at waiting_healthy while the load balancer has
/// not yet added it to its pool, so the next batch does not start before it serves.
fn observe_moving(
    r: &mut Rollout,
    f: &Facts<'_>,
    id: &str,
    replacements: &HashMap<String, String>,
) {
    let progress = r.instances.get_mut(id).expect("a member of the batch");
    if progress.action == UpgradeAction::Replace
        && progress.replacement.is_none()
        && let Some(new_id) = replacements.get(id)
    {
        progress.replacement = Some(new_id.clone());
    }
    let progress = progress.clone();
    let record = f.by_id.get(id).copied();
    let replacement = progress
        .replacement
        .as_deref()
        .and_then(|rid| f.by_id.get(rid).copied());
    let (mut step, mut detail) = observe_step(
        &progress,
        record,
        replacement,
        r.target_version,
        f.timeout,
        f.now,
    );
    if step == InstanceStep::Succeeded
        && f.set
            .spec
            .load_balancer
            .as_ref()
            .is_some_and(|lb| !lb.frontends.is_empty())
        && let Some(subject) = replacement.or(record)
        && subject.load_balancer_enabled
        && !(f.serving)(&subject.id)
    {
        step = InstanceStep::WaitingHealthy;
        detail = Some("healthy; joining the load balancer's pool".into());
    }
    if step != progress.step || detail != progress.detail {
        mark(r, id, step, detail, f.now);
    }
}

/// With surge: a member whose replacement succeeded retires (its old instance is deleted);
/// one whose replacement failed keeps its instance (no longer retiring) and the
/// replacement is deleted.
fn retire_replaced(plan: &mut StepPlan, f: &Facts<'_>, batch: &Current) {
    for id in &batch.members {
        let p = &plan.rollout.instances[id];
        if p.action != UpgradeAction::Replace {
            continue;
        }
        let Some(old) = f.by_id.get(id.as_str()) else {
            continue;
        };
        match p.step {
            InstanceStep::Succeeded if old.is_active() => plan.delete.push(id.clone()),
            InstanceStep::Failed => {
                if let Some(rid) = &p.replacement
                    && f.by_id.get(rid.as_str()).is_some_and(|i| i.is_active())
                {
                    plan.delete.push(rid.clone());
                }
                if old.retiring {
                    plan.release.push(Instance {
                        retiring: false,
                        ..(*old).clone()
                    });
                }
            }
            _ => {}
        }
    }
    if !plan.delete.is_empty() {
        plan.wake_set = true;
    }
}

/// The batch is done when every member finished and, with surge, every replaced instance
/// is gone (so the next batch's replacements never stack on this one's); until then the
/// set is woken. Done: the gate after it (a breach faults the rollout; a rollback records
/// it and goes on), then the end, or the next batch after its pause — an approval after
/// the canary or a checkpoint, or the pause between batches. While a person paused the
/// rollout it only moves to the next batch.
fn complete_batch(plan: &mut StepPlan, f: &Facts<'_>, batch: &Current) {
    let r = &mut plan.rollout;
    let number = batch.number;
    let replaced_left = batch.members.iter().any(|id| {
        r.instances[id].action == UpgradeAction::Replace
            && r.instances[id].step == InstanceStep::Succeeded
            && f.by_id.contains_key(id.as_str())
    });
    if replaced_left
        || batch
            .members
            .iter()
            .any(|id| !r.instances[id].step.is_finished())
    {
        plan.wake_set = true;
        return;
    }
    r.batch_started = false;
    if f.gated || r.kind == RolloutKind::Rollback {
        let check = upgraded_gate(r, f, "after", number);
        let passed = check.passed;
        r.gates.push(check.clone());
        if !passed && r.kind != RolloutKind::Rollback {
            plan.rollback = breach(r, check, f.now);
            return;
        }
    }
    r.current_batch += 1;
    if f.paused {
        return;
    }
    if r.current_batch > r.plan.batches.len() as u32 {
        end_of_batches(r, f.now);
        return;
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
                .map(|s| f.now + chrono::Duration::seconds(i64::from(s))),
        });
        r.state = RolloutState::Paused;
    } else if f.gated && r.policy.pause_time_between_batches_seconds > 0 {
        r.hold = Some(Hold::Between {
            until: f.now
                + chrono::Duration::seconds(i64::from(r.policy.pause_time_between_batches_seconds)),
        });
    }
}

/// With surge: new instances on the target version created since the batch's instances
/// started, matched to them by zone (then any), one each.
fn find_replacements(r: &Rollout, instances: &[Instance], number: u32) -> HashMap<String, String> {
    let taken: BTreeSet<&str> = r
        .instances
        .values()
        .filter_map(|p| p.replacement.as_deref())
        .chain(r.instances.keys().map(String::as_str))
        .collect();
    let mut free: Vec<&Instance> = instances
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

/// Sets an instance's step and detail, and when it finished.
fn mark(r: &mut Rollout, id: &str, step: InstanceStep, detail: Option<String>, now: DateTime<Utc>) {
    if let Some(p) = r.instances.get_mut(id) {
        p.step = step;
        p.detail = detail;
        if step.is_finished() {
            p.finished_at = Some(now);
        }
    }
}

/// The gate over the instances this rollout moved so far (their replacements with surge)
/// and those that failed to move.
fn upgraded_gate(r: &Rollout, f: &Facts<'_>, name: &str, batch: u32) -> GateCheck {
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
                if let Some(i) = f.by_id.get(subject) {
                    upgraded.push(i);
                }
            }
            InstanceStep::Failed => failed += 1,
            _ => {}
        }
    }
    gate_after(
        name,
        batch,
        &upgraded,
        failed,
        f.set.spec.capacity,
        &r.policy,
        f.now,
    )
}

/// A breached gate: the rollout faults, and rolls back to the version it started from when
/// the policy says so (a rollback itself never does) — answered as the version and why.
fn breach(r: &mut Rollout, check: GateCheck, now: DateTime<Utc>) -> Option<(u32, String)> {
    r.gates.push(check.clone());
    let rollback =
        r.policy.rollback_failed_instances_on_policy_breach && r.kind != RolloutKind::Rollback;
    r.finish(
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
    rollback.then(|| (r.from_version, format!("policy breach: {}", check.detail)))
}

/// Every batch ran: a rolling upgrade with a bake time bakes first, anything else
/// completes.
fn end_of_batches(r: &mut Rollout, now: DateTime<Utc>) {
    let bake = r.policy.bake_time_seconds;
    if bake > 0 && r.plan.mode == UpgradeMode::Rolling && r.kind == RolloutKind::Upgrade {
        r.hold = Some(Hold::Bake {
            until: now + chrono::Duration::seconds(i64::from(bake)),
        });
        return;
    }
    let message = completed_message(r);
    r.finish(RolloutState::Completed, message, now);
}

/// `3 instance(s) on version 2, 1 failed, 2 skipped`.
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::instance::HealthState;
    use crate::instance::fixtures::instance;
    use crate::rollout::{InstanceProgress, PlanInput, initial_progress, plan};
    use crate::scale_set::{
        Checkpoint, Frontend, FrontendProtocol, LoadBalancer, Model, RollingPolicy, ScaleSetSpec,
    };

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::seconds(secs)
    }

    fn model(image: &str) -> Model {
        Model {
            image: image.into(),
            ..ScaleSetSpec::example("web", 1).model
        }
    }

    /// When [`World::started`] starts an instance.
    const STARTED: i64 = 100;

    /// How a world begins: `n` instances on version 1 over some zones, and a rollout of the
    /// set to version 2.
    struct Setup {
        n: u64,
        zones: Vec<&'static str>,
        kind: RolloutKind,
        mode: UpgradeMode,
        policy: RollingPolicy,
    }

    /// A rolling upgrade of `n` instances in one zone, in batches of `percent`.
    fn rolling(n: u64, percent: u32) -> Setup {
        Setup {
            n,
            zones: vec!["1"],
            kind: RolloutKind::Upgrade,
            mode: UpgradeMode::Rolling,
            policy: RollingPolicy {
                max_batch_instance_percent: percent,
                ..RollingPolicy::default()
            },
        }
    }

    impl Setup {
        fn zones(mut self, zones: &[&'static str]) -> Self {
            self.zones = zones.to_vec();
            self
        }
        fn surge(self) -> Self {
            self.policy(|p| p.max_surge = true)
        }
        fn policy(mut self, change: impl FnOnce(&mut RollingPolicy)) -> Self {
            change(&mut self.policy);
            self
        }
        /// A person's upgrade of every instance at once (Azure's manual upgrade).
        fn manual(mut self) -> Self {
            self.kind = RolloutKind::Manual;
            self.mode = UpgradeMode::Automatic;
            self
        }
        fn rollback(mut self) -> Self {
            self.kind = RolloutKind::Rollback;
            self
        }

        /// The set, its records and the rollout as the engine begins it at 0 s; the load
        /// balancer serves every instance.
        fn begin(self) -> World {
            let instances: Vec<Instance> = (0..self.n)
                .map(|o| instance("web", o, self.zones[o as usize % self.zones.len()], 0))
                .collect();
            let mut spec = ScaleSetSpec::example("web", self.n as u32);
            spec.upgrade_policy = UpgradePolicy {
                mode: self.mode,
                rolling: self.policy.clone(),
            };
            let set = ScaleSet {
                spec,
                model_version: 2,
                generation: 1,
                state: ScaleSetState::Active,
                repairs: Default::default(),
                created_at: at(0),
                updated_at: at(0),
            };
            let models = BTreeMap::from([(1, model("debian-12")), (2, model("ubuntu-24.04"))]);
            let plan = plan(PlanInput {
                capacity: self.n as u32,
                instances: &instances,
                target_version: 2,
                models: &models,
                mode: self.mode,
                policy: &self.policy,
                only: None,
                boot_seconds: None,
            });
            let rollout = Rollout {
                id: 1,
                scale_set: "web".into(),
                kind: self.kind,
                state: RolloutState::RollingForward,
                from_version: 1,
                target_version: 2,
                policy: self.policy,
                instances: initial_progress(&plan, at(0)),
                plan,
                current_batch: 1,
                batch_started: false,
                gates: Vec::new(),
                hold: None,
                message: None,
                rollback_of: None,
                rolled_back_by: None,
                created_by: "test".into(),
                created_at: at(0),
                updated_at: at(0),
                finished_at: None,
                generation: 1,
            };
            World {
                set,
                instances,
                rollout,
                serving: None,
            }
        }
    }

    /// What the engine gathers for a step, and writes back.
    #[derive(Clone)]
    struct World {
        set: ScaleSet,
        instances: Vec<Instance>,
        rollout: Rollout,
        /// The instances the load balancer serves (`None`: every one).
        serving: Option<BTreeSet<String>>,
    }

    impl World {
        fn step(&self, secs: i64) -> StepPlan {
            let serving = |id: &str| self.serving.as_ref().is_none_or(|s| s.contains(id));
            step(&StepInput {
                rollout: &self.rollout,
                set: Some(&self.set),
                instances: &self.instances,
                serving: &serving,
                now: at(secs),
            })
        }

        /// Writes the plan as the engine does (no write is stale, no delete conflicts).
        fn apply(&mut self, plan: &StepPlan) {
            for written in plan.start.iter().chain(&plan.release) {
                *self.record(&written.id) = written.clone();
            }
            for id in &plan.delete {
                self.record(id).provisioning_state = ProvisioningState::Deleting;
            }
            self.rollout = plan.rollout.clone();
        }

        fn tick(&mut self, secs: i64) -> StepPlan {
            let plan = self.step(secs);
            self.apply(&plan);
            plan
        }

        fn record(&mut self, id: &str) -> &mut Instance {
            self.instances
                .iter_mut()
                .find(|i| i.id == id)
                .expect("a record")
        }

        fn remove(&mut self, id: &str) {
            self.instances.retain(|i| i.id != id);
        }

        fn progress(&mut self, id: &str) -> &mut InstanceProgress {
            self.rollout.instances.get_mut(id).expect("in the rollout")
        }

        /// `id`'s batch started and `id` with it at [`STARTED`], now at `step`, its record
        /// as the start wrote it.
        fn started(&mut self, id: &str, step: InstanceStep) {
            self.rollout.batch_started = true;
            let p = self.progress(id);
            p.step = step;
            p.started_at = Some(at(STARTED));
            let replace = p.action == UpgradeAction::Replace;
            let record = self.record(id);
            if replace {
                record.retiring = true;
            } else {
                record.model_version = 2;
                record.pending = Some(PendingAction::Reimage);
                record.provisioning_state = ProvisioningState::Updating;
            }
        }

        /// The reconciler took the reimage, the VM booted; not probed healthy yet.
        fn booting(&mut self, id: &str) {
            let record = self.record(id);
            record.model_version = 2;
            record.pending = None;
            record.provisioning_state = ProvisioningState::Succeeded;
            record.health_state = HealthState::Initializing;
        }

        /// Reimaged and found healthy.
        fn reimaged(&mut self, id: &str) {
            self.booting(id);
            self.record(id).health_state = HealthState::Healthy;
        }

        /// A new healthy instance on version 2 (a replacement the reconciler created).
        fn created(&mut self, ordinal: u64, zone: &str, at_secs: i64) -> String {
            let mut new = instance("web", ordinal, zone, 0).created_at_secs(at_secs);
            new.model_version = 2;
            self.instances.push(new);
            Instance::make_id("web", ordinal)
        }

        /// Every member of batch `number` upgraded in place and healthy, the batch started.
        fn upgraded_batch(&mut self, number: u32) {
            self.rollout.batch_started = true;
            let members: Vec<String> = self
                .rollout
                .instances
                .values()
                .filter(|p| p.batch == number)
                .map(|p| p.id.clone())
                .collect();
            for id in members {
                let p = self.progress(&id);
                p.step = InstanceStep::Succeeded;
                p.started_at = Some(at(STARTED));
                p.finished_at = Some(at(STARTED));
                self.reimaged(&id);
            }
        }

        /// Every batch upgraded: the rollout is past its last batch.
        fn all_upgraded(mut self) -> Self {
            let batches = self.rollout.plan.batches.len() as u32;
            for number in 1..=batches {
                self.upgraded_batch(number);
            }
            self.rollout.current_batch = batches + 1;
            self.rollout.batch_started = false;
            self
        }

        /// Behind a load balancer that serves none of the instances yet.
        fn behind_a_load_balancer(&mut self) {
            self.set.spec.load_balancer = Some(LoadBalancer {
                frontends: vec![Frontend::new("web", FrontendProtocol::Http, 8080)],
            });
            self.serving = Some(BTreeSet::new());
        }

        fn paused(&mut self) {
            self.rollout.hold = Some(Hold::Paused { by: "ann".into() });
            self.rollout.state = RolloutState::Paused;
        }
    }

    fn ids(records: &[Instance]) -> Vec<&str> {
        records.iter().map(|i| i.id.as_str()).collect()
    }

    #[test]
    fn a_gone_deleted_or_superseded_set_ends_the_rollout() {
        let mut w = rolling(4, 50).surge().begin();
        w.started("web_0", InstanceStep::Updating);
        w.started("web_1", InstanceStep::Updating);
        // web_1's replacement served and it is leaving: finished, not released.
        w.progress("web_1").step = InstanceStep::Succeeded;
        let serving = |_: &str| true;
        let gone = step(&StepInput {
            rollout: &w.rollout,
            set: None,
            instances: &w.instances,
            serving: &serving,
            now: at(200),
        });
        assert_eq!(gone, StepPlan::unchanged(&w.rollout), "a gone set: nothing");

        let mut deleting = w.set.clone();
        deleting.state = ScaleSetState::Deleting;
        let mut moved_on = w.set.clone();
        moved_on.model_version = 3;
        // (case, set, message, released)
        let cases: [(&str, &ScaleSet, &str, &[&str]); 2] = [
            ("deleting", &deleting, "the scale set is being deleted", &[]),
            (
                "superseded",
                &moved_on,
                "superseded: the model moved on to version 3",
                &["web_0"],
            ),
        ];
        for (case, set, message, released) in cases {
            let plan = step(&StepInput {
                rollout: &w.rollout,
                set: Some(set),
                instances: &w.instances,
                serving: &serving,
                now: at(200),
            });
            let r = &plan.rollout;
            assert_eq!(r.state, RolloutState::Cancelled, "{case}");
            assert_eq!(r.message.as_deref(), Some(message), "{case}");
            assert_eq!(r.finished_at, Some(at(200)), "{case}");
            assert_eq!(ids(&plan.release), released, "{case}");
            assert!(plan.release.iter().all(|i| !i.retiring), "{case}");
            assert!(plan.start.is_empty() && plan.delete.is_empty(), "{case}");
            assert!(!plan.wake_set && plan.rollback.is_none(), "{case}");
            assert_eq!(plan.progressed, plan.rollout, "{case}");
        }
    }

    #[test]
    fn release_retiring_clears_only_unfinished_replacements() {
        let mut w = rolling(4, 50).surge().begin();
        w.started("web_0", InstanceStep::Updating);
        w.started("web_1", InstanceStep::Failed);
        assert_eq!(ids(&release_retiring(&w.rollout, &w.instances)), ["web_0"]);
        // Reimaged instances are never retiring.
        let w = rolling(4, 50).begin();
        assert!(release_retiring(&w.rollout, &w.instances).is_empty());
    }

    #[test]
    fn holds_wait_resume_or_start_the_batch() {
        let approval = |until: Option<i64>| Hold::Approval {
            reason: "canary".into(),
            until: until.map(at),
        };
        let between = Hold::Between { until: at(100) };
        let paused = Hold::Paused { by: "ann".into() };
        use RolloutState::{Paused, RollingForward};
        // (case, hold, now, hold after, state after, instances started)
        type Case = (&'static str, Hold, i64, Option<Hold>, RolloutState, usize);
        let cases: Vec<Case> = vec![
            (
                "a person's pause",
                paused.clone(),
                10,
                Some(paused),
                Paused,
                0,
            ),
            (
                "an approval waits for a person",
                approval(None),
                100_000,
                Some(approval(None)),
                Paused,
                0,
            ),
            (
                "a timed approval before its time",
                approval(Some(100)),
                99,
                Some(approval(Some(100))),
                Paused,
                0,
            ),
            (
                "a timed approval at its time",
                approval(Some(100)),
                100,
                None,
                RollingForward,
                2,
            ),
            (
                "between batches before the end",
                between.clone(),
                99,
                Some(between.clone()),
                RollingForward,
                0,
            ),
            (
                "between batches at the end",
                between,
                100,
                None,
                RollingForward,
                2,
            ),
        ];
        for (case, hold, now, hold_after, state_after, started) in cases {
            let mut w = rolling(4, 50).begin();
            w.rollout.state = if matches!(hold, Hold::Paused { .. } | Hold::Approval { .. }) {
                Paused
            } else {
                RollingForward
            };
            w.rollout.hold = Some(hold);
            let plan = w.step(now);
            assert_eq!(plan.rollout.hold, hold_after, "{case}");
            assert_eq!(plan.rollout.state, state_after, "{case}");
            assert_eq!(plan.start.len(), started, "{case}");
            assert_eq!(plan.rollout.batch_started, started > 0, "{case}");
            if started == 0 {
                assert_eq!(
                    plan,
                    StepPlan::unchanged(&w.rollout),
                    "{case}: nothing to do"
                );
            }
        }
    }

    #[test]
    fn baking_completes_at_its_end_or_faults_on_a_breach() {
        let unhealthy = "1 of 4 (25 %) upgraded instances unhealthy, limit 20 %: web_0";
        // (case, rollback on breach, web_0 unhealthy, now, state, message, rollback)
        type Case<'a> = (
            &'a str,
            bool,
            bool,
            i64,
            RolloutState,
            Option<String>,
            Option<(u32, String)>,
        );
        let cases: [Case; 5] = [
            (
                "healthy while baking",
                false,
                false,
                999,
                RolloutState::RollingForward,
                None,
                None,
            ),
            (
                "healthy at the end",
                false,
                false,
                1000,
                RolloutState::Completed,
                Some("4 instance(s) on version 2".into()),
                None,
            ),
            (
                "breached",
                false,
                true,
                500,
                RolloutState::Faulted,
                Some(format!("stopped: {unhealthy}")),
                None,
            ),
            (
                "breached after the end",
                false,
                true,
                2000,
                RolloutState::Faulted,
                Some(format!("stopped: {unhealthy}")),
                None,
            ),
            (
                "breached, rolling back",
                true,
                true,
                500,
                RolloutState::Faulted,
                Some(format!("stopped: {unhealthy}; rolling back to version 1")),
                Some((1, format!("policy breach: {unhealthy}"))),
            ),
        ];
        for (case, roll_back, sick, now, state, message, rollback) in cases {
            let mut w = rolling(4, 50)
                .policy(|p| {
                    p.bake_time_seconds = 1000;
                    p.rollback_failed_instances_on_policy_breach = roll_back;
                })
                .begin()
                .all_upgraded();
            w.rollout.hold = Some(Hold::Bake { until: at(1000) });
            if sick {
                w.record("web_0").health_state = HealthState::Unhealthy;
            }
            let plan = w.step(now);
            let r = &plan.rollout;
            assert_eq!(r.state, state, "{case}");
            assert_eq!(r.message, message, "{case}");
            assert_eq!(plan.rollback, rollback, "{case}");
            if state == RolloutState::RollingForward {
                assert_eq!(plan, StepPlan::unchanged(&w.rollout), "{case}");
                continue;
            }
            assert_eq!(
                (r.hold.clone(), r.finished_at),
                (None, Some(at(now))),
                "{case}"
            );
            let last = r.gates.last();
            assert_eq!(
                last.map(|g| (g.gate.as_str(), g.batch, g.passed)),
                sick.then_some(("bake", 0, false)),
                "{case}: a breach is recorded, a pass is not"
            );
        }
    }

    #[test]
    fn the_gate_before_a_batch_holds_for_the_timeout_then_faults() {
        let detail = "1 of 4 (25 %) unhealthy in the set, limit 20 %: web_3";
        let held = |until: i64| {
            Some(Hold::Gate {
                until: at(until),
                detail: detail.into(),
            })
        };
        let old_hold = Some(Hold::Gate {
            until: at(610),
            detail: "before".into(),
        });
        struct Case<'a> {
            case: &'a str,
            setup: Setup,
            web_3_unhealthy: bool,
            hold: Option<Hold>,
            now: i64,
            hold_after: Option<Hold>,
            message: Option<String>,
            /// The checks recorded: passed or not.
            gates: &'a [bool],
            started: usize,
        }
        let cases = [
            Case {
                case: "healthy: the batch starts",
                setup: rolling(4, 50),
                web_3_unhealthy: false,
                hold: None,
                now: 10,
                hold_after: None,
                message: None,
                gates: &[true],
                started: 2,
            },
            Case {
                case: "a first failed check holds until the timeout",
                setup: rolling(4, 50),
                web_3_unhealthy: true,
                hold: None,
                now: 10,
                hold_after: held(610),
                message: None,
                gates: &[false],
                started: 0,
            },
            Case {
                case: "still failing: held, deadline kept, nothing recorded",
                setup: rolling(4, 50),
                web_3_unhealthy: true,
                hold: old_hold.clone(),
                now: 609,
                hold_after: held(610),
                message: None,
                gates: &[],
                started: 0,
            },
            Case {
                case: "failing at the deadline: faulted",
                setup: rolling(4, 50),
                web_3_unhealthy: true,
                hold: old_hold.clone(),
                now: 610,
                hold_after: None,
                message: Some(format!("the set stayed unhealthy before batch 1: {detail}")),
                gates: &[],
                started: 0,
            },
            Case {
                case: "healthy again: the hold lifts and the batch starts",
                setup: rolling(4, 50),
                web_3_unhealthy: false,
                hold: old_hold,
                now: 300,
                hold_after: None,
                message: None,
                gates: &[true],
                started: 2,
            },
            Case {
                case: "a rollback is not held",
                setup: rolling(4, 50).rollback(),
                web_3_unhealthy: true,
                hold: None,
                now: 10,
                hold_after: None,
                message: None,
                gates: &[],
                started: 2,
            },
            Case {
                case: "a manual upgrade is not held",
                setup: rolling(4, 50).manual(),
                web_3_unhealthy: true,
                hold: None,
                now: 10,
                hold_after: None,
                message: None,
                gates: &[],
                started: 4,
            },
        ];
        for c in cases {
            let case = c.case;
            let mut w = c.setup.begin();
            w.rollout.hold = c.hold;
            if c.web_3_unhealthy {
                w.record("web_3").health_state = HealthState::Unhealthy;
            }
            let plan = w.step(c.now);
            let r = &plan.rollout;
            assert_eq!(r.hold, c.hold_after, "{case}");
            assert_eq!(r.message, c.message, "{case}");
            let faulted = c.message.is_some();
            assert_eq!(r.state == RolloutState::Faulted, faulted, "{case}");
            let gates: Vec<bool> = r.gates.iter().map(|g| g.passed).collect();
            assert_eq!(gates, c.gates, "{case}");
            assert!(r.gates.iter().all(|g| g.gate == "before" && g.batch == 1));
            assert_eq!(plan.start.len(), c.started, "{case}");
            assert_eq!(r.batch_started, c.started > 0, "{case}");
        }
    }

    #[test]
    fn a_batch_waits_while_others_are_out_of_service() {
        let held = |now: i64| {
            Some(Hold::Gate {
                until: at(now + 600),
                detail: "1 instance(s) already out of service (scale-out, repairs or a person's action); at most 2 at once".into(),
            })
        };
        // (case, what happens to the records, held)
        type Case = (&'static str, fn(&mut World), bool);
        let cases: [Case; 6] = [
            ("nothing else moves", |_| {}, false),
            (
                "a scale-out being created",
                |w| {
                    w.created(4, "1", 0);
                    w.record("web_4").provisioning_state = ProvisioningState::Creating;
                },
                true,
            ),
            (
                "a restart waiting outside the batch",
                |w| w.record("web_3").pending = Some(PendingAction::Restart),
                true,
            ),
            (
                "a repaired instance booting",
                |w| w.record("web_2").health_state = HealthState::Initializing,
                true,
            ),
            (
                "an instance being deleted is not in service anyway",
                |w| w.record("web_3").provisioning_state = ProvisioningState::Deleting,
                false,
            ),
            (
                "a member's own restart is the batch's",
                |w| w.record("web_0").pending = Some(PendingAction::Restart),
                false,
            ),
        ];
        for (case, given, held_back) in cases {
            let mut w = rolling(4, 50).begin();
            assert_eq!(out_of_service_limit(&w.set, &w.rollout), 2);
            given(&mut w);
            let plan = w.step(10);
            if held_back {
                assert_eq!(plan.rollout.hold, held(10), "{case}");
                assert!(
                    plan.rollout.gates.is_empty(),
                    "{case}: the passed check is not kept"
                );
                assert!(
                    !plan.rollout.batch_started && plan.start.is_empty(),
                    "{case}"
                );
                // The deadline moves with every step: this hold never faults.
                w.apply(&plan);
                assert_eq!(w.step(10_000).rollout.hold, held(10_000), "{case}");
            } else {
                assert_eq!(plan.rollout.hold, None, "{case}");
                assert!(plan.rollout.batch_started, "{case}");
            }
        }
    }

    #[test]
    fn the_out_of_service_limit_is_the_repair_limit_or_the_batch() {
        // (instances, batch percent, limit)
        for (n, percent, limit) in [(4, 50, 2), (4, 20, 1), (100, 1, 5), (100, 20, 20)] {
            let w = rolling(n, percent).begin();
            assert_eq!(
                out_of_service_limit(&w.set, &w.rollout),
                limit,
                "{n} at {percent} %"
            );
        }
    }

    #[test]
    fn each_instance_steps_from_its_records() {
        use InstanceStep::*;
        struct Case {
            case: &'static str,
            surge: bool,
            given: fn(&mut World),
            now: i64,
            step: InstanceStep,
            detail: Option<&'static str>,
            started: bool,
        }
        let case = |case, surge, given, now, step, detail, started| Case {
            case,
            surge,
            given,
            now,
            step,
            detail,
            started,
        };
        let late = Some("not healthy within 600 s of the start of its update");
        let joining = Some("healthy; joining the load balancer's pool");
        let cases = [
            // Pending, in place.
            case(
                "pending: draining",
                false,
                |_| {},
                200,
                Draining,
                None,
                true,
            ),
            case(
                "pending while being created",
                false,
                |w| w.record("web_0").provisioning_state = ProvisioningState::Creating,
                200,
                Pending,
                None,
                false,
            ),
            case(
                "pending with its own action waiting",
                false,
                |w| w.record("web_0").pending = Some(PendingAction::Restart),
                200,
                Pending,
                None,
                false,
            ),
            case(
                "pending, deleted meanwhile",
                false,
                |w| w.remove("web_0"),
                200,
                Removed,
                Some("deleted meanwhile"),
                false,
            ),
            case(
                "pending, being deleted",
                false,
                |w| w.record("web_0").provisioning_state = ProvisioningState::Deleting,
                200,
                Removed,
                Some("deleted meanwhile"),
                false,
            ),
            case(
                "pending, protected meanwhile",
                false,
                |w| w.record("web_0").protect_from_scale_set_actions = true,
                200,
                Removed,
                Some("protected from scale-set actions meanwhile"),
                false,
            ),
            case(
                "pending while a person paused",
                false,
                |w| {
                    w.rollout.batch_started = true;
                    w.paused();
                },
                200,
                Pending,
                None,
                false,
            ),
            // Moving, in place.
            case(
                "draining while the reimage waits",
                false,
                |w| w.started("web_0", Draining),
                200,
                Draining,
                None,
                false,
            ),
            case(
                "updating once the reconciler took it",
                false,
                |w| {
                    w.started("web_0", Draining);
                    w.record("web_0").pending = None;
                },
                200,
                Updating,
                None,
                false,
            ),
            case(
                "waiting healthy once booted",
                false,
                |w| {
                    w.started("web_0", Updating);
                    w.booting("web_0");
                },
                200,
                WaitingHealthy,
                None,
                false,
            ),
            case(
                "succeeded once healthy",
                false,
                |w| {
                    w.started("web_0", WaitingHealthy);
                    w.reimaged("web_0");
                },
                200,
                Succeeded,
                None,
                false,
            ),
            case(
                "failed when not healthy in time",
                false,
                |w| {
                    w.started("web_0", WaitingHealthy);
                    w.booting("web_0");
                },
                STARTED + 601,
                Failed,
                late,
                false,
            ),
            case(
                "failed with the update's error",
                false,
                |w| {
                    w.started("web_0", Updating);
                    let record = w.record("web_0");
                    record.provisioning_state = ProvisioningState::Failed;
                    record.last_error = Some("disk full".into());
                },
                200,
                Failed,
                Some("disk full"),
                false,
            ),
            case(
                "moving, deleted meanwhile",
                false,
                |w| {
                    w.started("web_0", Updating);
                    w.remove("web_0");
                },
                200,
                Removed,
                Some("deleted meanwhile"),
                false,
            ),
            case(
                "healthy, not yet in the load balancer's pool",
                false,
                |w| {
                    w.started("web_0", WaitingHealthy);
                    w.reimaged("web_0");
                    w.behind_a_load_balancer();
                },
                200,
                WaitingHealthy,
                joining,
                false,
            ),
            case(
                "healthy and served by the load balancer",
                false,
                |w| {
                    w.started("web_0", WaitingHealthy);
                    w.reimaged("web_0");
                    w.behind_a_load_balancer();
                    w.serving = Some(["web_0".to_string()].into());
                },
                200,
                Succeeded,
                None,
                false,
            ),
            case(
                "healthy and drained by a person: not waited for",
                false,
                |w| {
                    w.started("web_0", WaitingHealthy);
                    w.reimaged("web_0");
                    w.record("web_0").load_balancer_enabled = false;
                    w.behind_a_load_balancer();
                },
                200,
                Succeeded,
                None,
                false,
            ),
            case(
                "in flight while a person paused: goes on",
                false,
                |w| {
                    w.started("web_0", WaitingHealthy);
                    w.reimaged("web_0");
                    w.paused();
                },
                200,
                Succeeded,
                None,
                false,
            ),
            // With surge.
            case("pending: retiring", true, |_| {}, 200, Updating, None, true),
            case(
                "no replacement yet",
                true,
                |w| w.started("web_0", Updating),
                200,
                Updating,
                None,
                false,
            ),
            case(
                "an instance older than the start is no replacement",
                true,
                |w| {
                    w.started("web_0", Updating);
                    w.created(4, "1", STARTED - 1);
                },
                200,
                Updating,
                None,
                false,
            ),
            case(
                "the replacement healthy",
                true,
                |w| {
                    w.started("web_0", Updating);
                    w.created(4, "1", STARTED);
                },
                200,
                Succeeded,
                None,
                false,
            ),
            case(
                "the replacement booting",
                true,
                |w| {
                    w.started("web_0", Updating);
                    let id = w.created(4, "1", STARTED + 1);
                    w.record(&id).health_state = HealthState::Initializing;
                },
                200,
                WaitingHealthy,
                None,
                false,
            ),
            case(
                "the replacement failed",
                true,
                |w| {
                    w.started("web_0", Updating);
                    let id = w.created(4, "1", STARTED + 1);
                    w.record(&id).provisioning_state = ProvisioningState::Failed;
                },
                200,
                Failed,
                Some("the update failed"),
                false,
            ),
            case(
                "no replacement in time",
                true,
                |w| w.started("web_0", Updating),
                STARTED + 601,
                Failed,
                late,
                false,
            ),
            case(
                "the replacement healthy, not yet in the pool",
                true,
                |w| {
                    w.started("web_0", Updating);
                    w.created(4, "1", STARTED + 1);
                    w.behind_a_load_balancer();
                    w.serving = Some(["web_0".to_string()].into());
                },
                200,
                WaitingHealthy,
                joining,
                false,
            ),
        ];
        for c in cases {
            let name = c.case;
            let setup = if c.surge {
                rolling(4, 50).surge()
            } else {
                rolling(4, 50)
            };
            let mut w = setup.begin();
            (c.given)(&mut w);
            let before = w.rollout.instances["web_0"].clone();
            let plan = w.step(c.now);
            let p = &plan.rollout.instances["web_0"];
            assert_eq!((p.step, p.detail.as_deref()), (c.step, c.detail), "{name}");
            let started: Vec<&Instance> = plan.start.iter().filter(|i| i.id == "web_0").collect();
            assert_eq!(started.len(), usize::from(c.started), "{name}");
            if c.started {
                assert_eq!(p.started_at, Some(at(c.now)), "{name}");
                let record = started[0];
                assert_eq!(record.updated_at, at(c.now), "{name}");
                if c.surge {
                    assert!(record.retiring, "{name}");
                    assert_eq!(record.model_version, 1, "{name}: replaced, not changed");
                } else {
                    assert!(!record.retiring, "{name}");
                    assert_eq!(
                        (
                            record.model_version,
                            record.pending,
                            record.provisioning_state
                        ),
                        (2, Some(PendingAction::Reimage), ProvisioningState::Updating),
                        "{name}"
                    );
                }
            } else {
                assert_eq!(p.started_at, before.started_at, "{name}");
            }
            let finished = c.step.is_finished() && !before.step.is_finished();
            assert_eq!(p.finished_at, finished.then(|| at(c.now)), "{name}");
            if c.step == before.step
                && c.detail.is_none()
                && before.replacement.is_none()
                && !c.surge
            {
                assert_eq!(
                    plan.rollout.instances["web_0"], before,
                    "{name}: no change recorded"
                );
            }
        }
    }

    #[test]
    fn an_in_place_batch_moves_through_every_step_then_the_next_starts() {
        use InstanceStep::*;
        let mut w = rolling(4, 50).begin();
        let steps = |w: &World| -> Vec<InstanceStep> {
            w.rollout.instances.values().map(|p| p.step).collect()
        };
        let plan = w.tick(10);
        assert_eq!(ids(&plan.start), ["web_0", "web_1"]);
        assert!(plan.wake_set && plan.delete.is_empty() && plan.release.is_empty());
        assert_eq!(steps(&w), [Draining, Draining, Pending, Pending]);
        assert_eq!(w.rollout.gates.len(), 1);
        // Nothing happened: nothing to write, the set woken again.
        let plan = w.step(20);
        assert_eq!(plan.rollout, w.rollout);
        assert!(plan.wake_set && plan.start.is_empty());

        for id in ["web_0", "web_1"] {
            w.record(id).pending = None;
        }
        w.tick(30);
        assert_eq!(steps(&w), [Updating, Updating, Pending, Pending]);
        w.booting("web_0");
        w.booting("web_1");
        w.tick(40);
        assert_eq!(
            steps(&w),
            [WaitingHealthy, WaitingHealthy, Pending, Pending]
        );
        w.reimaged("web_0");
        w.tick(50);
        assert_eq!(steps(&w), [Succeeded, WaitingHealthy, Pending, Pending]);
        assert_eq!(w.rollout.current_batch, 1);

        w.reimaged("web_1");
        let plan = w.tick(60);
        assert_eq!(steps(&w), [Succeeded, Succeeded, Pending, Pending]);
        assert!(!plan.wake_set, "the batch is done");
        assert_eq!(
            (w.rollout.current_batch, w.rollout.batch_started),
            (2, false)
        );
        let after = w.rollout.gates.last().expect("the gate after");
        assert_eq!(
            (after.gate.as_str(), after.batch, after.passed),
            ("after", 1, true)
        );
        assert_eq!(w.rollout.hold, None);

        let plan = w.tick(70);
        assert_eq!(ids(&plan.start), ["web_2", "web_3"]);
        let gates: Vec<(&str, u32)> = w
            .rollout
            .gates
            .iter()
            .map(|g| (g.gate.as_str(), g.batch))
            .collect();
        assert_eq!(gates, [("before", 1), ("after", 1), ("before", 2)]);
    }

    #[test]
    fn with_surge_a_served_replacement_retires_its_instance_before_the_batch_ends() {
        use InstanceStep::*;
        let mut w = rolling(4, 50).surge().begin();
        let plan = w.tick(STARTED);
        assert_eq!(ids(&plan.start), ["web_0", "web_1"]);
        assert!(plan.start.iter().all(|i| i.retiring));
        let a = w.created(4, "1", STARTED + 10);
        let b = w.created(5, "1", STARTED + 11);
        w.behind_a_load_balancer();
        w.serving = Some([a.clone()].into());

        let plan = w.tick(200);
        assert_eq!(
            w.rollout.instances["web_0"].replacement.as_deref(),
            Some("web_4")
        );
        assert_eq!(
            w.rollout.instances["web_1"].replacement.as_deref(),
            Some("web_5")
        );
        assert_eq!(w.rollout.instances["web_0"].step, Succeeded);
        assert_eq!(
            w.rollout.instances["web_1"].step, WaitingHealthy,
            "web_5 not served"
        );
        assert_eq!(plan.delete, ["web_0"]);
        assert!(plan.wake_set);

        w.serving = Some([a, b].into());
        let plan = w.tick(210);
        assert_eq!(plan.delete, ["web_1"], "web_0 is already being deleted");
        assert_eq!(w.rollout.current_batch, 1);

        // Deleting, the old instances still hold the batch open.
        let plan = w.tick(220);
        assert!(plan.delete.is_empty() && plan.wake_set);
        assert_eq!(plan.rollout, w.rollout, "nothing changed");
        w.remove("web_0");
        w.remove("web_1");
        // The gate after the batch looks at the replacements.
        let mut sick = w.clone();
        sick.record("web_4").health_state = HealthState::Unhealthy;
        assert_eq!(
            sick.step(230).rollout.message.as_deref(),
            Some("stopped: 1 of 4 (25 %) upgraded instances unhealthy, limit 20 %: web_4")
        );
        let plan = w.tick(230);
        assert!(!plan.wake_set);
        assert_eq!(w.rollout.current_batch, 2);
        let after = w.rollout.gates.last().expect("the gate after");
        assert_eq!(
            (after.gate.as_str(), after.passed, after.of),
            ("after", true, 4)
        );
    }

    #[test]
    fn replacements_match_the_zone_first_then_any_one_each() {
        // Cross-zone batches of two: web_0 (zone 1) and web_1 (zone 2) first.
        let world = || {
            let mut w = rolling(4, 50)
                .zones(&["1", "2"])
                .surge()
                .policy(|p| p.enable_cross_zone_upgrade = true)
                .begin();
            w.started("web_0", InstanceStep::Updating);
            w.started("web_1", InstanceStep::Updating);
            w
        };
        // (case, new instances: ordinal, zone, created at, being deleted; web_0's and web_1's
        // replacements)
        type Case<'a> = (
            &'a str,
            &'a [(u64, &'a str, i64, bool)],
            [Option<&'a str>; 2],
        );
        let cases: [Case; 4] = [
            (
                "each its own zone's",
                &[(4, "2", STARTED + 1, false), (5, "1", STARTED + 2, false)],
                [Some("web_5"), Some("web_4")],
            ),
            (
                "another zone's when its own has none",
                &[(4, "2", STARTED + 1, false)],
                [Some("web_4"), None],
            ),
            (
                "never one created before the start",
                &[(4, "1", STARTED - 1, false), (5, "2", STARTED + 1, false)],
                [Some("web_5"), None],
            ),
            (
                "never one being deleted",
                &[(4, "1", STARTED + 1, true), (5, "2", STARTED + 1, false)],
                [Some("web_5"), None],
            ),
        ];
        for (case, new, want) in cases {
            let mut w = world();
            for &(ordinal, zone, created, deleting) in new {
                let id = w.created(ordinal, zone, created);
                if deleting {
                    w.record(&id).provisioning_state = ProvisioningState::Deleting;
                }
            }
            let plan = w.step(200);
            let got =
                ["web_0", "web_1"].map(|id| plan.rollout.instances[id].replacement.as_deref());
            assert_eq!(got, want, "{case}");
        }
        // A replacement already taken is never matched again.
        let mut w = world();
        w.created(4, "1", STARTED + 1);
        w.progress("web_1").replacement = Some("web_4".into());
        let plan = w.step(200);
        assert_eq!(plan.rollout.instances["web_0"].replacement, None);
    }

    #[test]
    fn a_failed_replacement_is_deleted_and_its_instance_kept() {
        let mut w = rolling(4, 50).surge().begin();
        w.started("web_0", InstanceStep::Updating);
        w.started("web_1", InstanceStep::Updating);
        let id = w.created(4, "1", STARTED + 1);
        w.record(&id).provisioning_state = ProvisioningState::Failed;
        let plan = w.step(200);
        assert_eq!(plan.rollout.instances["web_0"].step, InstanceStep::Failed);
        assert_eq!(plan.delete, ["web_4"]);
        assert_eq!(ids(&plan.release), ["web_0"]);
        assert!(!plan.release[0].retiring);
        assert!(plan.wake_set, "web_1 still waits for its replacement");
        assert_eq!(plan.rollout.current_batch, 1);
        assert_eq!(plan.progressed, plan.rollout);

        // Next step: the replacement is being deleted and web_0 kept: nothing more to do.
        w.apply(&plan);
        let plan = w.step(210);
        assert!(plan.delete.is_empty() && plan.release.is_empty());
        assert_eq!(plan.rollout, w.rollout);
    }

    #[test]
    fn progressed_is_the_record_before_the_batch_completes() {
        // Both replacements failed: deleted, and the batch is done in the same step.
        let mut w = rolling(4, 50)
            .surge()
            .policy(|p| p.max_unhealthy_upgraded_instance_percent = 100)
            .begin();
        w.started("web_0", InstanceStep::Updating);
        w.started("web_1", InstanceStep::Updating);
        for (ordinal, old) in [(4, "web_0"), (5, "web_1")] {
            let id = w.created(ordinal, "1", STARTED + 1);
            w.record(&id).provisioning_state = ProvisioningState::Failed;
            w.progress(old).replacement = Some(id);
        }
        let plan = w.step(200);
        assert_eq!(plan.delete, ["web_4", "web_5"]);
        assert_eq!(ids(&plan.release), ["web_0", "web_1"]);
        let done = &plan.rollout;
        assert_eq!((done.current_batch, done.batch_started), (2, false));
        assert_eq!(done.gates.last().map(|g| g.gate.as_str()), Some("after"));
        // If the deletes conflict, the engine stores the failures but not the completion.
        let progressed = &plan.progressed;
        assert_eq!(
            (progressed.current_batch, progressed.batch_started),
            (1, true)
        );
        assert!(progressed.gates.is_empty());
        assert_eq!(progressed.instances, done.instances);
    }

    #[test]
    fn unstart_puts_stale_starts_back_to_pending_in_both_records() {
        let w = rolling(4, 50).begin();
        let mut plan = w.step(10);
        plan.unstart(&["web_1".to_string(), "web_9".to_string()]);
        for r in [&plan.rollout, &plan.progressed] {
            let p = &r.instances["web_1"];
            assert_eq!((p.step, p.started_at), (InstanceStep::Pending, None));
            assert_eq!(r.instances["web_0"].step, InstanceStep::Draining);
        }
        // Every start stale: the record differs from the input by the started batch only.
        let mut plan = w.step(10);
        plan.unstart(&["web_0".to_string(), "web_1".to_string()]);
        let mut expected = w.rollout.clone();
        expected.batch_started = true;
        expected.gates = plan.rollout.gates.clone();
        assert_eq!(plan.rollout, expected);

        // Applied after the decision, it decides the same as before it: a stale start keeps
        // the batch open (the set woken) although the other member is done.
        let mut w = rolling(4, 50).begin();
        w.started("web_0", InstanceStep::WaitingHealthy);
        w.reimaged("web_0");
        let mut plan = w.step(200);
        assert_eq!(ids(&plan.start), ["web_1"]);
        plan.unstart(&["web_1".to_string()]);
        assert!(plan.wake_set);
        assert_eq!(plan.rollout.current_batch, 1);
        assert_eq!(
            plan.rollout.instances["web_0"].step,
            InstanceStep::Succeeded
        );
        assert_eq!(plan.rollout.instances["web_1"].step, InstanceStep::Pending);
        // With surge, a stale start is neither retired nor released.
        let mut w = rolling(4, 50).surge().begin();
        w.started("web_0", InstanceStep::Updating);
        let id = w.created(4, "1", STARTED + 1);
        w.record(&id).provisioning_state = ProvisioningState::Failed;
        let mut plan = w.step(200);
        assert_eq!(ids(&plan.start), ["web_1"]);
        plan.unstart(&["web_1".to_string()]);
        assert_eq!(
            (plan.delete.as_slice(), ids(&plan.release)),
            (&["web_4".to_string()][..], vec!["web_0"])
        );
    }

    #[test]
    fn a_finished_batch_leads_to_its_pause_the_next_batch_or_the_end() {
        let approval = |reason: &str, until: Option<i64>| {
            Some(Hold::Approval {
                reason: reason.into(),
                until: until.map(at),
            })
        };
        use RolloutState::{Completed, Paused, RollingForward};
        struct Case {
            case: &'static str,
            setup: Setup,
            paused: bool,
            hold: Option<Hold>,
            state: RolloutState,
            current: u32,
            message: Option<&'static str>,
        }
        let cases = [
            Case {
                case: "the next batch at once",
                setup: rolling(4, 50),
                paused: false,
                hold: None,
                state: RollingForward,
                current: 2,
                message: None,
            },
            Case {
                case: "the canary waits for approval",
                setup: rolling(4, 50).policy(|p| p.canary_instances = 1),
                paused: false,
                hold: approval("canary", None),
                state: Paused,
                current: 2,
                message: None,
            },
            Case {
                case: "a timed checkpoint resumes by itself",
                setup: rolling(4, 50).policy(|p| {
                    p.checkpoints = vec![Checkpoint {
                        percent: 50,
                        wait_seconds: Some(60),
                    }];
                }),
                paused: false,
                hold: approval("checkpoint 50 %", Some(1060)),
                state: Paused,
                current: 2,
                message: None,
            },
            Case {
                case: "the pause between batches",
                setup: rolling(4, 50).policy(|p| p.pause_time_between_batches_seconds = 30),
                paused: false,
                hold: Some(Hold::Between { until: at(1030) }),
                state: RollingForward,
                current: 2,
                message: None,
            },
            Case {
                case: "a person's pause: the next batch only, its canary approval skipped",
                setup: rolling(4, 50).policy(|p| p.canary_instances = 1),
                paused: true,
                hold: Some(Hold::Paused { by: "ann".into() }),
                state: Paused,
                current: 2,
                message: None,
            },
            Case {
                case: "the last batch ends in a bake",
                setup: rolling(4, 100).policy(|p| p.bake_time_seconds = 300),
                paused: false,
                hold: Some(Hold::Bake { until: at(1300) }),
                state: RollingForward,
                current: 2,
                message: None,
            },
            Case {
                case: "the last batch completes",
                setup: rolling(4, 100).policy(|p| p.pause_time_between_batches_seconds = 30),
                paused: false,
                hold: None,
                state: Completed,
                current: 2,
                message: Some("4 instance(s) on version 2"),
            },
            Case {
                case: "a rollback completes without baking",
                setup: rolling(4, 100)
                    .rollback()
                    .policy(|p| p.bake_time_seconds = 300),
                paused: false,
                hold: None,
                state: Completed,
                current: 2,
                message: Some("4 instance(s) on version 2"),
            },
            Case {
                case: "a manual upgrade completes without baking",
                setup: rolling(4, 50)
                    .manual()
                    .policy(|p| p.bake_time_seconds = 300),
                paused: false,
                hold: None,
                state: Completed,
                current: 2,
                message: Some("4 instance(s) on version 2"),
            },
            Case {
                case: "paused after the last batch: not ended yet",
                setup: rolling(4, 100),
                paused: true,
                hold: Some(Hold::Paused { by: "ann".into() }),
                state: Paused,
                current: 2,
                message: None,
            },
        ];
        for c in cases {
            let case = c.case;
            let mut w = c.setup.begin();
            w.upgraded_batch(1);
            if c.paused {
                w.paused();
            }
            let plan = w.step(1000);
            let r = &plan.rollout;
            assert_eq!(r.hold, c.hold, "{case}");
            assert_eq!(r.state, c.state, "{case}");
            assert_eq!(
                (r.current_batch, r.batch_started),
                (c.current, false),
                "{case}"
            );
            assert_eq!(r.message.as_deref(), c.message, "{case}");
            assert_eq!(r.finished_at, c.message.map(|_| at(1000)), "{case}");
            assert!(!plan.wake_set && plan.rollback.is_none(), "{case}");
            let gated = w.rollout.kind != RolloutKind::Manual;
            assert_eq!(
                r.gates.last().map(|g| (g.gate.as_str(), g.passed)),
                gated.then_some(("after", true)),
                "{case}"
            );
        }
        // The outcome counts failed and removed instances.
        let mut w = rolling(4, 100)
            .policy(|p| p.max_unhealthy_upgraded_instance_percent = 100)
            .begin();
        w.upgraded_batch(1);
        w.progress("web_1").step = InstanceStep::Failed;
        w.progress("web_2").step = InstanceStep::Removed;
        let plan = w.step(1000);
        assert_eq!(
            plan.rollout.message.as_deref(),
            Some("2 instance(s) on version 2, 1 failed, 1 skipped")
        );
    }

    #[test]
    fn a_breached_gate_after_a_batch_faults_and_may_roll_back() {
        let detail =
            "1 failed to upgrade; 1 of 4 (25 %) upgraded instances unhealthy, limit 20 %: web_0";
        // (case, setup, state, current batch, message, rollback)
        type Case = (
            &'static str,
            Setup,
            RolloutState,
            u32,
            Option<String>,
            Option<(u32, String)>,
        );
        let cases: [Case; 3] = [
            (
                "faulted",
                rolling(4, 50),
                RolloutState::Faulted,
                1,
                Some(format!("stopped: {detail}")),
                None,
            ),
            (
                "faulted and rolling back",
                rolling(4, 50).policy(|p| p.rollback_failed_instances_on_policy_breach = true),
                RolloutState::Faulted,
                1,
                Some(format!("stopped: {detail}; rolling back to version 1")),
                Some((1, format!("policy breach: {detail}"))),
            ),
            (
                "a rollback records it and goes on",
                rolling(4, 50)
                    .rollback()
                    .policy(|p| p.rollback_failed_instances_on_policy_breach = true),
                RolloutState::RollingForward,
                2,
                None,
                None,
            ),
        ];
        for (case, setup, state, current, message, rollback) in cases {
            let mut w = setup.begin();
            w.upgraded_batch(1);
            w.record("web_0").health_state = HealthState::Unhealthy;
            w.progress("web_1").step = InstanceStep::Failed;
            let plan = w.step(1000);
            let r = &plan.rollout;
            assert_eq!(r.state, state, "{case}");
            assert_eq!(r.current_batch, current, "{case}");
            assert_eq!(r.message, message, "{case}");
            assert_eq!(plan.rollback, rollback, "{case}");
            let last = r.gates.last().expect("the gate after");
            assert_eq!(
                (last.gate.as_str(), last.batch, last.passed),
                ("after", 1, false)
            );
            assert_eq!(last.detail, detail, "{case}");
        }
    }

    #[test]
    fn rolling_policy_changes_apply_from_the_next_step() {
        let timeout = |p: &mut RollingPolicy| p.instance_timeout_seconds = 60;
        // (case, setup, adopted)
        let cases: [(&str, Setup, bool); 3] = [
            ("a rolling upgrade adopts it", rolling(4, 50), true),
            ("a rollback keeps its own", rolling(4, 50).rollback(), false),
            (
                "one batch has nothing to adopt",
                rolling(4, 50).manual(),
                false,
            ),
        ];
        for (case, setup, adopted) in cases {
            let mut w = setup.begin();
            timeout(&mut w.set.spec.upgrade_policy.rolling);
            w.started("web_0", InstanceStep::WaitingHealthy);
            w.booting("web_0");
            let plan = w.step(STARTED + 61);
            assert_eq!(
                plan.rollout.policy == w.set.spec.upgrade_policy.rolling,
                adopted,
                "{case}"
            );
            // The new timeout counts in the same step.
            let failed = plan.rollout.instances["web_0"].step == InstanceStep::Failed;
            assert_eq!(failed, adopted, "{case}");
        }
    }

    #[test]
    fn only_the_mode_and_surge_are_refused_mid_rollout() {
        let current = UpgradePolicy {
            mode: UpgradeMode::Rolling,
            rolling: RollingPolicy::default(),
        };
        let change = |f: fn(&mut UpgradePolicy)| {
            let mut next = current.clone();
            f(&mut next);
            policy_change_refused(&current, &next)
        };
        assert_eq!(change(|_| {}), None);
        assert_eq!(
            change(|p| p.mode = UpgradeMode::Automatic),
            Some("upgrade_policy.mode")
        );
        assert_eq!(
            change(|p| p.rolling.max_surge = true),
            Some("upgrade_policy.rolling.max_surge")
        );
        assert_eq!(change(|p| p.rolling.bake_time_seconds = 60), None);
        assert_eq!(change(|p| p.rolling.max_batch_instance_percent = 50), None);
    }
}
