//! Fixtures for the black-box tests: upstreams with scripted behaviour, a tiny HTTP client,
//! and a bound on every test.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use flotilla_lb::{FrontendConfig, LoadBalancer, Member};

/// Fails the test instead of hanging it.
pub async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test timed out")
}

/// An HTTP upstream answering `<name>\n` followed by the request headers, one per line.
/// `/slow/<ms>` waits first; `/hang` never answers.
pub struct Upstream {
    pub name: String,
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    /// TCP connections accepted.
    pub conns: Arc<AtomicUsize>,
    /// The most requests it was answering at once.
    most: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Upstream {
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let conns = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let (n, h, c, m) = (name.to_owned(), hits.clone(), conns.clone(), most.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                let (n, h, m, f) = (n.clone(), h.clone(), m.clone(), in_flight.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (n, h, m, f) = (n.clone(), h.clone(), m.clone(), f.clone());
                        async move {
                            h.fetch_add(1, Ordering::SeqCst);
                            m.fetch_max(f.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                            let path = req.uri().path().to_owned();
                            if let Some(ms) = path.strip_prefix("/slow/") {
                                tokio::time::sleep(Duration::from_millis(ms.parse().unwrap()))
                                    .await;
                            }
                            if path == "/hang" {
                                std::future::pending::<()>().await;
                            }
                            let mut text = format!("{n}\n");
                            for (k, v) in req.headers() {
                                text.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
                            }
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            text.push_str(&format!("body-bytes: {}\n", body.len()));
                            f.fetch_sub(1, Ordering::SeqCst);
                            Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(text))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            name: name.to_owned(),
            addr,
            hits,
            conns,
            most,
            task,
        }
    }

    pub fn member(&self) -> Member {
        Member::new(&self.name, self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The most requests it was answering at once so far.
    pub fn most_at_once(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }

    /// Stops listening (open connections live on in their own tasks).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections, reads the request and answers bytes that are not HTTP.
pub async fn garbage_upstream() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"SSH-2.0-OpenSSH_9.0 \x00\x01\xff\r\n\r\n")
                    .await;
            });
        }
    });
    (addr, task)
}

/// What a [`scripted_upstream`] does for one request: writes `pieces` one by one (pausing
/// briefly between them, so that they arrive apart), then closes the connection if `close`.
pub struct Script {
    pub pieces: Vec<Vec<u8>>,
    pub close: bool,
}

impl Script {
    pub fn keep(pieces: &[&[u8]]) -> Self {
        Self {
            pieces: pieces.iter().map(|p| p.to_vec()).collect(),
            close: false,
        }
    }

    pub fn close(pieces: &[&[u8]]) -> Self {
        Self {
            close: true,
            ..Self::keep(pieces)
        }
    }
}

/// A raw HTTP/1.1 upstream: for each request (head read to its blank line, then a
/// `Content-Length` or chunked body), answers what `script(method, path)` says. Records
/// each request head and body, and counts connections.
/// A request as a [`Scripted`] upstream got it: its head and its (decoded) body.
pub type Recorded = (String, Vec<u8>);

pub struct Scripted {
    pub addr: SocketAddr,
    pub conns: Arc<AtomicUsize>,
    pub requests: Arc<std::sync::Mutex<Vec<Recorded>>>,
    task: JoinHandle<()>,
}

impl Scripted {
    pub fn member(&self, id: &str) -> Member {
        Member::new(id, self.addr)
    }

    pub fn conns(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn scripted_upstream(script: fn(&str, &str) -> Script) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c, r) = (conns.clone(), requests.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            c.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some((head, body)) = read_request(&mut s, &mut buf).await else {
                        return;
                    };
                    let mut line = head.split(' ');
                    let (method, path) = (line.next().unwrap_or(""), line.next().unwrap_or(""));
                    let answer = script(method, path);
                    r.lock().unwrap().push((head.clone(), body));
                    for (i, piece) in answer.pieces.iter().enumerate() {
                        if i > 0 {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        if s.write_all(piece).await.is_err() {
                            return;
                        }
                    }
                    if answer.close {
                        return;
                    }
                }
            });
        }
    });
    Scripted {
        addr,
        conns,
        requests,
        task,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One request from `s` (bytes already read are in `buf`): its head and decoded body.
async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    async fn more(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).await.ok()?;
        (n > 0).then(|| buf.extend_from_slice(&chunk[..n]))
    }
    let end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        more(s, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if lower.contains("transfer-encoding: chunked") {
        loop {
            let line = loop {
                if let Some(i) = find(buf, b"\r\n") {
                    break i;
                }
                more(s, buf).await?;
            };
            let size = usize::from_str_radix(std::str::from_utf8(&buf[..line]).ok()?, 16).ok()?;
            buf.drain(..line + 2);
            while buf.len() < size + 2 {
                more(s, buf).await?;
            }
            body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
            if size == 0 {
                break;
            }
        }
    } else if let Some(len) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        while buf.len() < len {
            more(s, buf).await?;
        }
        body = buf.drain(..len).collect();
    }
    Some((head, body))
}

/// Accepts connections and reads forever, never answering.
pub async fn hanging_upstream() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            held.push(s);
        }
    });
    (addr, task)
}

/// An address where nothing listens (connections are refused).
pub async fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

pub fn localhost0() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A load balancer with one HTTP frontend `web/main` on an ephemeral port.
pub async fn http_lb(
    config: impl FnOnce(&mut FrontendConfig),
    members: Vec<Member>,
) -> (LoadBalancer, SocketAddr) {
    let lb = LoadBalancer::new();
    lb.set_pool("web", members);
    let mut c = FrontendConfig::http("web", "main", localhost0());
    config(&mut c);
    lb.upsert_frontend(c).await.unwrap();
    let addr = lb.local_addr("web", "main").unwrap();
    (lb, addr)
}

pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Reply {
    /// First line of an upstream's answer: its name.
    pub fn upstream(&self) -> &str {
        self.body.lines().next().unwrap_or("")
    }

    /// A request header as the upstream saw it.
    pub fn seen(&self, header: &str) -> Option<&str> {
        self.body
            .lines()
            .find_map(|l| l.strip_prefix(header)?.strip_prefix(": "))
    }
}

/// One HTTP/1.1 keep-alive connection.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        Self::over(stream).await
    }

    pub async fn over<I>(io: I) -> Self
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .unwrap();
        tokio::spawn(conn);
        Self { sender }
    }

    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Reply {
        self.sender.ready().await.unwrap();
        let resp = self.sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send(req("GET", path, "")).await
    }

    /// Whether the server closed the connection.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

pub fn req(method: &str, path: &str, body: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "example.test")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

/// A request on a new connection.
pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    Client::connect(addr).await.get(path).await
}

pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> Reply {
    Client::connect(addr).await.send(req).await
}

/// Writes `bytes` on a new raw connection and reads until the frontend closes it.
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut got = Vec::new();
    // A reset after the last response (unread request bytes) ends the exchange as well.
    let _ = s.read_to_end(&mut got).await;
    got
}

/// The responses in `raw` (status and body), in order; bodies are delimited by their
/// `content-length` (the frontend gives every short answer one).
pub fn responses(raw: &[u8]) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some(end) = find(rest, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let body = &rest[end + 4..(end + 4 + len).min(rest.len())];
        out.push((status, String::from_utf8_lossy(body).into_owned()));
        rest = &rest[end + 4 + body.len()..];
    }
    out
}

/// A scripted upstream answer: 200 with the request path as its body.
pub fn echo_path(_method: &str, path: &str) -> Script {
    Script {
        pieces: vec![
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{path}",
                path.len()
            )
            .into_bytes(),
        ],
        close: false,
    }
}

/// A self-signed certificate for `localhost` and its key, as PEM.
pub fn self_signed() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    (c.cert.pem(), c.key_pair.serialize_pem())
}
