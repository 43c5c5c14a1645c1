//! The HTTP status of a server-rendered page.
//!
//! Pages call [`set_status`] while rendering on the server (a missing scale set answers
//! 404, not 200). In the browser, and outside a request, it does nothing.

/// Sets the status of the response being rendered, when there is one.
pub fn set_status(code: u16) {
    #[cfg(feature = "ssr")]
    {
        if let (Some(options), Ok(status)) = (
            leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
            http::StatusCode::from_u16(code),
        ) {
            options.set_status(status);
        }
    }
    #[cfg(not(feature = "ssr"))]
    let _ = code;
}
