//! `flotilla mock-hypervisor`: the mock simulator as a service of its own, which several
//! `flotilla serve --mock-url` replicas share as they would share hypervisor hosts. The
//! protocol and the server are `flotilla_backend::mock::remote`'s; this is the wiring:
//! data directory, token, listener, shutdown.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use flotilla_backend::mock::remote::server::{self, Hypervisor};
use tokio::net::TcpListener;

use crate::config::MockHypervisorArgs;

/// Serves the mock hypervisor on `listener` until `shutdown` completes; each installation's
/// VMs are kept under `<data dir>/mock/<installation>` and come back at the next start.
pub async fn run(
    args: MockHypervisorArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data directory {}", args.data_dir.display()))?;
    crate::private_dir(&args.data_dir, false)?;
    crate::raise_fd_limit();
    let address = listener.local_addr()?;
    let token = match args.token.filter(|t| !t.is_empty()) {
        Some(token) => token,
        None => {
            let token = flotilla_control::accounts::random_secret();
            announce_token(address, &token);
            token
        }
    };
    let config = args.mock.config(args.data_dir.join("mock"));
    let hypervisor = Hypervisor::open(config, token)
        .await
        .context("opening the mock hypervisor's installations")?;
    if !address.ip().is_loopback() {
        tracing::warn!(
            %address,
            "listening beyond this machine without https: put TLS in front (a reverse proxy) \
             and give control planes its https URL, or the token and the VMs' user data cross \
             the network in clear"
        );
    }
    tracing::info!(%address, "flotilla mock hypervisor serving");
    server::serve(Arc::new(hypervisor), listener, shutdown)
        .await
        .context("serving HTTP")?;
    tracing::info!("flotilla mock hypervisor stopped");
    Ok(())
}

/// Tells the operator, once, the token its control planes need (on standard output, never
/// in the log: logs travel further).
fn announce_token(address: std::net::SocketAddr, token: &str) {
    println!(
        "Generated the mock hypervisor's token (set FLOTILLA_MOCK_TOKEN to choose one): {token}\n\
         Start control planes with FLOTILLA_MOCK_TOKEN={token} flotilla serve --mock-url http://{address}"
    );
}
