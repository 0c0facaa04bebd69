//! Policy components for tests: hostile ones written in the component text
//! format, and the built policy. Shared by the sandbox's tests and the
//! command line's (`#[path]`-included there).
#![allow(dead_code, reason = "each test crate uses a subset")]

use std::path::PathBuf;

/// The hand-written component shell (`shell.wat`) with `check_body`
/// run at the start of `check`, after `edit` of the text.
pub fn component_with(check_body: &str, edit: impl Fn(String) -> String) -> Vec<u8> {
    let shell = include_str!("shell.wat");
    let text = edit(shell.replace("{{CHECK}}", check_body));
    wat::parse_str(&text).expect("test component text parses")
}

/// The shell with `check_body`, interface untouched.
pub fn component(check_body: &str) -> Vec<u8> {
    component_with(check_body, |t| t)
}

/// Runs `body` for every message but the warm-up call (length 7).
pub fn unless_warm_up(body: &str) -> String {
    format!("(if (i32.ne (local.get 1) (i32.const 7)) (then {body}))")
}

/// The policy component the build embeds (`scripts/build-policy.sh`).
pub fn built_policy() -> Vec<u8> {
    built_component("policy.wasm")
}

/// A component of `wasm/component/dist/` (`scripts/test.sh` builds the ones
/// of `tests/policies/` there as `policy-<name>.wasm`).
pub fn built_component(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../wasm/component/dist")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run scripts/build-policy.sh first, or scripts/test.sh for the test policies)",
            path.display()
        )
    })
}

/// `bytes` with a custom section appended: same behaviour, another hash.
pub fn with_custom_section(mut bytes: Vec<u8>, name: &str, payload: &[u8]) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut content = Vec::new();
    leb(name.len(), &mut content);
    content.extend_from_slice(name.as_bytes());
    content.extend_from_slice(payload);
    bytes.push(0);
    leb(content.len(), &mut bytes);
    bytes.extend_from_slice(&content);
    bytes
}
