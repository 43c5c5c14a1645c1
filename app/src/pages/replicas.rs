use flotilla_domain::replica::ReplicaStatus;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::backend::{Replicas, get_replicas};
use crate::components::breadcrumbs::Breadcrumbs;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::format::timestamp;
use crate::pages::scale_set::use_every_visible;

/// `/replicas`: every `flotilla serve` process on this database — which one leads (holds
/// the leader lease, with its generation and expiry), when each started and last said it
/// was alive, and which one answered; refreshed every 2 s in the browser.
#[component]
pub fn ReplicasPage() -> impl IntoView {
    let replicas = crate::resource::new(|| (), |_| get_replicas());
    use_every_visible(std::time::Duration::from_secs(2), move || {
        replicas.refetch()
    });
    view! {
        <Title text="Replicas" />
        <Breadcrumbs trail=vec![
            ("Overview".to_string(), Some("/".to_string())),
            ("Replicas".to_string(), None),
        ] />
        <h1>"Replicas"</h1>
        <p class="muted">
            "The control plane's processes on this database. Every one serves the portal, the API and the load balancer; the one holding the leader lease runs the tasks that act (reconcile, repair, probe, autoscale, roll out). Another takes over within the lease's 15 s when it stops."
        </p>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match replicas.await {
                    Ok(replicas) => view! { <ReplicaTable replicas /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ReplicaTable(replicas: Replicas) -> impl IntoView {
    let Replicas { this, items, now } = replicas;
    let leaders = items.iter().filter(|r| !r.leases.is_empty()).count();
    view! {
        <p data-leaders=leaders>
            {match leaders {
                0 => "No replica leads right now: one takes the lease within seconds.".to_string(),
                _ => format!("{} replica(s), one leading.", items.len()),
            }}
        </p>
        <div class="table-wrap" role="region" aria-label="Replicas" tabindex="0">
            <table class="data" aria-label="Replicas">
                <thead>
                    <tr>
                        <th scope="col">"Replica"</th>
                        <th scope="col">"Role"</th>
                        <th scope="col">"Host"</th>
                        <th scope="col">"Version"</th>
                        <th scope="col">"Started"</th>
                        <th scope="col">"Last heartbeat"</th>
                    </tr>
                </thead>
                <tbody>
                    {items
                        .into_iter()
                        .map(|r| {
                            let answered = r.replica.id == this;
                            replica_row(r, answered, now)
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}

fn replica_row(
    r: ReplicaStatus,
    answered: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> impl IntoView {
    let role = match r.leases.first() {
        Some(lease) => format!(
            "leader (generation {}, lease until {})",
            lease.generation,
            timestamp(&lease.expires_at)
        ),
        None => "standby".to_string(),
    };
    let leading = !r.leases.is_empty();
    let age = (now - r.replica.heartbeat_at).num_seconds().max(0);
    let id = r.replica.id;
    let label = id.clone();
    let badge = answered.then(|| view! { <span class="badge">" this replica"</span> });
    view! {
        <tr data-replica=id data-leader=leading.to_string()>
            <th scope="row" class="mono">
                {label}
                {badge}
            </th>
            <td>{role}</td>
            <td>{r.replica.host}</td>
            <td>{r.replica.version}</td>
            <td>{timestamp(&r.replica.started_at)}</td>
            <td>{format!("{age} s ago")}</td>
        </tr>
    }
}
