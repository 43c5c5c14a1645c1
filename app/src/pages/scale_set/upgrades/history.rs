//! Past rollouts, newest first: kind, versions, outcome and message, when each started
//! and ended and how long it took, the rollback links between them, and each one's details
//! behind a disclosure.

use leptos::prelude::*;

use super::Upgrades;
use super::rollout::RolloutDetail;
use crate::autoscale_draft::wire;
use crate::components::state_chip::StateChip;
use crate::components::timestamp::Timestamp;
use crate::rollout_view;

#[component]
pub(super) fn History(up: Upgrades) -> impl IntoView {
    let ids = Memo::new(move |_| {
        up.read
            .value
            .with(|r| r.rollouts.iter().map(|r| r.id).collect::<Vec<_>>())
    });
    view! {
        <section aria-labelledby="history-heading" class="panel" data-section="history">
            <h2 id="history-heading">"Rollout history"</h2>
            <Show
                when=move || ids.with(|r| !r.is_empty())
                fallback=|| view! { <p class="muted">"No rollout yet."</p> }
            >
                <div class="table-wrap" role="region" aria-label="Rollouts" tabindex="0">
                    <table class="data rollouts" aria-label="Rollouts">
                        <thead>
                            <tr>
                                <th scope="col">"Rollout"</th>
                                <th scope="col">"Kind"</th>
                                <th scope="col">"Versions"</th>
                                <th scope="col">"Outcome"</th>
                                <th scope="col">"Started"</th>
                                <th scope="col">"Finished"</th>
                                <th scope="col">"Took"</th>
                            </tr>
                        </thead>
                        <tbody>
                            <For
                                each=move || ids.get()
                                key=|id| *id
                                children=move |id| view! { <HistoryRow up id /> }
                            />
                        </tbody>
                    </table>
                </div>
            </Show>
        </section>
    }
}

/// One past rollout; its cells follow the rollout's newest read, and its details stay
/// open while it changes.
#[component]
fn HistoryRow(up: Upgrades, id: i64) -> impl IntoView {
    let rollout = Memo::new(move |_| {
        up.read
            .value
            .with(|r| r.rollouts.iter().find(|v| v.id == id).cloned())
    });
    let cells = move || {
        rollout.get().map(|o| {
            view! {
                <td>{wire(o.kind)}</td>
                <td>{format!("{} → {}", o.from_version, o.target_version)}</td>
                <td data-cell="outcome">
                    <StateChip state=o.state.as_str() />
                    {o.message.clone().map(|m| view! { <span class="muted">" " {m}</span> })}
                    {o
                        .rollback_of
                        .map(|of| {
                            view! {
                                " rolls back "
                                <a href=format!("#rollout-{of}")>{format!("#{of}")}</a>
                            }
                        })}
                    {o
                        .rolled_back_by
                        .map(|by| {
                            view! {
                                " rolled back by "
                                <a href=format!("#rollout-{by}")>{format!("#{by}")}</a>
                            }
                        })}
                </td>
                <td>
                    <Timestamp at=o.created_at />
                </td>
                <td>{o.finished_at.map(|at| view! { <Timestamp at /> })}</td>
                <td>{rollout_view::took(&o).unwrap_or_else(|| "—".into())}</td>
            }
        })
    };
    view! {
        <tr
            id=format!("rollout-{id}")
            data-rollout=id
            data-state=move || rollout.with(|o| o.as_ref().map(|o| o.state.as_str()))
        >
            <th scope="row">
                <details>
                    <summary>{format!("#{id}")}</summary>
                    <RolloutDetail up id controls=false />
                </details>
            </th>
            {cells}
        </tr>
    }
}
