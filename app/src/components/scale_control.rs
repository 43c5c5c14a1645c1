//! How a scale set's capacity is set: by hand, or by the autoscale profile that applies.

use chrono::{DateTime, Utc};
use flotilla_domain::autoscale::setting::AutoscaleSetting;
use flotilla_domain::schedule;
use leptos::prelude::*;

use crate::api::scale_sets::SetCapacity;
use crate::components::capacity_form::CapacityForm;
use crate::format;

/// How a scale set's capacity is set: by hand with the [`CapacityForm`] while autoscale is
/// off, otherwise a notice that autoscale sets it, with the profile that applies now, its
/// bounds and why it applies (the setting's schedules resolved with the domain's rules at
/// `now`, the instant the set was read).
#[component]
pub fn ScaleControl(
    /// The scale set.
    name: String,
    /// Its autoscale setting.
    #[prop(into)]
    autoscale: Signal<Option<AutoscaleSetting>>,
    /// Its capacity.
    #[prop(into)]
    capacity: Signal<u32>,
    /// When the set was read.
    #[prop(into)]
    now: Signal<DateTime<Utc>>,
    /// The capacity form's action (the page refetches after it).
    action: ServerAction<SetCapacity>,
    /// A link to where autoscale is edited, when elsewhere.
    #[prop(optional)]
    editor_href: Option<String>,
) -> impl IntoView {
    let profile = move || {
        autoscale.with(|a| {
            let a = a.as_ref().filter(|a| a.enabled)?;
            Some(match schedule::resolve(&a.whens(), now.get()) {
                Some(r) => {
                    let p = &a.profiles[r.index];
                    let b = p.capacity;
                    (
                        p.name.clone(),
                        format!(
                            "{}–{} instances, default {}",
                            b.minimum, b.maximum, b.default
                        ),
                        r.reason,
                    )
                }
                None => (
                    "none".to_string(),
                    "—".to_string(),
                    "no profile applies now".to_string(),
                ),
            })
        })
    };
    let manual = move || profile().is_none();
    view! {
        <Show
            when=manual
            fallback=move || {
                let (profile_name, bounds, reason) = profile().unwrap_or_default();
                let link = editor_href
                    .clone()
                    .map(|href| {
                        view! {
                            <p>
                                <a href=href>"Edit autoscale"</a>
                            </p>
                        }
                    });
                view! {
                    <div class="autoscale-notice" role="status" data-state="autoscale">
                        <p class="panel-title">
                            "Autoscale sets the capacity: now "
                            {move || format::plural(capacity.get(), "instance", "instances")} "."
                        </p>
                        <dl class="facts">
                            <div>
                                <dt>"Profile"</dt>
                                <dd data-fact="profile">{profile_name}</dd>
                            </div>
                            <div>
                                <dt>"Bounds"</dt>
                                <dd data-fact="bounds">{bounds}</dd>
                            </div>
                            <div>
                                <dt>"Why this profile"</dt>
                                <dd>{reason}</dd>
                            </div>
                        </dl>
                        <p class="muted">
                            "To set the capacity by hand, turn autoscale off (or remove it)."
                        </p>
                        {link}
                    </div>
                }
            }
        >
            <CapacityForm name=name.clone() action />
        </Show>
    }
}
