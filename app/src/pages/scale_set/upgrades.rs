//! The Upgrades tab: the current (or latest) rollout live — its progress, batches,
//! instances, gates, why it holds, and Pause / Resume (Approve) / Cancel / Roll back
//! ([`rollout`]); the model with a form to change it that previews the rollout first, the
//! version history and a comparison of two versions ([`model`], [`versions`]); the upgrade
//! policy editor ([`policy`]); a plan's batches and field changes ([`plan`]); and past
//! rollouts ([`history`]).
//!
//! The versions and rollouts are read with the set (server-rendered), then read again in
//! the browser on every `rollout_changed` event and whenever the set's model version
//! changes, so a rollout moves on the page without a reload.

mod history;
mod model;
mod plan;
mod policy;
mod rollout;
mod versions;

use leptos::prelude::*;

use super::{Live, Polled};
use crate::api::upgrades::{UpgradesRead, read_upgrades};
use crate::api::wizard::get_wizard_options;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::live::{self, use_live_events};
use crate::rollout_view;

/// What the tab's parts share: the set, the versions and rollouts, and how to read them
/// again.
#[derive(Clone, Copy)]
struct Upgrades {
    live: Live,
    name: StoredValue<String>,
    read: Polled<UpgradesRead>,
}

impl Upgrades {
    fn reload(self) {
        let name = self.name.get_value();
        self.read.reload(move || read_upgrades(name));
    }
}

#[component]
pub(super) fn UpgradesTab(live: Live) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    // Every resource of the tab is made here, none below the Suspend: on the server a
    // Suspense runs its children once more whenever their reads were done before it first
    // looked, which a resource made inside them would follow with an id the browser does not
    // give it (the comparison read a version list and hydration failed, now and then).
    let comparison = versions::Comparison::new(name.clone());
    let first = crate::resource::new(move || name.clone(), read_upgrades);
    let options = crate::resource::new(|| (), |()| get_wizard_options());
    view! {
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match (first.await, options.await) {
                    (Ok(first), Ok(options)) => {
                        view! { <UpgradesView live first images=options.images comparison /> }
                            .into_any()
                    }
                    (Err(error), _) | (_, Err(error)) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn UpgradesView(
    live: Live,
    first: UpgradesRead,
    images: Vec<String>,
    comparison: versions::Comparison,
) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let up = Upgrades {
        live,
        name: StoredValue::new(name.clone()),
        read: Polled::new(first),
    };
    use_live_events(
        move || live::events_url(Some(&name)),
        live::ROLLOUT_EVENTS,
        move || up.reload(),
    );
    // A new model version (stored here, by a rollback, or elsewhere) joins the history.
    Effect::watch(
        move || live.detail.with(|d| d.scale_set.model_version),
        move |_, _, _| up.reload(),
        false,
    );
    let current = Memo::new(move |_| {
        up.read
            .value
            .with(|r| rollout_view::current(&r.rollouts).map(|v| v.id))
    });
    view! {
        <section aria-labelledby="rollout-heading" class="panel" data-section="rollout">
            <h2 id="rollout-heading">"Rollout"</h2>
            {move || match current.get() {
                Some(id) => view! { <rollout::RolloutDetail up id controls=true /> }.into_any(),
                None => {
                    view! {
                        <p class="muted" data-state="no-rollout">
                            "No rollout yet: change the model below, or upgrade chosen instances on the Instances tab."
                        </p>
                    }
                        .into_any()
                }
            }}
        </section>
        <model::ModelSection up images />
        <versions::Versions up comparison />
        <policy::PolicyEditor up />
        <history::History up />
    }
}
