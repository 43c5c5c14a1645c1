//! The reconciler: one activation brings one scale set's VMs in line with its records.
//!
//! An activation takes no hints: it reads the set, its records and the backend's VMs,
//! folds the observations in ([`observe`]), plans ([`plan`]) and executes. The records of a
//! set whose instances version (bumped by the store with every write of them) has not
//! moved since the last activation are the ones it read then: a steady 10,000-instance set
//! is not decoded again every pass. Intent is
//! written before every backend call (new records `creating`, victims `deleting`, power
//! changes `updating`) and results after; the next activation is the retry. Backend calls
//! run concurrently, at most `backend_concurrency` at a time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flotilla_backend::{BackendError, VmSpec};
use flotilla_domain::reconcile::{Action, NewInstance, PlanInput, observe, plan};
use flotilla_domain::repair::{Rebalance, plan_rebalance, plan_repairs};
use flotilla_domain::scale_set::RepairAction;
use flotilla_domain::{
    ActivityResult, DesiredPower, Event, HealthState, Instance, LifecycleState,
    LifecycleTransition, Model, NewActivity, ObservedVm, PendingAction, PowerState,
    ProvisioningState, RepairStatus, ScaleSet, ScaleSetState, Warm, WarmPoolState, ZoneStatus,
};
use flotilla_domain::{lifecycle, warm_pool};
use futures::StreamExt;
use serde_json::json;

use crate::balancer::drain_timeout;
use crate::context::Context;
use crate::error::{Error, Result, chain};
use crate::tasks::webhooks::Webhooks;

pub(crate) mod driver;
pub(crate) mod hosts;

/// What one activation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The scale set no longer exists (deleted, or its deletion just finished).
    Gone,
    Done {
        /// Backend operations executed.
        actions: usize,
        /// How many of them failed.
        failures: usize,
        /// Instances are still moving (creating, starting, stopping): look again soon.
        settling: bool,
    },
}

/// The result of one backend call, applied to the records afterwards.
enum Applied {
    Vm(String, ObservedVm),
    /// Parked for the warm pool (a member prepared, or an instance returned to it).
    Parked(String, WarmPoolState, ObservedVm),
    Removed(String),
    OrphanRemoved,
    Failed {
        id: String,
        error: String,
        creating: bool,
    },
}

/// Runs activations: the loops of the driver, and whoever asks for one now.
pub(crate) struct Reconciler {
    pub(crate) ctx: Context,
    /// One lock per scale set: activations of one set never overlap, whoever starts them.
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Where lifecycle hooks' notices go to their webhooks.
    webhooks: Arc<Webhooks>,
}

impl Reconciler {
    pub(crate) fn new(ctx: Context, webhooks: Arc<Webhooks>) -> Self {
        Self {
            ctx,
            locks: Default::default(),
            webhooks,
        }
    }

    fn lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .expect("activation locks poisoned")
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Runs one activation for the scale set `name` (after the one running, if any).
    pub(crate) async fn reconcile(&self, name: &str) -> Result<Outcome> {
        let lock = self.lock(name);
        let outcome = {
            let _one_at_a_time = lock.lock().await;
            activate(&self.ctx, &self.webhooks, name).await
        };
        if let Ok(Outcome::Gone) = outcome {
            // What memory holds for a removed set goes with it (the prober, the metrics
            // collector, the autoscaler and the load balancer follow the removal event).
            self.locks
                .lock()
                .expect("activation locks poisoned")
                .remove(name);
            self.ctx.held.forget(name);
            if let Some(sim) = self.ctx.backend.simulation()
                && let Err(error) = sim.set_demand(name, None).await
            {
                tracing::warn!(
                    scale_set = name,
                    error = &error as &dyn std::error::Error,
                    "could not remove the demand of a removed scale set"
                );
            }
        }
        outcome
    }
}

async fn activate(ctx: &Context, webhooks: &Webhooks, name: &str) -> Result<Outcome> {
    let store = &ctx.store;
    let backend = &ctx.backend;
    let Some(set) = store
        .get_scale_set(name)
        .await
        .map_err(Error::store("get scale set"))?
    else {
        return Ok(Outcome::Gone);
    };
    let started = ctx.clock.now();
    // What the backend holds and what the records say, read at once; the records are
    // read again only when a write changed them since they were held.
    let (zones, closed, vms, records, next_ordinal) = tokio::join!(
        backend.zones(),
        store.list_host_maintenance(),
        backend.list(Some(name)),
        ctx.read_records(name),
        store.next_ordinal(name),
    );
    let closed = closed.map_err(Error::store("list closed hosts"))?;
    let zones = hosts::close(zones.map_err(Error::backend("list zones"))?, &closed);
    // Only this installation's VMs: another installation's (or one from before
    // installations had ids) are neither adopted nor deleted, even with this set's name.
    let mut vms = vms.map_err(Error::backend("list VMs"))?;
    vms.retain(|vm| vm.installation_id.as_deref() == Some(backend.installation_id()));
    let mut records: Vec<Instance> = records?;
    let next_ordinal = next_ordinal.map_err(Error::store("read next ordinal"))?;

    // 1. Fold observations into the records.
    let changed = observe(&records, &vms, started);
    if !changed.is_empty() {
        let written = store
            .update_instances(&changed)
            .await
            .map_err(Error::store("record observed state"))?;
        replace(&mut records, &written.written);
        for i in written.written {
            ctx.events.publish(Event::InstanceChanged {
                instance: Box::new(i),
            });
        }
    }

    // 2. Automatic repairs (mark what to restart, reimage or replace) and zone rebalancing.
    let repaired = repair(ctx, &set, &mut records, &zones, started).await?;
    //    Instances on closed hosts move by surge (retired, then leave once replaced).
    hosts::move_off(ctx, &set, &mut records, &closed, started).await?;

    // 3. Lifecycle hooks: waits begin (for what the repairs just marked too), time out and
    //    move from hook to hook. A record whose step was not written (someone wrote it
    //    meanwhile) is not acted on below: the copy read before may lack the wait that holds
    //    its VM.
    let unheld = advance_hooks(ctx, webhooks, &set, &mut records, &vms, started).await?;

    // 4. Plan.
    // A rebalance runs one instance above capacity until the extra one serves.
    let surged;
    let plan_set = if repaired.surge {
        let mut s = set.clone();
        s.spec.capacity += 1;
        surged = s;
        &surged
    } else {
        &set
    };
    let the_plan = plan(PlanInput {
        set: plan_set,
        instances: &records,
        vms: &vms,
        zones: &zones,
        next_ordinal,
        now: started,
    });
    // Look again soon while instances move, or a lifecycle wait ends within a period; an
    // instance a terminating hook holds is not moving.
    let soon = started
        + chrono::Duration::from_std(ctx.config.reconcile_interval)
            .unwrap_or(chrono::Duration::MAX);
    let settling = records.iter().any(|i| {
        let held = i.lifecycle.lifecycle_state == Some(LifecycleState::TerminatingWait);
        let moving =
            i.provisioning_state.is_transitional() || i.power_state.settled() != i.power_state;
        (moving && !held) || i.lifecycle.lifecycle_deadline.is_some_and(|d| d <= soon)
    });
    if the_plan.is_empty() {
        if set.state == ScaleSetState::Deleting && records.is_empty() && vms.is_empty() {
            store
                .delete_scale_set(name)
                .await
                .map_err(Error::store("delete scale set"))?;
            ctx.events
                .publish(Event::ScaleSetRemoved { name: name.into() });
            ctx.record(NewActivity {
                operation: "scale_set.deleted".into(),
                actor: "system:reconciler".into(),
                scale_set: Some(name.into()),
                target: name.into(),
                started_at: started,
                ended_at: Some(ctx.clock.now()),
                result: ActivityResult::Succeeded,
                error: None,
                details: json!({"message": "every instance is gone; the scale set is removed"}),
            })
            .await;
            return Ok(Outcome::Gone);
        }
        return Ok(Outcome::Done {
            actions: 0,
            failures: 0,
            settling,
        });
    }

    // 5. Write intent. Replacements made by repairs carry the attempts of what they replace.
    let now = ctx.clock.now();
    let mut inherited = repaired.inherited.into_iter();
    let new_records: Vec<Instance> = the_plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Create(n) => Some(new_record(&set, n, now, inherited.next().unwrap_or(0))),
            _ => None,
        })
        .collect();
    if !new_records.is_empty() || the_plan.next_ordinal != next_ordinal {
        let inserted = store
            .insert_instances(name, &new_records, the_plan.next_ordinal)
            .await
            .map_err(Error::store("record new instances"))?;
        for i in &inserted {
            ctx.events.publish(Event::InstanceChanged {
                instance: Box::new(i.clone()),
            });
        }
        if let (Some(status), Some(extra)) = (
            &repaired.start_rebalance,
            inserted.iter().find(|i| !i.in_warm_pool()),
        ) {
            let status = RepairStatus {
                rebalancing: Some(extra.id.clone()),
                ..status.clone()
            };
            write_repair_status(ctx, &set, &status).await?;
            ctx
                .record(NewActivity {
                    operation: "scale_set.rebalance".into(),
                    actor: "system:repairs".into(),
                    scale_set: Some(name.into()),
                    target: extra.id.clone(),
                    started_at: now,
                    ended_at: Some(now),
                    result: ActivityResult::Succeeded,
                    error: None,
                    details: json!({"step": "create", "zone": extra.zone,
                        "message": format!("zones are unbalanced: {} is created in zone {} before one is removed", extra.id, extra.zone)}),
                })
                .await;
        }
        records.extend(inserted);
    }
    let by_id: HashMap<&str, &Instance> = records.iter().map(|i| (i.id.as_str(), i)).collect();
    let victims: Vec<String> = the_plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Delete { id, .. }
                if by_id
                    .get(id.as_str())
                    .is_some_and(|i| i.provisioning_state != ProvisioningState::Deleting) =>
            {
                Some(id.clone())
            }
            _ => None,
        })
        .collect();
    let mut updates: Vec<Instance> = Vec::new();
    for action in &the_plan.actions {
        match action {
            // Out of the pool and into service: its launching hooks begin.
            Action::Unpark { id } => {
                if let Some(i) = by_id.get(id.as_str()) {
                    // It enters service now: scale-in's newest/oldest rules, boot times
                    // and rollouts' replacements see it as new from here (when it was
                    // prepared stays in `warm_prepared_at`).
                    let mut next = (*i).clone();
                    next.warm.warm_pool_state = None;
                    next.created_at = now;
                    next.lifecycle = lifecycle::on_create(&set);
                    next.provisioning_state = ProvisioningState::Updating;
                    next.desired_power = DesiredPower::Running;
                    next.updated_at = now;
                    updates.push(next);
                }
                continue;
            }
            // Leaves service as a removal does (drained, its terminating hooks run), then
            // returns to the pool.
            Action::Return { id, state, .. } => {
                if let Some(i) = by_id.get(id.as_str()) {
                    let mut next = (*i).clone();
                    next.provisioning_state = ProvisioningState::Deleting;
                    next.warm = Warm {
                        warm_pool_state: Some(*state),
                        warm_prepared_at: None,
                        warm_return: true,
                    };
                    next.updated_at = now;
                    updates.push(next);
                }
                continue;
            }
            _ => {}
        }
        if let Action::Start { id }
        | Action::Stop { id, .. }
        | Action::Deallocate { id }
        | Action::Restart { id }
        | Action::Reimage { id } = action
            && let Some(i) = by_id.get(id.as_str())
            && i.provisioning_state != ProvisioningState::Updating
        {
            let mut next = (*i).clone();
            next.provisioning_state = ProvisioningState::Updating;
            next.updated_at = now;
            updates.push(next);
        }
    }
    drop(by_id);
    if !victims.is_empty() {
        let (_, marked) = store
            .mark_deleting(&set, &victims, false, now)
            .await
            .map_err(Error::store("mark instances deleting"))?;
        replace(&mut records, &marked);
        for i in marked {
            ctx.events.publish(Event::InstanceChanged {
                instance: Box::new(i),
            });
        }
    }
    // Acted on below only when this intent was written: a record someone else wrote in
    // between (a person's action, the prober) is left to the next activation, which plans
    // from it afresh.
    let mut stale: HashSet<String> = unheld;
    if !updates.is_empty() {
        let written = store
            .update_instances(&updates)
            .await
            .map_err(Error::store("mark instances updating"))?;
        if !written.stale.is_empty() {
            tracing::debug!(stale = ?written.stale, "skipping instances changed concurrently");
        }
        stale.extend(written.stale);
        replace(&mut records, &written.written);
    }

    // 6. Act.
    let mut models: BTreeMap<u32, Model> = BTreeMap::new();
    for a in &the_plan.actions {
        let version = match a {
            Action::Create(n) => Some(n.model_version),
            Action::ResumeCreate { id } | Action::Reimage { id } => records
                .iter()
                .find(|i| &i.id == id)
                .map(|i| i.model_version),
            _ => None,
        };
        if let Some(v) = version
            && !models.contains_key(&v)
        {
            let model = store
                .get_model_version(name, v)
                .await
                .map_err(Error::store("read model version"))?
                .map(|m| m.model)
                .unwrap_or_else(|| set.spec.model.clone());
            models.insert(v, model);
        }
    }
    let records_by_id: HashMap<String, Instance> =
        records.iter().map(|i| (i.id.clone(), i.clone())).collect();
    let drain = drain_timeout(set.spec.load_balancer.as_ref());
    // A victim chosen now waits for the terminating hooks, from the next activation on.
    let hooked = set
        .spec
        .lifecycle_hooks
        .iter()
        .any(|h| h.transition == LifecycleTransition::Terminating);
    let mut tasks = Vec::with_capacity(the_plan.actions.len());
    for action in &the_plan.actions {
        if stale.contains(action.instance_id()) {
            continue;
        }
        if hooked
            && (matches!(action, Action::Return { .. })
                || (matches!(action, Action::Delete { .. })
                    && victims.iter().any(|v| v == action.instance_id())))
        {
            continue;
        }
        let record = records_by_id.get(action.instance_id()).cloned();
        if record.is_some() || matches!(action, Action::DeleteOrphan { .. }) {
            // A VM being made must not land on a closed host of its zone.
            let closed_here = record
                .as_ref()
                .and_then(|r| zones.iter().find(|z| z.name == r.zone))
                .map(|z| z.closed_fault_domains.clone())
                .unwrap_or_default();
            tasks.push(execute(
                ctx.clone(),
                action.clone(),
                record,
                &models,
                drain,
                closed_here,
            ));
        }
    }
    // Acting on the hypervisor is no write the fence sees: ask it first (a replica that
    // woke from a pause resumes no create another leader's intent asked for).
    if !tasks.is_empty() {
        store
            .check_fence()
            .await
            .map_err(Error::store("check the lease before acting"))?;
    }
    let results: Vec<Applied> = futures::stream::iter(tasks)
        .buffer_unordered(ctx.config.backend_concurrency)
        .collect()
        .await;

    // 7. Record results.
    let now = ctx.clock.now();
    let mut updates = Vec::new();
    let mut removed = Vec::new();
    let mut failures = Vec::new();
    let (mut created, mut deleted, mut orphans) = (0usize, 0usize, 0usize);
    for r in results {
        match r {
            Applied::Vm(id, vm) => {
                if let Some(i) = records_by_id.get(&id) {
                    let mut next = i.clone();
                    if next.provisioning_state == ProvisioningState::Creating {
                        created += 1;
                    }
                    apply_vm(&mut next, &vm, now);
                    // A member kept running in the pool serves at once: found healthy
                    // already, it is not probed from scratch.
                    if i.is_running()
                        && i.health_state == HealthState::Healthy
                        && vm.power_state == PowerState::Running
                        && i.pending.is_none()
                    {
                        next.health_state = HealthState::Healthy;
                        next.health_changed_at = i.health_changed_at;
                    }
                    updates.push(next);
                }
            }
            Applied::Parked(id, state, vm) => {
                if let Some(i) = records_by_id.get(&id) {
                    let mut next = warm_pool::parked(i, state, now);
                    let health = next.health_state;
                    next.power_state = vm.power_state;
                    next.address = (vm.power_state == PowerState::Running)
                        .then(|| vm.address.clone())
                        .flatten();
                    if vm.power_state != PowerState::Running {
                        next.health_state = HealthState::Unknown;
                    }
                    if next.health_state != health {
                        next.health_changed_at = Some(now);
                    }
                    updates.push(next);
                }
            }
            Applied::Removed(id) => {
                deleted += 1;
                removed.push(id);
            }
            Applied::OrphanRemoved => orphans += 1,
            Applied::Failed {
                id,
                error,
                creating,
            } => {
                if let Some(i) = records_by_id.get(&id) {
                    let mut next = i.clone();
                    next.last_error = Some(error.clone());
                    next.updated_at = now;
                    if creating {
                        next.provisioning_state = ProvisioningState::Failed;
                    } else if next.provisioning_state != ProvisioningState::Deleting {
                        next.provisioning_state = next.provisioning_state.on_failure();
                        next.pending = None;
                    }
                    updates.push(next);
                }
                failures.push(json!({"instance": id, "error": error}));
            }
        }
    }
    if !updates.is_empty() {
        let written = store
            .update_instances(&updates)
            .await
            .map_err(Error::store("record results"))?;
        for i in written.written {
            ctx.events.publish(Event::InstanceChanged {
                instance: Box::new(i),
            });
        }
    }
    if !removed.is_empty() {
        store
            .delete_instances(&removed)
            .await
            .map_err(Error::store("remove deleted instances"))?;
        for id in removed {
            ctx.events.publish(Event::InstanceRemoved {
                scale_set: name.into(),
                id,
            });
        }
    }
    let actions = the_plan.actions.len();
    let result = if failures.is_empty() {
        ActivityResult::Succeeded
    } else {
        ActivityResult::Failed
    };
    ctx.record(NewActivity {
        operation: "reconcile".into(),
        actor: "system:reconciler".into(),
        scale_set: Some(name.into()),
        target: name.into(),
        started_at: started,
        ended_at: Some(ctx.clock.now()),
        result,
        error: (!failures.is_empty())
            .then(|| format!("{} of {actions} operations failed", failures.len())),
        details: json!({
            "notes": the_plan.notes,
            "actions": actions,
            "created": created,
            "deleted": deleted,
            "orphans_deleted": orphans,
            "failures": failures,
        }),
    })
    .await;
    Ok(Outcome::Done {
        actions,
        failures: failures.len(),
        settling: true,
    })
}

fn replace(records: &mut [Instance], written: &[Instance]) {
    let fresh: HashMap<&str, &Instance> = written.iter().map(|i| (i.id.as_str(), i)).collect();
    for r in records.iter_mut() {
        if let Some(w) = fresh.get(r.id.as_str()) {
            *r = (*w).clone();
        }
    }
}

/// The record of an instance the plan creates: `creating`, waiting on the set's first
/// launching hook if it has one.
fn new_record(
    set: &ScaleSet,
    n: &NewInstance,
    now: DateTime<Utc>,
    repair_attempts: u32,
) -> Instance {
    Instance {
        id: n.id.clone(),
        scale_set: set.spec.name.clone(),
        ordinal: n.ordinal,
        zone: n.zone.clone(),
        fault_domain: n.fault_domain,
        model_version: n.model_version,
        latest_model: true,
        provisioning_state: ProvisioningState::Creating,
        power_state: PowerState::Starting,
        health_state: HealthState::Unknown,
        health_changed_at: None,
        last_probe: None,
        load_balancer_enabled: true,
        repair_attempts,
        desired_power: DesiredPower::Running,
        pending: None,
        protect_from_scale_in: n.protect_from_scale_in,
        protect_from_scale_set_actions: false,
        retiring: false,
        address: None,
        last_error: None,
        // A warm pool member's launching hooks run when it enters service.
        lifecycle: if n.warm.is_some() {
            Default::default()
        } else {
            lifecycle::on_create(set)
        },
        busy_until: None,
        warm: Warm {
            warm_pool_state: n.warm,
            ..Warm::default()
        },
        created_at: now,
        updated_at: now,
        generation: 0,
    }
}

/// Takes one step of every record's lifecycle hooks ([`lifecycle::advance`]), writes the
/// records it changed, and tells of the waits that began or timed out: an activity entry,
/// an event, and each hook's notification webhooks. A record someone wrote meanwhile is
/// left to the next activation: its id is answered, and nothing is done to it until then.
async fn advance_hooks(
    ctx: &Context,
    webhooks: &Webhooks,
    set: &ScaleSet,
    records: &mut [Instance],
    vms: &[ObservedVm],
    now: DateTime<Utc>,
) -> Result<HashSet<String>> {
    let vm_ids: HashSet<&str> = vms.iter().map(|v| v.id.as_str()).collect();
    let advanced = lifecycle::advance(set, records, &|id| vm_ids.contains(id), now);
    if advanced.changed.is_empty() {
        return Ok(HashSet::new());
    }
    // Drain, then wait: the instance a terminating hook is about to hold gets no new work
    // here before anyone sees the wait (its receiver may take the instance down at once).
    if advanced
        .changed
        .iter()
        .any(|i| i.lifecycle.lifecycle_state == Some(LifecycleState::TerminatingWait))
    {
        ctx.refresh_pool(set.name()).await?;
    }
    let written = ctx
        .store
        .update_instances(&advanced.changed)
        .await
        .map_err(Error::store("record lifecycle hooks"))?;
    replace(records, &written.written);
    let done: HashSet<&str> = written.written.iter().map(|i| i.id.as_str()).collect();
    for notice in advanced
        .notices
        .iter()
        .filter(|n| done.contains(n.instance.as_str()))
    {
        ctx.record(NewActivity {
            operation: format!("lifecycle.{}", notice.event.as_str()),
            actor: "system:lifecycle".into(),
            scale_set: Some(set.name().into()),
            target: notice.instance.clone(),
            started_at: now,
            ended_at: Some(now),
            result: ActivityResult::Succeeded,
            error: None,
            details: json!(notice),
        })
        .await;
        ctx.events.publish(Event::Lifecycle {
            notice: Box::new(notice.clone()),
        });
        webhooks.announce_lifecycle(set, notice).await;
    }
    for i in written.written {
        ctx.events.publish(Event::InstanceChanged {
            instance: Box::new(i),
        });
    }
    Ok(written.stale.into_iter().collect())
}

/// Folds a VM returned by an operation into its record. A VM that was just created,
/// started, restarted or reimaged starts over as `initializing` for the probes.
fn apply_vm(record: &mut Instance, vm: &ObservedVm, now: DateTime<Utc>) {
    let health = record.health_state;
    record.power_state = vm.power_state;
    record.address = (vm.power_state == PowerState::Running)
        .then(|| vm.address.clone())
        .flatten();
    record.model_version = vm.model_version;
    record.pending = None;
    record.last_error = None;
    record.updated_at = now;
    if vm.power_state == PowerState::Running {
        record.provisioning_state = ProvisioningState::Succeeded;
        record.health_state = HealthState::Initializing;
    } else if record.provisioning_state == ProvisioningState::Updating
        && vm.power_state.matches(record.desired_power)
    {
        record.provisioning_state = ProvisioningState::Succeeded;
        record.health_state = HealthState::Unknown;
    }
    if record.health_state != health {
        record.health_changed_at = Some(now);
    }
}

/// What the repair step decided for the rest of the activation.
#[derive(Default)]
struct Repaired {
    /// Repair attempts each successor of a replaced instance inherits, in creation order.
    inherited: Vec<u32>,
    /// Plan one instance above capacity (a zone rebalance is under way).
    surge: bool,
    /// A rebalance starts now: record its extra instance once created, on this status.
    start_rebalance: Option<RepairStatus>,
}

async fn write_repair_status(ctx: &Context, set: &ScaleSet, status: &RepairStatus) -> Result<()> {
    ctx.store
        .set_repair_status(set.name(), status)
        .await
        .map_err(Error::store("record repair status"))?;
    let mut changed = set.clone().redacted();
    changed.repairs = status.clone();
    ctx.events.publish(Event::ScaleSetChanged {
        scale_set: Box::new(changed),
    });
    Ok(())
}

/// Plans and records this activation's automatic repairs — restarts and reimages become
/// pending actions, replacements are marked deleting (the plan then creates their
/// successors) — and the next step of a zone rebalance.
async fn repair(
    ctx: &Context,
    set: &ScaleSet,
    records: &mut [Instance],
    zones: &[ZoneStatus],
    now: DateTime<Utc>,
) -> Result<Repaired> {
    if set.state != ScaleSetState::Active {
        return Ok(Repaired::default());
    }
    let name = set.name();
    let mut the_plan = plan_repairs(&set.spec, &set.repairs, records, zones, now);
    let mut repaired = Repaired::default();
    let mut victim = None;
    if the_plan.repairs.is_empty() {
        match plan_rebalance(
            &set.spec,
            &the_plan.status,
            records,
            zones,
            set.spec.capacity,
            now,
        ) {
            Rebalance::None => {}
            Rebalance::Surge => repaired.start_rebalance = Some(the_plan.status.clone()),
            Rebalance::Finish { victim: v } => {
                the_plan.status.rebalancing = None;
                victim = Some(v);
            }
            Rebalance::Abandon => the_plan.status.rebalancing = None,
        }
    }
    repaired.surge = the_plan.status.rebalancing.is_some() || repaired.start_rebalance.is_some();
    if the_plan.status != set.repairs {
        write_repair_status(ctx, set, &the_plan.status).await?;
    }
    if the_plan.suspended_now {
        let reason = the_plan.status.suspended_reason.clone().unwrap_or_default();
        tracing::warn!(scale_set = %name, %reason, "automatic repairs suspended");
        ctx.record(NewActivity {
            operation: "repairs.suspended".into(),
            actor: "system:repairs".into(),
            scale_set: Some(name.into()),
            target: name.into(),
            started_at: now,
            ended_at: Some(now),
            result: ActivityResult::Failed,
            error: Some(reason),
            details: json!({"consecutive_failures": the_plan.status.consecutive_failures}),
        })
        .await;
    }
    let by_id: HashMap<&str, &Instance> = records.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut updates: Vec<Instance> = the_plan
        .recovered
        .iter()
        .filter_map(|id| by_id.get(id.as_str()))
        .map(|i| Instance {
            repair_attempts: 0,
            ..(*i).clone()
        })
        .collect();
    let mut replaced: Vec<String> = victim.iter().cloned().collect();
    let mut inherited = Vec::new();
    for r in &the_plan.repairs {
        let Some(i) = by_id.get(r.instance.as_str()) else {
            continue;
        };
        match r.action {
            RepairAction::Restart | RepairAction::Reimage => {
                let mut next = (*i).clone();
                next.pending = Some(if r.action == RepairAction::Restart {
                    PendingAction::Restart
                } else {
                    PendingAction::Reimage
                });
                next.repair_attempts += 1;
                next.updated_at = now;
                updates.push(next);
            }
            RepairAction::Replace => {
                replaced.push(r.instance.clone());
                inherited.push(i.repair_attempts + 1);
            }
        }
    }
    drop(by_id);
    if !updates.is_empty() {
        let written = ctx
            .store
            .update_instances(&updates)
            .await
            .map_err(Error::store("record repairs"))?;
        replace(records, &written.written);
        for i in written.written {
            ctx.events.publish(Event::InstanceChanged {
                instance: Box::new(i),
            });
        }
    }
    if !replaced.is_empty() {
        let (_, marked) = ctx
            .store
            .mark_deleting(set, &replaced, false, now)
            .await
            .map_err(Error::store("mark replaced instances deleting"))?;
        replace(records, &marked);
        for i in marked {
            ctx.events.publish(Event::InstanceChanged {
                instance: Box::new(i),
            });
        }
    }
    for r in &the_plan.repairs {
        ctx.record(NewActivity {
            operation: "instance.repair".into(),
            actor: "system:repairs".into(),
            scale_set: Some(name.into()),
            target: r.instance.clone(),
            started_at: now,
            ended_at: Some(now),
            result: ActivityResult::Succeeded,
            error: None,
            details: json!({"action": r.action.as_str(), "reason": r.reason}),
        })
        .await;
    }
    if let Some(victim) = victim {
        ctx
            .record(NewActivity {
                operation: "scale_set.rebalance".into(),
                actor: "system:repairs".into(),
                scale_set: Some(name.into()),
                target: victim.clone(),
                started_at: now,
                ended_at: Some(now),
                result: ActivityResult::Succeeded,
                error: None,
                details: json!({"step": "delete",
                    "message": format!("the extra instance serves: {victim} leaves the fullest zone")}),
            })
            .await;
    }
    repaired.inherited = inherited;
    Ok(repaired)
}

fn execute(
    ctx: Context,
    action: Action,
    record: Option<Instance>,
    models: &BTreeMap<u32, Model>,
    drain: Duration,
    closed_fault_domains: Vec<u32>,
) -> impl std::future::Future<Output = Applied> + use<> {
    let model = record
        .as_ref()
        .and_then(|r| models.get(&r.model_version))
        .cloned();
    async move {
        let backend = &ctx.backend;
        let id = action.instance_id().to_string();
        let creating = matches!(action, Action::Create(_) | Action::ResumeCreate { .. });
        // Each call, again without a round trip: the term may have ended meanwhile.
        if let Some(Err(e)) = ctx.fence.as_ref().map(|f| f.check()) {
            return Applied::Failed {
                id,
                error: e.to_string(),
                creating,
            };
        }
        // Whatever takes a running instance down lets its requests finish first.
        let disruptive = matches!(
            action,
            Action::Delete { .. }
                | Action::Stop { .. }
                | Action::Deallocate { .. }
                | Action::Restart { .. }
                | Action::Reimage { .. }
                | Action::Park { .. }
                | Action::Return { .. }
        );
        let drained = disruptive && record.as_ref().is_some_and(Instance::is_running);
        if drained && !ctx.balancer.lb.drain(&id, drain).await {
            tracing::info!(instance = %id, timeout = ?drain, "requests still in flight after the drain timeout");
        }
        let result: Result<Option<ObservedVm>, BackendError> = match &action {
            Action::Create(_) | Action::ResumeCreate { .. } => {
                let (Some(r), Some(model)) = (&record, model) else {
                    return Applied::Failed {
                        id,
                        error: "no model for the instance".into(),
                        creating,
                    };
                };
                backend
                    .create(&VmSpec {
                        id: r.id.clone(),
                        scale_set: r.scale_set.clone(),
                        zone: r.zone.clone(),
                        fault_domain: r.fault_domain,
                        model_version: r.model_version,
                        model,
                        lease_generation: ctx.lease_generation(),
                        closed_fault_domains,
                    })
                    .await
                    .map(Some)
            }
            Action::Delete { id, force, .. } => backend.delete(id, *force).await.map(|()| None),
            Action::Forget { .. } => Ok(None),
            Action::DeleteOrphan { id } => {
                return match backend.delete(id, true).await {
                    Ok(()) => Applied::OrphanRemoved,
                    Err(e) => Applied::Failed {
                        id: id.clone(),
                        error: chain(&e),
                        creating: false,
                    },
                };
            }
            Action::Start { id } | Action::Unpark { id } => backend.start(id).await.map(Some),
            Action::Park { id, state } | Action::Return { id, state, .. } => {
                let parked = backend.park(id, *state).await;
                if drained {
                    ctx.balancer.lb.undrain(id);
                }
                return match parked {
                    Ok(vm) => Applied::Parked(id.clone(), *state, vm),
                    Err(e) => Applied::Failed {
                        id: id.clone(),
                        error: chain(&e),
                        creating,
                    },
                };
            }
            Action::Stop { id, force } => backend.stop(id, *force).await.map(Some),
            Action::Deallocate { id } => backend.deallocate(id).await.map(Some),
            Action::Restart { id } => backend.restart(id).await.map(Some),
            Action::Reimage { id } => match (&record, model) {
                (Some(r), Some(model)) => {
                    backend.reimage(id, &model, r.model_version).await.map(Some)
                }
                _ => {
                    return Applied::Failed {
                        id: id.clone(),
                        error: "no model for the instance".into(),
                        creating,
                    };
                }
            },
        };
        if drained {
            ctx.balancer.lb.undrain(&id);
        }
        match result {
            Ok(Some(vm)) => Applied::Vm(id, vm),
            Ok(None) => Applied::Removed(id),
            Err(e) => {
                tracing::warn!(instance = %id, error = %chain(&e), "backend operation failed");
                Applied::Failed {
                    id,
                    error: chain(&e),
                    creating,
                }
            }
        }
    }
}
