use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::activity_log::ActivityLog;
use crate::components::breadcrumbs::Breadcrumbs;

/// `/activity`: the whole fleet's activity log ([`ActivityLog`]), filtered and paged by the
/// URL query (`?scale_set=web&result=failed&before=123`); live in the browser.
#[component]
pub fn ActivityPage() -> impl IntoView {
    view! {
        <Title text="Activity" />
        <Breadcrumbs trail=vec![
            ("Overview".to_string(), Some("/".to_string())),
            ("Activity".to_string(), None),
        ] />
        <h1>"Activity"</h1>
        <p class="muted">"What happened in the fleet, newest first. Times are UTC."</p>
        <ActivityLog />
    }
}
