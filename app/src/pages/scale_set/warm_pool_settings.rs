//! The Settings tab's warm pool editor: min size, max prepared capacity (empty: the
//! default), the state members are parked in and whether scaled-in instances return to the
//! pool, with Save and Remove, as one plain form that also works without JavaScript. It
//! shows the size the stored setting gives, with its arithmetic. The fields follow the
//! stored pool (after a save, or a change made elsewhere) and otherwise keep what is typed,
//! so a refused value stays in its field next to why.

use flotilla_domain::WarmPoolState;
use flotilla_domain::warm_pool;
use leptos::form::ActionForm;
use leptos::prelude::*;

use super::Live;
use crate::api::warm_pool::SaveWarmPool;
use crate::components::csrf_field::CsrfField;
use crate::components::permission_note::PermissionNote;
use crate::viewer::may;

/// The fields the server names in its refusals, as the domain's validation names them.
const FIELDS: [&str; 3] = [
    "warm_pool.min_size",
    "warm_pool.max_prepared_capacity",
    "warm_pool.pool_state",
];

#[component]
pub(super) fn WarmPoolSettings(live: Live) -> impl IntoView {
    let name = live
        .detail
        .with_untracked(|d| d.scale_set.spec.name.clone());
    let stored = Memo::new(move |_| live.detail.with(|d| d.scale_set.spec.warm_pool.clone()));
    let sizing = Memo::new(move |_| {
        live.detail
            .with(|d| warm_pool::sizing(&d.scale_set.spec).map(|s| s.explain()))
    });
    let action = ServerAction::<SaveWarmPool>::new();
    // Saved: read the set at once rather than wait for its event.
    Effect::watch(
        move || action.version().get(),
        move |_, _, _| {
            if let Some(Ok(_)) = action.value().get_untracked() {
                live.refresh();
            }
        },
        false,
    );
    let error = move || action.value().get().and_then(Result::err);
    let message = move |field: &'static str| {
        move || {
            error()
                .filter(|e| e.fields.iter().any(|f| f.field == field))
                .map(|e| e.message_for(field))
        }
    };
    let general = move || {
        error()
            .filter(|e| !e.fields.iter().any(|f| FIELDS.contains(&f.field.as_str())))
            .map(|e| e.message)
    };
    let done = move || match action.value().get() {
        Some(Ok(Some(_))) => Some("Saved."),
        Some(Ok(None)) => Some("Warm pool removed: its members are being deleted."),
        _ => None,
    };
    let min_size = move || stored.with(|p| p.as_ref().map_or(0, |p| p.min_size).to_string());
    let max_prepared = move || {
        stored.with(|p| {
            p.as_ref()
                .and_then(|p| p.max_prepared_capacity)
                .map(|m| m.to_string())
                .unwrap_or_default()
        })
    };
    let pool_state =
        move || stored.with(|p| p.as_ref().map_or(WarmPoolState::Stopped, |p| p.pool_state));
    let reuse = move || stored.with(|p| p.as_ref().is_some_and(|p| p.reuse_on_scale_in));
    let permit = may("save-warm-pool", Some(&name));
    let denied = permit.denied();
    let refusal = permit.reason();
    view! {
        <section aria-labelledby="warm-pool-heading" class="panel" data-section="warm-pool">
            <h2 id="warm-pool-heading">"Warm pool"</h2>
            <p class="muted">
                "Instances created ahead of need, prepared (booted and found healthy once) and "
                "parked, so a scale-out brings them into service in the time it takes to resume "
                "them. The pool keeps max(min size, max prepared capacity − capacity) of them."
            </p>
            <p data-warm-pool="sizing">
                {move || match sizing.get() {
                    Some(explanation) => {
                        view! {
                            "Size now: "
                            <code>{explanation}</code>
                        }
                            .into_any()
                    }
                    None => "No warm pool: scale-out creates every instance.".into_any(),
                }}
            </p>
            <PermissionNote what="Changing the warm pool" permit />
            <ActionForm action attr:class="warm-pool-form" attr:data-form="warm-pool">
                <CsrfField />
                <input type="hidden" name="name" value=name.clone() />
                <fieldset disabled=denied>
                    <legend>"Setting"</legend>
                    <div class="field">
                        <label>
                            "Min size "
                            <input
                                name="input[min_size]"
                                type="text"
                                inputmode="numeric"
                                autocomplete="off"
                                size="6"
                                value=min_size
                                prop:value=min_size
                                aria-describedby="warm-pool-min-size-error"
                            />
                        </label>
                        <p
                            id="warm-pool-min-size-error"
                            class="field-error"
                            role="alert"
                            data-error="warm_pool.min_size"
                        >
                            {message("warm_pool.min_size")}
                        </p>
                    </div>
                    <div class="field">
                        <label>
                            "Max prepared capacity "
                            <input
                                name="input[max_prepared_capacity]"
                                type="text"
                                inputmode="numeric"
                                autocomplete="off"
                                size="6"
                                value=max_prepared
                                prop:value=max_prepared
                                aria-describedby="warm-pool-max-hint warm-pool-max-error"
                            />
                        </label>
                        <span id="warm-pool-max-hint" class="hint">
                            " Empty: the autoscale maximum, else the capacity."
                        </span>
                        <p
                            id="warm-pool-max-error"
                            class="field-error"
                            role="alert"
                            data-error="warm_pool.max_prepared_capacity"
                        >
                            {message("warm_pool.max_prepared_capacity")}
                        </p>
                    </div>
                    <div class="field">
                        <label>
                            "Pool state "
                            <select
                                name="input[pool_state]"
                                prop:value=move || pool_state().as_str()
                                aria-describedby="warm-pool-state-error"
                            >
                                {WarmPoolState::ALL
                                    .iter()
                                    .map(|&state| {
                                        view! {
                                            <option
                                                value=state.as_str()
                                                selected=move || pool_state() == state
                                            >
                                                {state_label(state)}
                                            </option>
                                        }
                                    })
                                    .collect_view()}
                            </select>
                        </label>
                        <p
                            id="warm-pool-state-error"
                            class="field-error"
                            role="alert"
                            data-error="warm_pool.pool_state"
                        >
                            {message("warm_pool.pool_state")}
                        </p>
                    </div>
                    <div class="field field-check">
                        <label>
                            <input
                                name="input[reuse_on_scale_in]"
                                type="checkbox"
                                checked=reuse
                                prop:checked=reuse
                            />
                            " Reuse on scale-in: a scaled-in instance returns to the pool"
                        </label>
                    </div>
                    <div class="field-actions">
                        <button type="submit" name="op" value="save" title=refusal.clone()>
                            "Save"
                        </button>
                        " "
                        <button
                            type="submit"
                            name="op"
                            value="remove"
                            class="danger"
                            disabled=move || stored.with(Option::is_none)
                            title=refusal
                        >
                            "Remove"
                        </button>
                    </div>
                </fieldset>
            </ActionForm>
            {move || {
                done()
                    .map(|text| {
                        view! {
                            <p class="notice" role="status" data-state="warm-pool-saved">
                                {text}
                            </p>
                        }
                    })
            }}
            <p class="field-error" role="alert" data-error="save-warm-pool">
                {general}
            </p>
        </section>
    }
}

/// A pool state as the select shows it: how fast a member serves, and what it costs.
fn state_label(state: WarmPoolState) -> &'static str {
    match state {
        WarmPoolState::Running => "running (fastest; uses CPU and RAM)",
        WarmPoolState::Paused => "paused (RAM kept, no CPU)",
        WarmPoolState::Saved => "saved (memory on disk, RAM released)",
        WarmPoolState::Stopped => "stopped (shut off; slowest, cheapest)",
    }
}
