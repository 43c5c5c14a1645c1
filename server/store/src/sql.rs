//! The [`Store`] contract implemented once, over a [`Dialect`]: what differs between SQLite
//! and PostgreSQL — opening a write transaction, binding arguments, running a statement,
//! the row lock, the id-list membership test and the row source of a batch (instances,
//! metric roll-ups) with its size. Every statement reads the same in both (both accept `$n`
//! placeholders) and is built here as a [`Stmt`], so the two backends cannot drift apart in
//! what they mean.
//!
//! `Dialect` is public inside this private module only so the blanket `impl Store` may name
//! it; nothing outside the crate can see or implement it.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
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
use flotilla_domain::replica::FrontendCounters;
use flotilla_domain::replica::{Lease, Replica};
use flotilla_domain::rollout::Rollout;
use flotilla_domain::{
    Activity, ActivityFilter, ActivityResult, Instance, NewActivity, ProbeResult, RepairStatus,
    ScaleSet,
};
use sqlx::FromRow;

use crate::codec::{
    self, ActivityRow, DecisionRow, FrontendCountersRow, HostMaintenanceRow, InstanceRow,
    InstancesVersionRow, IntoDomain, LeaseRow, ModelVersionRow, ProbeRow, ReplicaRow,
    RoleAssignmentRow, RolloutRow, RollupRow, ScaleSetRow, StateCountRow, TicksRow, TokenRow,
    UserRow, db, not_found, scope_column, state_str, to_i64, to_json,
};
use crate::fence::{Fence, Refusal, Writer};
use crate::{InstancesVersion, Kind, ModelVersion, Notices, Result, Store, Written};

/// What a database supplies to the shared [`Store`] logic.
#[async_trait]
pub trait Dialect: Send + Sync + 'static {
    type Db: sqlx::Database;

    /// Appended to the read of the set that starts `mark_deleting`, to hold its row until
    /// commit.
    const LOCK_ROW: &'static str;

    /// Appended to the fence check, to hold the lease's row (shared) until commit, so a
    /// takeover waits for the writes in flight.
    const SHARE_ROW: &'static str;

    /// The database clock's `now`, as a SQL expression of the timestamp type.
    const NOW: &'static str;

    /// The database clock's `now` plus the milliseconds bound at `$n`.
    fn now_plus_millis(n: usize) -> String;

    /// Sends a notification (nothing where the database has none).
    async fn notify(&self, channel: &str, payload: &str) -> Result<(), sqlx::Error>;

    /// Subscribes to a channel's notifications (`None` where the database has none).
    async fn listen(&self, channel: &str) -> Result<Option<Box<dyn Notices>>, sqlx::Error>;

    /// Who writes through this handle.
    fn writer(&self) -> &Writer;

    /// The same database (its connections shared), written through as `writer`.
    fn with_writer(&self, writer: Arc<Writer>) -> Self;

    /// SQL testing that `column` is one of the ids bound (as [`Arg::Ids`]) at `$n`.
    fn in_ids(column: &str, n: usize) -> String;

    /// Opens a write transaction. Dropping it uncommitted rolls it back.
    async fn begin(&self) -> Result<Tx<Self>, sqlx::Error>;

    /// Closes the pool, waiting for every connection to close.
    async fn close(&self);

    /// Runs a query in `tx`, or on the pool when `None`, and answers its rows.
    async fn fetch<R>(
        &self,
        tx: Option<&mut Tx<Self>>,
        stmt: &Stmt<'_>,
    ) -> Result<Vec<R>, sqlx::Error>
    where
        R: for<'r> FromRow<'r, RowOf<Self>> + Send + Unpin + 'static;

    /// Runs a statement and answers the number of rows it changed.
    async fn execute(&self, tx: Option<&mut Tx<Self>>, stmt: &Stmt<'_>)
    -> Result<u64, sqlx::Error>;

    /// Most records one batch statement over `source` takes.
    fn batch_size(source: &RowSource) -> usize;

    /// A row source of `rows` records bound as one batch argument ([`Arg::Batch`],
    /// [`Arg::Rollups`] or [`Arg::Probes`]), with the columns of `source` in order (it becomes the CTE `u`).
    fn batch_rows(source: &RowSource, rows: usize) -> String;
}

/// Most entries one `list_activity` or `list_decisions` call returns (also what a `limit`
/// of 0 means).
const MAX_LIST_LIMIT: u32 = 1000;

/// The columns of a batch's row source, and the PostgreSQL type of each in order (for the
/// dialect that binds one array per column).
pub struct RowSource {
    pub columns: &'static str,
    pub types: &'static [&'static str],
}

impl RowSource {
    /// Values bound per record.
    pub fn width(&self) -> usize {
        self.types.len()
    }
}

/// The row type of a dialect's database.
pub type RowOf<D> = <<D as Dialect>::Db as sqlx::Database>::Row;

/// A dialect's write transaction.
pub type Tx<D> = sqlx::Transaction<'static, <D as Dialect>::Db>;

/// A value bound to a placeholder. Each backend binds these in its own representation:
/// timestamps as fixed-width RFC 3339 text on SQLite and `timestamptz` on PostgreSQL; id
/// lists as a JSON array on SQLite and a `text[]` on PostgreSQL.
pub enum Arg<'a> {
    Text(Cow<'a, str>),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
    Ids(&'a [String]),
    /// Instance records, every column of [`INSTANCE_ROWS`] of each.
    Batch(&'a [&'a Instance]),
    /// Metric roll-ups, every column of [`ROLLUP_ROWS`] of each.
    Rollups(&'a [&'a Rollup]),
    /// Last probe results by instance id, every column of [`PROBE_ROWS`] of each.
    Probes(&'a [(String, ProbeResult)]),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Text(Cow::Borrowed(s))
    }
}
impl From<String> for Arg<'_> {
    fn from(s: String) -> Self {
        Arg::Text(Cow::Owned(s))
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(s: Option<&'a str>) -> Self {
        Arg::OptText(s)
    }
}
impl From<i64> for Arg<'_> {
    fn from(n: i64) -> Self {
        Arg::Int(n)
    }
}
impl From<Option<i64>> for Arg<'_> {
    fn from(n: Option<i64>) -> Self {
        Arg::OptInt(n)
    }
}
impl From<bool> for Arg<'_> {
    fn from(b: bool) -> Self {
        Arg::Bool(b)
    }
}
impl From<u32> for Arg<'_> {
    fn from(n: u32) -> Self {
        Arg::Int(i64::from(n))
    }
}
impl From<DateTime<Utc>> for Arg<'_> {
    fn from(t: DateTime<Utc>) -> Self {
        Arg::Time(t)
    }
}
impl From<Option<DateTime<Utc>>> for Arg<'_> {
    fn from(t: Option<DateTime<Utc>>) -> Self {
        Arg::OptTime(t)
    }
}
impl<'a> From<&'a [String]> for Arg<'a> {
    fn from(ids: &'a [String]) -> Self {
        Arg::Ids(ids)
    }
}

/// One statement: its SQL, its arguments in placeholder order, and what it does (named
/// in `StoreError::Database` if it fails).
pub struct Stmt<'a> {
    pub operation: &'static str,
    pub sql: Cow<'static, str>,
    pub args: Vec<Arg<'a>>,
}

macro_rules! stmt {
    ($operation:literal, $sql:expr $(, $arg:expr)* $(,)?) => {
        Stmt {
            operation: $operation,
            sql: $sql.into(),
            args: vec![$(Arg::from($arg)),*],
        }
    };
}

macro_rules! scale_set_columns {
    () => {
        "name, capacity, model_version, generation, state, spec, repairs, created_at, updated_at"
    };
}

macro_rules! model_version_columns {
    () => {
        "scale_set, version, model, created_by, created_at"
    };
}

/// Instance columns, read joined with the set (`i`, `s`) to derive `latest_model`.
macro_rules! instance_columns {
    () => {
        "i.id, i.scale_set, i.ordinal, i.zone, i.fault_domain, i.model_version, \
         i.provisioning_state, i.power_state, i.health_state, i.desired_power, i.pending, \
         i.protect_from_scale_in, i.protect_from_scale_set_actions, i.address, i.last_error, \
         i.created_at, i.updated_at, i.health_changed_at, i.load_balancer_enabled, \
         i.repair_attempts, i.retiring, i.lifecycle, i.busy_until, i.warm, i.generation, \
         (i.model_version = s.model_version) AS latest_model"
    };
}

macro_rules! activity_columns {
    () => {
        "id, operation, actor, scale_set, target, started_at, ended_at, result, error, details, \
         replica, lease_generation"
    };
}

/// The columns of an instance batch, bound by [`Arg::Batch`], less `generation`.
macro_rules! batch_columns {
    () => {
        "id, scale_set, ordinal, zone, fault_domain, model_version, provisioning_state, \
         power_state, health_state, desired_power, pending, protect_from_scale_in, \
         protect_from_scale_set_actions, address, last_error, created_at, updated_at, \
         health_changed_at, load_balancer_enabled, repair_attempts, retiring, lifecycle, \
         busy_until, warm"
    };
}

/// The row source of an instance batch.
pub const INSTANCE_ROWS: RowSource = RowSource {
    columns: concat!(batch_columns!(), ", generation"),
    types: &[
        "text",
        "text",
        "int8",
        "text",
        "int8",
        "int8",
        "text",
        "text",
        "text",
        "text",
        "text",
        "bool",
        "bool",
        "text",
        "text",
        "timestamptz",
        "timestamptz",
        "timestamptz",
        "bool",
        "int8",
        "bool",
        "text",
        "timestamptz",
        "text",
        "int8",
    ],
};

macro_rules! rollup_columns {
    () => {
        "scale_set, metric, minute, average, minimum, maximum, total, count"
    };
}

/// The row source of a roll-up batch.
pub const ROLLUP_ROWS: RowSource = RowSource {
    columns: rollup_columns!(),
    types: &[
        "text",
        "text",
        "timestamptz",
        "float8",
        "float8",
        "float8",
        "float8",
        "int8",
    ],
};

/// The row source of a batch of probe results.
pub const PROBE_ROWS: RowSource = RowSource {
    columns: "instance_id, at, success, latency_us, detail",
    types: &["text", "timestamptz", "bool", "int8", "text"],
};

/// Stores the batch's probe results of stored instances, replacing those stored.
const UPSERT_PROBES: &str = "INSERT INTO probe_results (instance_id, at, success, latency_us, detail) \
     SELECT u.instance_id, u.at, u.success, u.latency_us, u.detail FROM u \
     JOIN instances i ON i.id = u.instance_id WHERE TRUE \
     ON CONFLICT (instance_id) DO UPDATE SET at = excluded.at, success = excluded.success, \
     latency_us = excluded.latency_us, detail = excluded.detail";

fn list_probe_results(scale_set: Option<&str>) -> Stmt<'_> {
    stmt!(
        "listing probe results",
        "SELECT p.instance_id, p.at, p.success, p.latency_us, p.detail FROM probe_results p \
         JOIN instances i ON i.id = p.instance_id WHERE $1 IS NULL OR i.scale_set = $1",
        scale_set,
    )
}

fn put_frontend_counters<D: Dialect>(replica: &str, frontends: String) -> Stmt<'_> {
    stmt!(
        "recording a replica's frontend counters",
        format!(
            "UPDATE replicas SET frontends = $2, frontends_at = {} WHERE id = $1",
            D::NOW
        ),
        replica,
        frontends,
    )
}

fn list_frontend_counters() -> Stmt<'static> {
    stmt!(
        "listing replicas' frontend counters",
        "SELECT id, frontends_at, frontends FROM replicas \
         WHERE frontends IS NOT NULL AND frontends_at IS NOT NULL ORDER BY id"
    )
}

/// A batch statement over `rows` records bound as `arg`: the dialect's row source of
/// `source` as CTE `u`, then `body`.
fn batch<'a, D: Dialect>(
    operation: &'static str,
    source: &RowSource,
    rows: usize,
    arg: Arg<'a>,
    body: &str,
) -> Stmt<'a> {
    Stmt {
        operation,
        sql: format!(
            "WITH u ({}) AS ({}) {body}",
            source.columns,
            D::batch_rows(source, rows)
        )
        .into(),
        args: vec![arg],
    }
}

fn instance_batch<'a, D: Dialect>(
    operation: &'static str,
    chunk: &'a [&'a Instance],
    body: &str,
) -> Stmt<'a> {
    batch::<D>(
        operation,
        &INSTANCE_ROWS,
        chunk.len(),
        Arg::Batch(chunk),
        body,
    )
}

/// Inserts the batch's records with generation 1.
const INSERT_BATCH: &str = concat!(
    "INSERT INTO instances (",
    batch_columns!(),
    ", generation) SELECT ",
    batch_columns!(),
    ", 1 FROM u"
);

/// Writes every mutable column of each record whose stored generation matches, bumping
/// it, and answers the ids written.
const UPDATE_BATCH: &str = "UPDATE instances SET zone = u.zone, fault_domain = u.fault_domain, \
     model_version = u.model_version, provisioning_state = u.provisioning_state, \
     power_state = u.power_state, health_state = u.health_state, \
     desired_power = u.desired_power, pending = u.pending, \
     protect_from_scale_in = u.protect_from_scale_in, \
     protect_from_scale_set_actions = u.protect_from_scale_set_actions, \
     address = u.address, last_error = u.last_error, updated_at = u.updated_at, \
     health_changed_at = u.health_changed_at, load_balancer_enabled = u.load_balancer_enabled, \
     repair_attempts = u.repair_attempts, retiring = u.retiring, lifecycle = u.lifecycle, \
     busy_until = u.busy_until, warm = u.warm, generation = instances.generation + 1 \
     FROM u WHERE instances.id = u.id AND instances.generation = u.generation \
     RETURNING instances.id";

fn get_scale_set(name: &str) -> Stmt<'_> {
    stmt!(
        "reading a scale set",
        concat!(
            "SELECT ",
            scale_set_columns!(),
            " FROM scale_sets WHERE name = $1"
        ),
        name
    )
}

fn list_scale_sets() -> Stmt<'static> {
    stmt!(
        "listing scale sets",
        concat!(
            "SELECT ",
            scale_set_columns!(),
            " FROM scale_sets ORDER BY name"
        )
    )
}

/// The set's generation (to tell a stale write from a missing set).
fn scale_set_generation(name: &str) -> Stmt<'_> {
    stmt!(
        "reading a scale set's generation",
        "SELECT generation FROM scale_sets WHERE name = $1",
        name
    )
}

/// The set, its row locked until commit by the dialect's `lock` clause (empty on SQLite,
/// whose write transactions hold the database lock).
fn lock_scale_set<'a>(name: &'a str, lock: &'static str) -> Stmt<'a> {
    stmt!(
        "locking a scale set",
        format!(
            concat!(
                "SELECT ",
                scale_set_columns!(),
                " FROM scale_sets WHERE name = $1{}"
            ),
            lock
        ),
        name
    )
}

fn insert_scale_set(set: &ScaleSet) -> Stmt<'_> {
    stmt!(
        "creating a scale set",
        "INSERT INTO scale_sets \
         (name, capacity, model_version, generation, state, next_ordinal, spec, created_at, updated_at) \
         VALUES ($1, $2, $3, 1, $4, 0, $5, $6, $7)",
        set.name(),
        set.spec.capacity,
        set.model_version,
        state_str(set.state),
        to_json(&set.spec),
        set.created_at,
        set.updated_at,
    )
}

/// Replaces the set if its generation matches; `model_version` only ever rises. The
/// `capacity` column is kept equal to the spec's.
fn update_scale_set(set: &ScaleSet) -> Stmt<'_> {
    stmt!(
        "updating a scale set",
        "UPDATE scale_sets SET capacity = $2, \
         model_version = CASE WHEN $3 > model_version THEN $3 ELSE model_version END, \
         state = $4, spec = $5, updated_at = $6, generation = generation + 1 \
         WHERE name = $1 AND generation = $7",
        set.name(),
        set.spec.capacity,
        set.model_version,
        state_str(set.state),
        to_json(&set.spec),
        set.updated_at,
        set.generation,
    )
}

/// Lowers the set's capacity (column and spec) as `mark_deleting` does.
fn write_capacity(set: &ScaleSet) -> Stmt<'_> {
    stmt!(
        "lowering a scale set's capacity",
        "UPDATE scale_sets SET capacity = $2, spec = $3, updated_at = $4, \
         generation = generation + 1 WHERE name = $1",
        set.name(),
        set.spec.capacity,
        to_json(&set.spec),
        set.updated_at,
    )
}

fn set_repair_status<'a>(name: &'a str, status: &RepairStatus) -> Stmt<'a> {
    stmt!(
        "writing a scale set's repair status",
        "UPDATE scale_sets SET repairs = $2 WHERE name = $1",
        name,
        to_json(status),
    )
}

fn delete_scale_set(name: &str) -> Stmt<'_> {
    stmt!(
        "deleting a scale set",
        "DELETE FROM scale_sets WHERE name = $1",
        name
    )
}

fn next_ordinal(name: &str) -> Stmt<'_> {
    stmt!(
        "reading a scale set's next ordinal",
        "SELECT next_ordinal FROM scale_sets WHERE name = $1",
        name
    )
}

/// Sets the next ordinal and answers the set's model version (no row: no set).
fn claim_ordinals(name: &str, next_ordinal: u64) -> Stmt<'_> {
    stmt!(
        "advancing a scale set's next ordinal",
        "UPDATE scale_sets SET next_ordinal = $2, instances_version = instances_version + 1 \
         WHERE name = $1 RETURNING model_version",
        name,
        to_i64(next_ordinal),
    )
}

/// Bumps the set's instances version (its records are about to change) and answers its
/// model version. Taken before the records' rows, as `mark_deleting` does, so writers of one
/// set lock its row first and never wait on each other in opposite orders.
fn bump_instances_version(name: &str) -> Stmt<'_> {
    stmt!(
        "recording a change of a scale set's instances",
        "UPDATE scale_sets SET instances_version = instances_version + 1 WHERE name = $1 \
         RETURNING model_version",
        name
    )
}

fn instances_version(name: &str) -> Stmt<'_> {
    stmt!(
        "reading a scale set's instances version",
        "SELECT instances_version, model_version, created_at FROM scale_sets WHERE name = $1",
        name
    )
}

/// Bumps the instances version of every set owning one of `ids`.
fn bump_owners_of<'a>(in_ids: InIds, ids: &'a [String]) -> Stmt<'a> {
    stmt!(
        "recording a change of scale sets' instances",
        format!(
            "UPDATE scale_sets SET instances_version = instances_version + 1 \
             WHERE name IN (SELECT scale_set FROM instances WHERE {})",
            in_ids("id", 1)
        ),
        ids
    )
}

/// Stores `set.spec.model` as version `set.model_version`, unless that version exists.
fn insert_model_version<'a>(set: &'a ScaleSet, created_by: &'a str, at: DateTime<Utc>) -> Stmt<'a> {
    stmt!(
        "storing a model version",
        concat!(
            "INSERT INTO model_versions (",
            model_version_columns!(),
            ") VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scale_set, version) DO NOTHING"
        ),
        set.name(),
        set.model_version,
        to_json(&set.spec.model),
        created_by,
        at,
    )
}

fn get_model_version(scale_set: &str, version: u32) -> Stmt<'_> {
    stmt!(
        "reading a model version",
        concat!(
            "SELECT ",
            model_version_columns!(),
            " FROM model_versions WHERE scale_set = $1 AND version = $2"
        ),
        scale_set,
        version,
    )
}

fn list_model_versions(scale_set: &str) -> Stmt<'_> {
    stmt!(
        "listing model versions",
        concat!(
            "SELECT ",
            model_version_columns!(),
            " FROM model_versions WHERE scale_set = $1 ORDER BY version"
        ),
        scale_set
    )
}

fn list_all_instances() -> Stmt<'static> {
    stmt!(
        "listing all instances",
        concat!(
            "SELECT ",
            instance_columns!(),
            " FROM instances i JOIN scale_sets s ON s.name = i.scale_set \
             ORDER BY i.scale_set, i.ordinal"
        )
    )
}

fn list_instances(scale_set: &str) -> Stmt<'_> {
    stmt!(
        "listing instances",
        concat!(
            "SELECT ",
            instance_columns!(),
            " FROM instances i JOIN scale_sets s ON s.name = i.scale_set \
             WHERE i.scale_set = $1 ORDER BY i.ordinal"
        ),
        scale_set
    )
}

macro_rules! count_instances {
    ($where:literal) => {
        concat!(
            "SELECT i.scale_set, i.power_state, i.health_state, i.provisioning_state, \
             (i.model_version = s.model_version) AS latest_model, COUNT(*) AS count \
             FROM instances i JOIN scale_sets s ON s.name = i.scale_set WHERE i.warm IS NULL ",
            $where,
            " GROUP BY i.scale_set, i.power_state, i.health_state, i.provisioning_state, \
             latest_model ORDER BY i.scale_set, i.power_state, i.health_state, \
             i.provisioning_state, latest_model"
        )
    };
}

fn count_instances(scale_set: Option<&str>) -> Stmt<'_> {
    match scale_set {
        None => stmt!("counting instances", count_instances!("")),
        Some(name) => stmt!(
            "counting instances",
            count_instances!("AND i.scale_set = $1"),
            name
        ),
    }
}

fn get_instance(id: &str) -> Stmt<'_> {
    stmt!(
        "reading an instance",
        concat!(
            "SELECT ",
            instance_columns!(),
            " FROM instances i JOIN scale_sets s ON s.name = i.scale_set WHERE i.id = $1"
        ),
        id
    )
}

/// How a backend tests a column's membership in the id list bound at placeholder `n`.
type InIds = fn(column: &str, n: usize) -> String;

/// The stored ids among `ids` (to name the culprit of a unique violation).
fn existing_ids<'a>(in_ids: InIds, ids: &'a [String]) -> Stmt<'a> {
    stmt!(
        "finding taken instance ids",
        format!("SELECT id FROM instances WHERE {}", in_ids("id", 1)),
        ids
    )
}

fn delete_instances<'a>(in_ids: InIds, ids: &'a [String]) -> Stmt<'a> {
    stmt!(
        "deleting instances",
        format!("DELETE FROM instances WHERE {}", in_ids("id", 1)),
        ids
    )
}

/// The instances of `scale_set` among `ids`, by ordinal.
fn instances_among<'a>(in_ids: InIds, scale_set: &'a str, ids: &'a [String]) -> Stmt<'a> {
    stmt!(
        "reading instances to mark deleting",
        format!(
            concat!(
                "SELECT ",
                instance_columns!(),
                " FROM instances i JOIN scale_sets s ON s.name = i.scale_set \
                 WHERE i.scale_set = $1 AND {} ORDER BY i.ordinal"
            ),
            in_ids("i.id", 2)
        ),
        scale_set,
        ids,
    )
}

fn mark_instances_deleting<'a>(
    in_ids: InIds,
    scale_set: &'a str,
    ids: &'a [String],
    now: DateTime<Utc>,
) -> Stmt<'a> {
    stmt!(
        "marking instances deleting",
        format!(
            "UPDATE instances SET provisioning_state = 'deleting', updated_at = $3, \
             generation = generation + 1 \
             WHERE scale_set = $1 AND provisioning_state <> 'deleting' AND {}",
            in_ids("id", 2)
        ),
        scale_set,
        ids,
        now,
    )
}

fn append_activity<'a>(
    entry: &'a NewActivity,
    replica: Option<&'a str>,
    lease_generation: Option<i64>,
) -> Stmt<'a> {
    stmt!(
        "appending an activity entry",
        "INSERT INTO activity \
         (operation, actor, scale_set, target, started_at, ended_at, result, error, details, \
          replica, lease_generation) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        entry.operation.as_str(),
        entry.actor.as_str(),
        entry.scale_set.as_deref(),
        entry.target.as_str(),
        entry.started_at,
        entry.ended_at,
        entry.result.as_str(),
        entry.error.as_deref(),
        to_json(&entry.details),
        replica,
        lease_generation,
    )
}

fn finish_activity<'a>(
    id: i64,
    ended_at: DateTime<Utc>,
    result: ActivityResult,
    error: Option<&'a str>,
    details: &serde_json::Value,
) -> Stmt<'a> {
    stmt!(
        "finishing an activity entry",
        concat!(
            "UPDATE activity SET ended_at = $2, result = $3, error = $4, details = $5 \
             WHERE id = $1 RETURNING ",
            activity_columns!()
        ),
        id,
        ended_at,
        result.as_str(),
        error,
        to_json(details),
    )
}

/// Entries matching `filter`, newest first (by id, which grows with every append):
/// `scale_set`, `actor`, `operation` and `result` exact, `since` inclusive and `until` exclusive on `started_at`, ids below `before_id`, at
/// most `limit` (1–1,000; 0 means 1,000).
fn list_activity(filter: &ActivityFilter) -> Stmt<'_> {
    let mut conditions: Vec<(&str, Arg<'_>)> = Vec::new();
    if let Some(s) = &filter.scale_set {
        conditions.push(("scale_set =", s.as_str().into()));
    }
    if let Some(actor) = &filter.actor {
        conditions.push(("actor =", actor.as_str().into()));
    }
    if let Some(op) = &filter.operation {
        conditions.push(("operation =", op.as_str().into()));
    }
    if let Some(r) = filter.result {
        conditions.push(("result =", r.as_str().into()));
    }
    if let Some(t) = filter.since {
        conditions.push(("started_at >=", t.into()));
    }
    if let Some(t) = filter.until {
        conditions.push(("started_at <", t.into()));
    }
    if let Some(id) = filter.before_id {
        conditions.push(("id <", id.into()));
    }
    let mut sql = String::from(concat!(
        "SELECT ",
        activity_columns!(),
        " FROM activity WHERE TRUE"
    ));
    let mut args = Vec::with_capacity(conditions.len());
    for (n, (condition, arg)) in conditions.into_iter().enumerate() {
        sql.push_str(&format!(" AND {condition} ${}", n + 1));
        args.push(arg);
    }
    sql.push_str(&format!(
        " ORDER BY id DESC LIMIT {}",
        list_limit(filter.limit)
    ));
    Stmt {
        operation: "listing activity",
        sql: sql.into(),
        args,
    }
}

/// `limit` as lists take it: 1–1,000, 0 meaning 1,000.
fn list_limit(limit: u32) -> u32 {
    match limit {
        0 => MAX_LIST_LIMIT,
        n => n.min(MAX_LIST_LIMIT),
    }
}

/// The set's roll-ups, deleted with it (its decisions and activity are kept).
fn delete_ticks_of(scale_set: &str) -> Stmt<'_> {
    stmt!(
        "deleting a scale set's metric ticks",
        "DELETE FROM metric_ticks WHERE scale_set = $1",
        scale_set
    )
}

fn delete_rollups_of(scale_set: &str) -> Stmt<'_> {
    stmt!(
        "deleting a scale set's metric roll-ups",
        "DELETE FROM metric_rollups WHERE scale_set = $1",
        scale_set
    )
}

macro_rules! decision_columns {
    () => {
        "id, scale_set, at, operation, document"
    };
}

/// Appends `decision` (as `document`, its JSON) and answers its id.
fn append_decision<'a>(decision: &'a Decision, document: String) -> Stmt<'a> {
    stmt!(
        "appending an autoscale decision",
        "INSERT INTO autoscale_decisions (scale_set, at, operation, document, shadow) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        decision.scale_set.as_str(),
        decision.at,
        decision.operation.as_str(),
        document,
        decision.shadow,
    )
}

/// Decisions of `filter.scale_set` matching the filter, newest first (by id): the live
/// setting's or the shadow's, `since` inclusive and `until` exclusive on `at`, ids below
/// `before_id`, at most `limit`.
fn list_decisions(filter: &DecisionFilter) -> Stmt<'_> {
    let mut conditions: Vec<(&str, Arg<'_>)> = vec![("shadow =", filter.shadow.into())];
    if let Some(op) = filter.operation {
        conditions.push(("operation =", op.as_str().into()));
    }
    if let Some(t) = filter.since {
        conditions.push(("at >=", t.into()));
    }
    if let Some(t) = filter.until {
        conditions.push(("at <", t.into()));
    }
    if let Some(id) = filter.before_id {
        conditions.push(("id <", id.into()));
    }
    let mut sql = String::from(concat!(
        "SELECT ",
        decision_columns!(),
        " FROM autoscale_decisions WHERE scale_set = $1"
    ));
    let mut args = Vec::with_capacity(conditions.len() + 1);
    args.push(filter.scale_set.as_str().into());
    for (n, (condition, arg)) in conditions.into_iter().enumerate() {
        sql.push_str(&format!(" AND {condition} ${}", n + 2));
        args.push(arg);
    }
    sql.push_str(&format!(
        " ORDER BY id DESC LIMIT {}",
        list_limit(filter.limit)
    ));
    Stmt {
        operation: "listing autoscale decisions",
        sql: sql.into(),
        args,
    }
}

/// Inserts the batch's roll-ups, replacing the values of those whose scale set, metric and
/// minute are stored. (`WHERE TRUE`: SQLite's parser needs it before `ON CONFLICT` when
/// the rows come from a `SELECT`.)
const UPSERT_ROLLUPS: &str = concat!(
    "INSERT INTO metric_rollups (",
    rollup_columns!(),
    ") SELECT ",
    rollup_columns!(),
    " FROM u WHERE TRUE ON CONFLICT (scale_set, metric, minute) DO UPDATE SET \
     average = excluded.average, minimum = excluded.minimum, maximum = excluded.maximum, \
     total = excluded.total, count = excluded.count"
);

/// The roll-ups of `scale_set` for the metrics named in `metrics` with `from <= minute <
/// to`, by metric name then minute.
fn read_rollups<'a>(
    in_ids: InIds,
    scale_set: &'a str,
    metrics: &'a [String],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Stmt<'a> {
    stmt!(
        "reading metric roll-ups",
        format!(
            concat!(
                "SELECT ",
                rollup_columns!(),
                " FROM metric_rollups WHERE scale_set = $1 AND {} \
                 AND minute >= $3 AND minute < $4 ORDER BY metric, minute"
            ),
            in_ids("metric", 2)
        ),
        scale_set,
        metrics,
        from,
        to,
    )
}

fn upsert_ticks(row: &MinuteTicks) -> Stmt<'_> {
    stmt!(
        "writing metric ticks",
        "INSERT INTO metric_ticks (scale_set, minute, ticks) VALUES ($1, $2, $3) \
         ON CONFLICT (scale_set, minute) DO UPDATE SET ticks = excluded.ticks",
        row.scale_set.as_str(),
        row.minute,
        row.ticks.as_str(),
    )
}

fn read_ticks(scale_set: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Stmt<'_> {
    stmt!(
        "reading metric ticks",
        "SELECT scale_set, minute, ticks FROM metric_ticks \
         WHERE scale_set = $1 AND minute >= $2 AND minute < $3 ORDER BY minute",
        scale_set,
        from,
        to,
    )
}

fn prune_ticks(before: DateTime<Utc>) -> Stmt<'static> {
    stmt!(
        "pruning metric ticks",
        "DELETE FROM metric_ticks WHERE minute < $1",
        before
    )
}

fn prune_rollups(before: DateTime<Utc>) -> Stmt<'static> {
    stmt!(
        "pruning metric roll-ups",
        "DELETE FROM metric_rollups WHERE minute < $1",
        before
    )
}

fn prune_decisions(before: DateTime<Utc>) -> Stmt<'static> {
    stmt!(
        "pruning autoscale decisions",
        "DELETE FROM autoscale_decisions WHERE at < $1",
        before
    )
}

fn prune_activity(before: DateTime<Utc>) -> Stmt<'static> {
    stmt!(
        "pruning the activity log",
        "DELETE FROM activity WHERE started_at < $1 AND ended_at IS NOT NULL",
        before
    )
}

fn delete_model_version(scale_set: &str, version: u32) -> Stmt<'_> {
    stmt!(
        "deleting a model version",
        "DELETE FROM model_versions WHERE scale_set = $1 AND version = $2 \
         AND version < (SELECT model_version FROM scale_sets WHERE name = $1)",
        scale_set,
        version,
    )
}

fn claim_installation(fresh: &str, at: DateTime<Utc>) -> Stmt<'_> {
    stmt!(
        "recording the installation",
        "INSERT INTO installation (singleton, id, created_at) VALUES (1, $1, $2) \
         ON CONFLICT (singleton) DO NOTHING",
        fresh,
        at,
    )
}

fn installation() -> Stmt<'static> {
    stmt!(
        "reading the installation",
        "SELECT id FROM installation WHERE singleton = 1"
    )
}

macro_rules! rollout_columns {
    () => {
        "id, scale_set, state, generation, document"
    };
}

fn insert_rollout(rollout: &Rollout, document: String) -> Stmt<'_> {
    stmt!(
        "starting a rollout",
        "INSERT INTO rollouts (scale_set, state, created_at, generation, document) \
         VALUES ($1, $2, $3, 1, $4) RETURNING id",
        rollout.scale_set.as_str(),
        rollout.state.as_str(),
        rollout.created_at,
        document,
    )
}

fn update_rollout(rollout: &Rollout, document: String) -> Stmt<'_> {
    stmt!(
        "updating a rollout",
        "UPDATE rollouts SET state = $1, document = $2, generation = generation + 1 \
         WHERE id = $3 AND generation = $4 RETURNING generation",
        rollout.state.as_str(),
        document,
        rollout.id,
        rollout.generation,
    )
}

fn get_rollout(scale_set: &str, id: i64) -> Stmt<'_> {
    stmt!(
        "reading a rollout",
        concat!(
            "SELECT ",
            rollout_columns!(),
            " FROM rollouts WHERE scale_set = $1 AND id = $2"
        ),
        scale_set,
        id,
    )
}

fn list_rollouts(scale_set: &str, limit: u32) -> Stmt<'_> {
    stmt!(
        "listing rollouts",
        format!(
            concat!(
                "SELECT ",
                rollout_columns!(),
                " FROM rollouts WHERE scale_set = $1 ORDER BY id DESC LIMIT {}"
            ),
            list_limit(limit)
        ),
        scale_set,
    )
}

fn active_rollouts() -> Stmt<'static> {
    stmt!(
        "listing active rollouts",
        concat!(
            "SELECT ",
            rollout_columns!(),
            " FROM rollouts WHERE state IN ('rolling_forward', 'paused') ORDER BY id"
        ),
    )
}

// ---------------------------------------------------------------------------------------
// Accounts: users, role assignments, API tokens, sessions

macro_rules! user_columns {
    () => {
        "name, source, password_hash, disabled, created_at, created_by"
    };
}

fn insert_user<'a>(user: &'a User, password_hash: Option<&'a str>) -> Stmt<'a> {
    stmt!(
        "creating a user",
        concat!(
            "INSERT INTO users (",
            user_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6)"
        ),
        user.name.as_str(),
        user.source.as_str(),
        password_hash,
        user.disabled,
        user.created_at,
        user.created_by.as_str(),
    )
}

fn get_user(name: &str) -> Stmt<'_> {
    stmt!(
        "reading a user",
        concat!("SELECT ", user_columns!(), " FROM users WHERE name = $1"),
        name
    )
}

fn list_users() -> Stmt<'static> {
    stmt!(
        "listing users",
        concat!("SELECT ", user_columns!(), " FROM users ORDER BY name")
    )
}

fn count_users() -> Stmt<'static> {
    stmt!("counting users", "SELECT COUNT(*) FROM users")
}

fn set_user_password<'a>(name: &'a str, password_hash: &'a str) -> Stmt<'a> {
    stmt!(
        "setting a user's password",
        "UPDATE users SET password_hash = $2 WHERE name = $1",
        name,
        password_hash,
    )
}

fn set_user_disabled(name: &str, disabled: bool) -> Stmt<'_> {
    stmt!(
        "disabling or enabling a user",
        "UPDATE users SET disabled = $2 WHERE name = $1",
        name,
        disabled,
    )
}

macro_rules! role_assignment_columns {
    () => {
        "user_name, role, scale_set, created_at, created_by"
    };
}

/// Writes the assignment if its user exists (no row otherwise: the `SELECT` from `users`
/// finds none), replacing the user's one on the same scope.
fn put_role_assignment(assignment: &RoleAssignment) -> Stmt<'_> {
    stmt!(
        "writing a role assignment",
        concat!(
            "INSERT INTO role_assignments (",
            role_assignment_columns!(),
            ") SELECT name, $2, $3, $4, $5 FROM users WHERE name = $1 \
             ON CONFLICT (user_name, scale_set) DO UPDATE SET role = excluded.role, \
             created_at = excluded.created_at, created_by = excluded.created_by"
        ),
        assignment.user.as_str(),
        assignment.role.as_str(),
        scope_column(assignment.scale_set.as_deref()),
        assignment.created_at,
        assignment.created_by.as_str(),
    )
}

fn delete_role_assignment<'a>(user: &'a str, scale_set: Option<&'a str>) -> Stmt<'a> {
    stmt!(
        "deleting a role assignment",
        "DELETE FROM role_assignments WHERE user_name = $1 AND scale_set = $2",
        user,
        scope_column(scale_set),
    )
}

/// By user, then scope: `''`, the global one, sorts first.
fn list_role_assignments(user: Option<&str>) -> Stmt<'_> {
    match user {
        None => stmt!(
            "listing role assignments",
            concat!(
                "SELECT ",
                role_assignment_columns!(),
                " FROM role_assignments ORDER BY user_name, scale_set"
            )
        ),
        Some(user) => stmt!(
            "listing a user's role assignments",
            concat!(
                "SELECT ",
                role_assignment_columns!(),
                " FROM role_assignments WHERE user_name = $1 ORDER BY scale_set"
            ),
            user
        ),
    }
}

/// The set's role assignments, deleted with it (the global ones, `''`, are no set's).
fn delete_role_assignments_on(scale_set: &str) -> Stmt<'_> {
    stmt!(
        "deleting a scale set's role assignments",
        "DELETE FROM role_assignments WHERE scale_set = $1",
        scale_set
    )
}

macro_rules! token_columns {
    () => {
        "id, name, user_name, role, scale_set, prefix, created_at, expires_at, last_used_at, \
         revoked_at"
    };
}

/// Inserts the token if its user exists (no row otherwise) and answers its id.
fn insert_token<'a>(token: &'a ApiToken, hash: &'a str) -> Stmt<'a> {
    stmt!(
        "creating an API token",
        "INSERT INTO api_tokens (hash, prefix, name, user_name, role, scale_set, created_at, \
         expires_at, last_used_at, revoked_at) \
         SELECT $1, $2, $3, name, $5, $6, $7, $8, $9, $10 FROM users WHERE name = $4 \
         RETURNING id",
        hash,
        token.prefix.as_str(),
        token.name.as_str(),
        token.user.as_str(),
        token.role.map(|r| r.as_str()),
        token.scale_set.as_deref(),
        token.created_at,
        token.expires_at,
        token.last_used_at,
        token.revoked_at,
    )
}

fn token_by_hash(hash: &str) -> Stmt<'_> {
    stmt!(
        "reading an API token",
        concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens WHERE hash = $1"
        ),
        hash
    )
}

fn list_tokens(user: Option<&str>) -> Stmt<'_> {
    match user {
        None => stmt!(
            "listing API tokens",
            concat!(
                "SELECT ",
                token_columns!(),
                " FROM api_tokens ORDER BY id DESC"
            )
        ),
        Some(user) => stmt!(
            "listing a user's API tokens",
            concat!(
                "SELECT ",
                token_columns!(),
                " FROM api_tokens WHERE user_name = $1 ORDER BY id DESC"
            ),
            user
        ),
    }
}

/// Revokes the token unless it is already, and answers it.
fn revoke_token(id: i64, at: DateTime<Utc>) -> Stmt<'static> {
    stmt!(
        "revoking an API token",
        concat!(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 \
             RETURNING ",
            token_columns!()
        ),
        id,
        at,
    )
}

/// Moves the token's last use forward to `at`, never back.
fn touch_token(id: i64, at: DateTime<Utc>) -> Stmt<'static> {
    stmt!(
        "recording the use of API tokens",
        "UPDATE api_tokens SET last_used_at = $2 \
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
        id,
        at,
    )
}

/// The tokens scoped to the set, deleted with it.
fn delete_tokens_on(scale_set: &str) -> Stmt<'_> {
    stmt!(
        "deleting a scale set's API tokens",
        "DELETE FROM api_tokens WHERE scale_set = $1",
        scale_set
    )
}

fn save_session<'a>(id_hash: &'a str, data: &'a str, expires_at: DateTime<Utc>) -> Stmt<'a> {
    stmt!(
        "saving a session",
        "INSERT INTO sessions (id_hash, data, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (id_hash) DO UPDATE SET data = excluded.data, \
         expires_at = excluded.expires_at",
        id_hash,
        data,
        expires_at,
    )
}

/// The session's data while it has not expired at `now`.
fn load_session(id_hash: &str, now: DateTime<Utc>) -> Stmt<'_> {
    stmt!(
        "loading a session",
        "SELECT data FROM sessions WHERE id_hash = $1 AND expires_at > $2",
        id_hash,
        now,
    )
}

fn delete_session(id_hash: &str) -> Stmt<'_> {
    stmt!(
        "deleting a session",
        "DELETE FROM sessions WHERE id_hash = $1",
        id_hash
    )
}

/// The sessions `load_session` no longer answers at `now`.
fn prune_sessions(now: DateTime<Utc>) -> Stmt<'static> {
    stmt!(
        "pruning sessions",
        "DELETE FROM sessions WHERE expires_at <= $1",
        now
    )
}

// ---------------------------------------------------------------------------------------
// Host maintenance

macro_rules! host_maintenance_columns {
    () => {
        "host, zone, fault_domain, reason, started_at, started_by, instances_at_start"
    };
}

/// Stores the record unless its host has one, and answers the host's record as stored: in
/// one statement, so that it is atomic whatever runs beside it. On a conflict the update
/// writes the stored values back (no change), only so that `RETURNING` answers that row.
fn put_host_maintenance(record: &HostMaintenance) -> Stmt<'_> {
    stmt!(
        "recording a host under maintenance",
        concat!(
            "INSERT INTO host_maintenance (",
            host_maintenance_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (host) DO UPDATE SET host = host_maintenance.host \
             RETURNING ",
            host_maintenance_columns!()
        ),
        record.host.as_str(),
        record.zone.as_str(),
        record.fault_domain,
        record.reason.as_str(),
        record.started_at,
        record.started_by.as_str(),
        record.instances_at_start,
    )
}

fn list_host_maintenance() -> Stmt<'static> {
    stmt!(
        "listing hosts under maintenance",
        concat!(
            "SELECT ",
            host_maintenance_columns!(),
            " FROM host_maintenance ORDER BY host"
        )
    )
}

fn delete_host_maintenance(host: &str) -> Stmt<'_> {
    stmt!(
        "ending a host's maintenance",
        "DELETE FROM host_maintenance WHERE host = $1",
        host
    )
}

/// The fence check: the lease still has `generation` and `holder`, its row share-locked
/// until commit where the dialect can.
fn check_fence<D: Dialect>(fence: &Fence, generation: i64) -> Stmt<'_> {
    stmt!(
        "checking the lease fence",
        format!(
            "SELECT generation FROM leases WHERE name = $1 AND holder = $2 AND generation = $3{}",
            D::SHARE_ROW
        ),
        fence.lease(),
        fence.holder(),
        generation,
    )
}

macro_rules! lease_columns {
    () => {
        "name, holder, generation, acquired_at, renewed_at, expires_at"
    };
}

/// Takes or renews the lease in one statement (see [`Store::acquire_lease`]): a live term
/// of the same holder keeps its generation and start, any other change of term raises it.
fn acquire_lease<'a, D: Dialect>(
    name: &'a str,
    holder: &'a str,
    ttl: Duration,
    force: bool,
) -> Stmt<'a> {
    let now = D::NOW;
    let until = D::now_plus_millis(3);
    let live = format!("leases.holder = excluded.holder AND leases.expires_at > {now}");
    stmt!(
        "acquiring a lease",
        format!(
            concat!(
                "INSERT INTO leases (",
                lease_columns!(),
                ") VALUES ($1, $2, 1, {now}, {now}, {until}) \
                 ON CONFLICT (name) DO UPDATE SET \
                 generation = CASE WHEN {live} THEN leases.generation ELSE leases.generation + 1 END, \
                 acquired_at = CASE WHEN {live} THEN leases.acquired_at ELSE excluded.acquired_at END, \
                 holder = excluded.holder, renewed_at = excluded.renewed_at, \
                 expires_at = excluded.expires_at \
                 WHERE leases.holder = excluded.holder OR leases.expires_at <= {now} OR $4 \
                 RETURNING ",
                lease_columns!()
            ),
            now = now,
            until = until,
            live = live,
        ),
        name,
        holder,
        millis(ttl),
        force,
    )
}

fn release_lease<'a, D: Dialect>(name: &'a str, holder: &'a str, generation: i64) -> Stmt<'a> {
    stmt!(
        "releasing a lease",
        format!(
            "UPDATE leases SET expires_at = {now} \
             WHERE name = $1 AND holder = $2 AND generation = $3 AND expires_at > {now}",
            now = D::NOW
        ),
        name,
        holder,
        generation,
    )
}

fn list_leases() -> Stmt<'static> {
    stmt!(
        "listing leases",
        concat!("SELECT ", lease_columns!(), " FROM leases ORDER BY name")
    )
}

macro_rules! replica_columns {
    () => {
        "id, host, version, started_at, heartbeat_at"
    };
}

fn heartbeat<D: Dialect>(replica: &Replica) -> Stmt<'_> {
    stmt!(
        "recording a replica's heartbeat",
        format!(
            concat!(
                "INSERT INTO replicas (",
                replica_columns!(),
                ") VALUES ($1, $2, $3, $4, {now}) \
                 ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at \
                 RETURNING ",
                replica_columns!()
            ),
            now = D::NOW
        ),
        replica.id.as_str(),
        replica.host.as_str(),
        replica.version.as_str(),
        replica.started_at,
    )
}

/// Deletes the replicas whose last heartbeat is older than `after`.
fn forget_replicas<D: Dialect>(after: Duration) -> Stmt<'static> {
    stmt!(
        "forgetting silent replicas",
        format!(
            "DELETE FROM replicas WHERE heartbeat_at < {}",
            D::now_plus_millis(1)
        ),
        -millis(after),
    )
}

/// A duration in whole milliseconds, as bound.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn list_replicas() -> Stmt<'static> {
    stmt!(
        "listing replicas",
        concat!(
            "SELECT ",
            replica_columns!(),
            " FROM replicas ORDER BY started_at, id"
        )
    )
}

fn remove_replica(id: &str) -> Stmt<'_> {
    stmt!(
        "forgetting a replica",
        "DELETE FROM replicas WHERE id = $1",
        id
    )
}

// ---------------------------------------------------------------------------------------
// The contract, once

/// Runs a query and decodes its rows.
async fn read<D, R>(d: &D, tx: Option<&mut Tx<D>>, stmt: Stmt<'_>) -> Result<Vec<R::Domain>>
where
    D: Dialect,
    R: IntoDomain + for<'r> FromRow<'r, RowOf<D>> + Send + Unpin + 'static,
{
    let rows = d.fetch::<R>(tx, &stmt).await.map_err(db(stmt.operation))?;
    codec::decode_all(rows)
}

/// Runs a query expected to answer at most one row.
async fn read_one<D, R>(d: &D, tx: Option<&mut Tx<D>>, stmt: Stmt<'_>) -> Result<Option<R::Domain>>
where
    D: Dialect,
    R: IntoDomain + for<'r> FromRow<'r, RowOf<D>> + Send + Unpin + 'static,
{
    Ok(read::<D, R>(d, tx, stmt).await?.into_iter().next())
}

/// Runs an `INSERT … RETURNING id` (fenced where the handle is), keeping the database
/// error apart (to tell unique violations).
async fn insert_returning_id<D>(d: &D, stmt: Stmt<'_>) -> Result<Result<Option<i64>, sqlx::Error>>
where
    D: Dialect,
    (i64,): for<'r> FromRow<'r, RowOf<D>> + Send + Unpin + 'static,
{
    let operation = stmt.operation;
    let mut single = Single::open(d, operation).await?;
    let id = match d.fetch::<(i64,)>(single.tx(), &stmt).await {
        Ok(rows) => rows.into_iter().next().map(|(id,)| id),
        Err(e) => return Ok(Err(e)),
    };
    single.done(operation).await?;
    Ok(Ok(id))
}

async fn write<D: Dialect>(d: &D, tx: Option<&mut Tx<D>>, stmt: Stmt<'_>) -> Result<u64> {
    d.execute(tx, &stmt).await.map_err(db(stmt.operation))
}

/// Opens a write transaction; through a fenced handle, checks the fence in it first.
async fn begin<D>(d: &D, operation: &'static str) -> Result<Tx<D>>
where
    D: Dialect,
    (i64,): for<'r> FromRow<'r, RowOf<D>> + Send + Unpin + 'static,
{
    Ok(begin_fenced(d, operation).await?.0)
}

/// [`begin`], answering the generation checked (`None` through an unfenced handle).
async fn begin_fenced<D>(d: &D, operation: &'static str) -> Result<(Tx<D>, Option<i64>)>
where
    D: Dialect,
    (i64,): for<'r> FromRow<'r, RowOf<D>> + Send + Unpin + 'static,
{
    let Some(fence) = &d.writer().fence else {
        return Ok((d.begin().await.map_err(db(operation))?, None));
    };
    let generation = fence.check()?;
    let mut tx = d.begin().await.map_err(db(operation))?;
    let held = read_one::<D, (i64,)>(d, Some(&mut tx), check_fence::<D>(fence, generation)).await?;
    match held {
        Some(_) => Ok((tx, Some(generation))),
        None => Err(fence.refuse(Refusal::Superseded, Some(generation))),
    }
}

/// Where a single-statement write runs: on the pool through an unfenced handle (no
/// transaction to pay for), in a transaction that checked the fence through a fenced one.
struct Single<D: Dialect> {
    tx: Option<Tx<D>>,
    generation: Option<i64>,
}

impl<D> Single<D>
where
    D: Dialect,
    (i64,): for<'r> FromRow<'r, RowOf<D>> + Send + Unpin + 'static,
{
    async fn open(d: &D, operation: &'static str) -> Result<Self> {
        if d.writer().fence.is_none() {
            return Ok(Self {
                tx: None,
                generation: None,
            });
        }
        let (tx, generation) = begin_fenced(d, operation).await?;
        Ok(Self {
            tx: Some(tx),
            generation,
        })
    }

    fn tx(&mut self) -> Option<&mut Tx<D>> {
        self.tx.as_mut()
    }

    async fn done(self, operation: &'static str) -> Result<()> {
        match self.tx {
            Some(tx) => commit::<D>(tx, operation).await,
            None => Ok(()),
        }
    }
}

/// Runs one write statement (fenced where the handle is) and answers the rows it changed.
async fn write_once<D>(d: &D, stmt: Stmt<'_>) -> Result<u64>
where
    D: Dialect,
    (i64,): for<'r> FromRow<'r, RowOf<D>> + Send + Unpin + 'static,
{
    let operation = stmt.operation;
    let mut single = Single::open(d, operation).await?;
    let n = write(d, single.tx(), stmt).await?;
    single.done(operation).await?;
    Ok(n)
}

/// Runs one write statement that answers rows (fenced where the handle is).
async fn write_returning<D, R>(d: &D, stmt: Stmt<'_>) -> Result<Option<R::Domain>>
where
    D: Dialect,
    R: IntoDomain + for<'r> FromRow<'r, RowOf<D>> + Send + Unpin + 'static,
    (i64,): for<'r> FromRow<'r, RowOf<D>> + Send + Unpin + 'static,
{
    let operation = stmt.operation;
    let mut single = Single::open(d, operation).await?;
    let row = read_one::<D, R>(d, single.tx(), stmt).await?;
    single.done(operation).await?;
    Ok(row)
}

async fn commit<D: Dialect>(tx: Tx<D>, operation: &'static str) -> Result<()> {
    tx.commit().await.map_err(db(operation))
}

#[async_trait]
impl<D> Store for D
where
    D: Dialect,
    ScaleSetRow: for<'r> FromRow<'r, RowOf<D>>,
    ModelVersionRow: for<'r> FromRow<'r, RowOf<D>>,
    InstanceRow: for<'r> FromRow<'r, RowOf<D>>,
    StateCountRow: for<'r> FromRow<'r, RowOf<D>>,
    InstancesVersionRow: for<'r> FromRow<'r, RowOf<D>>,
    ActivityRow: for<'r> FromRow<'r, RowOf<D>>,
    DecisionRow: for<'r> FromRow<'r, RowOf<D>>,
    RollupRow: for<'r> FromRow<'r, RowOf<D>>,
    TicksRow: for<'r> FromRow<'r, RowOf<D>>,
    RolloutRow: for<'r> FromRow<'r, RowOf<D>>,
    UserRow: for<'r> FromRow<'r, RowOf<D>>,
    RoleAssignmentRow: for<'r> FromRow<'r, RowOf<D>>,
    TokenRow: for<'r> FromRow<'r, RowOf<D>>,
    LeaseRow: for<'r> FromRow<'r, RowOf<D>>,
    ReplicaRow: for<'r> FromRow<'r, RowOf<D>>,
    FrontendCountersRow: for<'r> FromRow<'r, RowOf<D>>,
    ProbeRow: for<'r> FromRow<'r, RowOf<D>>,
    HostMaintenanceRow: for<'r> FromRow<'r, RowOf<D>>,
    (i64,): for<'r> FromRow<'r, RowOf<D>>,
    (String,): for<'r> FromRow<'r, RowOf<D>>,
{
    async fn create_scale_set(&self, set: &ScaleSet, created_by: &str) -> Result<ScaleSet> {
        const OPERATION: &str = "creating a scale set";
        let mut tx = begin(self, OPERATION).await?;
        match self.execute(Some(&mut tx), &insert_scale_set(set)).await {
            Err(e) if codec::is_unique_violation(&e) => {
                return Err(codec::scale_set_exists(set.name()));
            }
            other => other.map_err(db(OPERATION))?,
        };
        let version = insert_model_version(set, created_by, set.created_at);
        write(self, Some(&mut tx), version).await?;
        let stored = read_one::<D, ScaleSetRow>(self, Some(&mut tx), get_scale_set(set.name()))
            .await?
            .ok_or_else(|| not_found(Kind::ScaleSet, set.name()))?;
        commit::<D>(tx, OPERATION).await?;
        Ok(stored)
    }

    async fn get_scale_set(&self, name: &str) -> Result<Option<ScaleSet>> {
        read_one::<D, ScaleSetRow>(self, None, get_scale_set(name)).await
    }

    async fn list_scale_sets(&self) -> Result<Vec<ScaleSet>> {
        read::<D, ScaleSetRow>(self, None, list_scale_sets()).await
    }

    async fn update_scale_set(&self, set: &ScaleSet, created_by: &str) -> Result<ScaleSet> {
        const OPERATION: &str = "updating a scale set";
        let mut tx = begin(self, OPERATION).await?;
        if write(self, Some(&mut tx), update_scale_set(set)).await? == 0 {
            let stored = scale_set_generation(set.name());
            let stored = read_one::<D, (i64,)>(self, Some(&mut tx), stored).await?;
            // The guarded update matched nothing: the set is absent or its generation differs.
            return Err(codec::stale_or_missing(set, stored));
        }
        let stored = read_one::<D, ScaleSetRow>(self, Some(&mut tx), get_scale_set(set.name()))
            .await?
            .ok_or_else(|| not_found(Kind::ScaleSet, set.name()))?;
        if stored.model_version == set.model_version {
            let version = insert_model_version(set, created_by, set.updated_at);
            write(self, Some(&mut tx), version).await?;
        }
        commit::<D>(tx, OPERATION).await?;
        Ok(stored)
    }

    async fn delete_scale_set(&self, name: &str) -> Result<()> {
        const OPERATION: &str = "deleting a scale set";
        let mut tx = begin(self, OPERATION).await?;
        if write(self, Some(&mut tx), delete_scale_set(name)).await? == 0 {
            return Err(not_found(Kind::ScaleSet, name));
        }
        write(self, Some(&mut tx), delete_rollups_of(name)).await?;
        write(self, Some(&mut tx), delete_ticks_of(name)).await?;
        write(self, Some(&mut tx), delete_role_assignments_on(name)).await?;
        write(self, Some(&mut tx), delete_tokens_on(name)).await?;
        commit::<D>(tx, OPERATION).await
    }

    async fn set_repair_status(&self, name: &str, status: &RepairStatus) -> Result<()> {
        match write_once(self, set_repair_status(name, status)).await? {
            0 => Err(not_found(Kind::ScaleSet, name)),
            _ => Ok(()),
        }
    }

    async fn next_ordinal(&self, scale_set: &str) -> Result<u64> {
        let n = read_one::<D, (i64,)>(self, None, next_ordinal(scale_set))
            .await?
            .ok_or_else(|| not_found(Kind::ScaleSet, scale_set))?;
        codec::ordinal(n)
    }

    async fn get_model_version(
        &self,
        scale_set: &str,
        version: u32,
    ) -> Result<Option<ModelVersion>> {
        read_one::<D, ModelVersionRow>(self, None, get_model_version(scale_set, version)).await
    }

    async fn list_model_versions(&self, scale_set: &str) -> Result<Vec<ModelVersion>> {
        read::<D, ModelVersionRow>(self, None, list_model_versions(scale_set)).await
    }

    async fn list_instances(&self, scale_set: &str) -> Result<Vec<Instance>> {
        read::<D, InstanceRow>(self, None, list_instances(scale_set)).await
    }

    async fn list_all_instances(&self) -> Result<Vec<Instance>> {
        read::<D, InstanceRow>(self, None, list_all_instances()).await
    }

    async fn get_instance(&self, id: &str) -> Result<Option<Instance>> {
        read_one::<D, InstanceRow>(self, None, get_instance(id)).await
    }

    async fn count_instances(&self, scale_set: Option<&str>) -> Result<Vec<StateCount>> {
        read::<D, StateCountRow>(self, None, count_instances(scale_set)).await
    }

    async fn insert_instances(
        &self,
        scale_set: &str,
        instances: &[Instance],
        next_ordinal: u64,
    ) -> Result<Vec<Instance>> {
        const OPERATION: &str = "inserting instances";
        let mut tx = begin(self, OPERATION).await?;
        let claim = claim_ordinals(scale_set, next_ordinal);
        let model = read_one::<D, (i64,)>(self, Some(&mut tx), claim)
            .await?
            .ok_or_else(|| not_found(Kind::ScaleSet, scale_set))?;
        // Records are stored under `scale_set`, whatever their own field says.
        let renamed: Vec<Instance>;
        let records: Vec<&Instance> = if instances.iter().all(|i| i.scale_set == scale_set) {
            instances.iter().collect()
        } else {
            renamed = codec::renamed(instances, scale_set);
            renamed.iter().collect()
        };
        for chunk in records.chunks(D::batch_size(&INSTANCE_ROWS)) {
            let insert = instance_batch::<D>(OPERATION, chunk, INSERT_BATCH);
            match self.execute(Some(&mut tx), &insert).await {
                Err(e) if codec::is_unique_violation(&e) => {
                    // The transaction is void (PostgreSQL refuses further statements in
                    // it): roll back, then name the culprit from outside.
                    tx.rollback().await.map_err(db(OPERATION))?;
                    let ids: Vec<String> = instances.iter().map(|i| i.id.clone()).collect();
                    let taken = existing_ids(D::in_ids, &ids);
                    let taken = read::<D, (String,)>(self, None, taken).await?;
                    return Err(codec::instance_exists(instances, &taken));
                }
                other => other.map_err(db(OPERATION))?,
            };
        }
        commit::<D>(tx, OPERATION).await?;
        Ok(codec::inserted(scale_set, instances, model))
    }

    async fn update_instances(&self, instances: &[Instance]) -> Result<Written> {
        const OPERATION: &str = "updating instances";
        if instances.is_empty() {
            return Ok(Written::default());
        }
        let mut tx = begin(self, OPERATION).await?;
        let mut models = HashMap::new();
        for set in codec::sets_of(instances) {
            let bump = bump_instances_version(set);
            let model = read_one::<D, (i64,)>(self, Some(&mut tx), bump).await?;
            models.extend(model.map(|v| (set, v)));
        }
        let records = codec::first_of_each_id(instances);
        let mut written = HashSet::with_capacity(records.len());
        for chunk in records.chunks(D::batch_size(&INSTANCE_ROWS)) {
            let update = instance_batch::<D>(OPERATION, chunk, UPDATE_BATCH);
            written.extend(read::<D, (String,)>(self, Some(&mut tx), update).await?);
        }
        commit::<D>(tx, OPERATION).await?;
        Ok(codec::written(instances, &written, &models))
    }

    async fn delete_instances(&self, ids: &[String]) -> Result<()> {
        const OPERATION: &str = "deleting instances";
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = begin(self, OPERATION).await?;
        write(self, Some(&mut tx), bump_owners_of(D::in_ids, ids)).await?;
        write(self, Some(&mut tx), delete_instances(D::in_ids, ids)).await?;
        commit::<D>(tx, OPERATION).await
    }

    async fn instances_version(&self, scale_set: &str) -> Result<InstancesVersion> {
        read_one::<D, InstancesVersionRow>(self, None, instances_version(scale_set))
            .await?
            .ok_or_else(|| not_found(Kind::ScaleSet, scale_set))
    }

    async fn mark_deleting(
        &self,
        set: &ScaleSet,
        ids: &[String],
        decrement_capacity: bool,
        now: DateTime<Utc>,
    ) -> Result<(ScaleSet, Vec<Instance>)> {
        const OPERATION: &str = "marking instances deleting";
        let mut tx = begin(self, OPERATION).await?;
        let locked = lock_scale_set(set.name(), D::LOCK_ROW);
        let stored = read_one::<D, ScaleSetRow>(self, Some(&mut tx), locked).await?;
        codec::check_generation(set, stored.as_ref().map(|s| s.generation))?;
        let mut after = stored.ok_or_else(|| not_found(Kind::ScaleSet, set.name()))?;
        let among = instances_among(D::in_ids, set.name(), ids);
        let found = read::<D, InstanceRow>(self, Some(&mut tx), among).await?;
        let marked = codec::to_mark(found, ids, now)?;
        let mark = mark_instances_deleting(D::in_ids, set.name(), ids, now);
        write(self, Some(&mut tx), mark).await?;
        write(self, Some(&mut tx), bump_instances_version(set.name())).await?;
        if decrement_capacity && !marked.is_empty() {
            let lowered = codec::decremented(&after, marked.len(), now);
            write(self, Some(&mut tx), write_capacity(&lowered)).await?;
            after = read_one::<D, ScaleSetRow>(self, Some(&mut tx), get_scale_set(set.name()))
                .await?
                .ok_or_else(|| not_found(Kind::ScaleSet, set.name()))?;
        }
        commit::<D>(tx, OPERATION).await?;
        Ok((after, marked))
    }

    async fn append_activity(&self, entry: &NewActivity) -> Result<Activity> {
        const OPERATION: &str = "appending an activity entry";
        let replica = Some(self.writer().replica.as_str()).filter(|r| !r.is_empty());
        let mut single = Single::open(self, OPERATION).await?;
        let append = append_activity(entry, replica, single.generation);
        let id = read_one::<D, (i64,)>(self, single.tx(), append).await?;
        // INSERT … RETURNING answers exactly one row.
        let id = id.ok_or_else(|| db(OPERATION)(sqlx::Error::RowNotFound))?;
        let generation = single.generation;
        single.done(OPERATION).await?;
        Ok(codec::appended(id, entry, replica, generation))
    }

    async fn finish_activity(
        &self,
        id: i64,
        ended_at: DateTime<Utc>,
        result: ActivityResult,
        error: Option<&str>,
        details: &serde_json::Value,
    ) -> Result<Activity> {
        let finish = finish_activity(id, ended_at, result, error, details);
        write_returning::<D, ActivityRow>(self, finish)
            .await?
            .ok_or_else(|| not_found(Kind::Activity, id.to_string()))
    }

    async fn list_activity(&self, filter: &ActivityFilter) -> Result<Vec<Activity>> {
        read::<D, ActivityRow>(self, None, list_activity(filter)).await
    }

    async fn append_decision(&self, decision: &Decision) -> Result<Decision> {
        const OPERATION: &str = "appending an autoscale decision";
        let stored = codec::decision_as_stored(decision);
        let document = codec::decision_document(&stored);
        let id = write_returning::<D, (i64,)>(self, append_decision(&stored, document)).await?;
        // INSERT … RETURNING answers exactly one row.
        let id = id.ok_or_else(|| db(OPERATION)(sqlx::Error::RowNotFound))?;
        Ok(Decision { id, ..stored })
    }

    async fn list_decisions(&self, filter: &DecisionFilter) -> Result<Vec<Decision>> {
        read::<D, DecisionRow>(self, None, list_decisions(filter)).await
    }

    async fn write_rollups(&self, rows: &[Rollup]) -> Result<()> {
        const OPERATION: &str = "writing metric roll-ups";
        if rows.is_empty() {
            return Ok(());
        }
        let records = codec::last_of_each_minute(rows);
        let mut tx = begin(self, OPERATION).await?;
        for chunk in records.chunks(D::batch_size(&ROLLUP_ROWS)) {
            let arg = Arg::Rollups(chunk);
            let upsert = batch::<D>(OPERATION, &ROLLUP_ROWS, chunk.len(), arg, UPSERT_ROLLUPS);
            write(self, Some(&mut tx), upsert).await?;
        }
        commit::<D>(tx, OPERATION).await
    }

    async fn read_rollups(
        &self,
        scale_set: &str,
        metrics: &[Metric],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Rollup>> {
        if metrics.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = metrics.iter().map(|m| m.as_str().to_owned()).collect();
        let stmt = read_rollups(D::in_ids, scale_set, &names, from, to);
        let mut rows = read::<D, RollupRow>(self, None, stmt).await?;
        // By name from the database; stable-sorted into `Metric`'s order, times kept in order.
        rows.sort_by_key(|r| r.metric);
        Ok(rows)
    }

    async fn write_ticks(&self, rows: &[MinuteTicks]) -> Result<()> {
        const OPERATION: &str = "writing metric ticks";
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = begin(self, OPERATION).await?;
        for row in rows {
            write(self, Some(&mut tx), upsert_ticks(row)).await?;
        }
        commit::<D>(tx, OPERATION).await
    }

    async fn read_ticks(
        &self,
        scale_set: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MinuteTicks>> {
        read::<D, TicksRow>(self, None, read_ticks(scale_set, from, to)).await
    }

    async fn prune_ticks(&self, before: DateTime<Utc>) -> Result<u64> {
        write(self, None, prune_ticks(before)).await
    }

    async fn prune_history(&self, before: DateTime<Utc>) -> Result<u64> {
        const OPERATION: &str = "pruning history";
        let mut tx = begin(self, OPERATION).await?;
        let rollups = write(self, Some(&mut tx), prune_rollups(before)).await?;
        let decisions = write(self, Some(&mut tx), prune_decisions(before)).await?;
        commit::<D>(tx, OPERATION).await?;
        Ok(rollups + decisions)
    }

    async fn prune_activity(&self, before: DateTime<Utc>) -> Result<u64> {
        write_once(self, prune_activity(before)).await
    }

    async fn delete_model_versions(&self, scale_set: &str, versions: &[u32]) -> Result<u64> {
        const OPERATION: &str = "deleting model versions";
        let mut tx = begin(self, OPERATION).await?;
        let mut deleted = 0;
        for &version in versions {
            deleted += write(
                self,
                Some(&mut tx),
                delete_model_version(scale_set, version),
            )
            .await?;
        }
        commit::<D>(tx, OPERATION).await?;
        Ok(deleted)
    }

    async fn close(&self) {
        Dialect::close(self).await;
    }

    async fn installation_id(&self, fresh: &str, at: DateTime<Utc>) -> Result<String> {
        write_once(self, claim_installation(fresh, at)).await?;
        read_one::<D, (String,)>(self, None, installation())
            .await?
            .ok_or_else(|| not_found(Kind::Installation, "installation"))
    }

    async fn insert_rollout(&self, rollout: &Rollout) -> Result<Rollout> {
        const OPERATION: &str = "starting a rollout";
        let stored = codec::rollout_as_stored(rollout);
        let insert = insert_rollout(&stored, to_json(&stored));
        let id = match insert_returning_id(self, insert).await? {
            Err(e) if codec::is_unique_violation(&e) => {
                return Err(crate::StoreError::AlreadyExists {
                    kind: Kind::Rollout,
                    key: format!("active rollout of {}", rollout.scale_set),
                });
            }
            other => other.map_err(db(OPERATION))?,
        };
        let id = id.ok_or_else(|| db(OPERATION)(sqlx::Error::RowNotFound))?;
        Ok(Rollout {
            id,
            generation: 1,
            ..stored
        })
    }

    async fn update_rollout(&self, rollout: &Rollout) -> Result<Rollout> {
        let stored = codec::rollout_as_stored(rollout);
        let update = update_rollout(&stored, to_json(&stored));
        match write_returning::<D, (i64,)>(self, update).await? {
            Some(generation) => Ok(Rollout {
                generation,
                ..stored
            }),
            None => {
                let current = self.get_rollout(&rollout.scale_set, rollout.id).await?;
                Err(match current {
                    None => not_found(Kind::Rollout, rollout.id.to_string()),
                    Some(_) => crate::StoreError::Conflict {
                        kind: Kind::Rollout,
                        key: rollout.id.to_string(),
                        expected: rollout.generation,
                    },
                })
            }
        }
    }

    async fn get_rollout(&self, scale_set: &str, id: i64) -> Result<Option<Rollout>> {
        read_one::<D, RolloutRow>(self, None, get_rollout(scale_set, id)).await
    }

    async fn list_rollouts(&self, scale_set: &str, limit: u32) -> Result<Vec<Rollout>> {
        read::<D, RolloutRow>(self, None, list_rollouts(scale_set, limit)).await
    }

    async fn active_rollouts(&self) -> Result<Vec<Rollout>> {
        read::<D, RolloutRow>(self, None, active_rollouts()).await
    }

    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> Result<User> {
        const OPERATION: &str = "creating a user";
        let mut single = Single::open(self, OPERATION).await?;
        match self
            .execute(single.tx(), &insert_user(user, password_hash))
            .await
        {
            Err(e) if codec::is_unique_violation(&e) => Err(crate::StoreError::AlreadyExists {
                kind: Kind::User,
                key: user.name.clone(),
            }),
            Err(e) => Err(db(OPERATION)(e)),
            Ok(_) => {
                single.done(OPERATION).await?;
                Ok(codec::user_as_stored(user))
            }
        }
    }

    async fn get_user(&self, name: &str) -> Result<Option<(User, Option<String>)>> {
        read_one::<D, UserRow>(self, None, get_user(name)).await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let users = read::<D, UserRow>(self, None, list_users()).await?;
        Ok(users.into_iter().map(|(user, _hash)| user).collect())
    }

    async fn count_users(&self) -> Result<u64> {
        let n = read_one::<D, (i64,)>(self, None, count_users()).await?;
        codec::to_u64("user count", n.unwrap_or(0))
    }

    async fn set_user_password(&self, name: &str, password_hash: &str) -> Result<()> {
        match write_once(self, set_user_password(name, password_hash)).await? {
            0 => Err(not_found(Kind::User, name)),
            _ => Ok(()),
        }
    }

    async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<()> {
        match write_once(self, set_user_disabled(name, disabled)).await? {
            0 => Err(not_found(Kind::User, name)),
            _ => Ok(()),
        }
    }

    async fn put_role_assignment(&self, assignment: &RoleAssignment) -> Result<RoleAssignment> {
        match write_once(self, put_role_assignment(assignment)).await? {
            0 => Err(not_found(Kind::User, assignment.user.as_str())),
            _ => Ok(codec::assignment_as_stored(assignment)),
        }
    }

    async fn delete_role_assignment(&self, user: &str, scale_set: Option<&str>) -> Result<bool> {
        let deleted = write_once(self, delete_role_assignment(user, scale_set)).await?;
        Ok(deleted > 0)
    }

    async fn list_role_assignments(&self, user: Option<&str>) -> Result<Vec<RoleAssignment>> {
        read::<D, RoleAssignmentRow>(self, None, list_role_assignments(user)).await
    }

    async fn insert_token(&self, token: &ApiToken, hash: &str) -> Result<ApiToken> {
        const OPERATION: &str = "creating an API token";
        match insert_returning_id(self, insert_token(token, hash)).await? {
            Err(e) if codec::is_unique_violation(&e) => Err(codec::token_exists(token)),
            Err(e) => Err(db(OPERATION)(e)),
            Ok(None) => Err(not_found(Kind::User, token.user.as_str())),
            Ok(Some(id)) => Ok(codec::token_as_stored(token, id)),
        }
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        read_one::<D, TokenRow>(self, None, token_by_hash(hash)).await
    }

    async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>> {
        read::<D, TokenRow>(self, None, list_tokens(user)).await
    }

    async fn revoke_token(&self, id: i64, at: DateTime<Utc>) -> Result<Option<ApiToken>> {
        write_returning::<D, TokenRow>(self, revoke_token(id, at)).await
    }

    async fn touch_tokens(&self, used: &[(i64, DateTime<Utc>)]) -> Result<()> {
        const OPERATION: &str = "recording the use of API tokens";
        if used.is_empty() {
            return Ok(());
        }
        // By id, so that concurrent flushes (several replicas) lock shared rows in one order.
        let mut used = used.to_vec();
        used.sort_unstable();
        let mut tx = begin(self, OPERATION).await?;
        for (id, at) in used {
            write(self, Some(&mut tx), touch_token(id, at)).await?;
        }
        commit::<D>(tx, OPERATION).await
    }

    async fn save_session(
        &self,
        id_hash: &str,
        data: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        write_once(self, save_session(id_hash, data, expires_at)).await?;
        Ok(())
    }

    async fn load_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        read_one::<D, (String,)>(self, None, load_session(id_hash, now)).await
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        write_once(self, delete_session(id_hash)).await?;
        Ok(())
    }

    async fn prune_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        write_once(self, prune_sessions(now)).await
    }

    fn with_writer(&self, writer: Writer) -> Arc<dyn Store> {
        Arc::new(Dialect::with_writer(self, Arc::new(writer)))
    }

    async fn check_fence(&self) -> Result<()> {
        const OPERATION: &str = "checking the lease";
        Single::open(self, OPERATION).await?.done(OPERATION).await
    }

    async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        Dialect::notify(self, channel, payload)
            .await
            .map_err(db("sending a notification"))
    }

    async fn listen(&self, channel: &str) -> Result<Option<Box<dyn Notices>>> {
        Dialect::listen(self, channel)
            .await
            .map_err(db("listening for notifications"))
    }

    // Leases and heartbeats are the fence's own machinery: never fenced themselves.

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        force: bool,
    ) -> Result<Option<Lease>> {
        let acquire = acquire_lease::<D>(name, holder, ttl, force);
        read_one::<D, LeaseRow>(self, None, acquire).await
    }

    async fn release_lease(&self, name: &str, holder: &str, generation: i64) -> Result<()> {
        write(self, None, release_lease::<D>(name, holder, generation)).await?;
        Ok(())
    }

    async fn list_leases(&self) -> Result<Vec<Lease>> {
        read::<D, LeaseRow>(self, None, list_leases()).await
    }

    async fn heartbeat(&self, replica: &Replica, forget_after: Duration) -> Result<Replica> {
        const OPERATION: &str = "recording a replica's heartbeat";
        write(self, None, forget_replicas::<D>(forget_after)).await?;
        read_one::<D, ReplicaRow>(self, None, heartbeat::<D>(replica))
            .await?
            .ok_or_else(|| db(OPERATION)(sqlx::Error::RowNotFound))
    }

    async fn list_replicas(&self) -> Result<Vec<Replica>> {
        read::<D, ReplicaRow>(self, None, list_replicas()).await
    }

    async fn remove_replica(&self, id: &str) -> Result<()> {
        write(self, None, remove_replica(id)).await?;
        Ok(())
    }

    async fn put_frontend_counters(
        &self,
        replica: &str,
        frontends: &[FrontendStats],
    ) -> Result<()> {
        write(
            self,
            None,
            put_frontend_counters::<D>(replica, to_json(frontends)),
        )
        .await?;
        Ok(())
    }

    async fn list_frontend_counters(&self) -> Result<Vec<FrontendCounters>> {
        read::<D, FrontendCountersRow>(self, None, list_frontend_counters()).await
    }

    async fn put_probe_results(&self, results: &[(String, ProbeResult)]) -> Result<()> {
        const OPERATION: &str = "recording probe results";
        if results.is_empty() {
            return Ok(());
        }
        // By id, so that concurrent writers lock rows in one order.
        let mut results = results.to_vec();
        results.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        results.dedup_by(|a, b| a.0 == b.0);
        let mut tx = begin(self, OPERATION).await?;
        for chunk in results.chunks(D::batch_size(&PROBE_ROWS)) {
            let upsert = batch::<D>(
                OPERATION,
                &PROBE_ROWS,
                chunk.len(),
                Arg::Probes(chunk),
                UPSERT_PROBES,
            );
            write(self, Some(&mut tx), upsert).await?;
        }
        commit::<D>(tx, OPERATION).await
    }

    async fn list_probe_results(
        &self,
        scale_set: Option<&str>,
    ) -> Result<Vec<(String, ProbeResult)>> {
        read::<D, ProbeRow>(self, None, list_probe_results(scale_set)).await
    }

    async fn put_host_maintenance(&self, record: &HostMaintenance) -> Result<HostMaintenance> {
        const OPERATION: &str = "recording a host under maintenance";
        let put = put_host_maintenance(record);
        // INSERT … ON CONFLICT DO UPDATE … RETURNING answers exactly one row.
        write_returning::<D, HostMaintenanceRow>(self, put)
            .await?
            .ok_or_else(|| db(OPERATION)(sqlx::Error::RowNotFound))
    }

    async fn list_host_maintenance(&self) -> Result<Vec<HostMaintenance>> {
        read::<D, HostMaintenanceRow>(self, None, list_host_maintenance()).await
    }

    async fn delete_host_maintenance(&self, host: &str) -> Result<bool> {
        let deleted = write_once(self, delete_host_maintenance(host)).await?;
        Ok(deleted > 0)
    }
}
