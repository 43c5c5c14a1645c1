//! A person's actions on the instances selected in a scale set's instances table.

use flotilla_domain::{Instance, InstanceAction, Protection};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::error::PortalError;

/// What the selection toolbar asks for: one of the instance actions, or a protection to
/// set (`protect`, with the two flags as checkboxes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    Act(InstanceAction),
    Protect(Protection),
}

impl BulkAction {
    /// Reads the toolbar's fields: `action` names the button pressed; for `protect`,
    /// `scale_in` and `scale_set_actions` are the checkboxes (present when ticked).
    pub fn parse(action: &str, scale_in: bool, scale_set_actions: bool) -> Result<Self, String> {
        if action == "protect" {
            return Ok(Self::Protect(Protection {
                protect_from_scale_in: scale_in,
                protect_from_scale_set_actions: scale_set_actions,
            }));
        }
        action
            .parse::<InstanceAction>()
            .map(Self::Act)
            .map_err(|_| {
                format!(
                    "unknown action {action:?}; expected one of: start, stop, deallocate, \
                     restart, reimage, delete, protect"
                )
            })
    }

    /// The past participle for the outcome: `restart requested`, `protection set`.
    pub fn done(self) -> String {
        match self {
            Self::Act(action) => format!("{action} requested"),
            Self::Protect(_) => "protection set".to_string(),
        }
    }
}

/// What became of a request on several instances: the instances as recorded after it
/// (showing their pending state at once), and the ones refused with the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkOutcome {
    /// What was asked, in words (`restart requested`).
    pub done: String,
    pub updated: Vec<Instance>,
    /// `(instance id, reason)`.
    pub refused: Vec<(String, String)>,
}

/// Applies `action` to each instance in `ids` of scale set `name`. Every id must name an
/// instance of the set, or nothing is done; then each instance is handled on its own (as
/// a cloud's bulk operation does): one that refuses — still being created, say — does not
/// stop the others, and is listed with its reason. The reconciler carries the actions out.
#[server(prefix = "/_fn", endpoint = "instances-action")]
pub async fn act_on_instances(
    name: String,
    ids: Option<Vec<String>>,
    action: String,
    scale_in: Option<String>,
    scale_set_actions: Option<String>,
) -> Result<BulkOutcome, PortalError> {
    use super::{refuse, return_to, status_of};
    return_to(&format!(
        "/scale-sets/{}/instances",
        flotilla_domain::url::percent_encode(&name)
    ));
    let action = BulkAction::parse(&action, scale_in.is_some(), scale_set_actions.is_some())
        .map_err(|message| refuse(PortalError::field("action", message), 422))?;
    let ids = ids.unwrap_or_default();
    if ids.is_empty() {
        return Err(refuse(
            PortalError::field("ids", "select at least one instance"),
            422,
        ));
    }
    let fleet = super::fleet();
    let fail = |e: flotilla_control::Error| {
        let code = status_of(&e);
        refuse(PortalError::from(e), code)
    };
    let known = fleet.list_instances(&name).await.map_err(fail)?;
    let unknown: Vec<&str> = ids
        .iter()
        .filter(|id| !known.iter().any(|i| &i.id == *id))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let message = format!(
            "no instance {} in scale set {name:?}; nothing was changed",
            unknown.join(", ")
        );
        return Err(refuse(PortalError::field("ids", message), 404));
    }
    let mut outcome = BulkOutcome {
        done: action.done(),
        ..BulkOutcome::default()
    };
    for id in ids {
        let result = match action {
            BulkAction::Act(act) => fleet.instance_action(&name, &id, act, "portal").await,
            BulkAction::Protect(protection) => {
                fleet.set_protection(&name, &id, protection, "portal").await
            }
        };
        match result {
            Ok(instance) => outcome.updated.push(instance),
            Err(e) => outcome.refused.push((id, e.to_string())),
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_toolbar() {
        assert_eq!(
            BulkAction::parse("reimage", false, false),
            Ok(BulkAction::Act(InstanceAction::Reimage))
        );
        assert_eq!(
            BulkAction::parse("protect", true, false),
            Ok(BulkAction::Protect(Protection {
                protect_from_scale_in: true,
                protect_from_scale_set_actions: false
            }))
        );
        assert!(
            BulkAction::parse("explode", false, false)
                .unwrap_err()
                .contains("unknown action \"explode\"")
        );
        assert_eq!(
            BulkAction::Act(InstanceAction::Restart).done(),
            "restart requested"
        );
    }
}
