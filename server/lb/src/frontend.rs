//! Frontends: a listener, its accept loop and connection tasks, and the swappable state
//! (algorithm, routes, timeouts, TLS) that every new request reads.
//!
//! Each listener owns a [`TaskTracker`] holding its accept loop and connections, and two
//! tokens: `graceful` (stop accepting; HTTP connections finish their request then close;
//! TCP connections run on) and `hard` (drop everything), fired after `timeouts.drain`.
//!
//! A connection counts against `limits.max_connections` from its accept to its end; at
//! the limit the accept loop waits for one to close (or for a reconfiguration), leaving
//! new connections in the kernel's backlog.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{FrontendConfig, Protocol};
use crate::pool::{Pool, Pools};
use crate::request::normalize_path;
use crate::stall::WriteTimeout;
use crate::stats::{FrontendCounters, FrontendStats};
use crate::{LbError, http, tcp};

/// State shared by every part of the load balancer.
#[derive(Default)]
pub(crate) struct Shared {
    pub pools: Pools,
    /// Background listener drains.
    pub tasks: TaskTracker,
}

/// What a request needs to know about its frontend; replaced whole on reconfiguration.
pub(crate) struct FrontendState {
    pub config: FrontendConfig,
    pub tls: Option<TlsAcceptor>,
    pub default_pool: Arc<Pool>,
    /// Normalised prefixes, sorted by length, longest first.
    pub rules: Vec<(String, Arc<Pool>)>,
}

impl FrontendState {
    pub fn new(config: FrontendConfig, tls: Option<TlsAcceptor>, pools: &Pools) -> Self {
        let default_pool = pools.get_or_create(&config.scale_set);
        let mut rules: Vec<(String, Arc<Pool>)> = config
            .rules
            .iter()
            .map(|r| {
                // A prefix that normalisation refuses (`%2F`) is kept as written: no
                // normalised path contains it, so it matches nothing.
                let prefix = normalize_path(&r.path_prefix)
                    .map_or_else(|_| r.path_prefix.clone(), |p| p.into_owned());
                (prefix, pools.get_or_create(&r.pool))
            })
            .collect();
        rules.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        Self {
            config,
            tls,
            default_pool,
            rules,
        }
    }

    /// The pool for `path` (normalised): the longest matching rule prefix, else the scale
    /// set's pool.
    /// A prefix matches whole path segments: `/api` matches `/api` and `/api/x`, not
    /// `/apix`; a prefix ending in `/` matches anything below it.
    pub fn route(&self, path: &str) -> &Arc<Pool> {
        self.rules
            .iter()
            .find(|(prefix, _)| {
                path.strip_prefix(prefix.as_str()).is_some_and(|rest| {
                    rest.is_empty() || prefix.ends_with('/') || rest.starts_with(['/', '?'])
                })
            })
            .map_or(&self.default_pool, |(_, p)| p)
    }

    /// Pools this frontend routes to, without repeats.
    pub fn pools(&self) -> Vec<Arc<Pool>> {
        let mut pools = vec![self.default_pool.clone()];
        if !matches!(self.config.protocol, Protocol::Tcp) {
            for (_, p) in &self.rules {
                if !pools.iter().any(|q| Arc::ptr_eq(p, q)) {
                    pools.push(p.clone());
                }
            }
        }
        pools
    }
}

/// The part of a frontend its connections hold on to.
pub(crate) struct FrontendShared {
    pub scale_set: String,
    pub name: String,
    pub counters: FrontendCounters,
    state: RwLock<Arc<FrontendState>>,
    pub shared: Arc<Shared>,
    /// Signalled when a connection closes or the configuration changes: the accept loop
    /// waiting at `max_connections` looks again.
    room: Notify,
}

impl FrontendShared {
    pub fn state(&self) -> Arc<FrontendState> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub(crate) struct Frontend {
    pub inner: Arc<FrontendShared>,
    listener: Mutex<Option<ListenerHandle>>,
}

impl Frontend {
    pub fn start(state: FrontendState, shared: Arc<Shared>) -> Result<Self, LbError> {
        let listener = bind(state.config.listen)?;
        let inner = Arc::new(FrontendShared {
            scale_set: state.config.scale_set.clone(),
            name: state.config.name.clone(),
            counters: FrontendCounters::default(),
            state: RwLock::new(Arc::new(state)),
            shared,
            room: Notify::new(),
        });
        let handle = ListenerHandle::spawn(listener, inner.clone());
        Ok(Self {
            inner,
            listener: Mutex::new(Some(handle)),
        })
    }

    /// Applies a new configuration: in place when the listen address is unchanged,
    /// otherwise binds the new address first and drains the old listener in the background.
    pub fn reconfigure(&self, state: FrontendState) -> Result<(), LbError> {
        let old_state = self.inner.state();
        if old_state.config.listen == state.config.listen {
            *self.inner.state.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(state);
            self.inner.room.notify_one();
            return Ok(());
        }
        let listener = bind(state.config.listen)?;
        *self.inner.state.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(state);
        let handle = ListenerHandle::spawn(listener, self.inner.clone());
        let old = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(handle);
        if let Some(old) = old {
            let drain = old_state.config.timeouts.drain;
            self.inner.shared.tasks.spawn(old.stop(drain));
        }
        Ok(())
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|l| l.addr)
    }

    /// Stops accepting and drains, bounded by the configured drain timeout.
    pub async fn stop(&self) {
        let handle = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            h.stop(self.inner.state().config.timeouts.drain).await;
        }
    }

    pub fn stats(&self) -> FrontendStats {
        let state = self.inner.state();
        let c = &self.inner.counters;
        let listen = self.local_addr().unwrap_or(state.config.listen);
        FrontendStats {
            scale_set: self.inner.scale_set.clone(),
            name: self.inner.name.clone(),
            protocol: state.config.protocol.name().to_string(),
            listen: listen.to_string(),
            requests: c.requests.load(Relaxed),
            responses: c.responses.snapshot(),
            bytes_in: c.bytes_in.load(Relaxed),
            bytes_out: c.bytes_out.load(Relaxed),
            active_connections: c.active_connections.load(Relaxed),
            latency: c.latency.snapshot(),
            backends: state
                .pools()
                .iter()
                .flat_map(|p| p.all_backends().into_iter().map(|b| b.stats(&p.name)))
                .collect(),
        }
    }
}

fn bind(addr: SocketAddr) -> Result<TcpListener, LbError> {
    let err = |source| LbError::Bind {
        port: addr.port(),
        source,
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(err)?;
    socket.set_reuseaddr(true).map_err(err)?;
    socket.set_nodelay(true).map_err(err)?;
    socket.bind(addr).map_err(err)?;
    socket.listen(1024).map_err(err)
}

struct ListenerHandle {
    addr: SocketAddr,
    graceful: CancellationToken,
    hard: CancellationToken,
    tracker: TaskTracker,
}

impl ListenerHandle {
    fn spawn(listener: TcpListener, frontend: Arc<FrontendShared>) -> Self {
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let handle = Self {
            addr,
            graceful: CancellationToken::new(),
            hard: CancellationToken::new(),
            tracker: TaskTracker::new(),
        };
        let (graceful, hard, tracker) = (
            handle.graceful.clone(),
            handle.hard.clone(),
            handle.tracker.clone(),
        );
        handle
            .tracker
            .spawn(accept_loop(listener, frontend, graceful, hard, tracker));
        tracing::info!(%addr, "frontend listening");
        handle
    }

    async fn stop(self, drain: Duration) {
        self.graceful.cancel();
        self.tracker.close();
        if tokio::time::timeout(drain, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::debug!(addr = %self.addr, "drain timed out, closing connections");
            self.hard.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(1), self.tracker.wait()).await;
        }
        tracing::info!(addr = %self.addr, "frontend stopped");
    }
}

async fn accept_loop(
    listener: TcpListener,
    frontend: Arc<FrontendShared>,
    graceful: CancellationToken,
    hard: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        if !room(&frontend, &graceful).await {
            return;
        }
        let accepted = tokio::select! {
            biased;
            _ = graceful.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tracker.spawn(serve_connection(
                    stream,
                    peer,
                    ConnectionGauge::open(frontend.clone()),
                    graceful.clone(),
                    hard.clone(),
                ));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::select! {
                    _ = graceful.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
}

/// Waits until the frontend is below `max_connections` (`true`), or the listener stops.
async fn room(frontend: &FrontendShared, graceful: &CancellationToken) -> bool {
    let mut waited = false;
    loop {
        let max = frontend.state().config.limits.max_connections;
        let open = frontend.counters.active_connections.load(Relaxed);
        if max.is_none_or(|max| open < u64::from(max)) {
            return true;
        }
        if !waited {
            waited = true;
            frontend
                .counters
                .connection_limit_waits
                .fetch_add(1, Relaxed);
            tracing::debug!(
                frontend = %frontend.name,
                open,
                "at max_connections, not accepting"
            );
        }
        // A close between the load and here leaves a permit: `notified` returns at once.
        tokio::select! {
            _ = graceful.cancelled() => return false,
            _ = frontend.room.notified() => {}
        }
    }
}

/// One open client connection, counted in the active connection gauge from its accept to
/// its end.
struct ConnectionGauge(Arc<FrontendShared>);

impl ConnectionGauge {
    fn open(frontend: Arc<FrontendShared>) -> Self {
        frontend.counters.active_connections.fetch_add(1, Relaxed);
        Self(frontend)
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0.counters.active_connections.fetch_sub(1, Relaxed);
        self.0.room.notify_one();
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    gauge: ConnectionGauge,
    graceful: CancellationToken,
    hard: CancellationToken,
) {
    let frontend = &gauge.0;
    let state = frontend.state();
    let timeouts = &state.config.timeouts;
    let limits = state.config.limits;
    match (&state.config.protocol, &state.tls) {
        (Protocol::Tcp, _) => tcp::serve(stream, peer, frontend, &state, hard).await,
        (Protocol::Https { .. }, Some(acceptor)) => {
            let stream = WriteTimeout::new(stream, timeouts.write);
            let handshake = tokio::time::timeout(
                timeouts.client_idle.min(Duration::from_secs(10)),
                acceptor.accept(stream),
            );
            let tls = tokio::select! {
                r = handshake => match r {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => return tracing::debug!(%peer, "TLS handshake failed: {e}"),
                    Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                },
                _ = graceful.cancelled() => return,
            };
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let ctx = Arc::new(http::ConnCtx::new(frontend.clone(), peer, true));
            http::serve(tls, ctx, h2, timeouts.client_idle, limits, graceful, hard).await
        }
        _ => {
            let stream = WriteTimeout::new(stream, timeouts.write);
            let ctx = Arc::new(http::ConnCtx::new(frontend.clone(), peer, false));
            http::serve(
                stream,
                ctx,
                false,
                timeouts.client_idle,
                limits,
                graceful,
                hard,
            )
            .await
        }
    }
}
