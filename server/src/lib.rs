//! # flotilla
//!
//! The Flotilla binary: `flotilla serve` runs the control plane — the portal, the REST API
//! under `/api/v1`, Server-Sent Events, `/metrics`, `/healthz` and `/readyz` — on one port;
//! every other subcommand is the CLI, a client of that API.
//!
//! Layout: `config.rs` (flags and `FLOTILLA_…` variables), [`run`] (wiring: store, backend,
//! fleet, routes, graceful shutdown), `api/` (REST handlers, problem+json errors, the
//! OpenAPI document, SSE), `ops.rs` (health and metrics), `ui.rs` (the Leptos portal's
//! routes), `cli.rs` (the client commands).
#![forbid(unsafe_code)]

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use flotilla_backend::Backend;
use flotilla_backend::mock::{Mock, MockConfig, Mode};
use flotilla_control::{Fleet, FleetConfig, SystemClock};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

pub mod api;
pub mod cli;
pub mod config;
mod ops;
mod ui;

use config::{BackendKind, ServeArgs};

/// Largest request body the API accepts.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Serves Flotilla on `listener` until `shutdown` completes, then stops the loops and the
/// backend's simulators cleanly.
pub async fn run(
    config: ServeArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    raise_fd_limit();
    let url = config.database_url();
    let store = flotilla_store::connect(&url)
        .await
        .with_context(|| format!("opening the database {url}"))?;
    let mock = match config.backend {
        BackendKind::Mock => Arc::new(
            Mock::open(MockConfig {
                zones: config.mock_zones.clone(),
                fault_domains: config.mock_fault_domains,
                latency: config.mock_latency,
                seed: config.mock_seed,
                mode: Mode::Timer,
                state_dir: Some(config.data_dir.join("mock")),
                ..MockConfig::default()
            })
            .await
            .context("starting the mock hypervisor")?,
        ),
        BackendKind::Libvirt => {
            anyhow::bail!("this build has no libvirt backend yet; use --backend mock")
        }
    };
    let backend: Arc<dyn Backend> = mock.clone();
    let fleet = Fleet::new(
        store,
        backend,
        Arc::new(SystemClock),
        FleetConfig {
            reconcile_interval: config.reconcile_interval,
            ..FleetConfig::default()
        },
    );
    fleet.start().await.context("starting the control loops")?;

    let stop = CancellationToken::new();
    let app = router(fleet.clone(), &config, stop.clone(), listener.local_addr()?);
    tracing::info!(address = %listener.local_addr()?, database = %url, "flotilla serving");
    let signal = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        signal.cancel();
    });
    let graceful = stop.clone();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { graceful.cancelled().await })
    .await
    .context("serving HTTP")?;
    fleet.shutdown().await;
    mock.shutdown();
    tracing::info!("flotilla stopped");
    Ok(())
}

fn router(
    fleet: Fleet,
    config: &ServeArgs,
    stop: CancellationToken,
    addr: std::net::SocketAddr,
) -> Router {
    let api = api::router(api::ApiState {
        fleet: fleet.clone(),
        shutdown: stop,
    });
    let options = leptos::config::LeptosOptions::builder()
        .output_name("flotilla")
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    Router::new()
        .nest("/api/v1", api)
        .merge(ops::router(fleet.clone()))
        .merge(ui::router(fleet, options))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
}

/// Each mock instance serves HTTP on its own socket: lift the soft limit on open files to
/// the hard limit so thousands of instances fit.
fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open file limit"),
    }
}
