//! The backend: its kind, zones, hosts with their capacity and use, images; and an
//! instance's console log.

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
