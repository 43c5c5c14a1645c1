//! Accounts: users (passwords hashed with Argon2id), role assignments, API tokens (stored
//! as SHA-256 hashes), and who a request is — a [`Principal`] with its [`Grants`].
//!
//! Checking a token must not cost a request its time: a token's principal is kept in
//! memory for [`CACHE_TTL`] after a database read (a password hash is never computed per
//! API call — tokens are long random secrets, so one SHA-256 is the right hash), and a
//! revocation, a disabled user or a role change in this process drops the cached entries at
//! once. Another process (the `flotilla user` CLI, a replica) is seen within the TTL.
//! `last_used_at` is written at most once a minute per token.
//!
//! Failed sign-ins are counted per account and per address: after [`MAX_FAILURES`] in
//! [`FAILURE_WINDOW`], attempts are refused without checking the password until the window
//! has passed. An unknown user costs the same hash as a known one.
//!
//! Every change (users, roles, tokens) and every sign-in, failed or not, is an activity
//! entry whose actor is the principal who acted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use flotilla_domain::access::{
    self, ApiToken, Grants, Role, RoleAssignment, TOKEN_SHOWN, User, UserSource,
};
use flotilla_domain::{ActivityResult, NewActivity, ValidationErrors};
use flotilla_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::events::EventBus;

/// How long a checked token or a user's grants are trusted without reading the database.
pub const CACHE_TTL: Duration = Duration::from_secs(10);
/// Failed sign-ins allowed per account and per address in [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How often a token's `last_used_at` is written while it is in use.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Default and longest lifetime of an API token.
pub const TOKEN_DAYS_DEFAULT: u32 = 90;
pub const TOKEN_DAYS_MAX: u32 = 3650;
/// The account `flotilla serve` creates on an empty database.
pub const ADMIN: &str = "admin";

/// Who is calling, as evaluated for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The name the activity log records: the user (`alice`), a token as `alice/ci`, or —
    /// with authentication off — what the client says it is.
    pub actor: String,
    /// The user, when authentication is on.
    pub user: Option<String>,
    /// The token used, if any.
    pub token: Option<i64>,
    pub grants: Grants,
}

impl Principal {
    /// Anyone, with every right: authentication is off (`--auth none`).
    pub fn open(actor: &str) -> Self {
        Self {
            actor: actor.to_string(),
            user: None,
            token: None,
            grants: Grants {
                assignments: vec![(Role::Owner, None)],
                ..Grants::default()
            },
        }
    }

    /// Whether this principal holds `role` on `scale_set` (`None`: fleet-wide).
    pub fn allows(&self, role: Role, scale_set: Option<&str>) -> bool {
        self.grants.allows(role, scale_set)
    }

    /// Refuses with 403 unless this principal holds `role` on `scale_set`.
    pub fn require(&self, role: Role, scale_set: Option<&str>) -> Result<()> {
        if self.allows(role, scale_set) {
            return Ok(());
        }
        let on = match scale_set {
            Some(set) => format!("on scale set {set:?}"),
            None => "fleet-wide".to_string(),
        };
        Err(Error::Forbidden {
            message: format!("{} needs the {role} role {on}", self.actor),
        })
    }
}

/// What the server learnt of a request's caller, in its extensions for the handlers, the
/// pages and the server functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `None`: anonymous.
    pub principal: Option<Principal>,
    /// Whether authentication is on (`--auth local`).
    pub auth: bool,
    /// The session's CSRF token, when the caller came with a portal session.
    pub csrf: Option<String>,
}

/// How users may sign in, for the login page: the server puts it in every request's
/// extensions (beside the [`Caller`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignInOptions {
    /// Single sign-on through OpenID Connect is configured: the login page offers
    /// `/auth/oidc/login?next=…`.
    pub single_sign_on: bool,
}

/// A new user.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    /// 10–1,024 characters; stored as an Argon2id hash only.
    pub password: String,
    /// A role on every scale set to give at once.
    #[serde(default)]
    pub role: Option<Role>,
}

/// A new API token.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    /// The most the token may do (never more than its user); default: as much as its user.
    #[serde(default)]
    pub role: Option<Role>,
    /// The one scale set the token may touch.
    #[serde(default)]
    pub scale_set: Option<String>,
    /// Days until it expires, 1–3,650; default 90.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A token just created: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    /// The secret: send it as `Authorization: Bearer <token>`. Not shown again.
    pub token: String,
    #[serde(flatten)]
    pub info: ApiToken,
}

struct CachedToken {
    principal: Option<Principal>,
    token: Option<ApiToken>,
    checked: Instant,
    touched: Instant,
}

struct CachedUser {
    principal: Option<Principal>,
    checked: Instant,
}

#[derive(Default)]
struct Failures {
    count: u32,
    first: Option<Instant>,
}

/// Users, roles and tokens, and the caches that make checking them cheap.
pub struct Accounts {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    events: EventBus,
    tokens: Mutex<HashMap<String, CachedToken>>,
    users: Mutex<HashMap<String, CachedUser>>,
    failures: Mutex<HashMap<String, Failures>>,
    /// A hash checked when the user is unknown, so that it costs what a known one does.
    decoy: std::sync::OnceLock<String>,
}

impl Accounts {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, events: EventBus) -> Arc<Self> {
        Arc::new(Self {
            store,
            clock,
            events,
            tokens: Mutex::default(),
            users: Mutex::default(),
            failures: Mutex::default(),
            decoy: std::sync::OnceLock::new(),
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Drops every cached principal: a user, a role or a token changed.
    fn forget(&self) {
        self.tokens.lock().expect("token cache").clear();
        self.users.lock().expect("user cache").clear();
    }

    async fn record(
        &self,
        operation: &str,
        actor: &str,
        target: &str,
        result: std::result::Result<(), String>,
        details: serde_json::Value,
    ) {
        let now = self.now();
        let (result, error) = match result {
            Ok(()) => (ActivityResult::Succeeded, None),
            Err(e) => (ActivityResult::Failed, Some(e)),
        };
        crate::context::record_to(
            self.store.as_ref(),
            &self.events,
            NewActivity {
                operation: operation.into(),
                actor: actor.into(),
                scale_set: None,
                target: target.into(),
                started_at: now,
                ended_at: Some(now),
                result,
                error,
                details,
            },
        )
        .await;
    }

    /// On a database without users: creates [`ADMIN`] with the Owner role and `password`,
    /// or a generated one, which is answered (to be shown once). `None` when users exist.
    pub async fn bootstrap(&self, password: Option<String>) -> Result<Option<String>> {
        let count = self
            .store
            .count_users()
            .await
            .map_err(Error::store("count users"))?;
        if count > 0 {
            return Ok(None);
        }
        let password = match password {
            Some(p) => {
                access::validate_password(&p, "FLOTILLA_ADMIN_PASSWORD").map_err(Error::Invalid)?;
                p
            }
            None => generate_password(),
        };
        self.create_user(
            NewUser {
                name: ADMIN.into(),
                password: password.clone(),
                role: Some(Role::Owner),
            },
            "system:bootstrap",
        )
        .await?;
        Ok(Some(password))
    }

    // --- users -------------------------------------------------------------------------

    pub async fn create_user(&self, new: NewUser, actor: &str) -> Result<User> {
        let mut errors = ValidationErrors::default();
        if let Err(e) = access::validate_user_name(&new.name, "name") {
            errors.0.extend(e.0);
        }
        if let Err(e) = access::validate_password(&new.password, "password") {
            errors.0.extend(e.0);
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let hash = hash_password(new.password).await?;
        let user = User {
            name: new.name.clone(),
            source: UserSource::Local,
            disabled: false,
            created_at: self.now(),
            created_by: actor.into(),
        };
        let user = self
            .store
            .create_user(&user, Some(&hash))
            .await
            .map_err(Error::store("create user"))?;
        self.record(
            "user.create",
            actor,
            &user.name,
            Ok(()),
            json!({ "role": new.role }),
        )
        .await;
        if let Some(role) = new.role {
            self.assign_role(&user.name, role, None, actor).await?;
        }
        Ok(user)
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        self.store
            .list_users()
            .await
            .map_err(Error::store("list users"))
    }

    pub async fn get_user(&self, name: &str) -> Result<User> {
        self.store
            .get_user(name)
            .await
            .map_err(Error::store("get user"))?
            .map(|(user, _)| user)
            .ok_or_else(|| Error::NotFound {
                kind: "user",
                name: name.into(),
            })
    }

    pub async fn set_password(&self, name: &str, password: String, actor: &str) -> Result<()> {
        access::validate_password(&password, "password").map_err(Error::Invalid)?;
        let user = self.get_user(name).await?;
        if user.source != UserSource::Local {
            return Err(Error::InvalidState {
                message: format!("user {name:?} signs in through single sign-on: no password"),
            });
        }
        let hash = hash_password(password).await?;
        self.store
            .set_user_password(name, &hash)
            .await
            .map_err(Error::store("set password"))?;
        self.forget();
        self.record("user.password", actor, name, Ok(()), json!({}))
            .await;
        Ok(())
    }

    /// Disables or enables a user; the last enabled fleet-wide Owner cannot be disabled.
    pub async fn set_disabled(&self, name: &str, disabled: bool, actor: &str) -> Result<User> {
        self.get_user(name).await?;
        if disabled {
            self.keep_an_owner(name, None).await?;
        }
        self.store
            .set_user_disabled(name, disabled)
            .await
            .map_err(Error::store("disable user"))?;
        self.forget();
        let operation = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        self.record(operation, actor, name, Ok(()), json!({})).await;
        self.get_user(name).await
    }

    /// Refuses a change that would leave no enabled user with the fleet-wide Owner role:
    /// `user` is disabled, or loses the global assignment (`losing: Some(None)`).
    async fn keep_an_owner(&self, user: &str, demoted_to: Option<Role>) -> Result<()> {
        let assignments = self.list_assignments(None).await?;
        let users = self.list_users().await?;
        let enabled = |name: &str| users.iter().any(|u| u.name == name && !u.disabled);
        let others = assignments.iter().any(|a| {
            a.user != user && a.role == Role::Owner && a.scale_set.is_none() && enabled(&a.user)
        });
        let stays = demoted_to == Some(Role::Owner);
        if others || stays {
            return Ok(());
        }
        let is_owner = assignments
            .iter()
            .any(|a| a.user == user && a.role == Role::Owner && a.scale_set.is_none());
        if is_owner && enabled(user) {
            return Err(Error::InvalidState {
                message: format!(
                    "{user:?} is the last enabled fleet-wide Owner: make another user Owner first"
                ),
            });
        }
        Ok(())
    }

    // --- roles -------------------------------------------------------------------------

    pub async fn list_assignments(&self, user: Option<&str>) -> Result<Vec<RoleAssignment>> {
        self.store
            .list_role_assignments(user)
            .await
            .map_err(Error::store("list role assignments"))
    }

    /// Gives `user` the `role` on `scale_set` (`None`: every scale set), replacing what it
    /// held there.
    pub async fn assign_role(
        &self,
        user: &str,
        role: Role,
        scale_set: Option<&str>,
        actor: &str,
    ) -> Result<RoleAssignment> {
        self.get_user(user).await?;
        if scale_set.is_none() && role != Role::Owner {
            self.keep_an_owner(user, Some(role)).await?;
        }
        if let Some(set) = scale_set {
            self.existing_set(set, "scale_set").await?;
        }
        let stored = self
            .store
            .put_role_assignment(&RoleAssignment {
                user: user.into(),
                role,
                scale_set: scale_set.map(str::to_string),
                created_at: self.now(),
                created_by: actor.into(),
            })
            .await
            .map_err(Error::store("assign role"))?;
        self.forget();
        self.record(
            "role.assign",
            actor,
            user,
            Ok(()),
            json!({ "role": role, "scale_set": scale_set }),
        )
        .await;
        Ok(stored)
    }

    pub async fn remove_role(
        &self,
        user: &str,
        scale_set: Option<&str>,
        actor: &str,
    ) -> Result<()> {
        if scale_set.is_none() {
            self.keep_an_owner(user, None).await?;
        }
        let removed = self
            .store
            .delete_role_assignment(user, scale_set)
            .await
            .map_err(Error::store("remove role"))?;
        if !removed {
            return Err(Error::NotFound {
                kind: "role assignment",
                name: format!("{user} on {}", scale_set.unwrap_or("every scale set")),
            });
        }
        self.forget();
        self.record(
            "role.remove",
            actor,
            user,
            Ok(()),
            json!({ "scale_set": scale_set }),
        )
        .await;
        Ok(())
    }

    async fn existing_set(&self, name: &str, field: &str) -> Result<()> {
        let found = self
            .store
            .get_scale_set(name)
            .await
            .map_err(Error::store("get scale set"))?;
        if found.is_none() {
            return Err(Error::invalid(field, format!("no scale set {name:?}")));
        }
        Ok(())
    }

    async fn grants_of(&self, user: &str) -> Result<Grants> {
        Ok(Grants {
            assignments: self
                .list_assignments(Some(user))
                .await?
                .into_iter()
                .map(|a| (a.role, a.scale_set))
                .collect(),
            ..Grants::default()
        })
    }

    // --- sign-in -----------------------------------------------------------------------

    /// Checks a user's password; `address` is where the attempt came from. Success and
    /// failure are both recorded.
    pub async fn sign_in(&self, name: &str, password: &str, address: &str) -> Result<Principal> {
        let keys = [format!("user:{name}"), format!("address:{address}")];
        if let Some(wait) = self.locked(&keys) {
            return Err(Error::TooManyAttempts {
                message: format!(
                    "too many failed sign-ins: try again in {} minutes",
                    wait.as_secs().div_ceil(60)
                ),
                retry_after_seconds: wait.as_secs().max(1),
            });
        }
        let stored = if access::validate_user_name(name, "name").is_ok() {
            self.store
                .get_user(name)
                .await
                .map_err(Error::store("get user"))?
        } else {
            None
        };
        let known_user = stored.is_some();
        let (user, hash) = match stored {
            Some((user, Some(hash))) => (Some(user), hash),
            _ => (None, self.decoy_hash().await?),
        };
        let good = password.len() <= access::PASSWORD_MAX
            && verify_password(password.to_string(), hash).await?;
        let user = user.filter(|u| good && !u.disabled);
        let Some(user) = user else {
            // An unknown name is not tracked (the address is): names cannot fill memory.
            let tracked = if known_user { &keys[..] } else { &keys[1..] };
            self.fail(tracked);
            // The attempted name is recorded only when it is a user's: a password typed
            // into the name field must not reach the log.
            let target = if known_user { name } else { "unknown user" };
            self.record(
                "auth.login",
                "anonymous",
                target,
                Err("wrong user name or password, or the user is disabled".into()),
                json!({ "address": address }),
            )
            .await;
            return Err(Error::Unauthenticated {
                message: "wrong user name or password".into(),
            });
        };
        self.failures.lock().expect("failures").remove(&keys[0]);
        self.record(
            "auth.login",
            &user.name,
            &user.name,
            Ok(()),
            json!({ "address": address }),
        )
        .await;
        self.user_principal(&user.name)
            .await?
            .ok_or_else(|| Error::Unauthenticated {
                message: "the user is disabled".into(),
            })
    }

    /// Records a sign-out.
    pub async fn signed_out(&self, principal: &Principal) {
        let target = principal.user.as_deref().unwrap_or(&principal.actor);
        self.record("auth.logout", &principal.actor, target, Ok(()), json!({}))
            .await;
    }

    /// Signs in `name`, whom an identity provider vouched for (single sign-on), giving it
    /// `role` fleet-wide (`None`: the provider grants none of Flotilla's roles). Success
    /// and failure are both recorded (`auth.login`, with `address`).
    ///
    /// The provider is the authority on that role: it is written on every sign-in, so a
    /// role changed or removed at the provider promotes or demotes the user at its next
    /// sign-in (a demotion that would leave no enabled fleet-wide Owner is refused, as
    /// everywhere). Roles on single scale sets stay Flotilla's to give. The user is created
    /// at its first sign-in, as [`UserSource::Oidc`] without a password. Refused: no role (a
    /// user is not even created), a local user of that name (identities are never merged:
    /// a provider must not take over a local account), a disabled user.
    pub async fn sign_in_external(
        &self,
        name: &str,
        role: Option<Role>,
        address: &str,
    ) -> Result<Principal> {
        let details = json!({ "address": address, "source": UserSource::Oidc.as_str() });
        match self.external_principal(name, role).await {
            Ok(principal) => {
                self.record("auth.login", name, name, Ok(()), details).await;
                Ok(principal)
            }
            Err(e) => {
                self.record("auth.login", "anonymous", name, Err(e.to_string()), details)
                    .await;
                Err(e)
            }
        }
    }

    async fn external_principal(&self, name: &str, role: Option<Role>) -> Result<Principal> {
        const ACTOR: &str = "system:oidc";
        access::validate_user_name(name, "name").map_err(Error::Invalid)?;
        let existing = self
            .store
            .get_user(name)
            .await
            .map_err(Error::store("get user"))?
            .map(|(user, _)| user);
        match &existing {
            Some(user) if user.source != UserSource::Oidc => {
                return Err(Error::Unauthenticated {
                    message: format!(
                        "{name:?} is a local user of Flotilla: sign in with its password \
                         (single sign-on never takes over a local account)"
                    ),
                });
            }
            Some(user) if user.disabled => {
                return Err(Error::Unauthenticated {
                    message: format!("the user {name:?} is disabled"),
                });
            }
            Some(_) => self.set_external_role(name, role, ACTOR).await?,
            None if role.is_some() => {
                let user = User {
                    name: name.into(),
                    source: UserSource::Oidc,
                    disabled: false,
                    created_at: self.now(),
                    created_by: ACTOR.into(),
                };
                self.store
                    .create_user(&user, None)
                    .await
                    .map_err(Error::store("create user"))?;
                self.record(
                    "user.create",
                    ACTOR,
                    name,
                    Ok(()),
                    json!({ "role": role, "source": UserSource::Oidc.as_str() }),
                )
                .await;
                self.set_external_role(name, role, ACTOR).await?;
            }
            None => {}
        }
        if role.is_none() {
            return Err(Error::Forbidden {
                message: format!(
                    "the identity provider grants {name:?} none of Flotilla's roles \
                     (Reader, Operator, Contributor, Owner): ask its administrator for one"
                ),
            });
        }
        self.user_principal(name)
            .await?
            .ok_or_else(|| Error::Unauthenticated {
                message: format!("the user {name:?} is disabled"),
            })
    }

    /// Makes `role` the user's fleet-wide role (`None`: no fleet-wide role), recorded when
    /// it changes.
    async fn set_external_role(&self, user: &str, role: Option<Role>, actor: &str) -> Result<()> {
        let current = self
            .list_assignments(Some(user))
            .await?
            .into_iter()
            .find(|a| a.scale_set.is_none())
            .map(|a| a.role);
        if current == role {
            return Ok(());
        }
        if current == Some(Role::Owner) {
            self.keep_an_owner(user, role).await?;
        }
        match role {
            Some(role) => {
                self.store
                    .put_role_assignment(&RoleAssignment {
                        user: user.into(),
                        role,
                        scale_set: None,
                        created_at: self.now(),
                        created_by: actor.into(),
                    })
                    .await
                    .map_err(Error::store("assign role"))?;
            }
            None => {
                self.store
                    .delete_role_assignment(user, None)
                    .await
                    .map_err(Error::store("remove role"))?;
            }
        }
        self.forget();
        let (operation, details) = match role {
            Some(role) => ("role.assign", json!({ "role": role, "scale_set": null })),
            None => ("role.remove", json!({ "scale_set": null })),
        };
        self.record(operation, actor, user, Ok(()), details).await;
        Ok(())
    }

    fn locked(&self, keys: &[String]) -> Option<Duration> {
        let mut failures = self.failures.lock().expect("failures");
        let now = Instant::now();
        failures.retain(|_, f| f.first.is_some_and(|at| now - at < FAILURE_WINDOW));
        keys.iter()
            .filter_map(|k| failures.get(k))
            .filter(|f| f.count >= MAX_FAILURES)
            .filter_map(|f| f.first.map(|at| FAILURE_WINDOW.saturating_sub(now - at)))
            .max()
    }

    fn fail(&self, keys: &[String]) {
        let mut failures = self.failures.lock().expect("failures");
        for key in keys {
            let f = failures.entry(key.clone()).or_default();
            f.first.get_or_insert_with(Instant::now);
            f.count += 1;
        }
    }

    async fn decoy_hash(&self) -> Result<String> {
        if let Some(hash) = self.decoy.get() {
            return Ok(hash.clone());
        }
        let hash = hash_password(generate_password()).await?;
        Ok(self.decoy.get_or_init(|| hash).clone())
    }

    /// The principal of a signed-in user (a portal session), or `None` when the user is
    /// gone or disabled. Cached for [`CACHE_TTL`].
    pub async fn user_principal(&self, name: &str) -> Result<Option<Principal>> {
        if let Some(cached) = self.users.lock().expect("user cache").get(name)
            && cached.checked.elapsed() < CACHE_TTL
        {
            return Ok(cached.principal.clone());
        }
        let user = self
            .store
            .get_user(name)
            .await
            .map_err(Error::store("get user"))?;
        let principal = match user {
            Some((user, _)) if !user.disabled => Some(Principal {
                actor: user.name.clone(),
                user: Some(user.name.clone()),
                token: None,
                grants: self.grants_of(&user.name).await?,
            }),
            _ => None,
        };
        self.users.lock().expect("user cache").insert(
            name.to_string(),
            CachedUser {
                principal: principal.clone(),
                checked: Instant::now(),
            },
        );
        Ok(principal)
    }

    // --- tokens ------------------------------------------------------------------------

    /// Creates a token for `owner` (a signed-in principal): its role cap may not exceed
    /// what the owner holds, its scale set must exist.
    pub async fn create_token(&self, owner: &Principal, new: NewToken) -> Result<CreatedToken> {
        let Some(user) = owner.user.clone() else {
            return Err(Error::InvalidState {
                message: "authentication is off: there is no user to own a token".into(),
            });
        };
        let mut errors = ValidationErrors::default();
        if let Err(e) = access::validate_token_name(&new.name, "name") {
            errors.0.extend(e.0);
        }
        let days = new.expires_in_days.unwrap_or(TOKEN_DAYS_DEFAULT);
        if !(1..=TOKEN_DAYS_MAX).contains(&days) {
            errors.push("expires_in_days", "between 1 and 3650");
        }
        let held = owner.grants.role_on(new.scale_set.as_deref()).or_else(|| {
            new.scale_set
                .is_none()
                .then(|| owner.grants.highest())
                .flatten()
        });
        if let Some(role) = new.role
            && held.is_none_or(|held| role > held)
        {
            errors.push(
                "role",
                format!(
                    "a token cannot exceed its user's rights ({})",
                    held.map_or("none".to_string(), |r| r.to_string())
                ),
            );
        }
        if let Some(set) = &new.scale_set {
            if self.existing_set(set, "scale_set").await.is_err() {
                errors.push("scale_set", format!("no scale set {set:?}"));
            } else if !owner.grants.sees(set) {
                errors.push(
                    "scale_set",
                    format!("{user} has no role on scale set {set:?}"),
                );
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let secret = access::format_token(&random_bytes::<32>());
        let now = self.now();
        let token = ApiToken {
            id: 0,
            name: new.name,
            user: user.clone(),
            role: new.role,
            scale_set: new.scale_set,
            prefix: secret[..TOKEN_SHOWN].to_string(),
            created_at: now,
            expires_at: Some(now + chrono::Duration::days(i64::from(days))),
            last_used_at: None,
            revoked_at: None,
        };
        let info = self
            .store
            .insert_token(&token, &token_hash(&secret))
            .await
            .map_err(Error::store("create token"))?;
        self.record(
            "token.create",
            &owner.actor,
            &format!("{}/{}", info.user, info.name),
            Ok(()),
            json!({ "id": info.id, "role": info.role, "scale_set": info.scale_set,
                    "expires_at": info.expires_at }),
        )
        .await;
        Ok(CreatedToken {
            token: secret,
            info,
        })
    }

    /// Tokens of `user`, or everyone's (`None`).
    pub async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>> {
        self.store
            .list_tokens(user)
            .await
            .map_err(Error::store("list tokens"))
    }

    /// Revokes a token: its owner may, and an Owner may revoke anyone's. Refused at once
    /// from then on.
    pub async fn revoke_token(&self, id: i64, by: &Principal) -> Result<ApiToken> {
        let not_found = || Error::NotFound {
            kind: "token",
            name: id.to_string(),
        };
        let token = self
            .list_tokens(None)
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(not_found)?;
        let mine = by.user.as_deref() == Some(token.user.as_str());
        if !mine && !by.allows(Role::Owner, None) {
            // Someone else's token is not even acknowledged.
            return Err(not_found());
        }
        let revoked = self
            .store
            .revoke_token(id, self.now())
            .await
            .map_err(Error::store("revoke token"))?
            .ok_or_else(not_found)?;
        self.forget();
        self.record(
            "token.revoke",
            &by.actor,
            &format!("{}/{}", revoked.user, revoked.name),
            Ok(()),
            json!({ "id": id }),
        )
        .await;
        Ok(revoked)
    }

    /// The principal of a bearer token, or 401. Cached for [`CACHE_TTL`] (by hash).
    pub async fn authenticate_token(&self, secret: &str) -> Result<Principal> {
        let refused = |why: &str| Error::Unauthenticated {
            message: format!("the bearer token is refused: {why}"),
        };
        access::check_token(secret).map_err(refused)?;
        let hash = token_hash(secret);
        let now = self.now();
        let cached = {
            let mut tokens = self.tokens.lock().expect("token cache");
            match tokens.get_mut(&hash) {
                Some(c) if c.checked.elapsed() < CACHE_TTL => {
                    let touch = c.touched.elapsed() >= TOUCH_EVERY;
                    if touch {
                        c.touched = Instant::now();
                    }
                    Some((c.principal.clone(), c.token.clone(), touch))
                }
                _ => None,
            }
        };
        let (principal, token, touch) = match cached {
            Some(hit) => hit,
            None => {
                let token = self
                    .store
                    .token_by_hash(&hash)
                    .await
                    .map_err(Error::store("read token"))?;
                let principal = match &token {
                    Some(t) => self.token_principal(t).await?,
                    None => None,
                };
                self.tokens.lock().expect("token cache").insert(
                    hash,
                    CachedToken {
                        principal: principal.clone(),
                        token: token.clone(),
                        checked: Instant::now(),
                        touched: Instant::now(),
                    },
                );
                (principal, token, true)
            }
        };
        let (Some(principal), Some(token)) = (principal, token) else {
            return Err(refused("unknown, revoked, or its user is disabled"));
        };
        if !token.usable(now) {
            return Err(refused("expired or revoked"));
        }
        if touch {
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.touch_tokens(&[(token.id, now)]).await {
                    tracing::warn!(error = %e, "could not record a token's last use");
                }
            });
        }
        Ok(principal)
    }

    async fn token_principal(&self, token: &ApiToken) -> Result<Option<Principal>> {
        if token.revoked_at.is_some() {
            return Ok(None);
        }
        let Some(user) = self.user_principal(&token.user).await? else {
            return Ok(None);
        };
        Ok(Some(Principal {
            actor: format!("{}/{}", token.user, token.name),
            user: Some(token.user.clone()),
            token: Some(token.id),
            grants: Grants {
                cap: token.role,
                only_set: token.scale_set.clone(),
                ..user.grants
            },
        }))
    }
}

/// The hash a token is stored and looked up by.
pub fn token_hash(secret: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random generator");
    bytes
}

/// A random password of 20 base-62 characters (about 119 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    random_bytes::<20>()
        .iter()
        .map(|b| ALPHABET[(*b as usize) % 62] as char)
        .collect()
}

/// A random secret for sessions and CSRF tokens: 32 bytes, hex.
pub fn random_secret() -> String {
    random_bytes::<32>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An Argon2id hash (the crate's defaults: OWASP's 19 MiB, 2 passes) in PHC form, computed
/// off the async threads.
pub async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&random_bytes::<16>()).expect("16 bytes of salt");
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .expect("hashing does not panic")
    .map_err(|e| Error::InvalidState {
        message: format!("could not hash the password: {e}"),
    })
}

async fn verify_password(password: String, hash: String) -> Result<bool> {
    Ok(tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .expect("verifying does not panic"))
}
