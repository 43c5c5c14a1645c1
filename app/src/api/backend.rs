//! The backend: its kind, zones, hosts with their capacity and use, images; an instance's
//! console log; and the control plane's replicas.

use flotilla_domain::{BackendInfo, ConsoleOutput};
use leptos::prelude::*;

/// What the backend offers and how full its hosts are.
#[server(prefix = "/_fn", endpoint = "backend", client = crate::api::CsrfClient)]
pub async fn get_backend() -> Result<BackendInfo, ServerFnError> {
    use super::{fleet, server_error};
    fleet().backend_info().await.map_err(server_error)
}

/// The end of instance `id`'s serial console log (of scale set `name`).
#[server(prefix = "/_fn", endpoint = "console", client = crate::api::CsrfClient)]
pub async fn get_console(name: String, id: String) -> Result<ConsoleOutput, ServerFnError> {
    use super::{fleet, server_error};
    fleet().console(&name, &id).await.map_err(server_error)
}

/// The control plane's replicas as `/replicas` shows them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Replicas {
    /// The replica that answered.
    pub this: String,
    pub items: Vec<flotilla_domain::replica::ReplicaStatus>,
    /// The answering replica's clock, for ages.
    pub now: chrono::DateTime<chrono::Utc>,
}

/// Every control-plane replica with the leases it holds.
#[server(prefix = "/_fn", endpoint = "replicas", client = crate::api::CsrfClient)]
pub async fn get_replicas() -> Result<Replicas, ServerFnError> {
    use super::{fleet, server_error};
    let fleet = fleet();
    Ok(Replicas {
        this: fleet.replica_id().to_string(),
        items: fleet.replicas().await.map_err(server_error)?,
        now: fleet.now(),
    })
}
