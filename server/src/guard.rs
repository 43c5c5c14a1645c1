//! What every request to the portal and the API passes before a handler sees it, outermost
//! first (see [`layers`]):
//!
//! 1. **Response headers**: `X-Frame-Options: DENY` and CSP `frame-ancestors 'none'` (no
//!    page may frame the portal), `X-Content-Type-Options: nosniff`, `Referrer-Policy:
//!    same-origin` (the portal's plain forms return to their page by the `Referer`).
//! 2. **Host**: the `Host` must be one this server is reached at — `localhost`,
//!    `127.0.0.1`, `::1`, the listen address (unless it is unspecified) or a `--public-url`
//!    host — else 421: a page on another name that resolves here (DNS rebinding) gets
//!    nothing.
//! 3. **Panics**: a handler that panics is answered 500 (problem+json with the request id)
//!    and logged with the id, instead of dropping the connection.
//! 4. **Cross-site requests**: a request that changes state (any method but GET, HEAD,
//!    OPTIONS) is refused with 403 when `Sec-Fetch-Site` says another site sent it or its
//!    `Origin` is not this host; REST calls must also carry `Content-Type:
//!    application/json` (or `+json`) or `X-Flotilla-Request: 1`, which a cross-site page
//!    cannot send without a CORS preflight this server never grants. Clients that send no
//!    `Origin` (the CLI, scripts) pass.
//! 5. **Body size**: every body, server functions' included, is read up to
//!    [`BODY_LIMIT`] before the handler runs; a larger one is answered 413 after the rest
//!    is read and discarded for a moment (as nginx's lingering close), so a client still
//!    sending sees the answer rather than a reset.
//! 6. **Time**: a request not answered within `--request-timeout` gets 503 (event streams
//!    excepted: they are long by design).

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use http_body_util::BodyExt;

use crate::api::error::ApiError;
use crate::config::PublicUrl;

/// Largest request body accepted, on every route.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// How long an oversized body is read and discarded before the 413 (and how much of it).
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 64 * 1024 * 1024;

/// The header a client without a JSON body sends to say it is not a cross-site form.
pub const REQUEST_HEADER: &str = "x-flotilla-request";

/// The paths that stream for as long as the client listens (no request timeout).
const STREAMS: [&str; 1] = ["/api/v1/events"];

/// What the guard checks against.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Hosts besides the loopback names (the listen address, `--public-url`'s).
    pub hosts: Vec<PublicUrl>,
    pub request_timeout: Duration,
}

impl Policy {
    /// The policy of a server listening on `listen` and reached at `public`.
    pub fn new(
        listen: std::net::SocketAddr,
        public: &[PublicUrl],
        request_timeout: Duration,
    ) -> Self {
        let mut hosts = public.to_vec();
        if !listen.ip().is_unspecified() {
            hosts.push(PublicUrl {
                https: false,
                host: listen.ip().to_string(),
                port: None,
            });
        }
        Self {
            hosts,
            request_timeout,
        }
    }

    /// Whether `host` (a `Host` header's value) names this server. Names are what DNS
    /// rebinding forges; the port is not checked (the server may sit behind a forward).
    fn knows(&self, host: &str) -> bool {
        let Some((name, _)) = split_host(host) else {
            return false;
        };
        if ["localhost", "127.0.0.1", "::1"].contains(&name.as_str()) {
            return true;
        }
        self.hosts.iter().any(|h| {
            h.host == name
                || matches!((h.host.parse::<IpAddr>(), name.parse::<IpAddr>()), (Ok(a), Ok(b)) if a == b)
        })
    }
}

/// `host[:port]` of a `Host` header or an origin's authority: the name lowercased, IPv6
/// without brackets; `None` when malformed.
fn split_host(host: &str) -> Option<(String, Option<u16>)> {
    let host = host.trim();
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return None;
    }
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        (v6.to_string(), port)
    } else {
        match host.rsplit_once(':') {
            Some((name, p)) => (name.to_string(), Some(p.parse().ok()?)),
            None => (host.to_string(), None),
        }
    };
    Some((name.to_ascii_lowercase(), port))
}

/// `routes` behind the guard's layers (see the module documentation).
pub fn layers(routes: Router, policy: Policy) -> Router {
    let policy = Arc::new(policy);
    routes
        .layer(middleware::from_fn_with_state(policy.clone(), time_limit))
        .layer(middleware::from_fn(body_limit))
        .layer(middleware::from_fn(cross_site))
        .layer(middleware::from_fn(catch_panic))
        .layer(middleware::from_fn_with_state(policy, known_host))
        .layer(middleware::map_response(security_headers))
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn refuse(status: StatusCode, detail: String) -> Response {
    ApiError::new(status, detail).into_response()
}

/// The request's host: its `Host` header, else (HTTP/2) its URI's authority.
fn host_of(request: &Request) -> Option<String> {
    request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
}

async fn known_host(State(policy): State<Arc<Policy>>, request: Request, next: Next) -> Response {
    match host_of(&request) {
        Some(host) if policy.knows(&host) => next.run(request).await,
        Some(host) => refuse(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this server is not reached as {:?}: add the URL it is reached at to --public-url",
                host.chars()
                    .filter(|c| !c.is_control())
                    .take(255)
                    .collect::<String>()
            ),
        ),
        None => refuse(StatusCode::BAD_REQUEST, "the request names no host".into()),
    }
}

async fn catch_panic(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            tracing::error!(request_id = %id, panic = %message, "a handler panicked");
            let mut problem = ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the server failed (request id {id})"),
            );
            problem.set_request_id(id);
            problem.into_response()
        }
    }
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Why a state-changing request looks cross-site, if it does.
fn cross_site_reason(headers: &HeaderMap, path: &str, host: Option<&str>) -> Option<String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return Some(format!("Sec-Fetch-Site is {site:?}"));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let authority = origin
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'));
        let same = match (authority.and_then(split_host), host.and_then(split_host)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
        if !same {
            return Some(format!(
                "its Origin {:?} is not this portal's",
                origin.chars().take(255).collect::<String>()
            ));
        }
    }
    if path.starts_with("/api/") {
        let json = text(header::CONTENT_TYPE.as_str())
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .is_some_and(|v| {
                v.eq_ignore_ascii_case("application/json")
                    || (v.starts_with("application/") && v.ends_with("+json"))
            });
        if !json && text(REQUEST_HEADER) != Some("1") {
            return Some(format!(
                "a request that changes state needs Content-Type: application/json or {REQUEST_HEADER}: 1"
            ));
        }
    }
    None
}

async fn cross_site(request: Request, next: Next) -> Response {
    if changes_state(request.method()) {
        let host = host_of(&request);
        if let Some(reason) =
            cross_site_reason(request.headers(), request.uri().path(), host.as_deref())
        {
            return refuse(
                StatusCode::FORBIDDEN,
                format!("cross-site request refused: {reason}"),
            );
        }
    }
    next.run(request).await
}

async fn body_limit(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (parts, body) = request.into_parts();
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return too_large(body).await;
    }
    if declared == Some(0) || body_is_empty(&parts) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let mut body = body;
    let mut bytes = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "the request body could not be read".into(),
            );
        };
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > BODY_LIMIT {
                return too_large(body).await;
            }
            bytes.extend_from_slice(&data);
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes.freeze())))
        .await
}

/// A GET or HEAD without a length or chunked coding carries no body worth reading.
fn body_is_empty(parts: &axum::http::request::Parts) -> bool {
    matches!(parts.method, Method::GET | Method::HEAD)
        && !parts.headers.contains_key(header::CONTENT_LENGTH)
        && !parts.headers.contains_key(header::TRANSFER_ENCODING)
}

/// 413, after reading and discarding what the client still sends for a moment; the
/// connection closes after it.
async fn too_large(body: Body) -> Response {
    let drain = async {
        let mut body = body;
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > LINGER_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
    let mut response = refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body exceeds {BODY_LIMIT} bytes"),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

async fn time_limit(State(policy): State<Arc<Policy>>, request: Request, next: Next) -> Response {
    if STREAMS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    within(policy.request_timeout, next.run(request)).await
}

async fn within(limit: Duration, work: impl Future<Output = Response>) -> Response {
    match tokio::time::timeout(limit, work).await {
        Ok(response) => response,
        Err(_) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no answer within {} s", limit.as_secs()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(public: &[&str], listen: &str) -> Policy {
        let public: Vec<PublicUrl> = public
            .iter()
            .map(|u| crate::config::parse_public_url(u).unwrap())
            .collect();
        Policy::new(listen.parse().unwrap(), &public, Duration::from_secs(30))
    }

    #[test]
    fn hosts_are_this_servers_names_only() {
        let p = policy(
            &["https://flotilla.example", "http://fleet.lan:8080"],
            "0.0.0.0:3000",
        );
        for ok in [
            "localhost:3000",
            "127.0.0.1:3000",
            "[::1]:3000",
            "LOCALHOST",
            "flotilla.example",
            "flotilla.example:443",
            "fleet.lan:8080",
            "fleet.lan",
        ] {
            assert!(p.knows(ok), "{ok} is this server");
        }
        for refused in [
            "evil.example:3000",
            "flotilla.example.evil.example",
            "0.0.0.0:3000",
            "127.0.0.1.evil.example",
            "",
            "a@b",
        ] {
            assert!(!p.knows(refused), "{refused} is not this server");
        }
        let p = policy(&[], "192.168.1.5:3000");
        assert!(p.knows("192.168.1.5:3000") && p.knows("192.168.1.5"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_past_its_time_gets_503() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(31)).await;
            StatusCode::OK.into_response()
        };
        let answer = within(Duration::from_secs(30), slow).await;
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        let quick = async { StatusCode::OK.into_response() };
        assert_eq!(
            within(Duration::from_secs(30), quick).await.status(),
            StatusCode::OK
        );
    }

    #[test]
    fn cross_site_requests_are_told_apart() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            h
        };
        let host = Some("127.0.0.1:3000");
        let json = ("content-type", "application/json");
        // The CLI and scripts: no Origin.
        assert_eq!(
            cross_site_reason(&headers(&[json]), "/api/v1/scale-sets", host),
            None
        );
        assert_eq!(
            cross_site_reason(&headers(&[(REQUEST_HEADER, "1")]), "/api/v1/x", host),
            None
        );
        // The portal's own forms and calls.
        let own = [
            ("origin", "http://127.0.0.1:3000"),
            ("sec-fetch-site", "same-origin"),
        ];
        assert_eq!(
            cross_site_reason(&headers(&own), "/_fn/set-capacity", host),
            None
        );
        // Another site, however it tries.
        for attack in [
            headers(&[("origin", "https://evil.example")]),
            headers(&[("origin", "null")]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[
                ("sec-fetch-site", "same-site"),
                ("origin", "http://127.0.0.1:3000"),
            ]),
            headers(&[("origin", "http://127.0.0.1:3001")]),
        ] {
            assert!(
                cross_site_reason(&attack, "/_fn/set-capacity", host).is_some(),
                "{attack:?}"
            );
        }
        // A simple (form-like) request to the REST API.
        let form = headers(&[("content-type", "text/plain")]);
        assert!(
            cross_site_reason(&form, "/api/v1/scale-sets/web/instances/web_0/delete", host)
                .is_some()
        );
        assert!(cross_site_reason(&HeaderMap::new(), "/api/v1/scale-sets/web", host).is_some());
    }
}
