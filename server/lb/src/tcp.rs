//! The L4 proxy: one member connection per client connection, bytes copied both ways.
//!
//! A connect error or timeout moves on to the next member (each at most once). Bytes are
//! counted as they flow (not at the end), so stats of long connections stay current.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::frontend::{FrontendShared, FrontendState};
use crate::pool::{ActiveGuard, Backend, Tried};

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
    let mut tried = Tried::default();
    let (mut upstream, guard) = loop {
        let Some(i) = pool.select(&members, state.config.algorithm, peer.ip(), &tried) else {
            tracing::debug!(%peer, pool = %pool.name, "no member to connect to, closing");
            return;
        };
        tried.insert(i);
        let Some(guard) = ActiveGuard::acquire(&members[i]) else {
            continue;
        };
        let backend = guard.backend();
        backend.counters.requests.fetch_add(1, Relaxed);
        let addr = state.target(backend.addr);
        let t = Instant::now();
        match tokio::time::timeout(state.config.timeouts.connect, TcpStream::connect(addr)).await {
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
    let mut client = Counted {
        inner: client,
        frontend: frontend.clone(),
        backend: guard.backend().clone(),
    };
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
            if let Err(e) = r {
                tracing::debug!(%peer, backend = %guard.backend().id, "tcp proxy: {e}");
            }
        }
        _ = hard.cancelled() => {}
    }
}

/// The client side of a proxied connection, counting bytes read (in) and written (out).
struct Counted {
    inner: TcpStream,
    frontend: Arc<FrontendShared>,
    backend: Arc<Backend>,
}

impl AsyncRead for Counted {
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
        }
        r
    }
}

impl AsyncWrite for Counted {
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
