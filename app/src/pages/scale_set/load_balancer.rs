//! The Load balancer tab: each frontend of the set as configured (protocol, listen address,
//! algorithm, backend port, path rules to other sets, timeouts) with its live statistics,
//! and the members of the pools it sends to, each with a Drain / Enable switch; then the
//! set's instances that are in no pool, with why. The switch is one small plain form per
//! instance, so it works without JavaScript.
//!
//! The statistics are counters in the load balancer's memory, with no events: in the
//! browser the tab reads them again every [`REFRESH`] (the timer stops when the tab is
//! left), and after every newer read of the set. Only the changed cells are redrawn, so a
//! button keeps its focus.

use std::time::Duration;

use flotilla_domain::Instance;
use flotilla_domain::load_balancer::{BackendStats, FrontendStats, Histogram, StatusClasses};
use flotilla_domain::scale_set::{Frontend, FrontendProtocol};
use leptos::form::ActionForm;
use leptos::prelude::*;

use super::health::instance_href;
use super::{Live, Polled, Tab, use_every};
use crate::api::health::{SetInstanceLoadBalancer, load_balancer_stats};
use crate::components::csrf_field::CsrfField;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::components::state_chip::StateChip;
use crate::viewer::may;
use flotilla_domain::{DesiredPower, HealthState, PowerState, ProvisioningState};

/// How often the statistics are read again while the tab is open.
pub const REFRESH: Duration = Duration::from_secs(2);

#[component]
pub(super) fn LoadBalancerTab(live: Live) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let first = crate::resource::new(move || name.clone(), load_balancer_stats);
    view! {
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match first.await {
                    Ok(first) => view! { <Balancer live first /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

type Stats = Polled<Vec<FrontendStats>>;

#[component]
fn Balancer(live: Live, first: Vec<FrontendStats>) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let stats: Stats = Polled::new(first);
    let reload = {
        let name = name.clone();
        move || {
            let name = name.clone();
            stats.reload(move || load_balancer_stats(name));
        }
    };
    use_every(REFRESH, reload.clone());
    Effect::watch(
        move || live.detail.with(|d| d.read_at),
        {
            let reload = reload.clone();
            move |_, _, _| reload()
        },
        false,
    );
    let action = ServerAction::<SetInstanceLoadBalancer>::new();
    Effect::watch(
        move || action.version().get(),
        move |_, _, _| {
            if let Some(Ok(instance)) = action.value().get_untracked() {
                live.merge(std::slice::from_ref(&instance));
            }
            live.refresh();
            reload();
        },
        false,
    );
    let error = move || {
        action
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| match e.target {
                Some(id) => format!("{id}: {}", e.message),
                None => e.message,
            })
    };
    let frontends = Memo::new(move |_| {
        live.detail.with(|d| {
            d.scale_set
                .spec
                .load_balancer
                .as_ref()
                .map(|lb| lb.frontends.clone())
                .unwrap_or_default()
        })
    });
    let app_port = Memo::new(move |_| live.detail.with(|d| d.scale_set.spec.model.app_port));
    let settings = Tab::Settings.href(&name);
    view! {
        <p class="field-error" role="alert" data-error="load-balancer-switch">
            {error}
        </p>
        <Show
            when=move || !frontends.with(Vec::is_empty)
            fallback=move || {
                view! {
                    <div class="panel" data-state="no-load-balancer">
                        <p>
                            "No load balancer: add a frontend in "
                            <a href=settings.clone()>"Settings → JSON"</a> " / via "
                            <code>"PATCH /api/v1/scale-sets/{name}"</code> "."
                        </p>
                    </div>
                }
            }
        >
            <For
                each=move || frontends.get()
                key=|f| serde_json::to_string(f).unwrap_or_else(|_| f.name.clone())
                children={
                    let name = name.clone();
                    move |frontend| {
                        view! {
                            <FrontendPanel frontend own=name.clone() app_port stats live action />
                        }
                    }
                }
            />
            <OutOfPool own=name.clone() stats live action />
        </Show>
    }
}

/// One frontend: its settings, its figures and its pools' members.
#[component]
fn FrontendPanel(
    frontend: Frontend,
    own: String,
    app_port: Memo<u16>,
    stats: Stats,
    live: Live,
    action: ServerAction<SetInstanceLoadBalancer>,
) -> impl IntoView {
    let fe_name = frontend.name.clone();
    let current = {
        let fe_name = fe_name.clone();
        Memo::new(move |_| {
            stats
                .value
                .with(|all| all.iter().find(|f| f.name == fe_name).cloned())
        })
    };
    let heading = format!("frontend-{fe_name}-heading");
    let port = frontend.port;
    let listen = move || {
        current.with(|f| {
            f.as_ref()
                .map(|f| f.listen.clone())
                .unwrap_or_else(|| format!(":{port} (not listening)"))
        })
    };
    let backend_port = frontend.backend_port;
    let backend_port = move || match backend_port {
        Some(p) => p.to_string(),
        None => format!("{} (the app port)", app_port.get()),
    };
    let algorithm = serde_json::to_value(frontend.algorithm)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let timeouts = timeouts(&frontend);
    let has_rules = !frontend.rules.is_empty();
    let rules = frontend
        .rules
        .iter()
        .map(|r| {
            let href = Tab::LoadBalancer.href(&r.scale_set);
            view! {
                <li data-rule=r.path_prefix.clone()>
                    <code>{r.path_prefix.clone()}</code>
                    " → "
                    <a href=href>{r.scale_set.clone()}</a>
                </li>
            }
        })
        .collect_view();
    let figure = move |get: fn(&FrontendStats) -> String| {
        move || current.with(|f| f.as_ref().map(get).unwrap_or_else(|| "—".to_string()))
    };
    let members = move || {
        current.with(|f| {
            f.as_ref()
                .map(|f| {
                    f.backends
                        .iter()
                        .map(|b| (b.pool.clone(), b.id.clone()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    };
    let no_members = move || members().is_empty();
    let section_label = heading.clone();
    let section_data = fe_name.clone();
    let stats_label = format!("Traffic of frontend {fe_name}");
    let members_label = format!("Members of frontend {fe_name}");
    view! {
        <section aria-labelledby=section_label class="panel frontend" data-frontend=section_data>
            <h2 id=heading>
                {format!("Frontend {fe_name}")} " "
                <span class="tag">{frontend.protocol.as_str()}</span>
            </h2>
            <dl class="facts">
                <div>
                    <dt>"Listens on"</dt>
                    <dd class="mono" data-fact="listen">
                        {listen}
                    </dd>
                </div>
                <div>
                    <dt>"Protocol"</dt>
                    <dd>{protocol_label(frontend.protocol)}</dd>
                </div>
                <div>
                    <dt>"Algorithm"</dt>
                    <dd data-fact="algorithm">{algorithm}</dd>
                </div>
                <div>
                    <dt>"Backend port"</dt>
                    <dd data-fact="backend-port">{backend_port}</dd>
                </div>
                <div>
                    <dt>"Timeouts"</dt>
                    <dd>{timeouts}</dd>
                </div>
                <div>
                    <dt>"Path rules"</dt>
                    <dd>
                        {if has_rules {
                            view! { <ul class="rules">{rules}</ul> }.into_any()
                        } else {
                            view! {
                                <span class="muted">"none: every request goes to this set"</span>
                            }
                                .into_any()
                        }}
                    </dd>
                </div>
            </dl>
            <dl class="stats lb-stats" aria-label=stats_label>
                <div class="stat">
                    <dt>{requests_label(frontend.protocol)}</dt>
                    <dd data-stat="requests">{figure(|f| f.requests.to_string())}</dd>
                </div>
                <div class="stat">
                    <dt>"Responses"</dt>
                    <dd data-stat="responses" class="responses">
                        {figure(|f| responses(&f.responses))}
                    </dd>
                </div>
                <div class="stat">
                    <dt>"In / out"</dt>
                    <dd data-stat="bytes">
                        {figure(|f| format!("{} / {}", bytes(f.bytes_in), bytes(f.bytes_out)))}
                    </dd>
                </div>
                <div class="stat">
                    <dt>"Open connections"</dt>
                    <dd data-stat="active">{figure(|f| f.active_connections.to_string())}</dd>
                </div>
                <div class="stat">
                    <dt>"Latency p50 / p99"</dt>
                    <dd data-stat="latency">
                        {figure(|f| {
                            format!(
                                "{} / {}",
                                quantile(&f.latency, 0.5),
                                quantile(&f.latency, 0.99),
                            )
                        })}
                    </dd>
                </div>
            </dl>
            <h3>"Pool members"</h3>
            <Show when=no_members>
                <p class="muted" data-state="no-members">
                    "No instance serves this frontend yet: only running, healthy instances join the pool."
                </p>
            </Show>
            <Show when=move || !no_members()>
                <div class="table-wrap" role="region" aria-label=members_label.clone() tabindex="0">
                    <table class="data members" aria-label=members_label.clone()>
                        <thead>
                            <tr>
                                <th scope="col">"Instance"</th>
                                {has_rules.then(|| view! { <th scope="col">"Scale set"</th> })}
                                <th scope="col">"Address"</th>
                                <th scope="col">"State"</th>
                                <th scope="col" class="num">
                                    {requests_label(frontend.protocol)}
                                </th>
                                <th scope="col" class="num">
                                    "Failures"
                                </th>
                                <th scope="col" class="num">
                                    "Active"
                                </th>
                                <th scope="col" class="num">
                                    "p50"
                                </th>
                                <th scope="col">"Switch"</th>
                            </tr>
                        </thead>
                        <tbody>
                            <For
                                each=members
                                key=|k| k.clone()
                                children={
                                    let own = own.clone();
                                    move |(pool, id)| {
                                        view! {
                                            <MemberRow
                                                pool
                                                id
                                                own=own.clone()
                                                show_pool=has_rules
                                                current
                                                live
                                                action
                                            />
                                        }
                                    }
                                }
                            />
                        </tbody>
                    </table>
                </div>
            </Show>
        </section>
    }
}

#[component]
fn MemberRow(
    pool: String,
    id: String,
    own: String,
    show_pool: bool,
    current: Memo<Option<FrontendStats>>,
    live: Live,
    action: ServerAction<SetInstanceLoadBalancer>,
) -> impl IntoView {
    let member = {
        let (pool, id) = (pool.clone(), id.clone());
        Memo::new(move |_| {
            current.with(|f| {
                f.as_ref().and_then(|f| {
                    f.backends
                        .iter()
                        .find(|b| b.pool == pool && b.id == id)
                        .cloned()
                })
            })
        })
    };
    let cell = move |get: fn(&BackendStats) -> String| {
        move || member.with(|b| b.as_ref().map(get).unwrap_or_default())
    };
    let state = move || member.with(|b| b.as_ref().map(|b| b.state.clone()).unwrap_or_default());
    let switch = if pool == own {
        view! { <Switch id=id.clone() name=own.clone() live action /> }.into_any()
    } else {
        view! { <span class="muted">"—"</span> }.into_any()
    };
    view! {
        <tr data-member=id.clone() data-pool=pool.clone() data-state=state>
            <th scope="row" class="mono">
                <a href=instance_href(&pool, &id)>{id.clone()}</a>
            </th>
            {show_pool.then(|| view! { <td>{pool.clone()}</td> })}
            <td class="mono">{cell(|b| b.addr.clone())}</td>
            <td data-cell="state">{move || view! { <StateChip state=state() /> }}</td>
            <td class="num" data-cell="requests">
                {cell(|b| b.requests.to_string())}
            </td>
            <td class="num" data-cell="failures">
                {cell(|b| b.failures.to_string())}
            </td>
            <td class="num" data-cell="active">
                {cell(|b| b.active.to_string())}
            </td>
            <td class="num" data-cell="p50">
                {cell(|b| quantile(&b.latency, 0.5))}
            </td>
            <td>{switch}</td>
        </tr>
    }
}

/// The set's instances in no pool, with why.
#[component]
fn OutOfPool(
    own: String,
    stats: Stats,
    live: Live,
    action: ServerAction<SetInstanceLoadBalancer>,
) -> impl IntoView {
    let outside = {
        let own = own.clone();
        Memo::new(move |_| {
            let pooled: Vec<String> = stats.value.with(|all| {
                all.iter()
                    .flat_map(|f| f.backends.iter())
                    .filter(|b| b.pool == own)
                    .map(|b| b.id.clone())
                    .collect()
            });
            live.detail.with(|d| {
                d.instances
                    .iter()
                    .filter(|i| !pooled.contains(&i.id))
                    .map(|i| (i.id.clone(), out_of_pool_reason(i)))
                    .collect::<Vec<_>>()
            })
        })
    };
    view! {
        <section aria-labelledby="outside-heading" class="panel">
            <h2 id="outside-heading">"Instances in no pool"</h2>
            <Show
                when=move || !outside.with(Vec::is_empty)
                fallback=|| {
                    view! {
                        <p class="muted" data-state="all-pooled">
                            "Every instance of this set is in the pool."
                        </p>
                    }
                }
            >
                <div
                    class="table-wrap"
                    role="region"
                    aria-label="Instances in no pool"
                    tabindex="0"
                >
                    <table class="data outside" aria-label="Instances in no pool">
                        <thead>
                            <tr>
                                <th scope="col">"Instance"</th>
                                <th scope="col">"Why"</th>
                                <th scope="col">"Switch"</th>
                            </tr>
                        </thead>
                        <tbody>
                            <For
                                each=move || outside.get()
                                key=|k| k.clone()
                                children={
                                    let own = own.clone();
                                    move |(id, why)| {
                                        let row = id.clone();
                                        let href = instance_href(&own, &id);
                                        view! {
                                            <tr data-outside=row>
                                                <th scope="row" class="mono">
                                                    <a href=href>{id.clone()}</a>
                                                </th>
                                                <td data-cell="why">{why}</td>
                                                <td>
                                                    <Switch id name=own.clone() live action />
                                                </td>
                                            </tr>
                                        }
                                    }
                                }
                            />
                        </tbody>
                    </table>
                </div>
            </Show>
        </section>
    }
}

/// The instance's load balancer switch: Drain when enabled, Enable when drained.
#[component]
fn Switch(
    id: String,
    name: String,
    live: Live,
    action: ServerAction<SetInstanceLoadBalancer>,
) -> impl IntoView {
    let enabled = {
        let id = id.clone();
        Memo::new(move |_| {
            live.detail.with(|d| {
                d.instances
                    .iter()
                    .find(|i| i.id == id)
                    .map(|i| i.load_balancer_enabled)
            })
        })
    };
    let label = move || match enabled.get() {
        Some(false) => "Enable",
        _ => "Drain",
    };
    let target = id.clone();
    let form_data = id.clone();
    let refusal = may("instance-load-balancer", Some(&name)).reason();
    let denied = refusal.is_some();
    view! {
        <ActionForm action attr:class="lb-switch" attr:data-switch=form_data>
            <CsrfField />
            <input type="hidden" name="name" value=name />
            <input type="hidden" name="id" value=id.clone() />
            <input
                type="hidden"
                name="enabled"
                value=move || (enabled.get() == Some(false)).to_string()
            />
            <button
                type="submit"
                aria-label=move || format!("{} {target}", label())
                disabled=move || denied || enabled.get().is_none()
                title=refusal
                aria-busy=move || action.pending().get().then_some("true")
            >
                {label}
            </button>
        </ActionForm>
    }
    .into_any()
}

/// Why an instance of the set is in no pool (as `Instance::in_pool` decides it), or, for
/// one that belongs in it, that it is on its way.
pub fn out_of_pool_reason(i: &Instance) -> String {
    if i.provisioning_state == ProvisioningState::Deleting {
        return "being deleted".into();
    }
    if i.provisioning_state != ProvisioningState::Succeeded {
        return format!("not provisioned ({})", i.provisioning_state.as_str());
    }
    if i.power_state != PowerState::Running {
        return format!("not running ({})", i.power_state.as_str());
    }
    if i.desired_power != DesiredPower::Running {
        return format!("on its way to {}", i.desired_power.as_str());
    }
    if let Some(pending) = &i.pending {
        return format!("{} pending", pending.as_str());
    }
    if i.health_state != HealthState::Healthy {
        return format!("not healthy ({})", i.health_state.as_str());
    }
    if !i.load_balancer_enabled {
        return "drained".into();
    }
    "joining the pool".into()
}

fn protocol_label(protocol: FrontendProtocol) -> &'static str {
    match protocol {
        FrontendProtocol::Http => "HTTP (L7)",
        FrontendProtocol::Https => "HTTPS (L7, TLS ends here)",
        FrontendProtocol::Tcp => "TCP (L4)",
    }
}

/// L7 counts requests, L4 connections.
fn requests_label(protocol: FrontendProtocol) -> &'static str {
    match protocol {
        FrontendProtocol::Tcp => "Connections",
        _ => "Requests",
    }
}

/// `connect 2 s · response 30 s · idle 60 s · drain 30 s`.
pub fn timeouts(f: &Frontend) -> String {
    format!(
        "connect {} s · response {} s · idle {} s · drain {} s",
        f.connect_timeout_seconds,
        f.response_timeout_seconds,
        f.idle_timeout_seconds,
        f.drain_timeout_seconds
    )
}

/// Responses by class: `2xx 10 · 3xx 0 · 4xx 1 · 5xx 0` (1xx only when there are some).
pub fn responses(r: &StatusClasses) -> String {
    let mut parts = Vec::new();
    if r.informational > 0 {
        parts.push(format!("1xx {}", r.informational));
    }
    parts.push(format!("2xx {}", r.success));
    parts.push(format!("3xx {}", r.redirection));
    parts.push(format!("4xx {}", r.client_error));
    parts.push(format!("5xx {}", r.server_error));
    parts.join(" · ")
}

/// `512 B`, `1.5 KiB`, `2.0 MiB`, `1.2 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A latency quantile from the histogram: `0.4 ms`, or `—` before any traffic.
pub fn quantile(h: &Histogram, q: f64) -> String {
    h.quantile(q)
        .map(|ms| format!("{ms:.1} ms"))
        .unwrap_or_else(|| "—".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_domain::instance::PendingAction;
    use flotilla_domain::instance::fixtures::instance;

    #[test]
    fn bytes_pick_a_binary_unit() {
        let table = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1536, "1.5 KiB"),
            (2 * 1024 * 1024, "2.0 MiB"),
            (1_288_490_189, "1.2 GiB"),
        ];
        for (n, want) in table {
            assert_eq!(bytes(n), want, "{n}");
        }
    }

    #[test]
    fn responses_by_class() {
        let r = StatusClasses {
            success: 10,
            client_error: 1,
            ..StatusClasses::default()
        };
        assert_eq!(responses(&r), "2xx 10 · 3xx 0 · 4xx 1 · 5xx 0");
        let r = StatusClasses {
            informational: 2,
            ..StatusClasses::default()
        };
        assert!(responses(&r).starts_with("1xx 2 · 2xx 0"));
    }

    #[test]
    fn quantiles_read_the_histogram() {
        let empty = Histogram {
            bounds_ms: vec![1.0, 10.0],
            counts: vec![0, 0, 0],
            sum_ms: 0.0,
            count: 0,
        };
        assert_eq!(quantile(&empty, 0.5), "—");
        let some = Histogram {
            bounds_ms: vec![1.0, 10.0],
            counts: vec![4, 4, 4],
            sum_ms: 2.0,
            count: 4,
        };
        assert_eq!(quantile(&some, 0.5), "0.5 ms");
    }

    #[test]
    fn instances_out_of_the_pool_say_why() {
        let serving = instance("web", 0, "1", 0);
        assert!(serving.in_pool());
        assert_eq!(out_of_pool_reason(&serving), "joining the pool");
        let mut drained = serving.clone();
        drained.load_balancer_enabled = false;
        assert_eq!(out_of_pool_reason(&drained), "drained");
        let sick = serving.clone().unhealthy();
        assert_eq!(out_of_pool_reason(&sick), "not healthy (unhealthy)");
        let stopped = serving
            .clone()
            .powered(DesiredPower::Stopped, PowerState::Stopped);
        assert_eq!(out_of_pool_reason(&stopped), "not running (stopped)");
        let mut restarting = serving.clone();
        restarting.pending = Some(PendingAction::Restart);
        assert_eq!(out_of_pool_reason(&restarting), "restart pending");
    }

    #[test]
    fn timeouts_in_one_line() {
        let f = Frontend::new("web", FrontendProtocol::Http, 8080);
        assert_eq!(
            timeouts(&f),
            "connect 2 s · response 30 s · idle 60 s · drain 30 s"
        );
    }
}
