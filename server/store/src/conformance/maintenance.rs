//! Host maintenance: one record per closed host, the first one kept while the host stays
//! closed, listed by host name (bytewise), removed when the host returns, and written only
//! through a fence that holds.

use std::sync::Arc;

use chrono::Duration;
use flotilla_domain::maintenance::{HostMaintenance, MaintenanceReason};

use super::at;
use crate::{Fence, Refusal, Store, StoreError, Writer};

/// Host `host` (zone `1`, fault domain `fault_domain`) closed for maintenance by
/// `user:admin` at `at(secs)`, with three instances on it.
pub fn record(host: &str, fault_domain: u32, secs: i64) -> HostMaintenance {
    HostMaintenance {
        host: host.into(),
        zone: "1".into(),
        fault_domain,
        reason: MaintenanceReason::Maintenance,
        started_at: at(secs),
        started_by: "user:admin".into(),
        instances_at_start: 3,
    }
}

fn hosts(records: &[HostMaintenance]) -> Vec<&str> {
    records.iter().map(|r| r.host.as_str()).collect()
}

/// A record comes back as written, every field, its start to the microsecond (finer digits
/// truncated in what the write returns too); the reason round-trips both ways.
pub async fn host_maintenance_round_trips(store: &dyn Store) {
    assert!(store.list_host_maintenance().await.unwrap().is_empty());
    let mut closed = record("1-fd2", 2, 0);
    closed.zone = "zone-b".into();
    closed.started_at = at(0) + Duration::nanoseconds(789);
    closed.instances_at_start = u32::MAX;
    let stored = store.put_host_maintenance(&closed).await.unwrap();
    let expected = HostMaintenance {
        started_at: at(0),
        ..closed.clone()
    };
    assert_eq!(stored, expected);
    assert_eq!(stored.started_at.timestamp_subsec_micros(), 123_456);
    assert_eq!(store.list_host_maintenance().await.unwrap(), vec![expected]);

    let unreachable = HostMaintenance {
        host: "2-fd0".into(),
        zone: "2".into(),
        fault_domain: 0,
        reason: MaintenanceReason::Unreachable,
        started_at: at(5),
        started_by: "system:hosts".into(),
        instances_at_start: 0,
    };
    assert_eq!(
        store.put_host_maintenance(&unreachable).await.unwrap(),
        unreachable
    );
    let listed = store.list_host_maintenance().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1], unreachable);
    assert_eq!(listed[1].reason, MaintenanceReason::Unreachable);
}

/// Closing a closed host again changes nothing: the first record is kept and returned,
/// whatever the second says.
pub async fn host_maintenance_first_record_wins(store: &dyn Store) {
    let first = store
        .put_host_maintenance(&record("1-fd0", 0, 0))
        .await
        .unwrap();
    let again = HostMaintenance {
        zone: "9".into(),
        fault_domain: 7,
        reason: MaintenanceReason::Unreachable,
        started_at: at(60),
        started_by: "system:hosts".into(),
        instances_at_start: 11,
        ..record("1-fd0", 0, 0)
    };
    assert_eq!(store.put_host_maintenance(&again).await.unwrap(), first);
    assert_eq!(store.list_host_maintenance().await.unwrap(), vec![first]);
}

/// Deleting answers whether there was a record; a host closed again after it returned gets
/// the new record.
pub async fn host_maintenance_delete_answers_whether_it_removed(store: &dyn Store) {
    store
        .put_host_maintenance(&record("1-fd0", 0, 0))
        .await
        .unwrap();
    store
        .put_host_maintenance(&record("1-fd1", 1, 0))
        .await
        .unwrap();
    assert!(store.delete_host_maintenance("1-fd0").await.unwrap());
    assert!(!store.delete_host_maintenance("1-fd0").await.unwrap());
    assert!(!store.delete_host_maintenance("absent").await.unwrap());
    let left = store.list_host_maintenance().await.unwrap();
    assert_eq!(hosts(&left), ["1-fd1"]);

    let reopened = record("1-fd0", 0, 30);
    assert_eq!(
        store.put_host_maintenance(&reopened).await.unwrap(),
        reopened
    );
    assert_eq!(
        hosts(&store.list_host_maintenance().await.unwrap()),
        ["1-fd0", "1-fd1"]
    );
}

/// Records list by host name, bytewise (upper case first, `10` before `2`), whatever the
/// order they were written in.
pub async fn host_maintenance_lists_by_host(store: &dyn Store) {
    for (host, fd) in [("b-fd0", 0), ("a-fd2", 2), ("B-fd1", 1), ("a-fd10", 10)] {
        store
            .put_host_maintenance(&record(host, fd, 0))
            .await
            .unwrap();
    }
    assert_eq!(
        hosts(&store.list_host_maintenance().await.unwrap()),
        ["B-fd1", "a-fd10", "a-fd2", "b-fd0"]
    );
}

/// Through a fenced handle whose lease is not held, both writes are refused and nothing
/// changes; reads still answer.
pub async fn host_maintenance_writes_are_fenced(store: &dyn Store) {
    store
        .put_host_maintenance(&record("1-fd0", 0, 0))
        .await
        .unwrap();
    let fenced = store.with_writer(Writer {
        replica: "r1".into(),
        fence: Some(Arc::new(Fence::new("leader", "r1"))),
    });
    let refused = |e: StoreError| {
        assert!(
            matches!(
                e,
                StoreError::Fenced {
                    reason: Refusal::NotHeld,
                    ..
                }
            ),
            "{e:?}"
        )
    };
    refused(
        fenced
            .put_host_maintenance(&record("1-fd1", 1, 0))
            .await
            .unwrap_err(),
    );
    refused(fenced.delete_host_maintenance("1-fd0").await.unwrap_err());
    assert_eq!(
        hosts(&fenced.list_host_maintenance().await.unwrap()),
        ["1-fd0"]
    );
}
