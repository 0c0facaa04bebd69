//! One function per subcommand: parse a line, ask the core, serialize the answer.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use mangaassist_core::api::{
    BodyInput, CheckInput, ErrorReport, body_report, cache_key_report, check_report,
    json_line as to_line,
};
use mangaassist_core::models::Catalog;
use mangaassist_core::policy::{Policy, PolicyConfig};
use mangaassist_core::schema::request_schema;
use mangaassist_sandbox::{ActivePolicy, answers};
use mangaassist_service::identity;
use serde_json::Value;

fn parse_error(e: &serde_json::Error) -> String {
    let code = match e.classify() {
        serde_json::error::Category::Data => "invalid_input",
        _ => "invalid_json",
    };
    ErrorReport::new(code, &e.to_string()).to_json()
}

/// `check`: the SPEC 3 checks, sanitize and estimate.
pub enum Check {
    /// The core linked in.
    Native(Policy),
    /// The policy component in wasmtime (swappable while running).
    Wasm(Arc<ActivePolicy>),
}

impl Check {
    /// Compiles the policy (from `path`, or SPEC's) once for the whole run.
    pub fn native(path: Option<&Path>) -> Result<Self, String> {
        let config = match path {
            None => PolicyConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read policy file {}: {e}", path.display()))?;
                serde_json::from_str(&text).map_err(|e| {
                    format!("policy file {} is not a valid policy: {e}", path.display())
                })?
            }
        };
        let policy = Policy::new(&config).map_err(|e| match path {
            Some(path) => format!("policy file {}: {e}", path.display()),
            None => e.to_string(),
        })?;
        Ok(Check::Native(policy))
    }

    /// Answers one input line.
    pub fn answer(&self, line: &str) -> String {
        let input = match serde_json::from_str::<CheckInput>(line) {
            Ok(input) => input,
            Err(e) => return parse_error(&e),
        };
        match self {
            Check::Native(policy) => to_line(&check_report(policy, &input.message)),
            Check::Wasm(active) => answers::check(&active.current().sandbox, &input.message),
        }
    }
}

/// `cache-key`: the SPEC 7 key of a Claude body.
pub fn cache_key(line: &str) -> String {
    match serde_json::from_str::<Value>(line) {
        Ok(body) => match cache_key_report(&body) {
            Ok(report) => to_line(&report),
            Err(e) => to_line(&ErrorReport::from(&e)),
        },
        Err(e) => parse_error(&e),
    }
}

/// `body`: model selection, the Claude body and its cache key.
pub struct Body {
    catalog: Catalog,
}

impl Body {
    /// Uses the SPEC 8 catalog.
    pub fn new() -> Result<Self, String> {
        let catalog = Catalog::spec_default();
        catalog.validate().map_err(|e| e.to_string())?;
        Ok(Body { catalog })
    }

    /// Answers one input line.
    pub fn answer(&self, line: &str) -> String {
        match serde_json::from_str::<BodyInput>(line) {
            Ok(input) => match body_report(&self.catalog, &input) {
                Ok(report) => to_line(&report),
                Err(e) => to_line(&ErrorReport::from(&e)),
            },
            Err(e) => parse_error(&e),
        }
    }
}

/// `schema`: the draft-04 JSON Schema, pretty-printed.
pub fn print_schema(mut out: impl Write) -> io::Result<()> {
    let text = serde_json::to_string_pretty(&request_schema()).map_err(io::Error::other)?;
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// `hash-key`: one API key per line → `{"sha256": "<hex>"}`.
pub fn hash_key(line: &str) -> String {
    let key = line.trim_end_matches('\r');
    if key.is_empty() {
        return ErrorReport::new("empty_key", "the line holds no key").to_json();
    }
    mangaassist_core::api::json_line(&serde_json::json!({ "sha256": identity::hash_key(key) }))
}

/// `user-token`: the secret on stdin (so it stays out of `ps`), a token
/// for `subject` valid `ttl_secs` on stdout.
pub fn user_token(
    mut reader: impl io::BufRead,
    mut out: impl Write,
    subject: &str,
    ttl_secs: u64,
) -> Result<(), String> {
    let mut secret = String::new();
    reader
        .read_line(&mut secret)
        .map_err(|e| format!("cannot read the secret on stdin: {e}"))?;
    let secret = secret.trim_end_matches(['\r', '\n']);
    if secret.len() < 32 {
        return Err(format!(
            "the secret on stdin has {} bytes; user_token_secrets need at least 32",
            secret.len()
        ));
    }
    if subject.is_empty() || subject.len() > 128 {
        return Err("--subject must have 1 to 128 bytes".into());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| format!("the clock is before 1970: {e}"))?
        .as_secs();
    let claims = identity::Claims {
        sub: subject.to_string(),
        exp: now.saturating_add(ttl_secs),
        iat: Some(now),
    };
    let token = identity::mint(secret.as_bytes(), &claims)?;
    writeln!(out, "{token}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write the token: {e}"))
}
