//! # flotilla-lb
//!
//! Flotilla's load balancer: frontends (HTTP, HTTPS with TLS termination, raw TCP) that
//! spread traffic over live pools of instances. The control plane drives it through
//! [`LoadBalancer`]: it upserts frontends, replaces pool members as instances come and go,
//! drains members before deleting them, and reads [`FrontendStats`] / Prometheus text.
//!
//! Layout: `config.rs` (what the control plane hands in), `pool.rs` (members, selection,
//! caps, drain marks), `upstream.rs` (upstream connections and their per-member
//! keep-alive pools), `request.rs` (pure: what a client's request must be to be
//! forwarded — framing, path normalisation), `client.rs` (the minimal HTTP/1.1 client to
//! members: request head writing, response parsing with `httparse`, pure body decoding),
//! `http.rs` (L7 proxy), `tcp.rs` (L4 proxy), `stall.rs` (write and read stall timeouts),
//! `tls.rs`, `frontend.rs` (listeners, connection limit, connection tasks, live
//! reconfiguration), `stats.rs` (atomic counters, snapshots, Prometheus), and, for tests
//! only, `fuzz.rs` (bounded property tests of the parsers, in place of a fuzzer).
//!
//! Invariants:
//! - A pool is named after a scale set and is shared by every frontend routing to it; a
//!   member is identified by its id, and its counters live as long as its (id, address).
//! - Nothing on the request path takes a global lock: counters are relaxed atomics, the
//!   member list is an immutable snapshot behind a per-pool read lock, and idle upstream
//!   connections sit in a short per-member mutex.
//! - An upstream connection belongs to one request at a time and is driven by that
//!   request's task (no task or channel per connection). It returns to its member's idle
//!   pool only when the response was read to its end, nothing unread is left on it, and
//!   it is reusable (HTTP/1.1, no `Connection: close`, unambiguous framing, a delimited
//!   body, the whole request sent); otherwise it is closed. Idle connections are checked
//!   (socket readiness) when taken, not watched, and dropped if the member sent anything.
//! - A member gets new work only while *serving*: enabled, not drained, still listed — and
//!   below the frontend's `max_connections_per_member`. Work already in flight always
//!   finishes; `drain` observes it through `active`.
//! - Drain marks follow ids: a drained id stays out (in every pool, across `set_pool`
//!   calls that keep listing it) until [`LoadBalancer::undrain`], or until a `set_pool`
//!   leaves it in no pool at all — an id that comes back after that is a new instance and
//!   serves.
//! - Reconfiguring a frontend never drops its connections when the address is unchanged;
//!   a failed reconfiguration changes nothing.
//! - Every task is owned: connection tasks by their listener's tracker, background drains
//!   by the load balancer's; [`LoadBalancer::shutdown`] ends them all within the drain
//!   timeouts and closes idle upstream connections.
//!
//! Request smuggling (RFC 9112 §6, §7.6.1): a member parses exactly the requests clients
//! framed, and each answer goes to the request it answers.
//! - The body's framing towards the member is derived from the body hyper parsed
//!   (`Content-Length` when its length is known, else chunked); the client's own
//!   `Content-Length` and `Transfer-Encoding` are never copied, and no `Connection` option
//!   can remove `Host` or a framing header.
//! - Refused with 400 (and the connection closed): any `Transfer-Encoding` but a single
//!   `chunked` (repeated, other codings, `chunked` not last, on HTTP/1.0), a
//!   `Content-Length` that is repeated with differing values, a list, signed, not decimal
//!   or overflowing, a declared length that differs from the body, malformed header lines
//!   (whitespace before the colon, obsolete folding), a repeated `Host`. Most are refused by
//!   hyper while it parses; the rest by `request.rs`.
//! - Both `Content-Length` and `Transfer-Encoding`: hyper reads the body chunked and drops
//!   the length before the proxy sees the request, so it is forwarded once, chunked, and
//!   the client connection is closed after the answer (the other option RFC 9112 §6.3
//!   allows); bytes behind the body are never read as a request. Two identical
//!   `Content-Length` lines are likewise merged by hyper and the request forwarded.
//! - Responses: differing or invalid lengths are a 502; `Transfer-Encoding` with
//!   `Content-Length`, or repeated, is read by its last coding and ends the connection.
//!
//! Paths: rules match, and members receive, the normalised path: percent-encoded
//! unreserved characters decoded, dot-segments resolved (`/public/../api` is `/api`),
//! repeated slashes merged (`//api` is `/api`). An encoded `/` or `\` (`%2F`, `%5C`), a
//! raw `\`, a malformed escape or a dot-segment with parameters (`/..;/`) is refused with
//! 400, so `/public/..%2Fapi` neither bypasses nor reaches a rule for `/api`. Rule
//! prefixes are normalised the same way. The query is forwarded untouched.
//!
//! Limits ([`Limits`], [`Timeouts`]; every one on by default except the member cap):
//! - `max_connections` per frontend: at the limit the listener stops accepting and new
//!   connections wait in the kernel's backlog. `max_connections_per_member`: members at
//!   the cap are skipped; when every member is, 503 at once (L7) or the connection closes
//!   (L4) — no queue.
//! - Request heads up to `max_header_bytes` (431 beyond; HTTP/2: the header list), HTTP/2
//!   streams per connection up to `http2_max_concurrent_streams`, reset floods bounded.
//! - Stalls: a client that takes none of its response for `timeouts.write` (HTTP/1.1, and
//!   the TLS layer of HTTP/2 connections), a member silent mid-body for
//!   `timeouts.body_read`, an L4 peer not reading for `timeouts.write`, and an L4
//!   connection with no byte either way for `timeouts.tcp_idle` are cut off.
//! - Refusals are counted in Prometheus (`flotilla_lb_frontend_refused_requests_total`,
//!   `…_member_cap_refusals_total`, `…_connection_limit_waits_total`).
//!
//! Not supported: WebSocket/`Upgrade` (hop-by-hop headers are stripped), HTTP/2 to
//! members, h2c (cleartext HTTP/2) from clients, health checks (the control plane sets
//! `enabled`), trailers of request bodies (response trailers are forwarded), full duplex
//! (a member answering before it read the whole request body gets no more of it, and its
//! connection is closed after the response), transfer codings other than chunked in
//! requests. Over HTTP/2, a client that keeps its connection alive but never opens a
//! stream's flow-control window is not cut off (flow control stops the writes a write
//! timeout would see); it holds at most `http2_max_concurrent_streams` requests.
#![forbid(unsafe_code)]

mod client;
mod config;
mod error;
mod frontend;
#[cfg(test)]
mod fuzz;
mod http;
mod pool;
mod request;
mod stall;
mod stats;
mod tcp;
mod tls;
mod upstream;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use config::{Algorithm, FrontendConfig, Limits, Member, PathRule, Protocol, Timeouts};
pub use error::LbError;
pub use stats::{BackendStats, FrontendStats, Histogram, StatusClasses};
pub use tls::validate_tls;

use frontend::{Frontend, FrontendState, Shared};

type Key = (String, String);

/// The load balancer. Cheap to clone; every clone drives the same frontends and pools.
/// Must be used inside a Tokio runtime (multi-threaded for throughput).
#[derive(Clone)]
pub struct LoadBalancer {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    frontends: Mutex<BTreeMap<Key, Arc<Frontend>>>,
}

impl Default for LoadBalancer {
    fn default() -> Self {
        Self::new()
    }
}

impl LoadBalancer {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared::default()),
                frontends: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    fn frontends_map(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Arc<Frontend>>> {
        self.inner
            .frontends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a frontend, or reconfigures the one with the same `(scale_set, name)`.
    ///
    /// Same listen address: the listener and its connections stay; algorithm, rules,
    /// timeouts, protocol and certificate apply to new requests and connections. A
    /// different address: the new one is bound first (on error the old one keeps
    /// running), then the old listener drains in the background (up to its drain timeout).
    ///
    /// # Errors
    /// [`LbError::Bind`] when the address cannot be bound, [`LbError::Tls`] for an unusable
    /// certificate or key; nothing changes then.
    pub async fn upsert_frontend(&self, config: FrontendConfig) -> Result<(), LbError> {
        let tls = match &config.protocol {
            Protocol::Https {
                certificate_pem,
                private_key_pem,
            } => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
                certificate_pem,
                private_key_pem,
            )?)),
            Protocol::Http | Protocol::Tcp => None,
        };
        let key = (config.scale_set.clone(), config.name.clone());
        let state = FrontendState::new(config, tls, &self.inner.shared.pools);
        let mut map = self.frontends_map();
        match map.get(&key) {
            Some(fe) => fe.reconfigure(state),
            None => {
                let fe = Frontend::start(state, self.inner.shared.clone())?;
                map.insert(key, Arc::new(fe));
                Ok(())
            }
        }
    }

    /// Stops listening; in-flight work finishes up to the frontend's drain timeout.
    pub async fn remove_frontend(&self, scale_set: &str, name: &str) {
        let fe = self
            .frontends_map()
            .remove(&(scale_set.to_owned(), name.to_owned()));
        if let Some(fe) = fe {
            fe.stop().await;
        }
    }

    /// Keys `(scale_set, name)` of running frontends, sorted.
    pub fn frontends(&self) -> Vec<(String, String)> {
        self.frontends_map().keys().cloned().collect()
    }

    /// The address a frontend actually listens on (useful after binding port 0).
    pub fn local_addr(&self, scale_set: &str, name: &str) -> Option<SocketAddr> {
        let fe = self
            .frontends_map()
            .get(&(scale_set.to_owned(), name.to_owned()))
            .cloned();
        fe.and_then(|fe| fe.local_addr())
    }

    /// Replaces the members of pool `pool` (created if unknown). Members that stay (same
    /// id and address) keep their connections and counters; members no longer listed get
    /// nothing new and their in-flight work finishes. The first entry wins for a
    /// duplicate id.
    pub fn set_pool(&self, pool: &str, members: Vec<Member>) {
        self.inner.shared.pools.set(pool, members);
    }

    /// Stops new work to member `id` in every pool and waits until it has no request or
    /// TCP connection in flight (`true`), or until `timeout` (`false`). The id stays
    /// excluded until [`undrain`](Self::undrain), or until a `set_pool` leaves it in no
    /// pool (see the crate invariants). Idle keep-alive connections to it are closed.
    pub async fn drain(&self, id: &str, timeout: Duration) -> bool {
        let backends = self.inner.shared.pools.mark_drained(id, true);
        pool::wait_idle(&backends, timeout).await
    }

    /// Whether member `id` gets new work in some pool: listed, enabled and not drained.
    pub fn serves(&self, id: &str) -> bool {
        self.inner
            .shared
            .pools
            .all()
            .iter()
            .any(|p| p.snapshot().iter().any(|b| b.id == id && b.serving()))
    }

    /// Lets a drained member serve again (where it is listed and enabled).
    pub fn undrain(&self, id: &str) {
        self.inner.shared.pools.mark_drained(id, false);
    }

    /// One entry per frontend, sorted by `(scale_set, name)`.
    pub fn stats(&self) -> Vec<FrontendStats> {
        let frontends: Vec<Arc<Frontend>> = self.frontends_map().values().cloned().collect();
        frontends.iter().map(|f| f.stats()).collect()
    }

    /// Appends the Prometheus text exposition of every frontend and, with `members`, of
    /// every pool member (some thirty series each: a big fleet's scrape is mostly those).
    pub fn render_prometheus(&self, out: &mut String, members: bool) {
        let all: Vec<Arc<Frontend>> = self.frontends_map().values().cloned().collect();
        let frontends: Vec<FrontendStats> = all.iter().map(|f| f.stats()).collect();
        let refusals: Vec<stats::Refusals> =
            all.iter().map(|f| f.inner.counters.refusals()).collect();
        let backends: Vec<BackendStats> = if members {
            self.inner
                .shared
                .pools
                .all()
                .iter()
                .flat_map(|p| p.all_backends().into_iter().map(|b| b.stats(&p.name)))
                .collect()
        } else {
            Vec::new()
        };
        stats::render(out, &frontends, &refusals, &backends);
    }

    /// Stops every frontend (draining each up to its drain timeout, concurrently) and
    /// closes idle upstream connections.
    pub async fn shutdown(&self) {
        let frontends: Vec<Arc<Frontend>> = std::mem::take(&mut *self.frontends_map())
            .into_values()
            .collect();
        let mut set = tokio::task::JoinSet::new();
        for fe in frontends {
            set.spawn(async move { fe.stop().await });
        }
        while set.join_next().await.is_some() {}
        let shared = &self.inner.shared;
        shared.pools.clear_idle_connections();
        // Background drains of moved listeners are bounded by their own drain timeout.
        let _ = tokio::time::timeout(Duration::from_secs(35), async {
            loop {
                shared.pools.clear_idle_connections();
                if shared.tasks.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }
}
