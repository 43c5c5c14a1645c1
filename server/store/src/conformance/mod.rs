//! The one conformance suite every [`Store`] implementation passes, and the helpers that
//! give tests a fresh database. Test support behind the cargo feature `conformance`, so not
//! in the production library: this crate's tests and benchmark enable it through a
//! dev-dependency on the crate itself, other crates through their own dev-dependency.
//!
//! Each case is a public async function taking `&dyn Store` on an empty database, in the
//! module of its subject: [`scale_sets`], [`model_versions`], [`instances`],
//! [`mark_deleting`], [`activity`], [`history`] (autoscale decisions and metric roll-ups),
//! [`rollouts`], [`accounts`] (users, role assignments, API tokens and portal sessions),
//! [`leases`] (leases with their fence, replicas), [`maintenance`] (hosts under
//! maintenance) and [`database`] (what holds across records). This module holds the
//! harnesses, the macro and the fixtures the cases share.
//!
//! [`store_conformance_tests!`](crate::store_conformance_tests) turns the whole list into
//! one `#[tokio::test]` per case for a given [`Harness`] constructor (the calling crate needs
//! `tokio` as a dev-dependency):
//!
//! ```no_run
//! mod sqlite {
//!     flotilla_store::store_conformance_tests!(flotilla_store::conformance::sqlite_file());
//! }
//! mod postgres {
//!     flotilla_store::store_conformance_tests!(flotilla_store::conformance::postgres());
//! }
//! ```
//!
//! PostgreSQL is opt-in: [`fresh_postgres`] creates a uniquely named database on the server
//! named by `FLOTILLA_TEST_POSTGRES` (e.g. `postgres://postgres@127.0.0.1:5432/postgres`)
//! and drops it afterwards; without the variable it says so on stderr and answers `None`.
//!
//! Beyond the trait's written contract the suite pins these choices, so that every
//! implementation agrees: `mark_deleting` writes the set (generation + 1) only when it lowers
//! the capacity, and returns only the records it newly marked; `list_activity` treats
//! `since` as inclusive and `until` as exclusive on `started_at`, and a `limit` of 0 as the
//! maximum (1,000); lists of an unknown set are empty; timestamps keep microseconds;
//! `list_decisions` filters like `list_activity` (on `at`); `write_rollups` keeps the last
//! of rows repeating a scale set, metric and minute in one batch; `read_rollups` orders
//! metrics in `Metric`'s order (not by name); a session is expired at its `expires_at`;
//! `touch_tokens` ignores absent ids; a taken token hash is `AlreadyExists` keyed by the
//! token's prefix.

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use flotilla_domain::instance::fixtures;
use flotilla_domain::{
    ActivityFilter, ActivityResult, DesiredPower, HealthState, Instance, NewActivity, PowerState,
    ProvisioningState, RepairStatus, ScaleSet, ScaleSetSpec, ScaleSetState,
};
use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};

use crate::{Kind, Store, StoreError};

pub mod accounts;
pub mod activity;
pub mod database;
pub mod history;
pub mod instances;
pub mod leases;
pub mod maintenance;
pub mod mark_deleting;
pub mod model_versions;
pub mod rollouts;
pub mod scale_sets;

// ---------------------------------------------------------------------------------------
// Harnesses

/// The environment variable naming a PostgreSQL server for tests.
pub const POSTGRES_ENV: &str = "FLOTILLA_TEST_POSTGRES";

/// A store on a fresh database, and whatever removes that database when dropped.
pub struct Harness {
    store: Arc<dyn Store>,
    // Declared after `store`, so the store's connections close before the database goes.
    _cleanup: Option<Box<dyn Any + Send>>,
}

impl Harness {
    pub fn new(store: Arc<dyn Store>, cleanup: Option<Box<dyn Any + Send>>) -> Self {
        Self {
            store,
            _cleanup: cleanup,
        }
    }

    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    pub fn shared(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
}

/// A SQLite database file in the temporary directory, removed (with its WAL files) on drop.
pub struct SqliteFile {
    path: PathBuf,
}

impl SqliteFile {
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for SqliteFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            // Best effort: a file that was never created is fine.
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The URL of a SQLite file that does not exist yet (the store creates it), and its guard.
pub fn fresh_sqlite() -> (String, SqliteFile) {
    let path = std::env::temp_dir().join(format!(
        "flotilla-test-{}.db",
        uuid::Uuid::new_v4().simple()
    ));
    (format!("sqlite:{}", path.display()), SqliteFile { path })
}

/// A database created for one test on the `FLOTILLA_TEST_POSTGRES` server, dropped (`WITH
/// (FORCE)`, closing any connection left) when this guard is.
pub struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl PostgresDatabase {
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let drop_sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        // Drop cannot await, and may run inside the test's runtime: use a thread of our own
        // with its own small runtime.
        let outcome = std::thread::spawn(
            move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    let mut admin = PgConnection::connect(&admin_url).await?;
                    admin.execute(drop_sql.as_str()).await?;
                    admin.close().await?;
                    Ok(())
                })
            },
        )
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

/// A fresh, empty database named `flotilla_test_<uuid>` on the server named by
/// `FLOTILLA_TEST_POSTGRES`, as its URL and the guard that drops it. Without the variable,
/// prints why the test is skipped and answers `None`; with it, panics if the server cannot
/// be used (an opted-in test must not pass silently).
pub async fn fresh_postgres() -> Option<(String, PostgresDatabase)> {
    let admin_url = match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => {
            eprintln!(
                "skipped: set {POSTGRES_ENV}=postgres://USER@HOST:PORT/postgres to run the PostgreSQL store tests"
            );
            return None;
        }
    };
    let name = format!("flotilla_test_{}", uuid::Uuid::new_v4().simple());
    let create = format!("CREATE DATABASE \"{name}\"");
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = async {
            let mut admin = PgConnection::connect(&admin_url).await?;
            admin.execute(create.as_str()).await?;
            admin.close().await
        }
        .await;
        match outcome {
            Ok(()) => break,
            // Concurrent CREATE DATABASE from one template can collide; try again shortly.
            Err(e) if attempt < 5 => {
                eprintln!("retrying CREATE DATABASE {name}: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => panic!("{POSTGRES_ENV}={admin_url}: cannot create a test database: {e}"),
        }
    }
    let url = with_database(&admin_url, &name);
    Some((url, PostgresDatabase { admin_url, name }))
}

/// `url` with its database path replaced by `database`, keeping any `?query`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    format!("{}/{database}{query}", &base[..path])
}

/// A SQLite store on a fresh temporary file.
pub async fn sqlite_file() -> Option<Harness> {
    let (url, file) = fresh_sqlite();
    let store = crate::connect(&url)
        .await
        .expect("opening a fresh SQLite file");
    Some(Harness::new(store, Some(Box::new(file))))
}

/// A SQLite store in memory.
pub async fn sqlite_memory() -> Option<Harness> {
    let store = crate::connect("sqlite::memory:")
        .await
        .expect("opening SQLite in memory");
    Some(Harness::new(store, None))
}

/// A PostgreSQL store on a fresh database, or `None` (with a note on stderr) when
/// `FLOTILLA_TEST_POSTGRES` is unset.
pub async fn postgres() -> Option<Harness> {
    let (url, database) = fresh_postgres().await?;
    let store = crate::connect(&url)
        .await
        .expect("connecting to the fresh PostgreSQL database");
    Some(Harness::new(store, Some(Box::new(database))))
}

/// One `#[tokio::test]` per conformance case, each on a fresh store from `$harness` (an
/// expression of type `impl Future<Output = Option<Harness>>`; `None` skips). The cases are
/// listed by subject module; each test is named after its case alone.
#[macro_export]
macro_rules! store_conformance_tests {
    ($harness:expr) => {
        $crate::store_conformance_tests!(@cases $harness;
            scale_sets: [
                create_and_get_scale_set,
                create_taken_name_is_already_exists,
                list_scale_sets_by_name,
                spec_round_trips_every_setting,
                update_scale_set_bumps_generation,
                update_stale_scale_set_is_conflict_and_changes_nothing,
                update_missing_scale_set_is_not_found,
                delete_scale_set_removes_instances_and_versions_keeps_activity,
                delete_missing_scale_set_is_not_found,
                unknown_set_reads,
                repair_status_round_trips,
            ],
            model_versions: [
                rising_model_version_keeps_every_version,
                latest_model_is_derived_from_the_set,
                delete_model_versions_never_takes_the_current_one,
            ],
            instances: [
                insert_instances_stores_them_and_advances_next_ordinal,
                insert_instances_into_missing_set_is_not_found,
                insert_taken_instance_id_is_already_exists_and_writes_nothing,
                insert_repeated_id_in_batch_is_already_exists,
                instances_list_by_ordinal,
                count_instances_by_state,
                every_write_of_records_changes_the_instances_version,
                update_instances_writes_fresh_and_reports_stale,
                update_instances_repeated_id_is_stale_the_second_time,
                update_instances_with_empty_batch,
                delete_instances_ignores_absent_ids,
                retiring_round_trips,
            ],
            mark_deleting: [
                mark_deleting_without_decrement,
                mark_deleting_with_decrement,
                mark_deleting_skips_instances_already_deleting,
                mark_deleting_stale_set_is_conflict_and_changes_nothing,
                mark_deleting_missing_instance_is_not_found_and_changes_nothing,
                mark_deleting_missing_set_is_not_found,
            ],
            activity: [
                append_and_finish_activity,
                finish_missing_activity_is_not_found,
                list_activity_newest_first_with_limit,
                list_activity_filters,
                list_activity_pages_with_before_id,
                list_activity_filters_on_actor,
                prune_activity_keeps_recent_and_unfinished_entries,
            ],
            history: [
                decisions_append_and_list_with_filters,
                decisions_survive_scale_set_deletion,
                rollups_upsert_read_and_prune,
                ticks_upsert_read_and_prune,
                shadow_decisions_are_listed_apart,
                large_rollup_batches,
            ],
            rollouts: [
                rollouts_round_trip_with_one_active_per_set,
                rollouts_go_with_their_scale_set,
            ],
            accounts: [
                create_and_get_user_with_its_password_hash,
                create_taken_user_name_is_already_exists,
                user_password_and_disabled_are_set,
                role_assignment_upserts_on_user_and_scope,
                global_and_set_assignments_are_distinct,
                assignment_or_token_of_missing_user_is_not_found,
                tokens_insert_and_are_found_by_hash,
                revoking_a_token_is_idempotent,
                touching_tokens_keeps_the_latest_use,
                sessions_save_load_and_expire,
                prune_sessions_deletes_expired_ones,
                delete_scale_set_takes_its_assignments_and_tokens,
            ],
            leases: [
                lease_is_renewed_by_its_holder_and_taken_after_expiry,
                an_expired_term_renewed_by_its_holder_is_a_new_term,
                forced_or_released_leases_change_hands_at_once,
                fenced_writes_pass_only_under_the_current_generation,
                replicas_heartbeat_and_are_forgotten,
                frontend_counters_are_kept_per_replica_and_forgotten_with_it,
                probe_results_are_kept_per_instance_and_go_with_it,
                notifications_reach_listeners,
            ],
            maintenance: [
                host_maintenance_round_trips,
                host_maintenance_first_record_wins,
                host_maintenance_delete_answers_whether_it_removed,
                host_maintenance_lists_by_host,
                host_maintenance_writes_are_fenced,
            ],
            database: [
                concurrent_writers_one_wins,
                timestamps_keep_microseconds,
                large_batches,
                installation_id_is_written_once,
                close_ends_the_store,
            ],
        );
    };
    (@cases $harness:expr; $($module:ident: [$($case:ident),+ $(,)?]),+ $(,)?) => {
        $($(
            #[tokio::test]
            async fn $case() {
                if let Some(harness) = $harness.await {
                    $crate::conformance::$module::$case(harness.store()).await;
                }
            }
        )+)+
    };
}

// ---------------------------------------------------------------------------------------
// Fixtures

/// `secs` seconds after 2024-05-01T12:00:00.123456Z: microsecond precision, as stored.
pub fn at(secs: i64) -> DateTime<Utc> {
    let base = Utc
        .with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
        .single()
        .expect("a valid fixed date");
    base + Duration::microseconds(123_456) + Duration::seconds(secs)
}

/// An active set on model version 1, created at `at(0)`.
pub fn scale_set(name: &str, capacity: u32) -> ScaleSet {
    ScaleSet {
        spec: ScaleSetSpec::example(name, capacity),
        model_version: 1,
        generation: 1,
        state: ScaleSetState::Active,
        repairs: RepairStatus::default(),
        created_at: at(0),
        updated_at: at(0),
    }
}

/// A new instance being created, on model version 1, created at `at(ordinal)`: the domain's
/// fixture in zone `ordinal % 3 + 1` and fault domain `ordinal % 2`.
pub fn instance(scale_set: &str, ordinal: u64) -> Instance {
    let zone = (ordinal % 3 + 1).to_string();
    let mut instance = fixtures::instance(scale_set, ordinal, &zone, (ordinal % 2) as u32)
        .in_state(ProvisioningState::Creating)
        .powered(DesiredPower::Running, PowerState::Starting);
    instance.health_state = HealthState::Initializing;
    instance.created_at = at(ordinal as i64);
    instance.updated_at = instance.created_at;
    instance
}

fn entry(operation: &str, scale_set: Option<&str>, started_at: DateTime<Utc>) -> NewActivity {
    NewActivity {
        operation: operation.into(),
        actor: "api".into(),
        scale_set: scale_set.map(Into::into),
        target: scale_set.unwrap_or("backend").into(),
        started_at,
        ended_at: None,
        result: ActivityResult::InProgress,
        error: None,
        details: json!({}),
    }
}

fn filter() -> ActivityFilter {
    ActivityFilter {
        limit: 100,
        ..ActivityFilter::default()
    }
}

fn ids(instances: &[Instance]) -> Vec<&str> {
    instances.iter().map(|i| i.id.as_str()).collect()
}

fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// A set named `name` with instances at ordinals `0..count`, as stored.
async fn set_with_instances(
    store: &dyn Store,
    name: &str,
    count: u64,
) -> (ScaleSet, Vec<Instance>) {
    let set = store
        .create_scale_set(&scale_set(name, count as u32), "tester")
        .await
        .expect("create_scale_set");
    let batch: Vec<Instance> = (0..count).map(|n| instance(name, n)).collect();
    let stored = store
        .insert_instances(name, &batch, count)
        .await
        .expect("insert_instances");
    (set, stored)
}

async fn get_set(store: &dyn Store, name: &str) -> ScaleSet {
    store
        .get_scale_set(name)
        .await
        .expect("get_scale_set")
        .unwrap_or_else(|| panic!("scale set {name} should exist"))
}

async fn list(store: &dyn Store, name: &str) -> Vec<Instance> {
    store.list_instances(name).await.expect("list_instances")
}

fn assert_not_found(err: StoreError, kind: Kind, key: &str) {
    match err {
        StoreError::NotFound {
            kind: k,
            key: found,
        } if k == kind && found == key => {}
        other => panic!("expected NotFound {{ {kind}, {key:?} }}, got {other:?}"),
    }
}

fn assert_already_exists(err: StoreError, kind: Kind, key: &str) {
    match err {
        StoreError::AlreadyExists {
            kind: k,
            key: found,
        } if k == kind && found == key => {}
        other => panic!("expected AlreadyExists {{ {kind}, {key:?} }}, got {other:?}"),
    }
}

fn assert_conflict(err: StoreError, key: &str, expected: i64) {
    match err {
        StoreError::Conflict {
            kind: Kind::ScaleSet,
            key: found,
            expected: e,
        } if found == key && e == expected => {}
        other => {
            panic!("expected Conflict {{ scale set {key:?}, expected {expected} }}, got {other:?}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_is_swapped_in_the_url() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/t",
            ),
            (
                "postgres://u:p@h/db?sslmode=disable",
                "postgres://u:p@h/t?sslmode=disable",
            ),
            ("postgresql://h:5432", "postgresql://h:5432/t"),
            (
                "postgres://h?application_name=x",
                "postgres://h/t?application_name=x",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(with_database(url, "t"), expected, "{url}");
        }
    }
}
