//! Host maintenance: emptying a hypervisor host by surge, without I/O.
//!
//! A host is a fault domain of its zone (libvirt: one configured host; the mock: one
//! simulated host per zone × fault domain). While a host is under maintenance (a person
//! asked, `POST /backend/hosts/{name}/maintenance`) or unreachable, it is *closed*: new
//! instances avoid it ([`crate::ZoneStatus::closed_fault_domains`]) and each set's
//! reconcile loop calls [`plan_moves`] to move its instances off it:
//!
//! 1. an instance on the host is marked `retiring`: it keeps serving but no longer counts
//!    toward capacity, so the reconciler creates its replacement on an open host — in the
//!    same zone while the zone has one, because placement fills the emptiest zone first;
//! 2. once `capacity` instances serve without the retiring ones (the replacements are in the
//!    load balancer's pool, or healthy without one), the retiring instances are marked
//!    `deleting` — drained first, then held by the terminating lifecycle hooks, then removed;
//! 3. warm pool members on the host are deleted at once (they serve nothing); the pool
//!    refills on open hosts;
//! 4. when the host opens again (a person ends the maintenance, an unreachable host
//!    answers), moves not finished stop: `retiring` is cleared, and the replacements are
//!    surplus that scale-in removes.
//!
//! A move starts, or finishes, only while the set is active and has no rollout running (a
//! rollout's surge uses `retiring` too: a move it overtook waits for its end). It starts
//! only while its instance is not protected from scale-set actions and holds no busy lease,
//! the set passes its upgrade policy's unhealthy limit (`max_unhealthy_instance_percent`, as
//! before a rollout batch), and the set's out-of-service budget
//! ([`crate::repair::repair_limit`], shared with repairs and rollouts) has room. On an
//! **unreachable** host the instances are lost already: they are replaced at once, without
//! waiting for a lease, the unhealthy limit or the budget (protection and a running rollout
//! still hold them). Everything is read from the instance records, so a control plane
//! killed at any point decides the same on restart; nothing but the host's record is
//! stored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::instance::{Instance, LifecycleState, ProvisioningState};
use crate::repair::repair_limit;
use crate::rollout::gate_before;
use crate::scale_set::{ScaleSet, ScaleSetState};

/// Why a host is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceReason {
    /// A person put it under maintenance.
    Maintenance,
    /// It could not be reached for longer than the grace period.
    Unreachable,
}

impl MaintenanceReason {
    pub fn as_str(self) -> &'static str {
        match self {
            MaintenanceReason::Maintenance => "maintenance",
            MaintenanceReason::Unreachable => "unreachable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "maintenance" => Some(MaintenanceReason::Maintenance),
            "unreachable" => Some(MaintenanceReason::Unreachable),
            _ => None,
        }
    }
}

/// A closed host, as stored (one record per host; removed when the host returns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostMaintenance {
    /// The host's name.
    pub host: String,
    pub zone: String,
    pub fault_domain: u32,
    pub reason: MaintenanceReason,
    pub started_at: DateTime<Utc>,
    /// Who closed it: the actor as the activity log names it (`system:hosts` for an
    /// unreachable host).
    pub started_by: String,
    /// Instances on the host (in service or in a warm pool) when it was closed.
    pub instances_at_start: u32,
}

impl HostMaintenance {
    /// Whether `i` is on this host.
    pub fn holds(&self, i: &Instance) -> bool {
        i.zone == self.zone && i.fault_domain == self.fault_domain
    }
}

/// An instance still on a closed host, and why it has not left yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Waiting {
    pub instance: String,
    pub scale_set: String,
    /// `waiting` (not started: `reason` says why), `moving` (its replacement is coming up)
    /// or `leaving` (drained, its terminating hooks run, then it is deleted).
    pub step: String,
    pub reason: String,
}

/// A closed host with its progress, as `GET /backend` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MaintenanceStatus {
    #[serde(flatten)]
    pub record: HostMaintenance,
    /// Instances that left the host since it was closed.
    pub moved: u32,
    /// True once no instance is left on it: the host can be serviced.
    pub empty: bool,
    pub waiting: Vec<Waiting>,
}

/// Everything one set's moves read.
pub struct MoveInput<'a> {
    pub set: &'a ScaleSet,
    /// The set's records.
    pub instances: &'a [Instance],
    /// Every closed host.
    pub closed: &'a [HostMaintenance],
    /// Whether instance `i` serves now: in the load balancer's pool when the set has one,
    /// else running and healthy.
    pub serving: &'a dyn Fn(&Instance) -> bool,
    /// A rollout of the set is running.
    pub rollout_active: bool,
    pub now: DateTime<Utc>,
}

/// What [`plan_moves`] decided for one set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MovePlan {
    /// Mark retiring: their replacements are created on open hosts.
    pub retire: Vec<String>,
    /// Mark deleting (drained, hooks, removed): retiring instances whose replacements
    /// serve, and warm pool members on closed hosts.
    pub delete: Vec<String>,
    /// Clear `retiring`: instances whose host opened again before their move finished
    /// (their replacements are surplus that scale-in removes).
    pub release: Vec<String>,
    /// Every instance of the set still on a closed host (after this plan).
    pub waiting: Vec<Waiting>,
}

impl MovePlan {
    pub fn is_empty(&self) -> bool {
        self.retire.is_empty() && self.delete.is_empty() && self.release.is_empty()
    }
}

/// Decides which of one set's instances on closed hosts start moving and which leave (the
/// module documentation gives the rules).
pub fn plan_moves(input: MoveInput<'_>) -> MovePlan {
    let MoveInput {
        set,
        instances,
        closed,
        serving,
        rollout_active,
        now,
    } = input;
    let mut plan = MovePlan::default();
    let on_closed = |i: &Instance| closed.iter().any(|h| h.holds(i));
    // Moves whose host opened again before they finished stop: their instances count again
    // (a running rollout's retiring instances are the rollout's).
    if !rollout_active {
        plan.release = instances
            .iter()
            .filter(|i| i.retiring && i.is_active() && !on_closed(i))
            .map(|i| i.id.clone())
            .collect();
    }
    if !instances.iter().any(on_closed) {
        return plan;
    }
    let name = set.name();
    let mut wait = |i: &Instance, step: &str, reason: String| {
        plan.waiting.push(Waiting {
            instance: i.id.clone(),
            scale_set: name.to_string(),
            step: step.into(),
            reason,
        })
    };
    let capacity = set.spec.capacity as usize;
    // What serves without the retiring instances: the replacements have come up when it
    // reaches the capacity.
    let serving_count = instances
        .iter()
        .filter(|i| i.is_active() && !i.retiring && serving(i))
        .count();
    let moving = instances
        .iter()
        .filter(|i| i.is_active() && i.retiring && on_closed(i))
        .count();
    let in_transition = instances
        .iter()
        .filter(|i| i.is_active() && !i.retiring && i.in_transition())
        .count();
    let limit = repair_limit(set.spec.capacity);
    let mut busy = moving.max(in_transition);
    let gate = gate_before(
        0,
        instances,
        set.spec.capacity,
        &set.spec.upgrade_policy.rolling,
        now,
    );
    let active_set = set.state == ScaleSetState::Active;
    let mut retire = Vec::new();
    let mut delete = Vec::new();
    for i in instances.iter().filter(|i| on_closed(i)) {
        // Instances on an unreachable host are lost already: nothing is gained by waiting.
        let lost = closed
            .iter()
            .any(|h| h.holds(i) && h.reason == MaintenanceReason::Unreachable);
        if i.provisioning_state == ProvisioningState::Deleting {
            let reason = match (&i.lifecycle.lifecycle_state, &i.lifecycle.lifecycle_hook) {
                (Some(LifecycleState::TerminatingWait), Some(hook)) => {
                    format!("drained; waiting for terminating hook {hook}")
                }
                _ => "draining, then deleted".into(),
            };
            wait(i, "leaving", reason);
        } else if !active_set {
            wait(i, "waiting", "the scale set is being deleted".into());
        } else if i.warm.warm_pool_state.is_some() {
            delete.push(i.id.clone());
            wait(
                i,
                "leaving",
                "warm pool member: deleted, the pool refills on an open host".into(),
            );
        } else if rollout_active {
            // A retiring instance is the rollout's surge then, or a move the rollout
            // overtook: either waits for the rollout to end.
            wait(i, "waiting", "a rollout of the set is running".into());
        } else if i.retiring {
            if serving_count >= capacity {
                delete.push(i.id.clone());
                wait(
                    i,
                    "leaving",
                    format!(
                        "its replacement serves ({serving_count} of {capacity}): draining, then deleted"
                    ),
                );
            } else {
                wait(
                    i,
                    "moving",
                    format!(
                        "replacement coming up: {serving_count} of {capacity} serve without it"
                    ),
                );
            }
        } else if i.protect_from_scale_set_actions {
            wait(i, "waiting", "protected from scale-set actions".into());
        } else if lost {
            busy += 1;
            retire.push(i.id.clone());
            wait(
                i,
                "moving",
                "the host is unreachable: replacement being created on an open host".into(),
            );
        } else if i.is_busy(now) {
            let until = i.busy_until.map(|t| t.to_rfc3339()).unwrap_or_default();
            wait(i, "waiting", format!("busy until {until}"));
        } else if i.provisioning_state.is_transitional() || i.pending.is_some() {
            wait(i, "waiting", "an operation on it is in progress".into());
        } else if !gate.passed {
            wait(i, "waiting", gate.detail.clone());
        } else if busy >= limit {
            wait(
                i,
                "waiting",
                format!(
                    "{busy} instance(s) of the set out of service or moving; at most {limit} at once"
                ),
            );
        } else {
            busy += 1;
            retire.push(i.id.clone());
            wait(
                i,
                "moving",
                "replacement being created on an open host".into(),
            );
        }
    }
    plan.retire = retire;
    plan.delete = delete;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::{HealthState, WarmPoolState, fixtures};
    use crate::scale_set::ScaleSetSpec;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
    }

    fn set(capacity: u32) -> ScaleSet {
        let mut spec = ScaleSetSpec::example("web", capacity);
        spec.zones = vec!["1".into()];
        ScaleSet {
            spec,
            model_version: 1,
            generation: 1,
            state: ScaleSetState::Active,
            repairs: Default::default(),
            created_at: now(),
            updated_at: now(),
        }
    }

    fn instance(n: u64, fd: u32) -> Instance {
        fixtures::instance("web", n, "1", fd)
    }

    fn host0() -> HostMaintenance {
        HostMaintenance {
            host: "1-fd0".into(),
            zone: "1".into(),
            fault_domain: 0,
            reason: MaintenanceReason::Maintenance,
            started_at: now(),
            started_by: "user:admin".into(),
            instances_at_start: 3,
        }
    }

    fn moves(set: &ScaleSet, instances: &[Instance], rollout_active: bool) -> MovePlan {
        let closed = [host0()];
        plan_moves(MoveInput {
            set,
            instances,
            closed: &closed,
            serving: &|i: &Instance| i.health_state == HealthState::Healthy,
            rollout_active,
            now: now(),
        })
    }

    /// Nine over three hosts: three on the closed one.
    fn nine() -> Vec<Instance> {
        (0..9).map(|n| instance(n, (n % 3) as u32)).collect()
    }

    #[test]
    fn one_move_at_a_time_within_the_budget() {
        let s = set(9);
        let mut all = nine();
        let plan = moves(&s, &all, false);
        assert_eq!(plan.retire, ["web_0"], "repair limit of 9 is 1");
        assert!(plan.delete.is_empty());
        assert_eq!(plan.waiting.len(), 3);
        assert!(plan.waiting[1].reason.contains("at most 1 at once"));

        // Retired: the replacement is being created, nothing else starts.
        all[0].retiring = true;
        let mut new = instance(9, 1);
        new.provisioning_state = ProvisioningState::Creating;
        new.health_state = HealthState::Unknown;
        all.push(new);
        let plan = moves(&s, &all, false);
        assert!(plan.is_empty());
        assert!(plan.waiting[0].reason.contains("8 of 9 serve without it"));

        // The replacement serves: the old one leaves; the next waits for the budget again
        // only while the old one is still retiring.
        all[9].provisioning_state = ProvisioningState::Succeeded;
        all[9].health_state = HealthState::Healthy;
        let plan = moves(&s, &all, false);
        assert_eq!(plan.delete, ["web_0"]);
        assert!(plan.retire.is_empty());
    }

    #[test]
    fn protection_busy_rollouts_and_unhealthy_sets_wait() {
        let s = set(9);
        let mut all = nine();
        all[0].protect_from_scale_set_actions = true;
        all[3].busy_until = Some(now() + chrono::Duration::seconds(60));
        let plan = moves(&s, &all, false);
        assert_eq!(plan.retire, ["web_6"]);
        assert_eq!(plan.waiting[0].reason, "protected from scale-set actions");
        assert!(plan.waiting[1].reason.starts_with("busy until"));

        let plan = moves(&s, &nine(), true);
        assert!(plan.retire.is_empty());
        assert!(plan.waiting.iter().all(|w| w.reason.contains("rollout")));
        // A retiring instance waits for the rollout too, even with its replacement up.
        let mut surged = nine();
        surged[0].retiring = true;
        surged.push(instance(9, 1));
        let plan = moves(&s, &surged, true);
        assert!(plan.is_empty(), "{plan:?}");

        // Five of nine unhealthy is above the default 20 %.
        let mut sick = nine();
        for i in sick.iter_mut().skip(4) {
            i.health_state = HealthState::Unhealthy;
        }
        let plan = moves(&s, &sick, false);
        assert!(plan.retire.is_empty(), "{plan:?}");
    }

    #[test]
    fn pool_members_leave_at_once_and_leaving_ones_say_why() {
        let s = set(2);
        let mut member = instance(0, 0);
        member.warm.warm_pool_state = Some(WarmPoolState::Stopped);
        let mut leaving = instance(1, 0);
        leaving.provisioning_state = ProvisioningState::Deleting;
        leaving.lifecycle.lifecycle_state = Some(LifecycleState::TerminatingWait);
        leaving.lifecycle.lifecycle_hook = Some("drain-sessions".into());
        let other = instance(2, 1);
        let plan = moves(&s, &[member, leaving, other], false);
        assert_eq!(plan.delete, ["web_0"]);
        assert_eq!(
            plan.waiting[1].reason,
            "drained; waiting for terminating hook drain-sessions"
        );
    }

    #[test]
    fn an_unreachable_hosts_instances_are_replaced_at_once() {
        let s = set(9);
        let mut all = nine();
        for i in all.iter_mut().filter(|i| i.fault_domain == 0) {
            i.health_state = HealthState::Unhealthy;
            i.busy_until = Some(now() + chrono::Duration::seconds(60));
        }
        let mut lost = host0();
        lost.reason = MaintenanceReason::Unreachable;
        let plan = plan_moves(MoveInput {
            set: &s,
            instances: &all,
            closed: &[lost],
            serving: &|i: &Instance| i.health_state == HealthState::Healthy,
            rollout_active: false,
            now: now(),
        });
        assert_eq!(
            plan.retire,
            ["web_0", "web_3", "web_6"],
            "no budget, lease or gate"
        );
    }

    #[test]
    fn moves_stop_when_the_host_opens_again_but_not_a_rollouts() {
        let s = set(9);
        let mut all = nine();
        all[0].retiring = true;
        let open = |all: &[Instance], rollout_active| {
            plan_moves(MoveInput {
                set: &s,
                instances: all,
                closed: &[],
                serving: &|_: &Instance| true,
                rollout_active,
                now: now(),
            })
        };
        assert_eq!(open(&all, false).release, ["web_0"]);
        assert!(
            open(&all, true).is_empty(),
            "a rollout's surge is left alone"
        );
        all[0].provisioning_state = ProvisioningState::Deleting;
        assert!(open(&all, false).is_empty(), "leaving already");
    }

    #[test]
    fn nothing_on_closed_hosts_nothing_to_do() {
        let s = set(2);
        let all = [instance(0, 1), instance(1, 2)];
        let plan = moves(&s, &all, false);
        assert_eq!(plan, MovePlan::default());
    }
}
