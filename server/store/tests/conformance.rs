//! The conformance suite against every implementation: SQLite on a temporary file and in
//! memory, and PostgreSQL when `FLOTILLA_TEST_POSTGRES` names a server (skipped, with a
//! note, otherwise). Plus what only `connect` can show: URLs and reopening a file.

mod sqlite_file {
    flotilla_store::store_conformance_tests!(flotilla_store::conformance::sqlite_file());
}

mod sqlite_memory {
    flotilla_store::store_conformance_tests!(flotilla_store::conformance::sqlite_memory());
}

mod postgres {
    flotilla_store::store_conformance_tests!(flotilla_store::conformance::postgres());
}

use flotilla_store::conformance::{self, at, instance, scale_set};
use flotilla_store::{StoreError, connect};

#[tokio::test]
async fn unsupported_url_is_refused() {
    for url in ["mysql://localhost/db", "", "file:/tmp/x.db"] {
        match connect(url).await {
            Err(StoreError::UnsupportedUrl { url: got }) => assert_eq!(got, url),
            Err(other) => panic!("{url:?}: expected UnsupportedUrl, got {other:?}"),
            Ok(_) => panic!("{url:?}: expected UnsupportedUrl, got a store"),
        }
    }
}

/// A SQLite file keeps everything across a reopen, and migrating it again is a no-op.
#[tokio::test]
async fn sqlite_file_survives_reopen() {
    let (url, _file) = conformance::fresh_sqlite();
    let set = {
        let store = connect(&url).await.unwrap();
        let set = store
            .create_scale_set(&scale_set("web", 2), "tester")
            .await
            .unwrap();
        store
            .insert_instances("web", &[instance("web", 0), instance("web", 1)], 2)
            .await
            .unwrap();
        set
    };
    let store = connect(&url).await.unwrap();
    assert_eq!(store.get_scale_set("web").await.unwrap(), Some(set));
    assert_eq!(store.list_instances("web").await.unwrap().len(), 2);
    assert_eq!(store.next_ordinal("web").await.unwrap(), 2);
    assert_eq!(at(0).timestamp_subsec_micros(), 123_456);
}

/// Two connections to one PostgreSQL database: the second finds the migrations applied.
#[tokio::test]
async fn postgres_reconnect_finds_the_schema() {
    let Some((url, _db)) = conformance::fresh_postgres().await else {
        return;
    };
    let first = connect(&url).await.unwrap();
    first
        .create_scale_set(&scale_set("web", 1), "tester")
        .await
        .unwrap();
    let second = connect(&url).await.unwrap();
    assert_eq!(second.list_scale_sets().await.unwrap().len(), 1);
}

/// A transaction a replica left open (paused, cut off) is ended by the server within
/// `IDLE_IN_TRANSACTION`, so its locks — the lease row's share lock among them — cannot hold
/// a successor's takeover for longer.
#[tokio::test]
async fn postgres_ends_a_transaction_left_idle() {
    let Some((url, _database)) = conformance::fresh_postgres().await else {
        return;
    };
    let store = flotilla_store::postgres::PostgresStore::connect(&url)
        .await
        .unwrap();
    let mut tx = store.pool().begin().await.unwrap();
    sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
    tokio::time::sleep(
        flotilla_store::postgres::IDLE_IN_TRANSACTION + std::time::Duration::from_secs(1),
    )
    .await;
    let after = sqlx::query("SELECT 1").execute(&mut *tx).await;
    assert!(after.is_err(), "the server ended the idle transaction");
}
