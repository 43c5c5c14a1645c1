//! Configuration of `flotilla serve` and `flotilla mock-hypervisor`: every flag also reads a
//! `FLOTILLA_…` variable; secrets come from variables only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use flotilla_backend::mock::remote::MockUrl;
use flotilla_backend::mock::{MockConfig, Mode};

/// Which load balancer frontends a replica runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LbFrontends {
    All,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// The built-in simulator.
    Mock,
    /// libvirt/KVM hosts (needs a build with the `libvirt` feature).
    Libvirt,
}

/// Where the database is: `flotilla serve`'s flags, shared by the commands that work on the
/// database directly (`flotilla user …`), so both find the same one by default.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Directory for the SQLite database and the mock's state.
    #[arg(long, env = "FLOTILLA_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,
    /// `sqlite:PATH` or `postgres://…`; default: SQLite in the data directory.
    // Its value is never shown in `--help`: a PostgreSQL URL may hold a password.
    #[arg(
        long,
        env = "FLOTILLA_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    /// `--database-url`, else `sqlite:` the data directory's `flotilla.db`.
    pub fn url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", self.data_dir.join("flotilla.db").display()))
    }
}

/// The file of a `sqlite:` URL; `None` for another database or SQLite in memory.
pub fn sqlite_path(url: &str) -> Option<&str> {
    let path = url.strip_prefix("sqlite:")?.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && !path.starts_with(':')).then_some(path)
}

/// The simulator's settings: those of the mock inside `flotilla serve` and of
/// `flotilla mock-hypervisor` alike.
#[derive(Debug, Clone, clap::Args)]
pub struct MockArgs {
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
}

impl MockArgs {
    /// The ids of the flags above, which `--mock-url` refuses.
    const FLAGS: [&str; 4] = [
        "mock_latency",
        "mock_zones",
        "mock_fault_domains",
        "mock_seed",
    ];

    /// A timer-driven simulator with these settings, keeping its state in `state_dir`
    /// (the installation is the caller's to set).
    pub fn config(&self, state_dir: PathBuf) -> MockConfig {
        MockConfig {
            zones: self.mock_zones.clone(),
            fault_domains: self.mock_fault_domains,
            latency: self.mock_latency,
            seed: self.mock_seed,
            mode: Mode::Timer,
            state_dir: Some(state_dir),
            ..MockConfig::default()
        }
    }
}

/// `flotilla mock-hypervisor`: a standalone mock that several `flotilla serve --mock-url`
/// replicas share.
#[derive(Debug, Clone, clap::Args)]
pub struct MockHypervisorArgs {
    /// Address to serve the mock hypervisor's API on (its clients' VMs serve on
    /// 127.0.0.1 whatever this is).
    #[arg(long, env = "FLOTILLA_MOCK_LISTEN", default_value = "127.0.0.1:3900")]
    pub listen: SocketAddr,
    /// Directory whose `mock/<installation>` holds each installation's VMs.
    #[arg(long, env = "FLOTILLA_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub mock: MockArgs,
    /// The token every request must carry (from `FLOTILLA_MOCK_TOKEN` only, never a flag);
    /// generated and printed once when unset.
    #[arg(skip)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to serve the portal and API on.
    #[arg(long, env = "FLOTILLA_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
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
    #[command(flatten)]
    pub mock: MockArgs,
    /// Mock: use the standalone mock hypervisor at this URL (`flotilla mock-hypervisor`,
    /// which several replicas share) instead of a simulator in this process; its token
    /// comes from FLOTILLA_MOCK_TOKEN only. `http://` to a loopback address, else
    /// `https://`. The simulator's settings are then the mock hypervisor's own: the
    /// `--mock-…` flags above are refused.
    #[arg(
        long,
        env = "FLOTILLA_MOCK_URL",
        conflicts_with_all = MockArgs::FLAGS
    )]
    pub mock_url: Option<MockUrl>,
    /// The mock hypervisor's token (from `FLOTILLA_MOCK_TOKEN` only, never a flag, which
    /// other users could read in the process list).
    #[arg(skip)]
    pub mock_token: Option<String>,
    /// How often every scale set is reconciled without being asked.
    #[arg(long, env = "FLOTILLA_RECONCILE_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub reconcile_interval: Duration,
    /// Address the load balancer's frontends listen on (each frontend's port comes from its
    /// scale set).
    #[arg(long, env = "FLOTILLA_LB_ADDRESS", default_value = "127.0.0.1")]
    pub lb_address: std::net::IpAddr,
    /// Whether this replica runs the load balancer's frontends: `all` (each set's, following
    /// every change any replica stores) or `none` (clients use the other replicas). Replicas
    /// on one machine need distinct `--lb-address`es.
    #[arg(long, env = "FLOTILLA_LB_FRONTENDS", value_enum, default_value = "all")]
    pub lb_frontends: LbFrontends,
    /// How often autoscale settings are evaluated (1 s at least).
    #[arg(long, env = "FLOTILLA_AUTOSCALE_INTERVAL", default_value = "30s", value_parser = parse_interval)]
    pub autoscale_interval: Duration,
    /// How often metrics are collected (1 s at least).
    #[arg(long, env = "FLOTILLA_METRICS_INTERVAL", default_value = "10s", value_parser = parse_interval)]
    pub metrics_interval: Duration,
    /// How long 1-minute metric roll-ups and autoscale decisions are kept.
    #[arg(long, env = "FLOTILLA_METRICS_RETENTION", default_value = "30days", value_parser = parse_duration)]
    pub metrics_retention: Duration,
    /// Also expose a series per instance per metric on `/metrics` (set-level series only by
    /// default: at 10,000 instances per-instance series are 60,000 lines a scrape).
    #[arg(long, env = "FLOTILLA_METRICS_PER_INSTANCE")]
    pub metrics_per_instance: bool,
    /// The built portal (`cargo leptos build` writes it to target/site).
    #[arg(long, env = "FLOTILLA_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
    /// The URLs the portal and API are reached at, comma-separated (`https://flotilla.example`):
    /// requests must name one of their hosts (or localhost, 127.0.0.1, ::1, the listen
    /// address) in `Host` — what stops DNS rebinding — and cross-site requests are refused.
    #[arg(long, env = "FLOTILLA_PUBLIC_URL", value_delimiter = ',', value_parser = parse_public_url)]
    pub public_url: Vec<PublicUrl>,
    /// How long a VM of this installation whose scale set the database does not know is
    /// kept before it is removed.
    #[arg(long, env = "FLOTILLA_ORPHAN_GRACE", default_value = "1h", value_parser = parse_duration)]
    pub orphan_grace: Duration,
    /// How long a host may stay unreachable before it is closed and its instances are
    /// replaced on the zone's other hosts.
    #[arg(long, env = "FLOTILLA_HOST_UNREACHABLE_AFTER", default_value = "60s", value_parser = parse_duration)]
    pub host_unreachable_after: Duration,
    /// The most scale sets the fleet may hold.
    #[arg(long, env = "FLOTILLA_MAX_SCALE_SETS", default_value_t = 500)]
    pub max_scale_sets: u32,
    /// The most instances all scale sets together may ask for.
    #[arg(long, env = "FLOTILLA_MAX_INSTANCES", default_value_t = 10_000)]
    pub max_instances: u32,
    /// How long activity entries are kept.
    #[arg(long, env = "FLOTILLA_ACTIVITY_RETENTION", default_value = "90days", value_parser = parse_duration)]
    pub activity_retention: Duration,
    /// Model versions kept per scale set, besides those still in use.
    #[arg(long, env = "FLOTILLA_MODEL_VERSIONS_KEPT", default_value_t = 50)]
    pub model_versions_kept: u32,
    /// Networks webhooks may be sent to although not public (loopback, private,
    /// link-local…), as CIDRs, comma-separated (`127.0.0.0/8,10.1.0.0/16`).
    #[arg(long, env = "FLOTILLA_WEBHOOK_ALLOW", value_delimiter = ',')]
    pub webhook_allow: Vec<ipnet::IpNet>,
    /// Connections the portal and API serve at once; more wait to be accepted.
    #[arg(long, env = "FLOTILLA_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Event streams (`/api/v1/events`) open at once; more are answered 503.
    #[arg(long, env = "FLOTILLA_MAX_EVENT_STREAMS", default_value_t = 256)]
    pub max_event_streams: usize,
    /// How long a request may take before it is answered 503 (event streams excepted).
    #[arg(long, env = "FLOTILLA_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_interval)]
    pub request_timeout: Duration,
    /// Who may call: `local` (users, API tokens, roles) or `none` (everyone is an Owner:
    /// local demos and scripts only; the portal shows a banner).
    #[arg(long, env = "FLOTILLA_AUTH", value_enum, default_value = "local")]
    pub auth: crate::auth::AuthMode,
    /// A portal session ends after this long without a request.
    #[arg(long, env = "FLOTILLA_SESSION_IDLE", default_value = "8h", value_parser = parse_interval)]
    pub session_idle: Duration,
    /// A portal session ends this long after sign-in, however busy.
    #[arg(long, env = "FLOTILLA_SESSION_LIFETIME", default_value = "24h", value_parser = parse_interval)]
    pub session_lifetime: Duration,
    /// Single sign-on through OpenID Connect: the identity provider's issuer URL (https;
    /// plain http only on a loopback address). Takes `--oidc-client-id` with it.
    #[arg(long, env = "FLOTILLA_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// Single sign-on: this server's client id at the provider. The client secret, if the
    /// client has one, comes from `FLOTILLA_OIDC_CLIENT_SECRET` only. The provider must
    /// allow the redirect URI `<first --public-url>/auth/oidc/callback`.
    #[arg(long, env = "FLOTILLA_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// Single sign-on: the ID token claim holding role names (a string or an array; the
    /// highest of Reader, Operator, Contributor, Owner becomes the user's fleet-wide role at
    /// each sign-in; a dotted name such as `realm_access.roles` reaches into an object).
    #[arg(long, env = "FLOTILLA_OIDC_ROLES_CLAIM", default_value = "roles")]
    pub oidc_roles_claim: String,
    /// Single sign-on's client secret (from `FLOTILLA_OIDC_CLIENT_SECRET` only, never a
    /// flag); `None`: a public client, PKCE alone.
    #[arg(skip)]
    pub oidc_client_secret: Option<String>,
    /// The first start's `admin` password (from `FLOTILLA_ADMIN_PASSWORD` only: never a
    /// flag, which other users could read in the process list); generated and printed once
    /// when unset.
    #[arg(skip)]
    pub admin_password: Option<String>,
}

/// One of `--public-url`'s URLs: its scheme and `Host` as clients send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    pub https: bool,
    /// Host name or address, lowercase (IPv6 without brackets).
    pub host: String,
    pub port: Option<u16>,
}

impl std::fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(port) => write!(f, "{scheme}://{host}:{port}"),
            None => write!(f, "{scheme}://{host}"),
        }
    }
}

/// `http(s)://host[:port]` (a path is allowed and ignored).
pub fn parse_public_url(s: &str) -> Result<PublicUrl, String> {
    let url = flotilla_domain::secret::WebhookUrl::parse(s.trim())
        .map_err(|e| format!("{s:?} {e} (expected e.g. https://flotilla.example)"))?;
    Ok(PublicUrl {
        https: url.https,
        host: url.host,
        port: url.port,
    })
}

impl ServeArgs {
    pub fn database_url(&self) -> String {
        self.database.url()
    }
}

/// `url` as it may be logged: a password in its user info or its query replaced.
pub fn redacted_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if let Some((user_info, host)) = authority.rsplit_once('@') {
            let user = user_info.split(':').next().unwrap_or("");
            let shown = if user_info.contains(':') {
                format!("{user}:{}", flotilla_domain::secret::REDACTED)
            } else {
                user.to_string()
            };
            out = format!("{scheme}://{shown}@{host}{tail}");
        }
    }
    if let Some((base, query)) = out.clone().split_once('?') {
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => {
                    format!("{k}={}", flotilla_domain::secret::REDACTED)
                }
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{base}?{}", query.join("&"));
    }
    out
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
    fn database_passwords_never_reach_a_log() {
        assert_eq!(
            redacted_url("postgres://flotilla:s3cret@db.example:5432/fleet?sslmode=require"),
            "postgres://flotilla:(redacted)@db.example:5432/fleet?sslmode=require"
        );
        assert_eq!(
            redacted_url("postgres://db/fleet?user=f&password=s3cret"),
            "postgres://db/fleet?user=f&password=(redacted)"
        );
        assert_eq!(redacted_url("postgres://user@db/x"), "postgres://user@db/x");
        assert_eq!(
            redacted_url("sqlite:data/flotilla.db"),
            "sqlite:data/flotilla.db"
        );
    }

    #[test]
    fn public_urls_and_allowed_networks() {
        let cli = Cli::try_parse_from([
            "x",
            "--public-url",
            "https://Flotilla.Example,http://10.0.0.5:8080/portal",
            "--webhook-allow",
            "127.0.0.0/8,fd00::/8",
        ])
        .unwrap();
        assert_eq!(
            cli.serve.public_url,
            [
                PublicUrl {
                    https: true,
                    host: "flotilla.example".into(),
                    port: None
                },
                PublicUrl {
                    https: false,
                    host: "10.0.0.5".into(),
                    port: Some(8080)
                }
            ]
        );
        assert_eq!(cli.serve.webhook_allow.len(), 2);
        assert!(Cli::try_parse_from(["x", "--public-url", "flotilla.example"]).is_err());
        assert!(Cli::try_parse_from(["x", "--webhook-allow", "10.0.0.0/33"]).is_err());
        assert_eq!(cli.serve.max_instances, 10_000);
        assert_eq!(cli.serve.orphan_grace, Duration::from_secs(3600));
    }

    /// `--mock-url` takes a mock hypervisor's settings as they are: giving one of them too
    /// is an error naming both flags; a URL that would send the token in clear is refused.
    #[test]
    fn a_mock_url_refuses_the_simulator_flags() {
        let cli = Cli::try_parse_from(["x", "--mock-url", "http://127.0.0.1:3900"]).unwrap();
        assert_eq!(
            cli.serve.mock_url.unwrap().to_string(),
            "http://127.0.0.1:3900/"
        );
        for flag in [
            "--mock-latency",
            "--mock-zones",
            "--mock-fault-domains",
            "--mock-seed",
        ] {
            let error =
                Cli::try_parse_from(["x", "--mock-url", "http://127.0.0.1:3900", flag, "0"])
                    .err()
                    .unwrap_or_else(|| panic!("{flag} was accepted with --mock-url"))
                    .to_string();
            assert!(
                error.contains(flag) && error.contains("--mock-url"),
                "{error}"
            );
        }
        let error = Cli::try_parse_from(["x", "--mock-url", "http://10.0.0.5:3900"])
            .err()
            .expect("plain http beyond loopback")
            .to_string();
        assert!(
            error.contains("--mock-url") && error.contains("loopback"),
            "{error}"
        );
    }

    #[test]
    fn defaults_and_flags() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.serve.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(cli.serve.database_url(), "sqlite:data/flotilla.db");
        let cli = Cli::try_parse_from(["x", "--data-dir", "/srv/f"]).unwrap();
        assert_eq!(cli.serve.database_url(), "sqlite:/srv/f/flotilla.db");
        assert_eq!(
            sqlite_path("sqlite:/srv/f/flotilla.db"),
            Some("/srv/f/flotilla.db")
        );
        assert_eq!(sqlite_path("sqlite://rel.db?mode=rwc"), Some("rel.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://db/fleet"), None);
        let cli = Cli::try_parse_from(["x", "--mock-zones", "a,b", "--mock-latency", "0"]).unwrap();
        assert_eq!(cli.serve.mock.mock_zones, ["a", "b"]);
        assert_eq!(cli.serve.mock.mock_latency, Duration::ZERO);
        assert!(cli.serve.mock_url.is_none());
        assert!(Cli::try_parse_from(["x", "--backend", "xen"]).is_err());
        assert_eq!(cli.serve.autoscale_interval, Duration::from_secs(30));
        assert_eq!(cli.serve.metrics_interval, Duration::from_secs(10));
    }
}
