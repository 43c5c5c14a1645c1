//! The Scaling tab: how the capacity is set (the capacity form while autoscale is off, or
//! which profile sets it), the autoscale editor ([`editor`], with the weekly
//! [`schedule_grid`] and the draft's what-if and Save as shadow, [`lab`]), the shadow
//! setting beside the live one ([`shadow`]), why the set did or did not scale
//! ([`decisions`], beside CPU and requests charts with the thresholds and the scale
//! actions), and on the mock the synthetic demand ([`demand`]).
//!
//! The set is read again every [`REFRESH`] while the tab is visible, so the capacity, the
//! profile that applies and the demand's rate stay current between events.

mod decisions;
mod demand;
mod editor;
mod lab;
mod schedule_grid;
mod scores;
mod setting_summary;
mod shadow;

use std::time::Duration;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::charts::LiveCharts;
use super::forecast::Forecasts;
use super::{Live, use_every_visible};
use crate::api::autoscale::{list_decisions, read_charts, read_scaling};
use crate::api::lab::ChangeShadow;
use crate::api::scale_sets::SetCapacity;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::components::scale_control::ScaleControl;
use crate::metrics_view::{ChartsRequest, Preset, SCALING_CHARTS, Window, metrics_of};

/// How often the tab reads the set again.
pub const REFRESH: Duration = Duration::from_secs(5);

/// The charts beside the decisions: the last hour.
const CHART_RANGE: Preset = Preset::Hour1;

#[component]
pub(super) fn ScalingTab(live: Live) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    use_every_visible(REFRESH, move || live.refresh());
    let params = use_query_map();
    let actions_only =
        Memo::new(move |_| params.with(|p| p.get("decisions").as_deref() == Some("actions")));
    let scaling = crate::resource::new(
        {
            let name = name.clone();
            move || name.clone()
        },
        read_scaling,
    );
    let decisions = crate::resource::new(
        {
            let name = name.clone();
            move || (name.clone(), actions_only.get())
        },
        |(name, actions_only)| list_decisions(name, actions_only),
    );
    let request = ChartsRequest {
        name: name.clone(),
        metrics: metrics_of(&SCALING_CHARTS),
        window: Window::Last {
            seconds: CHART_RANGE.seconds(),
        },
        step: None,
        instance: None,
    };
    let charts = crate::resource::new(
        {
            let request = request.clone();
            move || request.clone()
        },
        read_charts,
    );
    let set_capacity = ServerAction::<SetCapacity>::new();
    let shadow_action = ServerAction::<ChangeShadow>::new();
    Effect::watch(
        move || set_capacity.version().get(),
        move |_, _, _| live.refresh(),
        false,
    );
    view! {
        <section aria-labelledby="capacity-heading" class="panel">
            <h2 id="capacity-heading">"Capacity"</h2>
            <ScaleControl
                name=name.clone()
                autoscale=Signal::derive(move || {
                    live.detail.with(|d| d.scale_set.spec.autoscale.clone())
                })
                capacity=Signal::derive(move || live.detail.with(|d| d.scale_set.spec.capacity))
                now=Signal::derive(move || live.detail.with(|d| d.read_at))
                action=set_capacity
            />
        </section>
        <section aria-labelledby="autoscale-heading" class="panel">
            <h2 id="autoscale-heading">"Autoscale"</h2>
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    match scaling.await {
                        Ok(read) => {
                            view! {
                                <editor::AutoscaleEditor live stored=read.stored shadow_action />
                            }
                                .into_any()
                        }
                        Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
        <shadow::ShadowPanel live action=shadow_action />
        <section aria-labelledby="decisions-heading" class="panel">
            <h2 id="decisions-heading">"Why it scaled"</h2>
            <Suspense fallback=Loading>
                {
                    let request = request.clone();
                    move || {
                        let request = request.clone();
                        Suspend::new(async move {
                            match charts.await {
                                Ok(first) => {
                                    view! {
                                        <div class="chart-grid">
                                            <LiveCharts
                                                live
                                                first
                                                request
                                                specs=SCALING_CHARTS.to_vec()
                                                refresh=Some(CHART_RANGE.refresh())
                                                with_thresholds=true
                                            />
                                        </div>
                                    }
                                        .into_any()
                                }
                                Err(error) => view! { <ErrorPanel error /> }.into_any(),
                            }
                        })
                    }
                }
            </Suspense>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match decisions.await {
                        Ok(first) => {
                            view! {
                                <decisions::Decisions
                                    live
                                    first
                                    actions_only=actions_only.get_untracked()
                                />
                            }
                                .into_any()
                        }
                        Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <Forecasts name=name.clone() />
        <Suspense>
            {move || Suspend::new(async move {
                (scaling.await.ok().map(|read| read.backend).as_deref() == Some("mock"))
                    .then(|| {
                        // The demand is the mock's only.
                        view! { <Demand live /> }
                    })
            })}
        </Suspense>
    }
    .into_any()
}

/// The mock's synthetic demand.
#[component]
fn Demand(live: Live) -> impl IntoView {
    view! {
        <section aria-labelledby="demand-heading" class="panel">
            <h2 id="demand-heading">"Synthetic demand (mock)"</h2>
            <p class="hint">
                "The mock backend simulates load: its instances' CPU, network and requests follow this demand, so autoscale can be watched without real traffic."
            </p>
            <demand::DemandSection live />
        </section>
    }
}
