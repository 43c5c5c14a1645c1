//! # flotilla-tests
//!
//! Black-box tests: each starts a real Flotilla server on `127.0.0.1:0` — in this process
//! through `flotilla::run`, or as a separate `flotilla serve` process where a test must kill
//! it — and talks to it only over HTTP, as a script or the CLI would. This module is the
//! harness: [`TestServer`], [`Api`], [`wait_until`], and the processes [`spawn_serve`] /
//! [`serve_command`] and [`MockHypervisor`] (a standalone mock that several control planes
//! share).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use flotilla::config::ServeArgs;
use serde_json::Value;
use tokio::sync::oneshot;

/// `flotilla serve`'s flags, where a flag given again overrides the test default.
#[derive(Parser)]
#[command(args_override_self = true)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Builds `ServeArgs` for a test server: port 0, SQLite in `data_dir`, a zero-latency
/// mock, fast reconcile; `extra` flags override.
///
/// With `--mock-url` among `extra` (a [`MockHypervisor`]'s), the mock's settings are the
/// hypervisor's and the server gets its token.
pub fn serve_args(data_dir: &Path, extra: &[&str]) -> ServeArgs {
    let remote_mock = extra.contains(&"--mock-url");
    let mut argv: Vec<String> = vec![
        "flotilla".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--reconcile-interval".into(),
        "1s".into(),
        "--site-root".into(),
        site_root().display().to_string(),
    ];
    if !remote_mock {
        argv.extend(["--mock-latency".into(), "0".into()]);
    }
    argv.extend(extra.iter().map(|s| s.to_string()));
    let mut args = Args::try_parse_from(argv).expect("valid test flags").serve;
    args.admin_password = Some(ADMIN_PASSWORD.into());
    if extra.contains(&"--oidc-issuer") {
        args.oidc_client_secret = Some(OIDC_CLIENT_SECRET.into());
    }
    if remote_mock {
        args.mock_token = Some(MOCK_TOKEN.into());
    }
    args
}

/// The client secret a test server with `--oidc-issuer` has (`FLOTILLA_OIDC_CLIENT_SECRET`
/// for a server process), which the tests' identity provider expects.
pub const OIDC_CLIENT_SECRET: &str = "test-oidc-client-secret";

/// The first user every test server creates (`FLOTILLA_ADMIN_PASSWORD` for a server
/// process): the harness signs in as it and works with an Owner's token.
pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// The built portal, if `cargo leptos build` has run (the API works without it).
fn site_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/site")
}

/// A Flotilla server running in this process.
pub struct TestServer {
    pub url: String,
    pub data_dir: PathBuf,
    /// An Owner's API token (none when the server runs with `--auth none`).
    pub token: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    /// Starts a server on a fresh data directory (kept in `dir`).
    pub async fn start(dir: &tempfile::TempDir) -> Self {
        Self::start_with(dir.path(), &[]).await
    }

    pub async fn start_with(data_dir: &Path, extra: &[&str]) -> Self {
        let args = serve_args(data_dir, extra);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(flotilla::run(args, listener, async move {
            let _ = stopped.await;
        }));
        let mut server = Self {
            url,
            data_dir: data_dir.to_path_buf(),
            token: None,
            stop: Some(stop),
            task,
        };
        let api = Api::new(&server.url);
        wait_until("the server is ready", Duration::from_secs(30), || async {
            api.get_status("/readyz").await == 200
        })
        .await;
        if !extra.windows(2).any(|w| w == ["--auth", "none"]) {
            server.token = Some(api.login(ADMIN, ADMIN_PASSWORD).await);
        }
        server
    }

    /// A client with an Owner's token.
    pub fn api(&self) -> Api {
        match &self.token {
            Some(token) => Api::with_token(&self.url, token),
            None => Api::new(&self.url),
        }
    }

    /// A plain HTTP client that sends the Owner's token (when there is one), follows no
    /// redirect and gives up after 20 s: for what [`Api`] does not do (raw bodies, streams,
    /// pages).
    pub fn http(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &self.token {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse().expect("a header value"),
            );
        }
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .default_headers(headers)
            .build()
            .expect("client")
    }

    /// A page of the portal as a browser that has not signed in sees it.
    pub async fn anonymous_page(&self, path: &str) -> String {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("a page")
            .text()
            .await
            .expect("its text")
    }

    /// A client without credentials.
    pub fn anonymous(&self) -> Api {
        Api::new(&self.url)
    }

    /// A client signed in as a new user `name` holding `role` fleet-wide (or on one scale
    /// set).
    pub async fn api_as(&self, name: &str, role: &str, scale_set: Option<&str>) -> Api {
        let owner = self.api();
        let password = format!("{name}-password-123");
        let (status, body) = owner
            .post(
                "/users",
                serde_json::json!({ "name": name, "password": password }),
            )
            .await;
        assert_eq!(status, 201, "creating user {name}: {body}");
        let (status, body) = owner
            .put(
                "/role-assignments",
                serde_json::json!({ "user": name, "role": role, "scale_set": scale_set }),
            )
            .await;
        assert_eq!(status, 200, "giving {name} {role}: {body}");
        let token = owner.login(name, &password).await;
        Api::with_token(&self.url, &token)
    }

    /// Shuts the server down gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .expect("server task")
            .expect("server stopped cleanly");
    }
}

/// A thin JSON client of the REST API.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    /// The API token it sends, if any.
    pub token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    /// A client without credentials.
    pub fn new(base: &str) -> Self {
        Self::build(base, None)
    }

    /// A client that sends `Authorization: Bearer <token>`.
    pub fn with_token(base: &str, token: &str) -> Self {
        Self::build(base, Some(token))
    }

    fn build(base: &str, token: Option<&str>) -> Self {
        // As the CLI and scripts: no Origin, and the header that says a request without
        // a JSON body is not a cross-site form.
        let mut headers = reqwest::header::HeaderMap::from_iter([(
            reqwest::header::HeaderName::from_static("x-flotilla-request"),
            reqwest::header::HeaderValue::from_static("1"),
        )]);
        if let Some(token) = token {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse().expect("a header value"),
            );
        }
        Self {
            base: base.trim_end_matches('/').to_string(),
            token: token.map(str::to_string),
            http: reqwest::Client::builder()
                .no_proxy()
                .default_headers(headers)
                .build()
                .expect("client"),
        }
    }

    /// Signs in as `user` (`POST /login`) and answers a new API token of theirs.
    pub async fn login(&self, user: &str, password: &str) -> String {
        let (status, body) = Api::new(&self.base)
            .post(
                "/login",
                serde_json::json!({ "username": user, "password": password, "token_name": "tests" }),
            )
            .await;
        assert_eq!(status, 201, "signing in as {user}: {body}");
        body["token"].as_str().expect("a token").to_string()
    }

    /// The same server, signed in as `user`.
    pub async fn signed_in(base: &str, user: &str, password: &str) -> Self {
        let token = Api::new(base).login(user, password).await;
        Api::with_token(base, &token)
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("/api")
            || path.starts_with("/healthz")
            || path.starts_with("/readyz")
            || path.starts_with("/metrics")
        {
            format!("{}{path}", self.base)
        } else {
            format!("{}/api/v1{path}", self.base)
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                (
                    status,
                    serde_json::from_str(&text).unwrap_or(Value::String(text)),
                )
            }
            Err(e) => (0, Value::String(e.to_string())),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(self.url(path))).await
    }

    /// `GET path` as a response whose body is still to be read (event streams).
    pub async fn open(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub async fn get_status(&self, path: &str) -> u16 {
        self.get(path).await.0
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.post(self.url(path)).json(&body)).await
    }

    pub async fn post_empty(&self, path: &str) -> (u16, Value) {
        self.send(self.http.post(self.url(path))).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.put(self.url(path)).json(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.patch(self.url(path)).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.http.delete(self.url(path))).await
    }

    /// Sends raw bytes with a content type (for malformed bodies).
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        self.send(
            self.http
                .request(method, self.url(path))
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    /// The instances of a scale set.
    pub async fn instances(&self, set: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/scale-sets/{set}/instances")).await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// Creates the DESIGN.md example set with `name` and `capacity`, plus `extra` fields.
    pub async fn create_set(&self, name: &str, capacity: u32, extra: Value) -> Value {
        let mut body = serde_json::json!({
            "name": name,
            "model": {"image": "debian-12", "vcpus": 2, "memory_mib": 2048, "disk_gib": 10, "user_data": null, "app_port": 80},
            "capacity": capacity,
            "zones": ["1", "2", "3"],
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let (status, set) = self.post("/scale-sets", body).await;
        assert_eq!(status, 201, "{set}");
        set
    }

    /// Waits until the set has exactly `n` instances, all running and healthy (without a
    /// health probe, running instances turn healthy at once).
    pub async fn wait_healthy(&self, set: &str, n: usize) -> Vec<Value> {
        wait_until(
            &format!("{set} has {n} healthy instances"),
            Duration::from_secs(60),
            || async {
                let items = self.instances(set).await;
                items.len() == n
                    && items
                        .iter()
                        .all(|i| i["power_state"] == "running" && i["health_state"] == "healthy")
            },
        )
        .await;
        self.instances(set).await
    }

    /// Waits until the set has exactly `n` instances, all succeeded and running.
    pub async fn wait_running(&self, set: &str, n: usize) -> Vec<Value> {
        wait_until(
            &format!("{set} has {n} running instances"),
            Duration::from_secs(60),
            || async {
                let items = self.instances(set).await;
                items.len() == n
                    && items.iter().all(|i| {
                        i["power_state"] == "running" && i["provisioning_state"] == "succeeded"
                    })
            },
        )
        .await;
        self.instances(set).await
    }
}

/// A port free right now on 127.0.0.1 (for frontends and servers the test places).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("its address")
        .port()
}

/// What a running instance answers on `GET /` at its address (its own identity).
pub async fn instance_root(instance: &Value) -> Value {
    let address = instance["address"]
        .as_str()
        .unwrap_or_else(|| panic!("instance without an address: {instance}"));
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(format!("http://{address}/"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{address} does not answer: {e}"))
        .json()
        .await
        .expect("JSON from the instance")
}

/// Polls `check` every 50 ms until it holds, failing the test after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `flotilla` binary built by `cargo build -p flotilla` (the Makefile builds it before
/// the tests), for tests that run the CLI or must kill a server process.
pub fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("FLOTILLA_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("debug/flotilla");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p flotilla` first (make test does)",
        path.display()
    );
    path
}

/// `flotilla serve` as a separate process on `port` over `data_dir`, ready to take more
/// flags and spawn: a 1 s reconcile interval, [`ADMIN_PASSWORD`], logs at `warn` on the
/// test's standard error.
pub fn serve_command(data_dir: &Path, port: u16) -> std::process::Command {
    let mut command = std::process::Command::new(binary());
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--reconcile-interval", "1s"])
        .env("FLOTILLA_LOG", "warn")
        .env("FLOTILLA_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    command
}

/// Starts `flotilla serve` as a separate process on `port` over `data_dir` (for tests
/// that kill it), with the mock's latency `mock_latency` and a 1 s reconcile interval.
pub fn spawn_serve(data_dir: &Path, port: u16, mock_latency: &str) -> std::process::Child {
    serve_command(data_dir, port)
        .args(["--mock-latency", mock_latency])
        .spawn()
        .expect("start flotilla serve")
}

/// The token of every [`MockHypervisor`] (its `FLOTILLA_MOCK_TOKEN`).
pub const MOCK_TOKEN: &str = "test-mock-token";

/// A `flotilla mock-hypervisor` process on a free port of 127.0.0.1 with [`MOCK_TOKEN`],
/// killed when dropped; what it simulates stays in its data directory for the next one.
/// Control planes use it through [`MockHypervisor::serve_command`] (processes) or
/// `TestServer::start_with(dir, &["--mock-url", &hypervisor.url])` (in this process).
pub struct MockHypervisor {
    /// `http://127.0.0.1:<port>`: what `--mock-url` takes.
    pub url: String,
    child: std::process::Child,
}

impl MockHypervisor {
    /// Starts one over `data_dir` with the flags `extra` (`--mock-latency 0`, …) and waits
    /// until it answers.
    pub async fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let port = free_port();
        let child = std::process::Command::new(binary())
            .args(["mock-hypervisor", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("FLOTILLA_LOG", "warn")
            .env("FLOTILLA_MOCK_TOKEN", MOCK_TOKEN)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start flotilla mock-hypervisor");
        let mut hypervisor = MockHypervisor {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let healthz = format!("{}/v1/healthz", hypervisor.url);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let answer = http.get(&healthz).bearer_auth(MOCK_TOKEN).send().await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return hypervisor;
            }
            if let Ok(Some(status)) = hypervisor.child.try_wait() {
                panic!("flotilla mock-hypervisor exited at start: {status}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "flotilla mock-hypervisor did not answer on {healthz}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// [`serve_command`] for a control plane on this hypervisor: `--mock-url` and the token.
    pub fn serve_command(&self, data_dir: &Path, port: u16) -> std::process::Command {
        let mut command = serve_command(data_dir, port);
        command
            .args(["--mock-url", &self.url])
            .env("FLOTILLA_MOCK_TOKEN", MOCK_TOKEN);
        command
    }

    /// A client of the hypervisor acting for `installation`: what a control plane of that
    /// installation sees (the ids are in `GET /api/v1/backend/vms`'s `installation_id`).
    pub async fn client(&self, installation: &str) -> flotilla_backend::mock::remote::RemoteMock {
        let url =
            flotilla_backend::mock::remote::MockUrl::parse(&self.url).expect("a loopback URL");
        flotilla_backend::mock::remote::RemoteMock::connect(url, MOCK_TOKEN, installation)
            .await
            .expect("connect to the mock hypervisor")
    }

    /// Kills the process (SIGKILL) and reaps it; dropping does the same.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MockHypervisor {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Counts of `key` over the items.
pub fn count_by(items: &[Value], key: &str) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for i in items {
        *m.entry(
            i[key]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| i[key].to_string()),
        )
        .or_default() += 1;
    }
    m
}

/// A browser's session with the portal, without JavaScript: signed in through the login
/// form, its cookie and CSRF token sent as a browser and the portal's forms would.
pub struct PortalSession {
    pub url: String,
    /// `flotilla_session=…`
    pub cookie: String,
    /// The session's CSRF token, as the portal renders it (`<meta name="csrf-token">`).
    pub csrf: String,
    http: reqwest::Client,
}

impl PortalSession {
    /// Signs in at `url` through `POST /auth/login` as a login form would.
    pub async fn sign_in(url: &str, user: &str, password: &str) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let response = http
            .post(format!("{url}/auth/login"))
            .header("origin", url)
            .header("accept", "text/html")
            .form(&[("username", user), ("password", password), ("next", "/")])
            .send()
            .await
            .expect("sign in");
        assert_eq!(response.status(), 303, "signing in: {response:?}");
        let cookie = session_cookie(&response).expect("a session cookie");
        let mut session = Self {
            url: url.to_string(),
            cookie,
            csrf: String::new(),
            http,
        };
        let response = session.get("/").await;
        let status = response.status();
        let page = response.text().await.expect("the overview");
        session.csrf = csrf_of(&page).unwrap_or_else(|| {
            let start: String = page.chars().take(600).collect();
            panic!("the overview carries no CSRF token: {status}, {start}")
        });
        session
    }

    /// `GET` a page of the portal with the session.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.url))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("a page")
    }

    /// Posts a plain form to a server function (`/_fn/<endpoint>`) with the session's CSRF
    /// token, as the portal's forms do without JavaScript.
    pub async fn form(&self, endpoint: &str, fields: &[(String, String)]) -> reqwest::Response {
        let mut fields = fields.to_vec();
        fields.push(("csrf".into(), self.csrf.clone()));
        self.http
            .post(format!("{}/_fn/{endpoint}", self.url))
            .header("cookie", &self.cookie)
            .header("origin", &self.url)
            .header("accept", "text/html")
            .form(&fields)
            .send()
            .await
            .expect("a form post")
    }
}

/// The `flotilla_session=…` pair a response sets, if any.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("flotilla_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

/// The CSRF token a portal page carries in `<meta name="csrf-token" content="…">`.
pub fn csrf_of(page: &str) -> Option<String> {
    let (_, rest) = page.split_once(r#"name="csrf-token" content=""#)?;
    rest.split_once('"').map(|(token, _)| token.to_string())
}
