//! Single sign-on through OpenID Connect (optional: `--oidc-issuer`, `--oidc-client-id`,
//! `--oidc-roles-claim`, and the secret in `FLOTILLA_OIDC_CLIENT_SECRET` only).
//!
//! - **Discovery**: the issuer's `/.well-known/openid-configuration` and its key set are
//!   read at start, again when they are older than [`REFRESH`], and again (at most once a
//!   minute) when an ID token names a key the set does not hold — the provider rotated its
//!   keys. A provider that cannot be reached at start is logged and tried again at the next
//!   sign-in: password sign-in must not depend on it. The HTTP client follows no redirects
//!   (SSRF: the crate's advice).
//! - **`GET /auth/oidc/login?next=…`**: sends the browser to the provider with an
//!   authorization code request, PKCE (S256), a random `state` and `nonce`. The verifier,
//!   nonce, state and `next` stay on the server, in the (anonymous) session; one sign-in is
//!   pending per browser, for [`PENDING_FOR`].
//! - **`GET /auth/oidc/callback?code&state`**: the pending sign-in is taken out of the
//!   session (used once); the state must match; the code is exchanged with the verifier;
//!   the ID token is verified (signature with the provider's keys and advertised
//!   algorithms, issuer, audience, nonce, expiry). The user is named by
//!   `preferred_username`, else `email` (unless marked unverified), else `sub`,
//!   lowercased, and must be a valid user name. The roles claim — a string or an array of
//!   strings; a dotted name such as `realm_access.roles` is followed into objects when no
//!   claim has that exact name — holds role names (any case; unknown ones ignored), and the
//!   highest is the user's fleet-wide role, set at every sign-in
//!   (`Accounts::sign_in_external`: that is where users are created, local users refused,
//!   and `auth.login` recorded). The session then starts as a password sign-in's does
//!   (`auth::start_session`).
//! - **Failures** go back to `/login?error=…&next=…` with a short reason; what the provider
//!   or the network said is logged, never a 500.
//!
//! The name is the identity: whoever the provider lets use a `preferred_username` signs in
//! as that Flotilla user, so a provider whose users can choose their own should be mapped
//! through a claim they cannot change (`email` with verified addresses, or `sub`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use flotilla_control::accounts::Accounts;
use flotilla_domain::access::{self, Role};
use flotilla_domain::secret::constant_time_eq;
use flotilla_domain::url::percent_encode;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthType, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenClaims,
    IdTokenFields, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tower_sessions::Session;

use crate::auth::{self, AuthMode};
use crate::config::ServeArgs;

/// Where the provider sends the browser back, under the portal's URL.
pub const CALLBACK_PATH: &str = "/auth/oidc/callback";
/// Where the login page's single sign-on link points.
pub const LOGIN_PATH: &str = "/auth/oidc/login";
/// How long discovered metadata and keys are used before they are read again.
pub const REFRESH: Duration = Duration::from_secs(60 * 60);
/// How long a browser may take at the provider.
pub const PENDING_FOR: Duration = Duration::from_secs(10 * 60);
/// The least time between two discoveries forced by an unknown signing key.
const REDISCOVER_EVERY: Duration = Duration::from_secs(60);
/// Each request to the provider (discovery, keys, code exchange).
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// The session key of a pending sign-in.
const PENDING: &str = "oidc_pending";

/// The ID token's claims besides the standard ones, by name (the roles claim among them).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OtherClaims {
    #[serde(flatten)]
    claims: serde_json::Map<String, serde_json::Value>,
}

impl AdditionalClaims for OtherClaims {}

type Claims = IdTokenClaims<OtherClaims, CoreGenderClaim>;
type IdToken = openidconnect::IdToken<
    OtherClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Tokens = StandardTokenResponse<
    IdTokenFields<
        OtherClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;
/// A client of the provider as discovery makes it: authorization endpoint set, token and
/// user-info endpoints as the provider advertises them.
type OidcClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Single sign-on's configuration, checked at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub issuer: IssuerUrl,
    pub client_id: ClientId,
    /// `None`: a public client (PKCE alone).
    pub client_secret: Option<ClientSecret>,
    pub roles_claim: String,
    /// `<first --public-url, or http://<listen address>>/auth/oidc/callback`.
    pub redirect: RedirectUrl,
}

/// Flags that do not make a single sign-on configuration.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{given} needs {missing} as well (single sign-on takes both, or neither)")]
    Incomplete {
        given: &'static str,
        missing: &'static str,
    },
    #[error("single sign-on (--oidc-issuer) needs --auth local")]
    AuthOff,
    #[error("--oidc-issuer {issuer:?} is not a URL")]
    Issuer {
        issuer: String,
        #[source]
        source: url::ParseError,
    },
    #[error(
        "--oidc-issuer {issuer:?} must be https (plain http only for a loopback address): \
         tokens would cross the network in clear"
    )]
    Insecure { issuer: String },
    #[error("--oidc-roles-claim must name a claim")]
    RolesClaim,
    #[error(
        "single sign-on needs --public-url when the server listens on {listen}: the identity \
         provider must send browsers back to an address they can reach"
    )]
    NoPublicUrl { listen: SocketAddr },
    #[error("the redirect URI {uri:?} is not a URL")]
    Redirect {
        uri: String,
        #[source]
        source: url::ParseError,
    },
}

impl Settings {
    /// Single sign-on's configuration from `flotilla serve`'s flags, with `listening` the
    /// address actually bound; `None` when it is not configured.
    pub fn from_args(
        config: &ServeArgs,
        listening: SocketAddr,
    ) -> Result<Option<Self>, SettingsError> {
        let (issuer, client_id) = match (&config.oidc_issuer, &config.oidc_client_id) {
            (None, None) => {
                if config.oidc_client_secret.is_some() {
                    tracing::warn!(
                        "FLOTILLA_OIDC_CLIENT_SECRET is set but single sign-on is not \
                         configured (--oidc-issuer, --oidc-client-id): ignored"
                    );
                }
                return Ok(None);
            }
            (Some(_), None) => {
                return Err(SettingsError::Incomplete {
                    given: "--oidc-issuer",
                    missing: "--oidc-client-id",
                });
            }
            (None, Some(_)) => {
                return Err(SettingsError::Incomplete {
                    given: "--oidc-client-id",
                    missing: "--oidc-issuer",
                });
            }
            (Some(issuer), Some(client_id)) => (issuer.trim(), client_id.trim()),
        };
        if config.auth != AuthMode::Local {
            return Err(SettingsError::AuthOff);
        }
        let issuer_url =
            IssuerUrl::new(issuer.to_string()).map_err(|source| SettingsError::Issuer {
                issuer: issuer.to_string(),
                source,
            })?;
        let loopback = match issuer_url.url().host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match issuer_url.url().scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(SettingsError::Insecure {
                    issuer: issuer.to_string(),
                });
            }
        }
        let roles_claim = config.oidc_roles_claim.trim().to_string();
        if roles_claim.is_empty() {
            return Err(SettingsError::RolesClaim);
        }
        let base = match config.public_url.first() {
            Some(url) => url.to_string(),
            None if listening.ip().is_unspecified() => {
                return Err(SettingsError::NoPublicUrl { listen: listening });
            }
            None => format!("http://{listening}"),
        };
        let uri = format!("{base}{CALLBACK_PATH}");
        let redirect = RedirectUrl::new(uri.clone())
            .map_err(|source| SettingsError::Redirect { uri, source })?;
        Ok(Some(Self {
            issuer: issuer_url,
            client_id: ClientId::new(client_id.to_string()),
            client_secret: config
                .oidc_client_secret
                .clone()
                .filter(|s| !s.is_empty())
                .map(ClientSecret::new),
            roles_claim,
            redirect,
        }))
    }
}

/// The provider as last discovered.
struct Discovered {
    client: Arc<OidcClient>,
    at: Instant,
}

/// Single sign-on: the settings, the provider's client and the accounts users sign in to.
pub struct Oidc {
    settings: Settings,
    http: reqwest::Client,
    accounts: Arc<Accounts>,
    provider: Mutex<Option<Discovered>>,
}

/// The provider could not be discovered (logged where it happens).
#[derive(Debug, Clone, Copy)]
struct Unreachable;

impl Oidc {
    /// Single sign-on with `settings`; discovers the provider now (a failure is logged and
    /// retried at the next sign-in).
    pub async fn start(
        settings: Settings,
        accounts: Arc<Accounts>,
    ) -> Result<Arc<Self>, reqwest::Error> {
        let http = reqwest::Client::builder()
            // Following redirects would let a provider's answer steer the server's requests.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()?;
        let oidc = Arc::new(Self {
            settings,
            http,
            accounts,
            provider: Mutex::new(None),
        });
        if oidc.client(false).await.is_ok() {
            tracing::info!(
                issuer = oidc.settings.issuer.as_str(),
                redirect_uri = oidc.settings.redirect.as_str(),
                "single sign-on ready"
            );
        }
        Ok(oidc)
    }

    /// `/auth/oidc/login` and `/auth/oidc/callback`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route(LOGIN_PATH, get(login))
            .route(CALLBACK_PATH, get(callback))
            .with_state(self)
    }

    /// The provider's client: as discovered within [`REFRESH`], else discovered again (the
    /// previous one is kept when the provider cannot be reached). `rediscover` forces a
    /// discovery unless one happened within [`REDISCOVER_EVERY`].
    async fn client(&self, rediscover: bool) -> Result<Arc<OidcClient>, Unreachable> {
        let mut provider = self.provider.lock().await;
        if let Some(known) = provider.as_ref() {
            let fresh = if rediscover {
                known.at.elapsed() < REDISCOVER_EVERY
            } else {
                known.at.elapsed() < REFRESH
            };
            if fresh {
                return Ok(known.client.clone());
            }
        }
        match self.discover().await {
            Ok(client) => {
                let client = Arc::new(client);
                *provider = Some(Discovered {
                    client: client.clone(),
                    at: Instant::now(),
                });
                Ok(client)
            }
            Err(e) => {
                tracing::error!(
                    issuer = self.settings.issuer.as_str(),
                    error = %chain(e.as_ref()),
                    "single sign-on: the identity provider's configuration could not be read"
                );
                provider
                    .as_ref()
                    .map(|known| known.client.clone())
                    .ok_or(Unreachable)
            }
        }
    }

    async fn discover(&self) -> Result<OidcClient, Box<dyn std::error::Error + Send + Sync>> {
        let metadata =
            CoreProviderMetadata::discover_async(self.settings.issuer.clone(), &self.http).await?;
        // HTTP Basic is OAuth's default; a provider that takes the secret only in the body
        // says so in its metadata.
        let auth_type = match metadata.token_endpoint_auth_methods_supported() {
            Some(methods)
                if !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                    && methods.contains(&CoreClientAuthMethod::ClientSecretPost) =>
            {
                AuthType::RequestBody
            }
            _ => AuthType::BasicAuth,
        };
        if metadata.token_endpoint().is_none() {
            return Err("the provider advertises no token endpoint".into());
        }
        Ok(OidcClient::from_provider_metadata(
            metadata,
            self.settings.client_id.clone(),
            self.settings.client_secret.clone(),
        )
        .set_redirect_uri(self.settings.redirect.clone())
        .set_auth_type(auth_type))
    }

    /// The ID token's claims once verified, with one rediscovery when it is signed by a key
    /// the provider's set did not hold.
    async fn verified(
        &self,
        client: Arc<OidcClient>,
        token: &IdToken,
        nonce: &Nonce,
    ) -> Result<Claims, openidconnect::ClaimsVerificationError> {
        use openidconnect::{ClaimsVerificationError, SignatureVerificationError};
        match token.claims(&client.id_token_verifier(), nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                let Ok(newer) = self.client(true).await else {
                    return Err(ClaimsVerificationError::SignatureVerification(
                        SignatureVerificationError::NoMatchingKey,
                    ));
                };
                token.claims(&newer.id_token_verifier(), nonce).cloned()
            }
            other => other.cloned(),
        }
    }
}

/// A sign-in on its way through the provider, kept in the browser's session.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    next: String,
    started_at: i64,
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// `GET /auth/oidc/login?next=…`: to the provider.
async fn login(
    State(oidc): State<Arc<Oidc>>,
    session: Session,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = auth::local_path(&query.next);
    let Ok(client) = oidc.client(false).await else {
        return refused(
            "single sign-on is unavailable: the identity provider cannot be reached",
            &next,
        );
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let pending = Pending {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        next: next.clone(),
        started_at: chrono::Utc::now().timestamp(),
    };
    if let Err(e) = session.insert(PENDING, pending).await {
        tracing::error!(error = %chain(&e), "single sign-on: the session could not be written");
        return refused(
            "single sign-on failed: the session could not be saved",
            &next,
        );
    }
    Redirect::to(url.as_str()).into_response()
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/oidc/callback?code&state`: back from the provider (see the module
/// documentation).
async fn callback(
    State(oidc): State<Arc<Oidc>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    Query(query): Query<CallbackQuery>,
) -> Response {
    // Used once, whatever happens next.
    let pending = match session.remove::<Pending>(PENDING).await {
        Ok(pending) => pending,
        Err(e) => {
            tracing::warn!(error = %chain(&e), "single sign-on: no readable pending sign-in");
            None
        }
    };
    let Some(pending) = pending else {
        return refused(
            "no single sign-on was started in this browser, or it expired: start again",
            "/",
        );
    };
    let next = pending.next.clone();
    match signed_in(&oidc, &session, peer, query, pending).await {
        Ok(()) => Redirect::to(&next).into_response(),
        Err(message) => refused(&message, &next),
    }
}

/// The callback's checks and the sign-in; `Err` is the reason shown to the user (what it
/// hides is logged here).
async fn signed_in(
    oidc: &Oidc,
    session: &Session,
    peer: SocketAddr,
    query: CallbackQuery,
    pending: Pending,
) -> Result<(), String> {
    if let Some(error) = query.error {
        let description = query.error_description.unwrap_or_default();
        tracing::warn!(%error, %description, "single sign-on: the identity provider refused");
        let shown: String = format!("{error} {description}")
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        return Err(format!(
            "the identity provider refused the sign-in: {shown}"
        ));
    }
    let (Some(code), Some(state)) = (query.code, query.state) else {
        return Err("the identity provider sent back no code".into());
    };
    if !constant_time_eq(state.as_bytes(), pending.state.as_bytes()) {
        tracing::warn!("single sign-on: the state sent back is not this browser's");
        return Err(
            "the sign-in that came back is not the one this browser started: start again".into(),
        );
    }
    let age = chrono::Utc::now().timestamp() - pending.started_at;
    if age < 0 || age as u64 > PENDING_FOR.as_secs() {
        return Err("the single sign-on took too long: start again".into());
    }
    let client = oidc
        .client(false)
        .await
        .map_err(|Unreachable| "the identity provider cannot be reached".to_string())?;
    let exchanged = match client.exchange_code(AuthorizationCode::new(code)) {
        Ok(request) => {
            request
                .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
                .request_async(&oidc.http)
                .await
        }
        Err(e) => {
            tracing::error!(error = %chain(&e), "single sign-on: no token endpoint");
            return Err("the identity provider has no token endpoint".into());
        }
    };
    let tokens = exchanged.map_err(|e| {
        tracing::warn!(error = %chain(&e), "single sign-on: the code exchange failed");
        "the identity provider did not complete the sign-in (code exchange failed)".to_string()
    })?;
    let Some(id_token) = tokens.id_token() else {
        tracing::warn!("single sign-on: the token response holds no ID token");
        return Err("the identity provider sent no ID token".into());
    };
    let nonce = Nonce::new(pending.nonce);
    let claims = oidc.verified(client, id_token, &nonce).await.map_err(|e| {
        tracing::warn!(error = %chain(&e), "single sign-on: the ID token was refused");
        format!("the identity provider's ID token was refused: {e}")
    })?;
    let name = user_name(&claims)?;
    let role = highest_role(
        &claims.additional_claims().claims,
        &oidc.settings.roles_claim,
    );
    let address = peer.ip().to_string();
    let principal = oidc
        .accounts
        .sign_in_external(&name, role, &address)
        .await
        .map_err(|e| {
            if e.status() == 500 {
                tracing::error!(error = %chain(&e), user = %name, "single sign-on failed");
                "single sign-on failed inside the server: try again".to_string()
            } else {
                e.to_string()
            }
        })?;
    auth::start_session(session, principal.user.as_deref())
        .await
        .map_err(|e| {
            tracing::error!(error = %chain(&e), "single sign-on: the session could not start");
            "the session could not be started: try again".to_string()
        })
}

/// The Flotilla user an ID token names: `preferred_username`, else `email` (unless the
/// provider marks it unverified), else `sub`; lowercased; a valid user name.
fn user_name(claims: &Claims) -> Result<String, String> {
    let email = claims
        .email()
        .filter(|_| claims.email_verified() != Some(false))
        .map(|e| e.as_str());
    let (claim, raw) = match (claims.preferred_username(), email) {
        (Some(name), _) => ("preferred_username", name.as_str()),
        (None, Some(email)) => ("email", email),
        (None, None) => ("sub", claims.subject().as_str()),
    };
    let name = raw.trim().to_lowercase();
    match access::validate_user_name(&name, claim) {
        Ok(()) => Ok(name),
        Err(_) => Err(format!(
            "the identity provider names the user {raw:?} ({claim}), which is not a Flotilla \
             user name (1–64 of a–z, 0–9, '.', '_', '@', '-')"
        )),
    }
}

/// The highest of the roles `claim` names among `claims`: a string or an array of strings,
/// role names in any case, others ignored. A dotted name is followed into objects
/// (`realm_access.roles`) when no claim has that exact name.
fn highest_role(claims: &serde_json::Map<String, serde_json::Value>, claim: &str) -> Option<Role> {
    let value = claims.get(claim).or_else(|| {
        let mut parts = claim.split('.');
        let first = claims.get(parts.next()?)?;
        parts.try_fold(first, |value, part| value.get(part))
    })?;
    let names: Vec<&str> = match value {
        serde_json::Value::String(s) => vec![s.as_str()],
        serde_json::Value::Array(items) => items.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    };
    names.into_iter().filter_map(|n| n.parse().ok()).max()
}

/// Back to the login page with `message`, and on to `next` after a sign-in there.
fn refused(message: &str, next: &str) -> Response {
    Redirect::to(&format!(
        "/login?error={}&next={}",
        percent_encode(message),
        percent_encode(next)
    ))
    .into_response()
}

/// An error with its sources, for the log.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn the_highest_known_role_wins() {
        let table = [
            (json!({ "roles": "operator" }), Some(Role::Operator)),
            (
                json!({ "roles": ["Reader", "OWNER", "x"] }),
                Some(Role::Owner),
            ),
            (json!({ "roles": ["admin", "users"] }), None),
            (json!({ "roles": [] }), None),
            (json!({ "roles": 3 }), None),
            (json!({ "groups": ["Owner"] }), None),
            (json!({}), None),
        ];
        for (given, want) in table {
            assert_eq!(
                highest_role(&claims(given.clone()), "roles"),
                want,
                "{given}"
            );
        }
    }

    #[test]
    fn a_dotted_claim_is_followed_unless_one_has_that_name() {
        let nested = claims(json!({ "realm_access": { "roles": ["contributor"] } }));
        assert_eq!(
            highest_role(&nested, "realm_access.roles"),
            Some(Role::Contributor)
        );
        let exact = claims(json!({
            "https://flotilla.example/roles": "Reader",
            "https://flotilla": { "example/roles": "Owner" },
        }));
        assert_eq!(
            highest_role(&exact, "https://flotilla.example/roles"),
            Some(Role::Reader)
        );
    }

    fn args(extra: &[&str]) -> ServeArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let mut argv = vec!["x"];
        argv.extend(extra);
        Cli::try_parse_from(argv).unwrap().serve
    }

    #[test]
    fn settings_take_issuer_and_client_together() {
        let bound: SocketAddr = "127.0.0.1:3000".parse().unwrap();
        assert!(Settings::from_args(&args(&[]), bound).unwrap().is_none());
        let only_issuer = args(&["--oidc-issuer", "https://id.example"]);
        assert!(matches!(
            Settings::from_args(&only_issuer, bound),
            Err(SettingsError::Incomplete { .. })
        ));
        let only_client = args(&["--oidc-client-id", "flotilla"]);
        assert!(matches!(
            Settings::from_args(&only_client, bound),
            Err(SettingsError::Incomplete { .. })
        ));
        let both = [
            "--oidc-issuer",
            "https://id.example",
            "--oidc-client-id",
            "f",
        ];
        let settings = Settings::from_args(&args(&both), bound).unwrap().unwrap();
        assert_eq!(
            settings.redirect.as_str(),
            "http://127.0.0.1:3000/auth/oidc/callback"
        );
        assert_eq!(settings.roles_claim, "roles");
        let mut public = both.to_vec();
        public.extend(["--public-url", "https://flotilla.example,http://other"]);
        let settings = Settings::from_args(&args(&public), bound).unwrap().unwrap();
        assert_eq!(
            settings.redirect.as_str(),
            "https://flotilla.example/auth/oidc/callback"
        );
        let mut open = both.to_vec();
        open.extend(["--auth", "none"]);
        assert!(matches!(
            Settings::from_args(&args(&open), bound),
            Err(SettingsError::AuthOff)
        ));
        let clear = [
            "--oidc-issuer",
            "http://id.example",
            "--oidc-client-id",
            "f",
        ];
        assert!(matches!(
            Settings::from_args(&args(&clear), bound),
            Err(SettingsError::Insecure { .. })
        ));
        let local = [
            "--oidc-issuer",
            "http://127.0.0.1:9000",
            "--oidc-client-id",
            "f",
        ];
        assert!(Settings::from_args(&args(&local), bound).is_ok());
        let everywhere: SocketAddr = "0.0.0.0:3000".parse().unwrap();
        assert!(matches!(
            Settings::from_args(&args(&both), everywhere),
            Err(SettingsError::NoPublicUrl { .. })
        ));
    }
}
