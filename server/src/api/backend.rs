//! `/backend`: zones, images, hosts and their maintenance, VMs and (on the mock) fault
//! injection.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use flotilla_control::BackendInfo;
use flotilla_control::Caller;
use flotilla_domain::maintenance::{HostMaintenance, MaintenanceStatus};
use flotilla_domain::{BackendVm, Fault};

use super::error::{ApiResult, Problem};
use super::json::ApiJson;
use super::{ApiState, Items, actor};

#[utoipa::path(get, path = "/backend", tag = "backend",
    responses((status = 200, body = BackendInfo),
        (status = 502, body = Problem, description = "the backend failed listing its zones, images or hosts")))]
pub async fn info(State(s): State<ApiState>) -> ApiResult<Json<BackendInfo>> {
    Ok(Json(s.fleet.backend_info().await?))
}

#[utoipa::path(get, path = "/backend/vms", tag = "backend",
    responses((status = 200, body = Items<BackendVm>, description = "every VM the backend holds, each with its installation and whether it is foreign (another installation's, or of none: never touched)"),
        (status = 502, body = Problem, description = "the backend failed listing its VMs")))]
pub async fn vms(State(s): State<ApiState>) -> ApiResult<Json<Items<BackendVm>>> {
    Ok(Json(Items {
        items: s.fleet.backend_vms().await?,
    }))
}

#[utoipa::path(get, path = "/backend/faults", tag = "backend",
    responses((status = 200, body = Items<Fault>), (status = 400, body = Problem, description = "not the mock")))]
pub async fn faults(State(s): State<ApiState>) -> ApiResult<Json<Items<Fault>>> {
    Ok(Json(Items {
        items: s.fleet.faults().await?,
    }))
}

#[utoipa::path(post, path = "/backend/faults", tag = "backend", request_body = Fault,
    responses((status = 204), (status = 400, body = Problem, description = "not the mock"),
        (status = 404, body = Problem), (status = 422, body = Problem),
        (status = 502, body = Problem, description = "the backend failed injecting the fault")))]
pub async fn inject(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiJson(fault): ApiJson<Fault>,
) -> ApiResult<impl IntoResponse> {
    s.fleet.inject_fault(fault, actor(&caller)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/backend/faults", tag = "backend",
    responses((status = 204), (status = 400, body = Problem, description = "not the mock"),
        (status = 502, body = Problem, description = "the backend failed clearing the faults")))]
pub async fn clear(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<impl IntoResponse> {
    s.fleet.clear_faults(actor(&caller)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/backend/maintenance", tag = "backend",
    responses((status = 200, body = Items<MaintenanceStatus>, description = "every closed host (under maintenance or unreachable) with its progress: instances moved, and each one still on it with its step and why it waits")))]
pub async fn maintenance(State(s): State<ApiState>) -> ApiResult<Json<Items<MaintenanceStatus>>> {
    Ok(Json(Items {
        items: s.fleet.maintenance().await?,
    }))
}

#[utoipa::path(post, path = "/backend/hosts/{name}/maintenance", tag = "backend",
    params(("name" = String, Path, description = "the host's name (`GET /backend`, `hosts[].name`)")),
    responses((status = 200, body = MaintenanceStatus, description = "the host is closed: nothing new is placed on it, and each scale set moves its instances off by surge (replacement serving first, then drained and removed through the terminating hooks); asking again changes nothing"),
        (status = 404, body = Problem, description = "no such host"),
        (status = 502, body = Problem, description = "the backend failed listing its hosts")))]
pub async fn start_maintenance(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<MaintenanceStatus>> {
    Ok(Json(
        s.fleet.start_maintenance(&name, actor(&caller)).await?,
    ))
}

#[utoipa::path(post, path = "/backend/hosts/{name}/maintenance/end", tag = "backend",
    params(("name" = String, Path, description = "the host's name")),
    responses((status = 200, body = HostMaintenance, description = "the host takes new instances again; moves not finished stop (the record that ended)"),
        (status = 404, body = Problem, description = "no such host"),
        (status = 409, body = Problem, description = "the host is not under maintenance")))]
pub async fn end_maintenance(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<HostMaintenance>> {
    Ok(Json(s.fleet.end_maintenance(&name, actor(&caller)).await?))
}
