//! The Instances tab: the set's instances in a table that sorts, filters and pages by the
//! URL query (a GET form and header links: works without JavaScript) — the server sorts
//! and filters the whole set and sends one page (`instance-rows`) — and a selection
//! toolbar acting on the ticked rows — start, stop, restart, and behind a confirmation
//! deallocate, reimage, delete; protection; and upgrading them to the latest model (a
//! manual rollout, followed on the Upgrades tab). The toolbar, the checkboxes and the pager
//! are one plain form posting to the `instances-action` server function (the pager to
//! `instances-go`, which carries the ticked rows to the next page's address), so it works
//! without JavaScript too, across pages; with JavaScript the selection lives in the
//! browser across pages, a progress bar follows the request until its instances settle,
//! and "select all" ticks every row shown. Below the table, the warm pool's members, which
//! are not the set's instances ([`super::warm_pool`]).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::{use_navigate, use_query_map};

use super::warm_pool::WarmPoolPanel;
use super::{Live, Tab};
use crate::api::instances::{ActOnInstances, InstancePage, instance_rows};
use crate::components::confirm_action::ConfirmAction;
use crate::components::csrf_field::CsrfField;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::components::permission_note::PermissionNote;
use crate::components::state_chip::StateChip;
use crate::format;
use crate::instance_query::{self, InstanceColumn, InstanceQuery};
use crate::table_sort::Column;
use crate::viewer::may;
use flotilla_domain::{HealthState, Instance, PowerState, ProvisioningState};

/// The last request's instances, followed until they settle.
#[derive(Debug, Clone, PartialEq)]
struct Request {
    done: String,
    ids: Vec<String>,
}

/// The page sizes the filter form offers (any other `limit` up to
/// [`instance_query::MAX_LIMIT`] works in the address).
const PAGE_SIZES: [usize; 5] = [
    25,
    instance_query::DEFAULT_LIMIT,
    100,
    250,
    instance_query::MAX_LIMIT,
];

/// The toolbar's actions that need no confirmation: `(action, label)`.
const PLAIN_ACTIONS: [(&str, &str); 3] =
    [("start", "Start"), ("stop", "Stop"), ("restart", "Restart")];

/// The toolbar's actions behind a confirmation: `(action, label, consequence)`.
const CONFIRMED_ACTIONS: [(&str, &str, &str); 3] = [
    (
        "deallocate",
        "Deallocate",
        "They stop and release their host resources.",
    ),
    (
        "reimage",
        "Reimage",
        "Their disks are rebuilt from the image.",
    ),
    (
        "delete",
        "Delete",
        "Their VMs are destroyed and the capacity drops by as many.",
    ),
];

#[component]
pub(super) fn InstancesTab(live: Live) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let path = Tab::Instances.href(&name);
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(|p| InstanceQuery::from_params(|k| p.get(k))));
    // Ticked instances, on any page: first the ones the address carries (ticked on other
    // pages without JavaScript).
    let selected =
        RwSignal::new(params.with_untracked(|p| instance_query::selection(|k| p.get(k))));
    let request = RwSignal::new(None::<Request>);
    let watch = Memo::new(move |_| {
        request.with(|r| {
            r.as_ref()
                .map(|r| r.ids.iter().cloned().collect::<BTreeSet<_>>())
                .unwrap_or_default()
        })
    });
    // A page of rows, read anew with every read of the set (on the server's events and
    // after the person's changes) and with every change of the query.
    let page = {
        let name = name.clone();
        crate::resource::new(
            move || {
                (
                    query.with(InstanceQuery::params),
                    watch.get(),
                    live.detail.with(|d| d.read_at),
                )
            },
            move |(params, watch, _)| instance_rows(name.clone(), params, watch),
        )
    };
    let shown = move || page.get().and_then(Result::ok).flatten();
    // Instances that went away leave the selection.
    Effect::new(move |_| {
        if let Some(p) = shown() {
            let gone: Vec<String> = p
                .watching
                .iter()
                .filter(|id| !p.watched.iter().any(|i| &i.id == *id))
                .cloned()
                .collect();
            if selected.with_untracked(|s| gone.iter().any(|id| s.contains(id))) {
                selected.update(|s| s.retain(|id| !gone.contains(id)));
            }
        }
    });
    // Who may not act on instances sees every action disabled, and why.
    let permit = may("instances-action", Some(&name));
    let denied = permit.denied();
    let refusal = permit.reason();
    // Buttons are disabled for an empty selection only once the browser tracks it.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let nothing_selected =
        Signal::derive(move || denied || (hydrated.get() && selected.with(|s| s.is_empty())));
    // Upgrading means something only for selected instances not on the latest model; one
    // on another page may be outdated.
    let nothing_outdated = Signal::derive(move || {
        denied
            || hydrated.get()
                && selected.with(|s| {
                    let latest = live.detail.with(|d| d.scale_set.model_version);
                    let rows = shown().map(|p| p.rows).unwrap_or_default();
                    s.iter().all(|id| {
                        rows.iter()
                            .find(|i| &i.id == id)
                            .is_some_and(|i| instance_query::is_latest(i, latest))
                    })
                })
    });

    let action = ServerAction::<ActOnInstances>::new();
    Effect::watch(
        move || action.version().get(),
        move |_, _, _| {
            if let Some(Ok(outcome)) = action.value().get_untracked() {
                request.set(Some(Request {
                    done: outcome.done.clone(),
                    ids: outcome.updated.iter().map(|i| i.id.clone()).collect(),
                }));
            }
            live.refresh();
        },
        false,
    );
    let outcome_message = move || match action.value().get() {
        Some(Ok(outcome)) if !outcome.refused.is_empty() => Some(
            outcome
                .refused
                .iter()
                .map(|(id, reason)| format!("{id}: {reason}"))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Some(Err(error)) => Some(error.message),
        _ => None,
    };
    let upgrade_started = move || match action.value().get() {
        Some(Ok(outcome)) => outcome.rollout.map(|_| outcome.done),
        _ => None,
    };
    let upgrades_tab = Tab::Upgrades.href(&name);
    let count = move || selected.with(BTreeSet::len);
    let question = move |verb: &'static str| {
        Signal::derive(move || match count() {
            0 => format!("{verb} the selected instances?"),
            n => format!(
                "{verb} {}?",
                format::plural(n as u32, "instance", "instances")
            ),
        })
    };
    let latest_version = Memo::new(move |_| live.detail.with(|d| d.scale_set.model_version));
    // Reading a console is an Operator's (it may show secrets typed at boot).
    let console = may("console", Some(&name)).reason();
    view! {
        <InstanceFilters query path=path.clone() live />
        <PermissionNote what="Acting on instances" permit />
        <ActionForm
            action
            attr:class="instances-form"
            attr:aria-label="Actions on the selected instances"
        >
            <CsrfField />
            <input type="hidden" name="name" value=name.clone() />
            <div
                class="bulk-actions toolbar"
                role="group"
                aria-label="Actions on the selected instances"
                aria-busy=move || action.pending().get().then_some("true")
            >
                <span class="selection-count" aria-live="polite" data-selected=count>
                    {move || format!("{} selected", count())}
                </span>
                {PLAIN_ACTIONS
                    .map(|(value, label)| {
                        view! {
                            <button
                                type="submit"
                                name="action"
                                value=value
                                disabled=nothing_selected
                                title=refusal.clone()
                            >
                                {label}
                            </button>
                        }
                    })
                    .collect_view()}
                {CONFIRMED_ACTIONS
                    .map(|(value, label, consequence)| {
                        view! {
                            <ConfirmAction
                                action=value
                                label
                                question=question(label)
                                consequence
                                close_on=action.version()
                                disabled=nothing_selected
                                refusal=refusal.clone()
                            />
                        }
                    })
                    .collect_view()}
                <details class="confirm" data-confirm="protect">
                    <summary>"Protect…"</summary>
                    <div class="confirm-body">
                        <label>
                            <input type="checkbox" name="scale_in" />
                            " From scale-in"
                        </label>
                        <label>
                            <input type="checkbox" name="scale_set_actions" />
                            " From scale-set actions"
                        </label>
                        <button
                            type="submit"
                            name="action"
                            value="protect"
                            disabled=nothing_selected
                            title=refusal.clone()
                        >
                            "Set protection"
                        </button>
                    </div>
                </details>
                <details class="confirm" data-confirm="lifecycle">
                    <summary>"Lifecycle…"</summary>
                    <div class="confirm-body">
                        <p class="muted">
                            "End each selected instance's wait on its lifecycle hook."
                        </p>
                        <button
                            type="submit"
                            name="action"
                            value="lifecycle-continue"
                            disabled=nothing_selected
                            title=refusal.clone()
                        >
                            "Continue"
                        </button>
                        <button
                            type="submit"
                            name="action"
                            value="lifecycle-abandon"
                            disabled=nothing_selected
                            title=refusal.clone()
                        >
                            "Abandon"
                        </button>
                        <label>
                            "Busy for (s) "
                            <input
                                type="number"
                                name="busy_seconds"
                                min="0"
                                max="3600"
                                value="600"
                            />
                        </label>
                        <button
                            type="submit"
                            name="action"
                            value="busy"
                            disabled=nothing_selected
                            title=refusal.clone()
                        >
                            "Set busy"
                        </button>
                    </div>
                </details>
                <button
                    type="submit"
                    name="action"
                    value="upgrade"
                    disabled=nothing_outdated
                    title=refusal
                        .clone()
                        .unwrap_or_else(|| {
                            "Upgrade the selected instances that are not on the latest model"
                                .to_string()
                        })
                >
                    "Upgrade to latest model"
                </button>
            </div>
            {move || {
                upgrade_started()
                    .map(|done| {
                        view! {
                            <p class="notice" role="status" data-state="upgrade-started">
                                {done}
                                ". "
                                <a href=upgrades_tab.clone()>"Follow it on the Upgrades tab"</a>
                                "."
                            </p>
                        }
                    })
            }}
            <RequestProgress request page />
            <p class="field-error" role="alert" data-error="instances-action">
                {outcome_message}
            </p>
            <Transition fallback=Loading>
                <InstanceTable
                    page
                    query
                    path=path.clone()
                    selected
                    latest_version
                    console=console.clone()
                />
            </Transition>
        </ActionForm>
        <WarmPoolPanel live />
    }
}

/// One page of the table, the selection's ticked instances on other pages (as hidden
/// fields, so the form acts on them too), and the pager. Rows are kept by id and
/// generation across reads: only the ones that changed are drawn anew.
#[component]
fn InstanceTable(
    page: crate::resource::Loaded<Result<Option<InstancePage>, ServerFnError>>,
    query: Memo<InstanceQuery>,
    path: String,
    selected: RwSignal<BTreeSet<String>>,
    latest_version: Memo<u32>,
    /// Why the console may not be read, when it may not.
    console: Option<String>,
) -> impl IntoView {
    let rows = ShownPage::new(page);
    let ShownPage {
        current,
        read_at,
        counts,
        ..
    } = rows;
    let shown = move || {
        current.with(|p| {
            p.as_ref()
                .map(|p| p.rows.iter().map(|i| i.id.clone()).collect::<Vec<_>>())
                .unwrap_or_default()
        })
    };
    let elsewhere = move || {
        let shown = shown();
        selected.with(|s| {
            s.iter()
                .filter(|id| !shown.contains(id))
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    let all_shown_selected = move || {
        let shown = shown();
        !shown.is_empty() && selected.with(|s| shown.iter().all(|id| s.contains(id)))
    };
    let select_all = move |_| {
        let all = all_shown_selected();
        let shown = shown();
        selected.update(|s| {
            for id in shown {
                if all {
                    s.remove(&id);
                } else {
                    s.insert(id);
                }
            }
        });
    };
    view! {
        {rows.notices()}
        {move || {
            elsewhere()
                .into_iter()
                .map(|id| view! { <input type="hidden" name="ids[]" value=id /> })
                .collect_view()
        }}
        <div class="table-wrap" role="region" aria-label="Instances" tabindex="0">
            <table class="data instances" aria-label="Instances">
                <thead>
                    <tr>
                        <th scope="col" class="select">
                            <input
                                type="checkbox"
                                aria-label="Select every instance shown"
                                prop:checked=all_shown_selected
                                on:change=select_all
                            />
                        </th>
                        {InstanceColumn::ALL
                            .iter()
                            .map(|&column| {
                                let href = {
                                    let path = path.clone();
                                    move || query.with(|q| q.sort_href(&path, column))
                                };
                                view! {
                                    <th
                                        scope="col"
                                        aria-sort=move || query.with(|q| q.sort.aria(column))
                                    >
                                        <a href=href data-sort=column.as_str()>
                                            {column_label(column)}
                                        </a>
                                    </th>
                                }
                            })
                            .collect_view()}
                        <th scope="col">
                            <span class="visually-hidden">"Console"</span>
                        </th>
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || rows.rows()
                        key=|i| (i.id.clone(), i.generation)
                        children=move |instance| {
                            view! {
                                <InstanceRow
                                    instance
                                    selected
                                    read_at
                                    latest_version
                                    console=console.clone()
                                />
                            }
                        }
                    />
                </tbody>
            </table>
        </div>
        {move || {
            let (_, matched, total) = counts.get();
            (total > 0 && matched == 0)
                .then(|| {
                    view! {
                        <p class="muted" data-state="no-match">
                            "No instance matches the filters."
                        </p>
                    }
                })
        }}
        <Pager counts query path />
    }
}

/// A page of rows read under a transition (the server waits for it before it answers),
/// as a table draws it.
#[derive(Clone, Copy)]
pub(super) struct ShownPage {
    /// The read.
    page: crate::resource::Loaded<Result<Option<InstancePage>, ServerFnError>>,
    /// The last page read (none before the first, nor after a failed read).
    pub current: Memo<Option<InstancePage>>,
    /// When it was read: the instant the rows' ages are counted to.
    pub read_at: Memo<DateTime<Utc>>,
    /// The page shown, the instances that match, and all of them.
    pub counts: Signal<(usize, usize, usize)>,
}

impl ShownPage {
    pub fn new(page: crate::resource::Loaded<Result<Option<InstancePage>, ServerFnError>>) -> Self {
        let current = Memo::new(move |_| page.get().and_then(Result::ok).flatten());
        Self {
            page,
            current,
            read_at: Memo::new(move |_| {
                current
                    .with(|p| p.as_ref().map(|p| p.read_at))
                    .unwrap_or_default()
            }),
            counts: Signal::derive(move || {
                current
                    .with(|p| p.as_ref().map(|p| (p.page, p.matched, p.total)))
                    .unwrap_or((1, 0, 0))
            }),
        }
    }

    /// What stands above the table: the read's failure, the set gone, or no instances.
    pub fn notices(self) -> impl IntoView {
        let Self {
            page,
            current,
            counts,
            ..
        } = self;
        move || {
            page.with(|read| match read {
                Some(Err(error)) => Some(view! { <ErrorPanel error=error.clone() /> }.into_any()),
                Some(Ok(None)) => Some(
                    view! { <p class="muted">"This scale set no longer exists."</p> }.into_any(),
                ),
                _ => None,
            })
            .or_else(|| {
                (counts.get().2 == 0 && current.with(Option::is_some)).then(|| {
                    view! { <p class="muted">"This scale set has no instances."</p> }.into_any()
                })
            })
        }
    }

    /// The page's rows (none before the first read).
    pub fn rows(self) -> Vec<Instance> {
        self.current
            .with(|p| p.as_ref().map(|p| p.rows.clone()).unwrap_or_default())
    }
}

/// Previous and next page: buttons of the table's form, so that without JavaScript they
/// post the ticked instances along (`instances-go` answers with the page and the
/// selection in its address); with JavaScript they move to the page in the browser and
/// the selection stays as it is.
#[component]
fn Pager(
    /// The page shown, the instances that match, and all of them.
    counts: Signal<(usize, usize, usize)>,
    query: Memo<InstanceQuery>,
    path: String,
) -> impl IntoView {
    let pages = move || {
        let (_, matched, _) = counts.get();
        instance_query::pages(matched, query.with(|q| q.limit))
    };
    let number = move || counts.get().0;
    let navigate = use_navigate();
    let button = move |step: isize, label: &'static str, rel: &'static str| {
        let to = move || number().saturating_add_signed(step);
        let off = move || to() < 1 || to() > pages() || to() == number();
        let navigate = navigate.clone();
        let path = path.clone();
        view! {
            <button
                type="submit"
                formaction="/_fn/instances-go"
                formnovalidate=true
                name="go"
                value=move || to().to_string()
                disabled=off
                data-page=rel
                on:click=move |ev| {
                    ev.prevent_default();
                    let href = query.with_untracked(|q| q.page_href(&path, to(), &BTreeSet::new()));
                    navigate(&href, Default::default());
                }
            >
                {label}
            </button>
        }
    };
    let position = move || {
        let (number, matched, total) = counts.get();
        instance_query::position(number, matched, total, query.with(|q| q.limit))
    };
    // The table's query but the page: what `instances-go` reads back.
    let view_fields = move || {
        query.with(|q| {
            q.params()
                .into_iter()
                .filter(|(key, _)| key != "page")
                .map(|(key, value)| {
                    view! { <input type="hidden" name=format!("view[{key}]") value=value /> }
                })
                .collect_view()
        })
    };
    view! {
        <nav class="pager" aria-label="Pages of instances" data-page=number data-pages=pages>
            {view_fields}
            {button(-1, "Previous", "previous")}
            <span class="pager-position">{position}</span>
            {button(1, "Next", "next")}
        </nav>
    }
}

fn column_label(column: InstanceColumn) -> &'static str {
    match column {
        InstanceColumn::Id => "ID",
        InstanceColumn::Zone => "Zone",
        InstanceColumn::FaultDomain => "Fault domain",
        InstanceColumn::ModelVersion => "Model",
        InstanceColumn::Provisioning => "Provisioning",
        InstanceColumn::Power => "Power",
        InstanceColumn::Health => "Health",
        InstanceColumn::Protection => "Protection",
        InstanceColumn::Age => "Age",
        InstanceColumn::Address => "Address",
    }
}

/// The filter form: a plain GET to the tab, keeping the order. It is drawn anew when the
/// query changes (after a client-side navigation), so it always shows the filters applied.
#[component]
fn InstanceFilters(query: Memo<InstanceQuery>, path: String, live: Live) -> impl IntoView {
    move || filter_form(query.get(), path.clone(), live)
}

fn filter_form(q: InstanceQuery, path: String, live: Live) -> impl IntoView {
    let zones = live
        .detail
        .with_untracked(|d| d.scale_set.spec.zones.clone());
    let states: Vec<&'static str> = ProvisioningState::ALL
        .iter()
        .map(|s| s.as_str())
        .chain(PowerState::ALL.iter().map(|s| s.as_str()))
        .chain(HealthState::ALL.iter().map(|s| s.as_str()))
        .collect();
    let option = |value: &str, label: &str, current: &str| {
        view! {
            <option value=value.to_string() selected=current == value>
                {label.to_string()}
            </option>
        }
    };
    view! {
        <Form
            method="GET"
            action=path.clone()
            attr:class="filters"
            attr:aria-label="Filter instances"
        >
            <label class="filter">
                "ID or address"
                <input type="search" name="q" value=q.text.clone() autocomplete="off" />
            </label>
            <label class="filter">
                "State" <select name="state">
                    <option value="">"Any"</option>
                    {states.into_iter().map(|s| option(s, s, &q.state)).collect_view()}
                </select>
            </label>
            {(!zones.is_empty())
                .then(|| {
                    view! {
                        <label class="filter">
                            "Zone" <select name="zone">
                                <option value="">"Any"</option>
                                {zones.iter().map(|z| option(z, z, &q.zone)).collect_view()}
                            </select>
                        </label>
                    }
                })}
            <label class="filter">
                "Model"
                <select name="model">
                    {option("", "Any", q.model.as_str())}
                    {option("latest", "Latest", q.model.as_str())}
                    {option("outdated", "Outdated", q.model.as_str())}
                </select>
            </label>
            <label class="filter">
                "Rows"
                <select name="limit">
                    {PAGE_SIZES
                        .iter()
                        .map(|n| {
                            let n = n.to_string();
                            option(&n, &n, &q.limit.to_string())
                        })
                        .collect_view()}
                </select>
            </label>
            <input type="hidden" name="sort" value=q.sort.key.as_str() />
            <input type="hidden" name="dir" value=q.sort.dir() />
            <div class="filter filter-actions">
                <button type="submit">"Filter"</button>
                {q.filtered().then(|| view! { <a href=path>"Clear"</a> })}
            </div>
        </Form>
    }
}

/// How far the last request on the selection has come, once a page read follows it.
#[component]
fn RequestProgress(
    request: RwSignal<Option<Request>>,
    page: crate::resource::Loaded<Result<Option<InstancePage>, ServerFnError>>,
) -> impl IntoView {
    let progress = move || {
        let r = request.get()?;
        let ids: BTreeSet<String> = r.ids.iter().cloned().collect();
        let settled = page.with(|read| match read {
            Some(Ok(Some(p))) if p.watching == ids => {
                Some(instance_query::settled_count(&r.ids, &p.watched))
            }
            _ => None,
        });
        Some((r, settled.unwrap_or_default()))
    };
    move || {
        progress()
            .filter(|(r, _)| !r.ids.is_empty())
            .map(|(r, settled)| {
                let total = r.ids.len();
                let text = format!(
                    "{} for {}: {settled} of {total} done",
                    r.done,
                    format::plural(total as u32, "instance", "instances"),
                );
                view! {
                    <p class="progress" role="status" data-progress=format!("{settled}/{total}")>
                        <progress max=total value=settled aria-label=text.clone()></progress>
                        {text}
                    </p>
                }
            })
    }
}

/// One instance: a checkbox for the selection, then its facts.
#[component]
fn InstanceRow(
    instance: Instance,
    selected: RwSignal<BTreeSet<String>>,
    read_at: Memo<chrono::DateTime<chrono::Utc>>,
    latest_version: Memo<u32>,
    /// Why the console may not be read, when it may not.
    console: Option<String>,
) -> impl IntoView {
    let id = instance.id.clone();
    let checked = {
        let id = id.clone();
        Memo::new(move |_| selected.with(|s| s.contains(&id)))
    };
    let toggle = {
        let id = id.clone();
        move |_| {
            selected.update(|s| {
                if !s.remove(&id) {
                    s.insert(id.clone());
                }
            })
        }
    };
    let created = instance.created_at;
    let latest = {
        let instance = instance.clone();
        move || instance_query::is_latest(&instance, latest_version.get())
    };
    view! {
        <tr data-instance=id.clone() aria-selected=move || checked.get().to_string()>
            <td class="select">
                <input
                    type="checkbox"
                    name="ids[]"
                    value=id.clone()
                    aria-label=format!("Select {id}")
                    checked=checked.get_untracked()
                    prop:checked=checked
                    on:change=toggle
                />
            </td>
            <th scope="row" class="mono">
                {id.clone()}
                {instance_query::lifecycle(&instance, read_at.get_untracked())
                    .map(|(text, title)| {
                        let tag = text.clone();
                        view! {
                            <span class="tag" data-lifecycle=tag title=title>
                                {text}
                            </span>
                        }
                    })}
                {instance
                    .last_error
                    .clone()
                    .map(|e| {
                        view! {
                            <span class="tag tag-warn" title=e>
                                "error"
                            </span>
                        }
                    })}
            </th>
            <td>{instance.zone.clone()}</td>
            <td class="num">{instance.fault_domain}</td>
            <td>
                {instance.model_version}
                {move || {
                    if latest() {
                        view! { <span class="tag">"latest"</span> }.into_any()
                    } else {
                        view! { <span class="tag tag-warn">"outdated"</span> }.into_any()
                    }
                }}
            </td>
            <td data-cell="provisioning">
                <StateChip state=instance.provisioning_state.as_str() />
            </td>
            <td data-cell="power">
                <StateChip state=instance.power_state.as_str() />
            </td>
            <td data-cell="health">
                <StateChip state=instance.health_state.as_str() />
            </td>
            <td data-cell="protection">{instance_query::protection(&instance)}</td>
            <td>
                <time datetime=format::datetime_attr(&created) title=format::timestamp(&created)>
                    {move || instance_query::age(created, read_at.get())}
                </time>
            </td>
            <td class="mono">{instance.address.clone().unwrap_or_else(|| "—".to_string())}</td>
            <td>
                {match console {
                    None => {
                        view! {
                            <a
                                href=format!(
                                    "/scale-sets/{}/instances/{id}/console",
                                    instance.scale_set,
                                )
                                aria-label=format!("Console of {id}")
                            >
                                "Console"
                            </a>
                        }
                            .into_any()
                    }
                    Some(why) => {
                        view! {
                            <span class="muted" title=why data-console="denied">
                                "Console"
                            </span>
                        }
                            .into_any()
                    }
                }}
            </td>
        </tr>
    }
}
