use leptos::prelude::*;
use leptos_router::hooks::use_location;

use crate::viewer::may;

/// Every item of the main navigation, as `(href, label)`.
const ITEMS: [(&str, &str); 7] = [
    ("/", "Overview"),
    ("/scale-sets", "Scale sets"),
    ("/scale-sets/new", "Create scale set"),
    ("/activity", "Activity"),
    ("/hosts", "Hosts"),
    ("/replicas", "Replicas"),
    ("/tokens", "API tokens"),
];

/// Whether `path` is `href` or a page under it (`/scale-sets/web` is under `/scale-sets`,
/// `/scale-setsx` is not). `/` is under nothing but itself.
fn under(path: &str, href: &str) -> bool {
    let path = path.trim_end_matches('/');
    let href = href.trim_end_matches('/');
    if href.is_empty() {
        return path.is_empty();
    }
    path == href
        || path
            .strip_prefix(href)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The one navigation item that is current on `path`: the deepest one the path is under,
/// so the wizard (`/scale-sets/new`) is "Create scale set" and not also "Scale sets".
fn current_item(path: &str) -> Option<&'static str> {
    ITEMS
        .iter()
        .map(|(href, _)| *href)
        .filter(|href| under(path, href))
        .max_by_key(|href| href.len())
}

/// The main navigation. The current section (one item at most) has `aria-current="page"`.
/// "Create scale set" shows only to those who may (a fleet-wide Contributor).
#[component]
pub fn SideNav() -> impl IntoView {
    let may_create = may("create-scale-set", None).allowed();
    let pathname = use_location().pathname;
    let current = Memo::new(move |_| pathname.with(|p| current_item(p)));
    view! {
        <nav class="sidenav" aria-label="Main">
            <ul>
                {ITEMS
                    .into_iter()
                    .filter(|(href, _)| may_create || *href != "/scale-sets/new")
                    .map(|(href, label)| {
                        view! {
                            <li>
                                <a
                                    href=href
                                    aria-current=move || {
                                        (current.get() == Some(href)).then_some("page")
                                    }
                                >
                                    {label}
                                </a>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </nav>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_item_is_current() {
        for (path, item) in [
            ("/", Some("/")),
            ("/scale-sets", Some("/scale-sets")),
            ("/scale-sets/", Some("/scale-sets")),
            ("/scale-sets/web", Some("/scale-sets")),
            ("/scale-sets/web/instances", Some("/scale-sets")),
            ("/scale-sets/new", Some("/scale-sets/new")),
            ("/activity", Some("/activity")),
            ("/tokens", Some("/tokens")),
            ("/scale-setsx", None),
            ("/login", None),
        ] {
            assert_eq!(current_item(path), item, "{path}");
        }
    }
}
