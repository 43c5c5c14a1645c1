//! Prober benchmark: prints figures, asserts nothing.
//!
//! 10,000 mock instances, each serving real HTTP on its own port on 127.0.0.1, probed with
//! `GET /health` every 5 s (Azure's default interval):
//! - time from all running to all healthy (each instance's first probe falls somewhere in
//!   its first interval, so about one interval is expected);
//! - over a 15 s window of steady probing: probes per second (10,000 / 5 s = 2,000 is
//!   keeping up), and the largest delay of a probe behind its schedule;
//! - CPU time of the whole process per probe in that window.
//!
//! Run: `cargo bench -p flotilla --bench probes` (or `make bench`).

mod common;

use std::time::{Duration, Instant};

use common::{Bench, cpu_seconds};
use flotilla_control::Fleet;
use flotilla_domain::scale_set::{HealthProbe, ProbeProtocol};
use flotilla_domain::{HealthState, PowerState, ScaleSetSpec};

const INSTANCES: usize = 10_000;
const WINDOW: Duration = Duration::from_secs(15);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bench = Bench::start(flotilla_control::FleetConfig::default()).await?;
    let fleet = &bench.fleet;
    let mut spec = ScaleSetSpec::example("bench", INSTANCES as u32);
    spec.health_probe = Some(HealthProbe {
        protocol: ProbeProtocol::Http,
        port: spec.model.app_port,
        path: "/health".into(),
        interval_seconds: 5,
        timeout_seconds: 2,
        healthy_threshold: 1,
        unhealthy_threshold: 2,
        grace_period_seconds: 0,
    });
    fleet.create_scale_set(spec, "bench").await?;
    wait_for(fleet, "running", |p, _| p == PowerState::Running).await?;
    let running = Instant::now();
    wait_for(fleet, "healthy", |_, h| h == HealthState::Healthy).await?;
    println!(
        "{INSTANCES} instances: all healthy {:.2} s after all running (probe interval 5 s)",
        running.elapsed().as_secs_f64()
    );

    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = fleet.prober_stats();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    tokio::time::sleep(WINDOW).await;
    let after = fleet.prober_stats();
    let elapsed = started.elapsed().as_secs_f64();
    let probes = after.probes - before.probes;
    let cpu = cpu_seconds() - cpu_before;
    println!(
        "steady probing over {:.0} s: {:.0} probes/s (keeping up = {:.0}/s), largest delay behind schedule {:.1} ms",
        elapsed,
        probes as f64 / elapsed,
        INSTANCES as f64 / 5.0,
        after.max_lag.as_secs_f64() * 1e3,
    );
    println!(
        "process CPU per probe (prober, mock servers and store together): {:.1} µs ({:.0} % of one core)",
        cpu / probes.max(1) as f64 * 1e6,
        cpu / elapsed * 100.0
    );
    bench.stop().await;
    Ok(())
}

async fn wait_for(
    fleet: &Fleet,
    what: &str,
    ok: impl Fn(PowerState, HealthState) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let instances = fleet.list_instances("bench").await?;
        if instances.len() == INSTANCES
            && instances.iter().all(|i| ok(i.power_state, i.health_state))
        {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "not all {what} after 300 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
