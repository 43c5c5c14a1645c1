//! Scale sets: created, read, listed, updated under the generation guard and deleted; the
//! repair status kept with a set.

use flotilla_domain::scale_set::{
    Algorithm, AutomaticRepairs, DataDisk, Frontend, FrontendProtocol, HealthProbe, LoadBalancer,
    ProbeProtocol, RepairAction, RollingPolicy, RoutingRule, ScaleInPolicy, ScaleInRule,
    UpgradeMode, UpgradePolicy,
};
use flotilla_domain::{ActivityFilter, RepairStatus, ScaleSetState};

use super::{
    assert_already_exists, assert_conflict, assert_not_found, at, entry, filter, get_set, list,
    scale_set, set_with_instances,
};
use crate::{Kind, Store, StoreError};

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
