//! The OpenAPI document, generated from the handlers' annotations and the domain types.

use axum::Json;
use utoipa::OpenApi;

use super::{activity, autoscale, backend, error, events, health, instances, rollouts, scale_sets};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Flotilla API",
        description = "Virtual machine scale sets: create and manage groups of identical VMs. Errors are application/problem+json with a message per field.",
    ),
    servers((url = "/api/v1")),
    paths(
        scale_sets::list, scale_sets::create, scale_sets::get, scale_sets::update,
        scale_sets::set_capacity, scale_sets::get_model, scale_sets::set_model,
        scale_sets::model_versions, scale_sets::delete,
        instances::list, instances::get, instances::act, instances::set_protection,
        instances::console,
        health::repairs, health::resume_repairs, health::load_balancer, health::all_frontends,
        health::set_instance_switch,
        autoscale::get, autoscale::put, autoscale::delete, autoscale::evaluate,
        autoscale::decisions, autoscale::metrics,
        autoscale::get_demand, autoscale::put_demand, autoscale::delete_demand,
        rollouts::list, rollouts::start, rollouts::preview, rollouts::get, rollouts::act,
        rollouts::compare,
        activity::list, activity::list_for_set,
        events::stream,
        backend::info, backend::vms, backend::faults, backend::inject, backend::clear, backend::loops,
    ),
    components(schemas(error::Problem)),
    tags(
        (name = "scale sets"), (name = "instances"), (name = "activity"),
        (name = "health"), (name = "autoscale"), (name = "rollouts"), (name = "events"),
        (name = "backend"),
    ),
)]
pub struct ApiDoc;

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
