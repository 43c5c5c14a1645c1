//! The load balancer: `/scale-sets/{name}/load-balancer`, `/load-balancer` and an
//! instance's switch (`/scale-sets/{name}/instances/{id}/load-balancer`).

use axum::Extension;
use axum::Json;
use axum::extract::State;
use flotilla_control::Caller;
use flotilla_domain::Instance;
use flotilla_domain::load_balancer::FrontendStats;
use flotilla_domain::scale_set::Frontend;
use serde::{Deserialize, Serialize};

use super::error::{ApiResult, Problem};
use super::json::{ApiJson, ApiPath};
use super::{ApiState, Items, actor};

/// A scale set's load balancer: its frontends as configured and their live statistics.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoadBalancerView {
    pub frontends: Vec<Frontend>,
    pub stats: Vec<FrontendStats>,
}

#[utoipa::path(get, path = "/scale-sets/{name}/load-balancer", tag = "health",
    params(("name" = String, Path)),
    responses((status = 200, body = LoadBalancerView), (status = 404, body = Problem)))]
pub async fn load_balancer(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<LoadBalancerView>> {
    let set = s.fleet.get_scale_set(&name).await?;
    let stats = s
        .fleet
        .load_balancer_stats()
        .into_iter()
        .filter(|f| f.scale_set == name)
        .collect();
    Ok(Json(LoadBalancerView {
        frontends: set
            .spec
            .load_balancer
            .map(|lb| lb.frontends)
            .unwrap_or_default(),
        stats,
    }))
}

#[utoipa::path(get, path = "/load-balancer", tag = "health",
    responses((status = 200, body = Items<FrontendStats>, description = "every frontend with its pools' members")))]
pub async fn all_frontends(State(s): State<ApiState>) -> Json<Items<FrontendStats>> {
    Json(Items {
        items: s.fleet.load_balancer_stats(),
    })
}

/// `PUT …/instances/{id}/load-balancer`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoadBalancerSwitch {
    /// `false` drains the instance (no new requests; those in flight finish).
    pub enabled: bool,
}

#[utoipa::path(put, path = "/scale-sets/{name}/instances/{id}/load-balancer", tag = "instances",
    request_body = LoadBalancerSwitch, params(("name" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Instance), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn set_instance_switch(
    State(s): State<ApiState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
    Extension(caller): Extension<Caller>,
    ApiJson(switch): ApiJson<LoadBalancerSwitch>,
) -> ApiResult<Json<Instance>> {
    Ok(Json(
        s.fleet
            .set_load_balancer_enabled(&name, &id, switch.enabled, actor(&caller))
            .await?,
    ))
}
