//! The one conformance suite every [`Store`] implementation passes, and the helpers that
//! give tests a fresh database.
//!
//! Each case is a public async function taking `&dyn Store` on an empty database.
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
//! metrics in `Metric`'s order (not by name).

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use flotilla_domain::autoscale::decision::{
    Decision, DecisionFilter, Operation, RuleTrace, TrackingTrace,
};
use flotilla_domain::autoscale::{
    Bounds, Direction, Operator, Projection, Statistic, TimeAggregation,
};
use flotilla_domain::metrics::{Metric, Point, Rollup};
use flotilla_domain::rollout::{
    Batch, FieldChange, GateCheck, Hold, InstanceProgress, InstanceStep, PlannedInstance, Rollout,
    RolloutKind, RolloutPlan, RolloutState, Skipped, UpgradeAction,
};
use flotilla_domain::scale_set::{
    Algorithm, AutomaticRepairs, DataDisk, Frontend, FrontendProtocol, HealthProbe, LoadBalancer,
    ProbeProtocol, RepairAction, RollingPolicy, RoutingRule, ScaleInPolicy, ScaleInRule,
    UpgradeMode, UpgradePolicy,
};
use flotilla_domain::{
    ActivityFilter, ActivityResult, DesiredPower, HealthState, Instance, NewActivity,
    PendingAction, PowerState, ProvisioningState, RepairStatus, ScaleSet, ScaleSetSpec,
    ScaleSetState,
};
use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};

use crate::{Kind, Store, StoreError};

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
/// expression of type `impl Future<Output = Option<Harness>>`; `None` skips).
#[macro_export]
macro_rules! store_conformance_tests {
    ($harness:expr) => {
        $crate::store_conformance_tests!(@cases $harness;
            create_and_get_scale_set,
            create_taken_name_is_already_exists,
            list_scale_sets_by_name,
            spec_round_trips_every_setting,
            update_scale_set_bumps_generation,
            update_stale_scale_set_is_conflict_and_changes_nothing,
            update_missing_scale_set_is_not_found,
            rising_model_version_keeps_every_version,
            delete_scale_set_removes_instances_and_versions_keeps_activity,
            delete_missing_scale_set_is_not_found,
            unknown_set_reads,
            insert_instances_stores_them_and_advances_next_ordinal,
            insert_instances_into_missing_set_is_not_found,
            insert_taken_instance_id_is_already_exists_and_writes_nothing,
            insert_repeated_id_in_batch_is_already_exists,
            instances_list_by_ordinal,
            update_instances_writes_fresh_and_reports_stale,
            update_instances_repeated_id_is_stale_the_second_time,
            update_instances_with_empty_batch,
            latest_model_is_derived_from_the_set,
            delete_instances_ignores_absent_ids,
            mark_deleting_without_decrement,
            mark_deleting_with_decrement,
            mark_deleting_skips_instances_already_deleting,
            mark_deleting_stale_set_is_conflict_and_changes_nothing,
            mark_deleting_missing_instance_is_not_found_and_changes_nothing,
            mark_deleting_missing_set_is_not_found,
            append_and_finish_activity,
            finish_missing_activity_is_not_found,
            list_activity_newest_first_with_limit,
            list_activity_filters,
            list_activity_pages_with_before_id,
            concurrent_writers_one_wins,
            timestamps_keep_microseconds,
            large_batches,
            repair_status_round_trips,
            decisions_append_and_list_with_filters,
            decisions_survive_scale_set_deletion,
            rollups_upsert_read_and_prune,
            large_rollup_batches,
            rollouts_round_trip_with_one_active_per_set,
            rollouts_go_with_their_scale_set,
            retiring_round_trips,
            installation_id_is_written_once,
            prune_activity_keeps_recent_and_unfinished_entries,
            delete_model_versions_never_takes_the_current_one,
            close_ends_the_store,
        );
    };
    (@cases $harness:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                if let Some(harness) = $harness.await {
                    $crate::conformance::$case(harness.store()).await;
                }
            }
        )+
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

/// A new instance being created, on model version 1, created at `at(ordinal)`.
pub fn instance(scale_set: &str, ordinal: u64) -> Instance {
    let zones = ["1", "2", "3"];
    Instance {
        id: Instance::make_id(scale_set, ordinal),
        scale_set: scale_set.into(),
        ordinal,
        zone: zones[(ordinal % 3) as usize].into(),
        fault_domain: (ordinal % 2) as u32,
        model_version: 1,
        latest_model: true,
        provisioning_state: ProvisioningState::Creating,
        power_state: PowerState::Starting,
        health_state: HealthState::Initializing,
        health_changed_at: None,
        last_probe: None,
        load_balancer_enabled: true,
        repair_attempts: 0,
        desired_power: DesiredPower::Running,
        pending: None,
        protect_from_scale_in: false,
        protect_from_scale_set_actions: false,
        retiring: false,
        address: Some(format!("127.0.0.1:{}", 20_000 + ordinal)),
        last_error: None,
        created_at: at(ordinal as i64),
        updated_at: at(ordinal as i64),
        generation: 1,
    }
}

/// A decision of `scale_set` at `at(secs)` from `current` to `new_capacity` (its operation
/// follows), every field set: rule traces, a tracking trace, a projection table. Its floats
/// are exact in JSON text.
pub fn decision(scale_set: &str, secs: i64, current: u32, new_capacity: u32) -> Decision {
    let operation = match new_capacity.cmp(&current) {
        std::cmp::Ordering::Greater => Operation::ScaleOut,
        std::cmp::Ordering::Less => Operation::ScaleIn,
        std::cmp::Ordering::Equal => Operation::None,
    };
    Decision {
        id: 0,
        scale_set: scale_set.into(),
        at: at(secs),
        profile: Some("business hours".into()),
        profile_reason: "weekdays 08:00–18:00 Europe/Paris".into(),
        bounds: Some(Bounds {
            minimum: 1,
            maximum: 10,
            default: 2,
        }),
        current,
        new_capacity,
        operation,
        reason: format!("cpu_percent average 81.25 > 75: {current} → {new_capacity}"),
        rules: vec![
            RuleTrace {
                metric: "cpu_percent".into(),
                direction: Direction::Increase,
                statistic: Statistic::Average,
                time_aggregation: TimeAggregation::Average,
                operator: Operator::GreaterThan,
                threshold: 75.0,
                grains: vec![Some(80.5), None, Some(82.0)],
                value: Some(81.25),
                fired: true,
                target: current + 1,
            },
            RuleTrace {
                metric: "requests_per_second".into(),
                direction: Direction::Decrease,
                statistic: Statistic::Max,
                time_aggregation: TimeAggregation::Last,
                operator: Operator::LessThanOrEqual,
                threshold: 0.1,
                grains: vec![None, None],
                value: None,
                fired: false,
                target: current.saturating_sub(1),
            },
        ],
        rules_target: Some(new_capacity),
        rules_reason: Some("an increase rule fired".into()),
        projections: vec![
            Projection {
                count: 3,
                projected: vec![Some(90.0), None],
                accepted: false,
            },
            Projection {
                count: 4,
                projected: vec![Some(67.5), Some(1e-7)],
                accepted: true,
            },
        ],
        tracking: Some(TrackingTrace {
            metric: "cpu_percent".into(),
            value: Some(81.25),
            target: 65.0,
            ratio: Some(1.25),
            tolerance: 0.1,
            counted: 3,
            recommendation: 4,
            stabilized: 4,
            desired: 4,
            note: "⌈3 × 81.25 / 65⌉ = 4".into(),
        }),
        cooldown_until: Some(at(secs + 300)),
        cooldown_seconds: 300,
    }
}

fn decisions_of(scale_set: &str) -> DecisionFilter {
    DecisionFilter {
        scale_set: scale_set.into(),
        operation: None,
        since: None,
        until: None,
        before_id: None,
        limit: 0,
    }
}

/// The start of minute `n` after 2024-05-01T12:00:00Z.
pub fn minute(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
        .single()
        .expect("a valid fixed date")
        + Duration::minutes(n)
}

/// A roll-up of `metric` of `scale_set` for minute `n`, its fields derived from `value`.
pub fn rollup(scale_set: &str, metric: Metric, n: i64, value: f64) -> Rollup {
    Rollup {
        scale_set: scale_set.into(),
        metric,
        point: Point {
            at: minute(n),
            average: value,
            minimum: value - 1.5,
            maximum: value + 2.25,
            total: value * 4.0,
            count: 4,
        },
    }
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

// ---------------------------------------------------------------------------------------
// Scale sets

/// Create stores generation 1 (whatever the caller sent), model version 1 and next ordinal
/// 0; get answers exactly what create returned.
pub async fn create_and_get_scale_set(store: &dyn Store) {
    let mut set = scale_set("web", 3);
    set.generation = 7;
    let created = store.create_scale_set(&set, "tester").await.unwrap();
    assert_eq!(created.generation, 1, "creates store generation 1");
    assert_eq!(created.spec, set.spec);
    assert_eq!(created.model_version, 1);
    assert_eq!(created.state, ScaleSetState::Active);
    assert_eq!((created.created_at, created.updated_at), (at(0), at(0)));
    assert_eq!(get_set(store, "web").await, created);
    assert_eq!(store.get_scale_set("nope").await.unwrap(), None);
    assert_eq!(store.next_ordinal("web").await.unwrap(), 0);
    assert_eq!(list(store, "web").await, vec![]);
    let versions = store.list_model_versions("web").await.unwrap();
    assert_eq!(versions.len(), 1);
    let v1 = &versions[0];
    assert_eq!((v1.scale_set.as_str(), v1.version), ("web", 1));
    assert_eq!(v1.model, set.spec.model);
    assert_eq!((v1.created_by.as_str(), v1.created_at), ("tester", at(0)));
    assert_eq!(
        store.get_model_version("web", 1).await.unwrap().as_ref(),
        Some(v1)
    );
}

/// A taken name is `AlreadyExists`, and the stored set is untouched.
pub async fn create_taken_name_is_already_exists(store: &dyn Store) {
    let first = store
        .create_scale_set(&scale_set("web", 3), "tester")
        .await
        .unwrap();
    let mut again = scale_set("web", 9);
    again.spec.model.image = "other".into();
    let err = store.create_scale_set(&again, "tester").await.unwrap_err();
    assert_already_exists(err, Kind::ScaleSet, "web");
    assert_eq!(get_set(store, "web").await, first);
    assert_eq!(store.list_model_versions("web").await.unwrap().len(), 1);
    assert_eq!(store.list_scale_sets().await.unwrap().len(), 1);
}

/// Sets are listed by name, bytewise (`-` sorts before digits and letters).
pub async fn list_scale_sets_by_name(store: &dyn Store) {
    assert_eq!(store.list_scale_sets().await.unwrap(), vec![]);
    for name in ["web1", "api", "web-2", "b"] {
        store
            .create_scale_set(&scale_set(name, 1), "tester")
            .await
            .unwrap();
    }
    let names: Vec<String> = store
        .list_scale_sets()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.spec.name)
        .collect();
    assert_eq!(names, ["api", "b", "web-2", "web1"]);
}

/// The whole spec is stored: every optional setting comes back as written.
pub async fn spec_round_trips_every_setting(store: &dyn Store) {
    let mut set = scale_set("full", 4);
    let spec = &mut set.spec;
    spec.model.data_disks = vec![
        DataDisk {
            lun: 0,
            size_gib: 20,
        },
        DataDisk {
            lun: 3,
            size_gib: 1,
        },
    ];
    spec.model.user_data = Some("#cloud-config\nwrite_files: [] # «é» \u{0} \"quoted\"".into());
    spec.model.tags.insert("team".into(), "edge".into());
    spec.model.app_port = 8080;
    spec.zones = vec!["2".into(), "3".into()];
    spec.platform_fault_domain_count = 2;
    spec.zone_balance = true;
    spec.scale_in_policy = ScaleInPolicy {
        rules: vec![ScaleInRule::NewestVm],
        force_deletion: true,
    };
    spec.overprovision = true;
    spec.new_instances_protected_from_scale_in = true;
    spec.health_probe = Some(HealthProbe {
        protocol: ProbeProtocol::Http,
        port: 8080,
        path: "/healthz".into(),
        interval_seconds: 10,
        timeout_seconds: 3,
        healthy_threshold: 2,
        unhealthy_threshold: 3,
        grace_period_seconds: 30,
    });
    spec.automatic_repairs = AutomaticRepairs {
        enabled: true,
        grace_period_seconds: 900,
        repair_action: RepairAction::Reimage,
    };
    spec.load_balancer = Some(LoadBalancer {
        frontends: vec![Frontend {
            backend_port: Some(8080),
            algorithm: Algorithm::LeastConnections,
            rules: vec![RoutingRule {
                path_prefix: "/api".into(),
                scale_set: "api".into(),
            }],
            drain_timeout_seconds: 5,
            ..Frontend::new("web", FrontendProtocol::Http, 9000)
        }],
    });
    spec.upgrade_policy = UpgradePolicy {
        mode: UpgradeMode::Rolling,
        rolling: RollingPolicy {
            max_batch_instance_percent: 50,
            max_surge: true,
            ..RollingPolicy::default()
        },
    };
    set.state = ScaleSetState::Deleting;
    let created = store.create_scale_set(&set, "tester").await.unwrap();
    assert_eq!(created.spec, set.spec);
    assert_eq!(created.state, ScaleSetState::Deleting);
    assert_eq!(get_set(store, "full").await, created);
    let model = store
        .get_model_version("full", 1)
        .await
        .unwrap()
        .unwrap()
        .model;
    assert_eq!(model, set.spec.model);
}

/// An update with the stored generation replaces spec, state and `updated_at`, bumps the
/// generation and keeps `created_at`.
pub async fn update_scale_set_bumps_generation(store: &dyn Store) {
    let created = store
        .create_scale_set(&scale_set("web", 3), "tester")
        .await
        .unwrap();
    let mut next = created.clone();
    next.spec.capacity = 5;
    next.spec.zones.push("4".into());
    next.state = ScaleSetState::Deleting;
    next.updated_at = at(50);
    next.created_at = at(40); // not the store's to change
    let updated = store.update_scale_set(&next, "tester").await.unwrap();
    assert_eq!(updated.generation, 2);
    assert_eq!(updated.spec, next.spec);
    assert_eq!(updated.spec.capacity, 5);
    assert_eq!(updated.state, ScaleSetState::Deleting);
    assert_eq!((updated.created_at, updated.updated_at), (at(0), at(50)));
    assert_eq!(get_set(store, "web").await, updated);
    let again = store.update_scale_set(&updated, "tester").await.unwrap();
    assert_eq!(again.generation, 3);
    assert_eq!(
        store.list_model_versions("web").await.unwrap().len(),
        1,
        "no new model version unless model_version rises"
    );
}

/// A stale generation is `Conflict` and changes nothing, even a rising model version.
pub async fn update_stale_scale_set_is_conflict_and_changes_nothing(store: &dyn Store) {
    let created = store
        .create_scale_set(&scale_set("web", 3), "tester")
        .await
        .unwrap();
    let mut fresh = created.clone();
    fresh.spec.capacity = 4;
    let updated = store.update_scale_set(&fresh, "tester").await.unwrap();
    let mut stale = created.clone();
    stale.spec.capacity = 9;
    stale.model_version = 2;
    stale.spec.model.image = "debian-13".into();
    let err = store.update_scale_set(&stale, "tester").await.unwrap_err();
    assert_conflict(err, "web", 1);
    assert_eq!(get_set(store, "web").await, updated);
    assert_eq!(store.list_model_versions("web").await.unwrap().len(), 1);
    assert_eq!(store.get_model_version("web", 2).await.unwrap(), None);
}

pub async fn update_missing_scale_set_is_not_found(store: &dyn Store) {
    let err = store
        .update_scale_set(&scale_set("ghost", 1), "tester")
        .await
        .unwrap_err();
    assert_not_found(err, Kind::ScaleSet, "ghost");
    assert_eq!(store.list_scale_sets().await.unwrap(), vec![]);
}

/// Raising `model_version` stores the new model as that version (by the updater, at
/// `updated_at`) and keeps the older ones; instances on the old version stop being latest.
pub async fn rising_model_version_keeps_every_version(store: &dyn Store) {
    let (created, _) = set_with_instances(store, "web", 2).await;
    let mut next = created.clone();
    next.model_version = 2;
    next.spec.model.image = "debian-13".into();
    next.spec.model.vcpus = 4;
    next.updated_at = at(60);
    let updated = store.update_scale_set(&next, "alice").await.unwrap();
    assert_eq!(updated.model_version, 2);
    assert_eq!(updated.spec.model, next.spec.model);
    let versions = store.list_model_versions("web").await.unwrap();
    let summary: Vec<(u32, &str, &str, DateTime<Utc>)> = versions
        .iter()
        .map(|v| {
            (
                v.version,
                v.model.image.as_str(),
                v.created_by.as_str(),
                v.created_at,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "debian-12", "tester", at(0)),
            (2, "debian-13", "alice", at(60))
        ]
    );
    assert_eq!(versions[0].model, created.spec.model);
    assert_eq!(versions[1].model, next.spec.model);
    assert_eq!(
        store.get_model_version("web", 2).await.unwrap().as_ref(),
        Some(&versions[1])
    );
    assert!(list(store, "web").await.iter().all(|i| !i.latest_model));

    // An update that keeps the version adds none and leaves version 2 as first stored.
    let mut later = updated.clone();
    later.spec.model.image = "changed-in-place".into();
    store.update_scale_set(&later, "bob").await.unwrap();
    let versions = store.list_model_versions("web").await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1].model.image, "debian-13");
    assert_eq!(versions[1].created_by, "alice");
}

/// Deleting a set removes its instances and model versions; its activity stays; the name
/// can be used again from scratch.
pub async fn delete_scale_set_removes_instances_and_versions_keeps_activity(store: &dyn Store) {
    set_with_instances(store, "web", 3).await;
    set_with_instances(store, "api", 2).await;
    let logged = store
        .append_activity(&entry("scale_set.create", Some("web"), at(0)))
        .await
        .unwrap();
    store.delete_scale_set("web").await.unwrap();
    assert_eq!(store.get_scale_set("web").await.unwrap(), None);
    assert_eq!(list(store, "web").await, vec![]);
    assert_eq!(store.get_instance("web_0").await.unwrap(), None);
    assert_eq!(store.list_model_versions("web").await.unwrap(), vec![]);
    assert_eq!(store.get_model_version("web", 1).await.unwrap(), None);
    let kept = store
        .list_activity(&ActivityFilter {
            scale_set: Some("web".into()),
            ..filter()
        })
        .await
        .unwrap();
    assert_eq!(kept, vec![logged]);
    assert_eq!(
        list(store, "api").await.len(),
        2,
        "other sets are untouched"
    );

    store
        .create_scale_set(&scale_set("web", 1), "tester")
        .await
        .unwrap();
    assert_eq!(store.next_ordinal("web").await.unwrap(), 0);
    assert_eq!(list(store, "web").await, vec![]);
    assert_eq!(store.list_model_versions("web").await.unwrap().len(), 1);
}

pub async fn delete_missing_scale_set_is_not_found(store: &dyn Store) {
    let err = store.delete_scale_set("ghost").await.unwrap_err();
    assert_not_found(err, Kind::ScaleSet, "ghost");
}

/// Reads about a set that does not exist: `next_ordinal` is `NotFound`, lists are empty,
/// single reads are `None`.
pub async fn unknown_set_reads(store: &dyn Store) {
    assert_not_found(
        store.next_ordinal("ghost").await.unwrap_err(),
        Kind::ScaleSet,
        "ghost",
    );
    assert_eq!(store.list_instances("ghost").await.unwrap(), vec![]);
    assert_eq!(store.list_model_versions("ghost").await.unwrap(), vec![]);
    assert_eq!(store.get_model_version("ghost", 1).await.unwrap(), None);
    assert_eq!(store.get_instance("ghost_0").await.unwrap(), None);
    store
        .create_scale_set(&scale_set("web", 1), "tester")
        .await
        .unwrap();
    assert_eq!(store.get_model_version("web", 2).await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------
// Instances

/// Inserted records are stored with generation 1 and `latest_model` derived, returned as
/// stored, and the set's next ordinal is set.
pub async fn insert_instances_stores_them_and_advances_next_ordinal(store: &dyn Store) {
    store
        .create_scale_set(&scale_set("web", 3), "tester")
        .await
        .unwrap();
    let mut batch: Vec<Instance> = (0..3).map(|n| instance("web", n)).collect();
    batch[1].generation = 0;
    batch[1].latest_model = false;
    batch[2].model_version = 7;
    batch[2].pending = Some(PendingAction::Reimage);
    batch[2].protect_from_scale_in = true;
    batch[2].protect_from_scale_set_actions = true;
    batch[2].address = None;
    batch[2].last_error = Some("disk full".into());
    let inserted = store.insert_instances("web", &batch, 3).await.unwrap();
    assert_eq!(ids(&inserted), ["web_0", "web_1", "web_2"]);
    assert!(inserted.iter().all(|i| i.generation == 1));
    assert_eq!(
        inserted.iter().map(|i| i.latest_model).collect::<Vec<_>>(),
        [true, true, false]
    );
    let mut expected = batch[2].clone();
    expected.latest_model = false;
    assert_eq!(inserted[2], expected);
    assert_eq!(list(store, "web").await, inserted);
    assert_eq!(
        store.get_instance("web_2").await.unwrap(),
        Some(inserted[2].clone())
    );
    assert_eq!(store.next_ordinal("web").await.unwrap(), 3);

    let more = store
        .insert_instances("web", &[instance("web", 5)], 6)
        .await
        .unwrap();
    assert_eq!(ids(&more), ["web_5"]);
    assert_eq!(store.next_ordinal("web").await.unwrap(), 6);
    let none = store.insert_instances("web", &[], 8).await.unwrap();
    assert_eq!(none, vec![]);
    assert_eq!(store.next_ordinal("web").await.unwrap(), 8);
    assert_eq!(list(store, "web").await.len(), 4);
}

pub async fn insert_instances_into_missing_set_is_not_found(store: &dyn Store) {
    let err = store
        .insert_instances("ghost", &[instance("ghost", 0)], 1)
        .await
        .unwrap_err();
    assert_not_found(err, Kind::ScaleSet, "ghost");
    assert_eq!(store.get_instance("ghost_0").await.unwrap(), None);
}

/// A taken id is `AlreadyExists` naming it, and nothing of the batch is written (nor the
/// next ordinal).
pub async fn insert_taken_instance_id_is_already_exists_and_writes_nothing(store: &dyn Store) {
    let (_, stored) = set_with_instances(store, "web", 2).await;
    let batch = vec![instance("web", 2), instance("web", 1), instance("web", 3)];
    let err = store.insert_instances("web", &batch, 4).await.unwrap_err();
    assert_already_exists(err, Kind::Instance, "web_1");
    assert_eq!(list(store, "web").await, stored);
    assert_eq!(store.get_instance("web_2").await.unwrap(), None);
    assert_eq!(store.next_ordinal("web").await.unwrap(), 2);
}

pub async fn insert_repeated_id_in_batch_is_already_exists(store: &dyn Store) {
    store
        .create_scale_set(&scale_set("web", 2), "tester")
        .await
        .unwrap();
    let batch = vec![instance("web", 0), instance("web", 1), instance("web", 0)];
    let err = store.insert_instances("web", &batch, 2).await.unwrap_err();
    assert_already_exists(err, Kind::Instance, "web_0");
    assert_eq!(list(store, "web").await, vec![]);
    assert_eq!(store.next_ordinal("web").await.unwrap(), 0);
}

/// Instances are listed by ordinal as a number (`web_10` after `web_9`), per set, and by
/// set then ordinal all together.
pub async fn instances_list_by_ordinal(store: &dyn Store) {
    store
        .create_scale_set(&scale_set("web", 4), "tester")
        .await
        .unwrap();
    store
        .create_scale_set(&scale_set("web-1", 1), "tester")
        .await
        .unwrap();
    let batch: Vec<Instance> = [10, 2, 9, 0]
        .into_iter()
        .map(|n| instance("web", n))
        .collect();
    store.insert_instances("web", &batch, 11).await.unwrap();
    store
        .insert_instances("web-1", &[instance("web-1", 0)], 1)
        .await
        .unwrap();
    assert_eq!(
        ids(&list(store, "web").await),
        ["web_0", "web_2", "web_9", "web_10"]
    );
    assert_eq!(ids(&list(store, "web-1").await), ["web-1_0"]);
    // The whole fleet at once: by set, then ordinal, the same records as per set.
    let all = store.list_all_instances().await.unwrap();
    let mut per_set = list(store, "web").await;
    per_set.extend(list(store, "web-1").await);
    assert_eq!(all, per_set);
}

/// Records whose generation matches are written (generation + 1, every mutable field);
/// stale and absent ones are reported in batch order and left untouched.
pub async fn update_instances_writes_fresh_and_reports_stale(store: &dyn Store) {
    let (_, stored) = set_with_instances(store, "web", 3).await;
    let mut a = stored[0].clone();
    a.provisioning_state = ProvisioningState::Succeeded;
    a.power_state = PowerState::Stopped;
    a.health_state = HealthState::Unhealthy;
    a.desired_power = DesiredPower::Stopped;
    a.pending = Some(PendingAction::Restart);
    a.protect_from_scale_in = true;
    a.protect_from_scale_set_actions = true;
    a.address = None;
    a.last_error = Some("probe timed out".into());
    a.updated_at = at(70);
    a.health_changed_at = Some(at(69));
    a.load_balancer_enabled = false;
    a.repair_attempts = 2;
    let mut b = stored[1].clone();
    b.generation = 5;
    b.power_state = PowerState::Deallocated;
    let c = instance("web", 9);
    let mut d = stored[2].clone();
    d.zone = "3".into();
    d.fault_domain = 4;
    d.model_version = 3;
    d.updated_at = at(71);
    let result = store
        .update_instances(&[a.clone(), b.clone(), c.clone(), d.clone()])
        .await
        .unwrap();
    assert_eq!(ids(&result.written), ["web_0", "web_2"]);
    assert_eq!(result.stale, ["web_1", "web_9"]);
    let mut a2 = a.clone();
    a2.generation = 2;
    let mut d2 = d.clone();
    d2.generation = 2;
    d2.latest_model = false;
    assert_eq!(result.written, vec![a2.clone(), d2.clone()]);
    assert_eq!(list(store, "web").await, vec![a2, stored[1].clone(), d2]);
    assert_eq!(store.get_instance("web_9").await.unwrap(), None);

    // The old copy of `a` is now stale too.
    let result = store.update_instances(&[a]).await.unwrap();
    assert_eq!(result.written, vec![]);
    assert_eq!(result.stale, ["web_0"]);
}

/// The same id twice in one batch: the first write supersedes the second's generation.
pub async fn update_instances_repeated_id_is_stale_the_second_time(store: &dyn Store) {
    let (_, stored) = set_with_instances(store, "web", 1).await;
    let mut first = stored[0].clone();
    first.power_state = PowerState::Stopped;
    let mut second = stored[0].clone();
    second.power_state = PowerState::Deallocated;
    let result = store
        .update_instances(&[first.clone(), second])
        .await
        .unwrap();
    first.generation = 2;
    assert_eq!(result.written, vec![first.clone()]);
    assert_eq!(result.stale, ["web_0"]);
    assert_eq!(list(store, "web").await, vec![first]);
}

pub async fn update_instances_with_empty_batch(store: &dyn Store) {
    let result = store.update_instances(&[]).await.unwrap();
    assert_eq!(result, crate::Written::default());
}

/// `latest_model` follows the set's model version on every read and write.
pub async fn latest_model_is_derived_from_the_set(store: &dyn Store) {
    let (set, stored) = set_with_instances(store, "web", 2).await;
    assert!(stored.iter().all(|i| i.latest_model));
    let mut next = set.clone();
    next.model_version = 2;
    store.update_scale_set(&next, "tester").await.unwrap();
    assert!(list(store, "web").await.iter().all(|i| !i.latest_model));
    let mut upgraded = stored[0].clone();
    upgraded.model_version = 2;
    upgraded.latest_model = false; // ignored: derived
    let result = store.update_instances(&[upgraded]).await.unwrap();
    assert!(result.written[0].latest_model);
    let latest: Vec<bool> = list(store, "web")
        .await
        .iter()
        .map(|i| i.latest_model)
        .collect();
    assert_eq!(latest, [true, false]);
    assert!(
        store
            .get_instance("web_0")
            .await
            .unwrap()
            .unwrap()
            .latest_model
    );
    assert!(
        !store
            .get_instance("web_1")
            .await
            .unwrap()
            .unwrap()
            .latest_model
    );
    let mut stale_flag = stored[1].clone();
    stale_flag.latest_model = true; // ignored: derived
    let result = store.update_instances(&[stale_flag]).await.unwrap();
    assert!(!result.written[0].latest_model);
}

pub async fn delete_instances_ignores_absent_ids(store: &dyn Store) {
    let (_, stored) = set_with_instances(store, "web", 3).await;
    store
        .delete_instances(&strings(&["web_0", "web_7", "web_2"]))
        .await
        .unwrap();
    assert_eq!(list(store, "web").await, vec![stored[1].clone()]);
    store.delete_instances(&[]).await.unwrap();
    assert_eq!(list(store, "web").await.len(), 1);
    assert_eq!(
        store.next_ordinal("web").await.unwrap(),
        3,
        "ordinals are never reused"
    );
}

// ---------------------------------------------------------------------------------------
// mark_deleting

/// Without decrement the set is checked but not written; the marked records are returned
/// as stored (deleting, generation + 1, `updated_at = now`).
pub async fn mark_deleting_without_decrement(store: &dyn Store) {
    let (set, stored) = set_with_instances(store, "web", 4).await;
    let (after, marked) = store
        .mark_deleting(&set, &strings(&["web_3", "web_1"]), false, at(100))
        .await
        .unwrap();
    assert_eq!(after, set, "the set is unchanged");
    assert_eq!(get_set(store, "web").await, set);
    assert_eq!(ids(&marked), ["web_1", "web_3"], "by ordinal");
    for m in &marked {
        assert_eq!(m.provisioning_state, ProvisioningState::Deleting);
        assert_eq!((m.generation, m.updated_at), (2, at(100)));
    }
    let mut expected = stored.clone();
    expected[1] = marked[0].clone();
    expected[3] = marked[1].clone();
    assert_eq!(list(store, "web").await, expected);
}

/// With decrement the stored capacity drops by the number marked, and the set is written
/// (generation + 1, `updated_at = now`).
pub async fn mark_deleting_with_decrement(store: &dyn Store) {
    let (set, _) = set_with_instances(store, "web", 5).await;
    // Only the caller's generation counts: the stored spec is what gets lowered.
    let mut caller = set.clone();
    caller.spec.zones = vec!["9".into()];
    caller.spec.capacity = 100;
    let (after, marked) = store
        .mark_deleting(&caller, &strings(&["web_0", "web_4"]), true, at(100))
        .await
        .unwrap();
    assert_eq!(after.spec.zones, set.spec.zones);
    assert_eq!(marked.len(), 2);
    assert_eq!(after.spec.capacity, 3);
    assert_eq!((after.generation, after.updated_at), (2, at(100)));
    assert_eq!(after.created_at, set.created_at);
    assert_eq!(get_set(store, "web").await, after);
    let deleting: Vec<String> = list(store, "web")
        .await
        .into_iter()
        .filter(|i| i.provisioning_state == ProvisioningState::Deleting)
        .map(|i| i.id)
        .collect();
    assert_eq!(deleting, ["web_0", "web_4"]);
}

/// Instances already deleting are left as they are and not counted.
pub async fn mark_deleting_skips_instances_already_deleting(store: &dyn Store) {
    let (set, _) = set_with_instances(store, "web", 5).await;
    let (set, first) = store
        .mark_deleting(&set, &strings(&["web_1"]), false, at(100))
        .await
        .unwrap();
    let (after, marked) = store
        .mark_deleting(&set, &strings(&["web_1", "web_2"]), true, at(200))
        .await
        .unwrap();
    assert_eq!(ids(&marked), ["web_2"]);
    assert_eq!(after.spec.capacity, 4);
    let again = store.get_instance("web_1").await.unwrap().unwrap();
    assert_eq!(again, first[0], "already deleting: untouched");

    // Nothing left to mark: nothing written, not even the set.
    let (unchanged, none) = store
        .mark_deleting(&after, &strings(&["web_1", "web_2"]), true, at(300))
        .await
        .unwrap();
    assert_eq!(none, vec![]);
    assert_eq!(unchanged, after);
}

pub async fn mark_deleting_stale_set_is_conflict_and_changes_nothing(store: &dyn Store) {
    let (set, stored) = set_with_instances(store, "web", 3).await;
    let mut fresh = set.clone();
    fresh.spec.capacity = 4;
    let updated = store.update_scale_set(&fresh, "tester").await.unwrap();
    let err = store
        .mark_deleting(&set, &strings(&["web_0"]), true, at(100))
        .await
        .unwrap_err();
    assert_conflict(err, "web", 1);
    assert_eq!(get_set(store, "web").await, updated);
    assert_eq!(list(store, "web").await, stored);
}

/// An absent id — or one of another set — is `NotFound` naming it, and nothing is written.
pub async fn mark_deleting_missing_instance_is_not_found_and_changes_nothing(store: &dyn Store) {
    let (set, stored) = set_with_instances(store, "web", 3).await;
    let (_, other) = set_with_instances(store, "api", 1).await;
    let err = store
        .mark_deleting(&set, &strings(&["web_0", "web_7"]), true, at(100))
        .await
        .unwrap_err();
    assert_not_found(err, Kind::Instance, "web_7");
    let err = store
        .mark_deleting(&set, &strings(&["web_1", "api_0"]), true, at(100))
        .await
        .unwrap_err();
    assert_not_found(err, Kind::Instance, "api_0");
    assert_eq!(get_set(store, "web").await, set);
    assert_eq!(list(store, "web").await, stored);
    assert_eq!(list(store, "api").await, other);
}

pub async fn mark_deleting_missing_set_is_not_found(store: &dyn Store) {
    let err = store
        .mark_deleting(
            &scale_set("ghost", 1),
            &strings(&["ghost_0"]),
            true,
            at(100),
        )
        .await
        .unwrap_err();
    assert_not_found(err, Kind::ScaleSet, "ghost");
}

// ---------------------------------------------------------------------------------------
// Activity

/// Appends get increasing ids and come back as given; finishing records the end, result,
/// error and details, with `duration_ms` derived.
pub async fn append_and_finish_activity(store: &dyn Store) {
    let mut new = entry("scale_set.create", Some("web"), at(0));
    new.details = json!({"capacity": 3, "zones": ["1", "2"], "note": "«ok»"});
    let first = store.append_activity(&new).await.unwrap();
    assert_eq!(first.operation, "scale_set.create");
    assert_eq!(first.actor, "api");
    assert_eq!(first.scale_set.as_deref(), Some("web"));
    assert_eq!(first.target, "web");
    assert_eq!(
        (first.started_at, first.ended_at, first.duration_ms),
        (at(0), None, None)
    );
    assert_eq!(first.result, ActivityResult::InProgress);
    assert_eq!(first.details, new.details);

    let mut done = entry("instance.restart", None, at(1));
    done.ended_at = Some(at(1) + Duration::milliseconds(1500));
    done.result = ActivityResult::Failed;
    done.error = Some("backend refused".into());
    let second = store.append_activity(&done).await.unwrap();
    assert!(second.id > first.id, "ids grow");
    assert_eq!(second.duration_ms, Some(1500));
    assert_eq!(second.error.as_deref(), Some("backend refused"));

    let finished = store
        .finish_activity(
            first.id,
            at(2) + Duration::milliseconds(250),
            ActivityResult::Succeeded,
            None,
            &json!({"created": ["web_0"]}),
        )
        .await
        .unwrap();
    assert_eq!(finished.id, first.id);
    assert_eq!(finished.ended_at, Some(at(2) + Duration::milliseconds(250)));
    assert_eq!(finished.duration_ms, Some(2250));
    assert_eq!(finished.result, ActivityResult::Succeeded);
    assert_eq!(finished.error, None);
    assert_eq!(finished.details, json!({"created": ["web_0"]}));
    assert_eq!(
        (finished.started_at, finished.operation.as_str()),
        (at(0), "scale_set.create")
    );
    let listed = store.list_activity(&filter()).await.unwrap();
    assert_eq!(listed, vec![second, finished]);
}

pub async fn finish_missing_activity_is_not_found(store: &dyn Store) {
    let err = store
        .finish_activity(4242, at(1), ActivityResult::Succeeded, None, &json!({}))
        .await
        .unwrap_err();
    assert_not_found(err, Kind::Activity, "4242");
}

/// Entries come newest first, at most `limit` (0 meaning the maximum).
pub async fn list_activity_newest_first_with_limit(store: &dyn Store) {
    assert_eq!(store.list_activity(&filter()).await.unwrap(), vec![]);
    let mut appended = Vec::new();
    // Started out of order: the order is the log's (by id), not the start times'.
    for (n, secs) in [5, 1, 3].into_iter().enumerate() {
        let e = entry(&format!("op.{n}"), Some("web"), at(secs));
        appended.push(store.append_activity(&e).await.unwrap());
    }
    appended.reverse();
    assert_eq!(store.list_activity(&filter()).await.unwrap(), appended);
    let two = ActivityFilter {
        limit: 2,
        ..filter()
    };
    assert_eq!(store.list_activity(&two).await.unwrap(), appended[..2]);
    let unlimited = ActivityFilter {
        limit: 0,
        ..filter()
    };
    assert_eq!(store.list_activity(&unlimited).await.unwrap(), appended);
}

/// Each filter alone and together: scale set, operation, result, `since` (inclusive),
/// `until` (exclusive).
pub async fn list_activity_filters(store: &dyn Store) {
    let specs = [
        (
            "scale_set.create",
            Some("web"),
            0,
            ActivityResult::Succeeded,
        ),
        (
            "scale_set.create",
            Some("api"),
            10,
            ActivityResult::Succeeded,
        ),
        ("instance.restart", Some("web"), 20, ActivityResult::Failed),
        ("reconcile", None, 30, ActivityResult::InProgress),
        (
            "scale_set.update",
            Some("web"),
            40,
            ActivityResult::Succeeded,
        ),
    ];
    let mut ids_by_index = Vec::new();
    for (operation, set, secs, result) in specs {
        let mut e = entry(operation, set, at(secs));
        e.result = result;
        ids_by_index.push(store.append_activity(&e).await.unwrap().id);
    }
    let ids_by_index = &ids_by_index;
    let query = |f: ActivityFilter| async move {
        let found = store.list_activity(&f).await.unwrap();
        found
            .iter()
            .map(|a| ids_by_index.iter().position(|id| *id == a.id).unwrap())
            .collect::<Vec<_>>()
    };
    let web = Some("web".to_owned());
    assert_eq!(
        query(ActivityFilter {
            scale_set: web.clone(),
            ..filter()
        })
        .await,
        [4, 2, 0]
    );
    assert_eq!(
        query(ActivityFilter {
            operation: Some("scale_set.create".into()),
            ..filter()
        })
        .await,
        [1, 0]
    );
    assert_eq!(
        query(ActivityFilter {
            result: Some(ActivityResult::Succeeded),
            ..filter()
        })
        .await,
        [4, 1, 0]
    );
    assert_eq!(
        query(ActivityFilter {
            result: Some(ActivityResult::InProgress),
            ..filter()
        })
        .await,
        [3]
    );
    assert_eq!(
        query(ActivityFilter {
            since: Some(at(20)),
            ..filter()
        })
        .await,
        [4, 3, 2]
    );
    assert_eq!(
        query(ActivityFilter {
            until: Some(at(20)),
            ..filter()
        })
        .await,
        [1, 0]
    );
    assert_eq!(
        query(ActivityFilter {
            since: Some(at(10)),
            until: Some(at(40)),
            ..filter()
        })
        .await,
        [3, 2, 1]
    );
    assert_eq!(
        query(ActivityFilter {
            scale_set: web.clone(),
            result: Some(ActivityResult::Succeeded),
            since: Some(at(1)),
            ..filter()
        })
        .await,
        [4]
    );
    assert_eq!(
        query(ActivityFilter {
            scale_set: Some("ghost".into()),
            ..filter()
        })
        .await,
        Vec::<usize>::new()
    );
    // A microsecond before or after a start time is on the right side of it.
    assert_eq!(
        query(ActivityFilter {
            since: Some(at(40) + Duration::microseconds(1)),
            ..filter()
        })
        .await,
        Vec::<usize>::new()
    );
    assert_eq!(
        query(ActivityFilter {
            until: Some(at(0) + Duration::microseconds(1)),
            ..filter()
        })
        .await,
        [0]
    );
}

/// Paging: each page continues below the previous page's last id.
pub async fn list_activity_pages_with_before_id(store: &dyn Store) {
    let mut all = Vec::new();
    for n in 0..5 {
        let e = entry("reconcile", Some("web"), at(n));
        all.push(store.append_activity(&e).await.unwrap().id);
    }
    all.reverse();
    let mut pages = Vec::new();
    let mut before_id = None;
    loop {
        let page = store
            .list_activity(&ActivityFilter {
                before_id,
                limit: 2,
                ..filter()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        before_id = Some(last.id);
        pages.push(page.iter().map(|a| a.id).collect::<Vec<_>>());
    }
    assert_eq!(
        pages,
        [all[0..2].to_vec(), all[2..4].to_vec(), all[4..].to_vec()]
    );
    let below_first = ActivityFilter {
        before_id: Some(all[4]),
        ..filter()
    };
    assert_eq!(store.list_activity(&below_first).await.unwrap(), vec![]);
}

// ---------------------------------------------------------------------------------------
// Concurrency

/// Writers racing with the same generation: exactly one wins and the others are told they
/// are stale; racing inserts of distinct instances all land.
pub async fn concurrent_writers_one_wins(store: &dyn Store) {
    let (set, stored) = set_with_instances(store, "web", 1).await;
    let resize = |capacity: u32| {
        let mut next = set.clone();
        next.spec.capacity = capacity;
        async move { store.update_scale_set(&next, "tester").await }
    };
    let (a, b, c, d) = tokio::join!(resize(5), resize(6), resize(7), resize(8));
    let outcomes = [a, b, c, d];
    assert_eq!(
        outcomes.iter().filter(|r| r.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    for outcome in outcomes {
        if let Err(err) = outcome {
            assert_conflict(err, "web", 1);
        }
    }
    assert_eq!(get_set(store, "web").await.generation, 2);

    let power = |state: PowerState| {
        let mut next = stored[0].clone();
        next.power_state = state;
        async move { store.update_instances(&[next]).await.unwrap() }
    };
    let (a, b, c) = tokio::join!(
        power(PowerState::Stopped),
        power(PowerState::Stopping),
        power(PowerState::Deallocated)
    );
    let written: usize = [&a, &b, &c].iter().map(|w| w.written.len()).sum();
    let stale: usize = [&a, &b, &c].iter().map(|w| w.stale.len()).sum();
    assert_eq!((written, stale), (1, 2));
    assert_eq!(
        store
            .get_instance("web_0")
            .await
            .unwrap()
            .unwrap()
            .generation,
        2
    );

    let insert = |from: u64| {
        let batch: Vec<Instance> = (from..from + 50).map(|n| instance("web", n)).collect();
        async move {
            store
                .insert_instances("web", &batch, from + 50)
                .await
                .unwrap()
                .len()
        }
    };
    let (a, b, c) = tokio::join!(insert(100), insert(200), insert(300));
    assert_eq!(a + b + c, 150);
    assert_eq!(list(store, "web").await.len(), 151);
}

// ---------------------------------------------------------------------------------------
// Representation

/// Timestamps keep microseconds; finer digits are truncated on write, and the records a
/// write returns already are.
pub async fn timestamps_keep_microseconds(store: &dyn Store) {
    let fine = at(0) + Duration::nanoseconds(789);
    let mut set = scale_set("web", 1);
    set.created_at = fine;
    set.updated_at = fine;
    let created = store.create_scale_set(&set, "tester").await.unwrap();
    assert_eq!(created.created_at, at(0));
    let mut i = instance("web", 0);
    i.created_at = fine;
    i.updated_at = fine + Duration::seconds(1);
    let inserted = store.insert_instances("web", &[i], 1).await.unwrap();
    assert_eq!(inserted[0].created_at, at(0));
    assert_eq!(inserted[0].updated_at, at(1));
    assert_eq!(list(store, "web").await, inserted);
    let mut changed = inserted[0].clone();
    changed.updated_at = fine + Duration::seconds(2);
    let written = store.update_instances(&[changed]).await.unwrap().written;
    assert_eq!(written[0].updated_at, at(2));
    assert_eq!(list(store, "web").await, written);
    let (_, marked) = store
        .mark_deleting(
            &created,
            &strings(&["web_0"]),
            true,
            fine + Duration::seconds(3),
        )
        .await
        .unwrap();
    assert_eq!(marked[0].updated_at, at(3));
    assert_eq!(list(store, "web").await, marked);
    let mut e = entry("op", None, fine);
    e.ended_at = Some(fine + Duration::milliseconds(5));
    let logged = store.append_activity(&e).await.unwrap();
    assert_eq!(logged.started_at, at(0));
    assert_eq!(store.list_activity(&filter()).await.unwrap(), vec![logged]);
    // Before the epoch and far ahead are still times like any other.
    let mut old = scale_set("old", 1);
    old.created_at = Utc
        .with_ymd_and_hms(1969, 7, 20, 20, 17, 40)
        .single()
        .unwrap();
    old.updated_at = Utc
        .with_ymd_and_hms(2999, 12, 31, 23, 59, 59)
        .single()
        .unwrap();
    let stored = store.create_scale_set(&old, "tester").await.unwrap();
    assert_eq!(
        (stored.created_at, stored.updated_at),
        (old.created_at, old.updated_at)
    );
}

/// Batches of thousands go through (past SQLite's bind-parameter limit per statement).
pub async fn large_batches(store: &dyn Store) {
    const N: u64 = 5_000;
    let (set, inserted) = set_with_instances(store, "big", N).await;
    assert_eq!(inserted.len() as u64, N);
    let listed = list(store, "big").await;
    assert_eq!(listed, inserted);
    let changed: Vec<Instance> = listed
        .iter()
        .map(|i| Instance {
            provisioning_state: ProvisioningState::Succeeded,
            power_state: PowerState::Running,
            health_state: HealthState::Healthy,
            updated_at: at(1_000),
            ..i.clone()
        })
        .collect();
    let result = store.update_instances(&changed).await.unwrap();
    assert_eq!(result.written.len() as u64, N);
    assert_eq!(result.stale, Vec::<String>::new());
    assert_eq!(list(store, "big").await, result.written);
    let result = store.update_instances(&changed).await.unwrap();
    assert_eq!(result.stale.len() as u64, N, "all stale the second time");
    let victims: Vec<String> = inserted.iter().skip(1).map(|i| i.id.clone()).collect();
    let (after, marked) = store
        .mark_deleting(&set, &victims, true, at(2_000))
        .await
        .unwrap();
    assert_eq!(marked.len() as u64, N - 1);
    assert_eq!(after.spec.capacity, 1);
    store.delete_instances(&victims).await.unwrap();
    assert_eq!(ids(&list(store, "big").await), ["big_0"]);
}

/// The repair status is kept with the set, written on its own and left alone by spec
/// updates.
pub async fn repair_status_round_trips(store: &dyn Store) {
    let set = store
        .create_scale_set(&scale_set("web", 1), "test")
        .await
        .unwrap();
    assert_eq!(set.repairs, RepairStatus::default());
    let status = RepairStatus {
        suspended_at: Some(at(5)),
        suspended_reason: Some("3 repairs in a row failed".into()),
        consecutive_failures: 3,
        rebalancing: Some("web_3".into()),
    };
    store.set_repair_status("web", &status).await.unwrap();
    let stored = get_set(store, "web").await;
    assert_eq!(stored.repairs, status);
    let mut next = stored.clone();
    next.spec.capacity = 2;
    let updated = store.update_scale_set(&next, "test").await.unwrap();
    assert_eq!(updated.repairs, status, "spec updates keep the status");
    assert_eq!(get_set(store, "web").await.repairs, status);
    assert!(matches!(
        store.set_repair_status("nope", &status).await,
        Err(StoreError::NotFound { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Autoscale decisions and metric roll-ups

/// Decisions round-trip whole with increasing ids, list newest first, and filter by
/// operation, time (`since` inclusive, `until` exclusive), id and count, per scale set.
pub async fn decisions_append_and_list_with_filters(store: &dyn Store) {
    let given = [
        decision("web", 0, 2, 3),
        decision("api", 30, 1, 2),
        decision("web", 60, 3, 3),
        decision("web", 120, 3, 2),
        decision("web", 180, 2, 2),
    ];
    let mut stored = Vec::new();
    for d in &given {
        stored.push(store.append_decision(d).await.unwrap());
    }
    for (s, d) in stored.iter().zip(&given) {
        assert_eq!(
            *s,
            Decision {
                id: s.id,
                ..d.clone()
            },
            "returned as given, with its id"
        );
    }
    assert!(stored.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    let [d1, other, d2, d3, d4] = <[Decision; 5]>::try_from(stored).unwrap();
    let list = |filter: DecisionFilter| async move { store.list_decisions(&filter).await.unwrap() };
    let ids = |filter: DecisionFilter| async move {
        let listed = store.list_decisions(&filter).await.unwrap();
        listed.into_iter().map(|d| d.id).collect::<Vec<i64>>()
    };

    assert_eq!(
        list(decisions_of("web")).await,
        [d4.clone(), d3.clone(), d2.clone(), d1.clone()],
        "newest first, whole"
    );
    assert_eq!(list(decisions_of("api")).await, [other]);
    assert_eq!(list(decisions_of("ghost")).await, []);
    let by_operation = |operation| DecisionFilter {
        operation: Some(operation),
        ..decisions_of("web")
    };
    assert_eq!(ids(by_operation(Operation::None)).await, [d4.id, d2.id]);
    assert_eq!(ids(by_operation(Operation::ScaleOut)).await, [d1.id]);
    assert_eq!(ids(by_operation(Operation::ScaleIn)).await, [d3.id]);
    let window = DecisionFilter {
        since: Some(at(60)),
        until: Some(at(180)),
        ..decisions_of("web")
    };
    assert_eq!(ids(window).await, [d3.id, d2.id], "since in, until out");
    let page = DecisionFilter {
        before_id: Some(d3.id),
        ..decisions_of("web")
    };
    assert_eq!(ids(page.clone()).await, [d2.id, d1.id]);
    assert_eq!(ids(DecisionFilter { limit: 1, ..page }).await, [d2.id]);
    let two = DecisionFilter {
        limit: 2,
        ..decisions_of("web")
    };
    assert_eq!(ids(two).await, [d4.id, d3.id]);
    let none_left = DecisionFilter {
        operation: Some(Operation::ScaleIn),
        since: Some(at(121)),
        ..decisions_of("web")
    };
    assert_eq!(ids(none_left).await, Vec::<i64>::new());

    // `at` is kept to the microsecond, and the decision returned already is.
    let mut fine = decision("web", 240, 2, 1);
    fine.at += Duration::nanoseconds(789);
    let d5 = store.append_decision(&fine).await.unwrap();
    assert_eq!(d5.at, at(240));
    assert!(d5.id > d4.id);
    assert_eq!(
        list(DecisionFilter {
            limit: 1,
            ..decisions_of("web")
        })
        .await,
        [d5]
    );
}

/// Decisions are history: deleting their scale set keeps them (its roll-ups go).
pub async fn decisions_survive_scale_set_deletion(store: &dyn Store) {
    store
        .create_scale_set(&scale_set("web", 2), "tester")
        .await
        .unwrap();
    let first = store
        .append_decision(&decision("web", 0, 2, 3))
        .await
        .unwrap();
    let second = store
        .append_decision(&decision("web", 60, 3, 3))
        .await
        .unwrap();
    store
        .write_rollups(&[rollup("web", Metric::CpuPercent, 0, 50.0)])
        .await
        .unwrap();
    store.delete_scale_set("web").await.unwrap();
    let kept = store.list_decisions(&decisions_of("web")).await.unwrap();
    assert_eq!(kept, [second.clone(), first.clone()]);
    let rollups = store
        .read_rollups("web", &Metric::ALL, minute(-60), minute(60))
        .await
        .unwrap();
    assert_eq!(rollups, []);
    // A new set of the same name sees the old decisions, and appends after them.
    store
        .create_scale_set(&scale_set("web", 1), "tester")
        .await
        .unwrap();
    let third = store
        .append_decision(&decision("web", 120, 1, 1))
        .await
        .unwrap();
    let listed = store.list_decisions(&decisions_of("web")).await.unwrap();
    assert_eq!(listed, [third, second, first]);
}

/// Roll-ups are upserted by scale set, metric and minute, read by metric list and time
/// range in `Metric`'s order then time, pruned by age (with decisions), and deleted with
/// their set.
pub async fn rollups_upsert_read_and_prune(store: &dyn Store) {
    for name in ["web", "api"] {
        store
            .create_scale_set(&scale_set(name, 1), "tester")
            .await
            .unwrap();
    }
    // Disk sorts before memory by name, after it in `Metric`'s order.
    let metrics = [
        Metric::DiskReadBytesPerSecond,
        Metric::CpuPercent,
        Metric::MemoryPercent,
    ];
    let mut rows = Vec::new();
    for (k, metric) in metrics.into_iter().enumerate() {
        for n in 0..5 {
            rows.push(rollup("web", metric, n, 100.0 * k as f64 + n as f64));
        }
    }
    rows.extend((0..5).map(|n| rollup("api", Metric::CpuPercent, n, 1_000.0 + n as f64)));
    store.write_rollups(&rows).await.unwrap();
    store.write_rollups(&[]).await.unwrap();
    let web_cpu: Vec<Rollup> = rows[5..10].to_vec();
    let read = |set: &'static str, metrics: Vec<Metric>, from: i64, to: i64| async move {
        store
            .read_rollups(set, &metrics, minute(from), minute(to))
            .await
            .unwrap()
    };
    assert_eq!(read("web", vec![Metric::CpuPercent], 0, 60).await, web_cpu);

    // Rewriting a minute replaces it; within one batch the last row of a minute wins.
    let mut rewritten = rollup("web", Metric::CpuPercent, 2, 99.5);
    rewritten.point.count = 7;
    let last = rollup("web", Metric::CpuPercent, 4, 42.125);
    store
        .write_rollups(&[
            rewritten.clone(),
            rollup("web", Metric::CpuPercent, 4, 41.0),
            last.clone(),
        ])
        .await
        .unwrap();
    let cpu = read("web", vec![Metric::CpuPercent], 0, 60).await;
    assert_eq!(
        cpu,
        [
            web_cpu[0].clone(),
            web_cpu[1].clone(),
            rewritten,
            web_cpu[3].clone(),
            last
        ]
    );

    // By metric in `Metric`'s order, then time; `from` inclusive, `to` exclusive.
    let ranged = read("web", metrics.to_vec(), 1, 3).await;
    let keys: Vec<(Metric, DateTime<Utc>)> =
        ranged.iter().map(|r| (r.metric, r.point.at)).collect();
    assert_eq!(
        keys,
        [
            (Metric::CpuPercent, minute(1)),
            (Metric::CpuPercent, minute(2)),
            (Metric::MemoryPercent, minute(1)),
            (Metric::MemoryPercent, minute(2)),
            (Metric::DiskReadBytesPerSecond, minute(1)),
            (Metric::DiskReadBytesPerSecond, minute(2)),
        ]
    );
    assert!(ranged.iter().all(|r| r.scale_set == "web"));
    assert_eq!(ranged[2], rows[11], "memory's minute 1 as written");
    let api = read(
        "api",
        vec![Metric::CpuPercent, Metric::MemoryPercent],
        0,
        60,
    )
    .await;
    assert_eq!(api, rows[15..20]);
    assert_eq!(read("web", vec![], 0, 60).await, []);
    assert_eq!(read("web", vec![Metric::Capacity], 0, 60).await, []);
    assert_eq!(read("ghost", Metric::ALL.to_vec(), 0, 60).await, []);
    assert_eq!(read("web", vec![Metric::CpuPercent], 5, 60).await, []);

    // Pruning: roll-ups whose minute starts before, decisions taken before.
    let old = store
        .append_decision(&decision("web", 60, 1, 2))
        .await
        .unwrap();
    let recent = store
        .append_decision(&decision("web", 200, 2, 2))
        .await
        .unwrap();
    assert!(old.at < minute(3) && recent.at >= minute(3));
    // Minutes 0–2 of four series, and one decision.
    assert_eq!(store.prune_history(minute(3)).await.unwrap(), 4 * 3 + 1);
    assert_eq!(store.prune_history(minute(3)).await.unwrap(), 0);
    let left = read("web", metrics.to_vec(), 0, 60).await;
    assert_eq!(left.len(), 3 * 2);
    assert!(left.iter().all(|r| r.point.at >= minute(3)));
    assert_eq!(
        read("api", vec![Metric::CpuPercent], 0, 60).await,
        rows[18..20]
    );
    assert_eq!(
        store.list_decisions(&decisions_of("web")).await.unwrap(),
        [recent]
    );

    // Deleting the set deletes its roll-ups, and only its.
    store.delete_scale_set("web").await.unwrap();
    assert_eq!(read("web", Metric::ALL.to_vec(), 0, 60).await, []);
    assert_eq!(
        read("api", vec![Metric::CpuPercent], 0, 60).await,
        rows[18..20]
    );
    assert_eq!(store.prune_history(minute(60)).await.unwrap(), 2 + 1);
}

/// One write of 20,000 roll-ups (a large fleet's minute), and its rewrite.
pub async fn large_rollup_batches(store: &dyn Store) {
    const SETS: usize = 1_000;
    const METRICS: usize = 10;
    const MINUTES: i64 = 2;
    let batch = |offset: f64| -> Vec<Rollup> {
        let mut rows = Vec::with_capacity(SETS * METRICS * MINUTES as usize);
        for s in 0..SETS {
            for metric in &Metric::ALL[..METRICS] {
                for n in 0..MINUTES {
                    rows.push(rollup(&format!("s{s:04}"), *metric, n, offset + s as f64));
                }
            }
        }
        rows
    };
    let first = batch(0.0);
    assert_eq!(first.len(), 20_000);
    store.write_rollups(&first).await.unwrap();
    let second = batch(0.5);
    store.write_rollups(&second).await.unwrap();
    for s in [0, 777, SETS - 1] {
        let name = format!("s{s:04}");
        let read = store
            .read_rollups(&name, &Metric::ALL, minute(0), minute(MINUTES))
            .await
            .unwrap();
        let expected: Vec<Rollup> = second
            .iter()
            .filter(|r| r.scale_set == name)
            .cloned()
            .collect();
        assert_eq!(read, expected, "{name}: rewritten, not duplicated");
    }
    assert_eq!(
        store.prune_history(minute(MINUTES)).await.unwrap(),
        20_000,
        "one row per set, metric and minute"
    );
}

// ---------------------------------------------------------------------------------------
// Rollouts

/// A rollout of `scale_set` to version 2 started at `at(secs)`, every field set.
pub fn rollout(scale_set: &str, secs: i64) -> Rollout {
    let planned = PlannedInstance {
        id: format!("{scale_set}_0"),
        zone: "1".into(),
        fault_domain: 0,
        from_version: 1,
        action: UpgradeAction::Reimage,
        unhealthy: true,
    };
    Rollout {
        id: 0,
        scale_set: scale_set.into(),
        kind: RolloutKind::Upgrade,
        state: RolloutState::RollingForward,
        from_version: 1,
        target_version: 2,
        policy: RollingPolicy::default(),
        plan: RolloutPlan {
            target_version: 2,
            mode: UpgradeMode::Rolling,
            batch_size: 1,
            batches: vec![Batch {
                number: 1,
                zone: Some("1".into()),
                instances: vec![planned.clone()],
                canary: true,
                pause_after: None,
            }],
            relabel: Vec::new(),
            skipped: vec![Skipped {
                id: format!("{scale_set}_1"),
                zone: "2".into(),
                model_version: 1,
                reason: "protected from scale-set actions".into(),
            }],
            changes: [(
                "1".to_string(),
                vec![FieldChange {
                    field: "image".into(),
                    from: json!("debian-12"),
                    to: json!("ubuntu-24.04"),
                }],
            )]
            .into(),
            boot_seconds: 12,
            expected_seconds: 12,
            approvals: 0,
        },
        current_batch: 1,
        batch_started: true,
        instances: [(
            planned.id.clone(),
            InstanceProgress {
                id: planned.id.clone(),
                batch: 1,
                action: UpgradeAction::Reimage,
                from_version: 1,
                step: InstanceStep::WaitingHealthy,
                replacement: None,
                started_at: Some(at(secs)),
                finished_at: None,
                detail: Some("booting".into()),
            },
        )]
        .into(),
        gates: vec![GateCheck {
            gate: "before".into(),
            batch: 1,
            passed: true,
            unhealthy: 0,
            of: 2,
            limit_percent: 20,
            detail: "0 of 2".into(),
            at: at(secs),
        }],
        hold: Some(Hold::Gate {
            until: at(secs + 600),
            detail: "1 busy".into(),
        }),
        message: None,
        rollback_of: None,
        rolled_back_by: None,
        created_by: "test".into(),
        created_at: at(secs),
        updated_at: at(secs),
        finished_at: None,
        generation: 0,
    }
}

/// Rollouts round-trip whole; one active per set (any number finished); updates are
/// generation-guarded; lists are newest first.
pub async fn rollouts_round_trip_with_one_active_per_set(store: &dyn Store) {
    for name in ["web", "api"] {
        store
            .create_scale_set(&scale_set(name, 2), "test")
            .await
            .unwrap();
    }
    let first = store.insert_rollout(&rollout("web", 1)).await.unwrap();
    assert!(first.id > 0);
    assert_eq!(first.generation, 1);
    assert_eq!(
        store.get_rollout("web", first.id).await.unwrap().as_ref(),
        Some(&first)
    );
    assert!(store.get_rollout("api", first.id).await.unwrap().is_none());
    match store.insert_rollout(&rollout("web", 2)).await {
        Err(StoreError::AlreadyExists { kind, .. }) => assert_eq!(kind, Kind::Rollout),
        other => panic!("a second active rollout: {other:?}"),
    }
    let other = store.insert_rollout(&rollout("api", 3)).await.unwrap();

    let mut paused = first.clone();
    paused.state = RolloutState::Paused;
    paused.hold = Some(Hold::Paused { by: "ann".into() });
    let paused = store.update_rollout(&paused).await.unwrap();
    assert_eq!(paused.generation, 2);
    match store.update_rollout(&first).await {
        Err(StoreError::Conflict { kind, .. }) => assert_eq!(kind, Kind::Rollout),
        other => panic!("a stale update: {other:?}"),
    }
    assert_eq!(
        store.get_rollout("web", first.id).await.unwrap().unwrap(),
        paused
    );
    let active: Vec<i64> = store
        .active_rollouts()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(active, [first.id, other.id]);

    let mut done = paused.clone();
    done.state = RolloutState::Completed;
    done.finished_at = Some(at(9));
    store.update_rollout(&done).await.unwrap();
    let second = store.insert_rollout(&rollout("web", 10)).await.unwrap();
    let listed: Vec<i64> = store
        .list_rollouts("web", 0)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, [second.id, first.id]);
    assert_eq!(store.list_rollouts("web", 1).await.unwrap().len(), 1);
    let mut gone = second.clone();
    gone.id = 9_999;
    assert!(matches!(
        store.update_rollout(&gone).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// A set's rollouts are deleted with it.
pub async fn rollouts_go_with_their_scale_set(store: &dyn Store) {
    store
        .create_scale_set(&scale_set("web", 1), "test")
        .await
        .unwrap();
    let r = store.insert_rollout(&rollout("web", 1)).await.unwrap();
    store.delete_scale_set("web").await.unwrap();
    assert!(store.get_rollout("web", r.id).await.unwrap().is_none());
    assert!(store.active_rollouts().await.unwrap().is_empty());
    store
        .create_scale_set(&scale_set("web", 1), "test")
        .await
        .unwrap();
    assert!(store.list_rollouts("web", 0).await.unwrap().is_empty());
}

/// An instance's `retiring` mark is stored and cleared like every other field.
pub async fn retiring_round_trips(store: &dyn Store) {
    store
        .create_scale_set(&scale_set("web", 1), "test")
        .await
        .unwrap();
    let mut i = instance("web", 0);
    i.retiring = true;
    let stored = store.insert_instances("web", &[i], 1).await.unwrap();
    assert!(stored[0].retiring);
    let mut back = stored[0].clone();
    back.retiring = false;
    let written = store.update_instances(&[back]).await.unwrap();
    assert!(!written.written[0].retiring);
    assert!(!store.get_instance("web_0").await.unwrap().unwrap().retiring);
}

/// The first caller's fresh id is stored; every later caller (with another fresh id) gets
/// it back, also when several ask at once.
pub async fn installation_id_is_written_once(store: &dyn Store) {
    let first = store.installation_id("inst-a", at(0)).await.unwrap();
    assert_eq!(first, "inst-a");
    assert_eq!(
        store.installation_id("inst-b", at(1)).await.unwrap(),
        "inst-a"
    );
    let (c, d, e) = tokio::join!(
        store.installation_id("inst-c", at(2)),
        store.installation_id("inst-d", at(2)),
        store.installation_id("inst-e", at(2)),
    );
    for id in [c, d, e] {
        assert_eq!(id.unwrap(), "inst-a");
    }
}

/// Entries that started before the cut and ended go; newer ones and those still in
/// progress stay.
pub async fn prune_activity_keeps_recent_and_unfinished_entries(store: &dyn Store) {
    let mut old = entry("scale_set.create", Some("web"), at(0));
    old.ended_at = Some(at(1));
    old.result = ActivityResult::Succeeded;
    let old = store.append_activity(&old).await.unwrap();
    let unfinished = store
        .append_activity(&entry("autoscale.webhook", Some("web"), at(0)))
        .await
        .unwrap();
    let mut recent = entry("scale_set.scale", Some("web"), at(100));
    recent.ended_at = Some(at(101));
    recent.result = ActivityResult::Succeeded;
    let recent = store.append_activity(&recent).await.unwrap();
    assert_eq!(store.prune_activity(at(50)).await.unwrap(), 1);
    let ids: Vec<i64> = store
        .list_activity(&filter())
        .await
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, [recent.id, unfinished.id]);
    assert!(!ids.contains(&old.id));
    assert_eq!(store.prune_activity(at(50)).await.unwrap(), 0);
}

/// Old versions go on request; the set's current version, and versions that do not exist,
/// are never counted.
pub async fn delete_model_versions_never_takes_the_current_one(store: &dyn Store) {
    let mut set = store
        .create_scale_set(&scale_set("web", 1), "tester")
        .await
        .unwrap();
    for version in 2..=4 {
        set.model_version = version;
        set.spec.model.vcpus = version;
        set = store.update_scale_set(&set, "tester").await.unwrap();
    }
    assert_eq!(
        store
            .delete_model_versions("web", &[1, 2, 4, 9])
            .await
            .unwrap(),
        2
    );
    let left: Vec<u32> = store
        .list_model_versions("web")
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(left, [3, 4]);
    assert_eq!(store.delete_model_versions("nope", &[1]).await.unwrap(), 0);
}

/// After `close`, what was written is there for the next store on the database, and calls
/// on the closed one fail.
pub async fn close_ends_the_store(store: &dyn Store) {
    store
        .create_scale_set(&scale_set("web", 1), "tester")
        .await
        .unwrap();
    store.close().await;
    assert!(store.list_scale_sets().await.is_err());
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
