//! The leader lease in one process: a lone replica leads at start, its tasks write under
//! the lease, and a clean shutdown lets their last writes through before it releases the
//! lease (a successor need not wait for the expiry).

use std::sync::Arc;
use std::time::Duration;

use flotilla_backend::mock::{Mock, MockConfig};
use flotilla_control::{Fleet, FleetConfig, MetricsConfig, SystemClock};
use flotilla_domain::metrics::Metric;
use flotilla_domain::replica::LEADER_LEASE;
use flotilla_domain::{ActivityFilter, ScaleSetSpec};

#[tokio::test]
async fn a_clean_shutdown_writes_the_last_minute_then_releases_the_lease() {
    let store = flotilla_store::connect("sqlite::memory:").await.unwrap();
    let mock = Arc::new(Mock::open(MockConfig::instant()).await.unwrap());
    let fleet = Fleet::new(
        store.clone(),
        mock,
        Arc::new(SystemClock),
        FleetConfig {
            metrics: MetricsConfig {
                interval: Duration::from_millis(100),
                ..MetricsConfig::default()
            },
            ..FleetConfig::default()
        },
    );
    fleet.start().await.unwrap();
    let leading = fleet.leadership();
    assert!(leading.leading, "a lone replica leads at start");
    fleet
        .create_scale_set(ScaleSetSpec::example("web", 1), "test")
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while fleet.collector_stats().ticks < 3 {
        assert!(tokio::time::Instant::now() < deadline, "no metrics ticks");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fleet.shutdown().await;

    let now = chrono::Utc::now();
    let hour = chrono::Duration::hours(1);
    let rows = store
        .read_rollups("web", &[Metric::Capacity], now - hour, now + hour)
        .await
        .unwrap();
    assert!(
        !rows.is_empty(),
        "the minute in progress was written at shutdown"
    );
    let leases = store.list_leases().await.unwrap();
    let leader = leases.iter().find(|l| l.name == LEADER_LEASE).unwrap();
    assert!(leader.expires_at <= now, "released: {leader:?}");
    assert_eq!(Some(leader.generation), leading.generation);
    let entries = store
        .list_activity(&ActivityFilter {
            limit: 100,
            ..ActivityFilter::default()
        })
        .await
        .unwrap();
    let step_down = entries
        .iter()
        .find(|e| e.operation == "control.step_down")
        .expect("the step-down is recorded");
    assert_eq!(step_down.error, None);
    assert_eq!(fleet.leadership().fence_refusals, 0, "nothing was refused");
    assert!(
        store.list_replicas().await.unwrap().is_empty(),
        "the replica is gone"
    );
}
