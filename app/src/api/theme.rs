//! The colour theme a person chose, kept in a cookie (see [`crate::theme`]).

use leptos::prelude::*;

use crate::theme::Theme;

/// Stores `theme` in the `flotilla_theme` cookie. The header's toggle posts here: with
/// JavaScript in the background, without it as a plain form, after which the browser is
/// sent back to the page it came from.
#[server(prefix = "/_fn", endpoint = "theme", client = crate::api::CsrfClient)]
pub async fn set_theme(theme: Theme) -> Result<(), ServerFnError> {
    use http::HeaderValue;
    use http::header::SET_COOKIE;
    super::return_to("/");
    let cookie = HeaderValue::from_str(&theme.set_cookie()).map_err(ServerFnError::new)?;
    expect_context::<leptos_axum::ResponseOptions>().append_header(SET_COOKIE, cookie);
    Ok(())
}

/// The theme the request being answered asks for (its cookie); the system's without one.
#[cfg(feature = "ssr")]
pub fn request_theme() -> Theme {
    use_context::<http::request::Parts>()
        .and_then(|parts| {
            parts
                .headers
                .get_all(http::header::COOKIE)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .find_map(Theme::from_cookie_header)
        })
        .unwrap_or_default()
}
