//! Upstream connections: per-member pools of idle HTTP/1.1 keep-alive connections.
//!
//! A [`Conn`] is a bare TCP stream with its read buffer and a reusable write buffer; there
//! is no task per connection: the request's task writes, reads and parses inline (see
//! `client.rs`). A connection is checked out for exactly one request and goes back to its
//! member's idle list only when the response was read to its end and the connection is
//! reusable (see [`Lease`]), so a pooled connection never holds unread bytes. The list is
//! LIFO (the most recently used connection is the least likely to have been closed by the
//! backend) and entries idle longer than [`IDLE_TIMEOUT`] are dropped. Nothing watches an
//! idle connection: at checkout, the socket's readiness (already known to the reactor, no
//! system call unless it is set) tells whether the member closed it or sent something
//! unasked, and such a connection is dropped.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::pool::ActiveGuard;
use crate::stall::Stall;

/// Idle connections older than this are closed rather than reused (below the usual
/// backend keep-alive timeouts, to avoid reusing one the backend is closing).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept per member.
const MAX_IDLE: usize = 512;
/// Smallest read into a connection's buffer.
const READ_MIN: usize = 8 * 1024;
/// Largest read (large bodies are read in pieces of up to this).
const READ_MAX: usize = 64 * 1024;

/// One HTTP/1.1 connection to a member.
pub(crate) struct Conn {
    pub io: TcpStream,
    /// Received, not yet consumed; empty whenever the connection is idle.
    pub rbuf: BytesMut,
    /// Lent to each request for its head, and given back after (its allocation is reused).
    pub wbuf: Vec<u8>,
    /// Times waits for response body bytes; its timer lives as long as the connection.
    stall: Stall,
}

impl Conn {
    fn new(io: TcpStream) -> Self {
        Self {
            io,
            rbuf: BytesMut::new(),
            wbuf: Vec::new(),
            stall: Stall::default(),
        }
    }

    /// Reads more into `rbuf` (at least `want` bytes of room, within bounds); `Ok(0)` at EOF.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        let want = want.clamp(READ_MIN, READ_MAX);
        if self.rbuf.capacity() - self.rbuf.len() < want / 2 {
            // Reclaims the allocation when every frame cut from it has been dropped.
            self.rbuf.reserve(want);
        }
        pin!(self.io.read_buf(&mut self.rbuf)).poll(cx)
    }

    /// [`poll_fill`](Self::poll_fill) within a response body: a `TimedOut` error once the
    /// member sent nothing for `limit`.
    pub fn poll_fill_body(
        &mut self,
        cx: &mut Context<'_>,
        want: usize,
        limit: Duration,
    ) -> Poll<io::Result<usize>> {
        let poll = self.poll_fill(cx, want);
        self.stall
            .watch(poll, limit, "the member stalled in a response body", cx)
    }

    /// Whether an idle connection can carry a request: not closed by the member, and no
    /// unasked bytes. Costs a system call only when the reactor saw the socket readable.
    fn usable(&self, cx: &mut Context<'_>) -> bool {
        match self.io.poll_read_ready(cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => matches!(
                self.io.try_read(&mut [0u8; 1]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock
            ),
        }
    }
}

struct Idle {
    addr: SocketAddr,
    since: Instant,
    conn: Conn,
}

#[derive(Default)]
pub(crate) struct ConnPool {
    idle: Mutex<Vec<Idle>>,
}

impl ConnPool {
    pub fn clear(&self) {
        let drained = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        drop(drained);
    }

    fn take(&self, addr: SocketAddr, now: Instant) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(pos) = idle.iter().rposition(|i| i.addr == addr) {
            let entry = idle.remove(pos);
            if now.saturating_duration_since(entry.since) < IDLE_TIMEOUT {
                return Some(entry.conn);
            }
        }
        None
    }

    fn put(&self, addr: SocketAddr, conn: Conn, now: Instant) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        // Oldest entries sit at the front.
        let stale = idle
            .iter()
            .take_while(|i| now.duration_since(i.since) >= IDLE_TIMEOUT)
            .count();
        if stale > 0 {
            idle.drain(..stale);
        }
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                addr,
                since: now,
                conn,
            });
        }
    }

    /// An idle connection to `addr` (`reused == true`), or a new one (always when `fresh`).
    /// `now` is a recent time (idle entries are aged against it).
    pub async fn checkout(
        &self,
        addr: SocketAddr,
        connect_timeout: Duration,
        fresh: bool,
        now: Instant,
    ) -> io::Result<(Conn, bool)> {
        if !fresh {
            while let Some(conn) = self.take(addr, now) {
                if poll_fn(|cx| Poll::Ready(conn.usable(cx))).await {
                    return Ok((conn, true));
                }
            }
        }
        let stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(r) => r?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
        };
        stream.set_nodelay(true)?;
        Ok((Conn::new(stream), false))
    }
}

/// A checked-out connection and the in-flight mark of its member, held by the response
/// body. At end of body the connection goes back to the pool when reusable; dropped
/// early, it is closed.
pub(crate) struct Lease {
    pub guard: ActiveGuard,
    pub conn: Option<Conn>,
    pub addr: SocketAddr,
}

impl Lease {
    /// The response ended at `now`: the connection goes back to the pool if `reusable`
    /// (and nothing unread is left on it), else it is closed.
    pub fn finish(&mut self, now: Instant, reusable: bool) {
        if let Some(conn) = self.conn.take()
            && reusable
            && conn.rbuf.is_empty()
        {
            let backend = self.guard.backend();
            if backend.keeps_connections() {
                backend.conns.put(self.addr, conn, now);
            }
        }
    }
}
