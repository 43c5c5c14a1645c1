//! The scale set's charts as the tabs show them (Monitoring, Scaling, Overview): one read of
//! the metrics, server-rendered first, then read again in the browser every `refresh` while
//! the tab is open and visible; each chart draws its metrics with the threshold lines of
//! the autoscale profile that applies and a marker per scale action.

use std::time::Duration;

use leptos::prelude::*;

use super::{Live, Polled, use_every_visible};
use crate::api::autoscale::read_charts;
use crate::components::chart::Chart;
use crate::metrics_view::{ChartSpec, ChartsRead, ChartsRequest, chart_data, markers, thresholds};

/// `specs` drawn from `first`, then from newer reads of `request`.
#[component]
pub(super) fn LiveCharts(
    live: Live,
    /// The server-rendered read.
    first: ChartsRead,
    /// What `first` answered.
    request: ChartsRequest,
    specs: Vec<ChartSpec>,
    /// How often to read again (`None`: never — a fixed range).
    refresh: Option<Duration>,
    /// Whether the autoscale thresholds are drawn (the scale set's charts, not an
    /// instance's).
    #[prop(optional)]
    with_thresholds: bool,
    /// Small charts (beside other content).
    #[prop(optional)]
    small: bool,
) -> impl IntoView {
    // Later reads ask for the first answer's step (and so get a window aligned to it).
    let request = ChartsRequest {
        step: Some(first.metrics.step_seconds),
        ..request
    };
    let read = Polled::new(first);
    if let Some(period) = refresh {
        use_every_visible(period, move || {
            let request = request.clone();
            read.reload(move || read_charts(request));
        });
    }
    let setting = Memo::new(move |_| live.detail.with(|d| d.scale_set.spec.autoscale.clone()));
    let capacity = Memo::new(move |_| live.detail.with(|d| d.scale_set.spec.capacity));
    specs
        .into_iter()
        .map(|spec| {
            let data = Memo::new(move |_| {
                read.value.with(|r| {
                    let lines = match spec.main_metric() {
                        Some(metric) if with_thresholds => setting
                            .with(|s| thresholds(s.as_ref(), metric, r.metrics.to, capacity.get())),
                        _ => vec![],
                    };
                    let marks = markers(&r.actions, r.metrics.from, r.metrics.to);
                    chart_data(&spec, &r.metrics, lines, marks)
                })
            });
            view! { <Chart title=spec.title unit=spec.unit() data name=spec.name small /> }
        })
        .collect_view()
}
