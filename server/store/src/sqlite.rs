//! [`SqliteStore`]: the default store, one SQLite file in the data directory.
//!
//! The database runs in WAL mode (readers never wait for the writer) with `synchronous =
//! NORMAL`, a 5 s busy timeout and foreign keys on; deleting a set cascades to its instances
//! and model versions. Every write is one `BEGIN IMMEDIATE` transaction, which takes the
//! write lock up front so a read-then-write never fails on a lock upgrade.
//!
//! Timestamps are TEXT in RFC 3339 UTC with exactly six fractional digits
//! (`2024-05-01T12:00:00.000000Z`), so text order is time order. Batches (instances,
//! metric roll-ups) are multi-row `VALUES` of as many records as SQLite's 32,766 bind
//! parameters allow; id lists are bound as one JSON array and read with `json_each`. An
//! in-memory database (`sqlite::memory:`) lives in its pool's one connection.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::error::BoxDynError;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Arguments, FromRow, Sqlite, SqlitePool};

use crate::codec::{self, InstanceValues, ProbeValues, RollupValues, db};
use crate::fence::Writer;
use crate::sql::{Arg, Dialect, RowSource, Stmt};
use crate::{Notices, Result, StoreError};

type Tx = sqlx::Transaction<'static, Sqlite>;

/// SQLite's limit on bind parameters in one statement.
const MAX_PARAMS: usize = 32_766;

/// The SQLite implementation of [`Store`](crate::Store).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: Arc<Writer>,
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
            // Rows a query may queue from SQLite's worker thread before it waits for the
            // caller (default 50): fewer hand-offs for the 10,000-row lists.
            .row_buffer_size(1024)
            // Reads of a file database go through a shared memory map rather than each
            // connection's small page cache (2 MiB by default; 10,000 instances take more).
            .pragma("mmap_size", "268435456")
            .pragma("cache_size", "-16384");
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
        Ok(Self {
            pool,
            writer: Arc::default(),
        })
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
            Arg::OptInt(n) => args.add(*n)?,
            Arg::Bool(b) => args.add(*b)?,
            Arg::Time(t) => args.add(ts(*t))?,
            Arg::OptTime(t) => args.add(t.map(ts))?,
            Arg::Ids(ids) => args.add(codec::to_json(ids))?,
            Arg::Batch(records) => {
                for v in records.iter().map(|i| InstanceValues::of(i)) {
                    args.add(v.id)?;
                    args.add(v.scale_set)?;
                    args.add(v.ordinal)?;
                    args.add(v.zone)?;
                    args.add(v.fault_domain)?;
                    args.add(v.model_version)?;
                    args.add(v.provisioning_state)?;
                    args.add(v.power_state)?;
                    args.add(v.health_state)?;
                    args.add(v.desired_power)?;
                    args.add(v.pending)?;
                    args.add(v.protect_from_scale_in)?;
                    args.add(v.protect_from_scale_set_actions)?;
                    args.add(v.address)?;
                    args.add(v.last_error)?;
                    args.add(ts(v.created_at))?;
                    args.add(ts(v.updated_at))?;
                    args.add(v.health_changed_at.map(ts))?;
                    args.add(v.load_balancer_enabled)?;
                    args.add(v.repair_attempts)?;
                    args.add(v.retiring)?;
                    args.add(v.lifecycle)?;
                    args.add(v.busy_until.map(ts))?;
                    args.add(v.warm)?;
                    args.add(v.generation)?;
                }
            }
            Arg::Rollups(records) => {
                for v in records.iter().map(|r| RollupValues::of(r)) {
                    args.add(v.scale_set)?;
                    args.add(v.metric)?;
                    args.add(ts(v.minute))?;
                    args.add(v.average)?;
                    args.add(v.minimum)?;
                    args.add(v.maximum)?;
                    args.add(v.total)?;
                    args.add(v.count)?;
                }
            }
            Arg::Probes(records) => {
                for v in records.iter().map(ProbeValues::of) {
                    args.add(v.instance_id)?;
                    args.add(ts(v.at))?;
                    args.add(v.success)?;
                    args.add(v.latency_us)?;
                    args.add(v.detail)?;
                }
            }
        }
    }
    Ok(args)
}

#[async_trait]
impl Dialect for SqliteStore {
    type Db = Sqlite;

    /// `BEGIN IMMEDIATE` already holds the database's write lock.
    const LOCK_ROW: &'static str = "";

    const SHARE_ROW: &'static str = "";

    const NOW: &'static str = "(strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')";

    fn now_plus_millis(n: usize) -> String {
        format!("(strftime('%Y-%m-%dT%H:%M:%f', 'now', (${n} / 1000.0) || ' seconds') || '000Z')")
    }

    /// One file, one replica: nobody to notify.
    async fn notify(&self, _channel: &str, _payload: &str) -> Result<(), sqlx::Error> {
        Ok(())
    }

    async fn listen(&self, _channel: &str) -> Result<Option<Box<dyn Notices>>, sqlx::Error> {
        Ok(None)
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

    /// `json_each` reads the id list, bound as one JSON array.
    fn in_ids(column: &str, n: usize) -> String {
        format!("{column} IN (SELECT value FROM json_each(${n}))")
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self) -> Result<Tx, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Collects the rows first and decodes them after: decoding drops each row's values,
    /// and freeing them takes SQLite's global allocator mutex, which the worker thread
    /// producing rows holds for every value it copies. Overlapping the two made large lists
    /// several times slower on contention alone.
    async fn fetch<R>(&self, tx: Option<&mut Tx>, stmt: &Stmt<'_>) -> Result<Vec<R>, sqlx::Error>
    where
        R: for<'r> FromRow<'r, SqliteRow> + Send + Unpin + 'static,
    {
        let query = sqlx::query_with(&stmt.sql, arguments(stmt)?);
        let rows = match tx {
            Some(tx) => query.fetch_all(&mut **tx).await?,
            None => query.fetch_all(&self.pool).await?,
        };
        rows.iter().map(R::from_row).collect()
    }

    async fn execute(&self, tx: Option<&mut Tx>, stmt: &Stmt<'_>) -> Result<u64, sqlx::Error> {
        let query = sqlx::query_with(&stmt.sql, arguments(stmt)?);
        let done = match tx {
            Some(tx) => query.execute(&mut **tx).await?,
            None => query.execute(&self.pool).await?,
        };
        Ok(done.rows_affected())
    }

    /// As many records as fit in SQLite's bind parameters.
    fn batch_size(source: &RowSource) -> usize {
        MAX_PARAMS / source.width()
    }

    /// `VALUES (?, …), …`: plain `?` placeholders, which SQLite numbers in passing (named
    /// or numbered ones cost a lookup each, quadratic over a batch).
    fn batch_rows(source: &RowSource, rows: usize) -> String {
        let row = format!("({})", vec!["?"; source.width()].join(", "));
        format!("VALUES {}", vec![row; rows].join(", "))
    }
}
