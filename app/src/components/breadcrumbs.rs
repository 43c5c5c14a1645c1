use leptos::prelude::*;

/// Where a page sits: the trail from the top, each step a label and, except usually for the
/// last, a link. The last step is the current page (`aria-current="page"`).
///
/// `trail` is a plain list for a fixed trail, or a `Signal` for one that follows the route
/// (`Signal::derive(move || vec![…, (name(), None)])`).
#[component]
pub fn Breadcrumbs(
    /// `(label, href)` from the top down; the last is the current page.
    #[prop(into)]
    trail: Signal<Vec<(String, Option<String>)>>,
) -> impl IntoView {
    let steps = move || {
        let trail = trail.get();
        let last = trail.len().saturating_sub(1);
        trail
            .into_iter()
            .enumerate()
            .map(|(i, (label, href))| {
                let current = (i == last).then_some("page");
                let step = match href {
                    Some(href) => view! {
                        <a href=href aria-current=current>
                            {label}
                        </a>
                    }
                    .into_any(),
                    None => view! { <span aria-current=current>{label}</span> }.into_any(),
                };
                view! { <li>{step}</li> }
            })
            .collect_view()
    };
    view! {
        <nav class="breadcrumbs" aria-label="Breadcrumbs">
            <ol>{steps}</ol>
        </nav>
    }
}
