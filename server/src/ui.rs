//! The portal's routes: the Leptos pages rendered on the server, the portal's server
//! functions (under `/_fn`, see `flotilla_app::api`), the built site's files (`/pkg/*` — the
//! wasm, its JS glue and the stylesheet — and the assets such as `/favicon.svg`, all from
//! `options.site_root`), and a rendered 404 page for every other path.
//!
//! The [`Fleet`] reaches the pages and the server functions as Leptos context, provided the
//! same way to the page renderer, the server-function handler and the 404 renderer; so does
//! the site's split manifest ([`SplitManifest`], read once here), from which each page names
//! its wasm chunks for the browser to preload.
//!
//! This router has a fallback (files, then the 404 page): merge it last, after routers
//! without one (`/api/v1` keeps its own fallback because it is nested).

use axum::Router;
use flotilla_app::routes::SplitManifest;
use flotilla_app::{App, shell};
use flotilla_control::Fleet;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, file_and_error_handler_with_context, generate_route_list};

/// The portal for `fleet`, serving the site built into `options.site_root`.
pub fn router(fleet: Fleet, options: LeptosOptions) -> Router {
    let split = SplitManifest::read(
        &std::path::Path::new(&*options.site_root).join(&*options.site_pkg_dir),
        &format!("/{}", options.site_pkg_dir),
    );
    let context = move || {
        provide_context(fleet.clone());
        provide_context(split.clone());
    };
    let routes = generate_route_list(App);
    let app = {
        let options = options.clone();
        move || shell(options.clone())
    };
    Router::<LeptosOptions>::new()
        .leptos_routes_with_context(&options, routes, context.clone(), app)
        .fallback(file_and_error_handler_with_context(context, shell))
        .with_state(options)
}
