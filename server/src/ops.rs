//! Operational endpoints: `/healthz` (the process answers), `/readyz` (the store and the
//! backend answer) and `/metrics` (Prometheus text exposition).

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use flotilla_control::Fleet;
use flotilla_domain::access::{Access, Role};
use flotilla_domain::{HealthState, PowerState, ProvisioningState};

use crate::auth::{self, Permission};

/// What each operational endpoint needs: health checks are open (load balancers and
/// orchestrators probe them without credentials); `/metrics` is a fleet-wide Reader's (a
/// Reader token for Prometheus).
pub const PERMISSIONS: [(&str, Access); 3] = [
    ("/healthz", Access::Anonymous),
    ("/readyz", Access::Anonymous),
    ("/metrics", Access::Fleet(Role::Reader)),
];

pub fn router(fleet: Fleet) -> Router {
    let mut router = Router::new();
    for (path, access) in PERMISSIONS {
        let handler = match path {
            "/healthz" => get(|| async { "ok\n" }),
            "/readyz" => get(ready),
            _ => get(metrics),
        };
        let permission = Permission {
            access,
            actions: &[],
        };
        router = router.route(
            path,
            handler.route_layer(axum::middleware::from_fn_with_state(
                permission,
                auth::authorize,
            )),
        );
    }
    router.with_state(fleet)
}

async fn ready(State(fleet): State<Fleet>) -> impl IntoResponse {
    let store = fleet.list_scale_sets().await.map(|_| ());
    let backend = fleet.backend_info().await.map(|_| ());
    match (store, backend) {
        (Ok(()), Ok(())) => (StatusCode::OK, "ready\n".to_string()),
        (s, b) => {
            let mut why = String::new();
            if let Err(e) = s {
                let _ = writeln!(why, "store: {e}");
            }
            if let Err(e) = b {
                let _ = writeln!(why, "backend: {e}");
            }
            (StatusCode::SERVICE_UNAVAILABLE, why)
        }
    }
}

async fn metrics(State(fleet): State<Fleet>) -> impl IntoResponse {
    match render(&fleet).await {
        Ok(out) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("# store unavailable: {e}\n"),
        )
            .into_response(),
    }
}

/// The Prometheus text exposition of the fleet: set-level series (and per-instance ones
/// with `--metrics-per-instance`).
pub async fn render(fleet: &Fleet) -> Result<String, flotilla_control::Error> {
    let mut out = String::new();
    let sets = fleet.list_scale_sets().await?;
    out.push_str("# HELP flotilla_scale_set_capacity Desired instance count of each scale set.\n");
    out.push_str("# TYPE flotilla_scale_set_capacity gauge\n");
    for s in &sets {
        let _ = writeln!(
            out,
            "flotilla_scale_set_capacity{{scale_set=\"{}\"}} {}",
            s.name(),
            s.spec.capacity
        );
    }
    let mut power: BTreeMap<(String, PowerState), u64> = BTreeMap::new();
    let mut health: BTreeMap<(String, HealthState), u64> = BTreeMap::new();
    let mut provisioning: BTreeMap<(String, ProvisioningState), u64> = BTreeMap::new();
    // Counted by the store: a scrape of a big fleet decodes no instance record.
    for c in fleet.instance_counts(None).await? {
        *power
            .entry((c.scale_set.clone(), c.power_state))
            .or_default() += c.count;
        *health
            .entry((c.scale_set.clone(), c.health_state))
            .or_default() += c.count;
        *provisioning
            .entry((c.scale_set, c.provisioning_state))
            .or_default() += c.count;
    }
    gauge(
        &mut out,
        "flotilla_instances_by_power_state",
        "Instances by power state.",
        "power_state",
        &power,
    );
    gauge(
        &mut out,
        "flotilla_instances_by_health_state",
        "Instances by health state.",
        "health_state",
        &health,
    );
    gauge(
        &mut out,
        "flotilla_instances_by_provisioning_state",
        "Instances by provisioning state.",
        "provisioning_state",
        &provisioning,
    );
    out.push_str(
        "# HELP flotilla_reconcile_activations_total Reconcile activations of each scale set.\n",
    );
    out.push_str("# TYPE flotilla_reconcile_activations_total counter\n");
    for l in fleet.loops() {
        let _ = writeln!(
            out,
            "flotilla_reconcile_activations_total{{scale_set=\"{}\"}} {}",
            l.scale_set, l.activations
        );
    }
    let probes = fleet.prober_stats();
    out.push_str("# HELP flotilla_probes_total Health probes finished.\n");
    out.push_str("# TYPE flotilla_probes_total counter\n");
    let _ = writeln!(out, "flotilla_probes_total {}", probes.probes);
    out.push_str("# HELP flotilla_probe_targets Instances being probed.\n");
    out.push_str("# TYPE flotilla_probe_targets gauge\n");
    let _ = writeln!(out, "flotilla_probe_targets {}", probes.targets);
    fleet.render_load_balancer_metrics(&mut out);
    let collector = fleet.collector_stats();
    out.push_str("# HELP flotilla_metrics_ticks_total Metrics collector ticks.\n");
    out.push_str("# TYPE flotilla_metrics_ticks_total counter\n");
    let _ = writeln!(out, "flotilla_metrics_ticks_total {}", collector.ticks);
    out.push_str("# HELP flotilla_metrics_collect_seconds_total Time spent collecting metrics.\n");
    out.push_str("# TYPE flotilla_metrics_collect_seconds_total counter\n");
    let _ = writeln!(
        out,
        "flotilla_metrics_collect_seconds_total {}",
        collector.busy.as_secs_f64()
    );
    out.push_str("# HELP flotilla_metrics_points_held Metric points held in memory.\n");
    out.push_str("# TYPE flotilla_metrics_points_held gauge\n");
    let _ = writeln!(
        out,
        "flotilla_metrics_points_held {}",
        collector.points_held
    );
    fleet.render_collected_metrics(&mut out);
    render_leadership(fleet, &mut out);
    Ok(out)
}

/// This replica's leadership: whether it leads, its terms, the lease's renew latency and
/// the writes its fence refused.
fn render_leadership(fleet: &Fleet, out: &mut String) {
    let l = fleet.leadership();
    let replica = fleet.replica_id();
    let series: [(&str, &str, &str, String); 7] = [
        (
            "flotilla_leader",
            "gauge",
            "1 while this replica holds the leader lease.",
            u8::from(l.leading).to_string(),
        ),
        (
            "flotilla_lease_generation",
            "gauge",
            "The generation of the leader lease this replica holds (0: none).",
            l.generation.unwrap_or(0).to_string(),
        ),
        (
            "flotilla_lease_terms_total",
            "counter",
            "Terms of the leader lease this replica began.",
            l.terms.to_string(),
        ),
        (
            "flotilla_lease_step_downs_total",
            "counter",
            "Times this replica stopped leading.",
            l.step_downs.to_string(),
        ),
        (
            "flotilla_lease_renew_seconds",
            "summary",
            "Time of the lease's acquire-or-renew statements.",
            String::new(),
        ),
        (
            "flotilla_lease_renew_failures_total",
            "counter",
            "Lease statements that failed.",
            l.renew_failures.to_string(),
        ),
        (
            "flotilla_lease_fence_refusals_total",
            "counter",
            "Writes refused by the lease fence (this replica no longer held the lease).",
            l.fence_refusals.to_string(),
        ),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        if kind == "summary" {
            let _ = writeln!(
                out,
                "{name}_sum{{replica=\"{replica}\"}} {}",
                l.renew_seconds_total
            );
            let _ = writeln!(out, "{name}_count{{replica=\"{replica}\"}} {}", l.renewals);
        } else {
            let _ = writeln!(out, "{name}{{replica=\"{replica}\"}} {value}");
        }
    }
}

fn gauge<S: std::fmt::Display>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: &BTreeMap<(String, S), u64>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for ((set, state), n) in values {
        let _ = writeln!(out, "{name}{{scale_set=\"{set}\",{label}=\"{state}\"}} {n}");
    }
}
