use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::activity_query;
use crate::api::scale_sets::{SetCapacity, get_scale_set};
use crate::components::capacity_form::CapacityForm;
use crate::components::error_panel::ErrorPanel;
use crate::components::instances_table::InstancesTable;
use crate::components::loading::Loading;
use crate::components::power_summary::PowerSummary;
use crate::components::state_chip::StateChip;
use crate::components::timestamp::Timestamp;
use crate::format;
use crate::live::{self, use_live_updates};
use crate::status::set_status;
use crate::summary::ScaleSetDetail;
use flotilla_domain::ScaleSetState;

/// `/scale-sets/:name`: a scale set's facts, its capacity control and its instances.
///
/// The facts re-render when the data is refetched (after a change, and on the server's
/// events). The capacity control and the instances are rendered once per scale set from a
/// read that is never refetched, and follow later reads in place, so what a person types,
/// an open confirmation and the focus survive a refresh.
#[component]
pub fn ScaleSetPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let detail = Resource::new(name, get_scale_set);
    // Read once per name (never refetched): the first state of the live parts.
    let found = Resource::new(name, get_scale_set);
    let set_capacity = ServerAction::<SetCapacity>::new();
    Effect::watch(
        move || set_capacity.version().get(),
        move |_, _, _| detail.refetch(),
        false,
    );
    use_live_updates(
        move || live::events_url(Some(&name())),
        move || detail.refetch(),
    );
    view! {
        <nav class="breadcrumbs" aria-label="Breadcrumbs">
            <a href="/scale-sets">"Scale sets"</a>
            <span aria-hidden="true">" / "</span>
            <span aria-current="page">{name}</span>
        </nav>
        <Transition fallback=Loading>
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
        </Transition>
        <Suspense>
            {move || Suspend::new(async move {
                found
                    .await
                    .ok()
                    .flatten()
                    .map(|first| view! { <LiveParts first detail set_capacity /> })
            })}
        </Suspense>
    }
}

/// The parts of the page that live across refreshes: the capacity control and the
/// instances (rows keyed by id). Rendered from the first read; every later read of
/// `detail` (in the browser) updates them in place.
#[component]
fn LiveParts(
    first: ScaleSetDetail,
    detail: Resource<Result<Option<ScaleSetDetail>, ServerFnError>>,
    set_capacity: ServerAction<SetCapacity>,
) -> impl IntoView {
    let name = first.scale_set.spec.name.clone();
    let instances = RwSignal::new(first.instances);
    let latest_model_version = RwSignal::new(first.scale_set.model_version);
    // Effects run in the browser only, after hydration: the server and the hydrating
    // browser render the same first read.
    Effect::new(move |_| {
        if let Some(Ok(Some(read))) = detail.get() {
            latest_model_version.set(read.scale_set.model_version);
            instances.set(read.instances);
        }
    });
    view! {
        <section aria-labelledby="scale-heading" class="panel">
            <h2 id="scale-heading">"Scale"</h2>
            <CapacityForm name=name.clone() action=set_capacity />
        </section>
        <section aria-labelledby="instances-heading">
            <h2 id="instances-heading">"Instances"</h2>
            <InstancesTable
                scale_set=name
                instances=instances.into()
                latest_model_version=latest_model_version.into()
            />
        </section>
    }
}

#[component]
fn ScaleSetBody(detail: ScaleSetDetail) -> impl IntoView {
    let ScaleSetDetail {
        scale_set: set,
        counts,
        ..
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
            <a class="page-link" href=activity_query::scale_set_href(&name) data-link="activity">
                "Activity log"
            </a>
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
    }
}
