//! One autoscale evaluation, as a pure function of the setting, the capacity, the metric
//! points and the earlier decisions, returning a [`Decision`] that records every step: the
//! profile chosen and why, each rule's grains → aggregate → comparison, the target-tracking
//! arithmetic with stabilization and rate limits, the cooldown, the flapping projection
//! table, the clamps and the result.
//!
//! Combining the two modes: scale out when the rules or the target tracking ask for more
//! (to the highest count asked); scale in only when every mode configured asks for less (to
//! the highest of their counts — the smallest change). A profile with neither holds its
//! default capacity. A count outside the profile's bounds is brought inside at once,
//! cooldown or not (that is how a schedule raises the minimum at its start). Missing
//! metrics never scale in: a rule window with data in fewer than half its grains does not
//! fire a scale-in. A scale-out's cooldown holds every change back; a scale-in's only
//! further scale-ins.
//!
//! Predictive autoscale (`forecast_and_scale`) raises the profile's minimum to the capacity
//! the forecast peak within the lead needs — at once, cooldown or not, as a schedule raises
//! it — and scale-ins stop there; it never scales in itself. `forecast_only` only records
//! the forecast.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::forecast::{self, Forecaster, LeadSource, Model};
use super::setting::{
    AutoscaleSetting, Behavior, Predictive, PredictiveMode, RateKind, SelectPolicy, TargetTracking,
};
use super::{
    Bounds, Direction, Operator, Projection, Statistic, TimeAggregation, decide, evaluate,
    stabilize, target_tracking,
};
use crate::metrics::{Metric, Point};
use crate::schedule;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    ScaleOut,
    ScaleIn,
    None,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::ScaleOut => "scale_out",
            Operation::ScaleIn => "scale_in",
            Operation::None => "none",
        }
    }
}

/// One rule as evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleTrace {
    pub metric: String,
    pub direction: Direction,
    pub statistic: Statistic,
    pub time_aggregation: TimeAggregation,
    pub operator: Operator,
    pub threshold: f64,
    /// The statistic of each grain of the window, oldest first (`null`: no data).
    pub grains: Vec<Option<f64>>,
    /// The grains aggregated (`null`: no data in the window).
    pub value: Option<f64>,
    pub fired: bool,
    /// The share of the window's grains with data (0–1): a scale-in rule fires only with
    /// data in at least half of them (decisions stored before it was recorded read 1).
    #[serde(default = "whole")]
    pub coverage: f64,
    /// The count the rule's action leads to from the current one.
    pub target: u32,
}

fn whole() -> f64 {
    1.0
}

/// The target-tracking arithmetic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrackingTrace {
    pub metric: String,
    /// The value compared with the target (per instance for totals; `null`: no data).
    pub value: Option<f64>,
    pub target: f64,
    pub ratio: Option<f64>,
    pub tolerance: f64,
    /// Instances whose metrics count (running and past their initialization period).
    pub counted: u32,
    /// ⌈counted × value / target⌉, instances without data taken at 0 for a scale-out and
    /// at the target for a scale-in (HPA's conservative recompute).
    pub recommendation: u32,
    /// After the stabilization window.
    pub stabilized: u32,
    /// After the rate policies: what target tracking asks for.
    pub desired: u32,
    pub note: String,
    /// With `size_from_load`, unsaturated: requests per second one counted instance carried
    /// per point of the metric (what a saturated evaluation sizes the scale-out from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_per_point: Option<f64>,
}

/// What predictive autoscale forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ForecastTrace {
    /// The metric whose total over the set is the load.
    pub metric: String,
    pub target: f64,
    pub mode: PredictiveMode,
    pub season_seconds: u32,
    /// How far ahead it looks, and where that comes from.
    pub lead_seconds: u32,
    pub lead_source: LeadSource,
    /// The history the forecast stands on, in seconds.
    pub history_seconds: f64,
    /// The model that forecast (`null`: nothing forecast).
    pub model: Option<Model>,
    /// The peak load forecast from now to the lead, and when.
    pub load: Option<f64>,
    pub at: Option<DateTime<Utc>>,
    /// ⌈load / target⌉: the instances that carry it.
    pub capacity: Option<u32>,
    /// The model's mean absolute percentage error over the last season.
    pub mape: Option<f64>,
    /// The MAPE is within the setting's `max_mape_percent` (or not scored yet): with
    /// `forecast_and_scale`, the capacity is the floor.
    pub trusted: bool,
    pub note: String,
}

/// The record of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decision {
    /// Assigned by the store.
    #[serde(default)]
    pub id: i64,
    pub scale_set: String,
    pub at: DateTime<Utc>,
    pub profile: Option<String>,
    pub profile_reason: String,
    pub bounds: Option<Bounds>,
    /// The capacity before.
    pub current: u32,
    /// The capacity after (equal to `current` when nothing changes).
    pub new_capacity: u32,
    pub operation: Operation,
    /// Why, in a sentence.
    pub reason: String,
    pub rules: Vec<RuleTrace>,
    /// What the rules alone decided (`null`: no rules, or stay).
    pub rules_target: Option<u32>,
    pub rules_reason: Option<String>,
    /// The flapping guard's table when the rules considered a scale-in.
    pub projections: Vec<Projection>,
    pub tracking: Option<TrackingTrace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<ForecastTrace>,
    /// The end of a cooldown that held this evaluation back.
    pub cooldown_until: Option<DateTime<Utc>>,
    /// The cooldown this decision's action starts.
    pub cooldown_seconds: u32,
    /// A shadow setting's decision: stored, never acted on (its `current` is the capacity
    /// the shadow would have by then).
    #[serde(default)]
    pub shadow: bool,
}

impl Decision {
    /// Holds a scale-out at `ceiling`, what the fleet's instance limit leaves this set
    /// (never below the current capacity), saying so in the reason; no cooldown starts when
    /// nothing is left to do.
    pub fn cap(&mut self, ceiling: u32, limit: u32) {
        if self.new_capacity <= ceiling.max(self.current) {
            return;
        }
        let asked = self.new_capacity;
        self.new_capacity = ceiling.max(self.current);
        self.reason = format!(
            "{}; the fleet's limit of {limit} instances (--max-instances) leaves room for {}: {asked} → {}",
            self.reason, self.new_capacity, self.new_capacity
        );
        if self.new_capacity == self.current {
            self.operation = Operation::None;
            self.cooldown_seconds = 0;
        }
    }
}

/// Which decisions to list (`GET /scale-sets/{name}/autoscale/decisions`), newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams, utoipa::ToSchema))]
pub struct DecisionFilter {
    pub scale_set: String,
    /// Only decisions with this result.
    #[serde(default)]
    pub operation: Option<Operation>,
    /// Only decisions at or after this instant.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// Only decisions before this instant.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    /// Only decisions with an id below this one (paging).
    #[serde(default)]
    pub before_id: Option<i64>,
    /// At most this many (1–1000).
    pub limit: u32,
    /// The shadow setting's decisions instead of the live ones.
    #[serde(default)]
    pub shadow: bool,
}

/// What one evaluation reads.
pub struct Inputs<'a> {
    pub scale_set: &'a str,
    pub now: DateTime<Utc>,
    pub setting: &'a AutoscaleSetting,
    /// The scale set's capacity.
    pub current: u32,
    /// Instances whose metrics count (running, past the initialization period).
    pub counted: u32,
    /// The points of each metric the setting uses, covering its longest window.
    pub points: &'a BTreeMap<Metric, &'a [Point]>,
    /// Earlier decisions of this scale set, oldest first (cooldown, stabilization and
    /// rate-policy history); those older than an hour may be left out.
    pub history: &'a [Decision],
    /// Whether to write target tracking's and the forecast's arithmetic out in their notes.
    /// The numbers are the same either way; a backtest writes them only for the decisions
    /// it keeps.
    pub explain: bool,
    /// The load forecasters of the setting's predictive profiles, fed up to `now`.
    pub forecasts: &'a [Forecaster],
}

/// Evaluates the setting (which is assumed valid) once.
pub fn decide_setting(inputs: &Inputs<'_>) -> Decision {
    let Inputs {
        now,
        setting,
        current,
        ..
    } = *inputs;
    let mut decision = Decision {
        id: 0,
        scale_set: inputs.scale_set.into(),
        at: now,
        profile: None,
        profile_reason: String::new(),
        bounds: None,
        current,
        new_capacity: current,
        operation: Operation::None,
        reason: String::new(),
        rules: vec![],
        rules_target: None,
        rules_reason: None,
        projections: vec![],
        tracking: None,
        forecast: None,
        cooldown_until: None,
        cooldown_seconds: 0,
        shadow: false,
    };
    let Some(resolved) = schedule::resolve(&setting.whens(), now) else {
        decision.profile_reason = "no profile applies now".into();
        decision.reason = "no profile applies: nothing to do".into();
        return decision;
    };
    let profile = &setting.profiles[resolved.index];
    let bounds = profile.capacity;
    decision.profile = Some(profile.name.clone());
    decision.profile_reason = resolved.reason;
    decision.bounds = Some(bounds);

    let points_of = |metric: &str| {
        Metric::parse(metric)
            .and_then(|m| inputs.points.get(&m))
            .copied()
            .unwrap_or_default()
    };
    let evaluations: Vec<_> = profile
        .rules
        .iter()
        .map(|r| evaluate(r, points_of(&r.metric), now))
        .collect();
    decision.rules = profile
        .rules
        .iter()
        .zip(&evaluations)
        .map(|(r, e)| RuleTrace {
            metric: r.metric.clone(),
            direction: r.direction,
            statistic: r.statistic,
            time_aggregation: r.time_aggregation,
            operator: r.operator,
            threshold: r.threshold,
            grains: e.grains.clone(),
            value: e.value,
            fired: e.fired,
            coverage: e.coverage,
            target: super::apply(r, current),
        })
        .collect();
    decision.tracking = profile
        .target_tracking
        .as_ref()
        .map(|t| track(t, inputs, points_of(&t.metric)));
    decision.forecast = profile
        .predictive
        .as_ref()
        .map(|p| forecast_trace(p, inputs, bounds));
    // The forecast's floor.
    let floor = decision
        .forecast
        .as_ref()
        .filter(|f| f.mode == PredictiveMode::ForecastAndScale && f.trusted)
        .and_then(|f| f.capacity)
        .map(|c| c.clamp(bounds.minimum, bounds.maximum));
    let raised = Bounds {
        minimum: floor.unwrap_or(bounds.minimum),
        ..bounds
    };

    let set = |d: &mut Decision, to: u32, reason: String| {
        d.new_capacity = to;
        d.operation = match to.cmp(&current) {
            std::cmp::Ordering::Greater => Operation::ScaleOut,
            std::cmp::Ordering::Less => Operation::ScaleIn,
            std::cmp::Ordering::Equal => Operation::None,
        };
        d.reason = reason;
    };

    let clamped = bounds.clamp(current);
    if clamped != current {
        set(
            &mut decision,
            clamped,
            format!(
                "{current} is outside the profile's bounds {}–{}: {current} → {clamped}",
                bounds.minimum, bounds.maximum
            ),
        );
        return decision;
    }
    if let Some(floor) = floor.filter(|f| *f > current) {
        set(
            &mut decision,
            floor,
            format!("the forecast raises the floor to {floor}: {current} → {floor}"),
        );
        return decision;
    }
    if profile.rules.is_empty() && profile.target_tracking.is_none() && floor.is_some() {
        decision.reason = format!(
            "only the forecast scales this profile, and it never scales in: stay at {current}"
        );
        return decision;
    }
    if profile.rules.is_empty() && profile.target_tracking.is_none() {
        let reason = if bounds.default == current {
            format!(
                "the profile has no rules: it holds its default capacity {}",
                bounds.default
            )
        } else {
            format!(
                "the profile has no rules: to its default capacity, {current} → {}",
                bounds.default
            )
        };
        set(&mut decision, bounds.default, reason);
        return decision;
    }
    // The last action's cooldown holds, unless the action never took effect (the capacity
    // is still the one it started from: a crash or a concurrent change came in between).
    // A scale-out's cooldown holds everything back; a scale-in's only further scale-ins (a
    // scale-out ends it at once, as AWS does: demand coming back must not wait for it).
    let cooldown = inputs
        .history
        .iter()
        .rev()
        .find(|d| d.operation != Operation::None)
        .filter(|last| last.current != current)
        .map(|last| {
            let until = last.at + chrono::Duration::seconds(i64::from(last.cooldown_seconds));
            (last, until)
        })
        .filter(|(_, until)| now < *until)
        .map(|(last, until)| {
            let reason = format!(
                "in cooldown until {} after the {} at {} ({} → {})",
                until.format("%H:%M:%S"),
                last.operation.as_str().replace('_', "-"),
                last.at.format("%H:%M:%S"),
                last.current,
                last.new_capacity
            );
            (until, last.operation, reason)
        });
    if let Some((until, Operation::ScaleOut, reason)) = &cooldown {
        decision.cooldown_until = Some(*until);
        decision.reason.clone_from(reason);
        return decision;
    }

    // What each mode asks for: (count, cooldown it starts).
    let mut ups: Vec<(u32, u32, String)> = Vec::new();
    let mut downs: Vec<(u32, u32, String)> = Vec::new();
    let mut voters = 0;
    let mut stays: Vec<String> = Vec::new();
    if !profile.rules.is_empty() {
        voters += 1;
        let ruled = decide(&profile.rules, &evaluations, current, raised);
        decision.rules_target = ruled.target;
        decision.rules_reason = Some(ruled.reason.clone());
        decision.projections = ruled.projections;
        let cooldown = |direction: Direction| {
            profile
                .rules
                .iter()
                .zip(&evaluations)
                .filter(|(r, e)| r.direction == direction && e.fired)
                .map(|(r, _)| r.cooldown_seconds)
                .max()
                .unwrap_or(0)
        };
        match ruled.target {
            Some(t) if t > current => ups.push((t, cooldown(Direction::Increase), ruled.reason)),
            Some(t) if t < current => downs.push((t, cooldown(Direction::Decrease), ruled.reason)),
            _ => stays.push(format!("rules: {}", ruled.reason)),
        }
    }
    if let (Some(t), Some(trace)) = (&profile.target_tracking, &decision.tracking) {
        let reason = format!("target tracking: {}", trace.note);
        if trace.desired > current {
            ups.push((trace.desired, 0, reason));
        } else if !t.disable_scale_in {
            voters += 1;
            if trace.desired < current {
                downs.push((trace.desired, 0, reason));
            } else {
                stays.push(reason);
            }
        }
    }
    if let Some((to, seconds, reason)) = ups.into_iter().max_by_key(|(t, ..)| *t) {
        let to = to.min(bounds.maximum);
        decision.cooldown_seconds = seconds;
        let reason = match &cooldown {
            Some(_) => format!("{reason} (ending the scale-in's cooldown)"),
            None => reason,
        };
        set(&mut decision, to, reason);
    } else if let Some((until, _, reason)) = cooldown {
        decision.cooldown_until = Some(until);
        decision.reason = reason;
    } else if voters > 0 && downs.len() == voters {
        let (to, cooldown, reason) = downs
            .into_iter()
            .max_by_key(|(t, ..)| *t)
            .expect("voters > 0");
        let to = to.max(raised.minimum);
        if to < current {
            decision.cooldown_seconds = cooldown;
            set(&mut decision, to, reason);
        } else {
            decision.reason = format!("{reason}; the forecast holds the floor at {to}");
        }
    } else {
        decision.reason = if stays.is_empty() {
            "no mode asks for a change".into()
        } else {
            stays.join("; ")
        };
    }
    decision
}

/// What the forecast of the profile's predictive setting says now.
fn forecast_trace(p: &Predictive, inputs: &Inputs<'_>, bounds: Bounds) -> ForecastTrace {
    let forecaster = forecast::find(p, inputs.forecasts);
    let (lead_seconds, lead_source) = forecaster.map_or_else(
        || forecast::lead(p.lead_seconds, &[]),
        |f| (f.key().lead_seconds, f.key().lead_source),
    );
    let mut trace = ForecastTrace {
        metric: p.metric.clone(),
        target: p.target,
        mode: p.mode,
        season_seconds: p.season_seconds,
        lead_seconds,
        lead_source,
        history_seconds: forecaster.map_or(0.0, Forecaster::history_seconds),
        model: None,
        load: None,
        at: None,
        capacity: None,
        mape: None,
        trusted: false,
        note: String::new(),
    };
    let Some(f) = forecaster.filter(|f| f.ready()) else {
        trace.note = format!(
            "needs a season ({}) of {} history, has {}: nothing forecast yet",
            span(f64::from(p.season_seconds)),
            p.metric,
            span(trace.history_seconds)
        );
        return trace;
    };
    let now = inputs.now;
    let Some(peak) = f.peak(
        p.model,
        now,
        now + chrono::Duration::seconds(i64::from(lead_seconds)),
    ) else {
        trace.note = "nothing forecast for the lead".into();
        return trace;
    };
    let needed = (peak.load / p.target - 1e-9)
        .ceil()
        .clamp(0.0, f64::from(u32::MAX)) as u32;
    trace.model = Some(peak.model);
    trace.load = Some(peak.load);
    trace.at = Some(peak.at);
    trace.capacity = Some(needed);
    trace.mape = f.mape(peak.model);
    trace.trusted = trace.mape.is_none_or(|m| m <= p.max_mape_percent);
    if !inputs.explain {
        return trace;
    }
    trace.note = format!(
        "{} forecasts {:.1} at {} within the {lead_seconds} s lead: ⌈{:.1} / {}⌉ = {needed}{}{}",
        peak.model.as_str().replace('_', " "),
        peak.load,
        peak.at.format("%H:%M:%S"),
        peak.load,
        p.target,
        trace
            .mape
            .map(|m| format!(" (MAPE {m:.1} % over the last season)"))
            .unwrap_or_default(),
        if needed > bounds.maximum {
            format!(", capped at the maximum {}", bounds.maximum)
        } else {
            String::new()
        }
    );
    if !trace.trusted {
        trace.note = format!(
            "{}; not acted on: the MAPE is above {} %",
            trace.note, p.max_mape_percent
        );
    }
    trace
}

/// Seconds as a person reads them: `45 s`, `12 min`, `3.5 h`, `2.0 days`.
fn span(seconds: f64) -> String {
    match seconds {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7_200.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3_600.0),
        s => format!("{:.1} days", s / 86_400.0),
    }
}

/// The decisions of `history` (oldest first) at or after `from`.
fn since(history: &[Decision], from: DateTime<Utc>) -> &[Decision] {
    &history[history.partition_point(|d| d.at < from)..]
}

/// Target tracking's arithmetic for this evaluation.
fn track(t: &TargetTracking, inputs: &Inputs<'_>, points: &[Point]) -> TrackingTrace {
    let now = inputs.now;
    let current = inputs.current;
    let from = now - chrono::Duration::seconds(i64::from(t.window_seconds));
    let window: Vec<&Point> = points
        .iter()
        .filter(|p| p.at >= from && p.at < now)
        .collect();
    let total = Metric::parse(&t.metric).is_some_and(Metric::is_total);
    let value = if window.is_empty() || inputs.counted == 0 {
        None
    } else if total {
        let per_tick = window.iter().map(|p| p.total).sum::<f64>() / window.len() as f64;
        Some(per_tick / f64::from(inputs.counted))
    } else {
        window
            .iter()
            .copied()
            .copied()
            .reduce(|a, b| a.merged(&b))
            .map(|p| p.average)
    };
    let mut trace = TrackingTrace {
        metric: t.metric.clone(),
        value,
        target: t.target,
        ratio: value.map(|v| v / t.target),
        tolerance: t.tolerance,
        counted: inputs.counted,
        recommendation: current,
        stabilized: current,
        desired: current,
        note: String::new(),
        load_per_point: None,
    };
    let Some(measured) = value else {
        trace.note = "no data: never scale in on missing metrics".into();
        return trace;
    };
    let peak = window.iter().map(|p| p.maximum).fold(f64::MIN, f64::max);
    let (value, saturated) = sized_from_load(t, inputs, (measured, peak), &mut trace);
    trace.ratio = Some(value / t.target);
    let ratio = value / t.target;
    let counted = inputs.counted.min(current);
    let uncounted = current - counted;
    let recommendation = if (ratio - 1.0).abs() <= t.tolerance {
        current
    } else if ratio > 1.0 {
        target_tracking(counted, value, t.target, 0.0).max(current)
    } else {
        let kept = (f64::from(counted) * ratio).ceil() as u32 + uncounted;
        kept.min(current)
    };
    trace.recommendation = recommendation;
    let seconds =
        |b: &Behavior| chrono::Duration::seconds(i64::from(b.stabilization_window_seconds));
    let history: Vec<(DateTime<Utc>, u32)> = since(
        inputs.history,
        now - seconds(&t.scale_up).max(seconds(&t.scale_down)),
    )
    .iter()
    .filter_map(|d| d.tracking.as_ref().map(|tr| (d.at, tr.recommendation)))
    .collect();
    let stabilized = stabilize(
        &history,
        now,
        current,
        recommendation,
        seconds(&t.scale_up),
        seconds(&t.scale_down),
    );
    trace.stabilized = stabilized;
    let desired = rate_limited(t, inputs, stabilized);
    trace.desired = desired;
    if !inputs.explain {
        return trace;
    }
    trace.note = if (ratio - 1.0).abs() <= t.tolerance {
        format!(
            "{value:.2} is within {:.0} % of the target {}: stay at {current}",
            t.tolerance * 100.0,
            t.target
        )
    } else {
        let mut note = format!(
            "⌈{counted} × {value:.2} / {}⌉{} = {recommendation}",
            t.target,
            if uncounted > 0 {
                format!(" (+{uncounted} without data)")
            } else {
                String::new()
            }
        );
        if stabilized != recommendation {
            note.push_str(&format!(", stabilized to {stabilized}"));
        }
        if desired != stabilized {
            note.push_str(&format!(", rate-limited to {desired}"));
        }
        note
    };
    if let Some(why) = saturated {
        trace.note = format!("{why}; {}", trace.note);
    }
    trace
}

/// CPU or memory at or above this is saturated: it no longer grows with the load.
const SATURATED_PERCENT: f64 = 95.0;

/// With `size_from_load` on a percentage: with no sample of the window saturated, records
/// the load per instance per point (a window that saturates part way — a step in the load —
/// would give too much load per point); saturated on average, the value the load reads as at
/// the last such figure (when higher than measured), with the explanation. Answers the
/// value to track and that explanation. `measured` is the window's average, `peak` its
/// highest sample.
fn sized_from_load(
    t: &TargetTracking,
    inputs: &Inputs<'_>,
    (measured, peak): (f64, f64),
    trace: &mut TrackingTrace,
) -> (f64, Option<String>) {
    let percent = matches!(
        Metric::parse(&t.metric),
        Some(Metric::CpuPercent | Metric::MemoryPercent)
    );
    if !t.size_from_load || !percent || inputs.counted == 0 {
        return (measured, None);
    }
    let from = inputs.now - chrono::Duration::seconds(i64::from(t.window_seconds));
    let mean = |metric: Metric| {
        let points: Vec<&Point> = inputs
            .points
            .get(&metric)
            .into_iter()
            .flat_map(|p| p.iter())
            .filter(|p| p.at >= from && p.at < inputs.now)
            .collect();
        (!points.is_empty())
            .then(|| points.iter().map(|p| p.average).sum::<f64>() / points.len() as f64)
    };
    let load = mean(Metric::DemandRequestsPerSecond).or_else(|| {
        mean(Metric::RequestsPerSecond).map(|r| r + mean(Metric::ErrorsPerSecond).unwrap_or(0.0))
    });
    let Some(load) = load.filter(|l| *l > 0.0) else {
        return (measured, None);
    };
    let per_instance = load / f64::from(inputs.counted);
    if measured < SATURATED_PERCENT {
        trace.load_per_point =
            (measured > 0.0 && peak < SATURATED_PERCENT).then(|| per_instance / measured);
        return (measured, None);
    }
    let last = inputs
        .history
        .iter()
        .rev()
        .find_map(|d| d.tracking.as_ref().and_then(|tr| tr.load_per_point));
    match last {
        Some(per_point) if per_instance / per_point > measured => {
            let value = per_instance / per_point;
            let why = format!(
                "{} saturated at {measured:.1}: {load:.1} req/s over {} instances at {per_point:.3} req/s per point reads as {value:.1}",
                t.metric, inputs.counted
            );
            (value, Some(why))
        }
        _ => (measured, None),
    }
}

/// HPA's rate policies: each policy allows a change relative to the count at the start of
/// its period (the current count less the changes made since).
fn rate_limited(t: &TargetTracking, inputs: &Inputs<'_>, desired: u32) -> u32 {
    let current = inputs.current;
    let (behavior, up) = match desired.cmp(&current) {
        std::cmp::Ordering::Greater => (&t.scale_up, true),
        std::cmp::Ordering::Less => (&t.scale_down, false),
        std::cmp::Ordering::Equal => return current,
    };
    if behavior.select_policy == SelectPolicy::Disabled {
        return current;
    }
    let limits = behavior.policies.iter().map(|p| {
        let start = inputs.now - chrono::Duration::seconds(i64::from(p.period_seconds));
        let changed: i64 = since(inputs.history, start)
            .iter()
            .filter(|d| d.at > start && d.operation != Operation::None)
            .map(|d| i64::from(d.new_capacity) - i64::from(d.current))
            .filter(|c| (*c > 0) == up)
            .sum();
        let start = (i64::from(current) - changed).max(0) as f64;
        let limit = match (p.kind, up) {
            (RateKind::Instances, true) => start + f64::from(p.value),
            (RateKind::Instances, false) => start - f64::from(p.value),
            (RateKind::Percent, true) => (start * (1.0 + f64::from(p.value) / 100.0)).ceil(),
            (RateKind::Percent, false) => (start * (1.0 - f64::from(p.value) / 100.0)).floor(),
        };
        limit.max(0.0) as u32
    });
    // Max: the policy allowing the largest change; Min: the smallest.
    let allowed = match (behavior.select_policy, up) {
        (SelectPolicy::Max, true) | (SelectPolicy::Min, false) => limits.max(),
        _ => limits.min(),
    };
    match allowed {
        Some(limit) if up => desired.min(limit.max(current)),
        Some(limit) => desired.max(limit.min(current)),
        None => desired,
    }
}

#[cfg(test)]
mod tests {
    use super::super::setting::{Behavior, Profile};
    use super::*;
    use crate::schedule::{Recurrence, Weekday};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::seconds(1_800_000_000 + secs)
    }

    fn cpu_rules() -> AutoscaleSetting {
        serde_json::from_str(
            r#"{"enabled":true,"profiles":[{"name":"default","capacity":{"minimum":1,"maximum":10,"default":2},
            "rules":[{"metric":"cpu_percent","statistic":"average","time_grain_seconds":60,"time_window_seconds":300,
              "time_aggregation":"average","operator":"greater_than","threshold":70,"direction":"increase","type":"change_count","value":1,"cooldown_seconds":300},
              {"metric":"cpu_percent","statistic":"average","time_grain_seconds":60,"time_window_seconds":300,
              "time_aggregation":"average","operator":"less_than","threshold":30,"direction":"decrease","type":"change_count","value":1,"cooldown_seconds":300}]}]}"#,
        )
        .unwrap()
    }

    fn tracking(target: f64) -> AutoscaleSetting {
        let mut s = cpu_rules();
        s.profiles[0].rules.clear();
        s.profiles[0].target_tracking = Some(TargetTracking {
            metric: "cpu_percent".into(),
            target,
            tolerance: 0.1,
            window_seconds: 60,
            scale_up: Behavior::scale_up(),
            scale_down: Behavior::scale_down(),
            disable_scale_in: false,
            size_from_load: false,
        });
        s
    }

    /// CPU at `value` every 10 s for the last 10 minutes.
    fn cpu(value: f64, now: DateTime<Utc>) -> BTreeMap<Metric, Vec<Point>> {
        let points = (1..=60)
            .rev()
            .map(|i| Point::single(now - chrono::Duration::seconds(i * 10), value))
            .collect();
        BTreeMap::from([(Metric::CpuPercent, points)])
    }

    fn slices(points: &BTreeMap<Metric, Vec<Point>>) -> BTreeMap<Metric, &[Point]> {
        points.iter().map(|(m, p)| (*m, p.as_slice())).collect()
    }

    fn run(
        setting: &AutoscaleSetting,
        current: u32,
        points: &BTreeMap<Metric, Vec<Point>>,
        history: &[Decision],
        now: DateTime<Utc>,
    ) -> Decision {
        decide_setting(&Inputs {
            scale_set: "web",
            now,
            setting,
            current,
            counted: current,
            points: &slices(points),
            history,
            explain: true,
            forecasts: &[],
        })
    }

    #[test]
    fn the_forecast_is_a_floor_and_forecast_only_records() {
        use crate::autoscale::forecast::{Key, ModelChoice};
        let mut s = tracking(50.0);
        s.profiles[0].predictive = Some(Predictive {
            metric: "requests_per_second".into(),
            target: 100.0,
            mode: PredictiveMode::ForecastOnly,
            season_seconds: 600,
            model: ModelChoice::SeasonalNaive,
            lead_seconds: Some(120),
            max_mape_percent: 50.0,
        });
        let now = at(1200);
        let key = Key {
            metric: Metric::RequestsPerSecond,
            season_seconds: 600,
            lead_seconds: 120,
            lead_source: LeadSource::Given,
        };
        let mut f = Forecaster::new(key, 60);
        // 200 rps, and 800 from the 1st to the 3rd minute of each ten.
        for t in (0..1200).step_by(60) {
            let load = if (60..180).contains(&(t % 600)) {
                800.0
            } else {
                200.0
            };
            f.observe(at(t), load);
        }
        let forecasts = [f];
        let decide = |s: &AutoscaleSetting, current: u32, cpu_value: f64| {
            decide_setting(&Inputs {
                scale_set: "web",
                now,
                setting: s,
                current,
                counted: current,
                points: &slices(&cpu(cpu_value, now)),
                history: &[],
                explain: true,
                forecasts: &forecasts,
            })
        };
        // Forecast only: recorded, the capacity left to target tracking (CPU 50 %: stay).
        let d = decide(&s, 3, 50.0);
        let trace = d.forecast.clone().unwrap();
        assert_eq!(
            (trace.load, trace.capacity, trace.model),
            (Some(800.0), Some(8), Some(Model::SeasonalNaive)),
            "{trace:?}"
        );
        assert_eq!(trace.at, Some(at(1260)));
        assert_eq!(d.operation, Operation::None, "{}", d.reason);
        // Forecast and scale: up to the forecast at once…
        s.profiles[0].predictive.as_mut().unwrap().mode = PredictiveMode::ForecastAndScale;
        let d = decide(&s, 3, 50.0);
        assert_eq!(
            (d.operation, d.new_capacity),
            (Operation::ScaleOut, 8),
            "{}",
            d.reason
        );
        // …and target tracking's scale-in (CPU 10 %) stops at it.
        let d = decide(&s, 10, 10.0);
        assert_eq!(
            (d.operation, d.new_capacity),
            (Operation::ScaleIn, 8),
            "{}",
            d.reason
        );
        let d = decide(&s, 8, 10.0);
        assert_eq!(d.operation, Operation::None);
        assert!(
            d.reason.contains("the forecast holds the floor at 8"),
            "{}",
            d.reason
        );
        // Without a season of history, nothing is forecast, and it says so.
        let d = decide_setting(&Inputs {
            forecasts: &[Forecaster::new(key, 60)],
            ..Inputs {
                scale_set: "web",
                now,
                setting: &s,
                current: 3,
                counted: 3,
                points: &slices(&cpu(50.0, now)),
                history: &[],
                explain: true,
                forecasts: &[],
            }
        });
        let note = d.forecast.unwrap().note;
        assert!(note.starts_with("needs a season (10 min)"), "{note}");
    }

    #[test]
    fn the_fleet_limit_caps_a_scale_out() {
        let s = cpu_rules();
        let now = at(0);
        let mut d = run(&s, 3, &cpu(85.0, now), &[], now);
        d.cap(10, 100);
        assert_eq!(d.new_capacity, 4, "room enough: unchanged");
        d.cap(3, 100);
        assert_eq!(
            (d.operation, d.new_capacity, d.cooldown_seconds),
            (Operation::None, 3, 0)
        );
        assert!(d.reason.contains("limit of 100 instances"), "{}", d.reason);
        let mut d = run(&s, 3, &cpu(10.0, now), &[], now);
        let before = d.clone();
        d.cap(1, 100);
        assert_eq!(d, before, "a scale-in is never capped");
    }

    #[test]
    fn rules_scale_out_then_cooldown_holds_back() {
        let s = cpu_rules();
        let now = at(0);
        let d = run(&s, 3, &cpu(85.0, now), &[], now);
        assert_eq!((d.operation, d.new_capacity), (Operation::ScaleOut, 4));
        assert_eq!(d.cooldown_seconds, 300);
        assert_eq!(d.rules[0].value, Some(85.0));
        assert!(d.rules[0].fired && !d.rules[1].fired);
        assert_eq!(d.profile.as_deref(), Some("default"));
        let later = at(120);
        let held = run(&s, 4, &cpu(85.0, later), std::slice::from_ref(&d), later);
        assert_eq!(held.operation, Operation::None);
        assert_eq!(held.cooldown_until, Some(at(300)));
        assert!(held.reason.contains("cooldown"), "{}", held.reason);
        let after = at(301);
        let next = run(&s, 4, &cpu(85.0, after), std::slice::from_ref(&d), after);
        assert_eq!(next.new_capacity, 5);
        // An action that never took effect (still at 3) holds nothing back.
        let lost = run(&s, 3, &cpu(85.0, later), &[d], later);
        assert_eq!(
            (lost.operation, lost.new_capacity),
            (Operation::ScaleOut, 4)
        );
    }

    #[test]
    fn a_scale_in_cooldown_gives_way_to_a_scale_out() {
        let s = cpu_rules();
        let now = at(0);
        let scale_in = run(&s, 5, &cpu(10.0, now), &[], now);
        assert_eq!(
            (scale_in.operation, scale_in.new_capacity),
            (Operation::ScaleIn, 4)
        );
        // 15 s later the set runs hot: out at once, the scale-in's cooldown ends.
        let later = at(15);
        let hot = run(
            &s,
            4,
            &cpu(100.0, later),
            std::slice::from_ref(&scale_in),
            later,
        );
        assert_eq!((hot.operation, hot.new_capacity), (Operation::ScaleOut, 5));
        assert!(
            hot.reason.contains("ending the scale-in's cooldown"),
            "{}",
            hot.reason
        );
        // A further scale-in still waits.
        let cold = run(
            &s,
            4,
            &cpu(10.0, later),
            std::slice::from_ref(&scale_in),
            later,
        );
        assert_eq!(cold.operation, Operation::None);
        assert_eq!(cold.cooldown_until, Some(at(300)));
        // A scale-out's cooldown holds a scale-in back too.
        let out = run(&s, 3, &cpu(90.0, now), &[], now);
        let d = run(&s, 4, &cpu(10.0, later), &[out], later);
        assert_eq!(d.operation, Operation::None);
        assert!(d.reason.contains("cooldown"), "{}", d.reason);
    }

    #[test]
    fn a_scale_in_needs_data_in_half_its_grains() {
        let mut s = cpu_rules();
        // 240 s window of 24 grains of 10 s; CPU 10 % but only in the last 2 grains.
        s.profiles[0].rules[1].time_grain_seconds = 10;
        s.profiles[0].rules[1].time_window_seconds = 240;
        let now = at(0);
        let sparse: BTreeMap<Metric, Vec<Point>> = BTreeMap::from([(
            Metric::CpuPercent,
            vec![
                Point::single(now - chrono::Duration::seconds(15), 10.0),
                Point::single(now - chrono::Duration::seconds(5), 10.0),
            ],
        )]);
        let d = run(&s, 5, &sparse, &[], now);
        assert_eq!(d.operation, Operation::None, "{}", d.reason);
        let rule = &d.rules[1];
        assert_eq!(rule.value, Some(10.0));
        assert!(!rule.fired);
        assert!((rule.coverage - 2.0 / 24.0).abs() < 1e-9);
        assert!(d.reason.contains("data in 2 of 24 grains"), "{}", d.reason);
        // With data in every grain it scales in.
        let d = run(&s, 5, &cpu(10.0, now), &[], now);
        assert_eq!((d.operation, d.new_capacity), (Operation::ScaleIn, 4));
        assert_eq!(d.rules[1].coverage, 1.0);
    }

    #[test]
    fn scale_in_keeps_the_flapping_table() {
        // Like Azure's example: 30 instances, scale in by 10 below 60 %, out above 70 %.
        // At 55 %, 20 instances would run at 55 × 30 / 20 = 82.5 %; the first count from 20
        // up that stays below 70 % is 24 (68.75 %).
        let mut s = cpu_rules();
        s.profiles[0].capacity.maximum = 40;
        s.profiles[0].rules[1].threshold = 60.0;
        s.profiles[0].rules[1].value = 10;
        let now = at(0);
        let d = run(&s, 30, &cpu(55.0, now), &[], now);
        assert_eq!((d.operation, d.new_capacity), (Operation::ScaleIn, 24));
        assert_eq!(d.projections.first().map(|p| p.count), Some(20));
        assert_eq!(d.projections.last().map(|p| p.count), Some(24));
        assert!(d.reason.contains("flapping"), "{}", d.reason);
    }

    #[test]
    fn missing_metrics_never_scale_in() {
        let s = cpu_rules();
        let now = at(0);
        let none = BTreeMap::new();
        assert_eq!(run(&s, 5, &none, &[], now).operation, Operation::None);
        // Below the default, missing data scales out to it (Azure).
        assert_eq!(run(&s, 1, &none, &[], now).new_capacity, 2);
        let t = tracking(50.0);
        let d = run(&t, 5, &none, &[], now);
        assert_eq!(d.operation, Operation::None);
        assert!(d.tracking.unwrap().note.contains("no data"));
    }

    #[test]
    fn bounds_apply_before_cooldown() {
        let s = cpu_rules();
        let now = at(0);
        let recent = run(&s, 3, &cpu(85.0, now), &[], now);
        let d = run(&s, 12, &cpu(50.0, at(10)), &[recent], at(10));
        assert_eq!((d.operation, d.new_capacity), (Operation::ScaleIn, 10));
    }

    #[test]
    fn hpa_formula_with_tolerance_stabilization_and_rates() {
        let t = tracking(50.0);
        let now = at(0);
        // 4 × 100 / 50 = 8; the default scale-up policy allows max(4 instances, 100 %).
        let d = run(&t, 4, &cpu(100.0, now), &[], now);
        assert_eq!(d.new_capacity, 8);
        // 54 % is within 10 % of 50 %: stay.
        assert_eq!(
            run(&t, 4, &cpu(54.0, now), &[], now).operation,
            Operation::None
        );
        // 10 × 25 / 50 = 5, but an earlier recommendation of 9 within 300 s holds it at 9.
        let earlier = run(&t, 9, &cpu(50.0, at(-100)), &[], at(-100));
        let d = run(&t, 10, &cpu(25.0, now), std::slice::from_ref(&earlier), now);
        let trace = d.tracking.as_ref().unwrap();
        assert_eq!(trace.recommendation, 5);
        assert_eq!(trace.stabilized, 9);
        assert_eq!(d.new_capacity, 9);
        // Once the window has passed, down to 5.
        let later = at(250);
        assert_eq!(
            run(&t, 10, &cpu(25.0, later), &[earlier], later).new_capacity,
            5
        );
        // Rate limit: 2 instances per 60 s.
        let mut limited = tracking(50.0);
        limited.profiles[0]
            .target_tracking
            .as_mut()
            .unwrap()
            .scale_up
            .policies = vec![super::super::setting::RatePolicy {
            kind: RateKind::Instances,
            value: 2,
            period_seconds: 60,
        }];
        let first = run(&limited, 4, &cpu(100.0, now), &[], now);
        assert_eq!(first.new_capacity, 6);
        let second = run(
            &limited,
            6,
            &cpu(100.0, at(30)),
            std::slice::from_ref(&first),
            at(30),
        );
        assert_eq!(second.operation, Operation::None, "{}", second.reason);
        let third = run(&limited, 6, &cpu(100.0, at(61)), &[first], at(61));
        assert_eq!(third.new_capacity, 8);
    }

    #[test]
    fn a_saturated_cpu_sizes_the_scale_out_from_the_load() {
        let mut t = tracking(50.0);
        let tt = t.profiles[0].target_tracking.as_mut().unwrap();
        tt.size_from_load = true;
        let now = at(0);
        // 2 instances at 40 %, 80 req/s: 1 req/s per point per instance.
        let mut points = cpu(40.0, now);
        let demand = |rps: f64, now: DateTime<Utc>| {
            (1..=60)
                .rev()
                .map(|i| Point::single(now - chrono::Duration::seconds(i * 10), rps))
                .collect::<Vec<_>>()
        };
        points.insert(Metric::DemandRequestsPerSecond, demand(80.0, now));
        let calm = run(&t, 2, &points, &[], now);
        let per_point = calm.tracking.as_ref().unwrap().load_per_point.unwrap();
        assert!((per_point - 1.0).abs() < 1e-9, "{per_point}");
        // A window that saturates part way (a step) records none: 60 % on average, but
        // the load it carried is not what CPU shows.
        let mut step = points.clone();
        for p in step
            .get_mut(&Metric::CpuPercent)
            .unwrap()
            .iter_mut()
            .rev()
            .take(2)
        {
            *p = Point::single(p.at, 100.0);
        }
        let d = run(&t, 2, &step, &[], now);
        let trace = d.tracking.unwrap();
        assert_eq!((trace.value, trace.load_per_point), (Some(60.0), None));
        // Then 500 req/s: CPU reads 100 % (⌈2 × 100 / 50⌉ = 4 by the HPA), the load says
        // 250 % per instance: ⌈2 × 250 / 50⌉ = 10.
        let later = at(60);
        let mut hot = cpu(100.0, later);
        hot.insert(Metric::DemandRequestsPerSecond, demand(500.0, later));
        let d = run(&t, 2, &hot, std::slice::from_ref(&calm), later);
        let trace = d.tracking.as_ref().unwrap();
        assert_eq!(trace.value, Some(100.0));
        assert_eq!(trace.recommendation, 10, "{}", trace.note);
        assert!(trace.note.contains("saturated"), "{}", trace.note);
        // Without the option, the HPA's arithmetic.
        let mut hpa = t.clone();
        hpa.profiles[0]
            .target_tracking
            .as_mut()
            .unwrap()
            .size_from_load = false;
        let d = run(&hpa, 2, &hot, std::slice::from_ref(&calm), later);
        assert_eq!(d.tracking.unwrap().recommendation, 4);
    }

    #[test]
    fn initializing_instances_count_at_the_target_when_scaling_in() {
        let t = tracking(50.0);
        let now = at(0);
        // 8 instances, 5 with data at 30 %: ⌈5 × 0.6⌉ + 3 = 6, not ⌈8 × 0.6⌉ = 5.
        let d = decide_setting(&Inputs {
            scale_set: "web",
            now,
            setting: &t,
            current: 8,
            counted: 5,
            points: &slices(&cpu(30.0, now)),
            history: &[],
            explain: true,
            forecasts: &[],
        });
        assert_eq!(d.tracking.unwrap().recommendation, 6);
    }

    #[test]
    fn both_modes_scale_in_only_together() {
        let mut s = tracking(50.0);
        s.profiles[0].rules = cpu_rules().profiles[0].rules.clone();
        let now = at(0);
        // CPU 20 %: rules say 5 → 4, tracking says ⌈5 × 0.4⌉ = 2: in to 4 (smallest change).
        let d = run(&s, 5, &cpu(20.0, now), &[], now);
        assert_eq!((d.operation, d.new_capacity), (Operation::ScaleIn, 4));
        // CPU 40 %: tracking says 4, the rules don't fire: stay.
        assert_eq!(
            run(&s, 5, &cpu(40.0, now), &[], now).operation,
            Operation::None
        );
        // CPU 75 %: rules +1 → 6, tracking ⌈5 × 1.5⌉ = 8: out to 8.
        assert_eq!(run(&s, 5, &cpu(75.0, now), &[], now).new_capacity, 8);
    }

    #[test]
    fn a_schedule_profile_raises_the_minimum_at_its_start() {
        let mut s = cpu_rules();
        s.profiles.push(Profile {
            name: "business-hours".into(),
            capacity: Bounds {
                minimum: 6,
                maximum: 10,
                default: 6,
            },
            rules: vec![],
            target_tracking: None,
            predictive: None,
            recurrence: Some(Recurrence {
                time_zone: "UTC".into(),
                days: Weekday::ALL.to_vec(),
                hours: vec![8],
                minutes: vec![0],
                end: Some(crate::schedule::TimeOfDay {
                    hour: 18,
                    minute: 0,
                }),
            }),
            fixed_date: None,
        });
        let before: DateTime<Utc> = "2026-11-27T07:59:00Z".parse().unwrap();
        let d = run(&s, 2, &cpu(50.0, before), &[], before);
        assert_eq!(
            (d.profile.as_deref(), d.operation),
            (Some("default"), Operation::None)
        );
        let start: DateTime<Utc> = "2026-11-27T08:00:00Z".parse().unwrap();
        let d = run(&s, 2, &cpu(50.0, start), &[], start);
        assert_eq!(d.profile.as_deref(), Some("business-hours"));
        assert_eq!((d.operation, d.new_capacity), (Operation::ScaleOut, 6));
    }
}
