//! Frontend lifecycle, TLS termination and the L4 proxy, on real sockets.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use flotilla_lb::{Algorithm, FrontendConfig, LbError, LoadBalancer, Member, Protocol};

fn tls_connector(cert_pem: &str, alpn: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_terminates_tls_over_http1_and_h2() {
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
        lb.upsert_frontend(config).await.unwrap();
        let addr = lb.local_addr("web", "tls").unwrap();
        let name = ServerName::try_from("localhost").unwrap();

        // HTTP/1.1
        let tls = tls_connector(&cert, b"http/1.1")
            .connect(name.clone(), TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        let mut client = Client::over(tls).await;
        for _ in 0..3 {
            let r = client.get("/").await;
            assert_eq!((r.status, r.upstream()), (200, "a"));
            assert_eq!(r.seen("x-forwarded-proto"), Some("https"));
        }

        // HTTP/2: the member still gets HTTP/1.1 with a Host header.
        let tls = tls_connector(&cert, b"h2")
            .connect(name, TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::get("https://example.test/h2?x=1")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = String::from_utf8(
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap();
        assert!(body.starts_with("a\n"), "{body}");
        assert!(body.contains("host: example.test\n"), "{body}");
        assert!(body.contains("x-forwarded-host: example.test\n"), "{body}");
        assert_eq!(lb.stats()[0].protocol, "https");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_with_the_field_or_port() {
    bounded(async {
        let lb = LoadBalancer::new();
        let (cert, key) = self_signed();
        let mut config = FrontendConfig::http("web", "tls", localhost0());
        config.protocol = Protocol::Https {
            certificate_pem: "-----BEGIN NONSENSE".into(),
            private_key_pem: key,
        };
        match lb.upsert_frontend(config).await {
            Err(LbError::Tls { field, .. }) => assert_eq!(field, "certificate_pem"),
            other => panic!("{other:?}"),
        }
        let (_, other_key) = self_signed();
        let mut config = FrontendConfig::http("web", "tls", localhost0());
        config.protocol = Protocol::Https {
            certificate_pem: cert,
            private_key_pem: other_key,
        };
        match lb.upsert_frontend(config).await {
            Err(LbError::Tls { field, .. }) => assert_eq!(field, "private_key_pem"),
            other => panic!("{other:?}"),
        }
        assert!(lb.frontends().is_empty());

        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = taken.local_addr().unwrap().port();
        match lb
            .upsert_frontend(FrontendConfig::http(
                "web",
                "main",
                taken.local_addr().unwrap(),
            ))
            .await
        {
            Err(LbError::Bind { port: p, .. }) => assert_eq!(p, port),
            other => panic!("{other:?}"),
        }
        assert!(lb.frontends().is_empty());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfiguration_keeps_or_moves_the_listener() {
    bounded(async {
        let a = Upstream::start("a").await;
        let b = Upstream::start("b").await;
        let (lb, addr) = http_lb(|_| {}, vec![a.member(), b.member()]).await;
        let mut client = Client::connect(addr).await;
        assert_eq!(client.get("/").await.status, 200);

        // Same address: the open keep-alive connection sees the new algorithm.
        let mut config = FrontendConfig::http("web", "main", localhost0());
        config.algorithm = Algorithm::IpHash;
        lb.upsert_frontend(config.clone()).await.unwrap();
        assert_eq!(lb.local_addr("web", "main"), Some(addr));
        let first = client.get("/").await.upstream().to_owned();
        for _ in 0..5 {
            assert_eq!(client.get("/").await.upstream(), first);
        }

        // A move to a taken port fails and leaves the old listener serving.
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        config.listen = taken.local_addr().unwrap();
        assert!(matches!(
            lb.upsert_frontend(config.clone()).await,
            Err(LbError::Bind { .. })
        ));
        assert_eq!(lb.local_addr("web", "main"), Some(addr));
        assert_eq!(get(addr, "/").await.status, 200);

        // A move to a free port: new address serves, old one closes.
        let free = dead_addr().await;
        config.listen = free;
        lb.upsert_frontend(config).await.unwrap();
        assert_eq!(lb.local_addr("web", "main"), Some(free));
        assert_eq!(get(free, "/").await.status, 200);
        let mut refused = false;
        for _ in 0..100 {
            if TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refused, "old listener still accepting");

        lb.remove_frontend("web", "main").await;
        assert!(lb.frontends().is_empty());
        assert!(TcpStream::connect(free).await.is_err());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_lets_in_flight_requests_finish() {
    bounded(async {
        let a = Upstream::start("a").await;
        let (lb, addr) = http_lb(|_| {}, vec![a.member()]).await;
        let slow = tokio::spawn(async move { get(addr, "/slow/400").await });
        while a.hits() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        lb.remove_frontend("web", "main").await;
        assert_eq!(slow.await.unwrap().status, 200);
        lb.shutdown().await;
    })
    .await
}

/// A TCP upstream that greets with its name, then echoes.
async fn echo(name: &'static str) -> (Member, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                s.write_all(format!("{name}\n").as_bytes()).await.unwrap();
                let mut buf = [0u8; 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => s.write_all(&buf[..n]).await.unwrap(),
                    }
                }
            });
        }
    });
    (Member::new(name, addr), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_round_robins_connections_and_counts_bytes() {
    bounded(async {
        let (m1, _t1) = echo("one").await;
        let (m2, _t2) = echo("two").await;
        let (m3, _t3) = echo("tri").await;
        let lb = LoadBalancer::new();
        lb.set_pool(
            "db",
            vec![Member::new("dead", dead_addr().await), m1, m2, m3],
        );
        let mut config = FrontendConfig::http("db", "pg", localhost0());
        config.protocol = Protocol::Tcp;
        lb.upsert_frontend(config).await.unwrap();
        let addr = lb.local_addr("db", "pg").unwrap();

        let mut by = HashMap::<String, usize>::new();
        let mut open = Vec::new();
        for _ in 0..6 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(b"ping").await.unwrap();
            let mut echo = [0u8; 4];
            s.read_exact(&mut echo).await.unwrap();
            assert_eq!(&echo, b"ping");
            *by.entry(String::from_utf8_lossy(&buf[..3]).into_owned())
                .or_default() += 1;
            open.push(s);
        }
        assert_eq!(
            by.values().copied().collect::<Vec<_>>(),
            [2, 2, 2],
            "{by:?}"
        );
        let s = &lb.stats()[0];
        assert_eq!(
            (s.protocol.as_str(), s.requests, s.active_connections),
            ("tcp", 6, 6)
        );
        assert_eq!((s.bytes_in, s.bytes_out), (6 * 4, 6 * 8));
        let live: u64 = s.backends.iter().map(|b| b.active).sum();
        assert_eq!(live, 6);

        // drain waits for the connections to close.
        let victim = s.backends.iter().find(|b| b.id == "one").unwrap().clone();
        assert_eq!(victim.active, 2);
        assert!(!lb.drain("one", Duration::from_millis(100)).await);
        drop(open);
        assert!(lb.drain("one", Duration::from_secs(5)).await);
    })
    .await
}
