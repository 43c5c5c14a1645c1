//! `/scale-sets/:name[/<tab>]`: one scale set, in tabs — Overview (facts, capacity, counts,
//! a live CPU and requests chart, the zones × fault domains grid), Instances (sortable,
//! filterable, selectable table with actions, upgrading the selected instances; the warm
//! pool's members apart), Scaling
//! (manual capacity or the autoscale notice, the autoscale editor with its schedule grid,
//! the decisions, the mock's demand), Upgrades (the live rollout with its controls, the
//! model and its versions with a preview of the rollout a change makes, the upgrade
//! policy, past rollouts), Health & repairs (probe, repair policy and service, per-instance
//! health, repair history), Load balancer (frontends, live statistics, pool members,
//! drain/enable), Monitoring (live charts of every metric, per instance too), Activity and
//! Settings (JSON, export, lifecycle hooks, warm pool, delete).
//!
//! The page reads the set once (server-rendered, sent to the browser once), keeps the read
//! in a signal, and in the browser replaces it with newer reads on the server's events and
//! after the person's changes; every part renders from that signal, so forms keep what is
//! typed and the focus stays where it is while the data changes underneath.

mod activity;
mod charts;
mod forecast;
mod health;
mod hooks;
mod instances;
mod load_balancer;
mod monitoring;
mod overview;
mod scaling;
mod settings;
mod upgrades;
mod warm_pool;
mod warm_pool_settings;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::scale_sets::get_scale_set;
use crate::components::breadcrumbs::Breadcrumbs;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::components::state_chip::StateChip;
use crate::live::{self, use_live_updates};
use crate::status::set_status;
use crate::summary::{Detail, ScaleSetDetail};
use flotilla_domain::ScaleSetState;
use flotilla_domain::url::percent_encode;

/// The tabs of a scale set's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Instances,
    Scaling,
    Upgrades,
    Health,
    LoadBalancer,
    Monitoring,
    Activity,
    Settings,
}

impl Tab {
    pub const ALL: [Tab; 9] = [
        Tab::Overview,
        Tab::Instances,
        Tab::Scaling,
        Tab::Upgrades,
        Tab::Health,
        Tab::LoadBalancer,
        Tab::Monitoring,
        Tab::Activity,
        Tab::Settings,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::Instances => "Instances",
            Tab::Scaling => "Scaling",
            Tab::Upgrades => "Upgrades",
            Tab::Health => "Health & repairs",
            Tab::LoadBalancer => "Load balancer",
            Tab::Monitoring => "Monitoring",
            Tab::Activity => "Activity",
            Tab::Settings => "Settings",
        }
    }

    /// A short name for the tab (`data-tab`), and the last segment of its address.
    pub fn slug(self) -> &'static str {
        match self {
            Tab::Overview => "overview",
            Tab::Instances => "instances",
            Tab::Scaling => "scaling",
            Tab::Upgrades => "upgrades",
            Tab::Health => "health",
            Tab::LoadBalancer => "load-balancer",
            Tab::Monitoring => "monitoring",
            Tab::Activity => "activity",
            Tab::Settings => "settings",
        }
    }

    /// How much of the instances the tab reads with the set: the placement grid for the
    /// overview, every record for the load balancer's pool members, the ids for the
    /// per-instance charts, the counts for the others — the Instances and Health tabs read
    /// their rows a page at a time.
    pub fn detail(self) -> Detail {
        match self {
            Tab::Overview => Detail::Grid,
            Tab::LoadBalancer => Detail::Instances,
            Tab::Monitoring => Detail::Ids,
            _ => Detail::Counts,
        }
    }

    /// The tab's address for scale set `name`.
    pub fn href(self, name: &str) -> String {
        let base = format!("/scale-sets/{}", percent_encode(name));
        match self {
            Tab::Overview => base,
            other => format!("{base}/{}", other.slug()),
        }
    }
}

/// A scale set's page, showing `tab` with `body` (one of the `*_tab` functions below, each
/// named by its own route so that the route's lazy chunk carries that tab's code alone).
#[component]
pub fn ScaleSetPage(
    /// The tab to show.
    tab: Tab,
    /// The tab's content.
    body: fn(Live) -> AnyView,
) -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let detail = tab.detail();
    let first = crate::resource::new(name, move |name| get_scale_set(name, detail));
    // A transition, not a suspense: a tab's own reads that are not under a boundary of
    // their own (the Instances tab's page of rows, read again after each action) count
    // towards this one, and a suspense put the whole tab back to "Loading…" while each
    // was pending — the table gone for a moment, a tick made then lost, the next action
    // sent for the rows ticked before. The transition shows the placeholder until the
    // first read only, then keeps the tab while later reads are pending.
    view! {
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match first.await {
                    Ok(Some(first)) => view! { <ScaleSetView first tab body /> }.into_any(),
                    Ok(None) => {
                        set_status(404);
                        view! {
                            <Title text="Scale set not found" />
                            <h1>"Scale set not found"</h1>
                            <p>
                                "There is no scale set named " <code>{name()}</code> ". "
                                <a href="/scale-sets">"See all scale sets"</a> "."
                            </p>
                        }
                            .into_any()
                    }
                    Err(error) => {
                        set_status(500);
                        view! { <ErrorPanel error /> }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// The latest read of the scale set, and how to ask for a newer one.
#[derive(Clone, Copy)]
pub struct Live {
    /// The newest read so far.
    pub detail: RwSignal<ScaleSetDetail>,
    /// Whether the set was found gone since the page was rendered.
    pub gone: RwSignal<bool>,
    /// How much of the instances the reads carry ([`Tab::detail`]).
    read: Detail,
}

impl Live {
    fn new(first: ScaleSetDetail, tab: Tab) -> Self {
        Self {
            detail: RwSignal::new(first),
            gone: RwSignal::new(false),
            read: tab.detail(),
        }
    }

    /// Reads the set again (in the browser; on the server there is nothing to refresh).
    /// A read older than the one shown — answers can overtake each other — is dropped, and
    /// so is one that arrives after the page was left (its signals are gone).
    pub fn refresh(self) {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let Some(name) = self
                .detail
                .try_with_untracked(|d| d.scale_set.spec.name.clone())
            else {
                return;
            };
            match get_scale_set(name, self.read).await {
                Ok(Some(read)) => {
                    if self
                        .detail
                        .try_with_untracked(|d| d.read_at <= read.read_at)
                        == Some(true)
                    {
                        self.detail.try_set(read);
                    }
                }
                Ok(None) => {
                    self.gone.try_set(true);
                }
                // The stream will say when to try again; the page keeps the last read.
                Err(_) => {}
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = self.read;
    }

    /// Takes in instances as a change answered them (newer generations only), so the
    /// page shows their pending state before the next read.
    pub fn merge(self, updated: &[flotilla_domain::Instance]) {
        self.detail.update(|d| {
            for new in updated {
                if let Some(old) = d.instances.iter_mut().find(|i| i.id == new.id)
                    && old.generation < new.generation
                {
                    *old = new.clone();
                }
            }
        });
    }
}

/// A read kept in a signal besides the set's (the repair service, the load balancer's
/// statistics): rendered by the server first, then replaced in the browser by newer reads.
/// An answer to an older request than the one shown is dropped (answers can overtake each
/// other), and so is one that arrives after the page was left.
pub struct Polled<T: Send + Sync + 'static> {
    /// The newest read so far.
    pub value: RwSignal<T>,
    /// The number of the last request sent, and of the one whose answer is shown.
    sequence: StoredValue<(u64, u64)>,
}

impl<T: Send + Sync + 'static> Clone for Polled<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for Polled<T> {}

impl<T: Send + Sync + 'static> Polled<T> {
    pub fn new(first: T) -> Self {
        Self {
            value: RwSignal::new(first),
            sequence: StoredValue::new((0, 0)),
        }
    }

    /// Reads anew with `read` (in the browser; on the server there is nothing to refresh).
    /// A failed read keeps the last one: the next tick or event tries again.
    pub fn reload<F>(self, read: impl FnOnce() -> F + 'static)
    where
        F: std::future::Future<Output = Result<T, ServerFnError>> + 'static,
    {
        #[cfg(feature = "hydrate")]
        {
            let Some(n) = self.sequence.try_update_value(|(sent, _)| {
                *sent += 1;
                *sent
            }) else {
                return;
            };
            leptos::task::spawn_local(async move {
                if let Ok(read) = read().await {
                    let newer = self.sequence.try_update_value(|(_, shown)| {
                        let newer = n > *shown;
                        if newer {
                            *shown = n;
                        }
                        newer
                    });
                    if newer == Some(true) {
                        self.value.try_set(read);
                    }
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (read, self.sequence);
    }
}

/// Calls `tick` every `period` in the browser for as long as the calling component lives
/// (the timer is cleared when it is unmounted), once the document is hydrated. Nothing on
/// the server.
pub fn use_every(period: std::time::Duration, tick: impl Fn() + Clone + Send + Sync + 'static) {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if !crate::app::hydrated() {
            return;
        }
        let tick = tick.clone();
        match set_interval_with_handle(tick, period) {
            Ok(handle) => on_cleanup(move || handle.clear()),
            Err(e) => leptos::logging::warn!("no periodic refresh: {e:?}"),
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (period, tick);
}

/// As [`use_every`], for reads nobody needs while the browser tab is hidden: the ticks
/// are skipped then, and `tick` is called at once when the tab shows again.
pub fn use_every_visible(
    period: std::time::Duration,
    tick: impl Fn() + Clone + Send + Sync + 'static,
) {
    #[cfg(feature = "hydrate")]
    {
        let visible = || !document().hidden();
        use_every(period, {
            let tick = tick.clone();
            move || {
                if visible() {
                    tick();
                }
            }
        });
        Effect::new(move |_| {
            use wasm_bindgen::JsCast;
            use wasm_bindgen::closure::Closure;
            let tick = tick.clone();
            let listener = Closure::<dyn Fn()>::new(move || {
                if visible() {
                    tick();
                }
            });
            let document = document();
            let _ = document.add_event_listener_with_callback(
                "visibilitychange",
                listener.as_ref().unchecked_ref(),
            );
            let held = send_wrapper::SendWrapper::new(listener);
            on_cleanup(move || {
                let listener = held.take();
                let _ = leptos::prelude::document().remove_event_listener_with_callback(
                    "visibilitychange",
                    listener.as_ref().unchecked_ref(),
                );
            });
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (period, tick);
}

#[component]
fn ScaleSetView(first: ScaleSetDetail, tab: Tab, body: fn(Live) -> AnyView) -> impl IntoView {
    let name = first.scale_set.spec.name.clone();
    let live = Live::new(first, tab);
    {
        let name = name.clone();
        use_live_updates(
            move || live::events_url(Some(&name)),
            move || live.refresh(),
        );
    }
    let deleting = move || {
        live.detail
            .with(|d| d.scale_set.state == ScaleSetState::Deleting)
    };
    let trail = vec![
        ("Scale sets".to_string(), Some("/scale-sets".to_string())),
        (name.clone(), Some(Tab::Overview.href(&name))),
        (tab.label().to_string(), None),
    ];
    view! {
        <Title text=format!("{name} · {}", tab.label()) />
        <Breadcrumbs trail />
        <header class="page-header">
            <h1>{name.clone()}</h1>
            {move || deleting().then(|| view! { <StateChip state="deleting" /> })}
        </header>
        <Show when=move || live.gone.get()>
            <div class="panel panel-warn" role="status" data-state="gone">
                <p>
                    "This scale set no longer exists. "
                    <a href="/scale-sets">"See all scale sets"</a> "."
                </p>
            </div>
        </Show>
        <nav class="tabs" aria-label="Scale set sections">
            {Tab::ALL
                .into_iter()
                .map(|t| {
                    view! {
                        <a
                            href=t.href(&name)
                            aria-current=(t == tab).then_some("page")
                            data-tab=t.slug()
                        >
                            {t.label()}
                        </a>
                    }
                })
                .collect_view()}
        </nav>
        {body(live)}
    }
}

/// The Overview tab's content.
pub fn overview_tab(live: Live) -> AnyView {
    view! { <overview::OverviewTab live /> }.into_any()
}

/// The Instances tab's content.
pub fn instances_tab(live: Live) -> AnyView {
    view! { <instances::InstancesTab live /> }.into_any()
}

/// The Scaling tab's content.
pub fn scaling_tab(live: Live) -> AnyView {
    view! { <scaling::ScalingTab live /> }.into_any()
}

/// The Upgrades tab's content.
pub fn upgrades_tab(live: Live) -> AnyView {
    view! { <upgrades::UpgradesTab live /> }.into_any()
}

/// The Health & repairs tab's content.
pub fn health_tab(live: Live) -> AnyView {
    view! { <health::HealthTab live /> }.into_any()
}

/// The Load balancer tab's content.
pub fn load_balancer_tab(live: Live) -> AnyView {
    view! { <load_balancer::LoadBalancerTab live /> }.into_any()
}

/// The Monitoring tab's content.
pub fn monitoring_tab(live: Live) -> AnyView {
    view! { <monitoring::MonitoringTab live /> }.into_any()
}

/// The Activity tab's content.
pub fn activity_tab(live: Live) -> AnyView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    view! { <activity::ActivityTab name /> }.into_any()
}

/// The Settings tab's content.
pub fn settings_tab(live: Live) -> AnyView {
    view! { <settings::SettingsTab live /> }.into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_have_their_own_addresses() {
        let hrefs: Vec<String> = Tab::ALL.iter().map(|t| t.href("web 1")).collect();
        assert_eq!(
            hrefs,
            [
                "/scale-sets/web%201",
                "/scale-sets/web%201/instances",
                "/scale-sets/web%201/scaling",
                "/scale-sets/web%201/upgrades",
                "/scale-sets/web%201/health",
                "/scale-sets/web%201/load-balancer",
                "/scale-sets/web%201/monitoring",
                "/scale-sets/web%201/activity",
                "/scale-sets/web%201/settings"
            ]
        );
    }
}
