//! The mock's synthetic demand (shown only on the mock backend): the demand in force and
//! its rate now, and a plain form to set a pattern — constant, step, sine, spikes or a CSV
//! trace — with its noise and seed, or to remove it. Without JavaScript every pattern's
//! fields are shown (the picked pattern's are read); with it, only the picked one's.

use flotilla_domain::demand::{Demand, Pattern};
use leptos::form::ActionForm;
use leptos::prelude::*;

use super::super::Live;
use crate::api::autoscale::{RemoveDemand, SetDemand};
use crate::components::csrf_field::CsrfField;
use crate::components::field::{CheckField, NumberField, SelectField, TextField};
use crate::components::permission_note::PermissionNote;
use crate::demand_form::{DemandInput, PATTERNS};
use crate::viewer::may;

#[component]
pub(super) fn DemandSection(live: Live) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let remove_name = name.clone();
    let permit = may("set-demand", Some(&name));
    let refusal = permit.reason();
    let remove_refusal = may("remove-demand", Some(&name)).reason();
    let set = ServerAction::<SetDemand>::new();
    let remove = ServerAction::<RemoveDemand>::new();
    Effect::watch(
        move || set.version().get(),
        move |_, _, _| live.refresh(),
        false,
    );
    Effect::watch(
        move || remove.version().get(),
        move |_, _, _| live.refresh(),
        false,
    );
    let demand = Memo::new(move |_| live.detail.with(|d| d.scale_set.spec.demand.clone()));
    // After a refused post without JavaScript the page is rendered anew: the error carries
    // the form as typed.
    let typed = set
        .value()
        .get_untracked()
        .and_then(Result::err)
        .and_then(|e| e.input)
        .and_then(|json| serde_json::from_str::<DemandInput>(&json).ok());
    let input = typed.unwrap_or_else(|| demand.with_untracked(|d| DemandInput::of(d.as_ref())));
    let pattern = RwSignal::new(input.pattern.clone());
    let mounted = RwSignal::new(false);
    Effect::new(move |_| mounted.set(true));
    let error = move || set.value().get().and_then(Result::err);
    let problems = Signal::derive(move || error().map(|e| e.fields).unwrap_or_default());
    let general = move || error().and_then(|e| e.fields.is_empty().then_some(e.message));
    // A field is hidden in the browser when the picked pattern does not read it.
    let hidden = move |field: &'static str| {
        move || mounted.get() && !DemandInput::fields_of(&pattern.get()).contains(&field)
    };
    let current = move || {
        live.detail.with(|d| {
            d.scale_set
                .spec
                .demand
                .as_ref()
                .map(|demand| (describe(demand), demand.rps_at(d.read_at)))
        })
    };
    let field = move |id: &'static str, label: &'static str, value: String| {
        view! {
            <NumberField
                id=format!("demand-{id}")
                name=format!("input[{id}]")
                label
                path=id
                decimal=true
                size=10
                value=Signal::stored(value)
                problems
                hidden=Signal::derive(hidden(id))
            />
        }
    };
    view! {
        <div data-demand=move || {
            if demand.with(Option::is_some) { "set" } else { "none" }
        }>
            {move || match current() {
                Some((text, rps)) => {
                    view! {
                        <dl class="facts">
                            <div>
                                <dt>"Demand"</dt>
                                <dd data-fact="demand">{text}</dd>
                            </div>
                            <div>
                                <dt>"Now (without noise)"</dt>
                                <dd data-fact="demand-now">{format!("{rps:.0} req/s")}</dd>
                            </div>
                        </dl>
                    }
                        .into_any()
                }
                None => {
                    view! {
                        <p class="muted" data-fact="demand">
                            "No synthetic demand: the mock's instances are idle."
                        </p>
                    }
                        .into_any()
                }
            }}
        </div>
        <PermissionNote what="Changing the demand" permit />
        <ActionForm action=set attr:class="demand-form" attr:data-form="demand">
            <CsrfField />
            <input type="hidden" name="name" value=name.clone() />
            <div class="field-row">
                <SelectField
                    id="demand-pattern"
                    name="input[pattern]"
                    label="Pattern"
                    path="pattern"
                    choices=PATTERNS
                        .into_iter()
                        .map(|(value, label)| (value.to_string(), label.to_string()))
                        .collect()
                    value=pattern
                    on_change=move |picked| pattern.set(picked)
                    problems
                />
                {field("rps", "Requests/s", input.rps.clone())}
                {field("step_rps", "Step to (req/s)", input.step_rps.clone())}
                {field("after_seconds", "After (s)", input.after_seconds.clone())}
                {field(
                    "duration_seconds",
                    "For (s, empty: for good)",
                    input.duration_seconds.clone(),
                )}
                {field("min_rps", "Minimum (req/s)", input.min_rps.clone())}
                {field("max_rps", "Maximum (req/s)", input.max_rps.clone())}
                {field("period_seconds", "Period (s)", input.period_seconds.clone())}
                {field(
                    "peak_offset_seconds",
                    "Peak at (s after midnight UTC)",
                    input.peak_offset_seconds.clone(),
                )}
                {field("spike_rps", "Spike (req/s)", input.spike_rps.clone())}
                {field("every_seconds", "Every (s)", input.every_seconds.clone())}
                {field("spike_seconds", "Spike length (s)", input.spike_seconds.clone())}
            </div>
            <TextField
                id="demand-csv"
                name="input[csv]"
                label="Trace (seconds,rps per line, from 0)"
                path="csv"
                rows=5
                value=Signal::stored(input.csv.clone())
                problems
                hidden=Signal::derive(hidden("csv"))
            />
            <CheckField
                id="demand-repeat"
                name="input[repeat]"
                label="Repeat the trace"
                path="repeat"
                checked=Signal::stored(!input.repeat.is_empty())
                problems
                hidden=Signal::derive(hidden("repeat"))
            />
            <div class="field-row">
                {field("noise_percent", "Noise (± %)", input.noise_percent.clone())}
                {field("seed", "Seed", input.seed.clone())}
            </div>
            <p class="field-error" role="alert" data-error="demand">
                {general}
            </p>
            <button
                type="submit"
                class="primary"
                disabled=refusal.is_some()
                title=refusal
                aria-busy=move || set.pending().get().then_some("true")
            >
                "Set demand"
            </button>
        </ActionForm>
        {move || {
            demand
                .with(Option::is_some)
                .then(|| {
                    let name = remove_name.clone();
                    let refusal = remove_refusal.clone();
                    view! {
                        <ActionForm action=remove attr:data-form="remove-demand">
                            <CsrfField />
                            <input type="hidden" name="name" value=name />
                            <button type="submit" disabled=refusal.is_some() title=refusal>
                                "Remove demand"
                            </button>
                        </ActionForm>
                    }
                })
        }}
    }
    .into_any()
}

/// The demand in words: `sine between 50 and 500 req/s over 24 h, noise ± 5 %`.
fn describe(demand: &Demand) -> String {
    let pattern = match &demand.pattern {
        Pattern::Constant { rps } => format!("constant {rps} req/s"),
        Pattern::Step {
            rps,
            step_rps,
            after_seconds,
            duration_seconds,
        } => {
            let mut text = format!(
                "{rps} req/s, then {step_rps} req/s after {}",
                crate::format::seconds(*after_seconds)
            );
            if let Some(d) = duration_seconds {
                text.push_str(&format!(" for {}", crate::format::seconds(*d)));
            }
            text
        }
        Pattern::Sine {
            min_rps,
            max_rps,
            period_seconds,
            ..
        } => format!(
            "sine between {min_rps} and {max_rps} req/s over {}",
            crate::format::seconds(*period_seconds)
        ),
        Pattern::Spikes {
            rps,
            spike_rps,
            every_seconds,
            spike_seconds,
        } => format!(
            "{rps} req/s with spikes of {spike_rps} req/s for {} every {}",
            crate::format::seconds(*spike_seconds),
            crate::format::seconds(*every_seconds)
        ),
        Pattern::Csv { repeat, .. } => {
            format!("a CSV trace{}", if *repeat { ", repeated" } else { "" })
        }
    };
    format!("{pattern}, noise ± {} %", demand.noise_percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demands_in_words() {
        let demand: Demand =
            serde_json::from_str(r#"{"pattern":"sine","min_rps":50,"max_rps":500}"#).unwrap();
        assert_eq!(
            describe(&demand),
            "sine between 50 and 500 req/s over 24 h, noise ± 5 %"
        );
    }
}
