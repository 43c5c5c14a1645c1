//! A person's actions on one instance.

use flotilla_domain::{Instance, InstanceAction};
use leptos::prelude::*;

use crate::api::error::PortalError;

/// Asks for `action` on instance `id` of scale set `name`. The answer is the instance with
/// the action recorded (`updating`, or `deleting`); the reconciler carries it out. A
/// refusal names the instance (`target`), so only its row shows the message.
#[server(prefix = "/_fn", endpoint = "instance-action")]
pub async fn act_on_instance(
    name: String,
    id: String,
    action: InstanceAction,
) -> Result<Instance, PortalError> {
    super::return_to(&format!("/scale-sets/{name}"));
    super::fleet()
        .instance_action(&name, &id, action, "portal")
        .await
        .map_err(|e| {
            let code = super::status_of(&e);
            super::refuse(PortalError::from(e).with_target(id), code)
        })
}
