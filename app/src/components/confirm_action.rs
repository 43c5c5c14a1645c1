use leptos::prelude::*;

/// A destructive action behind a confirmation step: a disclosure (`<details>`, keyboard
/// and screen-reader friendly, no JavaScript needed) holding the submit button.
#[component]
pub fn ConfirmAction(
    /// The instance.
    id: String,
    /// The action's name, the submit button's value.
    action: &'static str,
    /// What the action is called.
    label: &'static str,
    /// What happens, in a sentence.
    consequence: &'static str,
    /// Closes the confirmation when it changes (the form's action version: a request was
    /// sent).
    #[prop(into)]
    close_on: Signal<usize>,
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
                <p>{format!("{label} {id}? {consequence}")}</p>
                <button type="submit" name="action" value=action class="danger">
                    {format!("{label} {id}")}
                </button>
            </div>
        </details>
    }
}
