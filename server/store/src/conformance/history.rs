//! Autoscale history: decisions (kept when their set goes) and per-minute metric roll-ups
//! (deleted with it), pruned together by `prune_history`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use flotilla_domain::autoscale::decision::{
    Decision, DecisionFilter, ForecastTrace, Operation, RuleTrace, TrackingTrace,
};
use flotilla_domain::autoscale::forecast::{LeadSource, Model};
use flotilla_domain::autoscale::setting::PredictiveMode;
use flotilla_domain::autoscale::{
    Bounds, Direction, Operator, Projection, Statistic, TimeAggregation,
};
use flotilla_domain::metrics::{Metric, MinuteTicks, Point, Rollup};

use super::{at, scale_set};
use crate::Store;

/// A decision of `scale_set` at `at(secs)` from `current` to `new_capacity` (its operation
/// follows), every field set: rule traces, a tracking trace, a projection table. Its floats
/// are exact in JSON text.
pub fn decision(scale_set: &str, secs: i64, current: u32, new_capacity: u32) -> Decision {
    let operation = match new_capacity.cmp(&current) {
        std::cmp::Ordering::Greater => Operation::ScaleOut,
        std::cmp::Ordering::Less => Operation::ScaleIn,
        std::cmp::Ordering::Equal => Operation::None,
    };
    Decision {
        id: 0,
        scale_set: scale_set.into(),
        at: at(secs),
        profile: Some("business hours".into()),
        profile_reason: "weekdays 08:00–18:00 Europe/Paris".into(),
        bounds: Some(Bounds {
            minimum: 1,
            maximum: 10,
            default: 2,
        }),
        current,
        new_capacity,
        operation,
        reason: format!("cpu_percent average 81.25 > 75: {current} → {new_capacity}"),
        rules: vec![
            RuleTrace {
                metric: "cpu_percent".into(),
                direction: Direction::Increase,
                statistic: Statistic::Average,
                time_aggregation: TimeAggregation::Average,
                operator: Operator::GreaterThan,
                threshold: 75.0,
                grains: vec![Some(80.5), None, Some(82.0)],
                value: Some(81.25),
                fired: true,
                coverage: 2.0 / 3.0,
                target: current + 1,
            },
            RuleTrace {
                metric: "requests_per_second".into(),
                direction: Direction::Decrease,
                statistic: Statistic::Max,
                time_aggregation: TimeAggregation::Last,
                operator: Operator::LessThanOrEqual,
                threshold: 0.1,
                grains: vec![None, None],
                value: None,
                fired: false,
                coverage: 0.0,
                target: current.saturating_sub(1),
            },
        ],
        rules_target: Some(new_capacity),
        rules_reason: Some("an increase rule fired".into()),
        projections: vec![
            Projection {
                count: 3,
                projected: vec![Some(90.0), None],
                accepted: false,
            },
            Projection {
                count: 4,
                projected: vec![Some(67.5), Some(1e-7)],
                accepted: true,
            },
        ],
        tracking: Some(TrackingTrace {
            metric: "cpu_percent".into(),
            value: Some(81.25),
            target: 65.0,
            ratio: Some(1.25),
            tolerance: 0.1,
            counted: 3,
            recommendation: 4,
            stabilized: 4,
            desired: 4,
            note: "⌈3 × 81.25 / 65⌉ = 4".into(),
            load_per_point: Some(0.75),
        }),
        forecast: Some(ForecastTrace {
            metric: "requests_per_second".into(),
            target: 50.0,
            mode: PredictiveMode::ForecastAndScale,
            season_seconds: 86_400,
            lead_seconds: 90,
            lead_source: LeadSource::Measured,
            history_seconds: 172_800.0,
            model: Some(Model::SeasonalMedian),
            load: Some(212.5),
            at: Some(at(secs + 60)),
            capacity: Some(5),
            mape: Some(7.25),
            trusted: true,
            note: "seasonal median forecasts 212.5".into(),
        }),
        cooldown_until: Some(at(secs + 300)),
        cooldown_seconds: 300,
        shadow: false,
    }
}

fn decisions_of(scale_set: &str) -> DecisionFilter {
    DecisionFilter {
        scale_set: scale_set.into(),
        operation: None,
        since: None,
        until: None,
        before_id: None,
        limit: 0,
        shadow: false,
    }
}

/// The start of minute `n` after 2024-05-01T12:00:00Z.
pub fn minute(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
        .single()
        .expect("a valid fixed date")
        + Duration::minutes(n)
}

/// A roll-up of `metric` of `scale_set` for minute `n`, its fields derived from `value`.
pub fn rollup(scale_set: &str, metric: Metric, n: i64, value: f64) -> Rollup {
    Rollup {
        scale_set: scale_set.into(),
        metric,
        point: Point {
            at: minute(n),
            average: value,
            minimum: value - 1.5,
            maximum: value + 2.25,
            total: value * 4.0,
            count: 4,
        },
    }
}

/// Decisions round-trip whole with increasing ids, list newest first, and filter by
/// operation, time (`since` inclusive, `until` exclusive), id and count, per scale set.
pub async fn decisions_append_and_list_with_filters(store: &dyn Store) {
    let given = [
        decision("web", 0, 2, 3),
        decision("api", 30, 1, 2),
        decision("web", 60, 3, 3),
        decision("web", 120, 3, 2),
        decision("web", 180, 2, 2),
    ];
    let mut stored = Vec::new();
    for d in &given {
        stored.push(store.append_decision(d).await.unwrap());
    }
    for (s, d) in stored.iter().zip(&given) {
        assert_eq!(
            *s,
            Decision {
                id: s.id,
                ..d.clone()
            },
            "returned as given, with its id"
        );
    }
    assert!(stored.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    let [d1, other, d2, d3, d4] = <[Decision; 5]>::try_from(stored).unwrap();
    let list = |filter: DecisionFilter| async move { store.list_decisions(&filter).await.unwrap() };
    let ids = |filter: DecisionFilter| async move {
        let listed = store.list_decisions(&filter).await.unwrap();
        listed.into_iter().map(|d| d.id).collect::<Vec<i64>>()
    };

    assert_eq!(
        list(decisions_of("web")).await,
        [d4.clone(), d3.clone(), d2.clone(), d1.clone()],
        "newest first, whole"
    );
    assert_eq!(list(decisions_of("api")).await, [other]);
    assert_eq!(list(decisions_of("ghost")).await, []);
    let by_operation = |operation| DecisionFilter {
        operation: Some(operation),
        ..decisions_of("web")
    };
    assert_eq!(ids(by_operation(Operation::None)).await, [d4.id, d2.id]);
    assert_eq!(ids(by_operation(Operation::ScaleOut)).await, [d1.id]);
    assert_eq!(ids(by_operation(Operation::ScaleIn)).await, [d3.id]);
    let window = DecisionFilter {
        since: Some(at(60)),
        until: Some(at(180)),
        ..decisions_of("web")
    };
    assert_eq!(ids(window).await, [d3.id, d2.id], "since in, until out");
    let page = DecisionFilter {
        before_id: Some(d3.id),
        ..decisions_of("web")
    };
    assert_eq!(ids(page.clone()).await, [d2.id, d1.id]);
    assert_eq!(ids(DecisionFilter { limit: 1, ..page }).await, [d2.id]);
    let two = DecisionFilter {
        limit: 2,
        ..decisions_of("web")
    };
    assert_eq!(ids(two).await, [d4.id, d3.id]);
    let none_left = DecisionFilter {
        operation: Some(Operation::ScaleIn),
        since: Some(at(121)),
        ..decisions_of("web")
    };
    assert_eq!(ids(none_left).await, Vec::<i64>::new());

    // `at` is kept to the microsecond, and the decision returned already is.
    let mut fine = decision("web", 240, 2, 1);
    fine.at += Duration::nanoseconds(789);
    let d5 = store.append_decision(&fine).await.unwrap();
    assert_eq!(d5.at, at(240));
    assert!(d5.id > d4.id);
    assert_eq!(
        list(DecisionFilter {
            limit: 1,
            ..decisions_of("web")
        })
        .await,
        [d5]
    );
}

/// Decisions are history: deleting their scale set keeps them (its roll-ups go).
pub async fn decisions_survive_scale_set_deletion(store: &dyn Store) {
    store
        .create_scale_set(&scale_set("web", 2), "tester")
        .await
        .unwrap();
    let first = store
        .append_decision(&decision("web", 0, 2, 3))
        .await
        .unwrap();
    let second = store
        .append_decision(&decision("web", 60, 3, 3))
        .await
        .unwrap();
    store
        .write_rollups(&[rollup("web", Metric::CpuPercent, 0, 50.0)])
        .await
        .unwrap();
    store.delete_scale_set("web").await.unwrap();
    let kept = store.list_decisions(&decisions_of("web")).await.unwrap();
    assert_eq!(kept, [second.clone(), first.clone()]);
    let rollups = store
        .read_rollups("web", &Metric::ALL, minute(-60), minute(60))
        .await
        .unwrap();
    assert_eq!(rollups, []);
    // A new set of the same name sees the old decisions, and appends after them.
    store
        .create_scale_set(&scale_set("web", 1), "tester")
        .await
        .unwrap();
    let third = store
        .append_decision(&decision("web", 120, 1, 1))
        .await
        .unwrap();
    let listed = store.list_decisions(&decisions_of("web")).await.unwrap();
    assert_eq!(listed, [third, second, first]);
}

/// A shadow setting's decisions are listed apart from the live ones.
pub async fn shadow_decisions_are_listed_apart(store: &dyn Store) {
    let live = store
        .append_decision(&decision("web", 0, 2, 3))
        .await
        .unwrap();
    let shadow = store
        .append_decision(&Decision {
            shadow: true,
            ..decision("web", 10, 2, 4)
        })
        .await
        .unwrap();
    assert!(shadow.shadow);
    for (asked, expected) in [(false, live), (true, shadow)] {
        let filter = DecisionFilter {
            shadow: asked,
            ..decisions_of("web")
        };
        assert_eq!(store.list_decisions(&filter).await.unwrap(), [expected]);
    }
}

/// Minutes of ticks are upserted by scale set and minute, read by time range in minute
/// order, pruned by age and deleted with their set.
pub async fn ticks_upsert_read_and_prune(store: &dyn Store) {
    let ticks = |set: &str, n: i64, text: &str| MinuteTicks {
        scale_set: set.into(),
        minute: minute(n),
        ticks: text.into(),
    };
    store
        .create_scale_set(&scale_set("web", 1), "tester")
        .await
        .unwrap();
    let long = "1714564800000\tcpu_percent=41.5,40,43,2\n".repeat(600);
    store
        .write_ticks(&[
            ticks("web", 2, "b"),
            ticks("web", 0, &long),
            ticks("web", 1, "a"),
            ticks("api", 0, "other"),
        ])
        .await
        .unwrap();
    store.write_ticks(&[]).await.unwrap();
    // A restarted collector rewrites its minute.
    store
        .write_ticks(&[ticks("web", 1, "a again")])
        .await
        .unwrap();
    let read = store.read_ticks("web", minute(0), minute(2)).await.unwrap();
    assert_eq!(read, [ticks("web", 0, &long), ticks("web", 1, "a again")]);
    assert_eq!(
        store
            .read_ticks("web", minute(2), minute(60))
            .await
            .unwrap(),
        [ticks("web", 2, "b")]
    );
    assert_eq!(store.prune_ticks(minute(1)).await.unwrap(), 2);
    assert_eq!(
        store
            .read_ticks("api", minute(-60), minute(60))
            .await
            .unwrap(),
        []
    );
    store.delete_scale_set("web").await.unwrap();
    assert_eq!(
        store
            .read_ticks("web", minute(-60), minute(60))
            .await
            .unwrap(),
        []
    );
}

/// Roll-ups are upserted by scale set, metric and minute, read by metric list and time
/// range in `Metric`'s order then time, pruned by age (with decisions), and deleted with
/// their set.
pub async fn rollups_upsert_read_and_prune(store: &dyn Store) {
    for name in ["web", "api"] {
        store
            .create_scale_set(&scale_set(name, 1), "tester")
            .await
            .unwrap();
    }
    // Disk sorts before memory by name, after it in `Metric`'s order.
    let metrics = [
        Metric::DiskReadBytesPerSecond,
        Metric::CpuPercent,
        Metric::MemoryPercent,
    ];
    let mut rows = Vec::new();
    for (k, metric) in metrics.into_iter().enumerate() {
        for n in 0..5 {
            rows.push(rollup("web", metric, n, 100.0 * k as f64 + n as f64));
        }
    }
    rows.extend((0..5).map(|n| rollup("api", Metric::CpuPercent, n, 1_000.0 + n as f64)));
    store.write_rollups(&rows).await.unwrap();
    store.write_rollups(&[]).await.unwrap();
    let web_cpu: Vec<Rollup> = rows[5..10].to_vec();
    let read = |set: &'static str, metrics: Vec<Metric>, from: i64, to: i64| async move {
        store
            .read_rollups(set, &metrics, minute(from), minute(to))
            .await
            .unwrap()
    };
    assert_eq!(read("web", vec![Metric::CpuPercent], 0, 60).await, web_cpu);

    // Rewriting a minute replaces it; within one batch the last row of a minute wins.
    let mut rewritten = rollup("web", Metric::CpuPercent, 2, 99.5);
    rewritten.point.count = 7;
    let last = rollup("web", Metric::CpuPercent, 4, 42.125);
    store
        .write_rollups(&[
            rewritten.clone(),
            rollup("web", Metric::CpuPercent, 4, 41.0),
            last.clone(),
        ])
        .await
        .unwrap();
    let cpu = read("web", vec![Metric::CpuPercent], 0, 60).await;
    assert_eq!(
        cpu,
        [
            web_cpu[0].clone(),
            web_cpu[1].clone(),
            rewritten,
            web_cpu[3].clone(),
            last
        ]
    );

    // By metric in `Metric`'s order, then time; `from` inclusive, `to` exclusive.
    let ranged = read("web", metrics.to_vec(), 1, 3).await;
    let keys: Vec<(Metric, DateTime<Utc>)> =
        ranged.iter().map(|r| (r.metric, r.point.at)).collect();
    assert_eq!(
        keys,
        [
            (Metric::CpuPercent, minute(1)),
            (Metric::CpuPercent, minute(2)),
            (Metric::MemoryPercent, minute(1)),
            (Metric::MemoryPercent, minute(2)),
            (Metric::DiskReadBytesPerSecond, minute(1)),
            (Metric::DiskReadBytesPerSecond, minute(2)),
        ]
    );
    assert!(ranged.iter().all(|r| r.scale_set == "web"));
    assert_eq!(ranged[2], rows[11], "memory's minute 1 as written");
    let api = read(
        "api",
        vec![Metric::CpuPercent, Metric::MemoryPercent],
        0,
        60,
    )
    .await;
    assert_eq!(api, rows[15..20]);
    assert_eq!(read("web", vec![], 0, 60).await, []);
    assert_eq!(read("web", vec![Metric::Capacity], 0, 60).await, []);
    assert_eq!(read("ghost", Metric::ALL.to_vec(), 0, 60).await, []);
    assert_eq!(read("web", vec![Metric::CpuPercent], 5, 60).await, []);

    // Pruning: roll-ups whose minute starts before, decisions taken before.
    let old = store
        .append_decision(&decision("web", 60, 1, 2))
        .await
        .unwrap();
    let recent = store
        .append_decision(&decision("web", 200, 2, 2))
        .await
        .unwrap();
    assert!(old.at < minute(3) && recent.at >= minute(3));
    // Minutes 0–2 of four series, and one decision.
    assert_eq!(store.prune_history(minute(3)).await.unwrap(), 4 * 3 + 1);
    assert_eq!(store.prune_history(minute(3)).await.unwrap(), 0);
    let left = read("web", metrics.to_vec(), 0, 60).await;
    assert_eq!(left.len(), 3 * 2);
    assert!(left.iter().all(|r| r.point.at >= minute(3)));
    assert_eq!(
        read("api", vec![Metric::CpuPercent], 0, 60).await,
        rows[18..20]
    );
    assert_eq!(
        store.list_decisions(&decisions_of("web")).await.unwrap(),
        [recent]
    );

    // Deleting the set deletes its roll-ups, and only its.
    store.delete_scale_set("web").await.unwrap();
    assert_eq!(read("web", Metric::ALL.to_vec(), 0, 60).await, []);
    assert_eq!(
        read("api", vec![Metric::CpuPercent], 0, 60).await,
        rows[18..20]
    );
    assert_eq!(store.prune_history(minute(60)).await.unwrap(), 2 + 1);
}

/// One write of 20,000 roll-ups (a large fleet's minute), and its rewrite.
pub async fn large_rollup_batches(store: &dyn Store) {
    const SETS: usize = 1_000;
    const METRICS: usize = 10;
    const MINUTES: i64 = 2;
    let batch = |offset: f64| -> Vec<Rollup> {
        let mut rows = Vec::with_capacity(SETS * METRICS * MINUTES as usize);
        for s in 0..SETS {
            for metric in &Metric::ALL[..METRICS] {
                for n in 0..MINUTES {
                    rows.push(rollup(&format!("s{s:04}"), *metric, n, offset + s as f64));
                }
            }
        }
        rows
    };
    let first = batch(0.0);
    assert_eq!(first.len(), 20_000);
    store.write_rollups(&first).await.unwrap();
    let second = batch(0.5);
    store.write_rollups(&second).await.unwrap();
    for s in [0, 777, SETS - 1] {
        let name = format!("s{s:04}");
        let read = store
            .read_rollups(&name, &Metric::ALL, minute(0), minute(MINUTES))
            .await
            .unwrap();
        let expected: Vec<Rollup> = second
            .iter()
            .filter(|r| r.scale_set == name)
            .cloned()
            .collect();
        assert_eq!(read, expected, "{name}: rewritten, not duplicated");
    }
    assert_eq!(
        store.prune_history(minute(MINUTES)).await.unwrap(),
        20_000,
        "one row per set, metric and minute"
    );
}
