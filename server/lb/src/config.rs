//! What the control plane hands the load balancer: frontends and pool members.

use std::net::SocketAddr;
use std::time::Duration;

/// One listening frontend, keyed by `(scale_set, name)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrontendConfig {
    pub scale_set: String,
    pub name: String,
    /// Address to listen on; port 0 binds an ephemeral port (see
    /// [`LoadBalancer::local_addr`](crate::LoadBalancer::local_addr)).
    pub listen: SocketAddr,
    pub protocol: Protocol,
    pub algorithm: Algorithm,
    /// When set, replaces the port of every member address this frontend connects to.
    pub backend_port: Option<u16>,
    /// L7 only. Longest matching `path_prefix` wins; requests matching no rule go to the
    /// pool named like the scale set. Ignored by TCP frontends.
    pub rules: Vec<PathRule>,
    pub timeouts: Timeouts,
}

impl FrontendConfig {
    /// A plain HTTP, round-robin frontend with default timeouts and no rules.
    pub fn http(scale_set: impl Into<String>, name: impl Into<String>, listen: SocketAddr) -> Self {
        Self {
            scale_set: scale_set.into(),
            name: name.into(),
            listen,
            protocol: Protocol::Http,
            algorithm: Algorithm::RoundRobin,
            backend_port: None,
            rules: Vec::new(),
            timeouts: Timeouts::default(),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub enum Protocol {
    Http,
    /// TLS termination; PEM certificate chain (leaf first) and a PKCS#8, PKCS#1 (RSA) or
    /// SEC1 (EC) private key.
    Https {
        certificate_pem: String,
        private_key_pem: String,
    },
    Tcp,
}

impl Protocol {
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https { .. } => "https",
            Protocol::Tcp => "tcp",
        }
    }
}

// Keeps the private key out of logs.
impl std::fmt::Debug for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    #[default]
    RoundRobin,
    /// Fewest requests (L7) or connections (L4) in flight; ties broken round robin.
    LeastConnections,
    /// Rendezvous (highest random weight) hash of the client IP over member ids.
    IpHash,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRule {
    pub path_prefix: String,
    pub pool: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect to a member; on expiry the next member is tried.
    pub connect: Duration,
    /// From sending the request head to receiving the response head (L7) → 504.
    pub response: Duration,
    /// How long a client keep-alive connection may sit idle between requests (L7).
    pub client_idle: Duration,
    /// How long in-flight work may continue when a frontend stops or moves.
    pub drain: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            response: Duration::from_secs(30),
            client_idle: Duration::from_secs(60),
            drain: Duration::from_secs(30),
        }
    }
}

/// One instance in a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Stable identity (the instance id); drain, stats and IP hashing key on it.
    pub id: String,
    pub addr: SocketAddr,
    /// `false`: administratively disabled, gets nothing new (in-flight work finishes).
    pub enabled: bool,
}

impl Member {
    pub fn new(id: impl Into<String>, addr: SocketAddr) -> Self {
        Self {
            id: id.into(),
            addr,
            enabled: true,
        }
    }
}
