//! Portal benchmark: prints figures, asserts nothing.
//!
//! Starts a real server (zero-latency mock, SQLite in a temporary directory) holding 100
//! scale sets of one instance and one set of 1,000 instances, then times server-side
//! rendering over HTTP on 127.0.0.1: the scale set list (`/scale-sets`) and the overview and
//! instances tabs of the 1,000-instance set (`/scale-sets/big`, `/scale-sets/big/instances`),
//! median and p90 of repeated requests.
//!
//! Run: `cargo bench -p flotilla --bench portal`.

use std::time::{Duration, Instant};

use serde_json::json;

mod server;
use server::{PASSWORD, Server};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = Server::start(&[]).await?;
    let base = server.base.clone();
    let anonymous = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    // Signed in as the first user: a session cookie for the pages (as a browser) and a
    // token for the API.
    let signed_in = anonymous
        .post(format!("{base}/auth/login"))
        .form(&[("username", "admin"), ("password", PASSWORD), ("next", "/")])
        .send()
        .await?;
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow::anyhow!("no session cookie: {signed_in:?}"))?
        .to_string();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::COOKIE, cookie.parse()?);
    let pages = reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", server.token().await?).parse()?,
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()?;

    let model = json!({"image": "debian-12", "vcpus": 2, "memory_mib": 2048, "disk_gib": 10});
    server::create_sets(&http, &base, 100, 1).await?;
    let body = json!({"name": "big", "model": model, "capacity": 1000});
    http.post(format!("{base}/api/v1/scale-sets"))
        .json(&body)
        .send()
        .await?
        .error_for_status()?;
    wait(
        &http,
        &format!("{base}/api/v1/scale-sets/big/instances"),
        |v| {
            v["items"].as_array().is_some_and(|items| {
                items.len() == 1000 && items.iter().all(|i| i["power_state"] == "running")
            })
        },
    )
    .await?;

    for (what, path) in [
        ("scale set list, 100 sets", "/scale-sets"),
        ("overview tab, 1,000 instances", "/scale-sets/big"),
        (
            "instances tab, 1,000 instances",
            "/scale-sets/big/instances",
        ),
    ] {
        let url = format!("{base}{path}");
        for _ in 0..3 {
            pages.get(&url).send().await?.bytes().await?;
        }
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..30 {
            let started = Instant::now();
            let resp = pages.get(&url).send().await?.error_for_status()?;
            size = resp.bytes().await?.len();
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "{what:<34} median {:>7.1} ms  p90 {:>7.1} ms  ({} KiB of HTML)",
            ms(times[times.len() / 2]),
            ms(times[times.len() * 9 / 10]),
            size / 1024
        );
    }
    server.stop().await
}

async fn wait(
    http: &reqwest::Client,
    url: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(resp) = http.get(url).send().await
            && resp.status().is_success()
        {
            let value: serde_json::Value = resp.json().await.unwrap_or_default();
            if done(&value) {
                return Ok(());
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
