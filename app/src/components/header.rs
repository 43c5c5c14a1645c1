use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::scale_sets::scale_set_names;
use crate::components::csrf_field::CsrfField;
use crate::components::theme_toggle::ThemeToggle;
use crate::viewer::use_me;

/// The id of the header's search field, which "/" focuses.
const SEARCH_ID: &str = "global-search";

/// The banner across the top: the product's name linking home, a search of scale sets by
/// name, the theme toggle, and who is signed in (their name, linking to their API tokens,
/// their highest role, and a "Sign out" button — a plain form posting to `/auth/logout`).
///
/// The search is a GET form to the scale set list (`/scale-sets?q=…`), so it works without
/// JavaScript. With JavaScript, the field suggests the fleet's names (read afresh each time
/// it gets focus, so they follow sets made or deleted since) and "/" focuses it.
#[component]
pub fn Header() -> impl IntoView {
    let names = RwSignal::new(Vec::<String>::new());
    let suggest = move |_| {
        spawn_local(async move {
            // Suggestions are a convenience: without them the search still works.
            if let Ok(fresh) = scale_set_names().await {
                names.set(fresh);
            }
        });
    };
    // Effects run only in the browser: the shortcut is announced only where it works.
    let slash_works = RwSignal::new(false);
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        shortcut::focus_search_on_slash(SEARCH_ID);
        slash_works.set(true);
    });
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
            // A plain form, not the router's `<Form>`: that one adds the unnamed button to
            // the query (`?q=web&=`). Searching loads the list page, with or without
            // JavaScript.
            <form
                method="get"
                action="/scale-sets"
                class="global-search"
                role="search"
                aria-label="Search"
            >
                <label for=SEARCH_ID class="visually-hidden">
                    "Search scale sets by name"
                </label>
                <input
                    id=SEARCH_ID
                    name="q"
                    type="search"
                    placeholder=move || {
                        if slash_works.get() {
                            "Search scale sets (press /)"
                        } else {
                            "Search scale sets"
                        }
                    }
                    autocomplete="off"
                    list="scale-set-names"
                    aria-keyshortcuts=move || slash_works.get().then_some("/")
                    on:focus=suggest
                />
                <datalist id="scale-set-names">
                    {move || {
                        names
                            .get()
                            .into_iter()
                            .map(|name| view! { <option value=name></option> })
                            .collect_view()
                    }}
                </datalist>
                <button type="submit" class="search-button">
                    "Search"
                </button>
            </form>
            <ThemeToggle />
            <Account />
        </header>
    }
}

/// Who is signed in, and signing out. With authentication off, the name the requests give
/// (everyone is an Owner) and no sign-out.
#[component]
fn Account() -> impl IntoView {
    let me = use_me();
    let role = me.highest_role().map_or("no role", |r| r.as_str());
    let auth = me.auth;
    me.actor.map(|actor| {
        let sign_out = auth.then(|| {
            view! {
                <form method="post" action="/auth/logout" class="sign-out" data-form="sign-out">
                    <CsrfField />
                    <button type="submit">"Sign out"</button>
                </form>
            }
        });
        let account = actor.clone();
        view! {
            <div class="account" data-account=account>
                <a href="/tokens" class="account-name" title="Your API tokens">
                    {actor}
                </a>
                <span class="account-role" data-role=role>
                    {role}
                </span>
                {sign_out}
            </div>
        }
    })
}

/// "/" anywhere but in a field focuses the search, as on many sites.
#[cfg(feature = "hydrate")]
mod shortcut {
    use leptos::ev;
    use leptos::prelude::*;
    use wasm_bindgen::JsCast;
    use web_sys::{HtmlElement, KeyboardEvent};

    /// Listens for "/" on the whole page for as long as the header lives.
    pub fn focus_search_on_slash(id: &'static str) {
        let handle = window_event_listener(ev::keydown, move |event: KeyboardEvent| {
            if event.key() != "/"
                || event.ctrl_key()
                || event.meta_key()
                || event.alt_key()
                || event.default_prevented()
                || typing(&event)
            {
                return;
            }
            if let Some(field) = document()
                .get_element_by_id(id)
                .and_then(|e| e.dyn_into::<HtmlElement>().ok())
            {
                event.prevent_default();
                let _ = field.focus();
            }
        });
        on_cleanup(move || handle.remove());
    }

    /// Whether the key went to something that takes text ("/" is then just a character).
    fn typing(event: &KeyboardEvent) -> bool {
        event
            .target()
            .and_then(|t| t.dyn_into::<HtmlElement>().ok())
            .is_some_and(|e| {
                e.is_content_editable()
                    || matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
            })
    }
}
