//! The activity log.

use flotilla_domain::{Activity, ActivityFilter};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::summary::RecentFailures;

/// The entries that pass `filter`, newest first (at most `filter.limit`, 1–1,000).
#[server(prefix = "/_fn", endpoint = "activity", input = Json, client = crate::api::CsrfClient)]
pub async fn list_activity(filter: ActivityFilter) -> Result<Vec<Activity>, ServerFnError> {
    use super::{fleet, sees, server_error};
    let mut entries = fleet().activity(&filter).await.map_err(server_error)?;
    entries.retain(|a| sees(a.scale_set.as_deref()));
    Ok(entries)
}

/// The failed operations of the last hour ([`RecentFailures::WINDOW`]) by the fleet's
/// clock, counted up to [`RecentFailures::MAX`].
#[server(prefix = "/_fn", endpoint = "failures-last-hour", client = crate::api::CsrfClient)]
pub async fn failures_last_hour() -> Result<RecentFailures, ServerFnError> {
    use super::{fleet, server_error};
    let fleet = fleet();
    let since = RecentFailures::since(fleet.now());
    let mut found = fleet
        .activity(&RecentFailures::filter(since))
        .await
        .map_err(server_error)?;
    found.retain(|a| super::sees(a.scale_set.as_deref()));
    Ok(RecentFailures::new(since, found.len()))
}
