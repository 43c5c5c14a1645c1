//! Who writes through a store handle, and the fence its writes must pass.
//!
//! A [`Writer`] names the replica whose handle it is (stamped on every activity entry
//! written through it) and, for the handle the control tasks write through, a [`Fence`]:
//! the lease they act under. Every write transaction through a fenced handle first checks,
//! in the same transaction, that the lease still has the generation this replica holds —
//! on PostgreSQL with the lease's row share-locked until commit, so a successor's takeover
//! waits for writes in flight and every write after it is refused. Before that, the fence
//! refuses locally once the holder's monotonic deadline has passed (it has not renewed in
//! time), so a stalled holder stops writing before its lease can expire.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::Notify;

use crate::StoreError;

/// Whose store handle this is.
#[derive(Debug, Default)]
pub struct Writer {
    /// The replica (empty: none named, as for `flotilla user …` on the database directly).
    pub replica: String,
    /// The lease the handle's writes are fenced by.
    pub fence: Option<std::sync::Arc<Fence>>,
}

/// The term of a lease this replica holds.
#[derive(Debug, Clone, Copy)]
struct Term {
    generation: i64,
    /// Past this instant the holder may no longer assume it holds the lease.
    deadline: Instant,
}

/// A lease as this replica holds it, shared by the keeper that renews it and the store
/// handle that checks it.
#[derive(Debug)]
pub struct Fence {
    lease: String,
    holder: String,
    term: Mutex<Option<Term>>,
    refusals: AtomicU64,
    refused: Notify,
}

/// Why a fenced write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This replica does not hold the lease (never did, or stepped down).
    NotHeld,
    /// It has not renewed in time: its deadline passed.
    Deadline,
    /// The database holds another generation: a successor took over.
    Superseded,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotHeld => "not held",
            Self::Deadline => "deadline passed",
            Self::Superseded => "superseded",
        }
    }
}

impl Fence {
    /// The fence of lease `lease` as held by replica `holder`, not held yet.
    pub fn new(lease: &str, holder: &str) -> Self {
        Self {
            lease: lease.into(),
            holder: holder.into(),
            term: Mutex::new(None),
            refusals: AtomicU64::new(0),
            refused: Notify::new(),
        }
    }

    pub fn lease(&self) -> &str {
        &self.lease
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Holds the lease at `generation` until `deadline` (a renewal moves the deadline).
    pub fn hold(&self, generation: i64, deadline: Instant) {
        *self.lock() = Some(Term {
            generation,
            deadline,
        });
    }

    /// No longer holds the lease: every write through the handle is refused.
    pub fn release(&self) {
        *self.lock() = None;
    }

    /// The generation held, if any (whatever the deadline).
    pub fn generation(&self) -> Option<i64> {
        self.lock().map(|t| t.generation)
    }

    /// How many writes were refused since the start.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }

    /// Resolves at the next refusal (the keeper steps down).
    pub async fn refused(&self) {
        self.refused.notified().await;
    }

    /// The generation a write — or a call to the hypervisor — may go ahead under, as far
    /// as this replica knows without asking the database (`Fenced` once the term is gone
    /// or its deadline passed).
    pub fn check(&self) -> Result<i64, StoreError> {
        let term = *self.lock();
        match term {
            None => Err(self.refuse(Refusal::NotHeld, None)),
            Some(t) if Instant::now() >= t.deadline => {
                Err(self.refuse(Refusal::Deadline, Some(t.generation)))
            }
            Some(t) => Ok(t.generation),
        }
    }

    /// Counts a refusal, wakes the keeper, and answers the error.
    pub(crate) fn refuse(&self, reason: Refusal, generation: Option<i64>) -> StoreError {
        self.refusals.fetch_add(1, Ordering::Relaxed);
        self.refused.notify_waiters();
        tracing::warn!(lease = %self.lease, ?generation, reason = reason.as_str(), "write refused by the lease fence");
        StoreError::Fenced {
            lease: self.lease.clone(),
            generation,
            reason,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Term>> {
        self.term.lock().expect("fence poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_fence_refuses_until_held_and_after_its_deadline() {
        let fence = Fence::new("leader", "r1");
        assert!(matches!(
            fence.check(),
            Err(StoreError::Fenced {
                reason: Refusal::NotHeld,
                ..
            })
        ));
        fence.hold(4, Instant::now() + Duration::from_secs(60));
        assert_eq!(fence.check().unwrap(), 4);
        fence.hold(4, Instant::now());
        assert!(matches!(
            fence.check(),
            Err(StoreError::Fenced {
                reason: Refusal::Deadline,
                generation: Some(4),
                ..
            })
        ));
        fence.release();
        assert_eq!(fence.generation(), None);
        assert_eq!(fence.refusals(), 2);
    }
}
