use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::csrf_field::CsrfField;
use crate::viewer::use_me;

/// `/login`: a plain form posting to `/auth/login` (user name, password, and `next`, where
/// to go after), so signing in works without JavaScript. The server sends the browser to
/// `next` when the password holds, else back here with `?error=…&next=…`, which this page
/// shows. Someone already signed in gets a link onward. No header or navigation: nothing
/// else is open before signing in.
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let error = move || {
        query
            .with(|q| q.get("error"))
            .filter(|e| !e.trim().is_empty())
    };
    let next = move || onward(query.with(|q| q.get("next")).as_deref());
    let me = use_me();
    let single_sign_on = me.single_sign_on;
    let signed_in = (me.auth && me.signed_in()).then(|| {
        let actor = me.actor.clone().unwrap_or_default();
        view! {
            <div class="panel" role="status" data-state="signed-in">
                <p>"You are signed in as " <strong>{actor}</strong> "."</p>
                <p>
                    <a class="button" href=next>
                        "Continue"
                    </a>
                </p>
                <p class="muted">"Or sign in as someone else below."</p>
            </div>
        }
    });
    let auth_off = (!me.auth).then(|| {
        view! {
            <div class="panel panel-warn" role="status" data-state="auth-off">
                <p>
                    "Authentication is off: there is nothing to sign in to. "
                    <a href=next>"Continue"</a>
                </p>
            </div>
        }
    });
    view! {
        <Title text="Sign in" />
        <section class="login" aria-labelledby="login-heading">
            <p class="login-brand">
                <svg class="brand-mark" viewBox="0 0 32 32" aria-hidden="true" focusable="false">
                    <rect x="3" y="5" width="26" height="6" rx="2" />
                    <rect x="3" y="13" width="26" height="6" rx="2" />
                    <rect x="3" y="21" width="26" height="6" rx="2" />
                </svg>
                <span>"Flotilla"</span>
            </p>
            <h1 id="login-heading">"Sign in"</h1>
            {signed_in}
            {auth_off}
            {move || {
                error()
                    .map(|message| {
                        view! {
                            <p
                                class="panel panel-error login-error"
                                role="alert"
                                data-error="login"
                            >
                                {message}
                            </p>
                        }
                    })
            }}
            <form method="post" action="/auth/login" class="login-form panel" data-form="login">
                <CsrfField />
                <input type="hidden" name="next" value=next />
                <label for="login-username">"User name"</label>
                <input
                    id="login-username"
                    name="username"
                    type="text"
                    autocomplete="username"
                    autocapitalize="none"
                    spellcheck="false"
                    required
                />
                <label for="login-password">"Password"</label>
                <input
                    id="login-password"
                    name="password"
                    type="password"
                    autocomplete="current-password"
                    required
                />
                <button type="submit">"Sign in"</button>
            </form>
            {single_sign_on
                .then(|| {
                    let href = format!(
                        "/auth/oidc/login?next={}",
                        flotilla_domain::url::percent_encode(&next()),
                    );
                    view! {
                        <p class="login-sso">
                            <a class="button" href=href data-action="single-sign-on">
                                "Sign in with single sign-on"
                            </a>
                        </p>
                    }
                })}
        </section>
    }
}

/// Where to go after signing in: `next` when it is a path of this site, else the overview
/// (the server checks it again).
fn onward(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(char::is_control) =>
        {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_paths_of_this_site_are_onward() {
        assert_eq!(super::onward(Some("/scale-sets/web")), "/scale-sets/web");
        assert_eq!(super::onward(None), "/");
        assert_eq!(super::onward(Some("https://evil.example/")), "/");
        assert_eq!(super::onward(Some("//evil.example/")), "/");
        assert_eq!(super::onward(Some("/\\evil.example")), "/");
    }
}
