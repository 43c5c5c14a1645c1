use leptos::prelude::*;
use leptos_meta::MetaTags;

use crate::App;

/// The whole HTML document the server sends for every page: head (meta, stylesheet,
/// hydration scripts) and the [`App`] in `<body>`.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let stylesheet = format!("/{}/{}.css", options.site_pkg_dir, options.output_name);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <meta name="description" content="Flotilla: virtual machine scale sets" />
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
