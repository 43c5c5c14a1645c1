//! The backend: its kind, zones, hosts with their capacity and use, images, and the hosts
//! under maintenance; starting and ending a host's maintenance (plain forms on the Hosts
//! page, with or without JavaScript); an instance's console log; and the control plane's
//! replicas.

use flotilla_domain::maintenance::{HostMaintenance, MaintenanceStatus};
use flotilla_domain::{BackendInfo, ConsoleOutput};
use leptos::prelude::*;

use crate::api::error::PortalError;

/// What the backend offers and how full its hosts are.
#[server(prefix = "/_fn", endpoint = "backend", client = crate::api::CsrfClient)]
pub async fn get_backend() -> Result<BackendInfo, ServerFnError> {
    use super::{fleet, server_error};
    fleet().backend_info().await.map_err(server_error)
}

/// Puts host `host` under maintenance: nothing new is placed on it and every scale set moves
/// its instances off it by surge. Starting it again changes nothing. Answers the host's
/// progress.
#[server(prefix = "/_fn", endpoint = "start-maintenance", client = crate::api::CsrfClient)]
pub async fn start_maintenance(host: String) -> Result<MaintenanceStatus, PortalError> {
    use super::{refused, return_to};
    return_to("/hosts");
    super::fleet()
        .start_maintenance(&host, &super::actor())
        .await
        .map_err(|e| refused(e).with_target(&host))
}

/// Returns host `host` to service: new instances may go there again; instances that had not
/// left it stay. Answers the maintenance that ended.
#[server(prefix = "/_fn", endpoint = "end-maintenance", client = crate::api::CsrfClient)]
pub async fn end_maintenance(host: String) -> Result<HostMaintenance, PortalError> {
    use super::{refused, return_to};
    return_to("/hosts");
    super::fleet()
        .end_maintenance(&host, &super::actor())
        .await
        .map_err(|e| refused(e).with_target(&host))
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
