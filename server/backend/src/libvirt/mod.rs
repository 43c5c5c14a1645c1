//! The libvirt backend (cargo feature `libvirt`): VMs as libvirt domains on a list of
//! hosts, each host a fault domain of its zone with its own vCPU and memory limits.
//!
//! - Every libvirt call blocks, so each operation runs on a blocking thread
//!   ([`tokio::task::spawn_blocking`]); one connection per host serves them all.
//! - A VM is a persistent domain named by its instance id. Flotilla's facts (installation,
//!   scale set, zone, fault domain, model version, image, size, forwarded port,
//!   deallocated) live in the domain's `<metadata>` ([`xml::Meta`]), so `list` rebuilds the
//!   whole view from libvirt alone after a restart; domains without it (say, the test
//!   driver's `test`) are not Flotilla's and are left alone, and so are the domains (and
//!   their storage) of another installation sharing the hosts.
//! - Hosts: each configured host is a fault domain of its zone (numbered in configuration
//!   order) and has a name (`hosts[].name`, default `{zone}-fd{n}`) that errors and
//!   [`Backend::hosts`] give with its URI.
//! - A host that cannot be reached does not stop the others. Its connection is made again
//!   at its next use once libvirt says it broke (`virConnectIsAlive`; remote hosts are
//!   probed by keepalive), at most every few seconds; `open` starts without it (only when
//!   no host answers does it fail). Meanwhile [`Backend::hosts`] lists it unavailable with
//!   why, [`Backend::zones`] counts it closed, placement, images and metrics leave it out,
//!   and `list` reports its VMs as they were last read — a blip changes none of the control
//!   plane's records; one that lasts closes the host there and its VMs are replaced. An
//!   operation on such a VM fails with `HostUnavailable`; deleting one gives it up at once
//!   (it is no longer listed; if the host answers again, its domain has no instance record
//!   and the control plane deletes it). Its events are registered again on reconnection.
//! - Placement: the `fault_domain`-th host of the VM's zone when it has the VM's vCPUs and
//!   memory free (deallocated VMs hold no reservation), else the zone's host with the most
//!   room; never a host among the spec's `closed_fault_domains` (under maintenance or
//!   unreachable). A zone without room fails naming each host's free capacity, and the
//!   closed ones.
//! - Storage ([`storage`]): the OS disk is a qcow2 overlay on the image's base volume in the
//!   host's storage pool; the cloud-init seed and the serial console log sit in the state
//!   directory. Creating makes the overlay, the seed, the definition, then starts; a failure
//!   at any step removes what the earlier steps made. Deleting undefines and removes the
//!   storage even when the domain is gone already, so nothing is orphaned by a crash.
//! - `stop` asks the guest to shut down (`virDomainShutdown`; a paused guest is resumed
//!   first, as it could not hear the request) and powers it off after
//!   [`LibvirtConfig::shutdown_timeout_seconds`] unless a later operation came first;
//!   `restart` asks it to reboot and resets it when no lifecycle event of its domain came
//!   within that time;
//!   `force` powers off at once. `deallocate` powers off and releases the reservation.
//!   `reimage` powers off, replaces the overlay and the seed, redefines the domain on the
//!   new model and starts it. `stop`, `deallocate` and `reimage` discard a saved VM's
//!   saved memory (its next start boots).
//! - Warm pools: `park` leaves a running VM `running`; `paused` suspends it
//!   (`virDomainSuspend`: its vCPUs stop, its memory stays on the host); `saved` is
//!   libvirt's managed save (`virDomainManagedSave`: its memory is written to an image on
//!   the host — which blocks while it is written — and the domain shuts off, freeing it);
//!   `stopped` is `stop`'s graceful shutdown, deadline included. Parked VMs keep their
//!   reservation. `start` resumes a paused VM (`virDomainResume`) and restores a saved one
//!   (`virDomainCreate` restores from the managed save image by itself). A domain reads
//!   `paused` in libvirt's `PAUSED` state and `saved` when shut off with a managed save
//!   image: `list` asks each host once for the domains that have one, `get` asks only a
//!   shut-off domain. Deleting removes the image with the domain (`virDomainUndefineFlags`
//!   with `VIR_DOMAIN_UNDEFINE_MANAGED_SAVE`).
//! - Network: QEMU user networking, restricted (`restrict=on`): the guest reaches neither
//!   the host — whose loopback, where the control plane and its database listen, slirp
//!   would otherwise expose as 10.0.2.2 — nor anything beyond; only the application port is
//!   forwarded in, from `<host address>:<port>`, a port from [`LibvirtConfig::port_base`]
//!   up, unique on its host (and free on this machine for local hosts). That is the VM's
//!   address. The one way out is the VM's metadata endpoint ([`metadata`]: local hosts
//!   only), forwarded to a unix socket of its own that this process listens on.
//! - Lifecycle events: libvirt's event loop runs on a thread of its own; every domain that
//!   starts, stops, crashes, is suspended, resumed, saved or restored on any host — a guest
//!   powering itself off included — is announced by [`Backend::state_changes`], so the
//!   control plane reacts at once instead of at its next periodic pass.
//! - Metrics: CPU % from CPU time, memory % from the resident memory of the guest's process
//!   against its memory, disk bytes from `vda`'s block statistics, of running domains
//!   (paused ones are left out). Network bytes are not visible to libvirt with user
//!   networking and read 0.
//!
//! Remote hosts (`qemu+ssh://…`) need the state directory at the same path on the host
//! (shared storage): the seed and console log are written and read here.

mod ffi;
mod iso;
mod metadata;
mod storage;
#[cfg(feature = "conformance")]
pub mod testing;
mod xml;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use flotilla_domain::{HostStatus, Model, ObservedVm, PowerState, WarmPoolState, ZoneStatus};
use serde::{Deserialize, Serialize};

use crate::{Backend, BackendError, Result, VmMetrics, VmSpec, VmUsage};
use ffi::{Conn, Dom, Pool, VirtError, state};
use storage::InstanceFiles;
use xml::Meta;

/// One libvirt host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostConfig {
    /// Its libvirt URI (`qemu:///system`, `qemu+ssh://host/system`, `test:///path.xml`).
    pub uri: String,
    /// The zone it belongs to; each host is one fault domain of its zone, numbered from 0
    /// in configuration order.
    pub zone: String,
    /// Its name, unique among the hosts: 1 to 63 of `a-z`, `0-9` and `-`, starting with a
    /// letter or digit. Default `{zone}-fd{fault domain}` ([`LibvirtConfig::host_names`]).
    #[serde(default)]
    pub name: Option<String>,
    /// vCPUs and memory the VMs on it may take in all (default: the host's CPUs and memory).
    #[serde(default)]
    pub vcpus: Option<u32>,
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// Where its forwarded ports are reached from Flotilla.
    #[serde(default = "loopback")]
    pub address: String,
    /// The storage pool holding its base images and the instances' disks.
    #[serde(default = "default_pool")]
    pub pool: String,
    /// Hardware acceleration (KVM), used only when the host says it offers it; software
    /// emulation otherwise.
    #[serde(default)]
    pub accelerate: bool,
}

fn loopback() -> String {
    "127.0.0.1".into()
}

/// Why `name` cannot name a host, if it cannot (the rules of a DNS label, lower case).
fn check_host_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 63 {
        return Err("must be 1 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("may hold only lower-case letters a-z, digits and '-'");
    }
    if name.starts_with('-') {
        return Err("must start with a letter or a digit");
    }
    Ok(())
}

fn default_pool() -> String {
    "default".into()
}

/// The libvirt backend's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibvirtConfig {
    pub hosts: Vec<HostConfig>,
    /// The first host port handed to a VM's application port.
    #[serde(default = "default_port_base")]
    pub port_base: u16,
    /// How long a guest may take to shut down before it is powered off.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_seconds: u64,
    /// Where the seeds and console logs are kept (`flotilla serve`: `<data dir>/libvirt`).
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// The kernel command line of images booted directly.
    #[serde(default = "default_cmdline")]
    pub kernel_cmdline: String,
}

fn default_port_base() -> u16 {
    20_000
}

fn default_shutdown_timeout() -> u64 {
    30
}

fn default_cmdline() -> String {
    "console=ttyS0".into()
}

impl LibvirtConfig {
    /// The hosts of DESIGN's `--libvirt-host` form, comma-separated `zone=uri`, with every
    /// other setting at its default.
    pub fn from_hosts(list: &str) -> Result<LibvirtConfig, String> {
        let hosts = list
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|host| {
                let (zone, uri) = host
                    .split_once('=')
                    .ok_or_else(|| format!("libvirt host {host:?}: expected zone=uri"))?;
                Ok(HostConfig {
                    uri: uri.trim().to_owned(),
                    zone: zone.trim().to_owned(),
                    name: None,
                    vcpus: None,
                    memory_mib: None,
                    address: loopback(),
                    pool: default_pool(),
                    accelerate: false,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(LibvirtConfig {
            hosts,
            port_base: default_port_base(),
            shutdown_timeout_seconds: default_shutdown_timeout(),
            state_dir: None,
            kernel_cmdline: default_cmdline(),
        })
    }

    /// Each host's fault domain: its position among its zone's hosts.
    pub fn fault_domains(&self) -> Vec<u32> {
        let mut per_zone: HashMap<&str, u32> = HashMap::new();
        self.hosts
            .iter()
            .map(|host| {
                let slot = per_zone.entry(host.zone.as_str()).or_default();
                *slot += 1;
                *slot - 1
            })
            .collect()
    }

    /// Each host's name: its `name`, or `{zone}-fd{fault domain}`.
    pub fn host_names(&self) -> Vec<String> {
        self.hosts
            .iter()
            .zip(self.fault_domains())
            .map(|(host, fault_domain)| match &host.name {
                Some(name) => name.clone(),
                None => format!("{}-fd{fault_domain}", host.zone),
            })
            .collect()
    }

    /// Every problem of the configuration, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.hosts.is_empty() {
            problems.push("hosts: no hosts are configured".to_owned());
        }
        let names = self.host_names();
        for (i, host) in self.hosts.iter().enumerate() {
            let at = |field: &str| format!("hosts[{i}].{field}");
            if host.uri.trim().is_empty() {
                problems.push(format!("{}: must not be empty", at("uri")));
            }
            if host.zone.trim().is_empty() {
                problems.push(format!("{}: must not be empty", at("zone")));
            }
            if let Some(name) = &host.name
                && let Err(problem) = check_host_name(name)
            {
                problems.push(format!("{}: {name:?} {problem}", at("name")));
            }
            if let Some(first) = names[..i].iter().position(|n| *n == names[i]) {
                let whose = if host.name.is_some() {
                    ""
                } else {
                    " (its default)"
                };
                problems.push(format!(
                    "{}: {:?}{whose} is also the name of hosts[{first}]; host names must be \
                     unique",
                    at("name"),
                    names[i]
                ));
            }
            if host.vcpus == Some(0) {
                problems.push(format!("{}: must be at least 1", at("vcpus")));
            }
            if host.memory_mib == Some(0) {
                problems.push(format!("{}: must be at least 1", at("memory_mib")));
            }
            if host.address.parse::<std::net::IpAddr>().is_err() {
                problems.push(format!(
                    "{}: {:?} is not an IP address",
                    at("address"),
                    host.address
                ));
            }
            if host.pool.trim().is_empty() {
                problems.push(format!("{}: must not be empty", at("pool")));
            }
            if self.hosts[..i].iter().any(|h| h.uri == host.uri) {
                problems.push(format!("{}: {:?} is listed twice", at("uri"), host.uri));
            }
        }
        if self.port_base == 0 {
            problems.push("port_base: must be at least 1".to_owned());
        }
        problems
    }
}

/// How often a host's storage pool is rescanned for images copied in behind libvirt's back.
const POOL_RESCAN: Duration = Duration::from_secs(10);

/// How much of a console log `console` answers: its end.
const CONSOLE_BYTES: u64 = 64 * 1024;

/// How often a host that cannot be connected is tried again, at most: every use of a host
/// without a connection may try, so a host down is not hammered by every list and lookup.
const RECONNECT_EVERY: Duration = Duration::from_secs(5);

/// Keepalive of remote hosts: a probe every 5 s, the connection closed after 3 unanswered
/// (a host gone silent fails calls within ~20 s instead of hanging them).
const KEEPALIVE_SECONDS: i32 = 5;
const KEEPALIVE_COUNT: u32 = 3;

struct Host {
    config: HostConfig,
    /// Its name (configured, or `{zone}-fd{n}`).
    name: String,
    /// Its fault domain: its position among its zone's hosts.
    fault_domain: u32,
    /// Whether it is this machine (its forwarded ports can be checked here, and its VMs
    /// get a metadata endpoint).
    local: bool,
    /// Its connection and what it tells of the host; made again when it breaks.
    link: Mutex<Link>,
    /// Where its domains' lifecycle events go (registered again with each connection).
    changes: tokio::sync::broadcast::Sender<String>,
    /// When its pool was last rescanned.
    rescanned: Mutex<Option<Instant>>,
    /// Its VMs as last read, by id: what `list` reports of it while it cannot be read, and
    /// what tells that a VM not found elsewhere is on it. Replaced by each full read of the
    /// host, a set's part by each read of that set; a VM read or changed alone is put in.
    seen: Mutex<HashMap<String, Seen>>,
}

/// A host's connection, and why it cannot be read when it cannot.
#[derive(Default)]
struct Link {
    /// Shared by the calls in flight; `None` while the host is not connected.
    conn: Option<Arc<Conn>>,
    /// What the host told at its last connection (its size: until the first, only what
    /// the configuration says, else 0).
    facts: Facts,
    /// When a connection was last tried.
    tried: Option<Instant>,
    /// Why the host cannot be read (set when a connection or a read fails, cleared when a
    /// connection is made or a read succeeds): a warning is logged when it is set, not
    /// at every failure while it stays.
    error: Option<String>,
}

/// What a host tells of itself when connected.
#[derive(Debug, Clone, Copy, Default)]
struct Facts {
    /// What its VMs may take in all.
    vcpus: u32,
    memory_mib: u64,
    /// Whether its domains use hardware acceleration (configured and offered).
    accelerated: bool,
    /// Whether its QEMU takes `reconnect-ms` for a socket (9.2 on).
    reconnect_ms: bool,
}

/// A VM as last read: what `list` reports, and what it holds of its host.
#[derive(Debug, Clone)]
struct Seen {
    vm: ObservedVm,
    vcpus: u32,
    memory_mib: u64,
    /// Not deallocated: it holds its vCPUs and memory.
    reserved: bool,
    /// When it was read.
    at: Instant,
}

impl Host {
    fn new(
        config: &HostConfig,
        name: String,
        fault_domain: u32,
        changes: tokio::sync::broadcast::Sender<String>,
    ) -> Host {
        Host {
            config: config.clone(),
            name,
            fault_domain,
            local: is_local(&config.uri),
            link: Mutex::new(Link {
                facts: Facts {
                    vcpus: config.vcpus.unwrap_or(0),
                    memory_mib: config.memory_mib.unwrap_or(0),
                    // The newest QEMU until one says otherwise.
                    reconnect_ms: true,
                    accelerated: false,
                },
                ..Link::default()
            }),
            changes,
            rescanned: Mutex::new(None),
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn facts(&self) -> Facts {
        self.link.lock().expect("link lock").facts
    }

    /// Why the host cannot be read, when it could not be last time it was tried.
    fn trouble(&self) -> Option<String> {
        self.link.lock().expect("link lock").error.clone()
    }

    /// The host's connection: the open one while libvirt says it works, else a new one —
    /// tried at most every [`RECONNECT_EVERY`]; in between, the last failure. Fails naming
    /// the host.
    fn conn(&self) -> Result<Arc<Conn>> {
        {
            let mut link = self.link.lock().expect("link lock");
            if let Some(conn) = &link.conn {
                if conn.is_alive() {
                    return Ok(conn.clone());
                }
                link.conn = None;
                self.note_trouble(&mut link, "the connection was lost".into());
            }
            if link.tried.is_some_and(|at| at.elapsed() < RECONNECT_EVERY) {
                let why = link.error.clone().unwrap_or_else(|| "not connected".into());
                return Err(self.unreachable(why));
            }
            // Tried from here: other callers meanwhile fail at once rather than wait.
            link.tried = Some(Instant::now());
        }
        let made = self.connect();
        let mut link = self.link.lock().expect("link lock");
        match made {
            Ok((conn, facts)) => {
                let conn = Arc::new(conn);
                link.conn = Some(conn.clone());
                link.facts = facts;
                if let Some(was) = link.error.take() {
                    tracing::info!(host = %self.name, uri = %self.config.uri, was = %was, "the host answers again");
                }
                Ok(conn)
            }
            Err(why) => {
                self.note_trouble(&mut link, why.clone());
                Err(self.unreachable(why))
            }
        }
    }

    /// Opens a connection to the host, has libvirt watch it (keepalive) and announce its
    /// domains' lifecycle events, and reads the host's size and abilities.
    fn connect(&self) -> Result<(Conn, Facts), String> {
        let conn = Conn::open(&self.config.uri).map_err(|e| e.to_string())?;
        let _ = conn.keep_alive(KEEPALIVE_SECONDS, KEEPALIVE_COUNT);
        let sink = self.changes.clone();
        if let Err(e) = conn.on_lifecycle(move |domain| {
            let _ = sink.send(domain);
        }) {
            tracing::warn!(host = %self.name, uri = %self.config.uri, error = %e, "no lifecycle events from this host: its VMs' changes are seen when listed");
        }
        let node = conn
            .node()
            .map_err(|e| format!("reading the host's size: {e}"))?;
        let accelerated = self.config.accelerate
            && conn
                .capabilities()
                .map_err(|e| format!("reading the host's capabilities: {e}"))?
                .contains("<domain type='kvm'");
        // QEMU 9.2 (`reconnect-ms`) on; a version that cannot be read: the newest.
        let reconnect_ms = conn.version().map_or(true, |v| v >= 9_002_000);
        let facts = Facts {
            vcpus: self.config.vcpus.unwrap_or(node.cpus),
            memory_mib: self.config.memory_mib.unwrap_or(node.memory_kib / 1024),
            accelerated,
            reconnect_ms,
        };
        Ok((conn, facts))
    }

    /// Notes why the host cannot be read; warns when it could be read until now.
    fn note_trouble(&self, link: &mut Link, why: String) {
        if link.error.is_none() {
            tracing::warn!(host = %self.name, uri = %self.config.uri, error = %why, "the host cannot be read: its VMs are reported as last seen, nothing new is placed on it, and it is connected again when it answers");
        }
        link.error = Some(why);
    }

    /// Call `operation` on `conn`, this host's, failed with `error`: when the connection is
    /// broken (libvirt says so, or the error is the connection's), it is let go, to be made
    /// again at the next use. Answers the error, naming the host.
    fn failed(&self, conn: &Arc<Conn>, operation: &'static str, error: VirtError) -> BackendError {
        if !conn.is_alive() || ffi::CONNECTION_ERRORS.contains(&error.code) {
            let mut link = self.link.lock().expect("link lock");
            if link.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
                link.conn = None;
            }
            self.note_trouble(&mut link, error.to_string());
        }
        BackendError::Libvirt {
            operation,
            message: format!("host {self}: {error}"),
        }
    }

    /// A read of the host failed with `error`: it is unreadable until one succeeds. (A
    /// cause noted already, say the connection's, is kept: it is the first and closest.)
    fn unreadable(&self, error: &BackendError) {
        let mut link = self.link.lock().expect("link lock");
        if link.error.is_none() {
            self.note_trouble(&mut link, error.to_string());
        }
    }

    /// A read of the host succeeded.
    fn readable(&self) {
        let mut link = self.link.lock().expect("link lock");
        if let Some(was) = link.error.take() {
            tracing::info!(host = %self.name, uri = %self.config.uri, was = %was, "the host can be read again");
        }
    }

    fn unreachable(&self, why: String) -> BackendError {
        BackendError::Libvirt {
            operation: "connect",
            message: format!("host {self}: {why}"),
        }
    }

    fn pool(&self) -> Result<Pool> {
        let conn = self.conn()?;
        conn.pool(&self.config.pool)
            .map_err(|e| self.failed(&conn, "find the storage pool", e))?
            .ok_or_else(|| BackendError::Libvirt {
                operation: "find the storage pool",
                message: format!("host {self} has no storage pool {:?}", self.config.pool),
            })
    }

    /// Puts `seen` among the host's VMs as last read.
    fn saw(&self, seen: Seen) {
        self.seen
            .lock()
            .expect("seen lock")
            .insert(seen.vm.id.clone(), seen);
    }

    /// The host's VMs as last read (of `scale_set` only, when given).
    fn last_seen(&self, scale_set: Option<&str>) -> Vec<Seen> {
        self.seen
            .lock()
            .expect("seen lock")
            .values()
            .filter(|s| scale_set.is_none_or(|set| s.vm.scale_set == set))
            .cloned()
            .collect()
    }
}

/// `name (uri)`, as errors name a host.
impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.config.uri)
    }
}

/// One of Flotilla's domains on a host: name, domain, facts.
type Listed = (String, Dom, Meta);
type Domains = Vec<Listed>;

/// A domain of Flotilla's, with where it lives.
struct Found {
    host: usize,
    dom: Dom,
    meta: Meta,
}

/// The last statistics read of a VM: when, CPU time, disk bytes read and written.
#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    cpu_ns: u64,
    read: u64,
    written: u64,
}

struct Inner {
    config: LibvirtConfig,
    /// The installation this backend acts for (see [`Backend`]'s contract).
    installation_id: String,
    /// QEMU's group, which reads the seeds (they hold the user data).
    seed_group: Option<u32>,
    state_dir: PathBuf,
    hosts: Vec<Host>,
    /// The metadata endpoints of the local hosts' VMs.
    relay: metadata::Relay,
    /// The names of domains whose lifecycle changed (libvirt's events, from every host).
    changes: tokio::sync::broadcast::Sender<String>,
    /// Creations pick ports and check capacity one at a time.
    placing: Mutex<()>,
    /// Per VM, a count of operations: a delayed power-off applies only if none came since.
    ops: Mutex<HashMap<String, u64>>,
    /// Per VM, the last statistics read.
    samples: Mutex<HashMap<String, Sample>>,
    started: Mutex<HashMap<String, Instant>>,
}

/// The libvirt backend.
#[derive(Clone)]
pub struct Libvirt {
    inner: Arc<Inner>,
}

impl Libvirt {
    /// Checks the configuration and connects to every host, reading each host's size where
    /// its limits are not given; fails naming the field at fault, a host that answers
    /// without its storage pool, or — when none answers — every host. A host that does not
    /// answer is logged and left unavailable until it does (its size, where not configured,
    /// reads 0 until then). The backend acts for installation `installation_id`: it marks
    /// the domains it creates with it and changes no other.
    pub async fn open(config: LibvirtConfig, installation_id: &str) -> Result<Libvirt> {
        let installation_id = installation_id.to_owned();
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(BackendError::Libvirt {
                operation: "configure",
                message: problems.join("; "),
            });
        }
        let state_dir = config
            .state_dir
            .clone()
            .ok_or_else(|| BackendError::Libvirt {
                operation: "configure",
                message: "state_dir: not set".into(),
            })?;
        let (changes, _) = tokio::sync::broadcast::channel(1024);
        let runtime = tokio::runtime::Handle::current();
        let inner = tokio::task::spawn_blocking(move || -> Result<Inner> {
            std::fs::create_dir_all(&state_dir).map_err(|source| BackendError::Io {
                operation: "create the libvirt state directory",
                source,
            })?;
            // QEMU (another user) goes through it to its VM's seed and log; nobody lists it.
            storage::set_mode(&state_dir, 0o711).map_err(|message| BackendError::Libvirt {
                operation: "make the state directory private",
                message,
            })?;
            let places = config.fault_domains().into_iter().zip(config.host_names());
            let hosts: Vec<Host> = config
                .hosts
                .iter()
                .zip(places)
                .map(|(host, (fault_domain, name))| {
                    Host::new(host, name, fault_domain, changes.clone())
                })
                .collect();
            // A host that does not answer now is left for later (a control plane restarted
            // during a host's outage must start); one that answers without its storage pool
            // is misconfigured. With no host answering nothing could work.
            let mut unreachable = Vec::new();
            for host in &hosts {
                match host.conn() {
                    Ok(_) => {
                        host.pool()?;
                    }
                    Err(e) => unreachable.push(e),
                }
            }
            if unreachable.len() == hosts.len() {
                return Err(BackendError::Libvirt {
                    operation: "connect",
                    message: unreachable
                        .iter()
                        .map(|e| match e {
                            BackendError::Libvirt { message, .. } => message.clone(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                });
            }
            let seed_group = storage::qemu_group();
            let relay =
                metadata::Relay::new(&state_dir, seed_group, runtime).map_err(|message| {
                    BackendError::Libvirt {
                        operation: "make the metadata endpoints' directory",
                        message,
                    }
                })?;
            Ok(Inner {
                config,
                installation_id,
                seed_group,
                state_dir,
                hosts,
                relay,
                changes,
                placing: Mutex::new(()),
                ops: Mutex::new(HashMap::new()),
                samples: Mutex::new(HashMap::new()),
                started: Mutex::new(HashMap::new()),
            })
        })
        .await
        .map_err(joined)??;
        Ok(Libvirt {
            inner: Arc::new(inner),
        })
    }

    /// Runs `work` on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(joined)?
    }
}

/// Writes a host file for libvirt's test driver to `path` — `vcpus` CPUs, `memory_mib` of
/// memory, its own running domain `test` (not Flotilla's), a storage pool `default` with a
/// base volume for each of `images` — and answers its URI. Each connection to that URI gets
/// a fresh copy of the host: for tests, benchmarks and demos without a hypervisor.
pub fn simulated_host(
    path: &std::path::Path,
    vcpus: u32,
    memory_mib: u64,
    images: &[&str],
) -> std::io::Result<String> {
    let volumes: String = images
        .iter()
        .map(|image| {
            format!(
                "<volume type='file'><name>{}</name><capacity unit='MiB'>16</capacity>\
                 <target><format type='qcow2'/></target></volume>",
                xml::escape(&storage::base_volume(image))
            )
        })
        .collect();
    std::fs::write(
        path,
        format!(
            "<node>\
               <cpu><mhz>2000</mhz><model>x86_64</model><active>{vcpus}</active>\
               <max>{vcpus}</max><nodes>1</nodes><sockets>1</sockets><cores>{vcpus}</cores>\
               <threads>1</threads></cpu>\
               <memory>{memory_kib}</memory>\
               <domain type='test'><name>test</name><memory>65536</memory>\
                 <os><type>hvm</type></os></domain>\
               <pool type='dir'><name>default</name>\
                 <target><path>/var/lib/flotilla/images</path></target>{volumes}</pool>\
             </node>",
            memory_kib = memory_mib * 1024,
        ),
    )?;
    Ok(format!("test://{}", path.display()))
}

/// The URI of the test driver's host that every connection of this process shares while
/// one is open.
pub const SHARED_TEST_HOST: &str = "test:///default";

/// For tests and demos of several installations on one host: keeps [`SHARED_TEST_HOST`]
/// open for the life of the process (so its state lasts between backends) and adds a base
/// volume for each of `images` to its storage pool `default-pool` (those already there are
/// kept).
pub fn share_test_host(images: &[&str]) -> Result<()> {
    static HELD: std::sync::OnceLock<Conn> = std::sync::OnceLock::new();
    let conn = match HELD.get() {
        Some(conn) => conn,
        None => {
            let conn = Conn::open(SHARED_TEST_HOST).map_err(virt("open the shared test host"))?;
            HELD.get_or_init(|| conn)
        }
    };
    add_base_volumes(conn, images)
}

/// Adds a base volume for each of `images` missing from the pool `default-pool` of the test
/// driver's host on `conn` (the daemon-less [`SHARED_TEST_HOST`], or a daemon's).
fn add_base_volumes(conn: &Conn, images: &[&str]) -> Result<()> {
    let pool = conn
        .pool("default-pool")
        .map_err(virt("find default-pool"))?
        .ok_or_else(|| BackendError::Libvirt {
            operation: "find default-pool",
            message: "the test host has no pool default-pool".into(),
        })?;
    for image in images {
        let name = storage::base_volume(image);
        if pool
            .volume(&name)
            .map_err(virt("look up a volume"))?
            .is_none()
        {
            pool.create_volume(&format!(
                "<volume><name>{}</name><capacity unit='MiB'>16</capacity>\
                 <target><format type='qcow2'/></target></volume>",
                xml::escape(&name)
            ))
            .map_err(virt("create a base volume"))?;
        }
    }
    Ok(())
}

impl Libvirt {
    /// Powers VM `id` off once [`LibvirtConfig::shutdown_timeout_seconds`] have passed,
    /// unless another operation on it came since operation `op`: the deadline of a guest
    /// asked to shut down (a real guest's domain reads running until it acts, so the
    /// deadline is set whatever its state right after the request).
    fn power_off_later(&self, id: &str, op: u64) {
        let timeout = Duration::from_secs(self.inner.config.shutdown_timeout_seconds);
        let due = async move {
            tokio::time::sleep(timeout).await;
            true
        };
        self.unless_superseded(id, op, due, Inner::power_off);
    }

    /// Once `due` completes with `true`, applies `act` to VM `id` unless another operation
    /// on it came since operation `op` (the deadline of a `stop` or a `restart`).
    fn unless_superseded(
        &self,
        id: &str,
        op: u64,
        due: impl std::future::Future<Output = bool> + Send + 'static,
        act: impl FnOnce(&Found) -> Result<()> + Send + 'static,
    ) {
        let (this, id) = (self.clone(), id.to_owned());
        tokio::spawn(async move {
            if !due.await {
                return;
            }
            let _ = this
                .run(move |inner| {
                    let latest = inner.ops.lock().expect("ops lock").get(&id).copied();
                    if latest == Some(op)
                        && let Some(found) = inner.find(&id)?
                    {
                        act(&found)?;
                    }
                    Ok(())
                })
                .await;
        });
    }
}

/// Whether URI `uri` names this machine (`qemu:///system`, `test:///…`: no host part).
fn is_local(uri: &str) -> bool {
    uri.split_once("://")
        .is_some_and(|(_, rest)| rest.starts_with('/'))
}

fn joined(error: tokio::task::JoinError) -> BackendError {
    BackendError::Libvirt {
        operation: "run a libvirt call",
        message: error.to_string(),
    }
}

fn virt(operation: &'static str) -> impl FnOnce(VirtError) -> BackendError {
    move |e| BackendError::Libvirt {
        operation,
        message: e.to_string(),
    }
}

/// A domain's power state from its libvirt state; `saved`: it has a managed save image
/// (read only for shut-off domains).
fn power_state(info_state: u8, saved: bool, meta: &Meta) -> PowerState {
    match info_state {
        state::RUNNING | state::BLOCKED | state::PMSUSPENDED => PowerState::Running,
        state::PAUSED => PowerState::Paused,
        state::SHUTDOWN => PowerState::Stopping,
        state::SHUTOFF if saved => PowerState::Saved,
        _ if meta.deallocated => PowerState::Deallocated,
        _ => PowerState::Stopped,
    }
}

fn is_active(info_state: u8) -> bool {
    !matches!(info_state, state::SHUTOFF | state::CRASHED | 0)
}

/// A rate per second from two readings `seconds` apart.
fn rate(now: u64, before: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        now.saturating_sub(before) as f64 / seconds
    } else {
        0.0
    }
}

impl Inner {
    /// Domain `id` (Flotilla's), looked for on every host that can be read. When no host
    /// that could be read holds it but one that could not held it when last read, it fails
    /// with `HostUnavailable` naming that host; absent anywhere else, `None`.
    fn find(&self, id: &str) -> Result<Option<Found>> {
        let mut unreadable = Vec::new();
        for (host, h) in self.hosts.iter().enumerate() {
            let looked = h.conn().and_then(|conn| {
                let Some(dom) = conn
                    .lookup(id)
                    .map_err(|e| h.failed(&conn, "look up a domain", e))?
                else {
                    return Ok(None);
                };
                let meta = match dom.metadata(xml::NAMESPACE) {
                    Ok(meta) => meta.and_then(|m| Meta::parse(&m)),
                    // Undefined since it was looked up.
                    Err(e) if e.code == ffi::ERR_NO_DOMAIN => None,
                    Err(e) => return Err(h.failed(&conn, "read metadata", e)),
                };
                Ok(meta.map(|meta| (dom, meta)))
            });
            match looked {
                Ok(Some((dom, meta))) => return Ok(Some(Found { host, dom, meta })),
                Ok(None) => {}
                Err(e) => {
                    h.unreadable(&e);
                    unreadable.push(host);
                }
            }
        }
        match unreadable.into_iter().find(|&host| {
            self.hosts[host]
                .seen
                .lock()
                .expect("seen lock")
                .contains_key(id)
        }) {
            Some(host) => Err(BackendError::HostUnavailable {
                host: self.hosts[host].name.clone(),
            }),
            None => Ok(None),
        }
    }

    fn is_ours(&self, found: &Found) -> bool {
        found.meta.installation.as_deref() == Some(self.installation_id.as_str())
    }

    /// VM `id` when it is this installation's: the others are absent for every operation
    /// that changes a VM.
    fn found(&self, id: &str) -> Result<Found> {
        self.find(id)?
            .filter(|found| self.is_ours(found))
            .ok_or_else(|| BackendError::NotFound { id: id.to_owned() })
    }

    fn foreign(id: &str, found: &Found) -> BackendError {
        BackendError::Foreign {
            id: id.to_owned(),
            installation: found.meta.installation.clone(),
        }
    }

    /// Puts this installation's id in the metadata of a domain that carries none.
    fn adopt(&self, id: &str) -> Result<ObservedVm> {
        let found = self
            .find(id)?
            .ok_or_else(|| BackendError::NotFound { id: id.to_owned() })?;
        match &found.meta.installation {
            Some(_) if self.is_ours(&found) => {}
            Some(_) => return Err(Self::foreign(id, &found)),
            None => {
                let meta = Meta {
                    installation: Some(self.installation_id.clone()),
                    ..found.meta.clone()
                };
                let live = is_active(found.dom.info().map_err(virt("read domain state"))?.state);
                found
                    .dom
                    .set_metadata(&meta.to_element(), xml::PREFIX, xml::NAMESPACE, live)
                    .map_err(virt("write a domain's metadata"))?;
            }
        }
        self.get(id)
    }

    fn observe(&self, id: &str, found: &Found) -> Result<ObservedVm> {
        let info = found.dom.info().map_err(virt("read domain state"))?;
        // Only a shut-off domain may have a saved state: the others cost no extra call.
        let saved = info.state == state::SHUTOFF
            && found
                .dom
                .has_managed_save()
                .map_err(virt("look for a saved state"))?;
        Ok(self.observed(id, found, info.state, saved))
    }

    /// `found` in libvirt state `info_state`, `saved` when it has a managed save image;
    /// noted as its host's VM as last read.
    fn observed(&self, id: &str, found: &Found, info_state: u8, saved: bool) -> ObservedVm {
        let power_state = power_state(info_state, saved, &found.meta);
        let host = &self.hosts[found.host];
        let vm = ObservedVm {
            id: id.to_owned(),
            scale_set: found.meta.scale_set.clone(),
            zone: found.meta.zone.clone(),
            fault_domain: found.meta.fault_domain,
            model_version: found.meta.model_version,
            power_state,
            address: (power_state == PowerState::Running)
                .then(|| format!("{}:{}", host.config.address, found.meta.port)),
            installation_id: found.meta.installation.clone(),
            lease_generation: found.meta.lease_generation,
        };
        host.saw(Seen {
            vm: vm.clone(),
            vcpus: found.meta.vcpus,
            memory_mib: found.meta.memory_mib,
            reserved: !found.meta.deallocated,
            at: Instant::now(),
        });
        vm
    }

    /// Discards `found`'s saved state (managed save image), if it has one: its next start
    /// boots afresh.
    fn discard_saved(found: &Found) -> Result<()> {
        if found
            .dom
            .has_managed_save()
            .map_err(virt("look for a saved state"))?
        {
            found
                .dom
                .remove_managed_save()
                .map_err(virt("discard a saved state"))?;
        }
        Ok(())
    }

    fn get(&self, id: &str) -> Result<ObservedVm> {
        let found = self.found(id)?;
        self.observe(id, &found)
    }

    /// Flotilla's domains on host `host`. Whether it succeeds tells whether the host can be
    /// read (see [`Host::readable`]).
    fn domains(&self, host: usize) -> Result<Domains> {
        let h = &self.hosts[host];
        let read = || -> Result<Domains> {
            let conn = h.conn()?;
            let mut out = Vec::new();
            for dom in conn
                .domains()
                .map_err(|e| h.failed(&conn, "list domains", e))?
            {
                match dom.metadata(xml::NAMESPACE) {
                    Ok(meta) => {
                        if let Some(meta) = meta.and_then(|m| Meta::parse(&m)) {
                            out.push((dom.name(), dom, meta));
                        }
                    }
                    // Undefined since it was listed.
                    Err(e) if e.code == ffi::ERR_NO_DOMAIN => {}
                    Err(e) => return Err(h.failed(&conn, "read metadata", e)),
                }
            }
            Ok(out)
        };
        let read = read();
        match &read {
            Ok(_) => h.readable(),
            Err(e) => h.unreadable(e),
        }
        read
    }

    /// Counts an operation on `id`; a delayed power-off checks the count is unchanged.
    fn operation(&self, id: &str) -> u64 {
        let mut ops = self.ops.lock().expect("ops lock");
        let n = ops.entry(id.to_owned()).or_default();
        *n += 1;
        *n
    }

    /// The vCPUs and memory free on host `host` among its `domains` (`except` not counted).
    fn free(&self, domains: &[Listed], host: usize, except: &str) -> (u64, u64) {
        let (mut used_cpu, mut used_mem) = (0u64, 0u64);
        for (name, _, meta) in domains {
            if name != except && !meta.deallocated {
                used_cpu += u64::from(meta.vcpus);
                used_mem += meta.memory_mib;
            }
        }
        let facts = self.hosts[host].facts();
        (
            u64::from(facts.vcpus).saturating_sub(used_cpu),
            facts.memory_mib.saturating_sub(used_mem),
        )
    }

    /// Checks that host `host` has room for `vcpus` and `memory_mib` besides the VMs it
    /// holds (but `except`).
    fn check_room(&self, host: usize, vcpus: u32, memory_mib: u64, except: &str) -> Result<()> {
        let (cpu_free, mem_free) = self.free(&self.domains(host)?, host, except);
        if u64::from(vcpus) > cpu_free || memory_mib > mem_free {
            return Err(BackendError::CreateFailed {
                id: except.to_owned(),
                reason: format!(
                    "host {} is out of capacity: {cpu_free} vCPUs and {mem_free} MiB free, \
                     the VM needs {vcpus} vCPUs and {memory_mib} MiB",
                    self.hosts[host]
                ),
            });
        }
        Ok(())
    }

    /// The host for `spec`: its fault domain's host when that has room, else the zone's
    /// host with the most free memory that has room — never one of the spec's
    /// `closed_fault_domains`, which are not even read, nor a host that cannot be read.
    /// Answers the host and its domains; a zone without an open, readable host with room
    /// fails naming each host's free capacity, or that it is closed, or why it cannot be
    /// read.
    fn place(&self, spec: &VmSpec) -> Result<(usize, Domains)> {
        let zone_hosts: Vec<usize> = (0..self.hosts.len())
            .filter(|&i| self.hosts[i].config.zone == spec.zone)
            .collect();
        if zone_hosts.is_empty() {
            return Err(BackendError::UnknownZone {
                zone: spec.zone.clone(),
            });
        }
        let preferred = zone_hosts[spec.fault_domain as usize % zone_hosts.len()];
        let order = std::iter::once(preferred)
            .chain(zone_hosts.iter().copied().filter(|&h| h != preferred));
        let (vcpus, memory_mib) = (
            u64::from(spec.model.vcpus),
            u64::from(spec.model.memory_mib),
        );
        let mut best: Option<(u64, usize, Domains)> = None;
        let mut refusals = Vec::new();
        for host in order {
            if spec
                .closed_fault_domains
                .contains(&self.hosts[host].fault_domain)
            {
                refusals.push(format!(
                    "host {} is closed (under maintenance or unreachable)",
                    self.hosts[host]
                ));
                continue;
            }
            let domains = match self.domains(host) {
                Ok(domains) => domains,
                Err(e) => {
                    refusals.push(format!("host {} cannot be read ({e})", self.hosts[host]));
                    continue;
                }
            };
            let (cpu_free, mem_free) = self.free(&domains, host, &spec.id);
            if vcpus > cpu_free || memory_mib > mem_free {
                refusals.push(format!(
                    "host {} has {cpu_free} vCPUs and {mem_free} MiB free",
                    self.hosts[host]
                ));
                continue;
            }
            if host == preferred {
                return Ok((host, domains));
            }
            if best.as_ref().is_none_or(|(free, _, _)| mem_free > *free) {
                best = Some((mem_free, host, domains));
            }
        }
        best.map(|(_, host, domains)| (host, domains))
            .ok_or_else(|| BackendError::CreateFailed {
                id: spec.id.clone(),
                reason: format!(
                    "zone {} is out of capacity for {vcpus} vCPUs and {memory_mib} MiB: {}",
                    spec.zone,
                    refusals.join(", ")
                ),
            })
    }

    /// A port from `port_base` up that no domain of the host uses (and, for a local host,
    /// that nothing here listens on).
    fn free_port(&self, host: usize, domains: &[Listed]) -> Option<u16> {
        let used: std::collections::BTreeSet<u16> =
            domains.iter().map(|(_, _, m)| m.port).collect();
        let h = &self.hosts[host];
        (self.config.port_base..=u16::MAX).find(|&p| {
            !used.contains(&p)
                && (!h.local || std::net::TcpListener::bind((h.config.address.as_str(), p)).is_ok())
        })
    }

    /// Makes VM `id`'s storage for `model` on host `host` (a fresh overlay, a fresh seed) and
    /// answers its domain definition with `meta`; on failure nothing is left.
    fn provision(
        &self,
        host: usize,
        id: &str,
        uuid: Option<&str>,
        model: &Model,
        meta: &Meta,
    ) -> Result<String> {
        let failed = |reason: String| BackendError::CreateFailed {
            id: id.to_owned(),
            reason,
        };
        let h = &self.hosts[host];
        let facts = h.facts();
        let pool = h.pool()?;
        let boot = storage::boot_of(&pool, &model.image)
            .map_err(|e| failed(e.to_string()))?
            .ok_or_else(|| {
                failed(format!(
                    "the base image {} is missing from storage pool {:?} on host {}",
                    storage::base_volume(&model.image),
                    h.config.pool,
                    h
                ))
            })?;
        Self::remove_overlay(&pool, id)?;
        let bytes = (u64::from(model.disk_gib) << 30).max(boot.base_bytes);
        let overlay = pool
            .create_volume(&storage::overlay_xml(id, bytes, &boot.base))
            .map_err(|e| failed(format!("creating the disk: {e}")))?;
        let files = InstanceFiles::new(&self.state_dir, id);
        let seeded = files
            .remove()
            .map_err(|e| e.to_string())
            .and_then(|()| files.write_seed(id, model.user_data.as_deref(), self.seed_group));
        let disk = overlay.path();
        match (seeded, disk) {
            (Ok(()), Ok(disk)) => {
                let seed = files.seed().display().to_string();
                let console = files.console().display().to_string();
                let socket = h
                    .local
                    .then(|| self.relay.socket(id))
                    .flatten()
                    .map(|socket| socket.display().to_string());
                if socket.is_some() {
                    self.relay.ensure(id, &meta.scale_set);
                }
                let kernel = boot.kernel.as_ref().map(|(kernel, initrd)| {
                    (
                        kernel.as_str(),
                        initrd.as_str(),
                        self.config.kernel_cmdline.as_str(),
                    )
                });
                Ok(xml::domain(
                    id,
                    uuid,
                    meta,
                    &xml::Devices {
                        disk: &disk,
                        seed: &seed,
                        console: &console,
                        kernel,
                        address: &h.config.address,
                        app_port: model.app_port,
                        accelerated: facts.accelerated,
                        metadata: socket.as_deref().map(|s| (s, facts.reconnect_ms)),
                    },
                ))
            }
            (seeded, disk) => {
                let _ = overlay.delete();
                let _ = files.remove();
                Err(failed(match (seeded, disk) {
                    (Err(e), _) => format!("writing the cloud-init seed: {e}"),
                    (_, Err(e)) => format!("reading the disk's path: {e}"),
                    _ => unreachable!("one of them failed"),
                }))
            }
        }
    }

    /// Removes VM `id`'s overlay from `pool`, if there is one.
    fn remove_overlay(pool: &Pool, id: &str) -> Result<()> {
        if let Some(vol) = pool
            .volume(&storage::overlay_volume(id))
            .map_err(virt("look up a disk"))?
        {
            vol.delete().map_err(virt("delete a disk"))?;
        }
        Ok(())
    }

    /// Removes VM `id`'s storage: its overlay on host `host` (every host that can be read
    /// when unknown), its seed and console log.
    fn remove_storage(&self, host: Option<usize>, id: &str) -> Result<()> {
        match host {
            Some(host) => Self::remove_overlay(&self.hosts[host].pool()?, id)?,
            None => {
                // A host that cannot be read keeps what it may hold.
                for h in &self.hosts {
                    if let Ok(pool) = h.pool() {
                        Self::remove_overlay(&pool, id)?;
                    }
                }
            }
        }
        InstanceFiles::new(&self.state_dir, id)
            .remove()
            .map_err(|source| BackendError::Io {
                operation: "remove a VM's seed and console log",
                source,
            })
    }

    fn create(&self, spec: &VmSpec) -> Result<ObservedVm> {
        let _placing = self.placing.lock().expect("placing lock");
        if let Some(found) = self.find(&spec.id)? {
            if !self.is_ours(&found) {
                return Err(Self::foreign(&spec.id, &found));
            }
            return self.observe(&spec.id, &found);
        }
        let (host, domains) = self.place(spec)?;
        let port = self
            .free_port(host, &domains)
            .ok_or_else(|| BackendError::CreateFailed {
                id: spec.id.clone(),
                reason: "no free port is left on the host".into(),
            })?;
        let mut meta = Meta::new(
            &self.installation_id,
            &spec.scale_set,
            &spec.zone,
            self.hosts[host].fault_domain,
            spec.model_version,
            &spec.model,
            port,
        );
        meta.lease_generation = spec.lease_generation;
        let definition = self.provision(host, &spec.id, None, &spec.model, &meta)?;
        let failed = |e: VirtError| BackendError::CreateFailed {
            id: spec.id.clone(),
            reason: e.to_string(),
        };
        let started = self.hosts[host]
            .conn()
            .and_then(|conn| conn.define(&definition).map_err(failed))
            .and_then(|dom| match dom.start() {
                Ok(()) => Ok(()),
                Err(e) => {
                    let _ = dom.undefine();
                    Err(failed(e))
                }
            });
        if let Err(e) = started {
            // Nothing is left half-created: the definition and the storage go again.
            let _ = self.remove_storage(Some(host), &spec.id);
            return Err(e);
        }
        self.operation(&spec.id);
        self.booted(&spec.id)
    }

    /// Notes that VM `id` was just started (for its metrics' running time) and answers it.
    fn booted(&self, id: &str) -> Result<ObservedVm> {
        self.started
            .lock()
            .expect("started lock")
            .insert(id.to_owned(), Instant::now());
        self.samples.lock().expect("samples lock").remove(id);
        self.get(id)
    }

    /// Powers `found` off if it runs.
    fn power_off(found: &Found) -> Result<()> {
        let info = found.dom.info().map_err(virt("read domain state"))?;
        if is_active(info.state) {
            match found.dom.destroy() {
                Err(e) if e.code != ffi::ERR_OPERATION_INVALID => {
                    return Err(virt("power off")(e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Redefines `found` with `meta` (takes effect at its next start), keeping its devices.
    fn redefine(&self, id: &str, found: &Found, meta: &Meta) -> Result<()> {
        let current = found
            .dom
            .xml()
            .map_err(virt("read a domain's definition"))?;
        let definition =
            xml::with_metadata(&current, meta).ok_or_else(|| BackendError::Libvirt {
                operation: "redefine a domain",
                message: format!("domain {id}'s definition has no Flotilla metadata"),
            })?;
        self.hosts[found.host]
            .conn()?
            .define(&definition)
            .map(drop)
            .map_err(virt("redefine a domain"))
    }

    /// Another installation's domain is absent for this one: deleting it succeeds and
    /// touches neither it nor its storage. A VM on a host that cannot be read is given up
    /// (see [`Inner::give_up`]).
    fn delete(&self, id: &str) -> Result<()> {
        let found = match self.find(id) {
            Err(BackendError::HostUnavailable { host }) => {
                self.give_up(id, &host);
                return Ok(());
            }
            found => found?,
        };
        if found.as_ref().is_some_and(|f| !self.is_ours(f)) {
            return Ok(());
        }
        self.operation(id);
        if let Some(found) = &found {
            Self::power_off(found)?;
            found.dom.undefine().map_err(virt("undefine a domain"))?;
        }
        // Also when the domain is gone: a crash between the steps of a create or a delete
        // may have left the storage behind.
        self.remove_storage(found.map(|f| f.host), id)?;
        for h in &self.hosts {
            h.seen.lock().expect("seen lock").remove(id);
        }
        self.relay.forget(id);
        self.samples.lock().expect("samples lock").remove(id);
        self.started.lock().expect("started lock").remove(id);
        Ok(())
    }

    /// Gives up this installation's VM `id`, last seen on host `host`, which cannot be read:
    /// it is no longer reported, and this process forgets it (its metadata endpoint, seed
    /// and console log go). Its domain and disk stay on the host; should the host answer
    /// again, the domain is listed with no instance record, and the control plane deletes
    /// it as a VM without one. Another installation's VM is left as it is.
    fn give_up(&self, id: &str, host: &str) {
        let Some(h) = self.hosts.iter().find(|h| h.name == host) else {
            return;
        };
        {
            let mut seen = h.seen.lock().expect("seen lock");
            if seen.get(id).is_none_or(|s| {
                s.vm.installation_id.as_deref() != Some(self.installation_id.as_str())
            }) {
                return;
            }
            seen.remove(id);
        }
        tracing::warn!(vm = %id, host = %h.name, "deleting a VM whose host cannot be read: given up; its domain is deleted when the host answers again");
        self.operation(id);
        self.relay.forget(id);
        if let Err(e) = InstanceFiles::new(&self.state_dir, id).remove() {
            tracing::warn!(vm = %id, error = %e, "could not remove a given-up VM's seed and console log");
        }
        self.samples.lock().expect("samples lock").remove(id);
        self.started.lock().expect("started lock").remove(id);
    }

    fn start(&self, id: &str) -> Result<ObservedVm> {
        let found = self.found(id)?;
        self.operation(id);
        let info = found.dom.info().map_err(virt("read domain state"))?;
        if info.state == state::SHUTDOWN {
            // Shutting down: the start wins, from a powered-off domain.
            Self::power_off(&found)?;
        } else if info.state == state::PAUSED {
            // Paused (parked): its vCPUs go on where they stopped.
            found.dom.resume().map_err(virt("resume a domain"))?;
            return self.booted(id);
        } else if is_active(info.state) {
            return self.observe(id, &found);
        }
        if found.meta.deallocated {
            let _placing = self.placing.lock().expect("placing lock");
            self.check_room(found.host, found.meta.vcpus, found.meta.memory_mib, id)?;
            let meta = Meta {
                deallocated: false,
                ..found.meta.clone()
            };
            self.redefine(id, &found, &meta)?;
        }
        // A saved domain (managed save image) is restored rather than booted: libvirt's
        // start does it by itself, and removes the image.
        found.dom.start().map_err(virt("start a domain"))?;
        self.booted(id)
    }

    /// Stops VM `id`: `force` powers it off at once; otherwise the guest is asked to shut
    /// down — a paused guest is resumed first, as it could not hear the request — and the
    /// operation's count is answered for the deadline. A saved VM's saved state is
    /// discarded (it was shut off already).
    fn stop(&self, id: &str, force: bool) -> Result<(ObservedVm, Option<u64>)> {
        let found = self.found(id)?;
        let op = self.operation(id);
        let info = found.dom.info().map_err(virt("read domain state"))?;
        let asked = if !is_active(info.state) {
            Self::discard_saved(&found)?;
            false
        } else if force {
            Self::power_off(&found)?;
            false
        } else {
            self.shut_down(&found, info.state)?;
            true
        };
        Ok((self.get(id)?, asked.then_some(op)))
    }

    /// Asks `found`, active in libvirt state `info_state`, to shut down (resumed first when
    /// paused).
    fn shut_down(&self, found: &Found, info_state: u8) -> Result<()> {
        if info_state == state::PAUSED {
            found.dom.resume().map_err(virt("resume a domain"))?;
        }
        found.dom.shutdown().map_err(virt("shut a domain down"))
    }

    /// Parks VM `id` for a warm pool (see [`Backend::park`]); answers it and, when its
    /// guest was asked to shut down, the operation's count for the deadline.
    fn park(&self, id: &str, target: WarmPoolState) -> Result<(ObservedVm, Option<u64>)> {
        let found = self.found(id)?;
        let vm = self.observe(id, &found)?;
        let already = vm.power_state == target.power_state()
            || (target == WarmPoolState::Stopped && vm.power_state == PowerState::Stopping);
        if already {
            return Ok((vm, None));
        }
        if vm.power_state != PowerState::Running {
            return Err(BackendError::InvalidState {
                id: id.to_owned(),
                operation: "park",
                state: vm.power_state.to_string(),
            });
        }
        let op = self.operation(id);
        let asked = match target {
            // Running already: answered above.
            WarmPoolState::Running => false,
            WarmPoolState::Paused => {
                found
                    .dom
                    .suspend()
                    .map_err(|e| self.park_failed(id, "suspend a domain", e))?;
                false
            }
            WarmPoolState::Saved => {
                // Blocks while the memory is written (this runs on a blocking thread).
                found
                    .dom
                    .managed_save()
                    .map_err(|e| self.park_failed(id, "save a domain", e))?;
                false
            }
            WarmPoolState::Stopped => {
                let info = found.dom.info().map_err(virt("read domain state"))?;
                self.shut_down(&found, info.state)?;
                true
            }
        };
        Ok((self.get(id)?, asked.then_some(op)))
    }

    /// What a refused park call fails with: `InvalidState` when the domain stopped running
    /// since it was read (libvirt's "operation invalid"), the libvirt error otherwise.
    fn park_failed(&self, id: &str, operation: &'static str, error: VirtError) -> BackendError {
        if error.code == ffi::ERR_OPERATION_INVALID
            && let Ok(vm) = self.get(id)
            && vm.power_state != PowerState::Running
        {
            return BackendError::InvalidState {
                id: id.to_owned(),
                operation: "park",
                state: vm.power_state.to_string(),
            };
        }
        virt(operation)(error)
    }

    /// Asks the guest to reboot; answers the VM and the operation's count.
    fn restart(&self, id: &str) -> Result<(ObservedVm, u64)> {
        let found = self.found(id)?;
        let observed = self.observe(id, &found)?;
        if observed.power_state != PowerState::Running {
            return Err(BackendError::InvalidState {
                id: id.to_owned(),
                operation: "restart",
                state: observed.power_state.to_string(),
            });
        }
        let op = self.operation(id);
        found.dom.reboot().map_err(virt("reboot a domain"))?;
        Ok((self.get(id)?, op))
    }

    fn deallocate(&self, id: &str) -> Result<ObservedVm> {
        let found = self.found(id)?;
        self.operation(id);
        Self::power_off(&found)?;
        // A saved VM's memory would be restored at its next start: it is let go, as a
        // running VM's is.
        Self::discard_saved(&found)?;
        if !found.meta.deallocated {
            let meta = Meta {
                deallocated: true,
                ..found.meta.clone()
            };
            self.redefine(id, &found, &meta)?;
        }
        self.get(id)
    }

    fn reimage(&self, id: &str, model: &Model, model_version: u32) -> Result<ObservedVm> {
        let found = self.found(id)?;
        self.operation(id);
        Self::power_off(&found)?;
        // A saved state belongs to the old disk: restoring it onto the new one would not do.
        Self::discard_saved(&found)?;
        {
            let _placing = self.placing.lock().expect("placing lock");
            let memory_mib = u64::from(model.memory_mib);
            self.check_room(found.host, model.vcpus, memory_mib, id)?;
            let mut meta = Meta::new(
                &self.installation_id,
                &found.meta.scale_set,
                &found.meta.zone,
                found.meta.fault_domain,
                model_version,
                model,
                found.meta.port,
            );
            // The VM keeps the term that made it.
            meta.lease_generation = found.meta.lease_generation;
            let uuid = found.dom.uuid().map_err(virt("read a domain's UUID"))?;
            let definition = self.provision(found.host, id, Some(&uuid), model, &meta)?;
            self.hosts[found.host]
                .conn()?
                .define(&definition)
                .map_err(virt("redefine a domain"))?;
        }
        found.dom.start().map_err(virt("start a domain"))?;
        self.booted(id)
    }

    /// Flotilla's domains on host `host` (of `scale_set` only, when given), each with its
    /// libvirt state and whether it has a saved state — all read, or the host could not be.
    fn read_host(&self, host: usize, scale_set: Option<&str>) -> Result<Vec<(Found, u8, bool)>> {
        let h = &self.hosts[host];
        let read = || -> Result<Vec<(Found, u8, bool)>> {
            let conn = h.conn()?;
            // The host's domains with a saved state, read in one call once a shut-off
            // domain needs it (thousands of domains must not cost a call apiece).
            let mut saved: Option<HashSet<String>> = None;
            let mut out = Vec::new();
            for (name, dom, meta) in self.domains(host)? {
                if scale_set.is_some_and(|s| s != meta.scale_set) {
                    continue;
                }
                let info = match dom.info() {
                    Ok(info) => info,
                    // Undefined since it was listed.
                    Err(e) if e.code == ffi::ERR_NO_DOMAIN => continue,
                    Err(e) => return Err(h.failed(&conn, "read domain state", e)),
                };
                if info.state == state::SHUTOFF && saved.is_none() {
                    saved = Some(
                        conn.saved_domains()
                            .map_err(|e| h.failed(&conn, "list saved domains", e))?,
                    );
                }
                let is_saved = info.state == state::SHUTOFF
                    && saved.as_ref().is_some_and(|names| names.contains(&name));
                out.push((Found { host, dom, meta }, info.state, is_saved));
            }
            Ok(out)
        };
        let read = read();
        if let Err(e) = &read {
            h.unreadable(e);
        }
        read
    }

    /// Also listens on the metadata socket of each local VM listed (a restarted process
    /// takes its VMs' endpoints back), and, listing them all, stops listening for VMs gone.
    /// A host that cannot be read is reported as it was last read — its VMs as they were,
    /// so that a blip changes nothing in the control plane's records (a host that stays
    /// unreachable is closed and its VMs replaced by the control plane) — and its VMs keep
    /// their endpoints.
    fn list(&self, scale_set: Option<&str>) -> Result<Vec<ObservedVm>> {
        let mut out = Vec::new();
        let mut local = HashSet::new();
        for host in 0..self.hosts.len() {
            let h = &self.hosts[host];
            let began = Instant::now();
            let read = match self.read_host(host, scale_set) {
                Ok(read) => read,
                Err(_) => {
                    for seen in h.last_seen(scale_set) {
                        if h.local {
                            local.insert(seen.vm.id.clone());
                        }
                        out.push(seen.vm);
                    }
                    continue;
                }
            };
            let mut listed = HashSet::new();
            for (found, info_state, is_saved) in read {
                let name = found.dom.name();
                let meta = &found.meta;
                if self.hosts[host].local {
                    self.relay.ensure(&name, &meta.scale_set);
                    local.insert(name.clone());
                }
                out.push(self.observed(&name, &found, info_state, is_saved));
                listed.insert(name);
            }
            // What is not there any more is forgotten (of the set listed, when one is; not
            // what an operation read meanwhile, say a VM just created).
            h.seen.lock().expect("seen lock").retain(|id, seen| {
                listed.contains(id)
                    || seen.at >= began
                    || scale_set.is_some_and(|set| seen.vm.scale_set != set)
            });
        }
        if scale_set.is_none() {
            self.relay
                .retain(&local.iter().map(String::as_str).collect());
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn metrics(&self, scale_set: Option<&str>) -> Result<Vec<VmMetrics>> {
        let now = Instant::now();
        let mut out = Vec::new();
        // A host that cannot be read has no metrics.
        for host in 0..self.hosts.len() {
            let Ok(domains) = self.domains(host) else {
                continue;
            };
            for (name, dom, meta) in domains {
                if scale_set.is_some_and(|s| s != meta.scale_set) {
                    continue;
                }
                let Ok(info) = dom.info() else {
                    // Undefined since it was listed, or its host just went.
                    continue;
                };
                // Paused domains do not run: like stopped ones, they have no usage.
                if !is_active(info.state) || info.state == state::PAUSED {
                    continue;
                }
                // A domain without the disk (say, mid-redefinition) reads no disk traffic.
                let (read, written) = dom.block_stats("vda").unwrap_or((0, 0));
                let sample = Sample {
                    at: now,
                    cpu_ns: info.cpu_time_ns,
                    read,
                    written,
                };
                let previous = self
                    .samples
                    .lock()
                    .expect("samples lock")
                    .insert(name.clone(), sample);
                let cores = f64::from(info.vcpus.max(1));
                let (cpu_percent, read_rate, write_rate) = previous.map_or((0.0, 0.0, 0.0), |p| {
                    let seconds = now.duration_since(p.at).as_secs_f64();
                    (
                        (rate(sample.cpu_ns, p.cpu_ns, seconds) / 1e9 / cores * 100.0)
                            .clamp(0.0, 100.0),
                        rate(read, p.read, seconds),
                        rate(written, p.written, seconds),
                    )
                });
                // What the guest's process holds on the host, of the guest's memory (the
                // balloon's figure, what the domain was given, says nothing without a
                // guest driver); the driver's current memory where it has no such figure.
                let used_kib = dom.resident_kib().ok().flatten().unwrap_or(info.memory_kib);
                let memory_percent = if info.max_memory_kib > 0 {
                    (used_kib as f64 / info.max_memory_kib as f64 * 100.0).clamp(0.0, 100.0)
                } else {
                    0.0
                };
                let running_seconds = self
                    .started
                    .lock()
                    .expect("started lock")
                    .get(&name)
                    .map_or(0.0, |t| now.duration_since(*t).as_secs_f64());
                out.push(VmMetrics {
                    id: name,
                    scale_set: meta.scale_set,
                    running_seconds,
                    usage: VmUsage {
                        cpu_percent,
                        memory_percent,
                        network_in_bytes_per_second: 0.0,
                        network_out_bytes_per_second: 0.0,
                        disk_read_bytes_per_second: read_rate,
                        disk_write_bytes_per_second: write_rate,
                    },
                });
            }
        }
        Ok(out)
    }

    /// Host `host` with its use; an unreadable host is reported, not an error: unavailable,
    /// with why, and its VMs as last read.
    fn host_status(&self, host: usize) -> HostStatus {
        let h = &self.hosts[host];
        let read = || -> Result<(Domains, Vec<String>)> {
            Ok((self.domains(host)?, self.images_on(host)?))
        };
        let read = read();
        // Read after the host, whose connection (made again) may have told its size.
        let facts = h.facts();
        let mut status = HostStatus {
            name: h.name.clone(),
            uri: Some(h.config.uri.clone()),
            zone: h.config.zone.clone(),
            fault_domain: h.fault_domain,
            vcpus: facts.vcpus,
            memory_mib: facts.memory_mib,
            used_vcpus: 0,
            used_memory_mib: 0,
            vms: 0,
            running: 0,
            images: Vec::new(),
            available: true,
            error: None,
        };
        match read {
            Ok((domains, images)) => {
                let (cpu_free, mem_free) = self.free(&domains, host, "");
                // (A reconnection in between may have changed the size: never below 0.)
                status.used_vcpus = u64::from(facts.vcpus).saturating_sub(cpu_free) as u32;
                status.used_memory_mib = facts.memory_mib.saturating_sub(mem_free);
                status.vms = domains.len() as u32;
                status.running = domains
                    .iter()
                    .filter(|(_, dom, _)| {
                        dom.info()
                            .is_ok_and(|i| is_active(i.state) && i.state != state::PAUSED)
                    })
                    .count() as u32;
                status.images = images;
            }
            Err(e) => {
                status.available = false;
                status.error = Some(e.to_string());
                let seen = h.last_seen(None);
                status.vms = seen.len() as u32;
                status.running = seen
                    .iter()
                    .filter(|s| s.vm.power_state == PowerState::Running)
                    .count() as u32;
                for s in seen.iter().filter(|s| s.reserved) {
                    status.used_vcpus += s.vcpus;
                    status.used_memory_mib += s.memory_mib;
                }
            }
        }
        status
    }

    /// The images host `host`'s pool offers. The pool is rescanned (images copied in
    /// appear) at most every [`POOL_RESCAN`]: the Hosts page and the wizard read this on
    /// every change, and a rescan reads every volume's header.
    fn images_on(&self, host: usize) -> Result<Vec<String>> {
        let h = &self.hosts[host];
        let pool = h.pool()?;
        {
            let mut rescanned = h.rescanned.lock().expect("rescanned lock");
            if rescanned.is_none_or(|at| at.elapsed() >= POOL_RESCAN) {
                pool.refresh().map_err(virt("rescan a storage pool"))?;
                *rescanned = Some(Instant::now());
            }
        }
        Ok(storage::images_in(
            &pool.volumes().map_err(virt("list a storage pool"))?,
        ))
    }

    /// The images every host that can be read offers: a set of any of them can be placed
    /// on any host that answers. Fails naming every host when none can be read.
    fn images(&self) -> Result<Vec<String>> {
        let mut common: Option<Vec<String>> = None;
        let mut unreadable = Vec::new();
        for host in 0..self.hosts.len() {
            let here = match self.images_on(host) {
                Ok(here) => here,
                Err(e) => {
                    unreadable.push(e.to_string());
                    continue;
                }
            };
            common = Some(match common {
                None => here,
                Some(so_far) => so_far.into_iter().filter(|i| here.contains(i)).collect(),
            });
        }
        common.ok_or_else(|| BackendError::Libvirt {
            operation: "list images",
            message: format!("no host can be read: {}", unreadable.join("; ")),
        })
    }
}

#[async_trait]
impl Backend for Libvirt {
    fn kind(&self) -> &'static str {
        "libvirt"
    }

    fn installation_id(&self) -> &str {
        &self.inner.installation_id
    }

    async fn adopt(&self, id: &str) -> Result<ObservedVm> {
        let id = id.to_owned();
        self.run(move |inner| inner.adopt(&id)).await
    }

    /// From the configuration, and what is known of the hosts (no call is made): a host
    /// that could not be read when last tried is a closed fault domain, as it takes
    /// nothing new (a zone whose hosts are all closed takes nothing).
    async fn zones(&self) -> Result<Vec<ZoneStatus>> {
        let mut zones: Vec<ZoneStatus> = Vec::new();
        for host in &self.inner.hosts {
            let zone = match zones.iter_mut().position(|z| z.name == host.config.zone) {
                Some(at) => &mut zones[at],
                None => {
                    zones.push(ZoneStatus {
                        name: host.config.zone.clone(),
                        fault_domains: 0,
                        available: true,
                        closed_fault_domains: Vec::new(),
                    });
                    zones.last_mut().expect("just pushed")
                }
            };
            zone.fault_domains += 1;
            if host.trouble().is_some() {
                zone.closed_fault_domains.push(host.fault_domain);
            }
        }
        zones.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(zones)
    }

    async fn images(&self) -> Result<Vec<String>> {
        self.run(Inner::images).await
    }

    async fn hosts(&self) -> Result<Vec<HostStatus>> {
        self.run(|inner| {
            Ok((0..inner.hosts.len())
                .map(|h| inner.host_status(h))
                .collect())
        })
        .await
    }

    fn state_changes(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        Some(self.inner.changes.subscribe())
    }

    async fn console(&self, id: &str) -> Result<String> {
        let id = id.to_owned();
        self.run(move |inner| {
            inner.found(&id)?;
            InstanceFiles::new(&inner.state_dir, &id)
                .console_tail(CONSOLE_BYTES)
                .map_err(|source| BackendError::Io {
                    operation: "read a console log",
                    source,
                })
        })
        .await
    }

    async fn create(&self, spec: &VmSpec) -> Result<ObservedVm> {
        let spec = spec.clone();
        self.run(move |inner| inner.create(&spec)).await
    }

    async fn delete(&self, id: &str, _force: bool) -> Result<()> {
        let id = id.to_owned();
        self.run(move |inner| inner.delete(&id)).await
    }

    async fn start(&self, id: &str) -> Result<ObservedVm> {
        let id = id.to_owned();
        self.run(move |inner| inner.start(&id)).await
    }

    async fn stop(&self, id: &str, force: bool) -> Result<ObservedVm> {
        let id = id.to_owned();
        let (vm, asked) = self.run(move |inner| inner.stop(&id, force)).await?;
        if let Some(op) = asked {
            self.power_off_later(&vm.id, op);
        }
        Ok(vm)
    }

    async fn park(&self, id: &str, state: WarmPoolState) -> Result<ObservedVm> {
        let id = id.to_owned();
        let (vm, asked) = self.run(move |inner| inner.park(&id, state)).await?;
        if let Some(op) = asked {
            self.power_off_later(&vm.id, op);
        }
        Ok(vm)
    }

    async fn deallocate(&self, id: &str) -> Result<ObservedVm> {
        let id = id.to_owned();
        self.run(move |inner| inner.deallocate(&id)).await
    }

    async fn restart(&self, id: &str) -> Result<ObservedVm> {
        // A guest that does not reboot in time (no lifecycle event of its domain) is reset,
        // unless another operation came since.
        let mut changes = self.inner.changes.subscribe();
        let timeout = Duration::from_secs(self.inner.config.shutdown_timeout_seconds);
        let id = id.to_owned();
        let (vm, op) = {
            let id = id.clone();
            self.run(move |inner| inner.restart(&id)).await?
        };
        let silent = {
            let id = id.clone();
            async move {
                let announced = tokio::time::timeout(timeout, async {
                    loop {
                        match changes.recv().await {
                            Ok(name) if name == id => return,
                            Ok(_) => {}
                            // Missed announcements may have been its own: no reset on a guess.
                            Err(_) => return,
                        }
                    }
                })
                .await;
                announced.is_err()
            }
        };
        self.unless_superseded(&id, op, silent, |found| {
            if is_active(found.dom.info().map_err(virt("read domain state"))?.state) {
                tracing::warn!(vm = %found.dom.name(), "the guest did not reboot in time: reset");
                found.dom.reset().map_err(virt("reset a domain"))?;
            }
            Ok(())
        });
        Ok(vm)
    }

    async fn reimage(&self, id: &str, model: &Model, model_version: u32) -> Result<ObservedVm> {
        let (id, model) = (id.to_owned(), model.clone());
        self.run(move |inner| inner.reimage(&id, &model, model_version))
            .await
    }

    fn serve_guests(&self, handler: Arc<dyn crate::GuestHandler>) {
        self.inner.relay.serve(handler);
    }

    async fn list(&self, scale_set: Option<&str>) -> Result<Vec<ObservedVm>> {
        let scale_set = scale_set.map(str::to_owned);
        self.run(move |inner| inner.list(scale_set.as_deref()))
            .await
    }

    async fn get(&self, id: &str) -> Result<Option<ObservedVm>> {
        let id = id.to_owned();
        self.run(move |inner| match inner.find(&id)? {
            Some(found) => inner.observe(&id, &found).map(Some),
            None => Ok(None),
        })
        .await
    }

    async fn metrics(&self, scale_set: Option<&str>) -> Result<Vec<VmMetrics>> {
        let scale_set = scale_set.map(str::to_owned);
        self.run(move |inner| inner.metrics(scale_set.as_deref()))
            .await
    }
}
