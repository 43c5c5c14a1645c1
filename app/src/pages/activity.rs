use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use crate::activity_query::ActivityQuery;
use crate::api::activity::list_activity;
use crate::api::scale_sets::scale_set_names;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::components::state_chip::StateChip;
use crate::components::timestamp::Timestamp;
use crate::format;
use flotilla_domain::Activity;

/// `/activity`: the activity log, newest first, filtered and paged by the URL query
/// (`?scale_set=web&result=failed&before=123`). The filters are a GET form, so they work
/// without JavaScript and every view is a link; a value that cannot be read is reported
/// next to its field and nothing is fetched.
#[component]
pub fn ActivityPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(|p| ActivityQuery::from_params(|k| p.get(k))));
    let entries = Resource::new(
        move || query.get(),
        |query| async move {
            match query.to_filter() {
                Ok(filter) => list_activity(filter).await.map(Some),
                Err(_) => Ok(None),
            }
        },
    );
    view! {
        <Title text="Activity" />
        <h1>"Activity"</h1>
        <p class="muted">"What happened in the fleet, newest first. Times are UTC."</p>
        <ActivityFilters query />
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                let limit = query.with(|q| q.to_filter().map(|f| f.limit as usize));
                match (entries.await, limit) {
                    (Ok(Some(entries)), Ok(limit)) => {
                        view! { <ActivityResults entries limit query=query.get_untracked() /> }
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
        </Suspense>
    }
}

/// The filter form: a plain GET to this page.
#[component]
fn ActivityFilters(query: Memo<ActivityQuery>) -> impl IntoView {
    let names = Resource::new(|| (), |_| scale_set_names());
    let errors = Memo::new(move |_| query.with(|q| q.to_filter().err().unwrap_or_default()));
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
    view! {
        <Form method="GET" action="/activity" attr:class="filters" attr:aria-label="Filters">
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
                <a href="/activity">"Clear"</a>
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

/// One page of entries and the links to the newest and the next older page.
#[component]
fn ActivityResults(entries: Vec<Activity>, limit: usize, query: ActivityQuery) -> impl IntoView {
    // A full page may have older entries after it; a shorter one is the last.
    let older = (entries.len() >= limit)
        .then(|| entries.last().map(|a| query.with_before(Some(a.id)).href()))
        .flatten();
    let newest = (!query.before.is_empty()).then(|| query.with_before(None).href());
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
    let table = (!empty).then(|| view! { <ActivityTable entries /> });
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
