use leptos::prelude::*;

use crate::viewer::use_viewer;

/// The session's CSRF token as a form's hidden `csrf` field: every plain form that posts
/// (to a server function or to `/auth/logout`) carries it, or the server refuses the post
/// (403). Nothing without a session (authentication off, or not signed in).
///
/// With JavaScript, an `ActionForm` reads the field along with the others but the server
/// function takes no such argument: its call sends the token as a header instead
/// ([`crate::api::CsrfClient`]).
#[component]
pub fn CsrfField() -> impl IntoView {
    use_viewer()
        .csrf
        .map(|token| view! { <input type="hidden" name="csrf" value=token /> })
}
