use flotilla_domain::{BackendInfo, HostStatus};
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::backend::get_backend;
use crate::components::breadcrumbs::Breadcrumbs;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::live::use_live_updates;

/// `/hosts`: where VMs run — the backend's kind, its zones, each host (libvirt) with its
/// vCPUs and memory used against its limits, its VMs and its images, and the images every
/// host offers (the wizard's choice); live in the browser.
#[component]
pub fn HostsPage() -> impl IntoView {
    let backend = Resource::new(|| (), |_| get_backend());
    use_live_updates(|| crate::live::events_url(None), move || backend.refetch());
    view! {
        <Title text="Hosts" />
        <Breadcrumbs trail=vec![
            ("Overview".to_string(), Some("/".to_string())),
            ("Hosts".to_string(), None),
        ] />
        <h1>"Hosts"</h1>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match backend.await {
                    Ok(info) => view! { <HostsBody info /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn HostsBody(info: BackendInfo) -> impl IntoView {
    let about = if info.kind == "mock" {
        "The built-in simulator: zones and fault domains without hosts."
    } else {
        "libvirt hosts: each host is a fault domain of its zone."
    };
    let images = if info.images.is_empty() {
        "none".to_string()
    } else {
        info.images.join(", ")
    };
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
                                    <td>{if z.available { "available" } else { "down" }}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </section>
        {(!info.hosts.is_empty())
            .then(|| {
                view! {
                    <section aria-label="Hosts">
                        <h2>"Hosts"</h2>
                        <div class="table-wrap">
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
                                    </tr>
                                </thead>
                                <tbody>{info.hosts.into_iter().map(host_row).collect_view()}</tbody>
                            </table>
                        </div>
                    </section>
                }
            })}
        <section aria-label="Images">
            <h2>"Images"</h2>
            <p data-images>{images}</p>
        </section>
    }
}

fn host_row(host: HostStatus) -> impl IntoView {
    let state = match &host.error {
        Some(error) => format!("unreachable: {error}"),
        None => "available".to_string(),
    };
    view! {
        <tr data-host=host.name.clone()>
            <th scope="row" class="mono">
                {host.name.clone()}
            </th>
            <td>{host.zone.clone()}</td>
            <td class="num">{host.fault_domain}</td>
            <td>
                <Usage used=u64::from(host.used_vcpus) total=u64::from(host.vcpus) unit="" />
            </td>
            <td>
                <Usage used=host.used_memory_mib total=host.memory_mib unit=" MiB" />
            </td>
            <td class="num">{format!("{} running of {}", host.running, host.vms)}</td>
            <td>{host.images.join(", ")}</td>
            <td>{state}</td>
        </tr>
    }
}

/// `used` of `total` with a meter.
#[component]
fn Usage(used: u64, total: u64, unit: &'static str) -> impl IntoView {
    view! {
        <span class="usage">
            <meter min="0" max=total.to_string() value=used.to_string()></meter>
            {format!(" {used} of {total}{unit}")}
        </span>
    }
}
