use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::activity::failures_last_hour;
use crate::api::scale_sets::list_scale_sets;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::components::power_summary::PowerSummary;
use crate::components::scale_set_card::ScaleSetCard;
use crate::live::{self, use_live_events};
use crate::summary::{Breakdown, FleetTotals, RecentFailures, ScaleSetSummary};

/// `/`: the fleet at a glance — totals (instances by power and by health state, desired
/// against running, failed operations in the last hour), then one card per scale set; live
/// in the browser, on state changes and on new activity entries.
#[component]
pub fn Overview() -> impl IntoView {
    let sets = crate::resource::new(|| (), |_| list_scale_sets());
    let failures = crate::resource::new(|| (), |_| failures_last_hour());
    use_live_events(
        || live::events_url(None),
        live::EVENTS_WITH_ACTIVITY,
        move || {
            sets.refetch();
            failures.refetch();
        },
    );
    view! {
        <Title text="Overview" />
        <h1>"Overview"</h1>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let failures = failures.await;
                match sets.await {
                    Ok(sets) => view! { <OverviewBody sets failures /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn OverviewBody(
    sets: Vec<ScaleSetSummary>,
    failures: Result<RecentFailures, ServerFnError>,
) -> impl IntoView {
    let totals = FleetTotals::of(&sets);
    let running = totals.running();
    view! {
        <section aria-label="Totals">
            <dl class="stats">
                <div class="stat" data-stat="scale-sets">
                    <dt>"Scale sets"</dt>
                    <dd>{totals.scale_sets}</dd>
                </div>
                <div class="stat" data-stat="instances">
                    <dt>"Instances"</dt>
                    <dd>{totals.instances.total}</dd>
                </div>
                <div class="stat" data-stat="running">
                    <dt>"Running"</dt>
                    <dd>{running}</dd>
                </div>
                <div class="stat" data-stat="desired">
                    <dt>"Desired"</dt>
                    <dd>{totals.desired}</dd>
                </div>
                <FailedStat failures />
            </dl>
            <div class="breakdowns">
                <div class="breakdown">
                    <h2>"By power state"</h2>
                    <PowerSummary
                        counts=totals.instances.clone()
                        label="All instances by power state"
                    />
                </div>
                <div class="breakdown">
                    <h2>"By health state"</h2>
                    <PowerSummary
                        counts=totals.instances
                        by=Breakdown::Health
                        label="All instances by health state"
                    />
                </div>
            </div>
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

/// The failed operations of the last hour, linking to them in the activity log; a log that
/// cannot be read is said so without hiding the rest of the overview.
#[component]
fn FailedStat(failures: Result<RecentFailures, ServerFnError>) -> impl IntoView {
    let figure = match failures {
        Ok(failures) => {
            let count = failures.count;
            let any = count > 0;
            view! {
                <dd data-count=count class:stat-bad=any>
                    <a href=failures.href() title="Show them in the activity log">
                        {failures.label()}
                    </a>
                </dd>
            }
            .into_any()
        }
        Err(error) => view! {
            <dd class="muted" title=error.to_string()>
                "unavailable"
            </dd>
        }
        .into_any(),
    };
    view! {
        <div class="stat" data-stat="failed">
            <dt>"Failed in the last hour"</dt>
            {figure}
        </div>
    }
}
