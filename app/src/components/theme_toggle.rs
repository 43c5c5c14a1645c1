use leptos::form::ActionForm;
use leptos::prelude::*;

use crate::api::theme::SetTheme;
use crate::components::csrf_field::CsrfField;
use crate::theme::Theme;

/// The header's theme switch: System → Light → Dark → System. A form posting the next
/// theme to the `theme` server function, which keeps it in a cookie: without JavaScript the
/// server sends the browser back to the page, rendered in the new theme; with JavaScript the
/// page changes colour at once and the post goes in the background.
#[component]
pub fn ThemeToggle() -> impl IntoView {
    let theme = RwSignal::new(current_theme());
    let action = ServerAction::<SetTheme>::new();
    // Applied as soon as it is asked for, not when the server has answered.
    Effect::new(move |_| {
        if let Some(SetTheme { theme: chosen }) = action.input().get() {
            theme.set(chosen);
            show(chosen);
        }
    });
    view! {
        <ActionForm action attr:class="theme-toggle" attr:data-form="theme">
            <CsrfField />
            <input type="hidden" name="theme" value=move || theme.get().next().as_str() />
            <button
                type="submit"
                class="theme-button"
                data-theme-now=move || theme.get().as_str()
                aria-label=move || theme.get().toggle_label()
                title=move || theme.get().toggle_label()
            >
                <svg class="theme-icon" viewBox="0 0 16 16" aria-hidden="true" focusable="false">
                    <circle cx="8" cy="8" r="6.5" fill="none" stroke="currentColor" />
                    <path d="M8 1.5a6.5 6.5 0 0 1 0 13z" fill="currentColor" />
                </svg>
                <span>{move || theme.get().label()}</span>
            </button>
        </ActionForm>
    }
}

/// The theme the page was rendered in: on the server the request's cookie; in the browser
/// what the server wrote into `<html data-theme>`, so hydration agrees with it.
fn current_theme() -> Theme {
    #[cfg(feature = "ssr")]
    {
        crate::api::theme::request_theme()
    }
    #[cfg(not(feature = "ssr"))]
    {
        document()
            .document_element()
            .and_then(|html| html.get_attribute("data-theme"))
            .and_then(|name| Theme::parse(&name))
            .unwrap_or_default()
    }
}

/// Shows `theme` on the page now: the attribute the stylesheet keys on.
fn show(theme: Theme) {
    if let Some(html) = document().document_element() {
        let _ = match theme.data_theme() {
            Some(name) => html.set_attribute("data-theme", name),
            None => html.remove_attribute("data-theme"),
        };
    }
}
