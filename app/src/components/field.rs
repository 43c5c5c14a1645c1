//! The form fields of every form in the portal: a text, a number, a select and a checkbox,
//! each with its label, an optional hint and the line of its problems ([`FieldMessage`]).
//!
//! They are context-free: the value comes in as a `Signal`, what the person does goes out
//! through a `Callback`, and the problems come in as a signal of the form's problems, of
//! which a field shows those about its path (the domain's [`concerns`]). Which problems a
//! form shows yet — once a field was touched, after Next or Save — is the form's choice:
//! it passes only those, and hears of a touch through `on_touch`.
//!
//! The markup the browser tests and the accessibility scan rely on: `label for=` the
//! input's id, `aria-invalid="true"` while the field has a problem, `aria-describedby`
//! the problem line's id (`{id}-message`), the line's `data-error` (the field's path), and
//! `name=` where a plain form posts the field (the value is also rendered as an attribute,
//! so the form works before and without JavaScript).

use flotilla_domain::FieldError;
use flotilla_domain::validation::concerns;
use leptos::prelude::*;

/// The id of the input for `path` in a form whose ids start with `prefix`
/// (`as`, `profiles[0].name` → `as-profiles-0--name`).
pub fn input_id(prefix: &str, path: &str) -> String {
    format!("{prefix}-{}", path.replace(['.', '[', ']'], "-"))
}

/// The id of the problem line of the input `id`.
pub fn message_id(id: &str) -> String {
    format!("{id}-message")
}

/// The messages of `problems` about `path` (and inside it, unless `exact`), joined.
pub fn messages(problems: &[FieldError], path: &str, exact: bool) -> String {
    problems
        .iter()
        .filter(|e| {
            if exact {
                e.field == path
            } else {
                concerns(&e.field, path)
            }
        })
        .map(|e| e.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `aria-invalid` of the input for `path`: `true` while a problem is about it.
fn invalid(
    problems: Signal<Vec<FieldError>>,
    path: String,
) -> impl Fn() -> Option<&'static str> + Send + Sync + 'static {
    move || {
        problems
            .with(|p| p.iter().any(|e| concerns(&e.field, &path)))
            .then_some("true")
    }
}

/// The line of the problems about `path` (empty, and hidden, while there are none).
#[component]
pub fn FieldMessage(
    /// The field's path, as the domain's validation and the server name it.
    #[prop(into)]
    path: String,
    #[prop(into)] problems: Signal<Vec<FieldError>>,
    /// The line's id, for an input's `aria-describedby`.
    #[prop(optional, into)]
    id: Option<String>,
    /// Only the problems about `path` itself, not those inside it (they show at their
    /// own inputs).
    #[prop(optional)]
    exact: bool,
) -> impl IntoView {
    let shown = path.clone();
    view! {
        <p id=id class="field-error" data-error=path>
            {move || problems.with(|p| messages(p, &shown, exact))}
        </p>
    }
}

/// What a text or number input is made of.
struct Input {
    id: String,
    name: Option<String>,
    label: String,
    path: String,
    value: Signal<String>,
    on_input: Option<Callback<String>>,
    on_touch: Option<Callback<()>>,
    problems: Signal<Vec<FieldError>>,
    hint: Option<String>,
    quiet: bool,
    kind: &'static str,
    inputmode: Option<&'static str>,
    size: Option<u32>,
    rows: Option<u32>,
    hidden: MaybeProp<bool>,
}

fn input_view(f: Input) -> impl IntoView {
    let Input {
        id,
        name,
        label,
        path,
        value,
        on_input,
        on_touch,
        problems,
        hint,
        quiet,
        kind,
        inputmode,
        size,
        rows,
        hidden,
    } = f;
    let message = message_id(&id);
    let typed = move |ev: leptos::ev::Event| {
        if let Some(on_input) = on_input {
            on_input.run(event_target_value(&ev));
        }
        if let Some(touch) = on_touch {
            touch.run(());
        }
    };
    let left = move |_| {
        if let Some(touch) = on_touch {
            touch.run(());
        }
    };
    let control = match rows {
        Some(rows) => view! {
            <textarea
                id=id.clone()
                name=name
                rows=rows
                prop:value=move || value.get()
                on:input=typed
                on:blur=left
                aria-invalid=invalid(problems, path.clone())
                aria-describedby=message.clone()
            >
                {value.get_untracked()}
            </textarea>
        }
        .into_any(),
        None => view! {
            <input
                id=id.clone()
                name=name
                type=kind
                inputmode=inputmode
                autocomplete="off"
                size=size
                value=move || value.get()
                prop:value=move || value.get()
                on:input=typed
                on:blur=left
                aria-invalid=invalid(problems, path.clone())
                aria-describedby=message.clone()
            />
        }
        .into_any(),
    };
    view! {
        <div class="field" hidden=move || hidden.get().unwrap_or(false)>
            <label for=id class=quiet.then_some("visually-hidden")>
                {label}
            </label>
            {control}
            {hint.map(|h| view! { <p class="hint">{h}</p> })}
            <FieldMessage path problems id=message />
        </div>
    }
}

/// A text input (or, with `rows`, a text area) with its label and problems.
#[component]
pub fn TextField(
    #[prop(into)] id: String,
    #[prop(into)] label: String,
    /// The field's path, as the domain's validation and the server name it.
    #[prop(into)]
    path: String,
    /// The value as typed; the input follows it when it changes elsewhere.
    #[prop(into)]
    value: Signal<String>,
    /// What the person types (none: a plain form's field, read when posted).
    #[prop(optional, into)]
    on_input: Option<Callback<String>>,
    /// The form's problems (those it shows yet); the field shows those about `path`.
    #[prop(into)]
    problems: Signal<Vec<FieldError>>,
    /// The name a plain form posts the field under.
    #[prop(optional, into)]
    name: Option<String>,
    /// The person changed or left the field.
    #[prop(optional, into)]
    on_touch: Option<Callback<()>>,
    #[prop(optional, into)] hint: Option<String>,
    /// The label is for screen readers only (a table's column says it).
    #[prop(optional)]
    quiet: bool,
    /// `text` unless given (`time`, `datetime-local`).
    #[prop(optional)]
    kind: Option<&'static str>,
    #[prop(optional)] size: Option<u32>,
    /// A text area of this many rows.
    #[prop(optional)]
    rows: Option<u32>,
    #[prop(optional, into)] hidden: MaybeProp<bool>,
) -> impl IntoView {
    input_view(Input {
        id,
        name,
        label,
        path,
        value,
        on_input,
        on_touch,
        problems,
        hint,
        quiet,
        kind: kind.unwrap_or("text"),
        inputmode: None,
        size,
        rows,
        hidden,
    })
}

/// A number typed as text (so a half-typed value survives and the domain's parser names
/// what is wrong with it), with its label and problems.
#[component]
pub fn NumberField(
    #[prop(into)] id: String,
    #[prop(into)] label: String,
    /// The field's path, as the domain's validation and the server name it.
    #[prop(into)]
    path: String,
    /// The value as typed; the input follows it when it changes elsewhere (a save).
    #[prop(into)]
    value: Signal<String>,
    /// What the person types (none: a plain form's field, read when posted).
    #[prop(optional, into)]
    on_input: Option<Callback<String>>,
    /// The form's problems (those it shows yet); the field shows those about `path`.
    #[prop(into)]
    problems: Signal<Vec<FieldError>>,
    /// The name a plain form posts the field under.
    #[prop(optional, into)]
    name: Option<String>,
    /// The person changed or left the field.
    #[prop(optional, into)]
    on_touch: Option<Callback<()>>,
    #[prop(optional, into)] hint: Option<String>,
    /// The label is for screen readers only (a table's column says it).
    #[prop(optional)]
    quiet: bool,
    /// A decimal number (the keyboard offers a point), not a whole one.
    #[prop(optional)]
    decimal: bool,
    #[prop(optional)] size: Option<u32>,
    #[prop(optional, into)] hidden: MaybeProp<bool>,
) -> impl IntoView {
    input_view(Input {
        id,
        name,
        label,
        path,
        value,
        on_input,
        on_touch,
        problems,
        hint,
        quiet,
        kind: "text",
        inputmode: Some(if decimal { "decimal" } else { "numeric" }),
        size,
        rows: None,
        hidden,
    })
}

/// A select (`choices`: value and label) with its label and problems.
#[component]
pub fn SelectField(
    #[prop(into)] id: String,
    #[prop(into)] label: String,
    /// The field's path, as the domain's validation and the server name it.
    #[prop(into)]
    path: String,
    choices: Vec<(String, String)>,
    /// The value picked.
    #[prop(into)]
    value: Signal<String>,
    /// What the person picks (none: a plain form's field, read when posted).
    #[prop(optional, into)]
    on_change: Option<Callback<String>>,
    /// The form's problems (those it shows yet); the field shows those about `path`.
    #[prop(into)]
    problems: Signal<Vec<FieldError>>,
    /// The name a plain form posts the field under.
    #[prop(optional, into)]
    name: Option<String>,
    /// The person changed or left the field.
    #[prop(optional, into)]
    on_touch: Option<Callback<()>>,
    /// The label is for screen readers only (a table's column says it).
    #[prop(optional)]
    quiet: bool,
) -> impl IntoView {
    let message = message_id(&id);
    let touch = move || {
        if let Some(touch) = on_touch {
            touch.run(());
        }
    };
    view! {
        <div class="field">
            <label for=id.clone() class=quiet.then_some("visually-hidden")>
                {label}
            </label>
            <select
                id=id
                name=name
                on:change=move |ev| {
                    if let Some(on_change) = on_change {
                        on_change.run(event_target_value(&ev));
                    }
                    touch();
                }
                on:blur=move |_| touch()
                prop:value=move || value.get()
                aria-invalid=invalid(problems, path.clone())
                aria-describedby=message.clone()
            >
                {choices
                    .into_iter()
                    .map(|(choice, text)| {
                        let v = choice.clone();
                        view! {
                            <option value=choice selected=move || value.with(|c| *c == v)>
                                {text}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
            <FieldMessage path problems id=message />
        </div>
    }
}

/// A checkbox with its label and problems.
#[component]
pub fn CheckField(
    #[prop(into)] id: String,
    #[prop(into)] label: String,
    /// The field's path, as the domain's validation and the server name it.
    #[prop(into)]
    path: String,
    #[prop(into)] checked: Signal<bool>,
    /// What the person ticks (none: a plain form's box, read when posted).
    #[prop(optional, into)]
    on_change: Option<Callback<bool>>,
    /// The form's problems (those it shows yet); the box shows those about `path` itself
    /// (a box that turns a section on leaves the section's problems to its inputs).
    #[prop(into)]
    problems: Signal<Vec<FieldError>>,
    /// The name a plain form posts the box under (present, `on`, when ticked).
    #[prop(optional, into)]
    name: Option<String>,
    /// The person changed the box.
    #[prop(optional, into)]
    on_touch: Option<Callback<()>>,
    #[prop(optional, into)] hidden: MaybeProp<bool>,
) -> impl IntoView {
    let message = message_id(&id);
    view! {
        <div class="field field-check" hidden=move || hidden.get().unwrap_or(false)>
            <input
                id=id.clone()
                name=name
                type="checkbox"
                checked=move || checked.get()
                prop:checked=move || checked.get()
                on:change=move |ev| {
                    if let Some(on_change) = on_change {
                        on_change.run(event_target_checked(&ev));
                    }
                    if let Some(touch) = on_touch {
                        touch.run(());
                    }
                }
                aria-describedby=message.clone()
            />
            <label for=id>{label}</label>
            <FieldMessage path problems id=message exact=true />
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(field: &str, message: &str) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }

    #[test]
    fn a_field_shows_the_problems_about_its_path() {
        let problems = [
            problem("zones", "pick at least one zone"),
            problem("zones[1]", "unknown zone \"9\""),
            problem("zones2", "not this one"),
            problem("name", "must not be empty"),
        ];
        assert_eq!(
            messages(&problems, "zones", false),
            "pick at least one zone; unknown zone \"9\""
        );
        assert_eq!(messages(&problems, "zones", true), "pick at least one zone");
        assert_eq!(messages(&problems, "model", false), "");
        assert_eq!(input_id("as", "profiles[0].name"), "as-profiles-0--name");
        assert_eq!(message_id("wz-name"), "wz-name-message");
    }

    /// The markup the browser tests and the accessibility scan rely on.
    #[cfg(feature = "ssr")]
    #[test]
    fn a_field_renders_its_label_name_and_problem() {
        let html = Owner::new().with(|| {
            let problems = Signal::stored(vec![problem("model.vcpus", "must be a whole number")]);
            view! {
                <NumberField
                    id="model-vcpus"
                    name="input[vcpus]"
                    label="vCPUs"
                    path="model.vcpus"
                    value=Signal::stored("two".to_string())
                    problems
                />
            }
            .to_html()
        });
        for part in [
            r#"<label for="model-vcpus""#,
            r#"id="model-vcpus""#,
            r#"name="input[vcpus]""#,
            r#"value="two""#,
            r#"aria-invalid="true""#,
            r#"aria-describedby="model-vcpus-message""#,
            r#"id="model-vcpus-message""#,
            r#"data-error="model.vcpus""#,
            "must be a whole number",
        ] {
            assert!(html.contains(part), "{part} in {html}");
        }
    }
}
