//! `flotilla`: the servers (`flotilla serve`, `flotilla mock-hypervisor`) and the CLI (every
//! other subcommand).

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use flotilla::cli::{Cli, Command};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(mut args) => {
            args.admin_password = std::env::var("FLOTILLA_ADMIN_PASSWORD").ok();
            args.oidc_client_secret = std::env::var("FLOTILLA_OIDC_CLIENT_SECRET").ok();
            args.mock_token = std::env::var("FLOTILLA_MOCK_TOKEN").ok();
            let listen = args.listen;
            serve(listen, |listener| {
                flotilla::run(*args, listener, shutdown_signal())
            })
            .await
        }
        Command::MockHypervisor(mut args) => {
            args.token = std::env::var("FLOTILLA_MOCK_TOKEN").ok();
            let listen = args.listen;
            serve(listen, |listener| {
                flotilla::mock_hypervisor::run(*args, listener, shutdown_signal())
            })
            .await
        }
        command => flotilla::cli::run(cli.server, cli.output, cli.token, command).await,
    }
}

/// Logs as `FLOTILLA_LOG` says (default `info`), binds `listen` and runs the server `run`
/// makes of the listener; an error ends the process with status 1.
async fn serve<F>(listen: SocketAddr, run: impl FnOnce(TcpListener) -> F) -> ExitCode
where
    F: Future<Output = anyhow::Result<()>>,
{
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLOTILLA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let listener = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(listener).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
