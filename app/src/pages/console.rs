use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::backend::get_console;
use crate::components::breadcrumbs::Breadcrumbs;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::live::{events_url, use_live_updates};

/// `/scale-sets/:name/instances/:id/console`: the end of an instance's serial console log,
/// read again when the set's instances change and on *Refresh*.
#[component]
pub fn ConsolePage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.with(|p| p.get("name").unwrap_or_default());
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let console = crate::resource::new(move || (name(), id()), |(name, id)| get_console(name, id));
    use_live_updates(move || events_url(Some(&name())), move || console.refetch());
    view! {
        <Title text=move || format!("Console of {}", id()) />
        {move || {
            let name = name();
            view! {
                <Breadcrumbs trail=vec![
                    ("Overview".to_string(), Some("/".to_string())),
                    ("Scale sets".to_string(), Some("/scale-sets".to_string())),
                    (name.clone(), Some(format!("/scale-sets/{name}/instances"))),
                    (format!("{} console", id()), None),
                ] />
            }
        }}
        <h1>"Console of " <span class="mono">{id}</span></h1>
        <p class="muted">
            "The end of the instance's serial console log. "
            <button type="button" class="button" on:click=move |_| console.refetch()>
                "Refresh"
            </button>
        </p>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match console.await {
                    Ok(console) if console.output.is_empty() => {
                        view! {
                            <p class="muted" data-console-empty>
                                "No output yet."
                            </p>
                        }
                            .into_any()
                    }
                    Ok(console) => {
                        view! {
                            <pre class="console" aria-label="Console output" tabindex="0">
                                {console.output}
                            </pre>
                        }
                            .into_any()
                    }
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Transition>
    }
}
