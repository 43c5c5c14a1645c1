//! What the proxy accepts of a client's request before anything reaches a member: how its
//! body is framed upstream, and the path it is routed on and forwarded with. Both are pure
//! functions of the parsed request; a [`Refusal`] becomes a 400 (which closes an HTTP/1.1
//! connection).
//!
//! Framing (RFC 9112 §6). hyper parses the client's HTTP/1.1 request first: it refuses
//! a `Transfer-Encoding` whose last coding is not `chunked` (or on HTTP/1.0), differing
//! or malformed `Content-Length` values (signs, lists, non-digits, overflow), and
//! malformed header lines (whitespace before the colon, obsolete line folding). When both
//! `Transfer-Encoding` and `Content-Length` came, hyper drops the length, reads the body
//! chunked and closes the connection after the response (§6.3 ¶3); we cannot see the
//! dropped length, so such a request is forwarded once, chunked, never refused. On top of
//! that, [`admit`] refuses any `Transfer-Encoding` but a single `chunked` (duplicate
//! lines, other codings before it — which would otherwise be stripped silently), more
//! than one `Content-Length` line, and a declared length that differs from the body hyper
//! parsed. The framing sent upstream is then derived from the parsed body alone:
//! `Content-Length` when its length is known, chunked otherwise; the client's own
//! framing headers are never copied, so no header (nor a `Connection` option) can
//! unframe a body.
//!
//! Paths ([`normalize_path`], RFC 3986 §6.2.2): percent-encoded unreserved characters are
//! decoded (`%61pi` is `api`) and other escapes upper-cased, dot-segments resolved
//! (`/a/../api`, `%2e%2e` included, never above the root) and repeated slashes merged
//! (`//api`), because members commonly do the same, and a rule must see what the member
//! will see. The member gets the normalised path. Refused, since members disagree on
//! what they mean: an encoded `/` or `\` (`%2F`, `%5C`), a raw `\`, a malformed escape,
//! and a dot-segment with parameters (`..;x`, which Tomcat reads as `..`).

use std::borrow::Cow;

use http::HeaderMap;
use http::header::{self, HeaderValue};

/// A request the proxy will not forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("more than one host header")]
    Host,
    #[error("transfer-encoding must be a single `chunked`")]
    TransferEncoding,
    #[error("content-length must be one decimal number")]
    ContentLength,
    #[error("content-length and transfer-encoding together")]
    BothFramings,
    #[error("content-length does not match the body")]
    LengthMismatch,
    #[error("encoded `/` or `\\` in the path")]
    EncodedSeparator,
    #[error("`\\` in the path")]
    Backslash,
    #[error("malformed percent-encoding in the path")]
    BadEscape,
    #[error("dot-segment with parameters in the path")]
    DotSegmentParameters,
}

/// What hyper parsed of a request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyLength {
    /// No body, or one already at its end.
    None,
    Exact(u64),
    /// Chunked (HTTP/1.1) or no `content-length` (HTTP/2).
    Unknown,
}

/// How a request body goes upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body and no framing header.
    None,
    /// `content-length: n` (0 for a body the client declared and left empty).
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
}

/// Checks the client's framing headers against the body hyper parsed, and derives the
/// framing for the member from the body (see the module docs). Also refuses a repeated
/// `Host` (RFC 9112 §3.2), which the routing of a member and of this proxy could read
/// differently.
pub(crate) fn admit(headers: &HeaderMap, body: BodyLength) -> Result<Framing, Refusal> {
    single(headers, &header::HOST).ok_or(Refusal::Host)?;
    let te = single(headers, &header::TRANSFER_ENCODING).ok_or(Refusal::TransferEncoding)?;
    if te.is_some_and(|v| !v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked")) {
        return Err(Refusal::TransferEncoding);
    }
    let declared = single(headers, &header::CONTENT_LENGTH)
        .ok_or(Refusal::ContentLength)?
        .map(|v| parse_length(v.as_bytes().trim_ascii()).ok_or(Refusal::ContentLength))
        .transpose()?;
    if te.is_some() && declared.is_some() {
        return Err(Refusal::BothFramings);
    }
    match body {
        BodyLength::None if declared.unwrap_or(0) != 0 => Err(Refusal::LengthMismatch),
        BodyLength::None if te.is_some() || declared.is_some() => Ok(Framing::Length(0)),
        BodyLength::None => Ok(Framing::None),
        BodyLength::Exact(n) if declared.is_some_and(|d| d != n) => Err(Refusal::LengthMismatch),
        BodyLength::Exact(n) => Ok(Framing::Length(n)),
        BodyLength::Unknown if declared.is_some() => Err(Refusal::LengthMismatch),
        BodyLength::Unknown => Ok(Framing::Chunked),
    }
}

/// The one value of header `name`: `Some(None)` when absent, `None` when repeated.
fn single<'a>(
    headers: &'a HeaderMap,
    name: &header::HeaderName,
) -> Option<Option<&'a HeaderValue>> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (first, None) => Some(first),
        _ => None,
    }
}

/// A decimal length: digits only, no sign, no list, no overflow.
pub(crate) fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// The path a request is routed on and forwarded with (see the module docs). Borrowed,
/// at the cost of one scan, when it is already normal; paths not starting with `/` (`*`,
/// the empty path of authority-form) are left alone.
pub(crate) fn normalize_path(path: &str) -> Result<Cow<'_, str>, Refusal> {
    let b = path.as_bytes();
    let normal = b.first() != Some(&b'/')
        || !b.iter().enumerate().any(|(i, &c)| {
            matches!(c, b'%' | b'\\') || (c == b'/' && matches!(b.get(i + 1), Some(b'/' | b'.')))
        });
    if normal {
        return Ok(Cow::Borrowed(path));
    }
    if path.contains('\\') {
        return Err(Refusal::Backslash);
    }
    // Escapes first (RFC 3986 §6.2.2.2), so that `%2e%2e` is a dot-segment below.
    let mut decoded = String::with_capacity(path.len());
    let mut pieces = path.split('%');
    decoded.push_str(pieces.next().unwrap_or_default());
    for piece in pieces {
        let (hex, rest) = piece.split_at_checked(2).ok_or(Refusal::BadEscape)?;
        // `from_str_radix` alone would take a sign (`%+1`).
        if !hex.bytes().all(|d| d.is_ascii_hexdigit()) {
            return Err(Refusal::BadEscape);
        }
        let byte = u8::from_str_radix(hex, 16).map_err(|_| Refusal::BadEscape)?;
        match byte {
            b'/' | b'\\' => return Err(Refusal::EncodedSeparator),
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => {
                decoded.push(char::from(b));
            }
            _ => {
                decoded.push('%');
                decoded.push_str(&hex.to_ascii_uppercase());
            }
        }
        decoded.push_str(rest);
    }
    // Then dot-segments and empty segments (§6.2.2.3). The path ends in `/` when it did,
    // or when its last segment was a dot-segment (`/a/..` is `/`).
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing = false;
    for segment in decoded[1..].split('/') {
        trailing = matches!(segment, "" | "." | "..");
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s if s.starts_with(".;") || s.starts_with("..;") => {
                return Err(Refusal::DotSegmentParameters);
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing || segments.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn admission_table() {
        use BodyLength::{Exact, None as NoBody, Unknown};
        use Framing::{Chunked, Length};
        let te = ("transfer-encoding", "chunked");
        let cl = |v| ("content-length", v);
        type Case<'a> = (
            &'a [(&'a str, &'a str)],
            BodyLength,
            Result<Framing, Refusal>,
        );
        let cases: &[Case] = &[
            (&[], NoBody, Ok(Framing::None)),
            (&[cl("0")], NoBody, Ok(Length(0))),
            (&[te], NoBody, Ok(Length(0))),
            (&[cl("5")], Exact(5), Ok(Length(5))),
            (&[cl(" 5 ")], Exact(5), Ok(Length(5))),
            (&[te], Unknown, Ok(Chunked)),
            (&[("transfer-encoding", "CHUNKED")], Unknown, Ok(Chunked)),
            // HTTP/2: no content-length, or one matching the body.
            (&[], Unknown, Ok(Chunked)),
            (&[], Exact(3), Ok(Length(3))),
            // Refusals.
            (&[te, te], Unknown, Err(Refusal::TransferEncoding)),
            (
                &[("transfer-encoding", "gzip, chunked")],
                Unknown,
                Err(Refusal::TransferEncoding),
            ),
            (
                &[("transfer-encoding", "chunked, identity")],
                Unknown,
                Err(Refusal::TransferEncoding),
            ),
            (
                &[("transfer-encoding", "xchunked")],
                Unknown,
                Err(Refusal::TransferEncoding),
            ),
            (&[cl("5"), cl("5")], Exact(5), Err(Refusal::ContentLength)),
            (&[cl("5, 5")], Exact(5), Err(Refusal::ContentLength)),
            (&[cl("+5")], Exact(5), Err(Refusal::ContentLength)),
            (&[cl("")], NoBody, Err(Refusal::ContentLength)),
            (
                &[cl("99999999999999999999")],
                Unknown,
                Err(Refusal::ContentLength),
            ),
            (&[te, cl("5")], Unknown, Err(Refusal::BothFramings)),
            (&[cl("5")], Exact(4), Err(Refusal::LengthMismatch)),
            (&[cl("5")], NoBody, Err(Refusal::LengthMismatch)),
            (&[cl("5")], Unknown, Err(Refusal::LengthMismatch)),
            (&[("host", "a"), ("host", "a")], NoBody, Err(Refusal::Host)),
            (&[("host", "a")], NoBody, Ok(Framing::None)),
        ];
        for (h, body, want) in cases {
            assert_eq!(admit(&headers(h), *body), *want, "{h:?} {body:?}");
        }
    }

    #[test]
    fn lengths() {
        assert_eq!(parse_length(b"0"), Some(0));
        assert_eq!(parse_length(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"18446744073709551616",
            b"-1",
            b"1 ",
            b"0x1",
            b"1,1",
        ] {
            assert_eq!(parse_length(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn paths_table() {
        let ok = [
            ("/", "/"),
            ("/api/users", "/api/users"),
            ("*", "*"),
            ("", ""),
            ("/.well-known/x", "/.well-known/x"),
            ("//api", "/api"),
            ("/a//b///", "/a/b/"),
            ("/a/../api", "/api"),
            ("/public/../api/x", "/api/x"),
            ("/./api", "/api"),
            ("/a/.", "/a/"),
            ("/a/b/..", "/a/"),
            ("/..", "/"),
            ("/../../api", "/api"),
            ("/%2e%2e/api", "/api"),
            ("/public/%2E%2e/api", "/api"),
            ("/%61pi", "/api"),
            ("/a%7eb%5fc%2Dd", "/a~b_c-d"),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/a%20b", "/a%20b"),
            ("/%25", "/%25"),
            ("/a;b/c", "/a;b/c"),
            ("/.a/..b", "/.a/..b"),
            ("/é/../x", "/x"),
        ];
        for (raw, want) in ok {
            assert_eq!(normalize_path(raw).as_deref(), Ok(want), "{raw}");
        }
        assert!(matches!(normalize_path("/api/x"), Ok(Cow::Borrowed(_))));
        let refused = [
            ("/public/..%2Fapi", Refusal::EncodedSeparator),
            ("/a%2fb", Refusal::EncodedSeparator),
            ("/a%5Cb", Refusal::EncodedSeparator),
            ("/a\\b", Refusal::Backslash),
            ("/a%zz", Refusal::BadEscape),
            ("/a%4", Refusal::BadEscape),
            ("/a%", Refusal::BadEscape),
            ("/a%+1", Refusal::BadEscape),
            ("/a%é", Refusal::BadEscape),
            ("/public/..;/api", Refusal::DotSegmentParameters),
            ("/public/.;x/api", Refusal::DotSegmentParameters),
        ];
        for (raw, want) in refused {
            assert_eq!(normalize_path(raw), Err(want), "{raw}");
        }
    }
}
