//! A profile's predictive autoscale: the load metric, the target, the mode, the model,
//! the season, the lead and the error it acts under.

use flotilla_domain::autoscale::forecast::ModelChoice;
use flotilla_domain::autoscale::setting::PredictiveMode;
use leptos::prelude::*;

use super::{Editor, as_id, enum_choices, metric_choices};
use crate::autoscale_draft::{PredictiveDraft, SettingDraft, from_wire, wire};
use crate::components::field::{CheckField, NumberField, SelectField};

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
pub(super) fn PredictiveEditor(editor: Editor, index: usize) -> impl IntoView {
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
        <CheckField
            id=as_id(&path)
            label="Forecast the load from its history and raise the capacity ahead of it"
            path=path.clone()
            checked=editor.flag(move |d| d.profiles.get(i).map(|p| p.predictive.is_some()))
            on_change=editor.set(move |d, on| d.set_predictive(i, on))
            problems=editor.problems
        />
        <Show when=on>
            <div class="field-row">
                <SelectField
                    id=as_id(&format!("{path2}.metric"))
                    label="Load metric"
                    path=format!("{path2}.metric")
                    choices=metric_choices()
                    value=editor.text(metric_get.clone())
                    on_change=editor.set(metric_set.clone())
                    problems=editor.problems
                />
                <NumberField
                    id=as_id(&format!("{path2}.target"))
                    label="Target per instance"
                    path=format!("{path2}.target")
                    size=8
                    decimal=true
                    value=editor.text(target_get.clone())
                    on_input=editor.set(target_set.clone())
                    problems=editor.problems
                />
                <SelectField
                    id=as_id(&format!("{path2}.mode"))
                    label="Mode"
                    path=format!("{path2}.mode")
                    choices=enum_choices(
                        &[PredictiveMode::ForecastOnly, PredictiveMode::ForecastAndScale],
                    )
                    value=editor.text(mode_get.clone())
                    on_change=editor.set(mode_set.clone())
                    problems=editor.problems
                />
                <SelectField
                    id=as_id(&format!("{path2}.model"))
                    label="Model"
                    path=format!("{path2}.model")
                    choices=enum_choices(
                        &[
                            ModelChoice::Auto,
                            ModelChoice::SeasonalNaive,
                            ModelChoice::SeasonalMedian,
                            ModelChoice::HoltWinters,
                        ],
                    )
                    value=editor.text(model_get.clone())
                    on_change=editor.set(model_set.clone())
                    problems=editor.problems
                />
                <NumberField
                    id=as_id(&format!("{path2}.season_seconds"))
                    label="Season (s)"
                    path=format!("{path2}.season_seconds")
                    size=8
                    value=editor.text(season_get.clone())
                    on_input=editor.set(season_set.clone())
                    problems=editor.problems
                />
                <NumberField
                    id=as_id(&format!("{path2}.lead_seconds"))
                    label="Lead (s; empty: the measured boot time)"
                    path=format!("{path2}.lead_seconds")
                    size=6
                    value=editor.text(lead_get.clone())
                    on_input=editor.set(lead_set.clone())
                    problems=editor.problems
                />
                <NumberField
                    id=as_id(&format!("{path2}.max_mape_percent"))
                    label="Act while MAPE ≤ (%)"
                    path=format!("{path2}.max_mape_percent")
                    size=6
                    decimal=true
                    value=editor.text(mape_get.clone())
                    on_input=editor.set(mape_set.clone())
                    problems=editor.problems
                />
            </div>
            <p class="hint">
                "Nothing is forecast before a whole season of history. The forecast only raises the floor: scale-in stays with the rules or target tracking."
            </p>
        </Show>
    }
    .into_any()
}
