use chrono::{DateTime, Utc};
use flotilla_domain::access::{ApiToken, Role};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::accounts::{CreateToken, CreatedToken, RevokeToken, list_tokens};
use crate::api::scale_sets::scale_set_names;
use crate::components::breadcrumbs::Breadcrumbs;
use crate::components::csrf_field::CsrfField;
use crate::components::error_panel::ErrorPanel;
use crate::components::loading::Loading;
use crate::components::timestamp::Timestamp;
use crate::viewer::use_me;

/// `/tokens`: the signed-in user's API tokens — for the CLI and scripts — with their
/// bounds and use; a form to create one (its secret shown once, right after) and a button
/// to revoke each. Plain forms, so all of it works without JavaScript too.
#[component]
pub fn TokensPage() -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let list = crate::resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| list_tokens(),
    );
    let me = use_me();
    let created_now = move || create.value().get().and_then(Result::ok);
    view! {
        <Title text="API tokens" />
        <Breadcrumbs trail=vec![
            ("Overview".to_string(), Some("/".to_string())),
            ("API tokens".to_string(), None),
        ] />
        <h1>"API tokens"</h1>
        <p class="muted">
            "A token lets the CLI and scripts act as you: they send it as "
            <code>"Authorization: Bearer <token>"</code>
            ". It never does more than you may — less if you give it a role cap or one scale set — and it expires."
        </p>
        {if me.auth {
            view! {
                {move || created_now().map(|created| view! { <NewSecret created /> })}
                <Transition fallback=Loading>
                    {move || Suspend::new(async move {
                        match list.await {
                            Ok(read) => {
                                view! {
                                    {read.created.map(|created| view! { <NewSecret created /> })}
                                    <TokenTable tokens=read.tokens read_at=read.read_at revoke />
                                }
                                    .into_any()
                            }
                            Err(error) => view! { <ErrorPanel error /> }.into_any(),
                        }
                    })}
                </Transition>
                <CreateTokenForm action=create />
            }
                .into_any()
        } else {
            view! {
                <div class="panel panel-warn" role="status" data-state="auth-off">
                    <p>
                        "Authentication is off (--auth none): there are no users, so no tokens. Every request is an Owner's."
                    </p>
                </div>
            }
                .into_any()
        }}
    }
}

/// A token just created: its secret, this once.
#[component]
fn NewSecret(created: CreatedToken) -> impl IntoView {
    view! {
        <section class="panel panel-ok" role="status" data-state="token-created">
            <h2>"Token " <q>{created.token.name.clone()}</q> " created"</h2>
            <p>
                <strong>"Copy it now: it is shown this once and never again."</strong>
                " Select it (a double click does) and copy it (Ctrl+C or ⌘C) into a password manager or your CI's secrets."
            </p>
            <p>
                <code class="secret" data-secret="token">
                    {created.secret}
                </code>
            </p>
        </section>
    }
}

/// The tokens, newest first, each with a revoke button while it is usable.
#[component]
fn TokenTable(
    tokens: Vec<ApiToken>,
    read_at: DateTime<Utc>,
    revoke: ServerAction<RevokeToken>,
) -> impl IntoView {
    if tokens.is_empty() {
        return view! {
            <p class="muted" data-state="no-tokens">
                "You have no tokens yet."
            </p>
        }
        .into_any();
    }
    let error = move |id: i64| {
        move || {
            revoke
                .value()
                .get()
                .and_then(Result::err)
                .filter(|e| e.target.as_deref() == Some(id.to_string().as_str()))
                .map(|e| e.message)
        }
    };
    view! {
        <div class="table-wrap tokens-wrap" role="region" aria-label="API tokens" tabindex="0">
            <table class="data tokens" aria-label="API tokens">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Prefix"</th>
                        <th scope="col">"Role cap"</th>
                        <th scope="col">"Scale set"</th>
                        <th scope="col">"Created"</th>
                        <th scope="col">"Expires"</th>
                        <th scope="col">"Last used"</th>
                        <th scope="col">"State"</th>
                        <th scope="col">
                            <span class="visually-hidden">"Actions"</span>
                        </th>
                    </tr>
                </thead>
                <tbody>
                    {tokens
                        .into_iter()
                        .map(|t| {
                            let state = state(&t, read_at);
                            let usable = state == "active";
                            let id = t.id;
                            let revoke_label = format!("Revoke {}", t.name);
                            view! {
                                <tr data-token=t.name.clone() data-state=state>
                                    <th scope="row">{t.name.clone()}</th>
                                    <td>
                                        <code>{format!("{}…", t.prefix)}</code>
                                    </td>
                                    <td>
                                        {t.role.map_or("as you".to_string(), |r| r.to_string())}
                                    </td>
                                    <td>
                                        {t.scale_set.clone().unwrap_or_else(|| "any".to_string())}
                                    </td>
                                    <td>
                                        <Timestamp at=t.created_at />
                                    </td>
                                    <td>{optional_time(t.expires_at, "never")}</td>
                                    <td>{optional_time(t.last_used_at, "never")}</td>
                                    <td>
                                        {match t.revoked_at {
                                            Some(at) => {
                                                view! {
                                                    "revoked "
                                                    <Timestamp at />
                                                }
                                                    .into_any()
                                            }
                                            None => state.into_any(),
                                        }}
                                    </td>
                                    <td>
                                        {usable
                                            .then(|| {
                                                view! {
                                                    <ActionForm action=revoke attr:data-form="revoke-token">
                                                        <CsrfField />
                                                        <input type="hidden" name="id" value=id.to_string() />
                                                        <button
                                                            type="submit"
                                                            class="danger"
                                                            aria-label=revoke_label.clone()
                                                        >
                                                            "Revoke"
                                                        </button>
                                                    </ActionForm>
                                                    <p class="field-error" role="alert">
                                                        {error(id)}
                                                    </p>
                                                }
                                            })}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// `active`, `expired` or `revoked`.
fn state(token: &ApiToken, now: DateTime<Utc>) -> &'static str {
    if token.revoked_at.is_some() {
        "revoked"
    } else if token.usable(now) {
        "active"
    } else {
        "expired"
    }
}

fn optional_time(at: Option<DateTime<Utc>>, otherwise: &'static str) -> AnyView {
    match at {
        Some(at) => view! { <Timestamp at /> }.into_any(),
        None => otherwise.into_any(),
    }
}

/// The form that creates a token: its name, a role cap (up to the caller's highest role),
/// one scale set or any, and its lifetime in days.
#[component]
fn CreateTokenForm(action: ServerAction<CreateToken>) -> impl IntoView {
    let names = crate::resource::new(|| (), |_| scale_set_names());
    let highest = use_me().highest_role();
    let error = move || action.value().get().and_then(Result::err);
    // After a refused post without JavaScript the page is rendered anew: the error carries
    // the name as typed.
    let typed = action
        .value()
        .get_untracked()
        .and_then(Result::err)
        .and_then(|e| e.input)
        .unwrap_or_default();
    let message = move |field: &'static str| {
        move || {
            error().and_then(|e| {
                let own: Vec<String> = e
                    .fields
                    .iter()
                    .filter(|f| f.field == field)
                    .map(|f| f.message.clone())
                    .collect();
                if !own.is_empty() {
                    Some(own.join("; "))
                } else if field == "name" && e.fields.is_empty() {
                    // A refusal about no field: said once, under the first.
                    Some(e.message)
                } else {
                    None
                }
            })
        }
    };
    let invalid = move |field: &'static str| move || message(field)().is_some().then_some("true");
    let roles: Vec<Role> = Role::ALL
        .into_iter()
        .filter(|r| highest.is_some_and(|h| *r <= h))
        .collect();
    view! {
        <section class="panel" aria-labelledby="new-token-heading">
            <h2 id="new-token-heading">"New token"</h2>
            <ActionForm action attr:class="token-form" attr:data-form="create-token">
                <CsrfField />
                <div class="field">
                    <label for="token-name">"Name"</label>
                    <input
                        id="token-name"
                        name="name"
                        type="text"
                        required
                        maxlength="64"
                        placeholder="ci-deploy"
                        autocomplete="off"
                        value=typed
                        aria-invalid=invalid("name")
                        aria-describedby="token-name-message"
                    />
                    <p id="token-name-message" class="field-error" data-error="name">
                        {message("name")}
                    </p>
                </div>
                <div class="field">
                    <label for="token-role">"Role cap"</label>
                    <select
                        id="token-role"
                        name="role"
                        aria-invalid=invalid("role")
                        aria-describedby="token-role-message"
                    >
                        <option value="">"As mine"</option>
                        {roles
                            .into_iter()
                            .map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> })
                            .collect_view()}
                    </select>
                    <p id="token-role-message" class="field-error" data-error="role">
                        {message("role")}
                    </p>
                </div>
                <div class="field">
                    <label for="token-scale-set">"Scale set"</label>
                    <Suspense fallback=|| {
                        view! {
                            <select id="token-scale-set" name="scale_set">
                                <option value="">"Any"</option>
                            </select>
                        }
                    }>
                        {move || Suspend::new(async move {
                            let names = names.await.unwrap_or_default();
                            view! {
                                <select
                                    id="token-scale-set"
                                    name="scale_set"
                                    aria-invalid=invalid("scale_set")
                                    aria-describedby="token-scale-set-message"
                                >
                                    <option value="">"Any"</option>
                                    {names
                                        .into_iter()
                                        .map(|n| {
                                            let label = n.clone();
                                            view! { <option value=n>{label}</option> }
                                        })
                                        .collect_view()}
                                </select>
                            }
                        })}
                    </Suspense>
                    <p id="token-scale-set-message" class="field-error" data-error="scale_set">
                        {message("scale_set")}
                    </p>
                </div>
                <div class="field">
                    <label for="token-days">"Expires in (days)"</label>
                    <input
                        id="token-days"
                        name="expires_in_days"
                        type="number"
                        min="1"
                        max="3650"
                        value="90"
                        aria-invalid=invalid("expires_in_days")
                        aria-describedby="token-days-message"
                    />
                    <p id="token-days-message" class="field-error" data-error="expires_in_days">
                        {message("expires_in_days")}
                    </p>
                </div>
                <div class="field field-actions">
                    <button
                        type="submit"
                        class="primary"
                        aria-busy=move || action.pending().get().then_some("true")
                    >
                        "Create token"
                    </button>
                </div>
            </ActionForm>
        </section>
    }
}
