use std::collections::BTreeMap;

use leptos::prelude::*;

use crate::placement_grid::Grid;
use flotilla_domain::url::percent_encode;

/// Where a scale set's instances sit: a table of zones (rows) × fault domains (columns),
/// each instance a square coloured by its state (`chip-<state>` colours) and linking to
/// its row in the instances table; a legend counts the states. The state is also in each
/// square's text, for assistive technology and for anyone who does not see the colour.
#[component]
pub fn PlacementGrid(
    /// The grid to draw.
    grid: Signal<Grid>,
    /// The scale set, for links to the instances.
    scale_set: String,
) -> impl IntoView {
    let instances_href = format!("/scale-sets/{}/instances", percent_encode(&scale_set));
    let legend = move || {
        grid.with(|g| {
            let mut counts: BTreeMap<String, u32> = BTreeMap::new();
            for placed in g.cells.iter().flatten().flatten() {
                *counts.entry(placed.state.clone()).or_default() += 1;
            }
            counts
        })
    };
    view! {
        <div
            class="table-wrap"
            role="region"
            aria-label="Instances by zone and fault domain"
            tabindex="0"
        >
            <table class="placement" aria-label="Instances by zone and fault domain">
                <thead>
                    <tr>
                        <th scope="col">"Zone"</th>
                        {move || {
                            grid.with(|g| {
                                g.fault_domains
                                    .iter()
                                    .map(|fd| {
                                        view! {
                                            <th scope="col">{format!("Fault domain {fd}")}</th>
                                        }
                                    })
                                    .collect_view()
                            })
                        }}
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        let href = instances_href.clone();
                        grid.with(|g| {
                            g.zones
                                .iter()
                                .zip(&g.cells)
                                .map(|(zone, row)| {
                                    let cells = row
                                        .iter()
                                        .map(|cell| {
                                            let squares = cell
                                                .iter()
                                                .map(|p| {
                                                    let link = format!("{href}?q={}", percent_encode(&p.id));
                                                    let title = format!("{}: {}", p.id, p.state);
                                                    view! {
                                                        <li>
                                                            <a
                                                                href=link
                                                                class=format!("square chip-{}", p.state)
                                                                title=title.clone()
                                                                data-instance=p.id.clone()
                                                                data-state=p.state.clone()
                                                            >
                                                                <span class="visually-hidden">{title.clone()}</span>
                                                            </a>
                                                        </li>
                                                    }
                                                })
                                                .collect_view();
                                            view! {
                                                <td data-count=cell.len()>
                                                    <ul class="squares">{squares}</ul>
                                                </td>
                                            }
                                        })
                                        .collect_view();
                                    view! {
                                        <tr data-zone=zone.clone()>
                                            <th scope="row">{zone.clone()}</th>
                                            {cells}
                                        </tr>
                                    }
                                })
                                .collect_view()
                        })
                    }}
                </tbody>
            </table>
        </div>
        <ul class="chips legend" aria-label="Instances by state">
            {move || {
                legend()
                    .into_iter()
                    .map(|(state, n)| {
                        view! {
                            <li>
                                <span
                                    class=format!("square chip-{state}")
                                    aria-hidden="true"
                                ></span>
                                {format!("{state} {n}")}
                            </li>
                        }
                    })
                    .collect_view()
            }}
        </ul>
    }
}
