//! Backtests (`POST /scale-sets/{name}/autoscale/backtest`): the request checked, the load
//! and the simulated fleet assembled from the set's own records, the settings run by the
//! pure engine ([`flotilla_domain::autoscale::backtest`]) on blocking threads, one at a
//! time per core.
//!
//! - A demand is sampled from now at the collector's interval (coarser for long runs: at
//!   most a year of minutes), evaluated at the autoscale interval.
//! - A history is read as the autoscaler reads it: each minute's ticks where the store kept
//!   them (a day), its roll-up where not; the live decisions of the range (and of the hour
//!   before, the first evaluations' history) rebuild the live fleet, and the evaluations run
//!   at their instants (at the autoscale interval where there were none).
//! - Calibration: the instance capacity is fitted to the set's recorded CPU against its
//!   load per healthy instance (the range, or the last day); boot times are the set's
//!   instances' creation → healthy. Either may be given instead.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use flotilla_domain::autoscale::backtest::{
    self, Answer, Calibration, FleetModel, Replay, Request, RunResult, Source,
};
use flotilla_domain::autoscale::decision::DecisionFilter;
use flotilla_domain::autoscale::{AutoscaleSetting, Decision};
use flotilla_domain::metrics::{Metric, Point};
use flotilla_domain::{ScaleSet, ValidationErrors};

use super::Fleet;
use crate::error::{Error, Result};
use crate::tasks::metrics::Ticks;

/// Boot time assumed for a set none of whose instances has booted yet.
const ASSUMED_BOOT_SECONDS: f64 = 60.0;
/// Idle CPU assumed with an assumed capacity (the mock's).
const ASSUMED_IDLE_CPU: f64 = 2.0;
/// Requests per second per vCPU assumed (the mock's).
const ASSUMED_RPS_PER_VCPU: f64 = 50.0;
/// How long after a change of capacity the set's CPU is left out of the calibration (new
/// instances warm up, burning CPU on their boot).
const SETTLED: chrono::Duration = chrono::Duration::seconds(30);
/// The most load instants a run replays (a year of minutes).
const MAX_INSTANTS: u32 = 527_040;

/// What a run reads, besides the settings.
struct Prepared {
    start: DateTime<Utc>,
    times: Vec<DateTime<Utc>>,
    load: Vec<f64>,
    end: DateTime<Utc>,
    recorded: Option<BTreeMap<Metric, Vec<Point>>>,
    live: Vec<Decision>,
    evaluations: Vec<DateTime<Utc>>,
    /// How often the load was sampled.
    sample_seconds: u32,
    capacity: u32,
}

impl Fleet {
    /// Replays a load through autoscale settings (see the module's note).
    pub async fn backtest(&self, name: &str, request: Request) -> Result<Answer> {
        let now = self.now();
        request
            .validate(now)
            .into_result()
            .map_err(Error::Invalid)?;
        let set = self.ctx.read_set(name).await?;
        let settings: Vec<AutoscaleSetting> = match &request.settings {
            Some(s) => s.clone(),
            None => vec![set.spec.autoscale.clone().ok_or_else(|| {
                Error::Invalid(ValidationErrors::single(
                    "settings",
                    "the scale set has no saved autoscale setting: give one or more settings",
                ))
            })?],
        };
        let interval = match request.interval_seconds {
            Some(i) => i64::from(i),
            None => self.ctx.config.autoscale_interval.as_secs().max(1) as i64,
        };
        let prepared = match (&request.demand, request.history) {
            (Some(demand), _) => {
                let duration = request.duration_seconds.unwrap_or(3600);
                self.demand_run(&set, demand, duration, interval, request.capacity, now)
            }
            (None, Some(range)) => {
                // What has not happened yet holds no history.
                let range = backtest::Range {
                    to: range.to.min(now),
                    ..range
                };
                self.history_run(&set, &settings, range, interval).await?
            }
            (None, None) => unreachable!("validated: a demand or a history"),
        };
        let calibration = self.calibrate(&set, &request, &prepared).await?;
        let fleet = FleetModel {
            instance_capacity_rps: calibration.instance_capacity_rps,
            idle_cpu_percent: calibration.idle_cpu_percent,
            boot_seconds: calibration.boot_seconds.clone(),
        };
        let slo = request.slo.clone().unwrap_or_default();
        let keep = request.decisions;
        let scale_set = name.to_string();
        let _running = self
            .backtests
            .acquire()
            .await
            .map_err(|_| Error::Conflict {
                message: "the server is stopping".into(),
            })?;
        let results = tokio::task::spawn_blocking(move || {
            let replay = Replay {
                scale_set: &scale_set,
                start: prepared.start,
                times: &prepared.times,
                load: &prepared.load,
                end: prepared.end,
                recorded: prepared.recorded.as_ref(),
                live: &prepared.live,
                evaluations: &prepared.evaluations,
                metrics_interval_seconds: prepared.sample_seconds,
                capacity: prepared.capacity,
                fleet: &fleet,
                slo: &slo,
                keep,
            };
            let results: Vec<RunResult> = std::thread::scope(|scope| {
                let runs: Vec<_> = settings
                    .iter()
                    .map(|s| scope.spawn(|| backtest::run(&replay, s)))
                    .collect();
                runs.into_iter()
                    .map(|r| r.join().expect("a backtest run panicked"))
                    .map(|o| RunResult {
                        scores: o.scores,
                        series: o.series,
                        decisions: o.decisions,
                        decisions_truncated: o.decisions_truncated,
                    })
                    .collect()
            });
            let evaluations = prepared
                .evaluations
                .iter()
                .filter(|e| **e >= prepared.start && **e < prepared.end)
                .count() as u32;
            (results, prepared.start, prepared.end, evaluations)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let (results, from, to, evaluations) = results;
        Ok(Answer {
            results,
            from,
            to,
            evaluations,
            calibration,
        })
    }

    /// A demand sampled from now.
    fn demand_run(
        &self,
        set: &ScaleSet,
        demand: &flotilla_domain::demand::Demand,
        duration: u32,
        interval: i64,
        capacity: Option<u32>,
        now: DateTime<Utc>,
    ) -> Prepared {
        let collect = self.ctx.config.metrics.interval.as_secs().max(1) as u32;
        let step = collect.max(duration.div_ceil(MAX_INSTANTS));
        let start = now;
        let end = start + chrono::Duration::seconds(i64::from(duration));
        let times: Vec<DateTime<Utc>> = (0..duration.div_ceil(step))
            .map(|i| start + chrono::Duration::seconds(i64::from(i * step)))
            .collect();
        let mut demand = demand.clone();
        demand.started_at = Some(start);
        let load = demand.rps_series(&times);
        let interval = interval.max(i64::from(step));
        let evaluations = (1..)
            .map(|k| start + chrono::Duration::seconds(k * interval))
            .take_while(|t| *t < end)
            .collect();
        Prepared {
            start,
            times,
            load,
            end,
            recorded: None,
            live: vec![],
            evaluations,
            sample_seconds: step,
            capacity: capacity.unwrap_or(set.spec.capacity),
        }
    }

    /// The set's records over `range`.
    async fn history_run(
        &self,
        set: &ScaleSet,
        settings: &[AutoscaleSetting],
        range: backtest::Range,
        interval: i64,
    ) -> Result<Prepared> {
        let name = set.name();
        let mut metrics: BTreeSet<Metric> = settings
            .iter()
            .flat_map(|s| s.metric_windows().into_keys())
            .collect();
        metrics.extend([
            Metric::CpuPercent,
            Metric::InstancesRunning,
            Metric::InstancesHealthy,
            Metric::Capacity,
            Metric::RequestsPerSecond,
            Metric::DemandRequestsPerSecond,
        ]);
        let metrics: Vec<Metric> = metrics.into_iter().collect();
        // From the longest window before the start: the first evaluations read it too.
        let longest = settings
            .iter()
            .flat_map(|s| s.metric_windows().into_values())
            .max()
            .unwrap_or(0);
        let read_from = range.from - chrono::Duration::seconds(i64::from(longest));
        let recorded = self
            .metrics
            .raw_series(
                self.ctx.store.as_ref(),
                name,
                &metrics,
                (read_from, range.to),
                Ticks::Stored {
                    horizon: range.to - read_from + chrono::Duration::minutes(1),
                },
            )
            .await?;
        let times: Vec<DateTime<Utc>> = recorded
            .values()
            .flatten()
            .map(|p| p.at)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !times.iter().any(|t| *t >= range.from) {
            return Err(Error::Invalid(ValidationErrors::single(
                "history.from",
                format!(
                    "no metrics were recorded for scale set {name:?} between {} and {}",
                    range.from.to_rfc3339(),
                    range.to.to_rfc3339()
                ),
            )));
        }
        // The load: the demand where the set has one (the mock's, unaffected by capacity),
        // else what its load balancer served; the last value holds between points.
        let source = [Metric::DemandRequestsPerSecond, Metric::RequestsPerSecond]
            .into_iter()
            .find(|m| recorded.get(m).is_some_and(|p| !p.is_empty()))
            .unwrap_or(Metric::RequestsPerSecond);
        let load = forward_filled(&times, recorded.get(&source).map_or(&[], Vec::as_slice));
        let live = self
            .decisions_between(name, range.from - chrono::Duration::hours(1), range.to)
            .await?;
        let in_range: Vec<DateTime<Utc>> = live
            .iter()
            .map(|d| d.at)
            .filter(|at| *at >= range.from && *at < range.to)
            .collect();
        let evaluations = with_filler(&in_range, range.from, range.to, interval);
        let capacity = live
            .iter()
            .find(|d| d.at >= range.from)
            .map(|d| d.current)
            .or_else(|| {
                recorded
                    .get(&Metric::Capacity)
                    .and_then(|p| p.first())
                    .map(|p| p.average.round() as u32)
            })
            .unwrap_or(set.spec.capacity);
        Ok(Prepared {
            start: range.from,
            times,
            load,
            end: range.to,
            recorded: Some(recorded),
            live,
            evaluations,
            sample_seconds: self.ctx.config.metrics.interval.as_secs().max(1) as u32,
            capacity,
        })
    }

    /// Every decision of the set in [since, until), oldest first.
    async fn decisions_between(
        &self,
        name: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Decision>> {
        let mut all = Vec::new();
        let mut before_id = None;
        loop {
            let page = self
                .ctx
                .store
                .list_decisions(&DecisionFilter {
                    scale_set: name.into(),
                    operation: None,
                    since: Some(since),
                    until: Some(until),
                    before_id,
                    limit: 1000,
                    shadow: false,
                })
                .await
                .map_err(Error::store("list decisions"))?;
            let done = page.len() < 1000;
            before_id = page.last().map(|d| d.id);
            all.extend(page);
            if done {
                break;
            }
        }
        all.reverse();
        Ok(all)
    }

    /// The simulated fleet: given, measured on the set, or the mock's model.
    async fn calibrate(
        &self,
        set: &ScaleSet,
        request: &Request,
        prepared: &Prepared,
    ) -> Result<Calibration> {
        let (boot_seconds, boot_source) = match &request.boot_seconds {
            Some(b) => (b.sorted(), Source::Given),
            None => {
                let instances = self.ctx.read_instances(set.name()).await?;
                let times = flotilla_domain::instance::boot_times(&instances);
                if times.is_empty() {
                    (vec![ASSUMED_BOOT_SECONDS], Source::Assumed)
                } else {
                    (times.into_iter().map(f64::from).collect(), Source::Measured)
                }
            }
        };
        let measured = match request.instance_capacity_rps {
            Some(_) => None,
            None => self.measured_capacity(set, prepared).await?,
        };
        let (instance_capacity_rps, idle_cpu_percent, capacity_source) =
            match (request.instance_capacity_rps, measured) {
                (Some(c), _) => (c, ASSUMED_IDLE_CPU, Source::Given),
                (None, Some((c, idle))) => (c, idle, Source::Measured),
                (None, None) => (
                    f64::from(set.spec.model.vcpus.max(1)) * ASSUMED_RPS_PER_VCPU,
                    ASSUMED_IDLE_CPU,
                    Source::Assumed,
                ),
            };
        Ok(Calibration {
            instance_capacity_rps,
            idle_cpu_percent,
            capacity_source,
            boot_seconds,
            boot_source,
        })
    }

    /// The capacity fitted to the set's CPU against its load per instance, over the history
    /// replayed (else the last day's roll-ups), at the instants the set was steady: its
    /// capacity unchanged for [`SETTLED`], every instance of it healthy and counted.
    async fn measured_capacity(
        &self,
        set: &ScaleSet,
        prepared: &Prepared,
    ) -> Result<Option<(f64, f64)>> {
        let metrics = [
            Metric::CpuPercent,
            Metric::InstancesHealthy,
            Metric::Capacity,
            Metric::DemandRequestsPerSecond,
            Metric::RequestsPerSecond,
        ];
        let series = match &prepared.recorded {
            Some(r) if metrics.iter().all(|m| r.contains_key(m)) => r.clone(),
            _ => {
                let to = self.now();
                self.metrics
                    .raw_series(
                        self.ctx.store.as_ref(),
                        set.name(),
                        &metrics,
                        (to - chrono::Duration::days(1), to),
                        Ticks::Memory,
                    )
                    .await?
            }
        };
        let at = |m: Metric| -> BTreeMap<DateTime<Utc>, Point> {
            series
                .get(&m)
                .into_iter()
                .flatten()
                .map(|p| (p.at, *p))
                .collect()
        };
        let healthy = at(Metric::InstancesHealthy);
        let capacity = at(Metric::Capacity);
        let demand = at(Metric::DemandRequestsPerSecond);
        let load = if demand.is_empty() {
            at(Metric::RequestsPerSecond)
        } else {
            demand
        };
        // When the capacity last changed, at each of its points.
        let mut changed = BTreeMap::new();
        let mut last: Option<(f64, DateTime<Utc>)> = None;
        for (t, c) in &capacity {
            let since = match last {
                Some((value, since)) if value == c.average => since,
                _ => *t,
            };
            last = Some((c.average, since));
            changed.insert(*t, since);
        }
        let pairs: Vec<(f64, f64)> = at(Metric::CpuPercent)
            .into_iter()
            .filter_map(|(t, cpu)| {
                let (h, c, l) = (healthy.get(&t)?, capacity.get(&t)?, load.get(&t)?);
                // A point spans `c.count` ticks: the instances counted per tick.
                let counted = f64::from(cpu.count) / f64::from(c.count.max(1));
                let settled = changed.get(&t).is_some_and(|since| t - *since >= SETTLED);
                let steady = settled
                    && (counted - c.average).abs() < 0.01
                    && (h.average - c.average).abs() < 0.01
                    && counted >= 1.0;
                steady.then(|| (l.average / counted, cpu.average))
            })
            .collect();
        Ok(backtest::calibrate(&pairs, ASSUMED_IDLE_CPU))
    }
}

/// The value of `points` at or before each of `times` (0 before the first).
fn forward_filled(times: &[DateTime<Utc>], points: &[Point]) -> Vec<f64> {
    let mut next = 0;
    let mut value = 0.0;
    times
        .iter()
        .map(|t| {
            while let Some(p) = points.get(next).filter(|p| p.at <= *t) {
                value = p.average;
                next += 1;
            }
            value
        })
        .collect()
}

/// The live evaluation instants, with one every `interval` where there were none for five
/// intervals or a minute (autoscale was off, or the setting another): a live autoscaler
/// running late is not a gap.
fn with_filler(
    live: &[DateTime<Utc>],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    interval: i64,
) -> Vec<DateTime<Utc>> {
    let step = chrono::Duration::seconds(interval.max(1));
    let gap = (step * 5).max(chrono::Duration::minutes(1));
    let mut out = Vec::with_capacity(live.len());
    let mut last = from;
    for &at in live.iter().chain(std::iter::once(&to)) {
        if at - last > gap || (out.is_empty() && live.is_empty()) {
            let mut t = last + step;
            while at - t > step {
                out.push(t);
                t += step;
            }
        }
        if at < to {
            out.push(at);
        }
        last = at;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::seconds(1_800_000_000 + s)
    }

    #[test]
    fn the_live_instants_are_kept_and_gaps_filled() {
        let live = [at(30), at(60), at(300), at(350)];
        let out = with_filler(&live, at(0), at(600), 30);
        let secs: Vec<i64> = out.iter().map(|t| (*t - at(0)).num_seconds()).collect();
        // 60 → 300 is a gap (over 150 s), 300 → 350 a late evaluation; 350 → 600 a gap.
        assert_eq!(
            secs,
            [
                30, 60, 90, 120, 150, 180, 210, 240, 300, 350, 380, 410, 440, 470, 500, 530, 560
            ]
        );
        let none = with_filler(&[], at(0), at(100), 30);
        assert_eq!(none.len(), 2, "{none:?}");
    }

    #[test]
    fn the_load_holds_between_points() {
        let points = [Point::single(at(10), 5.0), Point::single(at(30), 7.0)];
        let times = [at(0), at(10), at(20), at(30), at(40)];
        assert_eq!(forward_filled(&times, &points), [0.0, 5.0, 5.0, 7.0, 7.0]);
    }
}
