//! The long-running subcommands: `serve` (configuration from the file and
//! the environment, then the service until a signal) and `emulator`.

use std::path::Path;

use mangaassist_emulator::{self as emulator, EmulatorConfig};
use mangaassist_service as service;

/// `serve`: MANGA_ENV, the configuration file and MANGAASSIST_* variables,
/// then the service until SIGTERM or Ctrl-C, then a graceful drain.
pub fn run_service(
    listen: Option<std::net::SocketAddr>,
    config: Option<&Path>,
) -> Result<(), String> {
    let environment = std::env::var("MANGA_ENV").unwrap_or_else(|_| "dev".to_string());
    let file_text = match config {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read configuration file {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let overrides: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("MANGAASSIST_"))
        .collect();
    let mut resolved = service::config::resolve(&environment, file_text.as_deref(), &overrides)?;
    if let Some(listen) = listen {
        resolved.service.listen = listen;
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start tokio: {e}"))?;
    runtime.block_on(async {
        let server = service::server::start(resolved).await?;
        println!("mangaassist listening on http://{}/", server.addr());
        shutdown_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
        server.shutdown().await;
        Ok(())
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

/// `emulator`: serves until Ctrl-C.
pub fn run_emulator(config: EmulatorConfig, listen: std::net::SocketAddr) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start tokio: {e}"))?;
    runtime.block_on(async {
        let handle = emulator::start(listen, config)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        tracing::info!(
            endpoint = %handle.endpoint(),
            "Bedrock emulator listening (emulated replies, not Bedrock); Ctrl-C stops it"
        );
        tracing::info!(
            control = %handle.control_endpoint(),
            token = %handle.control_token(),
            "control API on loopback only; send Authorization: Bearer <token>"
        );
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
        handle.shutdown().await;
        Ok(())
    })
}
