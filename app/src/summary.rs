//! What the portal's pages show, computed from the domain types: plain data that crosses
//! the server-function boundary as JSON, and plain functions with plain tests.

use flotilla_domain::{HealthState, Instance, PowerState, ScaleSet};
use serde::{Deserialize, Serialize};

/// How many instances of a scale set are in each power and health state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceCounts {
    pub total: u32,
    /// Non-zero counts only, in [`PowerState::ALL`] order.
    pub by_power: Vec<(PowerState, u32)>,
    /// Non-zero counts only, in [`HealthState::ALL`] order.
    pub by_health: Vec<(HealthState, u32)>,
    /// Instances on the scale set's latest model version.
    pub latest_model: u32,
}

impl InstanceCounts {
    pub fn of(instances: &[Instance]) -> Self {
        let count = |pred: &dyn Fn(&Instance) -> bool| -> u32 {
            instances.iter().filter(|i| pred(i)).count() as u32
        };
        Self {
            total: instances.len() as u32,
            by_power: PowerState::ALL
                .iter()
                .map(|&s| (s, count(&|i| i.power_state == s)))
                .filter(|&(_, n)| n > 0)
                .collect(),
            by_health: HealthState::ALL
                .iter()
                .map(|&s| (s, count(&|i| i.health_state == s)))
                .filter(|&(_, n)| n > 0)
                .collect(),
            latest_model: count(&|i| i.latest_model),
        }
    }

    pub fn power(&self, state: PowerState) -> u32 {
        self.by_power
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |&(_, n)| n)
    }

    pub fn running(&self) -> u32 {
        self.power(PowerState::Running)
    }
}

/// One row of the scale-set list and one card of the overview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleSetSummary {
    pub scale_set: ScaleSet,
    pub instances: InstanceCounts,
}

impl ScaleSetSummary {
    pub fn new(scale_set: ScaleSet, instances: &[Instance]) -> Self {
        Self {
            scale_set,
            instances: InstanceCounts::of(instances),
        }
    }

    pub fn name(&self) -> &str {
        self.scale_set.name()
    }
}

/// A scale set's page: the set and its instances in ordinal order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleSetDetail {
    pub scale_set: ScaleSet,
    pub instances: Vec<Instance>,
    pub counts: InstanceCounts,
}

impl ScaleSetDetail {
    pub fn new(scale_set: ScaleSet, mut instances: Vec<Instance>) -> Self {
        instances.sort_by_key(|i| i.ordinal);
        let counts = InstanceCounts::of(&instances);
        Self {
            scale_set,
            instances,
            counts,
        }
    }
}

/// The fleet at a glance: totals over every scale set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FleetTotals {
    pub scale_sets: u32,
    pub instances: u32,
    pub running: u32,
    pub desired: u32,
}

impl FleetTotals {
    pub fn of(summaries: &[ScaleSetSummary]) -> Self {
        summaries.iter().fold(Self::default(), |t, s| Self {
            scale_sets: t.scale_sets + 1,
            instances: t.instances + s.instances.total,
            running: t.running + s.instances.running(),
            desired: t.desired + s.scale_set.spec.capacity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use flotilla_domain::{DesiredPower, ProvisioningState, ScaleSetSpec, ScaleSetState};

    fn instance(ordinal: u64, power: PowerState, health: HealthState, latest: bool) -> Instance {
        Instance {
            id: format!("web_{ordinal}"),
            scale_set: "web".into(),
            ordinal,
            zone: "1".into(),
            fault_domain: 0,
            model_version: 1,
            latest_model: latest,
            provisioning_state: ProvisioningState::Succeeded,
            power_state: power,
            health_state: health,
            desired_power: DesiredPower::Running,
            pending: None,
            protect_from_scale_in: false,
            protect_from_scale_set_actions: false,
            address: None,
            last_error: None,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
            generation: 1,
        }
    }

    fn set(capacity: u32) -> ScaleSet {
        ScaleSet {
            spec: ScaleSetSpec::example("web", capacity),
            model_version: 1,
            generation: 1,
            state: ScaleSetState::Active,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn counts_keep_state_order_and_skip_zeroes() {
        let instances = [
            instance(0, PowerState::Stopped, HealthState::Unknown, false),
            instance(1, PowerState::Running, HealthState::Healthy, true),
            instance(2, PowerState::Running, HealthState::Unhealthy, true),
        ];
        let counts = InstanceCounts::of(&instances);
        assert_eq!(counts.total, 3);
        assert_eq!(
            counts.by_power,
            vec![(PowerState::Running, 2), (PowerState::Stopped, 1)]
        );
        assert_eq!(
            counts.by_health,
            vec![
                (HealthState::Healthy, 1),
                (HealthState::Unhealthy, 1),
                (HealthState::Unknown, 1)
            ]
        );
        assert_eq!(counts.latest_model, 2);
        assert_eq!(counts.running(), 2);
        assert_eq!(counts.power(PowerState::Deallocated), 0);
    }

    #[test]
    fn no_instances_count_nothing() {
        assert_eq!(InstanceCounts::of(&[]), InstanceCounts::default());
    }

    #[test]
    fn detail_lists_instances_by_ordinal() {
        let detail = ScaleSetDetail::new(
            set(2),
            vec![
                instance(7, PowerState::Running, HealthState::Healthy, true),
                instance(3, PowerState::Starting, HealthState::Initializing, true),
            ],
        );
        let ids: Vec<_> = detail.instances.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["web_3", "web_7"]);
        assert_eq!(detail.counts.total, 2);
    }

    #[test]
    fn totals_add_up_over_sets() {
        let a = ScaleSetSummary::new(
            set(3),
            &[instance(0, PowerState::Running, HealthState::Healthy, true)],
        );
        let b = ScaleSetSummary::new(
            set(2),
            &[
                instance(0, PowerState::Running, HealthState::Healthy, true),
                instance(1, PowerState::Starting, HealthState::Initializing, true),
            ],
        );
        assert_eq!(
            FleetTotals::of(&[a, b]),
            FleetTotals {
                scale_sets: 2,
                instances: 3,
                running: 2,
                desired: 5
            }
        );
    }
}
