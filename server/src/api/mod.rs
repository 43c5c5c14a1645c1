//! The REST API under `/api/v1` (DESIGN.md §4): thin handlers over the [`Fleet`], JSON in
//! and out, errors as problem+json, described by the OpenAPI document at
//! `/api/v1/openapi.json` generated from these handlers.

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{get, post, put};
use flotilla_control::Fleet;
use tokio_util::sync::CancellationToken;

pub mod activity;
pub mod autoscale;
pub mod backend;
pub mod control;
pub mod demand;
pub mod error;
pub mod events;
pub mod instances;
pub mod json;
pub mod load_balancer;
pub mod metrics;
pub mod openapi;
pub mod query;
pub mod repairs;
pub mod rollouts;
pub mod scale_sets;

/// What every handler gets.
#[derive(Clone)]
pub struct ApiState {
    pub fleet: Fleet,
    /// Cancelled on shutdown: ends the event streams so the server can stop.
    pub shutdown: CancellationToken,
    /// One permit per open event stream (`--max-event-streams`).
    pub event_streams: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Header naming who acts (`cli:alice`); `api` when absent.
pub const ACTOR_HEADER: &str = "x-flotilla-actor";

/// The actor recorded in the activity log for this request.
pub fn actor(headers: &HeaderMap) -> String {
    headers
        .get(ACTOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect::<String>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "api".to_string())
}

/// Items of a collection: `{"items": […]}`.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(
            "/scale-sets",
            get(scale_sets::list).post(scale_sets::create),
        )
        .route(
            "/scale-sets/{name}",
            get(scale_sets::get)
                .patch(scale_sets::update)
                .delete(scale_sets::delete),
        )
        .route("/scale-sets/{name}/capacity", put(scale_sets::set_capacity))
        .route(
            "/scale-sets/{name}/model",
            get(scale_sets::get_model).put(scale_sets::set_model),
        )
        .route(
            "/scale-sets/{name}/model/versions",
            get(scale_sets::model_versions),
        )
        .route(
            "/scale-sets/{name}/model/versions/compare",
            get(scale_sets::compare),
        )
        .route(
            "/scale-sets/{name}/rollouts",
            get(rollouts::list).post(rollouts::start),
        )
        .route(
            "/scale-sets/{name}/rollouts/preview",
            post(rollouts::preview),
        )
        .route("/scale-sets/{name}/rollouts/{id}", get(rollouts::get))
        .route(
            "/scale-sets/{name}/rollouts/{id}/{action}",
            post(rollouts::act),
        )
        .route("/scale-sets/{name}/instances", get(instances::list))
        .route("/scale-sets/{name}/instances/{id}", get(instances::get))
        .route(
            "/scale-sets/{name}/instances/{id}/console",
            get(instances::console),
        )
        .route(
            "/scale-sets/{name}/instances/{id}/protection",
            put(instances::set_protection),
        )
        .route(
            "/scale-sets/{name}/instances/{id}/load-balancer",
            put(load_balancer::set_instance_switch),
        )
        .route("/scale-sets/{name}/repairs", get(repairs::repairs))
        .route(
            "/scale-sets/{name}/repairs/resume",
            post(repairs::resume_repairs),
        )
        .route(
            "/scale-sets/{name}/load-balancer",
            get(load_balancer::load_balancer),
        )
        .route("/load-balancer", get(load_balancer::all_frontends))
        .route(
            "/scale-sets/{name}/autoscale",
            get(autoscale::get)
                .put(autoscale::put)
                .delete(autoscale::delete),
        )
        .route(
            "/scale-sets/{name}/autoscale/decisions",
            get(autoscale::decisions),
        )
        .route(
            "/scale-sets/{name}/autoscale/evaluate",
            post(autoscale::evaluate),
        )
        .route("/scale-sets/{name}/metrics", get(metrics::metrics))
        .route(
            "/scale-sets/{name}/demand",
            get(demand::get_demand)
                .put(demand::put_demand)
                .delete(demand::delete_demand),
        )
        .route(
            "/scale-sets/{name}/instances/{id}/{action}",
            post(instances::act),
        )
        .route("/scale-sets/{name}/activity", get(activity::list_for_set))
        .route("/activity", get(activity::list))
        .route("/events", get(events::stream))
        .route("/backend", get(backend::info))
        .route("/backend/vms", get(backend::vms))
        .route(
            "/backend/faults",
            get(backend::faults)
                .post(backend::inject)
                .delete(backend::clear),
        )
        .route("/control/loops", get(control::loops))
        .route("/control/tasks", get(control::tasks))
        .route("/openapi.json", get(openapi::document))
        .fallback(|| async {
            error::ApiError::new(axum::http::StatusCode::NOT_FOUND, "no such API resource")
        })
        .with_state(state)
}
