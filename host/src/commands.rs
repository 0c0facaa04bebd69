//! One function per subcommand: parse a line, ask the core, serialize the answer.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use crate::active_policy::ActivePolicy;
use crate::sandbox::Sandbox;
use mangaassist_core::api::{
    BodyInput, CacheKeyReport, CheckInput, ErrorReport, body_report, cache_key_report, check_report,
};
use mangaassist_core::models::Catalog;
use mangaassist_core::policy::{Policy, PolicyConfig};
use mangaassist_core::schema::request_schema;
use serde::Serialize;
use serde_json::Value;

/// `{"error":{"code":...,"message":...}}` (the SPEC 10 error shape).
pub fn error_line(code: &str, message: &str) -> String {
    serde_json::to_string(&ErrorReport::new(code, message)).unwrap_or_else(|_| {
        r#"{"error":{"code":"internal","message":"error report failed to serialize"}}"#.to_string()
    })
}

fn parse_error(e: &serde_json::Error) -> String {
    let code = match e.classify() {
        serde_json::error::Category::Data => "invalid_input",
        _ => "invalid_json",
    };
    error_line(code, &e.to_string())
}

fn to_line<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| error_line("internal", &e.to_string()))
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
            Check::Wasm(active) => check_wasm(&active.current().sandbox, &input.message),
        }
    }
}

/// `check --engine wasm` of one message.
pub fn check_wasm(sandbox: &Sandbox, message: &str) -> String {
    match sandbox.check(message) {
        Ok(answer) => to_line(&answer),
        Err(e) => error_line(e.code(), &e.to_string()),
    }
}

/// `cache-key --engine wasm`: the guest parses the line itself.
pub fn cache_key_wasm(sandbox: &Sandbox, line: &str) -> String {
    match sandbox.cache_key(line) {
        Ok(Ok(key)) => to_line(&CacheKeyReport { cache_key: key }),
        Ok(Err(f)) => error_line(&f.code, &f.message),
        Err(e) => error_line(e.code(), &e.to_string()),
    }
}

/// SPEC 2 violations of a request's JSON text, through the policy component.
pub fn validate_wasm(sandbox: &Sandbox, line: &str) -> String {
    match sandbox.validate_request(line) {
        Ok(Ok(violations)) => to_line(&violations),
        Ok(Err(f)) => error_line(&f.code, &f.message),
        Err(e) => error_line(e.code(), &e.to_string()),
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
