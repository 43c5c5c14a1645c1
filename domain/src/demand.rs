//! Synthetic demand for the mock hypervisor: requests per second as a function of time, so
//! autoscaling can be watched and tested without real traffic (`PUT /scale-sets/{name}/demand`).
//!
//! Patterns (times are seconds since the demand was set, except the sine, which follows
//! the wall clock so "daily" means the time of day):
//! - `constant` — `rps`;
//! - `step` — `rps`, then `step_rps` from `after_seconds` on (for `duration_seconds`, then
//!   `rps` again, when given);
//! - `sine` — between `min_rps` and `max_rps` over `period_seconds` (default a day), at the
//!   top `peak_offset_seconds` into each period counted from midnight UTC;
//! - `spikes` — `rps`, and `spike_rps` for `spike_seconds` every `every_seconds`;
//! - `csv` — a trace of `seconds,rps` lines, linearly interpolated, repeated when `repeat`.
//!
//! Every pattern also takes `noise_percent` (default 5) and `seed` (default 1): the mock
//! adds deterministic noise so runs are repeatable.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::validation::ValidationErrors;

/// The largest demand accepted, in requests per second.
pub const MAX_RPS: f64 = 10_000_000.0;
/// The most points a CSV trace may have.
pub const MAX_TRACE_POINTS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "pattern", rename_all = "snake_case")]
pub enum Pattern {
    Constant {
        rps: f64,
    },
    Step {
        rps: f64,
        step_rps: f64,
        after_seconds: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_seconds: Option<u32>,
    },
    Sine {
        min_rps: f64,
        max_rps: f64,
        #[serde(default = "day")]
        period_seconds: u32,
        #[serde(default)]
        peak_offset_seconds: u32,
    },
    Spikes {
        rps: f64,
        spike_rps: f64,
        every_seconds: u32,
        spike_seconds: u32,
    },
    Csv {
        csv: String,
        #[serde(default)]
        repeat: bool,
    },
}

fn day() -> u32 {
    86_400
}

fn five() -> f64 {
    5.0
}

fn one() -> u64 {
    1
}

/// A demand as set by a person: the pattern, its noise, and when it was set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Demand {
    #[serde(flatten)]
    pub pattern: Pattern,
    /// Seeded noise added by the mock, ± percent of the value.
    #[serde(default = "five")]
    pub noise_percent: f64,
    #[serde(default = "one")]
    pub seed: u64,
    /// When the demand was set (the origin of its relative times); set by the server.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
}

impl Demand {
    pub fn validate(&self) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        let rate = |errors: &mut ValidationErrors, field: &str, value: f64| {
            if !(0.0..=MAX_RPS).contains(&value) {
                errors.push(
                    field,
                    format!("must be between 0 and {MAX_RPS} requests per second"),
                );
            }
        };
        match &self.pattern {
            Pattern::Constant { rps } => rate(&mut errors, "rps", *rps),
            Pattern::Step {
                rps,
                step_rps,
                duration_seconds,
                ..
            } => {
                rate(&mut errors, "rps", *rps);
                rate(&mut errors, "step_rps", *step_rps);
                if *duration_seconds == Some(0) {
                    errors.push("duration_seconds", "must be at least 1 second when given");
                }
            }
            Pattern::Sine {
                min_rps,
                max_rps,
                period_seconds,
                ..
            } => {
                rate(&mut errors, "min_rps", *min_rps);
                rate(&mut errors, "max_rps", *max_rps);
                if max_rps < min_rps {
                    errors.push("max_rps", "must be at least min_rps");
                }
                if *period_seconds < 60 {
                    errors.push("period_seconds", "must be at least 60 seconds");
                }
            }
            Pattern::Spikes {
                rps,
                spike_rps,
                every_seconds,
                spike_seconds,
            } => {
                rate(&mut errors, "rps", *rps);
                rate(&mut errors, "spike_rps", *spike_rps);
                if *every_seconds == 0 {
                    errors.push("every_seconds", "must be at least 1 second");
                }
                if *spike_seconds == 0 || spike_seconds > every_seconds {
                    errors.push("spike_seconds", "must be between 1 and every_seconds");
                }
            }
            Pattern::Csv { csv, .. } => {
                if let Err(message) = parse_trace(csv) {
                    errors.push("csv", message);
                }
            }
        }
        errors.range("noise_percent", self.noise_percent, 0.0, 100.0);
        errors
    }

    /// The demand at `now` in requests per second, without noise.
    pub fn rps_at(&self, now: DateTime<Utc>) -> f64 {
        self.rps_series(&[now])[0]
    }

    /// The demand at each of `times`, without noise (a CSV trace parsed once).
    pub fn rps_series(&self, times: &[DateTime<Utc>]) -> Vec<f64> {
        let trace = match &self.pattern {
            Pattern::Csv { csv, .. } => parse_trace(csv).unwrap_or_default(),
            _ => Vec::new(),
        };
        times.iter().map(|t| self.rps_with(&trace, *t)).collect()
    }

    /// The demand at `now`, `trace` being the pattern's CSV trace parsed (if it has one).
    fn rps_with(&self, trace: &[(f64, f64)], now: DateTime<Utc>) -> f64 {
        let elapsed = self
            .started_at
            .map_or(0.0, |s| (now - s).num_milliseconds().max(0) as f64 / 1000.0);
        match &self.pattern {
            Pattern::Constant { rps } => *rps,
            Pattern::Step {
                rps,
                step_rps,
                after_seconds,
                duration_seconds,
            } => {
                let after = f64::from(*after_seconds);
                let stepped = elapsed >= after
                    && duration_seconds.is_none_or(|d| elapsed < after + f64::from(d));
                if stepped { *step_rps } else { *rps }
            }
            Pattern::Sine {
                min_rps,
                max_rps,
                period_seconds,
                peak_offset_seconds,
            } => {
                let period = f64::from((*period_seconds).max(1));
                let t = now.timestamp_millis() as f64 / 1000.0 - f64::from(*peak_offset_seconds);
                let phase = (t / period) * std::f64::consts::TAU;
                min_rps + (max_rps - min_rps) * (1.0 + phase.cos()) / 2.0
            }
            Pattern::Spikes {
                rps,
                spike_rps,
                every_seconds,
                spike_seconds,
            } => {
                let every = f64::from((*every_seconds).max(1));
                if elapsed % every < f64::from(*spike_seconds) {
                    *spike_rps
                } else {
                    *rps
                }
            }
            Pattern::Csv { repeat, .. } => interpolate(trace, elapsed, *repeat),
        }
    }
}

/// Parses a `seconds,rps` trace: one point per line, times strictly increasing from 0,
/// `#` comment lines and an optional header line (the first other line). Messages name the
/// line.
pub fn parse_trace(csv: &str) -> Result<Vec<(f64, f64)>, String> {
    let mut points: Vec<(f64, f64)> = Vec::new();
    let mut header = false;
    for (n, line) in csv.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split(',').map(str::trim);
        let (Some(t), Some(v), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(format!(
                "line {}: expected two fields \"seconds,rps\", found {line:?}",
                n + 1
            ));
        };
        let (Ok(t), Ok(v)) = (t.parse::<f64>(), v.parse::<f64>()) else {
            if points.is_empty() && !header {
                header = true; // the first line that is not a comment may name the columns
                continue;
            }
            return Err(format!("line {}: {line:?} is not two numbers", n + 1));
        };
        if !(0.0..=MAX_RPS).contains(&v) {
            return Err(format!(
                "line {}: rps must be between 0 and {MAX_RPS}",
                n + 1
            ));
        }
        match points.last() {
            None if t != 0.0 => {
                return Err(format!("line {}: the trace must start at 0 seconds", n + 1));
            }
            Some((last, _)) if t <= *last => {
                return Err(format!(
                    "line {}: times must increase ({t} after {last})",
                    n + 1
                ));
            }
            _ => {}
        }
        points.push((t, v));
        if points.len() > MAX_TRACE_POINTS {
            return Err(format!("at most {MAX_TRACE_POINTS} points"));
        }
    }
    if points.is_empty() {
        return Err("the trace has no points: give lines \"seconds,rps\" starting at 0".into());
    }
    Ok(points)
}

fn interpolate(trace: &[(f64, f64)], elapsed: f64, repeat: bool) -> f64 {
    let Some(&(end, last)) = trace.last() else {
        return 0.0;
    };
    let t = if repeat && end > 0.0 {
        elapsed % end
    } else {
        elapsed
    };
    if t >= end {
        return last;
    }
    let i = trace.partition_point(|(at, _)| *at <= t);
    let (t0, v0) = trace[i - 1];
    let (t1, v1) = trace[i];
    v0 + (v1 - v0) * (t - t0) / (t1 - t0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::seconds(secs)
    }

    fn demand(json: &str) -> Demand {
        let mut d: Demand = serde_json::from_str(json).unwrap();
        d.started_at = Some(at(1000));
        d
    }

    #[test]
    fn patterns() {
        assert_eq!(
            demand(r#"{"pattern":"constant","rps":500}"#).rps_at(at(5000)),
            500.0
        );
        let step = demand(
            r#"{"pattern":"step","rps":100,"step_rps":800,"after_seconds":60,"duration_seconds":120}"#,
        );
        assert_eq!(step.rps_at(at(1059)), 100.0);
        assert_eq!(step.rps_at(at(1060)), 800.0);
        assert_eq!(step.rps_at(at(1179)), 800.0);
        assert_eq!(step.rps_at(at(1180)), 100.0);
        let sine =
            demand(r#"{"pattern":"sine","min_rps":100,"max_rps":300,"peak_offset_seconds":50400}"#);
        assert!((sine.rps_at(at(50_400)) - 300.0).abs() < 1e-9);
        assert!((sine.rps_at(at(50_400 + 43_200)) - 100.0).abs() < 1e-9);
        let spikes = demand(
            r#"{"pattern":"spikes","rps":10,"spike_rps":1000,"every_seconds":600,"spike_seconds":60}"#,
        );
        assert_eq!(spikes.rps_at(at(1030)), 1000.0);
        assert_eq!(spikes.rps_at(at(1100)), 10.0);
        assert_eq!(spikes.rps_at(at(1630)), 1000.0);
        let csv =
            demand(r#"{"pattern":"csv","csv":"seconds,rps\n0,0\n10,100\n20,50","repeat":true}"#);
        assert_eq!(csv.rps_at(at(1005)), 50.0);
        assert_eq!(csv.rps_at(at(1015)), 75.0);
        assert_eq!(csv.rps_at(at(1025)), 50.0);
    }

    #[test]
    fn bad_input_names_the_field() {
        let bad = |json: &str, field: &str| {
            let d: Demand = serde_json::from_str(json).unwrap();
            let errors = d.validate();
            assert!(
                errors.0.iter().any(|e| e.field == field),
                "{json}: {errors:?}"
            );
        };
        bad(r#"{"pattern":"constant","rps":-1}"#, "rps");
        bad(
            r#"{"pattern":"sine","min_rps":10,"max_rps":5,"period_seconds":600}"#,
            "max_rps",
        );
        bad(
            r#"{"pattern":"spikes","rps":1,"spike_rps":2,"every_seconds":10,"spike_seconds":20}"#,
            "spike_seconds",
        );
        bad(r#"{"pattern":"csv","csv":"5,10"}"#, "csv");
        bad(r#"{"pattern":"csv","csv":"0,10\n0,20"}"#, "csv");
        bad(r#"{"pattern":"csv","csv":"0,10\nx,y"}"#, "csv");
        bad(
            r#"{"pattern":"constant","rps":1,"noise_percent":150}"#,
            "noise_percent",
        );
        assert!(serde_json::from_str::<Demand>(r#"{"pattern":"wave","rps":1}"#).is_err());
    }
}
