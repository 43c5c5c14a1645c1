//! A scale set's instances table a page at a time, and a person's actions on the
//! instances selected in it, upgrading them to the latest model among them.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use flotilla_domain::validation::{FieldError, parse};
use flotilla_domain::{Instance, InstanceAction, LifecycleResult, Protection};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::error::PortalError;

/// One page of a scale set's instances table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstancePage {
    /// The page's rows, filtered and ordered over the whole set.
    pub rows: Vec<Instance>,
    /// How many instances pass the filters, on every page.
    pub matched: usize,
    /// How many instances the set has.
    pub total: usize,
    /// The page shown: the one asked for, or the last one if that is past the end.
    pub page: usize,
    /// The ids asked after (the ones a request on the selection is following)…
    pub watching: BTreeSet<String>,
    /// …and their records, wherever they are; an id that is gone is left out.
    pub watched: Vec<Instance>,
    /// When the records were read (ages are counted to it).
    pub read_at: DateTime<Utc>,
}

/// Page `params` (the table's query: filters, order, `page`, `limit`, as
/// [`crate::instance_query::InstanceQuery::params`] writes them) of scale set `name`'s
/// instances, and the records of the ids `watch` names; `None` when there is no such set.
#[server(prefix = "/_fn", endpoint = "instance-rows", input = leptos::server_fn::codec::Json, client = crate::api::CsrfClient)]
pub async fn instance_rows(
    name: String,
    params: Vec<(String, String)>,
    watch: BTreeSet<String>,
) -> Result<Option<InstancePage>, ServerFnError> {
    use super::{fleet, server_error};
    use crate::instance_query::InstanceQuery;
    use flotilla_control::Error::NotFound;
    let fleet = fleet();
    let (set, instances) = match fleet.get_scale_set(&name).await {
        Ok(set) => match fleet.list_instances(&name).await {
            Ok(instances) => (set, instances),
            Err(NotFound { .. }) => return Ok(None),
            Err(e) => return Err(server_error(e)),
        },
        Err(NotFound { .. }) => return Ok(None),
        Err(e) => return Err(server_error(e)),
    };
    let query = InstanceQuery::from_pairs(&params);
    let matched = query.apply(&instances, set.model_version);
    let count = matched.len();
    let (rows, page) = query.page_of(matched);
    Ok(Some(InstancePage {
        rows: rows.into_iter().cloned().collect(),
        matched: count,
        total: instances.len(),
        page,
        watched: instances
            .iter()
            .filter(|i| watch.contains(&i.id))
            .cloned()
            .collect(),
        watching: watch,
        read_at: fleet.now(),
    }))
}

/// What the selection toolbar asks for: one of the instance actions, a protection to set
/// (`protect`, with the two flags as checkboxes), an upgrade to the latest model
/// (`upgrade`: a manual rollout of the selected instances), the end of each one's wait on
/// its lifecycle hook (`lifecycle-continue`, `lifecycle-abandon`), or a busy lease
/// (`busy`, with its seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    Act(InstanceAction),
    Protect(Protection),
    Upgrade,
    Complete(LifecycleResult),
    Busy(u32),
}

impl BulkAction {
    /// Reads the toolbar's fields: `action` names the button pressed; for `protect`,
    /// `scale_in` and `scale_set_actions` are the checkboxes (present when ticked); for
    /// `busy`, `busy_seconds`. A problem names its field (`action` or `busy_seconds`).
    pub fn parse(
        action: &str,
        scale_in: bool,
        scale_set_actions: bool,
        busy_seconds: Option<&str>,
    ) -> Result<Self, FieldError> {
        match action {
            "lifecycle-continue" => return Ok(Self::Complete(LifecycleResult::Continue)),
            "lifecycle-abandon" => return Ok(Self::Complete(LifecycleResult::Abandon)),
            "busy" => {
                return parse("busy_seconds", busy_seconds.unwrap_or_default()).map(Self::Busy);
            }
            "protect" => {
                return Ok(Self::Protect(Protection {
                    protect_from_scale_in: scale_in,
                    protect_from_scale_set_actions: scale_set_actions,
                }));
            }
            "upgrade" => return Ok(Self::Upgrade),
            _ => {}
        }
        action
            .parse::<InstanceAction>()
            .map(Self::Act)
            .map_err(|_| FieldError {
                field: "action".into(),
                message: format!(
                    "unknown action {action:?}; expected one of: start, stop, deallocate, \
                     restart, reimage, delete, protect, upgrade, lifecycle-continue, \
                     lifecycle-abandon, busy"
                ),
            })
    }

    /// The past participle for the outcome: `restart requested`, `protection set`.
    pub fn done(self) -> String {
        match self {
            Self::Act(action) => format!("{action} requested"),
            Self::Protect(_) => "protection set".to_string(),
            Self::Upgrade => "upgrade requested".to_string(),
            Self::Complete(result) => format!("lifecycle wait ended ({result})"),
            Self::Busy(0) => "busy lease ended".to_string(),
            Self::Busy(seconds) => format!("busy for {seconds} s"),
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
    /// The rollout an upgrade started.
    pub rollout: Option<i64>,
}

/// The instances table's pager without JavaScript: its buttons post the table's form here
/// (`go`, the page to show; `view`, the table's query — filters, order, page size — as
/// hidden fields; the ticked `ids`). Nothing is changed: the browser is sent to that page
/// with the ticked instances as its selection, so a selection spans pages.
#[server(prefix = "/_fn", endpoint = "instances-go", client = crate::api::CsrfClient)]
pub async fn go_to_page(
    name: String,
    go: String,
    ids: Option<Vec<String>>,
    view: Option<HashMap<String, String>>,
) -> Result<(), PortalError> {
    let tab = format!(
        "/scale-sets/{}/instances",
        flotilla_domain::url::percent_encode(&name)
    );
    super::return_to(&tab);
    let page = flotilla_domain::validation::parse::<usize>("go", &go)
        .map_err(|problem| super::refuse(PortalError::field("go", problem.message), 422))?;
    let view = view.unwrap_or_default();
    let query = crate::instance_query::InstanceQuery::from_params(|k| view.get(k).cloned());
    // At most as many ids as a set may have instances, as the address is read back.
    let selected: BTreeSet<String> = ids
        .unwrap_or_default()
        .into_iter()
        .take(flotilla_domain::scale_set::MAX_CAPACITY as usize)
        .collect();
    super::go_to(&query.page_href(&tab, page, &selected));
    Ok(())
}

/// Applies `action` to each instance in `ids` of scale set `name`. Every id must name an
/// instance of the set, or nothing is done; then each instance is handled on its own (as
/// a cloud's bulk operation does): one that refuses — still being created, say — does not
/// stop the others, and is listed with its reason. The reconciler carries the actions out.
#[server(prefix = "/_fn", endpoint = "instances-action", client = crate::api::CsrfClient)]
pub async fn act_on_instances(
    name: String,
    ids: Option<Vec<String>>,
    action: String,
    scale_in: Option<String>,
    scale_set_actions: Option<String>,
    busy_seconds: Option<String>,
) -> Result<BulkOutcome, PortalError> {
    use super::{refuse, refused, return_to};
    return_to(&format!(
        "/scale-sets/{}/instances",
        flotilla_domain::url::percent_encode(&name)
    ));
    let action = BulkAction::parse(
        &action,
        scale_in.is_some(),
        scale_set_actions.is_some(),
        busy_seconds.as_deref(),
    )
    .map_err(|problem| refuse(PortalError::field(&problem.field, problem.message), 422))?;
    let ids = ids.unwrap_or_default();
    if ids.is_empty() {
        return Err(refuse(
            PortalError::field("ids", "select at least one instance"),
            422,
        ));
    }
    let fleet = super::fleet();
    let known = fleet.list_instances(&name).await.map_err(refused)?;
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
    if action == BulkAction::Upgrade {
        // One rollout for the whole selection: it plans, skips and refuses as a whole.
        let request = flotilla_control::StartRollout {
            instances: Some(ids),
        };
        let rollout = fleet
            .start_rollout(&name, request, &super::actor())
            .await
            .map_err(refused)?
            .rollout;
        outcome.done = format!(
            "rollout #{} started: upgrading {} to version {}",
            rollout.id,
            crate::format::plural(rollout.instances.len() as u32, "instance", "instances"),
            rollout.target_version
        );
        outcome.rollout = Some(rollout.id);
        return Ok(outcome);
    }
    for id in ids {
        let result = match action {
            BulkAction::Act(act) => {
                fleet
                    .instance_action(&name, &id, act, &super::actor())
                    .await
            }
            BulkAction::Protect(protection) => {
                fleet
                    .set_protection(&name, &id, protection, &super::actor())
                    .await
            }
            BulkAction::Complete(result) => {
                // Each instance's own hook: the one it waits on.
                match known
                    .iter()
                    .find(|i| i.id == id)
                    .filter(|i| i.lifecycle.waiting())
                    .and_then(|i| i.lifecycle.lifecycle_hook.clone())
                {
                    Some(hook) => {
                        fleet
                            .complete_lifecycle(&name, &id, &hook, result, &super::actor())
                            .await
                    }
                    None => {
                        outcome
                            .refused
                            .push((id, "not waiting on a lifecycle hook".into()));
                        continue;
                    }
                }
            }
            BulkAction::Busy(seconds) => fleet.set_busy(&name, &id, seconds, &super::actor()).await,
            BulkAction::Upgrade => unreachable!("handled above"),
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
            BulkAction::parse("reimage", false, false, None),
            Ok(BulkAction::Act(InstanceAction::Reimage))
        );
        assert_eq!(
            BulkAction::parse("protect", true, false, None),
            Ok(BulkAction::Protect(Protection {
                protect_from_scale_in: true,
                protect_from_scale_set_actions: false
            }))
        );
        let unknown = BulkAction::parse("explode", false, false, None).unwrap_err();
        assert_eq!(unknown.field, "action");
        assert!(unknown.message.contains("unknown action \"explode\""));
        assert_eq!(
            BulkAction::Act(InstanceAction::Restart).done(),
            "restart requested"
        );
        assert_eq!(
            BulkAction::parse("upgrade", false, false, None),
            Ok(BulkAction::Upgrade)
        );
        assert_eq!(
            BulkAction::parse("lifecycle-abandon", false, false, None),
            Ok(BulkAction::Complete(LifecycleResult::Abandon))
        );
        assert_eq!(
            BulkAction::parse("busy", false, false, Some(" 600 ")),
            Ok(BulkAction::Busy(600))
        );
        assert_eq!(
            BulkAction::parse("busy", false, false, Some("soon")).unwrap_err(),
            FieldError {
                field: "busy_seconds".into(),
                message: "must be a whole number, got \"soon\"".into()
            }
        );
    }
}
