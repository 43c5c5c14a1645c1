//! The notifications: the webhooks called on every scale action, with their secrets.

use flotilla_domain::scale_set::REDACTED;
use leptos::prelude::*;

use super::{Editor, as_id};
use crate::autoscale_draft::WebhookDraft;
use crate::components::field::{FieldMessage, TextField};

/// The webhooks called on every scale action.
#[component]
pub(super) fn Webhooks(editor: Editor) -> impl IntoView {
    let count = Memo::new(move |_| editor.draft.with(|d| d.webhooks.len()));
    view! {
        <section class="webhooks" aria-labelledby="webhooks-heading">
            <h3 id="webhooks-heading">"Notifications"</h3>
            <p class="hint">
                "Each scale action is posted to these URLs, signed with HMAC-SHA256 of the body under the secret ("
                <code>"X-Flotilla-Signature"</code> "). A stored secret reads "
                <code>{REDACTED}</code> " and is kept unless you type another."
            </p>
            <FieldMessage path="notifications.webhooks" problems=editor.problems exact=true />
            <For
                each=move || 0..count.get()
                key=|h| *h
                children=move |h| {
                    let path = format!("notifications.webhooks[{h}]");
                    view! {
                        <div class="field-row webhook" data-webhook=h>
                            <TextField
                                id=as_id(&format!("{path}.url"))
                                label=format!("Webhook {} URL", h + 1)
                                path=format!("{path}.url")
                                size=40
                                value=editor.text(move |d| d.webhooks.get(h).map(|w| w.url.clone()))
                                on_input=editor
                                    .set(move |d, v| {
                                        if let Some(w) = d.webhooks.get_mut(h) {
                                            w.url = v;
                                        }
                                    })
                                problems=editor.problems
                            />
                            <TextField
                                id=as_id(&format!("{path}.secret"))
                                label=format!("Webhook {} secret (optional)", h + 1)
                                path=format!("{path}.secret")
                                size=20
                                value=editor
                                    .text(move |d| d.webhooks.get(h).map(|w| w.secret.clone()))
                                on_input=editor
                                    .set(move |d, v| {
                                        if let Some(w) = d.webhooks.get_mut(h) {
                                            w.secret = v;
                                        }
                                    })
                                problems=editor.problems
                            />
                            <button
                                type="button"
                                aria-label=format!("Remove webhook {}", h + 1)
                                on:click=move |_| {
                                    editor
                                        .draft
                                        .update(|d| {
                                            if h < d.webhooks.len() {
                                                d.webhooks.remove(h);
                                            }
                                        })
                                }
                            >
                                "×"
                            </button>
                        </div>
                    }
                }
            />
            <button
                type="button"
                on:click=move |_| {
                    editor
                        .draft
                        .update(|d| {
                            d.webhooks
                                .push(WebhookDraft {
                                    url: String::new(),
                                    secret: String::new(),
                                })
                        })
                }
            >
                "Add webhook"
            </button>
        </section>
    }
    .into_any()
}
