use leptos::prelude::*;
use leptos_meta::{Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::components::header::Header;
use crate::components::side_nav::SideNav;
use crate::pages::activity::ActivityPage;
use crate::pages::console::ConsolePage;
use crate::pages::hosts::HostsPage;
use crate::pages::new_scale_set::NewScaleSet;
use crate::pages::not_found::NotFound;
use crate::pages::overview::Overview;
use crate::pages::scale_set::{ScaleSetPage, Tab};
use crate::pages::scale_sets::ScaleSetList;

/// The portal: header, side navigation and the routed page.
///
/// Data pages render in [`SsrMode::Async`]: the server waits for their data and sends
/// complete HTML (with the right status code), so they read fully without JavaScript.
#[component]
pub fn App() -> impl IntoView {
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
            <Header />
            <div class="layout">
                <SideNav />
                <main id="main" class="content" tabindex="-1">
                    <Routes fallback=|| view! { <NotFound /> }>
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
                    </Routes>
                </main>
            </div>
        </Router>
    }
}
