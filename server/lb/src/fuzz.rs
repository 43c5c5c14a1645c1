//! Property tests standing in for fuzzing (stable toolchain, no cargo-fuzz): the request
//! admission and head writer (`request.rs`, [`Outgoing::write_head`]) and the response
//! parser and body decoder ([`parse_head`], [`decode`]), over arbitrary and adversarial
//! inputs. Each property runs a bounded number of cases, so `cargo test` (and CI) runs
//! them in a few seconds.
//!
//! Properties: arbitrary bytes never panic the parsers and never stall the decoder; a
//! request the proxy admits reaches the member framed exactly once, as the body it parsed,
//! with `Host` intact; valid responses, cut at arbitrary points, round-trip (body,
//! trailers) and leave exactly the bytes after them; ambiguous responses are refused or
//! never let their connection be reused; normalised paths are fixed points with no dot
//! or empty segment and no encoded separator.

use bytes::BytesMut;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Request};
use proptest::prelude::*;

use crate::client::{Chunk, Decoded, Framing, Outgoing, Parsed, decode, parse_head};
use crate::request::{self, BodyLength, normalize_path};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2000,
        ..ProptestConfig::default()
    }
}

// ---- requests ----

fn header_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "content-length",
        "transfer-encoding",
        "connection",
        "host",
        "te",
        "keep-alive",
        "x-forwarded-for",
        "x-a",
    ])
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "chunked",
            "Chunked ",
            "chunked, identity",
            "gzip, chunked",
            "identity",
            "0",
            "5",
            "007",
            "5, 5",
            "+5",
            "-1",
            "18446744073709551616",
            "content-length",
            "transfer-encoding",
            "host, content-length",
            "close",
            "keep-alive, x-a",
            "example.test",
        ])
        .prop_map(str::to_owned),
        "[0-9]{1,4}",
        "[ -~]{0,12}",
    ]
}

fn body_length() -> impl Strategy<Value = BodyLength> {
    prop_oneof![
        Just(BodyLength::None),
        (0u64..40).prop_map(BodyLength::Exact),
        Just(BodyLength::Unknown),
    ]
}

/// What a member finds in a request head: the values of every `transfer-encoding`,
/// `content-length` (its framing, RFC 9112 §6.3) and `host` line.
fn member_framing(head: &[u8]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(head) {
        Ok(httparse::Status::Complete(len)) => len,
        other => panic!("the member cannot parse the head ({other:?}):\n{head:?}"),
    };
    assert_eq!(len, head.len(), "bytes after the head");
    let values = |name: &str| -> Vec<String> {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
            .collect()
    };
    (
        values("transfer-encoding"),
        values("content-length"),
        values("host"),
    )
}

proptest! {
    #![proptest_config(config())]

    /// Whatever the client's headers, an admitted request is framed for the member exactly
    /// as the body hyper parsed: one framing header at most, never one the client wrote,
    /// and `Host` kept whatever `Connection` names.
    #[test]
    fn admitted_requests_are_framed_once_by_their_body(
        pairs in prop::collection::vec((header_name(), header_value()), 0..6),
        body in body_length(),
    ) {
        let mut headers = HeaderMap::new();
        for (name, value) in &pairs {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.append(HeaderName::from_static(name), v);
            }
        }
        let Ok(framing) = request::admit(&headers, body) else {
            // Refused: nothing reaches a member.
            return Ok(());
        };
        match (body, framing) {
            (BodyLength::None, request::Framing::None | request::Framing::Length(0)) => {}
            (BodyLength::Exact(n), request::Framing::Length(m)) => prop_assert_eq!(n, m),
            (BodyLength::Unknown, request::Framing::Chunked) => {}
            other => prop_assert!(false, "framing {other:?}"),
        }
        let (mut parts, ()) = Request::post("/p?q").body(()).unwrap().into_parts();
        parts.headers = headers.clone();
        let mut out = Outgoing::new(None, framing, false);
        out.write_head(&parts, "/p", &HeaderValue::from_static("192.0.2.1"), false, Vec::new());
        let (te, cl, host) = member_framing(&out.into_buf());
        match framing {
            request::Framing::None => prop_assert!(te.is_empty() && cl.is_empty()),
            request::Framing::Length(n) => {
                prop_assert!(te.is_empty());
                prop_assert_eq!(cl, vec![n.to_string()]);
            }
            request::Framing::Chunked => {
                prop_assert!(cl.is_empty());
                prop_assert_eq!(te, vec!["chunked".to_owned()]);
            }
        }
        let sent: Vec<String> = headers
            .get_all(http::header::HOST)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
            .collect();
        prop_assert_eq!(host, sent);
    }

    /// Normalised paths are fixed points, rooted, without dot or empty segments, encoded
    /// separators or backslashes.
    #[test]
    fn normalised_paths_are_canonical(raw in "/?(/|\\.|%|[0-9a-fA-F]{1,2}|[g-z]|;|\\\\|~|-|é){0,24}") {
        let Ok(path) = normalize_path(&raw) else {
            return Ok(());
        };
        let again = normalize_path(&path);
        prop_assert_eq!(again.as_deref(), Ok(&*path));
        if raw.starts_with('/') {
            prop_assert!(path.starts_with('/'));
            let segments: Vec<&str> = path[1..].split('/').collect();
            let (last, inner) = segments.split_last().unwrap();
            prop_assert!(inner.iter().all(|s| !matches!(*s, "" | "." | "..")), "{path}");
            prop_assert!(!matches!(*last, "." | ".."), "{path}");
            let upper = path.to_ascii_uppercase();
            prop_assert!(!upper.contains("%2F") && !upper.contains("%5C") && !path.contains('\\'));
        } else {
            prop_assert_eq!(&*path, raw.as_str());
        }
    }
}

// ---- responses ----

/// Feeds `pieces` into a read buffer as a connection would, parsing the head then decoding
/// the body: the head, the body, its trailers, and the bytes left after the body. `None`
/// for the body when the stream ended first, the error when the message is refused.
type Read = (
    crate::client::Head,
    Option<Vec<u8>>,
    Option<HeaderMap>,
    BytesMut,
);

fn read_response(pieces: &[&[u8]], head_request: bool) -> std::io::Result<Read> {
    let mut pieces = pieces.iter();
    let mut buf = BytesMut::new();
    let mut head = loop {
        match parse_head(&mut buf, head_request)? {
            Parsed::Head(head) => break head,
            Parsed::Informational => continue,
            Parsed::Partial => match pieces.next() {
                Some(p) => buf.extend_from_slice(p),
                None => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            },
        }
    };
    let mut body = Vec::new();
    let mut trailers = None;
    // Every step consumes bytes, ends, or asks for more: a bound on the steps catches a
    // decoder that spins.
    for _ in 0..100_000 {
        match decode(&mut head.framing, &mut buf)? {
            Decoded::Frame(frame) => match frame.into_data() {
                Ok(data) => body.extend_from_slice(&data),
                Err(frame) => trailers = frame.into_trailers().ok(),
            },
            Decoded::End => return Ok((head, Some(body), trailers, buf)),
            Decoded::More(_) => match pieces.next() {
                Some(p) => buf.extend_from_slice(p),
                // EOF: the end of a close-delimited body, else a cut.
                None if matches!(head.framing, Framing::Eof) => {
                    return Ok((head, Some(body), trailers, buf));
                }
                None => return Ok((head, None, trailers, buf)),
            },
        }
    }
    panic!("the decoder made no progress");
}

/// `bytes` cut at the given fractions.
fn split<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for to in at.into_iter().chain([bytes.len()]) {
        pieces.push(&bytes[from..to]);
        from = to;
    }
    pieces
}

#[derive(Debug, Clone)]
enum BodyShape {
    Length,
    /// Chunk sizes (0 ends early), with an extension on the first.
    Chunked(Vec<usize>, bool),
    /// Delimited by the connection's end.
    Eof,
}

fn response_shape() -> impl Strategy<Value = (u16, BodyShape, Vec<u8>, Vec<(String, String)>)> {
    (
        prop::sample::select(vec![200u16, 201, 206, 301, 404, 500, 503]),
        prop_oneof![
            Just(BodyShape::Length),
            (prop::collection::vec(1usize..20, 0..6), any::<bool>())
                .prop_map(|(sizes, ext)| BodyShape::Chunked(sizes, ext)),
            Just(BodyShape::Eof),
        ],
        prop::collection::vec(any::<u8>(), 0..200),
        prop::collection::btree_map("x-[a-z]{1,8}", "[ -~]{0,16}", 0..3)
            .prop_map(|m| m.into_iter().collect()),
    )
}

/// A response's bytes; a chunked body's trailers are the extra headers, suffixed `-t`.
fn encode(status: u16, shape: &BodyShape, body: &[u8], extra: &[(String, String)]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\n").into_bytes();
    for (n, v) in extra {
        out.extend_from_slice(format!("{n}: {}\r\n", v.trim()).as_bytes());
    }
    match shape {
        BodyShape::Length => {
            out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
            out.extend_from_slice(body);
        }
        BodyShape::Eof => {
            out.extend_from_slice(b"connection: close\r\n\r\n");
            out.extend_from_slice(body);
        }
        BodyShape::Chunked(sizes, ext) => {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
            let mut rest = body;
            for (i, size) in sizes.iter().chain([&usize::MAX]).enumerate() {
                let n = (*size).min(rest.len());
                if n == 0 {
                    break;
                }
                let ext = if *ext && i == 0 { ";a=b" } else { "" };
                out.extend_from_slice(format!("{n:X}{ext}\r\n").as_bytes());
                out.extend_from_slice(&rest[..n]);
                out.extend_from_slice(b"\r\n");
                rest = &rest[n..];
            }
            out.extend_from_slice(b"0\r\n");
            for (n, v) in extra {
                out.extend_from_slice(format!("{n}-t: {}\r\n", v.trim()).as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

const NEXT: &[u8] = b"HTTP/1.1 204 No Content\r\n\r\n";

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes, as a head or as any kind of body: an error or a result, no panic,
    /// no endless loop.
    #[test]
    fn arbitrary_responses_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        head_request in any::<bool>(),
    ) {
        let _ = read_response(&split(&bytes, &cuts), head_request);
        for mut framing in [
            Framing::Length(64),
            Framing::Chunked(Chunk::Size),
            Framing::Chunked(Chunk::Data(3)),
            Framing::Chunked(Chunk::DataEnd),
            Framing::Chunked(Chunk::Trailers),
            Framing::Eof,
        ] {
            let mut buf = BytesMut::from(&bytes[..]);
            for _ in 0..10_000 {
                match decode(&mut framing, &mut buf) {
                    Ok(Decoded::Frame(_)) => {}
                    Ok(Decoded::End | Decoded::More(_)) | Err(_) => break,
                }
            }
        }
    }

    /// A valid response, cut anywhere, reads back as its body and trailers, and the bytes
    /// after it (the next response) are left exactly.
    #[test]
    fn valid_responses_round_trip(
        (status, shape, body, extra) in response_shape(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut bytes = encode(status, &shape, &body, &extra);
        let delimited = !matches!(shape, BodyShape::Eof);
        if delimited {
            bytes.extend_from_slice(NEXT);
        }
        let (head, got, trailers, rest) = read_response(&split(&bytes, &cuts), false).unwrap();
        prop_assert_eq!(head.parts.status.as_u16(), status);
        prop_assert_eq!(got.as_deref(), Some(&body[..]));
        prop_assert_eq!(head.reusable, delimited);
        if delimited {
            // The decoder stops at the body's end; the next response may still be in
            // pieces not yet fed, so compare what it was given.
            prop_assert!(NEXT.starts_with(&rest), "{rest:?}");
        }
        for (n, v) in &extra {
            prop_assert_eq!(head.parts.headers[n.as_str()].as_bytes(), v.trim().as_bytes());
        }
        if let BodyShape::Chunked(..) = shape {
            let want: Vec<(String, String)> = extra.iter().map(|(n, v)| (format!("{n}-t"), v.trim().to_owned())).collect();
            let got: Vec<(String, String)> = trailers
                .iter()
                .flat_map(|t| t.iter().map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned())))
                .collect();
            prop_assert_eq!(got, want);
        }
    }

    /// Ambiguous framing in a response (RFC 9112 §6.3): refused, or read once and the
    /// connection closed after it — never reused with bytes of uncertain meaning.
    #[test]
    fn ambiguous_responses_are_refused_or_end_their_connection(
        first in prop::sample::select(vec!["content-length: 5", "transfer-encoding: chunked", "transfer-encoding: gzip", "content-length: 6"]),
        second in prop::sample::select(vec!["content-length: 5", "transfer-encoding: chunked", "transfer-encoding: chunked, gzip", "content-length: 7", "content-length: +5"]),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let bytes = format!("HTTP/1.1 200 OK\r\n{first}\r\n{second}\r\n\r\n5\r\nhello\r\n0\r\n\r\n{}", String::from_utf8_lossy(NEXT));
        let both = first.starts_with("content") != second.starts_with("content");
        let two_lengths = first.starts_with("content") && second.starts_with("content");
        let refused = (two_lengths && first != second) || second.contains('+');
        match read_response(&split(bytes.as_bytes(), &cuts), false) {
            Err(_) => prop_assert!(refused),
            Ok((head, _, _, _)) => {
                prop_assert!(!refused);
                if both || (first.starts_with("transfer") && second.starts_with("transfer")) {
                    prop_assert!(!head.reusable, "{first} / {second}");
                }
                if both {
                    prop_assert!(!head.parts.headers.contains_key(http::header::CONTENT_LENGTH));
                }
            }
        }
    }
}
