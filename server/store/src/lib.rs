//! # flotilla-store
//!
//! The control plane's durable state behind one trait, [`Store`], with two implementations:
//! [`sqlite::SqliteStore`] (the default: one file in the data directory, WAL journal) and
//! [`postgres::PostgresStore`] (several replicas on one database). Migrations live in
//! `migrations/sqlite` and `migrations/postgres` at the workspace root, are embedded in the
//! binary and applied by [`connect`]. Besides the fleet (scale sets, instances, model
//! versions, rollouts, activity and autoscale history, hosts under maintenance) it keeps the
//! accounts: users, role assignments, API tokens and portal sessions — secrets only as the
//! caller hashed them — and what lets several replicas share one database: leases timed by
//! the database's clock with a fencing generation, replica heartbeats, change notifications
//! (PostgreSQL `NOTIFY`), and store handles that name their replica and check a [`Fence`] in
//! every write transaction ([`Store::with_writer`], `fence.rs`).
//! The `conformance` module is the one test suite both
//! pass; it is test support behind the cargo feature `conformance` (off in the production
//! library; this crate's tests and benchmark turn it on through a dev-dependency on the crate
//! itself, other crates' tests through theirs).
//!
//! Layout: `lib.rs` (trait, errors, [`connect`]); `sql.rs` (the contract implemented once
//! over a private `Dialect`: the statements both databases share); `codec.rs` (rows and
//! their decoding); `sqlite.rs`, `postgres.rs` (each dialect: connection, binding, its
//! batch statements); `conformance/` (`mod.rs`: the test databases, the macro and shared
//! fixtures; one file of cases per subject).
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flotilla_domain::access::{ApiToken, RoleAssignment, User};
use flotilla_domain::autoscale::decision::{Decision, DecisionFilter};
use flotilla_domain::instance::StateCount;
use flotilla_domain::load_balancer::FrontendStats;
use flotilla_domain::maintenance::HostMaintenance;
use flotilla_domain::metrics::{Metric, MinuteTicks, Rollup};
use flotilla_domain::replica::{FrontendCounters, Lease, Replica};
use flotilla_domain::rollout::Rollout;
use flotilla_domain::{
    Activity, ActivityFilter, ActivityResult, Instance, Model, NewActivity, ProbeResult,
    RepairStatus, ScaleSet,
};
use serde::{Deserialize, Serialize};

mod codec;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod fence;
pub mod postgres;
mod sql;
pub mod sqlite;

pub use fence::{Fence, Refusal, Writer};

/// What kind of record an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ScaleSet,
    Instance,
    ModelVersion,
    Activity,
    Rollout,
    Installation,
    User,
    RoleAssignment,
    Token,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ScaleSet => "scale set",
            Kind::Instance => "instance",
            Kind::ModelVersion => "model version",
            Kind::Activity => "activity entry",
            Kind::Rollout => "rollout",
            Kind::Installation => "installation",
            Kind::User => "user",
            Kind::RoleAssignment => "role assignment",
            Kind::Token => "API token",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {key:?} not found")]
    NotFound { kind: Kind, key: String },
    #[error("{kind} {key:?} already exists")]
    AlreadyExists { kind: Kind, key: String },
    /// A generation-guarded write found a newer generation: the caller's copy is stale.
    #[error("{kind} {key:?} was changed concurrently (expected generation {expected})")]
    Conflict {
        kind: Kind,
        key: String,
        expected: i64,
    },
    #[error("database error during {operation}")]
    Database {
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("stored {what} could not be decoded")]
    Corrupt {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported database URL {url:?}: expected sqlite:… or postgres://…")]
    UnsupportedUrl { url: String },
    /// A write through a fenced handle whose lease this replica no longer holds (or whose
    /// deadline passed): nothing was written.
    #[error("write refused: lease {lease:?} (generation {}) {}", generation.map_or("none".into(), |g| g.to_string()), reason.as_str())]
    Fenced {
        lease: String,
        generation: Option<i64>,
        reason: Refusal,
    },
    #[error("migrating the database failed")]
    Migrate {
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One version of a scale set's model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub scale_set: String,
    pub version: u32,
    pub model: Model,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// What a scale set's instance records were read at ([`Store::instances_version`]): records
/// held from a read at the same version are current, and their `latest_model` too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct InstancesVersion {
    /// Changes with every write of the set's records.
    pub instances: u64,
    /// The set's model version (`latest_model` is derived from it).
    pub model: u32,
    /// When the set was created: a set deleted and created again under its name counts
    /// its versions anew, and this tells the two apart.
    pub created_at: DateTime<Utc>,
}

/// The result of a batch of generation-guarded instance writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// The records as stored (generation bumped).
    pub written: Vec<Instance>,
    /// Ids whose stored generation differed (or which no longer exist): not written.
    pub stale: Vec<String>,
}

/// The control plane's durable state.
///
/// # Contract
/// - Every method is atomic: it commits entirely or not at all.
/// - Writes that take a record with a `generation` are guarded: they apply only when the
///   stored generation equals the given one, and store `generation + 1`. Callers never set
///   generations themselves. Creates store generation 1.
/// - Timestamps are the caller's (clocks are injected): the store writes what it is given.
/// - `Instance::latest_model` is derived on every read (`model_version` equals the set's).
/// - Lists are ordered: scale sets by name, instances by ordinal, activity and autoscale
///   decisions newest first, metric roll-ups by metric then minute, users by name, role
///   assignments by user then scope (global first), API tokens newest first. Names sort
///   bytewise in both databases.
/// - Deleting a scale set deletes its instances, model versions, metric roll-ups and ticks, rollouts,
///   role assignments and the API tokens scoped to it; activity and autoscale decisions are
///   history, and kept (until pruned, for decisions).
/// - Leases and replica heartbeats are timed by the *database's* clock (the only clock
///   replicas share); the caller gives durations.
/// - A handle made by [`Store::with_writer`] names its replica on every activity entry it
///   appends and, with a fence, checks the fence in every write transaction: `Fenced`
///   when the lease is not held at the fence's generation (see [`fence`]).
/// - Secrets never reach the store: it keeps password hashes, token hashes and session id
///   hashes as the caller computed them, and compares them only for equality.
///
/// # Errors
/// `NotFound`, `AlreadyExists` and `Conflict` are answers about the data; `Database` and
/// `Corrupt` are failures of the store itself.
///
/// # Cancellation
/// Dropping a future before it completes leaves the store as before the call or after it,
/// never in between (each method is one transaction).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a new scale set (generation 1) and its model as version `set.model_version`,
    /// with next ordinal 0. `AlreadyExists` if the name is taken.
    async fn create_scale_set(&self, set: &ScaleSet, created_by: &str) -> Result<ScaleSet>;

    async fn get_scale_set(&self, name: &str) -> Result<Option<ScaleSet>>;

    async fn list_scale_sets(&self) -> Result<Vec<ScaleSet>>;

    /// Replaces the stored set (spec, state, updated_at) if its generation matches
    /// `set.generation`. If `set.model_version` is above the stored one, also stores
    /// `set.spec.model` as that version (by `created_by` at `set.updated_at`).
    /// `NotFound`, or `Conflict` when stale.
    async fn update_scale_set(&self, set: &ScaleSet, created_by: &str) -> Result<ScaleSet>;

    /// Removes the set, its instances, model versions, metric roll-ups and rollouts, the
    /// role assignments on it and the API tokens scoped to it, in one transaction.
    /// `NotFound` if absent.
    async fn delete_scale_set(&self, name: &str) -> Result<()>;

    /// Replaces the set's repair status (no generation guard: only the set's own loop and
    /// a person resuming repairs write it). `NotFound` if absent.
    async fn set_repair_status(&self, name: &str, status: &RepairStatus) -> Result<()>;

    /// The ordinal the next new instance of the set gets.
    async fn next_ordinal(&self, scale_set: &str) -> Result<u64>;

    /// A number that changes, in the same transaction, with every write of the set's
    /// instance records (insert, update, mark deleting, delete), and the set's model
    /// version: records read after a version was read are current as long as it is.
    /// `NotFound` if the set is absent.
    async fn instances_version(&self, scale_set: &str) -> Result<InstancesVersion>;

    async fn get_model_version(
        &self,
        scale_set: &str,
        version: u32,
    ) -> Result<Option<ModelVersion>>;

    /// All versions of a set's model, oldest first.
    async fn list_model_versions(&self, scale_set: &str) -> Result<Vec<ModelVersion>>;

    async fn list_instances(&self, scale_set: &str) -> Result<Vec<Instance>>;

    /// Every instance of every scale set, by scale set then ordinal: one read for views of
    /// the whole fleet (the portal's list and overview).
    async fn list_all_instances(&self) -> Result<Vec<Instance>>;

    async fn get_instance(&self, id: &str) -> Result<Option<Instance>>;

    /// How many instances each set (or only `scale_set`) has in each combination of power,
    /// health and provisioning state and of being on its latest model, by set then state:
    /// counted by the database, so a scrape of a big fleet decodes no record.
    async fn count_instances(&self, scale_set: Option<&str>) -> Result<Vec<StateCount>>;

    /// Inserts new instance records (stored with generation 1) and sets the scale set's
    /// next ordinal to `next_ordinal`, in one transaction. `NotFound` if the set is absent,
    /// `AlreadyExists` if an id is taken (then nothing is written).
    async fn insert_instances(
        &self,
        scale_set: &str,
        instances: &[Instance],
        next_ordinal: u64,
    ) -> Result<Vec<Instance>>;

    /// Writes each record whose stored generation equals its `generation`; the others are
    /// reported as stale. One transaction for the whole batch.
    async fn update_instances(&self, instances: &[Instance]) -> Result<Written>;

    /// Removes instance records; absent ids are ignored.
    async fn delete_instances(&self, ids: &[String]) -> Result<()>;

    /// Marks the given instances of `set` `deleting` and, when `decrement_capacity`, lowers
    /// the set's capacity by the number marked — in one transaction guarded by
    /// `set.generation`. Instances already deleting are left as they are and not counted.
    /// Returns the updated set and the marked records. `Conflict` when the set is stale,
    /// `NotFound` when the set or an instance is absent (then nothing is written).
    async fn mark_deleting(
        &self,
        set: &ScaleSet,
        ids: &[String],
        decrement_capacity: bool,
        now: DateTime<Utc>,
    ) -> Result<(ScaleSet, Vec<Instance>)>;

    /// Appends an entry and returns it with its id.
    async fn append_activity(&self, entry: &NewActivity) -> Result<Activity>;

    /// Records the end of an entry. `NotFound` if absent.
    async fn finish_activity(
        &self,
        id: i64,
        ended_at: DateTime<Utc>,
        result: ActivityResult,
        error: Option<&str>,
        details: &serde_json::Value,
    ) -> Result<Activity>;

    /// Entries matching the filter (`actor`, `scale_set`, `operation` and `result` exactly),
    /// newest first, at most `filter.limit`.
    async fn list_activity(&self, filter: &ActivityFilter) -> Result<Vec<Activity>>;

    /// Appends an autoscale decision and returns it with its id (ids increase), as stored
    /// (`at` to the microsecond). The set need not exist: decisions outlive it.
    async fn append_decision(&self, decision: &Decision) -> Result<Decision>;

    /// Decisions of `filter.scale_set` matching the filter, newest first (by id), at most
    /// `filter.limit` (0 means the maximum, 1,000); `since` inclusive, `until` exclusive on
    /// `at`. Empty for an unknown set.
    async fn list_decisions(&self, filter: &DecisionFilter) -> Result<Vec<Decision>>;

    /// Writes roll-ups, replacing any row with the same scale set, metric and minute (a
    /// collector restarted mid-minute rewrites it); within the batch the last such row
    /// wins. One transaction, whatever the size. The sets need not exist. Values must not
    /// be NaN (SQLite stores no NaN: the write fails).
    async fn write_rollups(&self, rows: &[Rollup]) -> Result<()>;

    /// The roll-ups of `scale_set` for `metrics` with `from <= at < to`, by metric (in
    /// [`Metric`]'s order) then time.
    async fn read_rollups(
        &self,
        scale_set: &str,
        metrics: &[Metric],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Rollup>>;

    /// Writes minutes of collector ticks, replacing a stored minute of the same set (a
    /// collector restarted mid-minute rewrites it). One transaction. The sets need not exist.
    async fn write_ticks(&self, rows: &[MinuteTicks]) -> Result<()>;

    /// The minutes of ticks of `scale_set` with `from <= minute < to`, by minute.
    async fn read_ticks(
        &self,
        scale_set: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MinuteTicks>>;

    /// Deletes the minutes of ticks that start before `before`; returns how many went.
    async fn prune_ticks(&self, before: DateTime<Utc>) -> Result<u64>;

    /// Deletes roll-ups and decisions older than `before` (roll-ups whose minute starts,
    /// decisions taken, before it); returns how many rows went.
    async fn prune_history(&self, before: DateTime<Utc>) -> Result<u64>;

    /// Deletes activity entries that started before `before` and have ended (entries still
    /// in progress, such as webhook deliveries, are kept); returns how many went.
    async fn prune_activity(&self, before: DateTime<Utc>) -> Result<u64>;

    /// Deletes the given versions of a set's model, in one transaction; the set's current
    /// version is never deleted, nor is an absent one counted. Returns how many went.
    async fn delete_model_versions(&self, scale_set: &str, versions: &[u32]) -> Result<u64>;

    /// Closes the store: waits until every connection is closed (SQLite checkpoints its
    /// journal into the database file), so the files may be copied or the database dropped.
    /// Calls after it fail.
    async fn close(&self);

    /// This installation's id: the one stored, or — at the very first start — `fresh`,
    /// stored at `at`. Every caller, however many replicas start at once, gets the same id.
    async fn installation_id(&self, fresh: &str, at: DateTime<Utc>) -> Result<String>;

    /// Stores a new rollout: its id assigned, generation 1. At most one rollout of a set is
    /// active (rolling forward or paused): another is `AlreadyExists`.
    async fn insert_rollout(&self, rollout: &Rollout) -> Result<Rollout>;

    /// Writes `rollout` if its stored generation is still `rollout.generation` (then bumped);
    /// `Conflict` otherwise, `NotFound` when it is gone.
    async fn update_rollout(&self, rollout: &Rollout) -> Result<Rollout>;

    async fn get_rollout(&self, scale_set: &str, id: i64) -> Result<Option<Rollout>>;

    /// The set's rollouts, newest first, at most `limit` (0: the list maximum).
    async fn list_rollouts(&self, scale_set: &str, limit: u32) -> Result<Vec<Rollout>>;

    /// Every active rollout of the fleet, oldest first.
    async fn active_rollouts(&self) -> Result<Vec<Rollout>>;

    /// Stores a new user with `password_hash` (an Argon2id PHC string; `None` for a user
    /// without a password) and returns it as stored. `AlreadyExists` if the name is taken
    /// (then nothing is written).
    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> Result<User>;

    /// The user with its password hash, or `None`.
    async fn get_user(&self, name: &str) -> Result<Option<(User, Option<String>)>>;

    /// Every user, by name (never their password hashes).
    async fn list_users(&self) -> Result<Vec<User>>;

    /// How many users there are (disabled ones included): none means a fresh installation.
    async fn count_users(&self) -> Result<u64>;

    /// Replaces the user's password hash. `NotFound` if the user is absent.
    async fn set_user_password(&self, name: &str, password_hash: &str) -> Result<()>;

    /// Disables or enables the user (idempotent). `NotFound` if the user is absent.
    async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<()>;

    /// Gives `assignment.user` the role on `assignment.scale_set` (`None`: every scale set),
    /// replacing the role, `created_at` and `created_by` of the user's assignment on that
    /// scope if there is one: a user holds at most one role per scope. Returns it as stored.
    /// `NotFound` (a user) if the user is absent. The scale set need not exist.
    async fn put_role_assignment(&self, assignment: &RoleAssignment) -> Result<RoleAssignment>;

    /// Removes the user's assignment on `scale_set` (`None`: the global one); answers
    /// whether there was one.
    async fn delete_role_assignment(&self, user: &str, scale_set: Option<&str>) -> Result<bool>;

    /// Every assignment, or `user`'s only, by user, then the global one first, then by
    /// scale set name. Empty for an unknown user.
    async fn list_role_assignments(&self, user: Option<&str>) -> Result<Vec<RoleAssignment>>;

    /// Stores a token under `hash` (the caller's SHA-256 of its secret) and returns it as
    /// stored, with its new id (`token.id` is ignored; ids increase). `NotFound` (a user) if
    /// `token.user` is absent; `AlreadyExists` (keyed by the prefix) if the hash is taken.
    async fn insert_token(&self, token: &ApiToken, hash: &str) -> Result<ApiToken>;

    /// The token stored under `hash`, whether usable or not (revoked, expired, its user
    /// disabled: the caller decides), or `None`.
    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>>;

    /// Every token, or `user`'s only, newest first (by id), revoked and expired ones
    /// included.
    async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>>;

    /// Revokes the token at `at` and returns it as stored; revoking it again keeps the
    /// first `revoked_at`. `None` if there is no token `id`.
    async fn revoke_token(&self, id: i64, at: DateTime<Utc>) -> Result<Option<ApiToken>>;

    /// Records uses of tokens: each `last_used_at` becomes the latest of the stored one and
    /// those given for it (never earlier, so flushes may arrive out of order). One
    /// transaction; absent ids are ignored.
    async fn touch_tokens(&self, used: &[(i64, DateTime<Utc>)]) -> Result<()>;

    /// Stores the session `id_hash` (the caller's hash of the cookie's id) with `data`
    /// (opaque to the store) until `expires_at`, replacing both if it exists.
    async fn save_session(
        &self,
        id_hash: &str,
        data: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;

    /// The session's data, or `None` when it is absent or expired at `now` (`expires_at <=
    /// now`).
    async fn load_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<String>>;

    /// Removes the session; an absent one is no error.
    async fn delete_session(&self, id_hash: &str) -> Result<()>;

    /// Deletes the sessions expired at `now` (those `load_session` no longer answers);
    /// returns how many went.
    async fn prune_sessions(&self, now: DateTime<Utc>) -> Result<u64>;

    /// A handle on the same database (sharing its connections) that writes as `writer`.
    fn with_writer(&self, writer: Writer) -> Arc<dyn Store>;

    /// Through a fenced handle, checks the lease as a write would (`Fenced` when this
    /// replica no longer holds it at its generation): what a task does before acting
    /// outside the database. Nothing through an unfenced handle.
    async fn check_fence(&self) -> Result<()>;

    /// Acquires or renews lease `name` for `holder` until `ttl` from now, in one statement:
    /// it succeeds when the lease is free, expired, already `holder`'s, or `force` (the
    /// caller knows no other holder can be alive: SQLite's single-holder guard). The
    /// generation rises at every new term — a new holder, or the same after expiry — and
    /// stays while a live term is renewed. `None` while another holds it.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        force: bool,
    ) -> Result<Option<Lease>>;

    /// Ends `holder`'s term `generation` of the lease now (a clean stop: a successor need
    /// not wait for the expiry). Nothing when it is not that term.
    async fn release_lease(&self, name: &str, holder: &str, generation: i64) -> Result<()>;

    /// Every lease, expired ones included, by name.
    async fn list_leases(&self) -> Result<Vec<Lease>>;

    /// Records that `replica` is alive now (inserting it the first time; `heartbeat_at`
    /// given is ignored) and answers it as stored. Replicas silent for `forget_after` are
    /// deleted in passing.
    async fn heartbeat(&self, replica: &Replica, forget_after: Duration) -> Result<Replica>;

    /// Every replica that heartbeat within the retention, oldest first.
    async fn list_replicas(&self) -> Result<Vec<Replica>>;

    /// Forgets a replica (a clean stop). An absent one is no error.
    async fn remove_replica(&self, id: &str) -> Result<()>;

    /// Records `replica`'s load balancer frontend counters, read now (the database's
    /// clock). Nothing when the replica is not known (its first heartbeat comes first);
    /// forgotten with it.
    async fn put_frontend_counters(&self, replica: &str, frontends: &[FrontendStats])
    -> Result<()>;

    /// The frontend counters every known replica recorded last, by replica id.
    async fn list_frontend_counters(&self) -> Result<Vec<FrontendCounters>>;

    /// Stores the last probe result of each instance (by id), replacing the one stored; the
    /// results of instances not stored are left out. One statement per batch, one
    /// transaction.
    async fn put_probe_results(&self, results: &[(String, ProbeResult)]) -> Result<()>;

    /// The stored last probe results of `scale_set`'s instances (every set's when `None`),
    /// by instance id.
    async fn list_probe_results(
        &self,
        scale_set: Option<&str>,
    ) -> Result<Vec<(String, ProbeResult)>>;

    /// Records that `record.host` is closed (under maintenance or unreachable), unless it
    /// already is: then the stored record is left unchanged — the first record wins, so
    /// closing a host again (a retried request, another replica) keeps when, why and by whom
    /// it was first closed. Returns the record as stored (`started_at` to the microsecond).
    /// Fenced where the handle is, like any write.
    async fn put_host_maintenance(&self, record: &HostMaintenance) -> Result<HostMaintenance>;

    /// Every closed host's record, by host name.
    async fn list_host_maintenance(&self) -> Result<Vec<HostMaintenance>>;

    /// Removes `host`'s record (it returned); answers whether there was one. Fenced where the
    /// handle is, like any write.
    async fn delete_host_maintenance(&self, host: &str) -> Result<bool>;

    /// Sends `payload` (at most [`MAX_NOTICE`] bytes) to every replica listening on
    /// `channel`: PostgreSQL's `NOTIFY`; nothing where the database has no notifications
    /// (SQLite: a single replica).
    async fn notify(&self, channel: &str, payload: &str) -> Result<()>;

    /// What is sent on `channel` from now on, by any replica (this one's too), or `None`
    /// where the database has no notifications.
    async fn listen(&self, channel: &str) -> Result<Option<Box<dyn Notices>>>;
}

/// The most bytes one notification carries (PostgreSQL's limit is 8,000).
pub const MAX_NOTICE: usize = 7_900;

/// A subscription to notifications.
#[async_trait]
pub trait Notices: Send {
    /// The next payload; [`Notice::Resync`] after the connection was lost and regained
    /// (notifications sent meanwhile are lost: re-read what matters).
    async fn next(&mut self) -> Result<Notice>;
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Payload(String),
    Resync,
}

/// Opens the database at `url` (`sqlite:PATH`, `sqlite::memory:` or `postgres://…`),
/// creating a SQLite file if missing, and applies the migrations.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl { url: url.into() })
    }
}
