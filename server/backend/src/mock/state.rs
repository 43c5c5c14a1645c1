//! The simulator's state machine: every VM, the lasting faults, the virtual clock and the
//! transitions in flight. Everything here runs under the mock's one mutex and never awaits.
//!
//! Invariants:
//! - a VM has a [`Server`] exactly while its power state is `running`, so `address` is
//!   `Some` exactly then; leaving `running` stops the server at once (the caller awaits the
//!   returned handles, outside the lock, to know the port is closed);
//! - a VM in a transitional state (`starting`, `stopping`, `deallocating`) has a `due`
//!   transition to the state it settles into, and a timer entry with the same sequence
//!   number — except a boot due at once behind a closing server, which the operation (or
//!   its drop guard) finishes; a later operation replaces `due`, so stale timer entries are
//!   skipped when popped (the power state only moves to what the last operation asked
//!   for);
//! - a VM being deleted (`deleting` in its record) serves no more (its server closed when
//!   the delete began), reports `stopping` (or the settled state it was not running in),
//!   and its `due` is its removal; it refuses every operation but another delete, which
//!   waits for the same removal. With zero latency a delete removes the VM inside the call;
//!   a zone or host going down, like a reopen, removes it at once, as they settle every
//!   other transition at once;
//! - a host is a fault domain of its zone, named `{zone}-fd{n}` ([`host_name`]); a VM is
//!   on the host of its zone and fault domain, and is out of service (stopped, nothing new
//!   there) while its zone or its host is down;
//! - every change to a VM or to the lasting faults is appended to the journal before the
//!   lock is released; per-VM work is O(log n), so 10,000 VMs cost no more per operation
//!   than ten;
//! - all randomness (jitter, create failures) is drawn from the one seeded RNG.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use flotilla_domain::{
    Fault, HostStatus, Model, ObservedVm, PowerState, WarmPoolState, ZoneStatus,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::load::VmLoadInput;

use super::MockConfig;
use super::http::{self, Identity, Server, Spawner};
use super::journal::{Entry, Journal, Replayed, VmRecord, ZoneFaults};
use crate::{BackendError, Result, VmSpec};

/// The virtual clock: time since the mock opened, plus whatever `advance` added.
#[derive(Debug, Clone, Copy)]
pub(super) enum Clock {
    /// Real (tokio) time drives transitions.
    Timer(tokio::time::Instant),
    /// Only `advance` moves time.
    Stepped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Due {
    at: Duration,
    seq: u64,
}

/// A model whose user data holds this line runs an application that answers `/health`
/// with 503: a bad release, for trying rollouts, gates and rollbacks on the mock.
pub const UNHEALTHY_MARKER: &str = "flotilla-mock: unhealthy";

fn serves_unhealthy(model: &Model) -> bool {
    model
        .user_data
        .as_deref()
        .is_some_and(|u| u.lines().any(|l| l.trim() == UNHEALTHY_MARKER))
}

#[derive(Debug)]
struct Vm {
    record: VmRecord,
    due: Option<Due>,
    server: Option<Server>,
    /// Shared with the server, so `/health` follows the fault without a restart.
    unhealthy: Arc<AtomicBool>,
    /// Requests the server answered (probes excluded), for the load model.
    requests: Arc<AtomicU64>,
    /// When (mock time) it last became running.
    booted_at: Duration,
    /// While a delete is in progress: cancelled once the VM is gone, which is when every
    /// delete of it answers.
    gone: Option<CancellationToken>,
}

impl Vm {
    fn new(record: VmRecord) -> Self {
        let unhealthy = Arc::new(AtomicBool::new(record.unhealthy));
        Vm {
            record,
            due: None,
            server: None,
            unhealthy,
            requests: Arc::new(AtomicU64::new(0)),
            booted_at: Duration::ZERO,
            gone: None,
        }
    }

    /// `InvalidState` while a delete is in progress: the VM is going, nothing else applies.
    fn check_not_deleting(&self, operation: &'static str) -> Result<()> {
        if self.record.deleting {
            return Err(BackendError::InvalidState {
                id: self.record.id.clone(),
                operation,
                state: "deleting".into(),
            });
        }
        Ok(())
    }

    fn observed(&self) -> ObservedVm {
        let r = &self.record;
        ObservedVm {
            id: r.id.clone(),
            scale_set: r.scale_set.clone(),
            zone: r.zone.clone(),
            fault_domain: r.fault_domain,
            model_version: r.model_version,
            power_state: r.power_state,
            address: match (r.power_state, r.port) {
                (PowerState::Running, Some(port)) => Some(format!("127.0.0.1:{port}")),
                _ => None,
            },
            installation_id: r.installation_id.clone(),
            lease_generation: r.lease_generation,
        }
    }

    /// Stops the server, if any; the handle finishes once the port is closed.
    fn take_server(&mut self) -> Option<JoinHandle<()>> {
        self.server.take().map(Server::stop)
    }
}

/// What an operation did under the lock, and what is left to do outside it.
#[derive(Debug, Default)]
pub(super) struct Step {
    pub vm: Option<ObservedVm>,
    /// Servers being stopped: await them before answering, so a stopped VM's port is
    /// really closed when the operation returns.
    pub closing: Vec<JoinHandle<()>>,
    /// A transition due at once that could not complete under the lock because the VM's
    /// old server had to close first (restart, reimage): finish it with [`State::finish`].
    pub finish: Option<u64>,
    /// A delete in progress: the operation answers once this is cancelled (the VM is gone).
    pub gone: Option<CancellationToken>,
}

impl Step {
    fn done(vm: ObservedVm) -> Self {
        Step {
            vm: Some(vm),
            ..Step::default()
        }
    }
}

#[derive(Debug)]
pub(super) struct State {
    config: Arc<MockConfig>,
    clock: Clock,
    spawner: Spawner,
    /// Wakes the timer task when a transition is scheduled.
    wake: Arc<Notify>,
    vms: BTreeMap<String, Vm>,
    by_scale_set: HashMap<String, BTreeSet<String>>,
    unhealthy: BTreeSet<String>,
    zones_down: BTreeSet<String>,
    /// By name (`{zone}-fd{n}`).
    hosts_down: BTreeSet<String>,
    create_failure_rate: f64,
    slow_boot_seconds: u32,
    rng: StdRng,
    skew: Duration,
    timers: BinaryHeap<Reverse<(Duration, u64, String)>>,
    next_seq: u64,
    journal: Option<Journal>,
    /// Where every VM change is announced (no receiver is fine).
    changes: broadcast::Sender<String>,
    shut_down: bool,
}

fn not_found(id: &str) -> BackendError {
    BackendError::NotFound { id: id.to_owned() }
}

/// The name of the simulated host that is fault domain `fault_domain` of `zone`. Unique:
/// the fault domain is what follows the name's last `-fd`, which no number contains.
pub(super) fn host_name(zone: &str, fault_domain: u32) -> String {
    format!("{zone}-fd{fault_domain}")
}

fn foreign(vm: &Vm) -> BackendError {
    BackendError::Foreign {
        id: vm.record.id.clone(),
        installation: vm.record.installation_id.clone(),
    }
}

fn journal_error(source: io::Error) -> BackendError {
    BackendError::Io {
        operation: "append to the mock journal",
        source,
    }
}

/// Binds the VM's port (its previous one when free) and starts serving: `starting`
/// becomes `running`. On error the VM is unchanged.
fn boot(vm: &mut Vm, config: &MockConfig, spawner: &Spawner, now: Duration) -> io::Result<()> {
    let listener = http::bind(vm.record.port, &config.port_range)?;
    let port = http::port_of(&listener)?;
    let r = &vm.record;
    let identity = Identity {
        instance_id: &r.id,
        scale_set: &r.scale_set,
        model_version: r.model_version,
        zone: &r.zone,
        fault_domain: r.fault_domain,
        image: &r.image,
    };
    let server = http::serve(
        listener,
        &identity,
        vm.unhealthy.clone(),
        vm.requests.clone(),
        spawner,
    )?;
    vm.server = Some(server);
    vm.booted_at = now;
    vm.record.port = Some(port);
    vm.record.power_state = PowerState::Running;
    Ok(())
}

fn is_transitional(state: PowerState) -> bool {
    state.settled() != state
}

/// What a VM being deleted reports: `stopping` when it was powered (it is going down), else
/// the state it had settled into or was moving to.
fn deleting_power(state: PowerState) -> PowerState {
    match state {
        PowerState::Running | PowerState::Starting | PowerState::Stopping => PowerState::Stopping,
        PowerState::Stopped
        | PowerState::Deallocating
        | PowerState::Deallocated
        | PowerState::Paused
        | PowerState::Saved => state.settled(),
    }
}

impl State {
    pub fn new(
        config: Arc<MockConfig>,
        clock: Clock,
        spawner: Spawner,
        wake: Arc<Notify>,
        changes: broadcast::Sender<String>,
    ) -> Self {
        let rng = StdRng::seed_from_u64(config.seed);
        State {
            config,
            clock,
            spawner,
            wake,
            vms: BTreeMap::new(),
            by_scale_set: HashMap::new(),
            unhealthy: BTreeSet::new(),
            zones_down: BTreeSet::new(),
            hosts_down: BTreeSet::new(),
            create_failure_rate: 0.0,
            slow_boot_seconds: 0,
            rng,
            skew: Duration::ZERO,
            timers: BinaryHeap::new(),
            next_seq: 0,
            journal: None,
            changes,
            shut_down: false,
        }
    }

    // ----- clock and lifecycle -------------------------------------------------------------

    /// Virtual time since the mock opened.
    pub fn now(&self) -> Duration {
        let base = match self.clock {
            Clock::Timer(epoch) => epoch.elapsed(),
            Clock::Stepped => Duration::ZERO,
        };
        base + self.skew
    }

    pub fn advance(&mut self, by: Duration) {
        self.skew += by;
        self.apply_due();
    }

    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    pub fn ensure_open(&self, operation: &'static str) -> Result<()> {
        if self.shut_down {
            return Err(BackendError::Io {
                operation,
                source: io::Error::new(io::ErrorKind::NotConnected, "the mock is shut down"),
            });
        }
        Ok(())
    }

    /// Stops every server (through the root token) and closes the journal. VMs keep their
    /// recorded state: they come back when a mock opens the same `state_dir`.
    pub fn shut_down(&mut self) {
        self.shut_down = true;
        self.spawner.root.cancel();
        self.journal = None;
        self.timers.clear();
    }

    pub fn set_journal(&mut self, journal: Journal) {
        self.journal = Some(journal);
    }

    // ----- restore and snapshot ---------------------------------------------------------------

    /// Brings back what a journal held: transitional VMs finish their transition (a VM
    /// being deleted is gone: the compacted journal no longer holds it), running VMs serve
    /// again (on their previous port when it is free).
    pub fn restore(&mut self, replayed: Replayed) {
        let known = |zone: &String| self.config.zones.contains(zone);
        self.zones_down = replayed
            .faults
            .zones_down
            .into_iter()
            .filter(known)
            .collect();
        self.hosts_down = replayed
            .faults
            .hosts_down
            .into_iter()
            .filter(|host| self.host_of(host).is_some())
            .collect();
        self.create_failure_rate = replayed.faults.create_failure_rate;
        self.slow_boot_seconds = replayed.faults.slow_boot_seconds;
        let now = self.now();
        for (id, mut record) in replayed.vms {
            if record.deleting {
                continue;
            }
            record.power_state = record.power_state.settled();
            let down = self.is_down(&record.zone, record.fault_domain);
            if record.resume_on_zone_up && !down {
                record.resume_on_zone_up = false;
                record.power_state = PowerState::Running;
            }
            if down && record.power_state == PowerState::Running {
                record.resume_on_zone_up = true;
                record.power_state = PowerState::Stopped;
            }
            let mut vm = Vm::new(record);
            if vm.record.power_state == PowerState::Running {
                vm.record.power_state = PowerState::Starting;
                if let Err(error) = boot(&mut vm, &self.config, &self.spawner, now) {
                    tracing::warn!(%id, %error, "a restored mock VM could not serve; it is stopped");
                    vm.record.power_state = PowerState::Stopped;
                }
            }
            if vm.record.unhealthy {
                self.unhealthy.insert(id.clone());
            }
            self.index(&vm.record);
            self.vms.insert(id, vm);
        }
    }

    /// The journal's content as it should be now: one line per VM and the faults that are
    /// not per VM.
    pub fn snapshot(&self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = self
            .vms
            .values()
            .map(|vm| Entry::Vm(vm.record.clone()))
            .collect();
        entries.push(Entry::Faults(self.zone_faults()));
        entries
    }

    // ----- queries --------------------------------------------------------------------------

    pub fn zones(&self) -> Vec<ZoneStatus> {
        self.config
            .zones
            .iter()
            .map(|name| ZoneStatus {
                name: name.clone(),
                fault_domains: self.config.fault_domains,
                available: !self.zones_down.contains(name),
                // A host down is unreachable: closed to new VMs.
                closed_fault_domains: (0..self.config.fault_domains)
                    .filter(|fd| self.hosts_down.contains(&host_name(name, *fd)))
                    .collect(),
            })
            .collect()
    }

    /// One simulated host per zone and fault domain, in zone then fault domain order, with
    /// the VMs on it (any state, any installation's) and what the non-deallocated ones
    /// hold; no limits (0: unlimited).
    pub fn hosts(&self) -> Vec<HostStatus> {
        let mut hosts: Vec<HostStatus> = Vec::new();
        let mut index: HashMap<(&str, u32), usize> = HashMap::new();
        for zone in &self.config.zones {
            for fault_domain in 0..self.config.fault_domains {
                let name = host_name(zone, fault_domain);
                let error = if self.zones_down.contains(zone) {
                    Some(format!("zone {zone} is down (simulated)"))
                } else if self.hosts_down.contains(&name) {
                    Some(format!("host {name} is down (simulated)"))
                } else {
                    None
                };
                index.insert((zone.as_str(), fault_domain), hosts.len());
                hosts.push(HostStatus {
                    name,
                    uri: None,
                    zone: zone.clone(),
                    fault_domain,
                    vcpus: 0,
                    memory_mib: 0,
                    used_vcpus: 0,
                    used_memory_mib: 0,
                    vms: 0,
                    running: 0,
                    images: self.config.images.clone(),
                    available: error.is_none(),
                    error,
                });
            }
        }
        for vm in self.vms.values() {
            let r = &vm.record;
            let Some(&at) = index.get(&(r.zone.as_str(), r.fault_domain)) else {
                continue; // a zone no longer configured (a journal from another setup)
            };
            let host = &mut hosts[at];
            host.vms += 1;
            if r.power_state == PowerState::Running {
                host.running += 1;
            }
            if r.power_state.settled() != PowerState::Deallocated {
                host.used_vcpus += r.vcpus;
                host.used_memory_mib += r.memory_mib;
            }
        }
        hosts
    }

    pub fn list(&self, scale_set: Option<&str>) -> Vec<ObservedVm> {
        match scale_set {
            None => self.vms.values().map(Vm::observed).collect(),
            Some(set) => self
                .by_scale_set
                .get(set)
                .into_iter()
                .flatten()
                .filter_map(|id| self.vms.get(id))
                .map(Vm::observed)
                .collect(),
        }
    }

    pub fn get(&self, id: &str) -> Option<ObservedVm> {
        self.vms.get(id).map(Vm::observed)
    }

    /// The running VMs (of one set, or all) with what the load model needs: the set, the
    /// VM's inputs without its real request rate, and its request counter.
    /// A simulated serial console of VM `id`: what it is, where it runs, how it answers.
    pub fn console(&self, id: &str) -> Result<String> {
        let vm = self.vms.get(id).ok_or_else(|| not_found(id))?;
        let r = &vm.record;
        let now = self.now();
        let mut lines = vec![
            format!(
                "[mock] {} — a simulated VM of scale set {}",
                r.id, r.scale_set
            ),
            format!(
                "[mock] image {}, {} vCPUs, model version {}, zone {}, fault domain {}",
                r.image, r.vcpus, r.model_version, r.zone, r.fault_domain
            ),
            format!("[mock] power state: {}", r.power_state),
        ];
        if r.deleting {
            lines.push("[mock] being deleted".into());
        }
        if let (PowerState::Running, Some(port)) = (r.power_state, r.port) {
            let up = now.saturating_sub(vm.booted_at).as_secs();
            let health = if vm.unhealthy.load(Ordering::Relaxed) {
                "503 (unhealthy)"
            } else {
                "200"
            };
            lines.push(format!(
                "[mock] up {up} s, serving HTTP on 127.0.0.1:{port}; /health answers {health}; {} requests answered",
                vm.requests.load(Ordering::Relaxed)
            ));
        }
        Ok(lines.join("\n") + "\n")
    }

    pub fn running(&self, scale_set: Option<&str>) -> Vec<(String, VmLoadInput, u64)> {
        let now = self.now();
        let ids: Box<dyn Iterator<Item = &String>> = match scale_set {
            None => Box::new(self.vms.keys()),
            Some(set) => Box::new(self.by_scale_set.get(set).into_iter().flatten()),
        };
        ids.filter_map(|id| self.vms.get(id))
            .filter(|vm| vm.record.power_state == PowerState::Running && vm.record.parked.is_none())
            .map(|vm| {
                (
                    vm.record.scale_set.clone(),
                    VmLoadInput {
                        id: vm.record.id.clone(),
                        vcpus: vm.record.vcpus,
                        running_for: now.saturating_sub(vm.booted_at),
                        unhealthy: vm.record.unhealthy,
                        real_rps: 0.0,
                    },
                    vm.requests.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    pub fn active_faults(&self) -> Vec<Fault> {
        let mut faults: Vec<Fault> = self
            .zones_down
            .iter()
            .map(|zone| Fault::ZoneDown { zone: zone.clone() })
            .collect();
        faults.extend(
            self.hosts_down
                .iter()
                .map(|host| Fault::HostDown { host: host.clone() }),
        );
        faults.extend(self.unhealthy.iter().map(|id| Fault::Unhealthy {
            instance: id.clone(),
        }));
        if self.create_failure_rate > 0.0 {
            faults.push(Fault::CreateFailureRate {
                rate: self.create_failure_rate,
            });
        }
        if self.slow_boot_seconds > 0 {
            faults.push(Fault::SlowBoot {
                seconds: self.slow_boot_seconds,
            });
        }
        faults
    }

    // ----- operations -----------------------------------------------------------------------

    pub fn create(&mut self, spec: &VmSpec) -> Result<Step> {
        if let Some(vm) = self.vms.get(&spec.id) {
            return if self.is_ours(vm) {
                vm.check_not_deleting("create")?;
                Ok(Step::done(vm.observed()))
            } else {
                Err(foreign(vm))
            };
        }
        let failed = |reason: String| BackendError::CreateFailed {
            id: spec.id.clone(),
            reason,
        };
        if spec.id.is_empty() {
            return Err(failed("the id is empty".into()));
        }
        self.check_zone(&spec.zone)?;
        if spec.fault_domain >= self.config.fault_domains {
            return Err(failed(format!(
                "zone {} has fault domains 0 to {}, not {}",
                spec.zone,
                self.config.fault_domains - 1,
                spec.fault_domain
            )));
        }
        self.check_host(&spec.zone, spec.fault_domain)?;
        if spec.closed_fault_domains.contains(&spec.fault_domain) {
            // The mock places a VM only where asked: asked for a closed host, it refuses.
            return Err(failed(format!(
                "fault domain {} of zone {} (host {}) is closed to new VMs",
                spec.fault_domain,
                spec.zone,
                host_name(&spec.zone, spec.fault_domain)
            )));
        }
        if !self.config.images.contains(&spec.model.image) {
            return Err(failed(format!(
                "image {:?} is not offered (offered: {})",
                spec.model.image,
                self.config.images.join(", ")
            )));
        }
        if self.create_failure_rate > 0.0 && self.rng.gen_bool(self.create_failure_rate) {
            return Err(failed(format!(
                "simulated failure (create failure rate {})",
                self.create_failure_rate
            )));
        }
        let delay = self.delay(true);
        let record = VmRecord {
            id: spec.id.clone(),
            scale_set: spec.scale_set.clone(),
            zone: spec.zone.clone(),
            fault_domain: spec.fault_domain,
            model_version: spec.model_version,
            image: spec.model.image.clone(),
            vcpus: spec.model.vcpus,
            memory_mib: u64::from(spec.model.memory_mib),
            power_state: PowerState::Starting,
            port: None,
            unhealthy: serves_unhealthy(&spec.model),
            resume_on_zone_up: false,
            installation_id: Some(self.config.installation_id.clone()),
            lease_generation: spec.lease_generation,
            deleting: false,
            parked: None,
        };
        let mut vm = Vm::new(record);
        // The VM enters the map only once it is bound (when due at once) and journaled, so
        // a failure leaves nothing behind.
        if delay.is_zero() {
            boot(&mut vm, &self.config, &self.spawner, self.now()).map_err(|source| {
                BackendError::Io {
                    operation: "bind the VM's port",
                    source,
                }
            })?;
        }
        if let Err(source) = self.append(&Entry::Vm(vm.record.clone())) {
            // The server's task ends by itself once cancelled; nothing else exists yet.
            drop(vm.take_server());
            return Err(journal_error(source));
        }
        if !delay.is_zero() {
            self.schedule(&mut vm, delay);
        }
        self.index(&vm.record);
        if vm.record.unhealthy {
            self.unhealthy.insert(spec.id.clone());
        }
        let observed = vm.observed();
        self.vms.insert(spec.id.clone(), vm);
        self.announce(&spec.id);
        Ok(Step::done(observed))
    }

    /// A VM of another installation is absent for this one: deleting it succeeds and leaves
    /// it as it is.
    ///
    /// The VM stops serving at once; it is gone after the latency with jitter (inside the
    /// call when that is zero), and the step's `gone` says when. Deleting a VM already
    /// being deleted waits for the same removal: no second timer, no second draw of jitter.
    pub fn delete(&mut self, id: &str) -> Result<Step> {
        let Some(vm) = self.vms.get(id).filter(|vm| self.is_ours(vm)) else {
            return Ok(Step::default());
        };
        if let Some(gone) = &vm.gone {
            return Ok(Step {
                gone: Some(gone.clone()),
                ..Step::default()
            });
        }
        let delay = self.delay(false);
        if delay.is_zero() {
            return self.remove(id);
        }
        let at = self.now() + delay;
        let seq = self.next_seq();
        let vm = self.vms.get_mut(id).expect("checked above");
        let mut step = Step::default();
        step.closing.extend(vm.take_server());
        vm.record.deleting = true;
        vm.record.power_state = deleting_power(vm.record.power_state);
        // Gone before its zone comes back: nothing to resume.
        vm.record.resume_on_zone_up = false;
        let gone = CancellationToken::new();
        vm.gone = Some(gone.clone());
        vm.due = Some(Due { at, seq });
        self.timers.push(Reverse((at, seq, id.to_owned())));
        self.wake.notify_one();
        step.gone = Some(gone);
        // A failed write leaves the delete in progress in memory: it completes all the
        // same, and its `Delete` line settles the journal.
        self.persist(id)?;
        Ok(step)
    }

    /// Removes VM `id` at once (a delete due now) and wakes whoever waits for it to go.
    fn remove(&mut self, id: &str) -> Result<Step> {
        let Some(mut vm) = self.vms.remove(id) else {
            return Ok(Step::default());
        };
        if let Some(ids) = self.by_scale_set.get_mut(&vm.record.scale_set) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_scale_set.remove(&vm.record.scale_set);
            }
        }
        self.unhealthy.remove(id);
        if let Some(gone) = vm.gone.take() {
            gone.cancel();
        }
        let step = Step {
            closing: vm.take_server().into_iter().collect(),
            ..Step::default()
        };
        self.announce(id);
        self.append(&Entry::Delete { id: id.to_owned() })
            .map_err(journal_error)?;
        Ok(step)
    }

    /// A VM parked for a warm pool comes back faster than it boots: a paused one in 5 %
    /// of the latency (its vCPUs resume), a saved one in 25 % (its memory is read back),
    /// a stopped one in 60 % (a boot without the first boot's initialisation); a running
    /// one at once.
    pub fn start(&mut self, id: &str) -> Result<Step> {
        let vm = self.mine_mut(id)?;
        vm.check_not_deleting("start")?;
        let parked = vm.record.parked.take();
        let state = vm.record.power_state;
        let (zone, fault_domain) = (vm.record.zone.clone(), vm.record.fault_domain);
        if let Err(e) = self.check_up(&zone, fault_domain) {
            self.vms.get_mut(id).expect("checked above").record.parked = parked;
            return Err(e);
        }
        match state {
            PowerState::Running | PowerState::Starting => {
                if parked.is_some() {
                    self.persist(id)?;
                }
                Ok(Step::done(self.vms[id].observed()))
            }
            _ => {
                let delay = match parked {
                    Some(WarmPoolState::Paused) => self.delay(false).mul_f64(0.05),
                    Some(WarmPoolState::Saved) => self.delay(false).mul_f64(0.25),
                    Some(WarmPoolState::Stopped) => self.delay(true).mul_f64(0.6),
                    Some(WarmPoolState::Running) | None => self.delay(true),
                };
                self.begin(id, PowerState::Starting, delay)
            }
        }
    }

    /// Parks a VM for a warm pool: `running` leaves it serving but idle, `paused` stops
    /// it at once (no CPU, its port kept), `saved` writes it out in 30 % of the latency,
    /// `stopped` shuts it down as `stop` does. A VM not running is `InvalidState` (start
    /// it first), except one already parked that way.
    pub fn park(&mut self, id: &str, state: WarmPoolState) -> Result<Step> {
        let vm = self.mine_mut(id)?;
        vm.check_not_deleting("park")?;
        let power = vm.record.power_state;
        if power == state.power_state()
            || (power == PowerState::Stopping && state == WarmPoolState::Stopped)
        {
            if vm.record.parked != Some(state) {
                vm.record.parked = Some(state);
                self.persist(id)?;
            }
            return Ok(Step::done(self.vms[id].observed()));
        }
        if power != PowerState::Running {
            return Err(BackendError::InvalidState {
                id: id.to_owned(),
                operation: "park",
                state: power.to_string(),
            });
        }
        vm.record.parked = Some(state);
        match state {
            WarmPoolState::Running => unreachable!("handled above"),
            WarmPoolState::Paused => {
                let step = Step {
                    closing: vm.take_server().into_iter().collect(),
                    ..Step::default()
                };
                vm.record.power_state = PowerState::Paused;
                vm.due = None;
                self.persist(id)?;
                Ok(Step {
                    vm: self.get(id),
                    ..step
                })
            }
            WarmPoolState::Saved => {
                let delay = self.delay(false).mul_f64(0.3);
                self.begin(id, PowerState::Stopping, delay)
            }
            WarmPoolState::Stopped => {
                let delay = self.delay(false);
                self.begin(id, PowerState::Stopping, delay)
            }
        }
    }

    pub fn stop(&mut self, id: &str, force: bool) -> Result<Step> {
        let vm = self.mine_mut(id)?;
        vm.check_not_deleting("stop")?;
        let state = vm.record.power_state;
        let resumed = std::mem::take(&mut vm.record.resume_on_zone_up);
        match state {
            // A paused or saved VM is shut off at once (its memory discarded).
            PowerState::Paused | PowerState::Saved => {
                let vm = self.vms.get_mut(id).expect("checked above");
                vm.record.parked = None;
                vm.record.power_state = PowerState::Stopped;
                self.persist(id)?;
                Ok(Step::done(self.vms[id].observed()))
            }
            PowerState::Deallocated | PowerState::Deallocating => {
                vm.record.resume_on_zone_up = resumed;
                Err(BackendError::InvalidState {
                    id: id.to_owned(),
                    operation: "stop",
                    state: state.to_string(),
                })
            }
            PowerState::Stopped | PowerState::Stopping => {
                if force && state == PowerState::Stopping {
                    // Forcing skips what is left of the graceful shutdown.
                    self.begin(id, PowerState::Stopping, Duration::ZERO)
                } else {
                    if resumed {
                        self.persist(id)?;
                    }
                    Ok(Step::done(self.vms[id].observed()))
                }
            }
            PowerState::Running | PowerState::Starting => {
                let delay = if force {
                    Duration::ZERO
                } else {
                    self.delay(false)
                };
                self.begin(id, PowerState::Stopping, delay)
            }
        }
    }

    pub fn deallocate(&mut self, id: &str) -> Result<Step> {
        let vm = self.mine_mut(id)?;
        vm.check_not_deleting("deallocate")?;
        let resumed = std::mem::take(&mut vm.record.resume_on_zone_up);
        match vm.record.power_state {
            PowerState::Deallocated | PowerState::Deallocating => {
                if resumed {
                    self.persist(id)?;
                }
                Ok(Step::done(self.vms[id].observed()))
            }
            _ => {
                let delay = self.delay(false);
                self.begin(id, PowerState::Deallocating, delay)
            }
        }
    }

    pub fn restart(&mut self, id: &str) -> Result<Step> {
        let vm = self.mine(id)?;
        vm.check_not_deleting("restart")?;
        self.check_up(&vm.record.zone, vm.record.fault_domain)?;
        if vm.record.power_state != PowerState::Running {
            return Err(BackendError::InvalidState {
                id: id.to_owned(),
                operation: "restart",
                state: vm.record.power_state.to_string(),
            });
        }
        let delay = self.delay(true);
        self.begin(id, PowerState::Starting, delay)
    }

    /// The image is not checked against the offered ones here: the control plane validates
    /// models against `images()`, and a reimage has no error that would name the problem.
    pub fn reimage(&mut self, id: &str, model: &Model, model_version: u32) -> Result<Step> {
        let vm = self.mine(id)?;
        vm.check_not_deleting("reimage")?;
        self.check_up(&vm.record.zone, vm.record.fault_domain)?;
        let delay = self.delay(true);
        let vm = self.vms.get_mut(id).expect("checked above");
        vm.record.model_version = model_version;
        vm.record.parked = None;
        vm.record.image = model.image.clone();
        vm.record.vcpus = model.vcpus;
        vm.record.memory_mib = u64::from(model.memory_mib);
        self.set_unhealthy(id, serves_unhealthy(model))?;
        // `begin` stops the server of the old image; the new one serves once booted.
        self.begin(id, PowerState::Starting, delay)
    }

    /// Completes a transition that was due at once but had to wait for an old server to
    /// close; a no-op when another operation has replaced it meanwhile.
    pub fn finish(&mut self, id: &str, seq: u64) -> Result<Option<ObservedVm>> {
        let Some(vm) = self.vms.get(id) else {
            return Ok(None);
        };
        if vm.due.map(|d| d.seq) == Some(seq) {
            let result = self.complete(id);
            self.persist(id)?;
            result.map_err(|source| BackendError::Io {
                operation: "bind the VM's port",
                source,
            })?;
        }
        Ok(self.get(id))
    }

    /// Puts this installation's id on a VM that carries none; a VM already this
    /// installation's is answered as it is, one of another installation is `Foreign`.
    pub fn adopt(&mut self, id: &str) -> Result<Step> {
        let vm = self.vms.get_mut(id).ok_or_else(|| not_found(id))?;
        match &vm.record.installation_id {
            None => {
                vm.record.installation_id = Some(self.config.installation_id.clone());
                self.persist(id)?;
            }
            Some(owner) if *owner == self.config.installation_id => {}
            Some(_) => return Err(foreign(vm)),
        }
        Ok(Step::done(self.vms[id].observed()))
    }

    fn is_ours(&self, vm: &Vm) -> bool {
        vm.record.installation_id.as_deref() == Some(self.config.installation_id.as_str())
    }

    /// VM `id` when it is this installation's; the others are absent for every operation
    /// that changes a VM.
    fn mine(&self, id: &str) -> Result<&Vm> {
        self.vms
            .get(id)
            .filter(|vm| self.is_ours(vm))
            .ok_or_else(|| not_found(id))
    }

    fn mine_mut(&mut self, id: &str) -> Result<&mut Vm> {
        let ours = self.config.installation_id.as_str();
        self.vms
            .get_mut(id)
            .filter(|vm| vm.record.installation_id.as_deref() == Some(ours))
            .ok_or_else(|| not_found(id))
    }

    // ----- faults ---------------------------------------------------------------------------

    /// A VM being deleted has nothing left to crash (it serves no more).
    pub fn crash(&mut self, id: &str) -> Result<Step> {
        let vm = self.mine_mut(id)?;
        let mut step = Step::default();
        if !vm.record.deleting
            && matches!(
                vm.record.power_state,
                PowerState::Running | PowerState::Starting | PowerState::Stopping
            )
        {
            step.closing.extend(vm.take_server());
            vm.record.power_state = PowerState::Stopped;
            vm.due = None;
            self.persist(id)?;
        }
        Ok(step)
    }

    pub fn set_unhealthy(&mut self, id: &str, unhealthy: bool) -> Result<Step> {
        let vm = self.mine_mut(id)?;
        vm.unhealthy.store(unhealthy, Ordering::Relaxed);
        if vm.record.unhealthy != unhealthy {
            vm.record.unhealthy = unhealthy;
            if unhealthy {
                self.unhealthy.insert(id.to_owned());
            } else {
                self.unhealthy.remove(id);
            }
            self.persist(id)?;
        }
        Ok(Step::default())
    }

    pub fn zone_down(&mut self, zone: &str) -> Result<Step> {
        self.check_known_zone(zone)?;
        if !self.zones_down.insert(zone.to_owned()) {
            return Ok(Step::default());
        }
        let step = self.outage(|r| r.zone == zone)?;
        self.persist_faults()?;
        Ok(step)
    }

    pub fn zone_up(&mut self, zone: &str) -> Result<Step> {
        self.check_known_zone(zone)?;
        if !self.zones_down.remove(zone) {
            return Ok(Step::default());
        }
        self.persist_faults()?;
        self.recover(|r| r.zone == zone);
        Ok(Step::default())
    }

    /// Host `host` (`{zone}-fd{n}`) goes down as a zone does, for its VMs alone.
    pub fn host_down(&mut self, host: &str) -> Result<Step> {
        let (zone, fault_domain) = self.known_host(host)?;
        if !self.hosts_down.insert(host.to_owned()) {
            return Ok(Step::default());
        }
        let step = self.outage(|r| r.zone == zone && r.fault_domain == fault_domain)?;
        self.persist_faults()?;
        Ok(step)
    }

    pub fn host_up(&mut self, host: &str) -> Result<Step> {
        let (zone, fault_domain) = self.known_host(host)?;
        if !self.hosts_down.remove(host) {
            return Ok(Step::default());
        }
        self.persist_faults()?;
        self.recover(|r| r.zone == zone && r.fault_domain == fault_domain);
        Ok(Step::default())
    }

    /// The VMs `on` an outage stop at once: running ones are marked to start again once
    /// the outage is over, every transition in flight settles (deletes complete).
    fn outage(&mut self, on: impl Fn(&VmRecord) -> bool) -> Result<Step> {
        let mut step = Step::default();
        let mut changed = Vec::new();
        let mut deleted = Vec::new();
        for vm in self.vms.values_mut().filter(|vm| on(&vm.record)) {
            if vm.record.deleting {
                // Settled at once, as every other transition in flight.
                deleted.push(vm.record.id.clone());
                continue;
            }
            let next = match vm.record.power_state {
                PowerState::Running | PowerState::Starting => {
                    vm.record.resume_on_zone_up = true;
                    PowerState::Stopped
                }
                PowerState::Stopping => PowerState::Stopped,
                PowerState::Deallocating => PowerState::Deallocated,
                PowerState::Stopped
                | PowerState::Deallocated
                | PowerState::Paused
                | PowerState::Saved => continue,
            };
            step.closing.extend(vm.take_server());
            vm.record.power_state = next;
            vm.due = None;
            changed.push(vm.record.id.clone());
        }
        for id in &changed {
            self.persist(id)?;
        }
        for id in &deleted {
            step.closing.extend(self.remove(id)?.closing);
        }
        Ok(step)
    }

    /// An outage of the VMs `on` is over: those that ran start again, unless their zone or
    /// host is still down (they start when that comes up).
    fn recover(&mut self, on: impl Fn(&VmRecord) -> bool) {
        let resuming: Vec<String> = self
            .vms
            .values()
            .filter(|vm| on(&vm.record) && vm.record.resume_on_zone_up)
            .filter(|vm| !self.is_down(&vm.record.zone, vm.record.fault_domain))
            .map(|vm| vm.record.id.clone())
            .collect();
        for id in resuming {
            if let Some(vm) = self.vms.get_mut(&id) {
                vm.record.resume_on_zone_up = false;
            }
            let delay = self.delay(true);
            if let Err(error) = self.begin(&id, PowerState::Starting, delay) {
                tracing::warn!(%id, %error, "a mock VM did not start again after its outage");
            }
        }
    }

    pub fn set_create_failure_rate(&mut self, rate: f64) -> Result<Step> {
        self.create_failure_rate = rate;
        self.persist_faults()?;
        Ok(Step::default())
    }

    pub fn set_slow_boot(&mut self, seconds: u32) -> Result<Step> {
        self.slow_boot_seconds = seconds;
        self.persist_faults()?;
        Ok(Step::default())
    }

    /// Lifts every lasting fault as if each had been reversed.
    pub fn clear_faults(&mut self) -> Result<Step> {
        let mut step = Step::default();
        if self.create_failure_rate != 0.0 || self.slow_boot_seconds != 0 {
            // First, so the zones coming up boot without the slow-boot delay.
            self.create_failure_rate = 0.0;
            self.slow_boot_seconds = 0;
            self.persist_faults()?;
        }
        let zones: Vec<String> = self.zones_down.iter().cloned().collect();
        for zone in zones {
            step.closing.extend(self.zone_up(&zone)?.closing);
        }
        let hosts: Vec<String> = self.hosts_down.iter().cloned().collect();
        for host in hosts {
            step.closing.extend(self.host_up(&host)?.closing);
        }
        let unhealthy: Vec<String> = self.unhealthy.iter().cloned().collect();
        for id in unhealthy {
            self.set_unhealthy(&id, false)?;
        }
        Ok(step)
    }

    // ----- transitions ----------------------------------------------------------------------

    /// Applies every transition due by now (the timer task and `advance` call this).
    pub fn apply_due(&mut self) {
        let now = self.now();
        while let Some(Reverse((at, _, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, seq, id))) = self.timers.pop() else {
                break;
            };
            let current = self.vms.get(&id).and_then(|vm| vm.due).map(|d| d.seq);
            if current != Some(seq) {
                continue; // replaced by a later operation, or the VM is gone
            }
            if self.vms.get(&id).is_some_and(|vm| vm.record.deleting) {
                // Its server closed when the delete began: no handle to await.
                if let Err(error) = self.remove(&id) {
                    tracing::error!(%id, error = &error as &dyn std::error::Error,
                        "the mock journal is behind");
                }
                continue;
            }
            if let Err(error) = self.complete(&id) {
                tracing::warn!(%id, %error, "a mock VM could not bind its port; it is stopped");
            }
            if let Err(error) = self.persist(&id) {
                tracing::error!(%id, error = &error as &dyn std::error::Error,
                    "the mock journal is behind");
            }
        }
    }

    /// When the next transition is due (possibly a stale entry: waking early is harmless).
    pub fn next_due(&self) -> Option<Duration> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Moves a VM into `transitional` and schedules where it settles after `delay`; with no
    /// delay the transition completes here, unless an old server must close first.
    fn begin(&mut self, id: &str, transitional: PowerState, delay: Duration) -> Result<Step> {
        debug_assert!(is_transitional(transitional));
        let now = self.now();
        let seq = self.next_seq();
        let vm = self.vms.get_mut(id).ok_or_else(|| not_found(id))?;
        let mut step = Step::default();
        step.closing.extend(vm.take_server());
        vm.record.power_state = transitional;
        let mut result = Ok(());
        if delay.is_zero() && step.closing.is_empty() {
            vm.due = None;
            result = self.complete(id);
        } else if delay.is_zero() {
            // Due now, but the old server must close first for the VM to get its port
            // back: the operation finishes it (or its drop guard does, if cancelled). Not on
            // the timer, which would bind before the port is free.
            vm.due = Some(Due { at: now, seq });
            step.finish = Some(seq);
        } else {
            let at = now + delay;
            vm.due = Some(Due { at, seq });
            self.timers.push(Reverse((at, seq, id.to_owned())));
            self.wake.notify_one();
        }
        self.persist(id)?;
        result.map_err(|source| BackendError::Io {
            operation: "bind the VM's port",
            source,
        })?;
        step.vm = self.get(id);
        Ok(step)
    }

    /// Settles a transitional VM; a VM that cannot bind a port ends `stopped`.
    fn complete(&mut self, id: &str) -> io::Result<()> {
        let now = self.now();
        let Some(vm) = self.vms.get_mut(id) else {
            return Ok(());
        };
        vm.due = None;
        let result = match vm.record.power_state {
            PowerState::Starting => boot(vm, &self.config, &self.spawner, now),
            PowerState::Stopping => {
                vm.record.power_state = if vm.record.parked == Some(WarmPoolState::Saved) {
                    PowerState::Saved
                } else {
                    PowerState::Stopped
                };
                Ok(())
            }
            PowerState::Deallocating => {
                vm.record.power_state = PowerState::Deallocated;
                Ok(())
            }
            PowerState::Running
            | PowerState::Stopped
            | PowerState::Deallocated
            | PowerState::Paused
            | PowerState::Saved => Ok(()),
        };
        if result.is_err() {
            vm.record.power_state = PowerState::Stopped;
        }
        result
    }

    fn schedule(&mut self, vm: &mut Vm, delay: Duration) {
        let at = self.now() + delay;
        let seq = self.next_seq();
        vm.due = Some(Due { at, seq });
        self.timers.push(Reverse((at, seq, vm.record.id.clone())));
        self.wake.notify_one();
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// How long the next transition takes: the latency with uniform jitter, plus the slow
    /// boot fault's seconds for boots.
    fn delay(&mut self, boot: bool) -> Duration {
        let latency = self.config.latency;
        let mut delay = if latency.is_zero() || self.config.jitter == 0.0 {
            latency
        } else {
            let factor = 1.0 + self.config.jitter * self.rng.gen_range(-1.0..=1.0);
            latency.mul_f64(factor.max(0.0))
        };
        if boot {
            delay += Duration::from_secs(self.slow_boot_seconds.into());
        }
        delay
    }

    fn check_known_zone(&self, zone: &str) -> Result<()> {
        if self.config.zones.iter().any(|z| z == zone) {
            Ok(())
        } else {
            Err(BackendError::UnknownZone {
                zone: zone.to_owned(),
            })
        }
    }

    /// The zone exists and is up.
    fn check_zone(&self, zone: &str) -> Result<()> {
        self.check_known_zone(zone)?;
        if self.zones_down.contains(zone) {
            return Err(BackendError::ZoneUnavailable {
                zone: zone.to_owned(),
            });
        }
        Ok(())
    }

    /// The host of fault domain `fault_domain` of `zone` is not down.
    fn check_host(&self, zone: &str, fault_domain: u32) -> Result<()> {
        let host = host_name(zone, fault_domain);
        if self.hosts_down.contains(&host) {
            return Err(BackendError::HostUnavailable { host });
        }
        Ok(())
    }

    /// The zone exists and is up, and so is the host of its fault domain `fault_domain`.
    fn check_up(&self, zone: &str, fault_domain: u32) -> Result<()> {
        self.check_zone(zone)?;
        self.check_host(zone, fault_domain)
    }

    /// Whether fault domain `fault_domain` of `zone` is out of service: the zone or the
    /// host is down.
    fn is_down(&self, zone: &str, fault_domain: u32) -> bool {
        self.zones_down.contains(zone)
            || (!self.hosts_down.is_empty()
                && self.hosts_down.contains(&host_name(zone, fault_domain)))
    }

    /// The zone and fault domain of host `host`, if the mock has it.
    fn host_of(&self, host: &str) -> Option<(String, u32)> {
        let (zone, fault_domain) = host.rsplit_once("-fd")?;
        let fault_domain: u32 = fault_domain.parse().ok()?;
        (self.config.zones.iter().any(|z| z == zone)
            && fault_domain < self.config.fault_domains
            && host_name(zone, fault_domain) == host)
            .then(|| (zone.to_owned(), fault_domain))
    }

    fn known_host(&self, host: &str) -> Result<(String, u32)> {
        self.host_of(host).ok_or_else(|| BackendError::UnknownHost {
            host: host.to_owned(),
        })
    }

    fn index(&mut self, record: &VmRecord) {
        self.by_scale_set
            .entry(record.scale_set.clone())
            .or_default()
            .insert(record.id.clone());
    }

    // ----- journal --------------------------------------------------------------------------

    fn zone_faults(&self) -> ZoneFaults {
        ZoneFaults {
            zones_down: self.zones_down.iter().cloned().collect(),
            hosts_down: self.hosts_down.iter().cloned().collect(),
            create_failure_rate: self.create_failure_rate,
            slow_boot_seconds: self.slow_boot_seconds,
        }
    }

    fn append(&mut self, entry: &Entry) -> io::Result<()> {
        match &mut self.journal {
            Some(journal) => journal.append(entry),
            None => Ok(()),
        }
    }

    /// Tells whoever follows the changes that VM `id` changed.
    fn announce(&self, id: &str) {
        // An error only means nobody follows right now.
        let _ = self.changes.send(id.to_owned());
    }

    /// Journals the VM's current record and announces the change: every change to a VM
    /// passes here (or through `create` and `delete`). A failed write leaves the change in
    /// memory (the operation reports the error); the next successful write of the VM
    /// catches up.
    fn persist(&mut self, id: &str) -> Result<()> {
        self.announce(id);
        if self.journal.is_none() {
            return Ok(());
        }
        let Some(vm) = self.vms.get(id) else {
            return Ok(());
        };
        let entry = Entry::Vm(vm.record.clone());
        self.append(&entry).map_err(journal_error)
    }

    fn persist_faults(&mut self) -> Result<()> {
        if self.journal.is_none() {
            return Ok(());
        }
        let entry = Entry::Faults(self.zone_faults());
        self.append(&entry).map_err(journal_error)
    }
}
