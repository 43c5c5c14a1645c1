//! One rollout: its state, versions and progress, the batches as a row of segments, why it
//! holds, its controls (plain forms: Pause, Resume — Approve when it waits for approval —
//! Cancel, and Roll back to a chosen version), each instance's step and the gates checked.
//! Every part follows the tab's read of the rollouts, so it moves live.

use flotilla_domain::access::Role;
use flotilla_domain::rollout::{InstanceProgress, Rollout};
use leptos::form::ActionForm;
use leptos::prelude::*;

use super::Upgrades;
use crate::api::upgrades::{ControlRollout, RollbackRollout};
use crate::components::csrf_field::CsrfField;
use crate::components::state_chip::StateChip;
use crate::components::timestamp::Timestamp;
use crate::format;
use crate::rollout_view::{self, segments};
use crate::viewer::{may, use_me};

fn kind_of(r: &Rollout) -> String {
    crate::autoscale_draft::wire(r.kind)
}

#[component]
pub(super) fn RolloutDetail(
    up: Upgrades,
    /// The rollout's id.
    id: i64,
    /// Whether to show the controls (the current rollout's panel).
    controls: bool,
) -> impl IntoView {
    let rollout = Memo::new(move |_| {
        up.read
            .value
            .with(|r| r.rollouts.iter().find(|v| v.id == id).cloned())
    });
    let state = Memo::new(move |_| {
        rollout.with(|r| r.as_ref().map(|r| r.state.as_str()).unwrap_or_default())
    });
    view! {
        <div class="rollout" data-rollout=id data-state=state>
            {move || rollout.get().map(|r| summary(&r))}
            {move || rollout.get().map(|r| progress(&r))}
            {move || rollout.get().map(|r| batches(&r))}
            {move || {
                rollout
                    .get()
                    .and_then(|r| r.hold.clone().filter(|_| r.state.is_active()))
                    .map(|hold| {
                        view! {
                            <p
                                class="panel panel-warn hold"
                                role="status"
                                data-hold=hold_kind(&hold)
                            >
                                {rollout_view::hold_text(&hold)}
                            </p>
                        }
                    })
            }}
            {controls.then(|| view! { <Controls up rollout /> })}
            <details class="rollout-instances" open=controls>
                <summary>"Instances"</summary>
                {move || rollout.get().map(|r| instances(&r))}
            </details>
            <details class="rollout-gates">
                <summary>
                    {move || {
                        rollout
                            .with(|r| {
                                format!(
                                    "Health gates ({})",
                                    r.as_ref().map_or(0, |r| r.gates.len()),
                                )
                            })
                    }}
                </summary>
                {move || rollout.get().map(|r| gates(&r))}
            </details>
        </div>
    }
}

fn hold_kind(hold: &flotilla_domain::rollout::Hold) -> String {
    serde_json::to_value(hold)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
        .unwrap_or_default()
}

fn summary(r: &Rollout) -> impl IntoView + use<> {
    let o = r;
    let state = o.state.as_str();
    view! {
        <dl class="facts">
            <div>
                <dt>"Rollout"</dt>
                <dd data-fact="rollout-id">{format!("#{}", o.id)}</dd>
            </div>
            <div>
                <dt>"State"</dt>
                <dd data-fact="rollout-state">
                    <StateChip state=state />
                </dd>
            </div>
            <div>
                <dt>"Kind"</dt>
                <dd data-fact="rollout-kind">{kind_of(r)}</dd>
            </div>
            <div>
                <dt>"Versions"</dt>
                <dd data-fact="rollout-versions">
                    {format!("{} → {}", o.from_version, o.target_version)}
                </dd>
            </div>
            <div>
                <dt>"Started"</dt>
                <dd>
                    <Timestamp at=o.created_at />
                    " by "
                    {o.created_by.clone()}
                </dd>
            </div>
            {rollout_view::took(o)
                .map(|took| {
                    view! {
                        <div>
                            <dt>"Took"</dt>
                            <dd>{took}</dd>
                        </div>
                    }
                })}
        </dl>
        {o
            .message
            .clone()
            .map(|m| {
                view! {
                    <p class="rollout-message" data-fact="rollout-message">
                        {m}
                    </p>
                }
            })}
        {links(r)}
    }
}

/// Links to the rollout this one rolls back, or to the rollback that undid it.
fn links(r: &Rollout) -> impl IntoView + use<> {
    let o = r;
    view! {
        {o
            .rollback_of
            .map(|id| {
                view! {
                    <p data-link="rollback-of">
                        "Rolls back "
                        <a href=format!("#rollout-{id}")>{format!("rollout #{id}")}</a>
                    </p>
                }
            })}
        {o
            .rolled_back_by
            .map(|id| {
                view! {
                    <p data-link="rolled-back-by">
                        "Rolled back by "
                        <a href=format!("#rollout-{id}")>{format!("rollout #{id}")}</a>
                    </p>
                }
            })}
    }
}

fn progress(r: &Rollout) -> impl IntoView + use<> {
    let (p, percent) = (r.progress(), r.percent_done());
    let text = format!(
        "{percent} % done: {} upgraded, {} failed, {} in progress, {} pending, {} skipped",
        p.successful, p.failed, p.in_progress, p.pending, p.skipped
    );
    view! {
        <p class="progress rollout-progress" data-percent=percent>
            <progress max=100 value=percent aria-label=text.clone()></progress>
            {text}
        </p>
    }
}

fn batches(r: &Rollout) -> impl IntoView + use<> {
    let current = r.current_batch;
    view! {
        <ol class="segments" aria-label="Batches">
            {segments(r)
                .into_iter()
                .map(|s| {
                    let mut label = format!(
                        "Batch {}: {}, {}",
                        s.number,
                        format::plural(s.size as u32, "instance", "instances"),
                        s.state.as_str(),
                    );
                    if let Some(p) = &s.pause {
                        label.push_str(&format!(", then a pause ({p})"));
                    }
                    view! {
                        <li
                            class=format!("segment segment-{}", s.state.as_str())
                            data-batch=s.number
                            data-segment=s.state.as_str()
                            data-canary=s.canary.then_some("true")
                            data-pause=s.pause.clone()
                            aria-current=(s.number == current).then_some("step")
                            title=label.clone()
                            style=format!("flex-grow: {}", s.size.max(1))
                        >
                            <span class="segment-label">
                                {if s.canary { "canary".to_string() } else { s.number.to_string() }}
                            </span>
                            {s
                                .pause
                                .is_some()
                                .then(|| view! { <span class="segment-mark">"⏸"</span> })}
                        </li>
                    }
                })
                .collect_view()}
        </ol>
    }
}

fn instances(r: &Rollout) -> impl IntoView + use<> {
    let target = r.target_version;
    let mut rows: Vec<InstanceProgress> = r.instances.values().cloned().collect();
    rows.sort_by(|a, b| (a.batch, &a.id).cmp(&(b.batch, &b.id)));
    view! {
        <div class="table-wrap" role="region" aria-label="Instances of the rollout" tabindex="0">
            <table class="data" aria-label="Instances of the rollout">
                <thead>
                    <tr>
                        <th scope="col">"Instance"</th>
                        <th scope="col" class="num">
                            "Batch"
                        </th>
                        <th scope="col">"Action"</th>
                        <th scope="col">"Version"</th>
                        <th scope="col">"Step"</th>
                        <th scope="col">"Detail"</th>
                    </tr>
                </thead>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|i| {
                            let step = crate::autoscale_draft::wire(i.step);
                            let step_attr = step.clone();
                            view! {
                                <tr data-instance=i.id.clone() data-step=step_attr>
                                    <th scope="row" class="mono">
                                        {i.id.clone()}
                                        {i
                                            .replacement
                                            .clone()
                                            .map(|r| {
                                                view! { <span class="tag">{format!("→ {r}")}</span> }
                                            })}
                                    </th>
                                    <td class="num">{i.batch}</td>
                                    <td>{crate::autoscale_draft::wire(i.action)}</td>
                                    <td>{format!("{} → {target}", i.from_version)}</td>
                                    <td>
                                        <StateChip state=step />
                                    </td>
                                    <td>{i.detail.clone().unwrap_or_default()}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}

fn gates(r: &Rollout) -> impl IntoView + use<> {
    if r.gates.is_empty() {
        return view! { <p class="muted">"No gate checked yet."</p> }.into_any();
    }
    view! {
        <ul class="gates">
            {r
                .gates
                .iter()
                .rev()
                .map(|g| {
                    let verdict = if g.passed { "passed" } else { "failed" };
                    let around = if g.gate == "bake" {
                        "while baking".to_string()
                    } else {
                        format!("{} batch {}", g.gate, g.batch)
                    };
                    view! {
                        <li data-gate=g.gate.clone() data-passed=g.passed.to_string()>
                            <StateChip state=if g.passed { "succeeded" } else { "failed" } />
                            " "
                            {format!("{around}: {verdict} — {}", g.detail)}
                            " "
                            <Timestamp at=g.at />
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
    .into_any()
}

/// Pause / Resume (Approve) / Cancel, and Roll back with an optional version.
#[component]
fn Controls(up: Upgrades, rollout: Memo<Option<Rollout>>) -> impl IntoView {
    let control = ServerAction::<ControlRollout>::new();
    let rollback = ServerAction::<RollbackRollout>::new();
    for version in [control.version(), rollback.version()] {
        Effect::watch(
            move || version.get(),
            move |_, _, _| {
                up.reload();
                up.live.refresh();
            },
            false,
        );
    }
    let id = Memo::new(move |_| rollout.with(|r| r.as_ref().map_or(0, |r| r.id)));
    let buttons = Memo::new(move |_| {
        rollout.with(|r| {
            r.as_ref()
                .map(|r| rollout_view::controls(r))
                .unwrap_or_default()
        })
    });
    let can_roll_back = Memo::new(move |_| {
        rollout.with(|r| r.as_ref().is_some_and(|r| r.rolled_back_by.is_none()))
    });
    let from_version = Memo::new(move |_| rollout.with(|r| r.as_ref().map(|r| r.from_version)));
    let versions = Memo::new(move |_| {
        up.read
            .value
            .with(|r| r.versions.iter().map(|v| v.version).collect::<Vec<_>>())
    });
    let error = move || {
        let control = control.value().get().and_then(Result::err);
        let rollback = rollback.value().get().and_then(Result::err);
        control.or(rollback).map(|e| e.message)
    };
    // Pausing and resuming are an Operator's; approving a gate and cancelling a
    // Contributor's (the function checks those itself).
    let name = up.name.get_value();
    let operate = may("control-rollout", Some(&name));
    let decide = operate
        .clone()
        .and(use_me().holds(Role::Contributor, Some(&name)));
    let roll_back = may("rollback-rollout", Some(&name)).reason();
    let roll_back_denied = roll_back.is_some();
    let roll_back = StoredValue::new(roll_back);
    view! {
        <div class="rollout-controls toolbar">
            <ActionForm action=control attr:data-form="rollout-control">
                <CsrfField />
                <input type="hidden" name="name" value=up.name.get_value() />
                <input type="hidden" name="id" value=move || id.get().to_string() />
                {move || {
                    buttons
                        .get()
                        .into_iter()
                        .map(|(value, label)| {
                            let permit = if value == "cancel" || label == "Approve" {
                                decide.clone()
                            } else {
                                operate.clone()
                            };
                            view! {
                                <button
                                    type="submit"
                                    name="control"
                                    value=value
                                    disabled=permit.denied()
                                    title=permit.reason()
                                    data-control=label.to_lowercase()
                                    class=if value == "resume" { "primary" } else { "" }
                                    aria-busy=move || control.pending().get().then_some("true")
                                >
                                    {label}
                                </button>
                            }
                        })
                        .collect_view()
                }}
            </ActionForm>
            <Show when=move || can_roll_back.get()>
                <ActionForm action=rollback attr:data-form="rollback" attr:class="inline-form">
                    <CsrfField />
                    <input type="hidden" name="name" value=up.name.get_value() />
                    <input type="hidden" name="id" value=move || id.get().to_string() />
                    <label>
                        "Roll back to " <select name="version" aria-label="Version to roll back to">
                            <option value="">
                                {move || {
                                    from_version
                                        .get()
                                        .map(|v| format!("version {v} (where it started)"))
                                        .unwrap_or_default()
                                }}
                            </option>
                            {move || {
                                versions
                                    .get()
                                    .into_iter()
                                    .map(|v| {
                                        view! {
                                            <option value=v
                                                .to_string()>{format!("version {v}")}</option>
                                        }
                                    })
                                    .collect_view()
                            }}
                        </select>
                    </label>
                    <button
                        type="submit"
                        class="danger"
                        data-control="roll-back"
                        disabled=roll_back_denied
                        title=roll_back.get_value()
                        aria-busy=move || rollback.pending().get().then_some("true")
                    >
                        "Roll back"
                    </button>
                </ActionForm>
            </Show>
        </div>
        <p class="field-error" role="alert" data-error="rollout-control">
            {error}
        </p>
    }
}
