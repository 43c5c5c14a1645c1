//! When a profile applies: always (the default profile), every week on some days and
//! hours (a recurrence), or between two dates (a fixed date).

use leptos::prelude::*;

use super::profile::profile_text;
use super::{Editor, as_id};
use crate::autoscale_draft::{ScheduleKind, WEEKDAYS};
use crate::components::field::{CheckField, FieldMessage, SelectField, TextField};

/// When a profile applies.
#[component]
pub(super) fn ScheduleEditor(editor: Editor, index: usize) -> impl IntoView {
    let i = index;
    let kind = Memo::new(move |_| {
        editor.draft.with(|d| {
            d.profiles
                .get(i)
                .map_or(ScheduleKind::Always, |p| p.schedule.kind)
        })
    });
    let (zone_get, zone_set) = profile_text(i, |p| &mut p.schedule.time_zone);
    let (hours_get, hours_set) = profile_text(i, |p| &mut p.schedule.hours);
    let (minutes_get, minutes_set) = profile_text(i, |p| &mut p.schedule.minutes);
    let (end_get, end_set) = profile_text(i, |p| &mut p.schedule.end);
    let (start_date_get, start_date_set) = profile_text(i, |p| &mut p.schedule.start_date);
    let (end_date_get, end_date_set) = profile_text(i, |p| &mut p.schedule.end_date);
    let zone_path = move || match kind.get() {
        ScheduleKind::FixedDate => format!("profiles[{i}].fixed_date.time_zone"),
        _ => format!("profiles[{i}].recurrence.time_zone"),
    };
    view! {
        <h4>"Schedule"</h4>
        <div class="field-row">
            <SelectField
                id=as_id(&format!("profiles[{i}].schedule"))
                label="Applies"
                path=format!("profiles[{i}].schedule")
                choices=ScheduleKind::ALL
                    .iter()
                    .map(|k| (k.slug().to_string(), k.label().to_string()))
                    .collect()
                value=editor
                    .text(move |d| d.profiles.get(i).map(|p| p.schedule.kind.slug().to_string()))
                on_change=editor
                    .set(move |d, v: String| {
                        if let (Some(p), Some(kind)) = (
                            d.profiles.get_mut(i),
                            ScheduleKind::parse(&v),
                        ) {
                            p.schedule.kind = kind;
                        }
                    })
                problems=editor.problems
            />
            <Show when=move || {
                kind.get() != ScheduleKind::Always
            }>
                {
                    let (zone_get, zone_set) = (zone_get.clone(), zone_set.clone());
                    move || {
                        view! {
                            <TextField
                                id=as_id(&zone_path())
                                label="Time zone (IANA)"
                                path=zone_path()
                                size=18
                                value=editor.text(zone_get.clone())
                                on_input=editor.set(zone_set.clone())
                                problems=editor.problems
                            />
                        }
                    }
                }
            </Show>
        </div>
        <Show when=move || kind.get() == ScheduleKind::Recurring>
            <fieldset class="days">
                <legend>"Days"</legend>
                {WEEKDAYS
                    .iter()
                    .enumerate()
                    .map(|(day, weekday)| {
                        let label = {
                            let name = weekday.to_string();
                            let mut chars = name.chars();
                            chars
                                .next()
                                .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
                                .unwrap_or_default()
                        };
                        view! {
                            <CheckField
                                id=as_id(&format!("profiles[{i}].recurrence.days.{day}"))
                                label=label
                                path=format!("profiles[{i}].recurrence.days.{day}")
                                checked=editor
                                    .flag(move |d| d.profiles.get(i).map(|p| p.schedule.days[day]))
                                on_change=editor
                                    .set(move |d, on| {
                                        if let Some(p) = d.profiles.get_mut(i) {
                                            p.schedule.days[day] = on;
                                        }
                                    })
                                problems=editor.problems
                            />
                        }
                    })
                    .collect_view()}
                <FieldMessage
                    path=format!("profiles[{i}].recurrence.days")
                    problems=editor.problems
                    exact=true
                />
            </fieldset>
            <div class="field-row">
                <TextField
                    id=as_id(&format!("profiles[{i}].recurrence.hours"))
                    label="Start hours (0–23, comma-separated)"
                    path=format!("profiles[{i}].recurrence.hours")
                    size=8
                    value=editor.text(hours_get.clone())
                    on_input=editor.set(hours_set.clone())
                    problems=editor.problems
                />
                <TextField
                    id=as_id(&format!("profiles[{i}].recurrence.minutes"))
                    label="Start minutes (0–59)"
                    path=format!("profiles[{i}].recurrence.minutes")
                    size=8
                    value=editor.text(minutes_get.clone())
                    on_input=editor.set(minutes_set.clone())
                    problems=editor.problems
                />
                <TextField
                    id=as_id(&format!("profiles[{i}].recurrence.end"))
                    label="Ends at (empty: when another starts)"
                    path=format!("profiles[{i}].recurrence.end")
                    kind="time"
                    value=editor.text(end_get.clone())
                    on_input=editor.set(end_set.clone())
                    problems=editor.problems
                />
            </div>
        </Show>
        <Show when=move || kind.get() == ScheduleKind::FixedDate>
            <div class="field-row">
                <TextField
                    id=as_id(&format!("profiles[{i}].fixed_date.start"))
                    label="Starts (local time)"
                    path=format!("profiles[{i}].fixed_date.start")
                    kind="datetime-local"
                    value=editor.text(start_date_get.clone())
                    on_input=editor.set(start_date_set.clone())
                    problems=editor.problems
                />
                <TextField
                    id=as_id(&format!("profiles[{i}].fixed_date.end"))
                    label="Ends (local time)"
                    path=format!("profiles[{i}].fixed_date.end")
                    kind="datetime-local"
                    value=editor.text(end_date_get.clone())
                    on_input=editor.set(end_date_set.clone())
                    problems=editor.problems
                />
            </div>
        </Show>
    }
    .into_any()
}
