//! The application every running mock VM serves: real HTTP/1.1 on its own port on
//! 127.0.0.1.
//!
//! - `GET /` answers the instance's identity as JSON, `GET /health` answers 200
//!   `{"status":"healthy"}` or, while an `unhealthy` fault is on the instance, 503; anything
//!   else is 404. Connections are kept alive.
//!
//! Invariants:
//! - one [`Server`] per running VM: an accept task owned by the mock's task tracker, which
//!   owns the VM's connection tasks in a `JoinSet`;
//! - cancelling the server's token closes the listener *and* aborts every open connection;
//!   the accept task finishes only once both are gone, so awaiting [`Server::stop`] means the
//!   port refuses connections and no kept-alive connection survives.

use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What `GET /` reports.
#[derive(Debug, Serialize)]
pub(super) struct Identity<'a> {
    pub instance_id: &'a str,
    pub scale_set: &'a str,
    pub model_version: u32,
    pub zone: &'a str,
    pub fault_domain: u32,
    pub image: &'a str,
}

/// Where servers are spawned: the mock's runtime, its task tracker and its root token
/// (cancelled on shutdown, which stops every server).
#[derive(Debug, Clone)]
pub(super) struct Spawner {
    pub handle: Handle,
    pub tracker: TaskTracker,
    pub root: CancellationToken,
}

/// A running VM's HTTP server.
#[derive(Debug)]
pub(super) struct Server {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Server {
    /// Stops serving at once; the returned handle finishes when the listener is closed and
    /// every connection is dropped.
    pub fn stop(self) -> JoinHandle<()> {
        self.cancel.cancel();
        self.task
    }
}

/// The next port to try in a mock's port range. Process-wide, so mocks opened side by side
/// (tests) take turns through the range instead of colliding, and a port just released is
/// not handed out again until the range has been gone through.
static NEXT_PORT: AtomicU32 = AtomicU32::new(0);

/// Ports tried in the range before settling for any free port.
const TRIES: u32 = 128;

/// Binds a listener on 127.0.0.1: `previous` first (a VM keeps its port across restarts when
/// it can), then the next free port of `range`, then any port the kernel picks.
///
/// Why a range rather than port 0: the kernel's search for a free ephemeral port slows down
/// as thousands are taken (binding 10,000 took ~4 s here, against ~0.1 s for chosen ports),
/// and 10,000 listeners inside the ephemeral range would starve outgoing connections.
pub(super) fn bind(previous: Option<u16>, range: &Range<u16>) -> io::Result<std::net::TcpListener> {
    // std sets SO_REUSEADDR on Unix, so connections in TIME_WAIT do not hold a port; a port
    // someone listens on is refused all the same.
    if let Some(port) = previous.filter(|p| *p != 0) {
        match std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(listener) => return Ok(listener),
            Err(error) => tracing::debug!(port, %error, "previous port taken, binding a new one"),
        }
    }
    let len = u32::from(range.end.saturating_sub(range.start));
    if len > 0 {
        let offset = std::process::id().wrapping_mul(2_654_435_761) % len;
        for _ in 0..TRIES.min(len) {
            let turn = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
            let port = range.start + (offset.wrapping_add(turn) % len) as u16;
            match std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                Ok(listener) => return Ok(listener),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::AddrInUse
                            | io::ErrorKind::AddrNotAvailable
                            | io::ErrorKind::PermissionDenied
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
}

/// Starts serving `identity` on `listener`; `unhealthy` is shared with the VM's record,
/// `requests` counts the requests answered other than `/health`.
pub(super) fn serve(
    listener: std::net::TcpListener,
    identity: &Identity<'_>,
    unhealthy: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    spawner: &Spawner,
) -> io::Result<Server> {
    listener.set_nonblocking(true)?;
    let listener = {
        let _runtime = spawner.handle.enter();
        TcpListener::from_std(listener)?
    };
    let body = serde_json::to_vec(identity).map_err(io::Error::other)?;
    let app = Arc::new(App {
        identity: Bytes::from(body),
        unhealthy,
        requests,
    });
    let cancel = spawner.root.child_token();
    let task = spawner
        .tracker
        .spawn_on(accept_loop(listener, app, cancel.clone()), &spawner.handle);
    Ok(Server { cancel, task })
}

/// The port a bound listener got.
pub(super) fn port_of(listener: &std::net::TcpListener) -> io::Result<u16> {
    listener.local_addr().map(|a: SocketAddr| a.port())
}

struct App {
    identity: Bytes,
    unhealthy: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
}

async fn accept_loop(listener: TcpListener, app: Arc<App>, cancel: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, app.clone()));
                }
                Err(error) => {
                    // Out of descriptors or an aborted handshake: back off briefly rather
                    // than spin, still answering cancellation.
                    tracing::warn!(%error, "mock VM accept failed");
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
            },
        }
    }
    drop(listener);
    connections.shutdown().await;
}

async fn serve_connection(stream: TcpStream, app: Arc<App>) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request: Request<Incoming>| {
        let response = respond(&request, &app);
        async move { Ok::<_, Infallible>(response) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(error) = connection.await {
        tracing::debug!(%error, "mock VM connection ended with an error");
    }
}

fn respond(request: &Request<Incoming>, app: &App) -> Response<Full<Bytes>> {
    if request.uri().path() != "/health" {
        app.requests.fetch_add(1, Ordering::Relaxed);
    }
    let (status, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/") => (StatusCode::OK, app.identity.clone()),
        (&Method::GET, "/health") => {
            if app.unhealthy.load(Ordering::Relaxed) {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Bytes::from_static(br#"{"status":"unhealthy"}"#),
                )
            } else {
                (
                    StatusCode::OK,
                    Bytes::from_static(br#"{"status":"healthy"}"#),
                )
            }
        }
        _ => (
            StatusCode::NOT_FOUND,
            Bytes::from_static(br#"{"error":"not found"}"#),
        ),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
