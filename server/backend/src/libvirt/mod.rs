//! The libvirt backend (cargo feature `libvirt`): VMs as libvirt domains on a list of
//! hosts, each host a fault domain of its zone with its own vCPU and memory limits.
//!
//! - Every libvirt call blocks, so each operation runs on a blocking thread
//!   ([`tokio::task::spawn_blocking`]); one connection per host serves them all.
//! - A VM is a persistent domain named by its instance id. Flotilla's facts (scale set,
//!   zone, fault domain, model version, image, size, forwarded port, deallocated) live in
//!   the domain's `<metadata>` ([`xml::Meta`]), so `list` rebuilds the whole view from
//!   libvirt alone after a restart; domains without it (say, the test driver's `test`)
//!   are not Flotilla's and are left alone.
//! - The host of a VM is the `fault_domain`-th host of its zone; it must have the VM's
//!   vCPUs and memory free (deallocated VMs hold no reservation). Creating writes the
//!   definition, then starts it; if the start fails the definition is removed again.
//! - `stop` asks the guest to shut down and powers it off after
//!   [`LibvirtConfig::shutdown_timeout_seconds`] unless a later operation came first;
//!   `force` powers off at once. `deallocate` powers off and releases the reservation.
//!   `reimage` powers off, redefines the domain on the new model and starts it.
//! - The address of a running VM is `<host address>:<port>`, a port from
//!   [`LibvirtConfig::port_base`] up, unique on its host.
//!
//! Not yet: disks (qcow2 overlays on per-host base images), the cloud-init seed, the
//! network with the forwarded port, the serial console log, and disk/network statistics —
//! the domains are what libvirt's test driver runs. CPU % comes from CPU time.

mod ffi;
mod xml;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use flotilla_domain::{Model, ObservedVm, PowerState, ZoneStatus};
use serde::{Deserialize, Serialize};

use crate::{Backend, BackendError, Result, VmMetrics, VmSpec, VmUsage};
use ffi::{Conn, Dom, VirtError, state};
use xml::Meta;

/// One libvirt host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostConfig {
    /// Its libvirt URI (`qemu:///system`, `qemu+ssh://host/system`, `test:///path.xml`).
    pub uri: String,
    /// The zone it belongs to; each host is one fault domain of its zone.
    pub zone: String,
    /// vCPUs and memory the VMs on it may take in all.
    pub vcpus: u32,
    pub memory_mib: u64,
    /// Where its forwarded ports are reached from Flotilla.
    #[serde(default = "loopback")]
    pub address: String,
}

fn loopback() -> String {
    "127.0.0.1".into()
}

/// The libvirt backend's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibvirtConfig {
    pub hosts: Vec<HostConfig>,
    /// The base images offered to models.
    pub images: Vec<String>,
    /// The first host port handed to a VM's application port.
    #[serde(default = "default_port_base")]
    pub port_base: u16,
    /// How long a guest may take to shut down before it is powered off.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_seconds: u64,
}

fn default_port_base() -> u16 {
    20_000
}

fn default_shutdown_timeout() -> u64 {
    30
}

struct Host {
    config: HostConfig,
    conn: Conn,
    /// Its fault domain: its position among its zone's hosts.
    fault_domain: u32,
}

/// A domain of Flotilla's, with where it lives.
struct Found {
    host: usize,
    dom: Dom,
    meta: Meta,
}

struct Inner {
    config: LibvirtConfig,
    hosts: Vec<Host>,
    /// Creations pick ports and check capacity one at a time.
    placing: Mutex<()>,
    /// Per VM, a count of operations: a delayed power-off applies only if none came since.
    ops: Mutex<HashMap<String, u64>>,
    /// Per VM, the last CPU time read and when.
    cpu: Mutex<HashMap<String, (Instant, u64)>>,
    started: Mutex<HashMap<String, Instant>>,
}

/// The libvirt backend.
#[derive(Clone)]
pub struct Libvirt {
    inner: Arc<Inner>,
}

impl Libvirt {
    /// Connects to every host; fails naming the host that cannot be reached.
    pub async fn open(config: LibvirtConfig) -> Result<Libvirt> {
        if config.hosts.is_empty() {
            return Err(BackendError::Libvirt {
                operation: "configure",
                message: "no hosts are configured".into(),
            });
        }
        let inner = tokio::task::spawn_blocking(move || -> Result<Inner> {
            let mut hosts = Vec::new();
            let mut per_zone: HashMap<String, u32> = HashMap::new();
            for host in &config.hosts {
                let conn = Conn::open(&host.uri).map_err(|e| BackendError::Libvirt {
                    operation: "connect",
                    message: format!("host {}: {e}", host.uri),
                })?;
                let slot = per_zone.entry(host.zone.clone()).or_default();
                hosts.push(Host {
                    config: host.clone(),
                    conn,
                    fault_domain: *slot,
                });
                *slot += 1;
            }
            Ok(Inner {
                config,
                hosts,
                placing: Mutex::new(()),
                ops: Mutex::new(HashMap::new()),
                cpu: Mutex::new(HashMap::new()),
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

fn power_state(info_state: u8, meta: &Meta) -> PowerState {
    match info_state {
        state::RUNNING | state::BLOCKED | state::PAUSED | state::PMSUSPENDED => PowerState::Running,
        state::SHUTDOWN => PowerState::Stopping,
        _ if meta.deallocated => PowerState::Deallocated,
        _ => PowerState::Stopped,
    }
}

fn is_active(info_state: u8) -> bool {
    !matches!(info_state, state::SHUTOFF | state::CRASHED | 0)
}

impl Inner {
    fn meta_of(dom: &Dom) -> Result<Option<Meta>> {
        Ok(dom
            .metadata(xml::NAMESPACE)
            .map_err(virt("read metadata"))?
            .and_then(|m| Meta::parse(&m)))
    }

    fn find(&self, id: &str) -> Result<Option<Found>> {
        for (host, h) in self.hosts.iter().enumerate() {
            if let Some(dom) = h.conn.lookup(id).map_err(virt("look up a domain"))?
                && let Some(meta) = Self::meta_of(&dom)?
            {
                return Ok(Some(Found { host, dom, meta }));
            }
        }
        Ok(None)
    }

    fn found(&self, id: &str) -> Result<Found> {
        self.find(id)?
            .ok_or_else(|| BackendError::NotFound { id: id.to_owned() })
    }

    fn observe(&self, id: &str, found: &Found) -> Result<ObservedVm> {
        let info = found.dom.info().map_err(virt("read domain state"))?;
        let power_state = power_state(info.state, &found.meta);
        let host = &self.hosts[found.host];
        Ok(ObservedVm {
            id: id.to_owned(),
            scale_set: found.meta.scale_set.clone(),
            zone: found.meta.zone.clone(),
            fault_domain: found.meta.fault_domain,
            model_version: found.meta.model_version,
            power_state,
            address: (power_state == PowerState::Running)
                .then(|| format!("{}:{}", host.config.address, found.meta.port)),
        })
    }

    fn get(&self, id: &str) -> Result<ObservedVm> {
        let found = self.found(id)?;
        self.observe(id, &found)
    }

    /// Flotilla's domains on host `host`.
    fn domains(&self, host: usize) -> Result<Vec<(String, Dom, Meta)>> {
        let mut out = Vec::new();
        for dom in self.hosts[host]
            .conn
            .domains()
            .map_err(virt("list domains"))?
        {
            if let Some(meta) = Self::meta_of(&dom)? {
                out.push((dom.name(), dom, meta));
            }
        }
        Ok(out)
    }

    /// Counts an operation on `id`; a delayed power-off checks the count is unchanged.
    fn operation(&self, id: &str) -> u64 {
        let mut ops = self.ops.lock().expect("ops lock");
        let n = ops.entry(id.to_owned()).or_default();
        *n += 1;
        *n
    }

    /// Checks that host `host` has room for `vcpus` and `memory_mib` besides the VMs it
    /// holds (but `except`).
    fn check_room(&self, host: usize, vcpus: u32, memory_mib: u64, except: &str) -> Result<()> {
        let domains = self.domains(host)?;
        self.check_room_among(&domains, host, vcpus, memory_mib, except)
    }

    /// [`Self::check_room`] with the host's domains already listed.
    fn check_room_among(
        &self,
        domains: &[(String, Dom, Meta)],
        host: usize,
        vcpus: u32,
        memory_mib: u64,
        except: &str,
    ) -> Result<()> {
        let (mut used_cpu, mut used_mem) = (0u64, 0u64);
        for (name, _, meta) in domains {
            if name != except && !meta.deallocated {
                used_cpu += u64::from(meta.vcpus);
                used_mem += meta.memory_mib;
            }
        }
        let h = &self.hosts[host].config;
        let cpu_free = u64::from(h.vcpus).saturating_sub(used_cpu);
        let mem_free = h.memory_mib.saturating_sub(used_mem);
        if u64::from(vcpus) > cpu_free || memory_mib > mem_free {
            return Err(BackendError::CreateFailed {
                id: except.to_owned(),
                reason: format!(
                    "host {} is out of capacity: {cpu_free} vCPUs and {mem_free} MiB free, \
                     the VM needs {vcpus} vCPUs and {memory_mib} MiB",
                    h.uri
                ),
            });
        }
        Ok(())
    }

    fn create(&self, spec: &VmSpec) -> Result<ObservedVm> {
        let _placing = self.placing.lock().expect("placing lock");
        if let Some(found) = self.find(&spec.id)? {
            return self.observe(&spec.id, &found);
        }
        let zone_hosts: Vec<usize> = (0..self.hosts.len())
            .filter(|&i| self.hosts[i].config.zone == spec.zone)
            .collect();
        if zone_hosts.is_empty() {
            return Err(BackendError::UnknownZone {
                zone: spec.zone.clone(),
            });
        }
        let host = zone_hosts[spec.fault_domain as usize % zone_hosts.len()];
        let memory_mib = u64::from(spec.model.memory_mib);
        let domains = self.domains(host)?;
        self.check_room_among(&domains, host, spec.model.vcpus, memory_mib, &spec.id)?;
        let used: std::collections::BTreeSet<u16> =
            domains.iter().map(|(_, _, m)| m.port).collect();
        let port = (self.config.port_base..=u16::MAX)
            .find(|p| !used.contains(p))
            .ok_or_else(|| BackendError::CreateFailed {
                id: spec.id.clone(),
                reason: "no free port is left on the host".into(),
            })?;
        let meta = Meta::new(
            &spec.scale_set,
            &spec.zone,
            self.hosts[host].fault_domain,
            spec.model_version,
            &spec.model,
            port,
        );
        let failed = |e: VirtError| BackendError::CreateFailed {
            id: spec.id.clone(),
            reason: e.to_string(),
        };
        let dom = self.hosts[host]
            .conn
            .define(&xml::domain(&spec.id, None, &meta))
            .map_err(failed)?;
        if let Err(e) = dom.start() {
            // Nothing is left half-created: the definition goes again.
            let _ = dom.undefine();
            return Err(failed(e));
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

    /// Redefines `found` with `meta` (takes effect at its next start).
    fn redefine(&self, id: &str, found: &Found, meta: &Meta) -> Result<()> {
        let uuid = found.dom.uuid().map_err(virt("read a domain's UUID"))?;
        self.hosts[found.host]
            .conn
            .define(&xml::domain(id, Some(&uuid), meta))
            .map(drop)
            .map_err(virt("redefine a domain"))
    }

    fn delete(&self, id: &str) -> Result<()> {
        let Some(found) = self.find(id)? else {
            return Ok(());
        };
        self.operation(id);
        Self::power_off(&found)?;
        found.dom.undefine().map_err(virt("undefine a domain"))?;
        self.cpu.lock().expect("cpu lock").remove(id);
        self.started.lock().expect("started lock").remove(id);
        Ok(())
    }

    fn start(&self, id: &str) -> Result<ObservedVm> {
        let found = self.found(id)?;
        self.operation(id);
        let info = found.dom.info().map_err(virt("read domain state"))?;
        if info.state == state::SHUTDOWN {
            // Shutting down: the start wins, from a powered-off domain.
            Self::power_off(&found)?;
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
        found.dom.start().map_err(virt("start a domain"))?;
        self.booted(id)
    }

    fn restart(&self, id: &str) -> Result<ObservedVm> {
        let found = self.found(id)?;
        let observed = self.observe(id, &found)?;
        if observed.power_state != PowerState::Running {
            return Err(BackendError::InvalidState {
                id: id.to_owned(),
                operation: "restart",
                state: observed.power_state.to_string(),
            });
        }
        self.operation(id);
        found.dom.reboot().map_err(virt("reboot a domain"))?;
        self.get(id)
    }

    fn deallocate(&self, id: &str) -> Result<ObservedVm> {
        let found = self.found(id)?;
        self.operation(id);
        Self::power_off(&found)?;
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
        {
            let _placing = self.placing.lock().expect("placing lock");
            let memory_mib = u64::from(model.memory_mib);
            self.check_room(found.host, model.vcpus, memory_mib, id)?;
            let mut meta = Meta::new(
                &found.meta.scale_set,
                &found.meta.zone,
                found.meta.fault_domain,
                model_version,
                model,
                found.meta.port,
            );
            meta.deallocated = false;
            self.redefine(id, &found, &meta)?;
        }
        found.dom.start().map_err(virt("start a domain"))?;
        self.booted(id)
    }

    fn list(&self, scale_set: Option<&str>) -> Result<Vec<ObservedVm>> {
        let mut out = Vec::new();
        for host in 0..self.hosts.len() {
            for (name, dom, meta) in self.domains(host)? {
                if scale_set.is_some_and(|s| s != meta.scale_set) {
                    continue;
                }
                out.push(self.observe(&name, &Found { host, dom, meta })?);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn metrics(&self, scale_set: Option<&str>) -> Result<Vec<VmMetrics>> {
        let now = Instant::now();
        let mut out = Vec::new();
        for host in 0..self.hosts.len() {
            for (name, dom, meta) in self.domains(host)? {
                if scale_set.is_some_and(|s| s != meta.scale_set) {
                    continue;
                }
                let info = dom.info().map_err(virt("read domain statistics"))?;
                if !is_active(info.state) {
                    continue;
                }
                let previous = self
                    .cpu
                    .lock()
                    .expect("cpu lock")
                    .insert(name.clone(), (now, info.cpu_time_ns));
                let cpu_percent = previous.map_or(0.0, |(at, cpu)| {
                    let wall = now.duration_since(at).as_nanos() as f64;
                    let used = info.cpu_time_ns.saturating_sub(cpu) as f64;
                    let cores = f64::from(info.vcpus.max(1));
                    if wall > 0.0 {
                        (used / wall / cores * 100.0).clamp(0.0, 100.0)
                    } else {
                        0.0
                    }
                });
                let memory_percent = if info.max_memory_kib > 0 {
                    info.memory_kib as f64 / info.max_memory_kib as f64 * 100.0
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
                        disk_read_bytes_per_second: 0.0,
                        disk_write_bytes_per_second: 0.0,
                    },
                });
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Backend for Libvirt {
    fn kind(&self) -> &'static str {
        "libvirt"
    }

    async fn zones(&self) -> Result<Vec<ZoneStatus>> {
        let mut zones: Vec<ZoneStatus> = Vec::new();
        for host in &self.inner.config.hosts {
            match zones.iter_mut().find(|z| z.name == host.zone) {
                Some(zone) => zone.fault_domains += 1,
                None => zones.push(ZoneStatus {
                    name: host.zone.clone(),
                    fault_domains: 1,
                    available: true,
                }),
            }
        }
        zones.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(zones)
    }

    async fn images(&self) -> Result<Vec<String>> {
        Ok(self.inner.config.images.clone())
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
        let timeout = Duration::from_secs(self.inner.config.shutdown_timeout_seconds);
        let (vm, op) = self
            .run(move |inner| {
                let found = inner.found(&id)?;
                let op = inner.operation(&id);
                let info = found.dom.info().map_err(virt("read domain state"))?;
                if is_active(info.state) {
                    if force {
                        Inner::power_off(&found)?;
                    } else {
                        found.dom.shutdown().map_err(virt("shut a domain down"))?;
                    }
                }
                Ok((inner.get(&id)?, op))
            })
            .await?;
        if vm.power_state == PowerState::Stopping {
            // A guest that does not shut down in time is powered off, unless another
            // operation came since.
            let this = self.clone();
            let id = vm.id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                let _ = this
                    .run(move |inner| {
                        let latest = inner.ops.lock().expect("ops lock").get(&id).copied();
                        if latest == Some(op)
                            && let Some(found) = inner.find(&id)?
                        {
                            Inner::power_off(&found)?;
                        }
                        Ok(())
                    })
                    .await;
            });
        }
        Ok(vm)
    }

    async fn deallocate(&self, id: &str) -> Result<ObservedVm> {
        let id = id.to_owned();
        self.run(move |inner| inner.deallocate(&id)).await
    }

    async fn restart(&self, id: &str) -> Result<ObservedVm> {
        let id = id.to_owned();
        self.run(move |inner| inner.restart(&id)).await
    }

    async fn reimage(&self, id: &str, model: &Model, model_version: u32) -> Result<ObservedVm> {
        let (id, model) = (id.to_owned(), model.clone());
        self.run(move |inner| inner.reimage(&id, &model, model_version))
            .await
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
