//! # flotilla-app
//!
//! Flotilla's portal: a Leptos 0.8 application rendered on the server (feature `ssr`) and
//! hydrated in the browser (feature `hydrate`, compiled to wasm). Every page renders fully
//! on the server, so the portal reads correctly before — or without — JavaScript.
//!
//! Layout:
//! - [`shell`] — the HTML document around the app (with the session's CSRF token in
//!   `<meta name="csrf-token">`); [`App`] — header, navigation, routes, and who is looking
//!   ([`viewer::Viewer`]) as context for every component;
//! - [`routes`] — every page as a lazy route, so the browser's wasm is split by route;
//!   [`pages`] — one routed page per file (the login page `/login` and the API tokens page
//!   `/tokens` among them); [`components`] — one component per file;
//! - [`api`] — server functions, thin adapters over `flotilla_control::Fleet`, served under
//!   [`api::SERVER_FN_PREFIX`] (not `/api`, which belongs to the REST API), each in the
//!   permission table [`api::access`] and called through [`api::CsrfClient`];
//! - [`viewer`] — what the signed-in caller may do, decided by that same table, so the
//!   portal disables (and explains) what the server would refuse;
//! - [`summary`], [`format`], [`wizard`], [`activity_query`], [`scale_set_query`],
//!   [`instance_query`], [`table_sort`], [`placement_grid`], [`chart`], [`metrics_view`],
//!   [`autoscale_draft`], [`autoscale_templates`], [`demand_form`], [`upgrade_form`],
//!   [`rollout_view`], [`lab_view`] — plain view logic with plain tests;
//! - [`live`] — in the browser, pages refetch their data on the server's events (SSE);
//! - [`resource`] — every page's resources, hydrated with one JSON reader;
//! - [`status`] — the HTTP status of a server-rendered page;
//! - [`time_zone`] — the browser's time zone, for schedules.
//!
//! The `hydrate` build depends on no server crate: server-only code sits behind
//! `#[cfg(feature = "ssr")]` or inside `#[server]` bodies. Views are type-erased in every
//! build (`--cfg erase_components`, set in `.cargo/config.toml` for both sides, whose HTML
//! must match): a third of the release wasm was typed views' generic code.
// Denied everywhere but in `routes`, whose lazy-route macros declare the split chunks'
// imports.
#![deny(unsafe_code)]
// Typed views (a build without `erase_components`) are deeply nested types; the scale set
// page's tabs exceed the default.
#![recursion_limit = "256"]

pub mod activity_query;
pub mod api;
mod app;
pub mod autoscale_draft;
pub mod autoscale_templates;
pub mod chart;
pub mod components;
pub mod demand_form;
pub mod format;
pub mod instance_query;
pub mod lab_view;
pub mod live;
pub mod metrics_view;
pub mod pages;
pub mod placement_grid;
pub mod resource;
pub mod rollout_view;
pub mod routes;
pub mod scale_set_query;
mod shell;
pub mod status;
pub mod summary;
pub mod table_sort;
pub mod theme;
pub mod time_zone;
pub mod upgrade_form;
pub mod viewer;
pub mod wizard;

pub use app::App;
pub use shell::shell;

/// The browser entry point: hydrates the server-rendered document, as
/// `leptos::mount::hydrate_lazy` does (the routed page waits for its chunks), and then says
/// so ([`app::hydration_complete`]).
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    wasm_bindgen_futures::spawn_local(async {
        let Some(body) = leptos::prelude::document().body() else {
            return;
        };
        leptos::mount::hydrate_from_async(body, App).await.forget();
        app::hydration_complete();
    });
}

/// Room for the split by route to lay the read-only data out again, module by module.
///
/// `cargo leptos build --split` moves each page's constants (its strings, its HTML
/// templates, its messages) into that page's chunk by laying the data segment out anew,
/// each module's part after the last, each aligned. That takes a few kilobytes more than the
/// linker's tight layout, and when the segment would grow the split keeps all of it in the
/// main module instead (it warns "Overlong segment 0 … putting it in main module"). This
/// array is kept by the linker (`#[used]`) but read by no code, so the split places it in no
/// module: its 64 KB are the room (the debug build needs about 20, the release build 3). In
/// the release build the main module then holds 31 KB of the 226 KB of data instead of all
/// of it, and is 237 KB gzip instead of 318 (`scripts/weight.sh` prints the first figure,
/// and fails `make site` when the data stays in the main module).
#[cfg(feature = "hydrate")]
#[used]
static SPLIT_ROOM: [u8; 64 * 1024] = [0xa5; 64 * 1024];
