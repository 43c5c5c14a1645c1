//! Replicas benchmark: prints figures, asserts nothing. Needs PostgreSQL
//! (`FLOTILLA_TEST_POSTGRES`, as `make bench` sets it); without it, it says so and stops.
//!
//! - **Lease renewal**: the leader's acquire-or-renew statement against a read of the
//!   one-row leases table on the same pool (the peer: one round trip): what renewing every
//!   4 s costs.
//! - **Fenced writes**: a scale set's update through the leader's fenced store handle
//!   (which checks the lease generation in the same transaction, its row share-locked)
//!   against the same update through an unfenced handle.
//! - **Sharing the leader's view**: the prober's flush of 10,000 instances' last probe
//!   results (every 2 s) and a standby's read of them against reading the same records;
//!   a heartbeat carrying three frontends' counters against the heartbeat alone.
//! - **A non-leader's API**: two real servers in this process on one fresh database, one
//!   leading and one standing by, each holding the same 20 scale sets; `GET
//!   /api/v1/scale-sets` is sent to each in turn.
//!
//! Run: `FLOTILLA_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p
//! flotilla --bench replicas`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_domain::load_balancer::{FrontendStats, Histogram};
use flotilla_domain::replica::{LEADER_LEASE, Replica};
use flotilla_domain::{ProbeResult, ScaleSet, ScaleSetSpec, ScaleSetState};
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

/// A new active scale set of the example spec, as the store takes it.
fn new_set(name: &str, capacity: u32) -> ScaleSet {
    let now = chrono::Utc::now();
    ScaleSet {
        spec: ScaleSetSpec::example(name, capacity),
        model_version: 1,
        generation: 1,
        state: ScaleSetState::Active,
        repairs: Default::default(),
        created_at: now,
        updated_at: now,
    }
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
    store
        .create_scale_set(&new_set("bench", 0), "bench")
        .await?;
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

/// What sharing the leader's view costs: the prober's flush of every result every 2 s and
/// a standby's read of them (the peer: reading the same set's instance records), and a
/// heartbeat carrying frontend counters (the peer: the heartbeat alone).
async fn sharing_figures(url: &str) -> anyhow::Result<()> {
    const INSTANCES: u64 = 10_000;
    let store = flotilla_store::connect(url).await?;
    let now = chrono::Utc::now();
    let set = new_set("probed", INSTANCES as u32);
    store.create_scale_set(&set, "bench").await?;
    let instances: Vec<_> = (0..INSTANCES)
        .map(|n| flotilla_store::conformance::instance("probed", n))
        .collect();
    store
        .insert_instances("probed", &instances, INSTANCES)
        .await?;
    let results: Vec<(String, ProbeResult)> = instances
        .iter()
        .map(|i| {
            let result = ProbeResult {
                at: now,
                success: true,
                latency_us: 850,
                detail: "200 OK".into(),
            };
            (i.id.clone(), result)
        })
        .collect();
    let flush = timed(20, || async {
        store.put_probe_results(&results).await?;
        Ok(())
    })
    .await?;
    let flush = summary(flush);
    print("flushing 10,000 probe results", flush);
    println!(
        "  = {:.1} % of the prober's 2 s sharing period at 10,000 instances",
        flush.0.as_secs_f64() / 2.0 * 100.0
    );
    let records = timed(50, || async {
        store.list_instances("probed").await?;
        Ok(())
    })
    .await?;
    print(
        "reading 10,000 instance records (the peer)",
        summary(records),
    );
    let shared = timed(50, || async {
        store.list_probe_results(Some("probed")).await?;
        Ok(())
    })
    .await?;
    print(
        "a standby reading their 10,000 probe results",
        summary(shared),
    );

    let replica = Replica {
        id: "bench".into(),
        host: "bench".into(),
        version: "0".into(),
        started_at: now,
        heartbeat_at: now,
    };
    let frontend = |name: &str| FrontendStats {
        scale_set: "probed".into(),
        name: name.into(),
        protocol: "http".into(),
        listen: "0.0.0.0:8080".into(),
        requests: 123_456,
        responses: Default::default(),
        bytes_in: 1 << 30,
        bytes_out: 1 << 32,
        active_connections: 17,
        latency: Histogram {
            bounds_ms: vec![1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0],
            counts: vec![10; 11],
            sum_ms: 5000.0,
            count: 110,
        },
        backends: Vec::new(),
    };
    let counters: Vec<FrontendStats> = ["http", "https", "tcp"].map(frontend).into();
    let hour = Duration::from_secs(3600);
    let beat = timed(ROUNDS / 2, || async {
        store.heartbeat(&replica, hour).await?;
        Ok(())
    })
    .await?;
    print("heartbeat (the peer)", summary(beat));
    let with_counters = timed(ROUNDS / 2, || async {
        store.heartbeat(&replica, hour).await?;
        store.put_frontend_counters("bench", &counters).await?;
        Ok(())
    })
    .await?;
    print(
        "heartbeat with 3 frontends' counters",
        summary(with_counters),
    );
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
    sharing_figures(&url).await?;
    api_figures(&url).await?;
    Ok(())
}
