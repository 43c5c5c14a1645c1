//! Who is calling, and may they: authentication of every request, the portal's sessions and
//! sign-in, and the checks of the permission tables.
//!
//! - **Credentials** ([`authenticate`]): `Authorization: Bearer flt_…` (an API token: the
//!   CLI, scripts, Prometheus), else the portal's session cookie `flotilla_session`
//!   (server-side sessions in the database through `tower-sessions`; `HttpOnly`,
//!   `SameSite=Lax`, `Secure` when `--public-url` is https; idle and absolute expiry). A
//!   token that does not hold is refused with 401 at once, whatever the route. The result is
//!   a [`Caller`] in the request's extensions; with `--auth none` every caller is an Owner
//!   named by `X-Flotilla-Actor` (a demo mode: the portal shows a banner).
//! - **CSRF**: a request that changes state and came with a session must carry the
//!   session's token — the `X-CSRF-Token` header (the portal's JavaScript) or a `csrf` form
//!   field (its plain forms) — on top of the guard's Origin checks.
//! - **Permissions**: each REST route declares an [`Access`] in the API's table
//!   (`api/mod.rs`), checked by [`authorize`] with the scale set of the path; each server
//!   function in the portal's (`flotilla_app::api::access`), checked by [`portal`] with the
//!   scale set its arguments name; pages need a signed-in user and Reader on the scale set
//!   of their path, else the browser is sent to `/login`.
//! - **Sign-in** ([`sign_in`], [`sign_out`]): plain form posts, so they work without
//!   JavaScript; the session id is replaced at sign-in (no fixation: [`start_session`],
//!   which single sign-on in `oidc.rs` shares).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Form;
use axum::body::Body;
use axum::extract::{ConnectInfo, RawPathParams, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use flotilla_control::accounts::{self, Accounts};
use flotilla_control::{Caller, Principal};
use flotilla_domain::access::{Access, Role};
use flotilla_domain::secret::constant_time_eq;
use http_body_util::BodyExt;
use serde::Deserialize;
use tower_sessions::Session;

use crate::api::error::ApiError;
use crate::guard::BODY_LIMIT;

/// The session cookie.
pub const SESSION_COOKIE: &str = "flotilla_session";
/// The header the portal's JavaScript sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field plain forms send it in.
pub const CSRF_FIELD: &str = "csrf";
/// The header naming who acts when authentication is off (`cli:alice`).
pub const ACTOR_HEADER: &str = "x-flotilla-actor";

// Keys of a session's data.
const USER: &str = "user";
const CSRF: &str = "csrf";
const SIGNED_IN: &str = "signed_in_at";
const SEEN: &str = "seen_at";
/// How often a session's idle expiry is pushed back while it is in use.
const SEEN_EVERY: i64 = 60;

/// `--auth`: who may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// Users with passwords, API tokens, roles.
    Local,
    /// Everyone is an Owner: local demos and scripts only.
    None,
}

/// The settings of authentication.
pub struct Auth {
    pub mode: AuthMode,
    pub accounts: Arc<Accounts>,
    /// A session ends this long after sign-in, however busy.
    pub absolute: Duration,
}

/// Middleware: the request's [`Caller`] into its extensions (see the module documentation).
pub async fn authenticate(
    State(auth): State<Arc<Auth>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match auth.mode {
        AuthMode::None => Caller {
            principal: Some(Principal::open(&header_actor(
                request.headers(),
                if request.uri().path().starts_with("/api/") {
                    "api"
                } else {
                    "portal"
                },
            ))),
            auth: false,
            csrf: None,
        },
        AuthMode::Local => match bearer(request.headers()) {
            Some(Ok(token)) => match auth.accounts.authenticate_token(&token).await {
                Ok(principal) => Caller {
                    principal: Some(principal),
                    auth: true,
                    csrf: None,
                },
                Err(e) => return ApiError::from(e).into_response(),
            },
            Some(Err(why)) => {
                return ApiError::from(flotilla_control::Error::Unauthenticated {
                    message: why.into(),
                })
                .into_response();
            }
            None => {
                match session_caller(&auth, request.extensions().get::<Session>().cloned()).await {
                    Ok(caller) => caller,
                    Err(e) => return e.into_response(),
                }
            }
        },
    };
    if caller.csrf.is_some() && !safe(request.method()) {
        request = match checked_csrf(request, caller.csrf.as_deref().unwrap_or_default()).await {
            Ok(request) => request,
            Err(refusal) => return refusal,
        };
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

fn safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// `Authorization: Bearer …`: `None` without the header.
fn bearer(headers: &HeaderMap) -> Option<Result<String, &'static str>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let Ok(value) = value.to_str() else {
        return Some(Err("the Authorization header is not text"));
    };
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Some(Err(
            "the Authorization header must be `Bearer <token>` (an API token: flotilla token create)",
        ));
    }
    Some(Ok(token.trim().to_string()))
}

/// The actor a client names when authentication is off; `default` when it names none.
fn header_actor(headers: &HeaderMap, default: &str) -> String {
    headers
        .get(ACTOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect::<String>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn now_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The caller of a request that came with a session cookie (or with nothing: anonymous).
async fn session_caller(auth: &Auth, session: Option<Session>) -> Result<Caller, ApiError> {
    let anonymous = Caller {
        principal: None,
        auth: true,
        csrf: None,
    };
    let Some(session) = session else {
        return Ok(anonymous);
    };
    let user: Option<String> = session.get(USER).await.map_err(session_failed)?;
    let Some(user) = user else {
        return Ok(anonymous);
    };
    let now = now_seconds();
    let signed_in: i64 = session
        .get(SIGNED_IN)
        .await
        .map_err(session_failed)?
        .unwrap_or(0);
    let principal = if now - signed_in > auth.absolute.as_secs() as i64 {
        None
    } else {
        auth.accounts
            .user_principal(&user)
            .await
            .map_err(ApiError::from)?
    };
    let Some(principal) = principal else {
        // Past its absolute expiry, or the user is disabled or gone: the session ends.
        session.flush().await.map_err(session_failed)?;
        return Ok(anonymous);
    };
    let seen: i64 = session
        .get(SEEN)
        .await
        .map_err(session_failed)?
        .unwrap_or(0);
    if now - seen >= SEEN_EVERY {
        // Changes the session, so it is saved and its idle expiry starts again.
        session.insert(SEEN, now).await.map_err(session_failed)?;
    }
    Ok(Caller {
        principal: Some(principal),
        auth: true,
        csrf: session.get(CSRF).await.map_err(session_failed)?,
    })
}

fn session_failed(e: tower_sessions::session::Error) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the session could not be read: {e}"),
    )
}

/// The request back when it carries the session's CSRF token, in the header or as the
/// `csrf` field of a form body; a 403 otherwise.
async fn checked_csrf(request: Request, expected: &str) -> Result<Request, Response> {
    let refused = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "the request does not carry this session's CSRF token: reload the page",
        )
        .into_response()
    };
    if let Some(sent) = request.headers().get(CSRF_HEADER) {
        return if constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
            Ok(request)
        } else {
            Err(refused())
        };
    }
    let form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Err(refused());
    }
    let (parts, body) = request.into_parts();
    let bytes = read_body(body).await?;
    let good = url::form_urlencoded::parse(&bytes)
        .any(|(k, v)| k == CSRF_FIELD && constant_time_eq(v.as_bytes(), expected.as_bytes()));
    if good {
        Ok(Request::from_parts(parts, Body::from(bytes)))
    } else {
        Err(refused())
    }
}

/// A body read whole (the guard has already bounded it to [`BODY_LIMIT`]).
async fn read_body(body: Body) -> Result<bytes::Bytes, Response> {
    match http_body_util::Limited::new(body, BODY_LIMIT)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large").into_response(),
        ),
    }
}

/// The request's caller (anonymous when the middleware did not run).
pub fn caller_of(request: &Request) -> Caller {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or(Caller {
            principal: None,
            auth: true,
            csrf: None,
        })
}

/// Refuses `caller` unless `access` allows it on `scale_set`: 401 when anonymous, 403 when
/// its role falls short.
pub fn check(caller: &Caller, access: Access, scale_set: Option<&str>) -> Result<(), ApiError> {
    let grants = caller.principal.as_ref().map(|p| &p.grants);
    if access.allows(grants, scale_set) {
        return Ok(());
    }
    match &caller.principal {
        None => Err(ApiError::from(flotilla_control::Error::Unauthenticated {
            message: "sign in first: send `Authorization: Bearer <token>` (flotilla login, or \
                      flotilla token create)"
                .into(),
        })),
        Some(p) => {
            let on = match (access, scale_set) {
                (Access::Set(_), Some(set)) => format!(" on scale set {set:?}"),
                _ => String::new(),
            };
            Err(ApiError::from(flotilla_control::Error::Forbidden {
                message: format!(
                    "{} may not do this: it needs {}{on}",
                    p.actor,
                    access.describe()
                ),
            }))
        }
    }
}

/// A REST route's permission: its [`Access`], and for routes whose last segment is an
/// action, the role each action needs instead.
#[derive(Debug, Clone, Copy)]
pub struct Permission {
    pub access: Access,
    pub actions: &'static [(&'static str, Role)],
}

/// Route middleware: refuses a request its route's [`Permission`] does not allow, with the
/// scale set of the path (`{name}`) and the action (`{action}`) where the route has them.
pub async fn authorize(
    State(permission): State<Permission>,
    params: RawPathParams,
    request: Request,
    next: Next,
) -> Response {
    let caller = caller_of(&request);
    let param = |key: &str| {
        params
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    let set = param("name");
    let access = match (permission.access, param("action")) {
        (Access::Set(_), Some(action)) => permission
            .actions
            .iter()
            .find(|(a, _)| *a == action)
            .map_or(permission.access, |(_, role)| Access::Set(*role)),
        (access, _) => access,
    };
    match check(&caller, access, set.as_deref()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

/// Pages and server functions of the portal: a server function needs its entry in the
/// portal's table (on the scale set its `name` argument names); a page needs a signed-in
/// user (Reader on the scale set of a `/scale-sets/{name}` path) — an anonymous browser is
/// sent to `/login` and back afterwards. The login page and the site's files are open.
pub async fn portal(request: Request, next: Next) -> Response {
    let caller = caller_of(&request);
    let path = request.uri().path().to_string();
    if let Some(endpoint) = path.strip_prefix(flotilla_app::api::SERVER_FN_PREFIX) {
        let endpoint = endpoint.trim_start_matches('/');
        let Some(entry) = flotilla_app::api::access::of(endpoint) else {
            return ApiError::new(StatusCode::NOT_FOUND, "no such server function").into_response();
        };
        let (request, set) = match entry.scale_set {
            Some(argument) => match named_set(request, argument).await {
                Ok(found) => found,
                Err(refusal) => return refusal,
            },
            None => (request, None),
        };
        return match check(&caller, entry.access, set.as_deref()) {
            Ok(()) => next.run(request).await,
            Err(refusal) => refusal.into_response(),
        };
    }
    if open_path(&path) {
        return next.run(request).await;
    }
    if caller.principal.is_none() {
        let back = request
            .uri()
            .path_and_query()
            .map_or("/".to_string(), |p| p.to_string());
        return Redirect::to(&format!(
            "/login?next={}",
            flotilla_domain::url::percent_encode(&back)
        ))
        .into_response();
    }
    let set = path
        .strip_prefix("/scale-sets/")
        .and_then(|rest| rest.split('/').next())
        .filter(|s| !s.is_empty())
        .map(percent_decode);
    if let Some(set) = set
        && let Err(refusal) = check(&caller, Access::Set(Role::Reader), Some(&set))
    {
        return refusal.into_response();
    }
    next.run(request).await
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// What a browser fetches before it has signed in: the login page and the site's files.
fn open_path(path: &str) -> bool {
    path == "/login"
        || path.starts_with("/pkg/")
        || path == "/favicon.svg"
        || path == "/favicon.ico"
        || path == "/robots.txt"
}

/// The scale set a server function's arguments name at `argument` (a dotted path: `name`,
/// `request.name`), read from its query (GET) or its body (JSON, or a form where the path
/// is written `request[name]`); the request comes back whole.
async fn named_set(
    request: Request,
    argument: &str,
) -> Result<(Request, Option<String>), Response> {
    let form_key = match argument.split_once('.') {
        Some((outer, inner)) => format!("{outer}[{inner}]"),
        None => argument.to_string(),
    };
    // A name given twice is no name: the check and the function could read different ones.
    let from_form = |bytes: &[u8]| {
        let mut found = url::form_urlencoded::parse(bytes).filter(|(k, _)| *k == form_key);
        match (found.next(), found.next()) {
            (Some((_, v)), None) => Some(v.into_owned()),
            _ => None,
        }
    };
    if request.method() == Method::GET {
        let set = request.uri().query().and_then(|q| from_form(q.as_bytes()));
        return Ok((request, set));
    }
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (parts, body) = request.into_parts();
    let bytes = read_body(body).await?;
    let set = if json {
        let pointer = format!("/{}", argument.replace('.', "/"));
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.pointer(&pointer)
                    .and_then(|n| n.as_str())
                    .map(str::to_string)
            })
    } else {
        from_form(&bytes)
    };
    Ok((Request::from_parts(parts, Body::from(bytes)), set))
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// Where to go after (a path of this site).
    #[serde(default)]
    next: String,
}

/// `POST /auth/login`: checks the password, starts a fresh session (a new id: whatever id
/// the browser had is not carried over), and sends the browser on; a failure goes back to
/// the login page with the reason.
pub async fn sign_in(
    State(auth): State<Arc<Auth>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    Form(form): Form<SignIn>,
) -> Response {
    let next = local_path(&form.next);
    if auth.mode == AuthMode::None {
        return Redirect::to(&next).into_response();
    }
    let address = peer.ip().to_string();
    match auth
        .accounts
        .sign_in(form.username.trim(), &form.password, &address)
        .await
    {
        Ok(principal) => match start_session(&session, principal.user.as_deref()).await {
            Ok(()) => Redirect::to(&next).into_response(),
            Err(e) => session_failed(e).into_response(),
        },
        Err(e) if e.status() == 500 => ApiError::from(e).into_response(),
        Err(e) => Redirect::to(&format!(
            "/login?error={}&next={}",
            flotilla_domain::url::percent_encode(&e.to_string()),
            flotilla_domain::url::percent_encode(&next)
        ))
        .into_response(),
    }
}

/// Starts a signed-in session for `user` in place of whatever the browser had: a new id (no
/// fixation), nothing carried over, a new CSRF token. Every way of signing in ends here.
pub(crate) async fn start_session(
    session: &Session,
    user: Option<&str>,
) -> Result<(), tower_sessions::session::Error> {
    session.cycle_id().await?;
    session.clear().await;
    session.insert(USER, user).await?;
    session.insert(CSRF, accounts::random_secret()).await?;
    session.insert(SIGNED_IN, now_seconds()).await?;
    session.insert(SEEN, now_seconds()).await
}

/// `POST /auth/logout` (with the session's CSRF token, checked by [`authenticate`]): ends
/// the session in the database and in the browser.
pub async fn sign_out(
    State(auth): State<Arc<Auth>>,
    session: Session,
    request: Request,
) -> Response {
    let caller = caller_of(&request);
    if let Some(principal) = &caller.principal
        && caller.csrf.is_some()
    {
        auth.accounts.signed_out(principal).await;
    }
    match session.flush().await {
        Ok(()) => Redirect::to("/login").into_response(),
        Err(e) => session_failed(e).into_response(),
    }
}

/// `next` when it is a path of this site, else `/` (no open redirect).
pub(crate) fn local_path(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control());
    if ok {
        next.to_string()
    } else {
        "/".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path("/scale-sets/web"), "/scale-sets/web");
        assert_eq!(local_path("//evil.example/"), "/");
        assert_eq!(local_path("/\\evil.example"), "/");
        assert_eq!(local_path("https://evil.example"), "/");
        assert_eq!(local_path("/a\r\nSet-Cookie: x"), "/");
    }

    #[test]
    fn bearer_headers_are_parsed_strictly() {
        let mut h = HeaderMap::new();
        assert!(bearer(&h).is_none());
        h.insert(header::AUTHORIZATION, "Bearer flt_x".parse().unwrap());
        assert_eq!(bearer(&h), Some(Ok("flt_x".to_string())));
        h.insert(header::AUTHORIZATION, "Basic YTpi".parse().unwrap());
        assert!(matches!(bearer(&h), Some(Err(_))));
    }
}
