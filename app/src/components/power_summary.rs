use leptos::prelude::*;

use crate::components::state_chip::StateChip;
use crate::summary::{Breakdown, InstanceCounts};

/// Instances by power state — or, with `by=Breakdown::Health`, by health state — as a list
/// of chips (`data-breakdown` says which; each item's `data-state` names its state).
#[component]
pub fn PowerSummary(
    /// The counts to show.
    counts: InstanceCounts,
    /// Names the list for assistive technology.
    #[prop(into)]
    label: String,
    /// Which states to count by: power (the default) or health.
    #[prop(optional)]
    by: Breakdown,
) -> impl IntoView {
    if counts.total == 0 {
        return view! { <p class="muted">"No instances"</p> }.into_any();
    }
    view! {
        <ul class="chips" aria-label=label data-breakdown=by.as_str()>
            {counts
                .breakdown(by)
                .into_iter()
                .map(|(state, n)| {
                    view! {
                        <li data-state=state data-count=n>
                            <StateChip state=state count=n />
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
    .into_any()
}
