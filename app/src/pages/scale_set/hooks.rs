//! The Settings tab's lifecycle hooks: the set's hooks (webhooks as reads show them), a
//! form to add one and a button to remove each, as plain forms that also work without
//! JavaScript. The list follows the scale set's live updates.

use leptos::form::ActionForm;
use leptos::prelude::*;

use super::Live;
use crate::api::lifecycle::SaveLifecycleHooks;
use crate::components::csrf_field::CsrfField;
use crate::components::permission_note::PermissionNote;
use crate::viewer::may;

#[component]
pub(super) fn LifecycleHooks(live: Live) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let hooks = Memo::new(move |_| {
        live.detail
            .with(|d| d.scale_set.spec.lifecycle_hooks.clone())
    });
    let action = ServerAction::<SaveLifecycleHooks>::new();
    let error = move || action.value().get().and_then(Result::err);
    let message = move |field: &'static str| {
        move || {
            error()
                .filter(|e| e.fields.iter().any(|f| f.field == field))
                .map(|e| e.message_for(field))
        }
    };
    let general = move || {
        error()
            .filter(|e| {
                !e.fields.iter().any(|f| {
                    [
                        "hook",
                        "transition",
                        "heartbeat_timeout_seconds",
                        "default_result",
                        "webhook_url",
                        "webhook_secret",
                    ]
                    .contains(&f.field.as_str())
                })
            })
            .map(|e| e.message)
    };
    // A hook added: the form starts empty again (its secret is not left in the page).
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move |_| {
        if let (Some(Ok(_)), Some(form)) = (action.value().get(), form.get()) {
            form.reset();
        }
    });
    let permit = may("lifecycle-hooks", Some(&name));
    let denied = permit.denied();
    let refusal = permit.reason();
    let rows = {
        let name = name.clone();
        let refusal = refusal.clone();
        move || {
            hooks
                .get()
                .into_iter()
                .map(|h| {
                    let (name, refusal) = (name.clone(), refusal.clone());
                    let webhooks = h
                        .notification_webhooks
                        .iter()
                        .map(|w| w.url.clone())
                        .collect::<Vec<_>>()
                        .join(", ");
                    let label = format!("Remove hook {}", h.name);
                    let (row_key, shown, field) = (h.name.clone(), h.name.clone(), h.name);
                    let transition = h.transition.to_string();
                    let result = h.default_result.to_string();
                    let timeout = h.heartbeat_timeout_seconds;
                    let webhooks = if webhooks.is_empty() {
                        "—".to_string()
                    } else {
                        webhooks
                    };
                    view! {
                        <tr data-hook=row_key>
                            <th scope="row" class="mono">
                                {shown}
                            </th>
                            <td>{transition}</td>
                            <td class="num">{timeout}</td>
                            <td>{result}</td>
                            <td class="mono">{webhooks}</td>
                            <td>
                                <ActionForm action>
                                    <CsrfField />
                                    <input type="hidden" name="name" value=name />
                                    <input type="hidden" name="op" value="remove" />
                                    <input type="hidden" name="input[hook]" value=field />
                                    <button
                                        type="submit"
                                        disabled=denied
                                        title=refusal
                                        aria-label=label
                                    >
                                        "Remove"
                                    </button>
                                </ActionForm>
                            </td>
                        </tr>
                    }
                })
                .collect_view()
        }
    };
    view! {
        <section aria-labelledby="hooks-heading" class="panel">
            <h2 id="hooks-heading">"Lifecycle hooks"</h2>
            <p class="muted">
                "A launching hook holds new instances out of the load balancer, a terminating "
                "hook holds every removal (after the drain), until the wait is completed or its "
                "timeout applies the default result."
            </p>
            <PermissionNote what="Changing the lifecycle hooks" permit />
            {move || {
                if hooks.with(Vec::is_empty) {
                    view! {
                        <p class="muted" data-hooks="none">
                            "No lifecycle hooks."
                        </p>
                    }
                        .into_any()
                } else {
                    view! {
                        <table class="table" aria-label="Lifecycle hooks">
                            <thead>
                                <tr>
                                    <th scope="col">"Name"</th>
                                    <th scope="col">"Transition"</th>
                                    <th scope="col">"Timeout (s)"</th>
                                    <th scope="col">"Default result"</th>
                                    <th scope="col">"Webhooks"</th>
                                    <th scope="col">
                                        <span class="visually-hidden">"Actions"</span>
                                    </th>
                                </tr>
                            </thead>
                            <tbody>{rows.clone()}</tbody>
                        </table>
                    }
                        .into_any()
                }
            }}
            {
                let name = name.clone();
                view! {
                    <ActionForm
                        action
                        node_ref=form
                        attr:class="hook-form"
                        attr:data-form="add-hook"
                    >
                        <CsrfField />
                        <input type="hidden" name="name" value=name.clone() />
                        <input type="hidden" name="op" value="add" />
                        <fieldset disabled=denied>
                            <legend>"Add a hook"</legend>
                            <label>
                                "Name"
                                <input name="input[hook]" type="text" required autocomplete="off" />
                            </label>
                            <p class="field-error" role="alert" data-error="hook">
                                {message("hook")}
                            </p>
                            <label>
                                "Transition" <select name="input[transition]">
                                    <option value="launching">"launching"</option>
                                    <option value="terminating">"terminating"</option>
                                </select>
                            </label>
                            <label>
                                "Timeout (s)"
                                <input
                                    name="input[heartbeat_timeout_seconds]"
                                    type="number"
                                    min="30"
                                    max="7200"
                                    value="3600"
                                />
                            </label>
                            <p
                                class="field-error"
                                role="alert"
                                data-error="heartbeat_timeout_seconds"
                            >
                                {message("heartbeat_timeout_seconds")}
                            </p>
                            <label>
                                "Default result" <select name="input[default_result]">
                                    <option value="abandon">"abandon"</option>
                                    <option value="continue">"continue"</option>
                                </select>
                            </label>
                            <label>
                                "Webhook URL (optional)"
                                <input name="input[webhook_url]" type="url" autocomplete="off" />
                            </label>
                            <p class="field-error" role="alert" data-error="webhook_url">
                                {message("webhook_url")}
                            </p>
                            <label>
                                "Webhook secret (optional)"
                                <input
                                    name="input[webhook_secret]"
                                    type="password"
                                    autocomplete="new-password"
                                />
                            </label>
                            <button type="submit" title=refusal.clone()>
                                "Add hook"
                            </button>
                        </fieldset>
                    </ActionForm>
                }
            }
            <p class="field-error" role="alert" data-error="lifecycle-hooks">
                {general}
            </p>
        </section>
    }
}
