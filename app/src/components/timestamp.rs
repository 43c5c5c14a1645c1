use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::format;

/// A point in time, readable (`2025-01-31 14:05:09 UTC`) and machine-readable.
#[component]
pub fn Timestamp(
    /// When.
    at: DateTime<Utc>,
) -> impl IntoView {
    view! { <time datetime=format::datetime_attr(&at)>{format::timestamp(&at)}</time> }
}
