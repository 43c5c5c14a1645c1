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

mod server;
use server::Server;

const ROUNDS: usize = 2000;

/// A server with `--auth <auth>` holding 20 scale sets, and a client for it (with a
/// token when authentication is on).
async fn start(auth: &str) -> anyhow::Result<(Server, reqwest::Client)> {
    let server = Server::start(&["--auth", auth]).await?;
    let mut headers = reqwest::header::HeaderMap::new();
    if auth == "local" {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", server.token().await?).parse()?,
        );
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()?;
    server::create_sets(&http, &server.base, 20, 0).await?;
    Ok((server, http))
}

async fn time((server, http): &(Server, reqwest::Client)) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let body = http
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
    let token = start("local").await?;
    let open = start("none").await?;
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
    for (server, _) in [token, open] {
        server.stop().await?;
    }
    Ok(())
}
