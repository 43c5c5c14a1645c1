//! `/control`: the control plane's own state — each task (`/control/tasks`) and each scale
//! set's reconcile loop (`/control/loops`).

use axum::Json;
use axum::extract::State;
use flotilla_control::{LoopStatus, TaskStatus};

use super::{ApiState, Items};

#[utoipa::path(get, path = "/control/tasks", tag = "control",
    responses((status = 200, body = Items<TaskStatus>,
        description = "every task of the control plane: activations, the last one's start, duration and result, failures in a row, what it does now")))]
pub async fn tasks(State(s): State<ApiState>) -> Json<Items<TaskStatus>> {
    Json(Items {
        items: s.fleet.tasks(),
    })
}

#[utoipa::path(get, path = "/control/loops", tag = "control", responses((status = 200, body = Items<LoopStatus>)))]
pub async fn loops(State(s): State<ApiState>) -> Json<Items<LoopStatus>> {
    Json(Items {
        items: s.fleet.loops(),
    })
}
