//! A line chart drawn as SVG: lines with an optional min–max band, labelled threshold lines,
//! markers on the time axis, value and time ticks, a legend with each line's newest value,
//! and — in the browser — a tooltip with the values under the pointer. Its text
//! alternatives: the SVG's name says each line's newest value, and the table under it
//! ([`ChartTable`]) gives the figures over the range and every point.
//!
//! The chart renders completely on the server, so it reads without JavaScript. A new value
//! of its data changes attributes only (the paths' `d`, the ticks' positions): the chart's
//! elements are made once, and ticks, markers and thresholds are keyed so that only the
//! ones that appear or go are added or removed. The geometry is in [`crate::chart`].

use leptos::prelude::*;

use crate::chart::{
    self, BOTTOM, ChartData, Frame, HEIGHT, LEFT, RIGHT, TOP, Unit, WIDTH, band_path, gap_ms,
    line_path, time_ticks,
};
use crate::components::chart_table::ChartTable;
use crate::format;

/// How many colours the lines cycle through (`.series-0` … in the stylesheet).
const COLOURS: usize = 6;

/// One line as drawn.
#[derive(Debug, Clone, PartialEq)]
struct Drawn {
    label: String,
    colour: usize,
    d: String,
    band: String,
    points: usize,
    latest: Option<f64>,
}

#[component]
pub fn Chart(
    /// The chart's title: its caption and, with the newest values, its accessible name.
    #[prop(into)]
    title: String,
    /// How its values are written.
    unit: Unit,
    /// What to draw.
    #[prop(into)]
    data: Signal<ChartData>,
    /// A short name for the page's tests and styles (`data-chart`).
    #[prop(into)]
    name: String,
    /// A small chart (a sparkline beside other content).
    #[prop(optional)]
    small: bool,
) -> impl IntoView {
    let frame = Memo::new(move |_| data.with(|d| d.frame(unit)));
    let drawn = Memo::new(move |_| {
        let frame = frame.get();
        data.with(|d| {
            d.lines
                .iter()
                .enumerate()
                .map(|(i, line)| {
                    let gap = gap_ms(line.points.iter().map(|p| p.0));
                    Drawn {
                        label: line.label.clone(),
                        colour: i % COLOURS,
                        d: line_path(&frame, &line.points, gap),
                        band: band_path(&frame, &line.band, gap),
                        points: line.points.len(),
                        latest: line.points.last().map(|p| p.1),
                    }
                })
                .collect::<Vec<_>>()
        })
    });
    let labels = Memo::new(move |_| {
        drawn.with(|all| all.iter().map(|l| l.label.clone()).collect::<Vec<_>>())
    });
    let line = move |label: &str, get: fn(&Drawn) -> String| {
        drawn.with(|all| {
            all.iter()
                .find(|l| l.label == label)
                .map(get)
                .unwrap_or_default()
        })
    };
    let table_title = title.clone();
    let summary = {
        let title = title.clone();
        move || data.with(|d| d.summary(&title, unit))
    };
    let empty = move || data.with(|d| d.point_count() == 0);
    // Keyed by their bits: f64 is not `Hash`.
    let y_ticks =
        Memo::new(move |_| frame.with(|f| f.ticks.iter().map(|t| t.to_bits()).collect::<Vec<_>>()));
    let x_ticks =
        Memo::new(move |_| data.with(|d| time_ticks(d.from, d.to, if small { 4 } else { 7 })));
    let hover = RwSignal::new(None::<f64>);
    let tip = Memo::new(move |_| {
        hover
            .get()
            .and_then(|x| tooltip(&data.read(), &frame.read(), x, unit))
    });
    let on_move = move |ev: leptos::ev::MouseEvent| {
        #[cfg(feature = "hydrate")]
        if let Some(x) = pointer_x(&ev) {
            hover.set(Some(x));
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    };
    let plot_bottom = HEIGHT - BOTTOM;
    let plot_right = WIDTH - RIGHT;
    view! {
        <figure
            class=if small { "chart chart-small" } else { "chart" }
            data-chart=name
            data-points=move || data.with(ChartData::point_count)
            data-last-at=move || data.with(|d| d.last_at().map(|t| format::datetime_attr(&t)))
        >
            <figcaption>
                <span class="chart-title">{title}</span>
                <ul class="chart-legend">
                    <For
                        each=move || labels.get()
                        key=|label| label.clone()
                        children=move |label| {
                            let (l1, l2, l3) = (label.clone(), label.clone(), label.clone());
                            let colour = move || {
                                drawn
                                    .with(|all| {
                                        all.iter().find(|l| l.label == l1).map_or(0, |l| l.colour)
                                    })
                            };
                            let latest = move || {
                                drawn
                                    .with(|all| {
                                        all.iter()
                                            .find(|l| l.label == l2)
                                            .and_then(|l| l.latest)
                                            .map_or_else(|| "no data".to_string(), |v| unit.format(v))
                                    })
                            };
                            view! {
                                <li data-series=l3>
                                    <span
                                        class=move || format!("swatch series-{}", colour())
                                        aria-hidden="true"
                                    ></span>
                                    {label}
                                    " "
                                    <span class="chart-latest">{latest}</span>
                                </li>
                            }
                        }
                    />
                </ul>
            </figcaption>
            <div class="chart-plot" on:mousemove=on_move on:mouseleave=move |_| hover.set(None)>
                <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=summary>
                    <g class="chart-axis">
                        <For
                            each=move || y_ticks.get()
                            key=|bits| *bits
                            children=move |bits| {
                                let value = f64::from_bits(bits);
                                let y = move || frame.with(|f| f.y(value));
                                view! {
                                    <line class="gridline" x1=LEFT x2=plot_right y1=y y2=y />
                                    <text
                                        class="tick"
                                        x=LEFT - 6.0
                                        y=move || y() + 4.0
                                        text-anchor="end"
                                    >
                                        {unit.tick(value)}
                                    </text>
                                }
                            }
                        />
                        <For
                            each=move || x_ticks.get()
                            key=|(at, _)| *at
                            children=move |(at, label)| {
                                let x = move || frame.with(|f| f.x(at));
                                view! {
                                    <line class="gridline" x1=x x2=x y1=TOP y2=plot_bottom />
                                    <text class="tick" x=x y=HEIGHT - 6.0 text-anchor="middle">
                                        {label}
                                    </text>
                                }
                            }
                        />
                    </g>
                    <For
                        each=move || labels.get()
                        key=|label| label.clone()
                        children=move |label| {
                            let (l1, l2, l3, l4, l5) = (
                                label.clone(),
                                label.clone(),
                                label.clone(),
                                label.clone(),
                                label.clone(),
                            );
                            view! {
                                <path
                                    class=move || {
                                        format!(
                                            "band series-{}",
                                            line(&l1, |l| l.colour.to_string()),
                                        )
                                    }
                                    d=move || line(&l2, |l| l.band.clone())
                                />
                                <path
                                    class=move || {
                                        format!(
                                            "line series-{}",
                                            line(&l3, |l| l.colour.to_string()),
                                        )
                                    }
                                    data-series=label
                                    data-points=move || line(&l4, |l| l.points.to_string())
                                    d=move || line(&l5, |l| l.d.clone())
                                />
                            }
                        }
                    />
                    <For
                        each=move || data.with(|d| d.thresholds.clone())
                        key=|t| (t.label.clone(), t.value.to_bits())
                        children=move |t| {
                            let value = t.value;
                            let y = move || frame.with(|f| f.y(value));
                            view! {
                                <g
                                    class=format!("threshold threshold-{}", t.kind.as_str())
                                    data-threshold=t.label.clone()
                                >
                                    <line x1=LEFT x2=plot_right y1=y y2=y />
                                    <text x=plot_right - 4.0 y=move || y() - 4.0 text-anchor="end">
                                        {t.label.clone()}
                                    </text>
                                </g>
                            }
                        }
                    />
                    <For
                        each=move || data.with(|d| d.markers.clone())
                        key=|m| (m.at, m.label.clone())
                        children=move |m| {
                            let at = m.at;
                            let x = move || frame.with(|f| f.x(at));
                            let kind = if m.out { "out" } else { "in" };
                            let right = move || x() > WIDTH * 0.75;
                            let label_x = move || if right() { x() - 3.0 } else { x() + 3.0 };
                            let anchor = move || if right() { "end" } else { "start" };
                            // Labels near the right edge read leftwards.
                            view! {
                                <g
                                    class=format!("marker marker-{kind}")
                                    data-marker=m.label.clone()
                                >
                                    <line x1=x x2=x y1=TOP y2=plot_bottom />
                                    <text x=label_x y=TOP - 4.0 text-anchor=anchor>
                                        {m.label.clone()}
                                    </text>
                                </g>
                            }
                        }
                    />
                    {move || {
                        tip.with(|t| t.as_ref().map(|t| t.x))
                            .map(|x| {
                                view! {
                                    <line class="chart-cursor" x1=x x2=x y1=TOP y2=plot_bottom />
                                }
                            })
                    }}
                </svg>
                <Show when=empty>
                    <p class="chart-empty">"No data in this range yet."</p>
                </Show>
                {move || {
                    tip.get()
                        .map(|t| {
                            let left = format!("left: {:.1}%", t.x / WIDTH * 100.0);
                            view! {
                                <div class="chart-tip" style=left role="status">
                                    <p class="chart-tip-time">{t.time}</p>
                                    <ul>
                                        {t
                                            .values
                                            .into_iter()
                                            .map(|(label, value)| {
                                                view! { <li>{label} ": " {value}</li> }
                                            })
                                            .collect_view()}
                                    </ul>
                                </div>
                            }
                        })
                }}
            </div>
            <ChartTable title=table_title unit data />
        </figure>
    }
    .into_any()
}

/// What the tooltip shows for the pointer at `x`.
#[derive(Debug, Clone, PartialEq)]
struct Tip {
    /// Where the cursor line is drawn: at the nearest point of the first line with data.
    x: f64,
    time: String,
    values: Vec<(String, String)>,
}

fn tooltip(data: &ChartData, frame: &Frame, x: f64, unit: Unit) -> Option<Tip> {
    let at = frame.at(x);
    let snapped = data
        .lines
        .iter()
        .find_map(|l| chart::nearest(&l.points, at).map(|i| l.points[i].0))?;
    let values = data
        .lines
        .iter()
        .map(|l| {
            let value = chart::nearest(&l.points, snapped)
                .map_or_else(|| "no data".to_string(), |i| unit.format(l.points[i].1));
            (l.label.clone(), value)
        })
        .collect();
    Some(Tip {
        x: frame.x(snapped),
        time: format::timestamp(&snapped),
        values,
    })
}

/// The pointer's position in the chart's coordinates.
#[cfg(feature = "hydrate")]
fn pointer_x(ev: &leptos::ev::MouseEvent) -> Option<f64> {
    use wasm_bindgen::JsCast;
    let target = ev.current_target()?.dyn_into::<web_sys::Element>().ok()?;
    let rect = target.get_bounding_client_rect();
    (rect.width() > 0.0).then(|| (f64::from(ev.client_x()) - rect.left()) / rect.width() * WIDTH)
}
