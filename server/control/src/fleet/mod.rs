//! The Fleet facade: every public operation of the control plane, by resource —
//! `scale_sets.rs`, `instances.rs` (with health and repairs), `autoscale.rs` (with shadow
//! settings, demand and metrics), `backtest.rs` (what-ifs), `rollouts.rs`, `backend.rs`
//! (with faults, the load balancer and the activity log), `hosts.rs` (host maintenance).
//!
//! Each operation validates its input (a message per field), writes the desired state with a
//! generation guard, records an activity entry, publishes an event and wakes the scale set's
//! loop. Reads go straight to the store, merged with what tasks hold in memory (last probe
//! results, metric rings) through the handles given at construction. Nothing here creates or
//! deletes VMs: that is the reconciler's job.

use std::sync::Arc;

use flotilla_backend::Backend;
use flotilla_domain::replica::{LEADER_LEASE, ReplicaStatus};
use flotilla_domain::{
    ActivityResult, Event, NewActivity, ScaleSet, ScaleSetState, ValidationErrors, ZoneStatus,
};
use flotilla_store::{Fence, Store, Writer};
use serde_json::json;

use crate::accounts::Accounts;
use crate::balancer::Balancer;
use crate::clock::Clock;
use crate::config::FleetConfig;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::EventBus;
use crate::leadership::{Leadership, LeadershipStats};
use crate::tasks::autoscaler::Autoscaler;
use crate::tasks::backend_events::BackendEvents;
use crate::tasks::host_watch::HostWatch;
use crate::tasks::metrics::{Collector, Metrics};
use crate::tasks::orphans::OrphanSweep;
use crate::tasks::pool_sync::PoolSync;
use crate::tasks::prober::{ProbeResults, ProberCounters, ProberTask};
use crate::tasks::reconciler::driver::{Driver, LoopStatus};
use crate::tasks::reconciler::{Outcome, Reconciler};
use crate::tasks::relay::Relay;
use crate::tasks::retention::Retention;
use crate::tasks::rollouts::RolloutEngine;
use crate::tasks::webhooks::Webhooks;
use crate::tasks::{Registry, Scope, Task, TaskStatus};

mod autoscale;
mod backend;
mod backtest;
mod hosts;
mod instances;
mod rollouts;
mod scale_sets;

pub use autoscale::{AutoscaleAnswer, MetricsQuery};
pub use rollouts::{PreviewRequest, RollbackRequest, RolloutControl, StartRollout};

/// The one service facade of the control plane (cheap to clone).
#[derive(Clone)]
pub struct Fleet(Arc<Parts>);

/// The context, the registry, and the handles through which the facade reads and asks
/// what tasks hold.
pub struct Parts {
    ctx: Context,
    accounts: Arc<Accounts>,
    registry: Arc<Registry>,
    leadership: Arc<Leadership>,
    driver: Arc<Driver>,
    reconciler: Arc<Reconciler>,
    probes: Arc<ProbeResults>,
    prober: Arc<ProberCounters>,
    metrics: Arc<Metrics>,
    collector: Arc<Collector>,
    autoscaler: Arc<Autoscaler>,
    rollouts: Arc<RolloutEngine>,
    orphans: Arc<OrphanSweep>,
    /// Backtests running at once: one per core (each takes a blocking thread per setting).
    backtests: tokio::sync::Semaphore,
}

impl std::ops::Deref for Fleet {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

impl Fleet {
    /// Builds the context, every task and the registry; nothing runs before [`Fleet::start`].
    ///
    /// The facade writes through `store` as this replica (what a request asks is done by
    /// whichever replica serves it); the leader's tasks through a handle fenced by the
    /// leader lease.
    pub fn new(
        store: Arc<dyn Store>,
        backend: Arc<dyn Backend>,
        clock: Arc<dyn Clock>,
        config: FleetConfig,
    ) -> Self {
        let replica = config.replica.id.clone();
        let fence = Arc::new(Fence::new(LEADER_LEASE, &replica));
        let fenced = store.with_writer(Writer {
            replica: replica.clone(),
            fence: Some(fence.clone()),
        });
        let ctx = Context {
            store: store.with_writer(Writer {
                replica,
                fence: None,
            }),
            backend,
            clock: clock.clone(),
            events: EventBus::new(config.event_capacity),
            balancer: Arc::new(Balancer::new(
                config.load_balancer_address,
                config.load_balancer_frontends,
            )),
            config: Arc::new(config),
            fence: None,
            held: Default::default(),
        };
        let replica_ctx = ctx.clone();
        // Every task but the pool sync writes for the fleet: under the lease.
        let ctx = Context {
            store: fenced,
            fence: Some(fence.clone()),
            ..replica_ctx.clone()
        };
        let webhooks = Arc::new(Webhooks::new(ctx.clone()));
        let reconciler = Arc::new(Reconciler::new(ctx.clone(), webhooks.clone()));
        let driver = Arc::new(Driver::new(
            reconciler.clone(),
            ctx.config.max_concurrent_activations,
        ));
        let wake = driver.waker();
        let probes = Arc::new(ProbeResults::default());
        let prober = Arc::new(ProberCounters::default());
        let metrics = Arc::new(Metrics::default());
        let collector = Arc::new(Collector::new(ctx.clone(), metrics.clone()));
        let autoscaler = Arc::new(Autoscaler::new(
            ctx.clone(),
            metrics.clone(),
            wake.clone(),
            webhooks.clone(),
        ));
        let rollouts = Arc::new(RolloutEngine::new(ctx.clone(), wake.clone()));
        let orphans = Arc::new(OrphanSweep::new(ctx.clone()));
        let tasks: Vec<Arc<dyn Task>> = vec![
            driver.clone(),
            Arc::new(ProberTask::new(
                ctx.clone(),
                probes.clone(),
                prober.clone(),
                wake.clone(),
            )),
            Arc::new(PoolSync::new(replica_ctx.clone())),
            collector.clone(),
            autoscaler.clone(),
            webhooks,
            rollouts.clone(),
            orphans.clone(),
            Arc::new(Retention::new(ctx.clone())),
            Arc::new(BackendEvents::new(ctx.clone(), wake.clone())),
            Arc::new(HostWatch::new(ctx.clone(), wake.clone())),
            Arc::new(Relay::new(
                replica_ctx.clone(),
                wake,
                replica_ctx.config.replica.id.clone(),
                metrics.clone(),
            )),
        ];
        let registry = Arc::new(Registry::new(clock.clone(), tasks));
        let leadership = Arc::new(Leadership::new(
            replica_ctx.clone(),
            ctx,
            fence,
            registry.clone(),
            replica_ctx.config.replica.clone(),
        ));
        let ctx = replica_ctx;
        Self(Arc::new(Parts {
            accounts: Accounts::new(ctx.store.clone(), clock, ctx.events.clone()),
            registry,
            leadership,
            ctx,
            driver,
            reconciler,
            probes,
            prober,
            metrics,
            collector,
            autoscaler,
            rollouts,
            orphans,
            backtests: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            ),
        }))
    }

    /// Gives the mock every set's demand, applies every set's load balancer frontends,
    /// starts the tasks every replica runs, then the leadership keeper: when this replica
    /// gains the leader lease (a lone one at once), it adopts the VMs made before
    /// installations had ids that have a record here and starts the leader's tasks (the
    /// reconciler wakes every set): after a restart the control plane takes over what the
    /// backend holds of this installation, and nothing else. It deletes no VM.
    pub async fn start(&self) -> Result<()> {
        let sets = self.ctx.read_sets().await?;
        for set in &sets {
            self.push_demand(set).await?;
        }
        for set in sets.iter().filter(|s| s.state == ScaleSetState::Active) {
            if let Err(errors) = self
                .ctx
                .balancer
                .apply(set.name(), set.spec.load_balancer.as_ref(), None)
                .await
            {
                tracing::warn!(scale_set = %set.name(), %errors, "could not start the load balancer frontends");
                self.ctx
                    .record(NewActivity {
                        operation: "load_balancer.start".into(),
                        actor: "system:load_balancer".into(),
                        scale_set: Some(set.name().into()),
                        target: set.name().into(),
                        started_at: self.now(),
                        ended_at: Some(self.now()),
                        result: ActivityResult::Failed,
                        error: Some(errors.to_string()),
                        details: json!({}),
                    })
                    .await;
            }
        }
        self.ctx
            .backend
            .serve_guests(Arc::new(instances::Guests(Arc::downgrade(&self.0))));
        self.registry.start(Scope::Replica);
        self.leadership.start(false).await?;
        for set in &sets {
            self.warn_unforwarded_ports(set).await;
        }
        Ok(())
    }

    /// (allowed before they were refused) still loads: the prober and the load balancer
    /// only ever reach the instances' forwarded app port, and an activity entry says what
    /// to fix.
    async fn warn_unforwarded_ports(&self, set: &ScaleSet) {
        let problems = set.spec.unforwarded_ports();
        if problems.is_empty() {
            return;
        }
        tracing::warn!(scale_set = %set.name(), %problems, "settings aim at ports the instances do not serve on");
        self.ctx
            .record(NewActivity {
                operation: "scale_set.warning".into(),
                actor: "system:control".into(),
                scale_set: Some(set.name().into()),
                target: set.name().into(),
                started_at: self.now(),
                ended_at: Some(self.now()),
                result: ActivityResult::Failed,
                error: Some(format!(
                    "{problems}: probes and the load balancer use the app port instead; fix the setting with PATCH"
                )),
                details: serde_json::to_value(&problems).unwrap_or_default(),
            })
            .await;
    }

    /// Takes the leader lease and keeps renewing it, but starts no task: for tests and
    /// benchmarks that drive activations by hand (`reconcile_now`, `evaluate_autoscale`:
    /// the leader's work, written under the lease). Answers whether this replica leads.
    pub async fn lead_by_hand(&self) -> Result<bool> {
        self.leadership.start(true).await
    }

    /// Steps down (releasing the leader lease), stops every task, waiting for activations
    /// in progress, then the load balancer's frontends.
    pub async fn shutdown(&self) {
        self.leadership.shutdown().await;
        self.registry.stop(Scope::Replica).await;
        self.ctx.balancer.lb.shutdown().await;
    }

    /// Activates the scale set's loop now.
    pub fn wake(&self, name: &str) {
        self.driver.wake(name);
    }

    /// Activates every scale set's loop now (through the registry: the reconciler task
    /// wakes each stored set).
    fn wake_all(&self) {
        self.registry.activate("reconciler");
    }

    /// Runs one reconcile activation of the scale set now and waits for it (it waits for an
    /// activation already running first). For benchmarks, tests and operators.
    pub async fn reconcile_now(&self, name: &str) -> Result<Outcome> {
        self.reconciler.reconcile(name).await
    }

    /// Runs one orphan sweep now (see the `orphan_sweep` task). For tests and operators.
    pub async fn sweep_orphans_now(&self) -> Result<()> {
        self.orphans.once().await.map(drop)
    }

    /// Runs one retention pass now; answers how many activity entries and model versions
    /// went. For tests and operators.
    pub async fn retention_now(&self) -> Result<(u64, u64)> {
        crate::tasks::retention::once(&self.ctx).await
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.ctx.events.subscribe()
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.ctx.now()
    }

    /// Each scale set's reconcile loop.
    pub fn loops(&self) -> Vec<LoopStatus> {
        self.driver.status()
    }

    /// Users, roles and tokens.
    pub fn accounts(&self) -> &Arc<Accounts> {
        &self.accounts
    }

    /// Each task of the control plane (`GET /api/v1/control/tasks`).
    pub fn tasks(&self) -> Vec<TaskStatus> {
        self.registry.status()
    }

    /// This replica's id.
    pub fn replica_id(&self) -> &str {
        self.leadership.replica_id()
    }

    /// Whether this replica leads, and how its lease fares.
    pub fn leadership(&self) -> LeadershipStats {
        self.leadership.stats()
    }

    /// Every replica with the leases it holds (`GET /api/v1/control/replicas`).
    pub async fn replicas(&self) -> Result<Vec<ReplicaStatus>> {
        self.leadership.replicas().await
    }

    pub fn backend_kind(&self) -> &'static str {
        self.ctx.backend.kind()
    }

    /// The backend's zones, the fault domains of closed hosts marked.
    pub(crate) async fn zones(&self) -> Result<Vec<ZoneStatus>> {
        let zones = self
            .ctx
            .backend
            .zones()
            .await
            .map_err(Error::backend("list zones"))?;
        let closed = self.ctx.closed_hosts().await?;
        Ok(crate::tasks::reconciler::hosts::close(zones, &closed))
    }

    /// What can be known of a setting's webhooks before sending: see
    /// [`crate::tasks::webhooks::check_targets`].
    pub(crate) fn check_webhooks(
        &self,
        setting: &flotilla_domain::autoscale::AutoscaleSetting,
    ) -> ValidationErrors {
        crate::tasks::webhooks::check_targets(
            &setting.notifications.webhooks,
            "notifications.webhooks",
            &self.ctx.config.webhook_allow,
        )
    }

    /// The same of every lifecycle hook's notification webhooks (`lifecycle_hooks[i]…`).
    pub(crate) fn check_hook_webhooks(
        &self,
        hooks: &[flotilla_domain::lifecycle::LifecycleHook],
    ) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        for (i, hook) in hooks.iter().enumerate() {
            errors.nest(
                &format!("lifecycle_hooks[{i}]"),
                crate::tasks::webhooks::check_targets(
                    &hook.notification_webhooks,
                    "notification_webhooks",
                    &self.ctx.config.webhook_allow,
                ),
            );
        }
        errors
    }

    /// Announces and records a change of the set, and reconciles it.
    pub(crate) async fn after_change(
        &self,
        set: &ScaleSet,
        operation: &str,
        actor: &str,
        started: chrono::DateTime<chrono::Utc>,
        details: serde_json::Value,
    ) {
        self.ctx
            .set_changed(set, operation, actor, started, details)
            .await;
        self.wake(set.name());
    }
}
