//! The same control plane on PostgreSQL (run when FLOTILLA_TEST_POSTGRES is set; CI sets it).

use flotilla_tests::{TestServer, count_by};
use serde_json::json;

#[tokio::test]
async fn scale_set_lifecycle_on_postgres() {
    let Some((url, _database)) = flotilla_store::conformance::fresh_postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), &["--database-url", &url]).await;
    let api = server.api();
    api.create_set("pg", 5, json!({})).await;
    let items = api.wait_running("pg", 5).await;
    assert_eq!(count_by(&items, "zone").len(), 3);
    api.put("/scale-sets/pg/capacity", json!({"capacity": 2}))
        .await;
    api.wait_running("pg", 2).await;
    server.stop().await;
    // Restarted on the same database, it finds its instances.
    let server = TestServer::start_with(dir.path(), &["--database-url", &url]).await;
    server.api().wait_running("pg", 2).await;
    server.stop().await;
}
