//! Bad input of every kind answers 4xx with problem+json naming the field, and changes
//! nothing: the scale sets, their instances and the activity log stay as they were.

use flotilla_tests::{Api, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

/// Everything a bad request must leave unchanged.
async fn snapshot(api: &Api) -> (Value, Value, usize) {
    let (_, sets) = api.get("/scale-sets").await;
    let (_, instances) = api.get("/scale-sets/web/instances").await;
    let (_, activity) = api.get("/activity?limit=1000").await;
    let user_entries = activity["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["actor"] != "system:reconciler")
        .count();
    (sets, instances, user_entries)
}

fn valid() -> Value {
    json!({
        "name": "other",
        "model": {"image": "debian-12", "vcpus": 2, "memory_mib": 2048, "disk_gib": 10, "user_data": null, "app_port": 80},
        "capacity": 3,
        "zones": ["1", "2", "3"],
    })
}

/// `valid()` with the JSON pointer `path` set to `value` (top-level fields may be new).
fn with(path: &str, value: Value) -> Value {
    let mut body = valid();
    match body.pointer_mut(path) {
        Some(slot) => *slot = value,
        None => {
            body[path.trim_start_matches('/')] = value;
        }
    }
    body
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| e["field"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set("web", 2, json!({})).await;
    api.create_set("b", 1, json!({})).await;
    api.wait_healthy("web", 2).await;
    api.wait_healthy("b", 1).await;
    let before = snapshot(&api).await;

    // (body, expected status, expected field)
    let mut add_field = valid();
    add_field["colour"] = json!("red");
    let mut dup_zone = valid();
    dup_zone["zones"] = json!(["1", "1"]);
    let cases: Vec<(Value, u16, &str)> = vec![
        (with("/name", json!("Web Server!")), 422, "name"),
        (with("/name", json!("web")), 409, ""),
        (with("/name", json!("a".repeat(64))), 422, "name"),
        (
            with("/name", json!("<script>alert(1)</script>")),
            422,
            "name",
        ),
        (with("/name", json!(42)), 422, "name"),
        (with("/capacity", json!(10_001)), 422, "capacity"),
        (with("/capacity", json!(-1)), 422, "capacity"),
        (with("/capacity", json!(1.5)), 422, "capacity"),
        (with("/capacity", json!("three")), 422, "capacity"),
        (with("/capacity", json!(1e30)), 422, "capacity"),
        (with("/model/vcpus", json!(0)), 422, "model.vcpus"),
        (with("/model/vcpus", json!(65)), 422, "model.vcpus"),
        (
            with("/model/memory_mib", json!(100)),
            422,
            "model.memory_mib",
        ),
        (
            with("/model/memory_mib", json!(4_294_967_296u64)),
            422,
            "model.memory_mib",
        ),
        (with("/model/disk_gib", json!(0)), 422, "model.disk_gib"),
        (
            with("/model/app_port", json!(70_000)),
            422,
            "model.app_port",
        ),
        (
            with("/model/image", json!("windows-95")),
            422,
            "model.image",
        ),
        (with("/zones", json!(["9"])), 422, "zones[0]"),
        (with("/zones", json!("1")), 422, "zones"),
        (dup_zone, 422, "zones[1]"),
        (add_field, 422, "colour"),
        (
            with("/scale_in_policy", json!({"rules": ["random"]})),
            422,
            "scale_in_policy.rules[0]",
        ),
        (
            with(
                "/upgrade_policy",
                json!({"mode": "rolling", "rolling": {"max_batch_instance_percent": 200}}),
            ),
            422,
            "upgrade_policy.rolling.max_batch_instance_percent",
        ),
        (
            with(
                "/health_probe",
                json!({"protocol": "http", "port": 80, "interval_seconds": 5, "timeout_seconds": 5}),
            ),
            422,
            "health_probe.timeout_seconds",
        ),
    ];
    for (body, status, field) in cases {
        let (got, problem) = api.post("/scale-sets", body.clone()).await;
        assert_eq!(got, status, "{body} → {problem}");
        assert_eq!(problem["status"], status, "{problem}");
        if !field.is_empty() {
            assert!(
                fields(&problem).contains(&field.to_string()),
                "expected field {field} in {problem}"
            );
        }
    }

    // Malformed, mistyped, oversized and non-JSON bodies.
    let raw: Vec<(&[u8], &str, u16)> = vec![
        (b"{", "application/json", 400),
        (b"{\"name\": \"x\",}", "application/json", 400),
        (b"", "application/json", 400),
        (b"[]", "application/json", 422),
        (b"null", "application/json", 422),
        (b"\xff\xfe", "application/json", 400),
        (b"name=web", "application/x-www-form-urlencoded", 415),
    ];
    for (body, content_type, status) in raw {
        let (got, problem) = api
            .raw(Method::POST, "/scale-sets", content_type, body.to_vec())
            .await;
        assert_eq!(
            got,
            status,
            "{:?} → {problem}",
            String::from_utf8_lossy(body)
        );
        assert!(problem["title"].is_string(), "problem+json: {problem}");
    }
    let huge = format!(
        "{{\"name\":\"x\",\"pad\":\"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let (got, _) = api
        .raw(
            Method::POST,
            "/scale-sets",
            "application/json",
            huge.into_bytes(),
        )
        .await;
    assert_eq!(got, 413);

    // Unknown resources and odd names in paths.
    for path in [
        "/scale-sets/nope",
        "/scale-sets/nope/instances",
        "/scale-sets/web/instances/web_99",
        "/scale-sets/%2e%2e%2fetc",
        "/scale-sets/web%00",
        "/scale-sets/DROP%20TABLE%20scale_sets",
        "/no-such-thing",
    ] {
        let (status, problem) = api.get(path).await;
        assert_eq!(status, 404, "{path} → {problem}");
    }
    assert_eq!(
        api.put("/scale-sets/nope/capacity", json!({"capacity": 1}))
            .await
            .0,
        404
    );
    assert_eq!(
        api.post_empty("/scale-sets/nope/instances/nope_0/start")
            .await
            .0,
        404
    );
    // An instance of another set through the wrong set's path.
    assert_eq!(
        api.post_empty("/scale-sets/web/instances/b_0/stop").await.0,
        404
    );

    // Capacity, patch, model, protection, faults and activity queries.
    let bad_updates: Vec<(&str, &str, Value, u16, &str)> = vec![
        (
            "PUT",
            "/scale-sets/web/capacity",
            json!({"capacity": 10_001}),
            422,
            "capacity",
        ),
        (
            "PUT",
            "/scale-sets/web/capacity",
            json!({"capacity": -3}),
            422,
            "capacity",
        ),
        (
            "PUT",
            "/scale-sets/web/capacity",
            json!({"count": 3}),
            422,
            "capacity",
        ),
        (
            "PUT",
            "/scale-sets/web/capacity",
            json!({"capacity": 3, "force": true}),
            422,
            "force",
        ),
        (
            "PATCH",
            "/scale-sets/web",
            json!({"zones": ["1"]}),
            422,
            "zones",
        ),
        (
            "PATCH",
            "/scale-sets/web",
            json!({"platform_fault_domain_count": 3}),
            422,
            "platform_fault_domain_count",
        ),
        (
            "PATCH",
            "/scale-sets/web",
            json!({"automatic_repairs": {"enabled": true}}),
            422,
            "automatic_repairs.enabled",
        ),
        (
            "PATCH",
            "/scale-sets/web",
            json!({"name": "renamed"}),
            422,
            "name",
        ),
        (
            "PUT",
            "/scale-sets/web/model",
            json!({"image": "debian-12", "vcpus": 128, "memory_mib": 2048, "disk_gib": 10}),
            422,
            "model.vcpus",
        ),
        (
            "PUT",
            "/scale-sets/web/instances/web_0/protection",
            json!({"protect_from_scale_in": "yes"}),
            422,
            "protect_from_scale_in",
        ),
        (
            "POST",
            "/backend/faults",
            json!({"kind": "create_failure_rate", "rate": 2.0}),
            422,
            "rate",
        ),
        (
            "POST",
            "/backend/faults",
            json!({"kind": "meteor"}),
            422,
            "kind",
        ),
        (
            "POST",
            "/backend/faults",
            json!({"kind": "crash", "instance": "web_77"}),
            404,
            "",
        ),
        (
            "POST",
            "/backend/faults",
            json!({"kind": "zone_down", "zone": "9"}),
            422,
            "zone",
        ),
    ];
    for (method, path, body, status, field) in bad_updates {
        let (got, problem) = match method {
            "PUT" => api.put(path, body.clone()).await,
            "PATCH" => api.patch(path, body.clone()).await,
            _ => api.post(path, body.clone()).await,
        };
        assert_eq!(got, status, "{method} {path} {body} → {problem}");
        if !field.is_empty() {
            assert!(
                fields(&problem).contains(&field.to_string()),
                "expected field {field} in {problem}"
            );
        }
    }
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("result=maybe", "result"),
        ("since=yesterday", "since"),
        ("before=x", "before"),
        ("colour=red", "colour"),
    ] {
        let (status, problem) = api.get(&format!("/activity?{query}")).await;
        assert_eq!(status, 422, "{query} → {problem}");
        assert_eq!(fields(&problem), [field], "{query}");
    }

    // Nothing changed.
    let after = snapshot(&api).await;
    assert_eq!(after.0, before.0, "scale sets unchanged");
    assert_eq!(after.1, before.1, "instances unchanged");
    assert_eq!(
        after.2, before.2,
        "no activity recorded for refused requests"
    );
    let (_, faults) = api.get("/backend/faults").await;
    assert_eq!(faults["items"].as_array().unwrap().len(), 0);
    server.stop().await;
}

/// Found by schemathesis: an address segment the route cannot read is a 400 problem (not
/// text), an array in place of an object body is refused (serde would read a struct from
/// it), and a fault with a field it does not have is refused like any unknown field.
#[tokio::test]
async fn unreadable_addresses_and_bodies_of_the_wrong_shape_are_problems() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set("web", 1, json!({})).await;
    api.wait_healthy("web", 1).await;
    let before = snapshot(&api).await;
    for path in [
        "/scale-sets/web/rollouts/9223372036854775808",
        "/scale-sets/web/rollouts/abc",
    ] {
        let response = server
            .http()
            .get(format!("{}/api/v1{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    let (status, problem) = api.post_empty("/scale-sets/web/rollouts/abc/pause").await;
    assert_eq!(status, 400, "{problem}");
    for (method, path, body) in [
        (Method::PUT, "/scale-sets/web/capacity", json!([2])),
        (
            Method::POST,
            "/scale-sets/web/rollouts/preview",
            json!([null]),
        ),
        (
            Method::POST,
            "/scale-sets",
            json!(["web2", {"image": "debian-12", "vcpus": 1, "memory_mib": 512, "disk_gib": 10}, 1]),
        ),
        (
            Method::POST,
            "/backend/faults",
            json!({"kind": "slow_boot", "seconds": 1, "bogus": 1}),
        ),
    ] {
        let (status, problem) = api
            .raw(
                method.clone(),
                path,
                "application/json",
                body.to_string().into_bytes(),
            )
            .await;
        assert_eq!(status, 422, "{method} {path}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "body", "{problem}");
    }
    assert_eq!(snapshot(&api).await, before, "nothing changed");
    let (_, faults) = api.get("/backend/faults").await;
    assert_eq!(faults["items"], json!([]));
    server.stop().await;
}
