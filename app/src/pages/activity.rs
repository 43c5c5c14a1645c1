use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::activity::list_activity;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::components::state_chip::StateChip;
use crate::components::timestamp::Timestamp;
use crate::format;
use flotilla_domain::Activity;

/// How many entries the page shows.
const LIMIT: u32 = 100;

/// `/activity`: the latest entries of the activity log, newest first.
#[component]
pub fn ActivityPage() -> impl IntoView {
    let entries = Resource::new(|| (), |_| list_activity(None, LIMIT));
    view! {
        <Title text="Activity" />
        <h1>"Activity"</h1>
        <p class="muted">{format!("The latest {LIMIT} operations, newest first.")}</p>
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match entries.await {
                    Ok(entries) if entries.is_empty() => {
                        view! { <p class="muted">"Nothing has happened yet."</p> }.into_any()
                    }
                    Ok(entries) => view! { <ActivityTable entries /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ActivityTable(entries: Vec<Activity>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="data" aria-label="Activity">
                <thead>
                    <tr>
                        <th scope="col">"Started"</th>
                        <th scope="col">"Operation"</th>
                        <th scope="col">"Scale set"</th>
                        <th scope="col">"Target"</th>
                        <th scope="col">"Actor"</th>
                        <th scope="col">"Duration"</th>
                        <th scope="col">"Result"</th>
                    </tr>
                </thead>
                <tbody>
                    {entries
                        .into_iter()
                        .map(|a| {
                            view! {
                                <tr data-activity=a.id>
                                    <td>
                                        <Timestamp at=a.started_at />
                                    </td>
                                    <th scope="row" class="mono">
                                        {a.operation.clone()}
                                    </th>
                                    <td>
                                        {match a.scale_set.clone() {
                                            Some(set) => {
                                                view! {
                                                    <a href=format!("/scale-sets/{set}")>{set.clone()}</a>
                                                }
                                                    .into_any()
                                            }
                                            None => {
                                                view! { <span class="muted">"—"</span> }.into_any()
                                            }
                                        }}
                                    </td>
                                    <td class="mono">{a.target.clone()}</td>
                                    <td>{a.actor.clone()}</td>
                                    <td class="num">
                                        {a.duration_ms.map(format::duration_ms).unwrap_or_default()}
                                    </td>
                                    <td>
                                        <StateChip state=a.result.as_str() />
                                        {a
                                            .error
                                            .clone()
                                            .map(|e| view! { <p class="error-text">{e}</p> })}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}
