//! The mock's demand form (Scaling tab): every field of every pattern as typed, and the
//! [`Demand`] made from the picked pattern's fields. The form is a plain form posting all
//! its fields, so it works without JavaScript; the server function reads the same
//! [`DemandInput`], and the domain validates the demand.

use flotilla_domain::demand::{Demand, Pattern};
use flotilla_domain::{FieldError, TypedInput};
use serde::{Deserialize, Serialize};

/// The patterns, each with its label.
pub const PATTERNS: [(&str, &str); 5] = [
    ("constant", "Constant"),
    ("step", "Step"),
    ("sine", "Sine (daily wave)"),
    ("spikes", "Spikes"),
    ("csv", "CSV trace"),
];

/// The form's fields as posted (absent fields are empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DemandInput {
    pub pattern: String,
    pub rps: String,
    pub step_rps: String,
    pub after_seconds: String,
    pub duration_seconds: String,
    pub min_rps: String,
    pub max_rps: String,
    pub period_seconds: String,
    pub peak_offset_seconds: String,
    pub spike_rps: String,
    pub every_seconds: String,
    pub spike_seconds: String,
    pub csv: String,
    /// A checkbox: present (`on`) or not.
    pub repeat: String,
    pub noise_percent: String,
    pub seed: String,
}

impl Default for DemandInput {
    /// Example values for every pattern: a constant 100 req/s.
    fn default() -> Self {
        Self {
            pattern: "constant".into(),
            rps: "100".into(),
            step_rps: "500".into(),
            after_seconds: "60".into(),
            duration_seconds: String::new(),
            min_rps: "50".into(),
            max_rps: "500".into(),
            period_seconds: "86400".into(),
            peak_offset_seconds: "50400".into(),
            spike_rps: "1000".into(),
            every_seconds: "600".into(),
            spike_seconds: "60".into(),
            csv: "seconds,rps\n0,100\n300,600\n600,100".into(),
            repeat: "on".into(),
            noise_percent: "5".into(),
            seed: "1".into(),
        }
    }
}

impl DemandInput {
    /// The form filled with `demand` (the example values for the other patterns' fields).
    pub fn of(demand: Option<&Demand>) -> Self {
        let mut input = Self::default();
        let Some(demand) = demand else {
            return input;
        };
        input.noise_percent = demand.noise_percent.to_string();
        input.seed = demand.seed.to_string();
        match &demand.pattern {
            Pattern::Constant { rps } => {
                input.pattern = "constant".into();
                input.rps = rps.to_string();
            }
            Pattern::Step {
                rps,
                step_rps,
                after_seconds,
                duration_seconds,
            } => {
                input.pattern = "step".into();
                input.rps = rps.to_string();
                input.step_rps = step_rps.to_string();
                input.after_seconds = after_seconds.to_string();
                input.duration_seconds =
                    duration_seconds.map(|d| d.to_string()).unwrap_or_default();
            }
            Pattern::Sine {
                min_rps,
                max_rps,
                period_seconds,
                peak_offset_seconds,
            } => {
                input.pattern = "sine".into();
                input.min_rps = min_rps.to_string();
                input.max_rps = max_rps.to_string();
                input.period_seconds = period_seconds.to_string();
                input.peak_offset_seconds = peak_offset_seconds.to_string();
            }
            Pattern::Spikes {
                rps,
                spike_rps,
                every_seconds,
                spike_seconds,
            } => {
                input.pattern = "spikes".into();
                input.rps = rps.to_string();
                input.spike_rps = spike_rps.to_string();
                input.every_seconds = every_seconds.to_string();
                input.spike_seconds = spike_seconds.to_string();
            }
            Pattern::Csv { csv, repeat } => {
                input.pattern = "csv".into();
                input.csv = csv.clone();
                input.repeat = if *repeat { "on".into() } else { String::new() };
            }
        }
        input
    }

    /// Which fields the picked pattern reads (the others are hidden in the browser).
    pub fn fields_of(pattern: &str) -> &'static [&'static str] {
        match pattern {
            "constant" => &["rps"],
            "step" => &["rps", "step_rps", "after_seconds", "duration_seconds"],
            "sine" => &[
                "min_rps",
                "max_rps",
                "period_seconds",
                "peak_offset_seconds",
            ],
            "spikes" => &["rps", "spike_rps", "every_seconds", "spike_seconds"],
            "csv" => &["csv", "repeat"],
            _ => &[],
        }
    }

    /// The demand of the picked pattern, or what does not parse (by field: `rps`, …).
    /// The domain's validation comes after (on the server, with the same field names).
    pub fn demand(&self) -> Result<Demand, Vec<FieldError>> {
        const RATE: &str = "a number of requests per second";
        const SECONDS: &str = "a whole number of seconds";
        let mut parse = TypedInput::new();
        let pattern = match self.pattern.as_str() {
            "constant" => Pattern::Constant {
                rps: parse.value_as("rps", &self.rps, RATE),
            },
            "step" => Pattern::Step {
                rps: parse.value_as("rps", &self.rps, RATE),
                step_rps: parse.value_as("step_rps", &self.step_rps, RATE),
                after_seconds: parse.value_as("after_seconds", &self.after_seconds, SECONDS),
                duration_seconds: (!self.duration_seconds.trim().is_empty())
                    .then(|| parse.value_as("duration_seconds", &self.duration_seconds, SECONDS)),
            },
            "sine" => Pattern::Sine {
                min_rps: parse.value_as("min_rps", &self.min_rps, RATE),
                max_rps: parse.value_as("max_rps", &self.max_rps, RATE),
                period_seconds: parse.value_as("period_seconds", &self.period_seconds, SECONDS),
                peak_offset_seconds: parse.value_as(
                    "peak_offset_seconds",
                    &self.peak_offset_seconds,
                    SECONDS,
                ),
            },
            "spikes" => Pattern::Spikes {
                rps: parse.value_as("rps", &self.rps, RATE),
                spike_rps: parse.value_as("spike_rps", &self.spike_rps, RATE),
                every_seconds: parse.value_as("every_seconds", &self.every_seconds, SECONDS),
                spike_seconds: parse.value_as("spike_seconds", &self.spike_seconds, SECONDS),
            },
            "csv" => Pattern::Csv {
                csv: self.csv.clone(),
                repeat: !self.repeat.is_empty(),
            },
            other => {
                parse.push(
                    "pattern",
                    format!("unknown pattern {other:?}; pick constant, step, sine, spikes or csv"),
                );
                Pattern::Constant { rps: 0.0 }
            }
        };
        let noise_percent = parse.value_as("noise_percent", &self.noise_percent, "a percentage");
        let seed = parse.value("seed", &self.seed);
        if parse.is_empty() {
            Ok(Demand {
                pattern,
                noise_percent,
                seed,
                started_at: None,
            })
        } else {
            Err(parse.into_problems())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(pattern: &str) -> DemandInput {
        DemandInput {
            pattern: pattern.into(),
            ..DemandInput::default()
        }
    }

    #[test]
    fn every_pattern_from_its_fields() {
        for (pattern, _) in PATTERNS {
            let demand = input(pattern).demand().unwrap();
            assert!(
                demand.validate().is_empty(),
                "{pattern}: {:?}",
                demand.validate()
            );
            assert_eq!(
                DemandInput::of(Some(&demand)).demand(),
                Ok(demand),
                "{pattern}"
            );
            assert!(!DemandInput::fields_of(pattern).is_empty());
        }
        let step = input("step").demand().unwrap();
        assert_eq!(
            step.pattern,
            Pattern::Step {
                rps: 100.0,
                step_rps: 500.0,
                after_seconds: 60,
                duration_seconds: None
            }
        );
        let mut csv = input("csv");
        csv.repeat = String::new();
        assert!(matches!(
            csv.demand().unwrap().pattern,
            Pattern::Csv { repeat: false, .. }
        ));
    }

    #[test]
    fn problems_name_their_fields_in_order() {
        let mut bad = input("spikes");
        bad.rps = "lots".into();
        bad.every_seconds = "-5".into();
        bad.seed = "x".into();
        let errors = bad.demand().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["rps", "every_seconds", "seed"]);
        assert_eq!(
            errors[0].message,
            "must be a number of requests per second, got \"lots\""
        );
        assert_eq!(input("wave").demand().unwrap_err()[0].field, "pattern");
    }

    #[test]
    fn a_constant_demand_fills_the_form() {
        let demand: Demand = serde_json::from_str(r#"{"pattern":"constant","rps":150}"#).unwrap();
        let form = DemandInput::of(Some(&demand));
        assert_eq!(
            (form.pattern.as_str(), form.rps.as_str()),
            ("constant", "150")
        );
        assert_eq!(form.noise_percent, "5");
        assert_eq!(DemandInput::of(None), DemandInput::default());
    }
}
