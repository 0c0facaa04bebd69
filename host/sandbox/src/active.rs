//! The policy that is serving, and its replacement at run time.
//!
//! A candidate (the configured file, re-read on SIGHUP or when its size or
//! modification time changes) is compiled, then must pass the embedded
//! conformance corpus ([`crate::selftest`]) before it replaces the running
//! one in a single pointer swap; calls already under way finish on the old
//! one. A failing candidate is rejected with a log line and the old policy
//! keeps serving. When to reload is decided by the `watch` module.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use sha2::Digest;

use crate::sandbox::{Runtime, Sandbox, SandboxError};
use crate::selftest::{self, SelfTestError};

/// The policy component embedded at build time (`scripts/build-policy.sh`).
#[cfg(default_policy)]
const EMBEDDED: Option<&[u8]> = Some(include_bytes!(env!("MANGAASSIST_POLICY_WASM")));
#[cfg(not(default_policy))]
const EMBEDDED: Option<&[u8]> = None;

/// Where a policy component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// The component built into this binary.
    Embedded,
    /// A component file (re-read on reload).
    File(PathBuf),
}

impl fmt::Display for PolicySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicySource::Embedded => f.write_str("embedded"),
            PolicySource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read policy component {path}: {source}")]
    Read {
        /// The configured path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// This build has no embedded policy.
    #[error(
        "no policy component is embedded in this build: run scripts/build-policy.sh and \
         rebuild, or configure a policy component file"
    )]
    NotEmbedded,
    /// Refused by, or failed in, the sandbox.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// Failed the conformance corpus.
    #[error(transparent)]
    SelfTest(#[from] SelfTestError),
    /// Its `config` answer is not a configuration the core compiles: the
    /// host could not publish what it runs.
    #[error("the policy's configuration answer is unusable: {0}")]
    BadConfig(String),
}

impl LoadError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            LoadError::Read { .. } => "policy_unreadable",
            LoadError::NotEmbedded => "policy_not_embedded",
            LoadError::Sandbox(e) => e.code(),
            LoadError::SelfTest(e) => e.code(),
            LoadError::BadConfig(_) => "policy_bad_config",
        }
    }
}

/// A policy that passed its self-test.
pub struct LoadedPolicy {
    /// The running component.
    pub sandbox: Sandbox,
    /// What the component says its version is.
    pub version: String,
    /// SHA-256 of the component, hex.
    pub sha256: String,
    /// What the component says its configuration is (checked to compile),
    /// for the service to publish.
    pub config: mangaassist_core::policy::PolicyConfig,
    /// Where it came from.
    pub source: PolicySource,
}

impl LoadedPolicy {
    /// The first 16 hex digits of the hash, enough for logs.
    pub fn short_hash(&self) -> &str {
        self.sha256.get(..16).unwrap_or(&self.sha256)
    }
}

fn read(source: &PolicySource) -> Result<Vec<u8>, LoadError> {
    match source {
        PolicySource::Embedded => EMBEDDED.map(<[u8]>::to_vec).ok_or(LoadError::NotEmbedded),
        PolicySource::File(path) => std::fs::read(path).map_err(|e| LoadError::Read {
            path: path.clone(),
            source: e,
        }),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compiles `bytes` and runs the self-test: the only way to a [`LoadedPolicy`].
pub fn verify(
    runtime: &Runtime,
    bytes: &[u8],
    source: PolicySource,
) -> Result<LoadedPolicy, LoadError> {
    let mut sandbox = runtime.load(bytes)?;
    let version = sandbox.version()?;
    let config: mangaassist_core::policy::PolicyConfig =
        serde_json::from_str(&sandbox.config()?)
            .map_err(|e| LoadError::BadConfig(e.to_string()))?;
    let policy = mangaassist_core::policy::Policy::new(&config)
        .map_err(|e| LoadError::BadConfig(e.to_string()))?;
    let custom = (config != mangaassist_core::policy::PolicyConfig::default()).then_some(&policy);
    selftest::run(&mut sandbox, custom)?;
    Ok(LoadedPolicy {
        sandbox,
        version,
        sha256: sha256_hex(bytes),
        config,
        source,
    })
}

/// A policy that may serve: verified, then `ready` instances warmed up.
fn candidate(
    runtime: &Runtime,
    bytes: &[u8],
    source: PolicySource,
    ready: usize,
) -> Result<LoadedPolicy, LoadError> {
    let loaded = verify(runtime, bytes, source)?;
    loaded.sandbox.warm(ready)?;
    Ok(loaded)
}

/// What a reload did.
#[derive(Debug)]
pub enum Reload {
    /// The candidate passed and now serves.
    Swapped,
    /// The candidate is byte for byte the running policy.
    Unchanged,
    /// The candidate failed; the running policy keeps serving.
    Rejected(LoadError),
}

/// The serving policy, swappable while calls run.
pub struct ActivePolicy {
    runtime: Runtime,
    source: PolicySource,
    current: RwLock<Arc<LoadedPolicy>>,
    /// Instances made ready before a policy serves (at start and on swap).
    ready: usize,
}

impl ActivePolicy {
    /// Loads and self-tests the policy from `source`; logs version and hash.
    /// `ready` instances (at most [`crate::sandbox::MAX_IDLE`]) are warmed
    /// up before it serves, and before every swapped-in candidate serves.
    pub fn start(runtime: Runtime, source: PolicySource, ready: usize) -> Result<Self, LoadError> {
        let started = Instant::now();
        let bytes = read(&source)?;
        let loaded = candidate(&runtime, &bytes, source.clone(), ready)?;
        tracing::info!(
            source = %loaded.source,
            version = %loaded.version,
            sha256 = %loaded.short_hash(),
            ms = started.elapsed().as_millis() as u64,
            "policy loaded (passed its self-test)"
        );
        Ok(ActivePolicy {
            runtime,
            source,
            current: RwLock::new(Arc::new(loaded)),
            ready,
        })
    }

    /// Where candidates come from.
    pub fn source(&self) -> &PolicySource {
        &self.source
    }

    /// The policy serving now; hold it for one request.
    pub fn current(&self) -> Arc<LoadedPolicy> {
        // Only a pointer is written under the lock: a poisoned lock still holds a valid one.
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Re-reads the source; swaps in the candidate if it passes the self-test.
    pub fn reload(&self) -> Reload {
        let started = Instant::now();
        let old = self.current();
        let outcome = read(&self.source).and_then(|bytes| {
            if sha256_hex(&bytes) == old.sha256 {
                return Ok(None);
            }
            candidate(&self.runtime, &bytes, self.source.clone(), self.ready).map(Some)
        });
        match outcome {
            Ok(None) => {
                tracing::info!(source = %self.source, sha256 = %old.short_hash(), "policy unchanged");
                Reload::Unchanged
            }
            Ok(Some(new)) => {
                tracing::info!(
                    source = %new.source,
                    version = %new.version,
                    sha256 = %new.short_hash(),
                    old_version = %old.version,
                    old_sha256 = %old.short_hash(),
                    ms = started.elapsed().as_millis() as u64,
                    "policy swapped (candidate passed its self-test)"
                );
                *self
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(new);
                Reload::Swapped
            }
            Err(e) => {
                tracing::error!(
                    source = %self.source,
                    code = e.code(),
                    error = %e,
                    serving_version = %old.version,
                    serving_sha256 = %old.short_hash(),
                    "policy candidate rejected; the running policy keeps serving"
                );
                Reload::Rejected(e)
            }
        }
    }
}
