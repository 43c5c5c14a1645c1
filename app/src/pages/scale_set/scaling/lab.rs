//! The draft's lab, below the editor's buttons (in the browser, where the draft is).
//!
//! - **What if…** replays a load — what the set recorded over the last hour, day or week, or
//!   its synthetic demand for the next — through the saved setting and the draft as it
//!   stands, unsaved, on a simulated fleet calibrated on the set, and shows both settings'
//!   capacity against the ideal capacity on one chart (the load below it), their scores side
//!   by side, and what the simulated fleet was made of. Nothing is changed.
//! - **Save as shadow** saves the draft beside the live setting: evaluated on the same
//!   metrics, never acting ([`super::shadow`] shows it).
//!
//! Neither sends a draft the editor finds problems in: they are shown at their fields
//! already. A refusal by the server names the draft's fields as the editor does.

use flotilla_domain::FieldError;
use flotilla_domain::autoscale::backtest::Slo;
use flotilla_domain::autoscale::setting::AutoscaleSetting;
use leptos::prelude::*;

use super::super::Live;
use super::scores::Scores;
use crate::api::error::PortalError;
use crate::api::lab::{SaveAutoscaleShadow, WhatIf};
use crate::chart::Unit;
use crate::components::chart::Chart;
use crate::format;
use crate::lab_view::{Comparison, DEFAULT_LOAD, Load};
use crate::viewer::may;

/// The setting to send, or why the draft cannot be sent as it stands.
fn sendable(
    draft: &Option<(AutoscaleSetting, Vec<FieldError>)>,
) -> Result<&AutoscaleSetting, &'static str> {
    match draft {
        None => Err("Set up autoscale first: there is no draft to try."),
        Some((_, problems)) if !problems.is_empty() => {
            Err("Fix the problems above first: nothing was sent.")
        }
        Some((setting, _)) => Ok(setting),
    }
}

/// A refusal in a sentence; its messages by field follow it ([`Refusal`]).
fn refused(error: &PortalError) -> String {
    if error.fields.is_empty() {
        format!("Refused: {}", error.message)
    } else {
        "Refused: fix these first.".to_string()
    }
}

#[component]
pub(super) fn DraftLab(
    live: Live,
    /// The setting the editor holds and the problems it finds in it; `None`: autoscale is
    /// not set up.
    #[prop(into)]
    draft: Signal<Option<(AutoscaleSetting, Vec<FieldError>)>>,
) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let has_demand = Memo::new(move |_| live.detail.with(|d| d.scale_set.spec.demand.is_some()));
    let load = RwSignal::new(DEFAULT_LOAD);
    let run = ServerAction::<WhatIf>::new();
    let save = ServerAction::<SaveAutoscaleShadow>::new();
    // Which button was pressed while the draft could not be sent.
    let blocked = RwSignal::new(None::<&'static str>);
    Effect::watch(
        move || save.version().get(),
        move |_, _, _| {
            if let Some(Ok(_)) = save.value().get_untracked() {
                live.refresh();
            }
        },
        false,
    );
    let what_if_refusal = may("what-if", Some(&name)).reason();
    let shadow_refusal = may("save-autoscale-shadow", Some(&name)).reason();
    let name = StoredValue::new(name);
    // The draft to send, if it can be: else the press is remembered, to say why not.
    let send = move |button: &'static str| {
        let setting = draft.with_untracked(|d| sendable(d).cloned());
        blocked.set(setting.is_err().then_some(button));
        setting.ok()
    };
    // The reason a press sent nothing, while it still holds.
    let held = move |button: &'static str| {
        (blocked.get() == Some(button))
            .then(|| draft.with(|d| sendable(d).err()))
            .flatten()
    };
    let what_if_state = move || {
        if let Some(why) = held("what-if") {
            return Some(("blocked", why.to_string()));
        }
        if run.pending().get() {
            return Some(("running", "Replaying…".to_string()));
        }
        match run.value().get()? {
            Ok(c) => Some((
                "done",
                format!(
                    "Replayed from {} to {}, {} evaluations per setting.",
                    format::timestamp(&c.from),
                    format::timestamp(&c.to),
                    c.evaluations
                ),
            )),
            Err(e) => Some(("refused", refused(&e))),
        }
    };
    let shadow_state = move || {
        if let Some(why) = held("shadow") {
            return Some(("blocked", why.to_string()));
        }
        match save.value().get()? {
            Ok(_) => Some((
                "saved",
                "Saved as the shadow setting: it is evaluated beside the live one from now on."
                    .to_string(),
            )),
            Err(e) => Some(("refused", refused(&e))),
        }
    };
    let (what_if_denied, shadow_denied) = (what_if_refusal.is_some(), shadow_refusal.is_some());
    view! {
        <section class="lab" aria-labelledby="lab-heading" data-lab="draft">
            <h3 id="lab-heading">"Try the draft"</h3>
            <p class="hint">
                "What if… replays a load through the saved setting and this draft, unsaved, on a simulated copy of this scale set, and compares them. Save as shadow runs the draft beside the live setting on the real metrics, without acting."
            </p>
            <div class="field-row">
                <div class="field">
                    <label for="lab-load">"Load to replay"</label>
                    <select
                        id="lab-load"
                        prop:value=move || load.get().slug()
                        on:change=move |ev| {
                            if let Some(picked) = Load::parse(&event_target_value(&ev)) {
                                load.set(picked);
                            }
                        }
                    >
                        {move || {
                            Load::choices(has_demand.get())
                                .into_iter()
                                .map(|choice| {
                                    view! {
                                        <option
                                            value=choice.slug()
                                            selected=move || load.get() == choice
                                        >
                                            {choice.label()}
                                        </option>
                                    }
                                })
                                .collect_view()
                        }}
                    </select>
                </div>
            </div>
            <div class="editor-actions">
                <button
                    type="button"
                    data-action="what-if"
                    disabled=what_if_denied
                    title=what_if_refusal
                    aria-busy=move || run.pending().get().then_some("true")
                    on:click=move |_| {
                        if let Some(setting) = send("what-if") {
                            run.dispatch(WhatIf {
                                name: name.get_value(),
                                draft: setting,
                                load: load.get_untracked(),
                            });
                        }
                    }
                >
                    "What if…"
                </button>
                <button
                    type="button"
                    data-action="save-shadow"
                    disabled=shadow_denied
                    title=shadow_refusal
                    aria-busy=move || save.pending().get().then_some("true")
                    on:click=move |_| {
                        if let Some(setting) = send("shadow") {
                            save.dispatch(SaveAutoscaleShadow {
                                name: name.get_value(),
                                setting,
                            });
                        }
                    }
                >
                    "Save as shadow"
                </button>
            </div>
            <p
                class="editor-status"
                role="status"
                data-state=move || shadow_state().map(|(s, _)| s)
                data-status="shadow"
            >
                {move || shadow_state().map(|(_, text)| text)}
            </p>
            <Refusal error=Signal::derive(move || save.value().get().and_then(Result::err)) />
            <p
                class="editor-status"
                role="status"
                data-state=move || what_if_state().map(|(s, _)| s)
                data-status="what-if"
            >
                {move || what_if_state().map(|(_, text)| text)}
            </p>
            <Refusal error=Signal::derive(move || run.value().get().and_then(Result::err)) />
            {move || {
                run.value()
                    .get()
                    .and_then(Result::ok)
                    .map(|comparison| view! { <WhatIfResult comparison /> })
            }}
        </section>
    }
    .into_any()
}

/// A refusal's messages by field, as the editor lists its problems.
#[component]
fn Refusal(#[prop(into)] error: Signal<Option<PortalError>>) -> impl IntoView {
    move || {
        error.get().filter(|e| !e.fields.is_empty()).map(|e| {
            view! {
                <ul class="field-error">
                    {e
                        .fields
                        .into_iter()
                        .map(|f| {
                            let key = f.field.clone();
                            view! {
                                <li data-problem=key>
                                    <code>{f.field}</code>
                                    ": "
                                    {f.message}
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            }
        })
    }
}

/// The settings' capacity against the ideal, the load, and the scores.
#[component]
fn WhatIfResult(comparison: Comparison) -> impl IntoView {
    let slo = Slo::default();
    view! {
        <div class="what-if" data-what-if="done">
            <p class="hint">
                {format!(
                    "The capacity each setting provisions for the load, against the ideal capacity: the fewest instances that keep {} at or below {}.",
                    slo.metric,
                    Unit::Percent.format(slo.limit),
                )}
            </p>
            <Chart
                title=comparison.capacity_title()
                unit=Unit::Instances
                data=Signal::stored(comparison.capacity_chart())
                name="what-if-capacity"
            />
            <Chart
                title="Load replayed"
                unit=Unit::RequestsPerSecond
                data=Signal::stored(comparison.load_chart())
                name="what-if-load"
                small=true
            />
            <Scores comparison name="what-if" />
        </div>
    }
}
