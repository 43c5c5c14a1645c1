//! A scale set's model versions, upgrade policy and rollouts: the Upgrades tab's reads and
//! changes, and the Instances tab's "upgrade the selected instances".
//!
//! The model and policy forms, the rollout controls and rollback are plain forms, so they
//! work without JavaScript; the preview is asked for by the browser with what the forms
//! hold ([`preview_rollout`]).

use chrono::{DateTime, Utc};
use flotilla_domain::Model;
use flotilla_domain::rollout::{FieldChange, Rollout, RolloutPlan};
use flotilla_domain::scale_set::UpgradePolicy;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::api::error::PortalError;
use crate::upgrade_form::{ModelInput, PolicyInput};

/// How many rollouts the tab reads (the current one and the history).
pub const ROLLOUTS_SHOWN: u32 = 20;

/// One stored model version (its model is in the set's read for the newest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionEntry {
    pub version: u32,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// The Upgrades tab's read besides the set: the model versions (oldest first) and the
/// newest rollouts (newest first). Rollouts travel as records, without the API's
/// `RolloutView` counts: the page derives them ([`Rollout::progress`]) where it shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpgradesRead {
    pub versions: Vec<VersionEntry>,
    pub rollouts: Vec<Rollout>,
}

#[server(prefix = "/_fn", endpoint = "upgrades", client = crate::api::CsrfClient)]
pub async fn read_upgrades(name: String) -> Result<UpgradesRead, ServerFnError> {
    use super::{fleet, server_error};
    let fleet = fleet();
    let versions = fleet
        .model_versions(&name)
        .await
        .map_err(server_error)?
        .into_iter()
        .map(|v| VersionEntry {
            version: v.version,
            created_by: v.created_by,
            created_at: v.created_at,
        })
        .collect();
    let rollouts = fleet
        .rollouts(&name, ROLLOUTS_SHOWN)
        .await
        .map_err(server_error)?
        .into_iter()
        .map(|v| v.rollout)
        .collect();
    Ok(UpgradesRead { versions, rollouts })
}

/// The fields that differ between versions `from` and `to` of the set's model; a version
/// that does not exist is refused with a message naming it (422, as the REST API).
#[server(prefix = "/_fn", endpoint = "compare-versions", client = crate::api::CsrfClient)]
pub async fn compare_versions(
    name: String,
    from: u32,
    to: u32,
) -> Result<Vec<FieldChange>, PortalError> {
    use super::refused;
    super::fleet()
        .compare_versions(&name, from, to)
        .await
        .map_err(refused)
}

/// What a rollout would do: after storing `model` as the next version (absent: the
/// current one), under `upgrade_policy` (absent: the set's).
#[server(prefix = "/_fn", endpoint = "preview-rollout", input = Json, client = crate::api::CsrfClient)]
pub async fn preview_rollout(
    name: String,
    model: Option<Model>,
    upgrade_policy: Option<UpgradePolicy>,
) -> Result<RolloutPlan, PortalError> {
    use super::refused;
    let request = flotilla_control::PreviewRequest {
        model,
        upgrade_policy,
        instances: None,
    };
    super::fleet()
        .preview_rollout(&name, request)
        .await
        .map_err(refused)
}

/// Stores the model form's model as the set's next version (the upgrade policy then
/// starts a rollout, or waits for a person in Manual mode). Answers the new version.
#[server(prefix = "/_fn", endpoint = "set-model", client = crate::api::CsrfClient)]
pub async fn set_model(name: String, input: ModelInput) -> Result<u32, PortalError> {
    use super::{refuse, refused, return_to};
    return_to(&upgrades_page(&name));
    // Echoed back (in the URL, without JavaScript) on a refusal: never the user data.
    let typed = serde_json::to_string(&ModelInput {
        user_data: String::new(),
        ..input.clone()
    })
    .ok();
    let fleet = super::fleet();
    let fail = |e: flotilla_control::Error, typed: Option<String>| refused(e).with_input(typed);
    let base = fleet
        .get_scale_set(&name)
        .await
        .map_err(|e| fail(e, typed.clone()))?
        .spec
        .model;
    let (model, problems) = input.check(&base);
    if !problems.is_empty() {
        return Err(refuse(invalid(problems).with_input(typed), 422));
    }
    let set = fleet
        .set_model(&name, model, &super::actor())
        .await
        .map_err(|e| fail(e, typed))?;
    Ok(set.model_version)
}

/// Saves the policy form's upgrade policy. Answers the policy as stored.
#[server(prefix = "/_fn", endpoint = "upgrade-policy", client = crate::api::CsrfClient)]
pub async fn save_upgrade_policy(
    name: String,
    input: PolicyInput,
) -> Result<UpgradePolicy, PortalError> {
    use super::{refuse, refused, return_to};
    return_to(&upgrades_page(&name));
    let typed = serde_json::to_string(&input).ok();
    let (policy, problems) = input.check();
    if !problems.is_empty() {
        return Err(refuse(invalid(problems).with_input(typed), 422));
    }
    let patch = flotilla_domain::ScaleSetPatch {
        upgrade_policy: Some(policy),
        ..Default::default()
    };
    let set = super::fleet()
        .update_scale_set(&name, patch, &super::actor())
        .await
        .map_err(|e| refused(e).with_input(typed))?;
    Ok(set.spec.upgrade_policy)
}

/// Pauses, resumes (approves) or cancels rollout `id`: `control` is `pause`, `resume` or
/// `cancel`.
#[server(prefix = "/_fn", endpoint = "control-rollout", client = crate::api::CsrfClient)]
pub async fn control_rollout(
    name: String,
    id: i64,
    control: String,
) -> Result<Rollout, PortalError> {
    use super::{refuse, refused, return_to};
    return_to(&upgrades_page(&name));
    let Some(control) = flotilla_control::RolloutControl::parse(&control) else {
        let message = format!("must be pause, resume or cancel, got {control:?}");
        return Err(refuse(PortalError::field("control", message), 422));
    };
    use flotilla_domain::access::Role;
    if control == flotilla_control::RolloutControl::Cancel {
        super::require(Role::Contributor, &name)?;
    }
    let may_approve = super::require(Role::Contributor, &name).is_ok();
    super::fleet()
        .control_rollout(&name, id, control, &super::actor(), may_approve)
        .await
        .map(|v| v.rollout)
        .map_err(refused)
}

/// Rolls rollout `id` back to `version` (empty: the version it started from).
#[server(prefix = "/_fn", endpoint = "rollback-rollout", client = crate::api::CsrfClient)]
pub async fn rollback_rollout(
    name: String,
    id: i64,
    version: Option<String>,
) -> Result<Rollout, PortalError> {
    use super::{refuse, refused, return_to};
    return_to(&upgrades_page(&name));
    let version = flotilla_domain::validation::parse_optional::<u32>(
        "version",
        version.as_deref().unwrap_or_default(),
    )
    .map_err(|problem| refuse(PortalError::field("version", problem.message), 422))?;
    super::fleet()
        .rollback_rollout(
            &name,
            id,
            flotilla_control::RollbackRequest { version },
            &super::actor(),
        )
        .await
        .map(|v| v.rollout)
        .map_err(refused)
}

/// The Upgrades tab of scale set `name`.
#[cfg(feature = "ssr")]
fn upgrades_page(name: &str) -> String {
    crate::pages::scale_set::Tab::Upgrades.href(name)
}

/// A refusal listing `problems` by field.
#[cfg(feature = "ssr")]
fn invalid(problems: Vec<flotilla_domain::FieldError>) -> PortalError {
    PortalError {
        message: flotilla_domain::ValidationErrors(problems.clone()).to_string(),
        fields: problems,
        ..PortalError::default()
    }
}
