//! Accounts: `/login` (a password for an API token: what `flotilla login` does), `/me`,
//! `/tokens` (anyone's own; an Owner sees and revokes everyone's), `/users` and
//! `/role-assignments` (Owners). Passwords and token secrets are write-only: a token's
//! secret is answered once, at creation, and nothing else ever shows one.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use flotilla_control::accounts::{CreatedToken, NewToken, NewUser};
use flotilla_control::{Caller, Error, Principal};
use flotilla_domain::access::{ApiToken, Grants, Role, RoleAssignment, User};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult, Problem};
use super::json::{ApiJson, ApiPath};
use super::query::Params;
use super::{ApiState, Items};

/// `POST /login`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub username: String,
    pub password: String,
    /// The new token's name; default `cli`.
    #[serde(default)]
    pub token_name: Option<String>,
    /// Days until the token expires, 1–3,650; default 90.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

#[utoipa::path(post, path = "/login", tag = "accounts", request_body = Login,
    responses((status = 201, body = CreatedToken, description = "a new API token of the user, shown once"),
        (status = 401, body = Problem, description = "wrong user name or password"),
        (status = 429, body = Problem, description = "too many failed sign-ins for this user or address: wait (Retry-After)")))]
pub async fn login(
    State(s): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(login): ApiJson<Login>,
) -> ApiResult<impl IntoResponse> {
    let accounts = s.fleet.accounts();
    let principal = accounts
        .sign_in(
            login.username.trim(),
            &login.password,
            &peer.ip().to_string(),
        )
        .await?;
    let created = accounts
        .create_token(
            &principal,
            NewToken {
                name: login.token_name.unwrap_or_else(|| "cli".into()),
                expires_in_days: login.expires_in_days,
                ..NewToken::default()
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Who the caller is and what it may do.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    /// The name the activity log records.
    pub actor: String,
    pub user: Option<String>,
    /// The token the request came with.
    pub token: Option<i64>,
    /// Whether authentication is on (`--auth local`).
    pub auth: bool,
    /// Roles held: fleet-wide (`scale_set: null`) or on one scale set.
    pub roles: Vec<HeldRole>,
    /// A token's bounds.
    pub role_cap: Option<Role>,
    pub only_scale_set: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeldRole {
    pub role: Role,
    pub scale_set: Option<String>,
}

fn principal(caller: &Caller) -> Result<&Principal, ApiError> {
    caller.principal.as_ref().ok_or_else(|| {
        ApiError::from(Error::Unauthenticated {
            message: "sign in first".into(),
        })
    })
}

#[utoipa::path(get, path = "/me", tag = "accounts",
    responses((status = 200, body = Me)))]
pub async fn me(Extension(caller): Extension<Caller>) -> ApiResult<Json<Me>> {
    let p = principal(&caller)?;
    let Grants {
        assignments,
        cap,
        only_set,
    } = p.grants.clone();
    Ok(Json(Me {
        actor: p.actor.clone(),
        user: p.user.clone(),
        token: p.token,
        auth: caller.auth,
        roles: assignments
            .into_iter()
            .map(|(role, scale_set)| HeldRole { role, scale_set })
            .collect(),
        role_cap: cap,
        only_scale_set: only_set,
    }))
}

#[utoipa::path(get, path = "/tokens", tag = "accounts",
    params(("user" = Option<String>, Query, description = "an Owner: this user's tokens; `*`: everyone's")),
    responses((status = 200, body = Items<ApiToken>, description = "the caller's tokens (never their secrets)"),
        (status = 403, body = Problem), (status = 422, body = Problem, description = "an unknown query parameter")))]
pub async fn list_tokens(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Items<ApiToken>>> {
    let p = Params::new(&query, &["user"]);
    let asked = p.text("user");
    p.finish()?;
    let me = principal(&caller)?;
    let own = me.user.clone();
    let whose = match asked {
        Some(user) if Some(&user) != own.as_ref() => {
            me.require(Role::Owner, None)?;
            (user != "*").then_some(user)
        }
        _ => own,
    };
    Ok(Json(Items {
        items: s.fleet.accounts().list_tokens(whose.as_deref()).await?,
    }))
}

#[utoipa::path(post, path = "/tokens", tag = "accounts", request_body = NewToken,
    responses((status = 201, body = CreatedToken, description = "the token; its secret is shown this once"),
        (status = 409, body = Problem, description = "authentication is off: no user owns tokens"),
        (status = 422, body = Problem)))]
pub async fn create_token(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiJson(new): ApiJson<NewToken>,
) -> ApiResult<impl IntoResponse> {
    let me = principal(&caller)?;
    let created = s.fleet.accounts().create_token(me, new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(delete, path = "/tokens/{id}", tag = "accounts",
    params(("id" = i64, Path)),
    responses((status = 200, body = ApiToken, description = "the token, revoked: refused from now on"),
        (status = 404, body = Problem, description = "no such token of the caller's (an Owner: of anyone's)")))]
pub async fn revoke_token(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ApiToken>> {
    let me = principal(&caller)?;
    Ok(Json(s.fleet.accounts().revoke_token(id, me).await?))
}

#[utoipa::path(get, path = "/users", tag = "accounts",
    responses((status = 200, body = Items<User>)))]
pub async fn list_users(State(s): State<ApiState>) -> ApiResult<Json<Items<User>>> {
    Ok(Json(Items {
        items: s.fleet.accounts().list_users().await?,
    }))
}

#[utoipa::path(post, path = "/users", tag = "accounts", request_body = NewUser,
    responses((status = 201, body = User), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn create_user(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiJson(new): ApiJson<NewUser>,
) -> ApiResult<impl IntoResponse> {
    let user = s
        .fleet
        .accounts()
        .create_user(new, super::actor(&caller))
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// `PATCH /users/{user}`'s body: what to change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// A disabled user can neither sign in nor use its tokens.
    #[serde(default)]
    pub disabled: Option<bool>,
    /// A new password (10–1,024 characters).
    #[serde(default)]
    pub password: Option<String>,
}

#[utoipa::path(patch, path = "/users/{user}", tag = "accounts", request_body = UserPatch,
    params(("user" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "the last enabled fleet-wide Owner cannot be disabled"),
        (status = 422, body = Problem)))]
pub async fn update_user(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiPath(user): ApiPath<String>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> ApiResult<Json<User>> {
    let accounts = s.fleet.accounts();
    let actor = super::actor(&caller);
    if let Some(password) = &patch.password {
        flotilla_domain::access::validate_password(password, "password")
            .map_err(ApiError::invalid)?;
    }
    accounts.get_user(&user).await?;
    if let Some(password) = patch.password {
        accounts.set_password(&user, password, actor).await?;
    }
    if let Some(disabled) = patch.disabled {
        accounts.set_disabled(&user, disabled, actor).await?;
    }
    Ok(Json(accounts.get_user(&user).await?))
}

#[utoipa::path(get, path = "/role-assignments", tag = "accounts",
    params(("user" = Option<String>, Query)),
    responses((status = 200, body = Items<RoleAssignment>),
        (status = 422, body = Problem, description = "an unknown query parameter")))]
pub async fn list_roles(
    State(s): State<ApiState>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Items<RoleAssignment>>> {
    let p = Params::new(&query, &["user"]);
    let user = p.text("user");
    p.finish()?;
    Ok(Json(Items {
        items: s.fleet.accounts().list_assignments(user.as_deref()).await?,
    }))
}

/// A role to give: fleet-wide, or on one scale set.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    pub user: String,
    pub role: Role,
    #[serde(default)]
    pub scale_set: Option<String>,
}

#[utoipa::path(put, path = "/role-assignments", tag = "accounts", request_body = Assignment,
    responses((status = 200, body = RoleAssignment, description = "the user's role there, replacing what it held"),
        (status = 404, body = Problem, description = "no such user"),
        (status = 409, body = Problem, description = "it would leave no enabled fleet-wide Owner"),
        (status = 422, body = Problem)))]
pub async fn assign_role(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiJson(a): ApiJson<Assignment>,
) -> ApiResult<Json<RoleAssignment>> {
    Ok(Json(
        s.fleet
            .accounts()
            .assign_role(
                &a.user,
                a.role,
                a.scale_set.as_deref(),
                super::actor(&caller),
            )
            .await?,
    ))
}

#[utoipa::path(delete, path = "/role-assignments", tag = "accounts",
    params(("user" = String, Query), ("scale_set" = Option<String>, Query, description = "absent: the fleet-wide assignment")),
    responses((status = 204, description = "removed"), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "it would leave no enabled fleet-wide Owner"),
        (status = 422, body = Problem)))]
pub async fn remove_role(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<StatusCode> {
    let p = Params::new(&query, &["user", "scale_set"]);
    let user = p.text("user");
    let set = p.text("scale_set");
    p.finish()?;
    let Some(user) = user else {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "user",
            "the user whose role to remove",
        ));
    };
    s.fleet
        .accounts()
        .remove_role(&user, set.as_deref(), super::actor(&caller))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
