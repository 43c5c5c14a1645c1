//! The per-VM metadata endpoint: `http://10.0.2.100/` inside each guest of a local host,
//! the one way out of a guest's restricted network (issue 8's exception).
//!
//! - QEMU forwards the guest's TCP connections to `10.0.2.100:80` (`guestfwd`, which
//!   `restrict=on` lets through) into a unix socket this process listens on, one per VM:
//!   `<state_dir>/metadata/<id>.sock`, QEMU's group only. The socket is the guest's
//!   identity: a guest reaches its own endpoint and no other, and acts on its own instance.
//!   QEMU connects to the socket and reconnects within a second when it goes away (a
//!   restarted control plane).
//! - QEMU joins all of a guest's connections into one byte stream, with no sign of where
//!   one opens or closes: requests are read one after another by their `Content-Length`
//!   and answered in order, and the endpoint never closes a connection. A guest makes one
//!   request at a time and reads the answer by its `Content-Length` (curl does) or with a
//!   timeout (`timeout 2 nc 10.0.2.100 80`).
//! - Requests: `GET /` and `GET /busy` answer `{"id", "scale_set", "busy_until"}`;
//!   `PUT /busy {"seconds": N}` sets the busy lease as `PUT …/instances/{id}/busy` does
//!   (0 ends it, at most 3600) and answers the same.
//! - A hostile guest: heads above 4 KiB, bodies above 1 KiB, chunked bodies and malformed
//!   requests are refused and the stream is dropped (QEMU reconnects and the stream starts
//!   clean); a request left incomplete for 5 s is dropped (408); at most 5 lease changes
//!   in a row, then one every 5 s, and 20 reads, then 10 a second (429 with
//!   `Retry-After`). Nothing the guest sends is logged.
//!
//! Remote hosts get no endpoint: the socket would be on the wrong machine.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::{GuestHandler, GuestRefusal, GuestView};

/// The endpoint's address inside the guest (QEMU user networking's 10.0.2.0/24; .2 and .3
/// are the gateway and DNS).
pub const ADDRESS: &str = "10.0.2.100";
/// The longest request head.
const MAX_HEAD: usize = 4096;
/// The longest request body.
const MAX_BODY: usize = 1024;
/// How long a started request may wait for the rest of its bytes.
const INCOMPLETE: Duration = Duration::from_secs(5);
/// A unix socket path's limit (`sun_path`, with its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The listening sockets, one per VM of the local hosts.
pub struct Relay {
    dir: PathBuf,
    /// QEMU's group, which connects to the sockets.
    group: Option<u32>,
    runtime: tokio::runtime::Handle,
    handler: Arc<OnceLock<Arc<dyn GuestHandler>>>,
    listening: Mutex<HashMap<String, tokio::task::AbortHandle>>,
}

impl Relay {
    /// Makes `<state_dir>/metadata` (QEMU goes through it to its socket; nobody lists it).
    pub fn new(
        state_dir: &Path,
        group: Option<u32>,
        runtime: tokio::runtime::Handle,
    ) -> Result<Relay, String> {
        let dir = state_dir.join("metadata");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        super::storage::set_mode(&dir, 0o711)?;
        Ok(Relay {
            dir,
            group,
            runtime,
            handler: Arc::new(OnceLock::new()),
            listening: Mutex::new(HashMap::new()),
        })
    }

    /// Answers the guests through `handler` from now on (the first one set stays).
    pub fn serve(&self, handler: Arc<dyn GuestHandler>) {
        let _ = self.handler.set(handler);
    }

    /// VM `id`'s socket, unless its path is too long for a unix socket.
    pub fn socket(&self, id: &str) -> Option<PathBuf> {
        let path = self.dir.join(format!("{id}.sock"));
        (path.as_os_str().len() <= MAX_SOCKET_PATH).then_some(path)
    }

    /// Listens on VM `id`'s socket, unless this process already does. A failure is logged:
    /// the VM runs without its endpoint.
    pub fn ensure(&self, id: &str, scale_set: &str) {
        let mut listening = self.listening.lock().expect("relay lock");
        if listening.get(id).is_some_and(|task| !task.is_finished()) {
            return;
        }
        let Some(path) = self.socket(id) else {
            tracing::warn!(vm = %id, dir = %self.dir.display(), "no metadata endpoint: the socket's path would be too long; choose a shorter state_dir");
            return;
        };
        match self.bind(&path) {
            Ok(listener) => {
                let guest = Guest {
                    id: id.to_owned(),
                    scale_set: scale_set.to_owned(),
                    handler: self.handler.clone(),
                    limits: Arc::new(Mutex::new(Limits::new())),
                };
                let task = self.runtime.spawn(accept(listener, guest));
                listening.insert(id.to_owned(), task.abort_handle());
            }
            Err(e) => {
                tracing::warn!(vm = %id, socket = %path.display(), error = %e, "no metadata endpoint: cannot listen");
            }
        }
    }

    fn bind(&self, path: &Path) -> std::io::Result<std::os::unix::net::UnixListener> {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        let mode = if self.group.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        if let Some(group) = self.group {
            std::os::unix::fs::chown(path, None, Some(group))?;
        }
        listener.set_nonblocking(true)?;
        Ok(listener)
    }

    /// Stops listening for VM `id` and removes its socket.
    pub fn forget(&self, id: &str) {
        if let Some(task) = self.listening.lock().expect("relay lock").remove(id) {
            task.abort();
            if let Some(path) = self.socket(id) {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// Stops listening for every VM but `ids` (gone without this process deleting them).
    pub fn retain(&self, ids: &HashSet<&str>) {
        let gone: Vec<String> = self
            .listening
            .lock()
            .expect("relay lock")
            .keys()
            .filter(|id| !ids.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            self.forget(&id);
        }
    }
}

/// Who is at the other end of a socket, and what it may still ask.
#[derive(Clone)]
struct Guest {
    id: String,
    scale_set: String,
    handler: Arc<OnceLock<Arc<dyn GuestHandler>>>,
    limits: Arc<Mutex<Limits>>,
}

/// Takes QEMU's connections to one socket (one at a time in practice; a reconnect replaces
/// the last), each served until it closes. Aborting it ends them all.
async fn accept(listener: std::os::unix::net::UnixListener, guest: Guest) {
    let listener = match tokio::net::UnixListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(vm = %guest.id, error = %e, "no metadata endpoint: cannot listen");
            return;
        }
    };
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve(stream, guest.clone()));
                }
                Err(e) => {
                    tracing::warn!(vm = %guest.id, error = %e, "metadata endpoint: accept failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

/// Serves one stream of requests in order until it closes or breaks the protocol.
async fn serve(mut stream: UnixStream, guest: Guest) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        let outcome = match parse(&buffer) {
            Parsed::Partial => None,
            Parsed::Request { request, length } => {
                buffer.drain(..length);
                Some((answer(&guest, request).await, true))
            }
            Parsed::Refused(answer) => Some((answer, false)),
        };
        if let Some((answer, go_on)) = outcome {
            if stream.write_all(&answer.bytes()).await.is_err() || !go_on {
                return;
            }
            continue;
        }
        let read = if buffer.is_empty() {
            stream.read(&mut chunk).await
        } else {
            match tokio::time::timeout(INCOMPLETE, stream.read(&mut chunk)).await {
                Ok(read) => read,
                Err(_) => {
                    buffer.clear();
                    let late = Answer::problem(408, "the request's bytes stopped coming");
                    if stream.write_all(&late.bytes()).await.is_err() {
                        return;
                    }
                    continue;
                }
            }
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// One request, read from the stream.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A whole request, `length` bytes of the stream.
    Request { request: Request, length: usize },
    /// A request the endpoint refuses to read: answer, then drop the stream.
    Refused(Answer),
}

/// Reads the first request of `buffer`.
fn parse(buffer: &[u8]) -> Parsed {
    if buffer.is_empty() {
        return Parsed::Partial;
    }
    let mut headers = [httparse::EMPTY_HEADER; 24];
    let mut request = httparse::Request::new(&mut headers);
    let head = match request.parse(buffer) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) if buffer.len() > MAX_HEAD => {
            return Parsed::Refused(Answer::problem(431, "the request's head passes 4 KiB"));
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Refused(Answer::problem(431, "the request has too many headers"));
        }
        Err(e) => {
            return Parsed::Refused(Answer::problem(400, &format!("not an HTTP request: {e}")));
        }
    };
    if head > MAX_HEAD {
        return Parsed::Refused(Answer::problem(431, "the request's head passes 4 KiB"));
    }
    let mut length = 0usize;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Refused(Answer::problem(
                411,
                "send the body with a Content-Length, not chunked",
            ));
        }
        if header.name.eq_ignore_ascii_case("content-length") {
            match std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
            {
                Some(n) if n <= MAX_BODY => length = n,
                Some(_) => {
                    return Parsed::Refused(Answer::problem(413, "the body passes 1 KiB"));
                }
                None => {
                    return Parsed::Refused(Answer::problem(400, "Content-Length: not a number"));
                }
            }
        }
    }
    if buffer.len() < head + length {
        return Parsed::Partial;
    }
    Parsed::Request {
        request: Request {
            method: request.method.unwrap_or_default().to_owned(),
            path: request.path.unwrap_or_default().to_owned(),
            body: buffer[head..head + length].to_vec(),
        },
        length: head + length,
    }
}

/// `PUT /busy`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Busy {
    seconds: u32,
}

async fn answer(guest: &Guest, request: Request) -> Answer {
    let path = request.path.split('?').next().unwrap_or_default();
    let write = match (request.method.as_str(), path) {
        ("GET", "/" | "/busy") => false,
        ("PUT", "/busy") => true,
        (_, "/") => return Answer::not_allowed("GET"),
        (_, "/busy") => return Answer::not_allowed("GET, PUT"),
        _ => return Answer::problem(404, "no such path: GET /, GET /busy, PUT /busy"),
    };
    if let Err(retry) = guest
        .limits
        .lock()
        .expect("limits lock")
        .take(write, Instant::now())
    {
        return Answer::problem(429, "too many requests").retry_after(retry);
    }
    let Some(handler) = guest.handler.get() else {
        return Answer::problem(503, "the control plane is starting");
    };
    let answered = if write {
        match serde_json::from_slice::<Busy>(&request.body) {
            Ok(busy) => {
                handler
                    .set_busy(&guest.scale_set, &guest.id, busy.seconds)
                    .await
            }
            Err(e) => Err(GuestRefusal {
                status: 422,
                detail: format!("body: {e} (expected {{\"seconds\": 0 to 3600}})"),
            }),
        }
    } else {
        handler.view(&guest.scale_set, &guest.id).await
    };
    match answered {
        Ok(view) => Answer::view(&view),
        Err(refusal) => Answer::problem(refusal.status, &refusal.detail),
    }
}

/// What a guest may still ask: a token bucket for lease changes, another for reads.
struct Limits {
    changes: Bucket,
    reads: Bucket,
}

impl Limits {
    fn new() -> Limits {
        Limits {
            changes: Bucket::new(5.0, 0.2),
            reads: Bucket::new(20.0, 10.0),
        }
    }

    /// Takes a token for a change (`write`) or a read at `now`, or says in how many
    /// seconds one comes.
    fn take(&mut self, write: bool, now: Instant) -> Result<(), u64> {
        if write {
            self.changes.take(now)
        } else {
            self.reads.take(now)
        }
    }
}

struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    at: Option<Instant>,
}

impl Bucket {
    fn new(capacity: f64, per_second: f64) -> Bucket {
        Bucket {
            capacity,
            per_second,
            tokens: capacity,
            at: None,
        }
    }

    fn take(&mut self, now: Instant) -> Result<(), u64> {
        if let Some(at) = self.at {
            let refill = now.saturating_duration_since(at).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + refill).min(self.capacity);
        }
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // Whole seconds until a token, at least one.
            Err((((1.0 - self.tokens) / self.per_second).ceil() as u64).max(1))
        }
    }
}

/// An answer to write back.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Answer {
    fn view(view: &GuestView) -> Answer {
        Answer {
            status: 200,
            headers: Vec::new(),
            body: serde_json::to_string(view).expect("a view serialises"),
        }
    }

    fn problem(status: u16, detail: &str) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: serde_json::json!({"status": status, "detail": detail}).to_string(),
        }
    }

    fn not_allowed(allow: &str) -> Answer {
        let mut answer = Answer::problem(405, &format!("allowed: {allow}"));
        answer.headers.push(("allow", allow.to_owned()));
        answer
    }

    fn retry_after(mut self, seconds: u64) -> Answer {
        self.headers.push(("retry-after", seconds.to_string()));
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            409 => "Conflict",
            411 => "Length Required",
            413 => "Content Too Large",
            422 => "Unprocessable Content",
            429 => "Too Many Requests",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            _ => "Error",
        };
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\ncache-control: no-store\r\n",
            self.status,
            self.body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body.as_bytes());
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::libvirt::testing::RecordingGuests;

    fn put(seconds: &str) -> String {
        format!(
            "PUT /busy HTTP/1.0\r\nContent-Length: {}\r\n\r\n{{\"seconds\":{seconds}}}",
            seconds.len() + 12
        )
    }

    #[test]
    fn requests_are_read_one_after_another_by_their_length() {
        let stream = format!("{}GET / HTTP/1.1\r\nHost: x\r\n\r\n", put("30"));
        let Parsed::Request { request, length } = parse(stream.as_bytes()) else {
            panic!("a whole request");
        };
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("PUT", "/busy")
        );
        assert_eq!(request.body, b"{\"seconds\":30}");
        let Parsed::Request { request, .. } = parse(&stream.as_bytes()[length..]) else {
            panic!("the second request");
        };
        assert_eq!((request.method.as_str(), request.body.len()), ("GET", 0));
        // Cut anywhere, a request waits for its bytes.
        for cut in 1..put("30").len() {
            assert_eq!(
                parse(&put("30").as_bytes()[..cut]),
                Parsed::Partial,
                "{cut}"
            );
        }
    }

    #[test]
    fn hostile_requests_are_refused_before_they_are_read() {
        let status = |bytes: &[u8]| match parse(bytes) {
            Parsed::Refused(answer) => answer.status,
            other => panic!("not refused: {other:?}"),
        };
        assert_eq!(status(b"\x00\x01garbage\r\n\r\n"), 400);
        assert_eq!(status(&[b'G'; MAX_HEAD + 1]), 431);
        let long = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
        assert_eq!(status(long.as_bytes()), 431);
        let many: String = (0..40).map(|i| format!("X{i}: y\r\n")).collect();
        assert_eq!(
            status(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
            431
        );
        assert_eq!(
            status(b"PUT /busy HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            411
        );
        assert_eq!(
            status(b"PUT /busy HTTP/1.1\r\nContent-Length: 4096\r\n\r\n"),
            413
        );
        assert_eq!(
            status(b"PUT /busy HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            400
        );
    }

    #[test]
    fn changes_and_reads_are_limited_each_with_a_retry_time() {
        let mut limits = Limits::new();
        let start = Instant::now();
        for _ in 0..5 {
            assert_eq!(limits.take(true, start), Ok(()));
        }
        assert_eq!(limits.take(true, start), Err(5));
        // Reads have their own allowance.
        assert_eq!(limits.take(false, start), Ok(()));
        assert_eq!(limits.take(true, start + Duration::from_secs(5)), Ok(()));
        assert_eq!(limits.take(true, start + Duration::from_secs(6)), Err(4));
    }

    /// A fake QEMU on a real socket: requests in one stream, answered in order; a broken
    /// one ends the stream, and a reconnect starts clean.
    #[tokio::test]
    async fn a_socket_serves_the_guest_in_order_and_drops_a_broken_stream() {
        let state = tempfile::tempdir().unwrap();
        let relay = Relay::new(state.path(), None, tokio::runtime::Handle::current()).unwrap();
        let recorder = Arc::new(RecordingGuests::default());
        let leases = || -> Vec<u32> {
            let asked = recorder.asked.lock().unwrap();
            asked.iter().map(|(_, _, seconds)| *seconds).collect()
        };
        relay.serve(recorder.clone());
        relay.ensure("web-1", "web");
        let socket = relay.socket("web-1").unwrap();
        let mut qemu = UnixStream::connect(&socket).await.unwrap();
        let stream = format!(
            "{}{}GET /busy HTTP/1.0\r\n\r\nDELETE /busy HTTP/1.0\r\n\r\nGET /x HTTP/1.0\r\n\r\n",
            put("30"),
            put("99999")
        );
        qemu.write_all(stream.as_bytes()).await.unwrap();
        let answers = read_answers(&mut qemu, 5).await;
        assert_eq!(answers[0].0, 200);
        assert!(
            answers[0].1.contains("\"id\":\"web-1\""),
            "{:?}",
            answers[0]
        );
        assert!(
            answers[1].0 == 422 && answers[1].1.contains("seconds"),
            "{:?}",
            answers[1]
        );
        assert_eq!(answers[2].0, 200);
        assert_eq!((answers[3].0, answers[4].0), (405, 404));
        assert_eq!(leases(), [30]);

        // A body that is not the lease's: refused by field, nothing asked.
        let bad = "PUT /busy HTTP/1.0\r\nContent-Length: 17\r\n\r\n{\"seconds\":\"all\"}";
        qemu.write_all(bad.as_bytes()).await.unwrap();
        let answers = read_answers(&mut qemu, 1).await;
        assert!(
            answers[0].0 == 422 && answers[0].1.contains("body"),
            "{:?}",
            answers[0]
        );
        assert_eq!(leases(), [30]);

        // Garbage: answered 400, and the stream ends.
        qemu.write_all(b"\x16\x03\x01 hello\r\n\r\n").await.unwrap();
        assert_eq!(read_answers(&mut qemu, 1).await[0].0, 400);
        let mut rest = Vec::new();
        qemu.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        // QEMU's reconnect is served afresh.
        let mut qemu = UnixStream::connect(&socket).await.unwrap();
        qemu.write_all(put("0").as_bytes()).await.unwrap();
        assert_eq!(read_answers(&mut qemu, 1).await[0].0, 200);
        assert_eq!(leases(), [30, 0]);

        // Forgetting the VM closes its socket.
        relay.forget("web-1");
        assert!(!socket.exists());
        assert!(UnixStream::connect(&socket).await.is_err());
    }

    /// Reads `n` answers: (status, body).
    async fn read_answers(stream: &mut UnixStream, n: usize) -> Vec<(u16, String)> {
        let mut buffer = Vec::new();
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        while out.len() < n {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut response = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(head)) = response.parse(&buffer) {
                let length: usize = response
                    .headers
                    .iter()
                    .find(|h| h.name == "content-length")
                    .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                    .unwrap();
                if buffer.len() >= head + length {
                    let status = response.code.unwrap();
                    out.push((
                        status,
                        String::from_utf8(buffer[head..head + length].to_vec()).unwrap(),
                    ));
                    buffer.drain(..head + length);
                    continue;
                }
            }
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
                .await
                .expect("an answer within 5 s")
                .unwrap();
            assert!(n > 0, "the stream ended after {} answers", out.len());
            buffer.extend_from_slice(&chunk[..n]);
        }
        out
    }
}
