//! The load forecasts of predictive autoscale, on the Monitoring and Scaling tabs: for each
//! predictive profile, the last season's load against what was forecast for it and the next
//! season forecast, the model forecasting, every model's accuracy (MAPE), the lead and the
//! history it stands on — or how much more history it needs.

use std::time::Duration;

use flotilla_domain::autoscale::forecast::{Item, Model};
use flotilla_domain::metrics::Metric;
use leptos::prelude::*;

use super::use_every_visible;
use crate::api::autoscale::read_forecast;
use crate::chart::{ChartData, Line, Unit};
use crate::components::chart::Chart;
use crate::components::error_panel::ErrorPanel;
use crate::format;

/// How often the forecasts are read again.
const REFRESH: Duration = Duration::from_secs(15);

/// Every predictive profile's forecast of the set `name` (nothing when it has none).
#[component]
pub(super) fn Forecasts(name: String) -> impl IntoView {
    let tick = RwSignal::new(0u32);
    use_every_visible(REFRESH, move || tick.update(|t| *t += 1));
    let forecasts = crate::resource::new(
        move || (name.clone(), tick.get()),
        |(name, _)| read_forecast(name),
    );
    view! {
        <Transition>
            {move || Suspend::new(async move {
                match forecasts.await {
                    Ok(items) if items.is_empty() => ().into_any(),
                    Ok(items) => {
                        view! {
                            <section
                                aria-labelledby="forecast-heading"
                                class="panel"
                                data-forecasts=""
                            >
                                <h2 id="forecast-heading">"Load forecast"</h2>
                                {items
                                    .into_iter()
                                    .map(|item| view! { <ForecastView item /> })
                                    .collect_view()}
                            </section>
                        }
                            .into_any()
                    }
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn model_name(m: Model) -> &'static str {
    match m {
        Model::SeasonalNaive => "seasonal naive",
        Model::SeasonalMedian => "seasonal median",
        Model::HoltWinters => "Holt-Winters",
    }
}

/// One profile's forecast.
#[component]
fn ForecastView(item: Item) -> impl IntoView {
    let f = item.forecast;
    let title = format!(
        "{} of profile {}{}",
        f.metric,
        item.profile,
        if item.shadow { " (shadow)" } else { "" }
    );
    let unit = Metric::parse(&f.metric).map_or(Unit::Instances, Unit::of);
    let line =
        |label: &str, pick: fn(&flotilla_domain::autoscale::forecast::ViewPoint) -> Option<f64>| {
            Line {
                label: label.into(),
                points: f
                    .points
                    .iter()
                    .filter_map(|p| pick(p).map(|v| (p.at, v)))
                    .collect(),
                band: vec![],
            }
        };
    let data = ChartData {
        from: f.points.first().map(|p| p.at).unwrap_or_default(),
        to: f.points.last().map(|p| p.at).unwrap_or_default(),
        lines: vec![line("load", |p| p.load), line("forecast", |p| p.forecast)],
        thresholds: vec![],
        markers: vec![],
    };
    let peak = f.next_peak();
    let history = if f.ready {
        format!(
            "{} of history (a season is {})",
            format::seconds(f.history_seconds as u32),
            format::seconds(f.season_seconds)
        )
    } else {
        format!(
            "{} of history: a season ({}) is needed before anything is forecast",
            format::seconds(f.history_seconds as u32),
            format::seconds(f.season_seconds)
        )
    };
    let errors = f
        .mape
        .iter()
        .map(|e| format!("{} {:.1} %", model_name(e.model), e.mape))
        .collect::<Vec<_>>()
        .join(", ");
    let mode = match item.mode {
        flotilla_domain::autoscale::setting::PredictiveMode::ForecastOnly => {
            "forecast only: recorded and charted, not acted on"
        }
        flotilla_domain::autoscale::setting::PredictiveMode::ForecastAndScale => {
            "forecast and scale: the capacity is raised ahead of the load"
        }
    };
    view! {
        <div class="forecast" data-profile=item.profile.clone() data-ready=f.ready.to_string()>
            <h3>{title.clone()}</h3>
            <dl class="facts">
                <dt>"Mode"</dt>
                <dd>{mode}</dd>
                <dt>"Model"</dt>
                <dd data-model=f.model.as_str()>{model_name(f.model)}</dd>
                <dt>"Accuracy (MAPE over the last season)"</dt>
                <dd data-mape="">
                    {if errors.is_empty() { "not scored yet".to_string() } else { errors }}
                </dd>
                <dt>"Lead"</dt>
                <dd data-lead=f
                    .lead_seconds
                    .to_string()>{format!("{} ahead", format::seconds(f.lead_seconds))}</dd>
                <dt>"History"</dt>
                <dd>{history}</dd>
                <dt>"Next peak"</dt>
                <dd data-peak="">
                    {peak
                        .map(|(at, v)| {
                            format!(
                                "{} at {} → {} instances at {} per instance",
                                unit.format(v),
                                format::timestamp(&at),
                                (v / item.target).ceil(),
                                item.target,
                            )
                        })
                        .unwrap_or_else(|| "nothing forecast yet".into())}
                </dd>
            </dl>
            <Show when=move || f.ready>
                <Chart
                    title=format!("{title}: load and forecast")
                    unit
                    data=Signal::stored(data.clone())
                    name="forecast"
                />
            </Show>
        </div>
    }
}
