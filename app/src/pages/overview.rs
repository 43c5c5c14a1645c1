use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::scale_sets::list_scale_sets;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::components::scale_set_card::ScaleSetCard;
use crate::live::{self, use_live_updates};
use crate::summary::{FleetTotals, ScaleSetSummary};

/// `/`: the fleet at a glance — totals, then one card per scale set; live in the browser.
#[component]
pub fn Overview() -> impl IntoView {
    let sets = Resource::new(|| (), |_| list_scale_sets());
    use_live_updates(|| live::events_url(None), move || sets.refetch());
    view! {
        <Title text="Overview" />
        <h1>"Overview"</h1>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match sets.await {
                    Ok(sets) => view! { <OverviewBody sets /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn OverviewBody(sets: Vec<ScaleSetSummary>) -> impl IntoView {
    let totals = FleetTotals::of(&sets);
    view! {
        <section aria-label="Totals">
            <dl class="stats">
                <div class="stat" data-stat="scale-sets">
                    <dt>"Scale sets"</dt>
                    <dd>{totals.scale_sets}</dd>
                </div>
                <div class="stat" data-stat="instances">
                    <dt>"Instances"</dt>
                    <dd>{totals.instances}</dd>
                </div>
                <div class="stat" data-stat="running">
                    <dt>"Running"</dt>
                    <dd>{totals.running}</dd>
                </div>
                <div class="stat" data-stat="desired">
                    <dt>"Desired"</dt>
                    <dd>{totals.desired}</dd>
                </div>
            </dl>
        </section>
        <section aria-labelledby="overview-sets">
            <h2 id="overview-sets">"Scale sets"</h2>
            {if sets.is_empty() {
                view! {
                    <p class="muted">
                        "No scale sets yet. Create one with " <code>"POST /api/v1/scale-sets"</code>
                        "."
                    </p>
                }
                    .into_any()
            } else {
                view! {
                    <div class="cards">
                        {sets
                            .into_iter()
                            .map(|summary| view! { <ScaleSetCard summary /> })
                            .collect_view()}
                    </div>
                }
                    .into_any()
            }}
        </section>
    }
}
