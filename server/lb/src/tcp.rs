//! The L4 proxy: one member connection per client connection, bytes copied both ways.
//!
//! A connect error or timeout moves on to the next member (each at most once); members at
//! `limits.max_connections_per_member` are skipped, and when every serving member is, the
//! connection is closed. Bytes are counted as they flow (not at the end), so stats of long
//! connections stay current. A connection with no byte either way for `timeouts.tcp_idle`
//! is closed, and so is one whose client or member does not take the bytes waiting for
//! it within `timeouts.write`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::frontend::{FrontendShared, FrontendState};
use crate::pool::{ActiveGuard, Backend, Tried};
use crate::stall::WriteTimeout;

pub(crate) async fn serve(
    client: TcpStream,
    peer: SocketAddr,
    frontend: &Arc<FrontendShared>,
    state: &FrontendState,
    hard: CancellationToken,
) {
    let start = Instant::now();
    frontend.counters.requests.fetch_add(1, Relaxed);
    let pool = &state.default_pool;
    let members = pool.snapshot();
    let cap = state.config.limits.max_connections_per_member;
    let timeouts = &state.config.timeouts;
    let mut tried = Tried::default();
    let (upstream, guard) = loop {
        let Some(i) = pool.select(&members, state.config.algorithm, peer.ip(), &tried, cap) else {
            if tried.is_empty() && cap.is_some() && members.iter().any(|b| b.serving()) {
                frontend.counters.member_cap_refusals.fetch_add(1, Relaxed);
            }
            tracing::debug!(%peer, pool = %pool.name, "no member to connect to, closing");
            return;
        };
        tried.insert(i);
        let Some(guard) = ActiveGuard::acquire(&members[i], cap) else {
            continue;
        };
        let backend = guard.backend();
        backend.counters.requests.fetch_add(1, Relaxed);
        let addr = backend.addr;
        let t = Instant::now();
        match tokio::time::timeout(timeouts.connect, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                backend.counters.latency.record(t.elapsed());
                let _ = s.set_nodelay(true);
                break (s, guard);
            }
            Ok(Err(e)) => backend.failure("connect failed", &e),
            Err(_) => backend.failure("connect failed", &"timed out"),
        }
    };
    frontend.counters.latency.record(start.elapsed());
    let activity = Activity::new();
    let mut client = Counted {
        inner: WriteTimeout::new(client, timeouts.write),
        frontend: frontend.clone(),
        backend: guard.backend().clone(),
        activity: &activity,
    };
    let mut upstream = WriteTimeout::new(upstream, timeouts.write);
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
            if let Err(e) = r {
                tracing::debug!(%peer, backend = %guard.backend().id, "tcp proxy: {e}");
            }
        }
        () = activity.idle_for(timeouts.tcp_idle) => {
            tracing::debug!(%peer, backend = %guard.backend().id, "idle tcp connection closed");
        }
        _ = hard.cancelled() => {}
    }
}

/// When bytes last crossed the client side of a connection (every byte does, one way or
/// the other: a member's bytes that cannot reach the client stop being read). Costs a
/// clock read per transfer (of up to `copy_bidirectional`'s 8 KiB), far below the system
/// call that moved the bytes, for an exact idle deadline.
struct Activity {
    start: Instant,
    /// Nanoseconds since `start`.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let nanos = self.start.elapsed().as_nanos();
        self.last
            .store(u64::try_from(nanos).unwrap_or(u64::MAX), Relaxed);
    }

    /// Completes once no byte moved for `idle`. One timer at a time, set to the deadline
    /// the last activity implies when the previous one fires.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let deadline = self.start + Duration::from_nanos(self.last.load(Relaxed)) + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

/// The client side of a proxied connection, counting bytes read (in) and written (out).
struct Counted<'a> {
    inner: WriteTimeout<TcpStream>,
    frontend: Arc<FrontendShared>,
    backend: Arc<Backend>,
    activity: &'a Activity,
}

impl AsyncRead for Counted<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            self.frontend.counters.bytes_in.fetch_add(n, Relaxed);
            self.backend.counters.bytes_in.fetch_add(n, Relaxed);
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Counted<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.frontend
                .counters
                .bytes_out
                .fetch_add(n as u64, Relaxed);
            self.backend.counters.bytes_out.fetch_add(n as u64, Relaxed);
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
