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

use crate::components::csrf_field::CsrfField;
use crate::components::permission_note::PermissionNote;
use crate::viewer::may;
use flotilla_domain::FieldError;
use flotilla_domain::autoscale::forecast::ModelChoice;
use flotilla_domain::autoscale::setting::{AutoscaleSetting, Facts, PredictiveMode};
use flotilla_domain::metrics::Metric;
use leptos::form::ActionForm;
use leptos::prelude::*;

use super::super::Live;
use super::lab::DraftLab;
use super::schedule_grid::WeekGrid;
use super::setting_summary::SettingSummary;
use crate::api::autoscale::{Checked, SaveAutoscale, SaveAutoscaleJson};
use crate::api::lab::ChangeShadow;
use crate::autoscale_draft::{
    ACTIONS, AGGREGATIONS, DIRECTIONS, OPERATORS, PredictiveDraft, ProfileDraft, RuleDraft,
    STATISTICS, ScheduleKind, SettingDraft, TrackingDraft, WEEKDAYS, WebhookDraft, concerns,
    from_wire, wire,
};
use crate::autoscale_templates::Template;
use crate::time_zone;
use flotilla_domain::scale_set::REDACTED;

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
    provide_context(editor);
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
        <Show when=move || mounted.get() fallback=move || view! { <StoredSummary live /> }>
            <RichEditor />
            <DraftLab live draft />
        </Show>
        <JsonEditor live />
    }
    .into_any()
}

/// Before the page hydrates (and without JavaScript): the stored setting in words.
#[component]
fn StoredSummary(live: Live) -> impl IntoView {
    let editor = expect_context::<Editor>();
    let setting = live
        .detail
        .with_untracked(|d| d.scale_set.spec.autoscale.clone());
    let warnings = editor
        .answer
        .get_untracked()
        .map(|a| a.warnings)
        .unwrap_or_default();
    let Some(setting) = setting else {
        return view! {
            <p class="muted" data-state="no-autoscale">
                "Autoscale is not set up: the capacity is set by hand. "
                "Write a setting as JSON below, or use the editor (it needs JavaScript)."
            </p>
        }
        .into_any();
    };
    view! {
        <div data-state="stored-summary">
            <p>
                {if setting.enabled {
                    "Autoscale is on."
                } else {
                    "Autoscale is off (the setting is kept)."
                }} " The editor needs JavaScript; the JSON below works without it."
            </p>
            <SettingSummary setting />
            <Warnings warnings=Signal::stored(warnings) />
        </div>
    }
    .into_any()
}

/// The warnings, prominently.
#[component]
fn Warnings(
    #[prop(into)] warnings: Signal<Vec<flotilla_domain::autoscale::setting::Warning>>,
) -> impl IntoView {
    view! {
        <Show when=move || warnings.with(|w| !w.is_empty())>
            <div class="panel panel-warn warnings" role="status" data-state="warnings">
                <p class="panel-title">
                    {move || {
                        let n = warnings.with(Vec::len);
                        if n == 1 { "1 warning".to_string() } else { format!("{n} warnings") }
                    }}
                </p>
                <ul>
                    {move || {
                        warnings
                            .get()
                            .into_iter()
                            .map(|w| {
                                let key = w.field.clone();
                                view! {
                                    <li data-warning=key>
                                        <code>{w.field}</code>
                                        ": "
                                        {w.message}
                                    </li>
                                }
                            })
                            .collect_view()
                    }}
                </ul>
            </div>
        </Show>
    }
    .into_any()
}

/// The editor proper (in the browser).
#[component]
fn RichEditor() -> impl IntoView {
    let editor = expect_context::<Editor>();
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
                    <CheckInput
                        label="Autoscale enabled".into()
                        path="enabled".into()
                        get=|d| Some(d.enabled)
                        set=|d, on| d.enabled = on
                    />
                    <TextInput
                        label="Initialization period (s)".into()
                        path="initialization_seconds".into()
                        numeric=true
                        get=|d| Some(d.initialization.clone())
                        set=|d, v| d.initialization = v
                        hint="Metrics of instances running for less than this are ignored."
                    />
                </div>
                <FieldMessage path="profiles".into() exact=true />
                <For
                    each=move || 0..profile_count.get()
                    key=|i| *i
                    children=move |i| view! { <ProfileEditor index=i /> }
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
                <Webhooks />
            </Show>
            <Problems />
            <Warnings warnings />
            <Status />
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

/// What the last Check or Save said.
#[component]
fn Status() -> impl IntoView {
    let editor = expect_context::<Editor>();
    let state = move || {
        if editor.blocked.get() && !editor.problems.with(Vec::is_empty) {
            return Some((
                "blocked",
                "Fix the problems above first: nothing was sent.".to_string(),
            ));
        }
        match editor.save.value().get() {
            Some(Err(refused)) => Some(("refused", format!("Refused: {}", refused.message))),
            Some(Ok(_)) => editor.answer.with(|a| {
                a.as_ref().map(|a| {
                    let warned = match a.warnings.len() {
                        0 => "no warnings".to_string(),
                        1 => "1 warning".to_string(),
                        n => format!("{n} warnings"),
                    };
                    match (a.saved, &a.autoscale) {
                        (true, None) => ("saved", "Saved: autoscale removed.".to_string()),
                        (true, Some(_)) => ("saved", format!("Saved, {warned}.")),
                        (false, _) => ("checked", format!("Checked: no errors, {warned}.")),
                    }
                })
            }),
            None => None,
        }
    };
    view! {
        <p class="editor-status" role="status" data-state=move || state().map(|(s, _)| s)>
            {move || state().map(|(_, text)| text)}
        </p>
    }
    .into_any()
}

/// Every problem, with its field path.
#[component]
fn Problems() -> impl IntoView {
    let editor = expect_context::<Editor>();
    view! {
        <Show when=move || !editor.problems.with(Vec::is_empty)>
            <div class="panel panel-error" data-state="problems">
                <p class="panel-title">
                    {move || {
                        let n = editor.problems.with(Vec::len);
                        if n == 1 {
                            "1 problem to fix".to_string()
                        } else {
                            format!("{n} problems to fix")
                        }
                    }}
                </p>
                <ul>
                    {move || {
                        editor
                            .problems
                            .get()
                            .into_iter()
                            .map(|e| {
                                let key = e.field.clone();
                                view! {
                                    <li data-problem=key>
                                        <code>{e.field}</code>
                                        ": "
                                        {e.message}
                                    </li>
                                }
                            })
                            .collect_view()
                    }}
                </ul>
            </div>
        </Show>
    }
    .into_any()
}

/// The id of the input for `path` (`profiles[0].name` → `as-profiles-0--name`).
fn input_id(path: &str) -> String {
    format!("as-{}", path.replace(['.', '[', ']'], "-"))
}

fn message_id(path: &str) -> String {
    format!("{}-message", input_id(path))
}

/// The problems about `path` (and inside it, unless `exact`).
#[component]
fn FieldMessage(path: String, #[prop(optional)] exact: bool) -> impl IntoView {
    let editor = expect_context::<Editor>();
    let field = path.clone();
    let message = move || {
        editor.problems.with(|errors| {
            errors
                .iter()
                .filter(|e| {
                    if exact {
                        e.field == field
                    } else {
                        concerns(&e.field, &field)
                    }
                })
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        })
    };
    view! {
        <p id=message_id(&path) class="field-error" data-error=path>
            {message}
        </p>
    }
}

fn invalid(
    editor: Editor,
    path: String,
) -> impl Fn() -> Option<&'static str> + Send + Sync + 'static {
    move || {
        editor
            .problems
            .with(|errors| errors.iter().any(|e| concerns(&e.field, &path)))
            .then_some("true")
    }
}

/// A text input bound to one string of the draft.
#[component]
fn TextInput(
    label: String,
    /// The field's path in the setting (its problems, its id).
    path: String,
    get: impl Fn(&SettingDraft) -> Option<String> + Send + Sync + 'static,
    set: impl Fn(&mut SettingDraft, String) + Send + Sync + 'static,
    #[prop(optional)] numeric: bool,
    /// The label is for screen readers only (a table's column says it).
    #[prop(optional)]
    quiet: bool,
    /// `text` unless given (`time`, `datetime-local`, `password`).
    #[prop(optional)]
    kind: Option<&'static str>,
    #[prop(optional)] hint: Option<&'static str>,
    #[prop(optional)] size: Option<u32>,
) -> impl IntoView {
    let editor = expect_context::<Editor>();
    let id = input_id(&path);
    view! {
        <div class="field">
            <label for=id.clone() class=quiet.then_some("visually-hidden")>
                {label}
            </label>
            <input
                id=id
                type=kind.unwrap_or("text")
                inputmode=numeric.then_some("numeric")
                autocomplete="off"
                size=size
                prop:value=move || editor.draft.with(|d| get(d).unwrap_or_default())
                on:input=move |ev| {
                    let value = event_target_value(&ev);
                    editor.draft.update(|d| set(d, value));
                }
                aria-invalid=invalid(editor, path.clone())
                aria-describedby=message_id(&path)
            />
            {hint.map(|h| view! { <p class="hint">{h}</p> })}
            <FieldMessage path />
        </div>
    }
}

/// A select bound to one value of the draft (`choices`: value and label).
#[component]
fn SelectInput(
    label: String,
    path: String,
    choices: Vec<(String, String)>,
    get: impl Fn(&SettingDraft) -> Option<String> + Send + Sync + 'static,
    set: impl Fn(&mut SettingDraft, String) + Send + Sync + 'static,
    #[prop(optional)] quiet: bool,
) -> impl IntoView {
    let editor = expect_context::<Editor>();
    let id = input_id(&path);
    let current = Memo::new(move |_| editor.draft.with(|d| get(d).unwrap_or_default()));
    view! {
        <div class="field">
            <label for=id.clone() class=quiet.then_some("visually-hidden")>
                {label}
            </label>
            <select
                id=id
                on:change=move |ev| {
                    let value = event_target_value(&ev);
                    editor.draft.update(|d| set(d, value));
                }
                prop:value=move || current.get()
                aria-invalid=invalid(editor, path.clone())
                aria-describedby=message_id(&path)
            >
                {choices
                    .into_iter()
                    .map(|(value, text)| {
                        let v = value.clone();
                        view! {
                            <option value=value selected=move || current.with(|c| *c == v)>
                                {text}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
            <FieldMessage path />
        </div>
    }
}

/// A checkbox bound to one flag of the draft.
#[component]
fn CheckInput(
    label: String,
    path: String,
    get: impl Fn(&SettingDraft) -> Option<bool> + Send + Sync + 'static,
    set: impl Fn(&mut SettingDraft, bool) + Send + Sync + 'static,
) -> impl IntoView {
    let editor = expect_context::<Editor>();
    let id = input_id(&path);
    view! {
        <div class="field field-check">
            <input
                id=id.clone()
                type="checkbox"
                prop:checked=move || editor.draft.with(|d| get(d).unwrap_or_default())
                on:change=move |ev| {
                    let on = event_target_checked(&ev);
                    editor.draft.update(|d| set(d, on));
                }
            />
            <label for=id>{label}</label>
            <FieldMessage path />
        </div>
    }
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

/// A profile's string field, read and written by index.
fn profile_text(
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

/// A rule's string field, read and written by indexes.
fn rule_text(
    i: usize,
    r: usize,
    field: fn(&mut RuleDraft) -> &mut String,
) -> (
    impl Fn(&SettingDraft) -> Option<String> + Clone + Send + Sync + 'static,
    impl Fn(&mut SettingDraft, String) + Clone + Send + Sync + 'static,
) {
    (
        move |d: &SettingDraft| {
            let mut rule = d.profiles.get(i)?.rules.get(r)?.clone();
            Some(field(&mut rule).clone())
        },
        move |d: &mut SettingDraft, v: String| {
            if let Some(rule) = d.profiles.get_mut(i).and_then(|p| p.rules.get_mut(r)) {
                *field(rule) = v;
            }
        },
    )
}

/// A rule's enum field, read and written by its wire name.
fn rule_enum<T: serde::Serialize + serde::de::DeserializeOwned + Copy + Send + Sync + 'static>(
    i: usize,
    r: usize,
    field: fn(&mut RuleDraft) -> &mut T,
) -> (
    impl Fn(&SettingDraft) -> Option<String> + Clone + Send + Sync + 'static,
    impl Fn(&mut SettingDraft, String) + Clone + Send + Sync + 'static,
) {
    (
        move |d: &SettingDraft| {
            let mut rule = d.profiles.get(i)?.rules.get(r)?.clone();
            Some(wire(*field(&mut rule)))
        },
        move |d: &mut SettingDraft, v: String| {
            if let (Some(rule), Some(value)) = (
                d.profiles.get_mut(i).and_then(|p| p.rules.get_mut(r)),
                from_wire::<T>(&v),
            ) {
                *field(rule) = value;
            }
        },
    )
}

/// A target-tracking string field, read and written by profile index.
fn tracking_text(
    i: usize,
    field: fn(&mut TrackingDraft) -> &mut String,
) -> (
    impl Fn(&SettingDraft) -> Option<String> + Clone + Send + Sync + 'static,
    impl Fn(&mut SettingDraft, String) + Clone + Send + Sync + 'static,
) {
    (
        move |d: &SettingDraft| {
            let mut t = d.profiles.get(i)?.tracking.clone()?;
            Some(field(&mut t).clone())
        },
        move |d: &mut SettingDraft, v: String| {
            if let Some(t) = d.profiles.get_mut(i).and_then(|p| p.tracking.as_mut()) {
                *field(t) = v;
            }
        },
    )
}

/// One profile.
#[component]
fn ProfileEditor(index: usize) -> impl IntoView {
    let editor = expect_context::<Editor>();
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
            <FieldMessage path=path.clone() exact=true />
            <div class="field-row">
                <TextInput
                    label="Name".into()
                    path=format!("{path}.name")
                    get=name_get
                    set=name_set
                />
                <TextInput
                    label="Minimum".into()
                    path=format!("{path}.capacity.minimum")
                    numeric=true
                    size=6
                    get=min_get
                    set=min_set
                />
                <TextInput
                    label="Maximum".into()
                    path=format!("{path}.capacity.maximum")
                    numeric=true
                    size=6
                    get=max_get
                    set=max_set
                />
                <TextInput
                    label="Default".into()
                    path=format!("{path}.capacity.default")
                    numeric=true
                    size=6
                    get=def_get
                    set=def_set
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
            <RulesEditor index=i />
            <TrackingEditor index=i />
            <PredictiveEditor index=i />
            <ScheduleEditor index=i />
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

/// A profile's rules as a table.
#[component]
fn RulesEditor(index: usize) -> impl IntoView {
    let editor = expect_context::<Editor>();
    let i = index;
    let count = Memo::new(move |_| {
        editor
            .draft
            .with(|d| d.profiles.get(i).map_or(0, |p| p.rules.len()))
    });
    view! {
        <h4>"Rules"</h4>
        <FieldMessage path=format!("profiles[{i}].rules") exact=true />
        <Show
            when=move || { count.get() > 0 }
            fallback=|| {
                view! {
                    <p class="muted">
                        "No rules. Add one, apply a template, or use target tracking."
                    </p>
                }
            }
        >
            <div
                class="table-wrap"
                role="region"
                aria-label=format!("Rules of profile {}", i + 1)
                tabindex="0"
            >
                <table class="data rules-table" aria-label=format!("Rules of profile {}", i + 1)>
                    <thead>
                        <tr>
                            <th scope="col">"Metric"</th>
                            <th scope="col">"Statistic"</th>
                            <th scope="col">"Grain (s)"</th>
                            <th scope="col">"Window (s)"</th>
                            <th scope="col">"Aggregation"</th>
                            <th scope="col">"Operator"</th>
                            <th scope="col">"Threshold"</th>
                            <th scope="col">"Direction"</th>
                            <th scope="col">"Action"</th>
                            <th scope="col">"Value"</th>
                            <th scope="col">"Cooldown (s)"</th>
                            <th scope="col">
                                <span class="visually-hidden">"Remove"</span>
                            </th>
                        </tr>
                    </thead>
                    <tbody>
                        <For
                            each=move || 0..count.get()
                            key=|r| *r
                            children=move |r| view! { <RuleRow index=i rule=r /> }
                        />
                    </tbody>
                </table>
            </div>
        </Show>
        <button type="button" on:click=move |_| editor.draft.update(|d| d.add_rule(i))>
            "Add rule"
        </button>
    }
    .into_any()
}

#[component]
fn RuleRow(index: usize, rule: usize) -> impl IntoView {
    let editor = expect_context::<Editor>();
    let (i, r) = (index, rule);
    let path = format!("profiles[{i}].rules[{r}]");
    let n = r + 1;
    let (metric_get, metric_set) = rule_text(i, r, |x| &mut x.metric);
    let (stat_get, stat_set) = rule_enum(i, r, |x| &mut x.statistic);
    let (grain_get, grain_set) = rule_text(i, r, |x| &mut x.grain);
    let (window_get, window_set) = rule_text(i, r, |x| &mut x.window);
    let (agg_get, agg_set) = rule_enum(i, r, |x| &mut x.aggregation);
    let (op_get, op_set) = rule_enum(i, r, |x| &mut x.operator);
    let (threshold_get, threshold_set) = rule_text(i, r, |x| &mut x.threshold);
    let (dir_get, dir_set) = rule_enum(i, r, |x| &mut x.direction);
    let (action_get, action_set) = rule_enum(i, r, |x| &mut x.action);
    let (value_get, value_set) = rule_text(i, r, |x| &mut x.value);
    let (cool_get, cool_set) = rule_text(i, r, |x| &mut x.cooldown);
    view! {
        <tr data-rule=r>
            <td>
                <SelectInput
                    label=format!("Rule {n} metric")
                    path=format!("{path}.metric")
                    choices=metric_choices()
                    quiet=true
                    get=metric_get
                    set=metric_set
                />
            </td>
            <td>
                <SelectInput
                    label=format!("Rule {n} statistic")
                    path=format!("{path}.statistic")
                    choices=enum_choices(&STATISTICS)
                    quiet=true
                    get=stat_get
                    set=stat_set
                />
            </td>
            <td>
                <TextInput
                    label=format!("Rule {n} grain (s)")
                    path=format!("{path}.time_grain_seconds")
                    numeric=true
                    quiet=true
                    size=5
                    get=grain_get
                    set=grain_set
                />
            </td>
            <td>
                <TextInput
                    label=format!("Rule {n} window (s)")
                    path=format!("{path}.time_window_seconds")
                    numeric=true
                    quiet=true
                    size=5
                    get=window_get
                    set=window_set
                />
            </td>
            <td>
                <SelectInput
                    label=format!("Rule {n} aggregation")
                    path=format!("{path}.time_aggregation")
                    choices=enum_choices(&AGGREGATIONS)
                    quiet=true
                    get=agg_get
                    set=agg_set
                />
            </td>
            <td>
                <SelectInput
                    label=format!("Rule {n} operator")
                    path=format!("{path}.operator")
                    choices=OPERATORS
                        .iter()
                        .map(|o| (wire(*o), crate::metrics_view::operator_symbol(*o).to_string()))
                        .collect()
                    quiet=true
                    get=op_get
                    set=op_set
                />
            </td>
            <td>
                <TextInput
                    label=format!("Rule {n} threshold")
                    path=format!("{path}.threshold")
                    quiet=true
                    size=6
                    get=threshold_get
                    set=threshold_set
                />
            </td>
            <td>
                <SelectInput
                    label=format!("Rule {n} direction")
                    path=format!("{path}.direction")
                    choices=enum_choices(&DIRECTIONS)
                    quiet=true
                    get=dir_get
                    set=dir_set
                />
            </td>
            <td>
                <SelectInput
                    label=format!("Rule {n} action")
                    path=format!("{path}.type")
                    choices=enum_choices(&ACTIONS)
                    quiet=true
                    get=action_get
                    set=action_set
                />
            </td>
            <td>
                <TextInput
                    label=format!("Rule {n} value")
                    path=format!("{path}.value")
                    numeric=true
                    quiet=true
                    size=4
                    get=value_get
                    set=value_set
                />
            </td>
            <td>
                <TextInput
                    label=format!("Rule {n} cooldown (s)")
                    path=format!("{path}.cooldown_seconds")
                    numeric=true
                    quiet=true
                    size=6
                    get=cool_get
                    set=cool_set
                />
            </td>
            <td>
                <button
                    type="button"
                    aria-label=format!("Remove rule {n}")
                    on:click=move |_| {
                        editor
                            .draft
                            .update(|d| {
                                if let Some(p) = d.profiles.get_mut(i) && r < p.rules.len() {
                                    p.rules.remove(r);
                                }
                            })
                    }
                >
                    "×"
                </button>
            </td>
        </tr>
        <tr class="rule-message">
            <td colspan="12">
                <FieldMessage path=path.clone() exact=true />
            </td>
        </tr>
    }
    .into_any()
}

/// A profile's target tracking.
#[component]
fn TrackingEditor(index: usize) -> impl IntoView {
    let editor = expect_context::<Editor>();
    let i = index;
    let path = format!("profiles[{i}].target_tracking");
    let on = move || {
        editor
            .draft
            .with(|d| d.profiles.get(i).is_some_and(|p| p.tracking.is_some()))
    };
    let (metric_get, metric_set) = tracking_text(i, |t| &mut t.metric);
    let (target_get, target_set) = tracking_text(i, |t| &mut t.target);
    let (tol_get, tol_set) = tracking_text(i, |t| &mut t.tolerance);
    let (window_get, window_set) = tracking_text(i, |t| &mut t.window);
    let (up_get, up_set) = tracking_text(i, |t| &mut t.scale_up_window);
    let (down_get, down_set) = tracking_text(i, |t| &mut t.scale_down_window);
    let path2 = path.clone();
    view! {
        <h4>"Target tracking"</h4>
        <CheckInput
            label="Track a target (desired = ⌈current × value / target⌉)".into()
            path=path.clone()
            get=move |d| d.profiles.get(i).map(|p| p.tracking.is_some())
            set=move |d, on| d.set_tracking(i, on)
        />
        <Show when=on>
            <div class="field-row">
                <SelectInput
                    label="Metric".into()
                    path=format!("{path2}.metric")
                    choices=metric_choices()
                    get=metric_get.clone()
                    set=metric_set.clone()
                />
                <TextInput
                    label="Target (per instance for totals)".into()
                    path=format!("{path2}.target")
                    size=8
                    get=target_get.clone()
                    set=target_set.clone()
                />
                <TextInput
                    label="Tolerance (0.1 = 10 %)".into()
                    path=format!("{path2}.tolerance")
                    size=6
                    get=tol_get.clone()
                    set=tol_set.clone()
                />
                <TextInput
                    label="Window (s)".into()
                    path=format!("{path2}.window_seconds")
                    numeric=true
                    size=6
                    get=window_get.clone()
                    set=window_set.clone()
                />
                <TextInput
                    label="Scale-up stabilization (s)".into()
                    path=format!("{path2}.scale_up.stabilization_window_seconds")
                    numeric=true
                    size=6
                    get=up_get.clone()
                    set=up_set.clone()
                />
                <TextInput
                    label="Scale-down stabilization (s)".into()
                    path=format!("{path2}.scale_down.stabilization_window_seconds")
                    numeric=true
                    size=6
                    get=down_get.clone()
                    set=down_set.clone()
                />
                <CheckInput
                    label="Disable scale-in (only ever scale out)".into()
                    path=format!("{path2}.disable_scale_in")
                    get=move |d| {
                        d.profiles
                            .get(i)
                            .and_then(|p| p.tracking.as_ref())
                            .map(|t| t.disable_scale_in)
                    }
                    set=move |d, on| {
                        if let Some(t) = d.profiles.get_mut(i).and_then(|p| p.tracking.as_mut()) {
                            t.disable_scale_in = on;
                        }
                    }
                />
                <CheckInput
                    label="Size scale-outs from the load while CPU or memory is saturated".into()
                    path=format!("{path2}.size_from_load")
                    get=move |d| {
                        d.profiles
                            .get(i)
                            .and_then(|p| p.tracking.as_ref())
                            .map(|t| t.size_from_load)
                    }
                    set=move |d, on| {
                        if let Some(t) = d.profiles.get_mut(i).and_then(|p| p.tracking.as_mut()) {
                            t.size_from_load = on;
                        }
                    }
                />
            </div>
            <p class="hint">
                "Rate policies (how fast it may scale) keep their values; edit them in the JSON."
            </p>
        </Show>
    }
    .into_any()
}

/// A predictive string field, read and written by profile index.
fn predictive_text(
    i: usize,
    field: fn(&mut PredictiveDraft) -> &mut String,
) -> (
    impl Fn(&SettingDraft) -> Option<String> + Clone + Send + Sync + 'static,
    impl Fn(&mut SettingDraft, String) + Clone + Send + Sync + 'static,
) {
    (
        move |d: &SettingDraft| {
            let mut p = d.profiles.get(i)?.predictive.clone()?;
            Some(field(&mut p).clone())
        },
        move |d: &mut SettingDraft, v: String| {
            if let Some(p) = d.profiles.get_mut(i).and_then(|p| p.predictive.as_mut()) {
                *field(p) = v;
            }
        },
    )
}

/// A predictive wire enum field, read and written by profile index.
fn predictive_enum<
    T: serde::Serialize + serde::de::DeserializeOwned + Copy + Send + Sync + 'static,
>(
    i: usize,
    field: fn(&mut PredictiveDraft) -> &mut T,
) -> (
    impl Fn(&SettingDraft) -> Option<String> + Clone + Send + Sync + 'static,
    impl Fn(&mut SettingDraft, String) + Clone + Send + Sync + 'static,
) {
    (
        move |d: &SettingDraft| {
            let mut p = d.profiles.get(i)?.predictive.clone()?;
            Some(wire(*field(&mut p)))
        },
        move |d: &mut SettingDraft, v: String| {
            if let (Some(p), Some(value)) = (
                d.profiles.get_mut(i).and_then(|p| p.predictive.as_mut()),
                from_wire::<T>(&v),
            ) {
                *field(p) = value;
            }
        },
    )
}

/// A profile's predictive autoscale.
#[component]
fn PredictiveEditor(index: usize) -> impl IntoView {
    let editor = expect_context::<Editor>();
    let i = index;
    let path = format!("profiles[{i}].predictive");
    let on = move || {
        editor
            .draft
            .with(|d| d.profiles.get(i).is_some_and(|p| p.predictive.is_some()))
    };
    let (metric_get, metric_set) = predictive_text(i, |p| &mut p.metric);
    let (target_get, target_set) = predictive_text(i, |p| &mut p.target);
    let (season_get, season_set) = predictive_text(i, |p| &mut p.season);
    let (lead_get, lead_set) = predictive_text(i, |p| &mut p.lead);
    let (mape_get, mape_set) = predictive_text(i, |p| &mut p.max_mape);
    let (mode_get, mode_set) = predictive_enum(i, |p| &mut p.mode);
    let (model_get, model_set) = predictive_enum(i, |p| &mut p.model);
    let path2 = path.clone();
    view! {
        <h4>"Predictive"</h4>
        <CheckInput
            label="Forecast the load from its history and raise the capacity ahead of it".into()
            path=path.clone()
            get=move |d| d.profiles.get(i).map(|p| p.predictive.is_some())
            set=move |d, on| d.set_predictive(i, on)
        />
        <Show when=on>
            <div class="field-row">
                <SelectInput
                    label="Load metric".into()
                    path=format!("{path2}.metric")
                    choices=metric_choices()
                    get=metric_get.clone()
                    set=metric_set.clone()
                />
                <TextInput
                    label="Target per instance".into()
                    path=format!("{path2}.target")
                    size=8
                    get=target_get.clone()
                    set=target_set.clone()
                />
                <SelectInput
                    label="Mode".into()
                    path=format!("{path2}.mode")
                    choices=enum_choices(
                        &[PredictiveMode::ForecastOnly, PredictiveMode::ForecastAndScale],
                    )
                    get=mode_get.clone()
                    set=mode_set.clone()
                />
                <SelectInput
                    label="Model".into()
                    path=format!("{path2}.model")
                    choices=enum_choices(
                        &[
                            ModelChoice::Auto,
                            ModelChoice::SeasonalNaive,
                            ModelChoice::SeasonalMedian,
                            ModelChoice::HoltWinters,
                        ],
                    )
                    get=model_get.clone()
                    set=model_set.clone()
                />
                <TextInput
                    label="Season (s)".into()
                    path=format!("{path2}.season_seconds")
                    numeric=true
                    size=8
                    get=season_get.clone()
                    set=season_set.clone()
                />
                <TextInput
                    label="Lead (s; empty: the measured boot time)".into()
                    path=format!("{path2}.lead_seconds")
                    numeric=true
                    size=6
                    get=lead_get.clone()
                    set=lead_set.clone()
                />
                <TextInput
                    label="Act while MAPE ≤ (%)".into()
                    path=format!("{path2}.max_mape_percent")
                    size=6
                    get=mape_get.clone()
                    set=mape_set.clone()
                />
            </div>
            <p class="hint">
                "Nothing is forecast before a whole season of history. The forecast only raises the floor: scale-in stays with the rules or target tracking."
            </p>
        </Show>
    }
    .into_any()
}

/// When a profile applies.
#[component]
fn ScheduleEditor(index: usize) -> impl IntoView {
    let editor = expect_context::<Editor>();
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
            <SelectInput
                label="Applies".into()
                path=format!("profiles[{i}].schedule")
                choices=ScheduleKind::ALL
                    .iter()
                    .map(|k| (k.slug().to_string(), k.label().to_string()))
                    .collect()
                get=move |d| d.profiles.get(i).map(|p| p.schedule.kind.slug().to_string())
                set=move |d, v| {
                    if let (Some(p), Some(kind)) = (
                        d.profiles.get_mut(i),
                        ScheduleKind::parse(&v),
                    ) {
                        p.schedule.kind = kind;
                    }
                }
            />
            <Show when=move || {
                kind.get() != ScheduleKind::Always
            }>
                {
                    let (zone_get, zone_set) = (zone_get.clone(), zone_set.clone());
                    move || {
                        view! {
                            <TextInput
                                label="Time zone (IANA)".into()
                                path=zone_path()
                                size=18
                                get=zone_get.clone()
                                set=zone_set.clone()
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
                            <CheckInput
                                label=label
                                path=format!("profiles[{i}].recurrence.days.{day}")
                                get=move |d| d.profiles.get(i).map(|p| p.schedule.days[day])
                                set=move |d, on| {
                                    if let Some(p) = d.profiles.get_mut(i) {
                                        p.schedule.days[day] = on;
                                    }
                                }
                            />
                        }
                    })
                    .collect_view()}
                <FieldMessage path=format!("profiles[{i}].recurrence.days") exact=true />
            </fieldset>
            <div class="field-row">
                <TextInput
                    label="Start hours (0–23, comma-separated)".into()
                    path=format!("profiles[{i}].recurrence.hours")
                    size=8
                    get=hours_get.clone()
                    set=hours_set.clone()
                />
                <TextInput
                    label="Start minutes (0–59)".into()
                    path=format!("profiles[{i}].recurrence.minutes")
                    size=8
                    get=minutes_get.clone()
                    set=minutes_set.clone()
                />
                <TextInput
                    label="Ends at (empty: when another starts)".into()
                    path=format!("profiles[{i}].recurrence.end")
                    kind="time"
                    get=end_get.clone()
                    set=end_set.clone()
                />
            </div>
        </Show>
        <Show when=move || kind.get() == ScheduleKind::FixedDate>
            <div class="field-row">
                <TextInput
                    label="Starts (local time)".into()
                    path=format!("profiles[{i}].fixed_date.start")
                    kind="datetime-local"
                    get=start_date_get.clone()
                    set=start_date_set.clone()
                />
                <TextInput
                    label="Ends (local time)".into()
                    path=format!("profiles[{i}].fixed_date.end")
                    kind="datetime-local"
                    get=end_date_get.clone()
                    set=end_date_set.clone()
                />
            </div>
        </Show>
    }
    .into_any()
}

/// The webhooks called on every scale action.
#[component]
fn Webhooks() -> impl IntoView {
    let editor = expect_context::<Editor>();
    let count = Memo::new(move |_| editor.draft.with(|d| d.webhooks.len()));
    view! {
        <section class="webhooks" aria-labelledby="webhooks-heading">
            <h3 id="webhooks-heading">"Notifications"</h3>
            <p class="hint">
                "Each scale action is posted to these URLs, signed with HMAC-SHA256 of the body under the secret ("
                <code>"X-Flotilla-Signature"</code> "). A stored secret reads "
                <code>{REDACTED}</code> " and is kept unless you type another."
            </p>
            <FieldMessage path="notifications.webhooks".into() exact=true />
            <For
                each=move || 0..count.get()
                key=|h| *h
                children=move |h| {
                    let path = format!("notifications.webhooks[{h}]");
                    view! {
                        <div class="field-row webhook" data-webhook=h>
                            <TextInput
                                label=format!("Webhook {} URL", h + 1)
                                path=format!("{path}.url")
                                size=40
                                get=move |d| d.webhooks.get(h).map(|w| w.url.clone())
                                set=move |d, v| {
                                    if let Some(w) = d.webhooks.get_mut(h) {
                                        w.url = v;
                                    }
                                }
                            />
                            <TextInput
                                label=format!("Webhook {} secret (optional)", h + 1)
                                path=format!("{path}.secret")
                                size=20
                                get=move |d| d.webhooks.get(h).map(|w| w.secret.clone())
                                set=move |d, v| {
                                    if let Some(w) = d.webhooks.get_mut(h) {
                                        w.secret = v;
                                    }
                                }
                            />
                            <button
                                type="button"
                                aria-label=format!("Remove webhook {}", h + 1)
                                on:click=move |_| {
                                    editor
                                        .draft
                                        .update(|d| {
                                            if h < d.webhooks.len() {
                                                d.webhooks.remove(h);
                                            }
                                        })
                                }
                            >
                                "×"
                            </button>
                        </div>
                    }
                }
            />
            <button
                type="button"
                on:click=move |_| {
                    editor
                        .draft
                        .update(|d| {
                            d.webhooks
                                .push(WebhookDraft {
                                    url: String::new(),
                                    secret: String::new(),
                                })
                        })
                }
            >
                "Add webhook"
            </button>
        </section>
    }
    .into_any()
}

/// The setting as JSON in a plain form: Check and Save work without JavaScript. With it,
/// the text follows the editor, and an answer updates the editor.
#[component]
fn JsonEditor(live: Live) -> impl IntoView {
    let editor = expect_context::<Editor>();
    let name = editor.name.get_value();
    let locked = may("autoscale-json", Some(&name)).reason();
    let denied = locked.is_some();
    let action = ServerAction::<SaveAutoscaleJson>::new();
    let draft_json = Memo::new(move |_| {
        if editor.present.get() {
            editor
                .checked
                .with(|(s, _)| serde_json::to_string_pretty(s).unwrap_or_default())
        } else {
            "null".to_string()
        }
    });
    // After a refused post without JavaScript the page is rendered anew: the error carries
    // what was typed.
    let typed = action
        .value()
        .get_untracked()
        .and_then(Result::err)
        .and_then(|e| e.input);
    let refused_before = typed.is_some();
    let text = RwSignal::new(typed.unwrap_or_else(|| draft_json.get_untracked()));
    Effect::watch(
        move || draft_json.get(),
        move |json, _, _| text.set(json.clone()),
        false,
    );
    Effect::watch(
        move || action.version().get(),
        move |_, _, _| {
            if let Some(Ok(checked)) = action.value().get_untracked() {
                let saved = checked.saved;
                editor.take(checked);
                if saved {
                    live.refresh();
                }
            }
        },
        false,
    );
    let refusal = move || {
        action.value().get().and_then(Result::err).map(|e| {
            if e.fields.is_empty() {
                vec![e.message]
            } else {
                e.fields
                    .iter()
                    .map(|f| format!("{}: {}", f.field, f.message))
                    .collect()
            }
        })
    };
    let answered = move || {
        action
            .value()
            .get()
            .and_then(Result::ok)
            .map(|a| match (a.saved, a.warnings.len()) {
                (true, _) if a.shadow => "Saved as the shadow setting.".to_string(),
                (true, _) => "Saved.".to_string(),
                (false, 0) => "Checked: no errors, no warnings.".to_string(),
                (false, n) => format!("Checked: no errors, {n} warning(s) — see above."),
            })
    };
    view! {
        <details class="json-editor" data-editor="json" open=refused_before>
            <summary>"Edit as JSON"</summary>
            <p class="hint">
                "The setting as " <code>"PUT /api/v1/scale-sets/{name}/autoscale"</code>
                " takes it; " <code>"null"</code> " removes autoscale."
            </p>
            <ActionForm action attr:data-form="autoscale-json">
                <CsrfField />
                <input type="hidden" name="name" value=name />
                <label for="autoscale-json">"Autoscale setting (JSON)"</label>
                <textarea
                    id="autoscale-json"
                    name="json"
                    rows="18"
                    spellcheck="false"
                    prop:value=move || text.get()
                    aria-describedby="autoscale-json-message"
                >
                    {text.get_untracked()}
                </textarea>
                <div class="editor-actions">
                    <button
                        type="submit"
                        name="dry_run"
                        value="true"
                        disabled=denied
                        title=locked.clone()
                    >
                        "Check JSON"
                    </button>
                    <button type="submit" class="primary" disabled=denied title=locked.clone()>
                        "Save JSON"
                    </button>
                    <button type="submit" name="shadow" value="true" disabled=denied title=locked>
                        "Save as shadow"
                    </button>
                </div>
                <div id="autoscale-json-message" role="alert" data-error="json">
                    {move || {
                        refusal()
                            .map(|lines| {
                                view! {
                                    <ul class="field-error">
                                        {lines
                                            .into_iter()
                                            .map(|l| view! { <li>{l}</li> })
                                            .collect_view()}
                                    </ul>
                                }
                            })
                    }}
                </div>
                <p class="editor-status" role="status" data-state="json">
                    {answered}
                </p>
            </ActionForm>
        </details>
    }
    .into_any()
}
