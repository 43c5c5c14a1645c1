//! # flotilla-backend
//!
//! Where VMs live. [`Backend`] is the contract every hypervisor driver fulfils; [`mock`] is
//! the simulator Flotilla runs on by default — zones and fault domains, latency with jitter,
//! fault injection, real HTTP served by every running instance on 127.0.0.1, state that
//! survives a restart of the control plane — and `conformance` is the suite every
//! implementation passes (test support behind the cargo feature `conformance`, off in the
//! production library; this crate's tests turn it on through a dev-dependency on the crate
//! itself). With the cargo feature `libvirt`, [`libvirt`] runs VMs as libvirt domains (it
//! links `libvirt.so`; its `ffi` module is the crate's only unsafe code); with both,
//! `libvirt::testing` gives tests a libvirt daemon of their own and a cable to it that can be
//! cut.
//!
//! A backend acts for one installation: it marks the VMs it creates with the installation's
//! id and changes no VM carrying another (or none), so installations sharing hosts — or a
//! database pointed at the wrong hosts — never touch each other's VMs.
//!
//! The mock also runs as a service of its own that several control-plane replicas share
//! ([`mock::remote`]: its HTTP server, and [`mock::remote::RemoteMock`], the `Backend` that
//! talks to it).
//!
//! Layout: `lib.rs` (trait and errors), `mock/` (the simulator; `mock/remote/` serves it over
//! HTTP and is its client), `libvirt/`, `conformance/`
//! (`mod.rs`: the subject under test, the macro and shared helpers; one file of cases per
//! subject).
#![deny(unsafe_code)]

use async_trait::async_trait;
use flotilla_domain::demand::Demand;
use flotilla_domain::{Fault, HostStatus, Model, ObservedVm, WarmPoolState, ZoneStatus};
use serde::{Deserialize, Serialize};

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "libvirt")]
pub mod libvirt;
pub mod mock;

/// Everything needed to create one VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSpec {
    /// The instance id; VMs are created idempotently by it.
    pub id: String,
    pub scale_set: String,
    pub zone: String,
    pub fault_domain: u32,
    pub model_version: u32,
    pub model: Model,
    /// The generation of the lease under which the control plane asked for the VM (its
    /// fencing token), recorded in the VM's metadata: which leader made it.
    #[serde(default)]
    pub lease_generation: Option<i64>,
    /// Fault domains (hosts) of the VM's zone that must not take it: under maintenance or
    /// unreachable. A backend that may place the VM elsewhere than `fault_domain` (libvirt,
    /// when that host is full) never chooses one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closed_fault_domains: Vec<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("VM {id:?} not found")]
    NotFound { id: String },
    #[error("zone {zone:?} is unavailable")]
    ZoneUnavailable { zone: String },
    #[error("unknown zone {zone:?}")]
    UnknownZone { zone: String },
    /// The VM's host is down (the mock's `host_down` fault).
    #[error("host {host:?} is unavailable")]
    HostUnavailable { host: String },
    #[error("unknown host {host:?}")]
    UnknownHost { host: String },
    #[error("cannot {operation} VM {id:?} while it is {state}")]
    InvalidState {
        id: String,
        operation: &'static str,
        state: String,
    },
    #[error("creating VM {id:?} failed: {reason}")]
    CreateFailed { id: String, reason: String },
    /// The id is taken by a VM of another installation, or of none: this one never
    /// touches it.
    #[error("VM {id:?} belongs to {}: this installation never touches it", owner(installation.as_deref()))]
    Foreign {
        id: String,
        installation: Option<String>,
    },
    #[error("{what} is not supported by the {backend} backend")]
    NotSupported {
        backend: &'static str,
        what: &'static str,
    },
    #[error("invalid fault: {0}")]
    InvalidFault(#[source] flotilla_domain::ValidationErrors),
    #[error("libvirt could not {operation}: {message}")]
    Libvirt {
        operation: &'static str,
        message: String,
    },
    #[error("backend I/O failed during {operation}")]
    Io {
        operation: &'static str,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = BackendError> = std::result::Result<T, E>;

fn owner(installation: Option<&str>) -> String {
    match installation {
        Some(id) => format!("installation {id}"),
        None => "no installation (made before installations had ids)".into(),
    }
}

/// A hypervisor that runs VMs for scale sets.
///
/// # Contract
/// - A backend is opened for one installation ([`Backend::installation_id`]): every VM it
///   creates carries that id, and it changes only VMs that carry it. VMs of another
///   installation, or of none, are listed (with their `installation_id`) but absent for
///   every operation that changes a VM — except `create`, which fails with `Foreign` when
///   such a VM holds the id, and `adopt`.
/// - `create` is idempotent by `spec.id`: when this installation's VM with that id exists
///   it is returned as it is. On error nothing is left behind.
/// - `delete` is idempotent: deleting an absent VM (or another installation's) succeeds and
///   touches nothing. Unlike the other operations it answers once the VM is gone (`get`
///   answers `None`), which may take a while; the VM stops serving when the delete begins.
/// - `adopt` puts this installation's id on a VM that carries none (one made before
///   installations had ids); idempotent; `Foreign` for another installation's VM.
/// - `start`, `stop`, `deallocate` and `park` are idempotent for a VM already in (or moving to)
///   the target state; `restart` needs a running VM; `reimage` works in any state and leaves
///   the VM running on `model_version`.
/// - The other operations return once the change is *accepted*: the VM may still be
///   `starting` or `stopping`; `list` and `get` report its progress. A VM's power state
///   only moves forward to the state the last operation asked for.
/// - `list` reports every VM the backend holds, including those a previous run of the
///   control plane created: it is how a restarted control plane adopts its VMs.
/// - `address` is `Some("host:port")` exactly while the VM is running.
///
/// # Errors
/// `NotFound` for operations other than create/delete on an absent VM; `ZoneUnavailable`
/// when the VM's zone is down, `HostUnavailable` when its host is; `InvalidState` when the
/// operation cannot apply.
///
/// # Cancellation
/// Dropping an operation's future leaves the VM either untouched or with the operation
/// accepted; never half-created.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// `mock` or `libvirt`.
    fn kind(&self) -> &'static str;

    /// The installation this backend acts for.
    fn installation_id(&self) -> &str;

    /// Makes VM `id`, which carries no installation id, this installation's.
    async fn adopt(&self, id: &str) -> Result<ObservedVm>;

    async fn zones(&self) -> Result<Vec<ZoneStatus>>;

    /// Image names that models may use.
    async fn images(&self) -> Result<Vec<String>>;

    async fn create(&self, spec: &VmSpec) -> Result<ObservedVm>;

    /// `force` skips the graceful shutdown.
    async fn delete(&self, id: &str, force: bool) -> Result<()>;

    async fn start(&self, id: &str) -> Result<ObservedVm>;

    /// Powers off; `force` skips the graceful shutdown. The VM keeps its host reservation.
    async fn stop(&self, id: &str, force: bool) -> Result<ObservedVm>;

    /// Stops and releases the host reservation; the disk is kept.
    async fn deallocate(&self, id: &str) -> Result<ObservedVm>;

    async fn restart(&self, id: &str) -> Result<ObservedVm>;

    /// Parks a running VM for a warm pool: `running` leaves it running (idle), `paused`
    /// stops its vCPUs with its memory kept, `saved` writes its memory to disk and frees
    /// it on the host (libvirt's managed save), `stopped` shuts it down gracefully.
    /// `start` brings a parked VM back: it resumes, restores or boots it. Idempotent for a
    /// VM already parked that way; `InvalidState` for a VM otherwise not running.
    async fn park(&self, id: &str, state: WarmPoolState) -> Result<ObservedVm>;

    /// Replaces the OS disk with a fresh one from `model` and starts the VM.
    async fn reimage(&self, id: &str, model: &Model, model_version: u32) -> Result<ObservedVm>;

    /// Every VM, or those of one scale set; ordered by id.
    async fn list(&self, scale_set: Option<&str>) -> Result<Vec<ObservedVm>>;

    async fn get(&self, id: &str) -> Result<Option<ObservedVm>>;

    /// The resource use of every running VM (or one set's), as rates over the last few
    /// seconds: what `virsh domstats` yields on libvirt. VMs not running are left out.
    async fn metrics(&self, scale_set: Option<&str>) -> Result<Vec<VmMetrics>>;

    /// The ids of VMs whose state changed, as it happens — operations' own effects and what
    /// happened by itself (a guest that shut down or crashed) alike; ids that are not
    /// Flotilla's may pass. `None` where the backend reports changes through `list` only.
    fn state_changes(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }

    /// The hypervisor hosts with their capacity and use, each a fault domain of its zone
    /// (libvirt: the configured hosts, in configuration order; the mock: one simulated host
    /// per zone and fault domain, `{zone}-fd{n}`, in zone then fault domain order). A host
    /// that cannot be reached or read is listed `available: false` with its `error`, not
    /// failed. None for a backend without hosts (the default).
    async fn hosts(&self) -> Result<Vec<HostStatus>> {
        Ok(Vec::new())
    }

    /// The last part of VM `id`'s serial console output.
    async fn console(&self, id: &str) -> Result<String> {
        let _ = id;
        Err(BackendError::NotSupported {
            backend: self.kind(),
            what: "console output",
        })
    }

    /// Fault injection, where the backend simulates (the mock); `None` elsewhere.
    fn faults(&self) -> Option<&dyn FaultInjection> {
        None
    }

    /// Synthetic demand, where the backend simulates (the mock); `None` elsewhere.
    fn simulation(&self) -> Option<&dyn Simulation> {
        None
    }

    /// Answers what the guests ask through a per-VM metadata endpoint inside them with
    /// `handler` (libvirt: `http://10.0.2.100/` in the guests of local hosts). Backends
    /// without such an endpoint (the default) ignore it.
    fn serve_guests(&self, handler: std::sync::Arc<dyn GuestHandler>) {
        let _ = handler;
    }
}

/// What a guest may read of itself, and its busy lease, through its metadata endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestView {
    /// The instance id (the VM's).
    pub id: String,
    pub scale_set: String,
    /// Until when scale-in, zone rebalancing and host maintenance leave it alone.
    pub busy_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// Why a guest's request was refused: an HTTP status and a sentence (naming the field at
/// fault, when one is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestRefusal {
    pub status: u16,
    pub detail: String,
}

/// The control plane's side of the metadata endpoint: the VM asking is known by the
/// endpoint it reached (its identity cannot be forged from inside the guest).
#[async_trait]
pub trait GuestHandler: Send + Sync {
    /// VM `id` of `scale_set`, as the control plane records it.
    async fn view(&self, scale_set: &str, id: &str) -> Result<GuestView, GuestRefusal>;
    /// VM `id` asks to be left alone for `seconds` from now (0 ends its lease).
    async fn set_busy(
        &self,
        scale_set: &str,
        id: &str,
        seconds: u32,
    ) -> Result<GuestView, GuestRefusal>;
}

/// One running VM's resource use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmMetrics {
    pub id: String,
    pub scale_set: String,
    /// How long it has been running (metrics of VMs still initializing may be ignored).
    pub running_seconds: f64,
    #[serde(flatten)]
    pub usage: VmUsage,
}

/// What a VM uses, as rates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VmUsage {
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub network_in_bytes_per_second: f64,
    pub network_out_bytes_per_second: f64,
    pub disk_read_bytes_per_second: f64,
    pub disk_write_bytes_per_second: f64,
}

impl VmUsage {
    /// The values in the order of `flotilla_domain::metrics::Metric::PER_INSTANCE`.
    pub fn values(&self) -> [f64; 6] {
        [
            self.cpu_percent,
            self.memory_percent,
            self.network_in_bytes_per_second,
            self.network_out_bytes_per_second,
            self.disk_read_bytes_per_second,
            self.disk_write_bytes_per_second,
        ]
    }
}

/// The mock's synthetic demand (DESIGN.md §4 `PUT /scale-sets/{name}/demand`).
///
/// # Contract
/// `set_demand` replaces the set's demand (`None` removes it); from then on `metrics` shares
/// the demand's requests per second among the set's running VMs. `demand_rps` is the
/// demand's current value without noise (`None` without a demand). Both are async and
/// fallible because the simulator may be another process ([`mock::remote`]); the in-process
/// mock never fails them.
#[async_trait]
pub trait Simulation: Send + Sync {
    async fn set_demand(&self, scale_set: &str, demand: Option<Demand>) -> Result<()>;
    async fn demand_rps(&self, scale_set: &str) -> Result<Option<f64>>;
}

/// Simulated faults (DESIGN.md §4 `POST /backend/faults`).
///
/// # Contract
/// `inject` validates the fault (`InvalidFault`, `NotFound` for an unknown instance,
/// `UnknownZone`, `UnknownHost`) and applies it at once; `active` lists the lasting faults
/// in force (zones down, hosts down, unhealthy instances, create failure rate, slow boot —
/// not crashes, which are events); `clear` lifts every lasting fault as if each had been
/// reversed.
#[async_trait]
pub trait FaultInjection: Send + Sync {
    async fn inject(&self, fault: Fault) -> Result<()>;
    async fn active(&self) -> Vec<Fault>;
    async fn clear(&self) -> Result<()>;
}
