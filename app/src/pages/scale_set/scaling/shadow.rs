//! The shadow setting, when the set has one: a setting saved beside the live one, evaluated
//! on the same metrics at every autoscale evaluation, its decisions recorded and never
//! acted on. The panel shows it in words; its capacity beside the live capacity over the
//! last hour, or since the set was made (the set's capacity metric against what each of the
//! shadow's decisions asked for); both settings' scores over that time (both replayed over
//! the recorded load); and, as plain forms that work without JavaScript, Promote (behind a
//! confirmation) and Remove shadow.

use std::time::Duration;

use flotilla_domain::autoscale::setting::AutoscaleSetting;
use leptos::form::ActionForm;
use leptos::prelude::*;

use super::super::{Live, use_every_visible};
use super::scores::Scores;
use super::setting_summary::SettingSummary;
use crate::api::lab::{ChangeShadow, read_shadow};
use crate::chart::Unit;
use crate::components::chart::Chart;
use crate::components::confirm_action::ConfirmAction;
use crate::components::csrf_field::CsrfField;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::components::permission_note::PermissionNote;
use crate::lab_view::ShadowRead;
use crate::viewer::may;

/// How often the comparison is read again while the tab is visible: a new decision of the
/// shadow comes at each autoscale evaluation, and the scores replay an hour.
const REFRESH: Duration = Duration::from_secs(60);

#[component]
pub(super) fn ShadowPanel(
    live: Live,
    /// Promote or remove: the tab's, as the editor takes a promoted setting in.
    action: ServerAction<ChangeShadow>,
) -> impl IntoView {
    Effect::watch(
        move || action.version().get(),
        move |_, _, _| live.refresh(),
        false,
    );
    let shadow = Memo::new(move |_| {
        live.detail
            .with(|d| d.scale_set.spec.autoscale_shadow.clone())
    });
    move || {
        shadow
            .get()
            .map(|setting| view! { <Shadow live action setting /> })
    }
}

#[component]
fn Shadow(
    live: Live,
    action: ServerAction<ChangeShadow>,
    setting: AutoscaleSetting,
) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    // Read again when the live setting changes: the scores compare the two.
    let live_setting = Memo::new(move |_| live.detail.with(|d| d.scale_set.spec.autoscale.clone()));
    let read = crate::resource::new(
        {
            let name = name.clone();
            move || (name.clone(), live_setting.get())
        },
        |(name, _)| read_shadow(name),
    );
    use_every_visible(REFRESH, move || read.refetch());
    let permit = may("shadow-action", Some(&name));
    let refusal = permit.reason();
    let denied = refusal.is_some();
    let state = if setting.enabled {
        "It is on: it is evaluated with the live setting."
    } else {
        "It is off: it is not evaluated until it is turned on."
    };
    view! {
        <section aria-labelledby="shadow-heading" class="panel" data-shadow="set">
            <h2 id="shadow-heading">"Shadow setting"</h2>
            <p class="hint">
                "A setting tried beside the live one: evaluated on the same metrics, its decisions recorded, never acted on. Promote it to make it the live setting."
            </p>
            <p data-fact="shadow-state">{state}</p>
            <SettingSummary setting />
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match read.await {
                        Ok(Some(read)) => view! { <ShadowComparison read /> }.into_any(),
                        Ok(None) => ().into_any(),
                        Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    }
                })}
            </Transition>
            <PermissionNote what="Promoting or removing the shadow setting" permit />
            <ActionForm action attr:class="toolbar" attr:data-form="shadow">
                <CsrfField />
                <input type="hidden" name="name" value=name />
                <ConfirmAction
                    action="promote"
                    label="Promote"
                    question="Make the shadow setting the live one?".to_string()
                    consequence="It replaces the live setting, webhooks included; the set has no shadow after."
                    close_on=action.version()
                    disabled=denied
                    refusal=refusal.clone()
                />
                <button
                    type="submit"
                    name="action"
                    value="remove"
                    disabled=denied
                    title=refusal
                    aria-busy=move || action.pending().get().then_some("true")
                >
                    "Remove shadow"
                </button>
            </ActionForm>
            <p class="field-error" role="alert" data-error="shadow">
                {move || action.value().get().and_then(Result::err).map(|e| e.message)}
            </p>
        </section>
    }
    .into_any()
}

/// The shadow's capacity beside the live one, and both settings' scores.
#[component]
fn ShadowComparison(read: ShadowRead) -> impl IntoView {
    let decisions = read.shadow.len();
    let chart = read.chart();
    view! {
        <Chart
            title="Capacity: live and shadow"
            unit=Unit::Instances
            data=Signal::stored(chart)
            name="shadow-capacity"
        />
        <p class="hint">
            {format!(
                "Since {}: live is the scale set's capacity, shadow the capacity each of the shadow's decisions asked for ({}).",
                crate::format::timestamp(&read.from),
                crate::format::plural(decisions as u32, "decision", "decisions"),
            )}
        </p>
        {match read.scores {
            Ok(comparison) => view! { <Scores comparison name="shadow" /> }.into_any(),
            Err(why) => {
                view! {
                    <p class="muted" data-state="no-scores">
                        {format!("No scores for this hour: {why}")}
                    </p>
                }
                    .into_any()
            }
        }}
    }
}
