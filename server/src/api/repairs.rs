//! The repair service: `/scale-sets/{name}/repairs` and `…/repairs/resume`.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use flotilla_control::Caller;
use flotilla_domain::ScaleSet;
use flotilla_domain::repair::RepairOverview;

use super::error::{ApiResult, Problem};
use super::json::ApiPath;
use super::{ApiState, actor};

#[utoipa::path(get, path = "/scale-sets/{name}/repairs", tag = "health",
    params(("name" = String, Path)),
    responses((status = 200, body = RepairOverview, description = "the repair service's status, its limit, and what it would repair now and why"),
        (status = 404, body = Problem),
        (status = 502, body = Problem, description = "the backend failed listing its zones")))]
pub async fn repairs(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<RepairOverview>> {
    Ok(Json(s.fleet.repairs(&name).await?))
}

#[utoipa::path(post, path = "/scale-sets/{name}/repairs/resume", tag = "health",
    params(("name" = String, Path)),
    responses((status = 200, body = ScaleSet), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "repairs are not suspended")))]
pub async fn resume_repairs(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<ScaleSet>> {
    Ok(Json(s.fleet.resume_repairs(&name, actor(&caller)).await?))
}
