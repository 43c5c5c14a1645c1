//! Server functions: thin adapters over `flotilla_control::Fleet`, which the server
//! provides as context to both the page renderer and the server-function handler.
//!
//! Each takes the `Fleet` from context, calls it, and turns its error into a
//! `ServerFnError` carrying the error's message (reads) or an [`error::PortalError`]
//! with per-field messages (changes, which forms call with or without JavaScript). URLs
//! are stable and explicit (`/_fn/<endpoint>`, no hash) and stay clear of `/api`, which
//! is the REST API's.
//!
//! Every server function is in the permission table ([`access`]), which the server checks
//! before it runs, and is called from the browser through [`CsrfClient`], which sends the
//! session's CSRF token.

pub mod access;
pub mod accounts;
pub mod activity;
pub mod autoscale;
pub mod backend;
pub mod client;
pub mod error;
pub mod health;
pub mod instances;
pub mod lab;
pub mod lifecycle;
pub mod scale_sets;
pub mod theme;
pub mod upgrades;
pub mod warm_pool;
pub mod wizard;

pub use client::CsrfClient;

/// Where every server function is served (the `prefix` of each `#[server]`; the macro
/// takes a literal, so this constant documents it rather than feeding it).
pub const SERVER_FN_PREFIX: &str = "/_fn";

#[cfg(feature = "ssr")]
pub(crate) fn fleet() -> flotilla_control::Fleet {
    leptos::prelude::expect_context::<flotilla_control::Fleet>()
}

/// Who calls: what the server's authentication put in the request's extensions
/// (anonymous when it is not there).
#[cfg(feature = "ssr")]
pub(crate) fn caller() -> flotilla_control::Caller {
    leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<flotilla_control::Caller>().cloned())
        .unwrap_or(flotilla_control::Caller {
            principal: None,
            auth: true,
            csrf: None,
        })
}

/// The caller as the portal shows it (what `whoami` answers).
#[cfg(feature = "ssr")]
pub(crate) fn me() -> crate::viewer::Me {
    let caller = caller();
    let principal = caller.principal.as_ref();
    crate::viewer::Me {
        actor: principal.map(|p| p.actor.clone()),
        user: principal.and_then(|p| p.user.clone()),
        auth: caller.auth,
        grants: principal.map(|p| p.grants.clone()).unwrap_or_default(),
        single_sign_on: leptos::prelude::use_context::<http::request::Parts>()
            .and_then(|parts| {
                parts
                    .extensions
                    .get::<flotilla_control::accounts::SignInOptions>()
                    .copied()
            })
            .unwrap_or_default()
            .single_sign_on,
    }
}

/// What the app's root provides: the caller, and its session's CSRF token.
#[cfg(feature = "ssr")]
pub fn viewer() -> crate::viewer::Viewer {
    crate::viewer::Viewer {
        me: me(),
        csrf: caller().csrf,
    }
}

/// The name the activity log records for the caller.
#[cfg(feature = "ssr")]
pub(crate) fn actor() -> String {
    caller()
        .principal
        .map_or_else(|| "anonymous".to_string(), |p| p.actor)
}

/// Whether the caller may read `scale_set` (`None`: what belongs to no scale set, which only
/// a fleet-wide Reader sees).
#[cfg(feature = "ssr")]
pub(crate) fn sees(scale_set: Option<&str>) -> bool {
    use flotilla_domain::access::Role;
    caller().principal.is_some_and(|p| {
        p.allows(Role::Reader, None) || scale_set.is_some_and(|s| p.grants.sees(s))
    })
}

/// Refuses with 403 unless the caller holds `role` on `scale_set` (for what one server
/// function does beyond its entry in the table: cancelling a rollout, approving one).
#[cfg(feature = "ssr")]
pub(crate) fn require(
    role: flotilla_domain::access::Role,
    scale_set: &str,
) -> Result<(), error::PortalError> {
    let caller = caller();
    let Some(principal) = caller.principal else {
        return Err(refuse(error::PortalError::new("sign in first"), 401));
    };
    principal.require(role, Some(scale_set)).map_err(refused)
}

/// A read that failed, answered with the REST API's status (404 for what is gone — say a
/// console read racing the instance's deletion —, 409, 422; 500 only for failures inside
/// the server).
#[cfg(feature = "ssr")]
pub(crate) fn server_error(error: flotilla_control::Error) -> leptos::prelude::ServerFnError {
    let code = error.status();
    if code < 500 {
        crate::status::set_status(code);
    }
    leptos::prelude::ServerFnError::new(error::reported(&error))
}

/// Whether the request is a plain form post (it accepts HTML), not a JavaScript call.
#[cfg(feature = "ssr")]
pub(crate) fn is_form_post() -> bool {
    leptos::prelude::use_context::<http::request::Parts>().is_some_and(|parts| {
        parts
            .headers
            .get(http::header::ACCEPT)
            .and_then(|accept| accept.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
    })
}

/// Answers a JavaScript call that failed with `code` (409 for a refused action, 422 for bad
/// input) instead of the server functions' default 500. A plain form post keeps its
/// redirect back to the page, which carries the error in the URL.
#[cfg(feature = "ssr")]
pub(crate) fn refuse(error: error::PortalError, code: u16) -> error::PortalError {
    if !is_form_post() {
        crate::status::set_status(code);
    }
    error
}

/// A refusal by the `Fleet` as the portal reports it, with the REST API's status.
#[cfg(feature = "ssr")]
pub(crate) fn refused(error: flotilla_control::Error) -> error::PortalError {
    let code = error.status();
    refuse(error::PortalError::from(error), code)
}

/// After a plain form post the browser is sent back to the page it came from (the
/// `Referer`, with any error in the query). A browser that sends no `Referer` would land
/// on `/`: send it to `page` instead (an error message is then lost, the page is not).
#[cfg(feature = "ssr")]
pub(crate) fn return_to(page: &str) {
    let no_referer = leptos::prelude::use_context::<http::request::Parts>()
        .is_some_and(|parts| !parts.headers.contains_key(http::header::REFERER));
    if no_referer && is_form_post() {
        leptos_axum::redirect(&header_safe(page));
    }
}

/// After a plain form post, sends the browser to `page` rather than back where it came
/// from (the instances table's pager: the next page, with the selection).
#[cfg(feature = "ssr")]
pub(crate) fn go_to(page: &str) {
    if is_form_post() {
        leptos_axum::redirect(&header_safe(page));
    }
}

/// `page` with every byte that may not stand in a header (controls, spaces, non-ASCII)
/// percent-encoded: a name typed with a control character becomes a page that is not
/// found, not a panic.
#[cfg(feature = "ssr")]
fn header_safe(page: &str) -> String {
    page.bytes()
        .map(|b| {
            if b.is_ascii_graphic() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    #[test]
    fn redirects_carry_no_byte_a_header_refuses() {
        assert_eq!(super::header_safe("/scale-sets/web"), "/scale-sets/web");
        let page = super::header_safe("/scale-sets/we\nb é?x=1");
        assert_eq!(page, "/scale-sets/we%0Ab%20%C3%A9?x=1");
        assert!(http::HeaderValue::from_str(&page).is_ok());
    }
}
