//! Autoscale arithmetic: Azure Monitor-style metric rules with the flapping projection, and
//! Kubernetes HPA-style target tracking with stabilization windows. Pure functions over
//! samples and counts; every intermediate value is returned so a decision can be explained.
//!
//! Rules (reference: scale-set-semantics b.1, b.2):
//! - a rule's metric is reduced per time grain with its `statistic` over every sample of the
//!   grain, the grains of the time window are aggregated with `time_aggregation`, and the
//!   result is compared with `threshold`; a rule without data never fires;
//! - scale out if any increase rule fires (to the highest target); scale in only if every
//!   decrease rule fires (to the smallest change); targets are clamped to the bounds;
//! - before a scale-in, each candidate count from the target up to the current count is
//!   projected: an averaged metric is taken to spread over fewer instances (value × current /
//!   candidate); the first candidate at which no increase rule would fire is chosen, and if
//!   none qualifies the scale-in is skipped (Azure's "flapping");
//! - target tracking: desired = ⌈current × value / target⌉ unless |value / target − 1| is
//!   within the tolerance; a scale-down takes the highest recommendation of its
//!   stabilization window, a scale-up the lowest of its own.
//!
//! [`setting`] holds the setting and its validation, [`decision`] one evaluation as the live
//! autoscaler makes it, [`forecast`] the load forecasts of predictive autoscale, and
//! [`backtest`] the same evaluations replayed over a load on a simulated fleet, scored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::metrics::Point;

pub mod backtest;
pub mod decision;
pub mod forecast;
pub mod setting;

pub use decision::{Decision, Operation, decide_setting};
pub use setting::{AutoscaleSetting, Profile, TargetTracking};

/// How the samples of one time grain are reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    Average,
    Min,
    Max,
    Sum,
    Count,
}

/// How the grains of the time window are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TimeAggregation {
    Average,
    Minimum,
    Maximum,
    Total,
    Count,
    Last,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
    Equals,
    NotEquals,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Increase,
    Decrease,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    /// Add or remove `value` instances.
    ChangeCount,
    /// Add or remove `value` % of the current count (rounded up, at least one).
    PercentChangeCount,
    /// Go to exactly `value` instances.
    ExactCount,
}

/// One metric rule (DESIGN.md §4 names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScaleRule {
    pub metric: String,
    pub statistic: Statistic,
    pub time_grain_seconds: u32,
    pub time_window_seconds: u32,
    pub time_aggregation: TimeAggregation,
    pub operator: Operator,
    pub threshold: f64,
    pub direction: Direction,
    #[serde(rename = "type")]
    pub action: ActionType,
    pub value: u32,
    pub cooldown_seconds: u32,
}

/// Capacity bounds of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Bounds {
    pub minimum: u32,
    pub maximum: u32,
    pub default: u32,
}

impl Bounds {
    pub fn clamp(&self, n: u32) -> u32 {
        n.clamp(self.minimum, self.maximum.max(self.minimum))
    }
}

/// A rule's evaluation: the grains' values, their aggregate and the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleEvaluation {
    /// One value per grain of the window, oldest first (`None`: no sample in the grain).
    pub grains: Vec<Option<f64>>,
    /// The aggregate of the grains with data (`None`: no data at all).
    pub value: Option<f64>,
    pub fired: bool,
    /// The share of the grains with data (0–1); a scale-in rule needs at least half.
    pub coverage: f64,
}

impl Operator {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::GreaterThan => value > threshold,
            Self::GreaterThanOrEqual => value >= threshold,
            Self::LessThan => value < threshold,
            Self::LessThanOrEqual => value <= threshold,
            Self::Equals => value == threshold,
            Self::NotEquals => value != threshold,
        }
    }
}

/// The value of `statistic` over every value a (merged) point aggregates.
fn statistic_of(statistic: Statistic, merged: &Point) -> f64 {
    match statistic {
        Statistic::Average => merged.average,
        Statistic::Min => merged.minimum,
        Statistic::Max => merged.maximum,
        Statistic::Sum => merged.total,
        Statistic::Count => f64::from(merged.count),
    }
}

/// Combines the grains with data in one pass (`None`: no grain has data).
fn aggregate(aggregation: TimeAggregation, grains: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut n, mut sum, mut min, mut max, mut last) =
        (0u32, 0.0, f64::INFINITY, f64::NEG_INFINITY, None);
    for g in grains {
        n += 1;
        sum += g;
        min = min.min(g);
        max = max.max(g);
        last = Some(g);
    }
    let last = last?;
    Some(match aggregation {
        TimeAggregation::Average => sum / f64::from(n),
        TimeAggregation::Minimum => min,
        TimeAggregation::Maximum => max,
        TimeAggregation::Total => sum,
        TimeAggregation::Count => f64::from(n),
        TimeAggregation::Last => last,
    })
}

/// Evaluates `rule` over `points` (any order; each the aggregate of the instances' values
/// at one tick) for the window ending at `now`, in one pass over the points. A scale-in
/// rule fires only when at least half of its grains have data (missing metrics never scale
/// in); a scale-out rule fires on whatever data there is.
pub fn evaluate(rule: &ScaleRule, points: &[Point], now: DateTime<Utc>) -> RuleEvaluation {
    let grain_ms = i64::from(rule.time_grain_seconds.max(1)) * 1000;
    let count = (rule.time_window_seconds.max(1)).div_ceil(rule.time_grain_seconds.max(1));
    let end = now.timestamp_millis();
    let start = end - grain_ms * i64::from(count);
    let mut merged: Vec<Option<Point>> = vec![None; count as usize];
    for p in points {
        let at = p.at.timestamp_millis();
        if (start..end).contains(&at)
            && let Some(slot) = merged.get_mut(((at - start) / grain_ms) as usize)
        {
            *slot = Some(slot.map_or(*p, |m| m.merged(p)));
        }
    }
    let grains: Vec<Option<f64>> = merged
        .iter()
        .map(|m| m.map(|m| statistic_of(rule.statistic, &m)))
        .collect();
    let value = aggregate(rule.time_aggregation, grains.iter().flatten().copied());
    let with_data = grains.iter().flatten().count();
    let covered = with_data * 2 >= grains.len();
    RuleEvaluation {
        fired: value.is_some_and(|v| rule.operator.holds(v, rule.threshold))
            && (covered || rule.direction == Direction::Increase),
        coverage: with_data as f64 / grains.len().max(1) as f64,
        grains,
        value,
    }
}

/// The count a rule's action leads to from `current`.
pub fn apply(rule: &ScaleRule, current: u32) -> u32 {
    let step = match rule.action {
        ActionType::ChangeCount => rule.value,
        ActionType::PercentChangeCount => {
            ((u64::from(current) * u64::from(rule.value)).div_ceil(100) as u32).max(1)
        }
        ActionType::ExactCount => return rule.value,
    };
    match rule.direction {
        Direction::Increase => current.saturating_add(step),
        Direction::Decrease => current.saturating_sub(step),
    }
}

/// One count the flapping guard tried before a scale-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Projection {
    pub count: u32,
    /// Each increase rule's value projected at `count` (`None`: the rule had no data).
    pub projected: Vec<Option<f64>>,
    /// Whether no increase rule would fire at `count`.
    pub accepted: bool,
}

/// What the rules decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleDecision {
    /// The count to go to (`None`: stay).
    pub target: Option<u32>,
    /// Why, in a sentence.
    pub reason: String,
    /// The flapping guard's table, when a scale-in was considered.
    pub projections: Vec<Projection>,
}

/// Decides from the rules' evaluations (same order as `rules`) at `current` instances.
pub fn decide(
    rules: &[ScaleRule],
    evaluations: &[RuleEvaluation],
    current: u32,
    bounds: Bounds,
) -> RuleDecision {
    let stay = |reason: String, projections| RuleDecision {
        target: None,
        reason,
        projections,
    };
    let clamped = bounds.clamp(current);
    if clamped != current {
        return RuleDecision {
            target: Some(clamped),
            reason: format!(
                "{current} is outside the bounds {}–{}",
                bounds.minimum, bounds.maximum
            ),
            projections: vec![],
        };
    }
    let pairs: Vec<(&ScaleRule, &RuleEvaluation)> = rules.iter().zip(evaluations).collect();
    if !pairs.is_empty() && pairs.iter().all(|(_, e)| e.value.is_none()) {
        return if current < bounds.default {
            RuleDecision {
                target: Some(bounds.default),
                reason: "no metric data: scale out to the default count".into(),
                projections: vec![],
            }
        } else {
            stay(
                "no metric data: never scale in on missing data".into(),
                vec![],
            )
        };
    }
    let increases: Vec<&(&ScaleRule, &RuleEvaluation)> = pairs
        .iter()
        .filter(|(r, _)| r.direction == Direction::Increase)
        .collect();
    if let Some(target) = increases
        .iter()
        .filter(|(_, e)| e.fired)
        .map(|(r, _)| apply(r, current))
        .max()
    {
        let target = target.min(bounds.maximum);
        return if target > current {
            RuleDecision {
                target: Some(target),
                reason: format!("a scale-out rule fired: {current} → {target}"),
                projections: vec![],
            }
        } else {
            stay(
                format!("a scale-out rule fired but {current} is the maximum"),
                vec![],
            )
        };
    }
    let decreases: Vec<&(&ScaleRule, &RuleEvaluation)> = pairs
        .iter()
        .filter(|(r, _)| r.direction == Direction::Decrease)
        .collect();
    if decreases.is_empty() || !decreases.iter().all(|(_, e)| e.fired) {
        let sparse = decreases
            .iter()
            .find(|(r, e)| e.value.is_some_and(|v| r.operator.holds(v, r.threshold)) && !e.fired);
        let reason = match sparse {
            Some((r, e)) => format!(
                "no scale-out rule fired; the scale-in rule on {} has data in {} of {} grains (it needs half: missing metrics never scale in)",
                r.metric,
                e.grains.iter().flatten().count(),
                e.grains.len()
            ),
            None => "no scale-out rule fired and not every scale-in rule did".into(),
        };
        return stay(reason, vec![]);
    }
    let target = decreases
        .iter()
        .map(|(r, _)| apply(r, current))
        .max()
        .unwrap_or(current)
        .max(bounds.minimum);
    if target >= current {
        return stay(
            format!("every scale-in rule fired but {current} is the minimum"),
            vec![],
        );
    }
    let mut projections = Vec::new();
    for count in target..current {
        let projected: Vec<Option<f64>> = increases
            .iter()
            .map(|(_, e)| e.value.map(|v| project(v, current, count)))
            .collect();
        let accepted = increases
            .iter()
            .zip(&projected)
            .all(|((r, _), p)| !p.is_some_and(|p| r.operator.holds(p, r.threshold)));
        projections.push(Projection {
            count,
            projected,
            accepted,
        });
        if accepted {
            let reason = if count == target {
                format!("every scale-in rule fired: {current} → {count}")
            } else {
                format!(
                    "every scale-in rule fired; {current} → {count} instead of {target} to avoid flapping"
                )
            };
            return RuleDecision {
                target: Some(count),
                reason,
                projections,
            };
        }
    }
    stay(
        format!(
            "every scale-in rule fired, but at any count below {current} a scale-out rule would fire (flapping)"
        ),
        projections,
    )
}

/// A per-instance average measured at `current` instances, projected onto `count`: the
/// same load spread over fewer (or more) instances. The flapping guard and the editor's
/// warnings both use it.
pub fn project(value: f64, current: u32, count: u32) -> f64 {
    value * f64::from(current) / f64::from(count.max(1))
}

/// Kubernetes HPA's core formula with its tolerance.
pub fn target_tracking(current: u32, value: f64, target: f64, tolerance: f64) -> u32 {
    if current == 0 || target <= 0.0 {
        return current;
    }
    let ratio = value / target;
    if (ratio - 1.0).abs() <= tolerance {
        return current;
    }
    (f64::from(current) * ratio).ceil().max(0.0) as u32
}

/// Applies the stabilization windows: `history` holds earlier recommendations with their
/// time. A scale-down goes no lower than the highest recommendation of the last
/// `down_window`; a scale-up no higher than the lowest of the last `up_window`.
pub fn stabilize(
    history: &[(DateTime<Utc>, u32)],
    now: DateTime<Utc>,
    current: u32,
    desired: u32,
    up_window: chrono::Duration,
    down_window: chrono::Duration,
) -> u32 {
    let within = |w: chrono::Duration| {
        history
            .iter()
            .filter(move |(at, _)| now - *at <= w)
            .map(|(_, n)| *n)
            .chain(std::iter::once(desired))
    };
    if desired < current {
        within(down_window).max().unwrap_or(desired).min(current)
    } else if desired > current {
        within(up_window).min().unwrap_or(desired).max(current)
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(direction: Direction, operator: Operator, threshold: f64, value: u32) -> ScaleRule {
        ScaleRule {
            metric: "cpu_percent".into(),
            statistic: Statistic::Average,
            time_grain_seconds: 60,
            time_window_seconds: 300,
            time_aggregation: TimeAggregation::Average,
            operator,
            threshold,
            direction,
            action: ActionType::ChangeCount,
            value,
            cooldown_seconds: 300,
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::seconds(secs)
    }

    fn evaluated(value: f64, fired: bool) -> RuleEvaluation {
        RuleEvaluation {
            grains: vec![Some(value)],
            value: Some(value),
            fired,
            coverage: 1.0,
        }
    }

    const BOUNDS: Bounds = Bounds {
        minimum: 1,
        maximum: 40,
        default: 2,
    };

    #[test]
    fn grains_reduce_then_aggregate_over_the_window() {
        let r = rule(Direction::Increase, Operator::GreaterThan, 70.0, 1);
        // Grains of 60 s over 300 s ending at 600: [300,360) … [540,600).
        let points = [
            Point::single(at(310), 60.0),
            Point::single(at(320), 80.0), // grain 0 → 70
            Point::single(at(430), 90.0), // grain 2 → 90
            Point::single(at(599), 80.0), // grain 4 → 80
            Point::single(at(100), 0.0),  // outside the window
        ];
        let e = evaluate(&r, &points, at(600));
        assert_eq!(e.grains, [Some(70.0), None, Some(90.0), None, Some(80.0)]);
        assert_eq!(e.value, Some(80.0));
        assert!(e.fired);
        let none = evaluate(&r, &[], at(600));
        assert_eq!((none.value, none.fired), (None, false));
    }

    #[test]
    fn actions() {
        let mut r = rule(Direction::Decrease, Operator::LessThan, 30.0, 10);
        r.action = ActionType::PercentChangeCount;
        assert_eq!(apply(&r, 30), 27);
        assert_eq!(apply(&r, 3), 2, "at least one");
        r.action = ActionType::ExactCount;
        assert_eq!(apply(&r, 30), 10);
        r.action = ActionType::ChangeCount;
        r.direction = Direction::Increase;
        assert_eq!(apply(&r, 30), 40);
    }

    #[test]
    fn any_scale_out_rule_wins_and_scale_in_needs_all() {
        let rules = [
            rule(Direction::Increase, Operator::GreaterThan, 70.0, 1),
            rule(Direction::Increase, Operator::GreaterThan, 1000.0, 3),
            rule(Direction::Decrease, Operator::LessThan, 30.0, 1),
            rule(Direction::Decrease, Operator::LessThan, 100.0, 1),
        ];
        let out = decide(
            &rules,
            &[
                evaluated(80.0, true),
                evaluated(2000.0, true),
                evaluated(80.0, false),
                evaluated(2000.0, false),
            ],
            4,
            BOUNDS,
        );
        assert_eq!(out.target, Some(7), "the highest target: {}", out.reason);
        let partial = decide(
            &rules,
            &[
                evaluated(20.0, false),
                evaluated(50.0, false),
                evaluated(20.0, true),
                evaluated(500.0, false),
            ],
            4,
            BOUNDS,
        );
        assert_eq!(partial.target, None);
    }

    #[test]
    fn azure_flapping_examples() {
        // "scale out ≥ 600 threads / scale in < 600": 3 instances at 1,250 threads.
        let rules = [
            rule(Direction::Increase, Operator::GreaterThanOrEqual, 600.0, 1),
            rule(Direction::Decrease, Operator::LessThan, 600.0, 1),
        ];
        let avg = 1250.0 / 3.0;
        let d = decide(
            &rules,
            &[evaluated(avg, false), evaluated(avg, true)],
            3,
            BOUNDS,
        );
        assert_eq!(d.target, None, "{}", d.reason);
        assert!(d.reason.contains("flapping"));
        assert_eq!(d.projections.len(), 1);
        assert_eq!(d.projections[0].count, 2);
        assert!((d.projections[0].projected[0].unwrap() - 625.0).abs() < 1e-9);
        // "scale in by 10" at 30 instances with CPU 62 % and a scale-out rule at 70 %:
        // only 30 → 27 keeps the projection below 70 %.
        let rules = [
            rule(Direction::Increase, Operator::GreaterThan, 70.0, 1),
            rule(Direction::Decrease, Operator::LessThan, 65.0, 10),
        ];
        let d = decide(
            &rules,
            &[evaluated(62.0, false), evaluated(62.0, true)],
            30,
            BOUNDS,
        );
        assert_eq!(d.target, Some(27), "{}", d.reason);
        assert_eq!(d.projections.first().map(|p| p.count), Some(20));
        assert!(d.projections.iter().take(7).all(|p| !p.accepted));
        assert!(d.reason.contains("instead of 20"));
    }

    #[test]
    fn bounds_and_missing_data() {
        let rules = [rule(Direction::Decrease, Operator::LessThan, 30.0, 1)];
        let no_data = RuleEvaluation {
            grains: vec![None],
            value: None,
            fired: false,
            coverage: 0.0,
        };
        let d = decide(&rules, std::slice::from_ref(&no_data), 1, BOUNDS);
        assert_eq!(d.target, Some(2), "up to the default: {}", d.reason);
        let d = decide(&rules, &[no_data], 5, BOUNDS);
        assert_eq!(d.target, None, "never in on missing data");
        let d = decide(&rules, &[evaluated(10.0, true)], 50, BOUNDS);
        assert_eq!(d.target, Some(40), "clamped first");
        let d = decide(&rules, &[evaluated(10.0, true)], 1, BOUNDS);
        assert_eq!(d.target, None, "already at the minimum");
    }

    #[test]
    fn hpa_formula_tolerance_and_stabilization() {
        assert_eq!(target_tracking(4, 90.0, 60.0, 0.1), 6);
        assert_eq!(target_tracking(4, 63.0, 60.0, 0.1), 4, "within tolerance");
        assert_eq!(target_tracking(10, 20.0, 60.0, 0.1), 4);
        assert_eq!(target_tracking(0, 90.0, 60.0, 0.1), 0);
        let history = [(at(0), 8), (at(200), 6), (at(280), 5)];
        let five_min = chrono::Duration::seconds(300);
        // Scale-down holds at the highest recommendation of the last 5 min.
        assert_eq!(
            stabilize(&history, at(290), 8, 4, chrono::Duration::zero(), five_min),
            8
        );
        assert_eq!(
            stabilize(&history, at(400), 8, 4, chrono::Duration::zero(), five_min),
            6
        );
        // Scale-up has no window by default: immediate.
        assert_eq!(
            stabilize(&history, at(400), 4, 9, chrono::Duration::zero(), five_min),
            9
        );
    }
}
