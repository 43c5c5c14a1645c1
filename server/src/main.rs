//! `flotilla`: the server (`flotilla serve`) and the CLI (every other subcommand).

use clap::Parser;
use flotilla::cli::{Cli, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(mut args) => {
            args.admin_password = std::env::var("FLOTILLA_ADMIN_PASSWORD").ok();
            args.oidc_client_secret = std::env::var("FLOTILLA_OIDC_CLIENT_SECRET").ok();
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("FLOTILLA_LOG")
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .init();
            let listener = match tokio::net::TcpListener::bind(args.listen).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: cannot listen on {}: {e}", args.listen);
                    return std::process::ExitCode::FAILURE;
                }
            };
            let shutdown = async {
                let ctrl_c = tokio::signal::ctrl_c();
                #[cfg(unix)]
                {
                    let mut term =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
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
            };
            match flotilla::run(*args, listener, shutdown).await {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        command => flotilla::cli::run(cli.server, cli.output, cli.token, command).await,
    }
}
