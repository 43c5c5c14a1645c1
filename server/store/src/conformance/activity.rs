//! The activity log: entries appended and finished, listed newest first with filters and
//! pages, pruned by age.

use chrono::Duration;
use flotilla_domain::{ActivityFilter, ActivityResult};
use serde_json::json;

use super::{assert_not_found, at, entry, filter};
use crate::{Kind, Store};

/// Appends get increasing ids and come back as given; finishing records the end, result,
/// error and details, with `duration_ms` derived.
pub async fn append_and_finish_activity(store: &dyn Store) {
    let mut new = entry("scale_set.create", Some("web"), at(0));
    new.details = json!({"capacity": 3, "zones": ["1", "2"], "note": "«ok»"});
    let first = store.append_activity(&new).await.unwrap();
    assert_eq!(first.operation, "scale_set.create");
    assert_eq!(first.actor, "api");
    assert_eq!(first.scale_set.as_deref(), Some("web"));
    assert_eq!(first.target, "web");
    assert_eq!(
        (first.started_at, first.ended_at, first.duration_ms),
        (at(0), None, None)
    );
    assert_eq!(first.result, ActivityResult::InProgress);
    assert_eq!(first.details, new.details);

    let mut done = entry("instance.restart", None, at(1));
    done.ended_at = Some(at(1) + Duration::milliseconds(1500));
    done.result = ActivityResult::Failed;
    done.error = Some("backend refused".into());
    let second = store.append_activity(&done).await.unwrap();
    assert!(second.id > first.id, "ids grow");
    assert_eq!(second.duration_ms, Some(1500));
    assert_eq!(second.error.as_deref(), Some("backend refused"));

    let finished = store
        .finish_activity(
            first.id,
            at(2) + Duration::milliseconds(250),
            ActivityResult::Succeeded,
            None,
            &json!({"created": ["web_0"]}),
        )
        .await
        .unwrap();
    assert_eq!(finished.id, first.id);
    assert_eq!(finished.ended_at, Some(at(2) + Duration::milliseconds(250)));
    assert_eq!(finished.duration_ms, Some(2250));
    assert_eq!(finished.result, ActivityResult::Succeeded);
    assert_eq!(finished.error, None);
    assert_eq!(finished.details, json!({"created": ["web_0"]}));
    assert_eq!(
        (finished.started_at, finished.operation.as_str()),
        (at(0), "scale_set.create")
    );
    let listed = store.list_activity(&filter()).await.unwrap();
    assert_eq!(listed, vec![second, finished]);
}

pub async fn finish_missing_activity_is_not_found(store: &dyn Store) {
    let err = store
        .finish_activity(4242, at(1), ActivityResult::Succeeded, None, &json!({}))
        .await
        .unwrap_err();
    assert_not_found(err, Kind::Activity, "4242");
}

/// Entries come newest first, at most `limit` (0 meaning the maximum).
pub async fn list_activity_newest_first_with_limit(store: &dyn Store) {
    assert_eq!(store.list_activity(&filter()).await.unwrap(), vec![]);
    let mut appended = Vec::new();
    // Started out of order: the order is the log's (by id), not the start times'.
    for (n, secs) in [5, 1, 3].into_iter().enumerate() {
        let e = entry(&format!("op.{n}"), Some("web"), at(secs));
        appended.push(store.append_activity(&e).await.unwrap());
    }
    appended.reverse();
    assert_eq!(store.list_activity(&filter()).await.unwrap(), appended);
    let two = ActivityFilter {
        limit: 2,
        ..filter()
    };
    assert_eq!(store.list_activity(&two).await.unwrap(), appended[..2]);
    let unlimited = ActivityFilter {
        limit: 0,
        ..filter()
    };
    assert_eq!(store.list_activity(&unlimited).await.unwrap(), appended);
}

/// Each filter alone and together: scale set, operation, result, `since` (inclusive),
/// `until` (exclusive).
pub async fn list_activity_filters(store: &dyn Store) {
    let specs = [
        (
            "scale_set.create",
            Some("web"),
            0,
            ActivityResult::Succeeded,
        ),
        (
            "scale_set.create",
            Some("api"),
            10,
            ActivityResult::Succeeded,
        ),
        ("instance.restart", Some("web"), 20, ActivityResult::Failed),
        ("reconcile", None, 30, ActivityResult::InProgress),
        (
            "scale_set.update",
            Some("web"),
            40,
            ActivityResult::Succeeded,
        ),
    ];
    let mut ids_by_index = Vec::new();
    for (operation, set, secs, result) in specs {
        let mut e = entry(operation, set, at(secs));
        e.result = result;
        ids_by_index.push(store.append_activity(&e).await.unwrap().id);
    }
    let ids_by_index = &ids_by_index;
    let query = |f: ActivityFilter| async move {
        let found = store.list_activity(&f).await.unwrap();
        found
            .iter()
            .map(|a| ids_by_index.iter().position(|id| *id == a.id).unwrap())
            .collect::<Vec<_>>()
    };
    let web = Some("web".to_owned());
    assert_eq!(
        query(ActivityFilter {
            scale_set: web.clone(),
            ..filter()
        })
        .await,
        [4, 2, 0]
    );
    assert_eq!(
        query(ActivityFilter {
            operation: Some("scale_set.create".into()),
            ..filter()
        })
        .await,
        [1, 0]
    );
    assert_eq!(
        query(ActivityFilter {
            result: Some(ActivityResult::Succeeded),
            ..filter()
        })
        .await,
        [4, 1, 0]
    );
    assert_eq!(
        query(ActivityFilter {
            result: Some(ActivityResult::InProgress),
            ..filter()
        })
        .await,
        [3]
    );
    assert_eq!(
        query(ActivityFilter {
            since: Some(at(20)),
            ..filter()
        })
        .await,
        [4, 3, 2]
    );
    assert_eq!(
        query(ActivityFilter {
            until: Some(at(20)),
            ..filter()
        })
        .await,
        [1, 0]
    );
    assert_eq!(
        query(ActivityFilter {
            since: Some(at(10)),
            until: Some(at(40)),
            ..filter()
        })
        .await,
        [3, 2, 1]
    );
    assert_eq!(
        query(ActivityFilter {
            scale_set: web.clone(),
            result: Some(ActivityResult::Succeeded),
            since: Some(at(1)),
            ..filter()
        })
        .await,
        [4]
    );
    assert_eq!(
        query(ActivityFilter {
            scale_set: Some("ghost".into()),
            ..filter()
        })
        .await,
        Vec::<usize>::new()
    );
    // A microsecond before or after a start time is on the right side of it.
    assert_eq!(
        query(ActivityFilter {
            since: Some(at(40) + Duration::microseconds(1)),
            ..filter()
        })
        .await,
        Vec::<usize>::new()
    );
    assert_eq!(
        query(ActivityFilter {
            until: Some(at(0) + Duration::microseconds(1)),
            ..filter()
        })
        .await,
        [0]
    );
}

/// Paging: each page continues below the previous page's last id.
pub async fn list_activity_pages_with_before_id(store: &dyn Store) {
    let mut all = Vec::new();
    for n in 0..5 {
        let e = entry("reconcile", Some("web"), at(n));
        all.push(store.append_activity(&e).await.unwrap().id);
    }
    all.reverse();
    let mut pages = Vec::new();
    let mut before_id = None;
    loop {
        let page = store
            .list_activity(&ActivityFilter {
                before_id,
                limit: 2,
                ..filter()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        before_id = Some(last.id);
        pages.push(page.iter().map(|a| a.id).collect::<Vec<_>>());
    }
    assert_eq!(
        pages,
        [all[0..2].to_vec(), all[2..4].to_vec(), all[4..].to_vec()]
    );
    let below_first = ActivityFilter {
        before_id: Some(all[4]),
        ..filter()
    };
    assert_eq!(store.list_activity(&below_first).await.unwrap(), vec![]);
}

/// Entries that started before the cut and ended go; newer ones and those still in
/// progress stay.
pub async fn prune_activity_keeps_recent_and_unfinished_entries(store: &dyn Store) {
    let mut old = entry("scale_set.create", Some("web"), at(0));
    old.ended_at = Some(at(1));
    old.result = ActivityResult::Succeeded;
    let old = store.append_activity(&old).await.unwrap();
    let unfinished = store
        .append_activity(&entry("autoscale.webhook", Some("web"), at(0)))
        .await
        .unwrap();
    let mut recent = entry("scale_set.scale", Some("web"), at(100));
    recent.ended_at = Some(at(101));
    recent.result = ActivityResult::Succeeded;
    let recent = store.append_activity(&recent).await.unwrap();
    assert_eq!(store.prune_activity(at(50)).await.unwrap(), 1);
    let ids: Vec<i64> = store
        .list_activity(&filter())
        .await
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, [recent.id, unfinished.id]);
    assert!(!ids.contains(&old.id));
    assert_eq!(store.prune_activity(at(50)).await.unwrap(), 0);
}

/// The actor filter matches exactly (no prefix, no case folding), alone and with others.
pub async fn list_activity_filters_on_actor(store: &dyn Store) {
    let mut ids = Vec::new();
    for (actor, set) in [
        ("alice", Some("web")),
        ("alice/ci", Some("web")),
        ("system:reconciler", Some("web")),
        ("alice", Some("api")),
        ("Alice", None),
    ] {
        let mut e = entry("scale_set.update", set, at(ids.len() as i64));
        e.actor = actor.into();
        ids.push(store.append_activity(&e).await.unwrap().id);
    }
    let query = |actor: &str, scale_set: Option<&str>| {
        let f = ActivityFilter {
            actor: Some(actor.into()),
            scale_set: scale_set.map(Into::into),
            ..filter()
        };
        async move {
            let found = store.list_activity(&f).await.unwrap();
            assert!(found.iter().all(|a| a.actor == f.actor.clone().unwrap()));
            found.iter().map(|a| a.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(query("alice", None).await, [ids[3], ids[0]]);
    assert_eq!(query("alice", Some("web")).await, [ids[0]]);
    assert_eq!(query("alice/ci", None).await, [ids[1]]);
    assert_eq!(query("system:reconciler", None).await, [ids[2]]);
    assert_eq!(query("ali", None).await, Vec::<i64>::new());
    assert_eq!(query("ghost", None).await, Vec::<i64>::new());
    assert_eq!(store.list_activity(&filter()).await.unwrap().len(), 5);
}
