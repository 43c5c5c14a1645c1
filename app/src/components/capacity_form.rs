use leptos::form::ActionForm;
use leptos::prelude::*;

use crate::api::scale_sets::SetCapacity;

/// Sets a scale set's capacity: an exact number, or one less / one more. Each is a plain
/// `<form method="post">` to the `set-capacity` server function, so it works without
/// JavaScript (the server redirects back to this page); with JavaScript it posts in the
/// background. A refusal is shown next to the field, which keeps what was typed.
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
    let (minus_name, plus_name) = (name.clone(), name.clone());
    view! {
        <div class="capacity-control" aria-busy=move || pending.get().then_some("true")>
            <ActionForm action attr:class="capacity-set" attr:data-form="capacity">
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
                    aria-invalid=invalid
                    aria-describedby="capacity-message"
                />
                <button type="submit">"Set capacity"</button>
            </ActionForm>
            <ActionForm action attr:class="capacity-step">
                <input type="hidden" name="name" value=minus_name />
                <input type="hidden" name="delta" value="-1" />
                <button type="submit" aria-label="Decrease capacity by one">
                    "−1"
                </button>
            </ActionForm>
            <ActionForm action attr:class="capacity-step">
                <input type="hidden" name="name" value=plus_name />
                <input type="hidden" name="delta" value="1" />
                <button type="submit" aria-label="Increase capacity by one">
                    "+1"
                </button>
            </ActionForm>
            <p id="capacity-message" class="field-error" role="alert" data-error="capacity">
                {message}
            </p>
        </div>
    }
}
