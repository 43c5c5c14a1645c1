use leptos::prelude::*;

/// What a page shows while its data is on the way (only after hydration: the server
/// waits for the data before answering).
#[component]
pub fn Loading() -> impl IntoView {
    view! {
        <p class="loading" role="status" aria-live="polite">
            "Loading…"
        </p>
    }
}
