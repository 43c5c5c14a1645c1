//! The Settings tab: the scale set's definition as JSON (what `POST /api/v1/scale-sets`
//! takes, so it can be exported and used to make a copy elsewhere), its lifecycle hooks,
//! its warm pool, and deleting the set after typing its name.

use leptos::form::ActionForm;
use leptos::prelude::*;

use super::Live;
use super::hooks::LifecycleHooks;
use super::warm_pool_settings::WarmPoolSettings;
use crate::api::scale_sets::DeleteScaleSet;
use crate::components::csrf_field::CsrfField;
use crate::components::permission_note::PermissionNote;
use crate::viewer::may;
use flotilla_domain::url::percent_encode;

#[component]
pub(super) fn SettingsTab(live: Live) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let json = Memo::new(move |_| {
        live.detail.with(|d| {
            serde_json::to_string_pretty(&d.scale_set.spec)
                .unwrap_or_else(|e| format!("the definition could not be written: {e}"))
        })
    });
    let download = move || {
        format!(
            "data:application/json;charset=utf-8,{}",
            percent_encode(&json.get())
        )
    };
    view! {
        <section aria-labelledby="definition-heading" class="panel">
            <h2 id="definition-heading">"Definition"</h2>
            <p class="muted">
                "The scale set as " <code>"POST /api/v1/scale-sets"</code>
                " takes it: download it to keep it, or to make a copy under another name."
            </p>
            <p>
                <a class="button" href=download download=format!("{name}.json") data-link="export">
                    "Export JSON"
                </a>
            </p>
            <pre class="json" data-json="scale-set" tabindex="0" aria-label="The scale set as JSON">
                {move || json.get()}
            </pre>
        </section>
        <LifecycleHooks live />
        <WarmPoolSettings live />
        <DeleteSection name />
    }
}

/// Deleting the set, after typing its name (checked in the browser and on the server).
#[component]
fn DeleteSection(name: String) -> impl IntoView {
    let action = ServerAction::<DeleteScaleSet>::new();
    let error = move || action.value().get().and_then(Result::err);
    // After a refused post without JavaScript the page is rendered anew: the error carries
    // what was typed.
    let initial = action
        .value()
        .get_untracked()
        .and_then(Result::err)
        .and_then(|e| e.input)
        .unwrap_or_default();
    let typed = RwSignal::new(initial.clone());
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let permit = may("delete-scale-set", Some(&name));
    let denied = permit.denied();
    let refusal = permit.reason();
    let mismatch = {
        let name = name.clone();
        move || denied || (hydrated.get() && typed.with(|t| t.trim() != name))
    };
    let message = move || error().map(|e| e.message_for("confirmation"));
    let label = format!("Type {name} to confirm");
    view! {
        <section aria-labelledby="delete-heading" class="panel panel-danger">
            <h2 id="delete-heading">"Delete this scale set"</h2>
            <p>
                "Every instance is deleted with it, and its load balancer frontends stop. "
                "This cannot be undone."
            </p>
            <PermissionNote what="Deleting the scale set" permit />
            <ActionForm action attr:class="delete-set" attr:data-form="delete">
                <CsrfField />
                <input type="hidden" name="name" value=name.clone() />
                <label for="confirm-name">{label}</label>
                <input
                    id="confirm-name"
                    name="confirmation"
                    type="text"
                    autocomplete="off"
                    spellcheck="false"
                    value=initial
                    disabled=denied
                    on:input=move |ev| typed.set(event_target_value(&ev))
                    aria-invalid=move || message().is_some().then_some("true")
                    aria-describedby="confirm-message"
                />
                <button
                    type="submit"
                    class="danger"
                    disabled=mismatch
                    title=refusal
                    aria-busy=move || action.pending().get().then_some("true")
                >
                    "Delete scale set"
                </button>
                <p id="confirm-message" class="field-error" role="alert" data-error="confirmation">
                    {message}
                </p>
            </ActionForm>
        </section>
    }
}
