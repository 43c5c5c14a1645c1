//! Automatic repairs (Azure's `automaticRepairsPolicy`): which unhealthy instances to repair
//! now, and when the service suspends itself.
//!
//! Rules:
//! - only with repairs enabled; an instance is a candidate when it is unhealthy for at least
//!   the grace period (counted from its last health change), or when its zone is down and it
//!   is not running (then the action is always Replace, which places the new instance in an
//!   available zone — unless the set's zone balance is strict);
//! - instances protected from scale-set actions are skipped; oldest problem first;
//! - at most 5 % of the set's capacity is being repaired or otherwise in transition at once,
//!   one at a time below 20 instances ([`repair_limit`]);
//! - a repaired instance (or its replacement) carries `repair_attempts`; being a candidate
//!   again before it was ever healthy means the repair failed. After
//!   [`MAX_FAILED_REPAIRS`] failures in a row the service suspends itself with a reason until
//!   a person resumes it; any repaired instance turning healthy resets the count.
//!
//! Zone rebalancing ([`plan_rebalance`]), after an outage moved instances out of a zone:
//! when every zone of the set is available again, nothing is in transition and zones
//! differ by more than one, one extra instance is created (placement puts it in the
//! emptiest zone); once it serves, an instance of the fullest zone is removed — create
//! before delete, one at a time, never below capacity.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::instance::{DesiredPower, HealthState, Instance, PowerState, ProvisioningState};
use crate::placement::ZoneStatus;
use crate::scale_set::{RepairAction, ScaleSetSpec};

/// The operations the activity log records for the repair service: a repair, a suspension,
/// a person's resumption.
pub const ACTIVITY_OPERATIONS: [&str; 3] =
    ["instance.repair", "repairs.suspended", "repairs.resume"];

/// Failed repairs in a row after which the service suspends itself.
pub const MAX_FAILED_REPAIRS: u32 = 3;

/// The repair service's state of one scale set, kept with the set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepairStatus {
    /// Set when the service suspended itself; cleared when a person resumes it.
    #[serde(default)]
    pub suspended_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub suspended_reason: Option<String>,
    /// Repairs in a row whose instance did not come back healthy.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// The extra instance a zone rebalance created, while it is coming up (the over-full
    /// zone gives one up once it serves).
    #[serde(default)]
    pub rebalancing: Option<String>,
}

impl RepairStatus {
    pub fn is_suspended(&self) -> bool {
        self.suspended_at.is_some()
    }
}

/// How many instances may be in repair (or otherwise in transition) at once.
pub fn repair_limit(capacity: u32) -> usize {
    if capacity < 20 {
        1
    } else {
        capacity as usize * 5 / 100
    }
}

/// The repair service of one set as the portal and API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepairOverview {
    pub status: RepairStatus,
    /// Instances that may be in repair (or otherwise in transition) at once.
    pub limit: usize,
    /// Instances in transition now.
    pub in_transition: usize,
    /// Repairs the next evaluation would start, with their reason.
    pub due: Vec<PlannedRepair>,
    /// Candidates held back, with why.
    pub waiting: Vec<PlannedRepair>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedRepair {
    pub instance: String,
    pub reason: String,
}

impl RepairOverview {
    /// What [`plan_repairs`] would decide now, without deciding it.
    pub fn of(
        spec: &ScaleSetSpec,
        status: &RepairStatus,
        instances: &[Instance],
        zones: &[ZoneStatus],
        now: DateTime<Utc>,
    ) -> Self {
        let plan = plan_repairs(spec, status, instances, zones, now);
        Self {
            status: status.clone(),
            limit: repair_limit(spec.capacity),
            in_transition: instances.iter().filter(|i| i.in_transition()).count(),
            due: plan
                .repairs
                .into_iter()
                .map(|r| PlannedRepair {
                    instance: r.instance,
                    reason: format!("{}: {}", r.action.as_str(), r.reason),
                })
                .collect(),
            waiting: plan
                .waiting
                .into_iter()
                .map(|(instance, reason)| PlannedRepair { instance, reason })
                .collect(),
        }
    }
}

/// One repair to perform now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    pub instance: String,
    pub action: RepairAction,
    pub reason: String,
}

/// What one evaluation decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairPlan {
    pub repairs: Vec<Repair>,
    /// Repaired instances that are healthy now: their `repair_attempts` go back to zero.
    pub recovered: Vec<String>,
    /// Candidates not repaired now, with why.
    pub waiting: Vec<(String, String)>,
    /// The status after this evaluation.
    pub status: RepairStatus,
    /// Whether this evaluation suspended the service.
    pub suspended_now: bool,
}

/// Plans the repairs of one scale set.
pub fn plan_repairs(
    spec: &ScaleSetSpec,
    status: &RepairStatus,
    instances: &[Instance],
    zones: &[ZoneStatus],
    now: DateTime<Utc>,
) -> RepairPlan {
    let mut plan = RepairPlan {
        status: status.clone(),
        ..RepairPlan::default()
    };
    plan.recovered = instances
        .iter()
        .filter(|i| i.repair_attempts > 0 && i.health_state == HealthState::Healthy)
        .map(|i| i.id.clone())
        .collect();
    if !plan.recovered.is_empty() {
        plan.status.consecutive_failures = 0;
    }
    let policy = &spec.automatic_repairs;
    if !policy.enabled {
        return plan;
    }
    let available: BTreeMap<&str, bool> = zones
        .iter()
        .map(|z| (z.name.as_str(), z.available))
        .collect();
    let grace = chrono::Duration::seconds(i64::from(policy.grace_period_seconds));
    let another_zone_up = spec
        .zones
        .iter()
        .any(|z| available.get(z.as_str()).copied().unwrap_or(false));

    let zone_down = |i: &Instance| !available.get(i.zone.as_str()).copied().unwrap_or(true);
    let mut candidates: Vec<(&Instance, RepairAction, String, DateTime<Utc>)> = Vec::new();
    for i in instances {
        if !i.is_active()
            || i.retiring
            || i.lifecycle.lifecycle_state.is_some()
            || i.provisioning_state == ProvisioningState::Creating
            || i.desired_power != DesiredPower::Running
        {
            continue;
        }
        let since = i.health_changed_at.unwrap_or(i.updated_at);
        if zone_down(i) && i.power_state != PowerState::Running {
            // Attempts to start it there fail; only a replacement elsewhere helps.
            if spec.zone_balance {
                plan.waiting.push((
                    i.id.clone(),
                    format!(
                        "zone {} is down and the set's zone balance is strict",
                        i.zone
                    ),
                ));
            } else if another_zone_up {
                candidates.push((
                    i,
                    RepairAction::Replace,
                    format!("zone {} is down", i.zone),
                    since,
                ));
            }
        } else if i.provisioning_state == ProvisioningState::Succeeded
            && i.pending.is_none()
            && i.health_state == HealthState::Unhealthy
            && now - since >= grace
        {
            let detail = i
                .last_probe
                .as_ref()
                .map(|p| format!(" (last probe: {})", p.detail))
                .unwrap_or_default();
            candidates.push((
                i,
                policy.repair_action,
                format!(
                    "unhealthy since {}{detail}",
                    since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
                since,
            ));
        }
    }
    candidates.sort_by(|a, b| a.3.cmp(&b.3).then_with(|| a.0.ordinal.cmp(&b.0.ordinal)));

    let limit = repair_limit(spec.capacity);
    // Instances stuck in a down zone are what repairs replace, not repairs in progress.
    let busy = instances
        .iter()
        .filter(|i| i.in_transition() && !zone_down(i))
        .count();
    let mut budget = limit.saturating_sub(busy);
    for (instance, action, reason, _) in candidates {
        let id = instance.id.clone();
        if let Some(why) = &plan.status.suspended_reason {
            plan.waiting
                .push((id, format!("repairs are suspended: {why}")));
            continue;
        }
        if instance.protect_from_scale_set_actions {
            plan.waiting
                .push((id, "protected from scale-set actions".to_string()));
            continue;
        }
        if budget == 0 {
            plan.waiting.push((
                id,
                format!("waiting: at most {limit} instance(s) in repair at once"),
            ));
            continue;
        }
        if instance.repair_attempts > 0 {
            plan.status.consecutive_failures += 1;
            if plan.status.consecutive_failures >= MAX_FAILED_REPAIRS {
                let why = format!(
                    "{} repairs in a row did not bring instances back to health (last: {id}, {reason})",
                    plan.status.consecutive_failures
                );
                plan.status.suspended_at = Some(now);
                plan.status.suspended_reason = Some(why.clone());
                plan.suspended_now = true;
                plan.waiting
                    .push((id, format!("repairs are suspended: {why}")));
                continue;
            }
        }
        budget -= 1;
        plan.repairs.push(Repair {
            instance: id,
            action,
            reason,
        });
    }
    plan
}

/// The next step of a zone rebalance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebalance {
    /// Nothing to do (or wait for the extra instance to serve).
    None,
    /// Create one instance beyond capacity; placement puts it in the emptiest zone.
    Surge,
    /// The extra instance serves: remove `victim` from the fullest zone.
    Finish { victim: String },
    /// The extra instance failed or vanished, or a zone went down again: forget it.
    Abandon,
}

/// Plans the next step of rebalancing the set's zones (an instance busy at `now` is not
/// removed: the rebalance waits for its lease).
pub fn plan_rebalance(
    spec: &ScaleSetSpec,
    status: &RepairStatus,
    instances: &[Instance],
    zones: &[ZoneStatus],
    capacity_now: u32,
    now: DateTime<Utc>,
) -> Rebalance {
    let all_up = spec
        .zones
        .iter()
        .all(|z| zones.iter().any(|s| &s.name == z && s.available));
    if let Some(extra) = &status.rebalancing {
        let Some(surge) = instances.iter().find(|i| &i.id == extra) else {
            return Rebalance::Abandon;
        };
        if !all_up
            || !surge.is_active()
            || surge.provisioning_state == ProvisioningState::Failed
            || surge.health_state == HealthState::Unhealthy
        {
            return Rebalance::Abandon;
        }
        if !surge.in_pool() {
            return Rebalance::None;
        }
        let counts = zone_counts(spec, instances);
        let fullest = counts.iter().max_by_key(|(_, n)| **n).map(|(z, _)| *z);
        let candidates: Vec<&Instance> = instances
            .iter()
            .filter(|i| {
                i.is_active()
                    && &i.id != extra
                    && !i.protect_from_scale_set_actions
                    && Some(i.zone.as_str()) == fullest
            })
            .collect();
        // A busy instance is not removed: wait for its lease to end.
        return match candidates
            .iter()
            .filter(|i| !i.is_busy(now))
            .max_by_key(|i| i.ordinal)
        {
            Some(v) => Rebalance::Finish {
                victim: v.id.clone(),
            },
            None if candidates.is_empty() => Rebalance::Abandon,
            None => Rebalance::None,
        };
    }
    if spec.zones.len() < 2 || !all_up || instances.iter().any(Instance::in_transition) {
        return Rebalance::None;
    }
    let active = instances.iter().filter(|i| i.is_active()).count();
    if active != capacity_now as usize {
        return Rebalance::None;
    }
    let counts = zone_counts(spec, instances);
    let (min, max) = (
        counts.values().min().copied().unwrap_or(0),
        counts.values().max().copied().unwrap_or(0),
    );
    if max - min > 1 {
        Rebalance::Surge
    } else {
        Rebalance::None
    }
}

/// Active instances per zone of the set (zones without any count as zero).
fn zone_counts<'a>(spec: &'a ScaleSetSpec, instances: &[Instance]) -> BTreeMap<&'a str, usize> {
    let mut counts: BTreeMap<&str, usize> = spec.zones.iter().map(|z| (z.as_str(), 0)).collect();
    for i in instances.iter().filter(|i| i.is_active()) {
        if let Some(n) = counts.get_mut(i.zone.as_str()) {
            *n += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::fixtures::instance;
    use crate::scale_set::AutomaticRepairs;

    fn spec(capacity: u32, action: RepairAction) -> ScaleSetSpec {
        let mut s = ScaleSetSpec::example("web", capacity);
        s.automatic_repairs = AutomaticRepairs {
            enabled: true,
            grace_period_seconds: 60,
            repair_action: action,
        };
        s.zone_balance = false;
        s
    }

    fn zones(down: &[&str]) -> Vec<ZoneStatus> {
        ["1", "2", "3"]
            .iter()
            .map(|z| ZoneStatus {
                name: z.to_string(),
                fault_domains: 1,
                available: !down.contains(z),
                closed_fault_domains: Vec::new(),
            })
            .collect()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::seconds(secs)
    }

    fn set(n: u64) -> Vec<Instance> {
        (0..n)
            .map(|o| instance("web", o, ["1", "2", "3"][o as usize % 3], 0))
            .collect()
    }

    fn ids(plan: &RepairPlan) -> Vec<&str> {
        plan.repairs.iter().map(|r| r.instance.as_str()).collect()
    }

    #[test]
    fn unhealthy_after_grace_is_repaired_with_the_policy_action() {
        let mut all = set(3);
        all[1] = all[1].clone().health(HealthState::Unhealthy, 100);
        let s = spec(3, RepairAction::Restart);
        let early = plan_repairs(&s, &RepairStatus::default(), &all, &zones(&[]), at(159));
        assert!(early.repairs.is_empty());
        let due = plan_repairs(&s, &RepairStatus::default(), &all, &zones(&[]), at(160));
        assert_eq!(ids(&due), ["web_1"]);
        assert_eq!(due.repairs[0].action, RepairAction::Restart);
        assert!(due.repairs[0].reason.starts_with("unhealthy since"));
        let mut off = s.clone();
        off.automatic_repairs.enabled = false;
        assert!(
            plan_repairs(&off, &RepairStatus::default(), &all, &zones(&[]), at(999))
                .repairs
                .is_empty()
        );
    }

    #[test]
    fn rate_limit_is_five_percent_or_one_below_twenty() {
        assert_eq!(
            [1, 19, 20, 39, 40, 100, 1000].map(repair_limit),
            [1, 1, 1, 1, 2, 5, 50]
        );
        let all: Vec<Instance> = set(40)
            .into_iter()
            .map(|i| i.health(HealthState::Unhealthy, 0))
            .collect();
        let plan = plan_repairs(
            &spec(40, RepairAction::Replace),
            &RepairStatus::default(),
            &all,
            &zones(&[]),
            at(1000),
        );
        assert_eq!(ids(&plan), ["web_0", "web_1"], "oldest first, two of 40");
        assert_eq!(plan.waiting.len(), 38);
        // One already restarting uses one of the two slots.
        let mut busy = all.clone();
        busy[5].pending = Some(crate::instance::PendingAction::Restart);
        let plan = plan_repairs(
            &spec(40, RepairAction::Replace),
            &RepairStatus::default(),
            &busy,
            &zones(&[]),
            at(1000),
        );
        assert_eq!(plan.repairs.len(), 1);
    }

    #[test]
    fn protected_instances_are_skipped() {
        let all = vec![
            instance("web", 0, "1", 0)
                .guarded()
                .health(HealthState::Unhealthy, 0),
            instance("web", 1, "2", 0).health(HealthState::Unhealthy, 10),
        ];
        let plan = plan_repairs(
            &spec(2, RepairAction::Replace),
            &RepairStatus::default(),
            &all,
            &zones(&[]),
            at(1000),
        );
        assert_eq!(ids(&plan), ["web_1"]);
        assert_eq!(
            plan.waiting,
            [(
                "web_0".to_string(),
                "protected from scale-set actions".to_string()
            )]
        );
    }

    #[test]
    fn repeated_failures_suspend_and_a_recovery_resets() {
        let s = spec(3, RepairAction::Replace);
        let mut failing = instance("web", 7, "1", 0).health(HealthState::Unhealthy, 0);
        failing.repair_attempts = 1;
        let mut status = RepairStatus::default();
        for round in 1..MAX_FAILED_REPAIRS {
            let plan = plan_repairs(&s, &status, &[failing.clone()], &zones(&[]), at(1000));
            assert_eq!(ids(&plan), ["web_7"], "round {round}");
            assert_eq!(plan.status.consecutive_failures, round);
            status = plan.status;
        }
        let plan = plan_repairs(&s, &status, &[failing.clone()], &zones(&[]), at(1000));
        assert!(plan.repairs.is_empty());
        assert!(plan.suspended_now);
        assert!(
            plan.status
                .suspended_reason
                .as_deref()
                .unwrap()
                .contains("3 repairs in a row")
        );
        // Suspended: nothing more until resumed, even for new candidates.
        let again = plan_repairs(&s, &plan.status, &[failing.clone()], &zones(&[]), at(2000));
        assert!(again.repairs.is_empty() && !again.suspended_now);
        // A repaired instance that turns healthy resets the count.
        let mut healed = instance("web", 8, "2", 0);
        healed.repair_attempts = 2;
        let plan = plan_repairs(
            &s,
            &RepairStatus {
                consecutive_failures: 2,
                ..RepairStatus::default()
            },
            &[healed],
            &zones(&[]),
            at(1000),
        );
        assert_eq!(plan.recovered, ["web_8"]);
        assert_eq!(plan.status.consecutive_failures, 0);
    }

    #[test]
    fn rebalance_creates_before_it_deletes() {
        let s = spec(3, RepairAction::Replace);
        let status = RepairStatus::default();
        // After an outage of zone 2: two in zone 1, one in zone 3.
        let mut all = vec![
            instance("web", 0, "1", 0),
            instance("web", 3, "1", 0),
            instance("web", 2, "3", 0),
        ];
        assert_eq!(
            plan_rebalance(&s, &status, &all, &zones(&["2"]), 3, DateTime::UNIX_EPOCH),
            Rebalance::None,
            "not while the zone is down"
        );
        assert_eq!(
            plan_rebalance(&s, &status, &all, &zones(&[]), 3, DateTime::UNIX_EPOCH),
            Rebalance::Surge
        );
        // The extra instance (web_4 in zone 2) is booting: wait.
        let surging = RepairStatus {
            rebalancing: Some("web_4".into()),
            ..status.clone()
        };
        all.push(instance("web", 4, "2", 0).health(HealthState::Initializing, 0));
        assert_eq!(
            plan_rebalance(&s, &surging, &all, &zones(&[]), 3, DateTime::UNIX_EPOCH),
            Rebalance::None
        );
        // It serves: the newest of the fullest zone goes.
        all[3].health_state = HealthState::Healthy;
        assert_eq!(
            plan_rebalance(&s, &surging, &all, &zones(&[]), 3, DateTime::UNIX_EPOCH),
            Rebalance::Finish {
                victim: "web_3".into()
            }
        );
        // It failed: forget it.
        all[3].health_state = HealthState::Unhealthy;
        assert_eq!(
            plan_rebalance(&s, &surging, &all, &zones(&[]), 3, DateTime::UNIX_EPOCH),
            Rebalance::Abandon
        );
        // Balanced sets and sets in transition are left alone.
        let balanced = set(3);
        assert_eq!(
            plan_rebalance(&s, &status, &balanced, &zones(&[]), 3, DateTime::UNIX_EPOCH),
            Rebalance::None
        );
    }

    #[test]
    fn zone_outage_replaces_unless_balance_is_strict() {
        let mut all = set(3);
        all[1] = all[1]
            .clone()
            .powered(DesiredPower::Running, PowerState::Stopped);
        all[1].health_state = HealthState::Unknown;
        let s = spec(3, RepairAction::Restart);
        let plan = plan_repairs(&s, &RepairStatus::default(), &all, &zones(&["2"]), at(5));
        assert_eq!(ids(&plan), ["web_1"]);
        assert_eq!(plan.repairs[0].action, RepairAction::Replace);
        assert_eq!(plan.repairs[0].reason, "zone 2 is down");
        let mut strict = s.clone();
        strict.zone_balance = true;
        let plan = plan_repairs(
            &strict,
            &RepairStatus::default(),
            &all,
            &zones(&["2"]),
            at(5),
        );
        assert!(plan.repairs.is_empty());
        assert!(plan.waiting[0].1.contains("strict"));
    }
}
