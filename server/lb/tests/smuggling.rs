//! Request smuggling end to end (RFC 9112 §6.1, §6.3, §7.6.1): raw clients send the classic
//! ambiguous shapes (CL.TE, TE.CL, TE.TE, hop-by-hop framing headers) to a frontend whose
//! member is a raw HTTP/1.1 server that records every request it parses. Whatever the shape,
//! the member never parses a request the client did not frame as one, and no client gets
//! an answer meant for another request.

mod common;

use std::time::Duration;

use common::*;

/// What a desynchronised hop would take for a request of its own.
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n";
/// Sent after each case on the same connection: ends the exchange (`Connection: close`)
/// when the case left the connection open.
const LAST: &str = "GET /last HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

#[derive(Debug)]
enum Expect {
    /// 400 and the connection closed; the member sees nothing.
    Refused,
    /// Forwarded once, as `POST /` with this body. `closes`: the frontend closes the
    /// connection after answering (RFC 9112 §6.3 for CL+TE), so `LAST` is never read.
    Once { body: String, closes: bool },
}

fn once(body: &str) -> Expect {
    Expect::Once {
        body: body.to_owned(),
        closes: false,
    }
}

fn once_then_close(body: &str) -> Expect {
    Expect::Once {
        body: body.to_owned(),
        closes: true,
    }
}

fn post(headers: &str, body: &str) -> String {
    format!("POST / HTTP/1.1\r\nhost: x\r\n{headers}\r\n{body}")
}

/// `data` as one chunk and the last chunk.
fn chunked(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n0\r\n\r\n", data.len())
}

/// Runs each case on its own connection against one frontend and one member (whose
/// keep-alive connections are shared by the cases, as by unrelated clients).
async fn run(cases: Vec<(&str, String, Expect)>) {
    let member = scripted_upstream(echo_path).await;
    let (_lb, addr) = http_lb(
        |c| c.timeouts.client_idle = Duration::from_secs(2),
        vec![member.member("m")],
    )
    .await;
    let mut failures = Vec::new();
    for (name, request, expect) in cases {
        let seen_before = member.requests.lock().unwrap().len();
        let raw = raw_exchange(addr, format!("{request}{LAST}").as_bytes()).await;
        let got = responses(&raw);
        let seen: Vec<(String, String)> = member.requests.lock().unwrap()[seen_before..]
            .iter()
            .map(|(head, body)| {
                let line = head.lines().next().unwrap_or("").to_owned();
                (line, String::from_utf8_lossy(body).into_owned())
            })
            .collect();
        let line = |path: &str| {
            format!(
                "{} {path} HTTP/1.1",
                if path == "/" { "POST" } else { "GET" }
            )
        };
        let (want_responses, want_seen) = match &expect {
            Expect::Refused => (vec![400], vec![]),
            Expect::Once { body, closes: true } => (vec![200], vec![(line("/"), body.clone())]),
            Expect::Once {
                body,
                closes: false,
            } => (
                vec![200, 200],
                vec![(line("/"), body.clone()), (line("/last"), String::new())],
            ),
        };
        let statuses: Vec<u16> = got.iter().map(|r| r.0).collect();
        // Each answer is the one for its own request.
        let misrouted = got
            .iter()
            .zip(["/", "/last"])
            .any(|((status, body), path)| *status == 200 && body != path);
        if statuses != want_responses || seen != want_seen || misrouted {
            failures.push(format!(
                "{name}: expected {expect:?}\n  client got {got:?}\n  member saw {seen:?}"
            ));
        }
    }
    // Nothing any case sent reached the member as a request of its own.
    let smuggled: Vec<String> = member
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|(head, _)| head.clone())
        .filter(|head| !(head.starts_with("POST / ") || head.starts_with("GET /last ")))
        .collect();
    assert!(
        failures.is_empty() && smuggled.is_empty(),
        "{}
requests the member parsed that no client sent: {smuggled:?}",
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_connection_options_never_unframe_a_body() {
    bounded(run(vec![
        (
            "Connection: content-length",
            post(
                &format!(
                    "connection: content-length\r\ncontent-length: {}\r\n",
                    SMUGGLED.len()
                ),
                SMUGGLED,
            ),
            once(SMUGGLED),
        ),
        (
            "Connection: keep-alive, Content-Length",
            post(
                &format!(
                    "connection: keep-alive, Content-Length\r\ncontent-length: {}\r\n",
                    SMUGGLED.len()
                ),
                SMUGGLED,
            ),
            once(SMUGGLED),
        ),
        (
            "Connection: transfer-encoding",
            post(
                "connection: transfer-encoding\r\ntransfer-encoding: chunked\r\n",
                &chunked(SMUGGLED),
            ),
            once(SMUGGLED),
        ),
        (
            "Connection: close, content-length",
            post(
                &format!(
                    "connection: close, content-length\r\ncontent-length: {}\r\n",
                    SMUGGLED.len()
                ),
                SMUGGLED,
            ),
            once_then_close(SMUGGLED),
        ),
    ]))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_is_never_stripped_nor_repeated() {
    bounded(async {
        let member = scripted_upstream(echo_path).await;
        let (_lb, addr) = http_lb(|_| {}, vec![member.member("m")]).await;
        let raw = raw_exchange(
            addr,
            b"GET /h HTTP/1.1\r\nhost: example.test\r\nconnection: host, close\r\n\r\n",
        )
        .await;
        assert_eq!(responses(&raw), [(200, "/h".to_owned())]);
        let head = member.requests.lock().unwrap()[0].0.clone();
        assert!(head.contains("\r\nhost: example.test\r\n"), "{head}");
    })
    .await;
    // Two hosts: the proxy and a member could route on different ones (RFC 9112 §3.2).
    bounded(run(vec![(
        "two Host lines",
        post("host: admin.internal\r\n", ""),
        Expect::Refused,
    )]))
    .await
}

/// CL.TE and TE.CL: `Transfer-Encoding` frames the body, the member gets it re-framed
/// (never the client's `Content-Length`), and the client connection is closed after the
/// answer, so bytes past the chunked body are never read as a request (RFC 9112 §6.3 ¶3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_with_transfer_encoding_is_framed_once_and_closes() {
    let tail = format!("0\r\n\r\n{SMUGGLED}");
    bounded(run(vec![
        (
            "CL.TE",
            post(
                &format!(
                    "content-length: {}\r\ntransfer-encoding: chunked\r\n",
                    tail.len()
                ),
                &tail,
            ),
            once_then_close(""),
        ),
        (
            "TE.CL",
            post(
                "transfer-encoding: chunked\r\ncontent-length: 4\r\n",
                &chunked(SMUGGLED),
            ),
            once_then_close(SMUGGLED),
        ),
        (
            "CL.TE with the length first",
            post(
                "content-length: 4\r\ntransfer-encoding: chunked\r\n",
                &chunked(SMUGGLED),
            ),
            once_then_close(SMUGGLED),
        ),
    ]))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obfuscated_transfer_encodings_are_refused() {
    let body = chunked(SMUGGLED);
    let te = |value: &str| post(&format!("transfer-encoding:{value}\r\n"), &body);
    bounded(run(vec![
        (
            "TE.TE chunked then identity",
            post(
                "transfer-encoding: chunked\r\ntransfer-encoding: identity\r\n",
                &body,
            ),
            Expect::Refused,
        ),
        (
            "TE.TE identity then chunked",
            post(
                "transfer-encoding: identity\r\ntransfer-encoding: chunked\r\n",
                &body,
            ),
            Expect::Refused,
        ),
        (
            "TE.TE chunked twice",
            post(
                "transfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n",
                &body,
            ),
            Expect::Refused,
        ),
        (
            "chunked, identity",
            te(" chunked, identity"),
            Expect::Refused,
        ),
        (
            "identity, chunked",
            te(" identity, chunked"),
            Expect::Refused,
        ),
        ("gzip, chunked", te(" gzip, chunked"), Expect::Refused),
        ("chunked, chunked", te(" chunked, chunked"), Expect::Refused),
        ("xchunked", te(" xchunked"), Expect::Refused),
        ("chunkedx", te(" chunkedx"), Expect::Refused),
        ("quoted", te(" \"chunked\""), Expect::Refused),
        ("vertical tab", te(" \x0bchunked"), Expect::Refused),
        ("empty", te(""), Expect::Refused),
        (
            "space before the colon",
            post("transfer-encoding : chunked\r\n", &body),
            Expect::Refused,
        ),
        (
            "tab before the colon",
            post("transfer-encoding\t: chunked\r\n", &body),
            Expect::Refused,
        ),
        (
            "obs-fold value",
            post("transfer-encoding:\r\n chunked\r\n", &body),
            Expect::Refused,
        ),
        (
            "obs-fold line",
            post("x-a: 1\r\n transfer-encoding: chunked\r\n", &body),
            Expect::Refused,
        ),
        (
            "HTTP/1.0 with chunked",
            format!("POST / HTTP/1.0\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n{body}"),
            Expect::Refused,
        ),
        // Optional whitespace and case are not obfuscation: the same single coding.
        ("tab as OWS", te("\tchunked"), once(SMUGGLED)),
        ("trailing OWS", te(" chunked \t"), once(SMUGGLED)),
        ("upper case", te(" CHUNKED"), once(SMUGGLED)),
    ]))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_or_conflicting_content_lengths_are_refused() {
    let n = SMUGGLED.len();
    let cl = |value: String| post(&format!("content-length:{value}\r\n"), SMUGGLED);
    bounded(run(vec![
        (
            "two differing",
            post(
                &format!("content-length: {n}\r\ncontent-length: 5\r\n"),
                SMUGGLED,
            ),
            Expect::Refused,
        ),
        ("list of differing", cl(format!(" {n}, 5")), Expect::Refused),
        ("list of equal", cl(format!(" {n}, {n}")), Expect::Refused),
        ("plus sign", cl(format!(" +{n}")), Expect::Refused),
        ("minus sign", cl(" -1".into()), Expect::Refused),
        ("hex", cl(" 0x10".into()), Expect::Refused),
        ("decimal point", cl(format!(" {n}.0")), Expect::Refused),
        ("underscore", cl(" 1_0".into()), Expect::Refused),
        (
            "overflow",
            cl(" 99999999999999999999999".into()),
            Expect::Refused,
        ),
        ("empty", cl(String::new()), Expect::Refused),
        ("space inside", cl(" 1 0".into()), Expect::Refused),
        // hyper keeps one of two identical values; framing comes from the parsed body.
        (
            "two identical",
            post(
                &format!("content-length: {n}\r\ncontent-length: {n}\r\n"),
                SMUGGLED,
            ),
            once(SMUGGLED),
        ),
        ("tab as OWS", cl(format!("\t{n}\t")), once(SMUGGLED)),
    ]))
    .await
}

fn with_extra_bytes(method: &str, path: &str) -> Script {
    // A member answering more than it was asked: the extra response must never reach
    // the next request that uses the connection.
    const EXTRA: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nbogus!";
    match path {
        "/extra" => Script::keep(&[&[
            &b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"[..],
            EXTRA,
        ]
        .concat()]),
        "/extra-late" => Script::keep(&[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", EXTRA]),
        _ => echo_path(method, path),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_with_unread_bytes_is_never_pooled() {
    bounded(async {
        let member = scripted_upstream(with_extra_bytes).await;
        let (_lb, addr) = http_lb(|_| {}, vec![member.member("m")]).await;
        // Extra bytes behind the response, in the same read: not pooled.
        assert_eq!(get(addr, "/extra").await.body, "ok");
        assert_eq!(get(addr, "/next").await.body, "/next");
        assert_eq!(member.conns(), 2);
        assert_eq!(get(addr, "/again").await.body, "/again");
        assert_eq!(member.conns(), 2, "a clean connection is pooled");
        // Extra bytes arriving after the connection went idle: dropped at checkout. The
        // member sends them 5 ms after the response; give them time to land.
        assert_eq!(get(addr, "/extra-late").await.body, "ok");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(get(addr, "/next").await.body, "/next");
        assert_eq!(member.conns(), 3);
    })
    .await
}
