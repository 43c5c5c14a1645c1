use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::scale_sets::get_scale_set;
use crate::components::error_panel::ErrorPanel;
use crate::components::instances_table::InstancesTable;
use crate::components::loading::Loading;
use crate::components::power_summary::PowerSummary;
use crate::components::state_chip::StateChip;
use crate::components::timestamp::Timestamp;
use crate::format;
use crate::status::set_status;
use crate::summary::ScaleSetDetail;
use flotilla_domain::ScaleSetState;

/// `/scale-sets/:name`: a scale set's facts and its instances.
#[component]
pub fn ScaleSetPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let detail = Resource::new(name, get_scale_set);
    view! {
        <nav class="breadcrumbs" aria-label="Breadcrumbs">
            <a href="/scale-sets">"Scale sets"</a>
            <span aria-hidden="true">" / "</span>
            <span aria-current="page">{name}</span>
        </nav>
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(Some(detail)) => view! { <ScaleSetBody detail /> }.into_any(),
                    Ok(None) => {
                        set_status(404);
                        view! {
                            <Title text="Scale set not found" />
                            <h1>"Scale set not found"</h1>
                            <p>
                                "There is no scale set named " <code>{name()}</code> ". "
                                <a href="/scale-sets">"See all scale sets"</a> "."
                            </p>
                        }
                            .into_any()
                    }
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ScaleSetBody(detail: ScaleSetDetail) -> impl IntoView {
    let ScaleSetDetail {
        scale_set: set,
        instances,
        counts,
    } = detail;
    let name = set.spec.name.clone();
    let model = &set.spec.model;
    let size = format!(
        "{} · {} vCPU · {} memory · {} GiB disk",
        model.image,
        model.vcpus,
        format::memory_mib(model.memory_mib),
        model.disk_gib
    );
    let upgrade_mode = format!("{:?}", set.spec.upgrade_policy.mode).to_lowercase();
    view! {
        <Title text=name.clone() />
        <header class="page-header">
            <h1>{name.clone()}</h1>
            {(set.state == ScaleSetState::Deleting)
                .then(|| view! { <StateChip state="deleting" /> })}
        </header>
        <section aria-labelledby="facts-heading" class="panel">
            <h2 id="facts-heading">"Facts"</h2>
            <dl class="facts">
                <div>
                    <dt>"Capacity"</dt>
                    <dd data-fact="capacity">{set.spec.capacity}</dd>
                </div>
                <div>
                    <dt>"Running"</dt>
                    <dd data-fact="running">
                        {format!("{} of {}", counts.running(), counts.total)}
                    </dd>
                </div>
                <div>
                    <dt>"Zones"</dt>
                    <dd>{format::zones(&set.spec.zones)}</dd>
                </div>
                <div>
                    <dt>"Fault domains per zone"</dt>
                    <dd>{set.spec.platform_fault_domain_count}</dd>
                </div>
                <div>
                    <dt>"Model"</dt>
                    <dd>{size}</dd>
                </div>
                <div>
                    <dt>"Model version"</dt>
                    <dd>{set.model_version}</dd>
                </div>
                <div>
                    <dt>"Upgrade policy"</dt>
                    <dd>{upgrade_mode}</dd>
                </div>
                <div>
                    <dt>"Created"</dt>
                    <dd>
                        <Timestamp at=set.created_at />
                    </dd>
                </div>
                <div>
                    <dt>"Updated"</dt>
                    <dd>
                        <Timestamp at=set.updated_at />
                    </dd>
                </div>
            </dl>
            <PowerSummary counts label=format!("Instances of {name} by power state") />
        </section>
        <section aria-labelledby="instances-heading">
            <h2 id="instances-heading">"Instances"</h2>
            <InstancesTable instances latest_model_version=set.model_version />
        </section>
    }
}
