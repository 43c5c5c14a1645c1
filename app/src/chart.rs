//! The plain logic of the portal's line charts ([`crate::components::chart::Chart`]): what
//! a chart shows ([`ChartData`]: lines with an optional min–max band, threshold lines and
//! markers on the time axis), the axes (round value ticks, time ticks on round minutes or
//! hours), the SVG path data, and values written with their unit.
//!
//! Everything here is deterministic — times are written in UTC — so the server's rendering
//! and the browser's agree when the page hydrates. The chart draws in a fixed coordinate
//! space ([`WIDTH`] × [`HEIGHT`]) that the SVG's `viewBox` scales to the page.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use flotilla_domain::metrics::Metric;

/// The width of the chart's coordinate space.
pub const WIDTH: f64 = 720.0;
/// The height of the chart's coordinate space.
pub const HEIGHT: f64 = 200.0;
/// Room for the value ticks on the left.
pub const LEFT: f64 = 64.0;
/// Room on the right of the plot.
pub const RIGHT: f64 = 8.0;
/// Room above the plot for the markers' labels.
pub const TOP: f64 = 16.0;
/// Room below the plot for the time ticks.
pub const BOTTOM: f64 = 22.0;

/// How a chart writes its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Percent,
    BytesPerSecond,
    RequestsPerSecond,
    Milliseconds,
    Instances,
    Connections,
}

impl Unit {
    /// The unit of `metric`, from the unit the domain gives it.
    pub fn of(metric: Metric) -> Unit {
        match metric.unit() {
            "%" => Unit::Percent,
            "B/s" => Unit::BytesPerSecond,
            "req/s" => Unit::RequestsPerSecond,
            "ms" => Unit::Milliseconds,
            "connections" => Unit::Connections,
            _ => Unit::Instances,
        }
    }

    /// A value as a legend or a tooltip writes it: `42.5 %`, `1.2 MB/s`, `150 req/s`,
    /// `12.3 ms`, `3`.
    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Percent => format!("{} %", plain(value)),
            Unit::BytesPerSecond => format!("{}B/s", si(value, 1)),
            Unit::RequestsPerSecond => format!("{} req/s", plain(value)),
            Unit::Milliseconds => format!("{} ms", plain(value)),
            Unit::Instances => plain(value),
            Unit::Connections => format!("{} connections", plain(value)),
        }
    }

    /// A value as the value axis writes it, short: `50 %`, `1.5 MB/s`, `2K`, `20 ms`.
    pub fn tick(self, value: f64) -> String {
        match self {
            Unit::Percent => format!("{} %", trim(value)),
            Unit::BytesPerSecond => format!("{}B/s", si(value, 0)),
            Unit::Milliseconds => format!("{} ms", trim(value)),
            _ if value >= 1000.0 => si(value, 0).trim_end().to_string(),
            _ => trim(value),
        }
    }

    /// The least top of the value axis: percentages show 0–100 % until they exceed it.
    fn least_top(self) -> f64 {
        match self {
            Unit::Percent => 100.0,
            _ => 1.0,
        }
    }

    /// Whether ticks are whole numbers only (instance counts).
    fn whole(self) -> bool {
        matches!(self, Unit::Instances | Unit::Connections)
    }
}

/// `1.2 K`, `3.4 M`, `12 ` (with the space before the unit), with `decimals` below 10.
fn si(value: f64, decimals: usize) -> String {
    const PREFIXES: [(f64, &str); 4] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")];
    for (scale, prefix) in PREFIXES {
        if value.abs() >= scale {
            let scaled = value / scale;
            return if scaled.abs() < 10.0 && decimals > 0 {
                format!("{scaled:.decimals$} {prefix}")
            } else if scaled.abs() < 10.0 {
                format!("{} {prefix}", trim(scaled))
            } else {
                format!("{scaled:.0} {prefix}")
            };
        }
    }
    format!("{} ", plain(value))
}

/// A number without trailing zeros, at most two decimals: `3`, `2.5`, `0.25`.
fn trim(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// A measured value: one decimal below 100, none above: `4.2`, `150`.
pub fn plain(value: f64) -> String {
    if value.abs() >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// One line of a chart: its points, oldest first, and optionally the minimum and maximum
/// around each point (drawn as a band).
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub label: String,
    pub points: Vec<(DateTime<Utc>, f64)>,
    /// `(at, minimum, maximum)`, oldest first; empty for no band.
    pub band: Vec<(DateTime<Utc>, f64, f64)>,
}

/// What a threshold line means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdKind {
    /// A scale-out rule's threshold.
    Out,
    /// A scale-in rule's threshold.
    In,
    /// A target-tracking target.
    Target,
}

impl ThresholdKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdKind::Out => "out",
            ThresholdKind::In => "in",
            ThresholdKind::Target => "target",
        }
    }
}

/// A horizontal line across the plot: `scale out > 70 %`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub label: String,
    pub value: f64,
    pub kind: ThresholdKind,
}

/// A vertical line on the time axis: a scale action, `+2 (3 → 5)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub at: DateTime<Utc>,
    pub label: String,
    /// A scale-out (else a scale-in).
    pub out: bool,
}

/// Everything one chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartData {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub lines: Vec<Line>,
    pub thresholds: Vec<Threshold>,
    pub markers: Vec<Marker>,
}

impl ChartData {
    /// The newest point of any line.
    pub fn last_at(&self) -> Option<DateTime<Utc>> {
        self.lines
            .iter()
            .filter_map(|l| l.points.last().map(|p| p.0))
            .max()
    }

    /// How many points the lines hold together.
    pub fn point_count(&self) -> usize {
        self.lines.iter().map(|l| l.points.len()).sum()
    }

    /// The largest value drawn: points, bands and thresholds.
    fn largest(&self) -> f64 {
        let points = self.lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
        let bands = self.lines.iter().flat_map(|l| l.band.iter().map(|b| b.2));
        let thresholds = self.thresholds.iter().map(|t| t.value);
        points
            .chain(bands)
            .chain(thresholds)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
    }

    /// The chart's scales for `unit`.
    pub fn frame(&self, unit: Unit) -> Frame {
        let (top, ticks) = value_axis(self.largest(), unit);
        Frame {
            from_ms: self.from.timestamp_millis(),
            to_ms: self
                .to
                .timestamp_millis()
                .max(self.from.timestamp_millis() + 1),
            top,
            ticks,
        }
    }

    /// A sentence for screen readers: each line's newest value.
    pub fn summary(&self, title: &str, unit: Unit) -> String {
        let latest: Vec<String> = self
            .lines
            .iter()
            .map(|l| match l.points.last() {
                Some((_, v)) => format!("{} {}", l.label, unit.format(*v)),
                None => format!("{} no data", l.label),
            })
            .collect();
        if latest.is_empty() {
            format!("{title}: no data")
        } else {
            format!("{title}, latest: {}", latest.join(", "))
        }
    }

    /// Each line's figures over the range, for the chart's table.
    pub fn figures(&self) -> Vec<LineFigures> {
        self.lines
            .iter()
            .map(|l| {
                let values = || l.points.iter().map(|p| p.1).filter(|v| v.is_finite());
                let count = values().count();
                LineFigures {
                    label: l.label.clone(),
                    latest: l.points.last().map(|p| p.1),
                    lowest: values().reduce(f64::min),
                    mean: (count > 0).then(|| values().sum::<f64>() / count as f64),
                    highest: values().reduce(f64::max),
                }
            })
            .collect()
    }

    /// Every point as a table: a row per time any line has a point, oldest first, and a cell
    /// per line — its value written in `unit`, with the band's range where it has one, or
    /// `—` where the line has no point at that time.
    pub fn point_rows(&self, unit: Unit) -> Vec<PointRow> {
        let mut rows: BTreeMap<DateTime<Utc>, Vec<String>> = BTreeMap::new();
        let width = self.lines.len();
        for (i, line) in self.lines.iter().enumerate() {
            let bands: HashMap<DateTime<Utc>, (f64, f64)> = line
                .band
                .iter()
                .map(|(at, low, high)| (*at, (*low, *high)))
                .collect();
            for (at, value) in &line.points {
                let cell = match bands.get(at) {
                    Some((low, high)) => format!(
                        "{} ({} to {})",
                        unit.format(*value),
                        unit.format(*low),
                        unit.format(*high)
                    ),
                    None => unit.format(*value),
                };
                rows.entry(*at).or_insert_with(|| vec!["—".into(); width])[i] = cell;
            }
        }
        rows.into_iter()
            .map(|(at, cells)| PointRow { at, cells })
            .collect()
    }
}

/// One line's figures over a chart's range: the newest, lowest, mean and highest value
/// (`None` without points).
#[derive(Debug, Clone, PartialEq)]
pub struct LineFigures {
    pub label: String,
    pub latest: Option<f64>,
    pub lowest: Option<f64>,
    pub mean: Option<f64>,
    pub highest: Option<f64>,
}

/// A row of a chart's table of points: a time and each line's value then, written out.
#[derive(Debug, Clone, PartialEq)]
pub struct PointRow {
    pub at: DateTime<Utc>,
    pub cells: Vec<String>,
}

/// The chart's scales: times from `from_ms` to `to_ms` across the plot, values from 0 to
/// `top` up it.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub from_ms: i64,
    pub to_ms: i64,
    pub top: f64,
    /// The value ticks, 0 first.
    pub ticks: Vec<f64>,
}

impl Frame {
    pub fn x(&self, at: DateTime<Utc>) -> f64 {
        self.x_ms(at.timestamp_millis())
    }

    fn x_ms(&self, ms: i64) -> f64 {
        let share = (ms - self.from_ms) as f64 / (self.to_ms - self.from_ms) as f64;
        LEFT + share * (WIDTH - LEFT - RIGHT)
    }

    pub fn y(&self, value: f64) -> f64 {
        let share = (value / self.top).clamp(0.0, 1.05);
        HEIGHT - BOTTOM - share * (HEIGHT - TOP - BOTTOM)
    }

    /// The instant under `x` (in the chart's coordinates).
    pub fn at(&self, x: f64) -> DateTime<Utc> {
        let share = ((x - LEFT) / (WIDTH - LEFT - RIGHT)).clamp(0.0, 1.0);
        let ms = self.from_ms + (share * (self.to_ms - self.from_ms) as f64) as i64;
        DateTime::from_timestamp_millis(ms).unwrap_or_default()
    }
}

/// The top of the value axis and its ticks: round steps (1, 2, 2.5, 5 × 10ⁿ), about four
/// of them, reaching the largest value.
pub fn value_axis(largest: f64, unit: Unit) -> (f64, Vec<f64>) {
    let wanted = largest.max(unit.least_top());
    let mut step = nice_step(wanted / 4.0);
    if unit.whole() {
        step = step.max(1.0).round();
    }
    let count = (wanted / step).ceil().max(1.0) as usize;
    let top = step * count as f64;
    let ticks = (0..=count).map(|i| step * i as f64).collect();
    (top, ticks)
}

/// The round step at or above `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|n| norm <= *n + 1e-9)
        .unwrap_or(10.0);
    nice * magnitude
}

/// Steps the time axis may take, in seconds.
const TIME_STEPS: [i64; 14] = [
    10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
];

/// The time ticks between `from` and `to`: at most `most` of them, on multiples of a round
/// step (so they stay put while the chart slides), with their labels in UTC (`14:05`, or
/// `Mon 05` for steps of a day).
pub fn time_ticks(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    most: usize,
) -> Vec<(DateTime<Utc>, String)> {
    let span = (to - from).num_seconds().max(1);
    let step = TIME_STEPS
        .into_iter()
        .find(|s| span / s < most as i64)
        .unwrap_or_else(|| {
            let days = 86_400 * most as i64;
            86_400 * ((span + days - 1) / days).max(1)
        });
    let first = from.timestamp().div_euclid(step) * step + step;
    (0..)
        .map(|i| first + i * step)
        .take_while(|t| *t < to.timestamp())
        .filter_map(|t| DateTime::from_timestamp(t, 0))
        .map(|t| {
            let label = if step >= 86_400 {
                t.format("%a %d").to_string()
            } else if step < 60 {
                t.format("%H:%M:%S").to_string()
            } else {
                t.format("%H:%M").to_string()
            };
            (t, label)
        })
        .collect()
}

/// Points further apart than this break the line (the collector missed ticks, or the set
/// had no instance): two and a half times the usual spacing of `times`.
pub fn gap_ms(times: impl Iterator<Item = DateTime<Utc>>) -> i64 {
    let times: Vec<i64> = times.map(|t| t.timestamp_millis()).collect();
    let mut spacings: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    if spacings.is_empty() {
        return i64::MAX;
    }
    spacings.sort_unstable();
    (spacings[spacings.len() / 2].max(1000) * 5) / 2
}

/// The SVG path of a line through `points`, broken where they are further apart than
/// `gap_ms`. A lone point is drawn as a short dash.
pub fn line_path(frame: &Frame, points: &[(DateTime<Utc>, f64)], gap_ms: i64) -> String {
    let mut d = String::new();
    let mut previous: Option<i64> = None;
    let mut run = 0;
    for (at, value) in points.iter().filter(|p| p.1.is_finite()) {
        let ms = at.timestamp_millis();
        let (x, y) = (frame.x(*at), frame.y(*value));
        let joined = previous.is_some_and(|p| ms - p <= gap_ms);
        if !joined {
            close_lone(&mut d, run);
            run = 0;
        }
        d.push_str(&format!("{}{x:.1} {y:.1}", if joined { "L" } else { "M" }));
        run += 1;
        previous = Some(ms);
    }
    close_lone(&mut d, run);
    d
}

/// A run of one point gets a short horizontal stroke so it shows.
fn close_lone(d: &mut String, run: usize) {
    if run == 1 {
        d.push_str("h2");
    }
}

/// The SVG path of a band between each point's minimum and maximum, one closed shape per
/// run of points no further apart than `gap_ms`.
pub fn band_path(frame: &Frame, band: &[(DateTime<Utc>, f64, f64)], gap_ms: i64) -> String {
    let mut d = String::new();
    let mut run: Vec<&(DateTime<Utc>, f64, f64)> = Vec::new();
    let mut flush = |run: &mut Vec<&(DateTime<Utc>, f64, f64)>| {
        if run.len() > 1 {
            for (i, (at, _, max)) in run.iter().enumerate() {
                let cmd = if i == 0 { "M" } else { "L" };
                d.push_str(&format!("{cmd}{:.1} {:.1}", frame.x(*at), frame.y(*max)));
            }
            for (at, min, _) in run.iter().rev() {
                d.push_str(&format!("L{:.1} {:.1}", frame.x(*at), frame.y(*min)));
            }
            d.push('Z');
        }
        run.clear();
    };
    for point in band.iter().filter(|b| b.1.is_finite() && b.2.is_finite()) {
        if run
            .last()
            .is_some_and(|last| (point.0 - last.0).num_milliseconds() > gap_ms)
        {
            flush(&mut run);
        }
        run.push(point);
    }
    flush(&mut run);
    d
}

/// The index of the point of `points` nearest to `at`.
pub fn nearest(points: &[(DateTime<Utc>, f64)], at: DateTime<Utc>) -> Option<usize> {
    let after = points.partition_point(|p| p.0 < at);
    let candidates = [
        after.checked_sub(1),
        (after < points.len()).then_some(after),
    ];
    candidates
        .into_iter()
        .flatten()
        .min_by_key(|i| (points[*i].0 - at).num_milliseconds().abs())
}

/// `+2 (3 → 5)` or `−1 (5 → 4)`.
pub fn change_label(old: u32, new: u32) -> String {
    let delta = i64::from(new) - i64::from(old);
    if delta >= 0 {
        format!("+{delta} ({old} → {new})")
    } else {
        format!("−{} ({old} → {new})", -delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn units_follow_the_metric() {
        assert_eq!(Unit::of(Metric::CpuPercent), Unit::Percent);
        assert_eq!(
            Unit::of(Metric::DiskReadBytesPerSecond),
            Unit::BytesPerSecond
        );
        assert_eq!(
            Unit::of(Metric::DemandRequestsPerSecond),
            Unit::RequestsPerSecond
        );
        assert_eq!(Unit::of(Metric::LatencyP99Ms), Unit::Milliseconds);
        assert_eq!(Unit::of(Metric::InstancesHealthy), Unit::Instances);
        assert_eq!(Unit::of(Metric::ActiveConnections), Unit::Connections);
    }

    #[test]
    fn values_are_written_with_their_unit() {
        let table = [
            (Unit::Percent, 42.46, "42.5 %"),
            (Unit::BytesPerSecond, 512.0, "512 B/s"),
            (Unit::BytesPerSecond, 1_234.0, "1.2 KB/s"),
            (Unit::BytesPerSecond, 34_600_000.0, "35 MB/s"),
            (Unit::BytesPerSecond, 2_100_000_000.0, "2.1 GB/s"),
            (Unit::RequestsPerSecond, 150.2, "150 req/s"),
            (Unit::RequestsPerSecond, 4.25, "4.2 req/s"),
            (Unit::Milliseconds, 12.34, "12.3 ms"),
            (Unit::Instances, 3.0, "3"),
            (Unit::Instances, 2.5, "2.5"),
        ];
        for (unit, value, want) in table {
            assert_eq!(unit.format(value), want, "{unit:?} {value}");
        }
        assert_eq!(Unit::Percent.tick(50.0), "50 %");
        assert_eq!(Unit::BytesPerSecond.tick(1_500_000.0), "1.5 MB/s");
        assert_eq!(Unit::RequestsPerSecond.tick(2000.0), "2 K");
        assert_eq!(Unit::RequestsPerSecond.tick(25.0), "25");
        assert_eq!(Unit::Milliseconds.tick(2.5), "2.5 ms");
    }

    #[test]
    fn the_value_axis_is_round_and_reaches_the_largest_value() {
        assert_eq!(
            value_axis(42.0, Unit::Percent),
            (100.0, vec![0.0, 25.0, 50.0, 75.0, 100.0])
        );
        assert_eq!(value_axis(130.0, Unit::Percent).0, 150.0);
        assert_eq!(value_axis(0.0, Unit::Instances), (1.0, vec![0.0, 1.0]));
        assert_eq!(
            value_axis(5.0, Unit::Instances),
            (6.0, vec![0.0, 2.0, 4.0, 6.0])
        );
        let (top, ticks) = value_axis(1234.0, Unit::RequestsPerSecond);
        assert_eq!(top, 1500.0);
        assert_eq!(ticks.len(), 4);
        assert_eq!(value_axis(3.0, Unit::Milliseconds).0, 3.0);
    }

    #[test]
    fn time_ticks_sit_on_round_steps() {
        // 15 minutes: every 5 minutes, on the minute.
        let from = at(0) + chrono::Duration::seconds(7);
        let ticks = time_ticks(from, from + chrono::Duration::minutes(15), 6);
        assert_eq!(ticks.len(), 3);
        assert!(ticks.iter().all(|(t, _)| t.timestamp() % 300 == 0));
        assert_eq!(ticks[0].1, ticks[0].0.format("%H:%M").to_string());
        // A week: one a day, named by day.
        let week = time_ticks(from, from + chrono::Duration::days(7), 8);
        assert!(week.len() >= 6 && week.len() <= 7, "{week:?}");
        assert!(week[0].1.len() == 6, "{}", week[0].1);
    }

    #[test]
    fn lines_break_at_gaps_and_lone_points_show() {
        let data = ChartData {
            from: at(0),
            to: at(100),
            lines: vec![],
            thresholds: vec![],
            markers: vec![],
        };
        let frame = data.frame(Unit::Percent);
        assert_eq!(frame.x(at(0)), LEFT);
        assert_eq!(frame.x(at(100)), WIDTH - RIGHT);
        assert_eq!(frame.y(0.0), HEIGHT - BOTTOM);
        assert_eq!(frame.y(100.0), TOP);
        assert_eq!(frame.at(frame.x(at(50))), at(50));
        let points: Vec<(DateTime<Utc>, f64)> = [(0, 10.0), (10, 20.0), (20, 30.0), (80, 40.0)]
            .into_iter()
            .map(|(s, v)| (at(s), v))
            .collect();
        let gap = gap_ms(points.iter().map(|p| p.0));
        assert_eq!(gap, 25_000);
        let d = line_path(&frame, &points, gap);
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert_eq!(d.matches('L').count(), 2, "{d}");
        assert!(d.ends_with("h2"), "the lone last point shows: {d}");
        let band: Vec<_> = points.iter().map(|(t, v)| (*t, v - 5.0, v + 5.0)).collect();
        let b = band_path(&frame, &band, gap);
        assert_eq!(b.matches('Z').count(), 1, "a lone point has no band: {b}");
        assert_eq!(line_path(&frame, &[], gap), "");
    }

    #[test]
    fn the_nearest_point_and_the_summary() {
        let points = vec![(at(0), 1.0), (at(10), 2.0), (at(20), 3.0)];
        assert_eq!(nearest(&points, at(-5)), Some(0));
        assert_eq!(nearest(&points, at(6)), Some(1));
        assert_eq!(nearest(&points, at(14)), Some(1));
        assert_eq!(nearest(&points, at(99)), Some(2));
        assert_eq!(nearest(&[], at(0)), None);
        let data = ChartData {
            from: at(0),
            to: at(20),
            lines: vec![Line {
                label: "average".into(),
                points,
                band: vec![],
            }],
            thresholds: vec![],
            markers: vec![],
        };
        assert_eq!(data.last_at(), Some(at(20)));
        assert_eq!(data.point_count(), 3);
        assert_eq!(
            data.summary("CPU", Unit::Percent),
            "CPU, latest: average 3 %"
        );
    }

    #[test]
    fn the_table_has_a_row_per_time_and_a_cell_per_line() {
        let data = ChartData {
            from: at(0),
            to: at(30),
            lines: vec![
                Line {
                    label: "average".into(),
                    points: vec![(at(0), 10.0), (at(10), 30.0), (at(20), 20.0)],
                    band: vec![(at(0), 5.0, 15.0), (at(10), 25.0, 35.0)],
                },
                Line {
                    label: "draft".into(),
                    points: vec![(at(10), 4.0), (at(30), 6.0)],
                    band: vec![],
                },
                Line {
                    label: "empty".into(),
                    points: vec![],
                    band: vec![],
                },
            ],
            thresholds: vec![],
            markers: vec![],
        };
        let rows = data.point_rows(Unit::Percent);
        let cells: Vec<(DateTime<Utc>, Vec<&str>)> = rows
            .iter()
            .map(|r| (r.at, r.cells.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            cells,
            vec![
                (at(0), vec!["10 % (5 % to 15 %)", "—", "—"]),
                (at(10), vec!["30 % (25 % to 35 %)", "4 %", "—"]),
                (at(20), vec!["20 %", "—", "—"]),
                (at(30), vec!["—", "6 %", "—"]),
            ]
        );
        let figures = data.figures();
        assert_eq!(
            figures[0],
            LineFigures {
                label: "average".into(),
                latest: Some(20.0),
                lowest: Some(10.0),
                mean: Some(20.0),
                highest: Some(30.0),
            }
        );
        assert_eq!(figures[1].mean, Some(5.0));
        assert_eq!((figures[2].latest, figures[2].mean), (None, None));
    }

    #[test]
    fn scale_changes_read_as_deltas() {
        assert_eq!(change_label(3, 5), "+2 (3 → 5)");
        assert_eq!(change_label(5, 4), "−1 (5 → 4)");
    }
}
