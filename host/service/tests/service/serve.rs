//! The service in-process on a loopback port, with its embedded emulator.

use std::net::SocketAddr;
use std::path::PathBuf;

use mangaassist_service::config::resolve;
use mangaassist_service::server::{Server, start};

/// A running service and the runtime that drives it.
pub struct Running {
    /// Kept alive for the server's tasks.
    pub runtime: tokio::runtime::Runtime,
    /// The server (None once shut down).
    pub server: Option<Server>,
}

impl Running {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().addr()
    }

    /// The admin listener's address.
    pub fn admin(&self) -> SocketAddr {
        self.server().admin_addr().unwrap()
    }

    /// The server.
    pub fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    /// Graceful shutdown.
    pub fn shutdown(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A directory of its own for one test server's job queue and store.
pub fn jobs_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("mangaassist-service-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Test defaults (port 0, no emulator latency, generous rate limits, the
/// repository's web-demo/, a jobs_dir of its own) plus `extra` TOML lines,
/// which win.
pub fn serve(extra: &str) -> Running {
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web-demo");
    let defaults = format!(
        "listen = \"127.0.0.1:0\"\nemulator_ttft_ms = 0\nemulator_per_token_ms = 0\n\
         rate_per_second = 100000\nrate_burst = 100000\nclient_rate_per_second = 100000\n\
         client_rate_burst = 100000\nweb_root = {:?}\nadmin_listen = \"127.0.0.1:0\"\n\
         budget_tokens_per_minute = 100000000\nbudget_usd_per_day = 100000.0\njobs_dir = {:?}\n",
        web.display().to_string(),
        jobs_dir().display().to_string()
    );
    // `extra` wins: drop the default lines of keys it sets, then append it
    // (defaults first, so sections in `extra` do not swallow them).
    let set: toml::Table = toml::from_str(extra).unwrap();
    let mut text: String = defaults
        .lines()
        .filter(|l| {
            l.split('=')
                .next()
                .is_none_or(|k| !set.contains_key(k.trim()))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(extra);
    let resolved = resolve("dev", Some(&text), &[]).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(start(resolved)).unwrap();
    Running {
        runtime,
        server: Some(server),
    }
}
