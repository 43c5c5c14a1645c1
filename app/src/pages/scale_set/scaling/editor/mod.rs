//! The autoscale editor. In the browser: an enabled switch, the initialization period, the
//! profiles (added, removed, renamed) each with its capacity bounds, a rules table, target
//! tracking and a schedule, ready templates, webhooks, the weekly schedule grid, and Check
//! (a dry run) and Save. Every problem is shown next to its input as the person types —
//! the same validation the server runs, compiled to wasm — and the warnings (rules that
//! would flap, cooldowns shorter than the boot time, overlapping schedules) above the
//! buttons; the server's answer (a refusal by field, the boot time) joins them. Below them,
//! the draft's what-if and Save as shadow ([`super::lab`]).
//!
//! Always, and without JavaScript too: the setting as JSON in a plain form with Check,
//! Save and Save as shadow (with JavaScript it follows the editor), and before the page
//! hydrates a summary of the stored setting with its warnings.

mod json;
mod notifications;
mod predictive;
mod profile;
mod rules;
mod schedule;
mod status;
mod tracking;

use flotilla_domain::FieldError;
use flotilla_domain::autoscale::setting::{AutoscaleSetting, Facts};
use flotilla_domain::metrics::Metric;
use leptos::prelude::*;

use super::super::Live;
use super::lab::DraftLab;
use super::schedule_grid::WeekGrid;
use crate::api::autoscale::{Checked, SaveAutoscale};
use crate::api::lab::ChangeShadow;
use crate::autoscale_draft::{SettingDraft, wire};
use crate::components::field::{self, CheckField, FieldMessage, NumberField};
use crate::components::permission_note::PermissionNote;
use crate::time_zone;
use crate::viewer::may;
use json::JsonEditor;
use notifications::Webhooks;
use profile::ProfileEditor;
use status::{Problems, Status, StoredSummary, Warnings};

/// Everything the editor's parts read and write.
#[derive(Clone, Copy)]
struct Editor {
    name: StoredValue<String>,
    draft: RwSignal<SettingDraft>,
    /// Whether there is a setting at all (`false`: autoscale is not set up).
    present: RwSignal<bool>,
    /// The setting the draft makes and what is wrong with it in the browser.
    checked: Memo<(AutoscaleSetting, Vec<FieldError>)>,
    /// Those problems and the server's refusal of the setting as it stands.
    problems: Memo<Vec<FieldError>>,
    /// The time zone new schedules start with.
    time_zone: StoredValue<String>,
    save: ServerAction<SaveAutoscale>,
    /// The setting last sent, so a refusal is shown only while the draft still says it.
    sent: RwSignal<Option<Option<AutoscaleSetting>>>,
    /// The newest answer of the server (a check or a save, from either form).
    answer: RwSignal<Option<Checked>>,
    /// Whether Check or Save was pressed while the browser found problems.
    blocked: RwSignal<bool>,
    /// When the set was last read (the schedule grid shows that week).
    now: Signal<chrono::DateTime<chrono::Utc>>,
}

impl Editor {
    /// The setting to send: the draft's, or none.
    fn setting(self) -> Option<AutoscaleSetting> {
        self.present
            .get_untracked()
            .then(|| self.checked.with_untracked(|(s, _)| s.clone()))
    }

    /// Takes in an answer; a saved setting becomes the draft. An answer about the shadow
    /// setting is not the editor's.
    fn take(self, checked: Checked) {
        if checked.shadow {
            return;
        }
        if checked.saved {
            self.load(checked.autoscale.as_ref());
        }
        self.answer.set(Some(checked));
    }

    fn load(self, setting: Option<&AutoscaleSetting>) {
        let zone = self.time_zone.get_value();
        self.present.set(setting.is_some());
        if let Some(s) = setting {
            self.draft.set(SettingDraft::of(s, &zone));
        }
        self.blocked.set(false);
    }

    fn send(self, dry_run: bool) {
        let local = self.checked.with_untracked(|(_, e)| !e.is_empty());
        if local && self.present.get_untracked() {
            self.blocked.set(true);
            return;
        }
        self.blocked.set(false);
        let setting = self.setting();
        self.sent.set(Some(setting.clone()));
        self.save.dispatch(SaveAutoscale {
            name: self.name.get_value(),
            setting,
            dry_run,
        });
    }
}

/// The draft bound to the shared field components.
impl Editor {
    /// A string of the draft as a field shows it (empty while its part is gone).
    fn text(
        self,
        get: impl Fn(&SettingDraft) -> Option<String> + Send + Sync + 'static,
    ) -> Signal<String> {
        Signal::derive(move || self.draft.with(|d| get(d).unwrap_or_default()))
    }

    /// A flag of the draft as a checkbox shows it.
    fn flag(
        self,
        get: impl Fn(&SettingDraft) -> Option<bool> + Send + Sync + 'static,
    ) -> Signal<bool> {
        Signal::derive(move || self.draft.with(|d| get(d).unwrap_or_default()))
    }

    /// What a field writes into the draft.
    fn set<T: 'static>(
        self,
        set: impl Fn(&mut SettingDraft, T) + Send + Sync + 'static,
    ) -> Callback<T> {
        Callback::new(move |value| self.draft.update(|d| set(d, value)))
    }
}

/// The id of the input for `path` (`profiles[0].name` → `as-profiles-0--name`).
fn as_id(path: &str) -> String {
    field::input_id("as", path)
}

/// Choices from a list of wire enums.
fn enum_choices<T: serde::Serialize + Copy>(values: &[T]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|v| {
            let name = wire(*v);
            (name.clone(), name.replace('_', " "))
        })
        .collect()
}

fn metric_choices() -> Vec<(String, String)> {
    Metric::ALL
        .iter()
        .map(|m| {
            (
                m.as_str().to_string(),
                format!("{} ({})", m.as_str(), m.unit()),
            )
        })
        .collect()
}

#[component]
pub(super) fn AutoscaleEditor(
    live: Live,
    stored: Option<Checked>,
    /// The shadow panel's action: a promoted shadow becomes the draft.
    shadow_action: ServerAction<ChangeShadow>,
) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let capacity = live.detail.with_untracked(|d| d.scale_set.spec.capacity);
    let setting = live
        .detail
        .with_untracked(|d| d.scale_set.spec.autoscale.clone());
    let zone = time_zone::browser_or_utc();
    let draft = RwSignal::new(match &setting {
        Some(s) => SettingDraft::of(s, &zone),
        None => SettingDraft::new(capacity, &zone),
    });
    let present = RwSignal::new(setting.is_some());
    let checked = Memo::new(move |_| draft.with(SettingDraft::check));
    let save = ServerAction::<SaveAutoscale>::new();
    let sent = RwSignal::new(None::<Option<AutoscaleSetting>>);
    let problems = Memo::new(move |_| {
        let mut all = if present.get() {
            checked.with(|(_, e)| e.clone())
        } else {
            vec![]
        };
        let current = present.get().then(|| checked.with(|(s, _)| s.clone()));
        let same = sent.with(|sent| sent.as_ref() == Some(&current));
        if same && let Some(Err(refused)) = save.value().get() {
            for e in refused.fields {
                if !all.contains(&e) {
                    all.push(e);
                }
            }
        }
        all
    });
    let editor = Editor {
        name: StoredValue::new(name.clone()),
        draft,
        present,
        checked,
        problems,
        time_zone: StoredValue::new(zone),
        save,
        sent,
        answer: RwSignal::new(stored.clone()),
        blocked: RwSignal::new(false),
        now: Signal::derive(move || live.detail.with(|d| d.read_at)),
    };
    Effect::watch(
        move || save.version().get(),
        move |_, _, _| {
            if let Some(Ok(checked)) = save.value().get_untracked() {
                let saved = checked.saved;
                editor.take(checked);
                if saved {
                    live.refresh();
                }
            }
        },
        false,
    );
    Effect::watch(
        move || shadow_action.version().get(),
        move |_, _, _| {
            if let Some(Ok(checked)) = shadow_action.value().get_untracked() {
                editor.take(checked);
            }
        },
        false,
    );
    let mounted = RwSignal::new(false);
    Effect::new(move |_| mounted.set(true));
    let permit = may("save-autoscale", Some(&name));
    let draft = Signal::derive(move || present.get().then(|| checked.get()));
    view! {
        <PermissionNote what="Changing autoscale" permit />
        <Show when=move || mounted.get() fallback=move || view! { <StoredSummary editor live /> }>
            <RichEditor editor />
            <DraftLab live draft />
        </Show>
        <JsonEditor editor live />
    }
    .into_any()
}

/// The editor proper (in the browser).
#[component]
fn RichEditor(editor: Editor) -> impl IntoView {
    let facts = Memo::new(move |_| {
        editor.answer.with(|a| Facts {
            boot_seconds: a.as_ref().and_then(|a| a.boot_seconds),
            metrics_interval_seconds: a.as_ref().map_or(10, |a| a.metrics_interval_seconds),
        })
    });
    let warnings = Memo::new(move |_| {
        if editor.present.get() {
            editor.checked.with(|(s, _)| s.warnings(facts.get()))
        } else {
            vec![]
        }
    });
    let profile_count = Memo::new(move |_| editor.draft.with(|d| d.profiles.len()));
    let grid_setting = Signal::derive(move || editor.checked.with(|(s, _)| s.clone()));
    let set_up = move |_| {
        let zone = editor.time_zone.get_value();
        if editor.draft.with_untracked(|d| d.profiles.is_empty()) {
            editor.draft.set(SettingDraft::new(1, &zone));
        }
        editor.present.set(true);
    };
    let confirm_remove = RwSignal::new(false);
    let pending = editor.save.pending();
    // Checking is saving without keeping: both are a Contributor's.
    let refusal = may("save-autoscale", Some(&editor.name.get_value())).reason();
    let denied = refusal.is_some();
    let (r1, r2, r3, r4) = (refusal.clone(), refusal.clone(), refusal.clone(), refusal);
    view! {
        <div class="autoscale-editor" data-editor="ready">
            <Show
                when=move || editor.present.get()
                fallback=move || {
                    view! {
                        <div data-state="no-autoscale">
                            <p>
                                "Autoscale is not set up: the capacity is set by hand. Set it up to scale on metrics or on a schedule."
                            </p>
                            <button
                                type="button"
                                class="primary"
                                disabled=denied
                                title=r1.clone()
                                on:click=set_up
                            >
                                "Set up autoscale"
                            </button>
                        </div>
                    }
                }
            >
                <div class="editor-top">
                    <CheckField
                        id=as_id("enabled")
                        label="Autoscale enabled"
                        path="enabled"
                        checked=editor.flag(|d| Some(d.enabled))
                        on_change=editor.set(|d, on| d.enabled = on)
                        problems=editor.problems
                    />
                    <NumberField
                        id=as_id("initialization_seconds")
                        label="Initialization period (s)"
                        path="initialization_seconds"
                        hint="Metrics of instances running for less than this are ignored."
                        value=editor.text(|d| Some(d.initialization.clone()))
                        on_input=editor.set(|d, v| d.initialization = v)
                        problems=editor.problems
                    />
                </div>
                <FieldMessage path="profiles" problems=editor.problems exact=true />
                <For
                    each=move || 0..profile_count.get()
                    key=|i| *i
                    children=move |i| view! { <ProfileEditor editor index=i /> }
                />
                <div class="editor-actions">
                    <button
                        type="button"
                        on:click=move |_| {
                            let zone = editor.time_zone.get_value();
                            editor.draft.update(|d| d.add_profile(&zone));
                        }
                    >
                        "Add profile"
                    </button>
                    <button
                        type="button"
                        data-template="business-hours"
                        on:click=move |_| {
                            let zone = editor.time_zone.get_value();
                            editor.draft.update(|d| d.add_business_hours(&zone));
                        }
                    >
                        {move || {
                            format!(
                                "Add business hours (Mon–Fri 08:00–18:00, {})",
                                editor.time_zone.get_value(),
                            )
                        }}
                    </button>
                </div>
                <section class="schedule" aria-labelledby="schedule-heading">
                    <h3 id="schedule-heading">"Weekly schedule"</h3>
                    <WeekGrid
                        setting=grid_setting
                        time_zone=editor.time_zone.get_value()
                        now=editor.now
                    />
                </section>
                <Webhooks editor />
            </Show>
            <Problems editor />
            <Warnings warnings />
            <Status editor />
            <div class="editor-actions">
                <button
                    type="button"
                    data-action="check"
                    disabled=denied
                    title=r2
                    aria-busy=move || pending.get().then_some("true")
                    on:click=move |_| editor.send(true)
                >
                    "Check"
                </button>
                <button
                    type="button"
                    class="primary"
                    data-action="save"
                    disabled=denied
                    title=r3
                    aria-busy=move || pending.get().then_some("true")
                    on:click=move |_| editor.send(false)
                >
                    "Save"
                </button>
                <Show when=move || editor.present.get()>
                    <button
                        type="button"
                        class="danger"
                        disabled=denied
                        title=r4.clone()
                        on:click=move |_| confirm_remove.set(true)
                    >
                        "Remove autoscale…"
                    </button>
                </Show>
            </div>
            <Show when=move || confirm_remove.get()>
                <div class="confirm-body" role="alertdialog" aria-label="Remove autoscale">
                    <p>"Remove the autoscale setting? The capacity is then set by hand."</p>
                    <button
                        type="button"
                        class="danger"
                        on:click=move |_| {
                            confirm_remove.set(false);
                            editor.present.set(false);
                            editor.send(false);
                        }
                    >
                        "Remove"
                    </button>
                    " "
                    <button type="button" on:click=move |_| confirm_remove.set(false)>
                        "Keep"
                    </button>
                </div>
            </Show>
        </div>
    }
    .into_any()
}
