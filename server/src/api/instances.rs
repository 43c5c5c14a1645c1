//! `/scale-sets/{name}/instances`: list, show, act on one instance, set its protection and
//! busy lease, complete or extend its lifecycle hook's wait, read its console log; and
//! `/scale-sets/{name}/warm-pool`, the members kept apart from them.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use flotilla_control::Caller;
use flotilla_control::ConsoleOutput;
use flotilla_domain::warm_pool::WarmPoolView;
use flotilla_domain::{Instance, InstanceAction, LifecycleResult, Protection};

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

#[utoipa::path(get, path = "/scale-sets/{name}/warm-pool", tag = "instances",
    params(("name" = String, Path)),
    responses((status = 200, body = WarmPoolView, description = "the warm pool's members (not in `…/instances`), each with its pool state, and the pool's size with its arithmetic"),
        (status = 404, body = Problem)))]
pub async fn warm_pool(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<WarmPoolView>> {
    Ok(Json(s.fleet.warm_pool(&name).await?))
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

/// `POST …/instances/{id}/lifecycle/{hook}/complete`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Completion {
    /// `continue` goes on (to the next hook, into service, or on with the removal);
    /// `abandon` removes a launching instance or skips a removal's hooks left.
    pub result: LifecycleResult,
}

#[utoipa::path(post, path = "/scale-sets/{name}/instances/{id}/lifecycle/{hook}/complete", tag = "instances",
    request_body = Completion,
    params(("name" = String, Path), ("id" = String, Path), ("hook" = String, Path, description = "the lifecycle hook it waits on")),
    responses((status = 200, body = Instance, description = "the wait ended; the instance as it goes on"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "it does not wait on that hook"),
        (status = 422, body = Problem)))]
pub async fn complete_lifecycle(
    State(s): State<ApiState>,
    ApiPath((name, id, hook)): ApiPath<(String, String, String)>,
    Extension(caller): Extension<Caller>,
    ApiJson(completion): ApiJson<Completion>,
) -> ApiResult<Json<Instance>> {
    Ok(Json(
        s.fleet
            .complete_lifecycle(&name, &id, &hook, completion.result, actor(&caller))
            .await?,
    ))
}

#[utoipa::path(post, path = "/scale-sets/{name}/instances/{id}/lifecycle/{hook}/heartbeat", tag = "instances",
    params(("name" = String, Path), ("id" = String, Path), ("hook" = String, Path, description = "the lifecycle hook it waits on")),
    responses((status = 200, body = Instance, description = "the wait lasts a whole heartbeat timeout again (never past its global limit)"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "it does not wait on that hook")))]
pub async fn lifecycle_heartbeat(
    State(s): State<ApiState>,
    ApiPath((name, id, hook)): ApiPath<(String, String, String)>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Instance>> {
    Ok(Json(
        s.fleet
            .lifecycle_heartbeat(&name, &id, &hook, actor(&caller))
            .await?,
    ))
}

/// `PUT …/instances/{id}/busy`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Busy {
    /// How long from now scale-in, zone rebalancing and host maintenance leave the instance
    /// alone: 0 (ends the lease) to 3600; renew it to keep it.
    pub seconds: u32,
}

#[utoipa::path(put, path = "/scale-sets/{name}/instances/{id}/busy", tag = "instances",
    request_body = Busy, params(("name" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Instance, description = "`busy_until` is set"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "being deleted"),
        (status = 422, body = Problem)))]
pub async fn set_busy(
    State(s): State<ApiState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
    Extension(caller): Extension<Caller>,
    ApiJson(busy): ApiJson<Busy>,
) -> ApiResult<Json<Instance>> {
    Ok(Json(
        s.fleet
            .set_busy(&name, &id, busy.seconds, actor(&caller))
            .await?,
    ))
}
