use leptos::form::ActionForm;
use leptos::prelude::*;

use crate::api::scale_sets::SetCapacity;
use crate::components::csrf_field::CsrfField;
use crate::components::permission_note::PermissionNote;
use crate::viewer::may;

/// Sets a scale set's capacity: an exact number, or one less / one more. Each is a plain
/// `<form method="post">` to the `set-capacity` server function, so it works without
/// JavaScript (the server redirects back to this page); with JavaScript it posts in the
/// background. A refusal is shown next to the field, which keeps what was typed. Who may not
/// change the capacity (below an Operator on the set) sees the controls disabled, and why.
#[component]
pub fn CapacityForm(
    /// The scale set.
    name: String,
    /// The action the page dispatches and watches (to refetch after a change).
    action: ServerAction<SetCapacity>,
) -> impl IntoView {
    let error = move || action.value().get().and_then(Result::err);
    // After a refused post without JavaScript the page is rendered anew: the error carries
    // what was typed.
    let typed = action
        .value()
        .get_untracked()
        .and_then(Result::err)
        .and_then(|e| e.input)
        .unwrap_or_default();
    let message = move || error().map(|e| e.message_for("capacity"));
    let invalid = move || message().is_some().then_some("true");
    let pending = action.pending();
    let permit = may("set-capacity", Some(&name));
    let denied = permit.denied();
    let refusal = permit.reason();
    let (minus_refusal, plus_refusal) = (refusal.clone(), refusal.clone());
    let (minus_name, plus_name) = (name.clone(), name.clone());
    view! {
        <PermissionNote what="Changing the capacity" permit />
        <div class="capacity-control" aria-busy=move || pending.get().then_some("true")>
            <ActionForm action attr:class="capacity-set" attr:data-form="capacity">
                <CsrfField />
                <input type="hidden" name="name" value=name />
                <label for="capacity-input">"New capacity"</label>
                <input
                    id="capacity-input"
                    name="capacity"
                    type="text"
                    inputmode="numeric"
                    autocomplete="off"
                    size="6"
                    value=typed
                    disabled=denied
                    aria-invalid=invalid
                    aria-describedby="capacity-message"
                />
                <button type="submit" disabled=denied title=refusal>
                    "Set capacity"
                </button>
            </ActionForm>
            <ActionForm action attr:class="capacity-step">
                <CsrfField />
                <input type="hidden" name="name" value=minus_name />
                <input type="hidden" name="delta" value="-1" />
                <button
                    type="submit"
                    aria-label="Decrease capacity by one"
                    disabled=denied
                    title=minus_refusal
                >
                    "−1"
                </button>
            </ActionForm>
            <ActionForm action attr:class="capacity-step">
                <CsrfField />
                <input type="hidden" name="name" value=plus_name />
                <input type="hidden" name="delta" value="1" />
                <button
                    type="submit"
                    aria-label="Increase capacity by one"
                    disabled=denied
                    title=plus_refusal
                >
                    "+1"
                </button>
            </ActionForm>
            <p id="capacity-message" class="field-error" role="alert" data-error="capacity">
                {message}
            </p>
        </div>
    }
}
