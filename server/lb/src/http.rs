//! The L7 proxy: serves HTTP/1.1 (and HTTP/2 over TLS with ALPN `h2`) to clients and
//! forwards each request over HTTP/1.1 keep-alive to a member, with the in-crate client of
//! `client.rs` run inline in the request's task.
//!
//! Retries (never to a member already tried by this request):
//! - the connection failed or timed out, or a pooled connection was found closed (before
//!   the request was written, or with nothing of the request written): any method is
//!   retried, since nothing reached the member and the body is untouched;
//! - the member failed after the request was written (reset, closed, not HTTP): retried
//!   only for idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE, TRACE) *without a body*,
//!   whose head stays in the request's buffer for replay; otherwise 502. Bodies are
//!   streamed, never buffered.
//! - no response head within `timeouts.response`: 504, no retry (a hung member would
//!   otherwise multiply the wait).
//!
//! A stale pooled connection is first retried on the same member with a fresh connection.
//!
//! Before anything reaches a member, `request.rs` checks the request's framing and
//! normalises its path; a refusal is a 400 that closes an HTTP/1.1 connection. With
//! `limits.max_connections_per_member`, members at their cap are not selected, and when
//! every serving member is, the answer is 503 at once (no queue: waiting would hide an
//! overload behind latency and hold client connections; the client may retry).
//!
//! Hot path (every request): no header map is built for the member (the head is written
//! straight into the connection's reused buffer, hop-by-hop headers skipped on the way),
//! the request goes out in one write and the response head is parsed in place, header
//! values and body pieces sharing the read buffer's allocation; no task, channel or
//! per-connection timer on the upstream side. This crate reads the clock three times
//! (arrival, response head, end of body — shared by the stats, the idle pool and the
//! client's idle timer), and the only per-request timer is the response timeout. A client
//! connection's idle timeout is one timer per connection, re-armed lazily when it fires
//! (see `drive`); the write timeout of a client connection and the body-read timeout of
//! an upstream one are a timer per connection, armed (and the clock read) only when a
//! write or read has to wait (see `stall.rs`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use crate::client::{self, Framing, Head, Outgoing};
use crate::config::Limits;
use crate::frontend::{FrontendShared, FrontendState};
use crate::pool::{ActiveGuard, Tried};
use crate::request::{self, BodyLength, Refusal};
use crate::upstream::Lease;

/// Per client connection.
pub(crate) struct ConnCtx {
    pub frontend: Arc<FrontendShared>,
    pub client: SocketAddr,
    /// The client IP, formatted once per connection.
    pub client_ip: HeaderValue,
    pub https: bool,
    /// Requests whose response has not been sent to the end (see [`InFlight`]).
    busy: AtomicU32,
    /// When the connection last became idle (opened, or a response ended), in nanoseconds
    /// since `opened`.
    idle_since: AtomicU64,
    opened: Instant,
}

impl ConnCtx {
    pub fn new(frontend: Arc<FrontendShared>, client: SocketAddr, https: bool) -> Self {
        let ip = client.ip().to_canonical();
        let client_ip = HeaderValue::from_str(&ip.to_string()).expect("an IP is a valid header");
        Self {
            frontend,
            client,
            client_ip,
            https,
            busy: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            opened: Instant::now(),
        }
    }

    /// When the connection has been idle for `idle` (no request in flight, none started
    /// since): `None`; else when to check again.
    fn idle_deadline(&self, idle: Duration, now: Instant) -> Option<Instant> {
        if self.busy.load(Relaxed) > 0 {
            return Some(now + idle);
        }
        let since = self.opened + Duration::from_nanos(self.idle_since.load(Relaxed));
        let deadline = since + idle;
        (deadline > now).then_some(deadline)
    }
}

/// One request of a client connection, from the service call until its response body is
/// dropped (sent to the end, or the connection went away): the connection is not idle
/// meanwhile.
pub(crate) struct InFlight {
    ctx: Arc<ConnCtx>,
    /// When the response ended, if already known (saves a clock read on drop).
    ended: Option<Instant>,
}

impl InFlight {
    fn new(ctx: Arc<ConnCtx>) -> Self {
        ctx.busy.fetch_add(1, Relaxed);
        Self { ctx, ended: None }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let ended = self.ended.unwrap_or_else(Instant::now);
        let nanos = ended.saturating_duration_since(self.ctx.opened).as_nanos();
        self.ctx
            .idle_since
            .fetch_max(u64::try_from(nanos).unwrap_or(u64::MAX), Relaxed);
        self.ctx.busy.fetch_sub(1, Relaxed);
    }
}

/// Serves one client connection until it closes, `graceful` (finish in-flight requests,
/// then close) or `hard` (drop now). An HTTP/1.1 connection idle for `idle` (no request in
/// flight, none started since) is closed, whether or not part of a request head arrived.
pub(crate) async fn serve<I>(
    io: I,
    ctx: Arc<ConnCtx>,
    h2: bool,
    idle: Duration,
    limits: Limits,
    graceful: CancellationToken,
    hard: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc_ctx = ctx.clone();
    let svc = service_fn(move |req| handle(InFlight::new(svc_ctx.clone()), req));
    let io = TokioIo::new(io);
    if h2 {
        let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            // HTTP/2 has no idle-timeout knob here: ping at that interval instead, so
            // dead peers are noticed; idle live ones stay open.
            .keep_alive_interval(Some(idle))
            .max_concurrent_streams(limits.http2_max_concurrent_streams)
            .max_header_list_size(limits.max_header_bytes)
            // Rapid reset (CVE-2023-44487) and its local-error variant: pinned rather than
            // left to defaults that may change.
            .max_pending_accept_reset_streams(H2_MAX_PENDING_ACCEPT_RESETS)
            .max_local_error_reset_streams(H2_MAX_LOCAL_ERROR_RESETS)
            .serve_connection(io, svc);
        drive(conn, |c| c.graceful_shutdown(), None, &graceful, &hard).await
    } else {
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            // `drive` closes idle connections, with one timer per connection rather than
            // one per request.
            .header_read_timeout(None)
            .max_header_size(limits.max_header_bytes as usize)
            // No `pipeline_flush`: hyper then skips flushing while its read buffer holds
            // bytes, so an answer followed by a close (a 400 for a malformed head, a
            // response after which the connection must close) was never sent when more
            // bytes had arrived behind the request.
            .serve_connection(io, svc);
        let idle = Some((ctx.as_ref(), idle));
        drive(conn, |c| c.graceful_shutdown(), idle, &graceful, &hard).await
    }
}

/// Reset streams a client may leave hyper to accept before it sends GOAWAY (h2's default).
const H2_MAX_PENDING_ACCEPT_RESETS: usize = 20;
/// Streams hyper may reset for a client's errors before it sends GOAWAY (hyper's default).
const H2_MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// Polls a client connection to its end, and watches the listener's tokens and (when
/// given) the idle deadline. Those are polled only after one of them woke the task (see
/// [`SideWaker`]), not on each of the several wake-ups of the connection per request.
async fn drive<C>(
    conn: C,
    graceful_shutdown: fn(Pin<&mut C>),
    idle: Option<(&ConnCtx, Duration)>,
    graceful: &CancellationToken,
    hard: &CancellationToken,
) where
    C: Future<Output = Result<(), hyper::Error>>,
{
    let side = Arc::new(SideWaker::default());
    let side_waker = Waker::from(side.clone());
    let mut registered: Option<Waker> = None;
    let mut stopping = false;
    let mut check =
        idle.map(|(ctx, idle)| Box::pin(tokio::time::sleep_until((ctx.opened + idle).into())));
    tokio::pin!(conn);
    let graceful = graceful.cancelled();
    let hard = hard.cancelled();
    tokio::pin!(graceful, hard);
    std::future::poll_fn(|cx| {
        if !registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *side.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
            registered = Some(cx.waker().clone());
        }
        if side.woken.swap(false, SeqCst) {
            let mut side_cx = Context::from_waker(&side_waker);
            if hard.as_mut().poll(&mut side_cx).is_ready() {
                return Poll::Ready(());
            }
            if !stopping && graceful.as_mut().poll(&mut side_cx).is_ready() {
                stopping = true;
                graceful_shutdown(conn.as_mut());
            }
            if let (Some(sleep), Some((ctx, idle))) = (check.as_mut(), idle) {
                while sleep.as_mut().poll(&mut side_cx).is_ready() {
                    match ctx.idle_deadline(idle, Instant::now()) {
                        Some(next) => sleep.as_mut().reset(next.into()),
                        None => {
                            tracing::debug!(client = %ctx.client, "idle client connection closed");
                            return Poll::Ready(());
                        }
                    }
                }
            }
        }
        conn.as_mut().poll(cx).map(log_end)
    })
    .await
}

/// Records that a side future (token, idle check) woke the connection task, then wakes it.
struct SideWaker {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Default for SideWaker {
    fn default() -> Self {
        Self {
            // So that the first poll registers the side futures.
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        }
    }
}

impl Wake for SideWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, SeqCst);
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            task.wake_by_ref();
        }
    }
}

fn log_end(r: Result<(), hyper::Error>) {
    if let Err(e) = r {
        tracing::debug!("client connection: {e}");
    }
}

async fn handle(
    in_flight: InFlight,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let start = Instant::now();
    let ctx = &in_flight.ctx;
    let fe = &ctx.frontend;
    fe.counters.requests.fetch_add(1, Relaxed);
    let state = fe.state();
    let method = tracing::enabled!(tracing::Level::DEBUG).then(|| req.method().clone());
    let version = req.version();
    let answer = proxy(ctx, &state, req, start).await;
    let head = Instant::now();
    let status = answer.status();
    if let Answer::Upstream(_, u) = &answer {
        let backend = &u.lease.guard.backend().counters;
        backend
            .latency
            .record(head.saturating_duration_since(u.sent));
        backend.responses.record(status.as_u16());
    }
    fe.counters.responses.record(status.as_u16());
    fe.counters
        .latency
        .record(head.saturating_duration_since(start));
    if let Some(method) = method {
        tracing::debug!(client = %ctx.client, %method, status = status.as_u16(), "request");
    }
    Ok(answer.into_response(in_flight, version))
}

fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Forwards `req`; `start` is when it arrived.
async fn proxy(
    ctx: &ConnCtx,
    state: &FrontendState,
    req: Request<Incoming>,
    start: Instant,
) -> Answer {
    let (parts, body) = req.into_parts();
    let body = (!body.is_end_stream()).then_some(body);
    let length = match &body {
        None => BodyLength::None,
        Some(b) => b
            .size_hint()
            .exact()
            .map_or(BodyLength::Unknown, BodyLength::Exact),
    };
    let checked = request::admit(&parts.headers, length)
        .and_then(|framing| Ok((framing, request::normalize_path(parts.uri.path())?)));
    let (framing, path) = match checked {
        Ok(checked) => checked,
        Err(refusal) => {
            ctx.frontend.counters.refused_requests.fetch_add(1, Relaxed);
            tracing::debug!(client = %ctx.client, "request refused: {refusal}");
            return Answer::Refused(refusal);
        }
    };
    let pool = state.route(&path);
    let head_request = parts.method == Method::HEAD;
    // The head is written once, into the first connection's buffer, and kept for replays.
    let mut out = Outgoing::new(body, framing, idempotent(&parts.method));

    let members = pool.snapshot();
    let mut tried = Tried::default();
    let timeouts = &state.config.timeouts;
    let cap = state.config.limits.max_connections_per_member;
    let mut first = true;
    let mut failed = false;
    loop {
        let Some(i) = pool.select(
            &members,
            state.config.algorithm,
            ctx.client.ip(),
            &tried,
            cap,
        ) else {
            if failed {
                return local(StatusCode::BAD_GATEWAY, "bad gateway\n");
            }
            if cap.is_some() && members.iter().any(|b| b.serving()) {
                ctx.frontend
                    .counters
                    .member_cap_refusals
                    .fetch_add(1, Relaxed);
                return local(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "every backend is at its connection cap\n",
                );
            }
            return local(StatusCode::SERVICE_UNAVAILABLE, "no backend available\n");
        };
        tried.insert(i);
        let Some(guard) = ActiveGuard::acquire(&members[i], cap) else {
            continue;
        };
        let backend = guard.backend().clone();
        let addr = backend.addr;
        let mut fresh = false;
        loop {
            backend.counters.requests.fetch_add(1, Relaxed);
            let (mut conn, reused) = match backend
                .conns
                .checkout(addr, timeouts.connect, fresh, start)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    backend.failure("connect failed", &e);
                    failed = true;
                    break;
                }
            };
            if !out.has_head() {
                let buf = std::mem::take(&mut conn.wbuf);
                out.write_head(&parts, &path, &ctx.client_ip, ctx.https, buf);
            }
            // A pooled connection is ready at once: the request is sent when it arrived,
            // give or take a microsecond, and that saves a clock read.
            let sent = if first && reused {
                start
            } else {
                Instant::now()
            };
            first = false;
            let deadline = tokio::time::Instant::from_std(sent + timeouts.response);
            let bytes_in = [&ctx.frontend.counters.bytes_in, &backend.counters.bytes_in];
            let exchange = client::exchange(&mut conn, &mut out, head_request, bytes_in);
            match tokio::time::timeout_at(deadline, exchange).await {
                Err(_) => {
                    backend.failure("no response head in time", &"timeout");
                    return local(StatusCode::GATEWAY_TIMEOUT, "gateway timeout\n");
                }
                Ok(Ok(head)) => {
                    conn.wbuf = out.into_buf();
                    let lease = Lease {
                        guard,
                        conn: Some(conn),
                        addr,
                    };
                    let frontend = ctx.frontend.clone();
                    return upstream_response(head, frontend, lease, sent, timeouts.body_read);
                }
                Ok(Err(error)) => {
                    if !out.rewind() {
                        backend.failure("request failed", &error);
                        return local(StatusCode::BAD_GATEWAY, "bad gateway\n");
                    }
                    if reused && !fresh {
                        // Probably a keep-alive connection the member just closed.
                        tracing::debug!(backend = %backend.id, "pooled connection failed: {error}");
                        fresh = true;
                        continue;
                    }
                    backend.failure("request failed", &error);
                    failed = true;
                    break;
                }
            }
        }
    }
}

/// Whether `name` is hop-by-hop whatever `Connection` lists.
pub(crate) fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Whether a `Connection` option may remove header `name` from a message. Never `Host`
/// (a member would lose the request's authority) nor `Content-Length` (a response's
/// framing; a request's is never copied anyway, see `request.rs`).
pub(crate) fn connection_may_remove(name: &HeaderName) -> bool {
    *name != header::HOST && *name != header::CONTENT_LENGTH
}

fn upstream_response(
    head: Head,
    frontend: Arc<FrontendShared>,
    lease: Lease,
    sent: Instant,
    stall: Duration,
) -> Answer {
    let mut body = UpstreamResponse {
        framing: head.framing,
        reusable: head.reusable,
        frontend,
        lease,
        sent,
        stall,
    };
    if matches!(body.framing, Framing::Done) {
        body.lease.finish(Instant::now(), body.reusable);
    }
    Answer::Upstream(head.parts, body)
}

fn local(status: StatusCode, text: &'static str) -> Answer {
    Answer::Local(status, text)
}

/// What `proxy` produced, before it becomes the response to the client.
// Lives for one return; boxing the large variant would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Answer {
    Upstream(http::response::Parts, UpstreamResponse),
    /// The load balancer's own short answers.
    Local(StatusCode, &'static str),
    /// 400, and the connection closes: what followed the request on it may be framed as
    /// the member would not have.
    Refused(Refusal),
}

impl Answer {
    fn status(&self) -> StatusCode {
        match self {
            Answer::Upstream(parts, _) => parts.status,
            Answer::Local(status, _) => *status,
            Answer::Refused(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The response for a request of `version`.
    fn into_response(self, in_flight: InFlight, version: Version) -> Response<ProxyBody> {
        let (status, text, close) = match self {
            Answer::Upstream(parts, u) => {
                let body = ProxyBody {
                    kind: BodyKind::Upstream(u),
                    in_flight,
                };
                return Response::from_parts(parts, body);
            }
            Answer::Local(status, text) => (status, Bytes::from_static(text.as_bytes()), false),
            Answer::Refused(refusal) => (
                StatusCode::BAD_REQUEST,
                Bytes::from(format!("bad request: {refusal}\n")),
                true,
            ),
        };
        let mut r = Response::new(ProxyBody {
            kind: BodyKind::Local(Some(text)),
            in_flight,
        });
        *r.status_mut() = status;
        let headers = r.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        // HTTP/2 streams are framed by the protocol; `Connection` is not allowed there.
        if close && version < Version::HTTP_2 {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }
}

/// The body sent to clients; it holds the request's [`InFlight`] mark.
pub(crate) struct ProxyBody {
    kind: BodyKind,
    in_flight: InFlight,
}

enum BodyKind {
    Upstream(UpstreamResponse),
    Local(Option<Bytes>),
}

struct UpstreamResponse {
    framing: Framing,
    reusable: bool,
    frontend: Arc<FrontendShared>,
    /// Holds the connection until the body was read to its end.
    lease: Lease,
    /// When the request was sent (for the member's latency).
    sent: Instant,
    /// `timeouts.body_read`.
    stall: Duration,
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        match &mut this.kind {
            BodyKind::Local(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            BodyKind::Upstream(u) => {
                let Some(conn) = u.lease.conn.as_mut() else {
                    return Poll::Ready(None);
                };
                let frame = ready!(client::poll_body(conn, &mut u.framing, u.stall, cx));
                match &frame {
                    Some(Ok(f)) => {
                        if let Some(d) = f.data_ref() {
                            let n = d.len() as u64;
                            u.frontend.counters.bytes_out.fetch_add(n, Relaxed);
                            u.lease
                                .guard
                                .backend()
                                .counters
                                .bytes_out
                                .fetch_add(n, Relaxed);
                        }
                    }
                    None => {}
                    Some(Err(e)) => {
                        u.lease.guard.backend().failure("response body failed", e);
                        u.lease.conn = None;
                        u.framing = Framing::Done;
                        return Poll::Ready(frame);
                    }
                }
                if matches!(u.framing, Framing::Done) {
                    let now = Instant::now();
                    u.lease.finish(now, u.reusable);
                    this.in_flight.ended = Some(now);
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Local(d) => d.is_none(),
            BodyKind::Upstream(u) => matches!(u.framing, Framing::Done),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Local(d) => SizeHint::with_exact(d.as_ref().map_or(0, |d| d.len() as u64)),
            BodyKind::Upstream(u) => match u.framing {
                Framing::Length(n) => SizeHint::with_exact(n),
                Framing::Done => SizeHint::with_exact(0),
                _ => SizeHint::default(),
            },
        }
    }
}
