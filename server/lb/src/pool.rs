//! Pools of members and selection.
//!
//! A [`Pool`] holds an immutable snapshot (`Arc<[Arc<Backend>]>`) swapped whole by
//! `set_pool`; a request reads it once (one uncontended read lock) and keeps it for its
//! retries, so a concurrent `set_pool` never changes the list under it. A [`Backend`] is
//! kept across `set_pool` calls while its id and address stay the same, so its counters
//! and idle connections survive. Members that leave are *retired*: they get nothing new,
//! their in-flight work finishes, and they are forgotten once idle.
//!
//! Invariant used by `drain`: a request increments `active` and *then* re-checks that the
//! member is still serving (both `SeqCst`), while `drain` sets `draining` and then reads
//! `active`; so once `drain` sees zero, no request can start on that member. The same
//! increment enforces a frontend's `max_connections_per_member` exactly: the value it
//! returns is the work already in flight, and a request that finds the cap reached backs
//! out (selection skips members at their cap, so that is only a race's loser).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::config::{Algorithm, Member};
use crate::stats::{BackendCounters, BackendStats};
use crate::upstream::ConnPool;

/// One member of one pool.
pub(crate) struct Backend {
    pub id: String,
    pub addr: SocketAddr,
    id_hash: u64,
    enabled: AtomicBool,
    draining: AtomicBool,
    removed: AtomicBool,
    /// Requests or TCP connections in flight.
    pub active: AtomicU64,
    pub counters: BackendCounters,
    /// Idle keep-alive HTTP/1.1 connections to this member.
    pub conns: ConnPool,
    last_warn_ms: AtomicU64,
}

impl Backend {
    fn new(m: &Member, draining: bool) -> Self {
        Self {
            id: m.id.clone(),
            addr: m.addr,
            id_hash: hash_bytes(FNV_OFFSET, m.id.as_bytes()),
            enabled: AtomicBool::new(m.enabled),
            draining: AtomicBool::new(draining),
            removed: AtomicBool::new(false),
            active: AtomicU64::new(0),
            counters: BackendCounters::default(),
            conns: ConnPool::default(),
            last_warn_ms: AtomicU64::new(0),
        }
    }

    /// Eligible for new requests.
    pub fn serving(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
            && !self.draining.load(Ordering::SeqCst)
            && !self.removed.load(Ordering::SeqCst)
    }

    /// May idle connections be kept for later requests?
    pub fn keeps_connections(&self) -> bool {
        !self.draining.load(Ordering::Relaxed) && !self.removed.load(Ordering::Relaxed)
    }

    fn state(&self) -> &'static str {
        if self.removed.load(Ordering::Relaxed) {
            "removed"
        } else if self.draining.load(Ordering::Relaxed) {
            "draining"
        } else if !self.enabled.load(Ordering::Relaxed) {
            "disabled"
        } else {
            "serving"
        }
    }

    fn set_draining(&self, draining: bool) {
        self.draining.store(draining, Ordering::SeqCst);
        if draining {
            self.conns.clear();
        }
    }

    /// Counts a failure and logs it: at `warn` at most every 10 s per member, else `debug`.
    pub fn failure(&self, what: &str, error: &dyn std::fmt::Display) {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        let now = epoch_ms();
        let last = self.last_warn_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 10_000
            && self
                .last_warn_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(backend = %self.id, addr = %self.addr, "{what}: {error}");
        } else {
            tracing::debug!(backend = %self.id, addr = %self.addr, "{what}: {error}");
        }
    }

    pub fn stats(&self, pool: &str) -> BackendStats {
        let c = &self.counters;
        BackendStats {
            pool: pool.to_owned(),
            id: self.id.clone(),
            addr: self.addr.to_string(),
            state: self.state().to_string(),
            requests: c.requests.load(Ordering::Relaxed),
            responses: c.responses.snapshot(),
            failures: c.failures.load(Ordering::Relaxed),
            bytes_in: c.bytes_in.load(Ordering::Relaxed),
            bytes_out: c.bytes_out.load(Ordering::Relaxed),
            active: self.active.load(Ordering::Relaxed),
            latency: c.latency.snapshot(),
        }
    }
}

fn epoch_ms() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 10_000
}

/// One request or TCP connection in flight on a member; dropping it ends it.
pub(crate) struct ActiveGuard(Arc<Backend>);

impl ActiveGuard {
    /// Starts work on `backend` unless it stopped serving since it was selected, or already
    /// has `cap` in flight.
    pub fn acquire(backend: &Arc<Backend>, cap: Option<u32>) -> Option<Self> {
        let before = backend.active.fetch_add(1, Ordering::SeqCst);
        let guard = Self(backend.clone());
        (backend.serving() && cap.is_none_or(|cap| before < u64::from(cap))).then_some(guard)
    }

    pub fn backend(&self) -> &Arc<Backend> {
        &self.0
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Indices of the snapshot already tried by one request; no allocation below 64 members.
#[derive(Default)]
pub(crate) struct Tried {
    mask: u64,
    more: Vec<usize>,
}

impl Tried {
    pub fn insert(&mut self, i: usize) {
        if i < 64 {
            self.mask |= 1 << i;
        } else {
            self.more.push(i);
        }
    }

    pub fn contains(&self, i: usize) -> bool {
        if i < 64 {
            self.mask & (1 << i) != 0
        } else {
            self.more.contains(&i)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.mask == 0 && self.more.is_empty()
    }
}

pub(crate) type Members = Arc<[Arc<Backend>]>;

pub(crate) struct Pool {
    pub name: String,
    members: RwLock<Members>,
    retired: Mutex<Vec<Arc<Backend>>>,
    rr: AtomicUsize,
}

impl Pool {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            members: RwLock::new(Arc::from(Vec::new())),
            retired: Mutex::new(Vec::new()),
            rr: AtomicUsize::new(0),
        }
    }

    pub fn snapshot(&self) -> Members {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Picks a serving member not yet tried and below `cap`; `None` when there is none.
    pub fn select(
        &self,
        members: &[Arc<Backend>],
        algorithm: Algorithm,
        client: IpAddr,
        tried: &Tried,
        cap: Option<u32>,
    ) -> Option<usize> {
        let n = members.len();
        if n == 0 {
            return None;
        }
        // Without a cap, `active` (written by every request) is not read here.
        let eligible = |i: usize| {
            !tried.contains(i)
                && members[i].serving()
                && cap.is_none_or(|cap| members[i].active.load(Ordering::Relaxed) < u64::from(cap))
        };
        match algorithm {
            Algorithm::RoundRobin => {
                let start = self.rr.fetch_add(1, Ordering::Relaxed);
                (0..n).map(|k| (start + k) % n).find(|&i| eligible(i))
            }
            Algorithm::LeastConnections => {
                let start = self.rr.fetch_add(1, Ordering::Relaxed);
                let mut best: Option<(usize, u64)> = None;
                for i in (0..n).map(|k| (start + k) % n).filter(|&i| eligible(i)) {
                    let active = members[i].active.load(Ordering::Relaxed);
                    if best.is_none_or(|(_, a)| active < a) {
                        best = Some((i, active));
                    }
                }
                best.map(|(i, _)| i)
            }
            Algorithm::IpHash => {
                let key = ip_hash(client);
                (0..n)
                    .filter(|&i| eligible(i))
                    .max_by_key(|&i| (hrw_score(key, members[i].id_hash), std::cmp::Reverse(i)))
            }
        }
    }

    /// Current members, then retired ones still busy.
    pub fn all_backends(&self) -> Vec<Arc<Backend>> {
        let mut all = self.snapshot().to_vec();
        let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        retired.retain(|b| b.active.load(Ordering::Relaxed) > 0);
        all.extend(retired.iter().cloned());
        all
    }
}

/// Every pool by name, plus the ids marked drained.
#[derive(Default)]
pub(crate) struct Pools {
    pools: RwLock<HashMap<String, Arc<Pool>>>,
    /// Ids excluded by `drain` until `undrain`, or until a `set_pool` leaves them in no pool.
    drained: Mutex<HashSet<String>>,
}

impl Pools {
    pub fn get_or_create(&self, name: &str) -> Arc<Pool> {
        if let Some(p) = self
            .pools
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return p.clone();
        }
        let mut pools = self.pools.write().unwrap_or_else(|e| e.into_inner());
        pools
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(Pool::new(name)))
            .clone()
    }

    pub fn all(&self) -> Vec<Arc<Pool>> {
        let mut v: Vec<_> = self
            .pools
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn set(&self, name: &str, members: Vec<Member>) {
        // Held throughout so that drain marks and pool contents change together.
        let mut drained = self.drained.lock().unwrap_or_else(|e| e.into_inner());
        let pool = self.get_or_create(name);
        let old = pool.snapshot();
        let by_key: HashMap<(&str, SocketAddr), &Arc<Backend>> =
            old.iter().map(|b| ((b.id.as_str(), b.addr), b)).collect();
        let mut seen = HashSet::new();
        let mut next: Vec<Arc<Backend>> = Vec::with_capacity(members.len());
        for m in &members {
            if !seen.insert(m.id.as_str()) {
                continue; // a duplicate id: the first entry wins
            }
            match by_key.get(&(m.id.as_str(), m.addr)) {
                Some(b) => {
                    b.enabled.store(m.enabled, Ordering::SeqCst);
                    next.push(Arc::clone(b));
                }
                None => next.push(Arc::new(Backend::new(m, drained.contains(&m.id)))),
            }
        }
        let gone: Vec<Arc<Backend>> = old
            .iter()
            .filter(|b| !next.iter().any(|n| Arc::ptr_eq(n, b)))
            .cloned()
            .collect();
        for b in &gone {
            b.removed.store(true, Ordering::SeqCst);
            b.conns.clear();
        }
        *pool.members.write().unwrap_or_else(|e| e.into_inner()) = Arc::from(next);
        {
            let mut retired = pool.retired.lock().unwrap_or_else(|e| e.into_inner());
            retired.extend(gone);
            retired.retain(|b| b.active.load(Ordering::Relaxed) > 0);
        }
        if !drained.is_empty() {
            let present: HashSet<String> = self
                .all()
                .iter()
                .flat_map(|p| {
                    p.snapshot()
                        .iter()
                        .map(|b| b.id.clone())
                        .collect::<Vec<_>>()
                })
                .collect();
            drained.retain(|id| present.contains(id));
        }
    }

    /// Every backend object with this id, current or retired, in every pool.
    fn with_id(&self, id: &str) -> Vec<Arc<Backend>> {
        self.all()
            .iter()
            .flat_map(|p| p.all_backends())
            .filter(|b| b.id == id)
            .collect()
    }

    pub fn mark_drained(&self, id: &str, draining: bool) -> Vec<Arc<Backend>> {
        let mut drained = self.drained.lock().unwrap_or_else(|e| e.into_inner());
        if draining {
            drained.insert(id.to_owned());
        } else {
            drained.remove(id);
        }
        let backends = self.with_id(id);
        for b in &backends {
            b.set_draining(draining);
        }
        backends
    }

    pub fn clear_idle_connections(&self) {
        for p in self.all() {
            for b in p.all_backends() {
                b.conns.clear();
            }
        }
    }
}

/// Waits until none of `backends` has work in flight, or `timeout`.
pub(crate) async fn wait_idle(backends: &[Arc<Backend>], timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if backends
            .iter()
            .all(|b| b.active.load(Ordering::SeqCst) == 0)
        {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5).min(timeout)).await;
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn hash_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// splitmix64's finalizer: a bijection with full avalanche.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn ip_hash(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => hash_bytes(FNV_OFFSET, &v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => hash_bytes(FNV_OFFSET, &v4.octets()),
            None => hash_bytes(FNV_OFFSET, &v6.octets()),
        },
    }
}

/// Rendezvous score of (client, member): the member with the highest score wins, so
/// removing a member only moves the clients that scored highest on it.
fn hrw_score(ip_hash: u64, id_hash: u64) -> u64 {
    mix(ip_hash ^ mix(id_hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn members(ids: &[&str]) -> Vec<Member> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| Member::new(*id, SocketAddr::from(([10, 0, 0, i as u8 + 1], 80))))
            .collect()
    }

    fn pick(p: &Pool, algorithm: Algorithm, ip: IpAddr) -> String {
        let m = p.snapshot();
        let i = p
            .select(&m, algorithm, ip, &Tried::default(), None)
            .unwrap();
        m[i].id.clone()
    }

    fn client(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n * 7919))
    }

    #[test]
    fn round_robin_cycles_and_skips_excluded() {
        let pools = Pools::default();
        pools.set("web", members(&["a", "b", "c"]));
        let p = pools.get_or_create("web");
        let ip = client(1);
        let got: Vec<_> = (0..6)
            .map(|_| pick(&p, Algorithm::RoundRobin, ip))
            .collect();
        assert_eq!(got, ["a", "b", "c", "a", "b", "c"]);
        let mut m = members(&["a", "b", "c"]);
        m[1].enabled = false;
        pools.set("web", m);
        pools.mark_drained("c", true);
        assert!((0..5).all(|_| pick(&p, Algorithm::RoundRobin, ip) == "a"));
        pools.mark_drained("a", true);
        let snap = p.snapshot();
        assert_eq!(
            p.select(&snap, Algorithm::RoundRobin, ip, &Tried::default(), None),
            None
        );
    }

    #[test]
    fn least_connections_prefers_idle_and_rotates_ties() {
        let pools = Pools::default();
        pools.set("web", members(&["a", "b", "c"]));
        let p = pools.get_or_create("web");
        let snap = p.snapshot();
        snap[0].active.store(3, Ordering::Relaxed);
        snap[2].active.store(1, Ordering::Relaxed);
        assert!((0..5).all(|_| pick(&p, Algorithm::LeastConnections, client(1)) == "b"));
        snap[0].active.store(0, Ordering::Relaxed);
        snap[2].active.store(0, Ordering::Relaxed);
        let got: HashSet<_> = (0..3)
            .map(|_| pick(&p, Algorithm::LeastConnections, client(1)))
            .collect();
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn ip_hash_is_sticky_spread_and_minimally_disruptive() {
        let pools = Pools::default();
        let ids = ["i-1", "i-2", "i-3", "i-4", "i-5"];
        pools.set("web", members(&ids));
        let p = pools.get_or_create("web");
        let before: Vec<String> = (0..2000)
            .map(|n| pick(&p, Algorithm::IpHash, client(n)))
            .collect();
        // Sticky.
        for n in 0..50 {
            assert_eq!(pick(&p, Algorithm::IpHash, client(n)), before[n as usize]);
        }
        // Spread: each member gets a fair share (400 expected).
        for id in ids {
            let share = before.iter().filter(|m| *m == id).count();
            assert!((250..550).contains(&share), "{id} got {share}");
        }
        // Removing i-3 moves only its clients; re-adding it restores the old mapping.
        pools.set("web", members(&["i-1", "i-2", "i-4", "i-5"]));
        for n in 0..2000 {
            let now = pick(&p, Algorithm::IpHash, client(n));
            if before[n as usize] != "i-3" {
                assert_eq!(now, before[n as usize], "client {n} moved");
            } else {
                assert_ne!(now, "i-3");
            }
        }
        pools.set("web", members(&ids));
        let after: Vec<String> = (0..2000)
            .map(|n| pick(&p, Algorithm::IpHash, client(n)))
            .collect();
        assert_eq!(after, before);
    }

    #[test]
    fn retries_skip_tried_members() {
        let pools = Pools::default();
        pools.set("web", members(&["a", "b"]));
        let p = pools.get_or_create("web");
        let snap = p.snapshot();
        let mut tried = Tried::default();
        for algorithm in [
            Algorithm::RoundRobin,
            Algorithm::LeastConnections,
            Algorithm::IpHash,
        ] {
            tried.insert(0);
            assert_eq!(p.select(&snap, algorithm, client(3), &tried, None), Some(1));
            tried.insert(1);
            assert_eq!(p.select(&snap, algorithm, client(3), &tried, None), None);
            tried = Tried::default();
        }
    }

    #[test]
    fn members_at_their_cap_are_skipped_and_refused() {
        let pools = Pools::default();
        pools.set("web", members(&["a", "b"]));
        let p = pools.get_or_create("web");
        let snap = p.snapshot();
        let none = Tried::default();
        let a1 = ActiveGuard::acquire(&snap[0], Some(2)).unwrap();
        let _a2 = ActiveGuard::acquire(&snap[0], Some(2)).unwrap();
        // At its cap: never selected, and a racing acquire backs out.
        for algorithm in [
            Algorithm::RoundRobin,
            Algorithm::LeastConnections,
            Algorithm::IpHash,
        ] {
            for n in 0..4 {
                assert_eq!(
                    p.select(&snap, algorithm, client(n), &none, Some(2)),
                    Some(1)
                );
            }
        }
        assert!(ActiveGuard::acquire(&snap[0], Some(2)).is_none());
        assert_eq!(snap[0].active.load(Ordering::SeqCst), 2);
        // No cap, or room again.
        assert!(ActiveGuard::acquire(&snap[0], None).is_some());
        drop(a1);
        assert!(ActiveGuard::acquire(&snap[0], Some(2)).is_some());
        // Both at a cap of one.
        let _b = ActiveGuard::acquire(&snap[1], Some(1)).unwrap();
        assert_eq!(
            p.select(&snap, Algorithm::RoundRobin, client(0), &none, Some(1)),
            None
        );
    }

    #[test]
    fn set_pool_keeps_backends_and_drain_marks_follow_ids() {
        let pools = Pools::default();
        pools.set("web", members(&["a", "b"]));
        let p = pools.get_or_create("web");
        let a = p.snapshot()[0].clone();
        pools.mark_drained("a", true);
        // Still listed: same object, still draining.
        pools.set("web", members(&["a", "b"]));
        assert!(Arc::ptr_eq(&p.snapshot()[0], &a));
        assert_eq!(a.state(), "draining");
        // Busy and removed: retired but reported.
        a.active.store(1, Ordering::Relaxed);
        pools.set("web", members(&["b"]));
        assert_eq!(a.state(), "removed");
        assert_eq!(p.all_backends().len(), 2);
        a.active.store(0, Ordering::Relaxed);
        assert_eq!(p.all_backends().len(), 1);
        // Absent from every pool clears the drain mark: a returning "a" serves.
        pools.set("web", members(&["a", "b"]));
        assert_eq!(p.snapshot()[0].state(), "serving");
        // undrain clears it too.
        pools.mark_drained("b", true);
        pools.set("web", members(&["a", "b"]));
        assert_eq!(p.snapshot()[1].state(), "draining");
        pools.mark_drained("b", false);
        assert_eq!(p.snapshot()[1].state(), "serving");
    }
}
