//! Model versions: a rising `model_version` stores the new model and keeps the old ones,
//! instances' `latest_model` follows the set's version, and old versions go on request (the
//! current one never).

use chrono::{DateTime, Utc};

use super::{at, list, scale_set, set_with_instances};
use crate::Store;

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

/// `latest_model` follows the set's model version on every read and write.
pub async fn latest_model_is_derived_from_the_set(store: &dyn Store) {
    let (set, stored) = set_with_instances(store, "web", 2).await;
    assert!(stored.iter().all(|i| i.latest_model));
    let before = store.instances_version("web").await.unwrap();
    let mut next = set.clone();
    next.model_version = 2;
    store.update_scale_set(&next, "tester").await.unwrap();
    assert!(list(store, "web").await.iter().all(|i| !i.latest_model));
    // Records held from before are not current: the version says the model moved on.
    let after = store.instances_version("web").await.unwrap();
    assert_eq!((after.instances, after.model), (before.instances, 2));
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
    // The counts by state split on it too.
    let counts: Vec<(bool, u64)> = store
        .count_instances(Some("web"))
        .await
        .unwrap()
        .iter()
        .map(|c| (c.latest_model, c.count))
        .collect();
    assert_eq!(counts.iter().map(|c| c.1).sum::<u64>(), 2, "{counts:?}");
    assert!(
        counts.contains(&(true, 1)) && counts.contains(&(false, 1)),
        "{counts:?}"
    );
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
