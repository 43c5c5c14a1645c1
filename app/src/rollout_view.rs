//! How the Upgrades tab shows plans and rollouts: the batches as segments, why a rollout
//! holds (in words), the controls a rollout offers, durations and field values. Plain
//! logic with plain tests; the components only lay it out.

use chrono::{DateTime, Utc};
use flotilla_domain::rollout::{Hold, InstanceStep, Rollout, RolloutPlan};
use serde_json::Value;

use crate::format;

/// Where a batch of a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentState {
    Done,
    Current,
    Pending,
    /// An instance of it failed (or was rolled back).
    Failed,
}

impl SegmentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Current => "current",
            Self::Pending => "pending",
            Self::Failed => "failed",
        }
    }
}

/// One batch of a rollout, as the row of segments shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub number: u32,
    pub size: usize,
    pub state: SegmentState,
    pub canary: bool,
    /// Why the rollout stops after it (`canary`, `checkpoint 50 %`).
    pub pause: Option<String>,
}

/// The batches of `rollout`: failed if one of its instances failed, done once all of them
/// finished, current while the rollout runs it, pending otherwise.
pub fn segments(rollout: &Rollout) -> Vec<Segment> {
    rollout
        .plan
        .batches
        .iter()
        .map(|b| {
            let steps: Vec<InstanceStep> = b
                .instances
                .iter()
                .filter_map(|i| rollout.instances.get(&i.id).map(|p| p.step))
                .collect();
            let state = if steps
                .iter()
                .any(|s| matches!(s, InstanceStep::Failed | InstanceStep::RolledBack))
            {
                SegmentState::Failed
            } else if steps.iter().all(|s| s.is_finished()) {
                SegmentState::Done
            } else if rollout.state.is_active() && b.number == rollout.current_batch {
                SegmentState::Current
            } else {
                SegmentState::Pending
            };
            Segment {
                number: b.number,
                size: b.instances.len(),
                state,
                canary: b.canary,
                pause: b.pause_after.as_ref().map(|p| p.reason.clone()),
            }
        })
        .collect()
}

/// Why an active rollout is not moving, in a sentence.
pub fn hold_text(hold: &Hold) -> String {
    let at = |t: &DateTime<Utc>| format::timestamp(t);
    match hold {
        Hold::Paused { by } => format!("Paused by {by}. Resume to continue."),
        Hold::Approval {
            reason,
            until: None,
        } => format!("Waiting for approval after the {reason}."),
        Hold::Approval {
            reason,
            until: Some(until),
        } => format!(
            "Waiting after the {reason}: continues by itself at {}, or when approved.",
            at(until)
        ),
        Hold::Between { until } => format!("Pausing between batches until {}.", at(until)),
        Hold::Gate { until, detail } => format!(
            "Waiting for the health gate ({detail}); the rollout faults if it still fails at {}.",
            at(until)
        ),
        Hold::Bake { until } => format!(
            "Baking: watching the upgraded instances until {}.",
            at(until)
        ),
    }
}

/// A control a person can use on a rollout: `(control, label)`; the control is what the
/// server function takes (`pause`, `resume`, `cancel`).
pub fn controls(rollout: &Rollout) -> Vec<(&'static str, &'static str)> {
    if !rollout.state.is_active() {
        return Vec::new();
    }
    let first = match &rollout.hold {
        Some(Hold::Approval { .. }) => ("resume", "Approve"),
        Some(Hold::Paused { .. } | Hold::Gate { .. }) => ("resume", "Resume"),
        _ => ("pause", "Pause"),
    };
    vec![first, ("cancel", "Cancel")]
}

/// The rollout to show as the current one: the active one, or else the newest.
pub fn current(rollouts: &[Rollout]) -> Option<&Rollout> {
    rollouts
        .iter()
        .find(|r| r.state.is_active())
        .or_else(|| rollouts.first())
}

/// How long a finished rollout took (`2 min 5 s`).
pub fn took(rollout: &Rollout) -> Option<String> {
    rollout
        .finished_at
        .map(|end| format::duration_ms((end - rollout.created_at).num_milliseconds()))
}

/// A plan's expected duration, saying when approvals come on top.
pub fn expected(plan: &RolloutPlan) -> String {
    let time = format::seconds(u32::try_from(plan.expected_seconds).unwrap_or(u32::MAX));
    match plan.approvals {
        0 => format!("about {time}"),
        n => format!(
            "about {time}, plus the time to give {}",
            format::plural(n, "approval", "approvals")
        ),
    }
}

/// A field value of a model: strings as they are, absent as `—`, the rest as JSON.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_domain::ScaleSetSpec;
    use flotilla_domain::instance::fixtures::instance;
    use flotilla_domain::rollout::{PlanInput, RolloutKind, RolloutState, initial_progress, plan};
    use flotilla_domain::scale_set::{RollingPolicy, UpgradeMode};
    use std::collections::BTreeMap;

    fn rollout(canary: u32) -> Rollout {
        let v1 = ScaleSetSpec::example("web", 4).model;
        let mut v2 = v1.clone();
        v2.image = "ubuntu-24.04".into();
        let models = BTreeMap::from([(1, v1), (2, v2)]);
        let instances: Vec<_> = (0..4).map(|o| instance("web", o, "1", 0)).collect();
        let policy = RollingPolicy {
            max_batch_instance_percent: 50,
            max_unhealthy_instance_percent: 50,
            canary_instances: canary,
            ..RollingPolicy::default()
        };
        let plan = plan(PlanInput {
            capacity: 4,
            instances: &instances,
            target_version: 2,
            models: &models,
            mode: UpgradeMode::Rolling,
            policy: &policy,
            only: None,
            boot_seconds: Some(20),
        });
        let at = DateTime::UNIX_EPOCH;
        Rollout {
            id: 1,
            scale_set: "web".into(),
            kind: RolloutKind::Upgrade,
            state: RolloutState::RollingForward,
            from_version: 1,
            target_version: 2,
            policy,
            instances: initial_progress(&plan, at),
            plan,
            current_batch: 1,
            batch_started: true,
            gates: vec![],
            hold: None,
            message: None,
            rollback_of: None,
            rolled_back_by: None,
            created_by: "portal".into(),
            created_at: at,
            updated_at: at,
            finished_at: None,
            generation: 1,
        }
    }

    fn states(r: &Rollout) -> Vec<&'static str> {
        segments(r).iter().map(|s| s.state.as_str()).collect()
    }

    #[test]
    fn segments_follow_the_instances_and_the_current_batch() {
        let mut r = rollout(1);
        let segs = segments(&r);
        assert_eq!(
            segs.iter().map(|s| s.size).collect::<Vec<_>>(),
            [1, 2, 1],
            "{segs:?}"
        );
        assert!(segs[0].canary);
        assert_eq!(segs[0].pause.as_deref(), Some("canary"));
        assert_eq!(states(&r), ["current", "pending", "pending"]);
        let first = r.plan.batches[0].instances[0].id.clone();
        r.instances.get_mut(&first).unwrap().step = InstanceStep::Succeeded;
        r.current_batch = 2;
        assert_eq!(states(&r), ["done", "current", "pending"]);
        let second = r.plan.batches[1].instances[0].id.clone();
        r.instances.get_mut(&second).unwrap().step = InstanceStep::Failed;
        r.state = RolloutState::Faulted;
        assert_eq!(states(&r), ["done", "failed", "pending"]);
    }

    #[test]
    fn holds_read_as_sentences() {
        let until = DateTime::UNIX_EPOCH;
        let table = [
            (
                Hold::Paused { by: "ann".into() },
                "Paused by ann. Resume to continue.",
            ),
            (
                Hold::Approval {
                    reason: "canary".into(),
                    until: None,
                },
                "Waiting for approval after the canary.",
            ),
            (
                Hold::Between { until },
                "Pausing between batches until 1970-01-01 00:00:00 UTC.",
            ),
            (
                Hold::Bake { until },
                "Baking: watching the upgraded instances until 1970-01-01 00:00:00 UTC.",
            ),
        ];
        for (hold, want) in table {
            assert_eq!(hold_text(&hold), want);
        }
        assert!(
            hold_text(&Hold::Gate {
                until,
                detail: "3 of 10".into()
            })
            .contains("(3 of 10)")
        );
    }

    #[test]
    fn controls_depend_on_the_state_and_the_hold() {
        let mut r = rollout(0);
        assert_eq!(controls(&r), [("pause", "Pause"), ("cancel", "Cancel")]);
        r.hold = Some(Hold::Approval {
            reason: "canary".into(),
            until: None,
        });
        r.state = RolloutState::Paused;
        assert_eq!(controls(&r), [("resume", "Approve"), ("cancel", "Cancel")]);
        r.hold = Some(Hold::Paused { by: "ann".into() });
        assert_eq!(controls(&r)[0], ("resume", "Resume"));
        r.state = RolloutState::Completed;
        assert!(controls(&r).is_empty());
    }

    #[test]
    fn the_current_rollout_is_the_active_one_else_the_newest() {
        let mut done = rollout(0);
        done.state = RolloutState::Completed;
        done.id = 3;
        let active = rollout(0);
        assert_eq!(current(&[done.clone(), active]).map(|r| r.id), Some(1));
        assert_eq!(current(&[done]).map(|r| r.id), Some(3));
        assert!(current(&[]).is_none());
    }

    #[test]
    fn durations_and_values_read_well() {
        let mut r = rollout(1);
        assert_eq!(took(&r), None);
        r.finished_at = Some(r.created_at + chrono::Duration::seconds(125));
        assert_eq!(took(&r).as_deref(), Some("2 min 5 s"));
        // 3 batches × 20 s boot; the canary waits for an approval.
        assert_eq!(
            expected(&r.plan),
            "about 1 min, plus the time to give 1 approval"
        );
        assert_eq!(expected(&rollout(0).plan), "about 40 s");
        assert_eq!(value_text(&Value::Null), "—");
        assert_eq!(value_text(&Value::String("debian-12".into())), "debian-12");
        assert_eq!(value_text(&serde_json::json!(4)), "4");
    }
}
