//! Leases and replicas: one statement acquires or renews a lease by the database's clock,
//! the generation rises at every new term, a released lease is free at once, and a fenced
//! handle writes only while its generation is the lease's — a stale holder's write fails
//! and writes nothing. Replicas heartbeat, are listed and forgotten. Notifications reach
//! every listener where the database has them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use flotilla_domain::replica::{LEADER_LEASE, Replica};

use super::{at, entry, filter, scale_set};
use crate::{Fence, Notice, Refusal, Store, StoreError, Writer};

const LONG: Duration = Duration::from_secs(15);

/// Lets a lease acquired with a 1 ms time to live expire by the database's clock.
async fn expire() {
    tokio::time::sleep(Duration::from_millis(30)).await;
}

async fn generation(store: &dyn Store, holder: &str, ttl: Duration, force: bool) -> Option<i64> {
    store
        .acquire_lease(LEADER_LEASE, holder, ttl, force)
        .await
        .unwrap()
        .map(|l| {
            assert_eq!(l.holder, holder);
            l.generation
        })
}

pub async fn lease_is_renewed_by_its_holder_and_taken_after_expiry(store: &dyn Store) {
    let before = Utc::now() - chrono::Duration::seconds(5);
    let first = store
        .acquire_lease(LEADER_LEASE, "a", LONG, false)
        .await
        .unwrap()
        .expect("a free lease is acquired");
    assert_eq!(first.generation, 1);
    assert!(first.expires_at > before + chrono::Duration::seconds(15));
    assert_eq!(
        generation(store, "b", LONG, false).await,
        None,
        "a holds it"
    );
    let renewed = store
        .acquire_lease(LEADER_LEASE, "a", LONG, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renewed.generation, 1, "a renewal keeps the term");
    assert_eq!(renewed.acquired_at, first.acquired_at);
    assert!(renewed.expires_at >= first.expires_at);
    // a lets it lapse: b takes it in a new term, and a's renewal fails.
    assert_eq!(
        generation(store, "a", Duration::from_millis(1), false).await,
        Some(1)
    );
    expire().await;
    assert_eq!(generation(store, "b", LONG, false).await, Some(2));
    assert_eq!(generation(store, "a", LONG, false).await, None);
    let leases = store.list_leases().await.unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!((leases[0].holder.as_str(), leases[0].generation), ("b", 2));
}

pub async fn an_expired_term_renewed_by_its_holder_is_a_new_term(store: &dyn Store) {
    assert_eq!(
        generation(store, "a", Duration::from_millis(1), false).await,
        Some(1)
    );
    expire().await;
    assert_eq!(generation(store, "a", LONG, false).await, Some(2));
}

pub async fn forced_or_released_leases_change_hands_at_once(store: &dyn Store) {
    assert_eq!(generation(store, "a", LONG, false).await, Some(1));
    assert_eq!(generation(store, "b", LONG, true).await, Some(2), "forced");
    // Releasing another's term, or an old one, does nothing.
    store.release_lease(LEADER_LEASE, "a", 1).await.unwrap();
    store.release_lease(LEADER_LEASE, "b", 1).await.unwrap();
    assert_eq!(generation(store, "c", LONG, false).await, None);
    store.release_lease(LEADER_LEASE, "b", 2).await.unwrap();
    assert_eq!(generation(store, "c", LONG, false).await, Some(3));
}

pub async fn fenced_writes_pass_only_under_the_current_generation(store: &dyn Store) {
    let fence = Arc::new(Fence::new(LEADER_LEASE, "a"));
    let fenced = store.with_writer(Writer {
        replica: "a".into(),
        fence: Some(fence.clone()),
    });
    // Not held yet: refused before the database is asked.
    let refused = fenced.create_scale_set(&scale_set("web", 1), "t").await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Fenced {
                reason: Refusal::NotHeld,
                ..
            })
        ),
        "{refused:?}"
    );
    let g = generation(store, "a", LONG, false).await.unwrap();
    fence.hold(g, Instant::now() + LONG);
    fenced.check_fence().await.unwrap();
    fenced
        .create_scale_set(&scale_set("web", 1), "t")
        .await
        .unwrap();
    let entry_a = fenced
        .append_activity(&entry("scale", Some("web"), at(1)))
        .await
        .unwrap();
    assert_eq!(entry_a.replica.as_deref(), Some("a"));
    assert_eq!(entry_a.lease_generation, Some(g));

    // b takes over: every write through a's handle is refused and writes nothing.
    assert_eq!(generation(store, "b", LONG, true).await, Some(g + 1));
    let before = fence.refusals();
    let stale = fenced.create_scale_set(&scale_set("api", 1), "t").await;
    assert!(
        matches!(
            stale,
            Err(StoreError::Fenced {
                reason: Refusal::Superseded,
                generation: Some(x),
                ..
            }) if x == g
        ),
        "{stale:?}"
    );
    assert!(store.get_scale_set("api").await.unwrap().is_none());
    let stale = fenced
        .append_activity(&entry("scale", Some("web"), at(2)))
        .await;
    assert!(matches!(stale, Err(StoreError::Fenced { .. })), "{stale:?}");
    let web = store.get_scale_set("web").await.unwrap().unwrap();
    let stale = fenced.update_scale_set(&web, "t").await;
    assert!(matches!(stale, Err(StoreError::Fenced { .. })), "{stale:?}");
    let check = fenced.check_fence().await;
    assert!(matches!(check, Err(StoreError::Fenced { .. })), "{check:?}");
    assert_eq!(fence.refusals(), before + 4);
    let entries = store.list_activity(&filter()).await.unwrap();
    assert_eq!(entries.len(), 1, "only the entry written under the lease");

    // A handle without a fence (a request's) writes, naming its replica only.
    let plain = store.with_writer(Writer {
        replica: "b".into(),
        fence: None,
    });
    plain.check_fence().await.unwrap();
    let entry_b = plain
        .append_activity(&entry("scale", Some("web"), at(3)))
        .await
        .unwrap();
    assert_eq!(
        (entry_b.replica.as_deref(), entry_b.lease_generation),
        (Some("b"), None)
    );
    let listed = store.list_activity(&filter()).await.unwrap();
    assert_eq!(listed[0], entry_b);
    assert_eq!(listed[1], entry_a);
}

fn replica(id: &str) -> Replica {
    Replica {
        id: id.into(),
        host: "host-1".into(),
        version: "0.1.0".into(),
        started_at: at(0),
        heartbeat_at: at(0),
    }
}

async fn replica_ids(store: &dyn Store) -> Vec<String> {
    let replicas = store.list_replicas().await.unwrap();
    replicas.into_iter().map(|r| r.id).collect()
}

pub async fn replicas_heartbeat_and_are_forgotten(store: &dyn Store) {
    let hour = Duration::from_secs(3600);
    let first = store.heartbeat(&replica("r1"), hour).await.unwrap();
    assert!(first.heartbeat_at > Utc::now() - chrono::Duration::minutes(1));
    assert_eq!(first.started_at, at(0));
    store.heartbeat(&replica("r2"), hour).await.unwrap();
    let again = store.heartbeat(&replica("r1"), hour).await.unwrap();
    assert!(again.heartbeat_at >= first.heartbeat_at);
    let ids = replica_ids(store).await;
    assert_eq!(ids, ["r1", "r2"]);
    store.remove_replica("r1").await.unwrap();
    store.remove_replica("absent").await.unwrap();
    expire().await;
    // r2 has been silent longer than 10 ms: r3's heartbeat forgets it.
    store
        .heartbeat(&replica("r3"), Duration::from_millis(10))
        .await
        .unwrap();
    let ids = replica_ids(store).await;
    assert_eq!(ids, ["r3"]);
}

pub async fn notifications_reach_listeners(store: &dyn Store) {
    let Some(mut notices) = store.listen("flotilla_test").await.unwrap() else {
        // No notifications here (SQLite): sending is no error.
        store.notify("flotilla_test", "hello").await.unwrap();
        return;
    };
    let mut other = store.listen("flotilla_test").await.unwrap().unwrap();
    store.notify("flotilla_test", "hello").await.unwrap();
    store.notify("flotilla_other", "not for us").await.unwrap();
    let long = "x".repeat(crate::MAX_NOTICE);
    store.notify("flotilla_test", &long).await.unwrap();
    for subscription in [&mut notices, &mut other] {
        for expected in ["hello", long.as_str()] {
            let got = tokio::time::timeout(Duration::from_secs(5), subscription.next())
                .await
                .expect("a notification within 5 s")
                .unwrap();
            assert_eq!(got, Notice::Payload(expected.into()));
        }
    }
}

pub async fn frontend_counters_are_kept_per_replica_and_forgotten_with_it(store: &dyn Store) {
    use flotilla_domain::load_balancer::{FrontendStats, Histogram, StatusClasses};
    let hour = Duration::from_secs(3600);
    let stats = |requests: u64| FrontendStats {
        scale_set: "web".into(),
        name: "http".into(),
        protocol: "http".into(),
        listen: "127.0.0.1:8080".into(),
        requests,
        responses: StatusClasses {
            informational: 0,
            success: requests,
            redirection: 0,
            client_error: 0,
            server_error: 1,
        },
        bytes_in: 10,
        bytes_out: 20,
        active_connections: 2,
        latency: Histogram {
            bounds_ms: vec![1.0, 10.0],
            counts: vec![1, 2, 3],
            sum_ms: 12.5,
            count: 3,
        },
        backends: Vec::new(),
    };
    // Unknown replicas record nothing: the heartbeat comes first.
    store
        .put_frontend_counters("r1", &[stats(1)])
        .await
        .unwrap();
    assert!(store.list_frontend_counters().await.unwrap().is_empty());
    store.heartbeat(&replica("r1"), hour).await.unwrap();
    store.heartbeat(&replica("r2"), hour).await.unwrap();
    assert!(
        store.list_frontend_counters().await.unwrap().is_empty(),
        "none recorded yet"
    );
    let before = Utc::now() - chrono::Duration::minutes(1);
    store
        .put_frontend_counters("r1", &[stats(5)])
        .await
        .unwrap();
    store
        .put_frontend_counters("r2", &[stats(7)])
        .await
        .unwrap();
    let first = store.list_frontend_counters().await.unwrap();
    store
        .put_frontend_counters("r1", &[stats(9)])
        .await
        .unwrap();
    // A heartbeat keeps them.
    store.heartbeat(&replica("r1"), hour).await.unwrap();
    let all = store.list_frontend_counters().await.unwrap();
    let replicas: Vec<&str> = all.iter().map(|c| c.replica.as_str()).collect();
    assert_eq!(replicas, ["r1", "r2"]);
    assert_eq!(
        all[0].frontends,
        [stats(9)],
        "the latest replaces the earlier"
    );
    assert_eq!(all[1].frontends, [stats(7)]);
    assert!(all[0].at > before && all[0].at >= first[0].at);
    store.remove_replica("r1").await.unwrap();
    let left = store.list_frontend_counters().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].replica, "r2");
}

pub async fn probe_results_are_kept_per_instance_and_go_with_it(store: &dyn Store) {
    use flotilla_domain::ProbeResult;
    for (name, capacity) in [("web", 2), ("api", 1)] {
        let set = scale_set(name, capacity);
        store.create_scale_set(&set, "tester").await.unwrap();
    }
    let web: Vec<_> = (0..2).map(|n| super::instance("web", n)).collect();
    let api = super::instance("api", 0);
    store.insert_instances("web", &web, 2).await.unwrap();
    store
        .insert_instances("api", std::slice::from_ref(&api), 1)
        .await
        .unwrap();
    let result = |secs: i64, success: bool, detail: &str| ProbeResult {
        at: at(secs),
        success,
        latency_us: 1234,
        detail: detail.into(),
    };
    store
        .put_probe_results(&[
            (web[0].id.clone(), result(1, true, "200 OK")),
            (api.id.clone(), result(1, false, "connection refused")),
            // An instance not stored is left out, with no error.
            ("absent".into(), result(1, true, "200 OK")),
        ])
        .await
        .unwrap();
    store
        .put_probe_results(&[
            (web[1].id.clone(), result(2, true, "200 OK")),
            (
                web[0].id.clone(),
                result(3, false, "503 Service Unavailable"),
            ),
        ])
        .await
        .unwrap();
    let mut of_web = store.list_probe_results(Some("web")).await.unwrap();
    of_web.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        of_web,
        [
            (
                web[0].id.clone(),
                result(3, false, "503 Service Unavailable")
            ),
            (web[1].id.clone(), result(2, true, "200 OK")),
        ]
    );
    assert_eq!(store.list_probe_results(None).await.unwrap().len(), 3);
    store.delete_instances(&[web[0].id.clone()]).await.unwrap();
    assert_eq!(
        store.list_probe_results(Some("web")).await.unwrap().len(),
        1
    );
    store.delete_scale_set("api").await.unwrap();
    let all = store.list_probe_results(None).await.unwrap();
    assert_eq!(all, [(web[1].id.clone(), result(2, true, "200 OK"))]);
}
