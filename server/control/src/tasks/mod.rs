//! The control plane's tasks and the registry that starts them.
//!
//! Each task is a struct owning its state, built from the [`Context`] and the explicit
//! handles it needs (the facade gets the same handles to read what tasks hold); none
//! imports the facade. The [`Registry`] starts them, stops them, activates one by name and
//! reports for each a [`TaskStatus`] (`GET /api/v1/control/tasks`); it is the one place
//! that starts and stops the control plane's work. Tasks that write for the fleet run on the
//! replica holding the leader lease only ([`Scope::Leader`]: started when it gains the lease,
//! stopped when it loses it, see `leadership.rs`); the others on every replica
//! ([`Scope::Replica`]).
//!
//! Who writes what:
//!
//! | task | runs | writes |
//! |---|---|---|
//! | (`leadership`, not a registry task) | every replica, every 4 s (1 s while standing by) | its replica's heartbeat with its load balancer frontends' counters, the leader lease; starts and stops the leader's tasks |
//! | `reconciler` | a loop per scale set (`driver`), every reconcile interval and when woken | instance records (intent, then results; `retiring` and `deleting` of instances moving off closed hosts), repair status, VMs through the backend, the removal of a deleted set; the only task that creates or deletes VMs of known sets |
//! | `prober` | every 100 ms | instances' health state (changes only); last probe results in memory, and in the store every 2 s |
//! | `relay` | every replica: on each event it causes, on each notification | nothing stored: tells the other replicas what changed (ids), re-reads and publishes what they changed, wakes the set's loop |
//! | `pool_sync` | every replica: every 50 ms, on instance events | this replica's load balancer pools (memory) |
//! | `metrics` | every collector interval | metric rings in memory (traffic over every replica's frontends), 1-minute roll-ups; prunes old roll-ups and decisions |
//! | `autoscaler` | every autoscale interval | decisions, the desired capacity (nothing else) |
//! | `webhooks` | on each scale action | delivery activity entries; sends signed POSTs |
//! | `rollouts` | every 200 ms and when woken | rollout records, instances' target version, pending reimage and `retiring`, deletions of replaced instances; a rollback's model version |
//! | `orphan_sweep` | every minute | deletes this installation's VMs of unknown sets after the grace period |
//! | `retention` | every 10 minutes | prunes the activity log and unneeded model versions |
//! | `backend_events` | on each VM change the backend announces | nothing: wakes the VM's set |
//! | `host_watch` | every 2 s | host maintenance records of unreachable hosts (closed after `host_unreachable_after`, opened when they answer) |

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::error::chain;

pub(crate) mod autoscaler;
pub(crate) mod backend_events;
pub(crate) mod host_watch;
pub(crate) mod metrics;
pub(crate) mod orphans;
pub(crate) mod pool_sync;
pub(crate) mod prober;
pub(crate) mod reconciler;
pub(crate) mod relay;
pub(crate) mod retention;
pub(crate) mod rollouts;
pub(crate) mod webhooks;

/// What `GET /api/v1/control/tasks` shows of one task (the names `/control/loops` uses for
/// each scale set's loop, plus `name` and `doing`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskStatus {
    pub name: String,
    pub activations: u64,
    pub last_started: Option<DateTime<Utc>>,
    pub last_duration_ms: Option<i64>,
    /// What the last activation did, or its error.
    pub last_result: String,
    pub consecutive_failures: u32,
    /// What the task is busy with now (`idle` between activations).
    pub doing: String,
}

/// Where a task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// On every replica, from start to shutdown.
    Replica,
    /// On the replica holding the leader lease, while it does: its writes are fenced.
    Leader,
}

/// A task the registry runs: it works until its [`Control`] says stop, reporting each
/// activation.
pub(crate) trait Task: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn run(self: Arc<Self>, control: Control) -> BoxFuture<'static, ()>;

    /// Where it runs: under the leader lease unless it writes nothing shared.
    fn scope(&self) -> Scope {
        Scope::Leader
    }
}

/// A task's side of the registry: when to act and where to report.
pub(crate) struct Control {
    status: Arc<Mutex<TaskStatus>>,
    activate: Arc<Notify>,
    stop: CancellationToken,
    clock: Arc<dyn Clock>,
}

/// One activation in progress (see [`Control::begin`]).
pub(crate) struct Activation {
    started: Instant,
}

impl Control {
    /// Cancelled when the task must stop.
    pub(crate) fn stop(&self) -> &CancellationToken {
        &self.stop
    }

    /// Waits `delay`, or less when someone activates the task; `false` when it must stop.
    pub(crate) async fn next(&self, delay: Duration) -> bool {
        tokio::select! {
            () = self.stop.cancelled() => false,
            () = self.activate.notified() => true,
            () = tokio::time::sleep(delay) => true,
        }
    }

    /// Resolves when someone activates the task by name (for tasks that wait on more than
    /// a timer).
    pub(crate) async fn activated(&self) {
        self.activate.notified().await;
    }

    /// Says what the task is busy with.
    pub(crate) fn doing(&self, what: impl Into<String>) {
        self.lock().doing = what.into();
    }

    /// An activation starts now.
    pub(crate) fn begin(&self) -> Activation {
        let now = self.clock.now();
        let mut status = self.lock();
        status.activations += 1;
        status.last_started = Some(now);
        Activation {
            started: Instant::now(),
        }
    }

    /// The activation ended with `result`: what it did, or its error.
    pub(crate) fn end<E: std::error::Error>(
        &self,
        activation: Activation,
        result: &Result<String, E>,
    ) {
        let mut status = self.lock();
        status.last_duration_ms = Some(activation.started.elapsed().as_millis() as i64);
        match result {
            Ok(done) => {
                status.last_result.clone_from(done);
                status.consecutive_failures = 0;
            }
            Err(e) => {
                tracing::warn!(task = %status.name, error = %chain(e), "task activation failed");
                status.last_result = chain(e);
                status.consecutive_failures += 1;
            }
        }
    }

    /// Runs `activation` as one reported activation.
    pub(crate) async fn activation<E: std::error::Error>(
        &self,
        work: impl Future<Output = Result<String, E>>,
    ) {
        let started = self.begin();
        let result = work.await;
        self.end(started, &result);
    }

    /// Writes the status directly (a task that aggregates activations of its own, like
    /// the reconciler's per-set loops).
    pub(crate) fn report(&self, change: impl FnOnce(&mut TaskStatus)) {
        change(&mut self.lock());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TaskStatus> {
        self.status.lock().expect("task status poisoned")
    }
}

struct Entry {
    task: Arc<dyn Task>,
    status: Arc<Mutex<TaskStatus>>,
    activate: Arc<Notify>,
}

/// The tasks of one scope while they run.
struct Running {
    stop: CancellationToken,
    tracker: TaskTracker,
}

/// Starts, stops and reports the tasks.
pub(crate) struct Registry {
    clock: Arc<dyn Clock>,
    entries: Vec<Entry>,
    /// The running scopes and what stops each.
    running: Mutex<Vec<(Scope, Running)>>,
}

impl Registry {
    pub(crate) fn new(clock: Arc<dyn Clock>, tasks: Vec<Arc<dyn Task>>) -> Self {
        let entries = tasks
            .into_iter()
            .map(|task| Entry {
                status: Arc::new(Mutex::new(TaskStatus {
                    name: task.name().into(),
                    activations: 0,
                    last_started: None,
                    last_duration_ms: None,
                    last_result: "not started".into(),
                    consecutive_failures: 0,
                    doing: "stopped".into(),
                })),
                activate: Arc::new(Notify::new()),
                task,
            })
            .collect();
        Self {
            clock,
            entries,
            running: Mutex::new(Vec::new()),
        }
    }

    /// Starts every task of `scope` (nothing when they run already).
    pub(crate) fn start(&self, scope: Scope) {
        let mut running = self.running.lock().expect("registry poisoned");
        if running.iter().any(|(s, _)| *s == scope) {
            return;
        }
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        for entry in self.entries.iter().filter(|e| e.task.scope() == scope) {
            entry.status.lock().expect("task status poisoned").doing = "idle".into();
            let control = Control {
                status: entry.status.clone(),
                activate: entry.activate.clone(),
                stop: stop.child_token(),
                clock: self.clock.clone(),
            };
            let status = entry.status.clone();
            let work = entry.task.clone().run(control);
            tracker.spawn(async move {
                work.await;
                status.lock().expect("task status poisoned").doing = "stopped".into();
            });
        }
        tracker.close();
        running.push((scope, Running { stop, tracker }));
    }

    /// Stops every task of `scope` and waits until each has.
    pub(crate) async fn stop(&self, scope: Scope) {
        let stopped = {
            let mut running = self.running.lock().expect("registry poisoned");
            let at = running.iter().position(|(s, _)| *s == scope);
            at.map(|at| running.remove(at).1)
        };
        if let Some(Running { stop, tracker }) = stopped {
            stop.cancel();
            tracker.wait().await;
        }
    }

    /// Activates task `name` now; `false` when there is none of that name.
    pub(crate) fn activate(&self, name: &str) -> bool {
        match self.entries.iter().find(|e| e.task.name() == name) {
            Some(entry) => {
                entry.activate.notify_one();
                true
            }
            None => false,
        }
    }

    /// Every task's status, in the order they were registered.
    pub(crate) fn status(&self) -> Vec<TaskStatus> {
        self.entries
            .iter()
            .map(|e| e.status.lock().expect("task status poisoned").clone())
            .collect()
    }
}
