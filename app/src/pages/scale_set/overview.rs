//! The Overview tab: the set's capacity control (or which autoscale profile sets it), its
//! CPU and requests over the last 15 minutes (small live charts), its facts, its instances
//! by state and where they sit (zones × fault domains).

use leptos::prelude::*;

use std::time::Duration;

use super::charts::LiveCharts;
use super::{Live, Tab};
use crate::api::autoscale::read_charts;
use crate::api::scale_sets::SetCapacity;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::components::placement_grid::PlacementGrid;
use crate::components::power_summary::PowerSummary;
use crate::components::scale_control::ScaleControl;
use crate::components::timestamp::Timestamp;
use crate::format;
use crate::metrics_view::{ChartsRequest, Preset, SCALING_CHARTS, Window, metrics_of};
use crate::summary::{Breakdown, ScaleSetDetail};

/// The small charts' range, and how often they are read again.
const CHART_RANGE: Preset = Preset::Minutes15;
const CHART_REFRESH: Duration = Duration::from_secs(5);

#[component]
pub(super) fn OverviewTab(live: Live) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let set_capacity = ServerAction::<SetCapacity>::new();
    Effect::watch(
        move || set_capacity.version().get(),
        move |_, _, _| live.refresh(),
        false,
    );
    let grid = Memo::new(move |_| live.detail.with(|d| d.grid.clone().unwrap_or_default()));
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
    view! {
        <section aria-labelledby="scale-heading" class="panel">
            <h2 id="scale-heading">"Scale"</h2>
            <ScaleControl
                name=name.clone()
                autoscale=Signal::derive(move || {
                    live.detail.with(|d| d.scale_set.spec.autoscale.clone())
                })
                capacity=Signal::derive(move || live.detail.with(|d| d.scale_set.spec.capacity))
                now=Signal::derive(move || live.detail.with(|d| d.read_at))
                action=set_capacity
                editor_href=Tab::Scaling.href(&name)
            />
        </section>
        <section aria-labelledby="load-heading" class="panel">
            <h2 id="load-heading">
                "Load, last 15 minutes " <a class="heading-link" href=Tab::Monitoring.href(&name)>
                    "All charts"
                </a>
            </h2>
            <Suspense fallback=Loading>
                {move || {
                    let request = request.clone();
                    Suspend::new(async move {
                        match charts.await {
                            Ok(first) => {
                                view! {
                                    <div class="chart-grid chart-grid-small">
                                        <LiveCharts
                                            live
                                            first
                                            request
                                            specs=SCALING_CHARTS.to_vec()
                                            refresh=Some(CHART_REFRESH)
                                            with_thresholds=true
                                            small=true
                                        />
                                    </div>
                                }
                                    .into_any()
                            }
                            Err(error) => view! { <ErrorPanel error /> }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </section>
        <section aria-labelledby="facts-heading" class="panel">
            <h2 id="facts-heading">"Facts"</h2>
            {move || live.detail.with(facts)}
        </section>
        <section aria-labelledby="placement-heading" class="panel">
            <h2 id="placement-heading">"Placement"</h2>
            <PlacementGrid grid=grid.into() scale_set=name />
        </section>
    }
}

fn facts(detail: &ScaleSetDetail) -> impl IntoView + use<> {
    let set = &detail.scale_set;
    let counts = detail.counts.clone();
    let model = &set.spec.model;
    let size = format!(
        "{} · {} vCPU · {} memory · {} GiB disk",
        model.image,
        model.vcpus,
        format::memory_mib(model.memory_mib),
        model.disk_gib
    );
    let upgrade_mode = format!("{:?}", set.spec.upgrade_policy.mode).to_lowercase();
    view! {
        <dl class="facts">
            <div>
                <dt>"Capacity"</dt>
                <dd data-fact="capacity">{set.spec.capacity}</dd>
            </div>
            <div>
                <dt>"Running"</dt>
                <dd data-fact="running">{format!("{} of {}", counts.running(), counts.total)}</dd>
            </div>
            <div>
                <dt>"Latest model"</dt>
                <dd data-fact="latest">{format!("{} of {}", counts.latest_model, counts.total)}</dd>
            </div>
            <div>
                <dt>"Zones"</dt>
                <dd>{format::zones(&set.spec.zones)}</dd>
            </div>
            <div>
                <dt>"Fault domains per zone"</dt>
                <dd>{set.spec.platform_fault_domain_count}</dd>
            </div>
            <div>
                <dt>"Model"</dt>
                <dd>{size}</dd>
            </div>
            <div>
                <dt>"Model version"</dt>
                <dd>{set.model_version}</dd>
            </div>
            <div>
                <dt>"Upgrade policy"</dt>
                <dd>{upgrade_mode}</dd>
            </div>
            <div>
                <dt>"Created"</dt>
                <dd>
                    <Timestamp at=set.created_at />
                </dd>
            </div>
            <div>
                <dt>"Updated"</dt>
                <dd>
                    <Timestamp at=set.updated_at />
                </dd>
            </div>
        </dl>
        <PowerSummary
            counts=counts.clone()
            label=format!("Instances of {} by power state", set.spec.name)
        />
        <PowerSummary
            counts
            label=format!("Instances of {} by health state", set.spec.name)
            by=Breakdown::Health
        />
    }
}
