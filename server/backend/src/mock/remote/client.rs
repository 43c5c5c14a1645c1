//! [`RemoteMock`]: the [`Backend`] of a control plane whose mock hypervisor is another
//! process (`flotilla serve --mock-url`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flotilla_domain::demand::Demand;
use flotilla_domain::{Fault, HostStatus, Model, ObservedVm, WarmPoolState, ZoneStatus};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{ErrorBody, HEARTBEAT, INSTALLATION_HEADER, Request, valid_installation};
use crate::{Backend, BackendError, FaultInjection, Result, Simulation, VmMetrics, VmSpec};

/// How long one call may take, connecting included, before it fails as timed out.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The change stream reconnects after this long at first, doubling up to `RECONNECT_MAX`.
const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// A change stream silent this long (three heartbeats missed) is taken for dead.
const STREAM_SILENCE: Duration = HEARTBEAT.saturating_mul(3);

/// The longest line a change stream may send (a VM id is far shorter).
const MAX_LINE: usize = 64 * 1024;

/// Announcements the control plane may fall behind by (as the libvirt backend's).
const CHANGES_BUFFER: usize = 1024;

/// Where a mock hypervisor listens: `https://…`, or `http://` to a loopback address only
/// (`127.0.0.1`, `::1`, `localhost`), since the token and the VMs' user data would cross
/// the network in clear. No user info, query or fragment; a path is a prefix the protocol's
/// paths are appended to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockUrl(reqwest::Url);

impl MockUrl {
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut url = reqwest::Url::parse(text.trim()).map_err(|e| {
            format!("{text:?} is not a URL: {e} (expected e.g. http://127.0.0.1:3900)")
        })?;
        match url.scheme() {
            "https" => {}
            "http" => {
                let host = url.host_str().unwrap_or("");
                let ip = host.trim_start_matches('[').trim_end_matches(']');
                let loopback = host == "localhost"
                    || ip
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if !loopback {
                    return Err(format!(
                        "{text:?}: plain http only to a loopback address (127.0.0.1, ::1, \
                         localhost); use https to reach another machine"
                    ));
                }
            }
            other => {
                return Err(format!(
                    "{text:?}: the scheme must be http or https, not {other}"
                ));
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "{text:?}: no user info in the URL (the token comes from FLOTILLA_MOCK_TOKEN)"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{text:?}: no query or fragment"));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(MockUrl(url))
    }

    /// The protocol's `path` (relative: `v1/backend`) under this URL.
    fn join(&self, path: &str) -> reqwest::Url {
        self.0.join(path).expect("a relative path joins any base")
    }
}

impl std::fmt::Display for MockUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for MockUrl {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        MockUrl::parse(s)
    }
}

/// A mock hypervisor in another process, as a [`Backend`] (with its [`FaultInjection`] and
/// [`Simulation`]) for one installation: every operation is one call of the protocol in
/// [`super`], failing after [`CALL_TIMEOUT`], with the server's errors rebuilt variant for
/// variant and transport failures as [`BackendError::Io`] (`TimedOut`,
/// `ConnectionRefused`…). A task follows the server's change stream for
/// [`Backend::state_changes`], reconnecting with backoff when it breaks (ids changed
/// meanwhile are missed; the control plane re-lists periodically anyway); it stops when the
/// `RemoteMock` is dropped.
pub struct RemoteMock {
    client: Arc<Client>,
    changes: broadcast::Sender<String>,
    stop: CancellationToken,
    follower: JoinHandle<()>,
}

impl std::fmt::Debug for RemoteMock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("RemoteMock")
            .field("url", &self.client.url)
            .field("installation", &self.client.installation)
            .finish_non_exhaustive()
    }
}

impl RemoteMock {
    /// Connects to the mock hypervisor at `url` for `installation` and checks that it
    /// answers and takes `token` (a wrong URL or token fails here, at startup, rather than at
    /// the first VM); then follows its changes. Must run inside a tokio runtime.
    pub async fn connect(url: MockUrl, token: &str, installation: &str) -> Result<RemoteMock> {
        let refused = |message: &str| BackendError::Io {
            operation: "connect to the mock hypervisor",
            source: io::Error::new(io::ErrorKind::InvalidInput, message),
        };
        if !valid_installation(installation) {
            return Err(refused(
                "the installation id must be 1 to 64 letters, digits, `-` or `_`",
            ));
        }
        let mut token = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| refused("the token must be visible ASCII"))?;
        token.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, token);
        headers.insert(
            INSTALLATION_HEADER,
            HeaderValue::try_from(installation).expect("checked above"),
        );
        let http = reqwest::Client::builder()
            // A mock hypervisor is this site's own service: never through a proxy.
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .default_headers(headers)
            .build()
            .map_err(|e| transport("connect to the mock hypervisor", e))?;
        let client = Arc::new(Client {
            http,
            url,
            installation: installation.to_owned(),
        });
        client.call::<Vec<ZoneStatus>>(Request::Zones).await?;
        let (changes, _) = broadcast::channel(CHANGES_BUFFER);
        let stop = CancellationToken::new();
        let follower = tokio::spawn(follow(client.clone(), changes.clone(), stop.clone()));
        Ok(RemoteMock {
            client,
            changes,
            stop,
            follower,
        })
    }

    async fn call<T: DeserializeOwned>(&self, request: Request) -> Result<T> {
        self.client.call(request).await
    }
}

impl Drop for RemoteMock {
    fn drop(&mut self) {
        self.stop.cancel();
        self.follower.abort();
    }
}

struct Client {
    /// Sends the token and the installation with every request.
    http: reqwest::Client,
    url: MockUrl,
    installation: String,
}

impl Client {
    async fn call<T: DeserializeOwned>(&self, request: Request) -> Result<T> {
        let operation = request.operation();
        let response = self
            .http
            .post(self.url.join("v1/backend"))
            .timeout(CALL_TIMEOUT)
            .json(&request)
            .send()
            .await
            .map_err(|e| transport(operation, e))?;
        if !response.status().is_success() {
            return Err(failure(operation, response).await);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| transport(operation, e))?;
        serde_json::from_slice(&body).map_err(|e| BackendError::Io {
            operation,
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })
    }

    /// Follows `GET /v1/changes` until it ends (`Ok`: it was open) or fails.
    async fn stream_changes(&self, changes: &broadcast::Sender<String>) -> Result<()> {
        const OPERATION: &str = "follow the changes";
        let mut response = self
            .http
            .get(self.url.join("v1/changes"))
            .send()
            .await
            .map_err(|e| transport(OPERATION, e))?;
        if !response.status().is_success() {
            return Err(failure(OPERATION, response).await);
        }
        let broken = |kind, message: &str| BackendError::Io {
            operation: OPERATION,
            source: io::Error::new(kind, message),
        };
        let mut buffer = Vec::new();
        loop {
            let chunk = tokio::time::timeout(STREAM_SILENCE, response.chunk())
                .await
                .map_err(|_| broken(io::ErrorKind::TimedOut, "the stream fell silent"))?
                .map_err(|e| transport(OPERATION, e))?;
            let Some(chunk) = chunk else {
                return Ok(());
            };
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                let line = &line[..end];
                if line.is_empty() {
                    continue; // a heartbeat
                }
                let id: String = serde_json::from_slice(line)
                    .map_err(|_| broken(io::ErrorKind::InvalidData, "a line is not a VM id"))?;
                // An error only means nobody follows right now.
                let _ = changes.send(id);
            }
            if buffer.len() > MAX_LINE {
                return Err(broken(io::ErrorKind::InvalidData, "a line is too long"));
            }
        }
    }
}

/// Follows the server's changes into `changes` until `stop`, reconnecting with backoff.
async fn follow(client: Arc<Client>, changes: broadcast::Sender<String>, stop: CancellationToken) {
    let mut backoff = RECONNECT_MIN;
    let mut failures = 0u32;
    loop {
        let outcome = tokio::select! {
            () = stop.cancelled() => return,
            outcome = client.stream_changes(&changes) => outcome,
        };
        match outcome {
            Ok(()) => {
                tracing::debug!(url = %client.url, "the mock hypervisor's change stream ended");
                backoff = RECONNECT_MIN;
                failures = 0;
            }
            Err(error) => {
                failures += 1;
                let error = &error as &dyn std::error::Error;
                // Once per outage in the log; the retries after it at debug level.
                if failures == 1 {
                    tracing::warn!(url = %client.url, error, "lost the mock hypervisor's change stream; reconnecting");
                } else {
                    tracing::debug!(url = %client.url, error, failures, "the mock hypervisor's change stream is still down");
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(RECONNECT_MAX);
    }
}

/// A transport failure as the I/O error it is.
fn transport(operation: &'static str, error: reqwest::Error) -> BackendError {
    let kind = if error.is_timeout() {
        io::ErrorKind::TimedOut
    } else if error.is_connect() {
        io::ErrorKind::ConnectionRefused
    } else {
        io::ErrorKind::Other
    };
    BackendError::Io {
        operation,
        source: io::Error::new(kind, error),
    }
}

/// The error a refused call answers: the server's own, rebuilt; else (a proxy's page, a
/// server that is not a mock hypervisor) an I/O error quoting the status and body.
async fn failure(operation: &'static str, response: reqwest::Response) -> BackendError {
    let status = response.status();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(e) => return transport(operation, e),
    };
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(&body) {
        return body.error.into();
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    BackendError::Io {
        operation,
        source: io::Error::other(format!("the mock hypervisor answered {status}: {text}")),
    }
}

#[async_trait]
impl Backend for RemoteMock {
    fn kind(&self) -> &'static str {
        "mock"
    }

    fn installation_id(&self) -> &str {
        &self.client.installation
    }

    async fn adopt(&self, id: &str) -> Result<ObservedVm> {
        self.call(Request::Adopt { id: id.to_owned() }).await
    }

    async fn zones(&self) -> Result<Vec<ZoneStatus>> {
        self.call(Request::Zones).await
    }

    async fn images(&self) -> Result<Vec<String>> {
        self.call(Request::Images).await
    }

    async fn create(&self, spec: &VmSpec) -> Result<ObservedVm> {
        self.call(Request::Create { spec: spec.clone() }).await
    }

    async fn delete(&self, id: &str, force: bool) -> Result<()> {
        let id = id.to_owned();
        self.call(Request::Delete { id, force }).await
    }

    async fn start(&self, id: &str) -> Result<ObservedVm> {
        self.call(Request::Start { id: id.to_owned() }).await
    }

    async fn stop(&self, id: &str, force: bool) -> Result<ObservedVm> {
        let id = id.to_owned();
        self.call(Request::Stop { id, force }).await
    }

    async fn deallocate(&self, id: &str) -> Result<ObservedVm> {
        self.call(Request::Deallocate { id: id.to_owned() }).await
    }

    async fn restart(&self, id: &str) -> Result<ObservedVm> {
        self.call(Request::Restart { id: id.to_owned() }).await
    }

    async fn park(&self, id: &str, state: WarmPoolState) -> Result<ObservedVm> {
        let id = id.to_owned();
        self.call(Request::Park { id, state }).await
    }

    async fn reimage(&self, id: &str, model: &Model, model_version: u32) -> Result<ObservedVm> {
        self.call(Request::Reimage {
            id: id.to_owned(),
            model: model.clone(),
            model_version,
        })
        .await
    }

    async fn list(&self, scale_set: Option<&str>) -> Result<Vec<ObservedVm>> {
        let scale_set = scale_set.map(str::to_owned);
        self.call(Request::List { scale_set }).await
    }

    async fn get(&self, id: &str) -> Result<Option<ObservedVm>> {
        self.call(Request::Get { id: id.to_owned() }).await
    }

    async fn metrics(&self, scale_set: Option<&str>) -> Result<Vec<VmMetrics>> {
        let scale_set = scale_set.map(str::to_owned);
        self.call(Request::Metrics { scale_set }).await
    }

    fn state_changes(&self) -> Option<broadcast::Receiver<String>> {
        Some(self.changes.subscribe())
    }

    async fn hosts(&self) -> Result<Vec<HostStatus>> {
        self.call(Request::Hosts).await
    }

    async fn console(&self, id: &str) -> Result<String> {
        self.call(Request::Console { id: id.to_owned() }).await
    }

    fn faults(&self) -> Option<&dyn FaultInjection> {
        Some(self)
    }

    fn simulation(&self) -> Option<&dyn Simulation> {
        Some(self)
    }
}

#[async_trait]
impl FaultInjection for RemoteMock {
    async fn inject(&self, fault: Fault) -> Result<()> {
        self.call(Request::InjectFault { fault }).await
    }

    /// The trait gives no way to fail: an unreachable hypervisor lists no fault (and says
    /// so in the log).
    async fn active(&self) -> Vec<Fault> {
        self.call(Request::ActiveFaults)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "cannot list the mock hypervisor's faults"
                );
                Vec::new()
            })
    }

    async fn clear(&self) -> Result<()> {
        self.call(Request::ClearFaults).await
    }
}

#[async_trait]
impl Simulation for RemoteMock {
    async fn set_demand(&self, scale_set: &str, demand: Option<Demand>) -> Result<()> {
        let scale_set = scale_set.to_owned();
        self.call(Request::SetDemand { scale_set, demand }).await
    }

    async fn demand_rps(&self, scale_set: &str) -> Result<Option<f64>> {
        let scale_set = scale_set.to_owned();
        self.call(Request::DemandRps { scale_set }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_or_loopback_http() {
        for good in [
            "http://127.0.0.1:3900",
            "http://[::1]:3900/",
            "http://localhost:3900",
            "https://mock.example",
            "https://proxy.example/mock",
        ] {
            assert!(MockUrl::parse(good).is_ok(), "{good}");
        }
        assert_eq!(
            MockUrl::parse("https://proxy.example/mock")
                .unwrap()
                .join("v1/backend")
                .as_str(),
            "https://proxy.example/mock/v1/backend"
        );
        for bad in [
            "http://10.0.0.5:3900",
            "http://mock.example",
            "ftp://127.0.0.1",
            "https://user:pw@mock.example",
            "https://mock.example/?token=x",
            "127.0.0.1:3900",
        ] {
            assert!(MockUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
