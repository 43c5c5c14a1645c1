//! The plain logic behind a scale set's charts (the Monitoring tab, the Scaling tab's and
//! the Overview's small charts): the time ranges and how often each is read again, the
//! Monitoring tab's URL query, which chart shows which metrics, and each chart's data built
//! from a metrics answer, the autoscale setting (threshold lines of the profile that
//! applies) and the scale actions of the activity log (markers).

use std::time::Duration;

use chrono::{DateTime, Utc};
use flotilla_domain::autoscale::setting::AutoscaleSetting;
use flotilla_domain::autoscale::{Direction, Operator};
use flotilla_domain::metrics::{Metric, MetricsAnswer};
use flotilla_domain::schedule;
use flotilla_domain::validation::typed::local_date_time;
use flotilla_domain::{Activity, FieldError};
use serde::{Deserialize, Serialize};

use crate::chart::{ChartData, Line, Marker, Threshold, ThresholdKind, Unit, change_label};

/// The ranges the range picker offers, ending now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    Minutes15,
    Hour1,
    Hours6,
    Hours24,
    Days7,
}

impl Preset {
    pub const ALL: [Preset; 5] = [
        Preset::Minutes15,
        Preset::Hour1,
        Preset::Hours6,
        Preset::Hours24,
        Preset::Days7,
    ];

    /// The range's value in the URL (`?range=1h`).
    pub fn slug(self) -> &'static str {
        match self {
            Preset::Minutes15 => "15m",
            Preset::Hour1 => "1h",
            Preset::Hours6 => "6h",
            Preset::Hours24 => "24h",
            Preset::Days7 => "7d",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Preset::Minutes15 => "15 min",
            Preset::Hour1 => "1 h",
            Preset::Hours6 => "6 h",
            Preset::Hours24 => "24 h",
            Preset::Days7 => "7 d",
        }
    }

    pub fn seconds(self) -> u32 {
        match self {
            Preset::Minutes15 => 900,
            Preset::Hour1 => 3_600,
            Preset::Hours6 => 21_600,
            Preset::Hours24 => 86_400,
            Preset::Days7 => 604_800,
        }
    }

    pub fn parse(slug: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.slug() == slug)
    }

    /// How often a chart of this range is read again: every second for 15 minutes, less
    /// often in proportion for longer ranges (a pixel's worth of time or so).
    pub fn refresh(self) -> Duration {
        Duration::from_secs(u64::from(self.seconds() / 900).max(1))
    }
}

/// The range picked: one ending now (read again as time passes), or a fixed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Last(Preset),
    Between {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
}

/// The range picked when the URL names none.
pub const DEFAULT_PRESET: Preset = Preset::Hour1;

/// The longest custom range.
pub const MAX_CUSTOM_DAYS: i64 = 31;

/// The Monitoring tab's URL query: `?range=1h`, `?range=custom&from=…&to=…` (times in UTC,
/// as `<input type="datetime-local">` writes them), `&instance=web_2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoringQuery {
    pub range: Range,
    pub instance: Option<String>,
    /// The custom times as typed, to show them again.
    pub from_typed: String,
    pub to_typed: String,
}

impl MonitoringQuery {
    /// Reads the query (`get` gives a parameter's value); what cannot be read is reported
    /// by field and the default range is used instead.
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> (MonitoringQuery, Vec<FieldError>) {
        let mut errors = Vec::new();
        let from_typed = get("from").unwrap_or_default();
        let to_typed = get("to").unwrap_or_default();
        let instance = get("instance").filter(|i| !i.trim().is_empty());
        let range = match get("range").as_deref() {
            None | Some("") => Range::Last(DEFAULT_PRESET),
            Some("custom") => {
                let from = local_time(&from_typed, "from", &mut errors);
                let to = local_time(&to_typed, "to", &mut errors);
                match (from, to) {
                    (Some(from), Some(to)) if from >= to => {
                        errors.push(field("to", "must be after the start"));
                        Range::Last(DEFAULT_PRESET)
                    }
                    (Some(from), Some(to)) if (to - from).num_days() > MAX_CUSTOM_DAYS => {
                        errors.push(field(
                            "to",
                            &format!("a range is at most {MAX_CUSTOM_DAYS} days"),
                        ));
                        Range::Last(DEFAULT_PRESET)
                    }
                    (Some(from), Some(to)) => Range::Between { from, to },
                    _ => Range::Last(DEFAULT_PRESET),
                }
            }
            Some(slug) => Preset::parse(slug).map(Range::Last).unwrap_or_else(|| {
                errors.push(field(
                    "range",
                    &format!("unknown range {slug:?}; pick 15m, 1h, 6h, 24h, 7d or custom"),
                ));
                Range::Last(DEFAULT_PRESET)
            }),
        };
        (
            MonitoringQuery {
                range,
                instance,
                from_typed,
                to_typed,
            },
            errors,
        )
    }

    /// The tab's address (`base`) with this query.
    pub fn href(&self, base: &str) -> String {
        let mut params: Vec<(&str, &str)> = Vec::new();
        match self.range {
            Range::Last(preset) => params.push(("range", preset.slug())),
            Range::Between { .. } => {
                params.push(("range", "custom"));
                params.push(("from", &self.from_typed));
                params.push(("to", &self.to_typed));
            }
        }
        if let Some(instance) = &self.instance {
            params.push(("instance", instance));
        }
        let params: Vec<String> = params
            .into_iter()
            .map(|(k, v)| format!("{k}={}", flotilla_domain::url::percent_encode(v)))
            .collect();
        format!("{base}?{}", params.join("&"))
    }

    /// The tab's address with the range replaced by `preset`.
    pub fn with_preset(&self, base: &str, preset: Preset) -> String {
        MonitoringQuery {
            range: Range::Last(preset),
            ..self.clone()
        }
        .href(base)
    }

    /// The tab's address with another instance (`None`: the scale set's charts only).
    pub fn with_instance(&self, base: &str, instance: Option<&str>) -> String {
        MonitoringQuery {
            instance: instance.filter(|i| !i.is_empty()).map(str::to_string),
            ..self.clone()
        }
        .href(base)
    }

    /// What to ask the server for.
    pub fn window(&self) -> Window {
        match self.range {
            Range::Last(preset) => Window::Last {
                seconds: preset.seconds(),
            },
            Range::Between { from, to } => Window::Between { from, to },
        }
    }

    /// How often the charts are read again (`None`: a fixed range, never).
    pub fn refresh(&self) -> Option<Duration> {
        match self.range {
            Range::Last(preset) => Some(preset.refresh()),
            Range::Between { .. } => None,
        }
    }
}

fn field(name: &str, message: &str) -> FieldError {
    FieldError {
        field: name.into(),
        message: message.into(),
    }
}

/// A `datetime-local` value (`2026-01-31T14:05`, seconds optional), read as UTC.
fn local_time(typed: &str, name: &str, errors: &mut Vec<FieldError>) -> Option<DateTime<Utc>> {
    let typed = typed.trim();
    if typed.is_empty() {
        errors.push(field(name, "give a date and time"));
        return None;
    }
    match local_date_time(typed) {
        Some(t) => Some(t.and_utc()),
        None => {
            errors.push(field(
                name,
                &format!("{typed:?} is not a date and time such as 2026-01-31T14:05"),
            ));
            None
        }
    }
}

/// The time span a read covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Window {
    /// The last `seconds`, by the server's clock.
    Last { seconds: u32 },
    Between {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
}

/// One read of a scale set's charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartsRequest {
    pub name: String,
    pub metrics: Vec<Metric>,
    pub window: Window,
    /// Seconds per point (`None`: the server's choice, about 300 points per range). Reads
    /// after the first ask for the first answer's step, and the window's start is then
    /// aligned to it, so that points stay where they are as the window slides.
    pub step: Option<u32>,
    /// One instance's samples instead of the set's aggregates.
    pub instance: Option<String>,
}

/// What the charts of one read show: the metrics, and the scale actions in the range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartsRead {
    pub metrics: MetricsAnswer,
    /// The `autoscale.scale` entries of the activity log in the range, newest first.
    pub actions: Vec<Activity>,
}

/// One chart: which metrics it draws (each a line), whether the first line has its min–max
/// band.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartSpec {
    /// A short name (`data-chart`).
    pub name: &'static str,
    pub title: &'static str,
    pub lines: &'static [(Metric, &'static str)],
    pub band: bool,
}

impl ChartSpec {
    pub fn unit(&self) -> Unit {
        self.lines
            .first()
            .map_or(Unit::Instances, |(metric, _)| Unit::of(*metric))
    }

    /// The metric autoscale thresholds are drawn for.
    pub fn main_metric(&self) -> Option<Metric> {
        self.lines.first().map(|(metric, _)| *metric)
    }
}

pub const CPU: ChartSpec = ChartSpec {
    name: "cpu",
    title: "CPU",
    lines: &[(Metric::CpuPercent, "average")],
    band: true,
};

pub const REQUESTS: ChartSpec = ChartSpec {
    name: "requests",
    title: "Requests per second",
    lines: &[
        (Metric::RequestsPerSecond, "served"),
        (Metric::DemandRequestsPerSecond, "demand"),
    ],
    band: false,
};

/// The charts beside the autoscale decisions (and on the Overview).
pub const SCALING_CHARTS: [ChartSpec; 2] = [CPU, REQUESTS];

/// The scale set's charts on the Monitoring tab.
pub const SET_CHARTS: [ChartSpec; 8] = [
    CPU,
    ChartSpec {
        name: "memory",
        title: "Memory",
        lines: &[(Metric::MemoryPercent, "average")],
        band: true,
    },
    REQUESTS,
    ChartSpec {
        name: "errors",
        title: "Errors per second",
        lines: &[(Metric::ErrorsPerSecond, "errors")],
        band: false,
    },
    ChartSpec {
        name: "latency",
        title: "Latency",
        lines: &[
            (Metric::LatencyP50Ms, "p50"),
            (Metric::LatencyP95Ms, "p95"),
            (Metric::LatencyP99Ms, "p99"),
        ],
        band: false,
    },
    ChartSpec {
        name: "network",
        title: "Network",
        lines: &[
            (Metric::NetworkInBytesPerSecond, "in"),
            (Metric::NetworkOutBytesPerSecond, "out"),
        ],
        band: false,
    },
    ChartSpec {
        name: "disk",
        title: "Disk",
        lines: &[
            (Metric::DiskReadBytesPerSecond, "read"),
            (Metric::DiskWriteBytesPerSecond, "write"),
        ],
        band: false,
    },
    ChartSpec {
        name: "instances",
        title: "Instances",
        lines: &[
            (Metric::Capacity, "capacity"),
            (Metric::InstancesRunning, "running"),
            (Metric::InstancesHealthy, "healthy"),
            (Metric::InstancesUnhealthy, "unhealthy"),
            (Metric::InstancesInTransition, "in transition"),
        ],
        band: false,
    },
];

/// One instance's charts, of the metrics measured on each instance
/// ([`Metric::PER_INSTANCE`]; see [`instance_charts`]).
const INSTANCE_CHARTS: [ChartSpec; 5] = [
    ChartSpec {
        name: "instance-cpu",
        title: "CPU",
        lines: &[(Metric::CpuPercent, "cpu")],
        band: false,
    },
    ChartSpec {
        name: "instance-memory",
        title: "Memory",
        lines: &[(Metric::MemoryPercent, "memory")],
        band: false,
    },
    ChartSpec {
        name: "instance-requests",
        title: "Requests per second",
        lines: &[(Metric::RequestsPerSecond, "served")],
        band: false,
    },
    ChartSpec {
        name: "instance-network",
        title: "Network",
        lines: &[
            (Metric::NetworkInBytesPerSecond, "in"),
            (Metric::NetworkOutBytesPerSecond, "out"),
        ],
        band: false,
    },
    ChartSpec {
        name: "instance-disk",
        title: "Disk",
        lines: &[
            (Metric::DiskReadBytesPerSecond, "read"),
            (Metric::DiskWriteBytesPerSecond, "write"),
        ],
        band: false,
    },
];

/// The charts of one instance: those whose metrics the collector keeps per instance.
pub fn instance_charts() -> Vec<ChartSpec> {
    INSTANCE_CHARTS
        .into_iter()
        .filter(|c| {
            c.lines
                .iter()
                .all(|(m, _)| Metric::PER_INSTANCE.contains(m))
        })
        .collect()
}

/// Every metric `charts` draw, once each, in order.
pub fn metrics_of(charts: &[ChartSpec]) -> Vec<Metric> {
    let mut metrics: Vec<Metric> = Vec::new();
    for (metric, _) in charts.iter().flat_map(|c| c.lines.iter()) {
        if !metrics.contains(metric) {
            metrics.push(*metric);
        }
    }
    metrics
}

/// The data of chart `spec` from `answer`. A line without points is left out (the mock's
/// demand on a set without one), except the first, so that an empty chart says so.
pub fn chart_data(
    spec: &ChartSpec,
    answer: &MetricsAnswer,
    thresholds: Vec<Threshold>,
    markers: Vec<Marker>,
) -> ChartData {
    let lines = spec
        .lines
        .iter()
        .enumerate()
        .filter_map(|(i, (metric, label))| {
            let points = answer
                .series
                .iter()
                .find(|s| s.metric == *metric)
                .map(|s| s.points.as_slice())
                .unwrap_or_default();
            (i == 0 || !points.is_empty()).then(|| Line {
                label: (*label).to_string(),
                points: points.iter().map(|p| (p.at, p.average)).collect(),
                band: if spec.band && i == 0 {
                    points
                        .iter()
                        .map(|p| (p.at, p.minimum, p.maximum))
                        .collect()
                } else {
                    vec![]
                },
            })
        })
        .collect();
    ChartData {
        from: answer.from,
        to: answer.to,
        lines,
        thresholds,
        markers,
    }
}

/// `>`, `≥`, `<`, `≤`, `=`, `≠`.
pub fn operator_symbol(op: Operator) -> &'static str {
    match op {
        Operator::GreaterThan => ">",
        Operator::GreaterThanOrEqual => "≥",
        Operator::LessThan => "<",
        Operator::LessThanOrEqual => "≤",
        Operator::Equals => "=",
        Operator::NotEquals => "≠",
    }
}

/// The threshold lines of `metric`'s chart: the rules on that metric of the profile that
/// applies at `now` (`scale out > 70 %`), and its target-tracking target. A target on a
/// total (requests, bytes) is per instance: it is drawn at the target times `capacity`,
/// the scale set's total at which the count is right.
pub fn thresholds(
    setting: Option<&AutoscaleSetting>,
    metric: Metric,
    now: DateTime<Utc>,
    capacity: u32,
) -> Vec<Threshold> {
    let Some(setting) = setting.filter(|s| s.enabled) else {
        return vec![];
    };
    let Some(resolved) = schedule::resolve(&setting.whens(), now) else {
        return vec![];
    };
    let profile = &setting.profiles[resolved.index];
    let unit = Unit::of(metric);
    let mut lines: Vec<Threshold> = profile
        .rules
        .iter()
        .filter(|r| r.metric == metric.as_str())
        .map(|r| {
            let (verb, kind) = match r.direction {
                Direction::Increase => ("scale out", ThresholdKind::Out),
                Direction::Decrease => ("scale in", ThresholdKind::In),
            };
            Threshold {
                label: format!(
                    "{verb} {} {}",
                    operator_symbol(r.operator),
                    unit.format(r.threshold)
                ),
                value: r.threshold,
                kind,
            }
        })
        .collect();
    if let Some(t) = profile
        .target_tracking
        .as_ref()
        .filter(|t| t.metric == metric.as_str())
    {
        let (value, label) = if metric.is_total() {
            let total = t.target * f64::from(capacity.max(1));
            (
                total,
                format!(
                    "target {} per instance × {capacity} = {}",
                    unit.format(t.target),
                    unit.format(total)
                ),
            )
        } else {
            (t.target, format!("target {}", unit.format(t.target)))
        };
        lines.push(Threshold {
            label,
            value,
            kind: ThresholdKind::Target,
        });
    }
    lines
}

/// A scale action of the activity log (`autoscale.scale`) as a marker: `+2 (3 → 5)`.
pub fn marker(entry: &Activity) -> Option<Marker> {
    let count = |key: &str| {
        entry
            .details
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    let (old, new) = (count("old_capacity")?, count("new_capacity")?);
    Some(Marker {
        at: entry.started_at,
        label: change_label(old, new),
        out: new > old,
    })
}

/// The markers of the scale actions within the answer's range, oldest first.
pub fn markers(actions: &[Activity], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Marker> {
    let mut markers: Vec<Marker> = actions
        .iter()
        .filter(|a| a.started_at >= from && a.started_at <= to)
        .filter_map(marker)
        .collect();
    markers.sort_by_key(|m| m.at);
    markers
}

/// The newest value of `metric` in `answer`.
pub fn latest(answer: &MetricsAnswer, metric: Metric) -> Option<f64> {
    answer
        .series
        .iter()
        .find(|s| s.metric == metric)
        .and_then(|s| s.points.last())
        .map(|p| p.average)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_domain::ActivityResult;
    use flotilla_domain::metrics::{Point, Series};
    use serde_json::json;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn query(pairs: &[(&str, &str)]) -> (MonitoringQuery, Vec<FieldError>) {
        MonitoringQuery::parse(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn ranges_refresh_in_proportion() {
        let seconds: Vec<u64> = Preset::ALL.iter().map(|p| p.refresh().as_secs()).collect();
        assert_eq!(seconds, [1, 4, 24, 96, 672]);
        for p in Preset::ALL {
            assert_eq!(Preset::parse(p.slug()), Some(p));
        }
    }

    #[test]
    fn the_query_names_the_range_and_the_instance() {
        let (q, errors) = query(&[]);
        assert_eq!((q.range, errors), (Range::Last(Preset::Hour1), vec![]));
        assert_eq!(q.refresh(), Some(Duration::from_secs(4)));
        let (q, _) = query(&[("range", "15m"), ("instance", "web_2")]);
        assert_eq!(q.range, Range::Last(Preset::Minutes15));
        assert_eq!(q.window(), Window::Last { seconds: 900 });
        assert_eq!(
            q.with_preset("/scale-sets/web/monitoring", Preset::Days7),
            "/scale-sets/web/monitoring?range=7d&instance=web_2"
        );
        let (q, errors) = query(&[
            ("range", "custom"),
            ("from", "2027-01-15T08:00"),
            ("to", "2027-01-15T09:30"),
        ]);
        assert_eq!(errors, vec![]);
        let from: DateTime<Utc> = "2027-01-15T08:00:00Z".parse().unwrap();
        let to: DateTime<Utc> = "2027-01-15T09:30:00Z".parse().unwrap();
        assert_eq!(q.range, Range::Between { from, to });
        assert_eq!(q.refresh(), None);
        assert_eq!(
            q.with_instance("/m", Some("web_1")),
            "/m?range=custom&from=2027-01-15T08%3A00&to=2027-01-15T09%3A30&instance=web_1"
        );
        assert_eq!(q.with_instance("/m", Some("")), q.href("/m"));
        let (q, errors) = query(&[
            ("range", "custom"),
            ("from", "2027-01-15T10:00"),
            ("to", "2027-01-15T09:00"),
        ]);
        assert_eq!(q.range, Range::Last(DEFAULT_PRESET));
        assert_eq!(errors[0].field, "to");
        let (_, errors) = query(&[("range", "custom"), ("from", "yesterday")]);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["from", "to"]);
        let (_, errors) = query(&[("range", "2w")]);
        assert_eq!(errors[0].field, "range");
    }

    fn answer() -> MetricsAnswer {
        let points = |v: f64| {
            vec![
                Point::of(at(0), [v - 10.0, v + 10.0]).unwrap(),
                Point::single(at(10), v),
            ]
        };
        MetricsAnswer {
            scale_set: "web".into(),
            from: at(-100),
            to: at(20),
            step_seconds: 10,
            series: vec![
                Series {
                    metric: Metric::CpuPercent,
                    unit: "%".into(),
                    instance: None,
                    points: points(50.0),
                },
                Series {
                    metric: Metric::RequestsPerSecond,
                    unit: "req/s".into(),
                    instance: None,
                    points: points(100.0),
                },
                Series {
                    metric: Metric::DemandRequestsPerSecond,
                    unit: "req/s".into(),
                    instance: None,
                    points: vec![],
                },
            ],
        }
    }

    #[test]
    fn charts_take_their_lines_from_the_answer() {
        let data = chart_data(&CPU, &answer(), vec![], vec![]);
        assert_eq!(data.lines.len(), 1);
        assert_eq!(data.lines[0].points, vec![(at(0), 50.0), (at(10), 50.0)]);
        assert_eq!(data.lines[0].band[0], (at(0), 40.0, 60.0));
        // No demand: its line is left out.
        let data = chart_data(&REQUESTS, &answer(), vec![], vec![]);
        let labels: Vec<&str> = data.lines.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["served"]);
        // Nothing at all: the first line stays, empty.
        let data = chart_data(&SET_CHARTS[1], &answer(), vec![], vec![]);
        assert_eq!((data.lines.len(), data.point_count()), (1, 0));
        assert_eq!(metrics_of(&SET_CHARTS).len(), 17);
        let per_instance = metrics_of(&instance_charts());
        assert!(per_instance.contains(&Metric::CpuPercent));
        assert!(
            per_instance
                .iter()
                .all(|m| Metric::PER_INSTANCE.contains(m))
        );
        assert_eq!(latest(&answer(), Metric::CpuPercent), Some(50.0));
    }

    fn setting() -> AutoscaleSetting {
        serde_json::from_value(json!({"enabled": true, "profiles": [{
            "name": "default", "capacity": {"minimum": 1, "maximum": 10, "default": 2},
            "rules": [
                {"metric":"cpu_percent","statistic":"average","time_grain_seconds":60,"time_window_seconds":300,
                 "time_aggregation":"average","operator":"greater_than","threshold":70,"direction":"increase",
                 "type":"change_count","value":1,"cooldown_seconds":300},
                {"metric":"cpu_percent","statistic":"average","time_grain_seconds":60,"time_window_seconds":600,
                 "time_aggregation":"average","operator":"less_than","threshold":30,"direction":"decrease",
                 "type":"change_count","value":1,"cooldown_seconds":300}],
            "target_tracking": {"metric": "requests_per_second", "target": 50}
        }]}))
        .unwrap()
    }

    #[test]
    fn thresholds_of_the_profile_that_applies() {
        let s = setting();
        let lines = thresholds(Some(&s), Metric::CpuPercent, at(0), 3);
        let labels: Vec<&str> = lines.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["scale out > 70 %", "scale in < 30 %"]);
        assert_eq!(lines[0].kind, ThresholdKind::Out);
        let target = thresholds(Some(&s), Metric::RequestsPerSecond, at(0), 3);
        assert_eq!(target[0].value, 150.0);
        assert_eq!(
            target[0].label,
            "target 50 req/s per instance × 3 = 150 req/s"
        );
        let mut off = s.clone();
        off.enabled = false;
        assert!(thresholds(Some(&off), Metric::CpuPercent, at(0), 3).is_empty());
        assert!(thresholds(None, Metric::CpuPercent, at(0), 3).is_empty());
    }

    #[test]
    fn scale_actions_become_markers() {
        let entry = |id, secs, old, new| Activity {
            id,
            operation: "autoscale.scale".into(),
            actor: "system:autoscale".into(),
            scale_set: Some("web".into()),
            target: "web".into(),
            started_at: at(secs),
            ended_at: None,
            duration_ms: None,
            result: ActivityResult::Succeeded,
            error: None,
            details: json!({"old_capacity": old, "new_capacity": new, "operation": "scale_out"}),
            replica: None,
            lease_generation: None,
        };
        let found = markers(
            &[entry(3, 15, 5, 4), entry(2, 5, 3, 5), entry(1, -500, 1, 3)],
            at(-100),
            at(20),
        );
        assert_eq!(
            found,
            vec![
                Marker {
                    at: at(5),
                    label: "+2 (3 → 5)".into(),
                    out: true
                },
                Marker {
                    at: at(15),
                    label: "−1 (5 → 4)".into(),
                    out: false
                },
            ]
        );
        let mut odd = entry(4, 0, 1, 2);
        odd.details = json!({});
        assert_eq!(marker(&odd), None);
    }
}
