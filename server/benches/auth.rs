//! Authentication benchmark: prints figures, asserts nothing.
//!
//! What checking a caller costs a request: two real servers in this process (zero-latency
//! mock, SQLite in temporary directories), one with `--auth local`, one with `--auth none`,
//! each holding the same 20 scale sets; `GET /api/v1/scale-sets` is sent to them in turn
//! over HTTP on 127.0.0.1 — with an API token to the first, with nothing to the second — and
//! the median and p90 of each are printed with the difference. A token is checked against
//! the database once and then from memory (`flotilla_control::accounts::CACHE_TTL`), so the
//! difference is a SHA-256 and a map lookup, not an Argon2 hash.
//!
//! Run: `cargo bench -p flotilla --bench auth`.

use std::time::{Duration, Instant};

use clap::Parser;
use flotilla::config::ServeArgs;
use serde_json::json;

const PASSWORD: &str = "bench-admin-password";
const ROUNDS: usize = 2000;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
}

struct Server {
    base: String,
    http: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(dir: &std::path::Path, auth: &str) -> anyhow::Result<Server> {
    let data = dir.display().to_string();
    let mut args = Args::try_parse_from([
        "flotilla",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &data,
        "--mock-latency",
        "0",
        "--auth",
        auth,
    ])?
    .serve;
    args.admin_password = Some(PASSWORD.into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(flotilla::run(args, listener, async move {
        let _ = stopped.await;
    }));
    let anonymous = reqwest::Client::builder().no_proxy().build()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while anonymous
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map_or(true, |r| !r.status().is_success())
    {
        anyhow::ensure!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut headers = reqwest::header::HeaderMap::new();
    if auth == "local" {
        let token: serde_json::Value = anonymous
            .post(format!("{base}/api/v1/login"))
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", token["token"].as_str().unwrap_or_default()).parse()?,
        );
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()?;
    let model = json!({"image": "debian-12", "vcpus": 1, "memory_mib": 512, "disk_gib": 10});
    for n in 0..20 {
        http.post(format!("{base}/api/v1/scale-sets"))
            .json(&json!({"name": format!("set-{n:02}"), "model": model, "capacity": 0}))
            .send()
            .await?
            .error_for_status()?;
    }
    Ok(Server {
        base,
        http,
        stop,
        task,
    })
}

async fn time(server: &Server) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let body = server
        .http
        .get(format!("{}/api/v1/scale-sets", server.base))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    anyhow::ensure!(!body.is_empty());
    Ok(started.elapsed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dirs = (tempfile::tempdir()?, tempfile::tempdir()?);
    let token = start(dirs.0.path(), "local").await?;
    let open = start(dirs.1.path(), "none").await?;
    for _ in 0..100 {
        time(&token).await?;
        time(&open).await?;
    }
    let (mut with, mut without) = (Vec::new(), Vec::new());
    // In turn, so that whatever else the machine does weighs on both alike.
    for _ in 0..ROUNDS {
        with.push(time(&token).await?);
        without.push(time(&open).await?);
    }
    with.sort();
    without.sort();
    let median = |v: &[Duration]| v[v.len() / 2].as_secs_f64() * 1000.0;
    let p90 = |v: &[Duration]| v[v.len() * 9 / 10].as_secs_f64() * 1000.0;
    println!("GET /api/v1/scale-sets (20 sets), {ROUNDS} requests each, in turn:");
    println!(
        "  --auth local, bearer token   median {:>7.3} ms  p90 {:>7.3} ms",
        median(&with),
        p90(&with)
    );
    println!(
        "  --auth none                  median {:>7.3} ms  p90 {:>7.3} ms",
        median(&without),
        p90(&without)
    );
    println!(
        "  token check overhead at the median: {:+.1} %",
        (median(&with) / median(&without) - 1.0) * 100.0
    );
    for server in [token, open] {
        let _ = server.stop.send(());
        server.task.await??;
    }
    Ok(())
}
