//! `/scale-sets`: create, list, show, update, scale, change the model, delete.

use std::collections::HashMap;

use axum::Extension;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use flotilla_control::Caller;
use flotilla_domain::rollout::FieldChange;
use flotilla_domain::{Model, ScaleSet, ScaleSetPatch, ScaleSetSpec};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult, Problem};
use super::json::{ApiJson, ApiPath};
use super::query::Params;
use super::{ApiState, Items, actor};

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CapacityRequest {
    /// Desired number of instances, 0–10,000.
    pub capacity: u32,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelView {
    pub version: u32,
    pub model: Model,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelVersionView {
    pub version: u32,
    pub model: Model,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[utoipa::path(get, path = "/scale-sets", tag = "scale sets",
    responses((status = 200, body = Items<ScaleSet>)))]
pub async fn list(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Items<ScaleSet>>> {
    let mut items = s.fleet.list_scale_sets().await?;
    items.retain(|set| super::sees(&caller, Some(set.name())));
    Ok(Json(Items { items }))
}

#[utoipa::path(post, path = "/scale-sets", tag = "scale sets", request_body = ScaleSetSpec,
    responses((status = 201, body = ScaleSet), (status = 409, body = Problem, description = "a scale set of that name exists"),
        (status = 422, body = Problem),
        (status = 502, body = Problem, description = "the backend failed listing its zones or images")))]
pub async fn create(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiJson(spec): ApiJson<ScaleSetSpec>,
) -> ApiResult<impl IntoResponse> {
    super::check_rule_targets(&caller, spec.load_balancer.as_ref())?;
    let set = s.fleet.create_scale_set(spec, actor(&caller)).await?;
    let location = format!("/api/v1/scale-sets/{}", set.name());
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(set),
    ))
}

#[utoipa::path(get, path = "/scale-sets/{name}", tag = "scale sets",
    params(("name" = String, Path)), responses((status = 200, body = ScaleSet), (status = 404, body = Problem)))]
pub async fn get(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<ScaleSet>> {
    Ok(Json(s.fleet.get_scale_set(&name).await?))
}

#[utoipa::path(patch, path = "/scale-sets/{name}", tag = "scale sets", request_body = ScaleSetPatch,
    params(("name" = String, Path)),
    responses((status = 200, body = ScaleSet), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "the scale set is being deleted, or changes too often to write; retry"),
        (status = 422, body = Problem),
        (status = 502, body = Problem, description = "the backend failed listing its zones")))]
pub async fn update(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Extension(caller): Extension<Caller>,
    ApiJson(patch): ApiJson<ScaleSetPatch>,
) -> ApiResult<Json<ScaleSet>> {
    super::check_rule_targets(
        &caller,
        patch.load_balancer.as_ref().and_then(Option::as_ref),
    )?;
    Ok(Json(
        s.fleet
            .update_scale_set(&name, patch, actor(&caller))
            .await?,
    ))
}

#[utoipa::path(put, path = "/scale-sets/{name}/capacity", tag = "scale sets", request_body = CapacityRequest,
    params(("name" = String, Path)),
    responses((status = 200, body = ScaleSet), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "autoscale is enabled (it sets the capacity), or the scale set is being deleted or changes too often to write"),
        (status = 422, body = Problem)))]
pub async fn set_capacity(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<CapacityRequest>,
) -> ApiResult<Json<ScaleSet>> {
    Ok(Json(
        s.fleet
            .set_capacity(&name, req.capacity, actor(&caller))
            .await?,
    ))
}

#[utoipa::path(get, path = "/scale-sets/{name}/model", tag = "scale sets",
    params(("name" = String, Path)), responses((status = 200, body = ModelView), (status = 404, body = Problem)))]
pub async fn get_model(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<ModelView>> {
    let set = s.fleet.get_scale_set(&name).await?;
    Ok(Json(ModelView {
        version: set.model_version,
        model: set.spec.model,
    }))
}

#[utoipa::path(put, path = "/scale-sets/{name}/model", tag = "scale sets", request_body = Model,
    params(("name" = String, Path)),
    responses((status = 200, body = ScaleSet, description = "the scale set with its new model version"),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "a rollout is running, or the scale set is being deleted or changes too often to write"),
        (status = 422, body = Problem),
        (status = 502, body = Problem, description = "the backend failed listing its images")))]
pub async fn set_model(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Extension(caller): Extension<Caller>,
    ApiJson(model): ApiJson<Model>,
) -> ApiResult<Json<ScaleSet>> {
    Ok(Json(s.fleet.set_model(&name, model, actor(&caller)).await?))
}

#[utoipa::path(get, path = "/scale-sets/{name}/model/versions", tag = "scale sets",
    params(("name" = String, Path)), responses((status = 200, body = Items<ModelVersionView>), (status = 404, body = Problem)))]
pub async fn model_versions(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Items<ModelVersionView>>> {
    let items = s
        .fleet
        .model_versions(&name)
        .await?
        .into_iter()
        .map(|v| ModelVersionView {
            version: v.version,
            model: v.model,
            created_by: v.created_by,
            created_at: v.created_at,
        })
        .collect();
    Ok(Json(Items { items }))
}

#[utoipa::path(delete, path = "/scale-sets/{name}", tag = "scale sets",
    params(("name" = String, Path)),
    responses((status = 202, body = ScaleSet, description = "deletion accepted: instances are being deleted"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "the scale set is being deleted, or changes too often to write; retry")))]
pub async fn delete(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<impl IntoResponse> {
    let set = s.fleet.delete_scale_set(&name, actor(&caller)).await?;
    Ok((StatusCode::ACCEPTED, Json(set)))
}

/// Two model versions compared field by field.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Comparison {
    pub from: u32,
    pub to: u32,
    pub changes: Vec<FieldChange>,
}

#[utoipa::path(get, path = "/scale-sets/{name}/model/versions/compare", tag = "scale sets",
    params(("name" = String, Path), ("from" = u32, Query), ("to" = u32, Query)),
    responses((status = 200, body = Comparison, description = "the fields that differ (tags one by one)"),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn compare(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Comparison>> {
    let mut p = Params::new(&query, &["from", "to"]);
    let from = p.number::<u32>("from", "a version number");
    let to = p.number::<u32>("to", "a version number");
    p.finish()?;
    let (Some(from), Some(to)) = (from, to) else {
        let field = if from.is_none() { "from" } else { "to" };
        return Err(ApiError::invalid(
            flotilla_domain::ValidationErrors::single(field, "required: a version number"),
        ));
    };
    Ok(Json(Comparison {
        from,
        to,
        changes: s.fleet.compare_versions(&name, from, to).await?,
    }))
}
