//! The setting as JSON in a plain form, which works without JavaScript.

use leptos::form::ActionForm;
use leptos::prelude::*;

use super::super::super::Live;
use super::Editor;
use crate::api::autoscale::SaveAutoscaleJson;
use crate::components::csrf_field::CsrfField;
use crate::viewer::may;

/// The setting as JSON in a plain form: Check and Save work without JavaScript. With it,
/// the text follows the editor, and an answer updates the editor.
#[component]
pub(super) fn JsonEditor(editor: Editor, live: Live) -> impl IntoView {
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
