//! Warm pools: instances created ahead of need, prepared (booted, their user data run,
//! found healthy by the probe once) and parked, so a scale-out brings them into service in
//! the time it takes to resume them rather than to create and boot a VM.
//!
//! - **Size**, as AWS defines it: `max(min_size, max_prepared_capacity − capacity)`, where
//!   `max_prepared_capacity` defaults to the autoscale maximum (the largest maximum of the
//!   set's profiles, autoscale enabled), else the capacity. [`Sizing`] states the
//!   arithmetic.
//! - **Members** are records like any instance's, with `warm_pool_state` set: they do not
//!   count toward capacity, are not in the load balancer, not repaired, not rolled out (a
//!   member on an old model is replaced: a new model refreshes the pool) and not listed in
//!   `…/instances`; scale-in never chooses them.
//! - **Scale-out** takes prepared members first, the fastest state first (running, paused,
//!   saved, stopped), spreading over zones; the plan refills the pool with new members in
//!   the same step, which are prepared in the background.
//! - **`reuse_on_scale_in`**: a scaled-in instance on the current model returns to the pool
//!   (after the load balancer drained it and its terminating hooks ran) instead of being
//!   deleted, while the pool has room.
//! - Launching hooks run when a member enters service, not when it is prepared; a member
//!   leaving the pool (surplus, old model, a person's delete) never served and runs no
//!   terminating hook.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::instance::{HealthState, Instance, PowerState, ProvisioningState, WarmPoolState};
use crate::scale_set::{MAX_CAPACITY, ScaleSetSpec};
use crate::validation::ValidationErrors;

/// A scale set's warm pool (`warm_pool` in the spec; `null`: none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WarmPool {
    /// The fewest instances the pool keeps, whatever the capacity (0).
    #[serde(default)]
    pub min_size: u32,
    /// The most instances the set may have prepared: in service and in the pool together.
    /// `null`: the autoscale maximum when autoscale is enabled, else the capacity.
    #[serde(default)]
    pub max_prepared_capacity: Option<u32>,
    /// How members are parked (`stopped`, as AWS's default).
    #[serde(default = "default_state")]
    pub pool_state: WarmPoolState,
    /// A scaled-in instance returns to the pool instead of being deleted.
    #[serde(default)]
    pub reuse_on_scale_in: bool,
}

fn default_state() -> WarmPoolState {
    WarmPoolState::Stopped
}

impl WarmPool {
    /// Every problem, each under `warm_pool.…`.
    pub fn validate(&self) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        errors.range("warm_pool.min_size", self.min_size, 0, MAX_CAPACITY);
        if let Some(max) = self.max_prepared_capacity {
            errors.range("warm_pool.max_prepared_capacity", max, 0, MAX_CAPACITY);
        }
        errors
    }
}

/// Where `max_prepared_capacity` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PreparedSource {
    /// Set in the warm pool.
    Setting,
    /// The largest maximum of the autoscale profiles.
    AutoscaleMaximum,
    /// The set's capacity (no autoscale).
    Capacity,
}

/// The pool's size and how it follows from the setting (shown in the portal as it is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sizing {
    pub max_prepared_capacity: u32,
    pub max_prepared_source: PreparedSource,
    pub capacity: u32,
    pub min_size: u32,
    /// `max(min_size, max_prepared_capacity − capacity)`.
    pub size: u32,
}

impl Sizing {
    /// The arithmetic in one line, e.g. `max(min_size 1, max prepared 10 − capacity 4) = 6`.
    pub fn explain(&self) -> String {
        let source = match self.max_prepared_source {
            PreparedSource::Setting => "max prepared",
            PreparedSource::AutoscaleMaximum => "autoscale maximum",
            PreparedSource::Capacity => "capacity",
        };
        let note = if self.max_prepared_source == PreparedSource::Capacity {
            " (without autoscale or max_prepared_capacity, only min_size is kept)"
        } else {
            ""
        };
        format!(
            "max(min_size {}, {source} {} − capacity {}) = {}{note}",
            self.min_size, self.max_prepared_capacity, self.capacity, self.size
        )
    }
}

/// The pool size of `spec` (`None`: no warm pool).
pub fn sizing(spec: &ScaleSetSpec) -> Option<Sizing> {
    let pool = spec.warm_pool.as_ref()?;
    let autoscale_max = spec
        .autoscale
        .as_ref()
        .filter(|a| a.enabled)
        .and_then(|a| a.profiles.iter().map(|p| p.capacity.maximum).max());
    let (max, source) = match (pool.max_prepared_capacity, autoscale_max) {
        (Some(m), _) => (m, PreparedSource::Setting),
        (None, Some(m)) => (m, PreparedSource::AutoscaleMaximum),
        (None, None) => (spec.capacity, PreparedSource::Capacity),
    };
    Some(Sizing {
        max_prepared_capacity: max,
        max_prepared_source: source,
        capacity: spec.capacity,
        min_size: pool.min_size,
        size: pool.min_size.max(max.saturating_sub(spec.capacity)),
    })
}

/// `GET /scale-sets/{name}/warm-pool`: the members, each with its pool state, and the
/// size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WarmPoolView {
    pub items: Vec<Instance>,
    /// `null` when the set has no warm pool (members may still be leaving).
    pub sizing: Option<Sizing>,
    /// `sizing.explain()`, or why there is no pool.
    pub explanation: String,
}

/// How fast a member parked this way serves again: lower is faster.
pub fn resume_rank(state: WarmPoolState) -> u8 {
    match state {
        WarmPoolState::Running => 0,
        WarmPoolState::Paused => 1,
        WarmPoolState::Saved => 2,
        WarmPoolState::Stopped => 3,
    }
}

/// Whether scale-out may take the member now: prepared, parked (or running) and settled,
/// on `model_version`.
pub fn ready(i: &Instance, model_version: u32) -> bool {
    let Some(state) = i.warm.warm_pool_state else {
        return false;
    };
    i.warm.warm_prepared_at.is_some()
        && i.provisioning_state == ProvisioningState::Succeeded
        && i.model_version == model_version
        && i.power_state == state.power_state()
}

/// What the plan does with one member of the pool that stays (see
/// [`crate::reconcile::plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStep {
    Nothing,
    /// Running and found healthy once (or parked otherwise than the set wants): park it.
    Park,
    /// Not running but should be: being prepared, or to be parked another way.
    Start,
}

/// The next step of a member that stays in the pool whose state the set wants is `want`.
pub fn member_step(i: &Instance, want: WarmPoolState) -> MemberStep {
    if i.provisioning_state != ProvisioningState::Succeeded
        || i.power_state.settled() != i.power_state
    {
        return MemberStep::Nothing;
    }
    match i.warm.warm_prepared_at {
        None if i.power_state != PowerState::Running => MemberStep::Start,
        None if i.health_state == HealthState::Healthy => MemberStep::Park,
        None => MemberStep::Nothing,
        Some(_) if i.warm.warm_pool_state == Some(want) && i.power_state == want.power_state() => {
            MemberStep::Nothing
        }
        // Parked otherwise than the set now wants (or knocked out of it): parked again,
        // from running.
        Some(_) if i.power_state == PowerState::Running => MemberStep::Park,
        Some(_) => MemberStep::Start,
    }
}

/// The record of a member just parked in `state` at `now` (or of an instance returned to
/// the pool): out of service, prepared, no wait or lease left.
pub fn parked(i: &Instance, state: WarmPoolState, now: DateTime<Utc>) -> Instance {
    let mut n = i.clone();
    n.warm.warm_pool_state = Some(state);
    n.warm.warm_prepared_at = Some(i.warm.warm_prepared_at.unwrap_or(now));
    n.warm.warm_return = false;
    n.provisioning_state = ProvisioningState::Succeeded;
    n.lifecycle = Default::default();
    n.busy_until = None;
    n.pending = None;
    n.retiring = false;
    n.last_error = None;
    n.updated_at = now;
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoscale::AutoscaleSetting;
    use crate::instance::fixtures::instance;

    fn spec(capacity: u32, pool: WarmPool) -> ScaleSetSpec {
        ScaleSetSpec {
            warm_pool: Some(pool),
            ..ScaleSetSpec::example("web", capacity)
        }
    }

    fn pool(min_size: u32, max: Option<u32>) -> WarmPool {
        WarmPool {
            min_size,
            max_prepared_capacity: max,
            pool_state: WarmPoolState::Paused,
            reuse_on_scale_in: false,
        }
    }

    #[test]
    fn the_size_follows_aws_formula() {
        let s = sizing(&spec(4, pool(1, Some(10)))).unwrap();
        assert_eq!(
            (s.size, s.max_prepared_source),
            (6, PreparedSource::Setting)
        );
        assert_eq!(
            s.explain(),
            "max(min_size 1, max prepared 10 − capacity 4) = 6"
        );
        // Below the capacity the difference is zero and min_size holds.
        assert_eq!(sizing(&spec(12, pool(2, Some(10)))).unwrap().size, 2);
        // Without a maximum and without autoscale: the capacity, so min_size alone.
        let s = sizing(&spec(5, pool(3, None))).unwrap();
        assert_eq!(
            (s.size, s.max_prepared_source),
            (3, PreparedSource::Capacity)
        );
        // With autoscale: its largest maximum.
        let mut with_autoscale = spec(4, pool(0, None));
        let mut setting: AutoscaleSetting =
            serde_json::from_value(serde_json::json!({"enabled": true, "profiles": [
                {"name": "day", "capacity": {"minimum": 2, "maximum": 8, "default": 4}},
                {"name": "night", "capacity": {"minimum": 1, "maximum": 5, "default": 2}}
            ]}))
            .unwrap();
        with_autoscale.autoscale = Some(setting.clone());
        let s = sizing(&with_autoscale).unwrap();
        assert_eq!(
            (s.size, s.max_prepared_source),
            (4, PreparedSource::AutoscaleMaximum)
        );
        setting.enabled = false;
        with_autoscale.autoscale = Some(setting);
        assert_eq!(sizing(&with_autoscale).unwrap().size, 0);
        assert!(sizing(&ScaleSetSpec::example("web", 3)).is_none());
    }

    #[test]
    fn validation_names_the_fields() {
        let errors = pool(10_001, Some(20_000)).validate();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["warm_pool.min_size", "warm_pool.max_prepared_capacity"]
        );
        assert!(pool(0, None).validate().0.is_empty());
    }

    #[test]
    fn members_are_prepared_then_parked_then_ready() {
        let want = WarmPoolState::Paused;
        let mut m = instance("web", 0, "1", 0).warm(want, false);
        m.health_state = HealthState::Initializing;
        assert_eq!(member_step(&m, want), MemberStep::Nothing);
        assert!(!m.is_active() && !m.in_pool() && !m.in_transition());
        m.health_state = HealthState::Healthy;
        assert_eq!(member_step(&m, want), MemberStep::Park);
        assert!(!ready(&m, 1));
        m.power_state = PowerState::Stopped;
        assert_eq!(member_step(&m, want), MemberStep::Start);

        let p = parked(&m, want, DateTime::UNIX_EPOCH);
        let mut p = Instance {
            power_state: PowerState::Paused,
            ..p
        };
        assert_eq!(member_step(&p, want), MemberStep::Nothing);
        assert!(ready(&p, 1));
        assert!(!ready(&p, 2), "a member of an old model is not taken");
        // The set now wants them saved: started, then parked again.
        assert_eq!(member_step(&p, WarmPoolState::Saved), MemberStep::Start);
        p.power_state = PowerState::Running;
        assert_eq!(member_step(&p, want), MemberStep::Park);
        assert_eq!(member_step(&p, WarmPoolState::Saved), MemberStep::Park);
        assert!(resume_rank(WarmPoolState::Running) < resume_rank(WarmPoolState::Stopped));
    }
}
