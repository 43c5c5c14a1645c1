//! Portal benchmark: prints figures, asserts nothing.
//!
//! Starts a real server (zero-latency mock, SQLite in a temporary directory) holding a
//! 10,000-instance fleet — 100 scale sets of 90 instances and one, `big`, of 1,000 — then
//! times the server-side rendering of every portal page over HTTP on 127.0.0.1, signed in
//! as a browser is (session cookie): the overview, the list, the wizard, each tab of the big
//! set (the Instances tab at its first page, at a later page and filtered), an instance's
//! console, the activity log, hosts, replicas and tokens — then the portal functions that
//! read the Instances tab's data, alone (the set's counts, a page of rows, the warm pool).
//! Median and p90 of repeated requests, and the size of the answer.
//!
//! Run: `cargo bench -p flotilla --bench portal`.

use std::time::{Duration, Instant};

use serde_json::json;

mod server;
use server::{PASSWORD, Server};

/// Requests timed per page, after three to warm up.
const SAMPLES: usize = 30;

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

    let started = Instant::now();
    server::create_sets(&http, &base, 100, 90).await?;
    let model = json!({"image": "debian-12", "vcpus": 2, "memory_mib": 2048, "disk_gib": 10});
    let body = json!({"name": "big", "model": model, "capacity": 1000});
    http.post(format!("{base}/api/v1/scale-sets"))
        .json(&body)
        .send()
        .await?
        .error_for_status()?;
    let all_running = |v: &serde_json::Value, n: usize| {
        v["items"].as_array().is_some_and(|items| {
            items.len() == n && items.iter().all(|i| i["power_state"] == "running")
        })
    };
    let big = format!("{base}/api/v1/scale-sets/big/instances");
    wait(&http, &big, |v| all_running(v, 1000)).await?;
    for i in 0..100 {
        let url = format!("{base}/api/v1/scale-sets/set-{i:03}/instances");
        wait(&http, &url, |v| all_running(v, 90)).await?;
    }
    let instances: serde_json::Value = http.get(&big).send().await?.json().await?;
    let first = instances["items"][0]["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no instance in {instances}"))?
        .to_string();
    println!(
        "fleet of 10,000 instances running after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let console = format!("/scale-sets/big/instances/{first}/console");
    let paths: Vec<(&str, &str)> = vec![
        ("overview", "/"),
        ("scale set list", "/scale-sets"),
        ("create wizard", "/scale-sets/new"),
        ("big: overview tab", "/scale-sets/big"),
        ("big: instances, first page", "/scale-sets/big/instances"),
        ("big: instances, page 8", "/scale-sets/big/instances?page=8"),
        (
            "big: instances, filtered",
            "/scale-sets/big/instances?zone=2&sort=name&dir=desc",
        ),
        ("big: scaling tab", "/scale-sets/big/scaling"),
        ("big: upgrades tab", "/scale-sets/big/upgrades"),
        ("big: health tab", "/scale-sets/big/health"),
        ("big: load balancer tab", "/scale-sets/big/load-balancer"),
        ("big: monitoring tab", "/scale-sets/big/monitoring"),
        ("big: activity tab", "/scale-sets/big/activity"),
        ("big: settings tab", "/scale-sets/big/settings"),
        ("instance console", &console),
        ("activity log", "/activity"),
        ("hosts", "/hosts"),
        ("replicas", "/replicas"),
        ("tokens", "/tokens"),
    ];
    println!(
        "{:<34} {:>9} {:>9} {:>9}",
        "page (server render)", "median", "p90", "HTML"
    );
    for (what, path) in paths {
        let url = format!("{base}{path}");
        time(what, || pages.get(&url)).await?;
    }

    // The portal functions behind the Overview and Instances tabs, posted as the page's
    // script does (session cookie and its CSRF token).
    let html = pages.get(format!("{base}/")).send().await?.text().await?;
    let csrf = html
        .split(r#"<meta name="csrf-token" content=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or_else(|| anyhow::anyhow!("no CSRF token in the overview"))?
        .to_string();
    let post = |function: &str| {
        pages
            .post(format!("{base}/_fn/{function}"))
            .header("x-csrf-token", &csrf)
    };
    let functions: Vec<(&str, Request)> = vec![
        (
            "fn scale-set (big, counts)",
            Box::new(|| post("scale-set").form(&[("name", "big"), ("detail", "Counts")])),
        ),
        (
            "fn scale-set (big, grid)",
            Box::new(|| post("scale-set").form(&[("name", "big"), ("detail", "Grid")])),
        ),
        (
            "fn instance-rows (big, page 1)",
            Box::new(|| {
                post("instance-rows").json(&json!({"name": "big", "params": [], "watch": []}))
            }),
        ),
        (
            "fn warm-pool (big)",
            Box::new(|| post("warm-pool").form(&[("name", "big")])),
        ),
    ];
    for (what, request) in functions {
        time(what, request).await?;
    }
    server.stop().await
}

/// A request to send again and again.
type Request<'a> = Box<dyn Fn() -> reqwest::RequestBuilder + 'a>;

/// Sends `request` three times to warm up, then [`SAMPLES`] times timed; prints the median,
/// the p90 and the answer's size.
async fn time(what: &str, request: impl Fn() -> reqwest::RequestBuilder) -> anyhow::Result<()> {
    for _ in 0..3 {
        request().send().await?.error_for_status()?.bytes().await?;
    }
    let mut times = Vec::with_capacity(SAMPLES);
    let mut size = 0;
    for _ in 0..SAMPLES {
        let started = Instant::now();
        let resp = request().send().await?.error_for_status()?;
        size = resp.bytes().await?.len();
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "{what:<34} {:>6.1} ms {:>6.1} ms {:>6} KiB",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 9 / 10]),
        size / 1024
    );
    Ok(())
}

async fn wait(
    http: &reqwest::Client,
    url: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
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
