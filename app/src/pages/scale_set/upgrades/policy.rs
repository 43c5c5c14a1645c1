//! The upgrade policy editor: the mode and every rolling setting — batch size, the health
//! gates, the pause between batches, surge, unhealthy first, rollback on a breach,
//! cross-zone batches, checkpoints (a percentage, and a wait or an approval), the bake
//! time, a canary and the per-instance deadline. A plain form (without JavaScript it shows
//! one blank checkpoint row to fill in); in the browser, problems show next to their
//! inputs as the person types (the domain's `UpgradePolicy::validate`, compiled to wasm),
//! Save sends nothing while there are any, the server's refusal joins them by field, and
//! "Preview with this policy" shows the plan the policy would make now.

use flotilla_domain::FieldError;
use leptos::form::ActionForm;
use leptos::prelude::*;

use super::Upgrades;
use super::plan::PlanView;
use crate::api::upgrades::{PreviewRollout, SaveUpgradePolicy};
use crate::autoscale_draft::wire;
use crate::components::csrf_field::CsrfField;
use crate::components::field::{CheckField, FieldMessage, NumberField, SelectField};
use crate::components::permission_note::PermissionNote;
use crate::upgrade_form::{CheckpointInput, MODES, PolicyInput};
use crate::viewer::may;

/// The numeric settings: `(field, label, hint)`.
const NUMBERS: [(&str, &str, &str); 7] = [
    (
        "max_batch_instance_percent",
        "Batch size (% of capacity)",
        "5–100; at least one instance",
    ),
    (
        "max_unhealthy_instance_percent",
        "Max unhealthy in the set (%)",
        "checked before each batch",
    ),
    (
        "max_unhealthy_upgraded_instance_percent",
        "Max unhealthy upgraded (%)",
        "checked after each batch",
    ),
    (
        "pause_time_between_batches_seconds",
        "Pause between batches (s)",
        "0–3600",
    ),
    (
        "canary_instances",
        "Canary instances",
        "a first batch of this many, then wait for approval (0: none)",
    ),
    (
        "bake_time_seconds",
        "Bake time (s)",
        "watch the upgraded instances this long before completing",
    ),
    (
        "instance_timeout_seconds",
        "Instance timeout (s)",
        "from the start of an update to healthy, 10–7200",
    ),
];

/// The switches: `(field, label)`.
const SWITCHES: [(&str, &str); 4] = [
    (
        "max_surge",
        "Surge: create replacements first (capacity never drops)",
    ),
    (
        "prioritize_unhealthy_instances",
        "Upgrade unhealthy instances first",
    ),
    (
        "rollback_failed_instances_on_policy_breach",
        "Roll back when a gate after a batch fails",
    ),
    ("enable_cross_zone_upgrade", "Batches may span zones"),
];

/// The value of setting `field` as typed.
fn value_of(input: &PolicyInput, field: &str) -> String {
    input.clone().field_mut(field).cloned().unwrap_or_default()
}

#[component]
pub(super) fn PolicyEditor(up: Upgrades) -> impl IntoView {
    let live = up.live;
    let name = up.name.get_value();
    let save = ServerAction::<SaveUpgradePolicy>::new();
    let preview = ServerAction::<PreviewRollout>::new();
    let typed = save
        .value()
        .get_untracked()
        .and_then(Result::err)
        .and_then(|e| e.input)
        .and_then(|json| serde_json::from_str::<PolicyInput>(&json).ok());
    let initial = typed.unwrap_or_else(|| {
        live.detail
            .with_untracked(|d| PolicyInput::of(&d.scale_set.spec.upgrade_policy))
    });
    let input = RwSignal::new(initial);
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let checked = Memo::new(move |_| input.with(PolicyInput::check));
    let problems = Memo::new(move |_| {
        let mut all: Vec<FieldError> = if hydrated.get() {
            checked.with(|(_, e)| e.clone())
        } else {
            vec![]
        };
        if let Some(Err(refused)) = save.value().get() {
            for f in refused.fields {
                if !all.contains(&f) {
                    all.push(f);
                }
            }
        }
        all
    });
    let general = move || {
        save.value()
            .get()
            .and_then(Result::err)
            .filter(|e| e.fields.is_empty())
            .map(|e| e.message)
    };
    Effect::watch(
        move || save.version().get(),
        move |_, _, _| {
            if let Some(Ok(policy)) = save.value().get_untracked() {
                input.set(PolicyInput::of(&policy));
                live.refresh();
            }
        },
        false,
    );
    let saved = move || {
        matches!(save.value().get(), Some(Ok(_))).then(|| {
            view! {
                <p class="notice" role="status" data-state="policy-saved">
                    "Saved."
                </p>
            }
        })
    };
    let block_problems = move |ev: leptos::ev::MouseEvent| {
        if checked.with_untracked(|(_, e)| !e.is_empty()) {
            ev.prevent_default();
        }
    };
    let show_preview = {
        let name = name.clone();
        move |_| {
            let policy = checked.with_untracked(|(p, e)| e.is_empty().then(|| p.clone()));
            if let Some(policy) = policy {
                preview.dispatch(PreviewRollout {
                    name: name.clone(),
                    model: None,
                    upgrade_policy: Some(policy),
                });
            }
        }
    };
    let number = move |field: &'static str, label: &'static str, hint: &'static str| {
        view! {
            <NumberField
                id=format!("policy-{field}")
                name=format!("input[{field}]")
                label
                hint
                size=8
                value=Signal::derive(move || input.with(|i| value_of(i, field)))
                on_input=move |typed| {
                    input
                        .update(|i| {
                            if let Some(slot) = i.field_mut(field) {
                                *slot = typed;
                            }
                        })
                }
                path=format!("upgrade_policy.rolling.{field}")
                problems
            />
        }
    };
    let switch = move |field: &'static str, label: &'static str| {
        view! {
            <CheckField
                id=format!("policy-{field}")
                name=format!("input[{field}]")
                label
                path=format!("upgrade_policy.rolling.{field}")
                checked=Signal::derive(move || input.with(|i| !value_of(i, field).is_empty()))
                on_change=move |on: bool| {
                    input
                        .update(|i| {
                            if let Some(slot) = i.field_mut(field) {
                                *slot = if on { "on".into() } else { String::new() };
                            }
                        })
                }
                problems
            />
        }
    };
    let permit = may("upgrade-policy", Some(&name));
    view! {
        <section aria-labelledby="policy-heading" class="panel" data-section="policy">
            <h2 id="policy-heading">"Upgrade policy"</h2>
            <PermissionNote what="Changing the upgrade policy" permit=permit.clone() />
            <ActionForm action=save attr:class="upgrade-form" attr:data-form="policy">
                <CsrfField />
                <input type="hidden" name="name" value=name.clone() />
                <SelectField
                    id="policy-mode"
                    name="input[mode]"
                    label="Mode"
                    path="upgrade_policy.mode"
                    choices=MODES
                        .into_iter()
                        .map(|(m, label)| (wire(m), label.to_string()))
                        .collect()
                    value=Signal::derive(move || input.with(|i| i.mode.clone()))
                    on_change=move |mode| input.update(|i| i.mode = mode)
                    problems
                />
                <fieldset class="profile">
                    <legend>"Rolling upgrades"</legend>
                    <div class="field-row">
                        {NUMBERS
                            .into_iter()
                            .map(|(field, label, hint)| number(field, label, hint))
                            .collect_view()}
                    </div>
                    {SWITCHES.into_iter().map(|(field, label)| switch(field, label)).collect_view()}
                    <Checkpoints input problems hydrated />
                </fieldset>
                <p class="field-error" role="alert" data-error="policy">
                    {general}
                </p>
                <div class="toolbar">
                    <button
                        type="submit"
                        class="primary"
                        data-action="save-policy"
                        disabled=permit.denied()
                        title=permit.reason()
                        on:click=block_problems
                        aria-busy=move || save.pending().get().then_some("true")
                    >
                        "Save policy"
                    </button>
                    <Show when=move || hydrated.get()>
                        <button
                            type="button"
                            data-action="preview-policy"
                            on:click=show_preview.clone()
                            aria-busy=move || preview.pending().get().then_some("true")
                        >
                            "Preview with this policy"
                        </button>
                    </Show>
                </div>
            </ActionForm>
            {saved}
            {move || match preview.value().get() {
                Some(Ok(plan)) => view! { <PlanView plan /> }.into_any(),
                Some(Err(e)) => {
                    view! {
                        <p class="field-error" role="alert" data-error="policy-preview">
                            {e.message}
                        </p>
                    }
                        .into_any()
                }
                None => ().into_any(),
            }}
        </section>
    }
}

/// The checkpoints: a row each (a percentage, and a wait in seconds or none for an
/// approval), added and removed in the browser. Without JavaScript rows cannot be added:
/// the server renders one blank row to fill in, which the browser drops once it runs.
#[component]
fn Checkpoints(
    input: RwSignal<PolicyInput>,
    problems: Memo<Vec<FieldError>>,
    hydrated: RwSignal<bool>,
) -> impl IntoView {
    let count = move || input.with(|i| i.checkpoints.len()) + usize::from(!hydrated.get());
    let list_field = "upgrade_policy.rolling.checkpoints";
    view! {
        <div class="checkpoints" data-field="checkpoints">
            <h4>"Checkpoints"</h4>
            <p class="hint">
                "Pause once this share of the instances is upgraded: for a while, or until approved (leave the wait empty)."
            </p>
            <For each=move || 0..count() key=|i| *i let:row>
                <CheckpointRow input problems hydrated row />
            </For>
            <Show when=move || hydrated.get()>
                <button
                    type="button"
                    data-action="add-checkpoint"
                    on:click=move |_| {
                        input.update(|i| i.checkpoints.push(CheckpointInput::default()))
                    }
                >
                    "Add checkpoint"
                </button>
            </Show>
            <FieldMessage path=list_field problems exact=true />
        </div>
    }
}

#[component]
fn CheckpointRow(
    input: RwSignal<PolicyInput>,
    problems: Memo<Vec<FieldError>>,
    hydrated: RwSignal<bool>,
    row: usize,
) -> impl IntoView {
    let value = move |wait: bool| {
        input.with(|i| {
            i.checkpoints
                .get(row)
                .map(|c| {
                    if wait {
                        c.wait_seconds.clone()
                    } else {
                        c.percent.clone()
                    }
                })
                .unwrap_or_default()
        })
    };
    let set = move |wait: bool, typed: String| {
        input.update(|i| {
            if let Some(c) = i.checkpoints.get_mut(row) {
                if wait {
                    c.wait_seconds = typed;
                } else {
                    c.percent = typed;
                }
            }
        })
    };
    let cell = move |wait: bool, label: &'static str| {
        let part = if wait { "wait_seconds" } else { "percent" };
        view! {
            <NumberField
                id=format!("policy-checkpoint-{row}-{part}")
                name=format!("input[checkpoints][{row}][{part}]")
                label
                size=6
                value=Signal::derive(move || value(wait))
                on_input=move |typed| set(wait, typed)
                path=format!("upgrade_policy.rolling.checkpoints[{row}].{part}")
                problems
            />
        }
    };
    view! {
        <div class="field-row checkpoint" data-checkpoint=row>
            {cell(false, "At (% upgraded)")}
            {cell(true, "Wait (s, empty: approval)")}
            <Show when=move || hydrated.get()>
                <button
                    type="button"
                    data-action="remove-checkpoint"
                    aria-label=format!("Remove checkpoint {}", row + 1)
                    on:click=move |_| {
                        input
                            .update(|i| {
                                if row < i.checkpoints.len() {
                                    i.checkpoints.remove(row);
                                }
                            })
                    }
                >
                    "Remove"
                </button>
            </Show>
        </div>
    }
}
