//! A sandboxed answer as the JSON line every engine gives (SPEC 11): what
//! `check --engine wasm` prints and what the self-test compares with the
//! corpus, so both see the same bytes.

use mangaassist_core::api::{CacheKeyReport, ErrorReport, json_line as line};

use crate::sandbox::{GuestFailure, Sandbox, SandboxError};

fn sandbox_error(e: &SandboxError) -> String {
    ErrorReport::new(e.code(), &e.to_string()).to_json()
}

fn guest_failure(f: &GuestFailure) -> String {
    ErrorReport::new(&f.code, &f.message).to_json()
}

/// `check` of one message.
pub fn check(sandbox: &Sandbox, message: &str) -> String {
    match sandbox.check(message) {
        Ok(report) => line(&report),
        Err(e) => sandbox_error(&e),
    }
}

/// `cache-key` of a body's JSON text (the guest parses it).
pub fn cache_key(sandbox: &Sandbox, body_json: &str) -> String {
    match sandbox.cache_key(body_json) {
        Ok(Ok(key)) => line(&CacheKeyReport { cache_key: key }),
        Ok(Err(f)) => guest_failure(&f),
        Err(e) => sandbox_error(&e),
    }
}

/// SPEC 2 violations of a request's JSON text.
pub fn contract(sandbox: &Sandbox, request_json: &str) -> String {
    match sandbox.validate_request(request_json) {
        Ok(Ok(violations)) => line(&violations),
        Ok(Err(f)) => guest_failure(&f),
        Err(e) => sandbox_error(&e),
    }
}

/// The service's decision on a chat request's JSON text.
pub fn screen(sandbox: &Sandbox, request_json: &str) -> String {
    match sandbox.screen(request_json) {
        Ok(screening) => line(&screening),
        Err(e) => sandbox_error(&e),
    }
}
