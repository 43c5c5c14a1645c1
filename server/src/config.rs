//! Configuration of `flotilla serve`: every flag also reads a `FLOTILLA_…` variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// The built-in simulator.
    Mock,
    /// libvirt/KVM hosts (needs a build with the `libvirt` feature).
    Libvirt,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to serve the portal and API on.
    #[arg(long, env = "FLOTILLA_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Directory for the SQLite database and the mock's state.
    #[arg(long, env = "FLOTILLA_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// `sqlite:PATH` or `postgres://…`; default: SQLite in the data directory.
    #[arg(long, env = "FLOTILLA_DATABASE_URL")]
    pub database_url: Option<String>,
    #[arg(long, env = "FLOTILLA_BACKEND", value_enum, default_value = "mock")]
    pub backend: BackendKind,
    /// libvirt: the hosts, comma-separated `zone=uri` (each host's whole size is offered);
    /// needs a build with the `libvirt` feature.
    #[arg(
        long,
        env = "FLOTILLA_LIBVIRT_HOSTS",
        conflicts_with = "libvirt_config"
    )]
    pub libvirt_host: Option<String>,
    /// libvirt: the whole configuration as a JSON file (hosts with their limits, address,
    /// storage pool and acceleration; port base, shutdown timeout, state directory).
    #[arg(long, env = "FLOTILLA_LIBVIRT_CONFIG")]
    pub libvirt_config: Option<PathBuf>,
    /// Mock: time each VM operation takes (jittered ±50 %), e.g. `1s`, `250ms`, `0`.
    #[arg(long, env = "FLOTILLA_MOCK_LATENCY", default_value = "1s", value_parser = parse_duration)]
    pub mock_latency: Duration,
    /// Mock: zone names, comma-separated.
    #[arg(
        long,
        env = "FLOTILLA_MOCK_ZONES",
        default_value = "1,2,3",
        value_delimiter = ','
    )]
    pub mock_zones: Vec<String>,
    /// Mock: fault domains in each zone.
    #[arg(long, env = "FLOTILLA_MOCK_FAULT_DOMAINS", default_value_t = 3)]
    pub mock_fault_domains: u32,
    /// Mock: seed of its randomness (jitter, injected create failures).
    #[arg(long, env = "FLOTILLA_MOCK_SEED", default_value_t = 1)]
    pub mock_seed: u64,
    /// How often every scale set is reconciled without being asked.
    #[arg(long, env = "FLOTILLA_RECONCILE_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub reconcile_interval: Duration,
    /// Address the load balancer's frontends listen on (each frontend's port comes from its
    /// scale set).
    #[arg(long, env = "FLOTILLA_LB_ADDRESS", default_value = "127.0.0.1")]
    pub lb_address: std::net::IpAddr,
    /// How often autoscale settings are evaluated (1 s at least).
    #[arg(long, env = "FLOTILLA_AUTOSCALE_INTERVAL", default_value = "30s", value_parser = parse_interval)]
    pub autoscale_interval: Duration,
    /// How often metrics are collected (1 s at least).
    #[arg(long, env = "FLOTILLA_METRICS_INTERVAL", default_value = "10s", value_parser = parse_interval)]
    pub metrics_interval: Duration,
    /// How long 1-minute metric roll-ups and autoscale decisions are kept.
    #[arg(long, env = "FLOTILLA_METRICS_RETENTION", default_value = "30days", value_parser = parse_duration)]
    pub metrics_retention: Duration,
    /// The built portal (`cargo leptos build` writes it to target/site).
    #[arg(long, env = "FLOTILLA_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
}

impl ServeArgs {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", self.data_dir.join("flotilla.db").display()))
    }
}

/// `0`, or a duration such as `1s`, `250ms`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (expected e.g. 1s, 250ms or 0)"))
}

/// A loop interval: a duration of at least one second.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) {
        return Err(format!("{s:?} is below the minimum of 1s"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert!(parse_interval("500ms").is_err());
    }

    #[test]
    fn defaults_and_flags() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.serve.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(cli.serve.database_url(), "sqlite:data/flotilla.db");
        let cli = Cli::try_parse_from(["x", "--mock-zones", "a,b", "--mock-latency", "0"]).unwrap();
        assert_eq!(cli.serve.mock_zones, ["a", "b"]);
        assert_eq!(cli.serve.mock_latency, Duration::ZERO);
        assert!(Cli::try_parse_from(["x", "--backend", "xen"]).is_err());
        assert_eq!(cli.serve.autoscale_interval, Duration::from_secs(30));
        assert_eq!(cli.serve.metrics_interval, Duration::from_secs(10));
    }
}
