//! # flotilla-control
//!
//! The control plane: a facade, tasks, and what they share.
//!
//! - [`Fleet`] (`fleet/`, by resource) is the one service facade: the REST API, the portal's
//!   server functions and the CLI (through the API) change state only through it. It
//!   validates with `flotilla-domain`, writes desired state to the [`Store`], records an
//!   activity entry, publishes an [`Event`] and wakes the tasks concerned.
//! - The tasks (`tasks/`) do the work: the reconciler with its per-set driver, the prober,
//!   the pool sync, the metrics collector, the autoscaler, the webhooks, the rollout
//!   engine, the orphan sweep, retention and the backend's events. Each is a struct owning
//!   its state, built from the context and the explicit handles it needs; a small registry
//!   starts and stops them, activates one by name and reports each one's status
//!   ([`Fleet::tasks`], `GET /api/v1/control/tasks`). `tasks/mod.rs` says which task writes
//!   what. No task imports the facade: dependencies run one way, facade → tasks → context.
//! - The context (`context.rs`) is what every task and the facade share and nothing that
//!   belongs to one task: the store, the backend, the clock, the event bus, the load
//!   balancer handle (`balancer.rs`: frontends applied before a spec is stored, pools) and
//!   the settings ([`FleetConfig`]).
//!
//! - The leadership keeper (`leadership.rs`): this replica's heartbeat and the leader lease
//!   whose generation fences every write the leader's tasks make ([`flotilla_store::Fence`]);
//!   it has the registry start the leader's tasks when the replica gains the lease and stop
//!   them when it loses it. The facade writes through an unfenced handle that names this
//!   replica: what a request asks is done by whichever replica serves it. The `relay` task
//!   carries change notices between replicas.
//!
//! - [`Accounts`] (`accounts.rs`): users, role assignments and API tokens, and who a request
//!   is ([`Principal`]), with the caches that keep checking a token off a request's time.
//!
//! Decisions are pure functions of `flotilla-domain` — the reconcile plan, repairs,
//! autoscale decisions, rollout plans and steps, the orphan sweep — and the tasks gather,
//! call them, write intent before acting and results after, so a crash at any point
//! converges on restart.
//!
//! [`Store`]: flotilla_store::Store
//! [`Event`]: flotilla_domain::Event
#![forbid(unsafe_code)]

pub mod accounts;
mod balancer;
pub mod clock;
mod config;
mod context;
pub mod error;
pub mod events;
mod fleet;
pub mod leadership;
mod tasks;

pub use accounts::{Accounts, Caller, Principal};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{FleetConfig, MetricsConfig};
pub use error::{Error, Result};
pub use events::EventBus;
pub use fleet::{
    AutoscaleAnswer, Fleet, MetricsQuery, PreviewRequest, RollbackRequest, RolloutControl,
    StartRollout,
};
pub use flotilla_domain::{BackendInfo, ConsoleOutput};
pub use leadership::{LeadershipStats, LeaseTiming, ReplicaConfig, SingleHolder};
pub use tasks::TaskStatus;
pub use tasks::metrics::CollectorStats;
pub use tasks::prober::ProberStats;
pub use tasks::reconciler::Outcome;
pub use tasks::reconciler::driver::LoopStatus;
