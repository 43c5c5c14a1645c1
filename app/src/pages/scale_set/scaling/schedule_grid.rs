//! The weekly schedule grid: this week's 7 days × 24 hours in the browser's time zone, each
//! hour coloured by the profile that applies at its start — computed with the domain's
//! `schedule::week_grid` (the rules the autoscaler follows) over the profiles being
//! edited — with a legend. In a week when the clocks change, the hours after the change
//! are shifted by it: the grid walks real hours from Monday 00:00.

use chrono::{DateTime, Utc};
use flotilla_domain::autoscale::setting::AutoscaleSetting;
use flotilla_domain::schedule::week_grid;
use leptos::prelude::*;

use crate::autoscale_draft::{WEEKDAYS, week_start};

/// How many colours the profiles cycle through (`.profile-0` … in the stylesheet).
const COLOURS: usize = 8;

/// One day of the grid: its label and the profile index of each hour.
type Day = (String, Vec<Option<usize>>);

#[component]
pub(super) fn WeekGrid(
    /// The setting being edited.
    #[prop(into)]
    setting: Signal<AutoscaleSetting>,
    /// The time zone the grid is drawn in.
    time_zone: String,
    /// Now (the week shown is the one holding it).
    #[prop(into)]
    now: Signal<DateTime<Utc>>,
) -> impl IntoView {
    let zone = time_zone.clone();
    let days = Memo::new(move |_| -> Vec<Day> {
        let Some(start) = week_start(now.get(), &zone) else {
            return vec![];
        };
        let slots = setting.with(|s| week_grid(&s.whens(), start, 60));
        WEEKDAYS
            .iter()
            .zip(slots.chunks(24))
            .enumerate()
            .map(|(n, (day, hours))| {
                let date = start + chrono::Duration::days(n as i64);
                let name = day.to_string();
                let label = format!(
                    "{}{} {}",
                    name[..1].to_uppercase(),
                    &name[1..3],
                    date.format("%d")
                );
                (label, hours.to_vec())
            })
            .collect()
    });
    let names = Memo::new(move |_| {
        setting.with(|s| {
            s.profiles
                .iter()
                .map(|p| p.name.clone())
                .collect::<Vec<_>>()
        })
    });
    let uncovered = move || days.with(|d| d.iter().any(|(_, hours)| hours.contains(&None)));
    let name_of = move |index: Option<usize>| -> String {
        index
            .and_then(|i| names.with(|n| n.get(i).cloned()))
            .unwrap_or_else(|| "none".to_string())
    };
    view! {
        <p class="hint">{format!("This week, hour by hour, in {time_zone}.")}</p>
        <div
            class="table-wrap"
            role="region"
            aria-label="Which profile applies, each hour of this week"
            tabindex="0"
        >
            <table class="week-grid" aria-label="Which profile applies, each hour of this week">
                <thead>
                    <tr>
                        <th scope="col">
                            <span class="visually-hidden">"Day"</span>
                        </th>
                        {(0..24)
                            .map(|h| view! { <th scope="col">{format!("{h:02}")}</th> })
                            .collect_view()}
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        days.get()
                            .into_iter()
                            .enumerate()
                            .map(|(d, (label, hours))| {
                                view! {
                                    <tr data-day=d>
                                        <th scope="row">{label.clone()}</th>
                                        {hours
                                            .into_iter()
                                            .enumerate()
                                            .map(|(h, index)| {
                                                let name = name_of(index);
                                                let (key, title) = (
                                                    name.clone(),
                                                    format!("{label} {h:02}:00 · {name}"),
                                                );
                                                let class = match index {
                                                    Some(i) => format!("slot profile-{}", i % COLOURS),
                                                    None => "slot profile-none".to_string(),
                                                };
                                                view! {
                                                    <td class=class data-hour=h data-profile=key title=title>
                                                        <span class="visually-hidden">{name}</span>
                                                    </td>
                                                }
                                            })
                                            .collect_view()}
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
        </div>
        <ul class="legend grid-legend" aria-label="Profiles">
            {move || {
                names
                    .get()
                    .into_iter()
                    .enumerate()
                    .map(|(i, name)| {
                        let key = name.clone();
                        view! {
                            <li data-legend=key>
                                <span
                                    class=format!("square profile-{}", i % COLOURS)
                                    aria-hidden="true"
                                ></span>
                                {name}
                            </li>
                        }
                    })
                    .collect_view()
            }}
            <Show when=uncovered>
                <li data-legend="none">
                    <span class="square profile-none" aria-hidden="true"></span>
                    "no profile applies"
                </li>
            </Show>
        </ul>
    }
    .into_any()
}
