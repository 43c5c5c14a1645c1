//! `/scale-sets/{name}/instances`: list, show, act on one instance, set its protection, read
//! its console log.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use flotilla_control::Caller;
use flotilla_control::ConsoleOutput;
use flotilla_domain::{Instance, InstanceAction, Protection};

use super::error::{ApiError, ApiResult, Problem};
use super::json::{ApiJson, ApiPath};
use super::{ApiState, Items, actor};

#[utoipa::path(get, path = "/scale-sets/{name}/instances", tag = "instances",
    params(("name" = String, Path)), responses((status = 200, body = Items<Instance>), (status = 404, body = Problem)))]
pub async fn list(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Items<Instance>>> {
    Ok(Json(Items {
        items: s.fleet.list_instances(&name).await?,
    }))
}

#[utoipa::path(get, path = "/scale-sets/{name}/instances/{id}", tag = "instances",
    params(("name" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Instance), (status = 404, body = Problem)))]
pub async fn get(
    State(s): State<ApiState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Instance>> {
    Ok(Json(s.fleet.get_instance(&name, &id).await?))
}

#[utoipa::path(get, path = "/scale-sets/{name}/instances/{id}/console", tag = "instances",
    params(("name" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = ConsoleOutput, description = "the end of the serial console log"),
        (status = 400, body = Problem, description = "the backend keeps no console log"),
        (status = 404, body = Problem),
        (status = 502, body = Problem, description = "the backend failed reading the console log")))]
pub async fn console(
    State(s): State<ApiState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<ConsoleOutput>> {
    Ok(Json(s.fleet.console(&name, &id).await?))
}

#[utoipa::path(post, path = "/scale-sets/{name}/instances/{id}/{action}", tag = "instances",
    params(("name" = String, Path), ("id" = String, Path),
        ("action" = inline(InstanceAction), Path)),
    responses((status = 202, body = Instance, description = "accepted; the reconciler carries it out"),
        (status = 404, body = Problem, description = "no such scale set, instance or action"),
        (status = 409, body = Problem, description = "not allowed in the instance's state")))]
pub async fn act(
    State(s): State<ApiState>,
    ApiPath((name, id, action)): ApiPath<(String, String, String)>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<impl IntoResponse> {
    let action: InstanceAction = action
        .parse()
        .map_err(|message: String| ApiError::field(StatusCode::NOT_FOUND, "action", message))?;
    let instance = s
        .fleet
        .instance_action(&name, &id, action, actor(&caller))
        .await?;
    Ok((StatusCode::ACCEPTED, Json(instance)))
}

#[utoipa::path(put, path = "/scale-sets/{name}/instances/{id}/protection", tag = "instances",
    request_body = Protection, params(("name" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Instance), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn set_protection(
    State(s): State<ApiState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
    Extension(caller): Extension<Caller>,
    ApiJson(protection): ApiJson<Protection>,
) -> ApiResult<Json<Instance>> {
    Ok(Json(
        s.fleet
            .set_protection(&name, &id, protection, actor(&caller))
            .await?,
    ))
}
