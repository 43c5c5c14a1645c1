//! A scale set's metrics: `/scale-sets/{name}/metrics`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use flotilla_control::MetricsQuery;
use flotilla_domain::metrics::MetricsAnswer;

use super::ApiState;
use super::error::{ApiResult, Problem};
use super::json::ApiPath;
use super::query::Params;

#[utoipa::path(get, path = "/scale-sets/{name}/metrics", tag = "autoscale",
    params(("name" = String, Path),
        ("metric" = Option<String>, Query, description = "comma-separated metric names, e.g. cpu_percent,requests_per_second"),
        ("from" = Option<DateTime<Utc>>, Query, description = "default one hour before `to`"),
        ("to" = Option<DateTime<Utc>>, Query, description = "default now"),
        ("step" = Option<u32>, Query, minimum = 1, description = "seconds per point; default the range over 300 points"),
        ("instance" = Option<String>, Query, description = "one instance's recent samples instead of the set's aggregates")),
    responses((status = 200, body = MetricsAnswer), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn metrics(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<MetricsAnswer>> {
    let mut p = Params::new(&query, &["metric", "from", "to", "step", "instance"]);
    let q = MetricsQuery {
        metric: p.text("metric"),
        from: p.time("from"),
        to: p.time("to"),
        step: p.number("step", "a whole number of seconds"),
        instance: p.text("instance"),
    };
    p.finish()?;
    Ok(Json(s.fleet.metrics(&name, &q).await?))
}
