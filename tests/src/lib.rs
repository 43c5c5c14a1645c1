//! # flotilla-tests
//!
//! Black-box tests: each starts a real Flotilla server on `127.0.0.1:0` — in this process
//! through `flotilla::run`, or as a separate `flotilla serve` process where a test must kill
//! it — and talks to it only over HTTP, as a script or the CLI would. This module is the
//! harness: [`TestServer`], [`Api`], [`wait_until`].

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
pub fn serve_args(data_dir: &Path, extra: &[&str]) -> ServeArgs {
    let mut argv: Vec<String> = vec![
        "flotilla".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--mock-latency".into(),
        "0".into(),
        "--reconcile-interval".into(),
        "1s".into(),
        "--site-root".into(),
        site_root().display().to_string(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    Args::try_parse_from(argv).expect("valid test flags").serve
}

/// The built portal, if `cargo leptos build` has run (the API works without it).
fn site_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/site")
}

/// A Flotilla server running in this process.
pub struct TestServer {
    pub url: String,
    pub data_dir: PathBuf,
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
        let server = Self {
            url,
            data_dir: data_dir.to_path_buf(),
            stop: Some(stop),
            task,
        };
        let api = server.api();
        wait_until("the server is ready", Duration::from_secs(30), || async {
            api.get_status("/readyz").await == 200
        })
        .await;
        server
    }

    pub fn api(&self) -> Api {
        Api::new(&self.url)
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
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            // As the CLI and scripts: no Origin, and the header that says a request without
            // a JSON body is not a cross-site form.
            http: reqwest::Client::builder()
                .no_proxy()
                .default_headers(reqwest::header::HeaderMap::from_iter([(
                    reqwest::header::HeaderName::from_static("x-flotilla-request"),
                    reqwest::header::HeaderValue::from_static("1"),
                )]))
                .build()
                .expect("client"),
        }
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

/// Starts `flotilla serve` as a separate process on `port` over `data_dir` (for tests
/// that kill it), with the mock's latency `mock_latency` and a 1 s reconcile interval.
pub fn spawn_serve(data_dir: &Path, port: u16, mock_latency: &str) -> std::process::Child {
    std::process::Command::new(binary())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--mock-latency", mock_latency, "--reconcile-interval", "1s"])
        .env("FLOTILLA_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start flotilla serve")
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
