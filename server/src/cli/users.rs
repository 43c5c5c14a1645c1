//! `flotilla user …`: users on the server's database directly, without a server — the way
//! back in when the only Owner has lost the password.
//!
//! The database is found as `flotilla serve` finds it (`--data-dir`, `--database-url` and
//! their variables, with serve's defaults); a SQLite file that does not exist is refused
//! rather than created, so a command run in the wrong directory changes nothing. Input is
//! checked before anything is asked or written; every change is an activity entry whose
//! actor is `cli:$USER`. A running server sees a change within its cache's lifetime
//! ([`flotilla_control::accounts::CACHE_TTL`]); a sign-in sees it at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use clap::{Args, Subcommand};
use flotilla_control::accounts::{CACHE_TTL, NewUser};
use flotilla_control::{Accounts, EventBus, SystemClock};
use flotilla_domain::access::{self, User};
use serde_json::json;

use super::accounts::parse_role;
use super::{CliError, Output, prompt, table};
use crate::config::{DatabaseArgs, redacted_url, sqlite_path};

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (asks for the password twice).
    Add {
        name: String,
        /// A role on every scale set: Reader, Operator, Contributor or Owner.
        #[arg(long)]
        role: Option<String>,
        /// Read the password from standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// The users, their state and roles.
    List,
    /// A disabled user can neither sign in nor use its tokens.
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    /// Set a user's password (asks for it twice).
    Passwd {
        name: String,
        /// Read the password from standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// What `flotilla user` records as who acted.
fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

fn invalid(errors: flotilla_domain::ValidationErrors) -> CliError {
    CliError::Invalid(errors)
}

/// The error of an account operation, as the CLI tells it.
fn failed(e: flotilla_control::Error) -> CliError {
    match e {
        flotilla_control::Error::Invalid(errors) => CliError::Invalid(errors),
        e @ flotilla_control::Error::Store { .. } => CliError::Database(e),
        e => CliError::Refused(e.to_string()),
    }
}

async fn open(database: &DatabaseArgs) -> Result<Arc<Accounts>, CliError> {
    let url = database.url();
    if let Some(path) = sqlite_path(&url)
        && !std::path::Path::new(path).exists()
    {
        return Err(CliError::Input(format!(
            "no database at {path}: name the one `flotilla serve` uses with --data-dir \
             (FLOTILLA_DATA_DIR) or --database-url (FLOTILLA_DATABASE_URL)"
        )));
    }
    let store = flotilla_store::connect(&url)
        .await
        .map_err(|source| CliError::OpenDatabase {
            url: redacted_url(&url),
            source,
        })?;
    Ok(Accounts::new(
        store,
        Arc::new(SystemClock),
        EventBus::new(16),
    ))
}

pub(super) async fn run(args: &UserArgs, output: Output) -> Result<String, CliError> {
    let actor = actor();
    let json = |value: serde_json::Value| {
        format!(
            "{}\n",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        )
    };
    let later = format!(
        "(a running server notices within {} s)",
        CACHE_TTL.as_secs()
    );
    match &args.command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            access::validate_user_name(name, "name").map_err(invalid)?;
            let role = role.as_deref().map(|r| parse_role("role", r)).transpose()?;
            let accounts = open(&args.database).await?;
            if accounts.get_user(name).await.is_ok() {
                return Err(CliError::Refused(format!("user {name:?} already exists")));
            }
            let password = prompt::new_password_from(name, *password_stdin).await?;
            access::validate_password(&password, "password").map_err(invalid)?;
            let user = accounts
                .create_user(
                    NewUser {
                        name: name.clone(),
                        password,
                        role,
                    },
                    &actor,
                )
                .await
                .map_err(failed)?;
            Ok(match output {
                Output::Json => json(json!(user)),
                Output::Table => format!(
                    "created user {}{}\n",
                    user.name,
                    role.map(|r| format!(" ({r} fleet-wide)"))
                        .unwrap_or_default()
                ),
            })
        }
        UserCommand::List => {
            let accounts = open(&args.database).await?;
            let users = accounts.list_users().await.map_err(failed)?;
            if output == Output::Json {
                return Ok(json(json!({ "items": users })));
            }
            let mut roles: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for a in accounts.list_assignments(None).await.map_err(failed)? {
                roles.entry(a.user).or_default().push(match a.scale_set {
                    Some(set) => format!("{} on {set}", a.role),
                    None => a.role.to_string(),
                });
            }
            Ok(users_table(&users, &roles))
        }
        UserCommand::Disable { name } | UserCommand::Enable { name } => {
            let disabled = matches!(args.command, UserCommand::Disable { .. });
            let accounts = open(&args.database).await?;
            let user = accounts
                .set_disabled(name, disabled, &actor)
                .await
                .map_err(failed)?;
            Ok(match output {
                Output::Json => json(json!(user)),
                Output::Table if disabled => format!(
                    "user {name} disabled: it can neither sign in nor use its tokens {later}\n"
                ),
                Output::Table => format!("user {name} enabled {later}\n"),
            })
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let accounts = open(&args.database).await?;
            accounts.get_user(name).await.map_err(failed)?;
            let password = prompt::new_password_from(name, *password_stdin).await?;
            access::validate_password(&password, "password").map_err(invalid)?;
            accounts
                .set_password(name, password, &actor)
                .await
                .map_err(failed)?;
            Ok(match output {
                Output::Json => json(json!({ "user": name, "password_changed": true })),
                Output::Table => format!("password of {name} changed\n"),
            })
        }
    }
}

fn users_table(users: &[User], roles: &BTreeMap<String, Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                u.name.clone(),
                if u.disabled { "disabled" } else { "enabled" }.into(),
                roles
                    .get(&u.name)
                    .map(|r| r.join(", "))
                    .unwrap_or_else(|| "-".into()),
                u.created_at.format("%Y-%m-%d %H:%M").to_string(),
                u.created_by.clone(),
            ]
        })
        .collect();
    table(&["NAME", "STATE", "ROLES", "CREATED", "BY"], &rows)
}
