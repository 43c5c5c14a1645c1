//! `/activity` and `/scale-sets/{name}/activity`: the activity log, newest first, filtered
//! and paged (`?before=<id of the last entry seen>`).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use flotilla_domain::{Activity, ActivityFilter, ActivityResult, ValidationErrors};
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::error::{ApiError, ApiResult, Problem};
use super::json::ApiPath;

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActivityPage {
    pub items: Vec<Activity>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

/// Query parameters: `scale_set`, `operation`, `result`, `since`, `until` (RFC 3339),
/// `before` (an id), `limit` (1–1,000, default 100).
fn filter(query: &HashMap<String, String>) -> Result<ActivityFilter, ApiError> {
    let mut errors = ValidationErrors::default();
    let mut filter = ActivityFilter {
        limit: 100,
        ..ActivityFilter::default()
    };
    let time = |key: &str, errors: &mut ValidationErrors| {
        query
            .get(key)
            .and_then(|v| match DateTime::parse_from_rfc3339(v) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(e) => {
                    errors.push(
                        key,
                        format!("must be an RFC 3339 time such as 2026-01-31T12:00:00Z: {e}"),
                    );
                    None
                }
            })
    };
    for key in query.keys() {
        if ![
            "scale_set",
            "operation",
            "result",
            "since",
            "until",
            "before",
            "limit",
        ]
        .contains(&key.as_str())
        {
            errors.push(key.as_str(), "unknown query parameter");
        }
    }
    filter.scale_set = query.get("scale_set").cloned();
    filter.operation = query.get("operation").cloned();
    if let Some(r) = query.get("result") {
        match r.parse() {
            Ok(r) => filter.result = Some(r),
            Err(message) => errors.push("result", message),
        }
    }
    filter.since = time("since", &mut errors);
    filter.until = time("until", &mut errors);
    if let Some(b) = query.get("before") {
        match b.parse::<i64>() {
            Ok(b) => filter.before_id = Some(b),
            Err(_) => errors.push(
                "before",
                format!("must be an activity id (an integer), got {b:?}"),
            ),
        }
    }
    if let Some(l) = query.get("limit") {
        match l.parse::<u32>() {
            Ok(l) => filter.limit = l,
            Err(_) => errors.push(
                "limit",
                format!("must be an integer between 1 and 1000, got {l:?}"),
            ),
        }
    }
    errors.into_result().map_err(ApiError::invalid)?;
    Ok(filter)
}

async fn page(s: &ApiState, filter: ActivityFilter) -> ApiResult<Json<ActivityPage>> {
    let limit = filter.limit as usize;
    let items = s.fleet.activity(&filter).await?;
    let next_before = (items.len() == limit)
        .then(|| items.last().map(|a| a.id))
        .flatten();
    Ok(Json(ActivityPage { items, next_before }))
}

#[utoipa::path(get, path = "/activity", tag = "activity",
    params(("scale_set" = Option<String>, Query), ("operation" = Option<String>, Query),
        ("result" = inline(Option<ActivityResult>), Query),
        ("since" = Option<DateTime<Utc>>, Query), ("until" = Option<DateTime<Utc>>, Query),
        ("before" = Option<i64>, Query, description = "the id of the last entry seen: older entries only"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "default 100")),
    responses((status = 200, body = ActivityPage), (status = 422, body = Problem)))]
pub async fn list(
    State(s): State<ApiState>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<ActivityPage>> {
    page(&s, filter(&query)?).await
}

#[utoipa::path(get, path = "/scale-sets/{name}/activity", tag = "activity",
    params(("name" = String, Path), ("operation" = Option<String>, Query),
        ("result" = inline(Option<ActivityResult>), Query),
        ("since" = Option<DateTime<Utc>>, Query), ("until" = Option<DateTime<Utc>>, Query),
        ("before" = Option<i64>, Query, description = "the id of the last entry seen: older entries only"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "default 100")),
    responses((status = 200, body = ActivityPage), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn list_for_set(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<ActivityPage>> {
    s.fleet.get_scale_set(&name).await?;
    let mut filter = filter(&query)?;
    filter.scale_set = Some(name);
    page(&s, filter).await
}
