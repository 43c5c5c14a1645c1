//! `flotilla login`, `logout`, `whoami`, `token …` and `role …`: accounts over the REST API.
//!
//! A token's secret is printed once, by `token create`; `login` stores its token in the
//! credentials file and shows only its prefix.

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use flotilla_control::accounts::CreatedToken;
use flotilla_domain::access::{ApiToken, Role, RoleAssignment};
use flotilla_domain::url::percent_encode;
use reqwest::Method;
use serde_json::{Value, json};

use super::credentials::{self, Credentials};
use super::{CliError, Client, Output, prompt, table};
use crate::api::accounts::Me;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Whom to sign in as (default: `$USER`, asked when standard input is a terminal).
    #[arg(long)]
    pub username: Option<String>,
    /// Read the password from standard input (scripts) instead of asking for it.
    #[arg(long)]
    pub password_stdin: bool,
    /// Days until the stored token expires, 1–3650 (default: the server's, 90).
    #[arg(long)]
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token of yours; its secret is printed this once.
    Create {
        name: String,
        /// The most it may do (Reader, Operator, Contributor, Owner); default: what you
        /// may.
        #[arg(long)]
        role: Option<String>,
        /// The one scale set it may touch.
        #[arg(long)]
        scale_set: Option<String>,
        /// Days until it expires, 1–3650 (default 90).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Your tokens (never their secrets).
    List {
        /// Everyone's tokens (an Owner).
        #[arg(long)]
        all: bool,
    },
    /// Revoke a token by id: it is refused from now on.
    Revoke { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Give a user a role, fleet-wide or on one scale set, replacing what it held there.
    Assign {
        user: String,
        /// Reader, Operator, Contributor or Owner.
        role: String,
        #[arg(long)]
        scale_set: Option<String>,
    },
    /// Role assignments, of everyone or of one user.
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Remove a user's fleet-wide role (or its role on one scale set).
    Remove {
        user: String,
        #[arg(long)]
        scale_set: Option<String>,
    },
}

/// A role by name in any case; an unknown one is bad input naming the field.
pub(super) fn parse_role(field: &str, role: &str) -> Result<Role, CliError> {
    role.parse()
        .map_err(|e| CliError::Invalid(flotilla_domain::ValidationErrors::single(field, e)))
}

/// The name of the token `flotilla login` creates: `cli@` this host.
fn login_token_name() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let host: String = host.chars().filter(|c| !c.is_control()).collect();
    let name = format!("cli@{}", host.trim());
    name.chars().take(64).collect::<String>().trim().to_string()
}

fn day(at: Option<DateTime<Utc>>) -> String {
    at.map(|at| at.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "never".into())
}

fn minute(at: Option<DateTime<Utc>>) -> String {
    at.map(|at| at.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn parse<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, CliError> {
    serde_json::from_value(value)
        .map_err(|e| CliError::Refused(format!("the server's answer is not understood: {e}")))
}

/// Revokes the token `client` signs in with (`GET /me` names it); `None` when the caller
/// came without one.
async fn revoke_own(client: &Client) -> Result<Option<ApiToken>, CliError> {
    let me: Me = parse(client.get("/me").await?)?;
    let Some(id) = me.token else {
        return Ok(None);
    };
    let revoked = client
        .call(Method::DELETE, &format!("/tokens/{id}"), None)
        .await?;
    Ok(Some(parse(revoked)?))
}

/// `flotilla login`: a password for a new API token, stored for `server`.
pub(super) async fn login(
    server: &str,
    output: Output,
    args: &LoginArgs,
) -> Result<String, CliError> {
    let path = credentials::default_path()?;
    let mut stored = Credentials::load(&path)?;
    let default_user = std::env::var("USER").unwrap_or_default();
    let username = match &args.username {
        Some(user) => user.trim().to_string(),
        None if args.password_stdin => default_user,
        None => prompt::line("User name".into(), default_user).await?,
    };
    if username.is_empty() {
        return Err(CliError::Input(
            "whom to sign in as: pass --username NAME".into(),
        ));
    }
    let password = if args.password_stdin {
        prompt::password_from_stdin().await?
    } else {
        prompt::password(format!("Password for {username} at {server}: ")).await?
    };
    // No stored token goes with the sign-in: one that no longer holds would be refused.
    let created = Client::new(server, None)
        .call(
            Method::POST,
            "/login",
            Some(json!({
                "username": username,
                "password": password,
                "token_name": login_token_name(),
                "expires_in_days": args.expires_in_days,
            })),
        )
        .await?;
    let created: CreatedToken = parse(created)?;
    let previous = stored.token(server).map(str::to_string);
    stored.save(server, Some(created.token.clone()))?;
    // The token this replaces is of no more use: revoke it, best effort (it may be
    // expired or revoked already, or the server's another's now).
    if let Some(previous) = previous.filter(|p| *p != created.token) {
        let _ = revoke_own(&Client::new(server, Some(&previous))).await;
    }
    let info = created.info;
    if output == Output::Json {
        let value = json!({ "server": credentials::key(server), "user": info.user, "token": info });
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ));
    }
    Ok(format!(
        "signed in to {} as {} (token {}…, expires {})\n",
        credentials::key(server),
        info.user,
        info.prefix,
        day(info.expires_at)
    ))
}

/// `flotilla logout`: revokes the stored token of `server` and forgets it.
pub(super) async fn logout(server: &str, output: Output) -> Result<String, CliError> {
    let path = credentials::default_path()?;
    let mut stored = Credentials::load(&path)?;
    let server = credentials::key(server);
    let Some(token) = stored.token(&server).map(str::to_string) else {
        return Ok(match output {
            Output::Json => format!("{}\n", json!({ "server": server, "revoked": null })),
            Output::Table => format!("not signed in to {server}\n"),
        });
    };
    let revoked = match revoke_own(&Client::new(&server, Some(&token))).await {
        Ok(revoked) => revoked,
        // Expired, revoked, or its user disabled: nothing left to revoke.
        Err(CliError::Unauthenticated(_)) => None,
        Err(e) => return Err(e),
    };
    stored.save(&server, None)?;
    Ok(match (output, &revoked) {
        (Output::Json, _) => format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({ "server": server, "revoked": revoked }))
                .unwrap_or_default()
        ),
        (Output::Table, Some(t)) => {
            format!("signed out of {server}: token {}… revoked\n", t.prefix)
        }
        (Output::Table, None) => {
            format!("signed out of {server} (its token no longer held)\n")
        }
    })
}

pub(super) async fn whoami(client: &Client) -> Result<Value, CliError> {
    let mut me = client.get("/me").await?;
    if let Some(obj) = me.as_object_mut() {
        obj.insert("server".into(), json!(credentials::key(&client.server)));
    }
    Ok(me)
}

pub(super) async fn token(client: &Client, cmd: &TokenCommand) -> Result<Value, CliError> {
    Ok(match cmd {
        TokenCommand::Create {
            name,
            role,
            scale_set,
            expires_in_days,
        } => {
            let role = role.as_deref().map(|r| parse_role("role", r)).transpose()?;
            client
                .call(
                    Method::POST,
                    "/tokens",
                    Some(json!({
                        "name": name,
                        "role": role,
                        "scale_set": scale_set,
                        "expires_in_days": expires_in_days,
                    })),
                )
                .await?
        }
        TokenCommand::List { all } => {
            client
                .get(if *all { "/tokens?user=*" } else { "/tokens" })
                .await?
        }
        TokenCommand::Revoke { id } => {
            client
                .call(Method::DELETE, &format!("/tokens/{id}"), None)
                .await?
        }
    })
}

pub(super) async fn role(client: &Client, cmd: &RoleCommand) -> Result<Value, CliError> {
    Ok(match cmd {
        RoleCommand::Assign {
            user,
            role,
            scale_set,
        } => {
            let role = parse_role("role", role)?;
            client
                .call(
                    Method::PUT,
                    "/role-assignments",
                    Some(json!({ "user": user, "role": role, "scale_set": scale_set })),
                )
                .await?
        }
        RoleCommand::List { user } => {
            let path = match user {
                Some(user) => format!("/role-assignments?user={}", percent_encode(user)),
                None => "/role-assignments".into(),
            };
            client.get(&path).await?
        }
        RoleCommand::Remove { user, scale_set } => {
            let mut path = format!("/role-assignments?user={}", percent_encode(user));
            if let Some(set) = scale_set {
                path.push_str(&format!("&scale_set={}", percent_encode(set)));
            }
            client.call(Method::DELETE, &path, None).await?
        }
    })
}

fn scope(scale_set: Option<&str>) -> String {
    match scale_set {
        Some(set) => format!("on scale set {set}"),
        None => "fleet-wide".into(),
    }
}

pub(super) fn render_me(value: &Value) -> String {
    let server = value["server"].as_str().unwrap_or_default();
    let Ok(me) = serde_json::from_value::<Me>(value.clone()) else {
        return String::new();
    };
    if !me.auth {
        return format!(
            "{server}: authentication is off (--auth none): everyone is an Owner (you are \
             recorded as {})\n",
            me.actor
        );
    }
    let roles: Vec<String> = me
        .roles
        .iter()
        .map(|r| format!("{} {}", r.role, scope(r.scale_set.as_deref())))
        .collect();
    let mut out = format!(
        "server:  {server}\nuser:    {}\nactor:   {}\nroles:   {}\n",
        me.user.as_deref().unwrap_or("-"),
        me.actor,
        if roles.is_empty() {
            "none".to_string()
        } else {
            roles.join(", ")
        },
    );
    if let Some(id) = me.token {
        let mut bounds = Vec::new();
        if let Some(cap) = me.role_cap {
            bounds.push(format!("at most {cap}"));
        }
        if let Some(set) = &me.only_scale_set {
            bounds.push(format!("only scale set {set}"));
        }
        out.push_str(&format!(
            "token:   {id}{}\n",
            if bounds.is_empty() {
                String::new()
            } else {
                format!(" ({})", bounds.join(", "))
            }
        ));
    }
    out
}

pub(super) fn render_token(cmd: &TokenCommand, value: &Value) -> String {
    match cmd {
        TokenCommand::Create { .. } => {
            let Ok(created) = serde_json::from_value::<CreatedToken>(value.clone()) else {
                return String::new();
            };
            let t = &created.info;
            let mut bounds = Vec::new();
            if let Some(role) = t.role {
                bounds.push(format!("at most {role}"));
            }
            if let Some(set) = &t.scale_set {
                bounds.push(format!("only scale set {set}"));
            }
            bounds.push(format!("expires {}", day(t.expires_at)));
            format!(
                "created token {} {:?} of {} ({})\n{}\nThis token will not be shown again: store it now.\n",
                t.id,
                t.name,
                t.user,
                bounds.join(", "),
                created.token
            )
        }
        TokenCommand::List { .. } => {
            let tokens: Vec<ApiToken> =
                serde_json::from_value(value["items"].clone()).unwrap_or_default();
            tokens_table(&tokens, Utc::now())
        }
        TokenCommand::Revoke { .. } => serde_json::from_value::<ApiToken>(value.clone())
            .map(|t| format!("revoked token {} {:?} of {}\n", t.id, t.name, t.user))
            .unwrap_or_default(),
    }
}

fn tokens_table(tokens: &[ApiToken], now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            let state = if t.revoked_at.is_some() {
                "revoked"
            } else if !t.usable(now) {
                "expired"
            } else {
                "active"
            };
            vec![
                t.id.to_string(),
                t.name.clone(),
                t.user.clone(),
                t.role.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                t.scale_set.clone().unwrap_or_else(|| "-".into()),
                format!("{}…", t.prefix),
                minute(Some(t.created_at)),
                day(t.expires_at),
                minute(t.last_used_at),
                state.into(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "NAME",
            "USER",
            "ROLE",
            "SCALE SET",
            "PREFIX",
            "CREATED",
            "EXPIRES",
            "LAST USED",
            "STATE",
        ],
        &rows,
    )
}

pub(super) fn render_role(cmd: &RoleCommand, value: &Value) -> String {
    match cmd {
        RoleCommand::Assign { .. } => serde_json::from_value::<RoleAssignment>(value.clone())
            .map(|a| {
                format!(
                    "{} holds {} {}\n",
                    a.user,
                    a.role,
                    scope(a.scale_set.as_deref())
                )
            })
            .unwrap_or_default(),
        RoleCommand::List { .. } => {
            let items: Vec<RoleAssignment> =
                serde_json::from_value(value["items"].clone()).unwrap_or_default();
            assignments_table(&items)
        }
        RoleCommand::Remove { user, scale_set } => {
            format!(
                "removed the role of {user} {}\n",
                scope(scale_set.as_deref())
            )
        }
    }
}

pub(super) fn assignments_table(items: &[RoleAssignment]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|a| {
            vec![
                a.user.clone(),
                a.role.to_string(),
                a.scale_set.clone().unwrap_or_else(|| "(fleet-wide)".into()),
                minute(Some(a.created_at)),
                a.created_by.clone(),
            ]
        })
        .collect();
    table(&["USER", "ROLE", "SCALE SET", "ASSIGNED", "BY"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_in_any_case_and_an_unknown_one_names_the_field() {
        assert_eq!(parse_role("role", "reader").unwrap(), Role::Reader);
        let err = parse_role("role", "boss").unwrap_err().to_string();
        assert!(err.contains("role: \"boss\" is not a role"), "{err}");
    }

    #[test]
    fn the_login_token_is_named_for_the_host() {
        let name = login_token_name();
        assert!(name.starts_with("cli@"), "{name}");
        flotilla_domain::access::validate_token_name(&name, "name").unwrap();
    }

    #[test]
    fn token_lists_show_prefixes_and_states_never_secrets() {
        let now = Utc::now();
        let token = |id, revoked: bool, days: i64| ApiToken {
            id,
            name: format!("t{id}"),
            user: "alice".into(),
            role: (id == 2).then_some(Role::Reader),
            scale_set: None,
            prefix: "flt_AbCd".into(),
            created_at: now,
            expires_at: Some(now + chrono::Duration::days(days)),
            last_used_at: None,
            revoked_at: revoked.then_some(now),
        };
        let out = tokens_table(
            &[token(1, false, 30), token(2, true, 30), token(3, false, -1)],
            now,
        );
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("ID  NAME"), "{out}");
        assert!(lines[1].ends_with("active") && lines[1].contains("flt_AbCd…"));
        assert!(lines[2].contains("Reader") && lines[2].ends_with("revoked"));
        assert!(lines[3].ends_with("expired"), "{out}");
    }
}
