//! What the HTTP benchmarks (portal, auth) share: a real server in this process on
//! 127.0.0.1 (zero-latency mock, SQLite in a temporary directory), signed in as its first
//! user.

use std::time::{Duration, Instant};

use clap::Parser;
use flotilla::config::ServeArgs;
use serde_json::json;

/// The first user's password.
pub const PASSWORD: &str = "bench-admin-password";

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
}

pub struct Server {
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server with `extra` flags and waits until it is ready.
    pub async fn start(extra: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().display().to_string();
        let mut argv = vec![
            "flotilla",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data,
            "--mock-latency",
            "0",
        ];
        argv.extend(extra);
        let mut args = Args::try_parse_from(argv)?.serve;
        args.admin_password = Some(PASSWORD.into());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(flotilla::run(args, listener, async move {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder().no_proxy().build()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .map_or(true, |r| !r.status().is_success())
        {
            anyhow::ensure!(Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            base,
            stop,
            task,
            _dir: dir,
        })
    }

    /// A new API token of the first user (`POST /api/v1/login`).
    pub async fn token(&self) -> anyhow::Result<String> {
        let answer: serde_json::Value = reqwest::Client::builder()
            .no_proxy()
            .build()?
            .post(format!("{}/api/v1/login", self.base))
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        answer["token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("no token in {answer}"))
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

/// Creates `n` scale sets `set-000`, `set-001`… of `capacity` instances each, through
/// `http` (which carries the credentials).
pub async fn create_sets(
    http: &reqwest::Client,
    base: &str,
    n: usize,
    capacity: u32,
) -> anyhow::Result<()> {
    let model = json!({"image": "debian-12", "vcpus": 1, "memory_mib": 512, "disk_gib": 10});
    for i in 0..n {
        let body = json!({"name": format!("set-{i:03}"), "model": model, "capacity": capacity});
        http.post(format!("{base}/api/v1/scale-sets"))
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
    }
    Ok(())
}
