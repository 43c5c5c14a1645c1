//! The model: the version in force and a plain form to change it (image, vCPUs, memory,
//! disk, user data, tags). In the browser, Preview shows the rollout the change would make
//! before Apply stores it as the next version; problems show next to their inputs as the
//! person types (the domain's validation, compiled to wasm), and the server's refusal
//! joins them.

use flotilla_domain::FieldError;
use leptos::form::ActionForm;
use leptos::prelude::*;

use super::Upgrades;
use super::plan::PlanView;
use crate::api::upgrades::{PreviewRollout, SetModel};
use crate::components::csrf_field::CsrfField;
use crate::components::field::{FieldMessage, NumberField, SelectField};
use crate::components::permission_note::PermissionNote;
use crate::format;
use crate::upgrade_form::ModelInput;
use crate::viewer::may;

#[component]
pub(super) fn ModelSection(up: Upgrades, images: Vec<String>) -> impl IntoView {
    let live = up.live;
    let name = up.name.get_value();
    let apply = ServerAction::<SetModel>::new();
    let preview = ServerAction::<PreviewRollout>::new();
    // After a refused post without JavaScript the page is rendered anew: the error carries
    // the form as typed.
    let typed = apply
        .value()
        .get_untracked()
        .and_then(Result::err)
        .and_then(|e| e.input)
        .and_then(|json| serde_json::from_str::<ModelInput>(&json).ok());
    let initial = typed.unwrap_or_else(|| {
        live.detail
            .with_untracked(|d| ModelInput::of(&d.scale_set.spec.model))
    });
    let input = RwSignal::new(initial.clone());
    // User data is write-only: the portal shows what is stored by its size and hash.
    let stored_user_data = live.detail.with_untracked(|d| {
        let model = &d.scale_set.spec.model;
        match (model.user_data_length, &model.user_data_sha256) {
            (Some(length), Some(sha256)) => format!(
                "Stored: {length} bytes, SHA-256 {}… (never shown; type new user data to replace it)",
                &sha256[..sha256.len().min(12)]
            ),
            _ => "None stored.".to_string(),
        }
    });
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let checked = Memo::new(move |_| {
        live.detail
            .with(|d| input.with(|i| i.check(&d.scale_set.spec.model)))
    });
    let problems = Memo::new(move |_| {
        let mut all: Vec<FieldError> = if hydrated.get() {
            checked.with(|(_, e)| e.clone())
        } else {
            vec![]
        };
        if let Some(Err(refused)) = apply.value().get() {
            for f in refused.fields {
                if !all.contains(&f) {
                    all.push(f);
                }
            }
        }
        all
    });
    let general = move || {
        apply
            .value()
            .get()
            .and_then(Result::err)
            .filter(|e| e.fields.is_empty())
            .map(|e| e.message)
    };
    let applied = move || {
        apply.value().get().and_then(Result::ok).map(|version| {
            view! {
                <p class="notice" role="status" data-state="model-applied">
                    {format!("Stored as version {version}.")}
                </p>
            }
        })
    };
    Effect::watch(
        move || apply.version().get(),
        move |_, _, _| {
            if matches!(apply.value().get_untracked(), Some(Ok(_))) {
                preview.value().set(None);
                live.refresh();
                up.reload();
            }
        },
        false,
    );
    let show_preview = {
        let name = name.clone();
        move |_| {
            let model = checked.with_untracked(|(m, e)| e.is_empty().then(|| m.clone()));
            if let Some(model) = model {
                preview.dispatch(PreviewRollout {
                    name: name.clone(),
                    model: Some(model),
                    upgrade_policy: None,
                });
            }
        }
    };
    let block_problems = move |ev: leptos::ev::MouseEvent| {
        if checked.with_untracked(|(_, e)| !e.is_empty()) {
            ev.prevent_default();
        }
    };
    let facts = move || {
        live.detail.with(|d| {
            let m = &d.scale_set.spec.model;
            view! {
                <dl class="facts">
                    <div>
                        <dt>"Version"</dt>
                        <dd data-fact="model-version">{d.scale_set.model_version}</dd>
                    </div>
                    <div>
                        <dt>"Image"</dt>
                        <dd data-fact="model-image">{m.image.clone()}</dd>
                    </div>
                    <div>
                        <dt>"Size"</dt>
                        <dd>
                            {format!(
                                "{} · {} · {} GiB disk",
                                format::plural(m.vcpus, "vCPU", "vCPUs"),
                                format::memory_mib(m.memory_mib),
                                m.disk_gib,
                            )}
                        </dd>
                    </div>
                    <div>
                        <dt>"Upgrade mode"</dt>
                        <dd data-fact="upgrade-mode">
                            {crate::autoscale_draft::wire(d.scale_set.spec.upgrade_policy.mode)}
                        </dd>
                    </div>
                </dl>
            }
        })
    };
    let mut choices = images;
    if !choices.contains(&initial.image) {
        choices.insert(0, initial.image.clone());
    }
    // `field` is the server's path (`model.vcpus`); the input is named after its last part.
    let text = move |field: &'static str,
                     label: &'static str,
                     value: String,
                     set: fn(&mut ModelInput, String)| {
        let id = field.trim_start_matches("model.");
        view! {
            <NumberField
                id=format!("model-{id}")
                name=format!("input[{id}]")
                label
                path=field
                size=8
                value=Signal::stored(value)
                on_input=move |typed| input.update(|i| set(i, typed))
                problems
            />
        }
    };
    let permit = may("set-model", Some(&name));
    view! {
        <section aria-labelledby="model-heading" class="panel" data-section="model">
            <h2 id="model-heading">"Model"</h2>
            {facts}
            <h3>"Change the model"</h3>
            <p class="hint">
                "A change is stored as the next version. In Automatic and Rolling mode it starts a rollout at once; in Manual mode instances are upgraded on the Instances tab."
            </p>
            <PermissionNote what="Changing the model" permit=permit.clone() />
            <ActionForm action=apply attr:class="upgrade-form" attr:data-form="model">
                <CsrfField />
                <input type="hidden" name="name" value=name.clone() />
                <div class="field-row">
                    <SelectField
                        id="model-image"
                        name="input[image]"
                        label="Image"
                        path="model.image"
                        choices=choices.into_iter().map(|image| (image.clone(), image)).collect()
                        value=Signal::derive(move || input.with(|i| i.image.clone()))
                        on_change=move |image| input.update(|i| i.image = image)
                        problems
                    />
                    {text("model.vcpus", "vCPUs", initial.vcpus.clone(), |i, v| i.vcpus = v)}
                    {text(
                        "model.memory_mib",
                        "Memory (MiB)",
                        initial.memory_mib.clone(),
                        |i, v| i.memory_mib = v,
                    )}
                    {text(
                        "model.disk_gib",
                        "Disk (GiB)",
                        initial.disk_gib.clone(),
                        |i, v| i.disk_gib = v,
                    )}
                </div>
                <div class="field-row">
                    <div class="field">
                        <label for="model-user-data">"User data (cloud-init)"</label>
                        <p class="hint" data-test="user-data-stored">
                            {stored_user_data}
                        </p>
                        <textarea
                            id="model-user-data"
                            name="input[user_data]"
                            rows="4"
                            cols="48"
                            spellcheck="false"
                            placeholder="new user data (empty: keep the stored one)"
                            on:input=move |ev| {
                                input.update(|i| i.user_data = event_target_value(&ev))
                            }
                        >
                            {initial.user_data.clone()}
                        </textarea>
                        <label class="check">
                            <input
                                type="checkbox"
                                name="input[remove_user_data]"
                                checked=!initial.remove_user_data.is_empty()
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    input
                                        .update(|i| {
                                            i.remove_user_data = if on {
                                                "on".into()
                                            } else {
                                                String::new()
                                            };
                                        })
                                }
                            />
                            " Remove the user data"
                        </label>
                        <FieldMessage path="model.user_data" problems />
                    </div>
                    <div class="field">
                        <label for="model-tags">"Tags (key=value per line)"</label>
                        <textarea
                            id="model-tags"
                            name="input[tags]"
                            rows="4"
                            cols="32"
                            spellcheck="false"
                            on:input=move |ev| input.update(|i| i.tags = event_target_value(&ev))
                        >
                            {initial.tags.clone()}
                        </textarea>
                        <FieldMessage path="model.tags" problems />
                    </div>
                </div>
                <p class="field-error" role="alert" data-error="model">
                    {general}
                </p>
                <div class="toolbar">
                    <Show when=move || hydrated.get()>
                        <button
                            type="button"
                            data-action="preview-model"
                            on:click=show_preview.clone()
                            aria-busy=move || preview.pending().get().then_some("true")
                        >
                            "Preview"
                        </button>
                    </Show>
                    <button
                        type="submit"
                        class="primary"
                        data-action="apply-model"
                        disabled=permit.denied()
                        title=permit.reason()
                        on:click=block_problems
                        aria-busy=move || apply.pending().get().then_some("true")
                    >
                        "Apply"
                    </button>
                </div>
            </ActionForm>
            {applied}
            {move || match preview.value().get() {
                Some(Ok(plan)) => {
                    view! {
                        <h3>"Preview"</h3>
                        <PlanView plan />
                    }
                        .into_any()
                }
                Some(Err(e)) => {
                    view! {
                        <p class="field-error" role="alert" data-error="preview">
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
