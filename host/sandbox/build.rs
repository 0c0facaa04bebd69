//! Embeds `wasm/component/dist/policy.wasm` (made by `scripts/build-policy.sh`) as the
//! default policy when it exists; without it the wasm engine needs
//! `--policy-wasm` and says so.

use std::path::PathBuf;

fn main() {
    // Read at run time, not baked in at compile time: a build-script binary
    // reused from a clone at another path (shared target dir) must still
    // look at this clone's file.
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let policy = manifest.join("../../wasm/component/dist/policy.wasm");
    println!("cargo::rustc-check-cfg=cfg(default_policy)");
    println!("cargo::rerun-if-changed={}", policy.display());
    if policy.exists() {
        println!("cargo::rustc-cfg=default_policy");
        println!(
            "cargo::rustc-env=MANGAASSIST_POLICY_WASM={}",
            policy.display()
        );
    }
}
