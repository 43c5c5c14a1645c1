//! The activity log.

use flotilla_domain::{Activity, ActivityFilter};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// The entries that pass `filter`, newest first (at most `filter.limit`, 1–1,000).
#[server(prefix = "/_fn", endpoint = "activity", input = Json)]
pub async fn list_activity(filter: ActivityFilter) -> Result<Vec<Activity>, ServerFnError> {
    use super::{fleet, server_error};
    fleet().activity(&filter).await.map_err(server_error)
}
