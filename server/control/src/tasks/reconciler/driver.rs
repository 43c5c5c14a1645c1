//! The driver: one long-lived loop per scale set runs the reconciler, woken periodically and
//! on demand — the `reconciler` task of the registry.
//!
//! Invariants: at most one activation per scale set at a time (its loop runs them one after
//! another; wakes during an activation coalesce into one more); at most
//! `max_concurrent_activations` activations across all sets (a semaphore); after a failed
//! activation the set's next periodic activation backs off exponentially (1 s doubling up
//! to the period × 8), and a success resets it. Loops run only while the task runs: a wake
//! before the registry starts it, or after it stopped, does nothing. Each loop's status is
//! at `/control/loops`; the task's own status (`/control/tasks`) sums them up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Outcome, Reconciler};
use crate::error::chain;
use crate::tasks::{Control, Task};

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

/// What the loops share while the task runs.
struct Running {
    control: Arc<Control>,
    stop: CancellationToken,
}

pub(crate) struct Driver {
    reconciler: Arc<Reconciler>,
    running: Mutex<Option<Running>>,
    sets: Mutex<HashMap<String, Arc<Notify>>>,
    status: Mutex<HashMap<String, LoopStatus>>,
    limit: Arc<Semaphore>,
    tracker: TaskTracker,
}

/// Wakes scale sets' loops: the one capability other tasks get of the reconciler.
#[derive(Clone)]
pub(crate) struct SetWaker(Arc<Driver>);

impl SetWaker {
    /// Activates the loop of `name` now (starting it if it is not running).
    pub(crate) fn wake(&self, name: &str) {
        self.0.wake(name);
    }
}

impl Driver {
    pub(crate) fn new(reconciler: Arc<Reconciler>, max_concurrent_activations: usize) -> Self {
        Self {
            reconciler,
            running: Mutex::new(None),
            sets: Mutex::new(HashMap::new()),
            status: Mutex::new(HashMap::new()),
            limit: Arc::new(Semaphore::new(max_concurrent_activations.max(1))),
            tracker: TaskTracker::new(),
        }
    }

    pub(crate) fn waker(self: &Arc<Self>) -> SetWaker {
        SetWaker(self.clone())
    }

    /// Activates the loop of `name` now (starting the loop if it is not running).
    pub(crate) fn wake(self: &Arc<Self>, name: &str) {
        let running = self.running.lock().expect("driver mutex poisoned");
        let Some(Running { control, stop }) = running.as_ref() else {
            return;
        };
        let mut sets = self.sets.lock().expect("driver mutex poisoned");
        if let Some(wake) = sets.get(name) {
            wake.notify_one();
            return;
        }
        let wake = Arc::new(Notify::new());
        wake.notify_one();
        sets.insert(name.to_string(), wake.clone());
        self.tracker.spawn(self.clone().run_loop(
            name.to_string(),
            wake,
            control.clone(),
            stop.clone(),
        ));
    }

    /// Every set's loop status, by name.
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

    fn forget(&self, name: &str) {
        self.sets
            .lock()
            .expect("driver mutex poisoned")
            .remove(name);
        self.status
            .lock()
            .expect("driver mutex poisoned")
            .remove(name);
    }

    /// Wakes every stored set's loop.
    async fn wake_all(self: &Arc<Self>) -> crate::Result<String> {
        let sets = self.reconciler.ctx.read_sets().await?;
        for set in &sets {
            self.wake(set.name());
        }
        Ok(format!("woke {} scale set(s)", sets.len()))
    }

    async fn run_loop(
        self: Arc<Self>,
        name: String,
        wake: Arc<Notify>,
        control: Arc<Control>,
        stop: CancellationToken,
    ) {
        let config = &self.reconciler.ctx.config;
        let (period, settle) = (config.reconcile_interval, config.settle_interval);
        let mut delay = period;
        let mut failures: u32 = 0;
        let mut activations: u64 = 0;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(delay) => {}
            }
            let Ok(_permit) = self.limit.acquire().await else {
                return;
            };
            if stop.is_cancelled() {
                return;
            }
            activations += 1;
            let started = self.reconciler.ctx.now();
            let activation = control.begin();
            let clock = std::time::Instant::now();
            let outcome = self.reconciler.reconcile(&name).await;
            let elapsed = clock.elapsed();
            let last_result = match &outcome {
                Ok(Outcome::Gone) => {
                    self.forget(&name);
                    control.end::<crate::Error>(activation, &Ok(format!("{name}: removed")));
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
            // The task's status: the latest activation of any set, and the longest run of
            // failures among them.
            control.end::<crate::Error>(activation, &Ok(format!("{name}: {last_result}")));
            let mut status = self.status.lock().expect("driver mutex poisoned");
            status.insert(
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
            let worst = status
                .values()
                .map(|s| s.consecutive_failures)
                .max()
                .unwrap_or(0);
            let loops = status.len();
            drop(status);
            control.report(|s| {
                s.consecutive_failures = worst;
                s.doing = format!("{loops} scale set loop(s)");
            });
        }
    }
}

impl Task for Driver {
    fn name(&self) -> &'static str {
        "reconciler"
    }

    /// Wakes every stored set at start and whenever activated; stops every loop (waiting
    /// for activations in progress) when told to stop.
    fn run(self: Arc<Self>, control: Control) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let control = Arc::new(control);
            let stop = control.stop().child_token();
            self.tracker.reopen();
            *self.running.lock().expect("driver mutex poisoned") = Some(Running {
                control: control.clone(),
                stop: stop.clone(),
            });
            let mut first = true;
            loop {
                if !first {
                    tokio::select! {
                        () = control.stop().cancelled() => break,
                        () = control.activated() => {}
                    }
                }
                first = false;
                if let Err(e) = self.wake_all().await {
                    tracing::warn!(error = %chain(&e), "the reconciler could not list scale sets");
                }
            }
            *self.running.lock().expect("driver mutex poisoned") = None;
            stop.cancel();
            self.tracker.close();
            self.tracker.wait().await;
            self.sets.lock().expect("driver mutex poisoned").clear();
        })
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
