//! The driver: one long-lived task per scale set runs the reconciler, woken periodically and
//! on demand.
//!
//! Invariants: at most one activation per scale set at a time (its task runs them one after
//! another; wakes during an activation coalesce into one more); at most
//! `max_concurrent_activations` activations across all sets (a semaphore); after a failed
//! activation the set's next periodic activation backs off exponentially (1 s doubling up
//! to the period × 8), and a success resets it. Every task is owned by the driver's
//! tracker and stops on shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::chain;
use crate::fleet::Shared;
use crate::reconciler::{Outcome, reconcile};

/// What the portal and API show about one scale set's loop.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoopStatus {
    pub scale_set: String,
    pub activations: u64,
    pub last_started: Option<DateTime<Utc>>,
    pub last_duration_ms: Option<i64>,
    /// `ok: N actions`, `settling`, or the error of the last activation.
    pub last_result: String,
    pub consecutive_failures: u32,
}

struct Handle {
    wake: Arc<Notify>,
}

pub(crate) struct Driver {
    sets: Mutex<HashMap<String, Handle>>,
    status: Arc<Mutex<HashMap<String, LoopStatus>>>,
    limit: Arc<Semaphore>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl Driver {
    pub(crate) fn new(max_concurrent_activations: usize) -> Self {
        Self {
            sets: Mutex::new(HashMap::new()),
            status: Arc::new(Mutex::new(HashMap::new())),
            limit: Arc::new(Semaphore::new(max_concurrent_activations.max(1))),
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Activates the loop of `name` now (starting the loop if it is not running).
    pub(crate) fn wake(&self, shared: &Arc<Shared>, name: &str) {
        if self.shutdown.is_cancelled() {
            return;
        }
        let mut sets = self.sets.lock().expect("driver mutex poisoned");
        if let Some(h) = sets.get(name) {
            h.wake.notify_one();
            return;
        }
        let wake = Arc::new(Notify::new());
        wake.notify_one();
        sets.insert(name.to_string(), Handle { wake: wake.clone() });
        let task = run_loop(
            shared.clone(),
            name.to_string(),
            wake,
            self.limit.clone(),
            self.status.clone(),
            self.shutdown.clone(),
        );
        self.tracker.spawn(task);
    }

    pub(crate) fn forget(&self, name: &str) {
        self.sets
            .lock()
            .expect("driver mutex poisoned")
            .remove(name);
        self.status
            .lock()
            .expect("driver mutex poisoned")
            .remove(name);
    }

    pub(crate) fn status(&self) -> Vec<LoopStatus> {
        let mut all: Vec<LoopStatus> = self
            .status
            .lock()
            .expect("driver mutex poisoned")
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.scale_set.cmp(&b.scale_set));
        all
    }

    /// Stops every loop and waits for activations in progress to finish.
    pub(crate) async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

async fn run_loop(
    shared: Arc<Shared>,
    name: String,
    wake: Arc<Notify>,
    limit: Arc<Semaphore>,
    status: Arc<Mutex<HashMap<String, LoopStatus>>>,
    shutdown: CancellationToken,
) {
    let period = shared.config.reconcile_interval;
    let settle = shared.config.settle_interval;
    let mut delay = period;
    let mut failures: u32 = 0;
    let mut activations: u64 = 0;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(delay) => {}
        }
        let Ok(_permit) = limit.acquire().await else {
            return;
        };
        if shutdown.is_cancelled() {
            return;
        }
        activations += 1;
        let started = shared.clock.now();
        let clock = std::time::Instant::now();
        let outcome = reconcile(&shared, &name).await;
        let elapsed = clock.elapsed();
        let last_result = match &outcome {
            Ok(Outcome::Gone) => {
                shared.driver.forget(&name);
                return;
            }
            Ok(Outcome::Done {
                actions,
                failures: 0,
                settling,
            }) => {
                failures = 0;
                delay = if *settling { settle } else { period };
                if *settling && *actions == 0 {
                    "settling".to_string()
                } else {
                    format!("ok: {actions} actions")
                }
            }
            Ok(Outcome::Done {
                actions,
                failures: failed,
                ..
            }) => {
                failures += 1;
                delay = backoff(failures, period);
                format!("{failed} of {actions} actions failed")
            }
            Err(e) => {
                failures += 1;
                delay = backoff(failures, period);
                tracing::warn!(scale_set = %name, error = %chain(e), "reconcile failed");
                chain(e)
            }
        };
        status.lock().expect("driver mutex poisoned").insert(
            name.clone(),
            LoopStatus {
                scale_set: name.clone(),
                activations,
                last_started: Some(started),
                last_duration_ms: Some(elapsed.as_millis() as i64),
                last_result,
                consecutive_failures: failures,
            },
        );
    }
}

/// 1 s, 2 s, 4 s … capped at eight periods.
fn backoff(failures: u32, period: Duration) -> Duration {
    let exp = Duration::from_secs(1u64 << failures.saturating_sub(1).min(16));
    exp.min(period * 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = Duration::from_secs(10);
        let got: Vec<u64> = (1..=9).map(|f| backoff(f, p).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 64, 80, 80]);
    }
}
