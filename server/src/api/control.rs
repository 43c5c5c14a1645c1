//! `/control`: the control plane's own state — each task (`/control/tasks`), each scale
//! set's reconcile loop (`/control/loops`) and each replica with its leases
//! (`/control/replicas`).

use axum::Json;
use axum::extract::State;
use flotilla_control::{LoopStatus, TaskStatus};
use flotilla_domain::replica::ReplicaStatus;

use super::error::ApiResult;
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

#[utoipa::path(get, path = "/control/replicas", tag = "control",
    responses((status = 200, body = Items<ReplicaStatus>,
        description = "every control-plane replica that heartbeat within the hour, oldest first, with the unexpired leases it holds (the leader holds `leader`)")))]
pub async fn replicas(State(s): State<ApiState>) -> ApiResult<Json<Items<ReplicaStatus>>> {
    Ok(Json(Items {
        items: s.fleet.replicas().await?,
    }))
}
