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
    /// L7 only. Longest matching `path_prefix` wins; requests matching no rule go to the
    /// pool named like the scale set. Ignored by TCP frontends.
    pub rules: Vec<PathRule>,
    pub timeouts: Timeouts,
    pub limits: Limits,
}

impl FrontendConfig {
    /// A plain HTTP, round-robin frontend with default timeouts and limits, and no rules.
    pub fn http(scale_set: impl Into<String>, name: impl Into<String>, listen: SocketAddr) -> Self {
        Self {
            scale_set: scale_set.into(),
            name: name.into(),
            listen,
            protocol: Protocol::Http,
            algorithm: Algorithm::RoundRobin,
            rules: Vec::new(),
            timeouts: Timeouts::default(),
            limits: Limits::default(),
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

/// An L7 routing rule. `path_prefix` is compared with the request's normalised path (see
/// the crate docs), after being normalised the same way.
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
    /// L7: longest silence from a member in the middle of a response body; the member's
    /// connection is then closed and the client's response cut short.
    pub body_read: Duration,
    /// Longest wait for a peer to take bytes that are ready for it: a client not reading its
    /// response (L7, HTTP/1.1 and TLS; see the crate docs for HTTP/2), either side of an L4
    /// connection. The connection is then closed.
    pub write: Duration,
    /// How long a client keep-alive connection may sit idle between requests (L7).
    pub client_idle: Duration,
    /// L4: a connection with no byte either way for this long is closed.
    pub tcp_idle: Duration,
    /// How long in-flight work may continue when a frontend stops or moves.
    pub drain: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            response: Duration::from_secs(30),
            body_read: Duration::from_secs(60),
            write: Duration::from_secs(60),
            client_idle: Duration::from_secs(60),
            tcp_idle: Duration::from_secs(600),
            drain: Duration::from_secs(30),
        }
    }
}

/// What one frontend lets clients use. A change applies to new connections (the stream and
/// header limits) and to new requests or accepts (the connection limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Client connections open at once. At the limit the listener stops accepting: new
    /// connections wait in the kernel's listen backlog until one closes. `None`: no limit.
    pub max_connections: Option<u32>,
    /// Work in flight on one member (L7 requests, L4 connections), counted over every
    /// frontend routing to its pool. A member at the cap gets nothing new from this
    /// frontend; when every member is at its cap, the request is answered 503 at once (L7)
    /// or the connection closed (L4) rather than queued. `None`: no cap.
    pub max_connections_per_member: Option<u32>,
    /// Largest request head (HTTP/1.1: request line and headers, answered 431 beyond) and
    /// header list (HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE`), in bytes.
    pub max_header_bytes: u32,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`: requests one HTTP/2 client connection may
    /// have in flight.
    pub http2_max_concurrent_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: Some(10_000),
            max_connections_per_member: None,
            max_header_bytes: 64 * 1024,
            http2_max_concurrent_streams: 128,
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
