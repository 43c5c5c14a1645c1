use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use crate::api::scale_sets::{DeleteScaleSets, list_scale_sets};
use crate::components::breadcrumbs::Breadcrumbs;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::components::power_summary::PowerSummary;
use crate::components::state_chip::StateChip;
use crate::components::timestamp::Timestamp;
use crate::format;
use crate::live::{self, use_live_updates};
use crate::scale_set_query::{ListQuery, SortKey, SortKeys};
use crate::summary::{Breakdown, ScaleSetSummary};
use crate::viewer::may;
use flotilla_domain::ScaleSetState;

/// `/scale-sets`: every scale set in a table, filtered by name and sorted by a column as
/// the URL query says (`?q=web&sort=created&dir=desc`: links and a GET form, so without
/// JavaScript too). With JavaScript, rows can be selected and deleted together after a
/// confirmation that names them; live in the browser.
#[component]
pub fn ScaleSetList() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(|p| ListQuery::from_params(|k| p.get(k))));
    let sets = crate::resource::new(|| (), |_| list_scale_sets());
    use_live_updates(|| live::events_url(None), move || sets.refetch());
    let selected = RwSignal::new(Vec::<String>::new());
    let delete = ServerAction::<DeleteScaleSets>::new();
    // After a bulk delete: forget the selection and show the sets' new state.
    Effect::new(move |previous: Option<usize>| {
        let version = delete.version().get();
        if previous.is_some_and(|p| p != version) {
            selected.set(Vec::new());
            sets.refetch();
        }
        version
    });
    view! {
        <Title text="Scale sets" />
        <Breadcrumbs trail=vec![
            ("Overview".to_string(), Some("/".to_string())),
            ("Scale sets".to_string(), None),
        ] />
        <h1>"Scale sets"</h1>
        {may("create-scale-set", None)
            .allowed()
            .then(|| {
                view! {
                    <p class="page-actions">
                        <a class="button primary" href="/scale-sets/new">
                            "Create scale set"
                        </a>
                    </p>
                }
            })}
        <NameFilter query />
        <BulkDelete selected delete />
        <Transition fallback=Loading>
            {move || {
                let query = query.get();
                Suspend::new(async move {
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
                        Ok(sets) => {
                            let sets = query.apply(sets, sort_keys);
                            view! { <ScaleSetTable sets query selected /> }.into_any()
                        }
                        Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
}

fn sort_keys(s: &ScaleSetSummary) -> SortKeys {
    SortKeys {
        name: s.name().to_string(),
        running: s.instances.running(),
        desired: s.capacity,
        zones: format::zones(&s.zones),
        model_version: s.model_version,
        created_at: s.created_at,
    }
}

/// The name filter: a plain GET to this page that keeps the order.
#[component]
fn NameFilter(query: Memo<ListQuery>) -> impl IntoView {
    let sort = move || query.with(|q| q.sort.as_str());
    let dir = move || query.with(|q| if q.descending { "desc" } else { "asc" });
    view! {
        <Form method="GET" action="/scale-sets" attr:class="filters" attr:role="search">
            <div class="filter">
                <label for="filter-name">"Filter by name"</label>
                <input
                    id="filter-name"
                    name="q"
                    type="search"
                    value=move || query.with(|q| q.filter.clone())
                />
            </div>
            <input type="hidden" name="sort" value=sort />
            <input type="hidden" name="dir" value=dir />
            <div class="filter filter-actions">
                <button type="submit">"Filter"</button>
            </div>
        </Form>
    }
}

/// "Delete selected", its confirmation naming the sets, and each set's outcome.
#[component]
fn BulkDelete(
    selected: RwSignal<Vec<String>>,
    delete: ServerAction<DeleteScaleSets>,
) -> impl IntoView {
    let confirming = RwSignal::new(false);
    // Deleting several sets at once is a fleet-wide Contributor's.
    let refusal = may("delete-scale-sets", None).reason();
    let denied = refusal.is_some();
    let none = move || denied || selected.with(Vec::is_empty);
    let pending = delete.pending();
    let confirm = move |_| {
        delete.dispatch(DeleteScaleSets {
            names: selected.get_untracked(),
        });
        confirming.set(false);
    };
    let outcomes = move || match delete.value().get() {
        Some(Ok(outcomes)) => Some(
            view! {
                <ul class="delete-outcomes" data-delete-outcomes="">
                    {outcomes
                        .into_iter()
                        .map(|o| match o.error {
                            None => {
                                view! {
                                    <li data-outcome=o
                                        .name
                                        .clone()>{format!("Deleting {}.", o.name)}</li>
                                }
                                    .into_any()
                            }
                            Some(e) => {
                                view! {
                                    <li class="error-text" data-outcome=o.name.clone()>
                                        {format!("{} was not deleted: {e}", o.name)}
                                    </li>
                                }
                                    .into_any()
                            }
                        })
                        .collect_view()}
                </ul>
            }
            .into_any(),
        ),
        Some(Err(error)) => Some(view! { <ErrorPanel error /> }.into_any()),
        None => None,
    };
    view! {
        <div class="bulk-actions" aria-busy=move || pending.get().then_some("true")>
            <button
                type="button"
                class="danger"
                disabled=none
                title=refusal
                on:click=move |_| confirming.set(true)
            >
                "Delete selected"
            </button>
            <Show when=move || confirming.get() && !none()>
                <div class="confirm-body" role="group" aria-label="Confirm delete">
                    <p>"Delete these scale sets and all their instances?"</p>
                    <ul data-confirm-names="">
                        {move || {
                            selected
                                .get()
                                .into_iter()
                                .map(|name| view! { <li>{name}</li> })
                                .collect_view()
                        }}
                    </ul>
                    <button type="button" class="danger" on:click=confirm>
                        {move || format!("Delete {} scale sets", selected.with(Vec::len))}
                    </button>
                    <button type="button" on:click=move |_| confirming.set(false)>
                        "Cancel"
                    </button>
                </div>
            </Show>
            {outcomes}
        </div>
    }
}

#[component]
fn ScaleSetTable(
    sets: Vec<ScaleSetSummary>,
    query: ListQuery,
    selected: RwSignal<Vec<String>>,
) -> impl IntoView {
    let header = |key: SortKey, label: &'static str| {
        view! {
            <th scope="col" aria-sort=query.aria_sort(key)>
                <a href=query.sort_href(key) data-sort=key.as_str()>
                    {label}
                </a>
            </th>
        }
    };
    view! {
        <div class="table-wrap" role="region" aria-label="Scale sets" tabindex="0">
            <table class="data" aria-label="Scale sets">
                <thead>
                    <tr>
                        <th scope="col">
                            <span class="visually-hidden">"Select"</span>
                        </th>
                        {header(SortKey::Name, "Name")}
                        {header(SortKey::Instances, "Instances (running / desired)")}
                        {header(SortKey::Zones, "Zones")}
                        {header(SortKey::ModelVersion, "Model version")}
                        <th scope="col">"Health"</th>
                        {header(SortKey::Created, "Created")}
                    </tr>
                </thead>
                <tbody>
                    {sets
                        .into_iter()
                        .map(|s| {
                            let name = s.name().to_string();
                            let (checked_name, toggled_name) = (name.clone(), name.clone());
                            let checked = move || selected.with(|s| s.contains(&checked_name));
                            let toggle = move |ev| {
                                let on = event_target_checked(&ev);
                                selected
                                    .update(|s| {
                                        s.retain(|n| n != &toggled_name);
                                        if on {
                                            s.push(toggled_name.clone());
                                        }
                                    });
                            };
                            view! {
                                <tr data-scale-set=name.clone()>
                                    <td>
                                        <input
                                            type="checkbox"
                                            aria-label=format!("Select {name}")
                                            prop:checked=checked
                                            on:change=toggle
                                        />
                                    </td>
                                    <th scope="row">
                                        <a href=format!("/scale-sets/{name}")>{name.clone()}</a>
                                        {(s.state == ScaleSetState::Deleting)
                                            .then(|| view! { <StateChip state="deleting" /> })}
                                    </th>
                                    <td class="num" data-cell="instances">
                                        {format!("{} / {}", s.instances.running(), s.capacity)}
                                    </td>
                                    <td>{format::zones(&s.zones)}</td>
                                    <td class="num">{s.model_version}</td>
                                    <td data-cell="health">
                                        <PowerSummary
                                            counts=s.instances.clone()
                                            label=format!("Instances of {name} by health state")
                                            by=Breakdown::Health
                                        />
                                    </td>
                                    <td>
                                        <Timestamp at=s.created_at />
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
