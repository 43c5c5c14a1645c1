use leptos::prelude::*;

/// A destructive action behind a confirmation step: a disclosure (`<details>`, keyboard
/// and screen-reader friendly, no JavaScript needed) holding the form's submit button,
/// whose value names the action.
#[component]
pub fn ConfirmAction(
    /// The action's name, the submit button's value.
    action: &'static str,
    /// What the action is called.
    label: &'static str,
    /// The question the confirmation asks (`Delete 3 instances?`).
    #[prop(into)]
    question: Signal<String>,
    /// What happens, in a sentence.
    consequence: &'static str,
    /// Closes the confirmation when it changes (the form's action version: a request was
    /// sent).
    #[prop(into)]
    close_on: Signal<usize>,
    /// Whether the button is disabled (nothing to act on, or not allowed).
    #[prop(into)]
    disabled: Signal<bool>,
    /// Why the action is not allowed, when it is not (the button's title).
    refusal: Option<String>,
) -> impl IntoView {
    // A property, not an attribute: the server renders it closed, the browser opens it on
    // a click, and it closes again once the form has been sent.
    let open = move || {
        close_on.track();
        false
    };
    view! {
        <details class="confirm" data-confirm=action prop:open=open>
            <summary>{format!("{label}…")}</summary>
            <div class="confirm-body">
                <p>{move || format!("{} {consequence}", question.get())}</p>
                <button
                    type="submit"
                    name="action"
                    value=action
                    class="danger"
                    disabled=disabled
                    title=refusal
                >
                    {label}
                </button>
            </div>
        </details>
    }
}
