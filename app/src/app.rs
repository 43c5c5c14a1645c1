use leptos::prelude::*;
use leptos_meta::{Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::hooks::use_location;
use leptos_router::{SsrMode, path};

use crate::components::header::Header;
use crate::components::side_nav::SideNav;
use crate::pages::not_found::NotFound;
use crate::routes::*;
use crate::viewer::Viewer;

/// The portal: header, side navigation and the routed page (the login page alone, without
/// them).
///
/// Data pages render in [`SsrMode::Async`]: the server waits for their data and sends
/// complete HTML (with the right status code), so they read fully without JavaScript.
///
/// Who is looking ([`Viewer`]) is provided as context to every component: computed by the
/// server from the request's caller and carried to the browser in the hydration data, so
/// both render the same controls.
#[component]
pub fn App() -> impl IntoView {
    // First, before anything else takes a hydration id: the browser reads it back by order.
    let viewer = SharedValue::new(current_viewer).into_inner();
    let auth_off = !viewer.me.auth;
    provide_context(viewer);
    provide_meta_context();

    view! {
        <Title formatter=|text: String| {
            if text.is_empty() { "Flotilla".to_string() } else { format!("{text} · Flotilla") }
        } />
        <Router>
            <a class="skip-link" href="#main">
                "Skip to content"
            </a>
            {auth_off.then(|| view! { <AuthOffBanner /> })}
            <Chrome>
                <main id="main" class="content" tabindex="-1">
                    <Routes fallback=|| view! { <NotFound /> }>
                        <Route path=path!("/login") view=LoginRoute::lazy() />
                        <Route path=path!("/tokens") view=TokensRoute::lazy() ssr=SsrMode::Async />
                        <Route path=path!("/") view=OverviewRoute::lazy() ssr=SsrMode::Async />
                        <Route
                            path=path!("/scale-sets")
                            view=ScaleSetsRoute::lazy()
                            ssr=SsrMode::Async
                        />
                        <Route path=path!("/scale-sets/new") view=NewScaleSetRoute::lazy() />
                        <Route
                            path=path!("/scale-sets/:name")
                            view=ScaleSetOverviewRoute::lazy()
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/instances")
                            view=ScaleSetInstancesRoute::lazy()
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/scaling")
                            view=ScaleSetScalingRoute::lazy()
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/upgrades")
                            view=ScaleSetUpgradesRoute::lazy()
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/health")
                            view=ScaleSetHealthRoute::lazy()
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/load-balancer")
                            view=ScaleSetLoadBalancerRoute::lazy()
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/monitoring")
                            view=ScaleSetMonitoringRoute::lazy()
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/activity")
                            view=ScaleSetActivityRoute::lazy()
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/settings")
                            view=ScaleSetSettingsRoute::lazy()
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/instances/:id/console")
                            view=ConsoleRoute::lazy()
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/activity")
                            view=ActivityRoute::lazy()
                            ssr=SsrMode::Async
                        />
                        <Route path=path!("/hosts") view=HostsRoute::lazy() ssr=SsrMode::Async />
                        <Route
                            path=path!("/replicas")
                            view=ReplicasRoute::lazy()
                            ssr=SsrMode::Async
                        />
                    </Routes>
                </main>
            </Chrome>
        </Router>
    }
}

#[cfg(feature = "hydrate")]
thread_local! {
    /// Whether the whole document is hydrated, the routed page included.
    static HYDRATED: ArcRwSignal<bool> = ArcRwSignal::new(false);
}

/// Marks the document hydrated, the routed page included: `<body data-hydrated="true">`,
/// which the browser tests wait for, and [`hydrated`]. The page hydrates last and in steps
/// (its chunks arrive, then each `Suspense` in it), between which other tasks run.
#[cfg(feature = "hydrate")]
pub(crate) fn hydration_complete() {
    if let Some(body) = document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
    HYDRATED.with(|hydrated| hydrated.set(true));
}

/// Whether the document is hydrated (tracked): what changes a page's data in the browser —
/// live updates, periodic reads — starts only then, so that no part of the page renders
/// anew before it is hydrated (it would no longer match the server's HTML).
#[cfg(feature = "hydrate")]
pub(crate) fn hydrated() -> bool {
    HYDRATED.with(|hydrated| hydrated.get())
}

/// The header and the side navigation around the page, except on the login page.
#[component]
fn Chrome(children: Children) -> impl IntoView {
    let location = use_location();
    let bare = Memo::new(move |_| location.pathname.with(|path| path == "/login"));
    view! {
        <Show when=move || !bare.get()>
            <Header />
        </Show>
        <div class="layout" class:layout-bare=move || bare.get()>
            <Show when=move || !bare.get()>
                <SideNav />
            </Show>
            {children()}
        </div>
    }
}

/// Across every page while authentication is off (`--auth none`).
#[component]
fn AuthOffBanner() -> impl IntoView {
    view! {
        <div class="auth-off-banner" role="alert" data-banner="auth-off">
            "Authentication is off (--auth none): anyone who can reach this server controls every VM."
        </div>
    }
}

/// The request's viewer (on the server; the browser reads the server's back while it
/// hydrates, so this default is never used there).
fn current_viewer() -> Viewer {
    #[cfg(feature = "ssr")]
    {
        crate::api::viewer()
    }
    #[cfg(not(feature = "ssr"))]
    {
        Viewer::default()
    }
}
