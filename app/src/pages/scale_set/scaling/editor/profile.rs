//! One profile: its name and capacity bounds, the templates, and its rules, target
//! tracking, predictive autoscale and schedule.

use leptos::prelude::*;

use super::predictive::PredictiveEditor;
use super::rules::RulesEditor;
use super::schedule::ScheduleEditor;
use super::tracking::TrackingEditor;
use super::{Editor, as_id};
use crate::autoscale_draft::{ProfileDraft, SettingDraft};
use crate::autoscale_templates::Template;
use crate::components::field::{FieldMessage, NumberField, TextField};

/// A profile's string field, read and written by index.
pub(super) fn profile_text(
    i: usize,
    field: fn(&mut ProfileDraft) -> &mut String,
) -> (
    impl Fn(&SettingDraft) -> Option<String> + Clone + Send + Sync + 'static,
    impl Fn(&mut SettingDraft, String) + Clone + Send + Sync + 'static,
) {
    (
        move |d: &SettingDraft| {
            let mut p = d.profiles.get(i)?.clone();
            Some(field(&mut p).clone())
        },
        move |d: &mut SettingDraft, v: String| {
            if let Some(p) = d.profiles.get_mut(i) {
                *field(p) = v;
            }
        },
    )
}

/// One profile.
#[component]
pub(super) fn ProfileEditor(editor: Editor, index: usize) -> impl IntoView {
    let i = index;
    let path = format!("profiles[{i}]");
    let title = move || {
        editor.draft.with(|d| {
            d.profiles
                .get(i)
                .map(|p| format!("Profile {}", p.name))
                .unwrap_or_default()
        })
    };
    let data_name = move || {
        editor
            .draft
            .with(|d| d.profiles.get(i).map(|p| p.name.clone()))
    };
    let (name_get, name_set) = profile_text(i, |p| &mut p.name);
    let (min_get, min_set) = profile_text(i, |p| &mut p.minimum);
    let (max_get, max_set) = profile_text(i, |p| &mut p.maximum);
    let (def_get, def_set) = profile_text(i, |p| &mut p.default);
    let removable = move || editor.draft.with(|d| d.profiles.len() > 1);
    view! {
        <fieldset class="profile" data-profile=data_name data-index=i>
            <legend>{title}</legend>
            <FieldMessage path=path.clone() problems=editor.problems exact=true />
            <div class="field-row">
                <TextField
                    id=as_id(&format!("{path}.name"))
                    label="Name"
                    path=format!("{path}.name")
                    value=editor.text(name_get)
                    on_input=editor.set(name_set)
                    problems=editor.problems
                />
                <NumberField
                    id=as_id(&format!("{path}.capacity.minimum"))
                    label="Minimum"
                    path=format!("{path}.capacity.minimum")
                    size=6
                    value=editor.text(min_get)
                    on_input=editor.set(min_set)
                    problems=editor.problems
                />
                <NumberField
                    id=as_id(&format!("{path}.capacity.maximum"))
                    label="Maximum"
                    path=format!("{path}.capacity.maximum")
                    size=6
                    value=editor.text(max_get)
                    on_input=editor.set(max_set)
                    problems=editor.problems
                />
                <NumberField
                    id=as_id(&format!("{path}.capacity.default"))
                    label="Default"
                    path=format!("{path}.capacity.default")
                    size=6
                    value=editor.text(def_get)
                    on_input=editor.set(def_set)
                    problems=editor.problems
                />
            </div>
            <div
                class="templates"
                role="group"
                aria-label=move || format!("Templates for {}", title())
            >
                <span class="muted">"Templates: "</span>
                {Template::ALL
                    .into_iter()
                    .map(|t| {
                        view! {
                            <button
                                type="button"
                                data-template=t.slug()
                                on:click=move |_| {
                                    let zone = editor.time_zone.get_value();
                                    editor.draft.update(|d| d.apply(i, t, &zone));
                                }
                            >
                                {t.label()}
                            </button>
                        }
                    })
                    .collect_view()}
            </div>
            <RulesEditor editor index=i />
            <TrackingEditor editor index=i />
            <PredictiveEditor editor index=i />
            <ScheduleEditor editor index=i />
            <Show when=removable>
                <button
                    type="button"
                    class="danger"
                    on:click=move |_| {
                        editor
                            .draft
                            .update(|d| {
                                if i < d.profiles.len() {
                                    d.profiles.remove(i);
                                }
                            })
                    }
                >
                    {move || format!("Remove {}", title().to_lowercase())}
                </button>
            </Show>
        </fieldset>
    }
    .into_any()
}
