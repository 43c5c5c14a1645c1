//! The Health & repairs tab: the set's health probe and repair policy, the repair service
//! (suspended or not — with a Resume button that is a plain form, so it works without
//! JavaScript — its limit, and what it would repair now or holds back, with the reasons),
//! each instance's health with its last probe (a page at a time, as the Instances tab's
//! rows: `instance-rows`), and the history of repairs.
//!
//! The page's [`Live`] read follows the set's events; the last probe of an instance changes
//! without an event (only health *changes* are written), so the tab also re-reads every
//! [`REFRESH`]. The instances' page, the repair service and the history are read again
//! whenever the set's read changes.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flotilla_domain::repair::{PlannedRepair, RepairOverview};
use flotilla_domain::scale_set::{AutomaticRepairs, HealthProbe, ProbeProtocol};
use flotilla_domain::url::percent_encode;
use flotilla_domain::{Activity, Instance};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::instances::ShownPage;
use super::{Live, Polled, Tab, use_every};
use crate::api::health::{ResumeRepairs, get_repairs, repair_history};
use crate::api::instances::{InstancePage, instance_rows};
use crate::components::activity_log::ResultCell;
use crate::components::csrf_field::CsrfField;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::components::state_chip::StateChip;
use crate::components::timestamp::Timestamp;
use crate::format::{self, seconds};
use crate::instance_query::{self, InstanceQuery};
use crate::viewer::may;

/// How often the tab re-reads the set for the instances' latest probes.
pub const REFRESH: Duration = Duration::from_secs(3);

#[component]
pub(super) fn HealthTab(live: Live) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    use_every(REFRESH, move || live.refresh());
    let first_repairs = crate::resource::new(
        {
            let name = name.clone();
            move || name.clone()
        },
        get_repairs,
    );
    let first_history = crate::resource::new(
        {
            let name = name.clone();
            move || name.clone()
        },
        repair_history,
    );
    view! {
        <section aria-labelledby="probe-heading" class="panel">
            <h2 id="probe-heading">"Health probe and repair policy"</h2>
            {move || {
                live.detail
                    .with(|d| {
                        policy_facts(
                            d.scale_set.spec.health_probe.as_ref(),
                            &d.scale_set.spec.automatic_repairs,
                        )
                    })
            }}
        </section>
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match first_repairs.await {
                    Ok(first) => view! { <RepairService live first /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
        <InstanceHealth live />
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match first_history.await {
                    Ok(first) => view! { <RepairHistory live first /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The probe's settings and the repair policy.
fn policy_facts(probe: Option<&HealthProbe>, repairs: &AutomaticRepairs) -> impl IntoView + use<> {
    let probe = match probe {
        None => view! {
            <p class="muted" data-probe="none">
                "No health probe: running instances count as healthy."
            </p>
        }
        .into_any(),
        Some(p) => {
            let target = probe_target(p);
            view! {
                <dl class="facts" data-probe="set">
                    <div>
                        <dt>"Probe"</dt>
                        <dd class="mono" data-fact="probe">
                            {target}
                        </dd>
                    </div>
                    <div>
                        <dt>"Interval"</dt>
                        <dd>{seconds(p.interval_seconds)}</dd>
                    </div>
                    <div>
                        <dt>"Timeout"</dt>
                        <dd>{seconds(p.timeout_seconds)}</dd>
                    </div>
                    <div>
                        <dt>"Healthy after"</dt>
                        <dd>{format::plural(p.healthy_threshold, "success", "successes")}</dd>
                    </div>
                    <div>
                        <dt>"Unhealthy after"</dt>
                        <dd>{format::plural(p.unhealthy_threshold, "failure", "failures")}</dd>
                    </div>
                    <div>
                        <dt>"Grace after start"</dt>
                        <dd>{seconds(p.grace_period_seconds)}</dd>
                    </div>
                </dl>
            }
            .into_any()
        }
    };
    let policy = if repairs.enabled {
        view! {
            <dl class="facts" data-repairs="enabled">
                <div>
                    <dt>"Automatic repairs"</dt>
                    <dd data-fact="repairs">"On"</dd>
                </div>
                <div>
                    <dt>"Grace period"</dt>
                    <dd data-fact="repair-grace">{seconds(repairs.grace_period_seconds)}</dd>
                </div>
                <div>
                    <dt>"Repair action"</dt>
                    <dd data-fact="repair-action">{repairs.repair_action.as_str()}</dd>
                </div>
            </dl>
        }
        .into_any()
    } else {
        view! {
            <p class="muted" data-repairs="disabled">
                "Automatic repairs are off: unhealthy instances stay as they are."
            </p>
        }
        .into_any()
    };
    view! {
        {probe}
        <h3>"Automatic repairs"</h3>
        {policy}
    }
}

/// The repair service: suspended (with Resume) or running, its limit, due and waiting.
#[component]
fn RepairService(live: Live, first: RepairOverview) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let repairs = Polled::new(first);
    let reload = {
        let name = name.clone();
        move || {
            let name = name.clone();
            repairs.reload(move || get_repairs(name));
        }
    };
    // Every newer read of the set may change what the service would do.
    Effect::watch(
        move || live.detail.with(|d| d.read_at),
        {
            let reload = reload.clone();
            move |_, _, _| reload()
        },
        false,
    );
    let resume = ServerAction::<ResumeRepairs>::new();
    Effect::watch(
        move || resume.version().get(),
        move |_, _, _| {
            live.refresh();
            reload();
        },
        false,
    );
    let resume_error = move || {
        resume
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.message)
    };
    let enabled = move || {
        live.detail
            .with(|d| d.scale_set.spec.automatic_repairs.enabled)
    };
    let suspended = move || {
        repairs.value.with(|r| {
            r.status
                .suspended_at
                .map(|at| (at, r.status.suspended_reason.clone().unwrap_or_default()))
        })
    };
    let state = move || {
        if suspended().is_some() {
            "suspended"
        } else if enabled() {
            "active"
        } else {
            "off"
        }
    };
    let banner_name = name.clone();
    let refusal = may("resume-repairs", Some(&name)).reason();
    let due = move || repairs.value.with(|r| r.due.clone());
    let waiting = move || repairs.value.with(|r| r.waiting.clone());
    view! {
        <section aria-labelledby="service-heading" class="panel" data-repair-service=state>
            <h2 id="service-heading">"Repair service"</h2>
            {move || {
                suspended()
                    .map(|(at, reason)| {
                        let name = banner_name.clone();
                        let refusal = refusal.clone();
                        view! {
                            <div
                                class="panel panel-warn banner"
                                role="alert"
                                data-state="suspended"
                            >
                                <p class="panel-title">"Automatic repairs are suspended"</p>
                                <p data-reason="suspended">{reason}</p>
                                <p class="muted">"Since " <Timestamp at /></p>
                                <ActionForm action=resume attr:data-form="resume-repairs">
                                    <CsrfField />
                                    <input type="hidden" name="name" value=name />
                                    <button
                                        type="submit"
                                        disabled=refusal.is_some()
                                        title=refusal
                                        aria-busy=move || resume.pending().get().then_some("true")
                                    >
                                        "Resume repairs"
                                    </button>
                                </ActionForm>
                            </div>
                        }
                    })
            }}
            <p class="field-error" role="alert" data-error="resume-repairs">
                {resume_error}
            </p>
            <dl class="facts">
                <div>
                    <dt>"State"</dt>
                    <dd data-fact="service">{move || view! { <StateChip state=state() /> }}</dd>
                </div>
                <div>
                    <dt>"At once"</dt>
                    <dd data-fact="limit">
                        {move || {
                            repairs
                                .value
                                .with(|r| {
                                    format!(
                                        "at most {} in repair",
                                        format::plural(r.limit as u32, "instance", "instances"),
                                    )
                                })
                        }}
                    </dd>
                </div>
                <div>
                    <dt>"In transition now"</dt>
                    <dd data-fact="in-transition">
                        {move || repairs.value.with(|r| r.in_transition)}
                    </dd>
                </div>
                <div>
                    <dt>"Failed repairs in a row"</dt>
                    <dd data-fact="failures">
                        {move || repairs.value.with(|r| r.status.consecutive_failures)}
                    </dd>
                </div>
            </dl>
            <div class="repair-lists">
                <PlannedList
                    title="Due now"
                    kind="due"
                    empty="Nothing to repair."
                    items=Signal::derive(due)
                    name=name.clone()
                />
                <PlannedList
                    title="Waiting"
                    kind="waiting"
                    empty="Nothing held back."
                    items=Signal::derive(waiting)
                    name=name.clone()
                />
            </div>
        </section>
    }
}

/// Repairs due or held back, each with its reason.
#[component]
fn PlannedList(
    title: &'static str,
    kind: &'static str,
    empty: &'static str,
    #[prop(into)] items: Signal<Vec<PlannedRepair>>,
    name: String,
) -> impl IntoView {
    let heading = format!("{kind}-heading");
    view! {
        <div class="repair-list" data-list=kind>
            <h3 id=heading.clone()>{title}</h3>
            {move || {
                let items = items.get();
                if items.is_empty() {
                    view! { <p class="muted">{empty}</p> }.into_any()
                } else {
                    view! {
                        <ul aria-labelledby=heading
                            .clone()>
                            {items
                                .into_iter()
                                .map(|p| {
                                    let href = instance_href(&name, &p.instance);
                                    view! {
                                        <li data-instance=p.instance.clone()>
                                            <a class="mono" href=href>
                                                {p.instance.clone()}
                                            </a>
                                            " — "
                                            {p.reason}
                                        </li>
                                    }
                                })
                                .collect_view()}
                        </ul>
                    }
                        .into_any()
                }
            }}
        </div>
    }
}

/// Every instance's health and last probe, a page at a time (`?page=&limit=`, the
/// Instances tab's query: the server orders and pages the whole set), read anew with every
/// read of the set.
#[component]
fn InstanceHealth(live: Live) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(|p| InstanceQuery::from_params(|k| p.get(k))));
    let page = {
        let name = name.clone();
        crate::resource::new(
            move || {
                (
                    query.with(InstanceQuery::params),
                    live.detail.with(|d| d.read_at),
                )
            },
            move |(params, _)| instance_rows(name.clone(), params, BTreeSet::new()),
        )
    };
    view! {
        <section aria-labelledby="instance-health-heading" class="panel">
            <h2 id="instance-health-heading">"Instances"</h2>
            <Transition fallback=Loading>
                <HealthTable page query name=name.clone() />
            </Transition>
        </section>
    }
}

/// One page of the health table and its pager. Rows are kept by id, generation and last
/// probe across reads: only the ones that changed are drawn anew.
#[component]
fn HealthTable(
    page: crate::resource::Loaded<Result<Option<InstancePage>, ServerFnError>>,
    query: Memo<InstanceQuery>,
    /// The scale set.
    name: String,
) -> impl IntoView {
    let path = Tab::Health.href(&name);
    let rows = ShownPage::new(page);
    let ShownPage {
        read_at, counts, ..
    } = rows;
    view! {
        {rows.notices()}
        <div class="table-wrap" role="region" aria-label="Instance health" tabindex="0">
            <table class="data health" aria-label="Instance health">
                <thead>
                    <tr>
                        <th scope="col">"ID"</th>
                        <th scope="col">"Zone"</th>
                        <th scope="col">"Health"</th>
                        <th scope="col">"Since"</th>
                        <th scope="col">"Last probe"</th>
                        <th scope="col" class="num">
                            "Latency"
                        </th>
                        <th scope="col">"Result"</th>
                        <th scope="col" class="num">
                            "Repairs"
                        </th>
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || rows.rows()
                        key=|i| {
                            (i.id.clone(), i.generation, i.last_probe.as_ref().map(|p| p.at))
                        }
                        children=move |instance| {
                            view! { <HealthRow instance name=name.clone() read_at /> }
                        }
                    />
                </tbody>
            </table>
        </div>
        <HealthPager counts query path />
    }
}

/// Previous and next page of the health table: links (the router follows them in the
/// browser; without JavaScript they are plain links), or the words alone at either end.
#[component]
fn HealthPager(
    /// The page shown, the instances that match, and all of them.
    counts: Signal<(usize, usize, usize)>,
    query: Memo<InstanceQuery>,
    path: String,
) -> impl IntoView {
    let pages = move || instance_query::pages(counts.get().1, query.with(|q| q.limit));
    let link = move |step: isize, label: &'static str, rel: &'static str| {
        let path = path.clone();
        move || {
            let number = counts.get().0;
            let to = number.saturating_add_signed(step);
            if to < 1 || to > pages() || to == number {
                view! {
                    <span class="muted" data-page=rel aria-disabled="true">
                        {label}
                    </span>
                }
                .into_any()
            } else {
                let href = query.with(|q| q.page_href(&path, to, &BTreeSet::new()));
                view! {
                    <a href=href rel=rel data-page=rel>
                        {label}
                    </a>
                }
                .into_any()
            }
        }
    };
    let position = move || {
        let (number, matched, total) = counts.get();
        instance_query::position(number, matched, total, query.with(|q| q.limit))
    };
    view! {
        <nav
            class="pager"
            aria-label="Pages of instance health"
            data-page=move || counts.get().0
            data-pages=pages
        >
            {link(-1, "Previous", "prev")}
            <span class="pager-position">{position}</span>
            {link(1, "Next", "next")}
        </nav>
    }
}

#[component]
fn HealthRow(instance: Instance, name: String, read_at: Memo<DateTime<Utc>>) -> impl IntoView {
    let since = instance.health_changed_at;
    let probe = instance.last_probe.clone();
    view! {
        <tr data-instance=instance.id.clone() data-health=instance.health_state.as_str()>
            <th scope="row" class="mono">
                <a href=instance_href(&name, &instance.id)>{instance.id.clone()}</a>
            </th>
            <td>{instance.zone.clone()}</td>
            <td data-cell="health">
                <StateChip state=instance.health_state.as_str() />
            </td>
            <td data-cell="since">
                {since
                    .map(|at| {
                        view! {
                            <time datetime=format::datetime_attr(&at) title=format::timestamp(&at)>
                                {move || instance_query::age(at, read_at.get())}
                            </time>
                        }
                    })
                    .map(IntoAny::into_any)
                    .unwrap_or_else(|| view! { <span class="muted">"—"</span> }.into_any())}
            </td>
            <td data-cell="probe">
                {probe.as_ref().map(|p| p.detail.clone()).unwrap_or_else(|| "—".to_string())}
            </td>
            <td class="num" data-cell="latency">
                {probe
                    .as_ref()
                    .map(|p| latency_ms(p.latency_us))
                    .unwrap_or_else(|| "—".to_string())}
            </td>
            <td data-cell="result">
                {probe
                    .as_ref()
                    .map(|p| {
                        let result = if p.success { "success" } else { "failure" };
                        view! {
                            <span
                                class=format!("chip chip-probe-{result}")
                                title=format::timestamp(&p.at)
                            >
                                {result}
                            </span>
                        }
                            .into_any()
                    })
                    .unwrap_or_else(|| {
                        view! { <span class="muted">"not probed"</span> }.into_any()
                    })}
            </td>
            <td class="num" data-cell="repairs">
                {instance.repair_attempts}
            </td>
        </tr>
    }
}

/// The newest repairs, suspensions and resumptions.
#[component]
fn RepairHistory(live: Live, first: Vec<Activity>) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let history = Polled::new(first);
    {
        let name = name.clone();
        Effect::watch(
            move || live.detail.with(|d| d.read_at),
            move |_, _, _| {
                let name = name.clone();
                history.reload(move || repair_history(name));
            },
            false,
        );
    }
    let all = format!("{}?operation=instance.repair", Tab::Activity.href(&name));
    view! {
        <section aria-labelledby="history-heading" class="panel">
            <h2 id="history-heading">"Repair history"</h2>
            <p class="muted">
                "Repairs, suspensions and resumptions, newest first. "
                <a href=all>"All repairs in the activity log"</a> "."
            </p>
            {move || {
                let entries = history.value.get();
                if entries.is_empty() {
                    view! {
                        <p class="muted" data-state="no-repairs">
                            "No repairs yet."
                        </p>
                    }
                        .into_any()
                } else {
                    view! { <HistoryTable entries name=name.clone() /> }.into_any()
                }
            }}
        </section>
    }
}

#[component]
fn HistoryTable(entries: Vec<Activity>, name: String) -> impl IntoView {
    view! {
        <div class="table-wrap" role="region" aria-label="Repair history" tabindex="0">
            <table class="data activity" aria-label="Repair history">
                <thead>
                    <tr>
                        <th scope="col">"Started"</th>
                        <th scope="col">"Operation"</th>
                        <th scope="col">"Target"</th>
                        <th scope="col">"What and why"</th>
                        <th scope="col">"Result"</th>
                    </tr>
                </thead>
                <tbody>
                    {entries
                        .into_iter()
                        .map(|a| {
                            let target = if a.target.starts_with(&format!("{name}_")) {
                                view! {
                                    <a class="mono" href=instance_href(&name, &a.target)>
                                        {a.target.clone()}
                                    </a>
                                }
                                    .into_any()
                            } else {
                                view! { <span class="mono">{a.target.clone()}</span> }.into_any()
                            };
                            view! {
                                <tr
                                    data-activity=a.id
                                    data-operation=a.operation.clone()
                                    data-result=a.result.as_str()
                                >
                                    <td>
                                        <Timestamp at=a.started_at />
                                    </td>
                                    <th scope="row" class="mono">
                                        {a.operation.clone()}
                                    </th>
                                    <td>{target}</td>
                                    <td>{repair_summary(&a)}</td>
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

/// The instance's row on the Instances tab (filtered to it).
pub fn instance_href(scale_set: &str, id: &str) -> String {
    format!(
        "{}?q={}",
        Tab::Instances.href(scale_set),
        percent_encode(id)
    )
}

/// `http :80 /health`, `tcp :5432`.
pub fn probe_target(probe: &HealthProbe) -> String {
    match probe.protocol {
        ProbeProtocol::Http => format!("http :{} {}", probe.port, probe.path),
        ProbeProtocol::Https => format!("https :{} {}", probe.port, probe.path),
        ProbeProtocol::Tcp => format!("tcp :{}", probe.port),
    }
}

/// A probe's latency in milliseconds with one decimal: `0.4 ms`, `12.0 ms`.
pub fn latency_ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

/// What a repair entry did and why, from its details: `restart: unhealthy since …`.
pub fn repair_summary(entry: &Activity) -> String {
    let field = |key: &str| {
        entry
            .details
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    match (field("action"), field("reason")) {
        (Some(action), Some(reason)) => format!("{action}: {reason}"),
        (Some(action), None) => action,
        (None, Some(reason)) => reason,
        (None, None) => match entry.operation.as_str() {
            "repairs.suspended" => "repairs suspended".to_string(),
            "repairs.resume" => format!("resumed by {}", entry.actor),
            _ => String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_domain::ActivityResult;
    use serde_json::json;

    #[test]
    fn latencies_have_one_decimal() {
        assert_eq!(latency_ms(0), "0.0 ms");
        assert_eq!(latency_ms(420), "0.4 ms");
        assert_eq!(latency_ms(12_049), "12.0 ms");
        assert_eq!(latency_ms(12_050), "12.1 ms");
    }

    #[test]
    fn probes_are_named_by_what_they_ask() {
        let mut probe: HealthProbe = serde_json::from_value(json!({
            "protocol": "http", "port": 80, "path": "/health"
        }))
        .unwrap();
        assert_eq!(probe_target(&probe), "http :80 /health");
        probe.protocol = ProbeProtocol::Tcp;
        assert_eq!(probe_target(&probe), "tcp :80");
    }

    #[test]
    fn repair_entries_say_what_and_why() {
        let mut entry = Activity {
            id: 1,
            operation: "instance.repair".into(),
            actor: "system:repairs".into(),
            scale_set: Some("web".into()),
            target: "web_0".into(),
            started_at: DateTime::UNIX_EPOCH,
            ended_at: None,
            duration_ms: None,
            result: ActivityResult::Succeeded,
            error: None,
            details: json!({"action": "restart", "reason": "unhealthy since 1970-01-01T00:00:00Z"}),
            replica: None,
            lease_generation: None,
        };
        assert_eq!(
            repair_summary(&entry),
            "restart: unhealthy since 1970-01-01T00:00:00Z"
        );
        entry.operation = "repairs.resume".into();
        entry.actor = "portal".into();
        entry.details = json!({"suspended_reason": null});
        assert_eq!(repair_summary(&entry), "resumed by portal");
        assert_eq!(
            instance_href("a b", "a b_1"),
            "/scale-sets/a%20b/instances?q=a%20b_1"
        );
    }
}
