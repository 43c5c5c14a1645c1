//! # flotilla-control
//!
//! The control plane. [`Fleet`] is the one service facade: the REST API, the portal's
//! server functions and the CLI (through the API) change state only through it. It
//! validates with `flotilla-domain`, writes desired state to the [`Store`], records an
//! activity entry, publishes an [`Event`] and wakes the loops.
//!
//! The [`driver`] runs one reconcile loop per scale set, activated periodically and on
//! demand, one activation at a time per set, with bounded concurrency and a per-set backoff
//! that resets on success. The [`reconciler`] gathers observed state, calls the pure planner
//! in `flotilla-domain` and executes the plan, writing intent before acting and results
//! after, so a crash at any point converges on restart.
//!
//! Each activation also plans automatic repairs (`flotilla_domain::repair`) before it
//! plans capacity, and waits for the load balancer to drain an instance before it stops,
//! restarts, reimages or deletes it. Two more tasks run beside the loops: the [`prober`]
//! turns probe results into health states, and the pool sync in `balancer.rs` keeps the
//! load balancer's pools equal to each set's serving instances; frontends are applied
//! from each set's spec before the spec is stored.
//!
//! Two more run on intervals: the [`metrics`] collector (per-instance rings, per-set ticks,
//! 1-minute roll-ups in the store) and the autoscaler (`autoscaler.rs`), which evaluates each
//! set's autoscale setting with the pure `flotilla_domain::autoscale::decide_setting`, stores
//! every decision, writes only the desired capacity and announces scale actions to signed
//! webhooks (`webhooks.rs`).
//!
//! The [`rollouts`] engine moves instances to a new model version in the batches of the
//! pure planner (`flotilla_domain::rollout`), with health gates, pauses, surge and
//! automatic rollback, persisting every step so a restart resumes it.
//!
//! Two more keep the house: the orphan sweep (`orphans.rs`) removes this installation's VMs
//! of scale sets the database does not know only after a grace period — the reconciler
//! and every backend leave other installations' VMs alone — and retention
//! (`retention.rs`) prunes the activity log and unneeded model versions.
//!
//! Layout: `fleet.rs` (facade), `driver.rs`, `reconciler.rs`, `prober.rs`, `balancer.rs`,
//! `metrics.rs`, `autoscaler.rs` (the loop and the facade's autoscale, demand and metrics
//! operations), `webhooks.rs`, `rollouts.rs` (the engine and the facade's rollout
//! operations), `orphans.rs`, `retention.rs`, `events.rs`, `clock.rs`, `error.rs`.
//!
//! [`Store`]: flotilla_store::Store
//! [`Event`]: flotilla_domain::Event
#![forbid(unsafe_code)]

mod autoscaler;
mod balancer;
pub mod clock;
pub mod driver;
pub mod error;
pub mod events;
pub mod fleet;
pub mod metrics;
mod orphans;
pub mod prober;
pub mod reconciler;
mod retention;
pub mod rollouts;
mod webhooks;

pub use autoscaler::{AutoscaleAnswer, MetricsQuery};
pub use clock::{Clock, ManualClock, SystemClock};
pub use driver::LoopStatus;
pub use error::{Error, Result};
pub use events::EventBus;
pub use fleet::{Fleet, FleetConfig};
pub use flotilla_domain::{BackendInfo, ConsoleOutput};
pub use metrics::{CollectorStats, MetricsConfig};
pub use rollouts::{PreviewRequest, RollbackRequest, RolloutControl, StartRollout};
