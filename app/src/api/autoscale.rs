//! A scale set's charts, autoscale setting, decisions and the mock's demand: the Monitoring
//! and Scaling tabs' reads and changes.
//!
//! The changes a person makes are plain forms where a form can do the job (the setting as
//! JSON, Evaluate now, the demand), so they work without JavaScript; the rich editor sends
//! the setting it built with [`save_autoscale`].

use flotilla_domain::autoscale::Decision;
use flotilla_domain::autoscale::forecast;
use flotilla_domain::autoscale::setting::{AutoscaleSetting, Warning};
use flotilla_domain::demand::Demand;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::api::error::PortalError;
use crate::demand_form::DemandInput;
use crate::metrics_view::{ChartsRead, ChartsRequest};

/// How many decisions the Scaling tab lists.
pub const DECISIONS_SHOWN: u32 = 30;

/// The most scale actions a chart marks.
pub const MARKERS_READ: u32 = 500;

/// A setting as the server checked (or saved) it: the setting (webhook secrets redacted),
/// what the editor should warn about, and the boot time the cooldown warning compares with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checked {
    pub autoscale: Option<AutoscaleSetting>,
    pub warnings: Vec<Warning>,
    /// The median time from creation to healthy of the set's instances, in seconds.
    pub boot_seconds: Option<u32>,
    /// How often the metrics collector samples, in seconds.
    pub metrics_interval_seconds: u32,
    /// Whether it was saved (`false` for a check).
    pub saved: bool,
    /// Whether it is the shadow setting (evaluated beside the live one, never acting).
    pub shadow: bool,
}

#[cfg(feature = "ssr")]
impl From<flotilla_control::AutoscaleAnswer> for Checked {
    fn from(a: flotilla_control::AutoscaleAnswer) -> Self {
        Self {
            autoscale: a.autoscale,
            warnings: a.warnings,
            boot_seconds: a.boot_seconds,
            metrics_interval_seconds: a.metrics_interval_seconds,
            saved: a.saved,
            shadow: false,
        }
    }
}

#[cfg(feature = "ssr")]
impl Checked {
    /// The answer about the shadow setting.
    pub fn shadow(a: flotilla_control::AutoscaleAnswer) -> Self {
        Self {
            shadow: true,
            ..a.into()
        }
    }
}

/// What the Scaling tab reads besides the set: the backend (the demand form is the mock's
/// only) and the stored setting as checked now (its warnings, the boot time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingRead {
    /// `mock` or `libvirt`.
    pub backend: String,
    /// `None` when the set has no autoscale setting.
    pub stored: Option<Checked>,
}

/// The metrics of one read of a set's charts, and the scale actions in its range.
#[server(prefix = "/_fn", endpoint = "charts", input = Json, client = crate::api::CsrfClient)]
pub async fn read_charts(request: ChartsRequest) -> Result<ChartsRead, ServerFnError> {
    use super::{fleet, server_error};
    use crate::metrics_view::Window;
    let fleet = fleet();
    let (from, to) = match request.window {
        Window::Last { seconds } => {
            let to = fleet.now();
            let from = to - chrono::Duration::seconds(i64::from(seconds));
            // Aligned to the step, the window's points stay put as it slides.
            let from = match request.step.filter(|s| *s > 0) {
                Some(step) => {
                    let step = i64::from(step);
                    chrono::DateTime::from_timestamp(from.timestamp().div_euclid(step) * step, 0)
                        .unwrap_or(from)
                }
                None => from,
            };
            (from, to)
        }
        Window::Between { from, to } => (from, to),
    };
    let names: Vec<&str> = request.metrics.iter().map(|m| m.as_str()).collect();
    let query = flotilla_control::MetricsQuery {
        metric: Some(names.join(",")),
        from: Some(from),
        to: Some(to),
        step: request.step,
        instance: request.instance.clone(),
    };
    let metrics = fleet
        .metrics(&request.name, &query)
        .await
        .map_err(server_error)?;
    let actions = fleet
        .activity(&flotilla_domain::ActivityFilter {
            scale_set: Some(request.name.clone()),
            operation: Some("autoscale.scale".into()),
            since: Some(from),
            until: Some(to),
            limit: MARKERS_READ,
            ..flotilla_domain::ActivityFilter::default()
        })
        .await
        .map_err(server_error)?;
    Ok(ChartsRead { metrics, actions })
}

/// The Scaling tab's read: the backend, and the stored setting checked anew (a dry run:
/// nothing is saved).
#[server(prefix = "/_fn", endpoint = "scaling", client = crate::api::CsrfClient)]
pub async fn read_scaling(name: String) -> Result<ScalingRead, ServerFnError> {
    use super::{fleet, server_error};
    let fleet = fleet();
    let set = fleet.get_scale_set(&name).await.map_err(server_error)?;
    let stored = match set.spec.autoscale {
        None => None,
        Some(setting) => match fleet
            .set_autoscale(&name, Some(setting), true, &super::actor())
            .await
        {
            Ok(answer) => Some(answer.into()),
            // A setting stored before a rule changed: shown, without warnings.
            Err(flotilla_control::Error::Invalid(_)) => None,
            Err(e) => return Err(server_error(e)),
        },
    };
    Ok(ScalingRead {
        backend: fleet.backend_kind().into(),
        stored,
    })
}

/// Checks (`dry_run`) or saves the editor's setting; `None` removes autoscale. A refusal
/// carries the messages per field (`profiles[0].capacity.minimum`).
#[server(prefix = "/_fn", endpoint = "save-autoscale", input = Json, client = crate::api::CsrfClient)]
pub async fn save_autoscale(
    name: String,
    setting: Option<AutoscaleSetting>,
    dry_run: bool,
) -> Result<Checked, PortalError> {
    use super::refused;
    super::fleet()
        .set_autoscale(&name, setting, dry_run, &super::actor())
        .await
        .map(Checked::from)
        .map_err(refused)
}

/// Checks (`dry_run` is `true`: the Check button) or saves the setting written as JSON —
/// the editor's plain form, with or without JavaScript. `null` (or nothing) removes
/// autoscale. With `shadow` (`true`: the Save as shadow button) it is the shadow setting
/// that is saved (or removed).
#[server(prefix = "/_fn", endpoint = "autoscale-json", client = crate::api::CsrfClient)]
pub async fn save_autoscale_json(
    name: String,
    json: String,
    dry_run: Option<String>,
    shadow: Option<String>,
) -> Result<Checked, PortalError> {
    use super::{refuse, refused, return_to};
    return_to(&format!(
        "/scale-sets/{}/scaling",
        flotilla_domain::url::percent_encode(&name)
    ));
    // Echoed back (in the URL, without JavaScript) on a refusal: scrubbed of secrets, or
    // not at all when it is not JSON.
    let echo = scrubbed(&json);
    let setting = parse_setting(&json).map_err(|message| {
        refuse(
            PortalError::field("json", message).with_input(echo.clone()),
            422,
        )
    })?;
    let dry_run = dry_run.as_deref() == Some("true");
    let fleet = super::fleet();
    let actor = super::actor();
    if shadow.as_deref() == Some("true") {
        fleet
            .set_autoscale_shadow(&name, setting, dry_run, &actor)
            .await
            .map(Checked::shadow)
    } else {
        fleet
            .set_autoscale(&name, setting, dry_run, &actor)
            .await
            .map(Checked::from)
    }
    .map_err(|e| refused(e).with_input(echo))
}

/// `json` with its secrets redacted as reads redact them (as typed when it holds none);
/// `None` when it does not parse.
#[cfg(feature = "ssr")]
fn scrubbed(json: &str) -> Option<String> {
    let typed: serde_json::Value = serde_json::from_str(json).ok()?;
    let mut value = typed.clone();
    flotilla_domain::secret::scrub(&mut value);
    if value == typed {
        return Some(json.to_string());
    }
    serde_json::to_string_pretty(&value).ok()
}

/// A setting written as JSON; empty or `null` for none. The message names the line and
/// column of a mistake.
pub fn parse_setting(json: &str) -> Result<Option<AutoscaleSetting>, String> {
    let json = json.trim();
    if json.is_empty() || json == "null" {
        return Ok(None);
    }
    serde_json::from_str(json).map_err(|e| format!("not an autoscale setting: {e}"))
}

/// The set's newest decisions, newest first: every evaluation, or with `actions_only` the
/// scale-outs and scale-ins only.
#[server(prefix = "/_fn", endpoint = "decisions", client = crate::api::CsrfClient)]
pub async fn list_decisions(
    name: String,
    actions_only: bool,
) -> Result<Vec<Decision>, ServerFnError> {
    use super::{fleet, server_error};
    use flotilla_domain::autoscale::decision::DecisionFilter;
    let fleet = fleet();
    let filter = DecisionFilter {
        scale_set: name,
        operation: None,
        since: None,
        until: None,
        before_id: None,
        limit: DECISIONS_SHOWN,
        shadow: false,
    };
    if actions_only {
        fleet.scale_actions(&filter).await
    } else {
        fleet.decisions(&filter).await
    }
    .map_err(server_error)
}

/// The load forecast of each predictive profile of the set's live and shadow settings.
#[server(prefix = "/_fn", endpoint = "forecast", client = crate::api::CsrfClient)]
pub async fn read_forecast(name: String) -> Result<Vec<forecast::Item>, ServerFnError> {
    use super::{fleet, server_error};
    fleet().forecast(&name).await.map_err(server_error)
}

/// Evaluates the set's autoscale setting now (a change of capacity is applied): the
/// Evaluate now button, with or without JavaScript. `None` when autoscale is off.
#[server(prefix = "/_fn", endpoint = "evaluate-autoscale", client = crate::api::CsrfClient)]
pub async fn evaluate_autoscale(name: String) -> Result<Option<Decision>, PortalError> {
    use super::{refused, return_to};
    return_to(&format!(
        "/scale-sets/{}/scaling",
        flotilla_domain::url::percent_encode(&name)
    ));
    super::fleet()
        .evaluate_autoscale(&name)
        .await
        .map_err(refused)
}

/// Sets the mock's synthetic demand from the demand form (every pattern's fields are
/// posted; the picked pattern's are read). A refusal carries the messages per field and
/// the form as typed (JSON), to show it again. Answers the demand as stored.
#[server(prefix = "/_fn", endpoint = "set-demand", client = crate::api::CsrfClient)]
pub async fn set_demand(name: String, input: DemandInput) -> Result<Option<Demand>, PortalError> {
    use super::{refuse, refused, return_to};
    return_to(&format!(
        "/scale-sets/{}/scaling",
        flotilla_domain::url::percent_encode(&name)
    ));
    let typed = serde_json::to_string(&input).ok();
    let demand = input.demand().map_err(|fields| {
        let message = fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; ");
        refuse(
            PortalError {
                message,
                fields,
                ..PortalError::default()
            }
            .with_input(typed.clone()),
            422,
        )
    })?;
    let set = super::fleet()
        .set_demand(&name, Some(demand), &super::actor())
        .await
        .map_err(|e| refused(e).with_input(typed))?;
    Ok(set.spec.demand)
}

/// Removes the mock's synthetic demand.
#[server(prefix = "/_fn", endpoint = "remove-demand", client = crate::api::CsrfClient)]
pub async fn remove_demand(name: String) -> Result<(), PortalError> {
    use super::{refused, return_to};
    return_to(&format!(
        "/scale-sets/{}/scaling",
        flotilla_domain::url::percent_encode(&name)
    ));
    super::fleet()
        .set_demand(&name, None, &super::actor())
        .await
        .map_err(refused)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_as_json() {
        assert_eq!(parse_setting("  "), Ok(None));
        assert_eq!(parse_setting("null"), Ok(None));
        let setting = crate::autoscale_templates::cpu_setting(flotilla_domain::autoscale::Bounds {
            minimum: 1,
            maximum: 5,
            default: 2,
        });
        let json = serde_json::to_string_pretty(&setting).unwrap();
        assert_eq!(parse_setting(&json), Ok(Some(setting)));
        let error = parse_setting("{\"enabled\": tru}").unwrap_err();
        assert!(error.contains("line 1 column"), "{error}");
    }
}
