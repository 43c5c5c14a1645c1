use leptos::html;
use leptos::prelude::*;

use crate::chart::{ChartData, Unit};
use crate::format;

/// A chart's text alternative, under it in a disclosure ("As a table"): each line's
/// figures over the range (newest, lowest, average and highest value),
/// the threshold lines and the marked scale actions — rendered on the server, so they read
/// without JavaScript — and, once opened in the browser, a table of every point.
///
/// The table of points is made only while the disclosure is open: a Monitoring tab's eight
/// charts hold up to 300 points a line, which would weigh on every page that shows them.
#[component]
pub fn ChartTable(
    /// The chart's title.
    #[prop(into)]
    title: String,
    /// How its values are written.
    unit: Unit,
    /// What the chart draws.
    #[prop(into)]
    data: Signal<ChartData>,
) -> impl IntoView {
    let details = NodeRef::<html::Details>::new();
    let open = RwSignal::new(false);
    let is_open = move || details.get().is_some_and(|d| d.open());
    // Opened before the page hydrated: no toggle event comes after.
    Effect::new(move |_| {
        if is_open() {
            open.set(true);
        }
    });
    let write = move |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| unit.format(v));
    let caption = {
        let title = title.clone();
        move || {
            data.with(|d| {
                format!(
                    "{title}, from {} to {}",
                    format::timestamp(&d.from),
                    format::timestamp(&d.to)
                )
            })
        }
    };
    let figures = move || {
        data.with(ChartData::figures)
            .into_iter()
            .map(|f| {
                view! {
                    <tr>
                        <th scope="row">{f.label}</th>
                        <td class="num">{write(f.latest)}</td>
                        <td class="num">{write(f.lowest)}</td>
                        <td class="num">{write(f.mean)}</td>
                        <td class="num">{write(f.highest)}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    let thresholds = move || {
        data.with(|d| {
            let all: Vec<String> = d
                .thresholds
                .iter()
                .map(|t| format!("{} at {}", t.label, unit.format(t.value)))
                .collect();
            (!all.is_empty()).then(|| view! { <p>"Lines across: " {all.join("; ")} "."</p> })
        })
    };
    let markers = move || {
        data.with(|d| {
            let all: Vec<String> = d
                .markers
                .iter()
                .map(|m| format!("{} at {}", m.label, format::timestamp(&m.at)))
                .collect();
            (!all.is_empty()).then(|| view! { <p>"Scale actions: " {all.join("; ")} "."</p> })
        })
    };
    let columns = move || {
        data.with(|d| {
            d.lines
                .iter()
                .map(|l| view! { <th scope="col">{l.label.clone()}</th> })
                .collect_view()
        })
    };
    let rows = move || {
        data.with(|d| d.point_rows(unit))
            .into_iter()
            .map(|row| {
                view! {
                    <tr>
                        <th scope="row">{format::timestamp(&row.at)}</th>
                        {row
                            .cells
                            .into_iter()
                            .map(|cell| view! { <td class="num">{cell}</td> })
                            .collect_view()}
                    </tr>
                }
            })
            .collect_view()
    };
    let named = format!(": {title}");
    let figures_label = format!("{title}: figures");
    let points_label = format!("{title}: every point");
    view! {
        <details class="chart-data" node_ref=details on:toggle=move |_| open.set(is_open())>
            <summary>"As a table" <span class="visually-hidden">{named}</span></summary>
            <div class="table-wrap" role="region" aria-label=figures_label tabindex="0">
                <table class="data">
                    <caption>{caption}</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Line"</th>
                            <th scope="col">"Latest"</th>
                            <th scope="col">"Lowest"</th>
                            <th scope="col">"Average"</th>
                            <th scope="col">"Highest"</th>
                        </tr>
                    </thead>
                    <tbody>{figures}</tbody>
                </table>
            </div>
            {thresholds}
            {markers}
            <Show
                when=move || open.get()
                fallback=|| {
                    view! { <p class="muted">"With JavaScript on, every point is listed here."</p> }
                }
            >
                <div
                    class="table-wrap chart-points"
                    role="region"
                    aria-label=points_label.clone()
                    tabindex="0"
                >
                    <table class="data">
                        <caption>"Every point"</caption>
                        <thead>
                            <tr>
                                <th scope="col">"Time"</th>
                                {columns}
                            </tr>
                        </thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
            </Show>
        </details>
    }
}
