//! The Monitoring tab: live charts of every metric of the scale set — CPU and memory with
//! their min–max band, requests (and the mock's demand), errors, latency percentiles,
//! network, disk and the instance counts — with the autoscale thresholds of the profile
//! that applies and a marker per scale action; and, for one instance picked from the
//! list, that instance's charts.
//!
//! The range (15 min to 7 days ending now, or custom times in UTC) and the instance are in
//! the URL (`?range=6h&instance=web_2`): the picker is links and GET forms, so it works
//! without JavaScript and every view is a link. In the browser a range ending now is read
//! again while the tab is open and visible: every second for 15 minutes, less often for
//! longer ranges ([`Preset::refresh`]).

use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::{use_navigate, use_query_map};

use super::charts::LiveCharts;
use super::forecast::Forecasts;
use super::{Live, Tab};
use crate::api::autoscale::read_charts;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::metrics_view::{
    ChartsRequest, MonitoringQuery, Preset, Range, SET_CHARTS, instance_charts, metrics_of,
};
use flotilla_domain::FieldError;

#[component]
pub(super) fn MonitoringTab(live: Live) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let params = use_query_map();
    let parsed = Memo::new(move |_| params.with(|p| MonitoringQuery::parse(|k| p.get(k))));
    let query = Memo::new(move |_| parsed.with(|(q, _)| q.clone()));
    let errors = Memo::new(move |_| parsed.with(|(_, e)| e.clone()));
    let set_request = {
        let name = name.clone();
        move |q: &MonitoringQuery| ChartsRequest {
            name: name.clone(),
            metrics: metrics_of(&SET_CHARTS),
            window: q.window(),
            step: None,
            instance: None,
        }
    };
    let set_first = crate::resource::new(
        {
            let set_request = set_request.clone();
            move || query.with(|q| set_request(q))
        },
        read_charts,
    );
    let instance = move || query.with(|q| q.instance.clone());
    view! {
        <Controls live query errors />
        <section aria-labelledby="set-charts-heading" class="panel" data-charts="scale-set">
            <h2 id="set-charts-heading">"Scale set"</h2>
            <Transition fallback=Loading>
                {move || {
                    let set_request = set_request.clone();
                    Suspend::new(async move {
                        match set_first.await {
                            Ok(first) => {
                                let q = query.get_untracked();
                                view! {
                                    <div class="chart-grid">
                                        <LiveCharts
                                            live
                                            first
                                            request=set_request(&q)
                                            specs=SET_CHARTS.to_vec()
                                            refresh=q.refresh()
                                            with_thresholds=true
                                        />
                                    </div>
                                }
                                    .into_any()
                            }
                            Err(error) => view! { <ErrorPanel error /> }.into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
        <Forecasts name=live.detail.with_untracked(|d| d.scale_set.spec.name.clone()) />
        <Show when=move || instance().is_some()>
            <InstanceCharts live query />
        </Show>
    }
    .into_any()
}

/// The charts of the instance picked.
#[component]
fn InstanceCharts(live: Live, query: Memo<MonitoringQuery>) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let request = move |q: &MonitoringQuery| {
        q.instance.clone().map(|instance| ChartsRequest {
            name: name.clone(),
            metrics: metrics_of(&instance_charts()),
            window: q.window(),
            step: None,
            instance: Some(instance),
        })
    };
    let first = crate::resource::new(
        {
            let request = request.clone();
            move || query.with(|q| request(q))
        },
        |request| async move {
            match request {
                Some(request) => read_charts(request).await.map(Some),
                None => Ok(None),
            }
        },
    );
    let instance = move || query.with(|q| q.instance.clone());
    view! {
        <section
            aria-labelledby="instance-charts-heading"
            class="panel"
            data-charts="instance"
            data-instance=instance
        >
            <h2 id="instance-charts-heading">
                {move || format!("Instance {}", instance().unwrap_or_default())}
            </h2>
            <p class="muted">
                "An instance's samples are kept for its last 120 collector ticks; older parts of the range stay empty."
            </p>
            <Transition fallback=Loading>
                {move || {
                    let request = request.clone();
                    Suspend::new(async move {
                        let q = query.get_untracked();
                        match (first.await, request(&q)) {
                            (Ok(Some(first)), Some(request)) => {
                                view! {
                                    <div class="chart-grid">
                                        <LiveCharts
                                            live
                                            first
                                            request
                                            specs=instance_charts()
                                            refresh=q.refresh()
                                        />
                                    </div>
                                }
                                    .into_any()
                            }
                            (Err(error), _) => view! { <ErrorPanel error /> }.into_any(),
                            _ => ().into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
    }
    .into_any()
}

/// The range picker (links for the ranges ending now, a GET form for custom times) and
/// the instance picker (a GET form; in the browser picking is enough).
#[component]
fn Controls(
    live: Live,
    query: Memo<MonitoringQuery>,
    errors: Memo<Vec<FieldError>>,
) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let base = Tab::Monitoring.href(&name);
    let message = move |field: &'static str| {
        move || {
            errors.with(|errors| {
                errors
                    .iter()
                    .filter(|e| e.field == field)
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        }
    };
    let custom = move || query.with(|q| matches!(q.range, Range::Between { .. }));
    let status = move || {
        query.with(|q| match q.refresh() {
            Some(period) => format!(
                "Live: read again every {} s while this tab is open. Times in UTC.",
                period.as_secs()
            ),
            None => "A fixed range: not read again. Times in UTC.".to_string(),
        })
    };
    let instances = Memo::new(move |_| live.detail.with(|d| d.ids.clone()));
    let navigate = use_navigate();
    let pick = {
        let base = base.clone();
        move |ev: leptos::ev::Event| {
            let picked = event_target_value(&ev);
            let href = query.with_untracked(|q| q.with_instance(&base, Some(&picked)));
            navigate(&href, Default::default());
        }
    };
    let range_hidden = move || {
        query.with(|q| match q.range {
            Range::Last(preset) => {
                view! { <input type="hidden" name="range" value=preset.slug() /> }.into_any()
            }
            Range::Between { .. } => view! {
                <input type="hidden" name="range" value="custom" />
                <input type="hidden" name="from" value=q.from_typed.clone() />
                <input type="hidden" name="to" value=q.to_typed.clone() />
            }
            .into_any(),
        })
    };
    let instance_hidden = move || {
        query.with(|q| {
            q.instance
                .clone()
                .map(|i| view! { <input type="hidden" name="instance" value=i /> })
        })
    };
    view! {
        <section aria-label="Range and instance" class="panel monitoring-controls">
            <nav class="range-picker" aria-label="Time range">
                {Preset::ALL
                    .into_iter()
                    .map(|preset| {
                        let base = base.clone();
                        view! {
                            <a
                                href=move || query.with(|q| q.with_preset(&base, preset))
                                aria-current=move || {
                                    query.with(|q| q.range == Range::Last(preset)).then_some("true")
                                }
                                data-range=preset.slug()
                            >
                                {preset.label()}
                            </a>
                        }
                    })
                    .collect_view()}
                <span class="range-custom-label" aria-current=move || custom().then_some("true")>
                    "Custom"
                </span>
            </nav>
            <Form
                method="GET"
                action=base.clone()
                attr:class="filters custom-range"
                attr:data-form="custom-range"
            >
                <input type="hidden" name="range" value="custom" />
                {instance_hidden}
                <div class="filter">
                    <label for="range-from">"From (UTC)"</label>
                    <input
                        id="range-from"
                        name="from"
                        type="datetime-local"
                        value=move || query.with(|q| q.from_typed.clone())
                        prop:value=move || query.with(|q| q.from_typed.clone())
                        aria-describedby="range-from-message"
                    />
                    <p id="range-from-message" class="field-error" data-error="from">
                        {message("from")}
                    </p>
                </div>
                <div class="filter">
                    <label for="range-to">"To (UTC)"</label>
                    <input
                        id="range-to"
                        name="to"
                        type="datetime-local"
                        value=move || query.with(|q| q.to_typed.clone())
                        prop:value=move || query.with(|q| q.to_typed.clone())
                        aria-describedby="range-to-message"
                    />
                    <p id="range-to-message" class="field-error" data-error="to">
                        {message("to")}
                    </p>
                </div>
                <div class="filter filter-actions">
                    <button type="submit">"Show range"</button>
                </div>
                <p class="field-error" data-error="range">
                    {message("range")}
                </p>
            </Form>
            <Form
                method="GET"
                action=base.clone()
                attr:class="filters instance-picker"
                attr:data-form="instance"
            >
                {range_hidden}
                <div class="filter">
                    <label for="monitor-instance">"Instance"</label>
                    <select id="monitor-instance" name="instance" on:change=pick>
                        <option value="" selected=move || query.with(|q| q.instance.is_none())>
                            "None: the scale set only"
                        </option>
                        <For
                            each=move || instances.get()
                            key=|id| id.clone()
                            children=move |id| {
                                let chosen = id.clone();
                                view! {
                                    <option
                                        value=id.clone()
                                        selected=move || {
                                            query
                                                .with(|q| q.instance.as_deref() == Some(chosen.as_str()))
                                        }
                                    >
                                        {id.clone()}
                                    </option>
                                }
                            }
                        />
                    </select>
                </div>
                <div class="filter filter-actions">
                    <button type="submit">"Show instance"</button>
                </div>
            </Form>
            <p class="muted" data-state="refresh">
                {status}
            </p>
        </section>
    }
    .into_any()
}
