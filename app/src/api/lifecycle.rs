//! A scale set's lifecycle hooks, from the Settings tab: add one, remove one.

use flotilla_domain::lifecycle::LifecycleHook;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::error::PortalError;

/// The add form's fields as typed (`input[hook]`, …); a removal names only the hook.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookInput {
    pub hook: String,
    #[serde(default)]
    pub transition: Option<String>,
    #[serde(default)]
    pub heartbeat_timeout_seconds: Option<String>,
    #[serde(default)]
    pub default_result: Option<String>,
    #[serde(default)]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub webhook_secret: Option<String>,
}

/// Adds a hook (`op` = `add`, with its fields; the webhook is optional) to scale set
/// `name`, or removes the hook named `input.hook` (`op` = `remove`). The other hooks are sent
/// back as read, so their webhooks keep their stored URLs and secrets. Answers the hooks
/// as stored (redacted).
#[server(prefix = "/_fn", endpoint = "lifecycle-hooks", client = crate::api::CsrfClient)]
pub async fn save_lifecycle_hooks(
    name: String,
    op: String,
    input: HookInput,
) -> Result<Vec<LifecycleHook>, PortalError> {
    use super::{refuse, refused, return_to};
    use flotilla_domain::autoscale::setting::Webhook;
    return_to(&format!(
        "/scale-sets/{}/settings",
        flotilla_domain::url::percent_encode(&name)
    ));
    let HookInput {
        hook,
        transition,
        heartbeat_timeout_seconds,
        default_result,
        webhook_url,
        webhook_secret,
    } = input;
    let fleet = super::fleet();
    let set = fleet.get_scale_set(&name).await.map_err(refused)?;
    let mut hooks = set.spec.lifecycle_hooks.clone();
    let field = |field: &str, message: String| refuse(PortalError::field(field, message), 422);
    match op.as_str() {
        "add" => {
            let transition = transition
                .unwrap_or_default()
                .parse()
                .map_err(|e: String| field("transition", e))?;
            let default_result = default_result
                .unwrap_or_default()
                .parse()
                .map_err(|e: String| field("default_result", e))?;
            let heartbeat_timeout_seconds = flotilla_domain::validation::parse(
                "heartbeat_timeout_seconds",
                &heartbeat_timeout_seconds.unwrap_or_default(),
            )
            .map_err(|problem| field(&problem.field, problem.message))?;
            let url = webhook_url.unwrap_or_default().trim().to_string();
            let secret = webhook_secret.filter(|s| !s.is_empty());
            hooks.push(LifecycleHook {
                name: hook.trim().to_string(),
                transition,
                heartbeat_timeout_seconds,
                default_result,
                notification_webhooks: if url.is_empty() {
                    Vec::new()
                } else {
                    vec![Webhook { url, secret }]
                },
            });
        }
        "remove" => {
            let before = hooks.len();
            hooks.retain(|h| h.name != hook);
            if hooks.len() == before {
                return Err(field("hook", format!("no hook {hook:?}")));
            }
        }
        other => {
            return Err(field("op", format!("must be add or remove, got {other:?}")));
        }
    }
    let patch = flotilla_domain::ScaleSetPatch {
        lifecycle_hooks: Some(hooks),
        ..Default::default()
    };
    // The new hook is the last: its fields' errors are named as the form names them.
    let last = format!(
        "lifecycle_hooks[{}].",
        patch
            .lifecycle_hooks
            .as_ref()
            .map_or(0, Vec::len)
            .saturating_sub(1)
    );
    let stored = fleet
        .update_scale_set(&name, patch, &super::actor())
        .await
        .map_err(|e| {
            let mut error = refused(e);
            for f in &mut error.fields {
                if let Some(rest) = f.field.strip_prefix(&last) {
                    f.field = match rest {
                        "name" => "hook".into(),
                        "notification_webhooks[0].url" => "webhook_url".into(),
                        "notification_webhooks[0].secret" => "webhook_secret".into(),
                        other => other.into(),
                    };
                }
            }
            error
        })?;
    Ok(flotilla_domain::lifecycle::redacted(
        stored.spec.lifecycle_hooks,
    ))
}
