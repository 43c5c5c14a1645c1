//! The metrics pipeline: the `metrics` task (the collector) that, every interval (default 10 s, down to 1 s),
//! reads each running VM's resource use from the backend, the load balancer's counters (this
//! replica's, and those the other replicas recorded with their heartbeats: a set's traffic
//! is what every replica's frontends served) and the instance records, and folds them into
//!
//! - per instance, a bounded ring of the last [`INSTANCE_SAMPLES`] samples (drill-down);
//! - per scale set, one aggregate [`Point`] per metric per tick for the last
//!   [`TICKS_KEPT_SECONDS`], at most [`TICKS_KEPT`] ticks (live charts and the autoscaler);
//! - per scale set, 1-minute roll-ups written to the store when each minute ends and kept
//!   for the configured retention (longer chart ranges and long rule windows).
//!
//! Instances running for less than their set's autoscale `initialization_seconds` are left
//! out of the set's aggregates (their own samples are kept). Everything in memory is bounded:
//! ticks by time, instance samples by count, and entries of deleted sets and instances are
//! dropped on the next tick.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use flotilla_domain::load_balancer::Histogram;
use flotilla_domain::metrics::{Metric, MinuteTicks, Point, Rollup, Series, rebucket};
use flotilla_domain::replica::FrontendCounters;
use flotilla_domain::{HealthState, Instance, PowerState, ScaleSet};
use flotilla_store::Store;
use futures::future::BoxFuture;

use crate::context::Context;
use crate::error::chain;
use crate::tasks::{Control, Task};

/// Samples kept per instance.
pub const INSTANCE_SAMPLES: usize = 120;
/// How far back each set's per-tick points go: 15 minutes, and at most 300 ticks (5 minutes
/// at a 1 s interval; older ranges come from the roll-ups).
pub const TICKS_KEPT_SECONDS: i64 = 900;
pub const TICKS_KEPT: usize = 300;
/// Old roll-ups and decisions are pruned this often.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The metrics measured on each VM, in [`InstanceSample`] order.
const VM_METRICS: &[Metric] = Metric::PER_INSTANCE;

#[derive(Debug, Clone, Copy)]
struct InstanceSample {
    at: DateTime<Utc>,
    values: [f32; 6],
}

#[derive(Debug)]
struct InstanceSeries {
    scale_set: String,
    samples: VecDeque<InstanceSample>,
}

/// One tick of a set: the metrics that had values, compactly.
#[derive(Debug, Clone)]
struct Tick {
    at: DateTime<Utc>,
    points: Box<[(Metric, CompactPoint)]>,
}

impl Tick {
    fn get(&self, metric: Metric) -> Option<Point> {
        self.points
            .iter()
            .find(|(m, _)| *m == metric)
            .map(|(_, p)| p.expand(self.at))
    }

    /// The tick as a line of text for the other replicas: `t`, the set, the time in
    /// milliseconds and each point as `metric=average,minimum,maximum,count`, tab-separated.
    fn line(&self, set: &str) -> String {
        format!("t\t{set}\t{}", self.body())
    }

    /// The tick without the set: its time in milliseconds and its points, tab-separated
    /// (how the store keeps a minute's ticks, one per line).
    fn body(&self) -> String {
        use std::fmt::Write;
        let mut line = self.at.timestamp_millis().to_string();
        for (metric, p) in &self.points {
            let _ = write!(
                line,
                "\t{}={},{},{},{}",
                metric.as_str(),
                p.average,
                p.minimum,
                p.maximum,
                p.count
            );
        }
        line
    }

    /// Reads what [`Tick::line`] wrote after the set's name; `None` when it is not that.
    fn parse<'a>(mut fields: impl Iterator<Item = &'a str>) -> Option<Self> {
        let at = DateTime::from_timestamp_millis(fields.next()?.parse().ok()?)?;
        let points = fields
            .map(|field| {
                let (metric, values) = field.split_once('=')?;
                let mut v = values.split(',');
                let point = CompactPoint {
                    average: v.next()?.parse().ok()?,
                    minimum: v.next()?.parse().ok()?,
                    maximum: v.next()?.parse().ok()?,
                    count: v.next()?.parse().ok()?,
                };
                Some((Metric::parse(metric)?, point))
            })
            .collect::<Option<Box<[_]>>>()?;
        Some(Tick { at, points })
    }
}

/// A point without its time, in single precision (the total is average × count): what
/// charts and rules need, at a third of the size. Roll-ups are merged in full precision.
#[derive(Debug, Clone, Copy)]
struct CompactPoint {
    average: f32,
    minimum: f32,
    maximum: f32,
    count: u32,
}

impl CompactPoint {
    fn of(p: &Point) -> Self {
        CompactPoint {
            average: p.average as f32,
            minimum: p.minimum as f32,
            maximum: p.maximum as f32,
            count: p.count,
        }
    }

    fn expand(self, at: DateTime<Utc>) -> Point {
        let average = f64::from(self.average);
        Point {
            at,
            average,
            minimum: f64::from(self.minimum),
            maximum: f64::from(self.maximum),
            total: average * f64::from(self.count),
            count: self.count,
        }
    }
}

#[derive(Debug, Default)]
struct SetSeries {
    ticks: VecDeque<Tick>,
    /// When the first tick this process holds of the set was taken (its minute is
    /// complete in memory from there: nothing of it came before).
    first: Option<DateTime<Utc>>,
    /// The minute being accumulated and its points so far.
    minute: Option<DateTime<Utc>>,
    accumulating: BTreeMap<Metric, Point>,
}

impl SetSeries {
    /// Appends the newest tick, dropping those older than the kept period or beyond the
    /// kept count.
    fn push(&mut self, tick: Tick) {
        let horizon = tick.at - chrono::Duration::seconds(TICKS_KEPT_SECONDS);
        while self.ticks.front().is_some_and(|t| t.at < horizon) || self.ticks.len() >= TICKS_KEPT {
            self.ticks.pop_front();
        }
        self.first.get_or_insert(tick.at);
        self.ticks.push_back(tick);
    }

    /// The first minute whose ticks are all in memory: the oldest tick's, when nothing of
    /// that minute came before it (the set's or this process's first tick, or a tick on the
    /// minute), else the next one.
    fn whole_from(&self) -> Option<DateTime<Utc>> {
        let oldest = self.ticks.front()?.at;
        let floor = minute_of(oldest);
        Some(if self.first == Some(oldest) || floor == oldest {
            floor
        } else {
            floor + chrono::Duration::minutes(1)
        })
    }

    /// A minute's ticks as the store keeps them: one [`Tick::body`] per line.
    fn minute_ticks(&self, set: &str, minute: DateTime<Utc>) -> Option<MinuteTicks> {
        let end = minute + chrono::Duration::minutes(1);
        let lines: Vec<String> = self
            .ticks
            .iter()
            .filter(|t| t.at >= minute && t.at < end)
            .map(Tick::body)
            .collect();
        (!lines.is_empty()).then(|| MinuteTicks {
            scale_set: set.to_string(),
            minute,
            ticks: lines.join("\n"),
        })
    }
}

/// The start of `t`'s minute.
fn minute_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(chrono::Duration::minutes(1)).unwrap_or(t)
}

/// A frontend's counters as last read, and the rates they gave.
#[derive(Debug, Clone)]
struct FrontendReading {
    at: DateTime<Utc>,
    requests: u64,
    errors: u64,
    latency: Histogram,
    rate: Option<Rate>,
}

/// What a frontend served per second between two readings.
#[derive(Debug, Clone)]
struct Rate {
    requests: f64,
    errors: f64,
    latency: Histogram,
}

/// A set's traffic in one tick, over every replica's frontends.
#[derive(Debug, Default)]
struct Traffic {
    requests: f64,
    errors: f64,
    latency: Histogram,
    active: u64,
    /// Some frontend had a rate (none before a second reading).
    measured: bool,
}

/// Another replica's counters older than this count no more (it stopped, or cannot reach
/// the database): replicas record theirs every few seconds.
const COUNTERS_STALE_SECONDS: i64 = 15;

#[derive(Debug, Default)]
struct Hub {
    sets: HashMap<String, SetSeries>,
    instances: HashMap<String, InstanceSeries>,
    /// By replica, scale set and frontend.
    frontends: HashMap<(String, String, String), FrontendReading>,
}

/// The collector's memory, shared with the readers.
#[derive(Default)]
pub(crate) struct Metrics {
    hub: RwLock<Hub>,
    ticks: std::sync::atomic::AtomicU64,
    /// Time spent in `collect`, in microseconds, in total and in the last one.
    busy_micros: std::sync::atomic::AtomicU64,
    last_micros: std::sync::atomic::AtomicU64,
}

/// What the collector did (for `/metrics` and the benchmark).
#[derive(Debug, Clone, Copy, Default)]
pub struct CollectorStats {
    pub ticks: u64,
    /// Wall time spent collecting, in total and in the last tick.
    pub busy: Duration,
    pub last: Duration,
    pub instances: usize,
    pub scale_sets: usize,
    /// Points held in memory (instance samples and set ticks).
    pub points_held: usize,
    /// The memory those points take, estimated from the structures' sizes.
    pub bytes_held: usize,
}

impl Metrics {
    /// Drops every tick and sample held: reads fall back on the stored roll-ups.
    fn forget_all(&self) {
        *self.write() = Hub::default();
    }

    /// Each set's latest tick as a line for the other replicas ([`Metrics::adopt`]).
    pub(crate) fn latest_lines(&self) -> Vec<String> {
        let hub = self.read();
        hub.sets
            .iter()
            .filter_map(|(set, series)| series.ticks.back().map(|t| t.line(set)))
            .collect()
    }

    /// Takes a tick the leader announced (the fields after `t`, as [`Tick::line`] wrote
    /// them) into a replica that does not collect: its live charts are the leader's. Sets
    /// that had no tick within the kept period are forgotten. `false` when it is not a
    /// tick.
    pub(crate) fn adopt<'a>(&self, mut fields: impl Iterator<Item = &'a str>) -> bool {
        let Some(set) = fields.next() else {
            return false;
        };
        let Some(tick) = Tick::parse(fields) else {
            return false;
        };
        let horizon = tick.at - chrono::Duration::seconds(TICKS_KEPT_SECONDS);
        let mut hub = self.write();
        hub.sets
            .retain(|_, s| s.ticks.back().is_none_or(|t| t.at >= horizon));
        let series = hub.sets.entry(set.to_string()).or_default();
        if series.ticks.back().is_some_and(|t| t.at >= tick.at) {
            return true; // a repeat, or late
        }
        // The leader stores this minute's roll-up once it ends: until then the ticks are
        // all there is of it. (Nothing accumulates here: this replica writes no roll-up.)
        series.minute = Some(
            tick.at
                .duration_trunc(chrono::Duration::minutes(1))
                .unwrap_or(tick.at),
        );
        series.accumulating.clear();
        series.push(tick);
        true
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Hub> {
        self.hub.read().expect("metrics hub poisoned")
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Hub> {
        self.hub.write().expect("metrics hub poisoned")
    }

    /// The set's per-tick points of `metric` at or after `from`, oldest first, and the
    /// first minute they hold whole (`None`: nothing held yet).
    pub(crate) fn ticks(
        &self,
        set: &str,
        metric: Metric,
        from: DateTime<Utc>,
    ) -> (Vec<Point>, Option<DateTime<Utc>>) {
        let hub = self.read();
        let Some(series) = hub.sets.get(set) else {
            return (vec![], None);
        };
        let points = series
            .ticks
            .iter()
            .filter(|t| t.at >= from)
            .filter_map(|t| t.get(metric))
            .collect();
        (points, series.whole_from())
    }

    /// Instances whose metrics counted in the set's last tick before `now` (the count of
    /// its per-instance points: none, none counted), as a backtest reads it back.
    pub(crate) fn counted(&self, set: &str, now: DateTime<Utc>) -> u32 {
        self.serving_and_counted(set, now).1
    }

    /// The set's healthy instances and those counted in its last tick before `now`.
    pub(crate) fn serving_and_counted(&self, set: &str, now: DateTime<Utc>) -> (u32, u32) {
        let hub = self.read();
        let Some(tick) = hub
            .sets
            .get(set)
            .and_then(|s| s.ticks.iter().rev().find(|t| t.at < now))
        else {
            return (0, 0);
        };
        let healthy = tick
            .get(Metric::InstancesHealthy)
            .map_or(0, |p| p.average.round() as u32);
        let counted = tick.get(Metric::CpuPercent).map_or(0, |p| p.count);
        (healthy, counted)
    }

    /// An instance's samples of `metrics` within [from, to).
    pub(crate) fn instance_series(
        &self,
        instance: &str,
        metrics: &[Metric],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<Series> {
        let hub = self.read();
        let series = hub.instances.get(instance);
        metrics
            .iter()
            .map(|&metric| {
                let index = VM_METRICS.iter().position(|m| *m == metric);
                let points = match (series, index) {
                    (Some(series), Some(i)) => series
                        .samples
                        .iter()
                        .filter(|s| s.at >= from && s.at < to)
                        .map(|s| Point::single(s.at, f64::from(s.values[i])))
                        .collect(),
                    _ => vec![],
                };
                Series {
                    metric,
                    unit: metric.unit().into(),
                    instance: Some(instance.into()),
                    points,
                }
            })
            .collect()
    }

    pub(crate) fn stats(&self) -> CollectorStats {
        use std::mem::size_of;
        use std::sync::atomic::Ordering::Relaxed;
        let hub = self.read();
        let samples: usize = hub.instances.values().map(|s| s.samples.len()).sum();
        let sample_slots: usize = hub.instances.values().map(|s| s.samples.capacity()).sum();
        let ticks: usize = hub.sets.values().map(|s| s.ticks.len()).sum();
        let set_points: usize = hub
            .sets
            .values()
            .flat_map(|s| &s.ticks)
            .map(|t| t.points.len())
            .sum();
        let point_entry = size_of::<(Metric, CompactPoint)>();
        CollectorStats {
            ticks: self.ticks.load(Relaxed),
            busy: Duration::from_micros(self.busy_micros.load(Relaxed)),
            last: Duration::from_micros(self.last_micros.load(Relaxed)),
            instances: hub.instances.len(),
            scale_sets: hub.sets.len(),
            points_held: samples * VM_METRICS.len() + set_points,
            bytes_held: sample_slots * size_of::<InstanceSample>()
                + hub.instances.len() * (size_of::<InstanceSeries>() + 48)
                + ticks * size_of::<Tick>()
                + set_points * point_entry,
        }
    }

    /// The Prometheus exposition of the latest values: each set's metrics
    /// (`flotilla_scale_set_<metric>`: the average for CPU, memory and latency, the total
    /// otherwise; the capacity is exposed with the store's figures) and, with
    /// `per_instance`, each instance's (`flotilla_instance_<metric>`).
    pub(crate) fn render_prometheus(&self, out: &mut String, per_instance: bool) {
        use std::fmt::Write;
        let hub = self.read();
        let mut sets: Vec<(&String, &SetSeries)> = hub.sets.iter().collect();
        sets.sort_by_key(|(name, _)| *name);
        // The capacity is already exposed from the store (`flotilla_scale_set_capacity`).
        for metric in Metric::ALL.into_iter().filter(|m| *m != Metric::Capacity) {
            let name = format!("flotilla_scale_set_{}", metric.as_str());
            let _ = writeln!(
                out,
                "# HELP {name} The scale set's {} ({}), latest tick.\n# TYPE {name} gauge",
                metric.as_str().replace('_', " "),
                metric.unit()
            );
            for (set, series) in &sets {
                if let Some(p) = series.ticks.back().and_then(|t| t.get(metric)) {
                    let value = if metric.is_total() {
                        p.total
                    } else {
                        p.average
                    };
                    let _ = writeln!(out, "{name}{{scale_set=\"{set}\"}} {value}");
                }
            }
        }
        if !per_instance {
            return;
        }
        let mut instances: Vec<(&String, &InstanceSeries)> = hub.instances.iter().collect();
        instances.sort_by_key(|(id, _)| *id);
        for (i, metric) in VM_METRICS.iter().enumerate() {
            let name = format!("flotilla_instance_{}", metric.as_str());
            let _ = writeln!(
                out,
                "# HELP {name} The instance's {} ({}), latest sample.\n# TYPE {name} gauge",
                metric.as_str().replace('_', " "),
                metric.unit()
            );
            for (id, series) in &instances {
                if let Some(s) = series.samples.back() {
                    let _ = writeln!(
                        out,
                        "{name}{{scale_set=\"{}\",instance=\"{id}\"}} {}",
                        series.scale_set, s.values[i]
                    );
                }
            }
        }
    }
}

/// Everything one tick reads.
pub(crate) struct TickInput<'a> {
    pub now: DateTime<Utc>,
    pub sets: &'a [ScaleSet],
    pub instances: &'a [Instance],
    pub vms: &'a [flotilla_backend::VmMetrics],
    /// Every replica's frontend counters: this one's as read now, the others' as they
    /// last recorded them.
    pub frontends: &'a [FrontendCounters],
    /// The mock's demand per set, where there is one.
    pub demand: &'a HashMap<String, f64>,
}

impl Metrics {
    /// Folds one tick in; returns the roll-ups and the ticks of the minutes that ended.
    pub(crate) fn tick(&self, input: &TickInput<'_>) -> Ended {
        let now = input.now;
        self.ticks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut hub = self.write();

        // Instance samples: only of VMs that are instances of the set they name — another
        // installation's VMs (even of a set with the same name) are not this fleet's load.
        let owned: std::collections::HashSet<(&str, &str)> = input
            .instances
            .iter()
            .map(|i| (i.scale_set.as_str(), i.id.as_str()))
            .collect();
        let vms: Vec<&flotilla_backend::VmMetrics> = input
            .vms
            .iter()
            .filter(|vm| owned.contains(&(vm.scale_set.as_str(), vm.id.as_str())))
            .collect();
        let mut vms_by_set: HashMap<&str, Vec<&flotilla_backend::VmMetrics>> = HashMap::new();
        for vm in &vms {
            vms_by_set
                .entry(vm.scale_set.as_str())
                .or_default()
                .push(vm);
        }
        for vm in vms {
            if !hub.instances.contains_key(&vm.id) {
                hub.instances.insert(
                    vm.id.clone(),
                    InstanceSeries {
                        scale_set: vm.scale_set.clone(),
                        samples: VecDeque::with_capacity(INSTANCE_SAMPLES),
                    },
                );
            }
            let series = hub.instances.get_mut(&vm.id).expect("inserted above");
            if series.samples.len() == INSTANCE_SAMPLES {
                series.samples.pop_front();
            }
            series.samples.push_back(InstanceSample {
                at: now,
                values: vm.usage.values().map(|v| v as f32),
            });
        }
        hub.instances
            .retain(|id, series| owned.contains(&(series.scale_set.as_str(), id.as_str())));

        // Load balancer rates, by set, over every replica's frontends: each replica's
        // counters give a rate between two of its readings (by its own timestamps), kept
        // until its next reading or until it is stale.
        let mut lb: HashMap<&str, Traffic> = HashMap::new();
        let mut readings = HashMap::new();
        let fresh = input
            .frontends
            .iter()
            .filter(|c| (now - c.at).num_seconds() < COUNTERS_STALE_SECONDS);
        for counters in fresh {
            for f in &counters.frontends {
                let key = (
                    counters.replica.clone(),
                    f.scale_set.clone(),
                    f.name.clone(),
                );
                let errors = f.responses.server_error;
                let rate = match hub.frontends.get(&key) {
                    Some(prev) if counters.at > prev.at && prev.requests <= f.requests => {
                        let secs = (counters.at - prev.at).num_milliseconds() as f64 / 1000.0;
                        Some(Rate {
                            requests: (f.requests - prev.requests) as f64 / secs,
                            errors: errors.saturating_sub(prev.errors) as f64 / secs,
                            latency: f.latency.since(&prev.latency),
                        })
                    }
                    // Nothing new since: the last rate holds.
                    Some(prev) if counters.at == prev.at => prev.rate.clone(),
                    _ => None,
                };
                let traffic = lb.entry(f.scale_set.as_str()).or_default();
                traffic.active += f.active_connections;
                if let Some(rate) = &rate {
                    traffic.requests += rate.requests;
                    traffic.errors += rate.errors;
                    traffic.latency.add(&rate.latency);
                    traffic.measured = true;
                }
                readings.insert(
                    key,
                    FrontendReading {
                        at: counters.at,
                        requests: f.requests,
                        errors,
                        latency: f.latency.clone(),
                        rate,
                    },
                );
            }
        }
        hub.frontends = readings;

        let mut ended = Ended::default();
        let minute = minute_of(now);
        let by_set = group(input.instances);
        for set in input.sets {
            let name = set.name();
            let initialization = set
                .spec
                .autoscale
                .as_ref()
                .map_or(0.0, |a| f64::from(a.initialization_seconds));
            let members = by_set.get(name).map(Vec::as_slice).unwrap_or(&[]);
            let counted: Vec<&flotilla_backend::VmMetrics> = vms_by_set
                .get(name)
                .into_iter()
                .flatten()
                .copied()
                .filter(|vm| vm.running_seconds >= initialization)
                .collect();
            let mut points = BTreeMap::new();
            for (i, metric) in VM_METRICS.iter().enumerate() {
                let values = counted.iter().map(|vm| vm.usage.values()[i]);
                if let Some(p) = Point::of(now, values) {
                    points.insert(*metric, p);
                }
            }
            let count =
                |f: &dyn Fn(&Instance) -> bool| members.iter().filter(|i| f(i)).count() as f64;
            let state_metrics = [
                (Metric::Capacity, f64::from(set.spec.capacity)),
                (
                    Metric::InstancesRunning,
                    count(&|i| i.power_state == PowerState::Running),
                ),
                (
                    Metric::InstancesHealthy,
                    count(&|i| i.health_state == HealthState::Healthy),
                ),
                (
                    Metric::InstancesUnhealthy,
                    count(&|i| i.health_state == HealthState::Unhealthy),
                ),
                (
                    Metric::InstancesInTransition,
                    count(&Instance::in_transition),
                ),
            ];
            for (metric, value) in state_metrics {
                points.insert(metric, Point::single(now, value));
            }
            if let Some(traffic) = lb.get(name) {
                let latency = &traffic.latency;
                points.insert(
                    Metric::ActiveConnections,
                    Point::single(now, traffic.active as f64),
                );
                if traffic.measured {
                    points.insert(
                        Metric::RequestsPerSecond,
                        Point::single(now, traffic.requests),
                    );
                    points.insert(Metric::ErrorsPerSecond, Point::single(now, traffic.errors));
                }
                for (metric, q) in [
                    (Metric::LatencyP50Ms, 0.5),
                    (Metric::LatencyP95Ms, 0.95),
                    (Metric::LatencyP99Ms, 0.99),
                ] {
                    if let Some(v) = latency.quantile(q) {
                        points.insert(metric, Point::single(now, v));
                    }
                }
            }
            if let Some(rps) = input.demand.get(name) {
                points.insert(Metric::DemandRequestsPerSecond, Point::single(now, *rps));
            }

            let series = hub.sets.entry(name.to_string()).or_default();
            if let Some(done) = series.minute.filter(|m| *m != minute) {
                ended
                    .rollups
                    .extend(std::mem::take(&mut series.accumulating).into_iter().map(
                        |(metric, point)| Rollup {
                            scale_set: name.to_string(),
                            metric,
                            point: Point { at: done, ..point },
                        },
                    ));
                ended.ticks.extend(series.minute_ticks(name, done));
            }
            series.minute = Some(minute);
            for (metric, point) in &points {
                series
                    .accumulating
                    .entry(*metric)
                    .and_modify(|p| *p = p.merged(point))
                    .or_insert(*point);
            }
            series.push(Tick {
                at: now,
                points: points
                    .iter()
                    .map(|(m, p)| (*m, CompactPoint::of(p)))
                    .collect(),
            });
        }
        let names: std::collections::HashSet<&str> = input.sets.iter().map(|s| s.name()).collect();
        hub.sets.retain(|name, _| names.contains(name.as_str()));
        ended
    }

    /// The roll-ups and ticks of the minutes in progress (written at shutdown, so a restart
    /// loses no finished tick; the next run replaces the same rows).
    pub(crate) fn pending(&self) -> Ended {
        let hub = self.read();
        let mut pending = Ended::default();
        for (name, series) in &hub.sets {
            let Some(minute) = series.minute else {
                continue;
            };
            pending
                .rollups
                .extend(series.accumulating.iter().map(|(metric, point)| Rollup {
                    scale_set: name.clone(),
                    metric: *metric,
                    point: Point {
                        at: minute,
                        ..*point
                    },
                }));
            pending.ticks.extend(series.minute_ticks(name, minute));
        }
        pending
    }
}

/// What the collector writes for the minutes that ended.
#[derive(Debug, Default)]
pub(crate) struct Ended {
    pub rollups: Vec<Rollup>,
    pub ticks: Vec<MinuteTicks>,
}

impl Ended {
    /// Writes the roll-ups, then the ticks.
    async fn write(&self, store: &dyn Store) -> crate::Result<()> {
        if !self.rollups.is_empty() {
            store
                .write_rollups(&self.rollups)
                .await
                .map_err(crate::Error::store("write metric roll-ups"))?;
        }
        if !self.ticks.is_empty() {
            store
                .write_ticks(&self.ticks)
                .await
                .map_err(crate::Error::store("write metric ticks"))?;
        }
        Ok(())
    }
}

fn group(instances: &[Instance]) -> HashMap<&str, Vec<&Instance>> {
    let mut by_set: HashMap<&str, Vec<&Instance>> = HashMap::new();
    for i in instances {
        by_set.entry(i.scale_set.as_str()).or_default().push(i);
    }
    by_set
}

/// How far back (from the end of a read) the autoscaler's reads take the store's ticks
/// before its roll-ups: a backtest reads the same, so it replays what was decided live.
pub const STORED_TICKS_HORIZON: chrono::Duration = chrono::Duration::hours(1);
/// How long the store keeps minutes of ticks.
pub const TICKS_RETENTION: chrono::Duration = chrono::Duration::days(1);

/// Which ticks a read takes where memory holds none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ticks {
    /// The memory's only (charts): roll-ups before them.
    Memory,
    /// The store's too, for the minutes within `horizon` of the read's end it kept
    /// (autoscale rules: [`STORED_TICKS_HORIZON`]; backtests: their whole range): roll-ups
    /// where no tick is known.
    Stored { horizon: chrono::Duration },
}

impl Metrics {
    /// Points of a set's metric over [from, to), oldest first: each minute's ticks where
    /// they are known whole (in memory, or with [`Ticks::Stored`] in the store), its
    /// 1-minute roll-up (stamped at the minute's start) where they are not.
    pub(crate) async fn raw_points(
        &self,
        store: &dyn Store,
        set: &str,
        metric: Metric,
        range: (DateTime<Utc>, DateTime<Utc>),
        ticks: Ticks,
    ) -> crate::Result<Vec<Point>> {
        let mut series = self.raw_series(store, set, &[metric], range, ticks).await?;
        Ok(series.remove(&metric).unwrap_or_default())
    }

    /// [`Metrics::raw_points`] of several metrics, each stored row read once.
    pub(crate) async fn raw_series(
        &self,
        store: &dyn Store,
        set: &str,
        metrics: &[Metric],
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        ticks: Ticks,
    ) -> crate::Result<BTreeMap<Metric, Vec<Point>>> {
        let mut held = BTreeMap::new();
        let mut whole_from = None;
        for metric in metrics {
            let (points, whole) = self.ticks(set, *metric, from);
            held.insert(*metric, points);
            whole_from = whole;
        }
        let memory_from = whole_from.unwrap_or(to).max(from);
        let mut out: BTreeMap<Metric, Vec<Point>> =
            metrics.iter().map(|m| (*m, Vec::new())).collect();
        if from < memory_from {
            let stored = match ticks {
                Ticks::Stored { horizon } => {
                    let lo = minute_of(from).max(minute_of(to - horizon));
                    if lo < memory_from {
                        store
                            .read_ticks(set, lo, memory_from)
                            .await
                            .map_err(crate::Error::store("read metric ticks"))?
                    } else {
                        vec![]
                    }
                }
                Ticks::Memory => vec![],
            };
            let known: std::collections::HashSet<DateTime<Utc>> =
                stored.iter().map(|r| r.minute).collect();
            let rows = store
                .read_rollups(set, metrics, from, memory_from.min(to))
                .await
                .map_err(crate::Error::store("read metric roll-ups"))?;
            for row in rows.into_iter().filter(|r| !known.contains(&r.point.at)) {
                out.entry(row.metric).or_default().push(row.point);
            }
            let end = memory_from.min(to);
            for row in &stored {
                for tick in row.ticks.lines().filter_map(|l| Tick::parse(l.split('\t'))) {
                    if tick.at < from || tick.at >= end {
                        continue;
                    }
                    for (metric, points) in out.iter_mut() {
                        points.extend(tick.get(*metric));
                    }
                }
            }
            for points in out.values_mut() {
                points.sort_by_key(|p| p.at);
            }
        }
        for (metric, points) in held {
            out.entry(metric).or_default().extend(
                points
                    .into_iter()
                    .filter(|p| p.at >= memory_from && p.at < to),
            );
        }
        Ok(out)
    }

    /// [`Metrics::raw_points`] merged into buckets of `step`.
    pub(crate) async fn set_points(
        &self,
        store: &dyn Store,
        set: &str,
        metric: Metric,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: chrono::Duration,
    ) -> crate::Result<Vec<Point>> {
        let points = self
            .raw_points(store, set, metric, (from, to), Ticks::Memory)
            .await?;
        Ok(rebucket(&points, from, to, step))
    }
}

/// The `metrics` task: one tick per interval; prunes old roll-ups and decisions every
/// [`PRUNE_EVERY`]; writes the minutes in progress when it stops.
pub(crate) struct Collector {
    ctx: Context,
    metrics: Arc<Metrics>,
}

impl Collector {
    pub(crate) fn new(ctx: Context, metrics: Arc<Metrics>) -> Self {
        Self { ctx, metrics }
    }

    /// One tick: read, fold, write the minutes that ended.
    pub(crate) async fn collect(&self) -> crate::Result<String> {
        let started = std::time::Instant::now();
        let result = self.collect_once().await;
        let micros = started.elapsed().as_micros() as u64;
        let m = &self.metrics;
        m.busy_micros
            .fetch_add(micros, std::sync::atomic::Ordering::Relaxed);
        m.last_micros
            .store(micros, std::sync::atomic::Ordering::Relaxed);
        result
    }

    async fn collect_once(&self) -> crate::Result<String> {
        let ctx = &self.ctx;
        let vms = ctx
            .backend
            .metrics(None)
            .await
            .map_err(crate::Error::backend("read VM metrics"))?;
        let sets = ctx.read_sets().await?;
        let mut instances = ctx
            .store
            .list_all_instances()
            .await
            .map_err(crate::Error::store("list instances"))?;
        // A warm pool's members serve nothing: their use is no load of the set's.
        instances.retain(|i| !i.in_warm_pool());
        // This replica's frontends now, the others' as they last recorded them.
        let own = &ctx.config.replica.id;
        let others = ctx
            .store
            .list_frontend_counters()
            .await
            .map_err(crate::Error::store("read the replicas' frontend counters"))?;
        let mut frontends = vec![FrontendCounters {
            replica: own.clone(),
            at: ctx.now(),
            frontends: ctx.balancer.lb.stats(),
        }];
        frontends.extend(others.into_iter().filter(|c| c.replica != *own));
        let mut demand: HashMap<String, f64> = HashMap::new();
        if let Some(sim) = ctx.backend.simulation() {
            for set in &sets {
                let rps = sim
                    .demand_rps(set.name())
                    .await
                    .map_err(crate::Error::backend("read the synthetic demand"))?;
                if let Some(rps) = rps {
                    demand.insert(set.name().to_string(), rps);
                }
            }
        }
        let ended = self.metrics.tick(&TickInput {
            // To the millisecond, as the store keeps ticks: what is read back is what was
            // read live.
            now: chrono::SubsecRound::trunc_subsecs(ctx.now(), 3),
            sets: &sets,
            instances: &instances,
            vms: &vms,
            frontends: &frontends,
            demand: &demand,
        });
        // The other replicas' live charts are this tick's.
        crate::tasks::relay::announce(ctx, own, self.metrics.latest_lines()).await;
        ended.write(ctx.store.as_ref()).await?;
        Ok(format!(
            "{} VM(s) of {} scale set(s), {} roll-up(s) written",
            vms.len(),
            sets.len(),
            ended.rollups.len()
        ))
    }

    async fn prune(&self) {
        let now = self.ctx.now();
        let store = &self.ctx.store;
        let history = store
            .prune_history(now - self.ctx.config.metrics.retention)
            .await;
        let ticks = store.prune_ticks(now - TICKS_RETENTION).await;
        match history.and_then(|h| ticks.map(|t| h + t)) {
            Ok(n) if n > 0 => tracing::info!(rows = n, "pruned old metrics and decisions"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %chain(&e), "pruning metrics failed"),
        }
    }
}

impl Task for Collector {
    fn name(&self) -> &'static str {
        "metrics"
    }

    fn run(self: Arc<Self>, control: Control) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // A new term starts from the store's roll-ups: another replica may have led
            // since the ticks this memory holds.
            self.metrics.forget_all();
            let interval = self.ctx.config.metrics.interval;
            let mut last_prune: Option<tokio::time::Instant> = None;
            let mut delay = std::time::Duration::ZERO;
            while control.next(delay).await {
                delay = interval;
                control.activation(self.collect()).await;
                if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                    last_prune = Some(tokio::time::Instant::now());
                    self.prune().await;
                }
            }
            if let Err(e) = self.metrics.pending().write(self.ctx.store.as_ref()).await {
                tracing::warn!(error = %chain(&e), "could not write the last metric roll-ups");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn tick(at: DateTime<Utc>, capacity: f64) -> Tick {
        let points = [
            (Metric::Capacity, Point::single(at, capacity)),
            (
                Metric::CpuPercent,
                Point::of(at, [12.5, 40.25, 3.0]).unwrap(),
            ),
        ];
        Tick {
            at,
            points: points
                .iter()
                .map(|(m, p)| (*m, CompactPoint::of(p)))
                .collect(),
        }
    }

    #[test]
    fn a_replica_takes_in_the_ticks_the_leader_announces() {
        let t0 = at("2026-01-01T12:00:00.250Z");
        let line = tick(t0, 3.0).line("web");
        let standby = Metrics::default();
        assert!(standby.adopt(line.strip_prefix("t\t").unwrap().split('\t')));
        let (points, cut) = standby.ticks("web", Metric::CpuPercent, t0);
        // The minute in progress is not in the store yet: its ticks are shown.
        assert_eq!(cut, Some(at("2026-01-01T12:00:00Z")));
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].at, t0);
        assert_eq!(points[0].maximum, 40.25);
        assert_eq!(points[0].count, 3);
        // A repeat is taken once; garbage not at all.
        assert!(standby.adopt(line.strip_prefix("t\t").unwrap().split('\t')));
        assert_eq!(standby.ticks("web", Metric::Capacity, t0).0.len(), 1);
        for bad in [
            "web",
            "web\tsoon",
            "web\t1\tcpu_percent=1,2",
            "web\t1\tnope=1,2,3,4",
        ] {
            assert!(!standby.adopt(bad.split('\t')), "{bad}");
        }
        // A set with no tick for the kept period is forgotten.
        let later = t0 + chrono::Duration::seconds(TICKS_KEPT_SECONDS + 1);
        let other = tick(later, 1.0).line("api");
        assert!(standby.adopt(other.strip_prefix("t\t").unwrap().split('\t')));
        assert_eq!(standby.ticks("web", Metric::Capacity, t0).1, None);
        assert_eq!(standby.latest_lines(), [other]);
    }

    /// A set created at 12:00:37, ticks every second for `seconds`.
    fn series_from(start: DateTime<Utc>, seconds: i64) -> SetSeries {
        let mut series = SetSeries::default();
        for s in 0..seconds {
            series.push(tick(start + chrono::Duration::seconds(s), 2.0));
        }
        series
    }

    #[test]
    fn memory_holds_whole_minutes_from_the_first_tick_on() {
        let start = at("2026-01-01T12:00:37Z");
        // The set's first minute is all there is of it: whole from 12:00, also once it
        // has ended (its roll-up must not replace its ticks).
        assert_eq!(
            series_from(start, 20).whole_from(),
            Some(at("2026-01-01T12:00:00Z"))
        );
        assert_eq!(
            series_from(start, 200).whole_from(),
            Some(at("2026-01-01T12:00:00Z"))
        );
        // Once its first ticks are dropped (300 kept), the oldest minute held is partial:
        // whole from the next.
        let long = series_from(start, 400);
        assert_eq!(
            long.ticks.front().map(|t| t.at),
            Some(at("2026-01-01T12:02:17Z"))
        );
        assert_eq!(long.whole_from(), Some(at("2026-01-01T12:03:00Z")));
        // A minute's ticks as stored read back as they were held.
        let row = long
            .minute_ticks("web", at("2026-01-01T12:04:00Z"))
            .unwrap();
        assert_eq!(row.ticks.lines().count(), 60);
        let back: Vec<Point> = row
            .ticks
            .lines()
            .filter_map(|l| Tick::parse(l.split('\t')))
            .filter_map(|t| t.get(Metric::CpuPercent))
            .collect();
        let held: Vec<Point> = long
            .ticks
            .iter()
            .filter(|t| minute_of(t.at) == at("2026-01-01T12:04:00Z"))
            .filter_map(|t| t.get(Metric::CpuPercent))
            .collect();
        assert_eq!(back, held);
    }

    /// The defect of issue 18: once the roll-up of a set's first (partial) minute was
    /// written, reads replaced that minute's ticks with one point at the minute's start —
    /// before the set existed — and a rule's grains shifted.
    #[tokio::test]
    async fn a_first_partial_minute_keeps_its_ticks_and_stored_ticks_replace_roll_ups() {
        let store = flotilla_store::sqlite::SqliteStore::connect("sqlite::memory:")
            .await
            .unwrap();
        let start = at("2026-01-01T12:00:37Z");
        let metrics = Metrics::default();
        let now = start + chrono::Duration::seconds(100);
        {
            let mut hub = metrics.write();
            let series = hub.sets.entry("web".into()).or_default();
            for s in 0..100 {
                series.push(tick(start + chrono::Duration::seconds(s), 2.0));
            }
        }
        let first = at("2026-01-01T12:00:00Z");
        // The roll-up of 12:00 is in the store, stamped 12:00:00.
        store
            .write_rollups(&[Rollup {
                scale_set: "web".into(),
                metric: Metric::CpuPercent,
                point: Point::single(first, 18.0),
            }])
            .await
            .unwrap();
        let window = (first - chrono::Duration::minutes(5), now);
        let points = metrics
            .raw_points(&store, "web", Metric::CpuPercent, window, Ticks::Memory)
            .await
            .unwrap();
        assert_eq!(points.len(), 100);
        assert_eq!(points[0].at, start, "nothing before the set's first tick");
        // Without ticks in memory (a new leader), the store's ticks come before roll-ups.
        let minute_row = metrics.read().sets["web"]
            .minute_ticks("web", first)
            .unwrap();
        store.write_ticks(&[minute_row]).await.unwrap();
        let fresh = Metrics::default();
        let read = |ticks| fresh.raw_points(&store, "web", Metric::CpuPercent, window, ticks);
        let stored = read(Ticks::Stored {
            horizon: STORED_TICKS_HORIZON,
        })
        .await
        .unwrap();
        assert_eq!(stored.len(), 23);
        assert_eq!(stored[0].at, start);
        let charts = read(Ticks::Memory).await.unwrap();
        assert_eq!(charts.len(), 1, "charts of a new leader read the roll-up");
        assert_eq!(charts[0].at, first);
    }
}
