//! The autoscale lab's server functions: a what-if of the editor's draft against the saved
//! setting, and the shadow setting — saved beside the live one, read with its decisions and
//! scores, promoted or removed.
//!
//! Each calls the `Fleet` (`backtest`, `set_autoscale_shadow`, `promote_autoscale_shadow`);
//! the comparisons they answer are [`crate::lab_view`]'s, without the runs' decisions.

use flotilla_domain::autoscale::setting::AutoscaleSetting;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::api::autoscale::Checked;
use crate::api::error::PortalError;
use crate::lab_view::{Comparison, Load, ShadowRead};

/// How far back the shadow panel compares the shadow with the live setting.
pub const SHADOW_WINDOW_SECONDS: i64 = 3600;

/// Replays `load` through the saved setting and `draft` (the draft alone when nothing is
/// saved) on the set's simulated fleet; nothing is changed. A refusal names the draft's
/// fields as the editor does (`profiles[0].name`).
#[server(prefix = "/_fn", endpoint = "what-if", input = Json, client = crate::api::CsrfClient)]
pub async fn what_if(
    name: String,
    draft: AutoscaleSetting,
    load: Load,
) -> Result<Comparison, PortalError> {
    use super::{refuse, refused};
    let fleet = super::fleet();
    let set = fleet.get_scale_set(&name).await.map_err(refused)?;
    let (settings, labels) = match set.spec.autoscale {
        Some(saved) => (vec![saved, draft], vec!["saved", "draft"]),
        None => (vec![draft], vec!["draft"]),
    };
    let draft_at = settings.len() - 1;
    let request = load
        .request(
            fleet.now(),
            set.created_at,
            set.spec.demand.as_ref(),
            settings,
        )
        .map_err(|e| {
            refuse(
                PortalError {
                    message: format!("{}: {}", e.field, e.message),
                    fields: vec![e],
                    ..PortalError::default()
                },
                422,
            )
        })?;
    let answer = fleet.backtest(&name, request).await.map_err(|e| {
        let mut error = refused(e);
        if !error.fields.is_empty() {
            let fields = crate::lab_view::draft_fields(error.fields, draft_at);
            error.message = flotilla_domain::ValidationErrors(fields.clone()).to_string();
            error.fields = fields;
        }
        error
    })?;
    Ok(Comparison::of(answer, &labels))
}

/// The shadow setting beside the live one over the last hour, or since the set was made
/// (see [`ShadowRead`]); `None` when the set has no shadow setting.
#[server(prefix = "/_fn", endpoint = "autoscale-shadow", client = crate::api::CsrfClient)]
pub async fn read_shadow(name: String) -> Result<Option<ShadowRead>, ServerFnError> {
    use super::{fleet, server_error};
    use flotilla_domain::autoscale::backtest::{Range, Request};
    use flotilla_domain::autoscale::decision::DecisionFilter;
    use flotilla_domain::metrics::Metric;
    /// The most shadow decisions drawn: an hour's at an interval of 4 s.
    const DECISIONS_READ: u32 = 1000;
    let fleet = fleet();
    let set = fleet.get_scale_set(&name).await.map_err(server_error)?;
    let Some(shadow) = set.spec.autoscale_shadow else {
        return Ok(None);
    };
    let to = fleet.now();
    // Nothing is recorded before the set was made.
    let from = (to - chrono::Duration::seconds(SHADOW_WINDOW_SECONDS)).max(set.created_at);
    let mut decisions = fleet
        .decisions(&DecisionFilter {
            scale_set: name.clone(),
            operation: None,
            since: Some(from),
            until: None,
            before_id: None,
            limit: DECISIONS_READ,
            shadow: true,
        })
        .await
        .map_err(server_error)?;
    decisions.reverse();
    let metrics = fleet
        .metrics(
            &name,
            &flotilla_control::MetricsQuery {
                metric: Some(Metric::Capacity.as_str().into()),
                from: Some(from),
                to: Some(to),
                step: None,
                instance: None,
            },
        )
        .await
        .map_err(server_error)?;
    let live = metrics
        .series
        .iter()
        .find(|s| s.metric == Metric::Capacity)
        .map(|s| s.points.iter().map(|p| (p.at, p.average)).collect())
        .unwrap_or_default();
    let (settings, labels) = match set.spec.autoscale {
        Some(live) => (vec![live, shadow], vec!["live", "shadow"]),
        None => (vec![shadow], vec!["shadow"]),
    };
    // A set too new to have recorded anything is no failure of the read: the panel says why
    // there are no scores.
    let scores = fleet
        .backtest(
            &name,
            Request {
                history: Some(Range { from, to }),
                settings: Some(settings),
                ..Request::default()
            },
        )
        .await
        .map(|answer| Comparison::of(answer, &labels))
        .map_err(|e| PortalError::from(e).message);
    Ok(Some(ShadowRead {
        from,
        to,
        live,
        shadow: decisions
            .iter()
            .map(|d| (d.at, f64::from(d.new_capacity)))
            .collect(),
        scores,
    }))
}

/// Saves the editor's draft as the set's shadow setting. A refusal carries the messages
/// per field (`profiles[0].capacity.minimum`).
#[server(prefix = "/_fn", endpoint = "save-autoscale-shadow", input = Json, client = crate::api::CsrfClient)]
pub async fn save_autoscale_shadow(
    name: String,
    setting: AutoscaleSetting,
) -> Result<Checked, PortalError> {
    use super::refused;
    super::fleet()
        .set_autoscale_shadow(&name, Some(setting), false, &super::actor())
        .await
        .map(Checked::shadow)
        .map_err(refused)
}

/// Promotes the shadow setting to the live one (`action` is `promote`) or removes it
/// (`remove`): the shadow panel's form, with or without JavaScript. Answers the setting the
/// action changed: the live one after a promotion.
#[server(prefix = "/_fn", endpoint = "shadow-action", client = crate::api::CsrfClient)]
pub async fn change_shadow(name: String, action: String) -> Result<Checked, PortalError> {
    use super::{refuse, refused, return_to};
    return_to(&format!(
        "/scale-sets/{}/scaling",
        flotilla_domain::url::percent_encode(&name)
    ));
    let fleet = super::fleet();
    match action.as_str() {
        "promote" => fleet
            .promote_autoscale_shadow(&name, &super::actor())
            .await
            .map(Checked::from),
        "remove" => fleet
            .set_autoscale_shadow(&name, None, false, &super::actor())
            .await
            .map(Checked::shadow),
        other => {
            return Err(refuse(
                PortalError::field(
                    "action",
                    format!("must be promote or remove, got {other:?}"),
                ),
                422,
            ));
        }
    }
    .map_err(refused)
}
