//! Rollouts: stored whole, one active per set, updated under their generation, deleted with
//! their set.

use flotilla_domain::rollout::{
    Batch, FieldChange, GateCheck, Hold, InstanceProgress, InstanceStep, PlannedInstance, Rollout,
    RolloutKind, RolloutPlan, RolloutState, Skipped, UpgradeAction,
};
use flotilla_domain::scale_set::{RollingPolicy, UpgradeMode};
use serde_json::json;

use super::{at, scale_set};
use crate::{Kind, Store, StoreError};

/// A rollout of `scale_set` to version 2 started at `at(secs)`, every field set.
pub fn rollout(scale_set: &str, secs: i64) -> Rollout {
    let planned = PlannedInstance {
        id: format!("{scale_set}_0"),
        zone: "1".into(),
        fault_domain: 0,
        from_version: 1,
        action: UpgradeAction::Reimage,
        unhealthy: true,
    };
    Rollout {
        id: 0,
        scale_set: scale_set.into(),
        kind: RolloutKind::Upgrade,
        state: RolloutState::RollingForward,
        from_version: 1,
        target_version: 2,
        policy: RollingPolicy::default(),
        plan: RolloutPlan {
            target_version: 2,
            mode: UpgradeMode::Rolling,
            batch_size: 1,
            batches: vec![Batch {
                number: 1,
                zone: Some("1".into()),
                instances: vec![planned.clone()],
                canary: true,
                pause_after: None,
            }],
            relabel: Vec::new(),
            skipped: vec![Skipped {
                id: format!("{scale_set}_1"),
                zone: "2".into(),
                model_version: 1,
                reason: "protected from scale-set actions".into(),
            }],
            changes: [(
                "1".to_string(),
                vec![FieldChange {
                    field: "image".into(),
                    from: json!("debian-12"),
                    to: json!("ubuntu-24.04"),
                }],
            )]
            .into(),
            boot_seconds: 12,
            expected_seconds: 12,
            approvals: 0,
        },
        current_batch: 1,
        batch_started: true,
        instances: [(
            planned.id.clone(),
            InstanceProgress {
                id: planned.id.clone(),
                batch: 1,
                action: UpgradeAction::Reimage,
                from_version: 1,
                step: InstanceStep::WaitingHealthy,
                replacement: None,
                started_at: Some(at(secs)),
                finished_at: None,
                detail: Some("booting".into()),
            },
        )]
        .into(),
        gates: vec![GateCheck {
            gate: "before".into(),
            batch: 1,
            passed: true,
            unhealthy: 0,
            of: 2,
            limit_percent: 20,
            detail: "0 of 2".into(),
            at: at(secs),
        }],
        hold: Some(Hold::Gate {
            until: at(secs + 600),
            detail: "1 busy".into(),
        }),
        message: None,
        rollback_of: None,
        rolled_back_by: None,
        created_by: "test".into(),
        created_at: at(secs),
        updated_at: at(secs),
        finished_at: None,
        generation: 0,
    }
}

/// Rollouts round-trip whole; one active per set (any number finished); updates are
/// generation-guarded; lists are newest first.
pub async fn rollouts_round_trip_with_one_active_per_set(store: &dyn Store) {
    for name in ["web", "api"] {
        store
            .create_scale_set(&scale_set(name, 2), "test")
            .await
            .unwrap();
    }
    let first = store.insert_rollout(&rollout("web", 1)).await.unwrap();
    assert!(first.id > 0);
    assert_eq!(first.generation, 1);
    assert_eq!(
        store.get_rollout("web", first.id).await.unwrap().as_ref(),
        Some(&first)
    );
    assert!(store.get_rollout("api", first.id).await.unwrap().is_none());
    match store.insert_rollout(&rollout("web", 2)).await {
        Err(StoreError::AlreadyExists { kind, .. }) => assert_eq!(kind, Kind::Rollout),
        other => panic!("a second active rollout: {other:?}"),
    }
    let other = store.insert_rollout(&rollout("api", 3)).await.unwrap();

    let mut paused = first.clone();
    paused.state = RolloutState::Paused;
    paused.hold = Some(Hold::Paused { by: "ann".into() });
    let paused = store.update_rollout(&paused).await.unwrap();
    assert_eq!(paused.generation, 2);
    match store.update_rollout(&first).await {
        Err(StoreError::Conflict { kind, .. }) => assert_eq!(kind, Kind::Rollout),
        other => panic!("a stale update: {other:?}"),
    }
    assert_eq!(
        store.get_rollout("web", first.id).await.unwrap().unwrap(),
        paused
    );
    let active: Vec<i64> = store
        .active_rollouts()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(active, [first.id, other.id]);

    let mut done = paused.clone();
    done.state = RolloutState::Completed;
    done.finished_at = Some(at(9));
    store.update_rollout(&done).await.unwrap();
    let second = store.insert_rollout(&rollout("web", 10)).await.unwrap();
    let listed: Vec<i64> = store
        .list_rollouts("web", 0)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, [second.id, first.id]);
    assert_eq!(store.list_rollouts("web", 1).await.unwrap().len(), 1);
    let mut gone = second.clone();
    gone.id = 9_999;
    assert!(matches!(
        store.update_rollout(&gone).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// A set's rollouts are deleted with it.
pub async fn rollouts_go_with_their_scale_set(store: &dyn Store) {
    store
        .create_scale_set(&scale_set("web", 1), "test")
        .await
        .unwrap();
    let r = store.insert_rollout(&rollout("web", 1)).await.unwrap();
    store.delete_scale_set("web").await.unwrap();
    assert!(store.get_rollout("web", r.id).await.unwrap().is_none());
    assert!(store.active_rollouts().await.unwrap().is_empty());
    store
        .create_scale_set(&scale_set("web", 1), "test")
        .await
        .unwrap();
    assert!(store.list_rollouts("web", 0).await.unwrap().is_empty());
}
