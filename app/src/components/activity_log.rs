use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::{use_location, use_query_map};

use crate::activity_query::{ActivityQuery, ActivityScope};
use crate::api::activity::list_activity;
use crate::api::scale_sets::scale_set_names;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::components::state_chip::StateChip;
use crate::components::timestamp::Timestamp;
use crate::format;
use crate::live::{self, use_live_events};
use flotilla_domain::{Activity, ActivityFilter, ActivityResult, FieldError};

/// The activity log, newest first — who did what, on which resource, when, how long it
/// took, the result and the error — filtered and paged by the page's URL query
/// (`?result=failed&before=123`). The filters are a GET form to the current path and the
/// paging links keep that path, so they work without JavaScript and every view is a link;
/// a value that cannot be read is reported next to its field and nothing is fetched. In
/// the browser the newest page (no `before` cursor) grows live as entries are recorded;
/// older pages stay as they are.
///
/// With `scale_set` (a scale set's page) the log is fixed to that set and has no scale
/// set filter; without it, it is the whole fleet's, filterable by set.
#[component]
pub fn ActivityLog(
    /// The scale set whose log this is; omitted (or `None`) for the whole fleet's.
    #[prop(optional, into)]
    scale_set: MaybeProp<String>,
) -> impl IntoView {
    let path = use_location().pathname;
    let params = use_query_map();
    let scope = Memo::new(move |_| ActivityScope {
        path: path.get(),
        scale_set: scale_set.get(),
    });
    let query = Memo::new(move |_| scope.with(|scope| params.with(|p| scope.query(|k| p.get(k)))));
    let filter = Memo::new(move |_| scope.with(|scope| query.with(|q| scope.filter(q))));
    let entries = crate::resource::new(
        move || filter.get(),
        |filter| async move {
            match filter {
                Ok(filter) => list_activity(filter).await.map(Some),
                Err(_) => Ok(None),
            }
        },
    );
    use_live_events(
        move || live::events_url(scale_set.get().as_deref()),
        live::ACTIVITY_EVENTS,
        move || {
            if query.with_untracked(|q| q.is_newest()) {
                entries.refetch();
            }
        },
    );
    view! {
        <ActivityFilters scope query filter />
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let limit = filter.with(|f| f.as_ref().ok().map(|f| f.limit as usize));
                match (entries.await, limit) {
                    (Ok(Some(entries)), Some(limit)) => {
                        view! {
                            <ActivityResults
                                entries
                                limit
                                scope=scope.get_untracked()
                                query=query.get_untracked()
                            />
                        }
                            .into_any()
                    }
                    (Err(error), _) => view! { <ErrorPanel error /> }.into_any(),
                    _ => {
                        view! {
                            <p class="muted" data-state="invalid-filter">
                                "Correct the filters above to see the log."
                            </p>
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// The filter form: a plain GET to the current page.
#[component]
fn ActivityFilters(
    scope: Memo<ActivityScope>,
    query: Memo<ActivityQuery>,
    filter: Memo<Result<ActivityFilter, Vec<FieldError>>>,
) -> impl IntoView {
    let errors = Memo::new(move |_| filter.with(|f| f.as_ref().err().cloned().unwrap_or_default()));
    let message = move |field: &'static str| {
        move || {
            errors.with(|errors| {
                errors
                    .iter()
                    .filter(|e| e.field == field)
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        }
    };
    let invalid = move |field: &'static str| {
        move || {
            errors
                .with(|e| e.iter().any(|e| e.field == field))
                .then_some("true")
        }
    };
    let value = move |get: fn(&ActivityQuery) -> &String| move || query.with(|q| get(q).clone());
    let result = move || query.with(|q| q.result.clone());
    let path = move || scope.with(|s| s.path.clone());
    let fleet_wide = Memo::new(move |_| scope.with(|s| s.scale_set.is_none()));
    view! {
        <Form method="GET" action=path attr:class="filters" attr:aria-label="Filters">
            <Show when=move || fleet_wide.get()>
                <ScaleSetFilter query />
            </Show>
            <div class="filter">
                <label for="filter-actor">"Actor"</label>
                <input
                    id="filter-actor"
                    name="actor"
                    type="text"
                    placeholder="alice"
                    autocomplete="off"
                    value=value(|q| &q.actor)
                />
            </div>
            <div class="filter">
                <label for="filter-operation">"Operation"</label>
                <input
                    id="filter-operation"
                    name="operation"
                    type="text"
                    placeholder="scale_set.create"
                    value=value(|q| &q.operation)
                />
            </div>
            <div class="filter">
                <label for="filter-result">"Result"</label>
                <select
                    id="filter-result"
                    name="result"
                    aria-invalid=invalid("result")
                    aria-describedby="filter-result-message"
                >
                    {[
                        ("any", "Any"),
                        ("succeeded", "Succeeded"),
                        ("failed", "Failed"),
                        ("in_progress", "In progress"),
                    ]
                        .into_iter()
                        .map(|(v, label)| {
                            view! {
                                <option
                                    value=v
                                    selected=move || {
                                        let r = result();
                                        r == v || (v == "any" && r.is_empty())
                                    }
                                >
                                    {label}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
                <p id="filter-result-message" class="field-error" data-error="result">
                    {message("result")}
                </p>
            </div>
            <div class="filter">
                <label for="filter-since">"Since (UTC)"</label>
                <input
                    id="filter-since"
                    name="since"
                    type="datetime-local"
                    step="1"
                    value=value(|q| &q.since)
                    aria-invalid=invalid("since")
                    aria-describedby="filter-since-message"
                />
                <p id="filter-since-message" class="field-error" data-error="since">
                    {message("since")}
                </p>
            </div>
            <div class="filter">
                <label for="filter-until">"Until (UTC)"</label>
                <input
                    id="filter-until"
                    name="until"
                    type="datetime-local"
                    step="1"
                    value=value(|q| &q.until)
                    aria-invalid=invalid("until")
                    aria-describedby="filter-until-message"
                />
                <p id="filter-until-message" class="field-error" data-error="until">
                    {message("until")}
                </p>
            </div>
            {move || {
                query
                    .with(|q| (!q.limit.is_empty()).then(|| q.limit.clone()))
                    .map(|limit| view! { <input type="hidden" name="limit" value=limit /> })
            }}
            <div class="filter filter-actions">
                <button type="submit">"Apply filters"</button>
                <a href=path>"Clear"</a>
            </div>
            <p class="field-error" data-error="paging">
                {move || {
                    let (before, limit) = (message("before")(), message("limit")());
                    [before, limit]
                        .into_iter()
                        .filter(|m| !m.is_empty())
                        .collect::<Vec<_>>()
                        .join("; ")
                }}
            </p>
        </Form>
    }
}

/// The scale set picker of the fleet's log.
#[component]
fn ScaleSetFilter(query: Memo<ActivityQuery>) -> impl IntoView {
    let names = crate::resource::new(|| (), |_| scale_set_names());
    view! {
        <div class="filter">
            <label for="filter-scale-set">"Scale set"</label>
            <Suspense fallback=|| {
                view! {
                    <select id="filter-scale-set" name="scale_set">
                        <option value="">"Any"</option>
                    </select>
                }
            }>
                {move || Suspend::new(async move {
                    let mut names = names.await.unwrap_or_default();
                    let chosen = query.with_untracked(|q| q.scale_set.clone());
                    if !chosen.is_empty() && !names.contains(&chosen) {
                        names.push(chosen.clone());
                    }
                    view! {
                        <select id="filter-scale-set" name="scale_set">
                            <option value="" selected=chosen.is_empty()>
                                "Any"
                            </option>
                            {names
                                .into_iter()
                                .map(|name| {
                                    let selected = name == chosen;
                                    view! {
                                        <option value=name.clone() selected=selected>
                                            {name.clone()}
                                        </option>
                                    }
                                })
                                .collect_view()}
                        </select>
                    }
                })}
            </Suspense>
        </div>
    }
}

/// One page of entries and the links to the newest and the next older page.
#[component]
fn ActivityResults(
    entries: Vec<Activity>,
    limit: usize,
    scope: ActivityScope,
    query: ActivityQuery,
) -> impl IntoView {
    // A full page may have older entries after it; a shorter one is the last.
    let older = (entries.len() >= limit)
        .then(|| {
            entries
                .last()
                .map(|a| scope.href(&query.with_before(Some(a.id))))
        })
        .flatten();
    let newest = (!query.is_newest()).then(|| scope.href(&query.with_before(None)));
    let pager = (older.is_some() || newest.is_some()).then(|| {
        view! {
            <nav class="pager" aria-label="Pages">
                {newest
                    .map(|href| {
                        view! {
                            <a href=href rel="first">
                                "← Newest"
                            </a>
                        }
                    })}
                {older
                    .map(|href| {
                        view! {
                            <a href=href rel="next">
                                "Older →"
                            </a>
                        }
                    })}
            </nav>
        }
    });
    let empty = entries.is_empty();
    let show_scale_set = scope.scale_set.is_none();
    let table = (!empty).then(|| view! { <ActivityTable entries show_scale_set /> });
    view! {
        <Show when=move || empty>
            <p class="muted" data-state="empty">
                "No activity matches."
            </p>
        </Show>
        {table}
        {pager}
    }
}

/// The entries; the scale set column only in the fleet's log.
#[component]
fn ActivityTable(entries: Vec<Activity>, show_scale_set: bool) -> impl IntoView {
    view! {
        <div class="table-wrap" role="region" aria-label="Activity" tabindex="0">
            <table class="data activity" aria-label="Activity">
                <thead>
                    <tr>
                        <th scope="col">"Started"</th>
                        <th scope="col">"Operation"</th>
                        {show_scale_set.then(|| view! { <th scope="col">"Scale set"</th> })}
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
                            let scale_set = show_scale_set
                                .then(|| {
                                    view! {
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
                                    }
                                });
                            view! {
                                <tr
                                    data-activity=a.id
                                    data-result=a.result.as_str()
                                    data-scale-set=a.scale_set.clone().unwrap_or_default()
                                >
                                    <td>
                                        <Timestamp at=a.started_at />
                                    </td>
                                    <th scope="row" class="mono">
                                        {a.operation.clone()}
                                    </th>
                                    {scale_set}
                                    <td class="mono">{a.target.clone()}</td>
                                    <td>{a.actor.clone()}</td>
                                    <td class="num">
                                        {a.duration_ms.map(format::duration_ms).unwrap_or_default()}
                                    </td>
                                    <ResultCell result=a.result error=a.error.clone() />
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// An activity entry's result as a table cell: its chip, and the error under it.
#[component]
pub fn ResultCell(result: ActivityResult, error: Option<String>) -> impl IntoView {
    view! {
        <td>
            <StateChip state=result.as_str() />
            {error.map(|e| view! { <p class="error-text">{e}</p> })}
        </td>
    }
}
