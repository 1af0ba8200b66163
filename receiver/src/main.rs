//! `data-platform`: the local data-platform receiver as a process (see the `receiver` crate).

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

const DEFAULT_URL: &str = "http://127.0.0.1:8090/events";

/// The local stand-in for the external data platform: records `POST /events` by
/// `Idempotency-Key`, lists them at `GET /events`, and fails on request (`POST /control/fail`).
#[derive(Debug, Parser)]
#[command(name = "data-platform", version)]
struct Args {
    /// Address to listen on (`host:port`). Default: the host and port of `DATA_PLATFORM_URL`
    /// (itself defaulting to http://127.0.0.1:8090/events).
    #[arg(long, env = "DATA_PLATFORM_ADDR")]
    addr: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    let args = Args::parse();
    let addr = match args.addr.filter(|a| !a.trim().is_empty()) {
        Some(a) => a,
        None => {
            let url = std::env::var("DATA_PLATFORM_URL")
                .ok()
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_URL.to_owned());
            receiver::host_port_of_url(&url)
                .with_context(|| format!("DATA_PLATFORM_URL={url:?} has no host:port"))?
        }
    };
    let addr: SocketAddr = tokio::net::lookup_host(addr.as_str())
        .await
        .with_context(|| format!("cannot resolve listen address {addr:?}"))?
        .next()
        .with_context(|| format!("listen address {addr:?} resolves to nothing"))?;

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(events = %format!("http://{bound}/events"), "data-platform receiver listening");

    receiver::serve(listener, receiver::ReceiverState::new(), shutdown_signal())
        .await
        .context("server error")?;
    tracing::info!("data-platform receiver stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = term => tracing::info!("SIGTERM received, shutting down"),
    }
}
