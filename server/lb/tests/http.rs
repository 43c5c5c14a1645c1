//! L7 behaviour on real sockets: selection, retries, errors, headers, routing, stats.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use flotilla_lb::{Algorithm, Member, PathRule};

async fn three() -> Vec<Upstream> {
    vec![
        Upstream::start("a").await,
        Upstream::start("b").await,
        Upstream::start("c").await,
    ]
}

fn members(ups: &[Upstream]) -> Vec<Member> {
    ups.iter().map(Upstream::member).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_evenly_over_keep_alive() {
    bounded(async {
        let ups = three().await;
        let (_lb, addr) = http_lb(|_| {}, members(&ups)).await;
        let mut client = Client::connect(addr).await;
        let mut by = HashMap::<String, usize>::new();
        for _ in 0..300 {
            let r = client.get("/").await;
            assert_eq!(r.status, 200);
            *by.entry(r.upstream().to_owned()).or_default() += 1;
        }
        for u in &ups {
            assert_eq!(by[&u.name], 100, "{by:?}");
            // Sequential requests reuse one pooled connection per member.
            assert_eq!(
                u.conns.load(std::sync::atomic::Ordering::SeqCst),
                1,
                "{}",
                u.name
            );
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_connections_prefers_the_idle_member() {
    bounded(async {
        let ups = vec![Upstream::start("a").await, Upstream::start("b").await];
        let (_lb, addr) =
            http_lb(|c| c.algorithm = Algorithm::LeastConnections, members(&ups)).await;
        let slow = tokio::spawn(async move { get(addr, "/slow/1500").await });
        // Wait until the slow request reached its member.
        while ups.iter().map(Upstream::hits).sum::<usize>() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let busy = if ups[0].hits() == 1 { "a" } else { "b" };
        for _ in 0..10 {
            let r = get(addr, "/").await;
            assert_eq!(r.status, 200);
            assert_ne!(r.upstream(), busy);
        }
        assert_eq!(slow.await.unwrap().upstream(), busy);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_hash_sticks_to_one_member() {
    bounded(async {
        let ups = three().await;
        let (_lb, addr) = http_lb(|c| c.algorithm = Algorithm::IpHash, members(&ups)).await;
        let first = get(addr, "/").await.upstream().to_owned();
        for _ in 0..30 {
            assert_eq!(get(addr, "/").await.upstream(), first);
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_leaving_mid_traffic_fail_no_request() {
    bounded(async {
        let ups = three().await;
        let (lb, addr) = http_lb(|_| {}, members(&ups)).await;
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let mut workers = Vec::new();
        for w in 0..4 {
            let mut rx = rx.clone();
            workers.push(tokio::spawn(async move {
                let mut client = Client::connect(addr).await;
                let mut n = 0;
                while !*rx.borrow_and_update() {
                    // Half the workers keep one connection, half open one per request.
                    let r = if w % 2 == 0 {
                        client.get("/slow/2").await
                    } else {
                        get(addr, "/slow/2").await
                    };
                    assert_eq!(r.status, 200, "{}", r.body);
                    n += 1;
                }
                n
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // "c" leaves the pool and then dies; "b" is drained (it stays listed).
        lb.set_pool("web", members(&ups[..2]));
        tokio::time::sleep(Duration::from_millis(50)).await;
        ups[2].stop();
        assert!(lb.drain("b", Duration::from_secs(5)).await);
        let b_hits = ups[1].hits();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(ups[1].hits(), b_hits, "a drained member got new requests");
        lb.undrain("b");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(ups[1].hits() > b_hits);
        tx.send(true).unwrap();
        let mut total = 0;
        for w in workers {
            total += w.await.unwrap();
        }
        assert!(total > 40, "only {total} requests");
        rx.borrow_and_update();
        let stats = lb.stats();
        assert_eq!(stats[0].responses.server_error, 0);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_waits_for_in_flight_requests() {
    bounded(async {
        let a = Upstream::start("a").await;
        let (lb, addr) = http_lb(|_| {}, vec![a.member()]).await;
        let slow = tokio::spawn(async move { get(addr, "/slow/600").await });
        while a.hits() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = Instant::now();
        assert!(lb.drain("a", Duration::from_secs(5)).await);
        assert!(
            started.elapsed() >= Duration::from_millis(400),
            "drain returned early"
        );
        assert_eq!(slow.await.unwrap().status, 200);
        // Drained and alone: nothing serves.
        assert_eq!(get(addr, "/").await.status, 503);
        assert_eq!(lb.stats()[0].backends[0].state, "draining");
        lb.undrain("a");
        assert_eq!(get(addr, "/").await.status, 200);

        // A request that never completes: drain gives up after its timeout.
        let hung = tokio::spawn(async move { get(addr, "/hang").await });
        while a.hits() < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = Instant::now();
        assert!(!lb.drain("a", Duration::from_millis(300)).await);
        assert!(started.elapsed() >= Duration::from_millis(300));
        hung.abort();
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_failures_are_retried_on_another_member_for_any_method() {
    bounded(async {
        let live = Upstream::start("live").await;
        let dead = Member::new("dead", dead_addr().await);
        let (lb, addr) = http_lb(|_| {}, vec![dead, live.member()]).await;
        for _ in 0..6 {
            let r = get(addr, "/").await;
            assert_eq!((r.status, r.upstream()), (200, "live"));
        }
        // Nothing reached the dead member, so even a POST with a body is safe to retry.
        for _ in 0..4 {
            let r = send(addr, req("POST", "/", "hello")).await;
            assert_eq!((r.status, r.upstream()), (200, "live"));
            assert_eq!(r.seen("body-bytes"), Some("5"));
        }
        let stats = lb.stats();
        let dead = stats[0].backends.iter().find(|b| b.id == "dead").unwrap();
        assert!(dead.failures >= 5);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_after_sending_are_retried_only_for_bodiless_idempotent_requests() {
    bounded(async {
        let live = Upstream::start("live").await;
        let (garbage, _g) = garbage_upstream().await;
        let (_lb, addr) =
            http_lb(|_| {}, vec![Member::new("garbage", garbage), live.member()]).await;
        for _ in 0..6 {
            let r = get(addr, "/").await;
            assert_eq!((r.status, r.upstream()), (200, "live"));
        }
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(send(addr, req("POST", "/", "hello")).await.status);
        }
        statuses.sort();
        assert_eq!(statuses, [200, 200, 200, 502, 502, 502]);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses() {
    bounded(async {
        // 503: empty pool.
        let (lb, addr) = http_lb(|_| {}, vec![]).await;
        let r = get(addr, "/").await;
        assert_eq!(r.status, 503);
        assert!(!r.body.is_empty());
        // 502: a member speaking something else than HTTP.
        let (garbage, _g) = garbage_upstream().await;
        lb.set_pool("web", vec![Member::new("g", garbage)]);
        assert_eq!(get(addr, "/").await.status, 502);
        // 502: refused everywhere.
        lb.set_pool("web", vec![Member::new("d", dead_addr().await)]);
        assert_eq!(get(addr, "/").await.status, 502);
        // 504: no answer in time.
        let (hanging, _h) = hanging_upstream().await;
        let (_lb2, addr2) = http_lb(
            |c| c.timeouts.response = Duration::from_millis(300),
            vec![Member::new("h", hanging)],
        )
        .await;
        let started = Instant::now();
        assert_eq!(get(addr2, "/").await.status, 504);
        assert!(started.elapsed() >= Duration::from_millis(300));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_member_does_not_stall_the_others() {
    bounded(async {
        let good = Upstream::start("good").await;
        let (hanging, _h) = hanging_upstream().await;
        let (_lb, addr) = http_lb(
            |c| c.timeouts.response = Duration::from_secs(3),
            vec![Member::new("h", hanging), good.member()],
        )
        .await;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..10 {
            tasks.push(tokio::spawn(async move {
                let r = get(addr, "/").await;
                (r.status, Instant::now())
            }));
        }
        let mut fast_ok = 0;
        let mut timeouts = 0;
        for t in tasks {
            let (status, at) = t.await.unwrap();
            match status {
                200 => {
                    assert!(
                        at - started < Duration::from_secs(1),
                        "a good request was stalled"
                    );
                    fast_ok += 1;
                }
                504 => timeouts += 1,
                s => panic!("unexpected {s}"),
            }
        }
        assert_eq!((fast_ok, timeouts), (5, 5));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_reach_the_member() {
    bounded(async {
        let a = Upstream::start("a").await;
        let (_lb, addr) = http_lb(|_| {}, vec![a.member()]).await;
        let mut r = req("GET", "/", "");
        let h = r.headers_mut();
        h.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
        h.insert("connection", "keep-alive, x-private".parse().unwrap());
        h.insert("x-private", "secret".parse().unwrap());
        h.insert("x-kept", "yes".parse().unwrap());
        let r = send(addr, r).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.seen("x-forwarded-for"), Some("203.0.113.9, 127.0.0.1"));
        assert_eq!(r.seen("x-forwarded-proto"), Some("http"));
        assert_eq!(r.seen("x-forwarded-host"), Some("example.test"));
        assert_eq!(r.seen("host"), Some("example.test"));
        assert_eq!(r.seen("x-kept"), Some("yes"));
        assert_eq!(r.seen("x-private"), None);
        assert_eq!(r.seen("connection"), None);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_rules_route_to_other_pools() {
    bounded(async {
        let web = Upstream::start("web-1").await;
        let api = Upstream::start("api-1").await;
        let (lb, addr) = http_lb(
            |c| {
                c.rules = vec![PathRule {
                    path_prefix: "/api".into(),
                    pool: "api".into(),
                }]
            },
            vec![web.member()],
        )
        .await;
        lb.set_pool("api", vec![api.member()]);
        assert_eq!(get(addr, "/api").await.upstream(), "api-1");
        assert_eq!(get(addr, "/api/users?x=1").await.upstream(), "api-1");
        assert_eq!(get(addr, "/apix").await.upstream(), "web-1");
        assert_eq!(get(addr, "/").await.upstream(), "web-1");
        let pools: Vec<_> = lb.stats()[0]
            .backends
            .iter()
            .map(|b| b.pool.clone())
            .collect();
        assert_eq!(pools, ["web", "api"]);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_prometheus() {
    bounded(async {
        let a = Upstream::start("a").await;
        let (lb, addr) = http_lb(|_| {}, vec![a.member()]).await;
        let mut client = Client::connect(addr).await;
        for _ in 0..5 {
            assert_eq!(client.send(req("POST", "/", "12345")).await.status, 200);
        }
        lb.set_pool("web", vec![]);
        assert_eq!(client.get("/").await.status, 503);
        let s = &lb.stats()[0];
        assert_eq!((s.scale_set.as_str(), s.name.as_str(), s.protocol.as_str()), ("web", "main", "http"));
        assert_eq!(s.listen, addr.to_string());
        assert_eq!(s.requests, 6);
        assert_eq!((s.responses.success, s.responses.server_error), (5, 1));
        assert_eq!(s.bytes_in, 25);
        assert!(s.bytes_out > 0);
        assert_eq!(s.latency.count, 6);
        assert_eq!(*s.latency.counts.last().unwrap(), 6);
        assert!(s.latency.quantile(0.99).is_some());
        assert_eq!(s.active_connections, 1);
        // "a" left the pool and is idle, so it is no longer reported.
        assert!(s.backends.is_empty());

        lb.set_pool("web", vec![a.member()]);
        assert_eq!(client.get("/").await.status, 200);
        let s = &lb.stats()[0];
        let b = &s.backends[0];
        assert_eq!((b.pool.as_str(), b.id.as_str(), b.state.as_str(), b.requests, b.active), ("web", "a", "serving", 1, 0));
        assert_eq!(b.responses.success, 1);
        assert_eq!(b.latency.count, 1);

        let mut text = String::new();
        lb.render_prometheus(&mut text, true);
        for needle in [
            "# TYPE flotilla_lb_frontend_requests_total counter",
            "flotilla_lb_frontend_requests_total{scale_set=\"web\",frontend=\"main\",protocol=\"http\"} 7",
            "flotilla_lb_frontend_responses_total{scale_set=\"web\",frontend=\"main\",protocol=\"http\",class=\"5xx\"} 1",
            "flotilla_lb_frontend_request_duration_seconds_bucket{scale_set=\"web\",frontend=\"main\",protocol=\"http\",le=\"+Inf\"} 7",
            "flotilla_lb_frontend_active_connections{",
            "flotilla_lb_backend_requests_total{pool=\"web\",backend=\"a\",addr=",
            "flotilla_lb_backend_state{pool=\"web\",backend=\"a\"",
            "flotilla_lb_backend_response_duration_seconds_count{pool=\"web\",backend=\"a\"",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        // Without members: the frontends' series only.
        let mut frontends_only = String::new();
        lb.render_prometheus(&mut frontends_only, false);
        assert!(frontends_only.contains("flotilla_lb_frontend_requests_total{"));
        assert!(!frontends_only.contains("flotilla_lb_backend_requests_total{"), "{frontends_only}");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_client_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    bounded(async {
        let a = Upstream::start("a").await;
        let idle = Duration::from_millis(300);
        let (_lb, addr) = http_lb(|c| c.timeouts.client_idle = idle, vec![a.member()]).await;
        // A request outlasting the idle timeout is not cut, and the connection lives on.
        let mut client = Client::connect(addr).await;
        assert_eq!(client.get("/slow/700").await.status, 200);
        assert_eq!(client.get("/").await.status, 200);
        let last = Instant::now();
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!client.is_closed(), "closed before the idle timeout");
        assert_eq!(client.get("/").await.status, 200);
        let last_after = Instant::now();
        assert!(last_after - last < idle);
        while !client.is_closed() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let idle_for = last_after.elapsed();
        assert!(idle_for >= idle, "closed after {idle_for:?}");
        assert!(
            idle_for < Duration::from_secs(2),
            "closed after {idle_for:?}"
        );

        // A client that never completes its request head is dropped as well.
        let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
        raw.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let n = raw.read(&mut buf).await.unwrap_or(0);
        assert_eq!(n, 0);
        assert!(started.elapsed() >= Duration::from_millis(250));
    })
    .await
}

/// A body of `n` letters.
fn letters(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

const LARGE: usize = 8 << 20;
const LARGE_CHUNKED: usize = 4 << 20;

fn script(method: &str, path: &str) -> Script {
    match path {
        // Split at awkward places: inside a header, a chunk-size line, a chunk, a CRLF.
        "/chunked" => Script::keep(&[
            b"HTTP/1.1 200 OK\r\ntransfer-enc",
            b"oding: chunked\r\nx-up: 1\r\n\r\n5\r",
            b"\nhel",
            b"lo\r\n6;ext=1\r\n world\r",
            b"\n0\r\nx-trailer: t\r\n",
            b"\r\n",
        ]),
        "/head" if method == "HEAD" => {
            Script::keep(&[b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n"])
        }
        "/204" => Script::keep(&[b"HTTP/1.1 204 No Content\r\nx-up: 1\r\n\r\n"]),
        "/304" => Script::keep(&[
            b"HTTP/1.1 304 Not Modified\r\ncontent-length: 50\r\netag: \"v1\"\r\n\r\n",
        ]),
        "/continue" => Script::keep(&[
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        ]),
        "/close" => Script::close(&[b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nby", b"e"]),
        "/close-length" => Script::close(&[
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 3\r\n\r\nbye",
        ]),
        "/http10" => Script::close(&[b"HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\nold"]),
        "/truncated" => Script::close(&[b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"]),
        "/large" => {
            let mut pieces = vec![format!("HTTP/1.1 200 OK\r\ncontent-length: {LARGE}\r\n\r\n").into_bytes()];
            pieces.extend(letters(LARGE).chunks(256 << 10).map(<[u8]>::to_vec));
            Script { pieces, close: false }
        }
        "/large-chunked" => {
            let mut pieces = vec![b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec()];
            for chunk in letters(LARGE_CHUNKED).chunks(100_000) {
                let mut p = format!("{:x}\r\n", chunk.len()).into_bytes();
                p.extend_from_slice(chunk);
                p.extend_from_slice(b"\r\n");
                pieces.push(p);
            }
            pieces.push(b"0\r\n\r\n".to_vec());
            Script { pieces, close: false }
        }
        _ => Script::keep(&[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_responses_are_decoded_and_the_connection_reused() {
    bounded(async {
        let up = scripted_upstream(script).await;
        let (lb, addr) = http_lb(|_| {}, vec![up.member("s")]).await;
        let mut client = Client::connect(addr).await;
        for _ in 0..3 {
            let r = client.get("/chunked").await;
            assert_eq!((r.status, r.body.as_str()), (200, "hello world"));
            assert_eq!(r.headers["x-up"], "1");
            assert_eq!(client.get("/").await.body, "ok");
        }
        assert_eq!(up.conns(), 1);
        assert_eq!(lb.stats()[0].bytes_out, 3 * (11 + 2));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_204_and_304_responses_have_no_body() {
    bounded(async {
        let up = scripted_upstream(script).await;
        let (_lb, addr) = http_lb(|_| {}, vec![up.member("s")]).await;
        let mut client = Client::connect(addr).await;
        for _ in 0..2 {
            let r = client.send(req("HEAD", "/head", "")).await;
            assert_eq!((r.status, r.body.as_str()), (200, ""));
            assert_eq!(r.headers["content-length"], "1234");
            let r = client.get("/204").await;
            assert_eq!((r.status, r.body.as_str()), (204, ""));
            assert_eq!(r.headers["x-up"], "1");
            let r = client.get("/304").await;
            assert_eq!((r.status, r.body.as_str()), (304, ""));
            assert_eq!(r.headers["etag"], "\"v1\"");
            assert_eq!(client.get("/").await.body, "ok");
        }
        // None of them left anything unread: one connection carried all.
        assert_eq!(up.conns(), 1);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informational_responses_are_skipped() {
    bounded(async {
        let up = scripted_upstream(script).await;
        let (_lb, addr) = http_lb(|_| {}, vec![up.member("s")]).await;
        let mut client = Client::connect(addr).await;
        let r = client.get("/continue").await;
        assert_eq!((r.status, r.body.as_str()), (200, "ok"));
        // A client expecting 100-continue: its body still reaches the member.
        let mut post = req("POST", "/continue", "hello");
        post.headers_mut()
            .insert("expect", "100-continue".parse().unwrap());
        let r = client.send(post).await;
        assert_eq!((r.status, r.body.as_str()), (200, "ok"));
        assert_eq!(up.requests.lock().unwrap()[1].1, b"hello");
        assert_eq!(client.get("/").await.body, "ok");
        assert_eq!(up.conns(), 1);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_member_closes_are_not_reused() {
    bounded(async {
        let up = scripted_upstream(script).await;
        let (lb, addr) = http_lb(|_| {}, vec![up.member("s")]).await;
        let mut client = Client::connect(addr).await;
        // Close-delimited body (no length).
        let r = client.get("/close").await;
        assert_eq!((r.status, r.body.as_str()), (200, "bye"));
        assert_eq!(up.conns(), 1);
        let r = client.get("/close-length").await;
        assert_eq!((r.status, r.body.as_str()), (200, "bye"));
        assert_eq!(up.conns(), 2);
        let r = client.get("/http10").await;
        assert_eq!((r.status, r.body.as_str()), (200, "old"));
        assert_eq!(up.conns(), 3);
        for _ in 0..3 {
            assert_eq!(client.get("/").await.body, "ok");
        }
        assert_eq!(up.conns(), 4);
        assert_eq!(lb.stats()[0].backends[0].failures, 0);

        // A body cut short: the client's response is cut too, and the member is blamed.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
        raw.write_all(b"GET /truncated HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        let _ = raw.read_to_end(&mut got).await;
        // Whatever got out (hyper may drop its unflushed part), the body is incomplete.
        let got = String::from_utf8_lossy(&got);
        let body = got.find("\r\n\r\n").map_or(0, |i| got.len() - i - 4);
        assert!(body < 10, "{got}");
        assert_eq!(lb.stats()[0].backends[0].failures, 1);
        assert_eq!(client.get("/").await.body, "ok");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_both_ways() {
    bounded(async {
        let up = scripted_upstream(script).await;
        let (lb, addr) = http_lb(|_| {}, vec![up.member("s")]).await;
        let mut client = Client::connect(addr).await;
        let r = client.get("/large").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["content-length"], LARGE.to_string().as_str());
        assert!(r.body.as_bytes() == letters(LARGE), "large body differs");
        let r = client.get("/large-chunked").await;
        assert_eq!(r.status, 200);
        assert!(r.body.as_bytes() == letters(LARGE_CHUNKED), "chunked body differs");
        assert_eq!(up.conns(), 1);

        // A large request body, with a length.
        let big = String::from_utf8(letters(3 << 20)).unwrap();
        assert_eq!(client.send(req("POST", "/", &big)).await.body, "ok");
        // A chunked request body is forwarded chunked.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
        raw.write_all(
            b"POST /up HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
        let mut got = Vec::new();
        while !got.ends_with(b"ok") {
            let mut buf = [0u8; 1024];
            let n = raw.read(&mut buf).await.unwrap();
            assert!(n > 0, "{}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        {
            let requests = up.requests.lock().unwrap();
            assert_eq!(requests[2].1.len(), 3 << 20);
            let (head, body) = &requests[3];
            assert_eq!(body, b"hello world");
            assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
        }
        let s = &lb.stats()[0];
        assert_eq!(s.bytes_in, (3 << 20) + 11);
        assert!(s.bytes_out >= (LARGE + LARGE_CHUNKED) as u64);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_rules_match_the_normalised_path() {
    bounded(async {
        let web = scripted_upstream(echo_path).await;
        let api = scripted_upstream(echo_path).await;
        let (lb, addr) = http_lb(
            |c| {
                c.rules = vec![PathRule {
                    path_prefix: "/api".into(),
                    pool: "api".into(),
                }]
            },
            vec![web.member("web-1")],
        )
        .await;
        lb.set_pool("api", vec![api.member("api-1")]);
        // (request target, the pool it reaches, the target the member gets)
        let routed = [
            ("/api/x", "api", "/api/x"),
            ("/public/../api/x", "api", "/api/x"),
            ("/public/./../api", "api", "/api"),
            ("//api", "api", "/api"),
            ("/public//..//api/", "api", "/api/"),
            ("/%61pi/%7Eme", "api", "/api/~me"),
            ("/public/%2e%2E/api", "api", "/api"),
            ("/../../api", "api", "/api"),
            ("/api/../public", "web", "/public"),
            ("/api%20x", "web", "/api%20x"),
            ("/api?next=/../admin", "api", "/api?next=/../admin"),
        ];
        let mut wrong = Vec::new();
        for (target, pool, seen) in routed {
            let raw = format!("GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
            let got = responses(&raw_exchange(addr, raw.as_bytes()).await);
            let member = if pool == "api" { &api } else { &web };
            let head = member.requests.lock().unwrap().last().map(|r| r.0.clone());
            let reached = head.is_some_and(|h| h.starts_with(&format!("GET {seen} HTTP/1.1\r\n")));
            if got != [(200, seen.to_owned())] || !reached {
                wrong.push(format!("{target}: expected {seen} at {pool}, client got {got:?}"));
            }
        }
        let seen = |m: &Scripted| m.requests.lock().unwrap().len();
        let before = (seen(&web), seen(&api));
        for target in [
            "/public/..%2Fapi",
            "/public/..%2fapi",
            "/public/..%5Capi",
            "/public\\..\\api",
            "/public/..;/api",
            "/public/%zz",
        ] {
            let raw = format!("GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
            let got = responses(&raw_exchange(addr, raw.as_bytes()).await);
            if got.len() != 1 || got[0].0 != 400 {
                wrong.push(format!("{target}: expected 400, client got {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        assert_eq!(before, (seen(&web), seen(&api)), "a refused path reached a member");
        let mut text = String::new();
        lb.render_prometheus(&mut text, true);
        assert!(
            text.contains("flotilla_lb_frontend_refused_requests_total{scale_set=\"web\",frontend=\"main\",protocol=\"http\"} 6"),
            "{text}"
        );
    })
    .await
}
