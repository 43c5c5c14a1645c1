//! [`PostgresStore`]: the store for several control-plane replicas on one database.
//!
//! Transactions run at PostgreSQL's default READ COMMITTED: generation-guarded `UPDATE`s
//! re-check their guard against the newest row version, so a concurrent writer makes the
//! other stale rather than lost; `mark_deleting` locks the set's row (`FOR UPDATE`) for its
//! whole check-then-write. Batches (instances, metric roll-ups) are one statement each over
//! `UNNEST`ed column arrays, whatever their size; id lists are bound as `text[]`.
//! Migrations take sqlx's advisory lock, so replicas starting together apply them once.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flotilla_domain::Instance;
use flotilla_domain::metrics::Rollup;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::{Arguments, FromRow, PgPool, Postgres};

use crate::codec::{InstanceValues, ProbeValues, RollupValues, db};
use crate::fence::Writer;
use crate::sql::{Arg, Dialect, RowSource, Stmt};
use crate::{Notice, Notices, Result, StoreError};

type Tx = sqlx::Transaction<'static, Postgres>;

/// How long the server lets a transaction sit idle before it ends it (and its locks).
pub const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(5);

/// The PostgreSQL implementation of [`Store`](crate::Store).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    writer: Arc<Writer>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…` or `postgresql://…`) and applies the migrations.
    ///
    /// Every connection asks the server to end a transaction left idle for
    /// [`IDLE_IN_TRANSACTION`]: a replica paused or cut off in the middle of a fenced write
    /// holds the lease row's share lock, and a successor's takeover waits at most that long.
    /// No transaction of this store waits on anything but the database.
    pub async fn connect(url: &str) -> Result<Self> {
        let idle = IDLE_IN_TRANSACTION.as_millis().to_string();
        let options = PgConnectOptions::from_str(url)
            .map_err(db("parsing the PostgreSQL URL"))?
            .options([("idle_in_transaction_session_timeout", idle.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(db("connecting to PostgreSQL"))?;
        sqlx::migrate!("../../migrations/postgres")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { source })?;
        tracing::debug!("PostgreSQL store connected, migrations applied");
        Ok(Self {
            pool,
            writer: Arc::default(),
        })
    }

    /// The connection pool, for diagnostics and tests.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn arguments(stmt: &Stmt<'_>) -> Result<PgArguments, sqlx::Error> {
    bind(stmt).map_err(sqlx::Error::Encode)
}

fn bind(stmt: &Stmt<'_>) -> Result<PgArguments, BoxDynError> {
    let mut args = PgArguments::default();
    for arg in &stmt.args {
        match arg {
            Arg::Text(s) => args.add(s.as_ref())?,
            Arg::OptText(s) => args.add(*s)?,
            Arg::Int(n) => args.add(*n)?,
            Arg::OptInt(n) => args.add(*n)?,
            Arg::Bool(b) => args.add(*b)?,
            Arg::Time(t) => args.add(*t)?,
            Arg::OptTime(t) => args.add(*t)?,
            Arg::Ids(ids) => args.add(*ids)?,
            Arg::Batch(records) => Columns::of(records).add_to(&mut args)?,
            Arg::Rollups(records) => RollupColumns::of(records).add_to(&mut args)?,
            Arg::Probes(records) => {
                let values: Vec<ProbeValues<'_>> = records.iter().map(ProbeValues::of).collect();
                args.add(values.iter().map(|v| v.instance_id).collect::<Vec<_>>())?;
                args.add(values.iter().map(|v| v.at).collect::<Vec<_>>())?;
                args.add(values.iter().map(|v| v.success).collect::<Vec<_>>())?;
                args.add(values.iter().map(|v| v.latency_us).collect::<Vec<_>>())?;
                args.add(values.iter().map(|v| v.detail).collect::<Vec<_>>())?;
            }
        }
    }
    Ok(args)
}

/// A batch of instances as one array per column, for `UNNEST`.
#[derive(Default)]
struct Columns<'a> {
    id: Vec<&'a str>,
    scale_set: Vec<&'a str>,
    ordinal: Vec<i64>,
    zone: Vec<&'a str>,
    fault_domain: Vec<i64>,
    model_version: Vec<i64>,
    provisioning_state: Vec<&'static str>,
    power_state: Vec<&'static str>,
    health_state: Vec<&'static str>,
    desired_power: Vec<&'static str>,
    pending: Vec<Option<&'static str>>,
    protect_from_scale_in: Vec<bool>,
    protect_from_scale_set_actions: Vec<bool>,
    address: Vec<Option<&'a str>>,
    last_error: Vec<Option<&'a str>>,
    created_at: Vec<DateTime<Utc>>,
    updated_at: Vec<DateTime<Utc>>,
    health_changed_at: Vec<Option<DateTime<Utc>>>,
    load_balancer_enabled: Vec<bool>,
    repair_attempts: Vec<i64>,
    retiring: Vec<bool>,
    lifecycle: Vec<Option<String>>,
    busy_until: Vec<Option<DateTime<Utc>>>,
    warm: Vec<Option<String>>,
    generation: Vec<i64>,
}

impl<'a> Columns<'a> {
    /// The batch's columns, rows ordered by id, so that concurrent batches walking their
    /// arrays (the nested-loop plan small batches get) lock shared rows in one order and
    /// do not deadlock on each other.
    fn of(records: &[&'a Instance]) -> Self {
        let mut batch = records.to_vec();
        batch.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let mut c = Columns::default();
        for i in batch.into_iter().map(InstanceValues::of) {
            c.id.push(i.id);
            c.scale_set.push(i.scale_set);
            c.ordinal.push(i.ordinal);
            c.zone.push(i.zone);
            c.fault_domain.push(i.fault_domain);
            c.model_version.push(i.model_version);
            c.provisioning_state.push(i.provisioning_state);
            c.power_state.push(i.power_state);
            c.health_state.push(i.health_state);
            c.desired_power.push(i.desired_power);
            c.pending.push(i.pending);
            c.protect_from_scale_in.push(i.protect_from_scale_in);
            c.protect_from_scale_set_actions
                .push(i.protect_from_scale_set_actions);
            c.address.push(i.address);
            c.last_error.push(i.last_error);
            c.created_at.push(i.created_at);
            c.updated_at.push(i.updated_at);
            c.health_changed_at.push(i.health_changed_at);
            c.load_balancer_enabled.push(i.load_balancer_enabled);
            c.repair_attempts.push(i.repair_attempts);
            c.retiring.push(i.retiring);
            c.lifecycle.push(i.lifecycle);
            c.busy_until.push(i.busy_until);
            c.warm.push(i.warm);
            c.generation.push(i.generation);
        }
        c
    }

    /// Binds the arrays in the order of `batch_rows`.
    fn add_to(self, args: &mut PgArguments) -> Result<(), BoxDynError> {
        args.add(self.id)?;
        args.add(self.scale_set)?;
        args.add(self.ordinal)?;
        args.add(self.zone)?;
        args.add(self.fault_domain)?;
        args.add(self.model_version)?;
        args.add(self.provisioning_state)?;
        args.add(self.power_state)?;
        args.add(self.health_state)?;
        args.add(self.desired_power)?;
        args.add(self.pending)?;
        args.add(self.protect_from_scale_in)?;
        args.add(self.protect_from_scale_set_actions)?;
        args.add(self.address)?;
        args.add(self.last_error)?;
        args.add(self.created_at)?;
        args.add(self.updated_at)?;
        args.add(self.health_changed_at)?;
        args.add(self.load_balancer_enabled)?;
        args.add(self.repair_attempts)?;
        args.add(self.retiring)?;
        args.add(self.lifecycle)?;
        args.add(self.busy_until)?;
        args.add(self.warm)?;
        args.add(self.generation)?;
        Ok(())
    }
}

/// A batch of roll-ups as one array per column, for `UNNEST`, in the batch's order (which
/// `write_rollups` sorts by key).
#[derive(Default)]
struct RollupColumns<'a> {
    scale_set: Vec<&'a str>,
    metric: Vec<&'static str>,
    minute: Vec<DateTime<Utc>>,
    average: Vec<f64>,
    minimum: Vec<f64>,
    maximum: Vec<f64>,
    total: Vec<f64>,
    count: Vec<i64>,
}

impl<'a> RollupColumns<'a> {
    fn of(records: &[&'a Rollup]) -> Self {
        let mut c = RollupColumns::default();
        for r in records.iter().map(|r| RollupValues::of(r)) {
            c.scale_set.push(r.scale_set);
            c.metric.push(r.metric);
            c.minute.push(r.minute);
            c.average.push(r.average);
            c.minimum.push(r.minimum);
            c.maximum.push(r.maximum);
            c.total.push(r.total);
            c.count.push(r.count);
        }
        c
    }

    /// Binds the arrays in the order of `ROLLUP_ROWS`.
    fn add_to(self, args: &mut PgArguments) -> Result<(), BoxDynError> {
        args.add(self.scale_set)?;
        args.add(self.metric)?;
        args.add(self.minute)?;
        args.add(self.average)?;
        args.add(self.minimum)?;
        args.add(self.maximum)?;
        args.add(self.total)?;
        args.add(self.count)?;
        Ok(())
    }
}

#[async_trait]
impl Dialect for PostgresStore {
    type Db = Postgres;

    const LOCK_ROW: &'static str = " FOR UPDATE";

    const SHARE_ROW: &'static str = " FOR SHARE";

    const NOW: &'static str = "now()";

    fn now_plus_millis(n: usize) -> String {
        format!("(now() + ${n}::float8 * interval '1 millisecond')")
    }

    async fn notify(&self, channel: &str, payload: &str) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await
            .map(drop)
    }

    /// A connection of its own (outside the pool's count) that `LISTEN`s; sqlx reconnects
    /// it after a loss, which the subscription reports as [`Notice::Resync`].
    async fn listen(&self, channel: &str) -> Result<Option<Box<dyn Notices>>, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(channel).await?;
        Ok(Some(Box::new(Listening(listener))))
    }

    fn writer(&self) -> &Writer {
        &self.writer
    }

    fn with_writer(&self, writer: Arc<Writer>) -> Self {
        Self {
            pool: self.pool.clone(),
            writer,
        }
    }

    fn in_ids(column: &str, n: usize) -> String {
        format!("{column} = ANY(${n})")
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self) -> Result<Tx, sqlx::Error> {
        self.pool.begin().await
    }

    async fn fetch<R>(&self, tx: Option<&mut Tx>, stmt: &Stmt<'_>) -> Result<Vec<R>, sqlx::Error>
    where
        R: for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static,
    {
        let found = sqlx::query_as_with(&stmt.sql, arguments(stmt)?);
        match tx {
            None => found.fetch_all(&self.pool).await,
            Some(tx) => found.fetch_all(&mut **tx).await,
        }
    }

    async fn execute(&self, tx: Option<&mut Tx>, stmt: &Stmt<'_>) -> Result<u64, sqlx::Error> {
        let statement = sqlx::query_with(&stmt.sql, arguments(stmt)?);
        let outcome = if let Some(tx) = tx {
            statement.execute(&mut **tx).await?
        } else {
            statement.execute(&self.pool).await?
        };
        Ok(outcome.rows_affected())
    }

    /// One statement takes any number of records.
    fn batch_size(_source: &RowSource) -> usize {
        usize::MAX
    }

    /// `UNNEST` of one array per column: any number of records in one parameter a column.
    fn batch_rows(source: &RowSource, _rows: usize) -> String {
        let arrays: Vec<String> = source
            .types
            .iter()
            .enumerate()
            .map(|(n, t)| format!("${}::{t}[]", n + 1))
            .collect();
        format!("SELECT * FROM UNNEST({})", arrays.join(", "))
    }
}

/// A `LISTEN`ing connection.
struct Listening(PgListener);

#[async_trait]
impl Notices for Listening {
    async fn next(&mut self) -> Result<Notice> {
        // `try_recv` answers `None` once when the connection was lost (it reconnects on the
        // next call): notifications may have been missed.
        match self.0.try_recv().await {
            Ok(Some(n)) => Ok(Notice::Payload(n.payload().to_owned())),
            Ok(None) => Ok(Notice::Resync),
            Err(e) => Err(db("receiving notifications")(e)),
        }
    }
}
