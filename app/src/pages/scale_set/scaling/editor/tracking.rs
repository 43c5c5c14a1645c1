//! A profile's target tracking: the metric, the target, the tolerance and the windows.

use leptos::prelude::*;

use super::{Editor, as_id, metric_choices};
use crate::autoscale_draft::{SettingDraft, TrackingDraft};
use crate::components::field::{CheckField, NumberField, SelectField};

/// A target-tracking string field, read and written by profile index.
fn tracking_text(
    i: usize,
    field: fn(&mut TrackingDraft) -> &mut String,
) -> (
    impl Fn(&SettingDraft) -> Option<String> + Clone + Send + Sync + 'static,
    impl Fn(&mut SettingDraft, String) + Clone + Send + Sync + 'static,
) {
    (
        move |d: &SettingDraft| {
            let mut t = d.profiles.get(i)?.tracking.clone()?;
            Some(field(&mut t).clone())
        },
        move |d: &mut SettingDraft, v: String| {
            if let Some(t) = d.profiles.get_mut(i).and_then(|p| p.tracking.as_mut()) {
                *field(t) = v;
            }
        },
    )
}

/// A profile's target tracking.
#[component]
pub(super) fn TrackingEditor(editor: Editor, index: usize) -> impl IntoView {
    let i = index;
    let path = format!("profiles[{i}].target_tracking");
    let on = move || {
        editor
            .draft
            .with(|d| d.profiles.get(i).is_some_and(|p| p.tracking.is_some()))
    };
    let (metric_get, metric_set) = tracking_text(i, |t| &mut t.metric);
    let (target_get, target_set) = tracking_text(i, |t| &mut t.target);
    let (tol_get, tol_set) = tracking_text(i, |t| &mut t.tolerance);
    let (window_get, window_set) = tracking_text(i, |t| &mut t.window);
    let (up_get, up_set) = tracking_text(i, |t| &mut t.scale_up_window);
    let (down_get, down_set) = tracking_text(i, |t| &mut t.scale_down_window);
    let path2 = path.clone();
    view! {
        <h4>"Target tracking"</h4>
        <CheckField
            id=as_id(&path)
            label="Track a target (desired = ⌈current × value / target⌉)"
            path=path.clone()
            checked=editor.flag(move |d| d.profiles.get(i).map(|p| p.tracking.is_some()))
            on_change=editor.set(move |d, on| d.set_tracking(i, on))
            problems=editor.problems
        />
        <Show when=on>
            <div class="field-row">
                <SelectField
                    id=as_id(&format!("{path2}.metric"))
                    label="Metric"
                    path=format!("{path2}.metric")
                    choices=metric_choices()
                    value=editor.text(metric_get.clone())
                    on_change=editor.set(metric_set.clone())
                    problems=editor.problems
                />
                <NumberField
                    id=as_id(&format!("{path2}.target"))
                    label="Target (per instance for totals)"
                    path=format!("{path2}.target")
                    size=8
                    decimal=true
                    value=editor.text(target_get.clone())
                    on_input=editor.set(target_set.clone())
                    problems=editor.problems
                />
                <NumberField
                    id=as_id(&format!("{path2}.tolerance"))
                    label="Tolerance (0.1 = 10 %)"
                    path=format!("{path2}.tolerance")
                    size=6
                    decimal=true
                    value=editor.text(tol_get.clone())
                    on_input=editor.set(tol_set.clone())
                    problems=editor.problems
                />
                <NumberField
                    id=as_id(&format!("{path2}.window_seconds"))
                    label="Window (s)"
                    path=format!("{path2}.window_seconds")
                    size=6
                    value=editor.text(window_get.clone())
                    on_input=editor.set(window_set.clone())
                    problems=editor.problems
                />
                <NumberField
                    id=as_id(&format!("{path2}.scale_up.stabilization_window_seconds"))
                    label="Scale-up stabilization (s)"
                    path=format!("{path2}.scale_up.stabilization_window_seconds")
                    size=6
                    value=editor.text(up_get.clone())
                    on_input=editor.set(up_set.clone())
                    problems=editor.problems
                />
                <NumberField
                    id=as_id(&format!("{path2}.scale_down.stabilization_window_seconds"))
                    label="Scale-down stabilization (s)"
                    path=format!("{path2}.scale_down.stabilization_window_seconds")
                    size=6
                    value=editor.text(down_get.clone())
                    on_input=editor.set(down_set.clone())
                    problems=editor.problems
                />
                <CheckField
                    id=as_id(&format!("{path2}.disable_scale_in"))
                    label="Disable scale-in (only ever scale out)"
                    path=format!("{path2}.disable_scale_in")
                    checked=editor
                        .flag(move |d| {
                            d.profiles
                                .get(i)
                                .and_then(|p| p.tracking.as_ref())
                                .map(|t| t.disable_scale_in)
                        })
                    on_change=editor
                        .set(move |d, on| {
                            if let Some(t) = d.profiles.get_mut(i).and_then(|p| p.tracking.as_mut())
                            {
                                t.disable_scale_in = on;
                            }
                        })
                    problems=editor.problems
                />
                <CheckField
                    id=as_id(&format!("{path2}.size_from_load"))
                    label="Size scale-outs from the load while CPU or memory is saturated"
                    path=format!("{path2}.size_from_load")
                    checked=editor
                        .flag(move |d| {
                            d.profiles
                                .get(i)
                                .and_then(|p| p.tracking.as_ref())
                                .map(|t| t.size_from_load)
                        })
                    on_change=editor
                        .set(move |d, on| {
                            if let Some(t) = d.profiles.get_mut(i).and_then(|p| p.tracking.as_mut())
                            {
                                t.size_from_load = on;
                            }
                        })
                    problems=editor.problems
                />
            </div>
            <p class="hint">
                "Rate policies (how fast it may scale) keep their values; edit them in the JSON."
            </p>
        </Show>
    }
    .into_any()
}
