use leptos::prelude::*;

use crate::components::state_chip::StateChip;
use crate::summary::InstanceCounts;

/// A scale set's instances by power state, as a list of chips.
#[component]
pub fn PowerSummary(
    /// The counts to show.
    counts: InstanceCounts,
    /// Names the list for assistive technology.
    #[prop(into)]
    label: String,
) -> impl IntoView {
    if counts.total == 0 {
        return view! { <p class="muted">"No instances"</p> }.into_any();
    }
    view! {
        <ul class="chips" aria-label=label>
            {counts
                .by_power
                .into_iter()
                .map(|(state, n)| {
                    view! {
                        <li>
                            <StateChip state=state.as_str() count=n />
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
    .into_any()
}
