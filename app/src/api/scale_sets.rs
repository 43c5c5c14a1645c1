//! Scale sets for the overview, the list and a scale set's page.

use leptos::prelude::*;

use crate::summary::{ScaleSetDetail, ScaleSetSummary};

/// Every scale set with its instance counts.
#[server(prefix = "/_fn", endpoint = "scale-sets")]
pub async fn list_scale_sets() -> Result<Vec<ScaleSetSummary>, ServerFnError> {
    use super::{fleet, server_error};
    let fleet = fleet();
    let sets = fleet.list_scale_sets().await.map_err(server_error)?;
    let mut summaries = Vec::with_capacity(sets.len());
    for set in sets {
        match fleet.list_instances(set.name()).await {
            Ok(instances) => summaries.push(ScaleSetSummary::new(set, &instances)),
            // Deleted between the two reads: it is no longer in the fleet.
            Err(flotilla_control::Error::NotFound { .. }) => {}
            Err(e) => return Err(server_error(e)),
        }
    }
    Ok(summaries)
}

/// One scale set with its instances; `None` when there is no such set.
#[server(prefix = "/_fn", endpoint = "scale-set")]
pub async fn get_scale_set(name: String) -> Result<Option<ScaleSetDetail>, ServerFnError> {
    use super::{fleet, server_error};
    let fleet = fleet();
    let set = match fleet.get_scale_set(&name).await {
        Ok(set) => set,
        Err(flotilla_control::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(server_error(e)),
    };
    match fleet.list_instances(&name).await {
        Ok(instances) => Ok(Some(ScaleSetDetail::new(set, instances))),
        Err(flotilla_control::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(server_error(e)),
    }
}
