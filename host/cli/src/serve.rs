//! The long-running subcommands: `serve` (configuration from the file, SSM
//! and the environment, then the service until a signal) and `emulator`.

use std::path::Path;
use std::time::Duration;

use mangaassist_emulator::{self as emulator, EmulatorConfig};
use mangaassist_service as service;
use service::config::Resolved;

/// `serve`: MANGA_ENV, the configuration file, SSM Parameter Store when
/// asked, and MANGAASSIST_* variables, then the service until SIGTERM or
/// Ctrl-C, then a graceful drain. SIGHUP reads the file and SSM again (the
/// environment is the process's, fixed at start).
pub fn run_service(
    listen: Option<std::net::SocketAddr>,
    config: Option<&Path>,
) -> Result<(), String> {
    let environment = std::env::var("MANGA_ENV").unwrap_or_else(|_| "dev".to_string());
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start tokio: {e}"))?;
    runtime.block_on(async {
        let mut resolved = configuration(&environment, config).await?;
        if let Some(listen) = listen {
            resolved.service.listen = listen;
        }
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let server = service::server::start(resolved).await?;
        println!("mangaassist listening on http://{}/", server.addr());
        let stop = shutdown_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                Some(()) = async {
                    match hangup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    // A slow SSM must not hold up a shutdown.
                    tokio::select! {
                        _ = &mut stop => break,
                        again = configuration(&environment, config) => match again {
                            Ok(again) => server.reload(&again),
                            Err(e) => tracing::error!(error = %e, "configuration read again is not valid: the running one is kept"),
                        },
                    }
                }
            }
        }
        tracing::info!("shutting down: draining in-flight requests");
        server.shutdown().await;
        Ok(())
    })
}

/// Longest wait for SSM Parameter Store at start or reload.
const SSM_TIMEOUT: Duration = Duration::from_secs(10);

/// Defaults ← the file ← SSM Parameter Store (when `ssm_parameters` is on)
/// ← MANGAASSIST_* variables, checked.
pub(crate) async fn configuration(
    environment: &str,
    path: Option<&Path>,
) -> Result<Resolved, String> {
    let file_text = match path {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read configuration file {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let overrides: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("MANGAASSIST_"))
        .collect();
    let file_text = file_text.as_deref();
    let ssm = if service::config::wants_ssm(environment, file_text, &overrides)? {
        let sdk = service::aws_stores::sdk_config(SSM_TIMEOUT).await?;
        let prefix = service::ssm_config::path(environment);
        let parameters =
            service::ssm_config::fetch(&service::aws_stores::ssm(&sdk), &prefix).await?;
        tracing::info!(
            count = parameters.len(),
            path = prefix,
            "settings read from SSM Parameter Store"
        );
        Some(service::ssm_config::layer(&prefix, &parameters)?)
    } else {
        None
    };
    service::config::resolve_layers(environment, file_text, ssm.as_ref(), &overrides)
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
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
