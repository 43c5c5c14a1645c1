//! The Instances tab's warm pool panel: the pool's size in words and as its arithmetic, how
//! many members are prepared, and the members themselves, each with its pool state, power
//! state, whether it is prepared and its model. Members are not the set's instances (they
//! serve nothing and count toward no capacity), so they have their own table. The panel
//! shows only while the set has a pool or members; rendered by the server, it is read again
//! after every newer read of the set, which the page's live events bring.

use flotilla_domain::warm_pool::{PreparedSource, Sizing, WarmPoolView};
use flotilla_domain::{Instance, ProvisioningState};
use leptos::prelude::*;

use super::{Live, Polled, Tab};
use crate::api::warm_pool::get_warm_pool;
use crate::components::error_panel::ErrorPanel;
use crate::components::state_chip::StateChip;
use crate::format;
use crate::instance_query;

#[component]
pub(super) fn WarmPoolPanel(live: Live) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let first = crate::resource::new(move || name.clone(), get_warm_pool);
    // No placeholder: most sets have no pool, and the panel would only flash.
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                match first.await {
                    Ok(first) => view! { <Members live first /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Members(live: Live, first: WarmPoolView) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let pool = Polled::new(first);
    Effect::watch(
        move || live.detail.with(|d| d.read_at),
        {
            let name = name.clone();
            move |_, _, _| {
                let name = name.clone();
                pool.reload(move || get_warm_pool(name));
            }
        },
        false,
    );
    let shown = move || {
        pool.value
            .with(|p| p.sizing.is_some() || !p.items.is_empty())
    };
    let words = move || {
        pool.value
            .with(|p| in_words(p.sizing.as_ref(), p.items.len()))
    };
    let explanation = move || pool.value.with(|p| p.explanation.clone());
    let members = move || pool.value.with(|p| members_summary(&p.items));
    let latest_version = Memo::new(move |_| live.detail.with(|d| d.scale_set.model_version));
    let settings = Tab::Settings.href(&name);
    view! {
        <Show when=shown>
            <section aria-labelledby="warm-pool-heading" class="panel" data-section="warm-pool">
                <h2 id="warm-pool-heading">"Warm pool"</h2>
                <p data-warm-pool="words">{words}</p>
                <p>
                    <code data-warm-pool="explanation">{explanation}</code>
                </p>
                <p role="status" data-warm-pool="members">
                    {members}
                </p>
                <div class="table-wrap" role="region" aria-label="Warm pool members" tabindex="0">
                    <table class="data" aria-label="Warm pool members">
                        <thead>
                            <tr>
                                <th scope="col">"ID"</th>
                                <th scope="col">"Zone"</th>
                                <th scope="col">"Pool state"</th>
                                <th scope="col">"Power"</th>
                                <th scope="col">"Prepared"</th>
                                <th scope="col">"Model"</th>
                            </tr>
                        </thead>
                        <tbody>
                            <For
                                each=move || pool.value.with(|p| p.items.clone())
                                key=|i| (i.id.clone(), i.generation)
                                children=move |member| view! { <MemberRow member latest_version /> }
                            />
                        </tbody>
                    </table>
                </div>
                <p class="muted">
                    "Members serve nothing and count toward no capacity: a scale-out takes the "
                    "prepared ones first. "
                    <a href=settings.clone()>"Change the pool in Settings"</a> "."
                </p>
            </section>
        </Show>
    }
}

#[component]
fn MemberRow(member: Instance, latest_version: Memo<u32>) -> impl IntoView {
    let pool_state = member
        .warm
        .warm_pool_state
        .map_or("—", |s| s.as_str())
        .to_string();
    let prepared = prepared(&member);
    let prepared_title = member
        .warm
        .warm_prepared_at
        .map(|at| format::timestamp(&at));
    let latest = {
        let member = member.clone();
        move || instance_query::is_latest(&member, latest_version.get())
    };
    view! {
        <tr data-member=member.id.clone()>
            <th scope="row" class="mono">
                {member.id.clone()}
            </th>
            <td>{member.zone.clone()}</td>
            <td data-cell="pool-state">{pool_state}</td>
            <td data-cell="power">
                <StateChip state=member.power_state.as_str() />
            </td>
            <td data-cell="prepared" title=prepared_title>
                {prepared}
            </td>
            <td>
                {member.model_version}
                {move || {
                    (!latest()).then(|| view! { <span class="tag tag-warn">"outdated"</span> })
                }}
            </td>
        </tr>
    }
}

/// Whether a member may be taken by a scale-out: `yes` once prepared, `being prepared`
/// before (created, booted, probed), `leaving` while it is deleted.
fn prepared(member: &Instance) -> &'static str {
    if member.provisioning_state == ProvisioningState::Deleting {
        "leaving"
    } else if member.warm.warm_prepared_at.is_some() {
        "yes"
    } else {
        "being prepared"
    }
}

/// The members in one line: `2 prepared, 1 being prepared` (and how many leave).
fn members_summary(items: &[Instance]) -> String {
    let count = |state: &str| items.iter().filter(|i| prepared(i) == state).count();
    let mut text = format!(
        "{} prepared, {} being prepared",
        count("yes"),
        count("being prepared")
    );
    let leaving = count("leaving");
    if leaving > 0 {
        text.push_str(&format!(", {leaving} leaving"));
    }
    text
}

/// The size as a sentence (the arithmetic follows it, as the server states it).
fn in_words(sizing: Option<&Sizing>, members: usize) -> String {
    let Some(s) = sizing else {
        return format!(
            "No warm pool: scale-out creates every instance. {} of the removed pool {} leaving.",
            format::plural(members as u32, "member", "members"),
            if members == 1 { "is" } else { "are" }
        );
    };
    let limit = match s.max_prepared_source {
        PreparedSource::Setting => "the pool's setting",
        PreparedSource::AutoscaleMaximum => "the autoscale maximum",
        PreparedSource::Capacity => "the capacity: no maximum is set and autoscale is off",
    };
    format!(
        "The pool keeps {}: up to {} may be prepared in all ({limit}), the capacity is {}, \
         and the pool never keeps fewer than {}.",
        format::plural(s.size, "instance", "instances"),
        s.max_prepared_capacity,
        s.capacity,
        s.min_size,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_domain::WarmPoolState;
    use flotilla_domain::instance::fixtures::instance;

    #[test]
    fn members_are_counted_by_how_far_they_are() {
        let prepared = instance("web", 0, "1", 1).warm(WarmPoolState::Paused, true);
        let preparing = instance("web", 1, "1", 1).warm(WarmPoolState::Paused, false);
        let mut leaving = instance("web", 2, "1", 1).warm(WarmPoolState::Paused, true);
        leaving.provisioning_state = ProvisioningState::Deleting;
        assert_eq!(members_summary(&[]), "0 prepared, 0 being prepared");
        assert_eq!(
            members_summary(&[prepared.clone(), preparing.clone(), prepared.clone()]),
            "2 prepared, 1 being prepared"
        );
        assert_eq!(
            members_summary(&[prepared, preparing, leaving]),
            "1 prepared, 1 being prepared, 1 leaving"
        );
    }

    #[test]
    fn the_size_in_words() {
        let sizing = Sizing {
            max_prepared_capacity: 4,
            max_prepared_source: PreparedSource::Setting,
            capacity: 1,
            min_size: 1,
            size: 3,
        };
        assert_eq!(
            in_words(Some(&sizing), 0),
            "The pool keeps 3 instances: up to 4 may be prepared in all (the pool's setting), \
             the capacity is 1, and the pool never keeps fewer than 1."
        );
        assert_eq!(
            in_words(None, 2),
            "No warm pool: scale-out creates every instance. 2 members of the removed pool \
             are leaving."
        );
    }
}
