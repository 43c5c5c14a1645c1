use leptos::prelude::*;

use crate::components::instance_row::InstanceRow;
use flotilla_domain::Instance;

/// A scale set's instances: identity, placement, model version, the three states, and the
/// actions a person can take on each.
///
/// Rows are keyed by instance id: a fresh read updates the cells in place, so a row's open
/// confirmation, its message and the keyboard focus survive live updates; instances that
/// appear or go add or remove their row only.
#[component]
pub fn InstancesTable(
    /// The scale set.
    scale_set: String,
    /// The instances, in the order to show them.
    instances: Signal<Vec<Instance>>,
    /// The model version instances should run.
    latest_model_version: Signal<u32>,
) -> impl IntoView {
    let empty = move || instances.with(Vec::is_empty);
    view! {
        <Show
            when=move || !empty()
            fallback=|| view! { <p class="muted">"This scale set has no instances."</p> }
        >
            <div class="table-wrap">
                <table class="data instances" aria-label="Instances">
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
                            <th scope="col">"Actions"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For
                            each=move || instances.get()
                            key=|instance| instance.id.clone()
                            children={
                                let scale_set = scale_set.clone();
                                move |first: Instance| {
                                    let id = first.id.clone();
                                    let instance = Memo::new(move |last: Option<&Instance>| {
                                        instances
                                            .with(|all| all.iter().find(|i| i.id == id).cloned())
                                            .or_else(|| last.cloned())
                                            .unwrap_or_else(|| first.clone())
                                    });
                                    // The latest read of this instance (the row goes when it does).
                                    view! {
                                        <InstanceRow
                                            scale_set=scale_set.clone()
                                            instance=instance.into()
                                            latest_model_version
                                        />
                                    }
                                }
                            }
                        />
                    </tbody>
                </table>
            </div>
        </Show>
    }
}
