use leptos::prelude::*;

/// A coloured chip for a state (`running`, `healthy`, `failed`…), optionally with a count.
/// The colour comes from the state's name (`chip-<state>` in the stylesheet); the text
/// always says the state, so colour is never the only signal.
#[component]
pub fn StateChip(
    /// The state as the API spells it.
    #[prop(into)]
    state: String,
    /// How many are in this state, when counting.
    #[prop(optional)]
    count: Option<u32>,
) -> impl IntoView {
    let class = format!("chip chip-{state}");
    view! {
        <span class=class>
            {state} {count.map(|n| view! { <span class="chip-count">{n}</span> })}
        </span>
    }
}
