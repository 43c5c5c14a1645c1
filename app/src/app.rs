use leptos::prelude::*;
use leptos_meta::{Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::hooks::use_location;
use leptos_router::{SsrMode, path};

use crate::components::header::Header;
use crate::components::side_nav::SideNav;
use crate::pages::activity::ActivityPage;
use crate::pages::console::ConsolePage;
use crate::pages::hosts::HostsPage;
use crate::pages::login::LoginPage;
use crate::pages::new_scale_set::NewScaleSet;
use crate::pages::not_found::NotFound;
use crate::pages::overview::Overview;
use crate::pages::replicas::ReplicasPage;
use crate::pages::scale_set::{ScaleSetPage, Tab};
use crate::pages::scale_sets::ScaleSetList;
use crate::pages::tokens::TokensPage;
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

    // Effects run only in the browser, after hydration: tests wait for this marker.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

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
                        <Route path=path!("/login") view=LoginPage />
                        <Route path=path!("/tokens") view=TokensPage ssr=SsrMode::Async />
                        <Route path=path!("/") view=Overview ssr=SsrMode::Async />
                        <Route path=path!("/scale-sets") view=ScaleSetList ssr=SsrMode::Async />
                        <Route path=path!("/scale-sets/new") view=NewScaleSet />
                        <Route
                            path=path!("/scale-sets/:name")
                            view=|| view! { <ScaleSetPage tab=Tab::Overview /> }
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/instances")
                            view=|| view! { <ScaleSetPage tab=Tab::Instances /> }
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/scaling")
                            view=|| view! { <ScaleSetPage tab=Tab::Scaling /> }
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/upgrades")
                            view=|| view! { <ScaleSetPage tab=Tab::Upgrades /> }
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/health")
                            view=|| view! { <ScaleSetPage tab=Tab::Health /> }
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/load-balancer")
                            view=|| view! { <ScaleSetPage tab=Tab::LoadBalancer /> }
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/monitoring")
                            view=|| view! { <ScaleSetPage tab=Tab::Monitoring /> }
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/activity")
                            view=|| view! { <ScaleSetPage tab=Tab::Activity /> }
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/settings")
                            view=|| view! { <ScaleSetPage tab=Tab::Settings /> }
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/scale-sets/:name/instances/:id/console")
                            view=ConsolePage
                            ssr=SsrMode::Async
                        />
                        <Route path=path!("/activity") view=ActivityPage ssr=SsrMode::Async />
                        <Route path=path!("/hosts") view=HostsPage ssr=SsrMode::Async />
                        <Route path=path!("/replicas") view=ReplicasPage ssr=SsrMode::Async />
                    </Routes>
                </main>
            </Chrome>
        </Router>
    }
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
