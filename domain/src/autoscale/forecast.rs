//! Load forecasts for predictive autoscale: a set's load (a metric's total over the set — a
//! per-instance metric × the instances reporting it, or a set-wide total such as requests
//! per second — so the history does not depend on the capacity it ran at) cut into slots of
//! one season (at most [`MAX_SLOTS`] per season, no finer than the metrics interval), and
//! three seasonal models run side by side over it:
//! - **seasonal naive**: a slot's load one season earlier;
//! - **seasonal median**: the median of the same slot over the last [`SEASONS`] seasons
//!   (robust to one odd day);
//! - **Holt-Winters** (additive: level, trend and one offset per slot, smoothed with α 0.2,
//!   β 0.01, γ 0.3, started from the first season).
//!
//! Each model's forecast for the slot `lead` ahead is recorded as each slot ends and scored
//! against what happened when that slot ends: the mean absolute percentage error (MAPE)
//! over the last season. `auto` takes the model with the lowest — the choice is a backtest
//! of the models on the set's own history, made again at every slot. A forecaster forecasts
//! nothing until it has a whole season of history.
//!
//! Everything is incremental: a slot's end costs O(models × seasons), a forecast
//! O(slots ahead × seasons), so a year replayed in a backtest stays cheap.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::setting::{AutoscaleSetting, Predictive};
use crate::metrics::{Metric, Point};

/// The most slots a season is cut into (a day: five-minute slots).
pub const MAX_SLOTS: u32 = 288;
/// The seasons a seasonal median reads (and a forecaster keeps, with one more).
pub const SEASONS: usize = 4;
/// The lead when none is given and no boot time was measured (seconds).
pub const DEFAULT_LEAD_SECONDS: u32 = 60;
/// The share of boot times the lead covers: new instances serve by the forecast instant
/// nine times in ten.
pub const LEAD_QUANTILE: f64 = 0.9;

const ALPHA: f64 = 0.2;
const BETA: f64 = 0.01;
const GAMMA: f64 = 0.3;
/// Loads below this are not scored (a percentage error of nothing is undefined).
const SCORED_ABOVE: f64 = 1e-6;

/// A forecasting model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Model {
    SeasonalNaive,
    SeasonalMedian,
    HoltWinters,
}

impl Model {
    pub const ALL: [Model; 3] = [
        Model::SeasonalNaive,
        Model::SeasonalMedian,
        Model::HoltWinters,
    ];

    fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Model::SeasonalNaive => "seasonal_naive",
            Model::SeasonalMedian => "seasonal_median",
            Model::HoltWinters => "holt_winters",
        }
    }
}

/// Which model a predictive setting uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ModelChoice {
    /// The model with the lowest MAPE over the last season (seasonal naive until one is
    /// scored).
    #[default]
    Auto,
    SeasonalNaive,
    SeasonalMedian,
    HoltWinters,
}

/// What one forecaster forecasts: the load of `metric`, in seasons of `season_seconds`,
/// judged `lead_seconds` ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub metric: Metric,
    pub season_seconds: u32,
    pub lead_seconds: u32,
    pub lead_source: LeadSource,
}

/// Where a lead time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LeadSource {
    /// The setting's `lead_seconds`.
    Given,
    /// The 90th percentile of the set's boot times (creation → healthy).
    Measured,
    /// No boot time measured yet: [`DEFAULT_LEAD_SECONDS`].
    Assumed,
}

/// The lead: `given`, else the [`LEAD_QUANTILE`] of the boot times (seconds, sorted), else
/// [`DEFAULT_LEAD_SECONDS`].
pub fn lead(given: Option<u32>, boot_seconds: &[f64]) -> (u32, LeadSource) {
    if let Some(l) = given {
        return (l, LeadSource::Given);
    }
    if boot_seconds.is_empty() {
        return (DEFAULT_LEAD_SECONDS, LeadSource::Assumed);
    }
    let i = ((boot_seconds.len() as f64 * LEAD_QUANTILE).ceil() as usize)
        .clamp(1, boot_seconds.len())
        - 1;
    (
        boot_seconds[i].ceil().clamp(0.0, f64::from(u32::MAX)) as u32,
        LeadSource::Measured,
    )
}

/// The forecasters the predictive profiles of `setting` need, the boot times (seconds,
/// sorted) giving their leads; each once.
pub fn keys(setting: &AutoscaleSetting, boot_seconds: &[f64]) -> Vec<Key> {
    let mut keys: Vec<Key> = setting
        .profiles
        .iter()
        .filter_map(|p| p.predictive.as_ref())
        .filter_map(|p| {
            let (lead_seconds, lead_source) = lead(p.lead_seconds, boot_seconds);
            p.load_metric().map(|metric| Key {
                metric,
                season_seconds: p.season_seconds,
                lead_seconds,
                lead_source,
            })
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The forecaster of `forecasts` that `p` reads: its metric and season, and its lead when
/// `p` gives one.
pub fn find<'a>(p: &Predictive, forecasts: &'a [Forecaster]) -> Option<&'a Forecaster> {
    let metric = p.load_metric();
    forecasts.iter().find(|f| {
        let key = f.key();
        Some(key.metric) == metric
            && key.season_seconds == p.season_seconds
            && p.lead_seconds.is_none_or(|l| l == key.lead_seconds)
    })
}

/// The load a point of the forecast metric holds per collection tick: its total over the
/// ticks it spans (a roll-up merges a minute's ticks), counted by the set's
/// `instances_running` point at the same instant (`running`, ascending: one value per
/// tick); a point without one is a single tick.
pub fn load_of(point: &Point, running: &[Point]) -> f64 {
    let i = running.partition_point(|r| r.at < point.at);
    let ticks = running
        .get(i)
        .filter(|r| r.at == point.at)
        .map_or(1, |r| r.count.max(1));
    point.total / f64::from(ticks)
}

/// Holt-Winters' state after the last completed slot.
#[derive(Debug, Clone)]
struct HoltWinters {
    level: f64,
    trend: f64,
    /// One offset per slot of the season, by the slot's phase.
    season: Vec<f64>,
}

/// The last season's scored predictions of one model.
#[derive(Debug, Clone, Default)]
struct Errors {
    ape: VecDeque<f64>,
    sum: f64,
}

impl Errors {
    fn push(&mut self, ape: f64, keep: usize) {
        self.ape.push_back(ape);
        self.sum += ape;
        while self.ape.len() > keep {
            self.sum -= self.ape.pop_front().unwrap_or(0.0);
        }
    }

    fn mape(&self) -> Option<f64> {
        (!self.ape.is_empty()).then(|| 100.0 * self.sum.max(0.0) / self.ape.len() as f64)
    }
}

/// One slot of the last season as it happened, with what was forecast for it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Checked {
    slot: i64,
    load: f64,
    forecast: Option<f64>,
}

/// A load forecaster fed with observations in time order (see the module's note).
#[derive(Debug, Clone)]
pub struct Forecaster {
    key: Key,
    /// Slots per season.
    slots: i64,
    step_ms: i64,
    /// Slots the lead spans (at least one).
    horizon: i64,
    /// The loads of completed slots, the oldest being slot `base`.
    values: VecDeque<f64>,
    base: i64,
    /// The first slot ever observed.
    first: i64,
    /// The slot being filled: its index, the sum and count of its observations.
    open: Option<(i64, f64, u32)>,
    last_at: Option<DateTime<Utc>>,
    hw: Option<HoltWinters>,
    /// Each model's forecast of a slot to come, made `horizon` slots before it.
    pending: VecDeque<(i64, [Option<f64>; 3])>,
    errors: [Errors; 3],
    checked: VecDeque<Checked>,
}

/// A forecast of the peak load over a span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peak {
    pub load: f64,
    /// The start of the slot it is forecast in.
    pub at: DateTime<Utc>,
    pub model: Model,
}

impl Forecaster {
    /// A forecaster for `key`, its slots no finer than `interval_seconds` (the metrics
    /// collection interval).
    pub fn new(key: Key, interval_seconds: u32) -> Self {
        let season_ms = i64::from(key.season_seconds.max(1)) * 1000;
        let mut slots =
            i64::from((key.season_seconds / interval_seconds.max(1)).clamp(1, MAX_SLOTS));
        while season_ms % slots != 0 {
            slots -= 1;
        }
        let step_ms = season_ms / slots;
        let mut f = Forecaster {
            key,
            slots,
            step_ms,
            horizon: 1,
            values: VecDeque::new(),
            base: 0,
            first: 0,
            open: None,
            last_at: None,
            hw: None,
            pending: VecDeque::new(),
            errors: Default::default(),
            checked: VecDeque::new(),
        };
        f.relead(key);
        f
    }

    pub fn key(&self) -> Key {
        self.key
    }

    /// The same history judged at another lead (`key` differing only in its lead): a
    /// measured boot time that moves does not cost the history.
    pub fn relead(&mut self, key: Key) {
        self.key = key;
        self.horizon =
            ((i64::from(key.lead_seconds) * 1000 + self.step_ms - 1) / self.step_ms).max(1);
    }

    /// The length of a slot, in seconds.
    pub fn slot_seconds(&self) -> f64 {
        self.step_ms as f64 / 1000.0
    }

    fn slot_of(&self, at: DateTime<Utc>) -> i64 {
        at.timestamp_millis().div_euclid(self.step_ms)
    }

    fn start_of(&self, slot: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(slot * self.step_ms).unwrap_or_default()
    }

    /// The instant of the last observation.
    pub fn last_observed(&self) -> Option<DateTime<Utc>> {
        self.last_at
    }

    /// Takes the load observed at `at`; observations at or before the last one are ignored.
    pub fn observe(&mut self, at: DateTime<Utc>, load: f64) {
        if self.last_at.is_some_and(|l| at <= l) || !load.is_finite() {
            return;
        }
        self.last_at = Some(at);
        let slot = self.slot_of(at);
        match &mut self.open {
            Some((open, sum, n)) if *open == slot => {
                *sum += load;
                *n += 1;
            }
            open => {
                if let Some((s, sum, n)) = open.replace((slot, load, 1)) {
                    self.close(s, sum / f64::from(n));
                }
            }
        }
    }

    /// The last completed slot.
    fn last(&self) -> Option<i64> {
        (!self.values.is_empty()).then(|| self.base + self.values.len() as i64 - 1)
    }

    fn keep(&self) -> usize {
        (SEASONS + 1) * self.slots as usize
    }

    fn close(&mut self, slot: i64, load: f64) {
        match self.last() {
            None => {
                self.base = slot;
                self.first = slot;
            }
            // A gap longer than what is kept: start over.
            Some(last) if slot - last > self.keep() as i64 => {
                self.values.clear();
                self.hw = None;
                self.pending.clear();
                self.errors = Default::default();
                self.checked.clear();
                self.base = slot;
                self.first = slot;
            }
            // Slots without observations hold the last load.
            Some(last) => {
                let held = self.values.back().copied().unwrap_or(load);
                for _ in last + 1..slot {
                    self.complete(held);
                }
            }
        }
        self.complete(load);
    }

    /// Ends the next slot with `load`.
    fn complete(&mut self, load: f64) {
        let slot = self.last().map_or(self.base, |l| l + 1);
        let chosen = self.chosen(ModelChoice::Auto);
        while self.pending.front().is_some_and(|(s, _)| *s < slot) {
            self.pending.pop_front();
        }
        let mut forecast = None;
        if self.pending.front().is_some_and(|(s, _)| *s == slot) {
            let (_, predictions) = self.pending.pop_front().unwrap_or_default();
            forecast = predictions[chosen.index()];
            if load > SCORED_ABOVE {
                let keep = self.slots as usize;
                for (errors, p) in self.errors.iter_mut().zip(predictions) {
                    if let Some(p) = p {
                        errors.push((load - p).abs() / load, keep);
                    }
                }
            }
        }
        self.checked.push_back(Checked {
            slot,
            load,
            forecast,
        });
        while self.checked.len() > self.slots as usize {
            self.checked.pop_front();
        }
        self.values.push_back(load);
        self.learn(slot, load);
        while self.values.len() > self.keep() {
            self.values.pop_front();
            self.base += 1;
        }
        if self.ready() {
            let ahead = slot + self.horizon;
            let predictions = Model::ALL.map(|m| self.predict(m, ahead));
            self.pending.push_back((ahead, predictions));
        }
    }

    fn phase(&self, slot: i64) -> usize {
        slot.rem_euclid(self.slots) as usize
    }

    /// Holt-Winters' update with the slot just completed (started once a season is in).
    fn learn(&mut self, slot: i64, load: f64) {
        let phase = self.phase(slot);
        match &mut self.hw {
            Some(hw) => {
                let level = hw.level;
                hw.level = ALPHA * (load - hw.season[phase]) + (1.0 - ALPHA) * (level + hw.trend);
                hw.trend = BETA * (hw.level - level) + (1.0 - BETA) * hw.trend;
                hw.season[phase] = GAMMA * (load - hw.level) + (1.0 - GAMMA) * hw.season[phase];
            }
            None if self.values.len() as i64 >= self.slots => {
                let n = self.slots as usize;
                let first: Vec<f64> = self.values.iter().rev().take(n).rev().copied().collect();
                let level = first.iter().sum::<f64>() / n as f64;
                let mut season = vec![0.0; n];
                for (i, v) in first.iter().enumerate() {
                    season[self.phase(slot - (n - 1 - i) as i64)] = v - level;
                }
                self.hw = Some(HoltWinters {
                    level,
                    trend: 0.0,
                    season,
                });
            }
            None => {}
        }
    }

    /// A whole season of history is in: forecasts can be made.
    pub fn ready(&self) -> bool {
        self.values.len() as i64 >= self.slots
    }

    /// The history observed, in seconds.
    pub fn history_seconds(&self) -> f64 {
        self.last()
            .map_or(0.0, |l| (l - self.first + 1) as f64 * self.slot_seconds())
    }

    /// `model`'s forecast of slot `slot` (after the last completed one).
    fn predict(&self, model: Model, slot: i64) -> Option<f64> {
        let last = self.last()?;
        if slot <= last || !self.ready() {
            return None;
        }
        let m = self.slots;
        let seasons_back = (slot - last + m - 1) / m;
        let value = |i: i64| {
            (i >= self.base)
                .then(|| self.values.get((i - self.base) as usize).copied())
                .flatten()
        };
        let forecast = match model {
            Model::SeasonalNaive => value(slot - seasons_back * m)?,
            Model::SeasonalMedian => {
                let mut same: Vec<f64> = (0..SEASONS as i64)
                    .map_while(|k| value(slot - (seasons_back + k) * m))
                    .collect();
                same.sort_by(f64::total_cmp);
                let n = same.len();
                match n {
                    0 => return None,
                    _ if n % 2 == 1 => same[n / 2],
                    _ => (same[n / 2 - 1] + same[n / 2]) / 2.0,
                }
            }
            Model::HoltWinters => {
                let hw = self.hw.as_ref()?;
                hw.level + (slot - last) as f64 * hw.trend + hw.season[self.phase(slot)]
            }
        };
        Some(forecast.max(0.0))
    }

    /// `model`'s MAPE over the last season, in percent (`None`: not scored yet).
    pub fn mape(&self, model: Model) -> Option<f64> {
        self.errors[model.index()].mape()
    }

    /// The model `choice` means now.
    pub fn chosen(&self, choice: ModelChoice) -> Model {
        match choice {
            ModelChoice::SeasonalNaive => Model::SeasonalNaive,
            ModelChoice::SeasonalMedian => Model::SeasonalMedian,
            ModelChoice::HoltWinters => Model::HoltWinters,
            ModelChoice::Auto => {
                let enough = (self.slots as usize / 2).max(1);
                Model::ALL
                    .into_iter()
                    .filter(|m| self.errors[m.index()].ape.len() >= enough)
                    .filter_map(|m| self.mape(m).map(|e| (m, e)))
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .map_or(Model::SeasonalNaive, |(m, _)| m)
            }
        }
    }

    /// The highest load `choice` forecasts for the slots from `from` to `to` (those not
    /// completed yet); `None` before a season of history.
    pub fn peak(
        &self,
        choice: ModelChoice,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Option<Peak> {
        let model = self.chosen(choice);
        let last = self.last()?;
        let (a, b) = (
            self.slot_of(from).max(last + 1),
            self.slot_of(to).max(last + 1),
        );
        (a..=b)
            .filter_map(|s| self.predict(model, s).map(|l| (s, l)))
            // The first slot of the highest load.
            .reduce(|a, b| if b.1 > a.1 { b } else { a })
            .map(|(s, load)| Peak {
                load,
                at: self.start_of(s),
                model,
            })
    }

    /// What the Monitoring and Scaling tabs chart: the last season as it happened with what
    /// was forecast for each slot, then the next season as forecast.
    pub fn view(&self, choice: ModelChoice) -> View {
        let model = self.chosen(choice);
        let mut points: Vec<ViewPoint> = self
            .checked
            .iter()
            .map(|c| ViewPoint {
                at: self.start_of(c.slot),
                load: Some(c.load),
                forecast: c.forecast,
            })
            .collect();
        if let Some(last) = self.last() {
            points.extend((last + 1..=last + self.slots).filter_map(|s| {
                self.predict(model, s).map(|f| ViewPoint {
                    at: self.start_of(s),
                    load: None,
                    forecast: Some(f),
                })
            }));
        }
        View {
            metric: self.key.metric.as_str().into(),
            season_seconds: self.key.season_seconds,
            slot_seconds: self.slot_seconds(),
            lead_seconds: self.key.lead_seconds,
            model,
            mape: Model::ALL
                .into_iter()
                .filter_map(|m| self.mape(m).map(|e| ModelError { model: m, mape: e }))
                .collect(),
            history_seconds: self.history_seconds(),
            ready: self.ready(),
            points,
        }
    }
}

/// A forecast as charted (`GET /scale-sets/{name}/autoscale/forecast`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct View {
    /// The metric whose total over the set is the load.
    pub metric: String,
    pub season_seconds: u32,
    pub slot_seconds: f64,
    /// How far ahead the forecast is judged (and capacity raised).
    pub lead_seconds: u32,
    /// The model forecasting now.
    pub model: Model,
    /// Each scored model's MAPE over the last season, in percent.
    pub mape: Vec<ModelError>,
    /// The history the forecast stands on, in seconds (a season at least is needed).
    pub history_seconds: f64,
    /// A season of history is in.
    pub ready: bool,
    /// The last season (load and what was forecast for it `lead` ahead), then the next
    /// season forecast (no load), one point per slot, oldest first.
    pub points: Vec<ViewPoint>,
}

impl View {
    /// The highest load forecast for the season ahead, and the start of its slot (the
    /// first, when several are as high).
    pub fn next_peak(&self) -> Option<(DateTime<Utc>, f64)> {
        self.points
            .iter()
            .filter(|p| p.load.is_none())
            .filter_map(|p| p.forecast.map(|v| (p.at, v)))
            .reduce(|a, b| if b.1 > a.1 { b } else { a })
    }
}

/// One predictive profile's forecast (`GET /scale-sets/{name}/autoscale/forecast` →
/// `{"items": [...]}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Item {
    pub profile: String,
    /// The shadow setting's profile.
    pub shadow: bool,
    pub mode: super::setting::PredictiveMode,
    /// The per-instance target the forecast capacity is planned at.
    pub target: f64,
    pub forecast: View,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelError {
    pub model: Model,
    pub mape: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ViewPoint {
    pub at: DateTime<Utc>,
    pub load: Option<f64>,
    pub forecast: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn key(season: u32, lead: u32) -> Key {
        Key {
            metric: Metric::RequestsPerSecond,
            season_seconds: season,
            lead_seconds: lead,
            lead_source: LeadSource::Given,
        }
    }

    /// A day of five-minute slots: a peak of 100 from 12:00 to 14:00, 10 otherwise.
    fn daily(t: i64) -> f64 {
        if (43_200..50_400).contains(&t.rem_euclid(86_400)) {
            100.0
        } else {
            10.0
        }
    }

    #[test]
    fn nothing_is_forecast_before_a_season() {
        let mut f = Forecaster::new(key(86_400, 300), 60);
        assert_eq!(f.slot_seconds(), 300.0);
        for t in (0..86_000).step_by(60) {
            f.observe(at(t), daily(t));
        }
        assert!(!f.ready());
        assert!(f.peak(ModelChoice::Auto, at(86_000), at(87_000)).is_none());
        assert!(f.history_seconds() < 86_400.0);
        for t in (86_000..87_000).step_by(60) {
            f.observe(at(t), daily(t));
        }
        assert!(f.ready());
    }

    #[test]
    fn a_daily_peak_is_forecast_from_the_day_before() {
        let mut f = Forecaster::new(key(86_400, 600), 10);
        for t in (0..3 * 86_400 + 43_000).step_by(10) {
            f.observe(at(t), daily(t));
        }
        // Just before the peak: the next ten minutes hold its start.
        let now = at(3 * 86_400 + 43_000);
        let peak = f
            .peak(ModelChoice::Auto, now, now + chrono::Duration::seconds(600))
            .expect("three days in");
        assert_eq!(peak.load, 100.0);
        assert_eq!(peak.at, at(3 * 86_400 + 43_200));
        // A steady pattern: every model forecast it exactly for the last season.
        for m in Model::ALL {
            let mape = f.mape(m).expect("scored");
            assert!(mape < 1.0, "{m:?} {mape}");
        }
        let quiet = f
            .peak(
                ModelChoice::SeasonalNaive,
                at(3 * 86_400 + 60_000),
                at(3 * 86_400 + 61_000),
            )
            .unwrap();
        assert_eq!(quiet.load, 10.0);
    }

    #[test]
    fn the_median_ignores_one_odd_day_and_auto_picks_the_best() {
        let mut f = Forecaster::new(key(3_600, 60), 60);
        // Four hours of a ramp each hour; the third hour is doubled.
        let load = |t: i64| {
            let base = (t.rem_euclid(3_600) / 60) as f64;
            if (7_200..10_800).contains(&t) {
                2.0 * base
            } else {
                base
            }
        };
        for t in (0..4 * 3_600).step_by(60) {
            f.observe(at(t), load(t));
        }
        let slot = 4 * 3_600 + 1_800;
        let naive = f.predict(Model::SeasonalNaive, slot / 60).unwrap();
        let median = f.predict(Model::SeasonalMedian, slot / 60).unwrap();
        assert_eq!(naive, 30.0);
        assert_eq!(median, 30.0);
        // Four seasons back hold 30, 60, 30, and — the first season — 30.
        // The model chosen is the one scored best over the last hour (the normal one,
        // after the doubled hour): naive or median, never worse than either.
        let chosen = f.chosen(ModelChoice::Auto);
        let best = Model::ALL
            .into_iter()
            .filter_map(|m| f.mape(m))
            .fold(f64::INFINITY, f64::min);
        assert_eq!(f.mape(chosen), Some(best));
    }

    #[test]
    fn holt_winters_follows_a_trend_the_seasonal_models_lag() {
        let mut f = Forecaster::new(key(600, 60), 60);
        // A growing load with a ten-minute season.
        let load = |t: i64| 100.0 + t as f64 / 60.0 + 20.0 * ((t.rem_euclid(600) / 60) as f64);
        for t in (0..60 * 600).step_by(60) {
            f.observe(at(t), load(t));
        }
        let hw = f.mape(Model::HoltWinters).unwrap();
        let naive = f.mape(Model::SeasonalNaive).unwrap();
        assert!(hw < naive, "holt-winters {hw} vs naive {naive}");
        assert_eq!(f.chosen(ModelChoice::Auto), Model::HoltWinters);
    }

    #[test]
    fn gaps_hold_the_last_load_and_long_ones_start_over() {
        let mut f = Forecaster::new(key(600, 60), 60);
        for t in (0..1_200).step_by(60) {
            f.observe(at(t), 5.0);
        }
        assert!(f.ready());
        // Late or repeated observations are ignored.
        f.observe(at(30), 1_000.0);
        f.observe(at(1_800), 5.0);
        f.observe(at(1_860), 5.0);
        assert!(f.ready());
        assert_eq!(f.history_seconds(), 1_860.0);
        // A gap longer than five seasons: the history restarts.
        f.observe(at(10_000), 5.0);
        f.observe(at(10_060), 5.0);
        assert!(!f.ready());
        assert_eq!(f.history_seconds(), 60.0);
    }

    #[test]
    fn the_lead_is_the_ninetieth_percentile_of_boot_times() {
        let boots: Vec<f64> = (1..=10).map(|s| f64::from(s) * 10.0).collect();
        assert_eq!(lead(None, &boots), (90, LeadSource::Measured));
        assert_eq!(lead(Some(30), &boots), (30, LeadSource::Given));
        assert_eq!(lead(None, &[]), (DEFAULT_LEAD_SECONDS, LeadSource::Assumed));
        assert_eq!(lead(None, &[42.5]), (43, LeadSource::Measured));
    }

    #[test]
    fn slots_divide_the_season() {
        assert_eq!(Forecaster::new(key(86_400, 0), 10).slot_seconds(), 300.0);
        assert_eq!(Forecaster::new(key(180, 0), 2).slot_seconds(), 2.0);
        // 14 slots of 7 s do not divide 100 s into whole milliseconds: 10 slots do.
        let f = Forecaster::new(key(100, 0), 7);
        assert_eq!(100_000 % f.step_ms, 0);
        assert!(f.slot_seconds() >= 7.0);
    }
}
