//! The prober: probes every running instance of every scale set and turns the results into
//! health states (rules in `flotilla_domain::health`).
//!
//! One task keeps a target per running instance, fed by the event bus and by a full
//! re-read every [`REFRESH`] (and after the bus lagged). Each target is probed once per
//! interval at its own phase (spread by a hash of its id), so 10,000 instances at 5 s make
//! an even 2,000 probes a second rather than bursts; at most [`MAX_IN_FLIGHT`] probes run at
//! once. Only state *changes* are written (batched each tick, generation-guarded, retried
//! on the fresher record when stale); the last result of every instance is kept in memory
//! and merged into reads ([`ProbeResults`]), and written to the store every [`SHARE`] for
//! the other replicas' reads and the next leader, which starts from them (while there are
//! other replicas).
//!
//! A set without a health probe has no probes: its running instances count as healthy, so
//! the load balancer serves them (Azure's load balancer without a probe does the same).
//! After a restart of the control plane the stored states are adopted and probing resumes.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use flotilla_domain::health::in_grace;
use flotilla_domain::scale_set::{HealthProbe, ProbeProtocol};
use flotilla_domain::{Event, HealthCounter, HealthState, Instance, PowerState, ProbeResult};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;

use crate::context::Context;
use crate::error::chain;
use crate::tasks::reconciler::driver::SetWaker;
use crate::tasks::{Control, Task};

/// How often every target is re-read from the store, whatever the events said.
const REFRESH: Duration = Duration::from_secs(10);
/// How often due probes are launched and state changes written.
const TICK: Duration = Duration::from_millis(100);
/// How often the results since the last time are written to the store, for the replicas
/// that do not probe (and the next leader) to show.
const SHARE: Duration = Duration::from_secs(2);
/// Probes in flight at once.
pub const MAX_IN_FLIGHT: usize = 1024;

/// Counters of the prober, for `/metrics` and the benchmark.
#[derive(Debug, Default)]
pub(crate) struct ProberCounters {
    probes: AtomicU64,
    targets: AtomicU64,
    /// The largest delay between a probe's due time and its start since the last read.
    max_lag_us: AtomicU64,
}

/// A reading of the prober's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProberStats {
    /// Probes finished since start.
    pub probes: u64,
    /// Instances being probed now.
    pub targets: u64,
    /// The largest delay between a probe's due time and its start since the previous
    /// reading: how far probing falls behind its schedule.
    pub max_lag: Duration,
}

impl ProberCounters {
    pub(crate) fn read(&self) -> ProberStats {
        ProberStats {
            probes: self.probes.load(Ordering::Relaxed),
            targets: self.targets.load(Ordering::Relaxed),
            max_lag: Duration::from_micros(self.max_lag_us.swap(0, Ordering::Relaxed)),
        }
    }
}

/// The last probe result of every probed instance, shared with readers.
#[derive(Debug, Default)]
pub(crate) struct ProbeResults(RwLock<HashMap<String, ProbeResult>>);

/// Sets `last_probe` on each instance from `results`.
pub(crate) fn merge_from(results: &HashMap<String, ProbeResult>, instances: &mut [Instance]) {
    for i in instances {
        i.last_probe = results.get(&i.id).cloned();
    }
}

impl ProbeResults {
    /// Sets `last_probe` on each instance from the latest results.
    pub(crate) fn merge(&self, instances: &mut [Instance]) {
        merge_from(&self.0.read().expect("probe results poisoned"), instances);
    }

    /// Takes the stored results of instances this process has none of (a new term starts
    /// from what the previous leader shared).
    fn adopt(&self, stored: Vec<(String, ProbeResult)>) {
        let mut results = self.0.write().expect("probe results poisoned");
        for (id, result) in stored {
            results.entry(id).or_insert(result);
        }
    }

    fn insert(&self, id: &str, result: ProbeResult) {
        self.0
            .write()
            .expect("probe results poisoned")
            .insert(id.to_string(), result);
    }

    fn remove(&self, ids: &[String]) {
        let mut results = self.0.write().expect("probe results poisoned");
        for id in ids {
            results.remove(id);
        }
    }
}

/// What the prober needs of a scale set.
#[derive(Debug, Clone)]
struct SetProbe {
    probe: Option<HealthProbe>,
}

struct Target {
    record: Instance,
    counter: HealthCounter,
    running_since: DateTime<Utc>,
    due: Instant,
    in_flight: bool,
}

/// The `prober` task: probes, and keeps the last result of every probed instance.
pub(crate) struct ProberTask {
    ctx: Context,
    results: Arc<ProbeResults>,
    counters: Arc<ProberCounters>,
    /// A set whose instances' health changed is reconciled at once (repairs, capacity).
    wake: SetWaker,
}

impl ProberTask {
    pub(crate) fn new(
        ctx: Context,
        results: Arc<ProbeResults>,
        counters: Arc<ProberCounters>,
        wake: SetWaker,
    ) -> Self {
        Self {
            ctx,
            results,
            counters,
            wake,
        }
    }
}

impl Task for ProberTask {
    fn name(&self) -> &'static str {
        "prober"
    }

    fn run(self: Arc<Self>, control: Control) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(run(self, control))
    }
}

/// The prober's working state while it runs (rebuilt from the store at each start).
struct Prober {
    task: Arc<ProberTask>,
    sets: HashMap<String, SetProbe>,
    targets: HashMap<String, Target>,
    /// Ids whose stored health differs from their counter's.
    dirty: HashSet<String>,
    /// Results not yet written to the store.
    unshared: HashMap<String, ProbeResult>,
    probes: JoinSet<(String, ProbeResult)>,
    limit: Arc<Semaphore>,
    tls: tokio_rustls::TlsConnector,
}

/// Runs the prober until told to stop; an activation re-reads every target.
async fn run(task: Arc<ProberTask>, control: Control) {
    let mut events = task.ctx.events.subscribe();
    let mut prober = Prober {
        task,
        sets: HashMap::new(),
        targets: HashMap::new(),
        dirty: HashSet::new(),
        unshared: HashMap::new(),
        probes: JoinSet::new(),
        limit: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        tls: insecure_tls(),
    };
    match prober.task.ctx.store.list_probe_results(None).await {
        Ok(stored) => prober.task.results.adopt(stored),
        Err(e) => {
            tracing::warn!(error = %chain(&e), "prober could not read the shared probe results")
        }
    }
    prober.refresh().await;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refresh = tokio::time::interval(REFRESH);
    refresh.reset();
    let mut share = tokio::time::interval(SHARE);
    share.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = control.stop().cancelled() => break,
            () = control.activated() => {
                control.activation(async { prober.refresh().await; Ok::<_, crate::Error>(prober.summary()) }).await;
            }
            event = events.recv() => match event {
                Ok(event) => prober.on_event(event),
                Err(RecvError::Lagged(_)) => prober.refresh().await,
                Err(RecvError::Closed) => break,
            },
            Some(done) = prober.probes.join_next(), if !prober.probes.is_empty() => {
                if let Ok((id, result)) = done {
                    prober.on_result(&id, result);
                }
            }
            _ = tick.tick() => {
                let launched = prober.launch_due();
                if launched > 0 || !prober.dirty.is_empty() {
                    let activation = control.begin();
                    let written = prober.flush().await.map(|written| format!(
                        "{launched} probe(s) launched, {written} health change(s) written"
                    ));
                    control.end(activation, &written);
                }
                control.doing(prober.summary());
            }
            _ = refresh.tick() => prober.refresh().await,
            _ = share.tick() => prober.share().await,
        }
    }
    prober.probes.abort_all();
}

impl Prober {
    fn now(&self) -> DateTime<Utc> {
        self.task.ctx.now()
    }

    /// Re-reads every set and instance.
    async fn refresh(&mut self) {
        let store = &self.task.ctx.store;
        let (sets, instances) = match (
            store.list_scale_sets().await,
            store.list_all_instances().await,
        ) {
            (Ok(s), Ok(i)) => (s, i),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %chain(&e), "prober could not read the fleet");
                return;
            }
        };
        self.sets = sets
            .iter()
            .map(|s| (s.name().to_string(), set_probe(&s.spec)))
            .collect();
        let present: HashSet<&str> = instances.iter().map(|i| i.id.as_str()).collect();
        let gone: Vec<String> = self
            .targets
            .keys()
            .filter(|id| !present.contains(id.as_str()))
            .cloned()
            .collect();
        self.forget(&gone);
        for i in instances {
            self.track(i);
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::InstanceChanged { instance } => self.track(*instance),
            Event::InstanceRemoved { id, .. } => self.forget(&[id]),
            Event::ScaleSetChanged { scale_set } => {
                let probe = set_probe(&scale_set.spec);
                let name = scale_set.name().to_string();
                self.sets.insert(name.clone(), probe);
                let ids: Vec<String> = self
                    .targets
                    .values()
                    .filter(|t| t.record.scale_set == name)
                    .map(|t| t.record.id.clone())
                    .collect();
                for id in ids {
                    if let Some(t) = self.targets.get(&id) {
                        let record = t.record.clone();
                        self.targets.remove(&id);
                        self.track(record);
                    }
                }
            }
            Event::ScaleSetRemoved { name } => {
                self.sets.remove(&name);
                let ids: Vec<String> = self
                    .targets
                    .values()
                    .filter(|t| t.record.scale_set == name)
                    .map(|t| t.record.id.clone())
                    .collect();
                self.forget(&ids);
            }
            Event::Activity { .. } | Event::RolloutChanged { .. } | Event::Lifecycle { .. } => {}
        }
    }

    fn forget(&mut self, ids: &[String]) {
        for id in ids {
            self.targets.remove(id);
            self.dirty.remove(id);
            self.unshared.remove(id);
        }
        self.task.results.remove(ids);
    }

    /// Starts, updates or stops probing one instance after its record changed.
    fn track(&mut self, record: Instance) {
        if let Some(t) = self.targets.get(&record.id)
            && record.generation < t.record.generation
        {
            return; // an older event arriving late
        }
        let Some(set) = self.sets.get(&record.scale_set).cloned() else {
            return;
        };
        // In service, or a warm pool member being prepared (found healthy once, it is
        // parked).
        let preparing = record.in_warm_pool() && record.warm.warm_prepared_at.is_none();
        let probed = record.power_state == PowerState::Running
            && (record.is_active() || preparing)
            && record.address.is_some();
        if !probed {
            self.targets.remove(&record.id);
            self.dirty.remove(&record.id);
            return;
        }
        let now = self.now();
        let restarted = matches!(
            record.health_state,
            HealthState::Initializing | HealthState::Unknown
        );
        let id = record.id.clone();
        match self.targets.get_mut(&id) {
            Some(t) => {
                if restarted && t.counter.state != HealthState::Initializing && set.probe.is_some()
                {
                    t.counter = HealthCounter::new(HealthState::Initializing);
                    t.running_since = record.health_changed_at.unwrap_or(now);
                }
                t.record = record;
            }
            None => {
                let state = match (&set.probe, record.health_state) {
                    (None, _) => HealthState::Healthy,
                    (Some(_), s @ (HealthState::Healthy | HealthState::Unhealthy)) => s,
                    (Some(_), _) => HealthState::Initializing,
                };
                let phase = set.probe.as_ref().map_or(Duration::ZERO, |p| {
                    phase_of(&id, Duration::from_secs(u64::from(p.interval_seconds)))
                });
                let target = Target {
                    running_since: record.health_changed_at.unwrap_or(now),
                    counter: HealthCounter::new(state),
                    due: Instant::now() + phase,
                    in_flight: false,
                    record,
                };
                self.targets.insert(id.clone(), target);
            }
        }
        let t = &self.targets[&id];
        if t.record.health_state != t.counter.state {
            self.dirty.insert(id);
        }
    }

    /// Launches every probe that is due; answers how many.
    fn launch_due(&mut self) -> usize {
        let now = Instant::now();
        let mut launched = 0;
        for t in self.targets.values_mut() {
            if t.in_flight || t.due > now {
                continue;
            }
            let Some(set) = self.sets.get(&t.record.scale_set) else {
                continue;
            };
            let Some(probe) = set.probe.clone() else {
                continue;
            };
            let Some(addr) = probe_address(&t.record) else {
                continue;
            };
            let interval = Duration::from_secs(u64::from(probe.interval_seconds));
            // Keep the phase; skip missed slots rather than bursting to catch up.
            while t.due <= now {
                t.due += interval;
            }
            t.in_flight = true;
            launched += 1;
            let id = t.record.id.clone();
            let limit = self.limit.clone();
            let tls = self.tls.clone();
            let task = self.task.clone();
            let due = t.due - interval;
            self.probes.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let lag = Instant::now().saturating_duration_since(due);
                let counters = &task.counters;
                counters
                    .max_lag_us
                    .fetch_max(lag.as_micros() as u64, Ordering::Relaxed);
                let result = probe_once(&probe, addr, &tls, task.ctx.now()).await;
                counters.probes.fetch_add(1, Ordering::Relaxed);
                (id, result)
            });
        }
        self.task
            .counters
            .targets
            .store(self.targets.len() as u64, Ordering::Relaxed);
        launched
    }

    fn summary(&self) -> String {
        format!("probing {} instance(s)", self.targets.len())
    }

    fn on_result(&mut self, id: &str, result: ProbeResult) {
        let now = self.now();
        let Some(t) = self.targets.get_mut(id) else {
            return;
        };
        t.in_flight = false;
        let probe = self
            .sets
            .get(&t.record.scale_set)
            .and_then(|s| s.probe.clone());
        if let Some(probe) = probe {
            let grace = in_grace(&probe, t.running_since, now);
            if t.counter.observe(result.success, &probe, grace).is_some() {
                self.dirty.insert(id.to_string());
            }
        }
        self.unshared.insert(id.to_string(), result.clone());
        self.task.results.insert(id, result);
    }

    /// Writes the results since the last time to the store (those of deleted instances
    /// are left out there) while other replicas may read them; a failed write drops them —
    /// the next results replace them. A lone replica (one SQLite process, say) writes
    /// nothing: no one would read them (at 10,000 instances the flush is a 10,000-row
    /// upsert every 2 s).
    async fn share(&mut self) {
        if self.unshared.is_empty() {
            return;
        }
        let store = &self.task.ctx.store;
        let others = match store.list_replicas().await {
            Ok(replicas) => replicas.len() > 1,
            Err(e) => {
                tracing::warn!(error = %chain(&e), "could not list the replicas");
                false
            }
        };
        if !others {
            self.unshared.clear();
            return;
        }
        let results: Vec<(String, ProbeResult)> = self.unshared.drain().collect();
        if let Err(e) = store.put_probe_results(&results).await {
            tracing::warn!(error = %chain(&e), "could not share probe results");
        }
    }

    /// Writes the health changes waiting, in one batch; answers how many were written.
    async fn flush(&mut self) -> crate::Result<usize> {
        if self.dirty.is_empty() {
            return Ok(0);
        }
        let now = self.now();
        let mut updates = Vec::new();
        for id in std::mem::take(&mut self.dirty) {
            let Some(t) = self.targets.get(&id) else {
                continue;
            };
            if t.record.health_state != t.counter.state {
                let mut next = t.record.clone();
                next.health_state = t.counter.state;
                next.health_changed_at = Some(now);
                next.updated_at = now;
                next.last_probe = None;
                updates.push(next);
            }
        }
        if updates.is_empty() {
            return Ok(0);
        }
        match self.task.ctx.store.update_instances(&updates).await {
            Ok(written) => {
                let count = written.written.len();
                let mut sets = HashSet::new();
                for mut i in written.written {
                    self.task.results.merge(std::slice::from_mut(&mut i));
                    tracing::debug!(instance = %i.id, health = %i.health_state, "health changed");
                    sets.insert(i.scale_set.clone());
                    if let Some(t) = self.targets.get_mut(&i.id) {
                        t.record = i.clone();
                    }
                    self.task.ctx.events.publish(Event::InstanceChanged {
                        instance: Box::new(i),
                    });
                }
                // Stale ones are retried on the fresher record its event brings.
                self.dirty.extend(written.stale);
                for set in sets {
                    self.task.wake.wake(&set);
                }
                Ok(count)
            }
            Err(e) => {
                self.dirty.extend(updates.into_iter().map(|i| i.id));
                Err(crate::Error::store("record health changes")(e))
            }
        }
    }
}

fn set_probe(spec: &flotilla_domain::ScaleSetSpec) -> SetProbe {
    SetProbe {
        probe: spec.health_probe.clone(),
    }
}

/// A stable phase in `[0, interval)` for the instance, so probes spread evenly.
fn phase_of(id: &str, interval: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    let millis = interval.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % millis)
}

/// Where to probe: the instance's address, where the backend forwards its app port — the
/// only port a probe may name. (The address is the *host's* with a forwarded port: any
/// other port there would be one of the host's own services, never the instance's. A set
/// stored before that was refused still probes its app port; see `Fleet::start`.)
fn probe_address(record: &Instance) -> Option<SocketAddr> {
    record.address.as_deref()?.parse().ok()
}

/// Probes once: a TCP connect, or a `GET` of the path whose status must be 2xx.
pub async fn probe_once(
    probe: &HealthProbe,
    addr: SocketAddr,
    tls: &tokio_rustls::TlsConnector,
    at: DateTime<Utc>,
) -> ProbeResult {
    let timeout = Duration::from_secs(u64::from(probe.timeout_seconds));
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, attempt(probe, addr, tls)).await;
    let (success, detail) = match outcome {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => (false, e.to_string()),
        Err(_) => (
            false,
            format!("timed out after {} s", probe.timeout_seconds),
        ),
    };
    ProbeResult {
        at,
        success,
        latency_us: started.elapsed().as_micros() as u64,
        detail,
    }
}

async fn attempt(
    probe: &HealthProbe,
    addr: SocketAddr,
    tls: &tokio_rustls::TlsConnector,
) -> std::io::Result<(bool, String)> {
    let stream = TcpStream::connect(addr).await?;
    match probe.protocol {
        ProbeProtocol::Tcp => Ok((true, "connected".into())),
        ProbeProtocol::Http => http_get(stream, addr, &probe.path).await,
        ProbeProtocol::Https => {
            let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
            let stream = tls.connect(name, stream).await?;
            http_get(stream, addr, &probe.path).await
        }
    }
}

/// Sends one `GET` and reads the status line.
async fn http_get<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    addr: SocketAddr,
    path: &str,
) -> std::io::Result<(bool, String)> {
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: flotilla-probe\r\nConnection: close\r\n\r\n"
    );
    Ok(match send(stream, &head, b"").await? {
        Some((code, reason)) => (
            (200..300).contains(&code),
            format!("{code} {reason}").trim().to_string(),
        ),
        None => (false, "not an HTTP answer".into()),
    })
}

/// Writes a request (`head` ends with the blank line) and its body, and reads the answer's
/// status line: its code and reason (`None`: not HTTP).
pub(crate) async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    head: &str,
    body: &[u8],
) -> std::io::Result<Option<(u16, String)>> {
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 4096 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let line = line.lines().next().unwrap_or("");
    let mut parts = line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    Ok(match code.parse::<u16>() {
        Ok(code) if version.starts_with("HTTP/") => {
            Some((code, parts.next().unwrap_or("").trim().to_string()))
        }
        _ => None,
    })
}

/// Probes check health, not identity: like Azure's, they accept any certificate.
fn insecure_tls() -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn probe(protocol: ProbeProtocol) -> HealthProbe {
        HealthProbe {
            protocol,
            port: 80,
            path: "/health".into(),
            interval_seconds: 5,
            timeout_seconds: 1,
            healthy_threshold: 1,
            unhealthy_threshold: 2,
            grace_period_seconds: 0,
        }
    }

    /// A server answering every connection with `answer`, or never when `None`.
    async fn server(answer: Option<&'static str>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    match answer {
                        Some(a) => {
                            let _ = s.write_all(a.as_bytes()).await;
                        }
                        None => tokio::time::sleep(Duration::from_secs(10)).await,
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn http_probe_reads_the_status() {
        let tls = insecure_tls();
        let now = Utc::now();
        let ok = server(Some("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")).await;
        let r = probe_once(&probe(ProbeProtocol::Http), ok, &tls, now).await;
        assert!(r.success, "{r:?}");
        assert_eq!(r.detail, "200 OK");
        let bad = server(Some("HTTP/1.1 503 Service Unavailable\r\n\r\n")).await;
        let r = probe_once(&probe(ProbeProtocol::Http), bad, &tls, now).await;
        assert!(!r.success);
        assert_eq!(r.detail, "503 Service Unavailable");
        let garbage = server(Some("SSH-2.0-OpenSSH\r\n")).await;
        let r = probe_once(&probe(ProbeProtocol::Http), garbage, &tls, now).await;
        assert_eq!(
            (r.success, r.detail.as_str()),
            (false, "not an HTTP answer")
        );
        let hang = server(None).await;
        let r = probe_once(&probe(ProbeProtocol::Http), hang, &tls, now).await;
        assert_eq!(
            (r.success, r.detail.as_str()),
            (false, "timed out after 1 s")
        );
        assert!(r.latency_us >= 1_000_000);
        let r = probe_once(&probe(ProbeProtocol::Tcp), hang, &tls, now).await;
        assert_eq!((r.success, r.detail.as_str()), (true, "connected"));
    }

    #[tokio::test]
    async fn refused_connection_fails() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let r = probe_once(
            &probe(ProbeProtocol::Tcp),
            addr,
            &insecure_tls(),
            Utc::now(),
        )
        .await;
        assert!(!r.success);
        assert!(r.detail.contains("refused"), "{}", r.detail);
    }

    #[tokio::test]
    async fn https_probe_accepts_a_self_signed_certificate() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = tls.read(&mut buf).await;
            let _ = tls.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
            let _ = tls.shutdown().await;
        });
        let r = probe_once(
            &probe(ProbeProtocol::Https),
            addr,
            &insecure_tls(),
            Utc::now(),
        )
        .await;
        assert_eq!(
            (r.success, r.detail.as_str()),
            (true, "204 No Content"),
            "{r:?}"
        );
    }

    #[test]
    fn phases_spread_over_the_interval() {
        let interval = Duration::from_secs(5);
        let mut buckets = [0u32; 5];
        for i in 0..10_000 {
            let p = phase_of(&format!("web_{i}"), interval);
            assert!(p < interval);
            buckets[p.as_secs() as usize] += 1;
        }
        for b in buckets {
            assert!((1_800..2_200).contains(&b), "{buckets:?}");
        }
    }
}
