//! Why the set did or did not scale: Evaluate now (a plain form, so it works without
//! JavaScript), and the timeline of decisions, newest first, every evaluation or the scale
//! actions only (a link: `?decisions=actions`), each expandable (`<details>`, no JavaScript
//! needed) to the whole record — the profile and why it applies, each rule's grains →
//! value → comparison, the target-tracking arithmetic, the cooldown, the flapping
//! projection table, the result and its reason. The timeline is read again every
//! [`REFRESH`] while the tab is visible, and after an evaluation.

use std::time::Duration;

use flotilla_domain::autoscale::decision::{RuleTrace, TrackingTrace};
use flotilla_domain::autoscale::{Decision, Direction, Operation, Projection};
use flotilla_domain::metrics::Metric;
use leptos::form::ActionForm;
use leptos::prelude::*;

use super::super::{Live, Polled, Tab, use_every_visible};
use crate::api::autoscale::{EvaluateAutoscale, list_decisions};
use crate::chart::Unit;
use crate::components::csrf_field::CsrfField;
use crate::components::state_chip::StateChip;
use crate::components::timestamp::Timestamp;
use crate::format;
use crate::metrics_view::operator_symbol;
use crate::viewer::may;

/// How often the timeline is read again.
pub const REFRESH: Duration = Duration::from_secs(5);

#[component]
pub(super) fn Decisions(live: Live, first: Vec<Decision>, actions_only: bool) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let decisions = Polled::new(first);
    let reload = {
        let name = name.clone();
        move || {
            let name = name.clone();
            decisions.reload(move || list_decisions(name, actions_only));
        }
    };
    use_every_visible(REFRESH, reload.clone());
    let evaluate = ServerAction::<EvaluateAutoscale>::new();
    Effect::watch(
        move || evaluate.version().get(),
        move |_, _, _| {
            reload();
            live.refresh();
        },
        false,
    );
    let base = Tab::Scaling.href(&name);
    let (filter_href, filter_label) = if actions_only {
        (base.clone(), "Show every evaluation")
    } else {
        (
            format!("{base}?decisions=actions"),
            "Show scale actions only",
        )
    };
    let evaluated = move || match evaluate.value().get() {
        Some(Ok(Some(decision))) => Some(
            view! {
                <div class="evaluated" data-state="evaluated">
                    <h3>"This evaluation"</h3>
                    <ul class="decisions">
                        <DecisionItem decision open=true />
                    </ul>
                </div>
            }
            .into_any(),
        ),
        Some(Ok(None)) => Some(
            view! {
                <p class="muted" data-state="evaluated-off">
                    "Autoscale is off for this set: nothing was evaluated."
                </p>
            }
            .into_any(),
        ),
        _ => None,
    };
    let error = move || {
        evaluate
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.message)
    };
    let empty = move || decisions.value.with(Vec::is_empty);
    let refusal = may("evaluate-autoscale", Some(&name)).reason();
    view! {
        <div class="decisions-head">
            <ActionForm action=evaluate attr:data-form="evaluate">
                <CsrfField />
                <input type="hidden" name="name" value=name.clone() />
                <button
                    type="submit"
                    disabled=refusal.is_some()
                    title=refusal
                    aria-busy=move || evaluate.pending().get().then_some("true")
                >
                    "Evaluate now"
                </button>
            </ActionForm>
            <a href=filter_href data-filter=if actions_only { "actions" } else { "all" }>
                {filter_label}
            </a>
        </div>
        <p class="field-error" role="alert" data-error="evaluate">
            {error}
        </p>
        {evaluated}
        <h3>
            {if actions_only { "Scale actions, newest first" } else { "Evaluations, newest first" }}
        </h3>
        <Show when=empty>
            <p class="muted" data-state="no-decisions">
                {if actions_only {
                    "No scale action yet."
                } else {
                    "No evaluation yet: autoscale evaluates enabled settings every interval (or press Evaluate now)."
                }}
            </p>
        </Show>
        <ul class="decisions" aria-label="Decisions">
            <For
                each=move || decisions.value.get()
                key=|d| d.id
                children=move |decision| view! { <DecisionItem decision open=false /> }
            />
        </ul>
    }
    .into_any()
}

/// One decision: a line, and the whole record when opened.
#[component]
fn DecisionItem(decision: Decision, open: bool) -> impl IntoView {
    let d = decision;
    let change = match d.operation {
        Operation::None => format!("stays at {}", d.current),
        _ => format!("{} → {}", d.current, d.new_capacity),
    };
    let operation = d.operation.as_str();
    let bounds = d
        .bounds
        .map(|b| format!("{}–{}, default {}", b.minimum, b.maximum, b.default))
        .unwrap_or_else(|| "—".into());
    let cooldown = match (d.cooldown_until, d.cooldown_seconds) {
        (Some(until), _) => format!("held back until {}", format::timestamp(&until)),
        (None, 0) => "none".to_string(),
        (None, s) => format!("this action starts one of {}", format::seconds(s)),
    };
    let has_rules = !d.rules.is_empty();
    let has_projections = !d.projections.is_empty();
    let rules = d.rules.clone();
    let projections = d.projections.clone();
    let increase_rules: Vec<RuleTrace> = d
        .rules
        .iter()
        .filter(|r| r.direction == Direction::Increase)
        .cloned()
        .collect();
    view! {
        <li class="decision" data-decision=d.id data-operation=operation>
            <details open=open>
                <summary>
                    <Timestamp at=d.at />
                    " "
                    <StateChip state=operation />
                    " "
                    <strong data-cell="change">{change}</strong>
                    " — "
                    <span data-cell="reason">{d.reason.clone()}</span>
                </summary>
                <div class="decision-body">
                    <dl class="facts">
                        <div>
                            <dt>"Profile"</dt>
                            <dd data-fact="profile">
                                {d.profile.clone().unwrap_or_else(|| "none".into())}
                            </dd>
                        </div>
                        <div>
                            <dt>"Why this profile"</dt>
                            <dd>{d.profile_reason.clone()}</dd>
                        </div>
                        <div>
                            <dt>"Bounds"</dt>
                            <dd>{bounds}</dd>
                        </div>
                        <div>
                            <dt>"Cooldown"</dt>
                            <dd data-fact="cooldown">{cooldown}</dd>
                        </div>
                    </dl>
                    {has_rules
                        .then(|| {
                            view! {
                                <h4>"Rules"</h4>
                                <RuleTable rules />
                                {d
                                    .rules_reason
                                    .clone()
                                    .map(|reason| {
                                        view! { <p data-fact="rules-reason">"Rules: " {reason}</p> }
                                    })}
                            }
                        })}
                    {d.tracking.clone().map(|t| view! { <Tracking trace=t /> })}
                    {has_projections
                        .then(|| {
                            view! {
                                <h4>"Flapping check"</h4>
                                <p class="hint">
                                    "Before scaling in, each count is tried: the scale-out rules' values are projected onto it (value × current / count); the first count at which none would fire is taken."
                                </p>
                                <ProjectionTable projections increase_rules />
                            }
                        })}
                    <p class="decision-result" data-fact="result">
                        <strong>"Result: "</strong>
                        {match d.operation {
                            Operation::None => format!("no change ({})", d.current),
                            _ => format!("{} → {}", d.current, d.new_capacity),
                        }}
                        " — "
                        {d.reason.clone()}
                    </p>
                </div>
            </details>
        </li>
    }
    .into_any()
}

/// A value of `metric` with its unit (`—` for none).
fn value(metric: &str, v: Option<f64>) -> String {
    match (v, Metric::parse(metric)) {
        (None, _) => "—".to_string(),
        (Some(v), Some(m)) => Unit::of(m).format(v),
        (Some(v), None) => format!("{v:.2}"),
    }
}

#[component]
fn RuleTable(rules: Vec<RuleTrace>) -> impl IntoView {
    view! {
        <div class="table-wrap" role="region" aria-label="Rules as evaluated" tabindex="0">
            <table class="data rule-trace" aria-label="Rules as evaluated">
                <thead>
                    <tr>
                        <th scope="col">"Metric"</th>
                        <th scope="col">"Direction"</th>
                        <th scope="col">"Grains (oldest first)"</th>
                        <th scope="col">"Value"</th>
                        <th scope="col">"Comparison"</th>
                        <th scope="col">"Fired"</th>
                        <th scope="col" class="num">
                            "Would go to"
                        </th>
                    </tr>
                </thead>
                <tbody>
                    {rules
                        .into_iter()
                        .map(|r| {
                            let grains = r
                                .grains
                                .iter()
                                .map(|g| value(&r.metric, *g))
                                .collect::<Vec<_>>()
                                .join(", ");
                            let comparison = format!(
                                "{} {} {}",
                                value(&r.metric, r.value),
                                operator_symbol(r.operator),
                                value(&r.metric, Some(r.threshold)),
                            );
                            let direction = match r.direction {
                                Direction::Increase => "scale out",
                                Direction::Decrease => "scale in",
                            };
                            view! {
                                <tr
                                    data-rule-metric=r.metric.clone()
                                    data-fired=r.fired.to_string()
                                >
                                    <th scope="row" class="mono">
                                        {r.metric.clone()}
                                    </th>
                                    <td>{direction}</td>
                                    <td class="grains">{grains}</td>
                                    <td data-cell="value">{value(&r.metric, r.value)}</td>
                                    <td>{comparison}</td>
                                    <td data-cell="fired">
                                        {if r.value.is_none() {
                                            "no data"
                                        } else if r.fired {
                                            "yes"
                                        } else {
                                            "no"
                                        }}
                                    </td>
                                    <td class="num">{r.target}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn Tracking(trace: TrackingTrace) -> impl IntoView {
    let t = trace;
    let ratio = t
        .ratio
        .map(|r| format!("{r:.2}"))
        .unwrap_or_else(|| "—".into());
    view! {
        <h4>"Target tracking"</h4>
        <dl class="facts" data-fact="tracking">
            <div>
                <dt>"Value"</dt>
                <dd>{value(&t.metric, t.value)}</dd>
            </div>
            <div>
                <dt>"Target"</dt>
                <dd>{value(&t.metric, Some(t.target))}</dd>
            </div>
            <div>
                <dt>"Ratio (tolerance)"</dt>
                <dd>{format!("{ratio} (± {:.0} %)", t.tolerance * 100.0)}</dd>
            </div>
            <div>
                <dt>"Instances counted"</dt>
                <dd>{t.counted}</dd>
            </div>
            <div>
                <dt>"Recommendation → stabilized → desired"</dt>
                <dd>{format!("{} → {} → {}", t.recommendation, t.stabilized, t.desired)}</dd>
            </div>
        </dl>
        <p data-fact="tracking-note">{t.note}</p>
    }
    .into_any()
}

#[component]
fn ProjectionTable(projections: Vec<Projection>, increase_rules: Vec<RuleTrace>) -> impl IntoView {
    let headers = increase_rules
        .iter()
        .map(|r| {
            let label = format!(
                "{} {} {}",
                r.metric,
                operator_symbol(r.operator),
                value(&r.metric, Some(r.threshold))
            );
            view! { <th scope="col">{label}</th> }
        })
        .collect_view();
    view! {
        <div class="table-wrap" role="region" aria-label="Flapping check" tabindex="0">
            <table class="data projections" aria-label="Flapping check">
                <thead>
                    <tr>
                        <th scope="col" class="num">
                            "Count"
                        </th>
                        {headers}
                        <th scope="col">"Accepted"</th>
                    </tr>
                </thead>
                <tbody>
                    {projections
                        .into_iter()
                        .map(|p| {
                            let cells = p
                                .projected
                                .iter()
                                .enumerate()
                                .map(|(i, v)| {
                                    let metric = increase_rules
                                        .get(i)
                                        .map(|r| r.metric.clone())
                                        .unwrap_or_default();
                                    view! { <td>{value(&metric, *v)}</td> }
                                })
                                .collect_view();
                            view! {
                                <tr data-count=p.count data-accepted=p.accepted.to_string()>
                                    <th scope="row" class="num">
                                        {p.count}
                                    </th>
                                    {cells}
                                    <td>
                                        {if p.accepted {
                                            "yes"
                                        } else {
                                            "no: a scale-out rule would fire"
                                        }}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}
