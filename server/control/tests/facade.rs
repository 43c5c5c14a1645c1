//! The facade's filters that adapters used to make themselves: scale actions only, and the
//! repair history across the operations it is made of.

use std::sync::Arc;

use flotilla_backend::mock::{Mock, MockConfig};
use flotilla_control::{Fleet, FleetConfig, ManualClock};
use flotilla_domain::autoscale::decision::DecisionFilter;
use flotilla_domain::autoscale::{Decision, Operation};
use flotilla_domain::{ActivityResult, NewActivity, ScaleSetSpec};
use serde_json::json;

async fn fleet() -> (Fleet, Arc<dyn flotilla_store::Store>) {
    let store = flotilla_store::connect("sqlite::memory:").await.unwrap();
    let mock = Arc::new(Mock::open(MockConfig::instant()).await.unwrap());
    let clock = Arc::new(ManualClock::new("2026-12-01T12:00:00Z".parse().unwrap()));
    let fleet = Fleet::new(store.clone(), mock, clock, FleetConfig::default());
    assert!(fleet.lead_by_hand().await.unwrap());
    fleet
        .create_scale_set(ScaleSetSpec::example("web", 1), "test")
        .await
        .unwrap();
    (fleet, store)
}

fn decision(minute: u32, operation: &str) -> Decision {
    serde_json::from_value(json!({
        "scale_set": "web", "at": format!("2026-12-01T11:{minute:02}:00Z"), "profile": "default",
        "profile_reason": "the default", "bounds": null, "current": 1, "new_capacity": 1,
        "operation": operation, "reason": "a test", "rules": [],
        "rules_target": 1, "rules_reason": null, "projections": [], "tracking": null,
        "cooldown_until": null, "cooldown_seconds": 300
    }))
    .unwrap()
}

fn filter(limit: u32, operation: Option<Operation>) -> DecisionFilter {
    DecisionFilter {
        scale_set: "web".into(),
        operation,
        since: None,
        until: None,
        before_id: None,
        limit,
        shadow: false,
    }
}

#[tokio::test]
async fn scale_actions_are_the_newest_scale_outs_and_ins_only() {
    let (fleet, store) = fleet().await;
    let mut ids = Vec::new();
    for (minute, operation) in [
        (1, "scale_out"),
        (2, "none"),
        (3, "scale_in"),
        (4, "none"),
        (5, "scale_out"),
        (6, "none"),
    ] {
        ids.push(
            store
                .append_decision(&decision(minute, operation))
                .await
                .unwrap()
                .id,
        );
    }
    let got: Vec<i64> = fleet
        .scale_actions(&filter(2, None))
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(got, [ids[4], ids[2]]);
    let all: Vec<Operation> = fleet
        .scale_actions(&filter(10, None))
        .await
        .unwrap()
        .iter()
        .map(|d| d.operation)
        .collect();
    assert_eq!(
        all,
        [Operation::ScaleOut, Operation::ScaleIn, Operation::ScaleOut]
    );
    // An operation named narrows them; "none" is no scale action at all.
    assert_eq!(
        fleet
            .scale_actions(&filter(10, Some(Operation::ScaleIn)))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        fleet
            .scale_actions(&filter(10, Some(Operation::None)))
            .await
            .unwrap()
            .is_empty()
    );
    // Every evaluation, as before.
    assert_eq!(fleet.decisions(&filter(10, None)).await.unwrap().len(), 6);
}

#[tokio::test]
async fn the_repair_history_merges_its_operations_newest_first() {
    let (fleet, store) = fleet().await;
    let at = fleet.now();
    let mut ids = Vec::new();
    for operation in [
        "instance.repair",
        "reconcile",
        "repairs.suspended",
        "scale_set.update",
        "repairs.resume",
        "instance.repair",
    ] {
        let entry = store
            .append_activity(&NewActivity {
                operation: operation.into(),
                actor: "system:repairs".into(),
                scale_set: Some("web".into()),
                target: "web_0".into(),
                started_at: at,
                ended_at: Some(at),
                result: ActivityResult::Succeeded,
                error: None,
                details: json!({}),
            })
            .await
            .unwrap();
        ids.push(entry.id);
    }
    let got: Vec<i64> = fleet
        .repair_history("web", 3)
        .await
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(got, [ids[5], ids[4], ids[2]]);
    assert_eq!(fleet.repair_history("web", 20).await.unwrap().len(), 4);
    assert!(fleet.repair_history("nope", 20).await.is_err());
}
