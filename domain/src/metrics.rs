//! Metrics: the names Flotilla collects, the aggregate point every series is made of, and
//! the re-bucketing every reader (query API, roll-ups, autoscale rules) shares.
//!
//! A [`Point`] is the aggregate of the values seen in one interval — average, minimum,
//! maximum, total and count — so points merge exactly: the average of a merged point is
//! `Σtotal / Σcount`, not an average of averages. A scale set's per-instance metrics (CPU,
//! memory, network, disk) are collected as one point per tick over its instances; its load
//! balancer and state metrics as single-valued points (`count` 1).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Every metric Flotilla collects, with its unit and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Per instance: CPU use (all vCPUs) in percent.
    CpuPercent,
    /// Per instance: memory in use in percent.
    MemoryPercent,
    NetworkInBytesPerSecond,
    NetworkOutBytesPerSecond,
    DiskReadBytesPerSecond,
    DiskWriteBytesPerSecond,
    /// Per scale set: requests its load balancer frontends answered per second.
    RequestsPerSecond,
    /// Requests answered with a 5xx status (or not answered) per second.
    ErrorsPerSecond,
    LatencyP50Ms,
    LatencyP95Ms,
    LatencyP99Ms,
    /// Client connections open at the frontends.
    ActiveConnections,
    /// The mock's synthetic demand in requests per second (mock only).
    DemandRequestsPerSecond,
    /// The desired instance count.
    Capacity,
    InstancesRunning,
    InstancesHealthy,
    InstancesUnhealthy,
    InstancesInTransition,
}

impl Metric {
    pub const ALL: [Metric; 18] = [
        Metric::CpuPercent,
        Metric::MemoryPercent,
        Metric::NetworkInBytesPerSecond,
        Metric::NetworkOutBytesPerSecond,
        Metric::DiskReadBytesPerSecond,
        Metric::DiskWriteBytesPerSecond,
        Metric::RequestsPerSecond,
        Metric::ErrorsPerSecond,
        Metric::LatencyP50Ms,
        Metric::LatencyP95Ms,
        Metric::LatencyP99Ms,
        Metric::ActiveConnections,
        Metric::DemandRequestsPerSecond,
        Metric::Capacity,
        Metric::InstancesRunning,
        Metric::InstancesHealthy,
        Metric::InstancesUnhealthy,
        Metric::InstancesInTransition,
    ];

    /// The metrics measured on each instance, first in [`Metric::ALL`] (the others are the
    /// scale set's).
    pub const PER_INSTANCE: &'static [Metric] = Metric::ALL.split_at(6).0;

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::CpuPercent => "cpu_percent",
            Metric::MemoryPercent => "memory_percent",
            Metric::NetworkInBytesPerSecond => "network_in_bytes_per_second",
            Metric::NetworkOutBytesPerSecond => "network_out_bytes_per_second",
            Metric::DiskReadBytesPerSecond => "disk_read_bytes_per_second",
            Metric::DiskWriteBytesPerSecond => "disk_write_bytes_per_second",
            Metric::RequestsPerSecond => "requests_per_second",
            Metric::ErrorsPerSecond => "errors_per_second",
            Metric::LatencyP50Ms => "latency_p50_ms",
            Metric::LatencyP95Ms => "latency_p95_ms",
            Metric::LatencyP99Ms => "latency_p99_ms",
            Metric::ActiveConnections => "active_connections",
            Metric::DemandRequestsPerSecond => "demand_requests_per_second",
            Metric::Capacity => "capacity",
            Metric::InstancesRunning => "instances_running",
            Metric::InstancesHealthy => "instances_healthy",
            Metric::InstancesUnhealthy => "instances_unhealthy",
            Metric::InstancesInTransition => "instances_in_transition",
        }
    }

    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// The unit, as charts label it.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::CpuPercent | Metric::MemoryPercent => "%",
            Metric::NetworkInBytesPerSecond
            | Metric::NetworkOutBytesPerSecond
            | Metric::DiskReadBytesPerSecond
            | Metric::DiskWriteBytesPerSecond => "B/s",
            Metric::RequestsPerSecond
            | Metric::ErrorsPerSecond
            | Metric::DemandRequestsPerSecond => "req/s",
            Metric::LatencyP50Ms | Metric::LatencyP95Ms | Metric::LatencyP99Ms => "ms",
            Metric::ActiveConnections => "connections",
            Metric::Capacity
            | Metric::InstancesRunning
            | Metric::InstancesHealthy
            | Metric::InstancesUnhealthy
            | Metric::InstancesInTransition => "instances",
        }
    }

    /// Whether the scale set's value is a total over its instances (requests, bytes) rather
    /// than an average (CPU, memory). Target tracking divides totals by the instance count.
    pub fn is_total(self) -> bool {
        !matches!(self, Metric::CpuPercent | Metric::MemoryPercent)
            && !matches!(
                self,
                Metric::LatencyP50Ms | Metric::LatencyP95Ms | Metric::LatencyP99Ms
            )
    }

    pub fn names() -> String {
        Metric::ALL
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The aggregate of the values of one metric seen in one interval starting at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Point {
    pub at: DateTime<Utc>,
    pub average: f64,
    pub minimum: f64,
    pub maximum: f64,
    pub total: f64,
    pub count: u32,
}

impl Point {
    /// One value.
    pub fn single(at: DateTime<Utc>, value: f64) -> Point {
        Point {
            at,
            average: value,
            minimum: value,
            maximum: value,
            total: value,
            count: 1,
        }
    }

    /// The aggregate of `values` (`None` when there are none).
    pub fn of(at: DateTime<Utc>, values: impl IntoIterator<Item = f64>) -> Option<Point> {
        let mut point: Option<Point> = None;
        for value in values {
            let next = Point::single(at, value);
            point = Some(match point {
                None => next,
                Some(p) => p.merged(&next),
            });
        }
        point
    }

    /// The aggregate of both (keeping this point's time).
    pub fn merged(&self, other: &Point) -> Point {
        let count = self.count + other.count;
        let total = self.total + other.total;
        Point {
            at: self.at,
            average: if count == 0 {
                0.0
            } else {
                (self.average * f64::from(self.count) + other.average * f64::from(other.count))
                    / f64::from(count)
            },
            minimum: self.minimum.min(other.minimum),
            maximum: self.maximum.max(other.maximum),
            total,
            count,
        }
    }
}

/// Merges time-ordered `points` into buckets of `step` starting at `from` (each bucket's
/// point is at the bucket's start; empty buckets are left out). Points before `from` or at
/// or after `to` are dropped.
pub fn rebucket(
    points: &[Point],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step: chrono::Duration,
) -> Vec<Point> {
    let step_ms = step.num_milliseconds().max(1);
    let mut out: Vec<Point> = Vec::new();
    for point in points.iter().filter(|p| p.at >= from && p.at < to) {
        let index = (point.at - from).num_milliseconds() / step_ms;
        let start = from + chrono::Duration::milliseconds(index * step_ms);
        match out.last_mut() {
            Some(last) if last.at == start => *last = last.merged(point),
            _ => out.push(Point {
                at: start,
                ..*point
            }),
        }
    }
    out
}

/// One minute of one metric of one scale set, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    pub scale_set: String,
    pub metric: Metric,
    /// `point.at` is the start of the minute.
    pub point: Point,
}

/// One minute of one scale set's collector ticks, as the store keeps them (a day): one line
/// per tick (see the collector for the format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteTicks {
    pub scale_set: String,
    /// The start of the minute.
    pub minute: DateTime<Utc>,
    pub ticks: String,
}

/// One series of a query answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Series {
    pub metric: Metric,
    pub unit: String,
    /// The instance this series is about (`None`: the scale set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub points: Vec<Point>,
}

/// The answer of `GET /scale-sets/{name}/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricsAnswer {
    pub scale_set: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub step_seconds: u32,
    pub series: Vec<Series>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::seconds(secs)
    }

    #[test]
    fn names_round_trip() {
        for metric in Metric::ALL {
            assert_eq!(Metric::parse(metric.as_str()), Some(metric));
            let json = serde_json::to_string(&metric).unwrap();
            assert_eq!(json, format!("\"{}\"", metric.as_str()));
        }
        assert_eq!(Metric::parse("cpu"), None);
    }

    #[test]
    fn merged_points_are_exact() {
        let a = Point::of(at(0), [10.0, 20.0, 30.0]).unwrap();
        let b = Point::of(at(1), [100.0]).unwrap();
        let m = a.merged(&b);
        assert_eq!(m.count, 4);
        assert_eq!(m.total, 160.0);
        assert_eq!(m.average, 40.0);
        assert_eq!((m.minimum, m.maximum), (10.0, 100.0));
        assert_eq!(Point::of(at(0), []), None);
    }

    #[test]
    fn rebucketing_merges_by_step_and_skips_gaps() {
        let points: Vec<Point> = [0, 5, 10, 15, 40, 65]
            .into_iter()
            .map(|s| Point::single(at(s), s as f64))
            .collect();
        let out = rebucket(&points, at(0), at(60), chrono::Duration::seconds(20));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].at, at(0));
        assert_eq!(out[0].count, 4);
        assert_eq!(out[0].average, 7.5);
        assert_eq!(out[1].at, at(40));
        assert_eq!(out[1].total, 40.0);
    }
}
