use leptos::prelude::*;
use leptos_meta::Title;

use crate::status::set_status;

/// Any path the portal does not know.
#[component]
pub fn NotFound() -> impl IntoView {
    set_status(404);
    view! {
        <Title text="Page not found" />
        <section class="not-found" aria-labelledby="not-found-heading">
            <p class="not-found-code" aria-hidden="true">
                "404"
            </p>
            <h1 id="not-found-heading">"Page not found"</h1>
            <p>"There is nothing at this address. It may have moved, or the link may be wrong."</p>
            <p>
                <a href="/">"Go to the overview"</a>
                " or "
                <a href="/scale-sets">"see all scale sets"</a>
                "."
            </p>
        </section>
    }
}
