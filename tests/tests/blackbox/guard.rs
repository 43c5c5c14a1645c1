//! What every request passes (`server/src/guard.rs`, `server/src/serve.rs`), tried as an
//! attacker would: oversized bodies on every route, server functions included; a client
//! that never finishes its headers; a control character in a server function's redirect;
//! cross-site requests from another page, however they come; DNS rebinding; framing; too
//! many connections and event streams.

use std::time::Duration;

use flotilla_tests::{Api, TestServer, wait_until};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn capacity(api: &Api, set: &str) -> u64 {
    api.get(&format!("/scale-sets/{set}")).await.1["capacity"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_on_every_route_and_the_client_hears_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let http = server.http();
    let big = vec![b'a'; 3 * 1024 * 1024];
    for path in [
        "/api/v1/scale-sets",
        "/_fn/set-capacity",
        "/_fn/no-such-function",
    ] {
        // With a length: refused before it is read, after the rest was read away, so the
        // client (still sending) sees the answer rather than a reset.
        let response = http
            .post(format!("{}{path}", server.url))
            .header("content-type", "application/json")
            .header("x-flotilla-request", "1")
            .body(big.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: the client saw {e} instead of an answer"));
        assert_eq!(response.status(), 413, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        // Chunked, without a length: refused once it passes the limit.
        let chunks = futures::stream::iter(
            (0..48).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'{'; 64 * 1024]))),
        );
        let response = http
            .post(format!("{}{path}", server.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-flotilla-request", "1")
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path} (chunked): {e}"));
        assert_eq!(response.status(), 413, "{path} (chunked)");
    }
    // The server is fine, and a body under the limit still works.
    let api = server.api();
    api.create_set("web", 1, json!({})).await;
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let address = server.url.trim_start_matches("http://").to_string();
    let mut slow = TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(20), slow.read(&mut buf))
        .await
        .expect("closed within the header timeout");
    assert!(
        matches!(read, Ok(0) | Err(_)) || String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 408"),
        "{read:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "not before it was due"
    );
    server.stop().await;
}

/// A name with a control character in a plain form post: the redirect back to its page is
/// a page that is not found, not a panic.
#[tokio::test]
async fn a_control_character_in_a_redirect_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let response = server
        .http()
        .post(format!("{}/_fn/set-capacity", server.url))
        .header("accept", "text/html")
        .form(&[("name", "we\nb\u{7f}"), ("capacity", "3")])
        .send()
        .await
        .expect("an answer");
    assert!(response.status().as_u16() < 500, "{response:?}");
    if let Some(location) = response.headers().get("location") {
        assert_eq!(location, "/scale-sets/we%0Ab%7F");
    }
    assert_eq!(server.api().get_status("/healthz").await, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        TestServer::start_with(dir.path(), &["--public-url", "http://flotilla.test:8080"]).await;
    let api = server.api();
    api.create_set("web", 1, json!({})).await;
    api.wait_running("web", 1).await;
    let http = server.http();
    let url = &server.url;

    // Another page's plain form, posting to a server function.
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let response = http
            .post(format!("{url}/_fn/set-capacity"))
            .header(header, value)
            .header("accept", "text/html")
            .form(&[("name", "web"), ("capacity", "9")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{header}: {value}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("cross-site request refused"),
            "{problem}"
        );
    }
    // Another page's form (a "simple" request) to the REST API.
    for (method, path) in [
        (
            reqwest::Method::POST,
            "/api/v1/scale-sets/web/instances/web_0/delete",
        ),
        (reqwest::Method::DELETE, "/api/v1/scale-sets/web"),
        (reqwest::Method::PUT, "/api/v1/scale-sets/web/capacity"),
    ] {
        let response = http
            .request(method.clone(), format!("{url}{path}"))
            .header("content-type", "text/plain")
            .body("{\"capacity\":9}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
    }
    assert_eq!(capacity(&api, "web").await, 1, "nothing changed");
    assert_eq!(
        api.instances("web").await[0]["provisioning_state"],
        "succeeded"
    );

    // The portal's own forms, and scripts, pass.
    let response = http
        .post(format!("{url}/_fn/set-capacity"))
        .header("origin", url.as_str())
        .header("sec-fetch-site", "same-origin")
        .form(&[("name", "web"), ("capacity", "2")])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
    assert_eq!(capacity(&api, "web").await, 2);
    let response = http
        .post(format!(
            "{url}/api/v1/scale-sets/web/instances/web_0/restart"
        ))
        .header("x-flotilla-request", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    // DNS rebinding: a page of another name that resolves here gets nothing.
    for host in [
        "evil.example",
        "evil.example:8080",
        "flotilla.test.evil.example",
    ] {
        for path in ["/api/v1/scale-sets", "/", "/scale-sets/web/settings"] {
            let response = http
                .get(format!("{url}{path}"))
                .header("host", host)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 421, "{host}{path}");
        }
    }
    let response = http
        .get(format!("{url}/api/v1/scale-sets"))
        .header("host", "flotilla.test:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "a --public-url host is this server");

    // No page may frame the portal; nothing is sniffed; referrers stay on this site.
    for path in ["/", "/api/v1/scale-sets", "/no-such-page"] {
        let response = http.get(format!("{url}{path}")).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["content-security-policy"], "frame-ancestors 'none'");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "same-origin");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_event_streams_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        dir.path(),
        &["--max-connections", "3", "--max-event-streams", "1"],
    )
    .await;
    let http = server.http();
    // One event stream: a second is refused.
    let stream = http
        .get(format!("{}/api/v1/events", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let second = http
        .get(format!("{}/api/v1/events", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 503);
    drop(stream);
    wait_until(
        "the stream's slot is free",
        Duration::from_secs(10),
        || async {
            http.get(format!("{}/api/v1/events", server.url))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;

    // Three connections held open: a fourth waits until one closes.
    let address = server.url.trim_start_matches("http://").to_string();
    // The client's pooled connection counts as one; fill the rest.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(&address).await.unwrap());
    }
    let fresh = reqwest::Client::builder().no_proxy().build().unwrap();
    let waiting = tokio::time::timeout(
        Duration::from_secs(2),
        fresh.get(format!("{}/healthz", server.url)).send(),
    )
    .await;
    assert!(
        waiting.is_err(),
        "a connection over the cap waits: {waiting:?}"
    );
    held.clear();
    drop(http);
    let answered = tokio::time::timeout(
        Duration::from_secs(20),
        fresh.get(format!("{}/healthz", server.url)).send(),
    )
    .await
    .expect("served once a connection closed")
    .unwrap();
    assert_eq!(answered.status(), 200);
    server.stop().await;
}
