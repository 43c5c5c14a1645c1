//! Instances: one VM of a scale set, its states and the actions a person may take on it.
//!
//! Three observed or lifecycle states follow Azure's names (DESIGN.md §4):
//! `provisioning_state` is the control plane's operation on the instance,
//! `power_state` is what the backend reports, `health_state` what the probes say.
//! Two *desired* fields turn user actions into levels the reconciler converges to:
//! `desired_power` (running, stopped, deallocated) and `pending` (a one-shot restart or
//! reimage that the reconciler performs once and clears).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::health::ProbeResult;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} {other:?}; expected one of: {}",
                        stringify!($name),
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

string_enum!(
    /// The control plane's operation on an instance.
    ProvisioningState {
        Creating => "creating",
        Succeeded => "succeeded",
        Updating => "updating",
        Deleting => "deleting",
        Failed => "failed",
    }
);

string_enum!(
    /// The VM's power state as the backend reports it.
    PowerState {
        Starting => "starting",
        Running => "running",
        Stopping => "stopping",
        Stopped => "stopped",
        Deallocating => "deallocating",
        Deallocated => "deallocated",
        Paused => "paused",
        Saved => "saved",
    }
);

string_enum!(
    /// How a warm pool keeps its prepared instances (DESIGN.md §4 `warm_pool.pool_state`),
    /// from the fastest to bring into service to the cheapest to keep: `running` (booted
    /// and idle), `paused` (RAM kept, no CPU), `saved` (memory written to disk, the host's
    /// RAM released, as hibernation), `stopped` (shut off).
    WarmPoolState {
        Running => "running",
        Paused => "paused",
        Saved => "saved",
        Stopped => "stopped",
    }
);

impl WarmPoolState {
    /// The power state a VM parked this way settles in.
    pub fn power_state(self) -> PowerState {
        match self {
            Self::Running => PowerState::Running,
            Self::Paused => PowerState::Paused,
            Self::Saved => PowerState::Saved,
            Self::Stopped => PowerState::Stopped,
        }
    }
}

string_enum!(
    /// Application health as the probes see it (Azure's rich health states).
    HealthState {
        Initializing => "initializing",
        Healthy => "healthy",
        Unhealthy => "unhealthy",
        Unknown => "unknown",
    }
);

string_enum!(
    /// The power state a person asked for; the reconciler converges to it.
    DesiredPower {
        Running => "running",
        Stopped => "stopped",
        Deallocated => "deallocated",
    }
);

string_enum!(
    /// A one-shot operation waiting for the reconciler.
    PendingAction {
        Restart => "restart",
        Reimage => "reimage",
    }
);

string_enum!(
    /// What a person can ask of one instance (`POST …/instances/{id}/{action}`).
    InstanceAction {
        Start => "start",
        Stop => "stop",
        Deallocate => "deallocate",
        Restart => "restart",
        Reimage => "reimage",
        Delete => "delete",
    }
);

string_enum!(
    /// Where an instance is in its lifecycle hooks (AWS's `Pending:Wait`,
    /// `Terminating:Wait`, `Terminating:Proceed`); `None` is in service.
    LifecycleState {
        LaunchingWait => "launching_wait",
        TerminatingWait => "terminating_wait",
        TerminatingProceed => "terminating_proceed",
    }
);

string_enum!(
    /// The transition a lifecycle hook holds.
    LifecycleTransition {
        Launching => "launching",
        Terminating => "terminating",
    }
);

string_enum!(
    /// How a lifecycle wait ends: `continue` goes on, `abandon` stops (a launch is
    /// removed, a termination skips the hooks left).
    LifecycleResult {
        Continue => "continue",
        Abandon => "abandon",
    }
);

impl ProvisioningState {
    /// The state after the operation in progress succeeds; `None` means the record is gone
    /// (a finished delete).
    pub fn on_success(self) -> Option<ProvisioningState> {
        match self {
            Self::Creating | Self::Updating | Self::Succeeded => Some(Self::Succeeded),
            Self::Deleting => None,
            Self::Failed => Some(Self::Failed),
        }
    }

    /// The state after the operation in progress fails. A failed delete stays `Deleting`:
    /// deletion is retried until it succeeds, never abandoned.
    pub fn on_failure(self) -> ProvisioningState {
        match self {
            Self::Deleting => Self::Deleting,
            _ => Self::Failed,
        }
    }

    /// How long the state may last before the operation counts as failed.
    pub fn timeout(self) -> Option<Duration> {
        match self {
            Self::Creating | Self::Updating => Some(Duration::from_secs(600)),
            Self::Deleting | Self::Succeeded | Self::Failed => None,
        }
    }

    /// Whether an operation is in progress.
    pub fn is_transitional(self) -> bool {
        matches!(self, Self::Creating | Self::Updating | Self::Deleting)
    }
}

impl PowerState {
    /// The state a transitional power state settles into.
    pub fn settled(self) -> PowerState {
        match self {
            Self::Starting | Self::Running => Self::Running,
            Self::Stopping | Self::Stopped => Self::Stopped,
            Self::Deallocating | Self::Deallocated => Self::Deallocated,
            Self::Paused => Self::Paused,
            Self::Saved => Self::Saved,
        }
    }

    pub fn matches(self, desired: DesiredPower) -> bool {
        matches!(
            (self, desired),
            (Self::Running, DesiredPower::Running)
                | (Self::Stopped, DesiredPower::Stopped)
                | (Self::Deallocated, DesiredPower::Deallocated)
        )
    }
}

/// One VM of a scale set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Instance {
    /// `<scale set>_<ordinal>`, stable for the instance's life.
    pub id: String,
    pub scale_set: String,
    pub ordinal: u64,
    pub zone: String,
    pub fault_domain: u32,
    pub model_version: u32,
    /// Whether the instance runs the scale set's latest model version (derived on read).
    #[serde(default)]
    pub latest_model: bool,
    pub provisioning_state: ProvisioningState,
    pub power_state: PowerState,
    pub health_state: HealthState,
    /// When `health_state` last changed.
    #[serde(default)]
    pub health_changed_at: Option<DateTime<Utc>>,
    /// The last probe's result: kept in memory by the prober and merged in on read (`null`
    /// before the first probe and on replicas that do not probe this instance).
    #[serde(default)]
    pub last_probe: Option<ProbeResult>,
    /// Whether the load balancer may send the instance new traffic: a person's drain/enable
    /// switch, separate from health (false = drained).
    #[serde(default = "enabled")]
    pub load_balancer_enabled: bool,
    /// Automatic repairs of this instance (or of the one it replaced) since it was last
    /// healthy; more than zero while unhealthy again means the last repair failed.
    #[serde(default)]
    pub repair_attempts: u32,
    pub desired_power: DesiredPower,
    #[serde(default)]
    pub pending: Option<PendingAction>,
    pub protect_from_scale_in: bool,
    pub protect_from_scale_set_actions: bool,
    /// Being replaced by a rolling upgrade with surge, or moved off a closed host: it keeps
    /// serving but no longer counts toward capacity (so its replacement is created), and
    /// leaves once the replacement serves.
    #[serde(default)]
    pub retiring: bool,
    /// `host:port` the instance serves its application on, while running.
    #[serde(default)]
    pub address: Option<String>,
    /// The last operation's error, cleared by the next success.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Where the instance is in its set's lifecycle hooks.
    #[serde(flatten)]
    pub lifecycle: Lifecycle,
    /// Until when the instance (or its application) asked not to be removed by scale-in,
    /// rebalancing or host maintenance (`PUT …/instances/{id}/busy`).
    #[serde(default)]
    pub busy_until: Option<DateTime<Utc>>,
    /// Whether (and how) the instance waits in its set's warm pool.
    #[serde(flatten)]
    pub warm: Warm,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every write; guards updates against stale writers.
    pub generation: i64,
}

fn enabled() -> bool {
    true
}

/// An instance's place in its lifecycle hooks: all `None` while in service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lifecycle {
    /// `launching_wait` (held out of the load balancer until its launching hooks complete),
    /// `terminating_wait` (drained, its VM kept until its terminating hooks complete),
    /// `terminating_proceed` (the hooks are done: the removal or reimage goes on).
    #[serde(default)]
    pub lifecycle_state: Option<LifecycleState>,
    /// The hook it waits on.
    #[serde(default)]
    pub lifecycle_hook: Option<String>,
    /// When the hook's timeout applies its default result (a heartbeat moves it); `null`
    /// while a launching instance has not started yet (the clock starts once it runs).
    #[serde(default)]
    pub lifecycle_deadline: Option<DateTime<Utc>>,
    /// The latest the wait may last, heartbeats or not: min(48 h, 100 × the heartbeat
    /// timeout) after it began.
    #[serde(default)]
    pub lifecycle_limit: Option<DateTime<Utc>>,
}

impl Lifecycle {
    /// Whether a hook holds the instance now.
    pub fn waiting(&self) -> bool {
        matches!(
            self.lifecycle_state,
            Some(LifecycleState::LaunchingWait | LifecycleState::TerminatingWait)
        )
    }
}

/// An instance's place in its set's warm pool (`GET /scale-sets/{name}/warm-pool`): all
/// `None` for an instance in service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Warm {
    /// The state it is parked in (or will be, once prepared); `null`: not in the pool.
    #[serde(default)]
    pub warm_pool_state: Option<WarmPoolState>,
    /// When it was found healthy once and parked: from then on scale-out may take it.
    /// `null` while it is being prepared (created, booted, probed). Kept once it entered
    /// service (whose moment becomes its `created_at`).
    #[serde(default)]
    pub warm_prepared_at: Option<DateTime<Utc>>,
    /// Scaled in with `reuse_on_scale_in`: it returns to the pool once drained and its
    /// terminating hooks are done (it is `deleting` until then).
    #[serde(default)]
    pub warm_return: bool,
}

/// Per-instance protection flags (`PUT …/instances/{id}/protection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Protection {
    /// Scale-in never removes the instance.
    #[serde(default)]
    pub protect_from_scale_in: bool,
    /// Scale-set actions (scale-in, repairs, upgrades, host maintenance) leave the instance
    /// alone; a person's own actions on it still apply.
    #[serde(default)]
    pub protect_from_scale_set_actions: bool,
}

/// Why an action is refused in the instance's current state (answered as 409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} instance {id}: {reason}")]
pub struct ActionRefused {
    pub id: String,
    pub action: InstanceAction,
    pub reason: String,
}

/// What accepting an action changes on the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionEffect {
    /// Nothing to do: the instance is already where the action would take it.
    None,
    SetDesiredPower(DesiredPower),
    Pending(PendingAction),
    Delete,
}

impl Instance {
    /// The scale set's name and ordinal joined as the instance id.
    pub fn make_id(scale_set: &str, ordinal: u64) -> String {
        format!("{scale_set}_{ordinal}")
    }

    pub fn is_running(&self) -> bool {
        self.power_state == PowerState::Running
    }

    /// Whether the instance counts toward capacity: everything not being deleted and not
    /// waiting in the warm pool.
    pub fn is_active(&self) -> bool {
        self.provisioning_state != ProvisioningState::Deleting && !self.in_warm_pool()
    }

    /// Whether it waits in its set's warm pool (being prepared or parked): not in service,
    /// not counted, not balanced to. One returning to the pool after a scale-in is not in
    /// it yet: it is being removed from service (`deleting`, its terminating hooks run).
    pub fn in_warm_pool(&self) -> bool {
        self.warm.warm_pool_state.is_some() && !self.warm.warm_return
    }

    /// Whether the load balancer may send it new requests: in its pool and enabled.
    pub fn serves_traffic(&self) -> bool {
        self.in_pool() && self.load_balancer_enabled
    }

    /// Whether it belongs in its load balancer pool (enabled or not): running, healthy,
    /// settled and not on its way out (a restart or reimage waiting, a stop asked for).
    pub fn in_pool(&self) -> bool {
        self.power_state == PowerState::Running
            && self.health_state == HealthState::Healthy
            && self.provisioning_state == ProvisioningState::Succeeded
            && self.pending.is_none()
            && self.desired_power == DesiredPower::Running
            && self.lifecycle.lifecycle_state.is_none()
            && !self.in_warm_pool()
    }

    /// Whether it asked not to be removed (a busy lease) and the lease still holds at
    /// `now`.
    pub fn is_busy(&self, now: DateTime<Utc>) -> bool {
        self.busy_until.is_some_and(|until| until > now)
    }

    /// Whether an operation keeps it out of service for now: being created, updated or
    /// deleted, a restart or reimage waiting, held by a lifecycle hook, or running but not
    /// yet found healthy. Repairs and rollouts count these against their limit; warm pool
    /// members are not in service and never count.
    pub fn in_transition(&self) -> bool {
        !self.in_warm_pool() && self.in_service_transition()
    }

    fn in_service_transition(&self) -> bool {
        self.provisioning_state.is_transitional()
            || self.pending.is_some()
            || self.lifecycle.lifecycle_state.is_some()
            || (self.power_state == PowerState::Running
                && self.health_state == HealthState::Initializing)
    }

    /// Checks `action` against the current state and says what accepting it changes.
    /// Start, stop and deallocate are idempotent; restart needs a running instance; nothing
    /// but delete is accepted while the instance is being created, and nothing at all while
    /// it is being deleted or another one-shot action waits.
    pub fn accept(&self, action: InstanceAction) -> Result<ActionEffect, ActionRefused> {
        let refuse = |reason: String| ActionRefused {
            id: self.id.clone(),
            action,
            reason,
        };
        if self.provisioning_state == ProvisioningState::Deleting {
            return Err(refuse("it is being deleted".into()));
        }
        if action == InstanceAction::Delete {
            return Ok(ActionEffect::Delete);
        }
        if self.in_warm_pool() {
            return Err(refuse(
                "it waits in the warm pool; scale out to bring it into service".into(),
            ));
        }
        if self.provisioning_state == ProvisioningState::Creating {
            return Err(refuse("it is still being created".into()));
        }
        if let Some(pending) = self.pending {
            return Err(refuse(format!("a {pending} is already in progress")));
        }
        Ok(match action {
            InstanceAction::Start => self.power_change(DesiredPower::Running),
            InstanceAction::Stop => {
                if self.desired_power == DesiredPower::Deallocated {
                    return Err(refuse("it is deallocated; start it first".into()));
                }
                self.power_change(DesiredPower::Stopped)
            }
            InstanceAction::Deallocate => self.power_change(DesiredPower::Deallocated),
            InstanceAction::Restart => {
                if self.desired_power != DesiredPower::Running {
                    return Err(refuse(format!(
                        "it is {}; start it instead",
                        self.desired_power
                    )));
                }
                ActionEffect::Pending(PendingAction::Restart)
            }
            InstanceAction::Reimage => ActionEffect::Pending(PendingAction::Reimage),
            InstanceAction::Delete => unreachable!("handled above"),
        })
    }

    fn power_change(&self, desired: DesiredPower) -> ActionEffect {
        if self.desired_power == desired {
            ActionEffect::None
        } else {
            ActionEffect::SetDesiredPower(desired)
        }
    }
}

/// How many of a set's instances are in one combination of states and on its latest model
/// or not (`/metrics`, the portal's overview and list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCount {
    pub scale_set: String,
    pub power_state: PowerState,
    pub health_state: HealthState,
    pub provisioning_state: ProvisioningState,
    /// Whether these instances run the set's latest model version.
    pub latest_model: bool,
    pub count: u64,
}

/// The boot times of a set, sorted: creation → healthy of its healthy instances that turned
/// healthy within an hour of their creation.
pub fn boot_times(instances: &[Instance]) -> Vec<u32> {
    let mut times: Vec<u32> = instances
        .iter()
        .filter(|i| i.health_state == HealthState::Healthy)
        .filter_map(|i| {
            i.health_changed_at
                .map(|h| (h - i.created_at).num_seconds())
        })
        .filter(|s| (0..3600).contains(s))
        .map(|s| s as u32)
        .collect();
    times.sort_unstable();
    times
}

/// The measured boot time of a set: the median of [`boot_times`] (`None`: no instance
/// turned healthy within an hour of its creation).
pub fn boot_seconds(instances: &[Instance]) -> Option<u32> {
    let times = boot_times(instances);
    times.get(times.len() / 2).copied()
}

/// Instances for tests, here and in the crates above (feature `fixtures`).
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures {
    use super::*;

    /// A running, healthy, succeeded instance; adjust with the builder methods.
    pub fn instance(scale_set: &str, ordinal: u64, zone: &str, fault_domain: u32) -> Instance {
        Instance {
            id: Instance::make_id(scale_set, ordinal),
            scale_set: scale_set.into(),
            ordinal,
            zone: zone.into(),
            fault_domain,
            model_version: 1,
            latest_model: true,
            provisioning_state: ProvisioningState::Succeeded,
            power_state: PowerState::Running,
            health_state: HealthState::Healthy,
            health_changed_at: None,
            last_probe: None,
            load_balancer_enabled: true,
            repair_attempts: 0,
            desired_power: DesiredPower::Running,
            pending: None,
            protect_from_scale_in: false,
            protect_from_scale_set_actions: false,
            retiring: false,
            address: Some(format!("127.0.0.1:{}", 20_000 + ordinal)),
            last_error: None,
            lifecycle: Lifecycle::default(),
            busy_until: None,
            warm: Warm::default(),
            created_at: DateTime::UNIX_EPOCH + chrono::Duration::seconds(ordinal as i64),
            updated_at: DateTime::UNIX_EPOCH,
            generation: 1,
        }
    }

    impl Instance {
        pub fn protected(mut self) -> Self {
            self.protect_from_scale_in = true;
            self
        }
        pub fn unhealthy(mut self) -> Self {
            self.health_state = HealthState::Unhealthy;
            self
        }
        pub fn health(mut self, state: HealthState, since_secs: i64) -> Self {
            self.health_state = state;
            self.health_changed_at =
                Some(DateTime::UNIX_EPOCH + chrono::Duration::seconds(since_secs));
            self
        }
        pub fn guarded(mut self) -> Self {
            self.protect_from_scale_set_actions = true;
            self
        }
        pub fn created_at_secs(mut self, secs: i64) -> Self {
            self.created_at = DateTime::UNIX_EPOCH + chrono::Duration::seconds(secs);
            self
        }
        pub fn in_state(mut self, state: ProvisioningState) -> Self {
            self.provisioning_state = state;
            self
        }
        pub fn powered(mut self, desired: DesiredPower, observed: PowerState) -> Self {
            self.desired_power = desired;
            self.power_state = observed;
            self
        }
        /// A warm pool member parked in `state` (prepared at `prepared`, or still being
        /// prepared).
        pub fn warm(mut self, state: WarmPoolState, prepared: bool) -> Self {
            self.warm = Warm {
                warm_pool_state: Some(state),
                warm_prepared_at: prepared.then_some(DateTime::UNIX_EPOCH),
                warm_return: false,
            };
            if prepared {
                self.power_state = state.power_state();
                if state != WarmPoolState::Running {
                    self.health_state = HealthState::Unknown;
                    self.address = None;
                }
            }
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::instance;
    use super::*;

    #[test]
    fn provisioning_state_machine_table() {
        use ProvisioningState::*;
        // (state, on_success, on_failure, has timeout)
        let table = [
            (Creating, Some(Succeeded), Failed, true),
            (Succeeded, Some(Succeeded), Failed, false),
            (Updating, Some(Succeeded), Failed, true),
            (Deleting, None, Deleting, false),
            (Failed, Some(Failed), Failed, false),
        ];
        assert_eq!(
            table.len(),
            ProvisioningState::ALL.len(),
            "every variant covered"
        );
        for (state, success, failure, timeout) in table {
            assert_eq!(state.on_success(), success, "{state} on success");
            assert_eq!(state.on_failure(), failure, "{state} on failure");
            assert_eq!(state.timeout().is_some(), timeout, "{state} timeout");
        }
    }

    #[test]
    fn power_state_settles() {
        use PowerState::*;
        let table = [
            (Starting, Running),
            (Running, Running),
            (Stopping, Stopped),
            (Stopped, Stopped),
            (Deallocating, Deallocated),
            (Deallocated, Deallocated),
            (Paused, Paused),
            (Saved, Saved),
        ];
        assert_eq!(table.len(), PowerState::ALL.len());
        for (state, settled) in table {
            assert_eq!(state.settled(), settled);
        }
    }

    #[test]
    fn strings_round_trip() {
        for s in ProvisioningState::ALL {
            assert_eq!(s.as_str().parse::<ProvisioningState>().unwrap(), *s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in PowerState::ALL {
            assert_eq!(s.as_str().parse::<PowerState>().unwrap(), *s);
        }
        for s in InstanceAction::ALL {
            assert_eq!(s.as_str().parse::<InstanceAction>().unwrap(), *s);
        }
        let err = "explode".parse::<InstanceAction>().unwrap_err();
        assert!(err.contains("start, stop"), "{err}");
    }

    #[test]
    fn actions_by_state() {
        use ActionEffect as E;
        use InstanceAction::*;
        let running = instance("web", 0, "1", 0);
        assert_eq!(running.accept(Start), Ok(E::None));
        assert_eq!(
            running.accept(Stop),
            Ok(E::SetDesiredPower(DesiredPower::Stopped))
        );
        assert_eq!(
            running.accept(Deallocate),
            Ok(E::SetDesiredPower(DesiredPower::Deallocated))
        );
        assert_eq!(
            running.accept(Restart),
            Ok(E::Pending(PendingAction::Restart))
        );
        assert_eq!(
            running.accept(Reimage),
            Ok(E::Pending(PendingAction::Reimage))
        );
        assert_eq!(running.accept(Delete), Ok(E::Delete));

        let stopped =
            instance("web", 0, "1", 0).powered(DesiredPower::Stopped, PowerState::Stopped);
        assert!(
            stopped
                .accept(Restart)
                .unwrap_err()
                .reason
                .contains("start it instead")
        );
        assert_eq!(
            stopped.accept(Start),
            Ok(E::SetDesiredPower(DesiredPower::Running))
        );
        assert_eq!(stopped.accept(Stop), Ok(E::None));

        let deallocated =
            instance("web", 0, "1", 0).powered(DesiredPower::Deallocated, PowerState::Deallocated);
        assert!(deallocated.accept(Stop).is_err());

        let creating = instance("web", 0, "1", 0).in_state(ProvisioningState::Creating);
        for action in [Start, Stop, Deallocate, Restart, Reimage] {
            assert!(creating.accept(action).is_err(), "{action} while creating");
        }
        assert_eq!(creating.accept(Delete), Ok(E::Delete));

        let deleting = instance("web", 0, "1", 0).in_state(ProvisioningState::Deleting);
        for action in InstanceAction::ALL {
            assert!(deleting.accept(*action).is_err(), "{action} while deleting");
        }

        let mut restarting = instance("web", 0, "1", 0);
        restarting.pending = Some(PendingAction::Restart);
        assert!(
            restarting
                .accept(Reimage)
                .unwrap_err()
                .reason
                .contains("restart")
        );
        assert_eq!(restarting.accept(Delete), Ok(E::Delete));
    }
}
