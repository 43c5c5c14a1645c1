use leptos::prelude::*;
use leptos_router::components::A;

/// The main navigation. `<A>` marks the current section with `aria-current="page"`.
#[component]
pub fn SideNav() -> impl IntoView {
    view! {
        <nav class="sidenav" aria-label="Main">
            <ul>
                <li>
                    <A href="/" exact=true>
                        "Overview"
                    </A>
                </li>
                <li>
                    <A href="/scale-sets">"Scale sets"</A>
                </li>
                <li>
                    <A href="/scale-sets/new">"Create scale set"</A>
                </li>
                <li>
                    <A href="/activity">"Activity"</A>
                </li>
                <li>
                    <A href="/hosts">"Hosts"</A>
                </li>
            </ul>
        </nav>
    }
}
