//! Single sign-on through OpenID Connect, against an identity provider in this process: a
//! small axum server on 127.0.0.1:0 with discovery, a key set (an ECDSA P-256 key, ES256),
//! an authorize endpoint that sends the browser straight back with a code (remembering the
//! nonce and PKCE challenge it was given), and a token endpoint that checks the client's
//! secret, the redirect URI and the PKCE verifier before it signs an ID token with the
//! claims the test set. Knobs make it lie (another audience, another nonce, a broken
//! signature, an expired token) so that the server's checks are seen to refuse.
//!
//! A browser without JavaScript is played by a reqwest client that follows no redirects
//! and carries the session cookie by hand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use flotilla_tests::{OIDC_CLIENT_SECRET, TestServer, serve_args, session_cookie};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

const CLIENT_ID: &str = "flotilla-tests";

/// What the provider puts in (or does to) the next ID token.
#[derive(Clone)]
struct Behaviour {
    /// Claims besides `iss`, `aud`, `exp`, `iat` and `nonce` (`sub` among them).
    claims: Value,
    /// Another audience than the client's.
    audience: Option<String>,
    /// Another nonce than the one the authorize request carried.
    nonce: Option<String>,
    corrupt_signature: bool,
    expired: bool,
}

/// A code the authorize endpoint handed out, with what the request carried.
struct Grant {
    nonce: String,
    challenge: String,
    redirect_uri: String,
}

struct Provider {
    issuer: String,
    key: EcdsaKeyPair,
    behaviour: Behaviour,
    grants: HashMap<String, Grant>,
    next_code: u64,
}

type Shared = Arc<Mutex<Provider>>;

/// The identity provider of these tests.
struct Issuer {
    url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Issuer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let shared = Arc::new(Mutex::new(Provider {
            issuer: url.clone(),
            key,
            behaviour: Behaviour {
                claims: json!({ "sub": "nobody" }),
                audience: None,
                nonce: None,
                corrupt_signature: false,
                expired: false,
            },
            grants: HashMap::new(),
            next_code: 1,
        }));
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, shared, task }
    }

    /// The next ID tokens carry `claims`, honestly.
    fn issues(&self, claims: Value) {
        self.behave(|b| {
            *b = Behaviour {
                claims,
                audience: None,
                nonce: None,
                corrupt_signature: false,
                expired: false,
            }
        });
    }

    fn behave(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.shared.lock().unwrap().behaviour);
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn discovery(State(shared): State<Shared>) -> Response {
    let issuer = shared.lock().unwrap().issuer.clone();
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}

async fn jwks(State(shared): State<Shared>) -> Response {
    let provider = shared.lock().unwrap();
    // An uncompressed point: 0x04, then x and y (32 bytes each).
    let point = provider.key.public_key().as_ref();
    axum::Json(json!({ "keys": [{
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        "kid": "test-key",
        "use": "sig",
        "alg": "ES256",
    }]}))
    .into_response()
}

/// Sends the browser straight back with a code, as a provider with a signed-in user would.
async fn authorize(
    State(shared): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let field = |k: &str| q.get(k).cloned().unwrap_or_default();
    let wrong = q.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || field("response_type") != "code"
        || field("code_challenge_method") != "S256"
        || field("code_challenge").is_empty()
        || field("nonce").is_empty()
        || field("state").is_empty()
        || !field("scope").split(' ').any(|s| s == "openid");
    if wrong {
        return (StatusCode::BAD_REQUEST, format!("a bad request: {q:?}")).into_response();
    }
    let mut provider = shared.lock().unwrap();
    let code = format!("code-{}", provider.next_code);
    provider.next_code += 1;
    provider.grants.insert(
        code.clone(),
        Grant {
            nonce: field("nonce"),
            challenge: field("code_challenge"),
            redirect_uri: field("redirect_uri"),
        },
    );
    let back = url::Url::parse_with_params(
        &field("redirect_uri"),
        [("code", code.as_str()), ("state", field("state").as_str())],
    )
    .unwrap();
    Redirect::to(back.as_str()).into_response()
}

/// Exchanges a code: the client's secret, the same redirect URI, and the verifier of the
/// challenge the authorize request carried.
async fn token(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let refuse = |error: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": error })),
        )
            .into_response()
    };
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{OIDC_CLIENT_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(basic.as_str()) {
        return refuse("invalid_client");
    }
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let mut provider = shared.lock().unwrap();
    let Some(grant) = provider.grants.remove(&field("code")) else {
        return refuse("invalid_grant");
    };
    let verifier = field("code_verifier");
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ));
    if field("grant_type") != "authorization_code"
        || field("redirect_uri") != grant.redirect_uri
        || challenge != grant.challenge
    {
        return refuse("invalid_grant");
    }
    let id_token = provider.id_token(&grant.nonce);
    axum::Json(json!({
        "access_token": "an-access-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

impl Provider {
    /// A signed ID token (ES256) as the behaviour says.
    fn id_token(&self, nonce: &str) -> String {
        let b = &self.behaviour;
        let now = chrono::Utc::now().timestamp();
        let (iat, exp) = if b.expired {
            (now - 7200, now - 3600)
        } else {
            (now, now + 300)
        };
        let mut claims = json!({
            "iss": self.issuer,
            "aud": b.audience.clone().unwrap_or_else(|| CLIENT_ID.into()),
            "iat": iat,
            "exp": exp,
            "nonce": b.nonce.clone().unwrap_or_else(|| nonce.into()),
        });
        for (k, v) in b.claims.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let header = json!({ "alg": "ES256", "typ": "JWT", "kid": "test-key" });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec();
        if b.corrupt_signature {
            signature[10] ^= 0x55;
        }
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// A browser: no redirects followed, the session cookie carried by hand.
struct Browser {
    server: String,
    http: reqwest::Client,
    cookie: Option<String>,
}

/// Where a sign-in ended: its last redirect.
struct Landing {
    location: String,
}

impl Landing {
    /// The reason the login page is given, if the sign-in was refused.
    fn error(&self) -> Option<String> {
        let query = self.location.strip_prefix("/login?")?;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "error")
            .map(|(_, v)| v.into_owned())
    }
}

impl Browser {
    fn new(server: &TestServer) -> Self {
        Self {
            server: server.url.clone(),
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let mut request = self.http.get(url).header("accept", "text/html");
        if url.starts_with(&self.server)
            && let Some(cookie) = &self.cookie
        {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        if let Some(cookie) = session_cookie(&response) {
            self.cookie = Some(cookie);
        }
        response
    }

    fn location(response: &reqwest::Response) -> String {
        assert!(
            response.status().is_redirection(),
            "a redirect: {response:?}"
        );
        response.headers()["location"].to_str().unwrap().to_string()
    }

    /// `/auth/oidc/login?next=/scale-sets`: the URL of the provider's authorize endpoint.
    async fn start(&mut self) -> String {
        let url = format!("{}/auth/oidc/login?next=/scale-sets", self.server);
        let response = self.get(&url).await;
        Self::location(&response)
    }

    /// The provider's answer to the authorize request: the callback URL.
    async fn at_provider(&mut self, authorize: &str) -> String {
        let response = self.get(authorize).await;
        Self::location(&response)
    }

    async fn callback(&mut self, callback: &str) -> Landing {
        let response = self.get(callback).await;
        Landing {
            location: Self::location(&response),
        }
    }

    /// The whole round trip.
    async fn sign_in(&mut self) -> Landing {
        let authorize = self.start().await;
        let callback = self.at_provider(&authorize).await;
        self.callback(&callback).await
    }

    /// `GET /api/v1/me` with the session: status and body.
    async fn me(&mut self) -> (u16, Value) {
        let url = format!("{}/api/v1/me", self.server);
        let response = self.get(&url).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn global_roles(me: &Value) -> Vec<String> {
    me["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["scale_set"].is_null())
        .map(|r| r["role"].as_str().unwrap().to_string())
        .collect()
}

async fn start_server(issuer: &Issuer, dir: &tempfile::TempDir) -> TestServer {
    TestServer::start_with(
        dir.path(),
        &[
            "--oidc-issuer",
            &issuer.url,
            "--oidc-client-id",
            CLIENT_ID,
            "--oidc-roles-claim",
            "groups",
        ],
    )
    .await
}

async fn user_names(server: &TestServer) -> Vec<String> {
    let (status, body) = server.api().get("/users").await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sign_on_creates_the_user_and_follows_the_providers_roles() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&issuer, &dir).await;
    // The login page offers it (the portal's site is built for the browser tests; the
    // page renders without it too).
    let page = server.anonymous_page("/login?next=%2Fscale-sets").await;
    assert!(
        page.contains(r#"href="/auth/oidc/login?next=%2Fscale-sets""#),
        "{page}"
    );

    // First sign-in: the user is created with the highest role the claim names.
    issuer.issues(json!({
        "sub": "u-1", "preferred_username": "Alice", "groups": ["Reader", "operator", "staff"],
    }));
    let mut browser = Browser::new(&server);
    let landing = browser.sign_in().await;
    assert_eq!(landing.location, "/scale-sets", "{:?}", landing.error());
    let (status, me) = browser.me().await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"], "alice");
    assert_eq!(global_roles(&me), ["Operator"]);
    let page = browser.get(&format!("{}/", server.url)).await;
    assert_eq!(page.status(), 200);
    let (_, users) = server.api().get("/users").await;
    let alice = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "alice")
        .cloned()
        .unwrap();
    assert_eq!(alice["source"], "oidc", "{alice}");
    let (_, log) = server
        .api()
        .get("/activity?operation=auth.login&actor=alice")
        .await;
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["result"] == "succeeded"),
        "{log}"
    );

    // The role removed at the provider: the next sign-in demotes.
    issuer.issues(json!({ "sub": "u-1", "preferred_username": "alice", "groups": "READER" }));
    let mut again = Browser::new(&server);
    assert_eq!(again.sign_in().await.location, "/scale-sets");
    let (_, me) = again.me().await;
    assert_eq!(global_roles(&me), ["Reader"]);

    // No role at all: refused, and the fleet-wide role is gone too.
    issuer.issues(json!({ "sub": "u-1", "preferred_username": "alice", "groups": ["staff"] }));
    let mut refused = Browser::new(&server);
    let landing = refused.sign_in().await;
    let error = landing.error().expect("refused");
    assert!(error.contains("none of Flotilla's roles"), "{error}");
    assert_eq!(refused.me().await.0, 401);
    let (_, me) = browser.me().await;
    assert!(global_roles(&me).is_empty(), "{me}");

    // A new user without a role is not even created; with no preferred name, a verified
    // e-mail address names the user.
    issuer.issues(json!({ "sub": "u-2", "preferred_username": "dave" }));
    let landing = Browser::new(&server).sign_in().await;
    assert!(landing.error().is_some());
    assert!(!user_names(&server).await.contains(&"dave".to_string()));
    issuer.issues(json!({
        "sub": "u-3", "email": "Erin@Example.com", "email_verified": true, "groups": "Owner",
    }));
    let mut erin = Browser::new(&server);
    assert_eq!(erin.sign_in().await.location, "/scale-sets");
    let (_, me) = erin.me().await;
    assert_eq!(me["user"], "erin@example.com");
    assert_eq!(global_roles(&me), ["Owner"]);

    // The provider cannot demote the last enabled fleet-wide Owner: the sign-in is refused
    // and the role stays, as it would for an Owner's own change.
    let (status, body) = server
        .api()
        .put(
            "/role-assignments",
            json!({ "user": "admin", "role": "Reader", "scale_set": null }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    issuer.issues(json!({ "sub": "u-3", "email": "erin@example.com", "groups": "Reader" }));
    let landing = Browser::new(&server).sign_in().await;
    let error = landing.error().expect("refused");
    assert!(error.contains("last enabled fleet-wide Owner"), "{error}");
    let (_, me) = erin.me().await;
    assert_eq!(global_roles(&me), ["Owner"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_do_not_hold_are_refused() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&issuer, &dir).await;
    let good = json!({ "sub": "u-1", "preferred_username": "mallory", "groups": "Owner" });

    // A state that is not the one this browser was given.
    issuer.issues(good.clone());
    let mut browser = Browser::new(&server);
    let authorize = browser.start().await;
    let callback = browser.at_provider(&authorize).await;
    let mut url = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                format!("{v}x")
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let landing = browser.callback(url.as_str()).await;
    let error = landing.error().expect("refused");
    assert!(
        error.contains("not the one this browser started"),
        "{error}"
    );
    assert_eq!(browser.me().await.0, 401);

    // The same callback twice: the pending sign-in was used up by the first.
    let mut browser = Browser::new(&server);
    let authorize = browser.start().await;
    let callback = browser.at_provider(&authorize).await;
    let cookie = browser.cookie.clone();
    assert_eq!(browser.callback(&callback).await.location, "/scale-sets");
    let mut replay = Browser::new(&server);
    replay.cookie = cookie;
    let landing = replay.callback(&callback).await;
    assert!(landing.error().is_some(), "{}", landing.location);
    assert_eq!(replay.me().await.0, 401);

    // ID tokens that lie.
    type Lie = fn(&mut Behaviour);
    let lies: [(&str, Lie, &str); 4] = [
        (
            "another nonce",
            |b| b.nonce = Some("not-the-nonce".into()),
            "nonce",
        ),
        (
            "another audience",
            |b| b.audience = Some("another-client".into()),
            "audience",
        ),
        (
            "a broken signature",
            |b| b.corrupt_signature = true,
            "Signature",
        ),
        ("an expired token", |b| b.expired = true, "Expired"),
    ];
    for (what, lie, said) in lies {
        issuer.issues(good.clone());
        issuer.behave(lie);
        let mut browser = Browser::new(&server);
        let landing = browser.sign_in().await;
        let error = landing
            .error()
            .unwrap_or_else(|| panic!("{what} is refused: {}", landing.location));
        assert!(error.contains(said), "{what}: {error}");
        assert_eq!(browser.me().await.0, 401, "{what}");
    }
    let (_, log) = server
        .api()
        .get("/activity?operation=auth.login&actor=mallory")
        .await;
    assert_eq!(
        log["items"].as_array().unwrap().len(),
        1,
        "the one honest sign-in only: {log}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_user_is_never_taken_over() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&issuer, &dir).await;
    let _bob = server.api_as("bob", "Reader", None).await;
    for name in ["admin", "BOB"] {
        issuer.issues(json!({ "sub": "x", "preferred_username": name, "groups": "Owner" }));
        let mut browser = Browser::new(&server);
        let landing = browser.sign_in().await;
        let error = landing.error().expect("refused");
        assert!(error.contains("local user"), "{name}: {error}");
        assert_eq!(browser.me().await.0, 401);
    }
    let (_, assignments) = server.api().get("/role-assignments?user=bob").await;
    assert!(
        !assignments.to_string().contains("Owner"),
        "bob kept his role: {assignments}"
    );
    let (_, log) = server.api().get("/activity?operation=auth.login").await;
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["target"] == "bob" && a["result"] == "failed"),
        "{log}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_issuer_and_the_client_id_go_together() {
    for flags in [
        ["--oidc-issuer", "http://127.0.0.1:9"],
        ["--oidc-client-id", CLIENT_ID],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let error = flotilla::run(serve_args(dir.path(), &flags), listener, async {})
            .await
            .expect_err("refused at start");
        assert!(
            error.to_string().contains("single sign-on takes both"),
            "{error:#}"
        );
    }
}
