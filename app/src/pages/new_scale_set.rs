use flotilla_domain::{FieldError, ScaleSetSpec};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_navigate;

use crate::api::wizard::{CreateScaleSet, get_wizard_options};
use crate::components::breadcrumbs::Breadcrumbs;
use crate::components::error_panel::ErrorPanel;
use crate::components::permission_note::PermissionNote;
use crate::viewer::may;
use crate::wizard::{
    AUTOSCALE_DEFAULT, AUTOSCALE_MAXIMUM, AUTOSCALE_MINIMUM, CUSTOM_SIZE, Draft, SCALING_AUTOSCALE,
    SCALING_MANUAL, SIZE_PRESETS, Step, WizardOptions, concerns, pretty_json,
};

/// `/scale-sets/new`: the quick-create wizard. It runs in the browser (it validates with
/// the domain's own code as the person types), so without JavaScript the page says so.
#[component]
pub fn NewScaleSet() -> impl IntoView {
    // Effects run only in the browser: the server and the first browser render agree.
    let mounted = RwSignal::new(false);
    Effect::new(move |_| mounted.set(true));
    let permit = may("create-scale-set", None);
    let allowed = permit.allowed();
    view! {
        <Title text="Create scale set" />
        <Breadcrumbs trail=vec![
            ("Overview".to_string(), Some("/".to_string())),
            ("Scale sets".to_string(), Some("/scale-sets".to_string())),
            ("Create scale set".to_string(), None),
        ] />
        <h1>"Create scale set"</h1>
        <PermissionNote what="Creating a scale set" permit />
        <Show
            when=move || allowed && mounted.get()
            fallback=move || {
                allowed
                    .then(|| {
                        view! {
                            <p class="muted" data-wizard="needs-js">
                                "The create wizard needs JavaScript. Without it, create a scale set with "
                                <code>"POST /api/v1/scale-sets"</code>
                                "."
                            </p>
                        }
                    })
            }
        >
            <WizardLoader />
        </Show>
    }
}

#[component]
fn WizardLoader() -> impl IntoView {
    let options = LocalResource::new(get_wizard_options);
    view! {
        <Suspense fallback=|| {
            view! { <p class="muted">"Loading…"</p> }
        }>
            {move || Suspend::new(async move {
                match options.await {
                    Ok(options) => view! { <Wizard options /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// What every step reads and writes: one draft for the whole wizard.
#[derive(Clone, Copy)]
struct WizardState {
    draft: RwSignal<Draft>,
    step: RwSignal<Step>,
    /// What the browser finds wrong (the domain's validation): Create waits for none.
    errors: Memo<Vec<FieldError>>,
    /// Those plus the server's per-field refusal of the spec as it stands (an unknown
    /// image), shown next to the fields and on Review.
    problems: Memo<Vec<FieldError>>,
    options: StoredValue<WizardOptions>,
    create: ServerAction<CreateScaleSet>,
    /// The spec last sent, so a refusal is shown only while the draft still says the same.
    sent: RwSignal<Option<ScaleSetSpec>>,
    /// The fields changed or left (blurred) so far: their problems show.
    touched: RwSignal<Vec<&'static str>>,
    /// The steps left with Next, every step once Review + create was opened: the problems
    /// of their fields show, touched or not.
    attempted: RwSignal<Vec<Step>>,
}

impl WizardState {
    /// Whether the problem about `error_field` is shown yet: its field was touched, or its
    /// step was left with Next, or Review + create was opened (as Azure does). Until then a
    /// new draft says nothing about fields nobody has filled in yet.
    fn shows(&self, error_field: &str) -> bool {
        self.touched
            .with(|t| t.iter().any(|f| concerns(error_field, f)))
            || self
                .attempted
                .with(|a| a.contains(&Step::of_field(error_field)))
    }

    /// Marks `field` as touched (changed or blurred).
    fn touch(&self, field: &'static str) {
        if !self.touched.with_untracked(|t| t.contains(&field)) {
            self.touched.update(|t| t.push(field));
        }
    }

    /// Marks `step` as attempted.
    fn attempt(&self, step: Step) {
        if !self.attempted.with_untracked(|a| a.contains(&step)) {
            self.attempted.update(|a| a.push(step));
        }
    }

    /// Opens `step`; opening Review + create checks every step.
    fn go(&self, step: Step) {
        if step == Step::Review {
            for s in Step::ALL {
                self.attempt(s);
            }
        }
        self.step.set(step);
    }
}

#[component]
fn Wizard(options: WizardOptions) -> impl IntoView {
    let draft = RwSignal::new(Draft::new(&options));
    let step = RwSignal::new(Step::Basics);
    let zones = options.zones.clone();
    let checked = Memo::new(move |_| draft.with(|d| d.check(&zones)));
    let errors = Memo::new(move |_| checked.with(|(_, e)| e.clone()));
    let create = ServerAction::<CreateScaleSet>::new();
    let sent = RwSignal::new(None::<ScaleSetSpec>);
    let problems = Memo::new(move |_| {
        let mut all = errors.get();
        let same = sent.with(|sent| checked.with(|(spec, _)| sent.as_ref() == Some(spec)));
        if same && let Some(Err(refused)) = create.value().get() {
            all.extend(refused.fields);
        }
        all
    });
    let state = WizardState {
        draft,
        step,
        errors,
        problems,
        options: StoredValue::new(options),
        create,
        sent,
        touched: RwSignal::new(Vec::new()),
        attempted: RwSignal::new(Vec::new()),
    };
    provide_context(state);
    provide_context(checked);
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(name)) = create.value().get() {
            navigate(&format!("/scale-sets/{name}"), Default::default());
        }
    });
    // Moving to another step moves the focus to its heading (not on the first render).
    let heading = NodeRef::<leptos::html::H2>::new();
    Effect::new(move |first: Option<()>| {
        step.track();
        if first.is_some()
            && let Some(heading) = heading.get_untracked()
        {
            let _ = heading.focus();
        }
    });
    view! {
        <div class="wizard" data-wizard="ready">
            <Stepper />
            <section class="wizard-step" aria-labelledby="wizard-step-title">
                <h2 id="wizard-step-title" tabindex="-1" node_ref=heading>
                    {move || step.get().title()}
                </h2>
                {move || match step.get() {
                    Step::Basics => view! { <BasicsStep /> }.into_any(),
                    Step::Instance => view! { <InstanceStep /> }.into_any(),
                    Step::Scaling => view! { <ScalingStep /> }.into_any(),
                    Step::Networking => view! { <NetworkingStep /> }.into_any(),
                    Step::Health => view! { <HealthStep /> }.into_any(),
                    Step::Review => view! { <ReviewStep /> }.into_any(),
                }}
            </section>
            <div class="wizard-nav">
                <Show when=move || step.get().previous().is_some()>
                    <button
                        type="button"
                        on:click=move |_| {
                            if let Some(previous) = step.get().previous() {
                                state.go(previous);
                            }
                        }
                    >
                        "Previous"
                    </button>
                </Show>
                <Show when=move || step.get().next().is_some()>
                    <button
                        type="button"
                        class="primary"
                        on:click=move |_| {
                            let current = step.get();
                            if let Some(next) = current.next() {
                                state.attempt(current);
                                state.go(next);
                            }
                        }
                    >
                        "Next"
                    </button>
                </Show>
            </div>
        </div>
    }
}

/// The steps as a list of buttons; the current one has `aria-current="step"`.
#[component]
fn Stepper() -> impl IntoView {
    let state = expect_context::<WizardState>();
    view! {
        <nav class="stepper" aria-label="Wizard steps">
            <ol>
                {Step::ALL
                    .into_iter()
                    .map(|s| {
                        let problems = move || {
                            state
                                .problems
                                .with(|errors| {
                                    errors
                                        .iter()
                                        .filter(|e| {
                                            Step::of_field(&e.field) == s && state.shows(&e.field)
                                        })
                                        .count()
                                })
                        };
                        view! {
                            <li>
                                <button
                                    type="button"
                                    data-step=s.index()
                                    aria-current=move || (state.step.get() == s).then_some("step")
                                    on:click=move |_| state.go(s)
                                >
                                    {format!("{}. {}", s.index() + 1, s.title())}
                                    <Show when=move || { s != Step::Review && problems() > 0 }>
                                        <span class="step-problems">
                                            {move || format!(" ({} to fix)", problems())}
                                        </span>
                                    </Show>
                                </button>
                            </li>
                        }
                    })
                    .collect_view()}
            </ol>
        </nav>
    }
}

/// The problems about `field`, shown under its input once it was touched or its step
/// checked ([`WizardState::shows`]).
#[component]
fn FieldMessage(field: &'static str) -> impl IntoView {
    let state = expect_context::<WizardState>();
    let message = move || {
        state.problems.with(|errors| {
            errors
                .iter()
                .filter(|e| concerns(&e.field, field) && state.shows(&e.field))
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        })
    };
    view! {
        <p id=message_id(field) class="field-error" data-error=field>
            {message}
        </p>
    }
}

fn input_id(field: &str) -> String {
    format!("wz-{}", field.replace(['.', '[', ']'], "-"))
}

fn message_id(field: &str) -> String {
    format!("{}-message", input_id(field))
}

/// A text input bound to one draft field.
#[component]
fn TextField(
    label: &'static str,
    field: &'static str,
    get: fn(&Draft) -> String,
    set: fn(&mut Draft, String),
    #[prop(optional)] numeric: bool,
) -> impl IntoView {
    let state = expect_context::<WizardState>();
    let invalid = move || {
        state
            .problems
            .with(|errors| {
                errors
                    .iter()
                    .any(|e| concerns(&e.field, field) && state.shows(&e.field))
            })
            .then_some("true")
    };
    view! {
        <div class="field">
            <label for=input_id(field)>{label}</label>
            <input
                id=input_id(field)
                type="text"
                inputmode=numeric.then_some("numeric")
                autocomplete="off"
                prop:value=move || state.draft.with(get)
                on:input=move |ev| {
                    let value = event_target_value(&ev);
                    state.draft.update(|d| set(d, value));
                    state.touch(field);
                }
                on:blur=move |_| state.touch(field)
                aria-invalid=invalid
                aria-describedby=message_id(field)
            />
            <FieldMessage field />
        </div>
    }
}

/// A select bound to one draft field.
#[component]
fn SelectField(
    label: &'static str,
    field: &'static str,
    choices: Vec<(String, String)>,
    get: fn(&Draft) -> String,
    set: fn(&mut Draft, String),
) -> impl IntoView {
    let state = expect_context::<WizardState>();
    view! {
        <div class="field">
            <label for=input_id(field)>{label}</label>
            <select
                id=input_id(field)
                on:change=move |ev| {
                    let value = event_target_value(&ev);
                    state.draft.update(|d| set(d, value));
                    state.touch(field);
                }
                on:blur=move |_| state.touch(field)
                aria-describedby=message_id(field)
            >
                {choices
                    .into_iter()
                    .map(|(value, text)| {
                        let v = value.clone();
                        view! {
                            <option value=value selected=move || state.draft.with(get) == v>
                                {text}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
            <FieldMessage field />
        </div>
    }
}

/// A checkbox bound to one draft flag.
#[component]
fn CheckField(
    label: &'static str,
    field: &'static str,
    get: fn(&Draft) -> bool,
    set: fn(&mut Draft, bool),
) -> impl IntoView {
    let state = expect_context::<WizardState>();
    view! {
        <div class="field field-check">
            <input
                id=input_id(field)
                type="checkbox"
                prop:checked=move || state.draft.with(get)
                on:change=move |ev| {
                    let on = event_target_checked(&ev);
                    state.draft.update(|d| set(d, on));
                    state.touch(field);
                }
            />
            <label for=input_id(field)>{label}</label>
            <FieldMessage field />
        </div>
    }
}

fn choices(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(v, t)| (v.to_string(), t.to_string()))
        .collect()
}

#[component]
fn BasicsStep() -> impl IntoView {
    let state = expect_context::<WizardState>();
    let zones = state.options.with_value(|o| o.zones.clone());
    view! {
        <TextField label="Name" field="name" get=|d| d.name.clone() set=|d, v| d.name = v />
        <fieldset class="field" aria-describedby=message_id("zones")>
            <legend>"Zones"</legend>
            {zones
                .into_iter()
                .map(|zone| {
                    let (z1, z2) = (zone.clone(), zone.clone());
                    view! {
                        <label class="field-check">
                            <input
                                type="checkbox"
                                value=zone.clone()
                                prop:checked=move || state.draft.with(|d| d.zones.contains(&z1))
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    let zone = z2.clone();
                                    state
                                        .draft
                                        .update(|d| {
                                            d.zones.retain(|z| *z != zone);
                                            if on {
                                                d.zones.push(zone);
                                                d.zones.sort();
                                            }
                                        });
                                    state.touch("zones");
                                }
                            />
                            {format!("Zone {zone}")}
                        </label>
                    }
                })
                .collect_view()}
            <FieldMessage field="zones" />
        </fieldset>
    }
}

#[component]
fn InstanceStep() -> impl IntoView {
    let state = expect_context::<WizardState>();
    let images = state
        .options
        .with_value(|o| o.images.iter().map(|i| (i.clone(), i.clone())).collect());
    let mut sizes: Vec<(String, String)> = SIZE_PRESETS
        .iter()
        .map(|p| (p.id.to_string(), p.label()))
        .collect();
    sizes.push((CUSTOM_SIZE.to_string(), "Custom".to_string()));
    let custom = move || state.draft.with(|d| d.size == CUSTOM_SIZE);
    view! {
        <SelectField
            label="Image"
            field="model.image"
            choices=images
            get=|d| d.image.clone()
            set=|d, v| d.image = v
        />
        <SelectField
            label="Size"
            field="size"
            choices=sizes
            get=|d| d.size.clone()
            set=|d, v| d.set_size(v)
        />
        <Show when=custom>
            <TextField
                label="vCPUs"
                field="model.vcpus"
                numeric=true
                get=|d| d.vcpus.clone()
                set=|d, v| d.vcpus = v
            />
            <TextField
                label="Memory (MiB)"
                field="model.memory_mib"
                numeric=true
                get=|d| d.memory_mib.clone()
                set=|d, v| d.memory_mib = v
            />
        </Show>
        <TextField
            label="Disk (GiB)"
            field="model.disk_gib"
            numeric=true
            get=|d| d.disk_gib.clone()
            set=|d, v| d.disk_gib = v
        />
        <div class="field">
            <label for="wz-model-user_data">"User data (cloud-init)"</label>
            <textarea
                id="wz-model-user_data"
                rows="6"
                prop:value=move || state.draft.with(|d| d.user_data.clone())
                on:input=move |ev| {
                    let value = event_target_value(&ev);
                    state.draft.update(|d| d.user_data = value);
                    state.touch("model.user_data");
                }
                on:blur=move |_| state.touch("model.user_data")
                aria-describedby=message_id("model.user_data")
            ></textarea>
            <FieldMessage field="model.user_data" />
        </div>
    }
}

#[component]
fn ScalingStep() -> impl IntoView {
    let state = expect_context::<WizardState>();
    let autoscale = move || state.draft.with(|d| d.scaling == SCALING_AUTOSCALE);
    view! {
        <SelectField
            label="How the capacity is set"
            field="scaling"
            choices=choices(
                &[
                    (SCALING_MANUAL, "Manual: a count you set"),
                    (SCALING_AUTOSCALE, "Autoscale on CPU"),
                ],
            )
            get=|d| d.scaling.clone()
            set=|d, v| d.scaling = v
        />
        <Show
            when=autoscale
            fallback=|| {
                view! {
                    <TextField
                        label="Initial capacity"
                        field="capacity"
                        numeric=true
                        get=|d| d.capacity.clone()
                        set=|d, v| d.capacity = v
                    />
                }
            }
        >
            <p class="hint" data-wizard="autoscale">
                "CPU above 70 % for 5 minutes adds an instance; below 30 % for 10 minutes removes one (5-minute cooldowns). The set starts at the default count. Change the rules later on the Scaling tab."
            </p>
            <TextField
                label="Minimum instances"
                field=AUTOSCALE_MINIMUM
                numeric=true
                get=|d| d.autoscale_minimum.clone()
                set=|d, v| d.autoscale_minimum = v
            />
            <TextField
                label="Maximum instances"
                field=AUTOSCALE_MAXIMUM
                numeric=true
                get=|d| d.autoscale_maximum.clone()
                set=|d, v| d.autoscale_maximum = v
            />
            <TextField
                label="Default instances"
                field=AUTOSCALE_DEFAULT
                numeric=true
                get=|d| d.autoscale_default.clone()
                set=|d, v| d.autoscale_default = v
            />
        </Show>
        <SelectField
            label="Scale-in policy"
            field="scale_in_policy.rules"
            choices=choices(
                &[
                    ("default", "Default (balance zones, then fault domains)"),
                    ("newest_vm", "Newest VM first"),
                    ("oldest_vm", "Oldest VM first"),
                ],
            )
            get=|d| d.scale_in_rule.clone()
            set=|d, v| d.scale_in_rule = v
        />
        <CheckField
            label="Overprovision (create 20 % extra, then delete the surplus)"
            field="overprovision"
            get=|d| d.overprovision
            set=|d, v| d.overprovision = v
        />
        <CheckField
            label="Protect new instances from scale-in"
            field="new_instances_protected_from_scale_in"
            get=|d| d.protect_new
            set=|d, v| d.protect_new = v
        />
    }
}

#[component]
fn NetworkingStep() -> impl IntoView {
    let state = expect_context::<WizardState>();
    view! {
        <CheckField
            label="Add a load balancer frontend"
            field="load_balancer"
            get=|d| d.lb_enabled
            set=|d, v| d.lb_enabled = v
        />
        <Show when=move || state.draft.with(|d| d.lb_enabled)>
            <SelectField
                label="Protocol"
                field="load_balancer.frontends[0].protocol"
                choices=choices(&[("http", "HTTP"), ("tcp", "TCP")])
                get=|d| d.lb_protocol.clone()
                set=|d, v| d.lb_protocol = v
            />
            <TextField
                label="Frontend port"
                field="load_balancer.frontends[0].port"
                numeric=true
                get=|d| d.lb_port.clone()
                set=|d, v| d.lb_port = v
            />
            <TextField
                label="Backend port (empty: the app port)"
                field="load_balancer.frontends[0].backend_port"
                numeric=true
                get=|d| d.lb_backend_port.clone()
                set=|d, v| d.lb_backend_port = v
            />
        </Show>
    }
}

#[component]
fn HealthStep() -> impl IntoView {
    let state = expect_context::<WizardState>();
    view! {
        <CheckField
            label="Health probe"
            field="health_probe"
            get=|d| d.probe_enabled
            set=|d, v| d.probe_enabled = v
        />
        <Show when=move || state.draft.with(|d| d.probe_enabled)>
            <SelectField
                label="Probe protocol"
                field="health_probe.protocol"
                choices=choices(&[("http", "HTTP"), ("https", "HTTPS"), ("tcp", "TCP")])
                get=|d| d.probe_protocol.clone()
                set=|d, v| d.probe_protocol = v
            />
            <TextField
                label="Probe port"
                field="health_probe.port"
                numeric=true
                get=|d| d.probe_port.clone()
                set=|d, v| d.probe_port = v
            />
            <TextField
                label="Probe path"
                field="health_probe.path"
                get=|d| d.probe_path.clone()
                set=|d, v| d.probe_path = v
            />
            <TextField
                label="Interval (seconds)"
                field="health_probe.interval_seconds"
                numeric=true
                get=|d| d.probe_interval.clone()
                set=|d, v| d.probe_interval = v
            />
            <TextField
                label="Timeout (seconds)"
                field="health_probe.timeout_seconds"
                numeric=true
                get=|d| d.probe_timeout.clone()
                set=|d, v| d.probe_timeout = v
            />
            <TextField
                label="Healthy threshold"
                field="health_probe.healthy_threshold"
                numeric=true
                get=|d| d.probe_healthy.clone()
                set=|d, v| d.probe_healthy = v
            />
            <TextField
                label="Unhealthy threshold"
                field="health_probe.unhealthy_threshold"
                numeric=true
                get=|d| d.probe_unhealthy.clone()
                set=|d, v| d.probe_unhealthy = v
            />
        </Show>
        <CheckField
            label="Automatic repairs"
            field="automatic_repairs.enabled"
            get=|d| d.repairs_enabled
            set=|d, v| d.repairs_enabled = v
        />
        <Show when=move || state.draft.with(|d| d.repairs_enabled)>
            <TextField
                label="Repair grace period (seconds)"
                field="automatic_repairs.grace_period_seconds"
                numeric=true
                get=|d| d.repairs_grace.clone()
                set=|d, v| d.repairs_grace = v
            />
            <SelectField
                label="Repair action"
                field="automatic_repairs.repair_action"
                choices=choices(
                    &[("replace", "Replace"), ("restart", "Restart"), ("reimage", "Reimage")],
                )
                get=|d| d.repairs_action.clone()
                set=|d, v| d.repairs_action = v
            />
        </Show>
        <SelectField
            label="Upgrade policy"
            field="upgrade_policy.mode"
            choices=choices(
                &[("manual", "Manual"), ("automatic", "Automatic"), ("rolling", "Rolling")],
            )
            get=|d| d.upgrade_mode.clone()
            set=|d, v| d.upgrade_mode = v
        />
    }
}

#[component]
fn ReviewStep() -> impl IntoView {
    let state = expect_context::<WizardState>();
    let checked = expect_context::<Memo<(ScaleSetSpec, Vec<FieldError>)>>();
    let json = move || checked.with(|(spec, _)| pretty_json(spec));
    let create = state.create;
    let server_error = move || create.value().get().and_then(Result::err);
    let blocked = move || !state.errors.with(Vec::is_empty) || create.pending().get();
    let summary = move || {
        checked.with(|(spec, _)| {
            let size = format!(
                "{} vCPU · {} MiB · {} GiB disk",
                spec.model.vcpus, spec.model.memory_mib, spec.model.disk_gib
            );
            vec![
                (
                    Step::Basics,
                    format!("{} in zones {}", spec.name, spec.zones.join(", ")),
                ),
                (Step::Instance, format!("{} · {size}", spec.model.image)),
                (
                    Step::Scaling,
                    match spec.autoscale.as_ref().and_then(|a| a.profiles.first()) {
                        Some(p) => {
                            format!(
                                "autoscale on CPU, {}–{} instances, starting at {}",
                                p.capacity.minimum, p.capacity.maximum, p.capacity.default,
                            )
                        }
                        None => format!("capacity {}", spec.capacity),
                    },
                ),
                (
                    Step::Networking,
                    match &spec.load_balancer {
                        Some(lb) => lb
                            .frontends
                            .iter()
                            .map(|f| format!("{:?} frontend on port {}", f.protocol, f.port))
                            .collect::<Vec<_>>()
                            .join(", "),
                        None => "no load balancer".into(),
                    },
                ),
                (
                    Step::Health,
                    format!(
                        "{} · upgrades {:?}",
                        if spec.health_probe.is_some() {
                            "health probe"
                        } else {
                            "no health probe"
                        },
                        spec.upgrade_policy.mode,
                    ),
                ),
            ]
        })
    };
    view! {
        <dl class="wizard-summary">
            {move || {
                summary()
                    .into_iter()
                    .map(|(s, text)| {
                        view! {
                            <dt>{s.title()}</dt>
                            <dd data-summary=s
                                .index()>
                                {text} " "
                                <button type="button" class="link" on:click=move |_| state.go(s)>
                                    {format!("Edit {}", s.title())}
                                </button>
                            </dd>
                        }
                    })
                    .collect_view()
            }}
        </dl>
        <Show when=move || !state.problems.with(Vec::is_empty)>
            <h3>"Problems to fix"</h3>
            // The alert wraps the list: a list with a role is no longer a list.
            <div role="alert">
                <ul class="wizard-problems">
                    {move || {
                        state
                            .problems
                            .get()
                            .into_iter()
                            .map(|e| {
                                let s = Step::of_field(&e.field);
                                view! {
                                    <li data-problem=e.field.clone()>
                                        <code>{e.field.clone()}</code>
                                        {format!(": {} ", e.message)}
                                        <button
                                            type="button"
                                            class="link"
                                            on:click=move |_| state.go(s)
                                        >
                                            {format!("Go to {}", s.title())}
                                        </button>
                                    </li>
                                }
                            })
                            .collect_view()
                    }}
                </ul>
            </div>
        </Show>
        <h3>"Request"</h3>
        // Focusable, so that it scrolls from the keyboard too.
        <pre class="wizard-json" tabindex="0" aria-label="JSON request">
            {json}
        </pre>
        <p class="field-error" role="alert" data-error="create">
            {move || {
                server_error()
                    .map(|e| {
                        if e.fields.is_empty() {
                            e.message
                        } else {
                            e.fields
                                .iter()
                                .map(|f| format!("{}: {}", f.field, f.message))
                                .collect::<Vec<_>>()
                                .join("; ")
                        }
                    })
            }}
        </p>
        <button
            type="button"
            class="primary"
            disabled=blocked
            on:click=move |_| {
                let spec = checked.with_untracked(|(spec, _)| spec.clone());
                state.sent.set(Some(spec.clone()));
                create.dispatch(CreateScaleSet { spec });
            }
        >
            "Create"
        </button>
    }
}
