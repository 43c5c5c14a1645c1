//! # flotilla-domain
//!
//! The functional core of Flotilla: the types of scale sets and instances, their validation
//! with a message per field, and the pure planners every control loop calls. Nothing here
//! does I/O or reads the clock — callers pass `now` — so the same code runs on the server,
//! in the simulator and, compiled to wasm, in the browser.
//!
//! - [`scale_set`] — the spec (model and policies), stored view, partial updates;
//! - [`instance`] — instances, their state enums and which actions each state accepts;
//! - [`lifecycle`] — lifecycle hooks: launching and terminating waits, their timeouts,
//!   heartbeats and completions;
//! - [`placement`] — zone and fault-domain placement of new instances;
//! - [`scale_in`] — scale-in victim choice (Azure's Default, NewestVM, OldestVM);
//! - [`health`] — probe results and the health state machine;
//! - [`repair`] — automatic repairs: candidates, rate limit, suspension;
//! - [`rollout`] — model version changes, the rollout plan of batches, health gates,
//!   each instance's step, and one step of a running rollout (`rollout::step`);
//! - [`load_balancer`] — the load balancer's statistics;
//! - [`reconcile`] — observed state folded into records, and the reconcile plan;
//! - [`replica`] — control-plane replicas and the leases (with fencing generations) they hold;
//! - [`orphan`] — which of this installation's VMs belong to no known scale set, and when
//!   they may go;
//! - [`autoscale`] — the autoscale setting, metric rules with the flapping projection,
//!   target tracking, and the evaluation that records a decision;
//! - [`schedule`] — which profile applies when (weekly recurrences, fixed dates, time zones);
//! - [`metrics`] — metric names, aggregate points and re-bucketing;
//! - [`demand`] — the mock's synthetic demand patterns;
//! - [`access`] — roles, role assignments, users and API tokens as shown, the evaluation
//!   of a principal's role on a resource, the token format;
//! - [`activity`], [`event`] — the activity log and the event stream's payloads;
//! - [`fault`] — faults the mock hypervisor simulates on request;
//! - [`secret`] — what reads show instead of secrets (keys, webhook URLs and secrets,
//!   user data), and the scrub of activity details;
//! - [`time_zone`] — IANA time zones: chrono-tz natively, the browser's `Intl` in wasm;
//! - [`validation`] — field errors; [`url`] — percent-encoding for links.
#![forbid(unsafe_code)]

pub mod access;
pub mod activity;
pub mod autoscale;
pub mod demand;
pub mod event;
pub mod fault;
mod flatten;
pub mod health;
pub mod instance;
pub mod lifecycle;
pub mod load_balancer;
pub mod maintenance;
pub mod metrics;
pub mod orphan;
pub mod placement;
pub mod reconcile;
pub mod repair;
pub mod replica;
pub mod rollout;
pub mod scale_in;
pub mod scale_set;
pub mod schedule;
pub mod secret;
pub mod time_zone;
pub mod url;
pub mod validation;
pub mod warm_pool;

pub use activity::{Activity, ActivityFilter, ActivityResult, NewActivity};
pub use event::Event;
pub use fault::Fault;
pub use health::{HealthCounter, ProbeResult};
pub use instance::{
    ActionEffect, DesiredPower, HealthState, Instance, InstanceAction, Lifecycle, LifecycleResult,
    LifecycleState, LifecycleTransition, PendingAction, PowerState, Protection, ProvisioningState,
    Warm, WarmPoolState,
};
pub use placement::{BackendInfo, ConsoleOutput, HostStatus, ZoneStatus};
pub use reconcile::{BackendVm, ObservedVm};
pub use repair::RepairStatus;
pub use scale_set::{
    Model, ScaleSet, ScaleSetPatch, ScaleSetSpec, ScaleSetState, ValidationContext,
};
pub use validation::{FieldError, TypedInput, ValidationErrors};
