//! `/hosts`: where VMs run — the backend's kind, its zones, each host (a fault domain of its
//! zone: a libvirt host, or one of the mock's simulated hosts) with its state, its vCPUs and
//! memory used against its limits, its VMs and its images; a Start / End maintenance switch
//! per host (a plain form, so it works without JavaScript; an Owner's); each closed host's
//! progress with the instances still on it and why; and the images every host offers (the
//! wizard's choice). Live in the browser: read again after every change and every activity.

use flotilla_domain::maintenance::{MaintenanceReason, MaintenanceStatus, Waiting};
use flotilla_domain::{BackendInfo, HostStatus};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::backend::{EndMaintenance, StartMaintenance, get_backend};
use crate::components::breadcrumbs::Breadcrumbs;
use crate::components::csrf_field::CsrfField;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::components::permission_note::PermissionNote;
use crate::components::timestamp::Timestamp;
use crate::live::{EVENTS_WITH_ACTIVITY, use_live_events};
use crate::pages::scale_set::Tab;
use crate::viewer::may;
use flotilla_domain::url::percent_encode;

/// The two maintenance actions, made once by the page so that their outcome outlives the
/// re-renders of its body after each read.
#[derive(Clone, Copy)]
struct Actions {
    start: ServerAction<StartMaintenance>,
    end: ServerAction<EndMaintenance>,
}

/// Which action was submitted last (in the browser), so the page shows its outcome.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Start,
    End,
}

#[component]
pub fn HostsPage() -> impl IntoView {
    let backend = crate::resource::new(|| (), |_| get_backend());
    // Activity too: a host closed or returned by someone else changes no instance at first.
    use_live_events(
        || crate::live::events_url(None),
        EVENTS_WITH_ACTIVITY,
        move || backend.refetch(),
    );
    let actions = Actions {
        start: ServerAction::<StartMaintenance>::new(),
        end: ServerAction::<EndMaintenance>::new(),
    };
    let last = RwSignal::new(None::<Last>);
    // Done: read again at once rather than wait for the events.
    Effect::watch(
        move || actions.start.version().get(),
        move |_, _, _| {
            last.set(Some(Last::Start));
            backend.refetch();
        },
        false,
    );
    Effect::watch(
        move || actions.end.version().get(),
        move |_, _, _| {
            last.set(Some(Last::End));
            backend.refetch();
        },
        false,
    );
    // What the last action answered: a sentence, or why it was refused. After a plain form
    // post only the refused one has a value (the server redirects back with its error).
    let outcome = move || {
        let started = move || {
            actions.start.value().get().map(|r| {
                r.map(|s| {
                    format!(
                        "Host {} is under maintenance: its instances move off it.",
                        s.record.host
                    )
                })
                .map_err(refusal_text)
            })
        };
        let ended = move || {
            actions.end.value().get().map(|r| {
                r.map(|m| format!("Host {} takes new instances again.", m.host))
                    .map_err(refusal_text)
            })
        };
        match last.get() {
            Some(Last::Start) => started(),
            Some(Last::End) => ended(),
            None => started().or_else(ended),
        }
    };
    view! {
        <Title text="Hosts" />
        <Breadcrumbs trail=vec![
            ("Overview".to_string(), Some("/".to_string())),
            ("Hosts".to_string(), None),
        ] />
        <h1>"Hosts"</h1>
        {move || {
            outcome()
                .and_then(Result::ok)
                .map(|text| {
                    view! {
                        <p class="notice" role="status" data-state="maintenance-done">
                            {text}
                        </p>
                    }
                })
        }}
        <p class="field-error" role="alert" data-error="maintenance">
            {move || outcome().and_then(Result::err)}
        </p>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match backend.await {
                    Ok(info) => view! { <HostsBody info actions /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// A refusal as the page shows it: the host it concerns, then why.
fn refusal_text(e: crate::api::error::PortalError) -> String {
    match e.target {
        Some(host) => format!("{host}: {}", e.message),
        None => e.message,
    }
}

#[component]
fn HostsBody(info: BackendInfo, actions: Actions) -> impl IntoView {
    let about = if info.kind == "mock" {
        "The built-in simulator: one simulated host per zone × fault domain."
    } else {
        "libvirt hosts: each host is a fault domain of its zone."
    };
    let images = if info.images.is_empty() {
        "none".to_string()
    } else {
        info.images.join(", ")
    };
    // Start and end need the same role; the note says it once, each button in its title.
    let permit = may("start-maintenance", None);
    let hosts = info
        .hosts
        .iter()
        .map(|host| {
            let closed = info
                .maintenance
                .iter()
                .find(|m| m.record.host == host.name)
                .map(|m| m.record.reason);
            host_row(host.clone(), closed, actions)
        })
        .collect_view();
    let has_hosts = !info.hosts.is_empty();
    let maintenance = info.maintenance.clone();
    let none_closed = maintenance.is_empty();
    view! {
        <p class="muted">
            "Backend " <strong data-backend-kind=info.kind.clone()>{info.kind.clone()}</strong> ". "
            {about}
        </p>
        <section aria-label="Zones">
            <h2>"Zones"</h2>
            <table class="data" aria-label="Zones">
                <thead>
                    <tr>
                        <th scope="col">"Zone"</th>
                        <th scope="col">"Fault domains"</th>
                        <th scope="col">"State"</th>
                    </tr>
                </thead>
                <tbody>
                    {info
                        .zones
                        .iter()
                        .map(|z| {
                            view! {
                                <tr data-zone=z.name.clone()>
                                    <th scope="row">{z.name.clone()}</th>
                                    <td class="num">{z.fault_domains}</td>
                                    <td>{zone_state(z)}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </section>
        {has_hosts
            .then(|| {
                view! {
                    <section aria-label="Hosts">
                        <h2>"Hosts"</h2>
                        <p class="muted">
                            "A host under maintenance takes no new instance, and every scale set moves its instances off it by surge: each replacement comes up before the instance leaves."
                        </p>
                        <PermissionNote what="Starting or ending a host's maintenance" permit />
                        <div class="table-wrap" role="region" aria-label="Hosts" tabindex="0">
                            <table class="data hosts" aria-label="Hosts">
                                <thead>
                                    <tr>
                                        <th scope="col">"Host"</th>
                                        <th scope="col">"Zone"</th>
                                        <th scope="col">"Fault domain"</th>
                                        <th scope="col">"vCPUs"</th>
                                        <th scope="col">"Memory"</th>
                                        <th scope="col">"VMs"</th>
                                        <th scope="col">"Images"</th>
                                        <th scope="col">"State"</th>
                                        <th scope="col">"Maintenance"</th>
                                    </tr>
                                </thead>
                                <tbody>{hosts}</tbody>
                            </table>
                        </div>
                    </section>
                }
            })}
        <section aria-labelledby="maintenance-heading">
            <h2 id="maintenance-heading">"Maintenance"</h2>
            {none_closed
                .then(|| {
                    view! {
                        <p class="muted" data-state="no-maintenance">
                            "No host is under maintenance or unreachable."
                        </p>
                    }
                })}
            {maintenance
                .into_iter()
                .map(|status| view! { <MaintenancePanel status /> })
                .collect_view()}
        </section>
        <section aria-label="Images">
            <h2>"Images"</h2>
            <p data-images>{images}</p>
        </section>
    }
}

/// `available`, `down`, and the fault domains closed to new instances.
fn zone_state(zone: &flotilla_domain::ZoneStatus) -> String {
    let state = if zone.available { "available" } else { "down" };
    if zone.closed_fault_domains.is_empty() {
        return state.to_string();
    }
    let closed: Vec<String> = zone
        .closed_fault_domains
        .iter()
        .map(u32::to_string)
        .collect();
    format!("{state}; fault domain(s) {} closed", closed.join(", "))
}

/// A host's state as its row shows it, and as its `data-state` says it.
pub fn host_state(host: &HostStatus, closed: Option<MaintenanceReason>) -> (String, &'static str) {
    match (closed, &host.error) {
        (Some(MaintenanceReason::Maintenance), _) => ("under maintenance".into(), "maintenance"),
        (Some(MaintenanceReason::Unreachable), Some(error)) => {
            (format!("unreachable: {error}"), "unreachable")
        }
        (Some(MaintenanceReason::Unreachable), None) => ("unreachable".into(), "unreachable"),
        (None, Some(error)) => (format!("down: {error}"), "down"),
        (None, None) if !host.available => ("down".into(), "down"),
        (None, None) => ("available".into(), "available"),
    }
}

fn host_row(
    host: HostStatus,
    closed: Option<MaintenanceReason>,
    actions: Actions,
) -> impl IntoView {
    let (state, state_key) = host_state(&host, closed);
    let row_key = host.name.clone();
    view! {
        <tr data-host=row_key data-state=state_key>
            <th scope="row" class="mono" title=host.uri.clone()>
                {host.name.clone()}
            </th>
            <td>{host.zone.clone()}</td>
            <td class="num">{host.fault_domain}</td>
            <td data-cell="vcpus">
                <Usage used=u64::from(host.used_vcpus) total=u64::from(host.vcpus) unit="" />
            </td>
            <td data-cell="memory">
                <Usage used=host.used_memory_mib total=host.memory_mib unit=" MiB" />
            </td>
            <td class="num">{format!("{} running of {}", host.running, host.vms)}</td>
            <td data-cell="images">{host.images.join(", ")}</td>
            <td data-cell="state">{state}</td>
            <td>
                <MaintenanceSwitch host=host.name closed=closed.is_some() actions />
            </td>
        </tr>
    }
}

/// `used` of `total` with a meter; a total of 0 is no limit.
#[component]
fn Usage(used: u64, total: u64, unit: &'static str) -> impl IntoView {
    if total == 0 {
        return view! { <span class="usage">{usage_text(used, total, unit)}</span> }.into_any();
    }
    view! {
        <span class="usage">
            <meter min="0" max=total.to_string() value=used.to_string()></meter>
            {format!(" {}", usage_text(used, total, unit))}
        </span>
    }
    .into_any()
}

/// `2 of 8`, `1024 of 4096 MiB`; `2 (unlimited)` for a total of 0.
pub fn usage_text(used: u64, total: u64, unit: &str) -> String {
    if total == 0 {
        format!("{used}{unit} (unlimited)")
    } else {
        format!("{used} of {total}{unit}")
    }
}

/// Start maintenance on an open host, End maintenance on a closed one: a plain form posting
/// to the server function, disabled with the role it needs for anyone but an Owner.
#[component]
fn MaintenanceSwitch(host: String, closed: bool, actions: Actions) -> impl IntoView {
    let (endpoint, label) = if closed {
        ("end-maintenance", "End maintenance")
    } else {
        ("start-maintenance", "Start maintenance")
    };
    let refusal = may(endpoint, None).reason();
    let denied = refusal.is_some();
    let aria_label = format!("{label} of {host}");
    let busy = {
        let host = host.clone();
        move || {
            let mine = if closed {
                actions.end.pending().get()
                    && actions
                        .end
                        .input()
                        .with(|i| i.as_ref().is_some_and(|i| i.host == host))
            } else {
                actions.start.pending().get()
                    && actions
                        .start
                        .input()
                        .with(|i| i.as_ref().is_some_and(|i| i.host == host))
            };
            mine.then_some("true")
        }
    };
    let fields = view! {
        <CsrfField />
        <input type="hidden" name="host" value=host.clone() />
        <button type="submit" aria-label=aria_label disabled=denied title=refusal aria-busy=busy>
            {label}
        </button>
    };
    if closed {
        view! {
            <ActionForm
                action=actions.end
                attr:class="host-maintenance"
                attr:data-form="end-maintenance"
            >
                {fields}
            </ActionForm>
        }
        .into_any()
    } else {
        view! {
            <ActionForm
                action=actions.start
                attr:class="host-maintenance"
                attr:data-form="start-maintenance"
            >
                {fields}
            </ActionForm>
        }
        .into_any()
    }
}

/// One closed host: since when, by whom, how far its instances got, and each one still on it
/// with its step and why it waits.
#[component]
fn MaintenancePanel(status: MaintenanceStatus) -> impl IntoView {
    let host = status.record.host.clone();
    let heading = format!("maintenance-{host}-heading");
    let labelled_by = heading.clone();
    let label = format!("Instances still on {host}");
    let waiting = status.waiting.clone();
    let has_waiting = !waiting.is_empty();
    let region = label.clone();
    let state = if status.empty { "empty" } else { "moving" };
    view! {
        <section
            class="panel maintenance"
            aria-labelledby=labelled_by
            data-maintenance=host.clone()
            data-state=state
        >
            <h3 id=heading>{format!("Host {host}")}</h3>
            <p data-maintenance-summary>
                {format!("Host {host} {} since ", closed_as(status.record.reason))}
                <Timestamp at=status.record.started_at /> {summary_tail(&status)}
            </p>
            {has_waiting
                .then(|| {
                    view! {
                        <div class="table-wrap" role="region" aria-label=region tabindex="0">
                            <table class="data" aria-label=label>
                                <thead>
                                    <tr>
                                        <th scope="col">"Instance"</th>
                                        <th scope="col">"Scale set"</th>
                                        <th scope="col">"Step"</th>
                                        <th scope="col">"Why"</th>
                                    </tr>
                                </thead>
                                <tbody>{waiting.into_iter().map(waiting_row).collect_view()}</tbody>
                            </table>
                        </div>
                    }
                })}
        </section>
    }
}

/// `is under maintenance`, `is unreachable`.
fn closed_as(reason: MaintenanceReason) -> &'static str {
    match reason {
        MaintenanceReason::Maintenance => "is under maintenance",
        MaintenanceReason::Unreachable => "is unreachable",
    }
}

/// What follows the start time in a closed host's sentence: who closed it, and its progress
/// (` by user:admin: 2 of 3 instances moved.`, `…: it is empty: it can be serviced.`).
pub fn summary_tail(status: &MaintenanceStatus) -> String {
    let record = &status.record;
    let by = match record.reason {
        MaintenanceReason::Maintenance => format!(" by {}", record.started_by),
        MaintenanceReason::Unreachable => String::new(),
    };
    let total = record.instances_at_start;
    let moved = match total {
        0 => String::new(),
        1 => format!("{} of 1 instance moved", status.moved),
        n => format!("{} of {n} instances moved", status.moved),
    };
    match (status.empty, moved.is_empty()) {
        (true, true) => format!("{by}: it is empty: it can be serviced."),
        (true, false) => format!("{by}: {moved}; it is empty: it can be serviced."),
        (false, true) => format!("{by}: instances are moving off it."),
        (false, false) => format!("{by}: {moved}."),
    }
}

fn waiting_row(w: Waiting) -> impl IntoView {
    let set_href = Tab::Overview.href(&w.scale_set);
    let instance_href = format!(
        "{}?q={}",
        Tab::Instances.href(&w.scale_set),
        percent_encode(&w.instance)
    );
    view! {
        <tr data-instance=w.instance.clone() data-step=w.step.clone()>
            <th scope="row" class="mono">
                <a href=instance_href>{w.instance.clone()}</a>
            </th>
            <td>
                <a href=set_href>{w.scale_set.clone()}</a>
            </td>
            <td data-cell="step">{w.step.clone()}</td>
            <td data-cell="why">{w.reason}</td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use flotilla_domain::maintenance::HostMaintenance;

    fn status(
        reason: MaintenanceReason,
        at_start: u32,
        moved: u32,
        empty: bool,
    ) -> MaintenanceStatus {
        MaintenanceStatus {
            record: HostMaintenance {
                host: "1-fd0".into(),
                zone: "1".into(),
                fault_domain: 0,
                reason,
                started_at: chrono::Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap(),
                started_by: "user:admin".into(),
                instances_at_start: at_start,
            },
            moved,
            empty,
            waiting: Vec::new(),
        }
    }

    fn host(error: Option<&str>) -> HostStatus {
        HostStatus {
            name: "1-fd0".into(),
            uri: None,
            zone: "1".into(),
            fault_domain: 0,
            vcpus: 0,
            memory_mib: 0,
            used_vcpus: 2,
            used_memory_mib: 2048,
            vms: 2,
            running: 2,
            images: vec!["debian-12".into()],
            available: error.is_none(),
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn a_closed_hosts_sentence_says_how_far_it_got() {
        use MaintenanceReason::*;
        assert_eq!(
            summary_tail(&status(Maintenance, 3, 2, false)),
            " by user:admin: 2 of 3 instances moved."
        );
        assert_eq!(
            summary_tail(&status(Maintenance, 3, 3, true)),
            " by user:admin: 3 of 3 instances moved; it is empty: it can be serviced."
        );
        assert_eq!(
            summary_tail(&status(Maintenance, 0, 0, true)),
            " by user:admin: it is empty: it can be serviced."
        );
        assert_eq!(
            summary_tail(&status(Unreachable, 1, 0, false)),
            ": 0 of 1 instance moved."
        );
        assert_eq!(closed_as(Unreachable), "is unreachable");
    }

    #[test]
    fn states_and_limits() {
        use MaintenanceReason::*;
        assert_eq!(host_state(&host(None), None).0, "available");
        assert_eq!(host_state(&host(Some("refused")), None).0, "down: refused");
        assert_eq!(
            host_state(&host(None), Some(Maintenance)).0,
            "under maintenance"
        );
        assert_eq!(
            host_state(&host(Some("timed out")), Some(Unreachable)),
            ("unreachable: timed out".to_string(), "unreachable")
        );
        assert_eq!(usage_text(2, 0, ""), "2 (unlimited)");
        assert_eq!(usage_text(1024, 4096, " MiB"), "1024 of 4096 MiB");
    }
}
