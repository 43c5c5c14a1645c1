//! Who is calling (`whoami`) and their own API tokens (`tokens`, `create-token`,
//! `revoke-token`), over `Fleet::accounts`.
//!
//! A token's secret is answered once, by the call that creates it. A plain form post
//! (without JavaScript) cannot take an answer: the browser is sent back to the tokens page.
//! So the secret is kept in this process's memory for that page's next read by the same
//! session — taken by the first read, forgotten after a minute, never stored. Behind a load
//! balancer spreading one session over several servers the page may miss it; the person
//! then revokes the token and makes another.

use chrono::{DateTime, Utc};
use flotilla_domain::access::ApiToken;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::error::PortalError;
use crate::viewer::Me;

/// A token just created: its secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    /// Sent as `Authorization: Bearer <secret>`.
    pub secret: String,
    pub token: ApiToken,
}

/// The tokens page: the caller's tokens, newest first, and the one a plain form post just
/// created, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenList {
    pub tokens: Vec<ApiToken>,
    pub created: Option<CreatedToken>,
    /// When the list was read (what "expired" is judged against).
    pub read_at: DateTime<Utc>,
}

/// Who is calling: the actor, whether authentication is on, and its grants.
#[server(prefix = "/_fn", endpoint = "whoami", client = crate::api::CsrfClient)]
pub async fn whoami() -> Result<Me, ServerFnError> {
    Ok(super::me())
}

/// The caller's tokens (none when authentication is off: there is no user to own one).
#[server(prefix = "/_fn", endpoint = "tokens", client = crate::api::CsrfClient)]
pub async fn list_tokens() -> Result<TokenList, ServerFnError> {
    use super::{fleet, server_error};
    let caller = super::caller();
    let read_at = fleet().now();
    let Some(user) = caller.principal.as_ref().and_then(|p| p.user.clone()) else {
        return Ok(TokenList {
            tokens: Vec::new(),
            created: None,
            read_at,
        });
    };
    let mut tokens = fleet()
        .accounts()
        .list_tokens(Some(&user))
        .await
        .map_err(server_error)?;
    tokens.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let created = caller.csrf.as_deref().and_then(shown_once::take);
    Ok(TokenList {
        tokens,
        created,
        read_at,
    })
}

/// Creates a token of the caller: `name`, at most `role` (empty: as much as the caller),
/// only on `scale_set` (empty: any), expiring in `expires_in_days` (empty: 90). The
/// fields come as typed (a plain form); a refusal names the field.
#[server(prefix = "/_fn", endpoint = "create-token", client = crate::api::CsrfClient)]
pub async fn create_token(
    name: String,
    role: Option<String>,
    scale_set: Option<String>,
    expires_in_days: Option<String>,
) -> Result<CreatedToken, PortalError> {
    use flotilla_control::accounts::NewToken;
    use flotilla_domain::FieldError;
    use flotilla_domain::access::Role;

    use super::{refuse, refused, return_to};
    return_to("/tokens");
    let caller = super::caller();
    let Some(principal) = caller.principal.clone() else {
        return Err(refuse(PortalError::new("sign in first"), 401));
    };
    let given = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let mut fields = Vec::new();
    let role = given(role).and_then(|r| {
        r.parse::<Role>()
            .map_err(|message| {
                fields.push(FieldError {
                    field: "role".into(),
                    message,
                })
            })
            .ok()
    });
    let expires_in_days = given(expires_in_days).and_then(|d| {
        flotilla_domain::validation::parse::<u32>("expires_in_days", &d)
            .map_err(|problem| fields.push(problem))
            .ok()
    });
    if !fields.is_empty() {
        let error = PortalError {
            message: fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; "),
            fields,
            ..PortalError::default()
        };
        return Err(refuse(error.with_input(Some(name)), 422));
    }
    let created = super::fleet()
        .accounts()
        .create_token(
            &principal,
            NewToken {
                name: name.trim().to_string(),
                role,
                scale_set: given(scale_set),
                expires_in_days,
            },
        )
        .await
        .map_err(|e| refused(e).with_input(Some(name.clone())))?;
    let created = CreatedToken {
        secret: created.token,
        token: created.info,
    };
    if super::is_form_post()
        && let Some(session) = caller.csrf.as_deref()
    {
        shown_once::put(session, created.clone());
    }
    Ok(created)
}

/// Revokes token `id` of the caller (an Owner may revoke anyone's).
#[server(prefix = "/_fn", endpoint = "revoke-token", client = crate::api::CsrfClient)]
pub async fn revoke_token(id: i64) -> Result<ApiToken, PortalError> {
    use super::{refuse, refused, return_to};
    return_to("/tokens");
    let Some(principal) = super::caller().principal else {
        return Err(refuse(PortalError::new("sign in first"), 401));
    };
    super::fleet()
        .accounts()
        .revoke_token(id, &principal)
        .await
        .map_err(|e| refused(e).with_target(id.to_string()))
}

/// Secrets of tokens just created by plain form posts, by session (its CSRF token), for
/// the next read of the tokens page (see the module's documentation).
#[cfg(feature = "ssr")]
mod shown_once {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock, PoisonError};
    use std::time::{Duration, Instant};

    use super::CreatedToken;

    /// How long a secret waits for its page.
    const KEPT: Duration = Duration::from_secs(60);
    /// Most secrets waiting at once: beyond, a form post's secret is not shown (the token
    /// exists; the person revokes it and makes another).
    const MOST: usize = 1024;

    type Waiting = Mutex<HashMap<String, (Instant, CreatedToken)>>;

    fn waiting() -> &'static Waiting {
        static WAITING: OnceLock<Waiting> = OnceLock::new();
        WAITING.get_or_init(Waiting::default)
    }

    pub(super) fn put(session: &str, created: CreatedToken) {
        let mut waiting = waiting().lock().unwrap_or_else(PoisonError::into_inner);
        waiting.retain(|_, (at, _)| at.elapsed() < KEPT);
        if waiting.len() < MOST || waiting.contains_key(session) {
            waiting.insert(session.to_string(), (Instant::now(), created));
        }
    }

    pub(super) fn take(session: &str) -> Option<CreatedToken> {
        let mut waiting = waiting().lock().unwrap_or_else(PoisonError::into_inner);
        waiting
            .remove(session)
            .filter(|(at, _)| at.elapsed() < KEPT)
            .map(|(_, created)| created)
    }
}
