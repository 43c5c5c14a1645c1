//! The mock's synthetic demand: `/scale-sets/{name}/demand`.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use flotilla_control::Caller;
use flotilla_domain::ScaleSet;
use flotilla_domain::demand::Demand;
use serde::{Deserialize, Serialize};

use super::error::{ApiResult, Problem};
use super::json::{ApiJson, ApiPath};
use super::{ApiState, actor};

/// The set's synthetic demand and its value now.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DemandView {
    pub demand: Option<Demand>,
    /// Requests per second the demand asks for now (without noise).
    pub current_rps: Option<f64>,
}

#[utoipa::path(get, path = "/scale-sets/{name}/demand", tag = "autoscale",
    params(("name" = String, Path)),
    responses((status = 200, body = DemandView), (status = 404, body = Problem)))]
pub async fn get_demand(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<DemandView>> {
    let set = s.fleet.get_scale_set(&name).await?;
    let current_rps = set.spec.demand.as_ref().map(|d| d.rps_at(s.fleet.now()));
    Ok(Json(DemandView {
        demand: set.spec.demand,
        current_rps,
    }))
}

#[utoipa::path(put, path = "/scale-sets/{name}/demand", tag = "autoscale", request_body = Demand,
    params(("name" = String, Path)),
    responses((status = 200, body = ScaleSet),
        (status = 400, body = Problem, description = "the backend is not the mock (only the mock simulates load)"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "the scale set is being deleted, or changes too often to write; retry"),
        (status = 422, body = Problem)))]
pub async fn put_demand(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Extension(caller): Extension<Caller>,
    ApiJson(demand): ApiJson<Demand>,
) -> ApiResult<Json<ScaleSet>> {
    Ok(Json(
        s.fleet
            .set_demand(&name, Some(demand), actor(&caller))
            .await?,
    ))
}

#[utoipa::path(delete, path = "/scale-sets/{name}/demand", tag = "autoscale",
    params(("name" = String, Path)),
    responses((status = 200, body = ScaleSet),
        (status = 400, body = Problem, description = "the backend is not the mock (only the mock simulates load)"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "the scale set is being deleted, or changes too often to write; retry")))]
pub async fn delete_demand(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<ScaleSet>> {
    Ok(Json(s.fleet.set_demand(&name, None, actor(&caller)).await?))
}
