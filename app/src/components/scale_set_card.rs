use leptos::prelude::*;

use crate::components::power_summary::PowerSummary;
use crate::components::state_chip::StateChip;
use crate::format;
use crate::summary::{Breakdown, ScaleSetSummary};
use flotilla_domain::ScaleSetState;

/// One scale set on the overview: name, capacity, and its instances by power state and by
/// health state.
#[component]
pub fn ScaleSetCard(
    /// The set and its instance counts.
    summary: ScaleSetSummary,
) -> impl IntoView {
    let name = summary.name().to_string();
    let href = format!("/scale-sets/{name}");
    let heading_id = format!("card-{name}");
    let capacity = summary.capacity;
    let deleting = summary.state == ScaleSetState::Deleting;
    let counts = summary.instances;
    view! {
        <article class="card" aria-labelledby=heading_id.clone() data-scale-set=name.clone()>
            <header class="card-header">
                <h3 id=heading_id.clone()>
                    <a href=href>{name.clone()}</a>
                </h3>
                {deleting.then(|| view! { <StateChip state="deleting" /> })}
            </header>
            <dl class="facts facts-compact">
                <div>
                    <dt>"Capacity"</dt>
                    <dd data-fact="capacity">
                        {format::plural(capacity, "instance", "instances")}
                    </dd>
                </div>
                <div>
                    <dt>"Running"</dt>
                    <dd data-fact="running">
                        {format!("{} of {}", counts.running(), counts.total)}
                    </dd>
                </div>
            </dl>
            <PowerSummary
                counts=counts.clone()
                label=format!("Instances of {name} by power state")
            />
            {(counts.total > 0)
                .then(|| {
                    view! {
                        <PowerSummary
                            counts
                            by=Breakdown::Health
                            label=format!("Instances of {name} by health state")
                        />
                    }
                })}
        </article>
    }
}
