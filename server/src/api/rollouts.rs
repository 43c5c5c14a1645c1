//! Model versions rolled out: `/scale-sets/{name}/rollouts` (list, start, preview),
//! `/scale-sets/{name}/rollouts/{id}` and its `pause|resume|cancel|rollback`.

use std::collections::HashMap;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use flotilla_control::Caller;
use flotilla_control::{PreviewRequest, RollbackRequest, RolloutControl, StartRollout};
use flotilla_domain::rollout::{RolloutPlan, RolloutView};

use super::error::{ApiError, ApiResult, Problem};
use super::json::{ApiJson, ApiPath, parse};
use super::query::Params;
use super::{ApiState, Items, actor};
use flotilla_domain::access::{Access, Role};

#[utoipa::path(get, path = "/scale-sets/{name}/rollouts", tag = "rollouts",
    params(("name" = String, Path), ("limit" = Option<u32>, Query, description = "1–1,000, default 100")),
    responses((status = 200, body = Items<RolloutView>, description = "rollouts, newest first"),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Items<RolloutView>>> {
    let mut p = Params::new(&query, &["limit"]);
    let limit = p.number::<u32>("limit", "a whole number").unwrap_or(100);
    p.finish()?;
    Ok(Json(Items {
        items: s.fleet.rollouts(&name, limit.clamp(1, 1000)).await?,
    }))
}

#[utoipa::path(post, path = "/scale-sets/{name}/rollouts", tag = "rollouts",
    request_body = StartRollout, params(("name" = String, Path)),
    responses((status = 201, body = RolloutView, description = "started: every out-of-date instance in the rolling policy's batches (all at once in Automatic mode), or the chosen instances at once"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "a rollout is running, or nothing is out of date"),
        (status = 422, body = Problem)))]
pub async fn start(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<StartRollout>,
) -> ApiResult<impl IntoResponse> {
    let rollout = s
        .fleet
        .start_rollout(&name, request, actor(&caller))
        .await?;
    Ok((StatusCode::CREATED, Json(rollout)))
}

#[utoipa::path(post, path = "/scale-sets/{name}/rollouts/preview", tag = "rollouts",
    request_body = PreviewRequest, params(("name" = String, Path)),
    responses((status = 200, body = RolloutPlan, description = "per instance its batch, zone and action, the skipped ones and why, and the expected duration from measured boot times; nothing is changed"),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn preview(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<PreviewRequest>,
) -> ApiResult<Json<RolloutPlan>> {
    Ok(Json(s.fleet.preview_rollout(&name, request).await?))
}

#[utoipa::path(get, path = "/scale-sets/{name}/rollouts/{id}", tag = "rollouts",
    params(("name" = String, Path), ("id" = i64, Path)),
    responses((status = 200, body = RolloutView), (status = 404, body = Problem)))]
pub async fn get(
    State(s): State<ApiState>,
    ApiPath((name, id)): ApiPath<(String, i64)>,
) -> ApiResult<Json<RolloutView>> {
    Ok(Json(s.fleet.rollout(&name, id).await?))
}

#[utoipa::path(post, path = "/scale-sets/{name}/rollouts/{id}/{action}", tag = "rollouts",
    request_body(content = Option<RollbackRequest>, description = "rollback only, optional: the version to go back to (default: the one the rollout started from)"),
    params(("name" = String, Path), ("id" = i64, Path),
        ("action" = String, Path, pattern = "^(pause|resume|cancel|rollback)$",
            description = "pause, resume (also approves a canary or checkpoint: a Contributor's), cancel or rollback")),
    responses((status = 200, body = RolloutView, description = "the rollout (for rollback: the new rollback rollout)"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "the rollout has ended"),
        (status = 422, body = Problem, description = "unknown action, or a version that does not exist")))]
pub async fn act(
    State(s): State<ApiState>,
    ApiPath((name, id, action)): ApiPath<(String, i64, String)>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<RolloutView>> {
    let who = actor(&caller);
    let may_approve =
        crate::auth::check(&caller, Access::Set(Role::Contributor), Some(&name)).is_ok();
    if action == "rollback" {
        // No body, `null` or an object.
        let request: RollbackRequest = if body.iter().all(u8::is_ascii_whitespace) {
            RollbackRequest::default()
        } else {
            parse::<Option<RollbackRequest>>(&body)?.unwrap_or_default()
        };
        return Ok(Json(
            s.fleet.rollback_rollout(&name, id, request, who).await?,
        ));
    }
    let control = RolloutControl::parse(&action).ok_or_else(|| {
        ApiError::invalid(flotilla_domain::ValidationErrors::single(
            "action",
            format!("unknown rollout action {action:?}; known: pause, resume, cancel, rollback"),
        ))
    })?;
    Ok(Json(
        s.fleet
            .control_rollout(&name, id, control, who, may_approve)
            .await?,
    ))
}
