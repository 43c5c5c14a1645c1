//! The activity log.

use flotilla_domain::Activity;
use leptos::prelude::*;

/// The latest `limit` entries (1–1,000), newest first, of one scale set or of all.
#[server(prefix = "/_fn", endpoint = "activity")]
pub async fn list_activity(
    scale_set: Option<String>,
    limit: u32,
) -> Result<Vec<Activity>, ServerFnError> {
    use super::{fleet, server_error};
    let filter = flotilla_domain::ActivityFilter {
        scale_set,
        limit,
        ..Default::default()
    };
    fleet().activity(&filter).await.map_err(server_error)
}
