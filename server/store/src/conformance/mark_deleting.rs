//! `mark_deleting`: instances marked for deletion, and the set's capacity lowered with them,
//! in one write guarded by the set's generation.

use flotilla_domain::ProvisioningState;

use super::{
    assert_conflict, assert_not_found, at, get_set, ids, list, scale_set, set_with_instances,
    strings,
};
use crate::{Kind, Store};

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
