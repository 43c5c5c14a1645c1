//! Instances: inserted in batches with the set's next ordinal, listed by ordinal, updated
//! under each record's generation, deleted.

use flotilla_domain::{
    DesiredPower, HealthState, Instance, Lifecycle, LifecycleState, PendingAction, PowerState,
    ProvisioningState, Warm, WarmPoolState,
};

use flotilla_domain::instance::StateCount;

use super::{
    assert_already_exists, assert_not_found, at, ids, instance, list, scale_set,
    set_with_instances, strings,
};
use crate::{Kind, Store};

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
    batch[2].lifecycle.lifecycle_state = Some(LifecycleState::LaunchingWait);
    batch[2].lifecycle.lifecycle_hook = Some("register".into());
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

/// Every write of a set's records changes its instances version — and only its own — so a
/// reader holding records of a version knows they are current while it stays.
pub async fn every_write_of_records_changes_the_instances_version(store: &dyn Store) {
    let web = store
        .create_scale_set(&scale_set("web", 2), "tester")
        .await
        .unwrap();
    store
        .create_scale_set(&scale_set("api", 1), "tester")
        .await
        .unwrap();
    let version = |name: &'static str| async move { store.instances_version(name).await.unwrap() };
    let api = version("api").await;
    let mut seen = vec![version("web").await];
    let inserted = store
        .insert_instances("web", &[instance("web", 0), instance("web", 1)], 2)
        .await
        .unwrap();
    seen.push(version("web").await);
    let mut changed = inserted[0].clone();
    changed.health_state = HealthState::Healthy;
    store.update_instances(&[changed]).await.unwrap();
    seen.push(version("web").await);
    store
        .mark_deleting(&web, &["web_1".to_string()], false, at(9))
        .await
        .unwrap();
    seen.push(version("web").await);
    store
        .delete_instances(&["web_1".to_string()])
        .await
        .unwrap();
    seen.push(version("web").await);
    assert!(
        seen.windows(2).all(|w| w[0] != w[1]),
        "a write left the version as it was: {seen:?}"
    );
    // Reads, and the other set's writes, change nothing.
    let before = version("web").await;
    list(store, "web").await;
    store
        .insert_instances("api", &[instance("api", 0)], 1)
        .await
        .unwrap();
    assert_eq!(version("web").await, before);
    assert_ne!(version("api").await, api);
    // A set deleted and created again under its name, written as often as the first one
    // was, is not read as the first one.
    let first = version("api").await;
    store
        .delete_instances(&["api_0".to_string()])
        .await
        .unwrap();
    store.delete_scale_set("api").await.unwrap();
    let mut again = scale_set("api", 1);
    again.created_at = at(60);
    store.create_scale_set(&again, "tester").await.unwrap();
    store
        .insert_instances("api", &[instance("api", 0)], 1)
        .await
        .unwrap();
    let second = version("api").await;
    assert_eq!(second.created_at, at(60));
    assert_ne!(second, first);
    assert_not_found(
        store.instances_version("nope").await.unwrap_err(),
        Kind::ScaleSet,
        "nope",
    );
}

/// The counts by state are the database's own count of the records, by set then state.
pub async fn count_instances_by_state(store: &dyn Store) {
    assert!(store.count_instances(None).await.unwrap().is_empty());
    store
        .create_scale_set(&scale_set("web", 4), "tester")
        .await
        .unwrap();
    store
        .create_scale_set(&scale_set("api", 1), "tester")
        .await
        .unwrap();
    let mut web: Vec<Instance> = (0..4).map(|n| instance("web", n)).collect();
    for i in &mut web[..3] {
        i.provisioning_state = ProvisioningState::Succeeded;
        i.power_state = PowerState::Running;
        i.health_state = HealthState::Healthy;
    }
    store.insert_instances("web", &web, 4).await.unwrap();
    store
        .insert_instances("api", &[instance("api", 0)], 1)
        .await
        .unwrap();
    let counts = store.count_instances(None).await.unwrap();
    // One set's counts are its share of the fleet's.
    let api: Vec<StateCount> = counts
        .iter()
        .filter(|c| c.scale_set == "api")
        .cloned()
        .collect();
    assert_eq!(store.count_instances(Some("api")).await.unwrap(), api);
    assert!(
        store
            .count_instances(Some("nope"))
            .await
            .unwrap()
            .is_empty()
    );
    // Every record is on its set's latest model.
    assert!(counts.iter().all(|c| c.latest_model), "{counts:?}");
    let counts: Vec<(String, PowerState, HealthState, ProvisioningState, u64)> = counts
        .into_iter()
        .map(|c| {
            (
                c.scale_set,
                c.power_state,
                c.health_state,
                c.provisioning_state,
                c.count,
            )
        })
        .collect();
    let creating = (
        PowerState::Starting,
        HealthState::Initializing,
        ProvisioningState::Creating,
    );
    assert_eq!(
        counts,
        [
            ("api".into(), creating.0, creating.1, creating.2, 1),
            (
                "web".into(),
                PowerState::Running,
                HealthState::Healthy,
                ProvisioningState::Succeeded,
                3
            ),
            ("web".into(), creating.0, creating.1, creating.2, 1),
        ]
    );
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
    a.lifecycle = Lifecycle {
        lifecycle_state: Some(LifecycleState::TerminatingWait),
        lifecycle_hook: Some("drain".into()),
        lifecycle_deadline: Some(at(130)),
        lifecycle_limit: Some(at(6070)),
    };
    a.busy_until = Some(at(600));
    let mut b = stored[1].clone();
    b.generation = 5;
    b.power_state = PowerState::Deallocated;
    let c = instance("web", 9);
    let mut d = stored[2].clone();
    d.zone = "3".into();
    d.fault_domain = 4;
    d.model_version = 3;
    d.updated_at = at(71);
    d.power_state = PowerState::Saved;
    d.warm = Warm {
        warm_pool_state: Some(WarmPoolState::Saved),
        warm_prepared_at: Some(at(65)),
        warm_return: true,
    };
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
