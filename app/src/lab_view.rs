//! The plain logic of the autoscale lab on the Scaling tab: the load a what-if replays and
//! the backtest request it makes, a refusal in the draft's own field paths, settings
//! compared side by side ([`Comparison`]: the capacity chart, the score table, the
//! calibration in words), and a shadow setting's capacity beside the live one
//! ([`ShadowRead`]).
//!
//! Every run of a comparison replays the same load on the same simulated fleet, so the
//! ideal capacity (the fewest instances keeping CPU under the SLO) is the same for each: it
//! is drawn once.

use chrono::{DateTime, Utc};
use flotilla_domain::FieldError;
use flotilla_domain::autoscale::AutoscaleSetting;
use flotilla_domain::autoscale::backtest::{
    Answer, Calibration, Range, Request, Scores, SeriesPoint, Slo, Source,
};
use flotilla_domain::demand::Demand;
use serde::{Deserialize, Serialize};

use crate::chart::{ChartData, Line, Unit, plain};
use crate::format;
use crate::metrics_view::Preset;

/// How far back a history is replayed, or for how long a demand.
pub const SPANS: [Preset; 3] = [Preset::Hour1, Preset::Hours24, Preset::Days7];

/// What a what-if replays when nothing else is picked: the last day the set recorded.
pub const DEFAULT_LOAD: Load = Load::History(Preset::Hours24);

/// The load a what-if replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Load {
    /// What the set recorded over the last span, ending now.
    History(Preset),
    /// The set's synthetic demand (the mock's), from now on for the span.
    Demand(Preset),
}

impl Load {
    /// The loads offered: the history's spans, and the demand's when the set has one.
    pub fn choices(has_demand: bool) -> Vec<Load> {
        let mut loads: Vec<Load> = SPANS.into_iter().map(Load::History).collect();
        if has_demand {
            loads.extend(SPANS.into_iter().map(Load::Demand));
        }
        loads
    }

    /// The choice's value in a form (`history-24h`).
    pub fn slug(self) -> String {
        match self {
            Load::History(span) => format!("history-{}", span.slug()),
            Load::Demand(span) => format!("demand-{}", span.slug()),
        }
    }

    pub fn parse(slug: &str) -> Option<Load> {
        let (source, span) = slug.split_once('-')?;
        let span = Preset::parse(span).filter(|p| SPANS.contains(p))?;
        match source {
            "history" => Some(Load::History(span)),
            "demand" => Some(Load::Demand(span)),
            _ => None,
        }
    }

    /// `Recorded load, last 24 h`, `Synthetic demand, next 1 h`.
    pub fn label(self) -> String {
        match self {
            Load::History(span) => format!("Recorded load, last {}", span.label()),
            Load::Demand(span) => format!("Synthetic demand, next {}", span.label()),
        }
    }

    /// The backtest of `settings` over this load as of `now`: a history from no earlier
    /// than `created` (the set's creation: nothing is recorded before it), or the set's
    /// `demand` (refused, naming the `load` field, when the set has none).
    pub fn request(
        self,
        now: DateTime<Utc>,
        created: DateTime<Utc>,
        demand: Option<&Demand>,
        settings: Vec<AutoscaleSetting>,
    ) -> Result<Request, FieldError> {
        let (demand, history, duration_seconds) = match self {
            Load::History(span) => {
                let from = now - chrono::Duration::seconds(i64::from(span.seconds()));
                (
                    None,
                    Some(Range {
                        from: from.max(created),
                        to: now,
                    }),
                    None,
                )
            }
            Load::Demand(span) => {
                let demand = demand.cloned().ok_or_else(|| FieldError {
                    field: "load".into(),
                    message: "the scale set has no synthetic demand: set one, or replay its \
                              recorded load"
                        .into(),
                })?;
                (Some(demand), None, Some(span.seconds()))
            }
        };
        Ok(Request {
            demand,
            history,
            duration_seconds,
            settings: Some(settings),
            ..Request::default()
        })
    }
}

/// A backtest's refusal of several settings in the field paths of the one at `draft`, as
/// the editor names them (`settings[1].profiles[0].name` → `profiles[0].name`); another
/// setting's as `saved.…`; the request's own (`history.from`) unchanged.
pub fn draft_fields(fields: Vec<FieldError>, draft: usize) -> Vec<FieldError> {
    let own = format!("settings[{draft}].");
    fields
        .into_iter()
        .map(|e| {
            let field = match e.field.strip_prefix(&own) {
                Some(rest) => rest.to_string(),
                None => match e.field.strip_prefix("settings[") {
                    Some(rest) => match rest.split_once("].") {
                        Some((_, rest)) => format!("saved.{rest}"),
                        None => e.field,
                    },
                    None => e.field,
                },
            };
            FieldError {
                field,
                message: e.message,
            }
        })
        .collect()
}

/// One setting's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// `saved`, `draft`, `live`, `shadow`.
    pub label: String,
    pub scores: Scores,
    pub series: Vec<SeriesPoint>,
}

/// Settings compared over one load: a backtest's answer without its decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub runs: Vec<Run>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Evaluations per run.
    pub evaluations: u32,
    pub calibration: Calibration,
}

impl Comparison {
    /// `answer`'s results named by `labels`, in order.
    pub fn of(answer: Answer, labels: &[&str]) -> Self {
        Self {
            runs: answer
                .results
                .into_iter()
                .zip(labels)
                .map(|(r, label)| Run {
                    label: (*label).to_string(),
                    scores: r.scores,
                    series: r.series,
                })
                .collect(),
            from: answer.from,
            to: answer.to,
            evaluations: answer.evaluations,
            calibration: answer.calibration,
        }
    }

    /// The ideal capacity and each run's capacity, in instances.
    pub fn capacity_chart(&self) -> ChartData {
        let ideal = self.runs.first().map(|r| Line {
            label: "ideal".into(),
            points: r.series.iter().map(|p| (p.at, p.ideal_capacity)).collect(),
            band: vec![],
        });
        let runs = self.runs.iter().map(|r| Line {
            label: r.label.clone(),
            points: r.series.iter().map(|p| (p.at, p.capacity)).collect(),
            band: vec![],
        });
        self.chart(ideal.into_iter().chain(runs).collect())
    }

    /// The capacity chart's title: `Capacity: ideal, saved and draft`.
    pub fn capacity_title(&self) -> String {
        let mut names: Vec<&str> = vec!["ideal"];
        names.extend(self.runs.iter().map(|r| r.label.as_str()));
        let last = names.pop().unwrap_or_default();
        if names.is_empty() {
            format!("Capacity: {last}")
        } else {
            format!("Capacity: {} and {last}", names.join(", "))
        }
    }

    /// The load replayed, in requests per second.
    pub fn load_chart(&self) -> ChartData {
        let load = self.runs.first().map(|r| Line {
            label: "load".into(),
            points: r.series.iter().map(|p| (p.at, p.load)).collect(),
            band: vec![],
        });
        self.chart(load.into_iter().collect())
    }

    fn chart(&self, lines: Vec<Line>) -> ChartData {
        ChartData {
            from: self.from,
            to: self.to,
            lines,
            thresholds: vec![],
            markers: vec![],
        }
    }
}

/// One row of the score table: a score of every run, written with its unit.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    /// The score's name in the API (`jitter`).
    pub key: &'static str,
    pub label: &'static str,
    /// What it measures, in a few words.
    pub help: String,
    /// Each run's value, as is and as written.
    pub values: Vec<(f64, String)>,
    /// The run that does best, when one does better than every other.
    pub best: Option<usize>,
}

/// How a score is read, written and compared.
struct ScoreKind {
    key: &'static str,
    label: &'static str,
    help: &'static str,
    value: fn(&Scores) -> f64,
    write: fn(f64) -> String,
    /// How bad a value is: lower is better.
    badness: fn(f64) -> f64,
}

fn percent(v: f64) -> String {
    Unit::Percent.format(v)
}

fn lower(v: f64) -> f64 {
    v
}

const SCORES: [ScoreKind; 9] = [
    ScoreKind {
        key: "under_provisioning_accuracy",
        label: "Under-provisioning accuracy",
        help: "demand left unserved, on average",
        value: |s| s.under_provisioning_accuracy,
        write: percent,
        badness: lower,
    },
    ScoreKind {
        key: "over_provisioning_accuracy",
        label: "Over-provisioning accuracy",
        help: "capacity beyond the demand, on average",
        value: |s| s.over_provisioning_accuracy,
        write: percent,
        badness: lower,
    },
    ScoreKind {
        key: "under_provisioning_timeshare",
        label: "Under-provisioned time",
        help: "share of the time with too few instances serving",
        value: |s| s.under_provisioning_timeshare,
        write: percent,
        badness: lower,
    },
    ScoreKind {
        key: "over_provisioning_timeshare",
        label: "Over-provisioned time",
        help: "share of the time with more instances than needed",
        value: |s| s.over_provisioning_timeshare,
        write: percent,
        badness: lower,
    },
    ScoreKind {
        key: "jitter",
        label: "Jitter",
        help: "changes of capacity minus changes of demand (below 0: too few adaptations)",
        value: |s| s.jitter,
        write: |v| format!("{} per hour", plain(v)),
        badness: f64::abs,
    },
    ScoreKind {
        key: "instability",
        label: "Instability",
        help: "share of the time capacity and demand move apart",
        value: |s| s.instability,
        write: percent,
        badness: lower,
    },
    ScoreKind {
        key: "slo_violation_seconds",
        label: "SLO violation",
        help: "time above the SLO, or with nothing serving the load",
        value: |s| s.slo_violation_seconds,
        write: |v| format::duration_ms((v * 1000.0).round() as i64),
        badness: lower,
    },
    ScoreKind {
        key: "instance_hours",
        label: "Instance-hours",
        help: "the cost: every instance provisioned, booting ones too",
        value: |s| s.instance_hours,
        write: |v| format!("{v:.2} h"),
        badness: lower,
    },
    ScoreKind {
        key: "scale_actions",
        label: "Scale actions",
        help: "scale-outs and scale-ins taken",
        value: |s| f64::from(s.scale_actions),
        write: |v| format!("{v:.0}"),
        badness: lower,
    },
];

/// The score table: a row per score, a value per run.
pub fn score_rows(runs: &[Run]) -> Vec<ScoreRow> {
    let slo = Slo::default();
    SCORES
        .iter()
        .map(|kind| {
            let values: Vec<f64> = runs.iter().map(|r| (kind.value)(&r.scores)).collect();
            let badness: Vec<f64> = values.iter().map(|v| (kind.badness)(*v)).collect();
            let least = badness.iter().copied().fold(f64::INFINITY, f64::min);
            let at_least: Vec<usize> = (0..badness.len())
                .filter(|i| (badness[*i] - least).abs() < 1e-9)
                .collect();
            let help = if kind.key == "slo_violation_seconds" {
                format!("time with {} above {}", slo.metric, percent(slo.limit))
            } else {
                kind.help.to_string()
            };
            ScoreRow {
                key: kind.key,
                label: kind.label,
                help,
                values: values.iter().map(|v| (*v, (kind.write)(*v))).collect(),
                best: (runs.len() > 1 && at_least.len() == 1).then(|| at_least[0]),
            }
        })
        .collect()
}

/// The simulated fleet a comparison ran on, in words, each figure with where it came from.
pub fn calibration_facts(c: &Calibration) -> Vec<(&'static str, String)> {
    let boot = match c.boot_seconds.as_slice() {
        [] => "instant".to_string(),
        [one] => seconds(*one),
        [first, .., last] if first == last => {
            format!("{} ({} instances)", seconds(*first), c.boot_seconds.len())
        }
        all => format!(
            "median {}, {} to {} ({} instances)",
            seconds(all[all.len() / 2]),
            seconds(all[0]),
            seconds(all[all.len() - 1]),
            all.len()
        ),
    };
    vec![
        (
            "Instance capacity",
            format!(
                "{} per instance at 100 % CPU above idle ({})",
                Unit::RequestsPerSecond.format(c.instance_capacity_rps),
                source(c.capacity_source)
            ),
        ),
        ("Idle CPU", percent(c.idle_cpu_percent)),
        ("Boot time", format!("{boot} ({})", source(c.boot_source))),
    ]
}

fn seconds(s: f64) -> String {
    format::duration_ms((s * 1000.0).round() as i64)
}

fn source(source: Source) -> &'static str {
    match source {
        Source::Given => "given",
        Source::Measured => "measured on this scale set",
        Source::Assumed => "assumed: nothing to measure yet",
    }
}

/// A shadow setting beside the live one over the last hour: the live capacity (the metric),
/// the capacity each of the shadow's decisions asked for, and both settings replayed over
/// that hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowRead {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The set's capacity, oldest first.
    pub live: Vec<(DateTime<Utc>, f64)>,
    /// The shadow's decisions: when, and the capacity it would have set, oldest first.
    pub shadow: Vec<(DateTime<Utc>, f64)>,
    /// `live` (when the set has a live setting) and `shadow` replayed over the hour, or why
    /// they could not be.
    pub scores: Result<Comparison, String>,
}

impl ShadowRead {
    pub fn chart(&self) -> ChartData {
        let line = |label: &str, points: &[(DateTime<Utc>, f64)]| Line {
            label: label.into(),
            points: points.to_vec(),
            band: vec![],
        };
        ChartData {
            from: self.from,
            to: self.to,
            lines: vec![line("live", &self.live), line("shadow", &self.shadow)],
            thresholds: vec![],
            markers: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_domain::autoscale::backtest::RunResult;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn scores(under: f64, jitter: f64, actions: u32) -> Scores {
        Scores {
            under_provisioning_accuracy: under,
            over_provisioning_accuracy: 12.5,
            under_provisioning_timeshare: 0.0,
            over_provisioning_timeshare: 40.0,
            jitter,
            instability: 1.25,
            slo_violation_seconds: 125.0,
            instance_hours: 3.0,
            scale_actions: actions,
        }
    }

    fn answer() -> Answer {
        let run = |capacity: f64, s: Scores| RunResult {
            scores: s,
            series: vec![
                SeriesPoint {
                    at: at(0),
                    load: 100.0,
                    capacity,
                    ideal_capacity: 2.0,
                    serving: capacity,
                },
                SeriesPoint {
                    at: at(60),
                    load: 300.0,
                    capacity: capacity + 1.0,
                    ideal_capacity: 4.0,
                    serving: capacity,
                },
            ],
            decisions: vec![],
            decisions_truncated: false,
        };
        Answer {
            results: vec![
                run(2.0, scores(5.0, 2.0, 3)),
                run(3.0, scores(1.0, -2.0, 3)),
            ],
            from: at(0),
            to: at(120),
            evaluations: 4,
            calibration: Calibration {
                instance_capacity_rps: 50.0,
                idle_cpu_percent: 2.0,
                capacity_source: Source::Assumed,
                boot_seconds: vec![20.0, 30.0, 90.0],
                boot_source: Source::Measured,
            },
        }
    }

    #[test]
    fn loads_round_trip_and_the_demand_is_offered_only_when_set() {
        assert_eq!(Load::choices(false).len(), 3);
        let all = Load::choices(true);
        assert_eq!(all.len(), 6);
        for load in all {
            assert_eq!(Load::parse(&load.slug()), Some(load), "{}", load.slug());
        }
        assert_eq!(DEFAULT_LOAD.slug(), "history-24h");
        assert_eq!(DEFAULT_LOAD.label(), "Recorded load, last 24 h");
        assert_eq!(Load::parse("history-15m"), None, "not offered");
        assert_eq!(Load::parse("tomorrow-1h"), None);
    }

    #[test]
    fn a_load_makes_its_backtest_request() {
        let setting = crate::autoscale_templates::cpu_setting(flotilla_domain::autoscale::Bounds {
            minimum: 1,
            maximum: 5,
            default: 2,
        });
        let history = DEFAULT_LOAD
            .request(at(86_400), at(-5), None, vec![setting.clone()])
            .unwrap();
        assert_eq!(
            history.history,
            Some(Range {
                from: at(0),
                to: at(86_400)
            })
        );
        assert!(history.validate(at(86_400)).0.is_empty());
        assert_eq!((history.demand, history.duration_seconds), (None, None));
        assert_eq!(history.settings.as_deref(), Some(&[setting.clone()][..]));
        // A set younger than the span: from its creation on.
        let young = DEFAULT_LOAD
            .request(at(86_400), at(86_000), None, vec![setting.clone()])
            .unwrap();
        assert_eq!(young.history.unwrap().from, at(86_000));

        let demand: Demand = serde_json::from_str(r#"{"pattern":"constant","rps":100}"#).unwrap();
        let run = Load::Demand(Preset::Hour1)
            .request(at(0), at(-5), Some(&demand), vec![setting.clone()])
            .unwrap();
        assert_eq!(
            (run.demand, run.history, run.duration_seconds),
            (Some(demand), None, Some(3600))
        );
        let refused = Load::Demand(Preset::Hour1)
            .request(at(0), at(-5), None, vec![setting])
            .unwrap_err();
        assert_eq!(refused.field, "load");
    }

    #[test]
    fn a_refusal_names_the_drafts_own_fields() {
        let error = |field: &str| FieldError {
            field: field.into(),
            message: "wrong".into(),
        };
        let fields = draft_fields(
            vec![
                error("settings[1].profiles[0].capacity.minimum"),
                error("settings[0].profiles[0].rules[0].metric"),
                error("history.from"),
            ],
            1,
        );
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "profiles[0].capacity.minimum",
                "saved.profiles[0].rules[0].metric",
                "history.from"
            ]
        );
        assert_eq!(
            draft_fields(vec![error("settings[0].enabled")], 0)[0].field,
            "enabled"
        );
    }

    #[test]
    fn a_comparison_draws_the_ideal_once_and_each_run() {
        let c = Comparison::of(answer(), &["saved", "draft"]);
        let chart = c.capacity_chart();
        let labels: Vec<&str> = chart.lines.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["ideal", "saved", "draft"]);
        assert_eq!(chart.lines[0].points, [(at(0), 2.0), (at(60), 4.0)]);
        assert_eq!(chart.lines[2].points, [(at(0), 3.0), (at(60), 4.0)]);
        assert_eq!((chart.from, chart.to), (at(0), at(120)));
        assert_eq!(c.capacity_title(), "Capacity: ideal, saved and draft");
        let draft_only = Comparison::of(answer(), &["draft"]);
        assert_eq!(draft_only.runs.len(), 1);
        assert_eq!(draft_only.capacity_title(), "Capacity: ideal and draft");
        let load = c.load_chart();
        assert_eq!(load.lines.len(), 1);
        assert_eq!(load.lines[0].points, [(at(0), 100.0), (at(60), 300.0)]);
    }

    #[test]
    fn scores_are_written_with_their_units_and_the_better_marked() {
        let c = Comparison::of(answer(), &["saved", "draft"]);
        let rows = score_rows(&c.runs);
        assert_eq!(rows.len(), 9);
        let row = |key: &str| rows.iter().find(|r| r.key == key).unwrap();
        let written =
            |key: &str| -> Vec<String> { row(key).values.iter().map(|(_, w)| w.clone()).collect() };
        assert_eq!(written("under_provisioning_accuracy"), ["5 %", "1 %"]);
        assert_eq!(row("under_provisioning_accuracy").best, Some(1));
        assert_eq!(written("instability"), ["1.2 %", "1.2 %"]);
        assert_eq!(row("instability").best, None, "a tie");
        // Nearer zero is better, either way.
        assert_eq!(written("jitter"), ["2 per hour", "-2 per hour"]);
        assert_eq!(row("jitter").best, None);
        assert_eq!(written("slo_violation_seconds")[0], "2 min 5 s");
        assert!(
            row("slo_violation_seconds")
                .help
                .contains("cpu_percent above 80 %")
        );
        assert_eq!(written("instance_hours")[0], "3.00 h");
        assert_eq!(written("scale_actions"), ["3", "3"]);
        // One run: nothing to be better than.
        assert!(score_rows(&c.runs[..1]).iter().all(|r| r.best.is_none()));
    }

    #[test]
    fn the_calibration_says_where_each_figure_came_from() {
        let facts = calibration_facts(&answer().calibration);
        assert_eq!(
            facts,
            [
                (
                    "Instance capacity",
                    "50 req/s per instance at 100 % CPU above idle (assumed: nothing to measure yet)"
                        .to_string()
                ),
                ("Idle CPU", "2 %".to_string()),
                (
                    "Boot time",
                    "median 30.0 s, 20.0 s to 1 min 30 s (3 instances) (measured on this scale set)"
                        .to_string()
                ),
            ]
        );
    }

    #[test]
    fn boot_times_alike_are_said_once() {
        let calibration = Calibration {
            boot_seconds: vec![12.0, 12.0],
            ..answer().calibration
        };
        assert_eq!(
            calibration_facts(&calibration)[2].1,
            "12.0 s (2 instances) (measured on this scale set)"
        );
    }

    #[test]
    fn the_shadow_is_drawn_beside_the_live_capacity() {
        let read = ShadowRead {
            from: at(0),
            to: at(3600),
            live: vec![(at(10), 2.0)],
            shadow: vec![(at(30), 3.0), (at(60), 4.0)],
            scores: Err("no metrics".into()),
        };
        let chart = read.chart();
        assert_eq!(chart.lines[0].label, "live");
        assert_eq!(chart.lines[1].points.len(), 2);
    }
}
