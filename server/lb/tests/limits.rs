//! Limits and stall timeouts on real sockets: connection limits, member caps, L4 idle and
//! write timeouts, response bodies that stall on either side, HTTP/2 and header limits.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use flotilla_lb::{FrontendConfig, LoadBalancer, Member, Protocol};

const SHORT: Duration = Duration::from_millis(300);

/// A member that, on each connection, reads a little, writes `head` (if any), then writes
/// zeros as fast as it is allowed until the connection fails; `cut` is set then.
async fn flooding_upstream(head: &'static [u8]) -> (Flood, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cut = Arc::new(AtomicBool::new(false));
    let flag = cut.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let flag = flag.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                if !head.is_empty() {
                    let _ = s.read(&mut buf).await;
                }
                let chunk = vec![0u8; 64 << 10];
                let mut result = s.write_all(head).await;
                while result.is_ok() {
                    result = s.write_all(&chunk).await;
                }
                flag.store(true, Ordering::SeqCst);
            });
        }
    });
    (Flood { addr, _task: task }, cut)
}

struct Flood {
    addr: std::net::SocketAddr,
    _task: tokio::task::JoinHandle<()>,
}

/// Waits (bounded by the test's own bound) until `cond` holds.
async fn until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn connection_limit_waits(lb: &LoadBalancer) -> u64 {
    let text = prometheus(lb);
    let line = text
        .lines()
        .find(|l| l.starts_with("flotilla_lb_frontend_connection_limit_waits_total{"))
        .unwrap_or_else(|| panic!("{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn prometheus(lb: &LoadBalancer) -> String {
    let mut text = String::new();
    lb.render_prometheus(&mut text, true);
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_holds_new_connections_until_one_closes() {
    bounded(async {
        let a = Upstream::start("a").await;
        let (lb, addr) = http_lb(|c| c.limits.max_connections = Some(2), vec![a.member()]).await;
        let mut first = Client::connect(addr).await;
        let mut second = Client::connect(addr).await;
        assert_eq!(first.get("/").await.status, 200);
        assert_eq!(second.get("/").await.status, 200);
        // The third connects (the kernel's backlog) but is not served...
        let third = tokio::spawn(async move { get(addr, "/").await });
        tokio::time::sleep(SHORT).await;
        assert!(!third.is_finished(), "served beyond max_connections");
        assert_eq!(lb.stats()[0].active_connections, 2);
        // ...until one closes.
        drop(first);
        assert_eq!(third.await.unwrap().status, 200);
        assert_eq!(second.get("/").await.status, 200);
        assert!(connection_limit_waits(&lb) >= 1);
        // A raised limit applies at once, even to an accept loop that is waiting.
        let _held = Client::connect(addr).await;
        let waiting = tokio::spawn(async move { get(addr, "/").await });
        tokio::time::sleep(SHORT).await;
        assert!(!waiting.is_finished());
        let mut config = FrontendConfig::http("web", "main", localhost0());
        config.limits.max_connections = None;
        lb.upsert_frontend(config).await.unwrap();
        assert_eq!(waiting.await.unwrap().status, 200);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_at_their_cap_get_nothing_and_503_comes_at_once() {
    bounded(async {
        let a = Upstream::start("a").await;
        let b = Upstream::start("b").await;
        let (lb, addr) = http_lb(
            |c| c.limits.max_connections_per_member = Some(1),
            vec![a.member(), b.member()],
        )
        .await;
        let slow: Vec<_> = (0..2)
            .map(|_| tokio::spawn(async move { get(addr, "/slow/800").await }))
            .collect();
        until(|| a.hits() + b.hits() == 2).await;
        // One each: both at their cap.
        assert_eq!((a.hits(), b.hits()), (1, 1));
        let started = Instant::now();
        let r = get(addr, "/").await;
        assert_eq!(r.status, 503);
        assert!(r.body.contains("cap"), "{}", r.body);
        assert!(started.elapsed() < Duration::from_millis(500), "503 was not immediate");
        for s in slow {
            assert_eq!(s.await.unwrap().status, 200);
        }
        assert_eq!(get(addr, "/").await.status, 200);
        assert!(prometheus(&lb).contains(
            "flotilla_lb_frontend_member_cap_refusals_total{scale_set=\"web\",frontend=\"main\",protocol=\"http\"} 1"
        ));
    })
    .await
}

/// An L4 frontend on `db/pg` in front of `member`.
async fn tcp_lb(
    member: Member,
    config: impl FnOnce(&mut FrontendConfig),
) -> (LoadBalancer, std::net::SocketAddr) {
    let lb = LoadBalancer::new();
    lb.set_pool("db", vec![member]);
    let mut c = FrontendConfig::http("db", "pg", localhost0());
    c.protocol = Protocol::Tcp;
    config(&mut c);
    lb.upsert_frontend(c).await.unwrap();
    let addr = lb.local_addr("db", "pg").unwrap();
    (lb, addr)
}

/// A TCP member that echoes what it reads.
async fn echo_member() -> (Member, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (Member::new("echo", addr), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_silent_for_the_idle_timeout_are_closed() {
    bounded(async {
        let (member, _task) = echo_member().await;
        let (_lb, addr) = tcp_lb(member, |c| c.timeouts.tcp_idle = SHORT).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        // Traffic keeps it open well past the idle timeout.
        for _ in 0..6 {
            tokio::time::sleep(SHORT / 3).await;
            s.write_all(b"ping").await.unwrap();
            let mut echo = [0u8; 4];
            s.read_exact(&mut echo).await.unwrap();
        }
        // Silence closes it.
        let silent = Instant::now();
        let mut buf = [0u8; 8];
        assert_eq!(s.read(&mut buf).await.unwrap_or(0), 0);
        let after = silent.elapsed();
        // The proxy's clock started when it wrote the last echo, a little before `silent`.
        assert!(
            after >= SHORT - Duration::from_millis(100),
            "closed after {after:?}"
        );
        assert!(after < Duration::from_secs(3), "closed after {after:?}");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_peers_that_stop_reading_are_cut_off() {
    bounded(async {
        let (flood, cut) = flooding_upstream(b"").await;
        let (lb, addr) = tcp_lb(Member::new("flood", flood.addr), |c| {
            c.timeouts.write = SHORT;
        })
        .await;
        // A client that never reads: the member's bytes pile up, then the connection goes.
        let _client = TcpStream::connect(addr).await.unwrap();
        until(|| cut.load(Ordering::SeqCst)).await;
        until(|| lb.stats()[0].active_connections == 0).await;
        assert_eq!(lb.stats()[0].backends[0].active, 0);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stop_reading_a_response_are_cut_off() {
    bounded(async {
        let (flood, cut) =
            flooding_upstream(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000000000\r\n\r\n").await;
        let (lb, addr) = http_lb(
            |c| c.timeouts.write = SHORT,
            vec![Member::new("flood", flood.addr)],
        )
        .await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        // The client reads nothing: the proxy stops reading the member, its write times
        // out, and both connections close.
        until(|| cut.load(Ordering::SeqCst)).await;
        until(|| lb.stats()[0].active_connections == 0).await;
        assert_eq!(lb.stats()[0].backends[0].active, 0);
    })
    .await
}

fn stalling(_method: &str, path: &str) -> Script {
    match path {
        // Promises ten bytes, sends three, then keeps the connection open and silent.
        "/stall" => Script::keep(&[b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"]),
        _ => echo_path(_method, path),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_stalling_mid_body_is_cut_off() {
    bounded(async {
        let member = scripted_upstream(stalling).await;
        let (lb, addr) = http_lb(|c| c.timeouts.body_read = SHORT, vec![member.member("m")]).await;
        let started = Instant::now();
        let raw = raw_exchange(addr, b"GET /stall HTTP/1.1\r\nhost: x\r\n\r\n").await;
        let elapsed = started.elapsed();
        assert!(
            elapsed >= SHORT - Duration::from_millis(20),
            "cut after {elapsed:?}"
        );
        assert!(elapsed < Duration::from_secs(3), "cut after {elapsed:?}");
        // The client's response is cut short too: its promised length never arrives.
        let got = String::from_utf8_lossy(&raw);
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        let body = got.find("\r\n\r\n").map_or(0, |i| got.len() - i - 4);
        assert!(body < 10, "{got}");
        let backend = &lb.stats()[0].backends[0];
        assert_eq!((backend.failures, backend.active), (1, 0));
        // The stalled connection was not pooled.
        assert_eq!(get(addr, "/next").await.body, "/next");
        assert_eq!(member.conns(), 2);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_heads_are_refused() {
    bounded(async {
        let a = Upstream::start("a").await;
        let (_lb, addr) = http_lb(|c| c.limits.max_header_bytes = 4096, vec![a.member()]).await;
        let mut r = req("GET", "/", "");
        r.headers_mut()
            .insert("x-big", "x".repeat(8000).parse().unwrap());
        assert_eq!(send(addr, r).await.status, 431);
        assert_eq!(a.hits(), 0);
        let mut r = req("GET", "/", "");
        r.headers_mut()
            .insert("x-fits", "x".repeat(2000).parse().unwrap());
        assert_eq!(send(addr, r).await.status, 200);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_get_the_stream_and_header_limits() {
    use rustls_pki_types::pem::PemObject;
    bounded(async {
        let a = Upstream::start("a").await;
        let (cert, key) = self_signed();
        let lb = LoadBalancer::new();
        lb.set_pool("web", vec![a.member()]);
        let mut config = FrontendConfig::http("web", "tls", localhost0());
        config.protocol = Protocol::Https {
            certificate_pem: cert.clone(),
            private_key_pem: key,
        };
        config.limits.http2_max_concurrent_streams = 2;
        config.limits.max_header_bytes = 4096;
        lb.upsert_frontend(config).await.unwrap();
        let addr = lb.local_addr("web", "tls").unwrap();

        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap())
            .unwrap();
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec()];
        let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(
                rustls_pki_types::ServerName::try_from("localhost").unwrap(),
                TcpStream::connect(addr).await.unwrap(),
            )
            .await
            .unwrap();
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let request = |path: &str, header: usize| {
            hyper::Request::get(format!("https://example.test{path}"))
                .header("x-pad", "x".repeat(header))
                .body(Full::new(Bytes::new()))
                .unwrap()
        };

        // Once the client has the server's settings (after a first exchange), six slow
        // requests at once: the member never has more than two of them. (Streams opened
        // before the settings arrive beyond the limit are refused with REFUSED_STREAM.)
        // Counted at the member: a stream frees only once its answer reached the client,
        // after the member was done with it (the load balancer's own gauge may still count
        // a finished request for a moment).
        let mut s = sender.clone();
        assert_eq!(s.send_request(request("/", 1)).await.unwrap().status(), 200);
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let mut s = sender.clone();
            let r = request("/slow/200", 1);
            tasks.push(tokio::spawn(async move {
                s.ready().await.unwrap();
                s.send_request(r).await.unwrap().status()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200);
        }
        let most = a.most_at_once();
        assert!(
            (1..=2).contains(&most),
            "{most} requests in flight on one connection"
        );

        // A header list over the limit never reaches the member.
        let hits = a.hits();
        let mut s = sender.clone();
        s.ready().await.unwrap();
        let refused = s.send_request(request("/", 8000)).await;
        assert!(
            refused.as_ref().map_or(true, |r| r.status() == 431),
            "{:?}",
            refused.map(|r| r.status())
        );
        assert_eq!(a.hits(), hits);
    })
    .await
}
