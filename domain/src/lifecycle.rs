//! Lifecycle hooks: waits on an instance's launch and on its removal, ended by a person or
//! program (`complete`, with `continue` or `abandon`), or by the hook's timeout, which
//! applies its `default_result`. Heartbeats move the timeout, never past the global limit
//! of min(48 h, 100 × the heartbeat timeout) after the wait began (AWS's rule).
//!
//! - **Launching** hooks hold a new (or reimaged) instance out of the load balancer from the
//!   moment it runs until each launching hook, in the set's order, is completed. It counts
//!   toward capacity meanwhile. `abandon` removes it (its terminating hooks run) and the
//!   set replaces it.
//! - **Terminating** hooks hold every instance the control plane removes — scale-in,
//!   repairs, rollouts (replace and reimage), a person's delete, zone rebalancing, host
//!   maintenance, the set's deletion — after it left the load balancer (drained), with its
//!   VM kept, until each terminating hook is completed; then the removal (or reimage) goes
//!   on (`terminating_proceed`). `abandon` skips the hooks left. An instance whose VM is
//!   gone has nothing to wait for.
//!
//! [`advance`] is the pure step the reconciler takes at every activation: it starts waits,
//! applies timeouts and moves from hook to hook. Deadlines are instants stored with the
//! record, so a control plane killed during a wait resumes it with what remains.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::autoscale::setting::{
    Webhook, keep_webhook_secrets, redact_webhooks, validate_webhooks,
};
use crate::instance::{
    Instance, Lifecycle, LifecycleResult, LifecycleState, LifecycleTransition, PendingAction,
    PowerState, ProvisioningState,
};
use crate::scale_set::{ScaleSet, ScaleSetState};
use crate::validation::{ValidationErrors, check_name};

/// At most this many hooks per scale set.
pub const MAX_HOOKS: usize = 10;
/// The longest a wait may last, heartbeats or not (and at most 100 heartbeat timeouts).
pub const GLOBAL_LIMIT_SECONDS: i64 = 48 * 3600;

/// A wait on one transition of the set's instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LifecycleHook {
    /// Unique in the set, `^[a-z][a-z0-9-]{0,62}$`.
    pub name: String,
    pub transition: LifecycleTransition,
    /// How long the wait lasts without a heartbeat or a completion, 30–7200 (3600).
    #[serde(default = "default_heartbeat")]
    pub heartbeat_timeout_seconds: u32,
    /// What the timeout applies (`abandon`, as AWS).
    #[serde(default = "default_result")]
    pub default_result: LifecycleResult,
    /// Told when an instance starts waiting on this hook and when the wait ends: a JSON
    /// `POST` signed and retried as autoscale's webhooks are.
    #[serde(default)]
    pub notification_webhooks: Vec<Webhook>,
}

fn default_heartbeat() -> u32 {
    3600
}

fn default_result() -> LifecycleResult {
    LifecycleResult::Abandon
}

impl LifecycleHook {
    /// The global limit of a wait on this hook, in seconds.
    pub fn limit_seconds(&self) -> i64 {
        GLOBAL_LIMIT_SECONDS.min(100 * i64::from(self.heartbeat_timeout_seconds))
    }
}

/// Every problem with a set's hooks, each under `lifecycle_hooks[i]`.
pub fn validate(hooks: &[LifecycleHook]) -> ValidationErrors {
    let mut errors = ValidationErrors::default();
    if hooks.len() > MAX_HOOKS {
        errors.push("lifecycle_hooks", format!("at most {MAX_HOOKS} hooks"));
    }
    let mut names = BTreeSet::new();
    for (i, hook) in hooks.iter().enumerate() {
        let at = format!("lifecycle_hooks[{i}]");
        if let Err(message) = check_name(&hook.name) {
            errors.push(format!("{at}.name"), message);
        } else if !names.insert(hook.name.as_str()) {
            errors.push(
                format!("{at}.name"),
                format!("{:?} is used by another hook", hook.name),
            );
        }
        errors.range(
            format!("{at}.heartbeat_timeout_seconds"),
            hook.heartbeat_timeout_seconds,
            30,
            7200,
        );
        errors.nest(
            &at,
            validate_webhooks(&hook.notification_webhooks, "notification_webhooks"),
        );
    }
    errors
}

/// The hooks as reads show them: webhook secrets and URLs redacted.
pub fn redacted(mut hooks: Vec<LifecycleHook>) -> Vec<LifecycleHook> {
    for hook in &mut hooks {
        redact_webhooks(&mut hook.notification_webhooks);
    }
    hooks
}

/// Puts back the stored webhooks' URLs and secrets where `hooks` send what reads show (the
/// hook of the same name).
pub fn keep_secrets(hooks: &mut [LifecycleHook], stored: &[LifecycleHook]) {
    for hook in hooks {
        let kept = stored
            .iter()
            .find(|s| s.name == hook.name)
            .map_or(&[][..], |s| &s.notification_webhooks[..]);
        keep_webhook_secrets(&mut hook.notification_webhooks, kept);
    }
}

/// What happened to one instance's wait, for notifications and the activity log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notice {
    pub scale_set: String,
    pub instance: String,
    pub hook: String,
    pub transition: LifecycleTransition,
    /// `wait` (the instance waits on the hook), `completed` (by a person or program),
    /// `timed_out` (the default result applied), `heartbeat`.
    pub event: NoticeEvent,
    /// How the wait ended (`completed`, `timed_out`).
    #[serde(default)]
    pub result: Option<LifecycleResult>,
    /// When the timeout applies (`wait`, `heartbeat`).
    #[serde(default)]
    pub deadline: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NoticeEvent {
    Wait,
    Completed,
    TimedOut,
    Heartbeat,
}

impl NoticeEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wait => "wait",
            Self::Completed => "completed",
            Self::TimedOut => "timed_out",
            Self::Heartbeat => "heartbeat",
        }
    }
}

/// What [`advance`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advance {
    /// The records it changed.
    pub changed: Vec<Instance>,
    pub notices: Vec<Notice>,
}

/// Why a completion or heartbeat is refused (answered 409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn hooks_of(set: &ScaleSet, transition: LifecycleTransition) -> Vec<&LifecycleHook> {
    set.spec
        .lifecycle_hooks
        .iter()
        .filter(|h| h.transition == transition)
        .collect()
}

/// The set's hook a wait is on (`None`: the set no longer has it).
fn hook_waited_on<'a>(set: &'a ScaleSet, l: &Lifecycle) -> Option<&'a LifecycleHook> {
    hooks_of(set, transition_of(l))
        .into_iter()
        .find(|h| Some(h.name.as_str()) == l.lifecycle_hook.as_deref())
}

/// The lifecycle of a record the reconciler creates: waiting on the set's first launching
/// hook (its clock starts once the VM runs), or none.
pub fn on_create(set: &ScaleSet) -> Lifecycle {
    hooks_of(set, LifecycleTransition::Launching)
        .first()
        .map(|h| Lifecycle {
            lifecycle_state: Some(LifecycleState::LaunchingWait),
            lifecycle_hook: Some(h.name.clone()),
            lifecycle_deadline: None,
            lifecycle_limit: None,
        })
        .unwrap_or_default()
}

/// Whether the control plane is removing (or reimaging) the instance: what terminating
/// hooks hold.
fn leaving(set: &ScaleSet, i: &Instance) -> bool {
    set.state == ScaleSetState::Deleting
        || i.provisioning_state == ProvisioningState::Deleting
        || i.pending == Some(PendingAction::Reimage)
}

/// A wait on `hook`, its clock not started yet (see [`advance`]).
fn pending(hook: &LifecycleHook, state: LifecycleState) -> Lifecycle {
    Lifecycle {
        lifecycle_state: Some(state),
        lifecycle_hook: Some(hook.name.clone()),
        lifecycle_deadline: None,
        lifecycle_limit: None,
    }
}

fn proceed() -> Lifecycle {
    Lifecycle {
        lifecycle_state: Some(LifecycleState::TerminatingProceed),
        ..Lifecycle::default()
    }
}

fn transition_of(l: &Lifecycle) -> LifecycleTransition {
    match l.lifecycle_state {
        Some(LifecycleState::LaunchingWait) => LifecycleTransition::Launching,
        _ => LifecycleTransition::Terminating,
    }
}

/// Ends the wait of `i` on its current hook with `result`: the record as it goes on — to
/// the next hook of the same transition (its clock started by [`advance`]), in service,
/// removed (an abandoned launch), or on with its removal.
fn end_wait(set: &ScaleSet, i: &Instance, result: LifecycleResult, now: DateTime<Utc>) -> Instance {
    let mut n = i.clone();
    let transition = transition_of(&i.lifecycle);
    let hooks = hooks_of(set, transition);
    let current = i.lifecycle.lifecycle_hook.as_deref();
    let after = current
        .and_then(|c| hooks.iter().position(|h| h.name == c))
        .map_or(0, |p| p + 1);
    let state = match transition {
        LifecycleTransition::Launching => LifecycleState::LaunchingWait,
        LifecycleTransition::Terminating => LifecycleState::TerminatingWait,
    };
    n.lifecycle = match (result, hooks.get(after), transition) {
        (LifecycleResult::Continue, Some(hook), _) => pending(hook, state),
        (LifecycleResult::Continue, None, LifecycleTransition::Launching) => Lifecycle::default(),
        (LifecycleResult::Abandon, _, LifecycleTransition::Launching) => {
            n.provisioning_state = ProvisioningState::Deleting;
            n.last_error = Some(format!(
                "launch abandoned at lifecycle hook {:?}",
                current.unwrap_or_default()
            ));
            Lifecycle::default()
        }
        (_, _, LifecycleTransition::Terminating) => proceed(),
    };
    n.updated_at = now;
    n
}

fn notice(
    i: &Instance,
    event: NoticeEvent,
    result: Option<LifecycleResult>,
    now: DateTime<Utc>,
) -> Notice {
    Notice {
        scale_set: i.scale_set.clone(),
        instance: i.id.clone(),
        hook: i.lifecycle.lifecycle_hook.clone().unwrap_or_default(),
        transition: transition_of(&i.lifecycle),
        event,
        result,
        deadline: i.lifecycle.lifecycle_deadline,
        at: now,
    }
}

/// Holds a record the control plane is removing (or reimaging) for the terminating hooks:
/// its wait begins (the clock is started by [`step`]), or it proceeds when there is nothing
/// to wait for (no VM, no terminating hook). A reimaged record whose hooks were done
/// launches again as a new instance does.
fn hold_if_leaving(set: &ScaleSet, n: &mut Instance, has_vm: bool) {
    let terminating = hooks_of(set, LifecycleTransition::Terminating);
    let state = n.lifecycle.lifecycle_state;
    if leaving(set, n) {
        match state {
            Some(LifecycleState::TerminatingProceed) => {}
            // Nothing to wait for: no VM, or no terminating hook (left).
            _ if !has_vm || terminating.is_empty() => {
                if state.is_some() {
                    n.lifecycle = proceed();
                }
            }
            Some(LifecycleState::TerminatingWait) => {}
            // Launching or in service: the terminating hooks begin.
            _ => n.lifecycle = pending(terminating[0], LifecycleState::TerminatingWait),
        }
    } else if state == Some(LifecycleState::TerminatingProceed) {
        // The reimage it was held for is done: it launches again as a new instance does.
        n.lifecycle = on_create(set);
    }
}

/// One step of a record's hooks at `now`: waits begin when the instance starts leaving,
/// a reimaged instance launches again, timeouts apply the default result, a wait on a
/// hook the set no longer has moves on, and the clock of a wait starts (for a launch,
/// once the VM runs).
fn step(
    set: &ScaleSet,
    i: &Instance,
    has_vm: bool,
    now: DateTime<Utc>,
    notices: &mut Vec<Notice>,
) -> Instance {
    let mut n = i.clone();
    hold_if_leaving(set, &mut n, has_vm);
    if n.lifecycle.waiting() {
        let hook = hook_waited_on(set, &n.lifecycle);
        let due = [n.lifecycle.lifecycle_deadline, n.lifecycle.lifecycle_limit]
            .into_iter()
            .flatten()
            .min()
            .is_some_and(|at| at <= now);
        match hook {
            None => n = end_wait(set, &n, LifecycleResult::Continue, now),
            Some(hook) if due => {
                notices.push(notice(
                    &n,
                    NoticeEvent::TimedOut,
                    Some(hook.default_result),
                    now,
                ));
                n = end_wait(set, &n, hook.default_result, now);
            }
            Some(_) => {}
        }
    }
    // A launch abandoned by its timeout is removed through the terminating hooks.
    hold_if_leaving(set, &mut n, has_vm);
    // The clock of a wait starts: at once for a termination, once running for a launch.
    let ready = match n.lifecycle.lifecycle_state {
        Some(LifecycleState::TerminatingWait) => true,
        Some(LifecycleState::LaunchingWait) => {
            n.provisioning_state == ProvisioningState::Succeeded
                && n.power_state == PowerState::Running
        }
        _ => false,
    };
    if ready && n.lifecycle.lifecycle_deadline.is_none() {
        let hook = hook_waited_on(set, &n.lifecycle);
        if let Some(hook) = hook {
            let timeout = Duration::seconds(i64::from(hook.heartbeat_timeout_seconds));
            n.lifecycle.lifecycle_deadline = Some(now + timeout);
            n.lifecycle.lifecycle_limit = Some(now + Duration::seconds(hook.limit_seconds()));
            notices.push(notice(&n, NoticeEvent::Wait, None, now));
        }
    }
    if n != *i {
        n.updated_at = now;
    }
    n
}

/// One step of every record's hooks at `now` (see [`step`]). `has_vm` says which records
/// have a VM.
pub fn advance(
    set: &ScaleSet,
    records: &[Instance],
    has_vm: &dyn Fn(&str) -> bool,
    now: DateTime<Utc>,
) -> Advance {
    let mut out = Advance::default();
    for i in records {
        // In service and staying: nothing to do (the common case, kept cheap). A warm
        // pool member never served: it waits on no hook, not even to leave.
        if (i.lifecycle.lifecycle_state.is_none() && !leaving(set, i)) || i.in_warm_pool() {
            continue;
        }
        let n = step(set, i, has_vm(&i.id), now, &mut out.notices);
        if n != *i {
            out.changed.push(n);
        }
    }
    out
}

/// `POST …/instances/{id}/lifecycle/{hook}/complete`: ends the wait on `hook` with
/// `result` (the next hook's wait, if any, begins at the reconciler's next step). Refused
/// unless the instance waits on that hook.
pub fn complete(
    set: &ScaleSet,
    i: &Instance,
    hook: &str,
    result: LifecycleResult,
    now: DateTime<Utc>,
) -> Result<(Instance, Notice), Refused> {
    check_waiting(i, hook)?;
    let completed = notice(i, NoticeEvent::Completed, Some(result), now);
    Ok((end_wait(set, i, result, now), completed))
}

/// `POST …/instances/{id}/lifecycle/{hook}/heartbeat`: the wait on `hook` lasts a whole
/// heartbeat timeout from `now` again, never past its global limit.
pub fn heartbeat(
    set: &ScaleSet,
    i: &Instance,
    hook: &str,
    now: DateTime<Utc>,
) -> Result<(Instance, Notice), Refused> {
    check_waiting(i, hook)?;
    let spec = set
        .spec
        .lifecycle_hooks
        .iter()
        .find(|h| h.name == hook)
        .ok_or_else(|| Refused(format!("scale set {:?} has no hook {hook:?}", set.name())))?;
    let mut n = i.clone();
    let limit = i
        .lifecycle
        .lifecycle_limit
        .unwrap_or(now + Duration::seconds(spec.limit_seconds()));
    let timeout = Duration::seconds(i64::from(spec.heartbeat_timeout_seconds));
    n.lifecycle.lifecycle_deadline = Some((now + timeout).min(limit));
    n.lifecycle.lifecycle_limit = Some(limit);
    n.updated_at = now;
    let notice = notice(&n, NoticeEvent::Heartbeat, None, now);
    Ok((n, notice))
}

fn check_waiting(i: &Instance, hook: &str) -> Result<(), Refused> {
    if i.lifecycle.waiting() && i.lifecycle.lifecycle_hook.as_deref() == Some(hook) {
        return Ok(());
    }
    Err(Refused(
        match (&i.lifecycle.lifecycle_state, &i.lifecycle.lifecycle_hook) {
            (Some(state), Some(other)) if i.lifecycle.waiting() => {
                format!(
                    "instance {} waits on hook {other:?} ({state}), not {hook:?}",
                    i.id
                )
            }
            _ => format!("instance {} is not waiting on a lifecycle hook", i.id),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::fixtures::instance;
    use crate::placement::ZoneStatus;
    use crate::reconcile::{Action, ObservedVm, PlanInput, plan};
    use crate::scale_set::ScaleSetSpec;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + Duration::seconds(secs)
    }

    fn hook(name: &str, transition: LifecycleTransition, result: LifecycleResult) -> LifecycleHook {
        LifecycleHook {
            name: name.into(),
            transition,
            heartbeat_timeout_seconds: 60,
            default_result: result,
            notification_webhooks: vec![],
        }
    }

    fn set(hooks: Vec<LifecycleHook>) -> ScaleSet {
        let mut spec = ScaleSetSpec::example("web", 1);
        spec.lifecycle_hooks = hooks;
        ScaleSet {
            spec,
            model_version: 1,
            generation: 1,
            state: ScaleSetState::Active,
            repairs: Default::default(),
            created_at: at(0),
            updated_at: at(0),
        }
    }

    fn all(_: &str) -> bool {
        true
    }

    fn step(set: &ScaleSet, i: &Instance, now: i64) -> (Instance, Vec<Notice>) {
        let out = advance(set, std::slice::from_ref(i), &all, at(now));
        let n = out.changed.into_iter().next().unwrap_or_else(|| i.clone());
        (n, out.notices)
    }

    use LifecycleResult::{Abandon, Continue};
    use LifecycleTransition::{Launching, Terminating};

    #[test]
    fn a_launch_waits_from_when_it_runs_then_hook_after_hook() {
        let s = set(vec![
            hook("warm", Launching, Continue),
            hook("register", Launching, Abandon),
        ]);
        let mut i = instance("web", 0, "1", 0).in_state(ProvisioningState::Creating);
        i.power_state = PowerState::Starting;
        i.lifecycle = on_create(&s);
        assert_eq!(
            i.lifecycle.lifecycle_state,
            Some(LifecycleState::LaunchingWait)
        );
        assert_eq!(i.lifecycle.lifecycle_deadline, None);
        assert!(!i.in_pool());
        // Still booting: the clock has not started.
        let (same, notices) = step(&s, &i, 100);
        assert_eq!(same, i);
        assert!(notices.is_empty());
        i.provisioning_state = ProvisioningState::Succeeded;
        i.power_state = PowerState::Running;
        let (waiting, notices) = step(&s, &i, 100);
        assert_eq!(waiting.lifecycle.lifecycle_deadline, Some(at(160)));
        assert_eq!(waiting.lifecycle.lifecycle_limit, Some(at(100 + 6000)));
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].event, NoticeEvent::Wait);
        assert!(!waiting.in_pool(), "held out of the load balancer");
        // Not due yet.
        assert_eq!(step(&s, &waiting, 159).0, waiting);
        // The timeout continues to the next hook, whose wait begins now.
        let (second, notices) = step(&s, &waiting, 160);
        assert_eq!(second.lifecycle.lifecycle_hook.as_deref(), Some("register"));
        assert_eq!(second.lifecycle.lifecycle_deadline, Some(at(220)));
        let events: Vec<_> = notices.iter().map(|n| (n.hook.as_str(), n.event)).collect();
        assert_eq!(
            events,
            [
                ("warm", NoticeEvent::TimedOut),
                ("register", NoticeEvent::Wait)
            ]
        );
        // Completed: in service.
        let (done, notice) = complete(&s, &second, "register", Continue, at(170)).unwrap();
        assert_eq!(done.lifecycle, Lifecycle::default());
        assert!(done.in_pool());
        assert_eq!(notice.event, NoticeEvent::Completed);
        assert_eq!(notice.result, Some(Continue));
    }

    #[test]
    fn an_abandoned_launch_is_removed() {
        let s = set(vec![hook("register", Launching, Abandon)]);
        let mut i = instance("web", 0, "1", 0);
        i.lifecycle = on_create(&s);
        let (waiting, _) = step(&s, &i, 0);
        let (gone, notices) = step(&s, &waiting, 60);
        assert_eq!(gone.provisioning_state, ProvisioningState::Deleting);
        assert!(gone.last_error.unwrap().contains("abandoned"));
        assert_eq!(notices[0].event, NoticeEvent::TimedOut);
        assert_eq!(notices[0].result, Some(Abandon));
        // With a terminating hook, the abandoned launch waits on it before it goes.
        let both = set(vec![
            hook("register", Launching, Abandon),
            hook("leave", Terminating, Continue),
        ]);
        let (held, notices) = step(&both, &waiting, 60);
        assert_eq!(held.provisioning_state, ProvisioningState::Deleting);
        assert_eq!(
            held.lifecycle.lifecycle_state,
            Some(LifecycleState::TerminatingWait)
        );
        assert_eq!(held.lifecycle.lifecycle_deadline, Some(at(120)));
        let events: Vec<_> = notices.iter().map(|n| (n.hook.as_str(), n.event)).collect();
        assert_eq!(
            events,
            [
                ("register", NoticeEvent::TimedOut),
                ("leave", NoticeEvent::Wait)
            ]
        );
    }

    fn zones() -> Vec<ZoneStatus> {
        ["1", "2", "3"]
            .iter()
            .map(|z| ZoneStatus {
                name: z.to_string(),
                fault_domains: 1,
                available: true,
                closed_fault_domains: Vec::new(),
            })
            .collect()
    }

    fn vm(i: &Instance) -> ObservedVm {
        ObservedVm {
            id: i.id.clone(),
            scale_set: "web".into(),
            zone: i.zone.clone(),
            fault_domain: i.fault_domain,
            model_version: 1,
            power_state: i.power_state,
            address: i.address.clone(),
            installation_id: None,
            lease_generation: None,
        }
    }

    fn actions(s: &ScaleSet, records: &[Instance], now: i64) -> Vec<Action> {
        let vms: Vec<ObservedVm> = records.iter().map(vm).collect();
        plan(PlanInput {
            set: s,
            instances: records,
            vms: &vms,
            zones: &zones(),
            next_ordinal: 9,
            now: at(now),
        })
        .actions
    }

    #[test]
    fn a_removal_waits_for_each_terminating_hook_then_deletes() {
        let s = set(vec![
            hook("drain-sessions", Terminating, Continue),
            hook("backup", Terminating, Continue),
        ]);
        let keep = instance("web", 1, "2", 0);
        let i = instance("web", 0, "1", 0).in_state(ProvisioningState::Deleting);
        let (held, notices) = step(&s, &i, 10);
        assert_eq!(
            held.lifecycle.lifecycle_state,
            Some(LifecycleState::TerminatingWait)
        );
        assert_eq!(
            held.lifecycle.lifecycle_hook.as_deref(),
            Some("drain-sessions")
        );
        assert_eq!(notices[0].transition, Terminating);
        // Held: nothing deletes it, and its replacement is not what it waits for.
        assert!(actions(&s, &[held.clone(), keep.clone()], 10).is_empty());
        // A heartbeat gives it a whole timeout again, never past the limit.
        let (beat, notice) = heartbeat(&s, &held, "drain-sessions", at(50)).unwrap();
        assert_eq!(beat.lifecycle.lifecycle_deadline, Some(at(110)));
        assert_eq!(notice.event, NoticeEvent::Heartbeat);
        let mut late = held.clone();
        late.lifecycle.lifecycle_limit = Some(at(80));
        let (capped, _) = heartbeat(&s, &late, "drain-sessions", at(50)).unwrap();
        assert_eq!(capped.lifecycle.lifecycle_deadline, Some(at(80)));
        assert_eq!(
            step(&s, &capped, 80).0.lifecycle.lifecycle_hook.as_deref(),
            Some("backup")
        );
        // The wrong hook is refused, naming the one it waits on.
        let refused = complete(&s, &beat, "backup", Continue, at(60)).unwrap_err();
        assert!(refused.0.contains("drain-sessions"), "{refused}");
        let (second, _) = complete(&s, &beat, "drain-sessions", Continue, at(60)).unwrap();
        assert_eq!(second.lifecycle.lifecycle_hook.as_deref(), Some("backup"));
        // The next wait's clock starts at the reconciler's next step, which tells it.
        assert_eq!(second.lifecycle.lifecycle_deadline, None);
        let (started, notices) = step(&s, &second, 61);
        assert_eq!(started.lifecycle.lifecycle_deadline, Some(at(121)));
        assert_eq!(notices[0].event, NoticeEvent::Wait);
        // Abandon skips the hooks left: the removal goes on.
        let (done, _) = complete(&s, &second, "backup", Abandon, at(61)).unwrap();
        assert_eq!(
            done.lifecycle.lifecycle_state,
            Some(LifecycleState::TerminatingProceed)
        );
        assert!(step(&s, &done, 62).1.is_empty(), "no second wait");
        assert!(matches!(
            actions(&s, &[done, keep], 62)[..],
            [Action::Delete { .. }]
        ));
    }

    #[test]
    fn a_reimage_waits_for_terminating_hooks_and_launches_again() {
        let s = set(vec![
            hook("leave", Terminating, Continue),
            hook("join", Launching, Continue),
        ]);
        let mut i = instance("web", 0, "1", 0);
        i.pending = Some(PendingAction::Reimage);
        i.provisioning_state = ProvisioningState::Updating;
        let (held, _) = step(&s, &i, 0);
        assert_eq!(
            held.lifecycle.lifecycle_state,
            Some(LifecycleState::TerminatingWait)
        );
        assert!(actions(&s, std::slice::from_ref(&held), 0).is_empty());
        let (go, _) = complete(&s, &held, "leave", Continue, at(5)).unwrap();
        assert!(matches!(
            actions(&s, std::slice::from_ref(&go), 5)[..],
            [Action::Reimage { .. }]
        ));
        // Reimaged: a new instance again, held by the launching hook once it runs.
        let mut reimaged = go;
        reimaged.pending = None;
        reimaged.provisioning_state = ProvisioningState::Succeeded;
        let (after, notices) = step(&s, &reimaged, 30);
        assert_eq!(
            after.lifecycle.lifecycle_state,
            Some(LifecycleState::LaunchingWait)
        );
        assert_eq!(after.lifecycle.lifecycle_deadline, Some(at(90)));
        assert_eq!(notices[0].hook, "join");
    }

    #[test]
    fn nothing_waits_without_a_vm_a_hook_or_for_a_hook_removed() {
        let s = set(vec![hook("leave", Terminating, Continue)]);
        let i = instance("web", 0, "1", 0).in_state(ProvisioningState::Deleting);
        let none = |_: &str| false;
        assert!(
            advance(&s, std::slice::from_ref(&i), &none, at(0))
                .changed
                .is_empty()
        );
        assert!(
            advance(&set(vec![]), std::slice::from_ref(&i), &all, at(0))
                .changed
                .is_empty()
        );
        let (held, _) = step(&s, &i, 0);
        let (released, _) = step(&set(vec![]), &held, 1);
        assert_eq!(
            released.lifecycle.lifecycle_state,
            Some(LifecycleState::TerminatingProceed)
        );
        // The set's deletion holds every instance.
        let mut deleting = s.clone();
        deleting.state = ScaleSetState::Deleting;
        let (held, _) = step(&deleting, &instance("web", 1, "1", 0), 0);
        assert_eq!(
            held.lifecycle.lifecycle_state,
            Some(LifecycleState::TerminatingWait)
        );
        assert!(actions(&deleting, &[held], 0).is_empty());
    }

    #[test]
    fn hooks_are_validated_by_field() {
        let mut bad = hook("Bad Name", Launching, Continue);
        bad.heartbeat_timeout_seconds = 10;
        bad.notification_webhooks = vec![Webhook {
            url: "ftp://x".into(),
            secret: Some(String::new()),
        }];
        let twice = hook("a", Terminating, Continue);
        let errors = validate(&[bad, twice.clone(), twice]);
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "lifecycle_hooks[0].name",
                "lifecycle_hooks[0].heartbeat_timeout_seconds",
                "lifecycle_hooks[0].notification_webhooks[0].url",
                "lifecycle_hooks[0].notification_webhooks[0].secret",
                "lifecycle_hooks[2].name",
            ]
        );
        let parsed: LifecycleHook =
            serde_json::from_str(r#"{"name":"h","transition":"launching"}"#).unwrap();
        assert_eq!(parsed.heartbeat_timeout_seconds, 3600);
        assert_eq!(parsed.default_result, Abandon);
        assert_eq!(parsed.limit_seconds(), 48 * 3600);
    }

    #[test]
    fn webhook_secrets_are_redacted_and_kept_by_hook_name() {
        let mut stored = hook("a", Terminating, Continue);
        stored.notification_webhooks = vec![Webhook {
            url: "https://hooks.example.com/t/s3cret".into(),
            secret: Some("k".into()),
        }];
        let shown = redacted(vec![stored.clone()]);
        let text = serde_json::to_string(&shown).unwrap();
        assert!(
            !text.contains("s3cret") && !text.contains("\"k\""),
            "{text}"
        );
        let mut sent = shown;
        keep_secrets(&mut sent, std::slice::from_ref(&stored));
        assert_eq!(sent[0], stored);
    }
}
