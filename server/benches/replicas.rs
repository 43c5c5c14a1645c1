//! Replicas benchmark: prints figures, asserts nothing. Needs PostgreSQL
//! (`FLOTILLA_TEST_POSTGRES`, as `make bench` sets it); without it, it says so and stops.
//!
//! - **Lease renewal**: the leader's acquire-or-renew statement against a read of the
//!   one-row leases table on the same pool (the peer: one round trip): what renewing every
//!   4 s costs.
//! - **Fenced writes**: a scale set's update through the leader's fenced store handle
//!   (which checks the lease generation in the same transaction, its row share-locked)
//!   against the same update through an unfenced handle.
//! - **A non-leader's API**: two real servers in this process on one fresh database, one
//!   leading and one standing by, each holding the same 20 scale sets; `GET
//!   /api/v1/scale-sets` is sent to each in turn.
//!
//! Run: `FLOTILLA_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p
//! flotilla --bench replicas`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_domain::replica::LEADER_LEASE;
use flotilla_domain::{ScaleSet, ScaleSetSpec, ScaleSetState};
use flotilla_store::{Fence, Writer};

mod server;
use server::Server;

const ROUNDS: usize = 2000;

fn summary(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

fn print(what: &str, (median, p99): (Duration, Duration)) {
    println!(
        "{what:<44} median {:>8.3} ms   p99 {:>8.3} ms",
        median.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}

async fn timed<F, Fut>(rounds: usize, mut f: F) -> anyhow::Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        f().await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

async fn store_figures(url: &str) -> anyhow::Result<()> {
    let store = flotilla_store::connect(url).await?;
    let ttl = Duration::from_secs(15);
    store
        .acquire_lease(LEADER_LEASE, "bench", ttl, true)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the lease was not acquired"))?;
    let read = timed(ROUNDS, || async {
        store.list_leases().await?;
        Ok(())
    })
    .await?;
    print("reading the one-row leases table (the peer)", summary(read));
    let renew = timed(ROUNDS, || async {
        store
            .acquire_lease(LEADER_LEASE, "bench", ttl, false)
            .await?;
        Ok(())
    })
    .await?;
    print("lease acquire-or-renew", summary(renew));

    let fence = Arc::new(Fence::new(LEADER_LEASE, "bench"));
    let generation = store
        .acquire_lease(LEADER_LEASE, "bench", ttl, false)
        .await?
        .map(|l| l.generation)
        .unwrap_or_default();
    fence.hold(
        generation,
        std::time::Instant::now() + Duration::from_secs(3600),
    );
    let fenced = store.with_writer(Writer {
        replica: "bench".into(),
        fence: Some(fence),
    });
    let plain = store.with_writer(Writer {
        replica: "bench".into(),
        fence: None,
    });
    let now = chrono::Utc::now();
    let set = ScaleSet {
        spec: ScaleSetSpec::example("bench", 0),
        model_version: 1,
        generation: 1,
        state: ScaleSetState::Active,
        repairs: Default::default(),
        created_at: now,
        updated_at: now,
    };
    store.create_scale_set(&set, "bench").await?;
    for (what, handle) in [
        ("scale set update, unfenced handle", &plain),
        ("scale set update, fenced handle", &fenced),
        ("scale set update, unfenced handle (again)", &plain),
    ] {
        let samples = timed(ROUNDS / 2, || async {
            let current = handle
                .get_scale_set("bench")
                .await?
                .ok_or_else(|| anyhow::anyhow!("gone"))?;
            handle.update_scale_set(&current, "bench").await?;
            Ok(())
        })
        .await?;
        print(what, summary(samples));
    }
    store.close().await;
    Ok(())
}

async fn api_figures(url: &str) -> anyhow::Result<()> {
    let leader = Server::start(&["--database-url", url, "--lb-frontends", "none"]).await?;
    let standby = Server::start(&["--database-url", url, "--lb-frontends", "none"]).await?;
    let token = leader.token().await?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .default_headers(reqwest::header::HeaderMap::from_iter([(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse()?,
        )]))
        .build()?;
    server::create_sets(&http, &leader.base, 20, 0).await?;
    let get = |base: String| {
        let http = http.clone();
        move || {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let body = http
                    .get(format!("{base}/api/v1/scale-sets"))
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await?;
                anyhow::ensure!(!body.is_empty());
                Ok(())
            }
        }
    };
    // Warm both, then alternate so that neither gets the quieter moments.
    timed(200, get(leader.base.clone())).await?;
    timed(200, get(standby.base.clone())).await?;
    let (mut on_leader, mut on_standby) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS / 100 {
        on_leader.extend(timed(100, get(leader.base.clone())).await?);
        on_standby.extend(timed(100, get(standby.base.clone())).await?);
    }
    let (l, s) = (summary(on_leader), summary(on_standby));
    print("GET /api/v1/scale-sets on the leader", l);
    print("GET /api/v1/scale-sets on a standby", s);
    println!(
        "a standby's answer takes {:+.1} % of the leader's (medians)",
        (s.0.as_secs_f64() / l.0.as_secs_f64() - 1.0) * 100.0
    );
    standby.stop().await?;
    leader.stop().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some((url, _database)) = flotilla_store::conformance::fresh_postgres().await else {
        println!("replicas benchmark skipped: FLOTILLA_TEST_POSTGRES is not set");
        return Ok(());
    };
    println!("replicas on one PostgreSQL database, {ROUNDS} rounds each");
    store_figures(&url).await?;
    api_figures(&url).await?;
    Ok(())
}
