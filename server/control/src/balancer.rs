//! The load balancer's view of the fleet: each scale set's frontends come from its spec,
//! each set's pool from its instances.
//!
//! - Frontends are applied *before* the spec that asks for them is stored, and put back as
//!   they were when anything fails (a port in use, a bad certificate), so a refused change
//!   leaves no frontend half-applied.
//! - On a replica started with `--lb-frontends none` no frontend runs: changes are stored
//!   without being tried on a port here (the replicas that serve them follow).
//! - Every replica serving frontends follows the specs other replicas store ([`Balancer::follow`],
//!   called by the relay): frontends as the spec asks, whoever changed it.
//! - Pools follow the records: the `pool_sync` task hands the load balancer each set's
//!   serving instances (running, healthy, not on their way out, see [`members`]) with their
//!   enable switch. The reconciler refreshes a set's pool itself before a terminating hook
//!   begins to wait, so the hook's receiver is told only once no new work reaches the
//!   instance here. Members that leave a pool finish their requests (the load balancer
//!   drains them); the reconciler additionally waits for that drain before it stops,
//!   restarts, reimages or deletes an instance.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use flotilla_domain::scale_set::{Algorithm, FrontendProtocol, LoadBalancer as LoadBalancerSpec};
use flotilla_domain::{Instance, ValidationErrors};
use flotilla_lb::{
    FrontendConfig, LbError, Limits, LoadBalancer, Member, PathRule, Protocol, Timeouts,
};

use crate::error::chain;

pub(crate) struct Balancer {
    pub(crate) lb: LoadBalancer,
    address: IpAddr,
    /// Whether this replica runs frontends at all.
    serve: bool,
    /// One frontend change at a time, so a rollback restores what the change found.
    changes: tokio::sync::Mutex<()>,
    /// One pool refresh at a time ([`Context::refresh_pool`](crate::context::Context::refresh_pool)):
    /// each reads after the last one was applied, so a pool never goes back to an older read.
    pub(crate) refreshes: tokio::sync::Mutex<()>,
}

impl Balancer {
    pub(crate) fn new(address: IpAddr, serve: bool) -> Self {
        Self {
            lb: LoadBalancer::new(),
            address,
            serve,
            changes: tokio::sync::Mutex::new(()),
            refreshes: tokio::sync::Mutex::new(()),
        }
    }

    /// Makes the set's frontends those of `desired`, given that they were those of
    /// `previous`. On failure every frontend is as `previous` had it, and the error names
    /// the field at fault.
    pub(crate) async fn apply(
        &self,
        set: &str,
        desired: Option<&LoadBalancerSpec>,
        previous: Option<&LoadBalancerSpec>,
    ) -> Result<(), ValidationErrors> {
        if !self.serve {
            return Ok(());
        }
        let _one = self.changes.lock().await;
        let want = self.configs(set, desired);
        let had = self.configs(set, previous);
        let running: HashSet<(String, String)> = self.lb.frontends().into_iter().collect();
        let mut applied: Vec<&FrontendConfig> = Vec::new();
        for (i, config) in want.iter().enumerate() {
            let key = (config.scale_set.clone(), config.name.clone());
            if had.contains(config) && running.contains(&key) {
                continue;
            }
            if let Err(e) = self.lb.upsert_frontend(config.clone()).await {
                for done in applied {
                    self.restore(done, &had).await;
                }
                return Err(field_error(i, &e));
            }
            applied.push(config);
        }
        for old in &had {
            if !want.iter().any(|w| w.name == old.name) {
                self.lb.remove_frontend(set, &old.name).await;
            }
        }
        Ok(())
    }

    /// Makes the set's running frontends those of `desired`, whatever ran before (a spec
    /// another replica stored): failures are logged, the others applied.
    pub(crate) async fn follow(&self, set: &str, desired: Option<&LoadBalancerSpec>) {
        if !self.serve {
            return;
        }
        let _one = self.changes.lock().await;
        let want = self.configs(set, desired);
        for config in &want {
            if let Err(e) = self.lb.upsert_frontend(config.clone()).await {
                tracing::warn!(scale_set = %set, frontend = %config.name, error = %chain(&e), "could not follow a frontend another replica configured");
            }
        }
        for (owner, name) in self.lb.frontends() {
            if owner == set && !want.iter().any(|w| w.name == name) {
                self.lb.remove_frontend(set, &name).await;
            }
        }
    }

    /// Puts `changed` back as `had` has it (or removes it when it is new).
    async fn restore(&self, changed: &FrontendConfig, had: &[FrontendConfig]) {
        match had.iter().find(|h| h.name == changed.name) {
            Some(old) => {
                if let Err(e) = self.lb.upsert_frontend(old.clone()).await {
                    tracing::error!(frontend = %old.name, error = %chain(&e), "could not restore a frontend");
                }
            }
            None => {
                self.lb
                    .remove_frontend(&changed.scale_set, &changed.name)
                    .await
            }
        }
    }

    /// Stops every frontend of the set and empties its pool.
    pub(crate) async fn remove_set(&self, set: &str) {
        let _one = self.changes.lock().await;
        for (owner, name) in self.lb.frontends() {
            if owner == set {
                self.lb.remove_frontend(set, &name).await;
            }
        }
        self.lb.set_pool(set, Vec::new());
    }

    /// Hands the load balancer the set's serving instances.
    pub(crate) fn set_pool(&self, set: &str, instances: &[Instance]) {
        self.lb.set_pool(set, members(instances));
    }

    fn configs(&self, set: &str, spec: Option<&LoadBalancerSpec>) -> Vec<FrontendConfig> {
        let Some(spec) = spec else {
            return Vec::new();
        };
        spec.frontends
            .iter()
            .map(|f| FrontendConfig {
                scale_set: set.to_string(),
                name: f.name.clone(),
                listen: SocketAddr::new(self.address, f.port),
                protocol: match (f.protocol, &f.tls) {
                    (FrontendProtocol::Https, Some(tls)) => Protocol::Https {
                        certificate_pem: tls.certificate_pem.clone(),
                        private_key_pem: tls.private_key_pem.clone(),
                    },
                    (FrontendProtocol::Tcp, _) => Protocol::Tcp,
                    _ => Protocol::Http,
                },
                algorithm: match f.algorithm {
                    Algorithm::RoundRobin => flotilla_lb::Algorithm::RoundRobin,
                    Algorithm::LeastConnections => flotilla_lb::Algorithm::LeastConnections,
                    Algorithm::IpHash => flotilla_lb::Algorithm::IpHash,
                },
                rules: f
                    .rules
                    .iter()
                    .map(|r| PathRule {
                        path_prefix: r.path_prefix.clone(),
                        pool: r.scale_set.clone(),
                    })
                    .collect(),
                timeouts: Timeouts {
                    connect: secs(f.connect_timeout_seconds),
                    response: secs(f.response_timeout_seconds),
                    client_idle: secs(f.idle_timeout_seconds),
                    drain: secs(f.drain_timeout_seconds),
                    body_read: secs(f.body_timeout_seconds),
                    write: secs(f.body_timeout_seconds),
                    tcp_idle: secs(f.idle_timeout_seconds),
                },
                limits: Limits {
                    max_connections: Some(f.max_connections),
                    max_connections_per_member: f.max_connections_per_member,
                    ..Limits::default()
                },
            })
            .collect()
    }
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

/// How long the set's instances get to finish their requests before they are stopped.
pub(crate) fn drain_timeout(spec: Option<&LoadBalancerSpec>) -> Duration {
    spec.into_iter()
        .flat_map(|lb| &lb.frontends)
        .map(|f| secs(f.drain_timeout_seconds))
        .max()
        .unwrap_or(Duration::ZERO)
}

fn field_error(index: usize, error: &LbError) -> ValidationErrors {
    let prefix = format!("load_balancer.frontends[{index}]");
    match error {
        LbError::Bind { port, source } => ValidationErrors::single(
            format!("{prefix}.port"),
            format!("port {port} cannot be used: {source}"),
        ),
        LbError::Tls { field, message } => {
            ValidationErrors::single(format!("{prefix}.tls.{field}"), message.clone())
        }
    }
}

/// The pool members of a set: serving instances, with their enable switch.
fn members(instances: &[Instance]) -> Vec<Member> {
    instances
        .iter()
        .filter(|i| i.in_pool())
        .filter_map(|i| {
            let addr: SocketAddr = i.address.as_deref()?.parse().ok()?;
            Some(Member {
                id: i.id.clone(),
                addr,
                enabled: i.load_balancer_enabled,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_domain::instance::fixtures::instance;
    use flotilla_domain::{
        DesiredPower, HealthState, PendingAction, PowerState, ProvisioningState,
    };

    #[test]
    fn pools_hold_serving_instances_with_their_switch() {
        let mut disabled = instance("web", 1, "1", 0);
        disabled.load_balancer_enabled = false;
        let mut restarting = instance("web", 4, "1", 0);
        restarting.pending = Some(PendingAction::Restart);
        let all = vec![
            instance("web", 0, "1", 0),
            disabled,
            instance("web", 2, "2", 0).health(HealthState::Initializing, 0),
            instance("web", 3, "3", 0).in_state(ProvisioningState::Deleting),
            restarting,
            instance("web", 5, "1", 0).powered(DesiredPower::Stopped, PowerState::Running),
            instance("web", 6, "2", 0).in_state(ProvisioningState::Updating),
        ];
        let got: Vec<(String, bool)> = members(&all)
            .into_iter()
            .map(|m| (m.id, m.enabled))
            .collect();
        assert_eq!(
            got,
            [("web_0".to_string(), true), ("web_1".to_string(), false)]
        );
    }
}
