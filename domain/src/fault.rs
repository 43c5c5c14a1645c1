//! Faults the mock hypervisor can be told to simulate (`POST /api/v1/backend/faults`).

use serde::{Deserialize, Serialize};

use crate::validation::ValidationErrors;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// The instance's VM stops at once, as if its guest crashed (an event, not a lasting fault).
    Crash { instance: String },
    /// The instance's `/health` answers 503 until a `healthy` fault.
    Unhealthy { instance: String },
    /// Clears `unhealthy` for the instance.
    Healthy { instance: String },
    /// Every VM in the zone stops and nothing can be created there until `zone_up`.
    ZoneDown { zone: String },
    /// The zone returns; its VMs that were running start again.
    ZoneUp { zone: String },
    /// The host (a fault domain of its zone: the mock names them `{zone}-fd{n}`) becomes
    /// unreachable: every VM on it stops and nothing can be created there until `host_up`.
    HostDown { host: String },
    /// The host returns; its VMs that were running start again (unless their zone is down).
    HostUp { host: String },
    /// This share of creates (0–1) fails.
    CreateFailureRate { rate: f64 },
    /// Boots take this many extra seconds (0 clears).
    SlowBoot { seconds: u32 },
}

impl Fault {
    /// Checks the parameters that do not depend on the backend's state.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        match self {
            Fault::CreateFailureRate { rate } => {
                if !(0.0..=1.0).contains(rate) || rate.is_nan() {
                    errors.push("rate", format!("must be between 0 and 1, got {rate}"));
                }
            }
            Fault::SlowBoot { seconds } => errors.range("seconds", *seconds, 0, 3600),
            Fault::Crash { instance }
            | Fault::Unhealthy { instance }
            | Fault::Healthy { instance } => {
                if instance.is_empty() {
                    errors.push("instance", "must not be empty");
                }
            }
            Fault::ZoneDown { zone } | Fault::ZoneUp { zone } => {
                if zone.is_empty() {
                    errors.push("zone", "must not be empty");
                }
            }
            Fault::HostDown { host } | Fault::HostUp { host } => {
                if host.is_empty() {
                    errors.push("host", "must not be empty");
                }
            }
        }
        errors.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_shapes_parse() {
        let cases = [
            (
                r#"{"kind":"crash","instance":"web_1"}"#,
                Fault::Crash {
                    instance: "web_1".into(),
                },
            ),
            (
                r#"{"kind":"zone_down","zone":"2"}"#,
                Fault::ZoneDown { zone: "2".into() },
            ),
            (
                r#"{"kind":"host_down","host":"1-fd0"}"#,
                Fault::HostDown {
                    host: "1-fd0".into(),
                },
            ),
            (
                r#"{"kind":"host_up","host":"1-fd0"}"#,
                Fault::HostUp {
                    host: "1-fd0".into(),
                },
            ),
            (
                r#"{"kind":"create_failure_rate","rate":0.2}"#,
                Fault::CreateFailureRate { rate: 0.2 },
            ),
            (
                r#"{"kind":"slow_boot","seconds":30}"#,
                Fault::SlowBoot { seconds: 30 },
            ),
        ];
        for (json, fault) in cases {
            assert_eq!(serde_json::from_str::<Fault>(json).unwrap(), fault);
            assert_eq!(serde_json::to_string(&fault).unwrap(), json);
        }
    }

    #[test]
    fn bad_parameters_named() {
        let e = Fault::CreateFailureRate { rate: 1.5 }
            .validate()
            .unwrap_err();
        assert_eq!(e.0[0].field, "rate");
        assert!(Fault::SlowBoot { seconds: 4000 }.validate().is_err());
        assert!(
            Fault::Crash {
                instance: String::new()
            }
            .validate()
            .is_err()
        );
        let e = Fault::HostDown {
            host: String::new(),
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.0[0].field, "host");
    }
}
