//! The portal's server-function client: the browser's `fetch`, with the session's CSRF
//! token in the `x-csrf-token` header. The server refuses (403) every call that changes
//! state — and server functions are `POST`s — when it comes with a session cookie but not
//! the session's token; plain forms carry it as their `csrf` field instead
//! ([`crate::components::csrf_field::CsrfField`]).
//!
//! The token is read from the document's `<meta name="csrf-token">` (written by the
//! [`crate::shell`] for a signed-in session) at each call, so a call made from anywhere —
//! an action, a task, an event handler — carries it. Every `#[server]` of this crate names
//! this client (`client = crate::api::CsrfClient`).

use std::future::Future;

use futures::{Sink, Stream};
use leptos::server_fn::Bytes;
use leptos::server_fn::client::Client;
use leptos::server_fn::client::browser::BrowserClient;
use leptos::server_fn::error::FromServerFnError;
use leptos::server_fn::request::browser::BrowserRequest;
use leptos::server_fn::response::browser::BrowserResponse;

/// The header the server reads the token from.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// [`BrowserClient`] plus the CSRF header.
pub struct CsrfClient;

impl<E, IS, OS> Client<E, IS, OS> for CsrfClient
where
    E: FromServerFnError,
    IS: FromServerFnError,
    OS: FromServerFnError,
{
    type Request = BrowserRequest;
    type Response = BrowserResponse;

    fn send(req: Self::Request) -> impl Future<Output = Result<Self::Response, E>> + Send {
        #[cfg(feature = "hydrate")]
        if let Some(token) = page_token() {
            req.headers().set(CSRF_HEADER, &token);
        }
        <BrowserClient as Client<E, IS, OS>>::send(req)
    }

    #[allow(clippy::type_complexity)]
    fn open_websocket(
        path: &str,
    ) -> impl Future<
        Output = Result<
            (
                impl Stream<Item = Result<Bytes, Bytes>> + Send + 'static,
                impl Sink<Bytes> + Send + 'static,
            ),
            E,
        >,
    > + Send {
        <BrowserClient as Client<E, IS, OS>>::open_websocket(path)
    }

    fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        <BrowserClient as Client<E, IS, OS>>::spawn(future)
    }
}

/// The token the page was rendered with, if the session has one.
#[cfg(feature = "hydrate")]
fn page_token() -> Option<String> {
    leptos::prelude::document()
        .query_selector("meta[name=\"csrf-token\"]")
        .ok()
        .flatten()
        .and_then(|meta| meta.get_attribute("content"))
        .filter(|token| !token.is_empty())
}
