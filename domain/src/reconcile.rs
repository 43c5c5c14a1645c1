//! The reconcile planner: desired state (the scale set and its instance records) against
//! observed state (the VMs the backend holds) gives a list of actions.
//!
//! Two pure steps, both given `now`:
//! 1. [`observe`] folds what the backend reports into the records (power state, address,
//!    creates that finished, VMs that vanished) and returns the changed records;
//! 2. [`plan`] decides what to create, delete, start, stop, restart or reimage, with one
//!    line of explanation per decision.
//!
//! The executor in `control` persists intent before acting (new records as `creating`,
//! victims as `deleting`), so a crash at any point leaves records the next plan resumes:
//! a `creating` record without a VM is created again (creates are idempotent by id), a
//! `deleting` record is deleted again, and a VM without a record is an orphan to delete.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::instance::{
    DesiredPower, HealthState, Instance, LifecycleState, PendingAction, PowerState,
    ProvisioningState, WarmPoolState,
};
use crate::placement::{PlacementPolicy, ZoneStatus, place};
use crate::scale_in::choose_victims;
use crate::scale_set::{ScaleSet, ScaleSetState};
use crate::warm_pool::{self, MemberStep};

/// A VM as the backend reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObservedVm {
    /// The instance id the VM was created for.
    pub id: String,
    pub scale_set: String,
    pub zone: String,
    pub fault_domain: u32,
    pub model_version: u32,
    pub power_state: PowerState,
    /// `host:port` of the application while running.
    pub address: Option<String>,
    /// The installation that created (or adopted) the VM; `None` for a VM made before
    /// installations had ids. Flotilla changes only VMs carrying its own installation's id.
    #[serde(default)]
    pub installation_id: Option<String>,
    /// The generation of the control plane's lease under which the VM was created, as its
    /// metadata records it (`None` for VMs made before replicas, or outside a lease).
    #[serde(default)]
    pub lease_generation: Option<i64>,
}

/// A VM as `GET /backend/vms` lists it: what the backend reports, and whether it belongs to
/// another installation (or to none), so this one never touches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackendVm {
    #[serde(flatten)]
    pub vm: ObservedVm,
    pub foreign: bool,
}

/// Folds observed VMs into the records; returns only the records that changed.
pub fn observe(instances: &[Instance], vms: &[ObservedVm], now: DateTime<Utc>) -> Vec<Instance> {
    let by_id: BTreeMap<&str, &ObservedVm> = vms.iter().map(|v| (v.id.as_str(), v)).collect();
    let mut changed = Vec::new();
    for record in instances {
        let mut next = record.clone();
        match by_id.get(record.id.as_str()) {
            Some(vm) => {
                next.power_state = vm.power_state;
                // Where it really is: a backend may place a VM on another host of its zone
                // when the planned one is full.
                next.fault_domain = vm.fault_domain;
                next.address = if vm.power_state == PowerState::Running {
                    vm.address.clone()
                } else {
                    None
                };
                next.health_state = match (vm.power_state, record.health_state) {
                    (PowerState::Running, HealthState::Unknown) => HealthState::Initializing,
                    (PowerState::Running, h) => h,
                    _ => HealthState::Unknown,
                };
                let settled = vm.power_state.settled() == vm.power_state;
                match record.provisioning_state {
                    ProvisioningState::Creating if vm.power_state == PowerState::Running => {
                        next.provisioning_state = ProvisioningState::Succeeded;
                        next.last_error = None;
                    }
                    ProvisioningState::Updating
                        if settled
                            && record.pending.is_none()
                            && vm.power_state.matches(record.desired_power) =>
                    {
                        next.provisioning_state = ProvisioningState::Succeeded;
                        next.last_error = None;
                    }
                    _ => {}
                }
            }
            None => {
                next.address = None;
                next.health_state = HealthState::Unknown;
                if matches!(
                    record.provisioning_state,
                    ProvisioningState::Succeeded | ProvisioningState::Updating
                ) {
                    next.provisioning_state = ProvisioningState::Failed;
                    next.last_error = Some("the VM disappeared from the backend".into());
                }
            }
        }
        if let Some(timeout) = next.provisioning_state.timeout() {
            let since = if next.provisioning_state == ProvisioningState::Creating {
                next.created_at
            } else {
                next.updated_at
            };
            if now - since > chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX) {
                next.last_error = Some(format!(
                    "{} did not finish within {} s",
                    next.provisioning_state,
                    timeout.as_secs()
                ));
                next.provisioning_state = next.provisioning_state.on_failure();
            }
        }
        if next.health_state != record.health_state {
            next.health_changed_at = Some(now);
        }
        if next != *record {
            changed.push(next);
        }
    }
    changed
}

/// A new instance to record (as `creating`) and then create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInstance {
    pub id: String,
    pub ordinal: u64,
    pub zone: String,
    pub fault_domain: u32,
    pub model_version: u32,
    pub protect_from_scale_in: bool,
    /// A warm pool member, to be parked in this state once prepared (`None`: in service).
    pub warm: Option<WarmPoolState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Record the instance as `creating`, then create its VM.
    Create(NewInstance),
    /// The record exists as `creating` but the VM does not: create it again.
    ResumeCreate {
        id: String,
    },
    /// Mark the record `deleting`, delete the VM, then remove the record.
    Delete {
        id: String,
        force: bool,
        reason: String,
    },
    /// The record is `deleting` and its VM is gone: remove the record.
    Forget {
        id: String,
    },
    /// A VM that no record owns.
    DeleteOrphan {
        id: String,
    },
    Start {
        id: String,
    },
    Stop {
        id: String,
        force: bool,
    },
    Deallocate {
        id: String,
    },
    Restart {
        id: String,
    },
    Reimage {
        id: String,
    },
    /// Take a prepared warm pool member into service: out of the pool, its launching hooks
    /// begin, then its VM is started (resumed, restored or booted).
    Unpark {
        id: String,
    },
    /// Park a warm pool member found healthy (or one returned to the pool) in `state`.
    Park {
        id: String,
        state: WarmPoolState,
    },
    /// A scale-in victim that returns to the warm pool instead of being deleted: marked
    /// leaving (drained, its terminating hooks run), then parked.
    Return {
        id: String,
        state: WarmPoolState,
        reason: String,
    },
}

impl Action {
    pub fn instance_id(&self) -> &str {
        match self {
            Action::Create(n) => &n.id,
            Action::ResumeCreate { id }
            | Action::Delete { id, .. }
            | Action::Forget { id }
            | Action::DeleteOrphan { id }
            | Action::Start { id }
            | Action::Stop { id, .. }
            | Action::Deallocate { id }
            | Action::Restart { id }
            | Action::Reimage { id }
            | Action::Unpark { id }
            | Action::Park { id, .. }
            | Action::Return { id, .. } => id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// One line per decision, for the activity log and the portal.
    pub notes: Vec<String>,
    /// The ordinal the next new instance gets (persist with the new records).
    pub next_ordinal: u64,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    pub fn count(&self, f: impl Fn(&Action) -> bool) -> usize {
        self.actions.iter().filter(|a| f(a)).count()
    }
}

pub struct PlanInput<'a> {
    pub set: &'a ScaleSet,
    /// The set's records, already folded with [`observe`].
    pub instances: &'a [Instance],
    /// The VMs the backend holds for this set.
    pub vms: &'a [ObservedVm],
    pub zones: &'a [ZoneStatus],
    pub next_ordinal: u64,
    pub now: DateTime<Utc>,
}

/// Share of extra instances created on scale-out when overprovisioning.
const OVERPROVISION_PERCENT: usize = 20;

/// Decides the actions that move the backend toward the scale set's desired state.
pub fn plan(input: PlanInput<'_>) -> Plan {
    let PlanInput {
        set,
        instances,
        vms,
        zones,
        next_ordinal,
        now,
    } = input;
    let mut plan = Plan {
        next_ordinal,
        ..Plan::default()
    };
    let records: BTreeSet<&str> = instances.iter().map(|i| i.id.as_str()).collect();
    let vm_ids: BTreeSet<&str> = vms.iter().map(|v| v.id.as_str()).collect();
    let zone_up: BTreeMap<&str, bool> = zones
        .iter()
        .map(|z| (z.name.as_str(), z.available))
        .collect();
    let up = |zone: &str| zone_up.get(zone).copied().unwrap_or(false);

    for vm in vms.iter().filter(|v| !records.contains(v.id.as_str())) {
        plan.actions
            .push(Action::DeleteOrphan { id: vm.id.clone() });
        plan.notes
            .push(format!("{}: VM without a record, deleting it", vm.id));
    }

    let deleting_set = set.state == ScaleSetState::Deleting;
    let pool_state = set.spec.warm_pool.as_ref().map(|p| p.pool_state);
    let mut active: Vec<&Instance> = Vec::new();
    let mut pool: Vec<&Instance> = Vec::new();
    // Instances on their way back to the pool (scaled in for reuse).
    let mut returning = 0usize;
    for i in instances {
        let has_vm = vm_ids.contains(i.id.as_str());
        let held = i.lifecycle.lifecycle_state == Some(LifecycleState::TerminatingWait);
        if i.warm.warm_return && i.provisioning_state == ProvisioningState::Deleting {
            returning += 1;
            // Drained and its terminating hooks done: parked back in the pool.
            if let Some(state) = pool_state
                && has_vm
                && !held
                && !deleting_set
            {
                plan.actions.push(Action::Park {
                    id: i.id.clone(),
                    state,
                });
                continue;
            }
        }
        match i.provisioning_state {
            // A terminating hook holds it: drained, its VM kept until the hook completes.
            ProvisioningState::Deleting if held => {}
            _ if deleting_set && held => {}
            ProvisioningState::Deleting => {
                plan.actions.push(if has_vm {
                    Action::Delete {
                        id: i.id.clone(),
                        force: set.spec.scale_in_policy.force_deletion,
                        reason: "deletion in progress".into(),
                    }
                } else {
                    Action::Forget { id: i.id.clone() }
                });
            }
            _ if deleting_set => plan.actions.push(Action::Delete {
                id: i.id.clone(),
                force: true,
                reason: "the scale set is being deleted".into(),
            }),
            ProvisioningState::Failed if !has_vm => {
                plan.actions.push(Action::Delete {
                    id: i.id.clone(),
                    force: true,
                    reason: format!(
                        "failed ({}) and has no VM: replacing it",
                        i.last_error.as_deref().unwrap_or("no details")
                    ),
                });
            }
            ProvisioningState::Creating if !has_vm => {
                if up(&i.zone) {
                    plan.actions.push(Action::ResumeCreate { id: i.id.clone() });
                }
                if i.in_warm_pool() {
                    pool.push(i);
                } else {
                    active.push(i);
                }
            }
            // Being replaced by a rollout with surge: serving, not counted, left alone.
            _ if i.retiring => {}
            _ if i.in_warm_pool() => pool.push(i),
            _ => active.push(i),
        }
    }
    if deleting_set {
        if !plan.is_empty() {
            plan.notes.push(format!(
                "deleting scale set: {} instances left",
                instances.len()
            ));
        }
        return plan;
    }

    let desired = set.spec.capacity as usize;
    let provisioned = active
        .iter()
        .filter(|i| i.provisioning_state == ProvisioningState::Succeeded && i.is_running())
        .count();
    // Scale-out takes prepared warm pool members first.
    let taken = take_from_pool(set, &active, &pool, desired, &up);
    for i in &taken {
        plan.actions.push(Action::Unpark { id: i.id.clone() });
    }
    if !taken.is_empty() {
        plan.notes.push(format!(
            "scale out: {} active, {} desired; taking {} from the warm pool ({})",
            active.len(),
            desired,
            taken.len(),
            taken
                .iter()
                .map(|i| format!(
                    "{} {}",
                    i.id,
                    i.warm.warm_pool_state.map_or("", |s| s.as_str())
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if active.len() + taken.len() < desired {
        let missing = desired - active.len() - taken.len();
        let extra = if set.spec.overprovision {
            (missing * OVERPROVISION_PERCENT).div_ceil(100)
        } else {
            0
        };
        let placement = place(
            missing + extra,
            &set.spec.zones,
            zones,
            active
                .iter()
                .chain(&taken)
                .map(|i| (i.zone.clone(), i.fault_domain)),
            PlacementPolicy {
                fault_domain_count: set.spec.platform_fault_domain_count,
                strict: set.spec.zone_balance,
            },
        );
        for slot in &placement.slots {
            let ordinal = plan.next_ordinal;
            plan.next_ordinal += 1;
            plan.actions.push(Action::Create(NewInstance {
                id: Instance::make_id(&set.spec.name, ordinal),
                ordinal,
                zone: slot.zone.clone(),
                fault_domain: slot.fault_domain,
                model_version: set.model_version,
                protect_from_scale_in: set.spec.new_instances_protected_from_scale_in,
                warm: None,
            }));
        }
        plan.notes.push(format!(
            "scale out: {} active, {} desired; creating {}{}",
            active.len() + taken.len(),
            desired,
            placement.slots.len(),
            if extra > 0 {
                format!(" ({extra} overprovisioned)")
            } else {
                String::new()
            }
        ));
        if let Some(why) = placement.shortfall {
            plan.notes
                .push(format!("could not place every instance: {why}"));
        }
    } else if active.len() > desired {
        let excess = active.len() - desired;
        let still_creating = active
            .iter()
            .filter(|i| i.provisioning_state == ProvisioningState::Creating)
            .count();
        if set.spec.overprovision && still_creating > 0 && provisioned < desired {
            plan.notes.push(format!(
                "overprovisioned: waiting for {desired} of {} to finish before removing the surplus",
                active.len()
            ));
        } else {
            let owned: Vec<Instance> = active.iter().map(|i| (*i).clone()).collect();
            let choice = choose_victims(&owned, excess, set.spec.scale_in_policy.rule(), now);
            plan.notes.push(format!(
                "scale in: {} active, {} desired; deleting {}",
                active.len(),
                desired,
                choice.victims.len()
            ));
            if choice.protected_shortfall > 0 {
                plan.notes.push(format!(
                    "{} instances could not be removed: the rest are protected from scale-in or busy",
                    choice.protected_shortfall
                ));
            }
            // With reuse, victims on the current model go back to the pool while it has
            // room.
            let mut room = match &set.spec.warm_pool {
                Some(p) if p.reuse_on_scale_in => pool_size(set).saturating_sub(
                    returning + pool.iter().filter(|m| fresh_member(set, m)).count(),
                ),
                _ => 0,
            };
            for victim in choice.victims {
                plan.notes.push(format!("{}: {}", victim.id, victim.reason));
                let current = active
                    .iter()
                    .any(|i| i.id == victim.id && i.model_version == set.model_version);
                match pool_state {
                    Some(state) if room > 0 && current => {
                        room -= 1;
                        returning += 1;
                        plan.actions.push(Action::Return {
                            id: victim.id,
                            state,
                            reason: format!("{}; it returns to the warm pool", victim.reason),
                        });
                    }
                    _ => plan.actions.push(Action::Delete {
                        id: victim.id,
                        force: set.spec.scale_in_policy.force_deletion,
                        reason: victim.reason,
                    }),
                }
            }
        }
    }
    let removed: BTreeSet<String> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Delete { id, .. } | Action::Return { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    let serving: Vec<&Instance> = active
        .iter()
        .chain(&taken)
        .copied()
        .filter(|i| !removed.contains(i.id.as_str()))
        .collect();
    let taken: BTreeSet<&str> = taken.iter().map(|i| i.id.as_str()).collect();
    let staying: Vec<&Instance> = pool
        .into_iter()
        .filter(|m| !taken.contains(m.id.as_str()))
        .collect();
    refill_pool(&mut plan, set, &serving, &staying, returning, zones, &up);

    // Power and one-shot actions on the instances that stay.
    for i in active.iter().filter(|i| !removed.contains(i.id.as_str())) {
        if !matches!(
            i.provisioning_state,
            ProvisioningState::Succeeded | ProvisioningState::Updating
        ) || !vm_ids.contains(i.id.as_str())
            || i.power_state.settled() != i.power_state
            || !up(&i.zone)
        {
            continue;
        }
        let id = i.id.clone();
        if i.lifecycle.lifecycle_state == Some(LifecycleState::TerminatingWait) {
            // A reimage waits for the terminating hooks.
            continue;
        }
        if let Some(pending) = i.pending {
            plan.actions.push(match pending {
                PendingAction::Restart => Action::Restart { id },
                PendingAction::Reimage => Action::Reimage { id },
            });
            continue;
        }
        if i.power_state.matches(i.desired_power) {
            continue;
        }
        plan.actions.push(match i.desired_power {
            DesiredPower::Running => Action::Start { id },
            DesiredPower::Stopped => Action::Stop {
                id,
                force: set.spec.scale_in_policy.force_deletion,
            },
            DesiredPower::Deallocated => Action::Deallocate { id },
        });
    }
    plan
}

/// The pool's size now (0 without a warm pool).
fn pool_size(set: &ScaleSet) -> usize {
    warm_pool::sizing(&set.spec).map_or(0, |s| s.size as usize)
}

/// A member that stays in the pool: not failed, on the set's model.
fn fresh_member(set: &ScaleSet, m: &Instance) -> bool {
    m.provisioning_state != ProvisioningState::Failed && m.model_version == set.model_version
}

/// The prepared members scale-out takes for what `active` lacks of `desired`: first those
/// that keep the zones balanced (within one of each other), then the fastest pool state,
/// then the zone with the fewest instances, then the oldest.
fn take_from_pool<'a>(
    set: &ScaleSet,
    active: &[&Instance],
    pool: &[&'a Instance],
    desired: usize,
    up: &dyn Fn(&str) -> bool,
) -> Vec<&'a Instance> {
    let mut missing = desired.saturating_sub(active.len());
    let mut ready: Vec<&Instance> = pool
        .iter()
        .copied()
        .filter(|m| warm_pool::ready(m, set.model_version) && up(&m.zone))
        .collect();
    let mut per_zone: BTreeMap<&str, usize> =
        set.spec.zones.iter().map(|z| (z.as_str(), 0)).collect();
    for i in active {
        *per_zone.entry(i.zone.as_str()).or_default() += 1;
    }
    let mut taken = Vec::new();
    while missing > 0 {
        let fewest = per_zone.values().min().copied().unwrap_or(0);
        let best = ready
            .iter()
            .enumerate()
            .min_by_key(|(_, m)| {
                let here = per_zone.get(m.zone.as_str()).copied().unwrap_or(0);
                (
                    here > fewest,
                    m.warm
                        .warm_pool_state
                        .map_or(u8::MAX, warm_pool::resume_rank),
                    here,
                    m.ordinal,
                )
            })
            .map(|(k, _)| k);
        let Some(k) = best else { break };
        let m = ready.swap_remove(k);
        *per_zone.entry(m.zone.as_str()).or_default() += 1;
        taken.push(m);
        missing -= 1;
    }
    taken
}

/// Keeps the warm pool at its size: members that failed or are on an old model are
/// replaced, the surplus is deleted (members still being prepared first, then the slowest
/// to resume, the newest first), missing members are created where the set has the fewest
/// instances in service and in the pool together (so that taking them keeps the zones
/// balanced), and members are started, parked once found healthy, or parked again in the
/// state the set now wants.
fn refill_pool(
    plan: &mut Plan,
    set: &ScaleSet,
    serving: &[&Instance],
    pool: &[&Instance],
    returning: usize,
    zones: &[ZoneStatus],
    up: &dyn Fn(&str) -> bool,
) {
    let want = set.spec.warm_pool.as_ref().map(|p| p.pool_state);
    let target = pool_size(set);
    let mut keep: Vec<&Instance> = Vec::new();
    for m in pool {
        if m.provisioning_state == ProvisioningState::Creating {
            keep.push(m);
        } else if m.provisioning_state == ProvisioningState::Failed {
            let reason = format!(
                "warm pool member failed ({}): replacing it",
                m.last_error.as_deref().unwrap_or("no details")
            );
            plan.notes.push(format!("{}: {reason}", m.id));
            plan.actions.push(Action::Delete {
                id: m.id.clone(),
                force: true,
                reason,
            });
        } else if m.model_version != set.model_version {
            let reason = format!(
                "warm pool member on model version {}, the set's is {}: replacing it",
                m.model_version, set.model_version
            );
            plan.notes.push(format!("{}: {reason}", m.id));
            plan.actions.push(Action::Delete {
                id: m.id.clone(),
                force: true,
                reason,
            });
        } else {
            keep.push(m);
        }
    }
    let have = keep.len() + returning;
    if have < target
        && let Some(state) = want
    {
        let placement = place(
            target - have,
            &set.spec.zones,
            zones,
            serving
                .iter()
                .chain(&keep)
                .map(|i| (i.zone.clone(), i.fault_domain)),
            PlacementPolicy {
                fault_domain_count: set.spec.platform_fault_domain_count,
                strict: false,
            },
        );
        for slot in &placement.slots {
            let ordinal = plan.next_ordinal;
            plan.next_ordinal += 1;
            plan.actions.push(Action::Create(NewInstance {
                id: Instance::make_id(&set.spec.name, ordinal),
                ordinal,
                zone: slot.zone.clone(),
                fault_domain: slot.fault_domain,
                model_version: set.model_version,
                protect_from_scale_in: set.spec.new_instances_protected_from_scale_in,
                warm: Some(state),
            }));
        }
        plan.notes.push(format!(
            "warm pool: {have} of {target}; preparing {} ({state})",
            placement.slots.len()
        ));
    } else if have > target && !keep.is_empty() {
        let surplus = (have - target).min(keep.len());
        keep.sort_by_key(|m| {
            (
                m.warm.warm_prepared_at.is_some(),
                std::cmp::Reverse(m.warm.warm_pool_state.map_or(0, warm_pool::resume_rank)),
                std::cmp::Reverse(m.ordinal),
            )
        });
        plan.notes
            .push(format!("warm pool: {have} of {target}; deleting {surplus}"));
        for m in keep.drain(..surplus) {
            plan.actions.push(Action::Delete {
                id: m.id.clone(),
                force: true,
                reason: format!("warm pool surplus: {target} wanted"),
            });
        }
    }
    let Some(want) = want else { return };
    for m in keep.into_iter().filter(|m| up(&m.zone)) {
        let id = m.id.clone();
        match warm_pool::member_step(m, want) {
            MemberStep::Park => plan.actions.push(Action::Park { id, state: want }),
            MemberStep::Start => plan.actions.push(Action::Start { id }),
            MemberStep::Nothing => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::fixtures::instance;
    use crate::scale_set::{ScaleInRule, ScaleSetSpec};

    fn set(capacity: u32) -> ScaleSet {
        ScaleSet {
            spec: ScaleSetSpec::example("web", capacity),
            model_version: 1,
            generation: 1,
            state: ScaleSetState::Active,
            repairs: Default::default(),
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        }
    }

    fn zones() -> Vec<ZoneStatus> {
        ["1", "2", "3"]
            .iter()
            .map(|z| ZoneStatus {
                name: z.to_string(),
                fault_domains: 3,
                available: true,
                closed_fault_domains: Vec::new(),
            })
            .collect()
    }

    fn vm_of(i: &Instance) -> ObservedVm {
        ObservedVm {
            id: i.id.clone(),
            scale_set: i.scale_set.clone(),
            zone: i.zone.clone(),
            fault_domain: i.fault_domain,
            model_version: i.model_version,
            power_state: i.power_state,
            address: i.address.clone(),
            installation_id: Some("test".into()),
            lease_generation: None,
        }
    }

    fn steady(n: u64) -> Vec<Instance> {
        let z = ["1", "2", "3"];
        (0..n)
            .map(|k| instance("web", k, z[(k % 3) as usize], (k / 3) as u32))
            .collect()
    }

    fn run(set: &ScaleSet, instances: &[Instance], vms: &[ObservedVm], next: u64) -> Plan {
        plan(PlanInput {
            set,
            instances,
            vms,
            zones: &zones(),
            next_ordinal: next,
            now: DateTime::UNIX_EPOCH,
        })
    }

    fn creates(p: &Plan) -> usize {
        p.count(|a| matches!(a, Action::Create(_)))
    }
    fn deletes(p: &Plan) -> usize {
        p.count(|a| matches!(a, Action::Delete { .. }))
    }

    #[test]
    fn three_to_five_creates_exactly_two_and_deletes_nothing() {
        let instances = steady(3);
        let vms: Vec<_> = instances.iter().map(vm_of).collect();
        let p = run(&set(5), &instances, &vms, 3);
        assert_eq!((creates(&p), deletes(&p), p.actions.len()), (2, 0, 2));
        assert_eq!(p.next_ordinal, 5);
        let Action::Create(first) = &p.actions[0] else {
            panic!()
        };
        assert_eq!(first.id, "web_3");
        assert_eq!(first.zone, "1");
    }

    #[test]
    fn steady_state_plans_nothing() {
        let instances = steady(9);
        let vms: Vec<_> = instances.iter().map(vm_of).collect();
        let p = run(&set(9), &instances, &vms, 9);
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn five_to_two_newest_vm_respects_protection() {
        let mut s = set(2);
        s.spec.scale_in_policy.rules = vec![ScaleInRule::NewestVm];
        let mut instances = steady(5);
        instances[4] = instances[4].clone().protected();
        let vms: Vec<_> = instances.iter().map(vm_of).collect();
        let p = run(&s, &instances, &vms, 5);
        let victims: Vec<&str> = p.actions.iter().map(Action::instance_id).collect();
        // web_3 (newest of the two largest zones), then zone 2 is the largest (web_1 and the
        // protected web_4), then the newest of the balanced rest.
        assert_eq!(victims, ["web_3", "web_1", "web_2"]);
    }

    #[test]
    fn crash_recovery_cases() {
        let mut instances = steady(3);
        instances[1] = instances[1].clone().in_state(ProvisioningState::Creating);
        instances[2] = instances[2].clone().in_state(ProvisioningState::Deleting);
        // VM of web_1 never got created; web_2's VM still exists; web_7 is an orphan.
        let mut vms: Vec<_> = [&instances[0], &instances[2]]
            .into_iter()
            .map(vm_of)
            .collect();
        let mut orphan = vm_of(&instance("web", 7, "1", 0));
        orphan.id = "web_7".into();
        vms.push(orphan);
        let p = run(&set(2), &instances, &vms, 8);
        let mut kinds: Vec<String> = p.actions.iter().map(|a| format!("{a:?}")).collect();
        kinds.sort();
        assert_eq!(p.actions.len(), 3, "{kinds:?}");
        assert!(
            p.actions
                .contains(&Action::DeleteOrphan { id: "web_7".into() })
        );
        assert!(
            p.actions
                .contains(&Action::ResumeCreate { id: "web_1".into() })
        );
        assert!(
            p.actions
                .iter()
                .any(|a| matches!(a, Action::Delete { id, .. } if id == "web_2"))
        );
        // Once web_2's VM is gone its record is forgotten.
        let p = run(&set(2), &instances, &vms[..1], 8);
        assert!(p.actions.contains(&Action::Forget { id: "web_2".into() }));
    }

    #[test]
    fn failed_without_vm_is_replaced() {
        let mut instances = steady(3);
        instances[0] = instances[0].clone().in_state(ProvisioningState::Failed);
        let vms: Vec<_> = instances[1..].iter().map(vm_of).collect();
        let p = run(&set(3), &instances, &vms, 3);
        assert_eq!((creates(&p), deletes(&p)), (1, 1));
    }

    #[test]
    fn deleting_set_deletes_everything() {
        let mut s = set(3);
        s.state = ScaleSetState::Deleting;
        let instances: Vec<_> = steady(3).into_iter().map(|i| i.protected()).collect();
        let vms: Vec<_> = instances.iter().map(vm_of).collect();
        let p = run(&s, &instances, &vms, 3);
        assert_eq!((creates(&p), deletes(&p)), (0, 3));
    }

    #[test]
    fn overprovision_creates_extra_then_trims() {
        let mut s = set(10);
        s.spec.overprovision = true;
        let p = run(&s, &[], &[], 0);
        assert_eq!(creates(&p), 12);
        // While fewer than 10 are provisioned the surplus waits.
        let mut instances = steady(12);
        for i in instances.iter_mut().skip(8) {
            i.provisioning_state = ProvisioningState::Creating;
            i.power_state = PowerState::Starting;
        }
        let vms: Vec<_> = instances.iter().map(vm_of).collect();
        assert_eq!(deletes(&run(&s, &instances, &vms, 12)), 0);
        // Once ten run, the two still creating go first.
        instances[8].provisioning_state = ProvisioningState::Succeeded;
        instances[8].power_state = PowerState::Running;
        instances[9].provisioning_state = ProvisioningState::Succeeded;
        instances[9].power_state = PowerState::Running;
        let vms: Vec<_> = instances.iter().map(vm_of).collect();
        let p = run(&s, &instances, &vms, 12);
        let victims: BTreeSet<&str> = p.actions.iter().map(Action::instance_id).collect();
        assert_eq!(victims, BTreeSet::from(["web_10", "web_11"]));
    }

    #[test]
    fn power_convergence_and_pending() {
        let mut instances = steady(4);
        instances[0] = instances[0]
            .clone()
            .powered(DesiredPower::Stopped, PowerState::Running);
        instances[1] = instances[1]
            .clone()
            .powered(DesiredPower::Running, PowerState::Stopped);
        instances[2].pending = Some(PendingAction::Reimage);
        instances[3] = instances[3]
            .clone()
            .powered(DesiredPower::Running, PowerState::Starting);
        let vms: Vec<_> = instances.iter().map(vm_of).collect();
        let p = run(&set(4), &instances, &vms, 4);
        assert_eq!(
            p.actions,
            vec![
                Action::Stop {
                    id: "web_0".into(),
                    force: false
                },
                Action::Start { id: "web_1".into() },
                Action::Reimage { id: "web_2".into() },
            ]
        );
    }

    #[test]
    fn observe_folds_backend_state() {
        let now = DateTime::UNIX_EPOCH + chrono::Duration::seconds(60);
        let mut instances = steady(3);
        instances[0] = instances[0].clone().in_state(ProvisioningState::Creating);
        instances[0].power_state = PowerState::Starting;
        instances[0].health_state = HealthState::Unknown;
        let mut vms: Vec<_> = instances.iter().map(vm_of).collect();
        vms[0].power_state = PowerState::Running;
        vms[0].fault_domain = 2; // placed on another host of its zone
        vms.remove(2); // web_2 vanished
        let changed = observe(&instances, &vms, now);
        assert_eq!(changed.len(), 2);
        assert_eq!(changed[0].provisioning_state, ProvisioningState::Succeeded);
        assert_eq!(changed[0].health_state, HealthState::Initializing);
        assert_eq!(changed[0].fault_domain, 2);
        assert_eq!(changed[1].id, "web_2");
        assert_eq!(changed[1].provisioning_state, ProvisioningState::Failed);
        // Nothing changes on a second look.
        let folded: Vec<Instance> = instances
            .iter()
            .map(|i| {
                changed
                    .iter()
                    .find(|c| c.id == i.id)
                    .cloned()
                    .unwrap_or_else(|| i.clone())
            })
            .collect();
        assert!(observe(&folded, &vms, now).is_empty());
    }

    fn warm_set(capacity: u32, max_prepared: u32, reuse: bool) -> ScaleSet {
        let mut s = set(capacity);
        s.spec.warm_pool = Some(crate::warm_pool::WarmPool {
            min_size: 0,
            max_prepared_capacity: Some(max_prepared),
            pool_state: WarmPoolState::Paused,
            reuse_on_scale_in: reuse,
        });
        s
    }

    fn warm_creates(p: &Plan) -> Vec<WarmPoolState> {
        p.actions
            .iter()
            .filter_map(|a| match a {
                Action::Create(n) => n.warm,
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_warm_pool_fills_to_its_size_and_members_are_parked_once_healthy() {
        // Capacity 2, at most 5 prepared: a pool of 3, created apart from the capacity.
        let mut instances = steady(2);
        let vms: Vec<_> = instances.iter().map(vm_of).collect();
        let p = run(&warm_set(2, 5, false), &instances, &vms, 2);
        assert_eq!(warm_creates(&p), [WarmPoolState::Paused; 3]);
        assert_eq!(creates(&p), 3, "{p:?}");
        // Prepared members are not counted: nothing else is created; the healthy one is
        // parked, the one still initializing waits, the stopped one is started.
        let mut healthy = instance("web", 2, "1", 0).warm(WarmPoolState::Paused, false);
        healthy.health_state = HealthState::Healthy;
        let mut booting = instance("web", 3, "2", 0).warm(WarmPoolState::Paused, false);
        booting.health_state = HealthState::Initializing;
        let stopped = instance("web", 4, "3", 0)
            .warm(WarmPoolState::Paused, false)
            .powered(DesiredPower::Running, PowerState::Stopped);
        instances.extend([healthy, booting, stopped]);
        let vms: Vec<_> = instances.iter().map(vm_of).collect();
        let p = run(&warm_set(2, 5, false), &instances, &vms, 5);
        assert_eq!(
            p.actions,
            [
                Action::Park {
                    id: "web_2".into(),
                    state: WarmPoolState::Paused
                },
                Action::Start { id: "web_4".into() },
            ]
        );
        // Without the pool, its members go.
        let p = run(&set(2), &instances, &vms, 5);
        assert_eq!(deletes(&p), 3);
    }

    #[test]
    fn scale_out_takes_the_fastest_prepared_members_first_then_refills() {
        let mut instances = steady(2);
        instances.push(instance("web", 2, "1", 0).warm(WarmPoolState::Stopped, true));
        instances.push(instance("web", 3, "2", 0).warm(WarmPoolState::Paused, true));
        instances.push(instance("web", 4, "3", 0).warm(WarmPoolState::Paused, false));
        let mut old = instance("web", 5, "3", 0).warm(WarmPoolState::Paused, true);
        old.model_version = 0;
        instances.push(old);
        let vms: Vec<_> = instances.iter().map(vm_of).collect();
        // 2 → 5 with at most 6 prepared: the paused one, then the stopped one (the one being
        // prepared and the one on an old model are not taken); one cold create; the pool (1
        // wanted) keeps the one being prepared and replaces the old one.
        let p = run(&warm_set(5, 6, false), &instances, &vms, 6);
        let unparked: Vec<&str> = p
            .actions
            .iter()
            .filter(|a| matches!(a, Action::Unpark { .. }))
            .map(Action::instance_id)
            .collect();
        assert_eq!(unparked, ["web_3", "web_2"]);
        assert_eq!(creates(&p) - warm_creates(&p).len(), 1);
        assert!(
            p.actions
                .iter()
                .any(|a| matches!(a, Action::Delete { id, .. } if id == "web_5"))
        );
        assert!(warm_creates(&p).is_empty(), "{p:?}");
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("taking 2 from the warm pool"))
        );
    }

    #[test]
    fn scale_in_returns_victims_to_the_pool_while_it_has_room() {
        let instances = steady(4);
        let vms: Vec<_> = instances.iter().map(vm_of).collect();
        // 4 → 2 with at most 3 prepared: the pool wants 1, so one victim returns and one is
        // deleted.
        let p = run(&warm_set(2, 3, true), &instances, &vms, 4);
        let returns = p.count(|a| matches!(a, Action::Return { .. }));
        assert_eq!((returns, deletes(&p), creates(&p)), (1, 1, 0), "{p:?}");
        // A returning record, drained and not held, is parked; held, it waits.
        let mut back = instances[3].clone().in_state(ProvisioningState::Deleting);
        back.warm.warm_return = true;
        back.warm.warm_pool_state = Some(WarmPoolState::Paused);
        let mut records = instances[..2].to_vec();
        records.push(back.clone());
        let vms: Vec<_> = records.iter().map(vm_of).collect();
        let p = run(&warm_set(2, 3, true), &records, &vms, 4);
        assert_eq!(
            p.actions,
            [Action::Park {
                id: "web_3".into(),
                state: WarmPoolState::Paused
            }]
        );
        back.lifecycle.lifecycle_state = Some(LifecycleState::TerminatingWait);
        records[2] = back;
        assert!(run(&warm_set(2, 3, true), &records, &vms, 4).is_empty());
    }

    #[test]
    fn observe_times_out_stuck_creates() {
        let mut i = instance("web", 0, "1", 0).in_state(ProvisioningState::Creating);
        i.power_state = PowerState::Starting;
        let vm = ObservedVm {
            power_state: PowerState::Starting,
            ..vm_of(&i)
        };
        let later = i.created_at + chrono::Duration::seconds(601);
        let changed = observe(std::slice::from_ref(&i), &[vm], later);
        assert_eq!(changed[0].provisioning_state, ProvisioningState::Failed);
        assert!(changed[0].last_error.as_deref().unwrap().contains("600"));
    }
}
