//! The mock hypervisor: a simulator of VMs that Flotilla runs on by default, for demos and
//! for tests.
//!
//! - **Zones and fault domains** as configured; zones can be taken down and brought back.
//! - **Hosts**: each fault domain of a zone is a simulated host `{zone}-fd{n}`
//!   (`Backend::hosts`: its VMs and what they hold; no limits), which can be taken down
//!   and brought back too.
//! - **Power model** with latency and jitter: `create`/`start`/`restart`/`reimage` go
//!   through `starting` to `running` after the latency (plus the slow-boot fault's seconds),
//!   `stop` through `stopping` to `stopped`, `deallocate` through `deallocating` to
//!   `deallocated`; these answer once accepted. `delete` takes the latency too, and answers
//!   once the VM is gone (as libvirt's does): meanwhile the VM serves no more and is
//!   listed `stopping`. With zero latency a transition completes inside the call.
//! - **Two modes**: [`Mode::Timer`] applies transitions when due from a background task
//!   (demos, the running server); [`Mode::Stepped`] moves only when [`Mock::advance`] is
//!   called, so tests are deterministic.
//! - **Real HTTP**: every running VM serves `GET /` and `GET /health` on its own port on
//!   127.0.0.1 (`http`); stopping, crashing or deleting it closes the port and drops its
//!   connections before the operation returns.
//! - **Fault injection** ([`FaultInjection`]): crash, unhealthy/healthy, zone down/up,
//!   host down/up, create failure rate, slow boot; and bad releases: a model whose user data has the line
//!   [`UNHEALTHY_MARKER`] boots VMs whose `/health` answers 503 (for trying rollouts).
//! - **Load** ([`Simulation`], [`load`]): each set's synthetic demand plus the real requests
//!   its VMs answer become CPU, memory, network and disk figures (`Backend::metrics`).
//! - **Persistence**: with a `state_dir`, an append-only journal (`journal`) lets VMs outlive
//!   the process, as real VMs outlive a control plane's restart.
//! - **Changes**: every VM change is announced ([`Mock::changes`]).
//! - **As a service** ([`remote`]): `flotilla mock-hypervisor` serves mocks over HTTP to
//!   several control-plane replicas, each using a [`remote::RemoteMock`] as its backend.
//!
//! Invariants: all state sits behind one `std::sync::Mutex` (`state`), never held across an
//! `.await`; every task (timer, servers, connections) is owned by the mock's task tracker and
//! stops on [`Mock::shutdown`] or drop; all randomness comes from one RNG seeded by
//! [`MockConfig::seed`].

mod http;
mod journal;
pub mod load;
pub mod remote;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use flotilla_domain::demand::Demand;
use flotilla_domain::{Fault, HostStatus, Model, ObservedVm, WarmPoolState, ZoneStatus};
use tokio::runtime::Handle;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::http::Spawner;
use self::state::{Clock, State, Step};
use crate::{Backend, BackendError, FaultInjection, Result, Simulation, VmMetrics, VmSpec};

pub use self::journal::JOURNAL_FILE;
pub use self::state::UNHEALTHY_MARKER;

/// How the mock's clock moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// A background task applies transitions when they are due (demos, the server).
    #[default]
    Timer,
    /// Nothing moves until [`Mock::advance`] (tests).
    Stepped,
}

/// The simulator's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MockConfig {
    /// Zone names, in the order `zones()` lists them. Default `1`, `2`, `3`.
    pub zones: Vec<String>,
    /// Fault domains per zone (numbered from 0). Default 3.
    pub fault_domains: u32,
    /// Image names models may use. Default `debian-12`, `ubuntu-24.04`, `alpine-3.20`.
    pub images: Vec<String>,
    /// How long a power transition takes. Default 1 s.
    pub latency: Duration,
    /// Uniform jitter as a share of `latency`: 0.5 draws each transition from
    /// `latency × [0.5, 1.5]`. Between 0 and 1; default 0.5.
    pub jitter: f64,
    /// Seeds the one RNG behind jitter and simulated create failures. Default 0.
    pub seed: u64,
    pub mode: Mode,
    /// Where the journal lives; `None` keeps everything in memory.
    pub state_dir: Option<PathBuf>,
    /// Ports VMs serve on, taken in turn (a VM keeps its port when it can; when the whole
    /// range is taken, any free port). Default 20000–32767: below Linux's ephemeral range,
    /// so thousands of VMs neither starve outgoing connections nor wait on the kernel's
    /// search for a free ephemeral port.
    pub port_range: Range<u16>,
    /// The installation whose VMs these are: written into every VM created, and the only
    /// VMs this mock changes (the others are listed, never touched). Default
    /// [`DEFAULT_INSTALLATION`]; the server gives its database's id.
    pub installation_id: String,
}

/// The installation id of a mock whose configuration names none (tests, benchmarks).
pub const DEFAULT_INSTALLATION: &str = "mock";

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            zones: ["1", "2", "3"].map(String::from).to_vec(),
            fault_domains: 3,
            images: ["debian-12", "ubuntu-24.04", "alpine-3.20"]
                .map(String::from)
                .to_vec(),
            latency: Duration::from_secs(1),
            jitter: 0.5,
            seed: 0,
            mode: Mode::Timer,
            state_dir: None,
            port_range: 20_000..32_768,
            installation_id: DEFAULT_INSTALLATION.into(),
        }
    }
}

impl MockConfig {
    /// The defaults in [`Mode::Stepped`].
    pub fn stepped() -> Self {
        MockConfig::default().with_mode(Mode::Stepped)
    }

    /// The defaults with zero latency: every operation completes inside its call.
    pub fn instant() -> Self {
        MockConfig::default().with_latency(Duration::ZERO)
    }

    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn with_zones<S: Into<String>>(mut self, zones: impl IntoIterator<Item = S>) -> Self {
        self.zones = zones.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_fault_domains(mut self, fault_domains: u32) -> Self {
        self.fault_domains = fault_domains;
        self
    }

    pub fn with_images<S: Into<String>>(mut self, images: impl IntoIterator<Item = S>) -> Self {
        self.images = images.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    pub fn with_port_range(mut self, ports: Range<u16>) -> Self {
        self.port_range = ports;
        self
    }

    pub fn with_installation_id(mut self, id: impl Into<String>) -> Self {
        self.installation_id = id.into();
        self
    }

    fn validate(&self) -> std::result::Result<(), OpenError> {
        let invalid = |field, message: &str| {
            Err(OpenError::InvalidConfig {
                field,
                message: message.to_owned(),
            })
        };
        if self.zones.is_empty() {
            return invalid("zones", "at least one zone is needed");
        }
        if self.zones.iter().any(String::is_empty) {
            return invalid("zones", "zone names must not be empty");
        }
        let mut names: Vec<&String> = self.zones.iter().collect();
        names.sort();
        names.dedup();
        if names.len() != self.zones.len() {
            return invalid("zones", "zone names must be unique");
        }
        if self.fault_domains == 0 {
            return invalid("fault_domains", "at least one fault domain is needed");
        }
        if self.images.is_empty() {
            return invalid("images", "at least one image is needed");
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return invalid("jitter", "must be between 0 and 1");
        }
        if self.port_range.start == 0 || self.port_range.is_empty() {
            return invalid("port_range", "must be a non-empty range of ports above 0");
        }
        if self.installation_id.is_empty() {
            return invalid("installation_id", "must not be empty");
        }
        Ok(())
    }
}

/// Why the mock could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("invalid mock configuration: {field}: {message}")]
    InvalidConfig {
        field: &'static str,
        message: String,
    },
    #[error("cannot read the mock journal {}", path.display())]
    ReadJournal {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the mock journal {} is corrupt at line {line}", path.display())]
    CorruptJournal {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write the mock journal {}", path.display())]
    WriteJournal {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The mock hypervisor. Not `Clone`: it owns its VMs' servers and stops them when dropped;
/// share it behind an `Arc`.
pub struct Mock {
    shared: Arc<Shared>,
}

struct Shared {
    config: Arc<MockConfig>,
    state: Mutex<State>,
    wake: Arc<Notify>,
    spawner: Spawner,
    /// Announces the id of every VM whose state changed ([`Mock::changes`]).
    changes: broadcast::Sender<String>,
    /// Each scale set's synthetic demand (kept by the control plane, given on start).
    demands: Mutex<HashMap<String, Demand>>,
    /// Per VM: the request count and mock time last seen, and the rate then measured.
    request_rates: Mutex<HashMap<String, RequestRate>>,
}

#[derive(Debug, Clone, Copy)]
struct RequestRate {
    at: Duration,
    count: u64,
    rps: f64,
}

/// Announcements a slow follower of [`Mock::changes`] may fall behind by before it lags.
const CHANGES_BUFFER: usize = 1024;

/// Request rates are measured over at least this long (shorter calls reuse the last rate).
const RATE_WINDOW: Duration = Duration::from_millis(900);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Poisoned only if a panic interrupted a state change; the state may then be
        // inconsistent, so failing loudly is the honest answer.
        self.state.lock().expect("mock state poisoned by a panic")
    }
}

impl std::fmt::Debug for Mock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mock")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Mock {
    /// Opens the simulator: replays and compacts the journal in `state_dir` (if any), brings
    /// its VMs back (running ones serve again) and, in [`Mode::Timer`], starts the timer.
    ///
    /// Must run inside a tokio runtime, on which every server and the timer will run. The
    /// journal is read and rewritten synchronously: open the mock at startup.
    pub async fn open(config: MockConfig) -> std::result::Result<Mock, OpenError> {
        config.validate()?;
        let config = Arc::new(config);
        let spawner = Spawner {
            handle: Handle::current(),
            tracker: TaskTracker::new(),
            root: CancellationToken::new(),
        };
        let clock = match config.mode {
            Mode::Timer => Clock::Timer(tokio::time::Instant::now()),
            Mode::Stepped => Clock::Stepped,
        };
        let replayed = match &config.state_dir {
            Some(dir) => journal::replay(dir)?,
            None => Default::default(),
        };
        let wake = Arc::new(Notify::new());
        let (changes, _) = broadcast::channel(CHANGES_BUFFER);
        let state = State::new(
            config.clone(),
            clock,
            spawner.clone(),
            wake.clone(),
            changes.clone(),
        );
        // From here on, an early return drops the mock, which stops what it started.
        let mock = Mock {
            shared: Arc::new(Shared {
                config: config.clone(),
                state: Mutex::new(state),
                wake,
                spawner,
                changes,
                demands: Mutex::default(),
                request_rates: Mutex::default(),
            }),
        };
        {
            let mut state = mock.shared.lock();
            state.restore(replayed);
            if let Some(dir) = &config.state_dir {
                let journal = journal::compact(dir, &state.snapshot())?;
                state.set_journal(journal);
            }
        }
        if config.mode == Mode::Timer {
            let shared = mock.shared.clone();
            let cancel = mock.shared.spawner.root.clone();
            mock.shared
                .spawner
                .tracker
                .spawn_on(run_timer(shared, cancel), &mock.shared.spawner.handle);
        }
        Ok(mock)
    }

    pub fn config(&self) -> &MockConfig {
        &self.shared.config
    }

    /// The mock's virtual clock: time since it opened, plus what [`Mock::advance`] added.
    pub fn now(&self) -> Duration {
        self.shared.lock().now()
    }

    /// Moves the virtual clock forward by `by` and applies every transition due by then, in
    /// order. This is how time passes in [`Mode::Stepped`]; in [`Mode::Timer`] it jumps ahead.
    pub async fn advance(&self, by: Duration) {
        self.shared.lock().advance(by);
        self.shared.wake.notify_one();
    }

    /// Stops the timer and every VM's server and closes the journal, without waiting; every
    /// later operation fails. VMs keep their recorded state for the next mock opened on the
    /// same `state_dir`. Dropping the mock does the same.
    pub fn shutdown(&self) {
        self.shared.lock().shut_down();
        self.shared.spawner.tracker.close();
    }

    /// [`Mock::shutdown`], then waits until every task has stopped: every port is closed.
    pub async fn close(&self) {
        self.shutdown();
        self.shared.spawner.tracker.wait().await;
    }

    /// The ids of VMs whose state changes from now on, as they change: operations' effects,
    /// transitions completing, faults. What [`Backend::state_changes`] would announce; the
    /// in-process mock keeps that `None`, so a control plane on it works from its periodic
    /// passes as it always has, while the standalone mock hypervisor ([`remote`]) streams
    /// these to its clients.
    pub fn changes(&self) -> broadcast::Receiver<String> {
        self.shared.changes.subscribe()
    }

    /// The journal file, when the mock persists.
    pub fn journal_path(&self) -> Option<PathBuf> {
        self.shared
            .config
            .state_dir
            .as_ref()
            .map(|dir| dir.join(JOURNAL_FILE))
    }

    /// Runs `operation` under the lock, then waits outside it for the servers it stopped
    /// and finishes a transition that had to wait for them, or waits for a VM being deleted
    /// to be gone.
    async fn run(
        &self,
        name: &'static str,
        id: &str,
        operation: impl FnOnce(&mut State) -> Result<Step>,
    ) -> Result<Option<ObservedVm>> {
        let step = {
            let mut state = self.shared.lock();
            state.ensure_open(name)?;
            operation(&mut state)?
        };
        let Some(seq) = step.finish else {
            wait_closed(step.closing).await;
            if let Some(gone) = step.gone {
                // Dropped meanwhile, the delete goes on all the same: the timer (or
                // `advance`) removes the VM.
                tokio::select! {
                    biased;
                    () = gone.cancelled() => {}
                    () = self.shared.spawner.root.cancelled() => {
                        // Shut down first: the VM goes when a mock reopens the journal.
                        self.shared.lock().ensure_open(name)?;
                    }
                }
            }
            return Ok(step.vm);
        };
        // Cancelled while waiting, the operation still finishes what it accepted.
        let mut guard = FinishOnDrop {
            shared: &self.shared,
            id,
            seq,
            armed: true,
        };
        wait_closed(step.closing).await;
        guard.armed = false;
        let mut state = self.shared.lock();
        state.ensure_open(name)?;
        state.finish(id, seq)
    }

    /// [`Mock::run`] for operations that answer the VM.
    async fn run_vm(
        &self,
        name: &'static str,
        id: &str,
        operation: impl FnOnce(&mut State) -> Result<Step>,
    ) -> Result<ObservedVm> {
        self.run(name, id, operation)
            .await?
            .ok_or_else(|| BackendError::NotFound { id: id.to_owned() })
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Finishes a transition due at once if the operation that waits to finish it is dropped.
struct FinishOnDrop<'a> {
    shared: &'a Shared,
    id: &'a str,
    seq: u64,
    armed: bool,
}

impl Drop for FinishOnDrop<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(mut state) = self.shared.state.lock() else {
            return; // poisoned: nothing sound to do from a destructor
        };
        if state.is_shut_down() {
            return;
        }
        if let Err(error) = state.finish(self.id, self.seq) {
            tracing::warn!(
                id = self.id,
                error = &error as &dyn std::error::Error,
                "finishing a cancelled operation failed"
            );
        }
    }
}

async fn wait_closed(closing: Vec<JoinHandle<()>>) {
    for handle in closing {
        // A server task only ends by cancellation; a join error would mean it panicked,
        // and its port is closed either way.
        let _ = handle.await;
    }
}

/// Applies transitions when due until the mock shuts down.
async fn run_timer(shared: Arc<Shared>, cancel: CancellationToken) {
    loop {
        let wait = {
            let mut state = shared.lock();
            if state.is_shut_down() {
                return;
            }
            state.apply_due();
            let now = state.now();
            state.next_due().map(|at| at.saturating_sub(now))
        };
        let sleep = async {
            match wait {
                Some(wait) => tokio::time::sleep(wait).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            () = shared.wake.notified() => {}
            () = sleep => {}
        }
    }
}

#[async_trait]
impl Backend for Mock {
    fn kind(&self) -> &'static str {
        "mock"
    }

    fn installation_id(&self) -> &str {
        &self.shared.config.installation_id
    }

    async fn adopt(&self, id: &str) -> Result<ObservedVm> {
        self.run_vm("adopt", id, |s| s.adopt(id)).await
    }

    async fn zones(&self) -> Result<Vec<ZoneStatus>> {
        let state = self.shared.lock();
        state.ensure_open("list zones")?;
        Ok(state.zones())
    }

    async fn images(&self) -> Result<Vec<String>> {
        self.shared.lock().ensure_open("list images")?;
        Ok(self.shared.config.images.clone())
    }

    /// One simulated host per zone and fault domain, `{zone}-fd{n}`, in zone then fault
    /// domain order: its VMs (any state) and what those not deallocated hold, no limits
    /// (`vcpus` and `memory_mib` 0: unlimited), the mock's images, and unavailable while
    /// it or its zone is down.
    async fn hosts(&self) -> Result<Vec<HostStatus>> {
        let state = self.shared.lock();
        state.ensure_open("list hosts")?;
        Ok(state.hosts())
    }

    /// The VM goes exactly to `spec.fault_domain`: `ZoneUnavailable` or `HostUnavailable`
    /// while its zone or host is down, and `CreateFailed` when that fault domain is among
    /// `spec.closed_fault_domains` (the control plane never asks for that; the mock refuses
    /// rather than places elsewhere).
    async fn create(&self, spec: &VmSpec) -> Result<ObservedVm> {
        self.run_vm("create", &spec.id, |s| s.create(spec)).await
    }

    /// The VM stops serving at once and is gone after the latency with jitter, when the
    /// call answers, as libvirt's delete answers once the domain is undefined: meanwhile
    /// `list` and `get` report it `stopping` (or stopped, or deallocated, when it was not
    /// running) and every other operation on it is `InvalidState`. Zero latency deletes
    /// inside the call. In [`Mode::Stepped`] the call answers once [`Mock::advance`] has
    /// moved past the delete, so a test lets time pass while it waits. Dropping the call
    /// does not stop the delete; a shutdown meanwhile fails the call and the VM is gone
    /// when a mock reopens the journal. `force` makes no difference to a simulated VM.
    async fn delete(&self, id: &str, _force: bool) -> Result<()> {
        self.run("delete", id, |s| s.delete(id)).await.map(drop)
    }

    async fn start(&self, id: &str) -> Result<ObservedVm> {
        self.run_vm("start", id, |s| s.start(id)).await
    }

    /// Stopping a deallocated VM is `InvalidState` (start it first); `force` completes the
    /// stop inside the call.
    async fn stop(&self, id: &str, force: bool) -> Result<ObservedVm> {
        self.run_vm("stop", id, |s| s.stop(id, force)).await
    }

    async fn deallocate(&self, id: &str) -> Result<ObservedVm> {
        self.run_vm("deallocate", id, |s| s.deallocate(id)).await
    }

    async fn park(&self, id: &str, state: WarmPoolState) -> Result<ObservedVm> {
        self.run_vm("park", id, |s| s.park(id, state)).await
    }

    async fn restart(&self, id: &str) -> Result<ObservedVm> {
        self.run_vm("restart", id, |s| s.restart(id)).await
    }

    async fn reimage(&self, id: &str, model: &Model, model_version: u32) -> Result<ObservedVm> {
        self.run_vm("reimage", id, |s| s.reimage(id, model, model_version))
            .await
    }

    async fn list(&self, scale_set: Option<&str>) -> Result<Vec<ObservedVm>> {
        let state = self.shared.lock();
        state.ensure_open("list")?;
        Ok(state.list(scale_set))
    }

    async fn get(&self, id: &str) -> Result<Option<ObservedVm>> {
        let state = self.shared.lock();
        state.ensure_open("get")?;
        Ok(state.get(id))
    }

    async fn console(&self, id: &str) -> Result<String> {
        let state = self.shared.lock();
        state.ensure_open("read the console")?;
        state.console(id)
    }

    async fn metrics(&self, scale_set: Option<&str>) -> Result<Vec<VmMetrics>> {
        let (now, running) = {
            let state = self.shared.lock();
            state.ensure_open("read metrics")?;
            (state.now(), state.running(scale_set))
        };
        let wall = chrono::Utc::now();
        let mut by_set: BTreeMap<String, Vec<load::VmLoadInput>> = BTreeMap::new();
        {
            let mut rates = self.shared.request_rates.lock().expect("rates poisoned");
            if scale_set.is_none() {
                let ids: std::collections::HashSet<&str> =
                    running.iter().map(|(_, vm, _)| vm.id.as_str()).collect();
                rates.retain(|id, _| ids.contains(id.as_str()));
            }
            for (set, mut vm, count) in running {
                let rate = rates.entry(vm.id.clone()).or_insert(RequestRate {
                    at: now,
                    count,
                    rps: 0.0,
                });
                let elapsed = now.saturating_sub(rate.at);
                if elapsed >= RATE_WINDOW || count < rate.count {
                    let delta = count.saturating_sub(rate.count);
                    *rate = RequestRate {
                        at: now,
                        count,
                        rps: delta as f64 / elapsed.as_secs_f64().max(0.001),
                    };
                }
                vm.real_rps = rate.rps;
                by_set.entry(set).or_default().push(vm);
            }
        }
        let demands = self
            .shared
            .demands
            .lock()
            .expect("demands poisoned")
            .clone();
        let mut out = Vec::new();
        for (set, vms) in by_set {
            let demand = demands.get(&set);
            let rps = demand.map_or(0.0, |d| d.rps_at(wall));
            let loads = load::set_load(&vms, rps, demand, wall.timestamp());
            out.extend(vms.into_iter().zip(loads).map(|(vm, l)| VmMetrics {
                id: vm.id,
                scale_set: set.clone(),
                running_seconds: vm.running_for.as_secs_f64(),
                usage: l.usage,
            }));
        }
        Ok(out)
    }

    fn faults(&self) -> Option<&dyn FaultInjection> {
        Some(self)
    }

    fn simulation(&self) -> Option<&dyn Simulation> {
        Some(self)
    }
}

#[async_trait]
impl Simulation for Mock {
    async fn set_demand(&self, scale_set: &str, demand: Option<Demand>) -> Result<()> {
        let mut demands = self.shared.demands.lock().expect("demands poisoned");
        match demand {
            Some(d) => demands.insert(scale_set.to_string(), d),
            None => demands.remove(scale_set),
        };
        Ok(())
    }

    async fn demand_rps(&self, scale_set: &str) -> Result<Option<f64>> {
        let demands = self.shared.demands.lock().expect("demands poisoned");
        Ok(demands.get(scale_set).map(|d| d.rps_at(chrono::Utc::now())))
    }
}

#[async_trait]
impl FaultInjection for Mock {
    async fn inject(&self, fault: Fault) -> Result<()> {
        fault.validate().map_err(BackendError::InvalidFault)?;
        let id = match &fault {
            Fault::Crash { instance }
            | Fault::Unhealthy { instance }
            | Fault::Healthy { instance } => instance.clone(),
            _ => String::new(),
        };
        self.run("inject a fault", &id, |s| match &fault {
            Fault::Crash { instance } => s.crash(instance),
            Fault::Unhealthy { instance } => s.set_unhealthy(instance, true),
            Fault::Healthy { instance } => s.set_unhealthy(instance, false),
            Fault::ZoneDown { zone } => s.zone_down(zone),
            Fault::ZoneUp { zone } => s.zone_up(zone),
            Fault::HostDown { host } => s.host_down(host),
            Fault::HostUp { host } => s.host_up(host),
            Fault::CreateFailureRate { rate } => s.set_create_failure_rate(*rate),
            Fault::SlowBoot { seconds } => s.set_slow_boot(*seconds),
        })
        .await
        .map(drop)
    }

    async fn active(&self) -> Vec<Fault> {
        self.shared.lock().active_faults()
    }

    async fn clear(&self) -> Result<()> {
        self.run("clear faults", "", State::clear_faults)
            .await
            .map(drop)
    }
}
