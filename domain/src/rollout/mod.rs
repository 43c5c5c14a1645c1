//! Model versions rolled out to instances: the change between two versions, the plan of
//! batches, the health gates and each instance's step; [`step()`] (in `step.rs`) decides one
//! step of a running rollout.
//!
//! Rules (Azure's rolling upgrade, ../shared/reference/scale-set-semantics.md b.3, plus AWS
//! instance refresh's checkpoints and bake time):
//! - batch size `B = max(1, ⌊capacity × max_batch_instance_percent / 100⌋)`;
//! - the queue is every active instance not on the target version; instances protected from
//!   scale-set actions are skipped, and so are those being deleted; with
//!   `prioritize_unhealthy_instances` unhealthy ones go first;
//! - batches hold one zone's instances (zones in name order, or the zones with unhealthy
//!   instances first when prioritizing) unless `enable_cross_zone_upgrade`, which
//!   interleaves zones so each batch spans them;
//! - a canary (`canary_instances > 0`) is a first batch of that many (within the first
//!   zone unless cross-zone), after which the rollout waits for approval; a checkpoint
//!   pauses after the first batch that brings the upgraded share to its percentage;
//! - Automatic mode and manual upgrades of chosen instances are one batch, without gates;
//! - what an instance undergoes follows from the change: nothing but tags → `relabel` (no
//!   disruption, applied at once); anything else → `reimage` in place, or `replace` with
//!   surge (the replacement is created first; the old instance leaves once it serves);
//! - gates count instances that should run but do not serve (unhealthy, failed, or not
//!   running and not in transition); before each batch over the whole set against
//!   `max_unhealthy_instance_percent`, after each batch (and while baking) over the
//!   instances this rollout upgraded against `max_unhealthy_upgraded_instance_percent`,
//!   both in percent of the capacity and breached only when strictly above.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::instance::{DesiredPower, HealthState, Instance, PowerState, ProvisioningState};
use crate::scale_set::{Model, RollingPolicy, UpgradeMode};

mod step;

pub use step::{
    StepInput, StepPlan, out_of_service_limit, policy_change_refused, release_retiring, step,
};

/// The boot time assumed for the expected duration before any was measured.
pub const DEFAULT_BOOT_SECONDS: u32 = 30;

/// One field that differs between two model versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldChange {
    /// `image`, `vcpus`, `tags.env`, …
    pub field: String,
    /// `null` when the field was absent.
    pub from: Value,
    pub to: Value,
}

/// The fields of `to` that differ from `from`, in field order; tags one by one.
///
/// User data is compared by content but reported as its digest (`{"length","sha256"}`, or
/// `null`): a comparison never shows the user data itself.
pub fn diff(from: &Model, to: &Model) -> Vec<FieldChange> {
    let (Ok(Value::Object(mut a)), Ok(Value::Object(mut b))) =
        (serde_json::to_value(from), serde_json::to_value(to))
    else {
        return Vec::new();
    };
    for (fields, model) in [(&mut a, from), (&mut b, to)] {
        fields.remove("user_data_length");
        fields.remove("user_data_sha256");
        let digest = model
            .user_data
            .as_deref()
            .map(crate::secret::UserDataDigest::of);
        fields.insert(
            "user_data".into(),
            serde_json::to_value(digest).unwrap_or(Value::Null),
        );
    }
    let mut changes = Vec::new();
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let (x, y) = (a.get(key), b.get(key));
        if x == y {
            continue;
        }
        if key == "tags" {
            let empty = serde_json::Map::new();
            let tx = x.and_then(Value::as_object).unwrap_or(&empty);
            let ty = y.and_then(Value::as_object).unwrap_or(&empty);
            let tag_keys: BTreeSet<&String> = tx.keys().chain(ty.keys()).collect();
            for tag in tag_keys.into_iter().filter(|t| tx.get(*t) != ty.get(*t)) {
                changes.push(FieldChange {
                    field: format!("tags.{tag}"),
                    from: tx.get(tag).cloned().unwrap_or(Value::Null),
                    to: ty.get(tag).cloned().unwrap_or(Value::Null),
                });
            }
            continue;
        }
        changes.push(FieldChange {
            field: key.clone(),
            from: x.cloned().unwrap_or(Value::Null),
            to: y.cloned().unwrap_or(Value::Null),
        });
    }
    changes
}

/// The model versions retention may delete: all but the newest `keep` of `versions`, and
/// never `current` nor one still `in_use` (an instance on it, an active rollout's source or
/// target — what a rollback would go back to).
pub fn prunable_versions(
    versions: &[u32],
    current: u32,
    in_use: &BTreeSet<u32>,
    keep: u32,
) -> Vec<u32> {
    let mut sorted = versions.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted
        .into_iter()
        .skip(keep as usize)
        .filter(|v| *v != current && !in_use.contains(v))
        .collect()
}

/// What moving an instance to the target version takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UpgradeAction {
    /// Drained, its disk rebuilt from the target model, booted again in place.
    Reimage,
    /// A replacement on the target model is created first; the instance leaves once the
    /// replacement serves (surge).
    Replace,
    /// The models differ in tags only (or not at all): the record moves, the VM is untouched.
    Relabel,
}

impl UpgradeAction {
    /// What `changes` take, with or without surge.
    pub fn for_changes(changes: &[FieldChange], surge: bool) -> Self {
        if changes.iter().all(|c| c.field.starts_with("tags.")) {
            Self::Relabel
        } else if surge {
            Self::Replace
        } else {
            Self::Reimage
        }
    }
}

/// Why a rollout exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RolloutKind {
    /// The upgrade policy (automatic or rolling) moving the set to a new model.
    Upgrade,
    /// A person upgrading chosen instances.
    Manual,
    /// Back to an earlier version, asked by a person or started by a breached gate.
    Rollback,
}

/// Azure's `runningStatus.code`, plus `paused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    RollingForward,
    /// By a person, a checkpoint, the canary, or a gate waiting; `hold` says which.
    Paused,
    Completed,
    /// Stopped by a breached gate (and rolled back when the policy says so).
    Faulted,
    Cancelled,
}

impl RolloutState {
    pub fn is_active(self) -> bool {
        matches!(self, Self::RollingForward | Self::Paused)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RollingForward => "rolling_forward",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Faulted => "faulted",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::RollingForward,
            Self::Paused,
            Self::Completed,
            Self::Faulted,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// One instance in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedInstance {
    pub id: String,
    pub zone: String,
    pub fault_domain: u32,
    pub from_version: u32,
    pub action: UpgradeAction,
    /// Unhealthy when planned (first with `prioritize_unhealthy_instances`).
    #[serde(default)]
    pub unhealthy: bool,
}

/// An instance the rollout leaves alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Skipped {
    pub id: String,
    pub zone: String,
    pub model_version: u32,
    pub reason: String,
}

/// Where a rollout stops after a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchPause {
    /// `canary` or `checkpoint 50 %`.
    pub reason: String,
    /// Resume by itself after this long; `None`: wait for approval.
    pub wait_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Batch {
    /// 1-based.
    pub number: u32,
    /// The zone all its instances are in (`None`: it spans zones).
    pub zone: Option<String>,
    pub instances: Vec<PlannedInstance>,
    #[serde(default)]
    pub canary: bool,
    #[serde(default)]
    pub pause_after: Option<BatchPause>,
}

/// What a rollout will do, instance by instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutPlan {
    pub target_version: u32,
    pub mode: UpgradeMode,
    /// The largest batch.
    pub batch_size: u32,
    pub batches: Vec<Batch>,
    /// Instances whose model differs in tags only: moved at once, untouched.
    pub relabel: Vec<PlannedInstance>,
    pub skipped: Vec<Skipped>,
    /// Field changes from each version in use to the target, by version (the number as
    /// text: a JSON object key, which also reads back through the flattened
    /// [`RolloutView`]).
    pub changes: BTreeMap<String, Vec<FieldChange>>,
    /// The boot time the estimate uses (measured, or [`DEFAULT_BOOT_SECONDS`]).
    pub boot_seconds: u32,
    /// Batches × boot time, pauses, timed checkpoints and the bake time; approvals not
    /// counted.
    pub expected_seconds: u64,
    /// Pauses that wait for a person.
    pub approvals: u32,
}

impl RolloutPlan {
    /// Instances the batches hold.
    pub fn batched(&self) -> usize {
        self.batches.iter().map(|b| b.instances.len()).sum()
    }

    /// The batch holding `id` (1-based number).
    pub fn batch_of(&self, id: &str) -> Option<u32> {
        self.batches
            .iter()
            .find(|b| b.instances.iter().any(|i| i.id == id))
            .map(|b| b.number)
    }
}

/// `max(1, ⌊capacity × percent / 100⌋)`.
pub fn batch_size(capacity: u32, percent: u32) -> u32 {
    (u64::from(capacity) * u64::from(percent) / 100).max(1) as u32
}

pub struct PlanInput<'a> {
    pub capacity: u32,
    pub instances: &'a [Instance],
    pub target_version: u32,
    /// The models of the versions in use and of the target.
    pub models: &'a BTreeMap<u32, Model>,
    pub mode: UpgradeMode,
    pub policy: &'a RollingPolicy,
    /// A manual upgrade's chosen instances (`None`: every out-of-date one).
    pub only: Option<&'a BTreeSet<String>>,
    /// Measured boot time (creation → healthy), if any.
    pub boot_seconds: Option<u32>,
}

/// Whether an instance counts against a gate: it should run but does not serve.
pub fn counts_unhealthy(i: &Instance) -> bool {
    if !i.is_active() || i.retiring || i.desired_power != DesiredPower::Running {
        return false;
    }
    match i.provisioning_state {
        ProvisioningState::Failed => true,
        ProvisioningState::Creating => false,
        _ => {
            i.health_state == HealthState::Unhealthy
                || (i.power_state != PowerState::Running
                    && i.power_state.settled() == i.power_state
                    && !i.in_transition())
        }
    }
}

/// Turns the set, its instances and the policy into batches.
pub fn plan(input: PlanInput<'_>) -> RolloutPlan {
    let PlanInput {
        capacity,
        instances,
        target_version,
        models,
        mode,
        policy,
        only,
        boot_seconds,
    } = input;
    let target = models.get(&target_version);
    let mut changes: BTreeMap<String, Vec<FieldChange>> = BTreeMap::new();
    let mut queue: Vec<PlannedInstance> = Vec::new();
    let mut relabel = Vec::new();
    let mut skipped = Vec::new();
    let surge = mode == UpgradeMode::Rolling && policy.max_surge;
    for i in instances {
        if i.retiring {
            continue;
        }
        if only.is_some_and(|chosen| !chosen.contains(&i.id)) {
            continue;
        }
        let skip = |reason: String| Skipped {
            id: i.id.clone(),
            zone: i.zone.clone(),
            model_version: i.model_version,
            reason,
        };
        if i.model_version == target_version {
            skipped.push(skip(format!("already on version {target_version}")));
            continue;
        }
        if !i.is_active() {
            skipped.push(skip("being deleted".into()));
            continue;
        }
        if i.protect_from_scale_set_actions {
            skipped.push(skip("protected from scale-set actions".into()));
            continue;
        }
        let change = changes
            .entry(i.model_version.to_string())
            .or_insert_with(|| match (models.get(&i.model_version), target) {
                (Some(from), Some(to)) => diff(from, to),
                _ => vec![FieldChange {
                    field: "model".into(),
                    from: Value::Null,
                    to: Value::Null,
                }],
            });
        let planned = PlannedInstance {
            id: i.id.clone(),
            zone: i.zone.clone(),
            fault_domain: i.fault_domain,
            from_version: i.model_version,
            action: UpgradeAction::for_changes(change, surge),
            unhealthy: counts_unhealthy(i),
        };
        if planned.action == UpgradeAction::Relabel {
            relabel.push(planned);
        } else {
            queue.push(planned);
        }
    }
    let ordinal: BTreeMap<&str, u64> = instances
        .iter()
        .map(|i| (i.id.as_str(), i.ordinal))
        .collect();
    let prioritize = mode == UpgradeMode::Rolling && policy.prioritize_unhealthy_instances;
    queue.sort_by_key(|p| {
        (
            prioritize && !p.unhealthy,
            ordinal.get(p.id.as_str()).copied(),
        )
    });

    let rolling = mode == UpgradeMode::Rolling;
    let size = if rolling {
        batch_size(capacity, policy.max_batch_instance_percent)
    } else {
        queue.len().max(1) as u32
    };
    let mut batches: Vec<Batch> = Vec::new();
    if !queue.is_empty() {
        if !rolling {
            batches.push(Batch {
                number: 1,
                zone: None,
                instances: queue,
                canary: false,
                pause_after: None,
            });
        } else {
            let cross = policy.enable_cross_zone_upgrade;
            let mut groups = zone_groups(queue, cross, prioritize);
            if policy.canary_instances > 0 {
                let first = &mut groups[0].1;
                let n = (policy.canary_instances as usize).min(first.len());
                let canary: Vec<PlannedInstance> = first.drain(..n).collect();
                batches.push(Batch {
                    number: 1,
                    zone: if cross { None } else { groups[0].0.clone() },
                    instances: canary,
                    canary: true,
                    pause_after: Some(BatchPause {
                        reason: "canary".into(),
                        wait_seconds: None,
                    }),
                });
            }
            for (zone, members) in groups {
                for chunk in members.chunks(size as usize) {
                    batches.push(Batch {
                        number: batches.len() as u32 + 1,
                        zone: zone.clone(),
                        instances: chunk.to_vec(),
                        canary: false,
                        pause_after: None,
                    });
                }
            }
            place_checkpoints(&mut batches, &policy.checkpoints);
        }
    }
    // The last batch needs no pause after it: the rollout ends (or bakes).
    if let Some(last) = batches.last_mut()
        && !last.canary
    {
        last.pause_after = None;
    }
    let boot = boot_seconds.unwrap_or(DEFAULT_BOOT_SECONDS);
    let pauses = if rolling {
        u64::from(policy.pause_time_between_batches_seconds)
            * batches.len().saturating_sub(1) as u64
    } else {
        0
    };
    let timed: u64 = batches
        .iter()
        .filter_map(|b| b.pause_after.as_ref()?.wait_seconds)
        .map(u64::from)
        .sum();
    let approvals = batches
        .iter()
        .filter(|b| {
            b.pause_after
                .as_ref()
                .is_some_and(|p| p.wait_seconds.is_none())
        })
        .count() as u32;
    let bake = if rolling && !batches.is_empty() {
        u64::from(policy.bake_time_seconds)
    } else {
        0
    };
    RolloutPlan {
        target_version,
        mode,
        batch_size: size,
        expected_seconds: batches.len() as u64 * u64::from(boot) + pauses + timed + bake,
        batches,
        relabel,
        skipped,
        changes,
        boot_seconds: boot,
        approvals,
    }
}

/// The queue grouped into zones (one group spanning zones when cross-zone), in upgrade order.
fn zone_groups(
    queue: Vec<PlannedInstance>,
    cross: bool,
    prioritize: bool,
) -> Vec<(Option<String>, Vec<PlannedInstance>)> {
    let mut by_zone: BTreeMap<String, Vec<PlannedInstance>> = BTreeMap::new();
    for p in queue {
        by_zone.entry(p.zone.clone()).or_default().push(p);
    }
    let mut zones: Vec<(String, Vec<PlannedInstance>)> = by_zone.into_iter().collect();
    if prioritize {
        // Zones with the most unhealthy instances first (stable: then by name).
        zones.sort_by_key(|(_, m)| std::cmp::Reverse(m.iter().filter(|p| p.unhealthy).count()));
    }
    if !cross {
        return zones.into_iter().map(|(z, m)| (Some(z), m)).collect();
    }
    // Interleave the zones; unhealthy instances (already first in each zone) stay first.
    let mut lanes: Vec<std::collections::VecDeque<PlannedInstance>> =
        zones.into_iter().map(|(_, m)| m.into()).collect();
    let mut mixed = Vec::new();
    for wanted in [true, false] {
        loop {
            let mut took = false;
            for lane in &mut lanes {
                if lane
                    .front()
                    .is_some_and(|p| p.unhealthy == wanted || !prioritize)
                {
                    mixed.extend(lane.pop_front());
                    took = true;
                }
            }
            if !took {
                break;
            }
        }
        if !prioritize {
            break;
        }
    }
    vec![(None, mixed)]
}

/// Marks the first batch that brings the upgraded share to each checkpoint.
fn place_checkpoints(batches: &mut [Batch], checkpoints: &[crate::scale_set::Checkpoint]) {
    let total: usize = batches.iter().map(|b| b.instances.len()).sum();
    if total == 0 {
        return;
    }
    let mut done = 0usize;
    let mut next = checkpoints.iter().peekable();
    for batch in batches.iter_mut() {
        done += batch.instances.len();
        let mut reached: Option<BatchPause> = None;
        while let Some(c) = next.next_if(|c| done * 100 >= c.percent as usize * total) {
            let wait = match &reached {
                // Several checkpoints at one batch: approval wins, else the longest wait.
                Some(p) => p.wait_seconds.zip(c.wait_seconds).map(|(a, b)| a.max(b)),
                None => c.wait_seconds,
            };
            reached = Some(BatchPause {
                reason: format!("checkpoint {} %", c.percent),
                wait_seconds: wait,
            });
        }
        if let Some(pause) = reached
            && batch.pause_after.is_none()
        {
            batch.pause_after = Some(pause);
        }
    }
}

/// A gate's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GateCheck {
    /// `before` a batch (whole set), `after` a batch or `bake` (upgraded instances).
    pub gate: String,
    /// The batch it was checked around (0 while baking).
    pub batch: u32,
    pub passed: bool,
    pub unhealthy: u32,
    /// The capacity the share is taken of.
    pub of: u32,
    pub limit_percent: u32,
    pub detail: String,
    pub at: DateTime<Utc>,
}

fn gate(
    name: &str,
    batch: u32,
    unhealthy: &[&Instance],
    capacity: u32,
    limit: u32,
    now: DateTime<Utc>,
) -> GateCheck {
    let of = capacity.max(1);
    let count = unhealthy.len() as u32;
    let passed = u64::from(count) * 100 <= u64::from(limit) * u64::from(of);
    let names: Vec<&str> = unhealthy.iter().take(5).map(|i| i.id.as_str()).collect();
    let detail = format!(
        "{count} of {of} ({:.0} %) {}, limit {limit} %{}",
        f64::from(count) * 100.0 / f64::from(of),
        if name == "before" {
            "unhealthy in the set"
        } else {
            "upgraded instances unhealthy"
        },
        if names.is_empty() {
            String::new()
        } else {
            format!(": {}", names.join(", "))
        }
    );
    GateCheck {
        gate: name.into(),
        batch,
        passed,
        unhealthy: count,
        of,
        limit_percent: limit,
        detail,
        at: now,
    }
}

/// Before a batch: unhealthy instances of the whole set against
/// `max_unhealthy_instance_percent`.
pub fn gate_before(
    batch: u32,
    instances: &[Instance],
    capacity: u32,
    policy: &RollingPolicy,
    now: DateTime<Utc>,
) -> GateCheck {
    let unhealthy: Vec<&Instance> = instances.iter().filter(|i| counts_unhealthy(i)).collect();
    gate(
        "before",
        batch,
        &unhealthy,
        capacity,
        policy.max_unhealthy_instance_percent,
        now,
    )
}

/// After a batch (or while baking): the rollout's upgraded instances that failed or are
/// unhealthy against `max_unhealthy_upgraded_instance_percent`.
pub fn gate_after(
    name: &str,
    batch: u32,
    upgraded: &[&Instance],
    failed: usize,
    capacity: u32,
    policy: &RollingPolicy,
    now: DateTime<Utc>,
) -> GateCheck {
    let unhealthy: Vec<&Instance> = upgraded
        .iter()
        .copied()
        .filter(|i| counts_unhealthy(i))
        .collect();
    let mut check = gate(
        name,
        batch,
        &unhealthy,
        capacity,
        policy.max_unhealthy_upgraded_instance_percent,
        now,
    );
    if failed > 0 {
        let count = check.unhealthy + failed as u32;
        check.unhealthy = count;
        check.passed = u64::from(count) * 100
            <= u64::from(policy.max_unhealthy_upgraded_instance_percent) * u64::from(check.of);
        check.detail = format!("{failed} failed to upgrade; {}", check.detail);
    }
    check
}

/// Where one instance of a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum InstanceStep {
    /// In a batch not started yet.
    Pending,
    /// Out of the pool, its requests finishing before the update.
    Draining,
    /// Being reimaged, or its replacement being created.
    Updating,
    /// Running the target model, not yet found healthy.
    WaitingHealthy,
    Succeeded,
    /// Did not come back healthy in time, or the update failed.
    Failed,
    /// Deleted meanwhile (scale-in, a person).
    Removed,
    /// Moved back to the version it ran by a rollback.
    RolledBack,
}

impl InstanceStep {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Removed | Self::RolledBack
        )
    }
}

/// One instance's progress in a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceProgress {
    pub id: String,
    pub batch: u32,
    pub action: UpgradeAction,
    pub from_version: u32,
    pub step: InstanceStep,
    /// With surge: the instance created to replace it.
    #[serde(default)]
    pub replacement: Option<String>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub detail: Option<String>,
}

/// The step an instance whose update was started has reached, read from its record (and,
/// with surge, its replacement's).
pub fn observe_step(
    progress: &InstanceProgress,
    record: Option<&Instance>,
    replacement: Option<&Instance>,
    target_version: u32,
    timeout: chrono::Duration,
    now: DateTime<Utc>,
) -> (InstanceStep, Option<String>) {
    let late = progress.started_at.is_some_and(|s| now - s > timeout);
    let late_detail = || {
        format!(
            "not healthy within {} s of the start of its update",
            timeout.num_seconds()
        )
    };
    // The instance that has to come up: the replacement with surge, else the instance.
    let subject = if progress.action == UpgradeAction::Replace {
        let Some(old) = record else {
            return (InstanceStep::Removed, Some("deleted meanwhile".into()));
        };
        if !old.is_active() && replacement.is_none() {
            return (InstanceStep::Removed, Some("deleted meanwhile".into()));
        }
        match replacement {
            None if late => return (InstanceStep::Failed, Some(late_detail())),
            None => return (InstanceStep::Updating, None),
            Some(r) => r,
        }
    } else {
        match record {
            None => return (InstanceStep::Removed, Some("deleted meanwhile".into())),
            Some(r) if !r.is_active() => {
                return (InstanceStep::Removed, Some("deleted meanwhile".into()));
            }
            Some(r) => r,
        }
    };
    let step = if subject.provisioning_state == ProvisioningState::Failed {
        return (
            InstanceStep::Failed,
            Some(
                subject
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the update failed".into()),
            ),
        );
    } else if subject.model_version == target_version
        && subject.provisioning_state == ProvisioningState::Succeeded
        && subject.pending.is_none()
        && subject.power_state == PowerState::Running
        && subject.health_state == HealthState::Healthy
    {
        return (InstanceStep::Succeeded, None);
    } else if subject.pending.is_some() {
        InstanceStep::Draining
    } else if subject.provisioning_state.is_transitional() {
        InstanceStep::Updating
    } else {
        InstanceStep::WaitingHealthy
    };
    if late {
        (InstanceStep::Failed, Some(late_detail()))
    } else {
        (step, None)
    }
}

/// Counts of a rollout's instances by outcome (Azure's `progress`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Progress {
    pub successful: u32,
    pub failed: u32,
    pub in_progress: u32,
    pub pending: u32,
    pub skipped: u32,
}

/// Why an active rollout is not moving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Hold {
    /// Paused by a person: `resume` continues.
    Paused { by: String },
    /// After the canary or at a checkpoint: `resume` approves; with `until`, it resumes by
    /// itself then.
    Approval {
        reason: String,
        #[serde(default)]
        until: Option<DateTime<Utc>>,
    },
    /// The pause between batches.
    Between { until: DateTime<Utc> },
    /// The pre-batch gate failed: re-checked until `until`, then the rollout faults.
    Gate {
        until: DateTime<Utc>,
        detail: String,
    },
    /// Watching the upgraded instances before completing.
    Bake { until: DateTime<Utc> },
}

/// One run of moving instances to a model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rollout {
    pub id: i64,
    pub scale_set: String,
    pub kind: RolloutKind,
    pub state: RolloutState,
    /// The set's model version when the rollout started.
    pub from_version: u32,
    pub target_version: u32,
    /// The policy it runs under (rolling fields apply from the next batch when changed).
    pub policy: RollingPolicy,
    pub plan: RolloutPlan,
    /// The batch in progress, or the next one (1-based; past the last once every batch ran).
    pub current_batch: u32,
    /// Whether the current batch's updates were started.
    #[serde(default)]
    pub batch_started: bool,
    pub instances: BTreeMap<String, InstanceProgress>,
    pub gates: Vec<GateCheck>,
    #[serde(default)]
    pub hold: Option<Hold>,
    /// The outcome, or why it faulted.
    #[serde(default)]
    pub message: Option<String>,
    /// The rollout this one rolls back, or the rollback that undid this one.
    #[serde(default)]
    pub rollback_of: Option<i64>,
    #[serde(default)]
    pub rolled_back_by: Option<i64>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    pub generation: i64,
}

impl Rollout {
    /// Ends the rollout in `state` (completed, faulted or cancelled) with `message`: its hold
    /// lifted, finished and updated `now`. The engine's step and a person's cancel or
    /// rollback end a rollout this one way.
    pub fn finish(&mut self, state: RolloutState, message: String, now: DateTime<Utc>) {
        self.state = state;
        self.hold = None;
        self.message = Some(message);
        self.finished_at = Some(now);
        self.updated_at = now;
    }

    pub fn progress(&self) -> Progress {
        let mut p = Progress {
            skipped: self.plan.skipped.len() as u32,
            ..Progress::default()
        };
        for i in self.instances.values() {
            match i.step {
                InstanceStep::Succeeded => p.successful += 1,
                InstanceStep::Failed | InstanceStep::RolledBack => p.failed += 1,
                InstanceStep::Pending => p.pending += 1,
                InstanceStep::Removed => p.skipped += 1,
                _ => p.in_progress += 1,
            }
        }
        p
    }

    /// Instances moved so far, in percent of the planned ones (100 with nothing to do).
    pub fn percent_done(&self) -> u32 {
        let total = self.instances.len();
        if total == 0 {
            return 100;
        }
        let done = self
            .instances
            .values()
            .filter(|i| i.step.is_finished())
            .count();
        (done * 100 / total) as u32
    }
}

/// A rollout as the API lists it: the record and its counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutView {
    #[serde(flatten)]
    pub rollout: Rollout,
    pub progress: Progress,
    pub percent_done: u32,
}

impl From<Rollout> for RolloutView {
    fn from(rollout: Rollout) -> Self {
        Self {
            progress: rollout.progress(),
            percent_done: rollout.percent_done(),
            rollout,
        }
    }
}

/// The progress entries of a fresh rollout: every planned instance pending in its batch
/// (relabelled ones done at once).
pub fn initial_progress(
    plan: &RolloutPlan,
    now: DateTime<Utc>,
) -> BTreeMap<String, InstanceProgress> {
    let mut out = BTreeMap::new();
    for b in &plan.batches {
        for p in &b.instances {
            out.insert(
                p.id.clone(),
                InstanceProgress {
                    id: p.id.clone(),
                    batch: b.number,
                    action: p.action,
                    from_version: p.from_version,
                    step: InstanceStep::Pending,
                    replacement: None,
                    started_at: None,
                    finished_at: None,
                    detail: None,
                },
            );
        }
    }
    for p in &plan.relabel {
        out.insert(
            p.id.clone(),
            InstanceProgress {
                id: p.id.clone(),
                batch: 0,
                action: UpgradeAction::Relabel,
                from_version: p.from_version,
                step: InstanceStep::Succeeded,
                replacement: None,
                started_at: Some(now),
                finished_at: Some(now),
                detail: Some("the models differ in tags only".into()),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::fixtures::instance;

    #[test]
    fn a_rollout_view_reads_back_what_it_wrote() {
        let instances = fleet(4, &["1", "2"]);
        let plan = plan_of(&instances, &rolling(50), UpgradeMode::Rolling);
        let now = DateTime::UNIX_EPOCH;
        let view = RolloutView::from(Rollout {
            id: 3,
            scale_set: "web".into(),
            kind: RolloutKind::Upgrade,
            state: RolloutState::RollingForward,
            from_version: 1,
            target_version: 2,
            policy: rolling(50),
            instances: initial_progress(&plan, now),
            plan,
            current_batch: 1,
            batch_started: false,
            gates: Vec::new(),
            hold: Some(Hold::Between { until: now }),
            message: None,
            rollback_of: None,
            rolled_back_by: None,
            created_by: "test".into(),
            created_at: now,
            updated_at: now,
            finished_at: None,
            generation: 1,
        });
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["state"], "rolling_forward");
        assert_eq!(json["progress"]["pending"], 4);
        let back: RolloutView = serde_json::from_value(json).unwrap();
        assert_eq!(back, view);
    }

    fn model(image: &str) -> Model {
        Model {
            image: image.into(),
            vcpus: 2,
            memory_mib: 2048,
            disk_gib: 10,
            data_disks: Vec::new(),
            user_data: None,
            user_data_length: None,
            user_data_sha256: None,
            tags: BTreeMap::new(),
            app_port: 80,
        }
    }

    fn models() -> BTreeMap<u32, Model> {
        BTreeMap::from([(1, model("debian-12")), (2, model("ubuntu-24.04"))])
    }

    /// `n` instances on version 1 spread round-robin over `zones`.
    fn fleet(n: u64, zones: &[&str]) -> Vec<Instance> {
        (0..n)
            .map(|o| instance("web", o, zones[o as usize % zones.len()], 0))
            .collect()
    }

    fn rolling(percent: u32) -> RollingPolicy {
        RollingPolicy {
            max_batch_instance_percent: percent,
            max_unhealthy_instance_percent: 100,
            ..RollingPolicy::default()
        }
    }

    fn plan_of(instances: &[Instance], policy: &RollingPolicy, mode: UpgradeMode) -> RolloutPlan {
        plan(PlanInput {
            capacity: instances.len() as u32,
            instances,
            target_version: 2,
            models: &models(),
            mode,
            policy,
            only: None,
            boot_seconds: Some(20),
        })
    }

    fn sizes(p: &RolloutPlan) -> Vec<usize> {
        p.batches.iter().map(|b| b.instances.len()).collect()
    }

    #[test]
    fn batch_size_is_a_floor_of_at_least_one() {
        for (capacity, percent, want) in [
            (10, 20, 2),
            (1, 20, 1),
            (4, 20, 1),
            (5, 20, 1),
            (9, 20, 1),
            (15, 20, 3),
            (100, 5, 5),
            (10_000, 20, 2_000),
            (3, 100, 3),
            (0, 20, 1),
        ] {
            assert_eq!(
                batch_size(capacity, percent),
                want,
                "{capacity} × {percent} %"
            );
        }
    }

    /// Instances, zones, batch percent, cross-zone, the batch sizes wanted.
    type Case = (u64, &'static [&'static str], u32, bool, &'static [usize]);

    #[test]
    fn batches_for_set_sizes_and_zone_layouts() {
        // (instances, zones, percent, cross-zone, batch sizes)
        let cases: &[Case] = &[
            (10, &["1"], 20, false, &[2, 2, 2, 2, 2]),
            (10, &["1", "2"], 20, false, &[2, 2, 1, 2, 2, 1]),
            (10, &["1", "2"], 20, true, &[2, 2, 2, 2, 2]),
            (9, &["1", "2", "3"], 20, false, &[1, 1, 1, 1, 1, 1, 1, 1, 1]),
            (9, &["1", "2", "3"], 50, false, &[3, 3, 3]),
            (3, &["1"], 100, false, &[3]),
            (1, &["1"], 20, false, &[1]),
            (100, &["1", "2", "3"], 20, false, &[20, 14, 20, 13, 20, 13]),
            (100, &["1", "2", "3"], 20, true, &[20, 20, 20, 20, 20]),
        ];
        for (n, zones, percent, cross, want) in cases {
            let instances = fleet(*n, zones);
            let mut policy = rolling(*percent);
            policy.enable_cross_zone_upgrade = *cross;
            let p = plan_of(&instances, &policy, UpgradeMode::Rolling);
            assert_eq!(
                sizes(&p),
                *want,
                "{n} over {zones:?} at {percent} %, cross {cross}"
            );
            assert_eq!(p.batched(), *n as usize);
            if !cross {
                for b in &p.batches {
                    assert!(b.instances.iter().all(|i| Some(&i.zone) == b.zone.as_ref()));
                }
            }
            // Every instance exactly once, numbered from 1.
            let ids: BTreeSet<&str> = p
                .batches
                .iter()
                .flat_map(|b| b.instances.iter().map(|i| i.id.as_str()))
                .collect();
            assert_eq!(ids.len(), *n as usize);
            assert!(
                p.batches
                    .iter()
                    .enumerate()
                    .all(|(k, b)| b.number == k as u32 + 1)
            );
        }
    }

    #[test]
    fn cross_zone_batches_span_zones() {
        let instances = fleet(9, &["1", "2", "3"]);
        let mut policy = rolling(34);
        policy.enable_cross_zone_upgrade = true;
        let p = plan_of(&instances, &policy, UpgradeMode::Rolling);
        assert_eq!(sizes(&p), [3, 3, 3]);
        for b in &p.batches {
            assert_eq!(b.zone, None);
            let zones: BTreeSet<&str> = b.instances.iter().map(|i| i.zone.as_str()).collect();
            assert_eq!(zones.len(), 3, "{b:?}");
        }
    }

    #[test]
    fn protected_up_to_date_and_deleting_instances_are_skipped_with_a_reason() {
        let mut instances = fleet(6, &["1"]);
        instances[0] = instances[0].clone().guarded();
        instances[1].model_version = 2;
        instances[2] = instances[2].clone().in_state(ProvisioningState::Deleting);
        let p = plan_of(&instances, &rolling(50), UpgradeMode::Rolling);
        let reasons: BTreeMap<&str, &str> = p
            .skipped
            .iter()
            .map(|s| (s.id.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(reasons["web_0"], "protected from scale-set actions");
        assert_eq!(reasons["web_1"], "already on version 2");
        assert_eq!(reasons["web_2"], "being deleted");
        assert_eq!(p.batched(), 3);
        assert_eq!(sizes(&p), [3]);
    }

    #[test]
    fn unhealthy_instances_go_first_when_prioritized() {
        let mut instances = fleet(10, &["1", "2"]);
        instances[7] = instances[7].clone().unhealthy();
        instances[9] = instances[9].clone().unhealthy();
        let mut policy = rolling(20);
        let plain = plan_of(&instances, &policy, UpgradeMode::Rolling);
        assert_eq!(plain.batches[0].instances[0].id, "web_0");
        policy.prioritize_unhealthy_instances = true;
        let p = plan_of(&instances, &policy, UpgradeMode::Rolling);
        // Zone 2 holds both unhealthy ones: it goes first, and they lead its first batch.
        assert_eq!(p.batches[0].zone.as_deref(), Some("2"));
        let first: Vec<&str> = p.batches[0]
            .instances
            .iter()
            .map(|i| i.id.as_str())
            .collect();
        assert_eq!(first, ["web_7", "web_9"]);
        assert!(p.batches[0].instances.iter().all(|i| i.unhealthy));
        // Cross-zone: unhealthy first as well.
        policy.enable_cross_zone_upgrade = true;
        let p = plan_of(&instances, &policy, UpgradeMode::Rolling);
        let first: Vec<&str> = p.batches[0]
            .instances
            .iter()
            .map(|i| i.id.as_str())
            .collect();
        assert_eq!(first, ["web_7", "web_9"]);
    }

    #[test]
    fn canary_then_checkpoints_then_bake_shape_the_plan() {
        let instances = fleet(20, &["1"]);
        let mut policy = rolling(20);
        policy.canary_instances = 1;
        policy.checkpoints = vec![
            crate::scale_set::Checkpoint {
                percent: 50,
                wait_seconds: Some(60),
            },
            crate::scale_set::Checkpoint {
                percent: 80,
                wait_seconds: None,
            },
        ];
        policy.pause_time_between_batches_seconds = 10;
        policy.bake_time_seconds = 300;
        let p = plan_of(&instances, &policy, UpgradeMode::Rolling);
        assert_eq!(sizes(&p), [1, 4, 4, 4, 4, 3]);
        assert!(p.batches[0].canary);
        assert_eq!(p.batches[0].pause_after.as_ref().unwrap().reason, "canary");
        // 1+4+4+4 = 13 ≥ 50 % of 20; 1+4+4+4+4 = 17 ≥ 80 %.
        let pauses: Vec<Option<&str>> = p
            .batches
            .iter()
            .map(|b| b.pause_after.as_ref().map(|p| p.reason.as_str()))
            .collect();
        assert_eq!(
            pauses,
            [
                Some("canary"),
                None,
                None,
                Some("checkpoint 50 %"),
                Some("checkpoint 80 %"),
                None
            ]
        );
        assert_eq!(p.approvals, 2);
        // 6 batches × 20 s boot + 5 pauses × 10 s + 60 s checkpoint + 300 s bake.
        assert_eq!(p.expected_seconds, 120 + 50 + 60 + 300);
    }

    #[test]
    fn automatic_and_manual_are_one_batch_and_surge_replaces() {
        let instances = fleet(10, &["1", "2"]);
        let p = plan_of(&instances, &rolling(20), UpgradeMode::Automatic);
        assert_eq!(sizes(&p), [10]);
        assert!(
            p.batches[0]
                .instances
                .iter()
                .all(|i| i.action == UpgradeAction::Reimage)
        );
        let chosen: BTreeSet<String> = ["web_3".to_string(), "web_4".to_string()].into();
        let p = plan(PlanInput {
            capacity: 10,
            instances: &instances,
            target_version: 2,
            models: &models(),
            mode: UpgradeMode::Automatic,
            policy: &rolling(20),
            only: Some(&chosen),
            boot_seconds: None,
        });
        assert_eq!(sizes(&p), [2]);
        assert_eq!(p.boot_seconds, DEFAULT_BOOT_SECONDS);
        let mut surge = rolling(20);
        surge.max_surge = true;
        let p = plan_of(&instances, &surge, UpgradeMode::Rolling);
        assert!(
            p.batches
                .iter()
                .flat_map(|b| &b.instances)
                .all(|i| i.action == UpgradeAction::Replace)
        );
    }

    #[test]
    fn a_tags_only_change_relabels_without_batches() {
        let mut tagged = model("debian-12");
        tagged.tags.insert("team".into(), "web".into());
        let models = BTreeMap::from([(1, model("debian-12")), (2, tagged)]);
        let instances = fleet(4, &["1"]);
        let p = plan(PlanInput {
            capacity: 4,
            instances: &instances,
            target_version: 2,
            models: &models,
            mode: UpgradeMode::Rolling,
            policy: &rolling(20),
            only: None,
            boot_seconds: None,
        });
        assert!(p.batches.is_empty());
        assert_eq!(p.relabel.len(), 4);
        assert_eq!(p.expected_seconds, 0);
        assert_eq!(p.changes["1"][0].field, "tags.team");
    }

    #[test]
    fn retention_keeps_the_newest_current_and_used_versions() {
        let versions: Vec<u32> = (1..=10).collect();
        let in_use = BTreeSet::from([2, 7]);
        let mut pruned = prunable_versions(&versions, 10, &in_use, 3);
        pruned.sort_unstable();
        assert_eq!(
            pruned,
            [1, 3, 4, 5, 6],
            "8–10 are the newest three; 2 and 7 are in use"
        );
        assert!(prunable_versions(&versions, 10, &in_use, 50).is_empty());
        // The current version stays even when `keep` is 0 (it is always the newest).
        assert_eq!(prunable_versions(&[4, 5], 5, &BTreeSet::new(), 0), [4]);
    }

    #[test]
    fn diff_names_each_changed_field() {
        let a = model("debian-12");
        let mut b = model("ubuntu-24.04");
        b.vcpus = 4;
        b.user_data = Some("#cloud-config".into());
        b.tags.insert("env".into(), "prod".into());
        let fields: Vec<String> = diff(&a, &b).into_iter().map(|c| c.field).collect();
        assert_eq!(fields, ["image", "tags.env", "user_data", "vcpus"]);
        assert!(diff(&a, &a).is_empty());
        assert_eq!(diff(&a, &b)[0].from, Value::String("debian-12".into()));
        // User data is reported by its digest, never as written.
        let change = &diff(&a, &b)[2];
        assert_eq!(change.from, Value::Null);
        assert_eq!(change.to["length"], 13);
        assert_eq!(change.to["sha256"].as_str().unwrap().len(), 64);
        assert!(
            !serde_json::to_string(&diff(&a, &b))
                .unwrap()
                .contains("cloud-config")
        );
        let mut c = b.clone();
        c.user_data = Some("#cloud-config\n".into());
        assert_eq!(
            diff(&b, &c).len(),
            1,
            "a changed user data shows as a hash change"
        );
    }

    #[test]
    fn gates_breach_only_strictly_above_the_limit() {
        let now = DateTime::UNIX_EPOCH;
        let mut instances = fleet(10, &["1"]);
        instances[0] = instances[0].clone().unhealthy();
        instances[1] = instances[1].clone().unhealthy();
        let policy = RollingPolicy::default();
        // 2 of 10 = 20 %: not above 20 %.
        assert!(gate_before(1, &instances, 10, &policy, now).passed);
        instances[2] = instances[2].clone().unhealthy();
        let check = gate_before(1, &instances, 10, &policy, now);
        assert!(!check.passed);
        assert_eq!(check.unhealthy, 3);
        assert!(check.detail.contains("web_0"), "{}", check.detail);
        // After a batch: failed updates count as unhealthy upgraded instances.
        let upgraded: Vec<&Instance> = instances[3..5].iter().collect();
        let strict = RollingPolicy {
            max_unhealthy_upgraded_instance_percent: 10,
            ..RollingPolicy::default()
        };
        assert!(gate_after("after", 1, &upgraded, 1, 10, &strict, now).passed);
        assert!(!gate_after("after", 1, &upgraded, 2, 10, &strict, now).passed);
        // Stopped on purpose and initializing instances do not count.
        let mut quiet = fleet(3, &["1"]);
        quiet[0] = quiet[0]
            .clone()
            .powered(DesiredPower::Stopped, PowerState::Stopped);
        quiet[1] = quiet[1].clone().health(HealthState::Initializing, 0);
        assert!(!quiet.iter().any(counts_unhealthy));
    }

    #[test]
    fn an_instance_step_follows_its_record() {
        let now = DateTime::UNIX_EPOCH + chrono::Duration::seconds(100);
        let timeout = chrono::Duration::seconds(60);
        let progress = InstanceProgress {
            id: "web_0".into(),
            batch: 1,
            action: UpgradeAction::Reimage,
            from_version: 1,
            step: InstanceStep::Draining,
            replacement: None,
            started_at: Some(now - chrono::Duration::seconds(10)),
            finished_at: None,
            detail: None,
        };
        let mut record = instance("web", 0, "1", 0);
        record.model_version = 2;
        record.pending = Some(crate::instance::PendingAction::Reimage);
        let step = |r: Option<&Instance>, at| observe_step(&progress, r, None, 2, timeout, at).0;
        assert_eq!(step(Some(&record), now), InstanceStep::Draining);
        record.pending = None;
        record.provisioning_state = ProvisioningState::Updating;
        assert_eq!(step(Some(&record), now), InstanceStep::Updating);
        record.provisioning_state = ProvisioningState::Succeeded;
        record.health_state = HealthState::Initializing;
        assert_eq!(step(Some(&record), now), InstanceStep::WaitingHealthy);
        let late = now + chrono::Duration::seconds(60);
        assert_eq!(step(Some(&record), late), InstanceStep::Failed);
        record.health_state = HealthState::Healthy;
        assert_eq!(step(Some(&record), now), InstanceStep::Succeeded);
        assert_eq!(step(None, now), InstanceStep::Removed);
        // With surge: the replacement has to come up.
        let surge = InstanceProgress {
            action: UpgradeAction::Replace,
            step: InstanceStep::Updating,
            ..progress.clone()
        };
        let old = instance("web", 0, "1", 0);
        assert_eq!(
            observe_step(&surge, Some(&old), None, 2, timeout, now).0,
            InstanceStep::Updating
        );
        assert_eq!(
            observe_step(&surge, Some(&old), Some(&record), 2, timeout, now).0,
            InstanceStep::Succeeded
        );
    }
}
