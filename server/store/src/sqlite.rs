//! [`SqliteStore`]: the default store, one SQLite file in the data directory.
//!
//! The database runs in WAL mode (readers never wait for the writer) with `synchronous =
//! NORMAL`, a 5 s busy timeout and foreign keys on; deleting a set cascades to its instances
//! and model versions. Every write is one `BEGIN IMMEDIATE` transaction, which takes the
//! write lock up front so a read-then-write never fails on a lock upgrade.
//!
//! Timestamps are TEXT in RFC 3339 UTC with exactly six fractional digits
//! (`2024-05-01T12:00:00.000000Z`), so text order is time order. Instance batches are
//! multi-row statements of as many rows as SQLite's 32,766 bind parameters allow; id lists
//! are bound as one JSON array and read with `json_each`.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use flotilla_domain::Instance;
use sqlx::error::BoxDynError;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Arguments, FromRow, QueryBuilder, Sqlite, SqlitePool};

use crate::codec::{self, InstanceValues, db};
use crate::sql::{Arg, Dialect, Stmt};
use crate::{Result, StoreError};

type Tx = sqlx::Transaction<'static, Sqlite>;

/// SQLite's limit on bind parameters in one statement.
const MAX_PARAMS: usize = 32_766;

/// The SQLite implementation of [`Store`](crate::Store).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` — `sqlite:PATH`, `sqlite://PATH`
    /// or `sqlite::memory:` — and applies the migrations.
    ///
    /// An in-memory database lives as long as its one connection, so its pool holds exactly
    /// one that never expires; file databases get a pool of several.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(db("parsing the SQLite URL"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Rows cross from SQLite's worker thread in this many at a time: the default (50)
            // makes a 10,000-row list ping-pong between threads hundreds of times.
            .row_buffer_size(1024);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool_options = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(8)
        };
        let pool = pool_options
            .connect_with(options)
            .await
            .map_err(db("opening the SQLite database"))?;
        sqlx::migrate!("../../migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { source })?;
        tracing::debug!(url, in_memory, "SQLite store open, migrations applied");
        Ok(Self { pool })
    }

    /// The connection pool, for diagnostics and tests.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// A timestamp as stored: `2024-05-01T12:00:00.123456Z`, fixed width (for years 0–9999),
/// so that text order is time order.
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn arguments<'q>(stmt: &'q Stmt<'_>) -> Result<SqliteArguments<'q>, sqlx::Error> {
    bind(stmt).map_err(sqlx::Error::Encode)
}

fn bind<'q>(stmt: &'q Stmt<'_>) -> Result<SqliteArguments<'q>, BoxDynError> {
    let mut args = SqliteArguments::default();
    for arg in &stmt.args {
        match arg {
            Arg::Text(s) => args.add(s.as_ref())?,
            Arg::OptText(s) => args.add(*s)?,
            Arg::Int(n) => args.add(*n)?,
            Arg::Time(t) => args.add(ts(*t))?,
            Arg::OptTime(t) => args.add(t.map(ts))?,
            Arg::Ids(ids) => args.add(codec::to_json(ids))?,
        }
    }
    Ok(args)
}

#[async_trait]
impl Dialect for SqliteStore {
    type Db = Sqlite;

    /// `BEGIN IMMEDIATE` already holds the database's write lock.
    const LOCK_ROW: &'static str = "";

    /// `json_each` reads the id list, bound as one JSON array.
    fn in_ids(column: &str, n: usize) -> String {
        format!("{column} IN (SELECT value FROM json_each(${n}))")
    }

    async fn begin(&self) -> Result<Tx, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    async fn fetch<R>(&self, tx: Option<&mut Tx>, stmt: &Stmt<'_>) -> Result<Vec<R>, sqlx::Error>
    where
        R: for<'r> FromRow<'r, SqliteRow> + Send + Unpin + 'static,
    {
        let query = sqlx::query_as_with(&stmt.sql, arguments(stmt)?);
        match tx {
            Some(tx) => query.fetch_all(&mut **tx).await,
            None => query.fetch_all(&self.pool).await,
        }
    }

    async fn execute(&self, tx: Option<&mut Tx>, stmt: &Stmt<'_>) -> Result<u64, sqlx::Error> {
        let query = sqlx::query_with(&stmt.sql, arguments(stmt)?);
        let done = match tx {
            Some(tx) => query.execute(&mut **tx).await?,
            None => query.execute(&self.pool).await?,
        };
        Ok(done.rows_affected())
    }

    /// Multi-row `INSERT`s, each as large as the parameter limit allows.
    async fn insert_instances(
        &self,
        tx: &mut Tx,
        scale_set: &str,
        batch: &[Instance],
    ) -> Result<(), sqlx::Error> {
        const COLUMNS: usize = 17;
        for chunk in batch.chunks(MAX_PARAMS / COLUMNS) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO instances (id, scale_set, ordinal, zone, fault_domain, model_version, \
                 provisioning_state, power_state, health_state, desired_power, pending, \
                 protect_from_scale_in, protect_from_scale_set_actions, address, last_error, \
                 created_at, updated_at, generation) ",
            );
            insert.push_values(chunk, |mut row, instance| {
                let v = InstanceValues::of(instance);
                row.push_bind(v.id)
                    .push_bind(scale_set)
                    .push_bind(v.ordinal)
                    .push_bind(v.zone)
                    .push_bind(v.fault_domain)
                    .push_bind(v.model_version)
                    .push_bind(v.provisioning_state)
                    .push_bind(v.power_state)
                    .push_bind(v.health_state)
                    .push_bind(v.desired_power)
                    .push_bind(v.pending)
                    .push_bind(v.protect_from_scale_in)
                    .push_bind(v.protect_from_scale_set_actions)
                    .push_bind(v.address)
                    .push_bind(v.last_error)
                    .push_bind(ts(v.created_at))
                    .push_bind(ts(v.updated_at))
                    .push("1");
            });
            insert.build().execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// `UPDATE … FROM (VALUES …)` statements, each as large as the parameter limit allows.
    async fn update_instances(
        &self,
        tx: &mut Tx,
        batch: &[&Instance],
    ) -> Result<Vec<String>, sqlx::Error> {
        const COLUMNS: usize = 15;
        let mut written = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(MAX_PARAMS / COLUMNS) {
            let mut update = QueryBuilder::<Sqlite>::new(
                "WITH u (id, generation, zone, fault_domain, model_version, provisioning_state, \
                 power_state, health_state, desired_power, pending, protect_from_scale_in, \
                 protect_from_scale_set_actions, address, last_error, updated_at) AS (",
            );
            update.push_values(chunk, |mut row, instance| {
                let v = InstanceValues::of(instance);
                row.push_bind(v.id)
                    .push_bind(v.generation)
                    .push_bind(v.zone)
                    .push_bind(v.fault_domain)
                    .push_bind(v.model_version)
                    .push_bind(v.provisioning_state)
                    .push_bind(v.power_state)
                    .push_bind(v.health_state)
                    .push_bind(v.desired_power)
                    .push_bind(v.pending)
                    .push_bind(v.protect_from_scale_in)
                    .push_bind(v.protect_from_scale_set_actions)
                    .push_bind(v.address)
                    .push_bind(v.last_error)
                    .push_bind(ts(v.updated_at));
            });
            update.push(
                ") UPDATE instances SET zone = u.zone, fault_domain = u.fault_domain, \
                 model_version = u.model_version, provisioning_state = u.provisioning_state, \
                 power_state = u.power_state, health_state = u.health_state, \
                 desired_power = u.desired_power, pending = u.pending, \
                 protect_from_scale_in = u.protect_from_scale_in, \
                 protect_from_scale_set_actions = u.protect_from_scale_set_actions, \
                 address = u.address, last_error = u.last_error, updated_at = u.updated_at, \
                 generation = instances.generation + 1 \
                 FROM u WHERE instances.id = u.id AND instances.generation = u.generation \
                 RETURNING id",
            );
            let ids: Vec<String> = update.build_query_scalar().fetch_all(&mut **tx).await?;
            written.extend(ids);
        }
        Ok(written)
    }
}
