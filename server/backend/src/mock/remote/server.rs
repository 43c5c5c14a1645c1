//! The standalone mock hypervisor's HTTP server (`flotilla mock-hypervisor`): a [`Hypervisor`]
//! holds one [`Mock`] per installation, [`serve`] answers the protocol of [`super`] on a
//! bound listener until its shutdown future completes.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request as HttpRequest, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use flotilla_domain::secret::constant_time_eq;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::{ErrorBody, HEARTBEAT, INSTALLATION_HEADER, Request, valid_installation};
use crate::mock::{Mock, MockConfig, OpenError};
use crate::{Backend, BackendError, FaultInjection, Simulation};

/// The simulators of every installation that has called, opened on first use.
///
/// Every mock is opened from one template: its zones, fault domains, images, latency,
/// seed and mode; `state_dir`, when set, is the root under which each installation keeps
/// its journal (`<root>/<installation>`).
pub struct Hypervisor {
    template: MockConfig,
    token: String,
    mocks: tokio::sync::Mutex<BTreeMap<String, Arc<Mock>>>,
}

impl std::fmt::Debug for Hypervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Hypervisor")
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

impl Hypervisor {
    /// Opens the mock of every installation whose state is under `template.state_dir` (its
    /// running VMs serve again at once); the others open when they first call. Requests
    /// must carry `token`, which must not be empty.
    ///
    /// Journals are read synchronously, as [`Mock::open`] does: open at startup.
    pub async fn open(template: MockConfig, token: String) -> Result<Self, OpenError> {
        if token.is_empty() {
            return Err(OpenError::InvalidConfig {
                field: "token",
                message: "must not be empty".into(),
            });
        }
        let hypervisor = Hypervisor {
            template,
            token,
            mocks: tokio::sync::Mutex::default(),
        };
        for installation in hypervisor.installations_on_disk()? {
            let mock = hypervisor.open_mock(&installation).await?;
            hypervisor
                .mocks
                .lock()
                .await
                .insert(installation, Arc::new(mock));
        }
        Ok(hypervisor)
    }

    /// The installations with a state directory under the root.
    fn installations_on_disk(&self) -> Result<Vec<String>, OpenError> {
        let Some(root) = &self.template.state_dir else {
            return Ok(Vec::new());
        };
        let entries = match std::fs::read_dir(root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(OpenError::ReadJournal {
                    path: root.clone(),
                    source,
                });
            }
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| OpenError::ReadJournal {
                path: root.clone(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() && valid_installation(&name) {
                found.push(name);
            }
        }
        found.sort();
        Ok(found)
    }

    fn state_dir(&self, installation: &str) -> Option<PathBuf> {
        self.template
            .state_dir
            .as_ref()
            .map(|root| root.join(installation))
    }

    async fn open_mock(&self, installation: &str) -> Result<Mock, OpenError> {
        let config = MockConfig {
            installation_id: installation.to_owned(),
            state_dir: self.state_dir(installation),
            ..self.template.clone()
        };
        let mock = Mock::open(config).await?;
        tracing::info!(installation, "mock hypervisor: installation opened");
        Ok(mock)
    }

    /// The mock of `installation`, opened on first use.
    pub async fn mock(&self, installation: &str) -> Result<Arc<Mock>, BackendError> {
        if !valid_installation(installation) {
            return Err(refusal(
                "read the installation",
                io::ErrorKind::InvalidInput,
                "the installation id must be 1 to 64 letters, digits, `-` or `_`",
            ));
        }
        let mut mocks = self.mocks.lock().await;
        if let Some(mock) = mocks.get(installation) {
            return Ok(mock.clone());
        }
        let mock =
            Arc::new(
                self.open_mock(installation)
                    .await
                    .map_err(|source| BackendError::Io {
                        operation: "open the installation's mock",
                        source: io::Error::other(source),
                    })?,
            );
        mocks.insert(installation.to_owned(), mock.clone());
        Ok(mock)
    }

    /// Closes every installation's mock: timers stop, ports close, journals are whole.
    pub async fn close(&self) {
        for mock in self.mocks.lock().await.values() {
            mock.close().await;
        }
    }
}

/// Serves `hypervisor` on `listener` until `shutdown` completes; then ends the change
/// streams, lets the calls in flight finish and closes every mock.
pub async fn serve(
    hypervisor: Arc<Hypervisor>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let stop = CancellationToken::new();
    let app = router(hypervisor.clone(), stop.clone());
    let signal = stop.clone();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            signal.cancel();
        })
        .await;
    stop.cancel();
    hypervisor.close().await;
    result
}

#[derive(Clone)]
struct App {
    hypervisor: Arc<Hypervisor>,
    /// Ends the change streams, which would otherwise hold a graceful shutdown open.
    stop: CancellationToken,
}

/// The routes, every one behind the bearer token.
fn router(hypervisor: Arc<Hypervisor>, stop: CancellationToken) -> Router {
    let app = App { hypervisor, stop };
    Router::new()
        .route("/v1/healthz", get(|| async { "ok" }))
        .route("/v1/backend", post(call))
        .route("/v1/changes", get(changes))
        .layer(axum::middleware::from_fn_with_state(app.clone(), authorize))
        .with_state(app)
}

/// Refuses, with 401 and before anything else runs, a request without the bearer token.
async fn authorize(State(app): State<App>, request: HttpRequest, next: Next) -> Response {
    let sent = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(sent.as_bytes(), app.hypervisor.token.as_bytes()) {
        return next.run(request).await;
    }
    let mut response = Failure {
        status: StatusCode::UNAUTHORIZED,
        error: refusal(
            "authenticate",
            io::ErrorKind::PermissionDenied,
            "the mock hypervisor needs `Authorization: Bearer` with its token (FLOTILLA_MOCK_TOKEN)",
        ),
    }
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// `POST /v1/backend`: one operation.
async fn call(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let request: Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return Failure::from(refusal(
                "read the request",
                io::ErrorKind::InvalidInput,
                &e.to_string(),
            ))
            .into_response();
        }
    };
    let answer = async {
        let mock = app.hypervisor.mock(installation_of(&headers)?).await?;
        dispatch(&mock, request).await
    };
    match answer.await {
        Ok(value) => axum::Json(value).into_response(),
        Err(error) => Failure::from(error).into_response(),
    }
}

/// Runs `request` on `mock`; the answer is the method's result as JSON.
async fn dispatch(mock: &Mock, request: Request) -> Result<Value, BackendError> {
    fn json(value: impl Serialize) -> Value {
        serde_json::to_value(value).expect("the backend's types serialize to JSON")
    }
    Ok(match request {
        Request::Adopt { id } => json(mock.adopt(&id).await?),
        Request::Zones => json(mock.zones().await?),
        Request::Images => json(mock.images().await?),
        Request::Create { spec } => json(mock.create(&spec).await?),
        Request::Delete { id, force } => json(mock.delete(&id, force).await?),
        Request::Start { id } => json(mock.start(&id).await?),
        Request::Stop { id, force } => json(mock.stop(&id, force).await?),
        Request::Deallocate { id } => json(mock.deallocate(&id).await?),
        Request::Park { id, state } => json(mock.park(&id, state).await?),
        Request::Restart { id } => json(mock.restart(&id).await?),
        Request::Reimage {
            id,
            model,
            model_version,
        } => json(mock.reimage(&id, &model, model_version).await?),
        Request::List { scale_set } => json(mock.list(scale_set.as_deref()).await?),
        Request::Get { id } => json(mock.get(&id).await?),
        Request::Metrics { scale_set } => json(mock.metrics(scale_set.as_deref()).await?),
        Request::Hosts => json(mock.hosts().await?),
        Request::Console { id } => json(mock.console(&id).await?),
        Request::InjectFault { fault } => json(mock.inject(fault).await?),
        Request::ActiveFaults => json(mock.active().await),
        Request::ClearFaults => json(mock.clear().await?),
        Request::SetDemand { scale_set, demand } => {
            json(mock.set_demand(&scale_set, demand).await?)
        }
        Request::DemandRps { scale_set } => json(mock.demand_rps(&scale_set).await?),
    })
}

/// `GET /v1/changes`: the installation's VM ids as they change, one JSON string a line,
/// with an empty line every [`HEARTBEAT`]; ends when the server stops. A follower too slow
/// for the mock's buffer misses ids (the control plane re-lists periodically anyway).
async fn changes(State(app): State<App>, headers: HeaderMap) -> Response {
    let mock = match installation_of(&headers) {
        Ok(installation) => app.hypervisor.mock(installation).await,
        Err(error) => Err(error),
    };
    let mock = match mock {
        Ok(mock) => mock,
        Err(error) => return Failure::from(error).into_response(),
    };
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = (mock.changes(), heartbeat, app.stop.clone());
    let lines = futures::stream::unfold(state, |(mut changes, mut heartbeat, stop)| async move {
        let line = loop {
            tokio::select! {
                () = stop.cancelled() => return None,
                _ = heartbeat.tick() => break Bytes::from_static(b"\n"),
                id = changes.recv() => match id {
                    Ok(id) => {
                        let mut line = serde_json::to_vec(&id).expect("a string serializes");
                        line.push(b'\n');
                        break Bytes::from(line);
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "a change follower lagged");
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        };
        Some((Ok::<_, Infallible>(line), (changes, heartbeat, stop)))
    });
    let mut response = Body::from_stream(lines).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

fn installation_of(headers: &HeaderMap) -> Result<&str, BackendError> {
    headers
        .get(INSTALLATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            refusal(
                "read the installation",
                io::ErrorKind::InvalidInput,
                "the request names no installation (X-Flotilla-Installation)",
            )
        })
}

/// A request refused before it reached a mock, as the error the client rebuilds.
fn refusal(operation: &'static str, kind: io::ErrorKind, message: &str) -> BackendError {
    BackendError::Io {
        operation,
        source: io::Error::new(kind, message),
    }
}

/// A failed call: its [`ErrorBody`] and a status for people with curl (clients read the
/// body).
struct Failure {
    status: StatusCode,
    error: BackendError,
}

/// The status follows the error's kind; a refused request's input error is 400.
impl From<BackendError> for Failure {
    fn from(error: BackendError) -> Self {
        let status = match &error {
            BackendError::NotFound { .. } => StatusCode::NOT_FOUND,
            BackendError::Foreign { .. } | BackendError::InvalidState { .. } => {
                StatusCode::CONFLICT
            }
            BackendError::ZoneUnavailable { .. } | BackendError::HostUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            BackendError::UnknownZone { .. }
            | BackendError::UnknownHost { .. }
            | BackendError::CreateFailed { .. }
            | BackendError::InvalidFault(_) => StatusCode::UNPROCESSABLE_ENTITY,
            BackendError::NotSupported { .. } => StatusCode::NOT_IMPLEMENTED,
            BackendError::Libvirt { .. } => StatusCode::BAD_GATEWAY,
            BackendError::Io { source, .. } if source.kind() == io::ErrorKind::InvalidInput => {
                StatusCode::BAD_REQUEST
            }
            BackendError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Failure { status, error }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!(
                error = &self.error as &dyn std::error::Error,
                "mock hypervisor call failed"
            );
        }
        (self.status, axum::Json(ErrorBody::of(&self.error))).into_response()
    }
}
