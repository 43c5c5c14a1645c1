use leptos::prelude::*;
use leptos_router::components::A;

use crate::viewer::may;

/// The main navigation. `<A>` marks the current section with `aria-current="page"`.
/// "Create scale set" shows only to those who may (a fleet-wide Contributor).
#[component]
pub fn SideNav() -> impl IntoView {
    let may_create = may("create-scale-set", None).allowed();
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
                {may_create
                    .then(|| {
                        view! {
                            <li>
                                <A href="/scale-sets/new">"Create scale set"</A>
                            </li>
                        }
                    })}
                <li>
                    <A href="/activity">"Activity"</A>
                </li>
                <li>
                    <A href="/hosts">"Hosts"</A>
                </li>
                <li>
                    <A href="/replicas">"Replicas"</A>
                </li>
                <li>
                    <A href="/tokens">"API tokens"</A>
                </li>
            </ul>
        </nav>
    }
}
