//! Every page as a lazy route: the browser's wasm is split by route
//! (`cargo leptos build --split`), so a page downloads the main module (the router, the
//! header and navigation, the reactive runtime) and its own chunk, with the chunks it shares
//! with other pages, instead of the whole portal.
//!
//! A route has no data of its own to start ahead of its view: each page makes its resources
//! in its component body, as before. On a first visit the server renders the page with its
//! data and names the page's chunks in `<link rel="preload">`s ([`SplitPreloads`]), so the
//! browser fetches them beside the main module and hydrates (`crate::hydrate`, as Leptos's
//! `hydrate_lazy`) once they are in; on a later navigation the page's chunks come before its
//! reads.
//!
//! The split of route `FooRoute` is named `__foo_route_view_<hash>` in the split manifest
//! (after the lazy view function its macro makes); [`SplitManifest`] and
//! `scripts/weight.sh` find a route's chunks by that name: rename them together.

// The lazy-route macros declare each chunk's loader as an extern import (`wasm_split`).
#![allow(unsafe_code)]

#[cfg(feature = "ssr")]
use std::{collections::HashMap, sync::Arc};

use leptos::prelude::*;
use leptos_router::{Lazy, LazyRoute, lazy_route};

use crate::pages::activity::ActivityPage;
use crate::pages::console::ConsolePage;
use crate::pages::hosts::HostsPage;
use crate::pages::login::LoginPage;
use crate::pages::new_scale_set::NewScaleSet;
use crate::pages::overview::Overview;
use crate::pages::replicas::ReplicasPage;
use crate::pages::scale_set::{self, ScaleSetPage, Tab};
use crate::pages::scale_sets::ScaleSetList;
use crate::pages::tokens::TokensPage;

/// Declares each route: a unit type whose lazy view renders the given page.
macro_rules! lazy_routes {
    ($($(#[$doc:meta])* $route:ident => $view:expr;)*) => {$(
        $(#[$doc])*
        pub struct $route;

        impl $route {
            /// The route's view for `<Route view=…>`.
            pub fn lazy() -> Lazy<Self> {
                Lazy::new()
            }
        }

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                Self
            }

            fn view(_this: Self) -> AnyView {
                view! {
                    <SplitPreloads route=stringify!($route) />
                    {$view}
                }
                .into_any()
            }
        }
    )*};
}

lazy_routes! {
    /// `/login`.
    LoginRoute => view! { <LoginPage /> };
    /// `/tokens`.
    TokensRoute => view! { <TokensPage /> };
    /// `/`.
    OverviewRoute => view! { <Overview /> };
    /// `/scale-sets`.
    ScaleSetsRoute => view! { <ScaleSetList /> };
    /// `/scale-sets/new`.
    NewScaleSetRoute => view! { <NewScaleSet /> };
    /// `/scale-sets/:name`.
    ScaleSetOverviewRoute =>
        view! { <ScaleSetPage tab=Tab::Overview body=scale_set::overview_tab /> };
    /// `/scale-sets/:name/instances`.
    ScaleSetInstancesRoute =>
        view! { <ScaleSetPage tab=Tab::Instances body=scale_set::instances_tab /> };
    /// `/scale-sets/:name/scaling`.
    ScaleSetScalingRoute =>
        view! { <ScaleSetPage tab=Tab::Scaling body=scale_set::scaling_tab /> };
    /// `/scale-sets/:name/upgrades`.
    ScaleSetUpgradesRoute =>
        view! { <ScaleSetPage tab=Tab::Upgrades body=scale_set::upgrades_tab /> };
    /// `/scale-sets/:name/health`.
    ScaleSetHealthRoute =>
        view! { <ScaleSetPage tab=Tab::Health body=scale_set::health_tab /> };
    /// `/scale-sets/:name/load-balancer`.
    ScaleSetLoadBalancerRoute =>
        view! { <ScaleSetPage tab=Tab::LoadBalancer body=scale_set::load_balancer_tab /> };
    /// `/scale-sets/:name/monitoring`.
    ScaleSetMonitoringRoute =>
        view! { <ScaleSetPage tab=Tab::Monitoring body=scale_set::monitoring_tab /> };
    /// `/scale-sets/:name/activity`.
    ScaleSetActivityRoute =>
        view! { <ScaleSetPage tab=Tab::Activity body=scale_set::activity_tab /> };
    /// `/scale-sets/:name/settings`.
    ScaleSetSettingsRoute =>
        view! { <ScaleSetPage tab=Tab::Settings body=scale_set::settings_tab /> };
    /// `/scale-sets/:name/instances/:id/console`.
    ConsoleRoute => view! { <ConsolePage /> };
    /// `/activity`.
    ActivityRoute => view! { <ActivityPage /> };
    /// `/hosts`.
    HostsRoute => view! { <HostsPage /> };
    /// `/replicas`.
    ReplicasRoute => view! { <ReplicasPage /> };
}

/// The split manifest the last front-end build wrote (`__wasm_split_manifest.json`: each
/// split's chunk files), which the server reads at start and provides to every render.
#[cfg(feature = "ssr")]
#[derive(Clone, Debug, Default)]
pub struct SplitManifest {
    /// Where the site's files are served from, e.g. `/pkg`.
    pkg_url: String,
    /// The chunk files (without `.wasm`) each split needs, by split name.
    splits: Arc<HashMap<String, Vec<String>>>,
}

#[cfg(feature = "ssr")]
impl SplitManifest {
    /// The manifest in `pkg_dir`, served under `pkg_url`; empty when the site was not built
    /// split (no file) — pages then name no chunks.
    pub fn read(pkg_dir: &std::path::Path, pkg_url: &str) -> Self {
        let splits = std::fs::read(pkg_dir.join("__wasm_split_manifest.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Self {
            pkg_url: pkg_url.trim_end_matches('/').to_string(),
            splits: Arc::new(splits),
        }
    }

    /// The chunk files of route type `route` (`OverviewRoute`).
    fn chunks(&self, route: &str) -> &[String] {
        let prefix = format!("__{}_view_", snake_case(route));
        self.splits
            .iter()
            .find(|(name, _)| {
                name.strip_prefix(&prefix)
                    .is_some_and(|hash| hash.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|(_, chunks)| chunks.as_slice())
            .unwrap_or_default()
    }
}

/// `OverviewRoute` → `overview_route`, as the lazy-route macro names a route's split.
#[cfg(feature = "ssr")]
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// `<link rel="preload">`s for the chunks of `route` (and the split loader's module) at the
/// top of the page, so that on a first visit the browser fetches them with the main module
/// rather than after it — at a low priority, behind the stylesheet and the main module, as
/// the page is already painted from the server's HTML and its chunks only make it live.
/// The server reads the list from its [`SplitManifest`] and carries it to the browser in
/// the hydration data, which renders the same links; on a later navigation in the browser
/// the list is empty, as the router loads the chunks itself.
///
/// Leptos 0.8 adds such links to the head by itself, but only when the thread rendering
/// the response happens to have an owner left over from an earlier render (it reads the
/// manifest from the ambient owner after the render): not on a worker thread's first
/// request. When both are there, the browser fetches each file once.
#[component]
fn SplitPreloads(route: &'static str) -> impl IntoView {
    let (pkg_url, chunks) = SharedValue::new(move || route_chunks(route)).into_inner();
    let loader = (!chunks.is_empty()).then(|| {
        view! {
            <link
                rel="modulepreload"
                href=format!("{pkg_url}/__wasm_split.______________________.js")
                crossorigin="anonymous"
            />
        }
    });
    view! {
        {loader}
        {chunks
            .into_iter()
            .map(|chunk| {
                view! {
                    <link
                        rel="preload"
                        href=format!("{pkg_url}/{chunk}.wasm")
                        r#as="fetch"
                        type="application/wasm"
                        crossorigin="anonymous"
                        fetchpriority="low"
                    />
                }
            })
            .collect_view()}
    }
}

/// Where the chunks are served, and the chunks of `route`: from the server's manifest; none
/// in the browser outside hydration.
fn route_chunks(route: &str) -> (String, Vec<String>) {
    #[cfg(feature = "ssr")]
    {
        use_context::<SplitManifest>()
            .map(|manifest| (manifest.pkg_url.clone(), manifest.chunks(route).to_vec()))
            .unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        let _ = route;
        Default::default()
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn a_route_finds_its_own_split_only() {
        let splits = HashMap::from([
            (
                "__scale_set_overview_route_view_123".to_string(),
                vec!["chunk_1".to_string()],
            ),
            (
                "__overview_route_view_123".to_string(),
                vec!["chunk_2".to_string(), "split_x".to_string()],
            ),
        ]);
        let manifest = SplitManifest {
            pkg_url: "/pkg".into(),
            splits: Arc::new(splits),
        };
        assert_eq!(manifest.chunks("OverviewRoute"), ["chunk_2", "split_x"]);
        assert_eq!(manifest.chunks("ScaleSetOverviewRoute"), ["chunk_1"]);
        assert!(manifest.chunks("HostsRoute").is_empty());
        assert_eq!(
            snake_case("ScaleSetLoadBalancerRoute"),
            "scale_set_load_balancer_route"
        );
    }

    #[test]
    fn a_site_built_without_split_names_no_chunks() {
        let manifest = SplitManifest::read(std::path::Path::new("/nonexistent"), "/pkg/");
        assert!(manifest.chunks("OverviewRoute").is_empty());
        assert_eq!(manifest.pkg_url, "/pkg");
    }
}
