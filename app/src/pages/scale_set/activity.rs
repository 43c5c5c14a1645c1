//! The Activity tab: the activity log fixed to this scale set.

use leptos::prelude::*;

use crate::components::activity_log::ActivityLog;

#[component]
pub(super) fn ActivityTab(name: String) -> impl IntoView {
    view! { <ActivityLog scale_set=Some(name) /> }
}
