//! `/activity` and `/scale-sets/{name}/activity`: the activity log, newest first, filtered
//! and paged (`?before=<id of the last entry seen>`).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::{Extension, Json};
use flotilla_control::Caller;
use flotilla_domain::{Activity, ActivityFilter, ActivityResult};
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::error::{ApiError, ApiResult, Problem};
use super::json::ApiPath;
use super::query::Params;

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActivityPage {
    pub items: Vec<Activity>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

/// Query parameters: `scale_set`, `actor` (who acted: a user, `user/token`, `system:…`),
/// `operation`, `result`, `since`, `until` (RFC 3339),
/// `before` (an id), `limit` (1–1,000, default 100).
fn filter(query: &HashMap<String, String>) -> Result<ActivityFilter, ApiError> {
    let mut p = Params::new(
        query,
        &[
            "scale_set",
            "actor",
            "operation",
            "result",
            "since",
            "until",
            "before",
            "limit",
        ],
    );
    let filter = ActivityFilter {
        scale_set: p.text("scale_set"),
        actor: p.text("actor"),
        operation: p.text("operation"),
        result: p.parsed("result", str::parse),
        since: p.time("since"),
        until: p.time("until"),
        before_id: p.number("before", "an activity id (an integer)"),
        limit: p
            .number("limit", "an integer between 1 and 1000")
            .unwrap_or(100),
    };
    p.finish()?;
    Ok(filter)
}

/// A page of entries, of which the caller sees those of the scale sets it may read (all
/// of them for a fleet-wide Reader); the paging follows the whole log.
async fn page(
    s: &ApiState,
    caller: &Caller,
    filter: ActivityFilter,
) -> ApiResult<Json<ActivityPage>> {
    let limit = filter.limit as usize;
    let mut items = s.fleet.activity(&filter).await?;
    let next_before = (items.len() == limit)
        .then(|| items.last().map(|a| a.id))
        .flatten();
    items.retain(|a| super::sees(caller, a.scale_set.as_deref()));
    Ok(Json(ActivityPage { items, next_before }))
}

#[utoipa::path(get, path = "/activity", tag = "activity",
    params(("scale_set" = Option<String>, Query),
        ("actor" = Option<String>, Query, description = "who acted: a user, `user/token`, `system:…`"),
        ("operation" = Option<String>, Query),
        ("result" = inline(Option<ActivityResult>), Query),
        ("since" = Option<DateTime<Utc>>, Query), ("until" = Option<DateTime<Utc>>, Query),
        ("before" = Option<i64>, Query, description = "the id of the last entry seen: older entries only"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "default 100")),
    responses((status = 200, body = ActivityPage), (status = 422, body = Problem)))]
pub async fn list(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<ActivityPage>> {
    page(&s, &caller, filter(&query)?).await
}

#[utoipa::path(get, path = "/scale-sets/{name}/activity", tag = "activity",
    params(("name" = String, Path),
        ("actor" = Option<String>, Query, description = "who acted: a user, `user/token`, `system:…`"),
        ("operation" = Option<String>, Query),
        ("result" = inline(Option<ActivityResult>), Query),
        ("since" = Option<DateTime<Utc>>, Query), ("until" = Option<DateTime<Utc>>, Query),
        ("before" = Option<i64>, Query, description = "the id of the last entry seen: older entries only"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "default 100")),
    responses((status = 200, body = ActivityPage), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn list_for_set(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<ActivityPage>> {
    s.fleet.get_scale_set(&name).await?;
    let mut filter = filter(&query)?;
    filter.scale_set = Some(name);
    page(&s, &caller, filter).await
}
