//! The control plane's settings (`flotilla serve` fills them from its flags).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// How often each scale set is reconciled without being asked.
    pub reconcile_interval: Duration,
    /// How soon to look again while instances are still moving.
    pub settle_interval: Duration,
    /// Activations running at once across all scale sets.
    pub max_concurrent_activations: usize,
    /// Backend calls in flight at once within one activation.
    pub backend_concurrency: usize,
    /// Events buffered per subscriber before it lags.
    pub event_capacity: usize,
    /// The address load balancer frontends listen on (their ports come from each spec).
    pub load_balancer_address: std::net::IpAddr,
    /// Whether this replica runs the load balancer's frontends (`--lb-frontends`).
    pub load_balancer_frontends: bool,
    /// How often autoscale settings are evaluated.
    pub autoscale_interval: Duration,
    pub metrics: MetricsConfig,
    /// How long a VM of this installation whose scale set the database does not know is
    /// kept before it is removed (a wrong database URL must not cost the fleet).
    pub orphan_grace: Duration,
    /// How long a host may stay unreachable before it is closed and its instances are
    /// replaced on the zone's other hosts.
    pub host_unreachable_after: Duration,
    /// The most scale sets the fleet may hold.
    pub max_scale_sets: u32,
    /// The most instances all scale sets together may ask for (their capacities' sum).
    pub max_instances: u32,
    /// How long activity entries are kept.
    pub activity_retention: Duration,
    /// Model versions kept per scale set besides those still needed (the current one, any
    /// an instance or an active rollout is on).
    pub model_versions_kept: u32,
    /// Addresses webhooks may be sent to although they are loopback, private, link-local
    /// or otherwise not public.
    pub webhook_allow: Vec<ipnet::IpNet>,
    /// This process as a control-plane replica: its id, the lease's timing, the
    /// single-holder guard.
    pub replica: crate::leadership::ReplicaConfig,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            reconcile_interval: Duration::from_secs(10),
            settle_interval: Duration::from_millis(250),
            max_concurrent_activations: 8,
            backend_concurrency: 64,
            event_capacity: 4096,
            load_balancer_address: std::net::Ipv4Addr::LOCALHOST.into(),
            load_balancer_frontends: true,
            autoscale_interval: Duration::from_secs(30),
            metrics: MetricsConfig::default(),
            orphan_grace: Duration::from_secs(3600),
            host_unreachable_after: Duration::from_secs(60),
            max_scale_sets: 500,
            max_instances: 10_000,
            activity_retention: Duration::from_secs(90 * 24 * 3600),
            model_versions_kept: 50,
            webhook_allow: Vec::new(),
            replica: crate::leadership::ReplicaConfig::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// How often the collector runs (1 s at least).
    pub interval: Duration,
    /// How long 1-minute roll-ups and autoscale decisions are kept.
    pub retention: chrono::Duration,
    /// Whether `/metrics` also exposes a series per instance per metric (off by default:
    /// at 10,000 instances that is 60,000 series per scrape).
    pub per_instance: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            retention: chrono::Duration::days(30),
            per_instance: false,
        }
    }
}
