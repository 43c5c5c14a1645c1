//! A rollout's plan before it starts: the target version, batch size and expected time,
//! the field changes from each version in use, and every instance — by batch (zone,
//! canary, the pause after it), relabelled at once, or skipped with its reason.

use flotilla_domain::rollout::{FieldChange, PlannedInstance, RolloutPlan};
use leptos::prelude::*;

use crate::autoscale_draft::wire;
use crate::format;
use crate::rollout_view::{expected, value_text};

#[component]
pub(super) fn PlanView(plan: RolloutPlan) -> impl IntoView {
    let target = plan.target_version;
    let row = move |p: &PlannedInstance, what: String| {
        let action = what.clone();
        view! {
            <tr data-instance=p.id.clone() data-action=action>
                <th scope="row" class="mono">
                    {p.id.clone()}
                    {p.unhealthy.then(|| view! { <span class="tag tag-warn">"unhealthy"</span> })}
                </th>
                <td>{p.zone.clone()}</td>
                <td>{format!("{} → {target}", p.from_version)}</td>
                <td>{what}</td>
            </tr>
        }
    };
    let batches = plan
        .batches
        .iter()
        .map(|b| {
            let mut head = format!(
                "Batch {}: {}",
                b.number,
                format::plural(b.instances.len() as u32, "instance", "instances")
            );
            match &b.zone {
                Some(zone) => head.push_str(&format!(" in zone {zone}")),
                None => head.push_str(" across zones"),
            }
            if b.canary {
                head.push_str(", canary");
            }
            if let Some(pause) = &b.pause_after {
                match pause.wait_seconds {
                    Some(s) => head.push_str(&format!(
                        "; then a pause of {} ({})",
                        format::seconds(s),
                        pause.reason
                    )),
                    None => head.push_str(&format!("; then wait for approval ({})", pause.reason)),
                }
            }
            view! {
                <tbody data-batch=b.number>
                    <tr class="batch-head">
                        <th scope="rowgroup" colspan="4">
                            {head}
                        </th>
                    </tr>
                    {b.instances.iter().map(|p| row(p, wire(p.action))).collect_view()}
                </tbody>
            }
        })
        .collect_view();
    let relabel = (!plan.relabel.is_empty()).then(|| {
        view! {
            <tbody data-batch="relabel">
                <tr class="batch-head">
                    <th scope="rowgroup" colspan="4">
                        "At once, untouched (tags only)"
                    </th>
                </tr>
                {plan.relabel.iter().map(|p| row(p, wire(p.action))).collect_view()}
            </tbody>
        }
    });
    let skipped = (!plan.skipped.is_empty()).then(|| {
        view! {
            <tbody data-batch="skipped">
                <tr class="batch-head">
                    <th scope="rowgroup" colspan="4">
                        "Skipped"
                    </th>
                </tr>
                {plan
                    .skipped
                    .iter()
                    .map(|s| {
                        view! {
                            <tr data-instance=s.id.clone() data-action="skipped">
                                <th scope="row" class="mono">
                                    {s.id.clone()}
                                </th>
                                <td>{s.zone.clone()}</td>
                                <td>{s.model_version}</td>
                                <td>{format!("skipped: {}", s.reason)}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        }
    });
    let changes = plan
        .changes
        .iter()
        .map(|(from, changes)| {
            view! {
                <h4>{format!("From version {from}")}</h4>
                <ChangesTable changes=changes.clone() />
            }
        })
        .collect_view();
    let batched = plan.batched() as u32;
    view! {
        <div class="plan" data-plan=target>
            <dl class="facts">
                <div>
                    <dt>"Target version"</dt>
                    <dd data-fact="plan-target">{target}</dd>
                </div>
                <div>
                    <dt>"Mode"</dt>
                    <dd data-fact="plan-mode">{wire(plan.mode)}</dd>
                </div>
                <div>
                    <dt>"Batches"</dt>
                    <dd data-fact="plan-batches">
                        {format!(
                            "{} of at most {} ({})",
                            plan.batches.len(),
                            plan.batch_size,
                            format::plural(batched, "instance", "instances"),
                        )}
                    </dd>
                </div>
                <div>
                    <dt>"Expected time"</dt>
                    <dd data-fact="plan-expected" title="Approvals are not counted">
                        {expected(&plan)}
                    </dd>
                </div>
                <div>
                    <dt>"Boot time used"</dt>
                    <dd>{format::seconds(plan.boot_seconds)}</dd>
                </div>
            </dl>
            {changes}
            <div class="table-wrap" role="region" aria-label="Planned instances" tabindex="0">
                <table class="data plan-table" aria-label="Planned instances">
                    <thead>
                        <tr>
                            <th scope="col">"Instance"</th>
                            <th scope="col">"Zone"</th>
                            <th scope="col">"Version"</th>
                            <th scope="col">"Action"</th>
                        </tr>
                    </thead>
                    {batches}
                    {relabel}
                    {skipped}
                </table>
            </div>
        </div>
    }
}

/// Field by field, what changes between two model versions.
#[component]
pub(super) fn ChangesTable(changes: Vec<FieldChange>) -> impl IntoView {
    if changes.is_empty() {
        return view! {
            <p class="muted" data-changes="none">
                "The models are the same."
            </p>
        }
        .into_any();
    }
    view! {
        <table class="data changes" aria-label="Field changes">
            <thead>
                <tr>
                    <th scope="col">"Field"</th>
                    <th scope="col">"From"</th>
                    <th scope="col">"To"</th>
                </tr>
            </thead>
            <tbody>
                {changes
                    .into_iter()
                    .map(|c| {
                        view! {
                            <tr data-field=c.field.clone()>
                                <th scope="row" class="mono">
                                    {c.field.clone()}
                                </th>
                                <td class="mono pre">{value_text(&c.from)}</td>
                                <td class="mono pre">{value_text(&c.to)}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
