//! What the portal's pages show, computed from the domain types: plain data that crosses
//! the server-function boundary as JSON, and plain functions with plain tests.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use flotilla_domain::instance::StateCount;
use flotilla_domain::{
    ActivityFilter, ActivityResult, HealthState, Instance, PowerState, ScaleSet, ScaleSetState,
};
use serde::{Deserialize, Serialize};

use crate::placement_grid::Grid;

use crate::activity_query::{self, ActivityQuery};

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
        let one = |i: &Instance| StateCount {
            scale_set: String::new(),
            power_state: i.power_state,
            health_state: i.health_state,
            provisioning_state: i.provisioning_state,
            latest_model: i.latest_model,
            count: 1,
        };
        Self::of_counts(&instances.iter().map(one).collect::<Vec<_>>())
    }

    /// The counts of one set from the store's counts by state (no record read).
    pub fn of_counts(counts: &[StateCount]) -> Self {
        let count = |pred: &dyn Fn(&StateCount) -> bool| -> u32 {
            counts
                .iter()
                .filter(|c| pred(c))
                .map(|c| c.count as u32)
                .sum()
        };
        Self {
            total: count(&|_| true),
            by_power: non_zero(PowerState::ALL, |s| count(&|c| c.power_state == s)),
            by_health: non_zero(HealthState::ALL, |s| count(&|c| c.health_state == s)),
            latest_model: count(&|c| c.latest_model),
        }
    }

    /// The counts of several scale sets added up, in the same state order.
    pub fn sum<'a>(counts: impl IntoIterator<Item = &'a InstanceCounts>) -> Self {
        counts.into_iter().fold(Self::default(), |sum, c| Self {
            total: sum.total + c.total,
            by_power: non_zero(PowerState::ALL, |s| {
                count_in(&sum.by_power, s) + count_in(&c.by_power, s)
            }),
            by_health: non_zero(HealthState::ALL, |s| {
                count_in(&sum.by_health, s) + count_in(&c.by_health, s)
            }),
            latest_model: sum.latest_model + c.latest_model,
        })
    }

    pub fn power(&self, state: PowerState) -> u32 {
        count_in(&self.by_power, state)
    }

    pub fn health(&self, state: HealthState) -> u32 {
        count_in(&self.by_health, state)
    }

    pub fn running(&self) -> u32 {
        self.power(PowerState::Running)
    }

    /// The non-zero counts by power or by health state, each state as the API spells it.
    pub fn breakdown(&self, by: Breakdown) -> Vec<(&'static str, u32)> {
        match by {
            Breakdown::Power => self
                .by_power
                .iter()
                .map(|&(s, n)| (s.as_str(), n))
                .collect(),
            Breakdown::Health => self
                .by_health
                .iter()
                .map(|&(s, n)| (s.as_str(), n))
                .collect(),
        }
    }
}

/// Which of an instance's states a summary counts by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Breakdown {
    #[default]
    Power,
    Health,
}

impl Breakdown {
    /// `power` or `health`, for data attributes and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Power => "power",
            Self::Health => "health",
        }
    }
}

/// `(state, count)` for each state of `order` whose count is not zero, in that order.
fn non_zero<S: Copy>(order: &[S], count: impl Fn(S) -> u32) -> Vec<(S, u32)> {
    order
        .iter()
        .map(|&s| (s, count(s)))
        .filter(|&(_, n)| n > 0)
        .collect()
}

/// The count of `state` in a list of non-zero counts.
fn count_in<S: PartialEq>(counts: &[(S, u32)], state: S) -> u32 {
    counts
        .iter()
        .find(|(s, _)| *s == state)
        .map_or(0, |&(_, n)| n)
}

/// One row of the scale-set list and one card of the overview: what they show of the set
/// (not its whole model — a hundred sets' would be most of the page's weight) and its
/// instances' counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleSetSummary {
    pub name: String,
    pub state: ScaleSetState,
    /// The desired number of instances.
    pub capacity: u32,
    pub zones: Vec<String>,
    pub model_version: u32,
    pub created_at: DateTime<Utc>,
    pub instances: InstanceCounts,
}

impl ScaleSetSummary {
    /// The summary of `set`, whose instances are counted `instances`.
    pub fn new(set: ScaleSet, instances: InstanceCounts) -> Self {
        Self {
            name: set.spec.name,
            state: set.state,
            capacity: set.spec.capacity,
            zones: set.spec.zones,
            model_version: set.model_version,
            created_at: set.created_at,
            instances,
        }
    }

    /// One summary per set of `sets`, in their order, from the store's counts by state of
    /// the whole fleet (in any order).
    pub fn of_fleet(sets: Vec<ScaleSet>, counts: Vec<StateCount>) -> Vec<Self> {
        let mut by_set: HashMap<String, Vec<StateCount>> = HashMap::new();
        for count in counts {
            by_set
                .entry(count.scale_set.clone())
                .or_default()
                .push(count);
        }
        sets.into_iter()
            .map(|set| {
                let own = by_set.remove(set.name()).unwrap_or_default();
                Self::new(set, InstanceCounts::of_counts(&own))
            })
            .collect()
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A scale set's page: the set, its counts by state and what the tab shown needs of its
/// instances — their ids, their places in the zones × fault domains grid, or every record
/// in ordinal order — as read at `read_at` (the instant ages are counted to, the same on
/// the server and in the browser). The Instances and Health tabs read their rows a page at
/// a time instead ([`crate::api::instances::instance_rows`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleSetDetail {
    pub scale_set: ScaleSet,
    /// Empty unless read with the instances ([`Detail::Instances`]).
    pub instances: Vec<Instance>,
    /// The instances' ids by ordinal, when read with them ([`Detail::Ids`]).
    pub ids: Vec<String>,
    /// Where the instances sit, when read with it ([`Detail::Grid`]).
    pub grid: Option<Grid>,
    pub counts: InstanceCounts,
    pub read_at: DateTime<Utc>,
}

/// How much of its instances a read of a scale set carries: what the tab shown needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Detail {
    /// Their counts by state only.
    Counts,
    /// Their ids too (the monitoring tab's per-instance charts).
    Ids,
    /// The zones × fault domains grid (the overview).
    Grid,
    /// Every record (the load balancer's pool).
    Instances,
}

impl ScaleSetDetail {
    /// With what `detail` asks of the instances, counted.
    pub fn new(
        scale_set: ScaleSet,
        mut instances: Vec<Instance>,
        detail: Detail,
        read_at: DateTime<Utc>,
    ) -> Self {
        instances.sort_by_key(|i| i.ordinal);
        let counts = InstanceCounts::of(&instances);
        let ids = match detail {
            Detail::Ids => instances.iter().map(|i| i.id.clone()).collect(),
            _ => Vec::new(),
        };
        let grid = (detail == Detail::Grid).then(|| {
            Grid::of(
                &scale_set.spec.zones,
                scale_set.spec.platform_fault_domain_count,
                &instances,
            )
        });
        if detail != Detail::Instances {
            instances.clear();
        }
        Self {
            scale_set,
            instances,
            ids,
            grid,
            counts,
            read_at,
        }
    }

    /// Without the instances: their counts only.
    pub fn counted(scale_set: ScaleSet, counts: &[StateCount], read_at: DateTime<Utc>) -> Self {
        Self {
            scale_set,
            instances: Vec::new(),
            ids: Vec::new(),
            grid: None,
            counts: InstanceCounts::of_counts(counts),
            read_at,
        }
    }
}

/// The fleet at a glance: totals over every scale set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetTotals {
    pub scale_sets: u32,
    /// Instances asked for: the scale sets' capacities added up.
    pub desired: u32,
    /// Every instance, by power and by health state.
    pub instances: InstanceCounts,
}

impl FleetTotals {
    pub fn of(summaries: &[ScaleSetSummary]) -> Self {
        Self {
            scale_sets: summaries.len() as u32,
            desired: summaries.iter().map(|s| s.capacity).sum(),
            instances: InstanceCounts::sum(summaries.iter().map(|s| &s.instances)),
        }
    }

    pub fn running(&self) -> u32 {
        self.instances.running()
    }
}

/// Failed operations in the activity log since a point in time: the overview's "failed in
/// the last hour".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentFailures {
    pub since: DateTime<Utc>,
    /// How many, counted up to [`RecentFailures::MAX`].
    pub count: u32,
}

impl RecentFailures {
    /// How far back the overview looks.
    pub const WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(1);
    /// Counting stops here: the most entries the log answers at once.
    pub const MAX: u32 = 1000;

    /// The start of the window ending at `now`, in whole seconds so that the activity
    /// log's filter (which is typed to the second) finds exactly the entries counted.
    pub fn since(now: DateTime<Utc>) -> DateTime<Utc> {
        let since = now - Self::WINDOW;
        since - chrono::TimeDelta::nanoseconds(i64::from(since.timestamp_subsec_nanos()))
    }

    /// The activity log's filter for the failures since `since`.
    pub fn filter(since: DateTime<Utc>) -> ActivityFilter {
        ActivityFilter {
            result: Some(ActivityResult::Failed),
            since: Some(since),
            limit: Self::MAX,
            ..ActivityFilter::default()
        }
    }

    /// The failures since `since`, of which the log found `found`.
    pub fn new(since: DateTime<Utc>, found: usize) -> Self {
        Self {
            since,
            count: u32::try_from(found).unwrap_or(u32::MAX).min(Self::MAX),
        }
    }

    /// `3`, or `1000+` when counting stopped.
    pub fn label(&self) -> String {
        if self.count >= Self::MAX {
            format!("{}+", Self::MAX)
        } else {
            self.count.to_string()
        }
    }

    /// The activity log showing these failures.
    pub fn href(&self) -> String {
        ActivityQuery {
            result: ActivityResult::Failed.as_str().into(),
            since: activity_query::time_value(&self.since),
            ..ActivityQuery::default()
        }
        .href()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use flotilla_domain::instance::fixtures;
    use flotilla_domain::{DesiredPower, ScaleSetSpec, ScaleSetState};

    fn instance(ordinal: u64, power: PowerState, health: HealthState, latest: bool) -> Instance {
        let mut i =
            fixtures::instance("web", ordinal, "1", 0).powered(DesiredPower::Running, power);
        i.health_state = health;
        i.latest_model = latest;
        i
    }

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
            Detail::Instances,
            DateTime::UNIX_EPOCH,
        );
        let ids: Vec<_> = detail.instances.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["web_3", "web_7"]);
        assert!(detail.ids.is_empty() && detail.grid.is_none());
        assert_eq!(detail.counts.total, 2);
        let named = ScaleSetDetail::new(
            set(2),
            vec![
                instance(7, PowerState::Running, HealthState::Healthy, true),
                instance(3, PowerState::Starting, HealthState::Initializing, true),
            ],
            Detail::Ids,
            DateTime::UNIX_EPOCH,
        );
        assert!(named.instances.is_empty() && named.grid.is_none());
        assert_eq!(
            (named.ids, named.counts.total),
            (vec!["web_3".into(), "web_7".into()], 2)
        );
        let placed = ScaleSetDetail::new(
            set(2),
            vec![instance(7, PowerState::Running, HealthState::Healthy, true)],
            Detail::Grid,
            DateTime::UNIX_EPOCH,
        );
        assert!(placed.instances.is_empty() && placed.ids.is_empty());
        let grid = placed.grid.expect("read with the grid");
        let squares: Vec<_> = grid.cells.iter().flatten().flatten().collect();
        assert_eq!(squares.len(), 1);
        assert_eq!(
            (squares[0].id.as_str(), squares[0].state.as_str()),
            ("web_7", "healthy")
        );
    }

    #[test]
    fn fleet_summaries_count_each_sets_own_instances() {
        let mut web = set(2);
        web.spec.name = "web".into();
        let mut api = set(1);
        api.spec.name = "api".into();
        let mut idle = set(0);
        idle.spec.name = "idle".into();
        let count = |set: &str, power, health, latest, count| StateCount {
            scale_set: set.into(),
            power_state: power,
            health_state: health,
            provisioning_state: flotilla_domain::ProvisioningState::Succeeded,
            latest_model: latest,
            count,
        };
        let fleet = vec![
            count("web", PowerState::Stopped, HealthState::Unknown, true, 1),
            count("api", PowerState::Running, HealthState::Healthy, true, 1),
            count("web", PowerState::Running, HealthState::Healthy, true, 1),
            count("web", PowerState::Running, HealthState::Healthy, false, 4),
        ];
        let summaries = ScaleSetSummary::of_fleet(vec![web, api, idle], fleet);
        let names: Vec<&str> = summaries.iter().map(|s| s.name()).collect();
        assert_eq!(names, ["web", "api", "idle"]);
        let totals: Vec<(u32, u32, u32)> = summaries
            .iter()
            .map(|s| {
                let c = &s.instances;
                (c.total, c.running(), c.latest_model)
            })
            .collect();
        assert_eq!(totals, [(6, 5, 2), (1, 1, 1), (0, 0, 0)]);
        assert_eq!(
            summaries[0].instances.by_health,
            [(HealthState::Healthy, 5), (HealthState::Unknown, 1)]
        );
    }

    #[test]
    fn totals_add_up_over_sets() {
        let summary = |scale_set, instances: &[Instance]| {
            ScaleSetSummary::new(scale_set, InstanceCounts::of(instances))
        };
        let a = summary(
            set(3),
            &[instance(0, PowerState::Running, HealthState::Healthy, true)],
        );
        let b = summary(
            set(2),
            &[
                instance(0, PowerState::Running, HealthState::Unhealthy, true),
                instance(1, PowerState::Starting, HealthState::Initializing, false),
            ],
        );
        let totals = FleetTotals::of(&[a, b]);
        assert_eq!(totals.scale_sets, 2);
        assert_eq!(totals.desired, 5);
        assert_eq!(totals.running(), 2);
        assert_eq!(
            totals.instances,
            InstanceCounts {
                total: 3,
                by_power: vec![(PowerState::Starting, 1), (PowerState::Running, 2)],
                by_health: vec![
                    (HealthState::Initializing, 1),
                    (HealthState::Healthy, 1),
                    (HealthState::Unhealthy, 1)
                ],
                latest_model: 2,
            }
        );
        assert_eq!(totals.instances.health(HealthState::Unknown), 0);
        assert_eq!(FleetTotals::of(&[]), FleetTotals::default());
    }

    #[test]
    fn breakdowns_name_the_states_as_the_api_does() {
        let counts = InstanceCounts::of(&[
            instance(0, PowerState::Stopped, HealthState::Unknown, true),
            instance(1, PowerState::Running, HealthState::Healthy, true),
            instance(2, PowerState::Running, HealthState::Healthy, true),
        ]);
        assert_eq!(
            counts.breakdown(Breakdown::Power),
            [("running", 2), ("stopped", 1)]
        );
        assert_eq!(
            counts.breakdown(Breakdown::Health),
            [("healthy", 2), ("unknown", 1)]
        );
    }

    #[test]
    fn recent_failures_are_the_last_hour_to_the_second() {
        let now = DateTime::parse_from_rfc3339("2026-01-31T13:45:09.750Z")
            .unwrap()
            .with_timezone(&Utc);
        let since = RecentFailures::since(now);
        assert_eq!(since.to_rfc3339(), "2026-01-31T12:45:09+00:00");
        let filter = RecentFailures::filter(since);
        assert_eq!(filter.result, Some(ActivityResult::Failed));
        assert_eq!(filter.since, Some(since));
        assert_eq!(filter.limit, RecentFailures::MAX);

        let failures = RecentFailures::new(since, 3);
        assert_eq!(failures.label(), "3");
        assert_eq!(
            failures.href(),
            "/activity?result=failed&since=2026-01-31T12%3A45%3A09"
        );
        assert_eq!(RecentFailures::new(since, 1000).label(), "1000+");
        assert_eq!(RecentFailures::new(since, 5000).count, RecentFailures::MAX);
    }
}
