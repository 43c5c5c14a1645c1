//! Around the editor's buttons: the stored setting in words before the page hydrates,
//! the warnings, every problem with its path, and what the last Check or Save said.

use leptos::prelude::*;

use super::super::super::Live;
use super::super::setting_summary::SettingSummary;
use super::Editor;

/// Before the page hydrates (and without JavaScript): the stored setting in words.
#[component]
pub(super) fn StoredSummary(editor: Editor, live: Live) -> impl IntoView {
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
pub(super) fn Warnings(
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

/// What the last Check or Save said.
#[component]
pub(super) fn Status(editor: Editor) -> impl IntoView {
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
pub(super) fn Problems(editor: Editor) -> impl IntoView {
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
