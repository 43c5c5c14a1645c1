use leptos::prelude::*;

use crate::viewer::Permit;

/// Why the controls next to it are disabled, in a sentence (`Changing the capacity needs
/// the Operator role on this scale set.`); nothing when they are allowed.
#[component]
pub fn PermissionNote(
    /// What the controls do, as the sentence's subject (`Changing the capacity`).
    what: &'static str,
    /// Whether the viewer may.
    permit: Permit,
) -> impl IntoView {
    permit.reason().map(|why| {
        view! {
            <p class="permission-note" role="note" data-permission="denied">
                {format!("{what} {why}.")}
            </p>
        }
    })
}
