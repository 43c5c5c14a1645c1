//! The model's versions (newest first: who stored each and when) and a comparison of two
//! of them, field by field. The comparison is a GET form (`?from=&to=`), so it works
//! without JavaScript and its address can be shared.

use flotilla_domain::rollout::FieldChange;
use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use super::Upgrades;
use super::plan::ChangesTable;
use crate::api::error::PortalError;
use crate::api::upgrades::compare_versions;
use crate::components::loading::Loading;
use crate::components::timestamp::Timestamp;
use crate::pages::scale_set::Tab;

/// The two versions the address asks to compare (`?from=&to=`), and their comparison.
#[derive(Clone, Copy)]
pub(super) struct Comparison {
    asked: Memo<Option<(u32, u32)>>,
    changes: crate::resource::Loaded<Result<Option<Vec<FieldChange>>, PortalError>>,
}

impl Comparison {
    /// Made by the tab itself, outside its Suspense (see `UpgradesTab`).
    pub(super) fn new(name: String) -> Self {
        let params = use_query_map();
        let asked = Memo::new(move |_| {
            params.with(|p| {
                let get = |k: &str| p.get(k).and_then(|v| v.parse::<u32>().ok());
                get("from").zip(get("to"))
            })
        });
        let changes = crate::resource::new(
            move || asked.get().map(|(from, to)| (name.clone(), from, to)),
            |asked| async move {
                match asked {
                    Some((name, from, to)) => compare_versions(name, from, to).await.map(Some),
                    None => Ok(None),
                }
            },
        );
        Self { asked, changes }
    }
}

#[component]
pub(super) fn Versions(up: Upgrades, comparison: Comparison) -> impl IntoView {
    let name = up.name.get_value();
    let path = Tab::Upgrades.href(&name);
    let Comparison {
        asked,
        changes: comparison,
    } = comparison;
    let versions = Memo::new(move |_| {
        up.read.value.with(|r| {
            let mut v = r.versions.clone();
            v.sort_by_key(|v| std::cmp::Reverse(v.version));
            v
        })
    });
    let latest = move || versions.with(|v| v.first().map_or(1, |v| v.version));
    // Compare the two newest versions unless asked otherwise.
    let pick = move |which: &'static str| {
        move || {
            asked.get().map_or_else(
                || match which {
                    "from" => latest().saturating_sub(1).max(1),
                    _ => latest(),
                },
                |(from, to)| if which == "from" { from } else { to },
            )
        }
    };
    let select = move |which: &'static str, label: &'static str| {
        let chosen = pick(which);
        view! {
            <label class="filter">
                {label} <select name=which data-compare=which>
                    {move || {
                        let chosen = chosen();
                        versions
                            .get()
                            .into_iter()
                            .map(|v| {
                                view! {
                                    <option
                                        value=v.version.to_string()
                                        selected=v.version == chosen
                                    >
                                        {format!("version {}", v.version)}
                                    </option>
                                }
                            })
                            .collect_view()
                    }}
                </select>
            </label>
        }
    };
    view! {
        <section aria-labelledby="versions-heading" class="panel" data-section="versions">
            <h2 id="versions-heading">"Model versions"</h2>
            <div class="table-wrap" role="region" aria-label="Model versions" tabindex="0">
                <table class="data" aria-label="Model versions">
                    <thead>
                        <tr>
                            <th scope="col" class="num">
                                "Version"
                            </th>
                            <th scope="col">"Stored by"</th>
                            <th scope="col">"When"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For
                            each=move || versions.get()
                            key=|v| v.version
                            children=move |v| {
                                view! {
                                    <tr data-version=v.version>
                                        <td class="num">{v.version}</td>
                                        <td>{v.created_by.clone()}</td>
                                        <td>
                                            <Timestamp at=v.created_at />
                                        </td>
                                    </tr>
                                }
                            }
                        />
                    </tbody>
                </table>
            </div>
            <h3>"Compare two versions"</h3>
            <Form method="GET" action=path attr:class="filters" attr:aria-label="Compare versions">
                {select("from", "From")}
                {select("to", "To")}
                <div class="filter filter-actions">
                    <button type="submit" data-action="compare">
                        "Compare"
                    </button>
                </div>
            </Form>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match comparison.await {
                        Ok(Some(changes)) => {
                            view! {
                                <div data-comparison="shown">
                                    <ChangesTable changes />
                                </div>
                            }
                                .into_any()
                        }
                        Ok(None) => ().into_any(),
                        Err(refused) => {
                            view! {
                                <p class="field-error" role="alert" data-comparison="refused">
                                    {refused.message}
                                </p>
                            }
                                .into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}
