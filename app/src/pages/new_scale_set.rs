use flotilla_domain::{FieldError, ScaleSetSpec};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_navigate;

use crate::api::wizard::{CreateScaleSet, get_wizard_options};
use crate::components::breadcrumbs::Breadcrumbs;
use crate::components::error_panel::ErrorPanel;
use crate::components::field::{
    self, CheckField, FieldMessage, NumberField, SelectField, TextField,
};
use crate::components::permission_note::PermissionNote;
use crate::viewer::may;
use crate::wizard::{
    AUTOSCALE_DEFAULT, AUTOSCALE_MAXIMUM, AUTOSCALE_MINIMUM, CUSTOM_SIZE, Draft, SCALING_AUTOSCALE,
    SCALING_MANUAL, SIZE_PRESETS, Step, WizardOptions, pretty_json,
};
use flotilla_domain::validation::concerns;

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
    /// The problems shown yet ([`shows`]): what the fields are given.
    shown: Signal<Vec<FieldError>>,
}

impl WizardState {
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

/// Whether the problem about `error_field` is shown yet: its field was touched, or its
/// step was left with Next, or Review + create was opened (as Azure does). Until then a
/// new draft says nothing about fields nobody has filled in yet.
fn shows(
    touched: RwSignal<Vec<&'static str>>,
    attempted: RwSignal<Vec<Step>>,
    error_field: &str,
) -> bool {
    touched.with(|t| t.iter().any(|f| concerns(error_field, f)))
        || attempted.with(|a| a.contains(&Step::of_field(error_field)))
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
    let touched = RwSignal::new(Vec::new());
    let attempted = RwSignal::new(Vec::new());
    let shown = Memo::new(move |_| {
        problems.with(|all| {
            all.iter()
                .filter(|e| shows(touched, attempted, &e.field))
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    let state = WizardState {
        draft,
        step,
        errors,
        problems,
        options: StoredValue::new(options),
        create,
        sent,
        touched,
        attempted,
        shown: shown.into(),
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
                                .shown
                                .with(|errors| {
                                    errors.iter().filter(|e| Step::of_field(&e.field) == s).count()
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

fn input_id(field: &str) -> String {
    field::input_id("wz", field)
}

/// The wizard's fields: the shared field components bound to one field of the draft.
/// Each shows its problems once it was touched or its step checked.
impl WizardState {
    fn value<T: Send + Sync + 'static>(self, get: fn(&Draft) -> T) -> Signal<T> {
        Signal::derive(move || self.draft.with(get))
    }

    fn setter<T: 'static>(self, field: &'static str, set: fn(&mut Draft, T)) -> Callback<T> {
        Callback::new(move |value| {
            self.draft.update(|d| set(d, value));
            self.touch(field);
        })
    }

    fn toucher(self, field: &'static str) -> Callback<()> {
        Callback::new(move |()| self.touch(field))
    }

    fn text(
        self,
        label: &'static str,
        field: &'static str,
        get: fn(&Draft) -> String,
        set: fn(&mut Draft, String),
    ) -> impl IntoView {
        view! {
            <TextField
                id=input_id(field)
                label
                path=field
                value=self.value(get)
                on_input=self.setter(field, set)
                on_touch=self.toucher(field)
                problems=self.shown
            />
        }
    }

    fn number(
        self,
        label: &'static str,
        field: &'static str,
        get: fn(&Draft) -> String,
        set: fn(&mut Draft, String),
    ) -> impl IntoView {
        view! {
            <NumberField
                id=input_id(field)
                label
                path=field
                value=self.value(get)
                on_input=self.setter(field, set)
                on_touch=self.toucher(field)
                problems=self.shown
            />
        }
    }

    fn select(
        self,
        label: &'static str,
        field: &'static str,
        choices: Vec<(String, String)>,
        get: fn(&Draft) -> String,
        set: fn(&mut Draft, String),
    ) -> impl IntoView {
        view! {
            <SelectField
                id=input_id(field)
                label
                path=field
                choices
                value=self.value(get)
                on_change=self.setter(field, set)
                on_touch=self.toucher(field)
                problems=self.shown
            />
        }
    }

    fn check(
        self,
        label: &'static str,
        field: &'static str,
        get: fn(&Draft) -> bool,
        set: fn(&mut Draft, bool),
    ) -> impl IntoView {
        view! {
            <CheckField
                id=input_id(field)
                label
                path=field
                checked=self.value(get)
                on_change=self.setter(field, set)
                problems=self.shown
            />
        }
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
        {state.text("Name", "name", |d| d.name.clone(), |d, v| d.name = v)}
        <fieldset class="field" aria-describedby=field::message_id(&input_id("zones"))>
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
            <FieldMessage
                path="zones"
                problems=state.shown
                id=field::message_id(&input_id("zones"))
            />
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
        {state.select("Image", "model.image", images, |d| d.image.clone(), |d, v| d.image = v)}
        {state.select("Size", "size", sizes, |d| d.size.clone(), |d, v| d.set_size(v))}
        <Show when=custom>
            {state.number("vCPUs", "model.vcpus", |d| d.vcpus.clone(), |d, v| d.vcpus = v)}
            {state
                .number(
                    "Memory (MiB)",
                    "model.memory_mib",
                    |d| d.memory_mib.clone(),
                    |d, v| d.memory_mib = v,
                )}
        </Show>
        {state
            .number("Disk (GiB)", "model.disk_gib", |d| d.disk_gib.clone(), |d, v| d.disk_gib = v)}
        <TextField
            id=input_id("model.user_data")
            label="User data (cloud-init)"
            path="model.user_data"
            rows=6
            value=state.value(|d| d.user_data.clone())
            on_input=state.setter("model.user_data", |d, v| d.user_data = v)
            on_touch=state.toucher("model.user_data")
            problems=state.shown
        />
    }
}

#[component]
fn ScalingStep() -> impl IntoView {
    let state = expect_context::<WizardState>();
    let autoscale = move || state.draft.with(|d| d.scaling == SCALING_AUTOSCALE);
    view! {
        {state
            .select(
                "How the capacity is set",
                "scaling",
                choices(
                    &[
                        (SCALING_MANUAL, "Manual: a count you set"),
                        (SCALING_AUTOSCALE, "Autoscale on CPU"),
                    ],
                ),
                |d| d.scaling.clone(),
                |d, v| d.scaling = v,
            )}
        <Show
            when=autoscale
            fallback=move || {
                view! {
                    {state
                        .number(
                            "Initial capacity",
                            "capacity",
                            |d| d.capacity.clone(),
                            |d, v| d.capacity = v,
                        )}
                }
            }
        >
            <p class="hint" data-wizard="autoscale">
                "CPU above 70 % for 5 minutes adds an instance; below 30 % for 10 minutes removes one (5-minute cooldowns). The set starts at the default count. Change the rules later on the Scaling tab."
            </p>
            {state
                .number(
                    "Minimum instances",
                    AUTOSCALE_MINIMUM,
                    |d| d.autoscale_minimum.clone(),
                    |d, v| d.autoscale_minimum = v,
                )}
            {state
                .number(
                    "Maximum instances",
                    AUTOSCALE_MAXIMUM,
                    |d| d.autoscale_maximum.clone(),
                    |d, v| d.autoscale_maximum = v,
                )}
            {state
                .number(
                    "Default instances",
                    AUTOSCALE_DEFAULT,
                    |d| d.autoscale_default.clone(),
                    |d, v| d.autoscale_default = v,
                )}
        </Show>
        {state
            .select(
                "Scale-in policy",
                "scale_in_policy.rules",
                choices(
                    &[
                        ("default", "Default (balance zones, then fault domains)"),
                        ("newest_vm", "Newest VM first"),
                        ("oldest_vm", "Oldest VM first"),
                    ],
                ),
                |d| d.scale_in_rule.clone(),
                |d, v| d.scale_in_rule = v,
            )}
        {state
            .check(
                "Overprovision (create 20 % extra, then delete the surplus)",
                "overprovision",
                |d| d.overprovision,
                |d, v| d.overprovision = v,
            )}
        {state
            .check(
                "Protect new instances from scale-in",
                "new_instances_protected_from_scale_in",
                |d| d.protect_new,
                |d, v| d.protect_new = v,
            )}
    }
}

#[component]
fn NetworkingStep() -> impl IntoView {
    let state = expect_context::<WizardState>();
    view! {
        {state
            .check(
                "Add a load balancer frontend",
                "load_balancer",
                |d| d.lb_enabled,
                |d, v| d.lb_enabled = v,
            )}
        <Show when=move || {
            state.draft.with(|d| d.lb_enabled)
        }>
            {state
                .select(
                    "Protocol",
                    "load_balancer.frontends[0].protocol",
                    choices(&[("http", "HTTP"), ("tcp", "TCP")]),
                    |d| d.lb_protocol.clone(),
                    |d, v| d.lb_protocol = v,
                )}
            {state
                .number(
                    "Frontend port",
                    "load_balancer.frontends[0].port",
                    |d| d.lb_port.clone(),
                    |d, v| d.lb_port = v,
                )}
            {state
                .number(
                    "Backend port (empty: the app port)",
                    "load_balancer.frontends[0].backend_port",
                    |d| d.lb_backend_port.clone(),
                    |d, v| d.lb_backend_port = v,
                )}
        </Show>
    }
}

#[component]
fn HealthStep() -> impl IntoView {
    let state = expect_context::<WizardState>();
    view! {
        {state
            .check("Health probe", "health_probe", |d| d.probe_enabled, |d, v| d.probe_enabled = v)}
        <Show when=move || {
            state.draft.with(|d| d.probe_enabled)
        }>
            {state
                .select(
                    "Probe protocol",
                    "health_probe.protocol",
                    choices(&[("http", "HTTP"), ("https", "HTTPS"), ("tcp", "TCP")]),
                    |d| d.probe_protocol.clone(),
                    |d, v| d.probe_protocol = v,
                )}
            {state
                .number(
                    "Probe port",
                    "health_probe.port",
                    |d| d.probe_port.clone(),
                    |d, v| d.probe_port = v,
                )}
            {state
                .text(
                    "Probe path",
                    "health_probe.path",
                    |d| d.probe_path.clone(),
                    |d, v| d.probe_path = v,
                )}
            {state
                .number(
                    "Interval (seconds)",
                    "health_probe.interval_seconds",
                    |d| d.probe_interval.clone(),
                    |d, v| d.probe_interval = v,
                )}
            {state
                .number(
                    "Timeout (seconds)",
                    "health_probe.timeout_seconds",
                    |d| d.probe_timeout.clone(),
                    |d, v| d.probe_timeout = v,
                )}
            {state
                .number(
                    "Healthy threshold",
                    "health_probe.healthy_threshold",
                    |d| d.probe_healthy.clone(),
                    |d, v| d.probe_healthy = v,
                )}
            {state
                .number(
                    "Unhealthy threshold",
                    "health_probe.unhealthy_threshold",
                    |d| d.probe_unhealthy.clone(),
                    |d, v| d.probe_unhealthy = v,
                )}
        </Show>
        {state
            .check(
                "Automatic repairs",
                "automatic_repairs.enabled",
                |d| d.repairs_enabled,
                |d, v| d.repairs_enabled = v,
            )}
        <Show when=move || {
            state.draft.with(|d| d.repairs_enabled)
        }>
            {state
                .number(
                    "Repair grace period (seconds)",
                    "automatic_repairs.grace_period_seconds",
                    |d| d.repairs_grace.clone(),
                    |d, v| d.repairs_grace = v,
                )}
            {state
                .select(
                    "Repair action",
                    "automatic_repairs.repair_action",
                    choices(
                        &[("replace", "Replace"), ("restart", "Restart"), ("reimage", "Reimage")],
                    ),
                    |d| d.repairs_action.clone(),
                    |d, v| d.repairs_action = v,
                )}
        </Show>
        {state
            .select(
                "Upgrade policy",
                "upgrade_policy.mode",
                choices(
                    &[("manual", "Manual"), ("automatic", "Automatic"), ("rolling", "Rolling")],
                ),
                |d| d.upgrade_mode.clone(),
                |d, v| d.upgrade_mode = v,
            )}
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
