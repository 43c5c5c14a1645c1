use leptos::prelude::*;
use leptos_meta::MetaTags;

use crate::App;
use crate::theme::Theme;

/// The whole HTML document the server sends for every page: head (meta, stylesheet,
/// hydration scripts) and the [`App`] in `<body>`.
///
/// A theme chosen in the header (its cookie) is rendered into `<html data-theme>` here, so
/// the first paint already has the right colours. A signed-in session's CSRF token is
/// written as `<meta name="csrf-token" content="…">`, where the portal's JavaScript reads
/// it for its server-function calls ([`crate::api::CsrfClient`]).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let stylesheet = format!("/{}/{}.css", options.site_pkg_dir, options.output_name);
    let theme = chosen_theme();
    let csrf = session_csrf().map(|token| view! { <meta name="csrf-token" content=token /> });
    view! {
        <!DOCTYPE html>
        <html lang="en" data-theme=theme.data_theme()>
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content=theme.color_scheme() />
                <meta name="description" content="Flotilla: virtual machine scale sets" />
                {csrf}
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                // `id="leptos"` lets `cargo leptos watch` swap the stylesheet live.
                <link id="leptos" rel="stylesheet" href=stylesheet />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The theme of the request being rendered. The document is only ever rendered on the
/// server: elsewhere, the system's.
fn chosen_theme() -> Theme {
    #[cfg(feature = "ssr")]
    {
        crate::api::theme::request_theme()
    }
    #[cfg(not(feature = "ssr"))]
    {
        Theme::System
    }
}

/// The CSRF token of the request's session, if it came with one. Only ever rendered on the
/// server.
fn session_csrf() -> Option<String> {
    #[cfg(feature = "ssr")]
    {
        crate::api::viewer().csrf
    }
    #[cfg(not(feature = "ssr"))]
    {
        None
    }
}
