//! # flotilla
//!
//! The Flotilla binary: `flotilla serve` runs the control plane — the portal, the REST API
//! under `/api/v1`, Server-Sent Events, `/metrics`, `/healthz` and `/readyz` — on one port;
//! `flotilla mock-hypervisor` runs the mock simulator as a service that several replicas
//! share (`serve --mock-url`); every other subcommand is the CLI, a client of that API.
//!
//! Layout: `config.rs` (flags and `FLOTILLA_…` variables), [`run`] (wiring: store, backend
//! — the in-process mock, a remote mock hypervisor or libvirt — fleet, routes, graceful
//! shutdown), `mock_hypervisor.rs` (`flotilla mock-hypervisor`), `serve.rs` (the bounded HTTP server: connection cap,
//! header and idle timeouts), `guard.rs` (what every request passes: host allow-list,
//! cross-site refusal, body limit, request timeout, panics, response headers), `auth.rs`
//! (who calls and may they: tokens, sessions, CSRF, the permission checks, sign-in),
//! `oidc.rs` (optional single sign-on through OpenID Connect: `--oidc-issuer`,
//! `--oidc-client-id`, `--oidc-roles-claim`, `FLOTILLA_OIDC_CLIENT_SECRET`),
//! `sessions.rs` (the portal's sessions in the database), `api/` (REST
//! handlers, one module per resource, problem+json errors with the one status mapping of
//! `flotilla_control::Error::status`, one query-parameter parser, the OpenAPI document,
//! SSE), `ops.rs` (health and metrics), `ui.rs` (the Leptos portal's routes), `cli/` (the
//! client commands).
//!
//! Secrets at rest: the data directory is `0700` (`0711` when the libvirt state directory
//! inside it must be traversed by QEMU), the SQLite file `0600`; the database URL's password
//! is never logged.
#![forbid(unsafe_code)]

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use flotilla_backend::Backend;
use flotilla_backend::mock::Mock;
use flotilla_backend::mock::remote::RemoteMock;
use flotilla_control::leadership::new_replica_id;
use flotilla_control::{
    Fleet, FleetConfig, LeaseTiming, MetricsConfig, ReplicaConfig, SingleHolder, SystemClock,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod guard;
pub mod mock_hypervisor;
mod oidc;
pub mod ops;
mod serve;
mod sessions;
mod ui;

use auth::AuthMode;
use config::{BackendKind, ServeArgs, redacted_url};

/// Serves Flotilla on `listener` until `shutdown` completes, then stops the loops and the
/// backend's simulators cleanly.
pub async fn run(
    config: ServeArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let single_sign_on = oidc::Settings::from_args(&config, listener.local_addr()?)?;
    std::fs::create_dir_all(&config.database.data_dir).with_context(|| {
        format!(
            "creating data directory {}",
            config.database.data_dir.display()
        )
    })?;
    private_data_dir(&config)?;
    raise_fd_limit();
    let url = config.database_url();
    let shown_url = redacted_url(&url);
    private_database_file(&url)?;
    let store = flotilla_store::connect(&url)
        .await
        .with_context(|| format!("opening the database {shown_url}"))?;
    let fresh = uuid::Uuid::new_v4().simple().to_string();
    let installation = store
        .installation_id(&fresh, chrono::Utc::now())
        .await
        .context("reading the installation id")?;
    let (backend, mock): (Arc<dyn Backend>, Option<Arc<Mock>>) =
        match (config.backend, &config.mock_url) {
            (BackendKind::Mock, None) => {
                let mock = config
                    .mock
                    .config(config.database.data_dir.join("mock"))
                    .with_installation_id(installation.clone());
                let mock = Arc::new(
                    Mock::open(mock)
                        .await
                        .context("starting the mock hypervisor")?,
                );
                (mock.clone(), Some(mock))
            }
            (BackendKind::Mock, Some(url)) => {
                let token = config.mock_token.as_deref().context(
                    "--mock-url needs the mock hypervisor's token in FLOTILLA_MOCK_TOKEN",
                )?;
                let remote = RemoteMock::connect(url.clone(), token, &installation)
                    .await
                    .with_context(|| format!("connecting to the mock hypervisor at {url}"))?;
                (Arc::new(remote), None)
            }
            (BackendKind::Libvirt, Some(_)) => {
                anyhow::bail!("--mock-url is for --backend mock, not libvirt")
            }
            (BackendKind::Libvirt, None) => (open_libvirt(&config, &installation).await?, None),
        };
    let fleet = Fleet::new(
        store.clone(),
        backend,
        Arc::new(SystemClock),
        FleetConfig {
            reconcile_interval: config.reconcile_interval,
            load_balancer_address: config.lb_address,
            load_balancer_frontends: config.lb_frontends == config::LbFrontends::All,
            autoscale_interval: config.autoscale_interval,
            metrics: MetricsConfig {
                interval: config.metrics_interval,
                retention: chrono::Duration::from_std(config.metrics_retention)
                    .unwrap_or(chrono::Duration::MAX),
                per_instance: config.metrics_per_instance,
            },
            orphan_grace: config.orphan_grace,
            host_unreachable_after: config.host_unreachable_after,
            max_scale_sets: config.max_scale_sets,
            max_instances: config.max_instances,
            activity_retention: config.activity_retention,
            model_versions_kept: config.model_versions_kept,
            webhook_allow: config.webhook_allow.clone(),
            replica: ReplicaConfig {
                id: new_replica_id(),
                host: gethostname::gethostname().to_string_lossy().into_owned(),
                lease: LeaseTiming::default(),
                single_holder: single_holder(&url),
            },
            ..FleetConfig::default()
        },
    );
    fleet.start().await.context("starting the control loops")?;
    let address = listener.local_addr()?;
    if config.auth == AuthMode::Local {
        let created = fleet
            .accounts()
            .bootstrap(config.admin_password.clone())
            .await
            .context("creating the first user")?;
        if let Some(password) = created {
            announce_admin(&config, address, &password);
        }
    } else {
        tracing::warn!(
            "authentication is off (--auth none): anyone who reaches {address} controls every VM"
        );
    }
    warn_if_exposed(&config, address);

    let stop = CancellationToken::new();
    tokio::spawn(sessions::prune(store.clone(), stop.clone()));
    let oidc = match single_sign_on {
        Some(settings) => Some(
            oidc::Oidc::start(settings, fleet.accounts().clone())
                .await
                .context("starting single sign-on")?,
        ),
        None => None,
    };
    let app = router(
        fleet.clone(),
        store.clone(),
        &config,
        stop.clone(),
        address,
        oidc,
    );
    tracing::info!(address = %listener.local_addr()?, database = %shown_url, %installation, "flotilla serving");
    let signal = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        signal.cancel();
    });
    serve::serve(listener, app, config.max_connections, stop)
        .await
        .context("serving HTTP")?;
    fleet.shutdown().await;
    if let Some(mock) = mock {
        mock.shutdown();
    }
    // Every connection closed before `run` returns: a SQLite database is whole in its file.
    store.close().await;
    tracing::info!("flotilla stopped");
    Ok(())
}

/// Tells the operator, once, how to sign in as the first user (on standard output, never
/// in the log: logs travel further).
fn announce_admin(config: &ServeArgs, address: std::net::SocketAddr, password: &str) {
    let url = config
        .public_url
        .first()
        .map(|u| u.to_string())
        .unwrap_or_else(|| format!("http://{address}"));
    if config.admin_password.is_some() {
        println!("Created the user `admin` (Owner) with the password in FLOTILLA_ADMIN_PASSWORD.");
    } else {
        println!(
            "Created the user `admin` (Owner). One-time password: {password}\n\
             Sign in at {url}/login, or `flotilla login --server {url} --username admin`, \
             then change it: flotilla user passwd admin"
        );
    }
}

/// Warns when the server listens beyond this machine without TLS in front: passwords and
/// tokens would cross the network in clear.
fn warn_if_exposed(config: &ServeArgs, address: std::net::SocketAddr) {
    let https = config.public_url.iter().any(|u| u.https);
    if !address.ip().is_loopback() && !https {
        tracing::warn!(
            %address,
            "listening beyond this machine without https: put TLS in front (a reverse proxy) \
             and pass its URL as --public-url https://…, or passwords and tokens cross the \
             network in clear"
        );
    }
}

/// The libvirt backend on the hosts of `--libvirt-host` or `--libvirt-config`; seeds and
/// console logs go to `<data dir>/libvirt` unless the configuration says otherwise.
#[cfg(feature = "libvirt")]
async fn open_libvirt(config: &ServeArgs, installation: &str) -> anyhow::Result<Arc<dyn Backend>> {
    use flotilla_backend::libvirt::{Libvirt, LibvirtConfig};
    let mut libvirt = match (&config.libvirt_host, &config.libvirt_config) {
        (Some(hosts), _) => {
            LibvirtConfig::from_hosts(hosts).map_err(|e| anyhow::anyhow!("--libvirt-host: {e}"))?
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the libvirt configuration {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{}: not a libvirt configuration", path.display()))?
        }
        (None, None) => anyhow::bail!(
            "--backend libvirt needs --libvirt-host zone=uri[,zone=uri…] or --libvirt-config FILE"
        ),
    };
    if libvirt.state_dir.is_none() {
        let data_dir =
            std::path::absolute(&config.database.data_dir).context("the data directory")?;
        libvirt.state_dir = Some(data_dir.join("libvirt"));
    }
    let libvirt = Libvirt::open(libvirt, installation)
        .await
        .context("connecting to the libvirt hosts")?;
    Ok(Arc::new(libvirt))
}

#[cfg(not(feature = "libvirt"))]
async fn open_libvirt(_: &ServeArgs, _: &str) -> anyhow::Result<Arc<dyn Backend>> {
    anyhow::bail!(
        "this build has no libvirt backend: build with `--features libvirt` (make does), \
         or use --backend mock"
    )
}

/// Every route, behind the layers every request passes: a request id (`x-request-id`,
/// kept when a proxy in front already set one, else a new UUID) that is in the request's log
/// span and in failures' messages and is sent back with the response; a trace span; body
/// limit and compression.
fn router(
    fleet: Fleet,
    store: Arc<dyn flotilla_store::Store>,
    config: &ServeArgs,
    stop: CancellationToken,
    addr: std::net::SocketAddr,
    oidc: Option<Arc<oidc::Oidc>>,
) -> Router {
    let api = api::router(api::ApiState {
        fleet: fleet.clone(),
        shutdown: stop,
        event_streams: Arc::new(tokio::sync::Semaphore::new(config.max_event_streams)),
    })
    .layer(axum::middleware::from_fn(api::error::scope_request_id));
    let options = leptos::config::LeptosOptions::builder()
        .output_name("flotilla")
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    let auth = Arc::new(auth::Auth {
        mode: config.auth,
        accounts: fleet.accounts().clone(),
        absolute: config.session_lifetime,
    });
    let sign_in = Router::new()
        .route("/auth/login", axum::routing::post(auth::sign_in))
        .route("/auth/logout", axum::routing::post(auth::sign_out))
        .with_state(auth.clone());
    let sign_in_options = flotilla_control::accounts::SignInOptions {
        single_sign_on: oidc.is_some(),
    };
    let sign_in = match oidc {
        Some(oidc) => sign_in.merge(oidc.router()),
        None => sign_in,
    };
    let portal = ui::router(fleet.clone(), options).layer(axum::middleware::from_fn(auth::portal));
    let routes = Router::new()
        .nest("/api/v1", api)
        .merge(ops::router(fleet.clone()))
        .merge(sign_in)
        .merge(portal)
        .layer(axum::middleware::from_fn_with_state(
            auth,
            auth::authenticate,
        ))
        .layer(axum::Extension(sign_in_options))
        .layer(sessions::layer(
            store,
            config.public_url.iter().any(|u| u.https),
            config.session_idle,
        ));
    let policy = guard::Policy::new(addr, &config.public_url, config.request_timeout);
    with_common_layers(routes, policy)
}

/// `routes` behind the layers every request passes (see [`router`]): the guard's
/// (`guard.rs`) inside the request id, trace span and compression.
fn with_common_layers(routes: Router, policy: guard::Policy) -> Router {
    guard::layers(routes, policy).layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(request_span))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(CompressionLayer::new()),
    )
}

/// The data directory is this installation's alone: `0700`, or `0711` when the libvirt
/// state directory lives inside it (QEMU, another user, must traverse it to reach the
/// seeds; it still cannot list it, and the files inside keep their own modes).
fn private_data_dir(config: &ServeArgs) -> anyhow::Result<()> {
    let traversed = config.backend == BackendKind::Libvirt;
    private_dir(&config.database.data_dir, traversed)
}

/// Makes `dir` its owner's alone: `0700`, or `0711` when others must `traversed` it.
pub(crate) fn private_dir(dir: &std::path::Path, traversed: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if traversed { 0o711 } else { 0o700 };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("making the data directory {} private", dir.display()))
}

/// What keeps two processes from both leading on this database: on a SQLite file, a lock
/// on `<file>.lease` beside it; in memory, nothing can share it; PostgreSQL replicas rely
/// on the lease's expiry.
fn single_holder(url: &str) -> SingleHolder {
    match config::sqlite_path(url) {
        Some(path) => SingleHolder::File(format!("{path}.lease").into()),
        None if url.starts_with("sqlite:") => SingleHolder::Process,
        None => SingleHolder::Shared,
    }
}

/// A SQLite database (and its journal files, which SQLite creates with the database's
/// mode) is readable by its owner only.
fn private_database_file(url: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let Some(path) = config::sqlite_path(url) else {
        return Ok(()); // another database, or in memory
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening the database file {path}"))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making the database file {path} private"))?;
    for suffix in ["-wal", "-shm"] {
        let journal = format!("{path}{suffix}");
        if std::path::Path::new(&journal).exists() {
            std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("making {journal} private"))?;
        }
    }
    Ok(())
}

/// The log span of one request, named by its id.
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|id| id.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        uri = %request.uri(),
        request_id = id,
    )
}

/// Each mock instance serves HTTP on its own socket: lift the soft limit on open files to
/// the hard limit so thousands of instances fit.
pub(crate) fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open file limit"),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;
    use crate::api::error::{ApiError, scope_request_id};

    /// An API route whose store fails, behind the server's layers.
    fn failing() -> Router {
        let api = Router::new()
            .route(
                "/fail",
                get(|| async {
                    let source = flotilla_store::StoreError::UnsupportedUrl { url: "x:".into() };
                    Err::<(), _>(ApiError::from(flotilla_control::Error::Store {
                        operation: "list",
                        source,
                    }))
                }),
            )
            .layer(axum::middleware::from_fn(scope_request_id));
        with_common_layers(
            Router::new()
                .nest("/api/v1", api)
                .route("/ok", get(|| async { "ok" }))
                .route(
                    "/panic",
                    get(|| async {
                        if true {
                            panic!("a bug");
                        }
                        "unreachable"
                    }),
                ),
            guard::Policy::new(
                "127.0.0.1:3000".parse().unwrap(),
                &[],
                std::time::Duration::from_secs(30),
            ),
        )
    }

    async fn get_with(path: &str, id: Option<&str>) -> (Option<String>, serde_json::Value) {
        let mut request = Request::get(path).header("host", "127.0.0.1:3000");
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        let response = failing()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let header = response
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string());
        let body = to_bytes(response.into_body(), guard::BODY_LIMIT)
            .await
            .unwrap();
        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        (header, json)
    }

    /// A handler that panics answers 500 with the request id, and the server lives on.
    #[tokio::test]
    async fn a_panic_is_a_500_that_names_its_request() {
        let (id, problem) = get_with("/panic", Some("req-7")).await;
        assert_eq!(id.as_deref(), Some("req-7"));
        assert_eq!(problem["status"], 500);
        assert_eq!(problem["request_id"], "req-7");
        let (_, _) = get_with("/ok", None).await;
    }

    #[tokio::test]
    async fn every_response_names_its_request_and_a_failure_quotes_it() {
        let (id, _) = get_with("/ok", None).await;
        let id = id.expect("an x-request-id");
        assert_eq!(id.len(), 36, "a UUID: {id}");

        let (id, problem) = get_with("/api/v1/fail", None).await;
        let id = id.expect("an x-request-id");
        assert_eq!(problem["status"], 500);
        assert_eq!(problem["request_id"], id.as_str());
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .ends_with(&format!("(request id {id})"))
        );
    }

    #[tokio::test]
    async fn an_id_from_a_proxy_in_front_is_kept() {
        let (id, problem) = get_with("/api/v1/fail", Some("proxy-42")).await;
        assert_eq!(id.as_deref(), Some("proxy-42"));
        assert_eq!(problem["request_id"], "proxy-42");
    }
}
