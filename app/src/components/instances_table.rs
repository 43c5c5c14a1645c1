use leptos::prelude::*;

use crate::components::state_chip::StateChip;
use flotilla_domain::Instance;

/// A scale set's instances: identity, placement, model version and the three states.
#[component]
pub fn InstancesTable(
    /// The instances, in the order to show them.
    instances: Vec<Instance>,
    /// The model version instances should run.
    latest_model_version: u32,
) -> impl IntoView {
    if instances.is_empty() {
        return view! { <p class="muted">"This scale set has no instances."</p> }.into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="data" aria-label="Instances">
                <thead>
                    <tr>
                        <th scope="col">"ID"</th>
                        <th scope="col">"Zone"</th>
                        <th scope="col">"Fault domain"</th>
                        <th scope="col">"Model version"</th>
                        <th scope="col">"Provisioning"</th>
                        <th scope="col">"Power"</th>
                        <th scope="col">"Health"</th>
                        <th scope="col">"Address"</th>
                    </tr>
                </thead>
                <tbody>
                    {instances
                        .into_iter()
                        .map(|i| {
                            let latest = i.latest_model || i.model_version == latest_model_version;
                            view! {
                                <tr data-instance=i.id.clone()>
                                    <th scope="row" class="mono">
                                        {i.id.clone()}
                                    </th>
                                    <td>{i.zone.clone()}</td>
                                    <td class="num">{i.fault_domain}</td>
                                    <td>
                                        {i.model_version}
                                        {if latest {
                                            view! { <span class="tag">"latest"</span> }.into_any()
                                        } else {
                                            view! { <span class="tag tag-warn">"outdated"</span> }
                                                .into_any()
                                        }}
                                    </td>
                                    <td>
                                        <StateChip state=i.provisioning_state.as_str() />
                                    </td>
                                    <td>
                                        <StateChip state=i.power_state.as_str() />
                                    </td>
                                    <td>
                                        <StateChip state=i.health_state.as_str() />
                                    </td>
                                    <td class="mono">
                                        {i.address.clone().unwrap_or_else(|| "—".to_string())}
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
