//! Cutting off peers that stop making progress: [`Stall`] times one kind of wait (a write
//! the peer does not take, a read the member does not answer), [`WriteTimeout`] applies it
//! to every write of a stream.
//!
//! Cheap when nothing stalls: progress costs a store, a wait reads the clock once when it
//! starts, and the timer — allocated on the first wait, then kept — is reset only when it
//! fires before the current wait's deadline (left from an earlier wait), so a stream that
//! keeps moving resets it at most once per period instead of once per wait.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

#[derive(Default)]
pub(crate) struct Stall {
    /// When the current wait began; `None` while progressing.
    since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Stall {
    /// Passes an operation's `poll` through, but turns a wait that lasted `limit` (since
    /// the last `Ready`) into a `TimedOut` error saying `what`. The task is woken when the
    /// limit is reached, so the caller polls the operation again and gets the error.
    pub fn watch<T>(
        &mut self,
        poll: Poll<io::Result<T>>,
        limit: Duration,
        what: &'static str,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.since = None;
            return poll;
        }
        match self.poll_expired(limit, cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_expired(&mut self, limit: Duration, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = *self.since.get_or_insert_with(Instant::now) + limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() > deadline {
            timer.as_mut().reset(deadline);
        }
        while timer.as_mut().poll(cx).is_ready() {
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
            timer.as_mut().reset(deadline);
        }
        Poll::Pending
    }
}

/// A stream whose writes fail with `TimedOut` once the peer took nothing for `limit`.
pub(crate) struct WriteTimeout<S> {
    io: S,
    limit: Duration,
    stall: Stall,
}

impl<S> WriteTimeout<S> {
    pub fn new(io: S, limit: Duration) -> Self {
        Self {
            io,
            limit,
            stall: Stall::default(),
        }
    }
}

const NOT_READING: &str = "the peer stopped reading";

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.stall.watch(poll, this.limit, NOT_READING, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.stall.watch(poll, this.limit, NOT_READING, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.stall.watch(poll, this.limit, NOT_READING, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    /// A wait that never ends, watched.
    async fn wait(stall: &mut Stall, limit: Duration) -> io::Error {
        poll_fn(|cx| stall.watch::<()>(Poll::Pending, limit, "stuck", cx))
            .await
            .unwrap_err()
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_expires_after_its_limit_and_progress_restarts_it() {
        let limit = Duration::from_secs(10);
        let mut stall = Stall::default();
        let start = Instant::now();
        let e = wait(&mut stall, limit).await;
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), limit);

        // Progress, then a new wait: a full limit again, though the timer still holds
        // the first deadline.
        poll_fn(|cx| stall.watch(Poll::Ready(Ok(())), limit, "stuck", cx))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(3)).await;
        let start = Instant::now();
        wait(&mut stall, limit).await;
        assert_eq!(start.elapsed(), limit);

        // A wait cut short by progress leaves its timer armed late; a wait with a shorter
        // limit moves it earlier.
        poll_fn(|cx| {
            assert!(
                stall
                    .watch(Poll::Ready(Ok(())), limit, "stuck", cx)
                    .is_ready()
            );
            assert!(
                stall
                    .watch::<()>(Poll::Pending, limit, "stuck", cx)
                    .is_pending()
            );
            stall.watch(Poll::Ready(Ok(())), limit, "stuck", cx)
        })
        .await
        .unwrap();
        let start = Instant::now();
        wait(&mut stall, Duration::from_secs(1)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}
