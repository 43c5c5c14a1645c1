//! The quick-create wizard: what the backend offers, and the create itself.

use flotilla_domain::ScaleSetSpec;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::api::error::PortalError;
use crate::wizard::WizardOptions;

/// The backend's zones and images: the wizard's choices.
#[server(prefix = "/_fn", endpoint = "wizard-options", client = crate::api::CsrfClient)]
pub async fn get_wizard_options() -> Result<WizardOptions, ServerFnError> {
    use super::{fleet, server_error};
    let info = fleet().backend_info().await.map_err(server_error)?;
    Ok(WizardOptions {
        zones: info.zones.into_iter().map(|z| z.name).collect(),
        images: info.images,
    })
}

/// Creates a scale set; answers its name. The server validates again (the image, a
/// duplicate name): a refusal carries the messages per field.
#[server(prefix = "/_fn", endpoint = "create-scale-set", input = Json, client = crate::api::CsrfClient)]
pub async fn create_scale_set(spec: ScaleSetSpec) -> Result<String, PortalError> {
    use super::refused;
    let set = super::fleet()
        .create_scale_set(spec, &super::actor())
        .await
        .map_err(refused)?;
    Ok(set.spec.name)
}
