use leptos::prelude::*;

/// The banner across the top: the product's name, linking home.
#[component]
pub fn Header() -> impl IntoView {
    view! {
        <header class="topbar">
            <a class="brand" href="/" aria-label="Flotilla, overview">
                <svg class="brand-mark" viewBox="0 0 32 32" aria-hidden="true" focusable="false">
                    <rect x="3" y="5" width="26" height="6" rx="2" />
                    <rect x="3" y="13" width="26" height="6" rx="2" />
                    <rect x="3" y="21" width="26" height="6" rx="2" />
                </svg>
                <span class="brand-name">"Flotilla"</span>
            </a>
            <span class="tagline">"VM scale sets"</span>
        </header>
    }
}
