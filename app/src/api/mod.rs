//! Server functions: thin adapters over `flotilla_control::Fleet`, which the server
//! provides as context to both the page renderer and the server-function handler.
//!
//! Each takes the `Fleet` from context, calls it, and turns its error into a
//! `ServerFnError` carrying the error's message. URLs are stable and explicit
//! (`/_fn/<endpoint>`, no hash) and stay clear of `/api`, which is the REST API's.

pub mod activity;
pub mod scale_sets;

/// Where every server function is served (the `prefix` of each `#[server]`; the macro
/// takes a literal, so this constant documents it rather than feeding it).
pub const SERVER_FN_PREFIX: &str = "/_fn";

#[cfg(feature = "ssr")]
pub(crate) fn fleet() -> flotilla_control::Fleet {
    leptos::prelude::expect_context::<flotilla_control::Fleet>()
}

#[cfg(feature = "ssr")]
pub(crate) fn server_error(error: flotilla_control::Error) -> leptos::prelude::ServerFnError {
    leptos::prelude::ServerFnError::new(error)
}
