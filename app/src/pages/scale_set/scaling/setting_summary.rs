//! An autoscale setting in words: each profile with its bounds, when it applies, its rules
//! and its target: the stored setting before the Scaling tab hydrates (and without
//! JavaScript), and the shadow setting always.

use flotilla_domain::autoscale::setting::{AutoscaleSetting, PredictiveMode};
use leptos::prelude::*;

use crate::autoscale_draft::describe_rule;
use crate::format;

#[component]
pub(super) fn SettingSummary(setting: AutoscaleSetting) -> impl IntoView {
    view! {
        <ul class="profiles-summary">
            {setting
                .profiles
                .iter()
                .map(|p| {
                    let when = match (&p.recurrence, &p.fixed_date) {
                        (Some(r), _) => r.describe(),
                        (None, Some(f)) => {
                            format!(
                                "{} – {} ({})",
                                f.start.format("%Y-%m-%d %H:%M"),
                                f.end.format("%Y-%m-%d %H:%M"),
                                f.time_zone,
                            )
                        }
                        (None, None) => "the default profile".to_string(),
                    };
                    view! {
                        <li data-profile=p.name.clone()>
                            <strong>{p.name.clone()}</strong>
                            {format!(
                                " — {}–{} instances, default {}; {when}",
                                p.capacity.minimum,
                                p.capacity.maximum,
                                p.capacity.default,
                            )}
                            <ul>
                                {p
                                    .rules
                                    .iter()
                                    .map(|r| view! { <li>{describe_rule(r)}</li> })
                                    .collect_view()}
                                {p
                                    .target_tracking
                                    .as_ref()
                                    .map(|t| {
                                        view! {
                                            <li>
                                                {format!("target tracking: {} at {}", t.metric, t.target)}
                                            </li>
                                        }
                                    })}
                                {p
                                    .predictive
                                    .as_ref()
                                    .map(|f| {
                                        view! {
                                            <li data-predictive="">
                                                {format!(
                                                    "predictive: {} at {} per instance, {} (season {})",
                                                    f.metric,
                                                    f.target,
                                                    match f.mode {
                                                        PredictiveMode::ForecastOnly => "forecast only",
                                                        PredictiveMode::ForecastAndScale => "forecast and scale",
                                                    },
                                                    format::seconds(f.season_seconds),
                                                )}
                                            </li>
                                        }
                                    })}
                            </ul>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}
