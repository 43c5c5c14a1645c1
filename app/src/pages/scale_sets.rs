use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::scale_sets::list_scale_sets;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::components::state_chip::StateChip;
use crate::components::timestamp::Timestamp;
use crate::format;
use crate::summary::ScaleSetSummary;
use flotilla_domain::ScaleSetState;

/// `/scale-sets`: every scale set in a table.
#[component]
pub fn ScaleSetList() -> impl IntoView {
    let sets = Resource::new(|| (), |_| list_scale_sets());
    view! {
        <Title text="Scale sets" />
        <h1>"Scale sets"</h1>
        <p class="page-actions">
            <a class="button primary" href="/scale-sets/new">
                "Create scale set"
            </a>
        </p>
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match sets.await {
                    Ok(sets) if sets.is_empty() => {
                        view! {
                            <p class="muted">
                                "No scale sets yet. Create one with "
                                <code>"POST /api/v1/scale-sets"</code> "."
                            </p>
                        }
                            .into_any()
                    }
                    Ok(sets) => view! { <ScaleSetTable sets /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ScaleSetTable(sets: Vec<ScaleSetSummary>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="data" aria-label="Scale sets">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Instances (running / desired)"</th>
                        <th scope="col">"Zones"</th>
                        <th scope="col">"Model version"</th>
                        <th scope="col">"Created"</th>
                    </tr>
                </thead>
                <tbody>
                    {sets
                        .into_iter()
                        .map(|s| {
                            let name = s.name().to_string();
                            let set = s.scale_set;
                            view! {
                                <tr data-scale-set=name.clone()>
                                    <th scope="row">
                                        <a href=format!("/scale-sets/{name}")>{name.clone()}</a>
                                        {(set.state == ScaleSetState::Deleting)
                                            .then(|| view! { <StateChip state="deleting" /> })}
                                    </th>
                                    <td class="num" data-cell="instances">
                                        {format!(
                                            "{} / {}",
                                            s.instances.running(),
                                            set.spec.capacity,
                                        )}
                                    </td>
                                    <td>{format::zones(&set.spec.zones)}</td>
                                    <td class="num">{set.model_version}</td>
                                    <td>
                                        <Timestamp at=set.created_at />
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
