//! The leader lease: which replica runs the tasks that write for the fleet.
//!
//! Every replica runs one keeper. It heartbeats the replica's row and tries the leader
//! lease — acquire-or-renew is one statement timed by the database's clock, so replicas'
//! clocks never have to agree. A replica that gains the lease holds its generation in the
//! [`Fence`] every task writes through, takes over (adopts legacy VMs; the reconciler then
//! reads the backend's truth before acting) and starts the registry's leader tasks. It
//! steps down — fence released first, so no write gets through, then the tasks stopped —
//! when a renewal finds another holder, when a write was refused by the fence, or when it
//! has not renewed for [`LeaseTiming::deadline`] by its own monotonic clock: before the
//! lease (`ttl`) can expire and another take it. A clean stop releases the lease, so a
//! successor need not wait for the expiry.
//!
//! On SQLite the processes sharing a file are on one machine: the single-holder guard is an
//! exclusive lock on a file beside the database, released by the operating system when its
//! holder dies, so the replica holding it takes the lease at once (`force`) rather than
//! waiting out a dead predecessor's term; another process on the same file stands by.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_domain::replica::{LEADER_LEASE, Lease, Replica, ReplicaStatus};
use flotilla_domain::{ActivityResult, NewActivity};
use flotilla_store::Fence;
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::context::{Context, record_to};
use crate::error::{Error, Result, chain};
use crate::tasks::{Registry, Scope};

/// The lease's timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a term lasts without renewal, by the database's clock.
    pub ttl: Duration,
    /// How often the holder renews (and every replica heartbeats).
    pub renew: Duration,
    /// How long the holder acts without a successful renewal, by its monotonic clock;
    /// below `ttl`, so it stops before another may start.
    pub deadline: Duration,
    /// How often a replica standing by tries the lease.
    pub retry: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(15),
            renew: Duration::from_secs(4),
            deadline: Duration::from_secs(10),
            retry: Duration::from_secs(1),
        }
    }
}

/// What keeps two processes on one database from both taking a live lease when the lease
/// alone cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SingleHolder {
    /// Several replicas share the database (PostgreSQL): the lease's expiry decides.
    Shared,
    /// Nobody else can open the database (SQLite in memory): take the lease at once.
    Process,
    /// SQLite file: whoever holds an exclusive lock on this file takes the lease at once.
    File(PathBuf),
}

/// This process as a control-plane replica.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// Unique per process start.
    pub id: String,
    /// The machine's name, as shown.
    pub host: String,
    pub lease: LeaseTiming,
    pub single_holder: SingleHolder,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        Self {
            id: new_replica_id(),
            host: "localhost".into(),
            lease: LeaseTiming::default(),
            single_holder: SingleHolder::Process,
        }
    }
}

/// A fresh replica id: 12 random hex digits.
pub fn new_replica_id() -> String {
    crate::accounts::random_secret()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(12)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// What `/metrics` shows of this replica's leadership.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LeadershipStats {
    /// Whether this replica holds the leader lease now.
    pub leading: bool,
    /// The generation it holds.
    pub generation: Option<i64>,
    /// Terms this replica began.
    pub terms: u64,
    /// Times it stopped leading.
    pub step_downs: u64,
    /// Lease statements (acquire or renew) that answered, and their total time.
    pub renewals: u64,
    pub renew_seconds_total: f64,
    /// The last one's time.
    pub last_renew_seconds: f64,
    /// Lease statements that failed (the database unreachable).
    pub renew_failures: u64,
    /// Writes the fence refused.
    pub fence_refusals: u64,
}

/// The keeper of this replica's leadership.
pub(crate) struct Leadership {
    /// Writes as this replica, unfenced: heartbeats, the lease, entries about the lease.
    ctx: Context,
    /// What the leader's tasks write through.
    fenced: Context,
    fence: Arc<Fence>,
    registry: Arc<Registry>,
    config: ReplicaConfig,
    replica: Replica,
    stats: Mutex<LeadershipStats>,
    /// While leading: when it must stop unless it renewed.
    deadline: Mutex<Option<Instant>>,
    /// The single-holder guard's lock, once held (kept until the process ends).
    guard: Mutex<Option<File>>,
    /// Leads without starting the tasks (they are driven by hand).
    by_hand: AtomicBool,
    /// The keeper runs.
    started: AtomicBool,
    stop: CancellationToken,
    tracker: TaskTracker,
}

/// Why a replica stops leading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepDown {
    /// A renewal found another holder, or a new term.
    Lost,
    /// No renewal within the deadline.
    Deadline,
    /// The fence refused a write.
    Refused,
    /// The process is stopping.
    Shutdown,
}

impl StepDown {
    fn as_str(self) -> &'static str {
        match self {
            Self::Lost => "another replica holds the lease",
            Self::Deadline => "not renewed within the deadline",
            Self::Refused => "the fence refused a write",
            Self::Shutdown => "the replica is stopping",
        }
    }
}

impl Leadership {
    pub(crate) fn new(
        ctx: Context,
        fenced: Context,
        fence: Arc<Fence>,
        registry: Arc<Registry>,
        config: ReplicaConfig,
    ) -> Self {
        let now = ctx.now();
        let replica = Replica {
            id: config.id.clone(),
            host: config.host.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: now,
            heartbeat_at: now,
        };
        Self {
            ctx,
            fenced,
            fence,
            registry,
            config,
            replica,
            stats: Mutex::new(LeadershipStats::default()),
            deadline: Mutex::new(None),
            guard: Mutex::new(None),
            by_hand: AtomicBool::new(false),
            started: AtomicBool::new(false),
            stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }

    /// Whether this replica holds the leader lease now.
    pub(crate) fn leading(&self) -> bool {
        self.fence.generation().is_some()
    }

    pub(crate) fn replica_id(&self) -> &str {
        &self.replica.id
    }

    pub(crate) fn stats(&self) -> LeadershipStats {
        let mut stats = self.lock().clone();
        stats.fence_refusals = self.fence.refusals();
        stats
    }

    /// Announces the replica, tries the lease once (a lone replica leads when this returns),
    /// then keeps it in the background; a term starts the leader's tasks unless `by_hand`
    /// (tests and benchmarks drive them). Called again, it only changes `by_hand`. Answers
    /// whether this replica leads.
    pub(crate) async fn start(self: &Arc<Self>, by_hand: bool) -> Result<bool> {
        self.by_hand.store(by_hand, Ordering::Relaxed);
        if self.started.swap(true, Ordering::Relaxed) {
            if !by_hand && self.fence.generation().is_some() {
                self.registry.start(Scope::Leader);
            }
            return Ok(self.fence.generation().is_some());
        }
        self.heartbeat().await?;
        self.try_lead().await;
        let keeper = self.clone();
        self.tracker.spawn(async move { keeper.keep().await });
        Ok(self.fence.generation().is_some())
    }

    /// Stops the keeper, steps down (releasing the lease) and forgets the replica.
    pub(crate) async fn shutdown(&self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        if self.fence.generation().is_some() {
            self.step_down(StepDown::Shutdown).await;
        }
        if let Err(e) = self.ctx.store.remove_replica(&self.replica.id).await {
            tracing::warn!(error = %chain(&e), "could not remove this replica's row");
        }
    }

    /// Every replica with the leases it holds.
    pub(crate) async fn replicas(&self) -> Result<Vec<ReplicaStatus>> {
        let store = &self.ctx.store;
        let replicas = store
            .list_replicas()
            .await
            .map_err(Error::store("list replicas"))?;
        let leases = self.leases().await?;
        Ok(ReplicaStatus::gather(replicas, &leases, self.ctx.now()))
    }

    pub(crate) async fn leases(&self) -> Result<Vec<Lease>> {
        self.ctx
            .store
            .list_leases()
            .await
            .map_err(Error::store("list leases"))
    }

    async fn keep(self: Arc<Self>) {
        let timing = self.config.lease;
        loop {
            let leading = self.fence.generation().is_some();
            let pause = if leading { timing.renew } else { timing.retry };
            let deadline = *self.deadline.lock().expect("leadership poisoned");
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
                () = self.fence.refused(), if leading => {
                    self.step_down(StepDown::Refused).await;
                    continue;
                }
                () = sleep_until(deadline), if leading => {
                    self.step_down(StepDown::Deadline).await;
                    continue;
                }
            }
            if let Err(e) = self.heartbeat().await {
                tracing::warn!(error = %chain(&e), "replica heartbeat failed");
            }
            self.try_lead().await;
        }
    }

    /// Records that this replica is alive and, when it serves load balancer frontends,
    /// their counters (the leader adds every replica's into each set's traffic metrics).
    async fn heartbeat(&self) -> Result<()> {
        let store = &self.ctx.store;
        store
            .heartbeat(&self.replica, Duration::from_secs(3600))
            .await
            .map_err(Error::store("heartbeat"))?;
        let mut frontends = self.ctx.balancer.lb.stats();
        if frontends.is_empty() {
            return Ok(());
        }
        // The members are this replica's view; the leader needs the counters only.
        for f in &mut frontends {
            f.backends.clear();
        }
        store
            .put_frontend_counters(&self.replica.id, &frontends)
            .await
            .map_err(Error::store("record the frontend counters"))
    }

    /// Acquires or renews the lease, and starts or stops leading accordingly.
    async fn try_lead(&self) {
        let force = match self.single_holder() {
            Some(force) => force,
            None => return,
        };
        let started = Instant::now();
        let answer = self
            .ctx
            .store
            .acquire_lease(LEADER_LEASE, &self.replica.id, self.config.lease.ttl, force)
            .await;
        let took = started.elapsed();
        let held = self.fence.generation();
        match answer {
            Err(e) => {
                self.lock().renew_failures += 1;
                tracing::warn!(error = %chain(&e), "the leader lease could not be renewed");
            }
            Ok(lease) => {
                {
                    let mut stats = self.lock();
                    stats.renewals += 1;
                    stats.renew_seconds_total += took.as_secs_f64();
                    stats.last_renew_seconds = took.as_secs_f64();
                }
                match (lease, held) {
                    (Some(lease), Some(g)) if lease.generation == g => {
                        // Renewed: the deadline counts from when the statement was sent.
                        let deadline = started + self.config.lease.deadline;
                        self.fence.hold(g, deadline);
                        *self.deadline.lock().expect("leadership poisoned") = Some(deadline);
                    }
                    (Some(lease), held) => {
                        if held.is_some() {
                            self.step_down(StepDown::Lost).await;
                        }
                        self.lead(&lease, started).await;
                    }
                    (None, Some(_)) => self.step_down(StepDown::Lost).await,
                    (None, None) => {}
                }
            }
        }
    }

    /// Whether the lease may be forced, or `None` while another process holds the guard.
    fn single_holder(&self) -> Option<bool> {
        match &self.config.single_holder {
            SingleHolder::Shared => Some(false),
            SingleHolder::Process => Some(true),
            SingleHolder::File(path) => {
                let mut guard = self.guard.lock().expect("guard poisoned");
                if guard.is_some() {
                    return Some(true);
                }
                let file = match OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(path)
                {
                    Ok(file) => file,
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot open the single-holder lock file");
                        return None;
                    }
                };
                match file.try_lock() {
                    Ok(()) => {
                        *guard = Some(file);
                        Some(true)
                    }
                    Err(_) => None,
                }
            }
        }
    }

    /// Begins a term: the fence first, then the takeover, then the tasks.
    async fn lead(&self, lease: &Lease, sent: Instant) {
        let deadline = sent + self.config.lease.deadline;
        self.fence.hold(lease.generation, deadline);
        {
            let mut stats = self.lock();
            stats.leading = true;
            stats.generation = Some(lease.generation);
            stats.terms += 1;
        }
        *self.deadline.lock().expect("leadership poisoned") = Some(deadline);
        tracing::info!(generation = lease.generation, replica = %self.replica.id, "this replica leads");
        self.fenced
            .record(NewActivity {
                operation: "control.lead".into(),
                actor: "system:control".into(),
                scale_set: None,
                target: LEADER_LEASE.into(),
                started_at: self.ctx.now(),
                ended_at: Some(self.ctx.now()),
                result: ActivityResult::Succeeded,
                error: None,
                details: json!({"generation": lease.generation, "host": self.replica.host}),
            })
            .await;
        // Before acting, take over what the backend holds (the reconciler reads the
        // backend's truth on its first activation of each set).
        if let Err(e) = crate::tasks::orphans::adopt_legacy(&self.fenced).await {
            tracing::warn!(error = %chain(&e), "adopting VMs made before installations had ids failed");
        }
        if !self.by_hand.load(Ordering::Relaxed) {
            self.registry.start(Scope::Leader);
        }
    }

    /// Ends the term: no write gets through from now, then the tasks stop — or, at a clean
    /// shutdown, the tasks stop first (their last writes under the lease), then the lease
    /// is released.
    async fn step_down(&self, why: StepDown) {
        let Some(generation) = self.fence.generation() else {
            return;
        };
        if why == StepDown::Shutdown {
            // Still the holder: the tasks' last writes (the minute of metrics in progress)
            // go through under the lease before it is given up.
            self.registry.stop(Scope::Leader).await;
            self.fence.release();
        } else {
            // No longer the holder: nothing may get through from now on.
            self.fence.release();
        }
        {
            let mut stats = self.lock();
            stats.leading = false;
            stats.generation = None;
            stats.step_downs += 1;
        }
        *self.deadline.lock().expect("leadership poisoned") = None;
        if why == StepDown::Shutdown {
            tracing::info!(generation, replica = %self.replica.id, "this replica stops leading: it is stopping");
        } else {
            tracing::warn!(generation, reason = why.as_str(), replica = %self.replica.id, "this replica stops leading");
        }
        self.registry.stop(Scope::Leader).await;
        if why == StepDown::Shutdown {
            let store = &self.ctx.store;
            if let Err(e) = store
                .release_lease(LEADER_LEASE, &self.replica.id, generation)
                .await
            {
                tracing::warn!(error = %chain(&e), "could not release the leader lease");
            }
        }
        record_to(
            self.ctx.store.as_ref(),
            &self.ctx.events,
            NewActivity {
                operation: "control.step_down".into(),
                actor: "system:control".into(),
                scale_set: None,
                target: LEADER_LEASE.into(),
                started_at: self.ctx.now(),
                ended_at: Some(self.ctx.now()),
                result: if why == StepDown::Shutdown {
                    ActivityResult::Succeeded
                } else {
                    ActivityResult::Failed
                },
                error: (why != StepDown::Shutdown).then(|| why.as_str().to_string()),
                details: json!({"generation": generation}),
            },
        )
        .await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LeadershipStats> {
        self.stats.lock().expect("leadership poisoned")
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
