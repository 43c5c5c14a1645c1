//! Scale sets for the overview, the list and a scale set's page.

use leptos::prelude::*;

use crate::api::error::PortalError;
use crate::summary::{Detail, ScaleSetDetail, ScaleSetSummary};

/// Every scale set with its instance counts: two reads (the sets, and the store's counts
/// by state), whatever the size of the fleet.
#[server(prefix = "/_fn", endpoint = "scale-sets", client = crate::api::CsrfClient)]
pub async fn list_scale_sets() -> Result<Vec<ScaleSetSummary>, ServerFnError> {
    use super::{fleet, server_error};
    let fleet = fleet();
    let mut sets = fleet.list_scale_sets().await.map_err(server_error)?;
    sets.retain(|s| super::sees(Some(s.name())));
    let mut counts = fleet.instance_counts(None).await.map_err(server_error)?;
    counts.retain(|c| super::sees(Some(&c.scale_set)));
    Ok(ScaleSetSummary::of_fleet(sets, counts))
}

/// The names of every scale set, for pickers (the activity log's filter).
#[server(prefix = "/_fn", endpoint = "scale-set-names", client = crate::api::CsrfClient)]
pub async fn scale_set_names() -> Result<Vec<String>, ServerFnError> {
    use super::{fleet, server_error};
    let sets = fleet().list_scale_sets().await.map_err(server_error)?;
    let mut names: Vec<String> = sets
        .iter()
        .map(|s| s.name().to_string())
        .filter(|name| super::sees(Some(name)))
        .collect();
    names.sort();
    Ok(names)
}

/// What became of one scale set of a bulk delete: `error` says why it was refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeleteOutcome {
    pub name: String,
    pub error: Option<String>,
}

/// Starts deleting each of `names`, one after the other; a refusal of one does not stop
/// the others. Answers one outcome per name, in order.
#[server(prefix = "/_fn", endpoint = "delete-scale-sets", input = leptos::server_fn::codec::Json, client = crate::api::CsrfClient)]
pub async fn delete_scale_sets(names: Vec<String>) -> Result<Vec<DeleteOutcome>, ServerFnError> {
    let fleet = super::fleet();
    let mut outcomes = Vec::with_capacity(names.len());
    for name in names {
        let error = fleet
            .delete_scale_set(&name, &super::actor())
            .await
            .err()
            .map(|e| e.to_string());
        outcomes.push(DeleteOutcome { name, error });
    }
    Ok(outcomes)
}

/// Deletes scale set `name` once the person has typed its name (`confirmation`) — the
/// Settings tab's form, with or without JavaScript. On success the browser goes to the list.
#[server(prefix = "/_fn", endpoint = "delete-scale-set", client = crate::api::CsrfClient)]
pub async fn delete_scale_set(name: String, confirmation: String) -> Result<(), PortalError> {
    use super::{refuse, refused, return_to};
    return_to(&format!(
        "/scale-sets/{}/settings",
        flotilla_domain::url::percent_encode(&name)
    ));
    if confirmation.trim() != name {
        let message = format!("type the scale set's name, {name}, to confirm");
        return Err(refuse(
            PortalError::field("confirmation", message).with_input(Some(confirmation)),
            422,
        ));
    }
    super::fleet()
        .delete_scale_set(&name, &super::actor())
        .await
        .map_err(refused)?;
    leptos_axum::redirect("/scale-sets");
    Ok(())
}

/// One scale set with its counts by state and as much of its instances as `detail` says
/// (what the tab shown needs); `None` when there is no such set.
#[server(prefix = "/_fn", endpoint = "scale-set", client = crate::api::CsrfClient)]
pub async fn get_scale_set(
    name: String,
    detail: Detail,
) -> Result<Option<ScaleSetDetail>, ServerFnError> {
    use super::{fleet, server_error};
    use flotilla_control::Error::NotFound;
    let fleet = fleet();
    let set = match fleet.get_scale_set(&name).await {
        Ok(set) => set,
        Err(NotFound { .. }) => return Ok(None),
        Err(e) => return Err(server_error(e)),
    };
    if detail == Detail::Counts {
        let counts = fleet
            .instance_counts(Some(&name))
            .await
            .map_err(server_error)?;
        return Ok(Some(ScaleSetDetail::counted(set, &counts, fleet.now())));
    }
    match fleet.list_instances(&name).await {
        Ok(instances) => Ok(Some(ScaleSetDetail::new(
            set,
            instances,
            detail,
            fleet.now(),
        ))),
        Err(NotFound { .. }) => Ok(None),
        Err(e) => Err(server_error(e)),
    }
}

/// Sets a scale set's capacity: to `capacity` as typed, or to the current capacity plus
/// `delta` (the −1 / +1 buttons). Called by the capacity form, with or without JavaScript.
/// Answers the new capacity.
#[server(prefix = "/_fn", endpoint = "set-capacity", client = crate::api::CsrfClient)]
pub async fn set_capacity(
    name: String,
    capacity: Option<String>,
    delta: Option<i64>,
) -> Result<u32, PortalError> {
    use super::{refuse, refused, return_to};
    return_to(&format!("/scale-sets/{name}"));
    let fleet = super::fleet();
    let (requested, typed) = match (delta, capacity) {
        (Some(delta), _) => {
            let set = fleet.get_scale_set(&name).await.map_err(refused)?;
            (i64::from(set.spec.capacity) + delta, None)
        }
        (None, Some(typed)) => match parse_capacity(&typed) {
            Ok(n) => (n, Some(typed)),
            Err(message) => {
                let error = PortalError::field("capacity", message).with_input(Some(typed));
                return Err(refuse(error, 422));
            }
        },
        (None, None) => {
            return Err(refuse(
                PortalError::field("capacity", "enter a number"),
                422,
            ));
        }
    };
    let capacity = checked_capacity(requested).map_err(|message| {
        refuse(
            PortalError::field("capacity", message).with_input(typed.clone()),
            422,
        )
    })?;
    let set = fleet
        .set_capacity(&name, capacity, &super::actor())
        .await
        .map_err(|e| refused(e).with_input(typed))?;
    Ok(set.spec.capacity)
}

/// A capacity as typed: a whole number, possibly negative (refused later with the bounds).
pub fn parse_capacity(typed: &str) -> Result<i64, String> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Err("enter a number".into());
    }
    flotilla_domain::validation::parse("capacity", typed).map_err(|e| e.message)
}

/// A requested capacity that fits the API's type; the Fleet checks the real bounds.
pub fn checked_capacity(requested: i64) -> Result<u32, String> {
    u32::try_from(requested).map_err(|_| {
        format!(
            "must be between 0 and {}, got {requested}",
            flotilla_domain::scale_set::MAX_CAPACITY
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_as_typed() {
        assert_eq!(parse_capacity(" 5 "), Ok(5));
        assert_eq!(parse_capacity("-1"), Ok(-1));
        assert_eq!(
            parse_capacity("abc"),
            Err("must be a whole number, got \"abc\"".into())
        );
        assert_eq!(parse_capacity(""), Err("enter a number".into()));
        assert_eq!(checked_capacity(3), Ok(3));
        assert_eq!(
            checked_capacity(-1),
            Err("must be between 0 and 10000, got -1".into())
        );
    }
}
