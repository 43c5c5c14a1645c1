//! Backtests ("what if"): a load replayed through an autoscale setting with the very function
//! the live autoscaler calls ([`decide_setting`]), on a simulated fleet, scored with the SPEC
//! Research Group's elasticity metrics.
//!
//! The simulated fleet starts at the given capacity with every instance serving. An instance
//! added by a decision serves after a boot time drawn from the measured distribution
//! (creation → healthy, drawn in a low-discrepancy order of its quantiles, so a run is
//! repeatable and a long run sees the whole distribution); one removed stops serving and
//! costing at once, the newest first (booting ones before serving ones). Instances count for
//! the metrics once they have served for the setting's `initialization_seconds`, as live.
//!
//! Two sources of load:
//! - **demand** (a pattern or a CSV): the metrics a setting reads are made by the mock's own
//!   model — each serving instance takes an equal share of the load; CPU is
//!   `idle + 100 × share / instance_capacity_rps`, capped at 100 %; requests per second are
//!   the load; instance counts are the simulated fleet's;
//! - **history** (what a set recorded): the stored points, changed only where the simulated
//!   fleet differs from the live one. The live fleet is rebuilt with the same model from the
//!   live decisions; per-instance metrics (CPU, memory, network and disk bytes) are scaled
//!   by live ÷ simulated serving instances (the work above idle spreads over more or fewer
//!   instances), instance counts shifted by the difference, the set's totals (requests,
//!   errors, demand, connections) and latencies kept. Where both fleets agree the
//!   points pass unchanged, so replaying the saved setting over its own run at the live
//!   evaluation instants gives the live decisions again.
//!
//! Scores, over the run's duration T, with demand `d` = the ideal capacity (the fewest
//! instances keeping the SLO metric under its limit) and supply `s` = serving instances
//! (Herbst et al., "Ready for Rain? A View from SPEC Research on the Future of Cloud
//! Metrics", and BUNGEE):
//! - under-/over-provisioning accuracy: `100/T · Σ max(d − s, 0) / max(d, 1) · Δt` and
//!   `100/T · Σ max(s − d, 0) / max(d, 1) · Δt` (percent of the demand missing / in excess);
//! - under-/over-provisioning timeshare: the percent of time with `s < d` / `s > d`;
//! - jitter: (changes of supply − changes of demand) per hour (negative: too few adaptations);
//! - instability: the percent of time supply and demand move in different directions;
//! - SLO violation seconds: time with the SLO metric above its limit (or nothing serving a
//!   load); instance-hours: every provisioned instance, booting ones included (the cost).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::decision::{Decision, Inputs, Operation, decide_setting};
use super::forecast::{self, Forecaster};
use super::setting::AutoscaleSetting;
use crate::demand::Demand;
use crate::metrics::{Metric, Point};

/// How far back the decisions an evaluation reads go (as live).
pub const HISTORY_SECONDS: i64 = 3600;
/// The most decisions a result lists.
pub const MAX_DECISIONS: usize = 10_000;
/// The most points of a result's series.
pub const MAX_SERIES_POINTS: usize = 2_000;

/// The objective a run is scored against: the SLO metric must stay at or below `limit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Slo {
    /// `cpu_percent` (the utilisation the simulated fleet models).
    pub metric: String,
    pub limit: f64,
}

impl Default for Slo {
    fn default() -> Self {
        Slo {
            metric: Metric::CpuPercent.as_str().into(),
            limit: 80.0,
        }
    }
}

/// The simulated fleet's instances.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetModel {
    /// Requests per second that take one instance's CPU 100 points above idle (the mock:
    /// 50 per vCPU): `cpu = idle + 100 × rps / instance_capacity_rps`.
    pub instance_capacity_rps: f64,
    /// The CPU of an instance serving nothing, in percent.
    pub idle_cpu_percent: f64,
    /// Boot times (creation → healthy) in seconds, sorted; empty: instant.
    pub boot_seconds: Vec<f64>,
}

impl FleetModel {
    /// The boot time of the `k`-th instance added: the distribution's quantile at the `k`-th
    /// term of the van der Corput sequence.
    fn boot(&self, k: u64) -> f64 {
        let n = self.boot_seconds.len();
        if n == 0 {
            return 0.0;
        }
        let (mut q, mut base, mut k) = (0.0, 0.5, k + 1);
        while k > 0 {
            if k & 1 == 1 {
                q += base;
            }
            base /= 2.0;
            k >>= 1;
        }
        self.boot_seconds[((q * n as f64) as usize).min(n - 1)]
    }

    /// Utilisation in percent of `serving` instances under `load` (infinite when nothing
    /// serves a load).
    fn utilisation(&self, load: f64, serving: u32) -> f64 {
        if serving == 0 {
            return if load > 0.0 { f64::INFINITY } else { 0.0 };
        }
        100.0 * load / (f64::from(serving) * self.instance_capacity_rps)
    }

    /// The fewest instances keeping CPU at or below `limit` under `load`.
    pub fn ideal(&self, load: f64, limit: f64) -> u32 {
        let headroom = (limit - self.idle_cpu_percent).max(1e-9);
        let n = (100.0 * load / (self.instance_capacity_rps * headroom) - 1e-9).ceil();
        n.clamp(0.0, f64::from(u32::MAX)) as u32
    }
}

/// A fleet: the instants (seconds from the run's start) at which its instances serve.
#[derive(Debug, Clone, Default)]
struct Fleet {
    /// Serving, in the order they began to (ascending).
    ready: Vec<f64>,
    /// Booting, in the order they were added, each with the instant it will serve.
    booting: Vec<f64>,
    added: u64,
}

impl Fleet {
    fn steady(capacity: u32) -> Self {
        // Serving since long before the start: counted at once.
        Fleet {
            ready: vec![f64::NEG_INFINITY; capacity as usize],
            ..Fleet::default()
        }
    }

    fn capacity(&self) -> u32 {
        (self.ready.len() + self.booting.len()) as u32
    }

    /// Moves the instances that serve by `t` from booting to ready.
    fn advance(&mut self, t: f64) {
        if self.booting.iter().all(|r| *r > t) {
            return;
        }
        let mut done: Vec<f64> = self.booting.iter().copied().filter(|r| *r <= t).collect();
        self.booting.retain(|r| *r > t);
        done.sort_by(f64::total_cmp);
        self.ready.extend(done);
        // Kept ascending: booted instances serve from their own instants.
        if self.ready.windows(2).any(|w| w[0] > w[1]) {
            self.ready.sort_by(f64::total_cmp);
        }
    }

    fn serving(&self) -> u32 {
        self.ready.len() as u32
    }

    /// Serving for at least `initialization` seconds at `t`.
    fn counted(&self, t: f64, initialization: f64) -> u32 {
        self.ready.partition_point(|r| *r + initialization <= t) as u32
    }

    fn resize(&mut self, to: u32, t: f64, model: &FleetModel) {
        while self.capacity() < to {
            self.booting.push(t + model.boot(self.added));
            self.added += 1;
        }
        while self.capacity() > to {
            if self.booting.pop().is_none() {
                self.ready.pop();
            }
        }
        self.advance(t);
    }
}

/// What a run replays.
pub struct Replay<'a> {
    pub scale_set: &'a str,
    /// The start of the run: instants before it only fill the first evaluations' windows.
    pub start: DateTime<Utc>,
    /// The instants of the load, ascending, and the load (requests per second) at each.
    pub times: &'a [DateTime<Utc>],
    pub load: &'a [f64],
    /// The end of the run (after the last instant).
    pub end: DateTime<Utc>,
    /// History mode: the points the live fleet recorded, per metric, ascending (their
    /// instants among `times`). `None`: demand mode.
    pub recorded: Option<&'a BTreeMap<Metric, Vec<Point>>>,
    /// The live decisions from an hour before the start to the end, ascending: the
    /// history the first evaluations read, and (history mode) the live fleet's changes.
    pub live: &'a [Decision],
    /// When to evaluate, ascending.
    pub evaluations: &'a [DateTime<Utc>],
    /// How often the metrics were sampled (the finest slot a load forecast is cut into).
    pub metrics_interval_seconds: u32,
    /// The capacity at the start.
    pub capacity: u32,
    pub fleet: &'a FleetModel,
    pub slo: &'a Slo,
    /// Which decisions the result keeps.
    pub keep: Keep,
}

/// Which decisions a result keeps (every evaluation's history is read all the same).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// Scale actions only.
    #[default]
    Actions,
    /// Every evaluation.
    All,
}

/// The scores of one run (see the module's note for their definitions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Scores {
    pub under_provisioning_accuracy: f64,
    pub over_provisioning_accuracy: f64,
    pub under_provisioning_timeshare: f64,
    pub over_provisioning_timeshare: f64,
    pub jitter: f64,
    pub instability: f64,
    pub slo_violation_seconds: f64,
    pub instance_hours: f64,
    /// Scale actions taken.
    pub scale_actions: u32,
}

/// One point of a result's series (the average over its span when the run has more instants
/// than [`MAX_SERIES_POINTS`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesPoint {
    pub at: DateTime<Utc>,
    /// Requests per second.
    pub load: f64,
    /// Instances provisioned (the capacity the setting asked for).
    pub capacity: f64,
    /// The fewest instances keeping the SLO.
    pub ideal_capacity: f64,
    /// Instances serving (booted).
    pub serving: f64,
}

/// A run's result: scores, series and the decisions kept, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub scores: Scores,
    pub series: Vec<SeriesPoint>,
    pub decisions: Vec<Decision>,
    /// More than [`MAX_DECISIONS`] were to be kept: the first are.
    pub decisions_truncated: bool,
}

/// The points of `metric` at one instant made by the mock's model (demand mode).
fn synthesized(
    metric: Metric,
    load: f64,
    state: &State,
    model: &FleetModel,
    at: DateTime<Utc>,
) -> Option<Point> {
    let State {
        capacity,
        serving,
        counted,
    } = *state;
    let share = if serving > 0 {
        load / f64::from(serving)
    } else {
        0.0
    };
    let cpu = (model.idle_cpu_percent + model.utilisation(load, serving)).min(100.0);
    let per_instance = |value: f64| {
        (counted > 0).then(|| Point {
            at,
            average: value,
            minimum: value,
            maximum: value,
            total: value * f64::from(counted),
            count: counted,
        })
    };
    let single = |value: f64| Some(Point::single(at, value));
    match metric {
        Metric::CpuPercent => per_instance(cpu),
        Metric::MemoryPercent => per_instance(20.0 + 0.5 * cpu),
        Metric::NetworkInBytesPerSecond => per_instance(200.0 + share * 800.0),
        Metric::NetworkOutBytesPerSecond => per_instance(300.0 + share * 6_000.0),
        Metric::DiskReadBytesPerSecond => per_instance(4_096.0 + share * 100.0),
        Metric::DiskWriteBytesPerSecond => per_instance(16_384.0 + share * 300.0),
        Metric::RequestsPerSecond => single(if serving > 0 { load } else { 0.0 }),
        Metric::ErrorsPerSecond => single(if serving > 0 { 0.0 } else { load }),
        Metric::DemandRequestsPerSecond => single(load),
        Metric::Capacity => single(f64::from(capacity)),
        Metric::InstancesRunning | Metric::InstancesHealthy => single(f64::from(serving)),
        Metric::InstancesUnhealthy => single(0.0),
        Metric::InstancesInTransition => single(f64::from(capacity - serving)),
        Metric::LatencyP50Ms
        | Metric::LatencyP95Ms
        | Metric::LatencyP99Ms
        | Metric::ActiveConnections => None,
    }
}

/// A fleet's counts at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub capacity: u32,
    /// Instances serving (booted, healthy).
    pub serving: u32,
    /// Instances whose metrics count (past the initialization period).
    pub counted: u32,
}

/// A point the `live` fleet recorded as a fleet in state `sim` would have seen it (history
/// mode, shadow settings): unchanged where the two agree; per-instance metrics scaled by
/// live ÷ simulated serving instances above `idle` (percentages capped at 100), instance
/// counts shifted by the difference, totals kept; `None` when no simulated instance counts.
pub fn transformed(
    metric: Metric,
    p: &Point,
    sim: &State,
    live: &State,
    idle: f64,
) -> Option<Point> {
    if sim == live {
        return Some(*p);
    }
    let shift = |p: &Point, by: i64| {
        let f = |v: f64| (v + by as f64).max(0.0);
        let average = f(p.average);
        Some(Point {
            average,
            minimum: f(p.minimum),
            maximum: f(p.maximum),
            total: average * f64::from(p.count),
            ..*p
        })
    };
    let (c, s) = (i64::from(sim.capacity), i64::from(sim.serving));
    let (lc, ls) = (i64::from(live.capacity), i64::from(live.serving));
    match metric {
        Metric::Capacity => shift(p, c - lc),
        Metric::InstancesRunning | Metric::InstancesHealthy => shift(p, s - ls),
        Metric::InstancesInTransition => shift(p, (c - s) - (lc - ls)),
        m if Metric::PER_INSTANCE.contains(&m) => {
            if sim.counted == 0 || sim.serving == 0 {
                return None;
            }
            let ratio = f64::from(live.serving.max(1)) / f64::from(sim.serving);
            let percent = matches!(m, Metric::CpuPercent | Metric::MemoryPercent);
            let f = |v: f64| {
                if percent {
                    (idle + (v - idle) * ratio).clamp(0.0, 100.0)
                } else {
                    v * ratio
                }
            };
            let count = ((f64::from(p.count) * f64::from(sim.counted)
                / f64::from(live.counted.max(1)))
            .round() as u32)
                .max(1);
            let average = f(p.average);
            Some(Point {
                at: p.at,
                average,
                minimum: f(p.minimum),
                maximum: f(p.maximum),
                total: average * f64::from(count),
                count,
            })
        }
        _ => Some(*p),
    }
}

/// Accumulates the scores frame by frame.
#[derive(Default)]
struct Tally {
    seconds: f64,
    under: f64,
    over: f64,
    under_time: f64,
    over_time: f64,
    unstable_time: f64,
    supply_changes: u32,
    demand_changes: u32,
    violation: f64,
    instance_seconds: f64,
    last: Option<(u32, u32)>,
}

impl Tally {
    fn add(&mut self, dt: f64, demand: u32, supply: u32, capacity: u32, violated: bool) {
        let d = f64::from(demand);
        let s = f64::from(supply);
        self.seconds += dt;
        self.under += (d - s).max(0.0) / d.max(1.0) * dt;
        self.over += (s - d).max(0.0) / d.max(1.0) * dt;
        if supply < demand {
            self.under_time += dt;
        }
        if supply > demand {
            self.over_time += dt;
        }
        if violated {
            self.violation += dt;
        }
        self.instance_seconds += f64::from(capacity) * dt;
        if let Some((ld, ls)) = self.last {
            self.demand_changes += u32::from(ld != demand);
            self.supply_changes += u32::from(ls != supply);
            if demand.cmp(&ld) != supply.cmp(&ls) {
                self.unstable_time += dt;
            }
        }
        self.last = Some((demand, supply));
    }

    fn scores(&self, scale_actions: u32) -> Scores {
        let t = self.seconds.max(1e-9);
        let percent = |v: f64| 100.0 * v / t;
        Scores {
            under_provisioning_accuracy: percent(self.under),
            over_provisioning_accuracy: percent(self.over),
            under_provisioning_timeshare: percent(self.under_time),
            over_provisioning_timeshare: percent(self.over_time),
            jitter: (f64::from(self.supply_changes) - f64::from(self.demand_changes))
                / (t / 3600.0),
            instability: percent(self.unstable_time),
            slo_violation_seconds: self.violation,
            instance_hours: self.instance_seconds / 3600.0,
            scale_actions,
        }
    }
}

/// Averages consecutive frames into at most [`MAX_SERIES_POINTS`] points.
#[derive(Default)]
struct Downsampler {
    per_point: usize,
    filled: usize,
    sum: [f64; 4],
    at: Option<DateTime<Utc>>,
    out: Vec<SeriesPoint>,
}

impl Downsampler {
    fn new(frames: usize) -> Self {
        Downsampler {
            per_point: frames.div_ceil(MAX_SERIES_POINTS).max(1),
            ..Downsampler::default()
        }
    }

    fn push(&mut self, at: DateTime<Utc>, values: [f64; 4]) {
        self.at.get_or_insert(at);
        for (s, v) in self.sum.iter_mut().zip(values) {
            *s += v;
        }
        self.filled += 1;
        if self.filled == self.per_point {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let Some(at) = self.at.take() else { return };
        let n = self.filled as f64;
        let [load, capacity, ideal, serving] = self.sum.map(|s| s / n);
        self.out.push(SeriesPoint {
            at,
            load,
            capacity,
            ideal_capacity: ideal,
            serving,
        });
        self.sum = [0.0; 4];
        self.filled = 0;
    }
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

/// A run in progress.
struct Run<'a> {
    replay: &'a Replay<'a>,
    setting: &'a AutoscaleSetting,
    start: DateTime<Utc>,
    windows: BTreeMap<Metric, u32>,
    longest: i64,
    /// The points made so far of each metric the setting or the SLO reads, with the first
    /// one inside the longest window of the last evaluation.
    made: BTreeMap<Metric, (Vec<Point>, usize)>,
    sim: Fleet,
    /// Decisions, oldest first: those from `expired` on are the last hour's.
    history: Vec<Decision>,
    expired: usize,
    decisions: Vec<Decision>,
    next_evaluation: usize,
    /// Decisions to keep were left out past [`MAX_DECISIONS`].
    truncated: bool,
    /// The instances counted at the last instant (what `counted` is live).
    counted: u32,
    actions: u32,
    /// The predictive profiles' load forecasters, and how many points of their metric each
    /// has been fed.
    forecasters: Vec<Forecaster>,
    fed: Vec<usize>,
}

impl Run<'_> {
    fn at(&self, t: DateTime<Utc>) -> f64 {
        seconds(self.start, t)
    }

    /// Runs the evaluations due before `until` (all that are left: `None`).
    fn evaluate_until(&mut self, until: Option<DateTime<Utc>>) {
        let replay = self.replay;
        while let Some(&now) = replay.evaluations.get(self.next_evaluation) {
            if until.is_some_and(|u| now > u) || now >= replay.end {
                break;
            }
            self.next_evaluation += 1;
            if now < self.start {
                continue;
            }
            let t = self.at(now);
            self.sim.advance(t);
            if self.expired >= 256 {
                let old: Vec<Decision> = self.history.drain(..self.expired).collect();
                self.expired = 0;
                for d in old {
                    self.keep(d);
                }
            }
            let running = self
                .made
                .get(&Metric::InstancesRunning)
                .map_or(&[][..], |m| &m.0[..]);
            for (f, fed) in self.forecasters.iter_mut().zip(&mut self.fed) {
                let made = self.made.get(&f.key().metric).map_or(&[][..], |m| &m.0[..]);
                for p in &made[*fed..] {
                    f.observe(p.at, forecast::load_of(p, running));
                }
                *fed = made.len();
            }
            // Every point made so far is older than `now`; the windows only move forward.
            let from = now - chrono::Duration::seconds(self.longest);
            let mut points: BTreeMap<Metric, &[Point]> = BTreeMap::new();
            for (m, (all, lo)) in &mut self.made {
                if self.windows.contains_key(m) {
                    while all.get(*lo).is_some_and(|p| p.at < from) {
                        *lo += 1;
                    }
                    points.insert(*m, &all[*lo..]);
                }
            }
            let current = self.sim.capacity();
            let history = &self.history[self.expired..];
            let mut inputs = Inputs {
                scale_set: replay.scale_set,
                now,
                setting: self.setting,
                current,
                counted: self.counted.min(current),
                points: &points,
                history,
                explain: replay.keep == Keep::All,
                forecasts: &self.forecasters,
            };
            let mut decision = decide_setting(&inputs);
            if decision.operation != Operation::None && !inputs.explain {
                // Kept: decided again with its arithmetic written out (same numbers).
                inputs.explain = true;
                decision = decide_setting(&inputs);
            }
            if decision.operation != Operation::None {
                self.sim.resize(decision.new_capacity, t, replay.fleet);
                self.actions += 1;
            }
            // As live: the decisions of the hour before the newest one are kept.
            let horizon = decision.at - chrono::Duration::seconds(HISTORY_SECONDS);
            self.history.push(decision);
            while self
                .history
                .get(self.expired)
                .is_some_and(|d| d.at < horizon)
            {
                self.expired += 1;
            }
        }
    }

    /// Takes a decision leaving the history into the result (the run's own, as asked).
    fn keep(&mut self, decision: Decision) {
        let ours = decision.at >= self.start;
        if ours && (self.replay.keep == Keep::All || decision.operation != Operation::None) {
            if self.decisions.len() < MAX_DECISIONS {
                self.decisions.push(decision);
            } else {
                self.truncated = true;
            }
        }
    }

    /// The decisions kept, oldest first, and whether some were left out.
    fn finish(mut self) -> (Vec<Decision>, bool) {
        for d in std::mem::take(&mut self.history) {
            self.keep(d);
        }
        (self.decisions, self.truncated)
    }
}

/// A cursor over one recorded series: the point at each instant, in order.
struct Cursor<'a> {
    points: &'a [Point],
    next: usize,
}

impl<'a> Cursor<'a> {
    fn new(recorded: &'a BTreeMap<Metric, Vec<Point>>, metric: Metric) -> Self {
        Cursor {
            points: recorded.get(&metric).map_or(&[], Vec::as_slice),
            next: 0,
        }
    }

    /// The points up to `now` not taken yet.
    fn take(&mut self, now: DateTime<Utc>) -> &'a [Point] {
        let from = self.next;
        while self.points.get(self.next).is_some_and(|p| p.at <= now) {
            self.next += 1;
        }
        &self.points[from..self.next]
    }
}

fn state(fleet: &Fleet, t: f64, initialization: f64) -> State {
    State {
        capacity: fleet.capacity(),
        serving: fleet.serving(),
        counted: fleet.counted(t, initialization),
    }
}

/// Replays `replay` through `setting` (assumed valid).
pub fn run(replay: &Replay<'_>, setting: &AutoscaleSetting) -> Outcome {
    let start = replay.start;
    let model = replay.fleet;
    let initialization = f64::from(setting.initialization_seconds);
    let windows = setting.metric_windows();
    let slo_metric = Metric::parse(&replay.slo.metric).unwrap_or(Metric::CpuPercent);
    let forecasters: Vec<Forecaster> = forecast::keys(setting, &model.boot_seconds)
        .into_iter()
        .map(|k| Forecaster::new(k, replay.metrics_interval_seconds))
        .collect();
    let made = windows
        .keys()
        .copied()
        .chain([slo_metric])
        .chain(forecasters.iter().map(|f| f.key().metric))
        // A forecast reads the ticks each point spans from the instances running.
        .chain((!forecasters.is_empty()).then_some(Metric::InstancesRunning))
        .map(|m| (m, (Vec::new(), 0)))
        .collect();
    let mut run = Run {
        replay,
        setting,
        start,
        longest: i64::from(windows.values().copied().max().unwrap_or(0)),
        windows,
        made,
        sim: Fleet::steady(replay.capacity),
        history: replay
            .live
            .iter()
            .filter(|d| d.at < start && (start - d.at).num_seconds() <= HISTORY_SECONDS)
            .cloned()
            .collect(),
        expired: 0,
        decisions: Vec::new(),
        next_evaluation: 0,
        truncated: false,
        counted: replay.capacity,
        actions: 0,
        fed: vec![0; forecasters.len()],
        forecasters,
    };
    // History mode: the live fleet, rebuilt from the live decisions.
    let mut live = Fleet::steady(replay.capacity);
    let mut live_actions = replay
        .live
        .iter()
        .filter(|d| d.at >= start && d.operation != Operation::None)
        .peekable();
    let empty = BTreeMap::new();
    let recorded = replay.recorded.unwrap_or(&empty);
    let mut cursors: BTreeMap<Metric, Cursor> = run
        .made
        .keys()
        .map(|m| (*m, Cursor::new(recorded, *m)))
        .collect();
    let mut observed_cpu = Cursor::new(recorded, Metric::CpuPercent);
    let mut observed_running = Cursor::new(recorded, Metric::InstancesRunning);
    let mut tally = Tally::default();
    let mut series = Downsampler::new(replay.times.iter().filter(|t| **t >= start).count());

    for (i, (&now, &load)) in replay.times.iter().zip(replay.load).enumerate() {
        run.evaluate_until(Some(now));
        let t = run.at(now);
        while let Some(d) = live_actions.next_if(|d| d.at <= now) {
            let when = run.at(d.at);
            // A change by hand in between: the live fleet follows it first.
            live.resize(d.current, when, model);
            live.resize(d.new_capacity, when, model);
        }
        run.sim.advance(t);
        live.advance(t);
        let (s, l) = (
            state(&run.sim, t, initialization),
            state(&live, t, initialization),
        );
        if replay.recorded.is_none() {
            for (m, (points, _)) in &mut run.made {
                points.extend(synthesized(*m, load, &s, model, now));
            }
            run.counted = s.counted;
        } else {
            // The instances the live fleet counted: a per-instance point's count over
            // the ticks it spans (a roll-up holds one per tick).
            let ticks = observed_running
                .take(now)
                .last()
                .map_or(1, |p| p.count.max(1));
            // No per-instance point: no instance counted (as live).
            let observed_counted = observed_cpu.take(now).last().map_or(0, |p| {
                (f64::from(p.count) / f64::from(ticks)).round() as u32
            });
            for (m, (points, _)) in &mut run.made {
                let taken = cursors.get_mut(m).map_or(&[][..], |c| c.take(now));
                points.extend(
                    taken
                        .iter()
                        .filter_map(|p| transformed(*m, p, &s, &l, model.idle_cpu_percent)),
                );
            }
            run.counted = (i64::from(observed_counted) + i64::from(s.counted)
                - i64::from(l.counted))
            .clamp(0, i64::from(s.capacity)) as u32;
        }
        // Instants before the start only fill the first windows; the run counts from it.
        let next = replay.times.get(i + 1).copied().unwrap_or(replay.end);
        if next <= start {
            continue;
        }
        let dt = seconds(now.max(start), next).max(0.0);
        let demand = model.ideal(load, replay.slo.limit);
        let measured = run.made[&slo_metric]
            .0
            .last()
            .filter(|p| p.at == now)
            .map(|p| p.average);
        let violated = (s.serving == 0 && load > 0.0)
            || measured.map_or_else(
                || model.idle_cpu_percent + model.utilisation(load, s.serving) > replay.slo.limit,
                |v| v > replay.slo.limit,
            );
        tally.add(dt, demand, s.serving, s.capacity, violated);
        series.push(
            now,
            [
                load,
                f64::from(s.capacity),
                f64::from(demand),
                f64::from(s.serving),
            ],
        );
    }
    run.evaluate_until(None);
    series.flush();
    let actions = run.actions;
    let (decisions, decisions_truncated) = run.finish();
    Outcome {
        scores: tally.scores(actions),
        series: series.out,
        decisions,
        decisions_truncated,
    }
}

/// The longest run a backtest replays.
pub const MAX_SECONDS: u32 = 366 * 86_400;
/// The most settings one backtest compares.
pub const MAX_SETTINGS: usize = 10;
/// The most boot times a request may give.
pub const MAX_BOOT_SAMPLES: usize = 10_000;

/// `POST /scale-sets/{name}/autoscale/backtest`: what to replay, through which settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Request {
    /// A demand pattern as in `PUT …/demand` (`csv` included), replayed for
    /// `duration_seconds` from now; or else `history`.
    #[serde(default)]
    pub demand: Option<Demand>,
    /// The set's own recorded metrics over a range; or else `demand`.
    #[serde(default)]
    pub history: Option<Range>,
    /// How long to replay a demand.
    #[serde(default)]
    pub duration_seconds: Option<u32>,
    /// Settings as in `PUT …/autoscale` (left out: the saved one), compared side by side.
    #[serde(default)]
    pub settings: Option<Vec<AutoscaleSetting>>,
    /// What each run is scored against (default CPU at most 80 %).
    #[serde(default)]
    pub slo: Option<Slo>,
    /// Requests per second that take one instance's CPU 100 points above idle (default:
    /// calibrated from the set's metrics, else the mock's 50 per vCPU).
    #[serde(default)]
    pub instance_capacity_rps: Option<f64>,
    /// Boot time (creation → healthy) in seconds: one value or a distribution (default:
    /// measured on the set's instances).
    #[serde(default)]
    pub boot_seconds: Option<BootSeconds>,
    /// The capacity a demand run starts from (default: the set's).
    #[serde(default)]
    pub capacity: Option<u32>,
    /// Seconds between evaluations (default: the server's autoscale interval).
    #[serde(default)]
    pub interval_seconds: Option<u32>,
    /// Which decisions each result lists (default: the scale actions).
    #[serde(default)]
    pub decisions: Keep,
}

/// A range of recorded history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// One boot time, or a distribution of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum BootSeconds {
    One(f64),
    Many(Vec<f64>),
}

impl BootSeconds {
    /// The times, sorted.
    pub fn sorted(&self) -> Vec<f64> {
        let mut times = match self {
            BootSeconds::One(s) => vec![*s],
            BootSeconds::Many(v) => v.clone(),
        };
        times.sort_by(f64::total_cmp);
        times
    }
}

impl Request {
    /// Every problem with the request, a message per field (the settings' own as
    /// `settings[i].…`).
    pub fn validate(&self, now: DateTime<Utc>) -> crate::ValidationErrors {
        let mut errors = crate::ValidationErrors::default();
        match (&self.demand, &self.history) {
            (Some(_), Some(_)) => errors.push("history", "give either demand or history, not both"),
            (None, None) => errors.push(
                "demand",
                "give a demand pattern (with duration_seconds) or a history range to replay",
            ),
            _ => {}
        }
        if let Some(demand) = &self.demand {
            errors.nest("demand", demand.validate());
            match self.duration_seconds {
                None => errors.push(
                    "duration_seconds",
                    "a demand is replayed for duration_seconds: give it",
                ),
                Some(d) => errors.range("duration_seconds", d, 60, MAX_SECONDS),
            }
        } else if self.duration_seconds.is_some() {
            errors.push(
                "duration_seconds",
                "only with a demand: a history's range is its duration",
            );
        }
        if let Some(range) = &self.history {
            if range.from >= range.to {
                errors.push("history.to", "must be after history.from");
            } else if (range.to - range.from).num_seconds() > i64::from(MAX_SECONDS) {
                errors.push("history.to", "a history range spans at most 366 days");
            }
            if range.from > now {
                errors.push("history.from", "must not be in the future");
            } else if now - range.from > chrono::Duration::days(400) {
                errors.push(
                    "history.from",
                    "no history is kept that long: give a start within the metrics retention",
                );
            }
        }
        if let Some(settings) = &self.settings {
            if settings.is_empty() || settings.len() > MAX_SETTINGS {
                errors.push(
                    "settings",
                    format!("give 1 to {MAX_SETTINGS} settings (or leave it out for the saved one), got {}", settings.len()),
                );
            }
            for (i, s) in settings.iter().enumerate() {
                errors.nest(&format!("settings[{i}]"), s.validate());
            }
        }
        if let Some(slo) = &self.slo {
            if Metric::parse(&slo.metric) != Some(Metric::CpuPercent) {
                errors.push(
                    "slo.metric",
                    format!(
                        "the simulated fleet models cpu_percent only, got {:?}",
                        slo.metric
                    ),
                );
            }
            if !(slo.limit.is_finite() && slo.limit > 0.0 && slo.limit <= 100.0) {
                errors.push("slo.limit", "must be above 0 and at most 100 (percent)");
            }
        }
        if let Some(c) = self.instance_capacity_rps
            && !(c.is_finite() && c > 0.0 && c <= crate::demand::MAX_RPS)
        {
            errors.push(
                "instance_capacity_rps",
                format!("must be above 0 and at most {}", crate::demand::MAX_RPS),
            );
        }
        if let Some(boot) = &self.boot_seconds {
            let times = boot.sorted();
            if times.is_empty() || times.len() > MAX_BOOT_SAMPLES {
                errors.push(
                    "boot_seconds",
                    format!("give 1 to {MAX_BOOT_SAMPLES} boot times"),
                );
            } else if !times
                .iter()
                .all(|t| t.is_finite() && (0.0..=3600.0).contains(t))
            {
                errors.push(
                    "boot_seconds",
                    "each boot time must be between 0 and 3600 seconds",
                );
            }
        }
        if let Some(c) = self.capacity {
            errors.range("capacity", c, 0, crate::scale_set::MAX_CAPACITY);
        }
        if let Some(i) = self.interval_seconds {
            errors.range("interval_seconds", i, 1, 3600);
        }
        errors
    }
}

/// Where a figure of the simulated fleet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// In the request.
    Given,
    /// From the set's own metrics or instances.
    Measured,
    /// Nothing to measure: the mock's model.
    Assumed,
}

/// The simulated fleet a backtest ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Calibration {
    pub instance_capacity_rps: f64,
    pub idle_cpu_percent: f64,
    pub capacity_source: Source,
    /// The boot times drawn from, sorted.
    pub boot_seconds: Vec<f64>,
    pub boot_source: Source,
}

/// One setting's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunResult {
    pub scores: Scores,
    pub series: Vec<SeriesPoint>,
    /// Items as in `GET …/autoscale/decisions`, oldest first (the scale actions, or every
    /// evaluation as asked), at most the first 10,000.
    pub decisions: Vec<Decision>,
    /// Whether more decisions than that were made (the scores count them all).
    pub decisions_truncated: bool,
}

/// The answer: one result per setting, in the request's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Answer {
    pub results: Vec<RunResult>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Evaluations per run.
    pub evaluations: u32,
    pub calibration: Calibration,
}

/// Fits `cpu = idle + 100 × rps / capacity` (the fleet model's) to (requests per second
/// per instance, CPU percent) pairs, leaving out saturated ones (CPU ≥ 90 %): by least
/// squares when the loads spread (at least 10 pairs, the highest 20 % above the lowest);
/// else, from 3 pairs on, through their mean with `idle` as given. `None` when nothing
/// fits (no positive slope). Answers (capacity, idle).
pub fn calibrate(pairs: &[(f64, f64)], idle: f64) -> Option<(f64, f64)> {
    let usable: Vec<&(f64, f64)> = pairs
        .iter()
        .filter(|(r, c)| r.is_finite() && c.is_finite() && *r > 0.0 && *c < 90.0)
        .collect();
    if usable.len() < 3 {
        return None;
    }
    let n = usable.len() as f64;
    let (sx, sy) = usable
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let (lo, hi) = usable
        .iter()
        .fold((f64::INFINITY, 0.0_f64), |(lo, hi), (x, _)| {
            (lo.min(*x), hi.max(*x))
        });
    if usable.len() >= 10 && hi > lo * 1.2 {
        let (sxy, sxx) = usable.iter().fold((0.0, 0.0), |(sxy, sxx), (x, y)| {
            (sxy + (x - mx) * (y - my), sxx + (x - mx) * (x - mx))
        });
        let slope = sxy / sxx;
        let idle = (my - slope * mx).clamp(0.0, 50.0);
        return (slope > 0.0).then(|| (100.0 / slope, idle));
    }
    (my > idle).then(|| (100.0 * mx / (my - idle), idle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::seconds(1_800_000_000 + secs)
    }

    fn setting(json: &str) -> AutoscaleSetting {
        serde_json::from_str(json).unwrap()
    }

    const RULES: &str = r#"{"enabled":true,"initialization_seconds":0,"profiles":[{"name":"default","capacity":{"minimum":1,"maximum":20,"default":2},
        "rules":[{"metric":"cpu_percent","statistic":"average","time_grain_seconds":60,"time_window_seconds":120,
          "time_aggregation":"average","operator":"greater_than","threshold":70,"direction":"increase","type":"change_count","value":2,"cooldown_seconds":120},
          {"metric":"cpu_percent","statistic":"average","time_grain_seconds":60,"time_window_seconds":300,
          "time_aggregation":"average","operator":"less_than","threshold":30,"direction":"decrease","type":"change_count","value":1,"cooldown_seconds":300}]}]}"#;

    fn model(boot: &[f64]) -> FleetModel {
        FleetModel {
            instance_capacity_rps: 100.0,
            idle_cpu_percent: 2.0,
            boot_seconds: boot.to_vec(),
        }
    }

    /// Every 10 s for `seconds`, evaluations every 30 s.
    fn timeline(
        seconds: i64,
        load: impl Fn(i64) -> f64,
    ) -> (Vec<DateTime<Utc>>, Vec<f64>, Vec<DateTime<Utc>>) {
        let times: Vec<_> = (0..seconds / 10).map(|i| at(i * 10)).collect();
        let loads = (0..seconds / 10).map(|i| load(i * 10)).collect();
        let evaluations = (1..seconds / 30).map(|i| at(i * 30 + 5)).collect();
        (times, loads, evaluations)
    }

    #[test]
    fn a_forecast_scales_out_before_each_peak_by_the_boot_time() {
        const TRACKING: &str = r#"{"metric":"cpu_percent","target":60,"window_seconds":60,
            "scale_up":{"stabilization_window_seconds":0,"policies":[{"type":"percent","value":100,"period_seconds":15}]},
            "scale_down":{"stabilization_window_seconds":300,"policies":[{"type":"percent","value":100,"period_seconds":15}]}}"#;
        let reactive = setting(&format!(
            r#"{{"enabled":true,"initialization_seconds":0,"profiles":[{{"name":"default",
            "capacity":{{"minimum":1,"maximum":20,"default":2}},"target_tracking":{TRACKING}}}]}}"#
        ));
        let predictive = setting(&format!(
            r#"{{"enabled":true,"initialization_seconds":0,"profiles":[{{"name":"default",
            "capacity":{{"minimum":1,"maximum":20,"default":2}},"target_tracking":{TRACKING},
            "predictive":{{"metric":"requests_per_second","target":60,"mode":"forecast_and_scale","season_seconds":1200}}}}]}}"#
        ));
        assert!(predictive.validate().is_empty());
        // A peak of 700 rps from 10 to 15 minutes into each 20 minutes, 100 otherwise.
        let peak = |t: i64| (600..900).contains(&t.rem_euclid(1200));
        let (times, load, evaluations) =
            timeline(4 * 1200, |t| if peak(t) { 700.0 } else { 100.0 });
        let m = model(&[90.0]);
        let slo = Slo::default();
        let replay = Replay {
            scale_set: "web",
            start: times[0],
            times: &times,
            load: &load,
            end: at(4 * 1200),
            recorded: None,
            live: &[],
            evaluations: &evaluations,
            metrics_interval_seconds: 10,
            capacity: 2,
            fleet: &m,
            slo: &slo,
            keep: Keep::All,
        };
        let before = run(&replay, &reactive);
        let ahead = run(&replay, &predictive);
        // The first season has no history: nothing is forecast, both act alike.
        let first = &ahead.decisions[0];
        let f = first.forecast.as_ref().unwrap();
        assert!(
            f.capacity.is_none() && f.note.contains("needs a season"),
            "{f:?}"
        );
        assert_eq!(f.lead_seconds, 90, "the boot time's 90th percentile");
        // Then each peak is met by a scale-out about the lead (90 s) before it.
        for season in 1..4 {
            let start = at(season * 1200 + 600);
            let out = ahead
                .decisions
                .iter()
                .find(|d| {
                    d.operation == Operation::ScaleOut
                        && d.at > start - chrono::Duration::seconds(300)
                })
                .unwrap();
            let early = (start - out.at).num_seconds();
            assert!(
                (60..=130).contains(&early),
                "season {season}: {early} s early: {}",
                out.reason
            );
            assert!(out.reason.contains("forecast"), "{}", out.reason);
            let trace = out.forecast.as_ref().unwrap();
            assert!(trace.capacity.unwrap() >= 12, "⌈700 / 60⌉: {trace:?}");
            assert!(trace.mape.is_some() || season == 1, "{trace:?}");
        }
        // Fewer seconds over the SLO than reacting, after the first season.
        let over = |o: &Outcome| o.scores.slo_violation_seconds;
        assert!(
            over(&ahead) + 400.0 < over(&before),
            "{} vs {}",
            over(&ahead),
            over(&before)
        );
        // It never scales in on the forecast: every scale-in is target tracking's.
        assert!(
            ahead
                .decisions
                .iter()
                .filter(|d| d.operation == Operation::ScaleIn)
                .all(|d| d.reason.starts_with("target tracking"))
        );
    }

    #[test]
    fn boot_times_are_drawn_over_the_whole_distribution() {
        let m = model(&[10.0, 20.0, 30.0, 40.0]);
        let draws: Vec<f64> = (0..4).map(|k| m.boot(k)).collect();
        let mut sorted = draws.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(sorted, [10.0, 20.0, 30.0, 40.0], "{draws:?}");
        assert_eq!(model(&[]).boot(3), 0.0);
    }

    #[test]
    fn the_ideal_capacity_keeps_the_slo() {
        let m = model(&[]);
        // 78 % of headroom above 2 % idle: 780 rps need 10 instances of 100 at 80 %.
        assert_eq!(m.ideal(780.0, 80.0), 10);
        assert_eq!(m.ideal(781.0, 80.0), 11);
        assert_eq!(m.ideal(0.0, 80.0), 0);
    }

    #[test]
    fn a_step_in_demand_scales_out_after_the_boot_time_and_is_scored() {
        let s = setting(RULES);
        // 100 rps, then 600 from 10 minutes on, for 30 minutes.
        let (times, load, evaluations) = timeline(1800, |t| if t < 600 { 100.0 } else { 600.0 });
        let m = model(&[60.0]);
        let slo = Slo::default();
        let replay = Replay {
            scale_set: "web",
            start: times[0],
            times: &times,
            load: &load,
            end: at(1800),
            recorded: None,
            live: &[],
            evaluations: &evaluations,
            metrics_interval_seconds: 10,
            capacity: 2,
            fleet: &m,
            slo: &slo,
            keep: Keep::All,
        };
        let out = run(&replay, &s);
        let outs: Vec<&Decision> = out
            .decisions
            .iter()
            .filter(|d| d.operation == Operation::ScaleOut)
            .collect();
        assert!(!outs.is_empty());
        let first = outs[0];
        assert!(first.at > at(600) && first.at < at(800), "{:?}", first.at);
        assert_eq!(first.current, 2);
        // Enough in the end: 600 rps need ⌈600 / 78⌉ = 8 at the SLO; the rule stops once
        // CPU is at or below 70 %.
        let last = out.series.last().unwrap();
        assert!(last.capacity >= 9.0, "{last:?}");
        let sc = &out.scores;
        assert!(sc.under_provisioning_timeshare > 10.0, "{sc:?}");
        assert!(sc.slo_violation_seconds >= 60.0, "{sc:?}");
        assert!(
            sc.instance_hours > 1.0 && sc.instance_hours < 10.0,
            "{sc:?}"
        );
        assert_eq!(
            sc.scale_actions as usize,
            outs.len()
                + out
                    .decisions
                    .iter()
                    .filter(|d| d.operation == Operation::ScaleIn)
                    .count()
        );
        // Serving trails capacity by the boot time.
        let after = out
            .series
            .iter()
            .find(|p| p.at >= first.at + chrono::Duration::seconds(30))
            .unwrap();
        assert!(after.serving < after.capacity, "{after:?}");
        assert_eq!(out.decisions.len(), evaluations.len());
    }

    #[test]
    fn a_result_lists_at_most_ten_thousand_decisions() {
        let s = setting(RULES);
        let times: Vec<_> = (0..11_000).map(at).collect();
        let load = vec![100.0; times.len()];
        let m = model(&[]);
        let slo = Slo::default();
        let replay = Replay {
            scale_set: "web",
            start: times[0],
            times: &times,
            load: &load,
            end: at(11_000),
            recorded: None,
            live: &[],
            evaluations: &times[1..],
            metrics_interval_seconds: 1,
            capacity: 2,
            fleet: &m,
            slo: &slo,
            keep: Keep::All,
        };
        let out = run(&replay, &s);
        assert_eq!(out.decisions.len(), MAX_DECISIONS);
        assert!(out.decisions_truncated);
        assert_eq!(out.decisions[0].at, at(1), "the first are kept");
    }

    #[test]
    fn scores_follow_their_definitions() {
        let mut t = Tally::default();
        // demand 4, supply 2 for 10 s; demand 4, supply 6 for 30 s.
        t.add(10.0, 4, 2, 2, true);
        t.add(30.0, 4, 6, 6, false);
        let s = t.scores(1);
        assert!((s.under_provisioning_accuracy - 100.0 * (0.5 * 10.0) / 40.0).abs() < 1e-9);
        assert!((s.over_provisioning_accuracy - 100.0 * (0.5 * 30.0) / 40.0).abs() < 1e-9);
        assert!((s.under_provisioning_timeshare - 25.0).abs() < 1e-9);
        assert!((s.over_provisioning_timeshare - 75.0).abs() < 1e-9);
        // One change of supply, none of demand, over 40 s: +90 per hour.
        assert!((s.jitter - 90.0).abs() < 1e-9);
        // Supply rose while demand stayed: unstable for the second frame.
        assert!((s.instability - 75.0).abs() < 1e-9);
        assert_eq!(s.slo_violation_seconds, 10.0);
        assert!((s.instance_hours - (20.0 + 180.0) / 3600.0).abs() < 1e-12);
    }

    #[test]
    fn replaying_a_recorded_run_with_its_own_setting_gives_its_decisions() {
        let s = setting(RULES);
        let (times, load, evaluations) = timeline(3600, |t| {
            100.0 + 500.0 * ((t as f64 / 900.0) * std::f64::consts::PI).sin().abs()
        });
        let m = model(&[40.0, 50.0, 70.0]);
        let slo = Slo::default();
        let demand = Replay {
            scale_set: "web",
            start: times[0],
            times: &times,
            load: &load,
            end: at(3600),
            recorded: None,
            live: &[],
            evaluations: &evaluations,
            metrics_interval_seconds: 10,
            capacity: 2,
            fleet: &m,
            slo: &slo,
            keep: Keep::All,
        };
        let first = run(&demand, &s);
        assert!(first.scores.scale_actions >= 3, "{:?}", first.scores);
        // The record is the first run's own points, as a live collector stores them.
        let mut made = BTreeMap::new();
        made.insert(Metric::CpuPercent, record_of(&demand, &s));
        let history = Replay {
            recorded: Some(&made),
            live: &first.decisions,
            ..demand
        };
        let replayed = run(&history, &s);
        assert_eq!(replayed.decisions, first.decisions);
        assert_eq!(replayed.scores, first.scores);
        // Another setting on the same record: its own decisions, CPU spread over its fleet.
        let mut eager = s.clone();
        eager.profiles[0].rules[0].threshold = 50.0;
        let other = run(&history, &eager);
        assert_ne!(other.decisions, first.decisions);
        assert!(other.scores.instance_hours > first.scores.instance_hours);
        assert!(other.scores.slo_violation_seconds <= first.scores.slo_violation_seconds);
    }

    #[test]
    fn calibration_recovers_the_mock_model() {
        // CPU = 2 + 100 × rps / 100, saturated points left out.
        let mut pairs: Vec<(f64, f64)> = (1..40)
            .map(|r| (f64::from(r), 2.0 + f64::from(r)))
            .collect();
        pairs.push((300.0, 100.0));
        let (capacity, idle) = calibrate(&pairs, 5.0).unwrap();
        assert!((capacity - 100.0).abs() < 1e-6, "{capacity}");
        assert!((idle - 2.0).abs() < 1e-9);
        // One load only: through its mean with the idle CPU given.
        assert_eq!(calibrate(&[(20.0, 22.0); 4], 2.0), Some((100.0, 2.0)));
        assert_eq!(calibrate(&pairs[..2], 2.0), None, "too few");
        assert_eq!(calibrate(&[(1.0, 1.0); 20], 2.0), None, "below idle");
        let falling: Vec<(f64, f64)> = (1..20)
            .map(|r| (f64::from(r), 60.0 - f64::from(r)))
            .collect();
        assert_eq!(calibrate(&falling, 2.0), None, "no positive slope");
    }

    #[test]
    fn bad_requests_are_refused_by_field() {
        let now = at(0);
        let fields = |json: serde_json::Value| -> Vec<String> {
            let r: Request = serde_json::from_value(json).unwrap();
            r.validate(now).0.into_iter().map(|e| e.field).collect()
        };
        assert_eq!(fields(serde_json::json!({})), ["demand"]);
        assert_eq!(
            fields(serde_json::json!({"demand": {"pattern": "constant", "rps": 5}})),
            ["duration_seconds"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"demand": {"pattern": "csv", "csv": "5,1"}, "duration_seconds": 600})
            ),
            ["demand.csv"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"history": {"from": at(10), "to": at(5)}, "duration_seconds": 60})
            ),
            ["duration_seconds", "history.to", "history.from"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"demand": {"pattern": "constant", "rps": 5}, "duration_seconds": 600,
                "slo": {"metric": "latency_p95_ms", "limit": 200}, "instance_capacity_rps": 0,
                "boot_seconds": [5, -1], "settings": []})
            ),
            [
                "settings",
                "slo.metric",
                "slo.limit",
                "instance_capacity_rps",
                "boot_seconds"
            ]
        );
        let mut bad = setting(RULES);
        bad.profiles[0].rules[0].metric = "cpu".into();
        let r = Request {
            settings: Some(vec![setting(RULES), bad]),
            ..serde_json::from_value(serde_json::json!({"demand": {"pattern": "constant", "rps": 5}, "duration_seconds": 600})).unwrap()
        };
        let f: Vec<String> = r.validate(now).0.into_iter().map(|e| e.field).collect();
        assert_eq!(f, ["settings[1].profiles[0].rules[0].metric"]);
        let one: Request = serde_json::from_value(
            serde_json::json!({"history": {"from": at(-600), "to": at(0)}, "boot_seconds": 42}),
        )
        .unwrap();
        assert!(one.validate(now).is_empty());
        assert_eq!(one.boot_seconds.unwrap().sorted(), [42.0]);
    }

    /// The CPU points a demand-mode run makes (what a live collector would have stored).
    fn record_of(replay: &Replay<'_>, s: &AutoscaleSetting) -> Vec<Point> {
        let mut points = Vec::new();
        let out = run(replay, s);
        let mut fleet = Fleet::steady(replay.capacity);
        let mut actions = out
            .decisions
            .iter()
            .filter(|d| d.operation != Operation::None)
            .peekable();
        for (&now, &load) in replay.times.iter().zip(replay.load) {
            let t = seconds(replay.times[0], now);
            while let Some(d) = actions.next_if(|d| d.at <= now) {
                fleet.resize(d.new_capacity, seconds(replay.times[0], d.at), replay.fleet);
            }
            fleet.advance(t);
            let st = state(&fleet, t, f64::from(s.initialization_seconds));
            points.extend(synthesized(
                Metric::CpuPercent,
                load,
                &st,
                replay.fleet,
                now,
            ));
        }
        points
    }
}
