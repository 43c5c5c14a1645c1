//! The metrics pipeline and the autoscaler driven step by step: a manual clock, a stepped
//! mock, explicit collector ticks and evaluations.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flotilla_backend::mock::{Mock, MockConfig};
use flotilla_control::{Fleet, FleetConfig, ManualClock, MetricsQuery};
use flotilla_domain::ScaleSetSpec;
use flotilla_domain::autoscale::{AutoscaleSetting, Operation};
use flotilla_domain::demand::Demand;
use flotilla_domain::metrics::Metric;
use serde_json::json;

struct Scenario {
    fleet: Fleet,
    mock: Arc<Mock>,
    clock: Arc<ManualClock>,
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn scenario(start: &str) -> Scenario {
    let store = flotilla_store::connect("sqlite::memory:").await.unwrap();
    let mock = Arc::new(
        Mock::open(MockConfig::stepped().with_latency(Duration::ZERO))
            .await
            .unwrap(),
    );
    let clock = Arc::new(ManualClock::new(at(start)));
    let fleet = Fleet::new(
        store,
        mock.clone(),
        clock.clone(),
        FleetConfig {
            reconcile_interval: Duration::from_secs(3600),
            settle_interval: Duration::from_secs(3600),
            ..FleetConfig::default()
        },
    );
    assert!(fleet.lead_by_hand().await.unwrap());
    Scenario { fleet, mock, clock }
}

impl Scenario {
    async fn converge(&self, name: &str) {
        for _ in 0..10 {
            if let flotilla_control::Outcome::Done { actions: 0, .. } =
                self.fleet.reconcile_now(name).await.unwrap()
            {
                return;
            }
        }
    }

    async fn capacity(&self, name: &str) -> u32 {
        self.fleet.get_scale_set(name).await.unwrap().spec.capacity
    }
}

#[tokio::test]
async fn a_schedule_profile_raises_the_minimum_at_its_start_and_lowers_it_at_its_end() {
    let s = scenario("2026-11-27T07:59:30Z").await;
    s.fleet
        .create_scale_set(ScaleSetSpec::example("web", 2), "test")
        .await
        .unwrap();
    let setting: AutoscaleSetting = serde_json::from_value(json!({
        "enabled": true,
        "profiles": [
            {"name": "default", "capacity": {"minimum": 1, "maximum": 10, "default": 2}},
            {"name": "business-hours", "capacity": {"minimum": 5, "maximum": 10, "default": 5},
             "recurrence": {"time_zone": "Europe/London", "days": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                            "hours": [8], "minutes": [0], "end": {"hour": 18, "minute": 0}}}
        ]
    }))
    .unwrap();
    let answer = s
        .fleet
        .set_autoscale("web", Some(setting), false, "test")
        .await
        .unwrap();
    assert!(answer.saved && answer.warnings.is_empty(), "{answer:?}");

    let before = s.fleet.evaluate_autoscale("web").await.unwrap().unwrap();
    assert_eq!(before.profile.as_deref(), Some("default"));
    assert_eq!(before.operation, Operation::None);
    assert_eq!(s.capacity("web").await, 2);

    // 08:00 in London (GMT in November): the business-hours profile applies at once,
    // raising the capacity to its minimum without waiting for a cooldown.
    s.clock.advance(chrono::Duration::seconds(30));
    let start = s.fleet.evaluate_autoscale("web").await.unwrap().unwrap();
    assert_eq!(start.profile.as_deref(), Some("business-hours"));
    assert!(
        start.profile_reason.contains("08:00"),
        "{}",
        start.profile_reason
    );
    assert_eq!(
        (start.operation, start.new_capacity),
        (Operation::ScaleOut, 5)
    );
    assert_eq!(s.capacity("web").await, 5);
    s.converge("web").await;
    assert_eq!(s.fleet.list_instances("web").await.unwrap().len(), 5);

    // 18:00: the default profile again, which holds its default capacity.
    s.clock.advance(chrono::Duration::hours(10));
    let end = s.fleet.evaluate_autoscale("web").await.unwrap().unwrap();
    assert_eq!(end.profile.as_deref(), Some("default"));
    assert_eq!((end.operation, end.new_capacity), (Operation::ScaleIn, 2));

    // Every evaluation is stored, newest first.
    let decisions = s
        .fleet
        .decisions(&flotilla_domain::autoscale::decision::DecisionFilter {
            scale_set: "web".into(),
            operation: None,
            since: None,
            until: None,
            before_id: None,
            limit: 10,
            shadow: false,
        })
        .await
        .unwrap();
    let ops: Vec<Operation> = decisions.iter().map(|d| d.operation).collect();
    assert_eq!(
        ops,
        [Operation::ScaleIn, Operation::ScaleOut, Operation::None]
    );
    // Saturday: still the default.
    s.clock
        .advance(chrono::Duration::days(1) + chrono::Duration::hours(14));
    let saturday = s.fleet.evaluate_autoscale("web").await.unwrap().unwrap();
    assert_eq!(saturday.profile.as_deref(), Some("default"));
}

#[tokio::test]
async fn metrics_are_collected_rolled_up_and_queried() {
    let s = scenario("2026-11-27T10:00:00Z").await;
    let mut spec = ScaleSetSpec::example("api", 2);
    spec.demand = Some(
        serde_json::from_value::<Demand>(
            json!({"pattern": "constant", "rps": 100, "noise_percent": 0}),
        )
        .unwrap(),
    );
    s.fleet.create_scale_set(spec, "test").await.unwrap();
    s.converge("api").await;
    s.mock.advance(Duration::from_secs(60)).await;

    let t0 = s.fleet.now();
    s.clock.advance(chrono::Duration::seconds(5));
    s.fleet.collect_metrics_now().await.unwrap();
    s.clock.advance(chrono::Duration::seconds(60));
    s.fleet.collect_metrics_now().await.unwrap();

    // 100 rps over 2 warm instances of 2 vCPUs: 50 rps each, 2 + 50 % CPU.
    let query = |metric: &str, from, to, step| MetricsQuery {
        metric: Some(metric.into()),
        from: Some(from),
        to: Some(to),
        step: Some(step),
        instance: None,
    };
    let now = s.fleet.now();
    let answer = s
        .fleet
        .metrics(
            "api",
            &query(
                "cpu_percent,capacity",
                t0,
                now + chrono::Duration::seconds(1),
                1,
            ),
        )
        .await
        .unwrap();
    let cpu = &answer.series[0];
    assert_eq!(cpu.metric, Metric::CpuPercent);
    assert_eq!(cpu.points.len(), 2);
    assert!((cpu.points[0].average - 52.0).abs() < 1e-9, "{cpu:?}");
    assert_eq!(cpu.points[0].count, 2);
    assert_eq!(answer.series[1].points[0].average, 2.0);

    // One instance's own samples.
    let id = s.fleet.list_instances("api").await.unwrap()[0].id.clone();
    let mine = s
        .fleet
        .metrics(
            "api",
            &MetricsQuery {
                instance: Some(id.clone()),
                ..query("cpu_percent", t0, now + chrono::Duration::seconds(1), 1)
            },
        )
        .await
        .unwrap();
    assert_eq!(mine.series[0].instance.as_deref(), Some(id.as_str()));
    assert_eq!(mine.series[0].points.len(), 2);

    // Twenty minutes on, the first ticks have left memory: the same range comes from the
    // 1-minute roll-ups in the store.
    s.clock.advance(chrono::Duration::minutes(20));
    s.fleet.collect_metrics_now().await.unwrap();
    let old = s
        .fleet
        .metrics(
            "api",
            &query("cpu_percent", t0, t0 + chrono::Duration::minutes(2), 60),
        )
        .await
        .unwrap();
    let points = &old.series[0].points;
    assert_eq!(points.len(), 2, "{points:?}");
    assert_eq!(points[0].at, t0);
    assert!(points.iter().all(|p| (p.average - 52.0).abs() < 1e-9));
    assert!(s.fleet.collector_stats().points_held > 0);

    // Prometheus form.
    let mut text = String::new();
    s.fleet.render_collected_metrics(&mut text);
    assert!(
        text.contains("flotilla_scale_set_cpu_percent{scale_set=\"api\"} 52"),
        "{text}"
    );
    // A series per instance only with `--metrics-per-instance` (see the black-box test).
    assert!(!text.contains("flotilla_instance_"), "{text}");
}

#[tokio::test]
async fn a_delivery_left_in_progress_is_sent_again_at_start() {
    use flotilla_domain::{ActivityFilter, ActivityResult, NewActivity};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // A receiver that answers 200 and hands over what it got.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = vec![0u8; 16 * 1024];
            let mut len = 0;
            // Head and a small body arrive in a few reads at most.
            while len < buf.len() {
                let n = stream.read(&mut buf[len..]).await.unwrap_or(0);
                len += n;
                let text = String::from_utf8_lossy(&buf[..len]);
                if n == 0 || text.contains("\r\n\r\n{") && text.ends_with('}') {
                    break;
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                .await;
            let _ = tx
                .send(String::from_utf8_lossy(&buf[..len]).to_string())
                .await;
        }
    });

    let store = flotilla_store::connect("sqlite::memory:").await.unwrap();
    let mock = Arc::new(Mock::open(MockConfig::instant()).await.unwrap());
    let clock = Arc::new(ManualClock::new(at("2026-11-27T12:00:00Z")));
    let fleet = Fleet::new(
        store.clone(),
        mock.clone(),
        clock,
        FleetConfig {
            webhook_allow: vec!["127.0.0.0/8".parse().unwrap()],
            ..FleetConfig::default()
        },
    );
    assert!(fleet.lead_by_hand().await.unwrap());
    let mut spec = ScaleSetSpec::example("web", 0);
    spec.autoscale = Some(
        serde_json::from_value(json!({
            "enabled": false,
            "profiles": [{"name": "default", "capacity": {"minimum": 0, "maximum": 5, "default": 0}}],
            "notifications": {"webhooks": [{"url": url, "secret": "k"}]},
        }))
        .unwrap(),
    );
    fleet.create_scale_set(spec, "test").await.unwrap();
    // What a control plane that died mid-delivery leaves: the decision, and the delivery's
    // entry still in progress (as a version from before URLs were redacted wrote it).
    let decision: flotilla_domain::autoscale::Decision = serde_json::from_value(json!({
        "scale_set": "web", "at": "2026-11-27T11:59:00Z", "profile": "default",
        "profile_reason": "the default", "bounds": null, "current": 1, "new_capacity": 3,
        "operation": "scale_out", "reason": "a scale-out rule fired", "rules": [],
        "rules_target": 3, "rules_reason": null, "projections": [], "tracking": null,
        "cooldown_until": null, "cooldown_seconds": 300
    }))
    .unwrap();
    let decision = store.append_decision(&decision).await.unwrap();
    let entry = store
        .append_activity(&NewActivity {
            operation: "autoscale.webhook".into(),
            actor: "system:autoscale".into(),
            scale_set: Some("web".into()),
            target: url.clone(),
            started_at: at("2026-11-27T11:59:01Z"),
            ended_at: None,
            result: ActivityResult::InProgress,
            error: None,
            details: json!({"url": url, "decision_id": decision.id, "activity_id": 7}),
        })
        .await
        .unwrap();

    fleet.start().await.unwrap();
    let request = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("delivered again")
        .unwrap();
    assert!(
        request.contains("X-Flotilla-Signature: sha256="),
        "{request}"
    );
    let body: serde_json::Value =
        serde_json::from_str(&request[request.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    assert_eq!(body["decision_id"], decision.id);
    assert_eq!(
        (body["old_capacity"].clone(), body["new_capacity"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(body["activity_id"], 7);
    // The same entry is closed.
    let mut finished = None;
    for _ in 0..100 {
        let entries = fleet
            .activity(&ActivityFilter {
                operation: Some("autoscale.webhook".into()),
                limit: 10,
                ..ActivityFilter::default()
            })
            .await
            .unwrap();
        if entries.len() == 1 && entries[0].result == ActivityResult::Succeeded {
            finished = Some(entries[0].clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let finished = finished.expect("the entry is finished");
    assert_eq!(finished.id, entry.id);
    assert_eq!(finished.details["attempts"], 1);
    let shown = format!("{}/(redacted)", url.trim_end_matches("/hook"));
    assert_eq!(
        finished.details["url"],
        shown.as_str(),
        "the URL is shown, not told"
    );
    fleet.shutdown().await;
}
