//! The upstream side of the L7 proxy: a minimal HTTP/1.1 client driven inline by the
//! request's task (no connection task, no channels).
//!
//! - The request head (request line with the normalised path, the client's headers minus
//!   hop-by-hop ones, its framing headers and those `Connection` names, `X-Forwarded-*`,
//!   and the framing [`request::admit`] derived from the parsed body) is written once
//!   into a buffer lent by the connection ([`Outgoing::write_head`]); it stays there, so
//!   replaying a request on another connection costs nothing. The head and the first piece
//!   of body go out in one (vectored) write when the body is already at hand.
//! - A request body is streamed as it comes from the client: raw under `Content-Length`,
//!   else chunked. Nothing is buffered beyond the piece being written.
//! - The response head is parsed with `httparse` ([`exchange`]); 1xx informational
//!   responses (100 Continue, 103 Early Hints) are skipped, 101 is an error (upgrades are
//!   not supported). The response arriving before the request body was sent in full stops
//!   the body and the connection is not reused.
//! - The response body is cut from the connection's read buffer without copying by the
//!   pure [`decode`] (`Content-Length`, chunked with trailers as a trailers frame, or up to
//!   EOF: no length, or a `Transfer-Encoding` other than chunked); [`poll_body`] only reads
//!   more when it asks, and cuts off a member silent for `timeouts.body_read`. HEAD, 204
//!   and 304 have no body.
//! - A connection is reusable after the response when it is HTTP/1.1, has no
//!   `Connection: close`, its framing was unambiguous (neither both `Content-Length` and
//!   `Transfer-Encoding` nor a repeated `Transfer-Encoding`), its body was delimited (not
//!   by EOF) and read to the end, and no byte beyond it arrived.

use std::future::poll_fn;
use std::io::{self, IoSlice, Write as _};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use hyper::body::{Body, Frame, Incoming};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

use crate::http::{connection_may_remove, is_hop_by_hop};
use crate::request::{self, parse_length};
use crate::upstream::Conn;

/// Response headers accepted (as hyper's default).
const MAX_HEADERS: usize = 100;
/// Largest response head, and largest trailer section.
const MAX_HEAD: usize = 64 * 1024;
/// Longest chunk-size line (with extensions).
const MAX_CHUNK_LINE: usize = 4 * 1024;

const CHUNK_END: &[u8] = b"\r\n";
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

fn invalid(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Header names this crate writes itself.
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// A request on its way to a member: what is left to write, and the rest of the body.
///
/// Writing goes `buf[pos..]`, then `data`, then `tail`: the head (and later chunk-size
/// lines), a piece of body, and the chunk's CRLF or the last chunk.
pub(crate) struct Outgoing {
    buf: Vec<u8>,
    pos: usize,
    data: Bytes,
    tail: &'static [u8],
    body: Option<Incoming>,
    framing: request::Framing,
    /// Some byte went out on the current connection.
    written: bool,
    /// No body and an idempotent method: the head alone may be sent again after a failure.
    replayable: bool,
}

impl Outgoing {
    /// `framing` is what [`request::admit`] made of the client's headers and `body`.
    pub fn new(body: Option<Incoming>, framing: request::Framing, idempotent: bool) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            data: Bytes::new(),
            tail: &[],
            replayable: body.is_none() && idempotent,
            body,
            framing,
            written: false,
        }
    }

    fn chunked(&self) -> bool {
        self.framing == request::Framing::Chunked
    }

    /// Whether the head was written (it is written once per request).
    pub fn has_head(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Writes the head into `buf` (a connection's buffer, whose allocation is reused): the
    /// client's request rewritten for the member: HTTP/1.1, origin-form target with `path`
    /// (the normalised path) and the query, `Host` kept (from `:authority` for HTTP/2),
    /// hop-by-hop headers (and those `Connection` names, but never `Host`) removed, the
    /// client's framing headers replaced by the body's framing, `X-Forwarded-For` appended
    /// to with `client_ip`, `X-Forwarded-Proto` and `X-Forwarded-Host` set.
    pub fn write_head(
        &mut self,
        parts: &http::request::Parts,
        path: &str,
        client_ip: &HeaderValue,
        https: bool,
        mut buf: Vec<u8>,
    ) {
        let h = &parts.headers;
        buf.clear();
        // Names listed by `Connection` (rare): collected only when there is one.
        let listed: Vec<HeaderName> = h
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .filter_map(|t| HeaderName::from_bytes(t.trim_ascii()).ok())
            .filter(connection_may_remove)
            .collect();
        let authority = parts.uri.authority().map(|a| a.as_str().as_bytes());
        let host = h.get(header::HOST).map(HeaderValue::as_bytes).or(authority);

        buf.extend_from_slice(parts.method.as_str().as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(if path.is_empty() {
            b"/"
        } else {
            path.as_bytes()
        });
        if let Some(query) = parts.uri.query() {
            buf.push(b'?');
            buf.extend_from_slice(query.as_bytes());
        }
        buf.extend_from_slice(b" HTTP/1.1\r\n");
        if !h.contains_key(header::HOST)
            && let Some(authority) = authority
        {
            put_header(&mut buf, b"host", authority);
        }
        let mut xff: Option<Vec<u8>> = None;
        for (name, value) in h {
            if is_hop_by_hop(name)
                || *name == header::CONTENT_LENGTH
                || *name == X_FORWARDED_PROTO
                || (*name == X_FORWARDED_HOST && host.is_some())
                || listed.contains(name)
            {
                continue;
            }
            if *name == X_FORWARDED_FOR {
                let v = xff.get_or_insert_with(|| Vec::with_capacity(64));
                v.extend_from_slice(value.as_bytes());
                v.extend_from_slice(b", ");
                continue;
            }
            put_header(&mut buf, name.as_str().as_bytes(), value.as_bytes());
        }
        buf.extend_from_slice(b"x-forwarded-for: ");
        if let Some(prior) = &xff {
            buf.extend_from_slice(prior);
        }
        buf.extend_from_slice(client_ip.as_bytes());
        buf.extend_from_slice(b"\r\n");
        let proto: &[u8] = if https { b"https" } else { b"http" };
        put_header(&mut buf, b"x-forwarded-proto", proto);
        if let Some(host) = host {
            put_header(&mut buf, b"x-forwarded-host", host);
        }
        match self.framing {
            request::Framing::None => {}
            request::Framing::Length(n) => {
                let _ = write!(buf, "content-length: {n}\r\n");
            }
            request::Framing::Chunked => buf.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        }
        buf.extend_from_slice(b"\r\n");
        self.buf = buf;
        self.pos = 0;
    }

    /// Gives the head buffer back (to the connection it came from, or another).
    pub fn into_buf(self) -> Vec<u8> {
        self.buf
    }

    /// After a failed attempt: whether the request can go to another connection as is
    /// (nothing of it went out, or it is a bodiless idempotent request).
    pub fn rewind(&mut self) -> bool {
        if !self.written {
            return true;
        }
        if self.replayable {
            self.pos = 0;
            self.written = false;
            return true;
        }
        false
    }

    fn unwritten(&self) -> usize {
        self.buf.len() - self.pos + self.data.len() + self.tail.len()
    }

    /// Writes until everything is sent (`Ready(Ok)`), or the socket or the client's body
    /// is not ready. Body bytes are counted into `bytes_in` as they are taken.
    fn poll_send(
        &mut self,
        io: &mut TcpStream,
        cx: &mut Context<'_>,
        bytes_in: [&AtomicU64; 2],
    ) -> Poll<io::Result<()>> {
        loop {
            let mut body_pending = false;
            if self.data.is_empty()
                && self.tail.is_empty()
                && let Some(body) = self.body.as_mut()
            {
                match Pin::new(body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        // Trailers of a request body are not forwarded.
                        if let Ok(data) = frame.into_data()
                            && !data.is_empty()
                        {
                            for c in bytes_in {
                                c.fetch_add(data.len() as u64, Relaxed);
                            }
                            if self.pos == self.buf.len() {
                                self.buf.clear();
                                self.pos = 0;
                            }
                            if self.chunked() {
                                let _ = write!(self.buf, "{:x}\r\n", data.len());
                                self.tail = CHUNK_END;
                            }
                            self.data = data;
                        }
                        continue;
                    }
                    Poll::Ready(Some(Err(e))) => {
                        return Poll::Ready(Err(io::Error::other(format!("client body: {e}"))));
                    }
                    Poll::Ready(None) => {
                        self.body = None;
                        if self.chunked() {
                            self.tail = LAST_CHUNK;
                        }
                        continue;
                    }
                    Poll::Pending => body_pending = true,
                }
            }
            if self.unwritten() == 0 {
                return if body_pending {
                    Poll::Pending
                } else {
                    Poll::Ready(Ok(()))
                };
            }
            let slices = [
                IoSlice::new(&self.buf[self.pos..]),
                IoSlice::new(&self.data),
                IoSlice::new(self.tail),
            ];
            let mut n = ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written = true;
            let a = (self.buf.len() - self.pos).min(n);
            self.pos += a;
            n -= a;
            let b = self.data.len().min(n);
            self.data.advance(b);
            n -= b;
            self.tail = &self.tail[n..];
        }
    }
}

fn put_header(buf: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    buf.extend_from_slice(name);
    buf.extend_from_slice(b": ");
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\r\n");
}

/// A response head from a member, rewritten for the client.
pub(crate) struct Head {
    /// Status and headers, hop-by-hop ones removed.
    pub parts: http::response::Parts,
    pub framing: Framing,
    /// The connection may carry another request once the body was read to its end.
    pub reusable: bool,
}

/// How the rest of a response body is delimited.
pub(crate) enum Framing {
    /// This many bytes are left.
    Length(u64),
    Chunked(Chunk),
    /// Until the member closes the connection.
    Eof,
    /// Read to the end.
    Done,
}

/// Where a chunked body's decoder stands.
pub(crate) enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk, with this many bytes left.
    Data(u64),
    /// At the CRLF closing a chunk.
    DataEnd,
    /// After the last chunk: trailers, then an empty line.
    Trailers,
}

/// Sends `out` on `conn` and reads the response head. The caller bounds it in time.
pub(crate) async fn exchange(
    conn: &mut Conn,
    out: &mut Outgoing,
    head_request: bool,
    bytes_in: [&AtomicU64; 2],
) -> io::Result<Head> {
    let mut sent = false;
    poll_fn(|cx| {
        if !sent {
            match out.poll_send(&mut conn.io, cx, bytes_in) {
                Poll::Ready(Ok(())) => sent = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        let mut head = ready!(poll_head(conn, cx, head_request))?;
        if !sent {
            // An early answer (an error, typically): the rest of the body stays unsent
            // and the member may not expect another request on this connection.
            head.reusable = false;
            out.body = None;
        }
        Poll::Ready(Ok(head))
    })
    .await
}

fn poll_head(conn: &mut Conn, cx: &mut Context<'_>, head_request: bool) -> Poll<io::Result<Head>> {
    loop {
        if !conn.rbuf.is_empty() {
            match parse_head(&mut conn.rbuf, head_request)? {
                Parsed::Head(head) => return Poll::Ready(Ok(head)),
                Parsed::Informational => continue,
                Parsed::Partial if conn.rbuf.len() >= MAX_HEAD => {
                    return Poll::Ready(Err(invalid("response head too large")));
                }
                Parsed::Partial => {}
            }
        }
        if ready!(conn.poll_fill(cx, 0))? == 0 {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                if conn.rbuf.is_empty() {
                    "connection closed before a response"
                } else {
                    "connection closed within the response head"
                },
            )));
        }
    }
}

pub(crate) enum Parsed {
    Head(Head),
    /// More bytes are needed.
    Partial,
    /// A 1xx response was skipped.
    Informational,
}

/// Parses a response head at the start of `rbuf` and cuts it off (pure, like [`decode`]).
pub(crate) fn parse_head(rbuf: &mut BytesMut, head_request: bool) -> io::Result<Parsed> {
    // Where each header's name and value sit in the head, so that once the head is cut
    // from the buffer, values share its allocation instead of being copied.
    let mut spans = [[0u32; 4]; MAX_HEADERS];
    let (len, code, version, count) = {
        let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, rbuf, &mut headers)
            .map_err(invalid)?
        {
            httparse::Status::Partial => return Ok(Parsed::Partial),
            httparse::Status::Complete(len) => len,
        };
        match resp.code {
            Some(101) => return Err(invalid("unexpected 101 Switching Protocols")),
            Some(100..=199) => {
                rbuf.advance(len);
                return Ok(Parsed::Informational);
            }
            _ => {}
        }
        let base = rbuf.as_ptr() as usize;
        // A head is at most `MAX_HEAD` long: offsets fit in u32.
        let at = |p: *const u8| (p as usize - base) as u32;
        for (span, h) in spans.iter_mut().zip(resp.headers.iter()) {
            let name = at(h.name.as_ptr());
            let value = at(h.value.as_ptr());
            *span = [
                name,
                name + h.name.len() as u32,
                value,
                value + h.value.len() as u32,
            ];
        }
        (len, resp.code, resp.version, resp.headers.len())
    };
    let bytes = rbuf.split_to(len).freeze();
    let status = StatusCode::from_u16(code.unwrap_or(0)).map_err(invalid)?;
    let mut close = version != Some(1);
    let mut map = HeaderMap::with_capacity(count);
    // Transfer-Encoding: whether the last coding of its last line is chunked.
    let mut te: Option<bool> = None;
    let mut length: Option<u64> = None;
    let mut listed: Vec<HeaderName> = Vec::new();
    for &[n0, n1, v0, v1] in &spans[..count] {
        let (n0, n1, v0, v1) = (n0 as usize, n1 as usize, v0 as usize, v1 as usize);
        let name = HeaderName::from_bytes(&bytes[n0..n1]).map_err(invalid)?;
        let raw = &bytes[v0..v1];
        if name == header::CONNECTION {
            for token in raw.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if !token.eq_ignore_ascii_case(b"keep-alive")
                    && let Ok(n) = HeaderName::from_bytes(token)
                    && connection_may_remove(&n)
                {
                    listed.push(n);
                }
            }
            continue;
        }
        if name == header::TRANSFER_ENCODING {
            // Repeated: codings the member may have meant otherwise; this response is read
            // by the last one, and ends its connection.
            close |= te.is_some();
            let last = raw.rsplit(|&b| b == b',').next().unwrap_or(b"");
            te = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            continue;
        }
        if name == header::CONTENT_LENGTH {
            let n = response_length(raw)?;
            if length.is_some_and(|l| l != n) {
                return Err(invalid("conflicting content-length"));
            }
            length = Some(n);
        } else if is_hop_by_hop(&name) {
            continue;
        }
        let value = HeaderValue::from_maybe_shared(bytes.slice(v0..v1)).map_err(invalid)?;
        map.append(name, value);
    }
    for name in &listed {
        map.remove(name);
    }
    let framing =
        if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            Framing::Done
        } else if let Some(chunked) = te {
            if length.is_some() {
                // Transfer-Encoding wins; such a message may not be followed by another.
                map.remove(header::CONTENT_LENGTH);
                close = true;
            }
            if chunked {
                Framing::Chunked(Chunk::Size)
            } else {
                close = true;
                Framing::Eof
            }
        } else {
            match length {
                Some(0) => Framing::Done,
                Some(n) => Framing::Length(n),
                None => {
                    close = true;
                    Framing::Eof
                }
            }
        };
    let (mut parts, ()) = Response::new(()).into_parts();
    parts.status = status;
    parts.headers = map;
    Ok(Parsed::Head(Head {
        parts,
        framing,
        reusable: !close,
    }))
}

/// A response's `Content-Length` value: digits, or a list of equal ones (RFC 9112 §6.3 ¶5
/// lets a recipient take those; requests get no such leniency, see [`request::admit`]).
fn response_length(value: &[u8]) -> io::Result<u64> {
    let mut result = None;
    for item in value.split(|&b| b == b',') {
        let n = parse_length(item.trim_ascii()).ok_or_else(|| invalid("invalid content-length"))?;
        if result.is_some_and(|r| r != n) {
            return Err(invalid("conflicting content-length"));
        }
        result = Some(n);
    }
    result.ok_or_else(|| invalid("invalid content-length"))
}

/// The size in a chunk-size line (without its line end); extensions are ignored.
fn parse_chunk_size(line: &[u8]) -> io::Result<u64> {
    let end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(end);
    if digits.is_empty()
        || digits.len() > 15
        || !(rest.is_empty() || matches!(rest[0], b';' | b' ' | b'\t'))
    {
        return Err(invalid("invalid chunk size"));
    }
    Ok(digits.iter().fold(0u64, |n, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => d - b'A' + 10,
        };
        (n << 4) | u64::from(v)
    }))
}

/// The error of a body whose connection ended before its end.
fn cut_short() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "response body cut short")
}

/// What [`decode`] made of the bytes at hand.
#[derive(Debug)]
pub(crate) enum Decoded {
    Frame(Frame<Bytes>),
    /// The body ended; bytes past it stay in the buffer.
    End,
    /// More bytes are needed; a hint of how many (0: unknown).
    More(u64),
}

/// The next piece of a response body from `buf`: data (cut from `buf` without copying),
/// trailers, its end, or a request for more bytes. Pure: no I/O, so each call either
/// consumes bytes, ends the body, or asks for more; `framing` ends as [`Framing::Done`].
pub(crate) fn decode(framing: &mut Framing, buf: &mut BytesMut) -> io::Result<Decoded> {
    loop {
        match framing {
            Framing::Done => return Ok(Decoded::End),
            Framing::Length(left) => {
                let Some(data) = take(buf, left) else {
                    return Ok(Decoded::More(*left));
                };
                if *left == 0 {
                    *framing = Framing::Done;
                }
                return Ok(Decoded::Frame(Frame::data(data)));
            }
            Framing::Eof if buf.is_empty() => return Ok(Decoded::More(0)),
            Framing::Eof => return Ok(Decoded::Frame(Frame::data(buf.split().freeze()))),
            Framing::Chunked(chunk) => match chunk {
                Chunk::Size => {
                    let Some(i) = buf.iter().position(|&b| b == b'\n') else {
                        if buf.len() > MAX_CHUNK_LINE {
                            return Err(invalid("chunk-size line too long"));
                        }
                        return Ok(Decoded::More(0));
                    };
                    let line = &buf[..i];
                    let size = parse_chunk_size(line.strip_suffix(b"\r").unwrap_or(line))?;
                    buf.advance(i + 1);
                    *chunk = if size == 0 {
                        Chunk::Trailers
                    } else {
                        Chunk::Data(size)
                    };
                }
                Chunk::Data(left) => {
                    let Some(data) = take(buf, left) else {
                        return Ok(Decoded::More(*left));
                    };
                    if *left == 0 {
                        *chunk = Chunk::DataEnd;
                    }
                    return Ok(Decoded::Frame(Frame::data(data)));
                }
                Chunk::DataEnd => match &buf[..] {
                    [b'\n', ..] => {
                        buf.advance(1);
                        *chunk = Chunk::Size;
                    }
                    [b'\r', b'\n', ..] => {
                        buf.advance(2);
                        *chunk = Chunk::Size;
                    }
                    [] | [b'\r'] => return Ok(Decoded::More(0)),
                    _ => return Err(invalid("chunk not followed by CRLF")),
                },
                Chunk::Trailers => {
                    let mut headers = [httparse::EMPTY_HEADER; 32];
                    let httparse::Status::Complete((len, fields)) =
                        httparse::parse_headers(buf, &mut headers).map_err(invalid)?
                    else {
                        if buf.len() > MAX_HEAD {
                            return Err(invalid("trailers too large"));
                        }
                        return Ok(Decoded::More(0));
                    };
                    let mut trailers = HeaderMap::new();
                    for f in fields {
                        if let (Ok(n), Ok(v)) = (
                            HeaderName::from_bytes(f.name.as_bytes()),
                            HeaderValue::from_bytes(f.value),
                        ) && !is_hop_by_hop(&n)
                            && n != header::CONTENT_LENGTH
                        {
                            trailers.append(n, v);
                        }
                    }
                    buf.advance(len);
                    *framing = Framing::Done;
                    if trailers.is_empty() {
                        return Ok(Decoded::End);
                    }
                    return Ok(Decoded::Frame(Frame::trailers(trailers)));
                }
            },
        }
    }
}

/// Up to `left` bytes cut from `buf` and counted off `left`; `None` when `buf` is empty.
fn take(buf: &mut BytesMut, left: &mut u64) -> Option<Bytes> {
    if buf.is_empty() {
        return None;
    }
    let n = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
    *left -= n as u64;
    Some(buf.split_to(n).freeze())
}

/// The next frame of a response body read from `conn`, [`decode`]d; `framing` ends as
/// [`Framing::Done`] once the body was read to its end. A member that sends nothing for
/// `stall` while more is needed is cut off (an error).
pub(crate) fn poll_body(
    conn: &mut Conn,
    framing: &mut Framing,
    stall: Duration,
    cx: &mut Context<'_>,
) -> Poll<Option<io::Result<Frame<Bytes>>>> {
    loop {
        match decode(framing, &mut conn.rbuf)? {
            Decoded::Frame(frame) => return Poll::Ready(Some(Ok(frame))),
            Decoded::End => return Poll::Ready(None),
            Decoded::More(want) => {
                let want = usize::try_from(want).unwrap_or(usize::MAX);
                if ready!(conn.poll_fill_body(cx, want, stall))? > 0 {
                    continue;
                }
                // The member closed: the end of a close-delimited body, else a cut.
                if !matches!(framing, Framing::Eof) {
                    return Poll::Ready(Some(Err(cut_short())));
                }
                *framing = Framing::Done;
                return Poll::Ready(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &[u8], head_request: bool) -> (Head, BytesMut) {
        let mut buf = BytesMut::from(raw);
        loop {
            match parse_head(&mut buf, head_request).unwrap() {
                Parsed::Head(h) => return (h, buf),
                Parsed::Informational => continue,
                Parsed::Partial => panic!("partial"),
            }
        }
    }

    #[test]
    fn framing_and_reuse_follow_the_head() {
        let (h, rest) = head(
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nx-a: 1\r\n\r\nabc",
            false,
        );
        assert!(matches!(h.framing, Framing::Length(3)) && h.reusable);
        assert_eq!(&rest[..], b"abc");
        assert_eq!(h.parts.headers["x-a"], "1");
        let (h, _) = head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: keep-alive, x-b\r\nx-b: 2\r\nkeep-alive: timeout=5\r\n\r\n", false);
        assert!(matches!(h.framing, Framing::Chunked(Chunk::Size)) && h.reusable);
        assert!(h.parts.headers.is_empty(), "{:?}", h.parts.headers);
        let (h, _) = head(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 9\r\n\r\n",
            false,
        );
        assert!(matches!(h.framing, Framing::Chunked(_)) && !h.reusable);
        assert!(!h.parts.headers.contains_key(header::CONTENT_LENGTH));
        let (h, _) = head(b"HTTP/1.1 200 OK\r\n\r\n", false);
        assert!(matches!(h.framing, Framing::Eof) && !h.reusable);
        let (h, _) = head(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n", false);
        assert!(matches!(h.framing, Framing::Length(2)) && !h.reusable);
        let (h, _) = head(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n",
            false,
        );
        assert!(!h.reusable);
        let (h, _) = head(b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n", true);
        assert!(matches!(h.framing, Framing::Done) && h.reusable);
        assert_eq!(h.parts.headers[header::CONTENT_LENGTH], "20");
        for s in [204, 304] {
            let raw = format!("HTTP/1.1 {s} X\r\ncontent-length: 20\r\n\r\n");
            let (h, _) = head(raw.as_bytes(), false);
            assert!(matches!(h.framing, Framing::Done) && h.reusable);
        }
        let (h, rest) = head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nlink: x\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n", false);
        assert_eq!(h.parts.status, 201);
        assert!(matches!(h.framing, Framing::Done) && rest.is_empty());
    }

    #[test]
    fn bad_heads_are_errors() {
        for raw in [
            &b"SSH-2.0-OpenSSH_9.0\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        ] {
            assert!(parse_head(&mut BytesMut::from(raw), false).is_err());
        }
        assert!(matches!(
            parse_head(&mut BytesMut::from(&b"HTTP/1.1 200 OK\r\nx"[..]), false),
            Ok(Parsed::Partial)
        ));
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1a").unwrap(), 26);
        assert_eq!(parse_chunk_size(b"0;ext=1").unwrap(), 0);
        assert_eq!(parse_chunk_size(b"F ").unwrap(), 15);
        for bad in [&b""[..], b"x", b"1x", b"1234567890abcdef0"] {
            assert!(parse_chunk_size(bad).is_err());
        }
        assert_eq!(response_length(b"12, 12").unwrap(), 12);
        assert!(response_length(b"1,2").is_err());
        assert!(response_length(b"1,").is_err());
    }
}
