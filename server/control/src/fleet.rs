//! The Fleet facade: every change of state goes through here.
//!
//! Each operation validates its input (a message per field), writes the desired state with a
//! generation guard, records an activity entry, publishes an event and wakes the scale set's
//! loop. Reads go straight to the store. Nothing here calls the backend to create or delete
//! VMs: that is the reconciler's job.

use std::sync::Arc;
use std::time::Duration;

use flotilla_backend::Backend;
use flotilla_domain::instance::ActionEffect;
use flotilla_domain::repair::RepairOverview;
use flotilla_domain::{
    Activity, ActivityFilter, ActivityResult, BackendInfo, BackendVm, ConsoleOutput, Event, Fault,
    Instance, InstanceAction, Model, NewActivity, Protection, ProvisioningState, RepairStatus,
    ScaleSet, ScaleSetPatch, ScaleSetSpec, ScaleSetState, ValidationContext, ValidationErrors,
    ZoneStatus,
};
use flotilla_store::{ModelVersion, Store, StoreError};
use serde_json::json;

use crate::balancer::Balancer;
use crate::clock::Clock;
use crate::driver::{Driver, LoopStatus};
use crate::error::{Error, Result, chain};
use crate::events::EventBus;
use crate::prober::{ProbeResults, ProberCounters, ProberStats};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    /// How often autoscale settings are evaluated.
    pub autoscale_interval: Duration,
    pub metrics: crate::metrics::MetricsConfig,
    /// How long a VM of this installation whose scale set the database does not know is
    /// kept before it is removed (a wrong database URL must not cost the fleet).
    pub orphan_grace: Duration,
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
            autoscale_interval: Duration::from_secs(30),
            metrics: crate::metrics::MetricsConfig::default(),
            orphan_grace: Duration::from_secs(3600),
            max_scale_sets: 500,
            max_instances: 10_000,
            activity_retention: Duration::from_secs(90 * 24 * 3600),
            model_versions_kept: 50,
            webhook_allow: Vec::new(),
        }
    }
}

/// What the loops and the facade share.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) events: EventBus,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: FleetConfig,
    pub(crate) driver: Driver,
    pub(crate) balancer: Balancer,
    pub(crate) probes: ProbeResults,
    pub(crate) prober: ProberCounters,
    pub(crate) metrics: crate::metrics::Metrics,
    pub(crate) autoscale_history: crate::autoscaler::History,
    /// Wakes the rollout engine before its next tick.
    pub(crate) rollout_wake: tokio::sync::Notify,
    /// When each orphan VM was first seen (the orphan sweep's memory; see `orphans.rs`).
    pub(crate) orphans:
        tokio::sync::Mutex<std::collections::BTreeMap<String, chrono::DateTime<chrono::Utc>>>,
    /// The prober and the pool sync.
    background: TaskTracker,
    stop_background: CancellationToken,
    /// One lock per scale set: activations of one set never overlap, whoever starts them.
    activations: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Shared {
    /// Runs `task` beside the loops until it ends or the fleet shuts down.
    pub(crate) fn spawn_background(
        self: Arc<Self>,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let stop = self.stop_background.clone();
        self.background.spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = task => {}
            }
        });
    }

    /// Lets go of what memory holds for scale set `name`, once it is removed (the prober,
    /// the metrics collector, the autoscaler's history and the load balancer follow the
    /// removal event themselves).
    pub(crate) fn forget_set(&self, name: &str) {
        self.activations
            .lock()
            .expect("activation map poisoned")
            .remove(name);
        if let Some(sim) = self.backend.simulation() {
            sim.set_demand(name, None);
        }
    }

    pub(crate) fn activation_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.activations
            .lock()
            .expect("activation map poisoned")
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Appends an activity entry and publishes it. A failure to write is logged, not
    /// returned: the operation it describes has already happened. Its details are scrubbed
    /// of secrets first, whoever wrote them ([`flotilla_domain::secret::scrub`]).
    pub(crate) async fn record(&self, mut entry: NewActivity) -> Option<Activity> {
        flotilla_domain::secret::scrub(&mut entry.details);
        match self.store.append_activity(&entry).await {
            Ok(activity) => {
                self.events.publish(Event::Activity {
                    activity: Box::new(activity.clone()),
                });
                Some(activity)
            }
            Err(e) => {
                tracing::error!(operation = %entry.operation, error = %chain(&e), "could not record activity");
                None
            }
        }
    }
}

/// The one service facade of the control plane.
#[derive(Clone)]
pub struct Fleet {
    shared: Arc<Shared>,
}

/// How many times a relative change (or a person's instance action) is re-applied when a
/// concurrent writer wins.
const RETRIES: usize = 5;

impl Fleet {
    pub fn new(
        store: Arc<dyn Store>,
        backend: Arc<dyn Backend>,
        clock: Arc<dyn Clock>,
        config: FleetConfig,
    ) -> Self {
        let driver = Driver::new(config.max_concurrent_activations);
        Self {
            shared: Arc::new(Shared {
                store,
                backend,
                events: EventBus::new(config.event_capacity),
                clock,
                balancer: Balancer::new(config.load_balancer_address),
                config,
                driver,
                probes: ProbeResults::default(),
                prober: ProberCounters::default(),
                metrics: Default::default(),
                autoscale_history: Default::default(),
                rollout_wake: tokio::sync::Notify::new(),
                orphans: Default::default(),
                background: TaskTracker::new(),
                stop_background: CancellationToken::new(),
                activations: Default::default(),
            }),
        }
    }

    /// Starts a loop for every stored scale set, the prober, the pool sync, the metrics
    /// collector, the autoscaler, the rollout engine, the orphan sweep and retention,
    /// applies every set's load balancer frontends, and adopts the VMs made before
    /// installations had ids that have a record here: after a restart the control plane
    /// takes over what the backend holds of this installation, and nothing else.
    pub async fn start(&self) -> Result<()> {
        let sets = self.read_sets().await?;
        let shared = &self.shared;
        shared.background.spawn(crate::prober::run(
            shared.clone(),
            shared.stop_background.clone(),
        ));
        shared.background.spawn(crate::balancer::run_pool_sync(
            shared.clone(),
            shared.stop_background.clone(),
        ));
        shared.background.spawn(crate::metrics::run(
            shared.clone(),
            shared.stop_background.clone(),
        ));
        shared.background.spawn(crate::autoscaler::run(
            shared.clone(),
            shared.stop_background.clone(),
        ));
        shared.background.spawn(crate::rollouts::run(
            shared.clone(),
            shared.stop_background.clone(),
        ));
        if let Some(changes) = shared.backend.state_changes() {
            shared
                .background
                .spawn(self.clone().follow_state_changes(changes));
        }
        for set in &sets {
            self.push_demand(set);
        }
        if let Err(e) = crate::webhooks::resume(&self.shared).await {
            tracing::warn!(error = %chain(&e), "could not resume webhook deliveries");
        }
        for set in sets.iter().filter(|s| s.state == ScaleSetState::Active) {
            if let Err(errors) = shared
                .balancer
                .apply(set.name(), set.spec.load_balancer.as_ref(), None)
                .await
            {
                tracing::warn!(scale_set = %set.name(), %errors, "could not start the load balancer frontends");
                shared
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
        crate::orphans::adopt_legacy(shared).await?;
        shared.background.spawn(crate::orphans::run(
            shared.clone(),
            shared.stop_background.clone(),
        ));
        shared.background.spawn(crate::retention::run(
            shared.clone(),
            shared.stop_background.clone(),
        ));
        for set in &sets {
            self.warn_unforwarded_ports(set).await;
            self.wake(set.name());
        }
        Ok(())
    }

    /// A stored set whose probe or frontends aim at ports its instances do not serve on
    /// (allowed before they were refused) still loads: the prober and the load balancer
    /// only ever reach the instances' forwarded app port, and an activity entry says what
    /// to fix.
    async fn warn_unforwarded_ports(&self, set: &ScaleSet) {
        let problems = set.spec.unforwarded_ports();
        if problems.is_empty() {
            return;
        }
        tracing::warn!(scale_set = %set.name(), %problems, "settings aim at ports the instances do not serve on");
        self.shared
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

    /// Stops every loop, waiting for activations in progress, then the prober, the pool
    /// sync and the load balancer's frontends.
    pub async fn shutdown(&self) {
        self.shared.driver.shutdown().await;
        self.shared.stop_background.cancel();
        self.shared.background.close();
        self.shared.background.wait().await;
        self.shared.balancer.lb.shutdown().await;
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The facade over shared state, for the control plane's own tasks.
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Activates the scale set's loop now.
    pub fn wake(&self, name: &str) {
        self.shared.driver.wake(&self.shared, name);
    }

    /// Wakes the scale set of every VM the backend says changed (a guest that powered
    /// itself off is seen at once, not at the next periodic pass); after missed
    /// announcements, every set.
    async fn follow_state_changes(self, mut changes: tokio::sync::broadcast::Receiver<String>) {
        use tokio::sync::broadcast::error::RecvError;
        let stop = self.shared.stop_background.clone();
        loop {
            let id = tokio::select! {
                _ = stop.cancelled() => return,
                id = changes.recv() => id,
            };
            match id {
                Ok(id) => {
                    if let Ok(Some(instance)) = self.shared.store.get_instance(&id).await {
                        self.wake(&instance.scale_set);
                    }
                }
                Err(RecvError::Lagged(_)) => self.wake_all().await,
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Runs one reconcile activation of the scale set now and waits for it (it waits for an
    /// activation already running first). For benchmarks, tests and operators.
    pub async fn reconcile_now(&self, name: &str) -> Result<crate::reconciler::Outcome> {
        crate::reconciler::reconcile(&self.shared, name).await
    }

    /// Runs one orphan sweep now (see `orphans.rs`). For tests and operators.
    pub async fn sweep_orphans_now(&self) -> Result<()> {
        crate::orphans::once(&self.shared).await
    }

    /// Runs one retention pass now; answers how many activity entries and model versions
    /// went. For tests and operators.
    pub async fn retention_now(&self) -> Result<(u64, u64)> {
        crate::retention::once(&self.shared).await
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.shared.clock.now()
    }

    pub fn loops(&self) -> Vec<LoopStatus> {
        self.shared.driver.status()
    }

    pub fn backend_kind(&self) -> &'static str {
        self.shared.backend.kind()
    }

    // ---- scale sets ----

    /// Every scale set, private keys redacted (as everything the facade answers).
    pub async fn list_scale_sets(&self) -> Result<Vec<ScaleSet>> {
        Ok(self
            .read_sets()
            .await?
            .into_iter()
            .map(ScaleSet::redacted)
            .collect())
    }

    pub async fn get_scale_set(&self, name: &str) -> Result<ScaleSet> {
        self.read_set(name).await.map(ScaleSet::redacted)
    }

    /// Every scale set as stored, keys included: for the control plane's own use.
    pub(crate) async fn read_sets(&self) -> Result<Vec<ScaleSet>> {
        self.shared
            .store
            .list_scale_sets()
            .await
            .map_err(Error::store("list scale sets"))
    }

    /// The scale set as stored, keys included: for the control plane's own use.
    pub(crate) async fn read_set(&self, name: &str) -> Result<ScaleSet> {
        self.shared
            .store
            .get_scale_set(name)
            .await
            .map_err(Error::store("get scale set"))?
            .ok_or_else(|| Error::NotFound {
                kind: "scale set",
                name: name.into(),
            })
    }

    /// The backend's zones.
    async fn zones(&self) -> Result<Vec<ZoneStatus>> {
        self.shared
            .backend
            .zones()
            .await
            .map_err(Error::backend("list zones"))
    }

    async fn validation_context(&self) -> Result<ValidationContext> {
        let zones = self.zones().await?;
        let sets = self.list_scale_sets().await?;
        Ok(ValidationContext {
            known_zones: zones.into_iter().map(|z| z.name).collect(),
            known_scale_sets: Some(sets.into_iter().map(|s| s.spec.name).collect()),
        })
    }

    async fn check_image(
        &self,
        model: &Model,
        errors: &mut ValidationErrors,
        field: &str,
    ) -> Result<()> {
        let images = self
            .shared
            .backend
            .images()
            .await
            .map_err(Error::backend("list images"))?;
        if !model.image.is_empty() && !images.contains(&model.image) {
            errors.push(
                field,
                format!(
                    "unknown image {:?}; available: {}",
                    model.image,
                    images.join(", ")
                ),
            );
        }
        Ok(())
    }

    pub async fn create_scale_set(&self, mut spec: ScaleSetSpec, actor: &str) -> Result<ScaleSet> {
        let started = self.now();
        spec.model.keep_user_data(None);
        let mut ctx = self.validation_context().await?;
        if let Some(known) = &mut ctx.known_scale_sets {
            known.push(spec.name.clone());
        }
        if spec.zones.is_empty() {
            spec.zones = ctx.known_zones.clone();
        }
        if let Some(demand) = &mut spec.demand {
            demand.started_at = Some(started);
        }
        let mut errors = spec.validate(&ctx).err().unwrap_or_default();
        self.check_image(&spec.model, &mut errors, "model.image")
            .await?;
        if spec.demand.is_some() && self.shared.backend.simulation().is_none() {
            errors.push(
                "demand",
                "only the mock backend simulates demand; leave it out",
            );
        }
        if let Some(autoscale) = &spec.autoscale {
            errors.nest("autoscale", self.check_webhooks(autoscale));
        }
        let sets = self.read_sets().await?;
        let limit = self.shared.config.max_scale_sets;
        if sets.len() >= limit as usize {
            errors.push(
                "name",
                format!("the fleet holds its limit of {limit} scale sets (--max-scale-sets); delete one first"),
            );
        }
        errors
            .0
            .extend(self.check_quota(&sets, None, spec.capacity).0);
        errors.into_result().map_err(Error::Invalid)?;
        if self
            .shared
            .store
            .get_scale_set(&spec.name)
            .await
            .map_err(Error::store("get scale set"))?
            .is_some()
        {
            return Err(Error::AlreadyExists {
                kind: "scale set",
                name: spec.name.clone(),
            });
        }
        let balancer = &self.shared.balancer;
        balancer
            .apply(&spec.name, spec.load_balancer.as_ref(), None)
            .await
            .map_err(Error::Invalid)?;
        let set = ScaleSet {
            spec,
            model_version: 1,
            generation: 1,
            state: ScaleSetState::Active,
            repairs: Default::default(),
            created_at: started,
            updated_at: started,
        };
        let set = match self.shared.store.create_scale_set(&set, actor).await {
            Ok(set) => set,
            Err(e) => {
                balancer
                    .apply(set.name(), None, set.spec.load_balancer.as_ref())
                    .await
                    .ok();
                return Err(Error::store("create scale set")(e));
            }
        };
        self.push_demand(&set);
        self.after_change(
            &set,
            "scale_set.create",
            actor,
            started,
            json!({"capacity": set.spec.capacity}),
        )
        .await;
        Ok(set.redacted())
    }

    /// Refuses a capacity that would take the fleet's desired instances (the capacities'
    /// sum, set `name`'s own replaced by `capacity`) past `--max-instances`. Lowering a
    /// capacity is always allowed, even in a fleet already above a limit lowered since.
    fn check_quota(
        &self,
        sets: &[ScaleSet],
        name: Option<&str>,
        capacity: u32,
    ) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        let limit = u64::from(self.shared.config.max_instances);
        let (own, others): (Vec<&ScaleSet>, Vec<&ScaleSet>) =
            sets.iter().partition(|s| Some(s.name()) == name);
        let current = own.first().map_or(0, |s| s.spec.capacity);
        let others: u64 = others.iter().map(|s| u64::from(s.spec.capacity)).sum();
        if capacity > current && others + u64::from(capacity) > limit {
            errors.push(
                "capacity",
                format!(
                    "the fleet may hold at most {limit} instances (--max-instances) and other scale sets ask for {others}: at most {} here",
                    limit.saturating_sub(others)
                ),
            );
        }
        errors
    }

    /// What can be known of a setting's webhooks before sending: see
    /// [`crate::webhooks::check_targets`].
    pub(crate) fn check_webhooks(
        &self,
        setting: &flotilla_domain::autoscale::AutoscaleSetting,
    ) -> ValidationErrors {
        crate::webhooks::check_targets(setting, &self.shared.config.webhook_allow)
    }

    /// [`Fleet::check_quota`] against the stored sets, as an error.
    pub(crate) async fn quota(&self, name: &str, capacity: u32) -> Result<()> {
        let sets = self.read_sets().await?;
        self.check_quota(&sets, Some(name), capacity)
            .into_result()
            .map_err(Error::Invalid)
    }

    /// Records a succeeded operation that started at `started` and ends now.
    async fn log(
        &self,
        operation: &str,
        actor: &str,
        scale_set: Option<&str>,
        target: &str,
        started: chrono::DateTime<chrono::Utc>,
        details: serde_json::Value,
    ) {
        self.shared
            .record(NewActivity {
                operation: operation.into(),
                actor: actor.into(),
                scale_set: scale_set.map(str::to_string),
                target: target.into(),
                started_at: started,
                ended_at: Some(self.now()),
                result: ActivityResult::Succeeded,
                error: None,
                details,
            })
            .await;
    }

    pub(crate) async fn after_change(
        &self,
        set: &ScaleSet,
        operation: &str,
        actor: &str,
        started: chrono::DateTime<chrono::Utc>,
        details: serde_json::Value,
    ) {
        self.shared.events.publish(Event::ScaleSetChanged {
            scale_set: Box::new(set.clone().redacted()),
        });
        self.log(
            operation,
            actor,
            Some(set.name()),
            set.name(),
            started,
            details,
        )
        .await;
        self.wake(set.name());
    }

    /// Applies `change` to a fresh copy of the set and stores it, re-reading and re-applying
    /// when a concurrent writer got there first.
    pub(crate) async fn modify(
        &self,
        name: &str,
        created_by: &str,
        change: impl Fn(&ScaleSet) -> Result<ScaleSet>,
    ) -> Result<(ScaleSet, ScaleSet)> {
        for _ in 0..RETRIES {
            let current = self.read_set(name).await?;
            if current.state == ScaleSetState::Deleting {
                return Err(Error::InvalidState {
                    message: format!("scale set {name:?} is being deleted"),
                });
            }
            let mut next = change(&current)?;
            next.updated_at = self.now();
            match self.shared.store.update_scale_set(&next, created_by).await {
                Ok(stored) => return Ok((current, stored)),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(Error::store("update scale set")(e)),
            }
        }
        Err(Error::Conflict {
            message: format!("scale set {name:?} is changing too often; retry"),
        })
    }

    pub async fn update_scale_set(
        &self,
        name: &str,
        patch: ScaleSetPatch,
        actor: &str,
    ) -> Result<ScaleSet> {
        let started = self.now();
        let ctx = self.validation_context().await?;
        let current = self.read_set(name).await?;
        if let Some(policy) = &patch.upgrade_policy
            && let Some(field) =
                crate::rollouts::policy_change_refused(&current.spec.upgrade_policy, policy)
            && let Some(running) = self.active_rollout(name).await?
        {
            return Err(Error::invalid(
                field,
                format!(
                    "cannot change while rollout {} runs: cancel it or wait for it to end",
                    running.id
                ),
            ));
        }
        // Frontends change first (validated against the current spec), so a port in use
        // or a bad certificate refuses the whole patch before anything is stored.
        let frontends = match &patch.load_balancer {
            Some(_) => {
                let spec = current.spec.patched(&patch, &ctx).map_err(Error::Invalid)?;
                self.shared
                    .balancer
                    .apply(
                        name,
                        spec.load_balancer.as_ref(),
                        current.spec.load_balancer.as_ref(),
                    )
                    .await
                    .map_err(Error::Invalid)?;
                Some((spec.load_balancer, current.spec.load_balancer.clone()))
            }
            None => None,
        };
        if let Some(capacity) = patch.capacity {
            self.quota(name, capacity).await?;
        }
        let stored = self
            .modify(name, actor, |current| {
                let spec = current.spec.patched(&patch, &ctx).map_err(Error::Invalid)?;
                if let (Some(_), Some(autoscale)) = (&patch.autoscale, &spec.autoscale) {
                    let mut errors = ValidationErrors::default();
                    errors.nest("autoscale", self.check_webhooks(autoscale));
                    errors.into_result().map_err(Error::Invalid)?;
                }
                Ok(ScaleSet {
                    spec,
                    ..current.clone()
                })
            })
            .await;
        let (before, after) = match stored {
            Ok(done) => done,
            Err(e) => {
                if let Some((applied, previous)) = frontends {
                    self.shared
                        .balancer
                        .apply(name, previous.as_ref(), applied.as_ref())
                        .await
                        .ok();
                }
                return Err(e);
            }
        };
        self.after_change(
            &after,
            "scale_set.update",
            actor,
            started,
            json!({"patch": patch.redacted(), "capacity": {"old": before.spec.capacity, "new": after.spec.capacity}}),
        )
        .await;
        Ok(after.redacted())
    }

    pub async fn set_capacity(&self, name: &str, capacity: u32, actor: &str) -> Result<ScaleSet> {
        let started = self.now();
        let mut errors = ValidationErrors::default();
        errors.range(
            "capacity",
            capacity,
            0,
            flotilla_domain::scale_set::MAX_CAPACITY,
        );
        errors.into_result().map_err(Error::Invalid)?;
        self.quota(name, capacity).await?;
        let (before, after) = self
            .modify(name, actor, |current| {
                if current.spec.autoscale.as_ref().is_some_and(|a| a.enabled) {
                    return Err(Error::Conflict {
                        message: format!(
                            "autoscale is enabled for {name:?}: it sets the capacity; disable autoscale or change its profiles' bounds"
                        ),
                    });
                }
                let mut next = current.clone();
                next.spec.capacity = capacity;
                Ok(next)
            })
            .await?;
        self.after_change(
            &after,
            "scale_set.scale",
            actor,
            started,
            json!({"old_capacity": before.spec.capacity, "new_capacity": capacity}),
        )
        .await;
        Ok(after.redacted())
    }

    /// Stores `model` as the set's next model version. New instances use the latest; the
    /// existing ones are upgraded as the upgrade policy says (Automatic and Rolling start
    /// a rollout now, Manual waits for a person). Refused while a rollout runs.
    pub async fn set_model(&self, name: &str, mut model: Model, actor: &str) -> Result<ScaleSet> {
        let started = self.now();
        let current = self.read_set(name).await?;
        model.keep_user_data(Some(&current.spec.model));
        let mut errors = ValidationErrors::default();
        errors.nest("model", model.validate());
        self.check_image(&model, &mut errors, "model.image").await?;
        errors.into_result().map_err(Error::Invalid)?;
        if let Some(running) = self.active_rollout(name).await? {
            return Err(Error::InvalidState {
                message: format!(
                    "rollout {} to version {} is still running: cancel it (or roll it back) before changing the model",
                    running.id, running.target_version
                ),
            });
        }
        let (before, after) = self
            .modify(name, actor, |current| {
                let mut next = current.clone();
                let mut model = model.clone();
                // Kept from the set as it is now, should a writer have come in between.
                model.keep_user_data(Some(&current.spec.model));
                next.spec.model = model;
                next.spec.follow_app_port(current.spec.model.app_port);
                next.model_version = current.model_version + 1;
                Ok(next)
            })
            .await?;
        self.after_change(
            &after,
            "scale_set.model",
            actor,
            started,
            json!({"old_version": before.model_version, "new_version": after.model_version}),
        )
        .await;
        self.after_model_change(&after, actor).await;
        Ok(after.redacted())
    }

    /// Every kept version of the set's model, user data redacted.
    pub async fn model_versions(&self, name: &str) -> Result<Vec<ModelVersion>> {
        self.get_scale_set(name).await?;
        let versions = self
            .shared
            .store
            .list_model_versions(name)
            .await
            .map_err(Error::store("list model versions"))?;
        Ok(versions
            .into_iter()
            .map(|v| ModelVersion {
                model: v.model.redacted(),
                ..v
            })
            .collect())
    }

    /// Marks the set for deletion; the reconciler deletes every instance, protected or not,
    /// then removes the set.
    pub async fn delete_scale_set(&self, name: &str, actor: &str) -> Result<ScaleSet> {
        let started = self.now();
        let (_, after) = self
            .modify(name, actor, |current| {
                let mut next = current.clone();
                next.state = ScaleSetState::Deleting;
                Ok(next)
            })
            .await?;
        self.after_change(&after, "scale_set.delete", actor, started, json!({}))
            .await;
        Ok(after.redacted())
    }

    // ---- instances ----

    /// The set's instances, each with its last probe result.
    pub async fn list_instances(&self, name: &str) -> Result<Vec<Instance>> {
        self.get_scale_set(name).await?;
        let mut all = self
            .shared
            .store
            .list_instances(name)
            .await
            .map_err(Error::store("list instances"))?;
        self.shared.probes.merge(&mut all);
        Ok(all)
    }

    /// Every instance of the fleet, by scale set then ordinal, in one read.
    pub async fn list_all_instances(&self) -> Result<Vec<Instance>> {
        let mut all = self
            .shared
            .store
            .list_all_instances()
            .await
            .map_err(Error::store("list instances"))?;
        self.shared.probes.merge(&mut all);
        Ok(all)
    }

    pub async fn get_instance(&self, name: &str, id: &str) -> Result<Instance> {
        let mut instance = self
            .shared
            .store
            .get_instance(id)
            .await
            .map_err(Error::store("get instance"))?
            .filter(|i| i.scale_set == name)
            .ok_or_else(|| Error::NotFound {
                kind: "instance",
                name: id.into(),
            })?;
        self.shared
            .probes
            .merge(std::slice::from_mut(&mut instance));
        Ok(instance)
    }

    /// Accepts a person's action on one instance. The reconciler carries it out; the answer
    /// is the instance with the action recorded (`updating`, or `deleting`).
    pub async fn instance_action(
        &self,
        name: &str,
        id: &str,
        action: InstanceAction,
        actor: &str,
    ) -> Result<Instance> {
        let started = self.now();
        // The set and the record may be written by a loop (health, observed state, a
        // scale-in) between the reads and the write: both are read afresh, the action
        // checked again and retried.
        let mut attempt = 0;
        let result = loop {
            let set = self.read_set(name).await?;
            if set.state == ScaleSetState::Deleting {
                return Err(Error::InvalidState {
                    message: format!("scale set {name:?} is being deleted"),
                });
            }
            let instance = self.get_instance(name, id).await?;
            let effect = instance
                .accept(action)
                .map_err(|refused| Error::InvalidState {
                    message: refused.to_string(),
                })?;
            match self.apply_action(&set, instance, effect, started).await {
                Err(Error::Conflict { .. }) if attempt < RETRIES => attempt += 1,
                other => break other?,
            }
        };
        self.shared.events.publish(Event::InstanceChanged {
            instance: Box::new(result.clone()),
        });
        self.log(
            &format!("instance.{action}"),
            actor,
            Some(name),
            id,
            started,
            json!({"accepted": true}),
        )
        .await;
        self.wake(name);
        Ok(result)
    }

    /// Carries out `effect` of an action on `instance`.
    async fn apply_action(
        &self,
        set: &ScaleSet,
        instance: Instance,
        effect: ActionEffect,
        started: chrono::DateTime<chrono::Utc>,
    ) -> Result<Instance> {
        let id = instance.id.clone();
        match effect {
            ActionEffect::None => Ok(instance),
            ActionEffect::Delete => {
                let (set, marked) = match self
                    .shared
                    .store
                    .mark_deleting(set, std::slice::from_ref(&id), true, started)
                    .await
                {
                    Err(StoreError::Conflict { .. }) => {
                        return Err(Error::Conflict {
                            message: format!(
                                "scale set {:?} changed concurrently; retry",
                                set.name()
                            ),
                        });
                    }
                    other => other.map_err(Error::store("delete instance"))?,
                };
                self.shared.events.publish(Event::ScaleSetChanged {
                    scale_set: Box::new(set.redacted()),
                });
                marked.into_iter().next().ok_or_else(|| Error::NotFound {
                    kind: "instance",
                    name: id,
                })
            }
            ActionEffect::SetDesiredPower(desired) => {
                let mut next = instance;
                next.desired_power = desired;
                next.provisioning_state = ProvisioningState::Updating;
                next.updated_at = started;
                self.write_instance(next).await
            }
            ActionEffect::Pending(pending) => {
                let mut next = instance;
                next.pending = Some(pending);
                next.provisioning_state = ProvisioningState::Updating;
                next.updated_at = started;
                self.write_instance(next).await
            }
        }
    }

    async fn write_instance(&self, next: Instance) -> Result<Instance> {
        let id = next.id.clone();
        let written = self
            .shared
            .store
            .update_instances(&[next])
            .await
            .map_err(Error::store("update instance"))?;
        written
            .written
            .into_iter()
            .next()
            .ok_or_else(|| Error::Conflict {
                message: format!("instance {id:?} changed concurrently; retry"),
            })
    }

    pub async fn set_protection(
        &self,
        name: &str,
        id: &str,
        protection: Protection,
        actor: &str,
    ) -> Result<Instance> {
        self.change_instance(
            name,
            id,
            actor,
            "instance.protection",
            serde_json::to_value(protection).unwrap_or_default(),
            |i| {
                i.protect_from_scale_in = protection.protect_from_scale_in;
                i.protect_from_scale_set_actions = protection.protect_from_scale_set_actions;
            },
        )
        .await
    }

    /// Turns the load balancer's switch for one instance: `false` drains it (nothing new
    /// is sent to it, requests in flight finish), `true` lets it serve again. Separate from
    /// health: a drained instance keeps being probed.
    pub async fn set_load_balancer_enabled(
        &self,
        name: &str,
        id: &str,
        enabled: bool,
        actor: &str,
    ) -> Result<Instance> {
        let operation = if enabled {
            "instance.load_balancer.enable"
        } else {
            "instance.load_balancer.drain"
        };
        self.change_instance(
            name,
            id,
            actor,
            operation,
            json!({"load_balancer_enabled": enabled}),
            |i| i.load_balancer_enabled = enabled,
        )
        .await
    }

    /// Applies a person's `change` to one instance that is not being deleted, then
    /// publishes and logs it.
    async fn change_instance(
        &self,
        name: &str,
        id: &str,
        actor: &str,
        operation: &str,
        details: serde_json::Value,
        change: impl FnOnce(&mut Instance),
    ) -> Result<Instance> {
        let started = self.now();
        let mut next = self.get_instance(name, id).await?;
        if next.provisioning_state == ProvisioningState::Deleting {
            return Err(Error::InvalidState {
                message: format!("instance {id:?} is being deleted"),
            });
        }
        change(&mut next);
        next.updated_at = started;
        let mut written = self.write_instance(next).await?;
        self.shared.probes.merge(std::slice::from_mut(&mut written));
        self.shared.events.publish(Event::InstanceChanged {
            instance: Box::new(written.clone()),
        });
        self.log(operation, actor, Some(name), id, started, details)
            .await;
        Ok(written)
    }

    // ---- health and repairs ----

    /// The set's repair service: its status, limit and what it would repair now.
    pub async fn repairs(&self, name: &str) -> Result<RepairOverview> {
        let set = self.get_scale_set(name).await?;
        let instances = self.list_instances(name).await?;
        let zones = self.zones().await?;
        Ok(RepairOverview::of(
            &set.spec,
            &set.repairs,
            &instances,
            &zones,
            self.now(),
        ))
    }

    /// Resumes automatic repairs the service suspended (and forgets its failures).
    pub async fn resume_repairs(&self, name: &str, actor: &str) -> Result<ScaleSet> {
        let started = self.now();
        let set = self.get_scale_set(name).await?;
        if !set.repairs.is_suspended() {
            return Err(Error::InvalidState {
                message: format!("automatic repairs of {name:?} are not suspended"),
            });
        }
        let resumed = RepairStatus {
            rebalancing: set.repairs.rebalancing.clone(),
            ..RepairStatus::default()
        };
        self.shared
            .store
            .set_repair_status(name, &resumed)
            .await
            .map_err(Error::store("resume repairs"))?;
        let reason = set.repairs.suspended_reason;
        let set = self.get_scale_set(name).await?;
        self.after_change(
            &set,
            "repairs.resume",
            actor,
            started,
            json!({"suspended_reason": reason}),
        )
        .await;
        Ok(set)
    }

    /// The prober's counters; reading resets the lag maximum.
    pub fn prober_stats(&self) -> ProberStats {
        self.shared.prober.read()
    }

    // ---- load balancer ----

    /// Statistics of every frontend and its pools' members.
    pub fn load_balancer_stats(&self) -> Vec<flotilla_lb::FrontendStats> {
        self.shared.balancer.lb.stats()
    }

    /// Appends the load balancer's Prometheus exposition.
    pub fn render_load_balancer_metrics(&self, out: &mut String) {
        self.shared.balancer.lb.render_prometheus(out);
    }

    // ---- activity ----

    pub async fn activity(&self, filter: &ActivityFilter) -> Result<Vec<Activity>> {
        let mut errors = ValidationErrors::default();
        errors.range("limit", filter.limit, 1, 1000);
        errors.into_result().map_err(Error::Invalid)?;
        self.shared
            .store
            .list_activity(filter)
            .await
            .map_err(Error::store("list activity"))
    }

    // ---- backend ----

    pub async fn backend_info(&self) -> Result<BackendInfo> {
        let backend = &self.shared.backend;
        Ok(BackendInfo {
            kind: backend.kind().into(),
            zones: self.zones().await?,
            images: backend
                .images()
                .await
                .map_err(Error::backend("list images"))?,
            hosts: backend
                .hosts()
                .await
                .map_err(Error::backend("list hosts"))?,
            fault_injection: backend.faults().is_some(),
        })
    }

    /// The end of instance `id`'s serial console output (the instance must be set `name`'s).
    pub async fn console(&self, name: &str, id: &str) -> Result<ConsoleOutput> {
        self.get_instance(name, id).await?;
        let output = self
            .shared
            .backend
            .console(id)
            .await
            .map_err(Error::backend("read the console log"))?;
        Ok(ConsoleOutput {
            instance: id.to_owned(),
            output,
        })
    }

    /// Every VM the backend holds, whether or not a scale set owns it, each saying whether
    /// it is another installation's (or of none): those are never touched.
    pub async fn backend_vms(&self) -> Result<Vec<BackendVm>> {
        let backend = &self.shared.backend;
        let ours = backend.installation_id();
        Ok(backend
            .list(None)
            .await
            .map_err(Error::backend("list VMs"))?
            .into_iter()
            .map(|vm| BackendVm {
                foreign: vm.installation_id.as_deref() != Some(ours),
                vm,
            })
            .collect())
    }

    /// This installation's id, written into every VM it creates.
    pub fn installation_id(&self) -> &str {
        self.shared.backend.installation_id()
    }

    fn fault_injection(&self) -> Result<&dyn flotilla_backend::FaultInjection> {
        self.shared.backend.faults().ok_or(Error::NotSupported {
            what: "fault injection",
        })
    }

    pub async fn faults(&self) -> Result<Vec<Fault>> {
        Ok(self.fault_injection()?.active().await)
    }

    pub async fn inject_fault(&self, fault: Fault, actor: &str) -> Result<()> {
        let started = self.now();
        fault.validate().map_err(Error::Invalid)?;
        let (scale_set, target) = match &fault {
            Fault::Crash { instance }
            | Fault::Unhealthy { instance }
            | Fault::Healthy { instance } => {
                let owner = self
                    .shared
                    .store
                    .get_instance(instance)
                    .await
                    .map_err(Error::store("get instance"))?
                    .map(|i| i.scale_set);
                (owner, instance.clone())
            }
            Fault::ZoneDown { zone } | Fault::ZoneUp { zone } => (None, format!("zone {zone}")),
            Fault::CreateFailureRate { .. } | Fault::SlowBoot { .. } => (None, "backend".into()),
        };
        self.fault_injection()?
            .inject(fault.clone())
            .await
            .map_err(Error::backend("inject fault"))?;
        self.log(
            "backend.fault",
            actor,
            scale_set.as_deref(),
            &target,
            started,
            serde_json::to_value(&fault).unwrap_or_default(),
        )
        .await;
        match scale_set {
            Some(name) => self.wake(&name),
            None => self.wake_all().await,
        }
        Ok(())
    }

    pub async fn clear_faults(&self, actor: &str) -> Result<()> {
        let started = self.now();
        self.fault_injection()?
            .clear()
            .await
            .map_err(Error::backend("clear faults"))?;
        self.log(
            "backend.faults_cleared",
            actor,
            None,
            "backend",
            started,
            json!({}),
        )
        .await;
        self.wake_all().await;
        Ok(())
    }

    async fn wake_all(&self) {
        if let Ok(sets) = self.list_scale_sets().await {
            for s in sets {
                self.wake(s.name());
            }
        }
    }
}
