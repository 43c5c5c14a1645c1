//! What holds across records: writers racing on one generation, timestamps kept to the
//! microsecond, batches of thousands, the installation id written once, and `close`.

use chrono::{Duration, TimeZone, Utc};
use flotilla_domain::{HealthState, Instance, PowerState, ProvisioningState};

use super::{
    assert_conflict, at, entry, filter, get_set, ids, instance, list, scale_set,
    set_with_instances, strings,
};
use crate::Store;

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
