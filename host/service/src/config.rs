//! Service configuration (SPEC 8–10): built-in defaults, then a TOML file
//! (a base plus per-`MANGA_ENV` sections), then `MANGAASSIST_*` environment
//! overrides. Unknown keys are errors, so a typo cannot silently fall back to
//! a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use mangaassist_core::models::Catalog;
use mangaassist_sandbox::sandbox::MAX_IDLE;

use mangaassist_bedrock::profile::EnvProfile;

/// Where answers come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BedrockMode {
    /// The embedded emulator on a loopback port: offline, no credentials.
    Emulator,
    /// Amazon Bedrock with the default credential chain.
    Aws,
}

/// Everything `mangaassist serve` can be told.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// End-to-end budget of the synchronous path, ms (504 past it); also
    /// the time a client gets to send its request body (408 past it).
    pub sync_budget_ms: u64,
    /// Budget of a streamed (WebSocket) answer, ms.
    pub stream_budget_ms: u64,
    /// Largest request body, bytes (413 past it).
    pub max_body_bytes: usize,
    /// Overall requests per second, and burst.
    pub rate_per_second: u32,
    /// Overall burst.
    pub rate_burst: u32,
    /// Per-client requests per second (a known API key, else peer address).
    pub client_rate_per_second: u32,
    /// Per-client burst.
    pub client_rate_burst: u32,
    /// API keys (`X-Api-Key`) that identify a client of their own for the
    /// per-client limit. Any other key counts against the peer address, so
    /// sending made-up keys cannot get around the limit.
    pub api_keys: Vec<String>,
    /// Response cache TTL, seconds.
    pub cache_ttl_secs: u64,
    /// Response cache entries.
    pub cache_capacity: u64,
    /// Idle time after which a session is forgotten, seconds.
    pub session_ttl_secs: u64,
    /// Sessions kept at most.
    pub max_sessions: usize,
    /// Policy component file; none: the embedded one.
    pub policy_wasm: Option<PathBuf>,
    /// Per-call budget of the policy, ms.
    pub policy_call_timeout_ms: u64,
    /// Policy calls run at once (each on the blocking pool, with an
    /// instance made ready at start); requests beyond wait for a slot.
    pub policy_workers: usize,
    /// Memory cap of the policy, MiB.
    pub policy_max_memory_mib: usize,
    /// Emulator or AWS.
    pub bedrock: BedrockMode,
    /// Regions in priority order.
    pub regions: Vec<String>,
    /// Model key tried after every region failed the selected one.
    pub fallback_model: Option<String>,
    /// Longest silence between two events of a streamed answer once it has
    /// started, ms (its first event must come within the model's timeout).
    pub stream_idle_ms: u64,
    /// Models, prices and the selection rule (SPEC 8), as `[catalog]` in
    /// the core's camelCase field names.
    pub catalog: Catalog,
    /// The embedded emulator's time to first token, ms (emulator mode).
    pub emulator_ttft_ms: u64,
    /// The embedded emulator's time per token, ms (emulator mode).
    pub emulator_per_token_ms: u64,
    /// Directory served at `/` (the chat widget); none: no page.
    pub web_root: Option<PathBuf>,
    /// How long in-flight requests may take to finish at shutdown, ms.
    pub drain_ms: u64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            sync_budget_ms: 3_000,
            stream_budget_ms: 30_000,
            max_body_bytes: 64 * 1024,
            rate_per_second: 100,
            rate_burst: 200,
            client_rate_per_second: 20,
            client_rate_burst: 40,
            api_keys: Vec::new(),
            cache_ttl_secs: 300,
            cache_capacity: 10_000,
            session_ttl_secs: 1_800,
            max_sessions: 100_000,
            policy_wasm: None,
            policy_call_timeout_ms: 10,
            policy_workers: std::thread::available_parallelism()
                .map_or(2, usize::from)
                .min(mangaassist_sandbox::sandbox::MAX_IDLE),
            policy_max_memory_mib: 64,
            bedrock: BedrockMode::Emulator,
            regions: vec![
                "us-east-1".into(),
                "us-west-2".into(),
                "ap-northeast-1".into(),
            ],
            fallback_model: Some("haiku".into()),
            stream_idle_ms: 5_000,
            catalog: Catalog::spec_default(),
            emulator_ttft_ms: 150,
            emulator_per_token_ms: 8,
            web_root: Some(PathBuf::from("web-demo")),
            drain_ms: 10_000,
        }
    }
}

/// A configuration file: base settings and per-environment overrides
/// (`[env.prod]` and so on), applied in that order.
/// (Unknown keys are caught when the merged table becomes a [`ServiceConfig`].)
#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(flatten)]
    base: toml::Table,
    #[serde(default)]
    env: BTreeMap<String, toml::Table>,
}

/// The resolved configuration and the client profile of its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// `MANGA_ENV` (dev when unset).
    pub environment: String,
    /// Service settings.
    pub service: ServiceConfig,
    /// Bedrock client settings of the environment (SPEC 9).
    pub profile: EnvProfile,
}

/// Resolves defaults ← `file_text` (base, then `[env.<environment>]`) ←
/// `overrides` (`MANGAASSIST_<KEY>` variables, key upper-cased).
pub fn resolve(
    environment: &str,
    file_text: Option<&str>,
    overrides: &[(String, String)],
) -> Result<Resolved, String> {
    let profile = EnvProfile::named(environment)?;
    // Missing keys take ServiceConfig::default() (serde(default)).
    let mut table = toml::Table::new();
    if let Some(text) = file_text {
        let file: File = toml::from_str(text).map_err(|e| format!("configuration file: {e}"))?;
        if let Some(unknown) = file.env.keys().find(|k| EnvProfile::named(k).is_err()) {
            return Err(format!(
                "configuration file: [env.{unknown}] is not an environment: expected dev, staging or prod"
            ));
        }
        merge(&mut table, file.base);
        if let Some(section) = file.env.get(environment) {
            merge(&mut table, section.clone());
        }
    }
    for (name, value) in overrides {
        let Some(key) = name.strip_prefix("MANGAASSIST_") else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        if key == "log" {
            continue;
        }
        // Parse as a TOML value (numbers, arrays), else take the text.
        let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.clone()));
        table.insert(key, parsed);
    }
    let service: ServiceConfig = table
        .try_into()
        .map_err(|e: toml::de::Error| format!("configuration: {e}"))?;
    if service.regions.is_empty() {
        return Err("configuration: regions must name at least one region".into());
    }
    check_bounds(&service)?;
    service
        .catalog
        .validate()
        .map_err(|e| format!("configuration: catalog: {e}"))?;
    if let Some(fallback) = &service.fallback_model {
        service
            .catalog
            .get(fallback)
            .map_err(|e| format!("configuration: fallback_model: {e}"))?;
    }
    Ok(Resolved {
        environment: environment.to_string(),
        service,
        profile,
    })
}

/// Longest time any setting may name: a day. Far beyond any sane value,
/// and far below where adding it to a clock reading could overflow.
const MAX_MS: u64 = 24 * 60 * 60 * 1000;

/// Refuses values the service could not use: zero where something must
/// run, and times that would overflow a deadline (`now + budget`).
fn check_bounds(c: &ServiceConfig) -> Result<(), String> {
    let times = [
        ("sync_budget_ms", c.sync_budget_ms),
        ("stream_budget_ms", c.stream_budget_ms),
        ("stream_idle_ms", c.stream_idle_ms),
        ("policy_call_timeout_ms", c.policy_call_timeout_ms),
        ("drain_ms", c.drain_ms),
        ("emulator_ttft_ms", c.emulator_ttft_ms),
        ("emulator_per_token_ms", c.emulator_per_token_ms),
        ("cache_ttl_secs", c.cache_ttl_secs.saturating_mul(1000)),
        ("session_ttl_secs", c.session_ttl_secs.saturating_mul(1000)),
    ];
    let models = c
        .catalog
        .models
        .iter()
        .map(|(key, m)| (format!("catalog.models.{key}.timeoutMs"), m.timeout_ms));
    for (key, ms) in times
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(models)
    {
        if ms > MAX_MS {
            return Err(format!(
                "configuration: {key} = {ms} is over the limit of {MAX_MS} ms (one day)"
            ));
        }
    }
    let at_least_one = [
        ("sync_budget_ms", c.sync_budget_ms),
        ("stream_budget_ms", c.stream_budget_ms),
        ("stream_idle_ms", c.stream_idle_ms),
        ("policy_call_timeout_ms", c.policy_call_timeout_ms),
        ("policy_workers", c.policy_workers as u64),
        ("policy_max_memory_mib", c.policy_max_memory_mib as u64),
    ];
    if let Some((key, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
        return Err(format!("configuration: {key} must be at least 1"));
    }
    if c.policy_workers > MAX_IDLE {
        return Err(format!(
            "configuration: policy_workers = {} is over the limit of {MAX_IDLE} (ready instances a policy keeps)",
            c.policy_workers
        ));
    }
    if c.policy_max_memory_mib > 4096 {
        return Err(format!(
            "configuration: policy_max_memory_mib = {} is over the limit of 4096 (a 32-bit guest's whole address space)",
            c.policy_max_memory_mib
        ));
    }
    Ok(())
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (k, v) in from {
        into.insert(k, v);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn defaults_follow_the_spec() {
        let r = resolve("dev", None, &[]).unwrap();
        assert_eq!(r.service, ServiceConfig::default());
        assert_eq!(r.profile, EnvProfile::DEV);
        assert_eq!(r.service.max_body_bytes, 65_536);
        assert_eq!(
            (r.service.rate_per_second, r.service.rate_burst),
            (100, 200)
        );
        assert_eq!(r.service.cache_ttl_secs, 300);
    }

    #[test]
    fn file_then_environment_section_then_variables() {
        let text = r#"
            rate_per_second = 50
            bedrock = "aws"
            [env.prod]
            rate_per_second = 500
            regions = ["ap-northeast-1", "us-east-1"]
        "#;
        let dev = resolve("dev", Some(text), &[]).unwrap();
        assert_eq!(dev.service.rate_per_second, 50);
        assert_eq!(dev.service.bedrock, BedrockMode::Aws);
        let prod = resolve(
            "prod",
            Some(text),
            &[
                ("MANGAASSIST_RATE_BURST".into(), "900".into()),
                ("MANGAASSIST_LISTEN".into(), "0.0.0.0:9000".into()),
                (
                    "MANGAASSIST_API_KEYS".into(),
                    r#"["shop-1", "shop-2"]"#.into(),
                ),
                ("OTHER".into(), "x".into()),
            ],
        )
        .unwrap();
        assert_eq!(prod.service.api_keys, ["shop-1", "shop-2"]);
        assert_eq!(prod.service.rate_per_second, 500);
        assert_eq!(prod.service.rate_burst, 900);
        assert_eq!(prod.service.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(prod.service.regions, ["ap-northeast-1", "us-east-1"]);
        assert_eq!(prod.profile, EnvProfile::PROD);
    }

    #[test]
    fn times_that_would_overflow_a_deadline_are_refused() {
        for (key, value) in [
            ("sync_budget_ms", "18446744073709551615"),
            ("stream_budget_ms", "18446744073709551615"),
            ("policy_call_timeout_ms", "18446744073709551615"),
            ("drain_ms", "86400001"),
            ("cache_ttl_secs", "18446744073709551615"),
        ] {
            let e = resolve("dev", Some(&format!("{key} = {value}")), &[]);
            // toml integers are i64: the largest u64 is refused by the parser.
            let e = e.unwrap_err();
            assert!(e.contains(key) || e.contains("out of range"), "{key}: {e}");
        }
        let e = resolve(
            "dev",
            None,
            &[(
                "MANGAASSIST_SYNC_BUDGET_MS".into(),
                "9223372036854775807".into(),
            )],
        )
        .unwrap_err();
        assert!(e.contains("sync_budget_ms") && e.contains("one day"), "{e}");
        let e = resolve("dev", Some("policy_workers = 100000000000"), &[]).unwrap_err();
        assert!(
            e.contains("policy_workers") && e.contains("limit of 16"),
            "{e}"
        );
        let e = resolve("dev", Some("policy_call_timeout_ms = 0"), &[]).unwrap_err();
        assert!(
            e.contains("policy_call_timeout_ms must be at least 1"),
            "{e}"
        );
        assert!(resolve("dev", Some("drain_ms = 86400000"), &[]).is_ok());
    }

    #[test]
    fn mistakes_are_named() {
        let e = resolve("dev", Some("rate_per_secnd = 5"), &[]).unwrap_err();
        assert!(e.contains("rate_per_secnd"), "{e}");
        let e = resolve("dev", Some("rate_burst = \"many\""), &[]).unwrap_err();
        assert!(
            e.contains("rate_burst") || e.contains("invalid type"),
            "{e}"
        );
        let e = resolve("dev", Some("[env.production]\nrate_burst = 1"), &[]).unwrap_err();
        assert!(e.contains("[env.production]"), "{e}");
        let e = resolve("qa", None, &[]).unwrap_err();
        assert!(e.contains("dev, staging or prod"), "{e}");
        let e = resolve("dev", Some("regions = []"), &[]).unwrap_err();
        assert!(e.contains("at least one region"), "{e}");
        let e = resolve(
            "dev",
            None,
            &[("MANGAASSIST_BEDROCK".into(), "azure".into())],
        )
        .unwrap_err();
        assert!(e.contains("azure") || e.contains("unknown variant"), "{e}");
    }
}
