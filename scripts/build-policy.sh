#!/usr/bin/env bash
# Builds the policy component (policy/ crate, world policy/wit/world.wit)
# into policy/dist/policy.wasm, which the host embeds as its default policy.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# Speed, not size, on the server: opt-level 3 and wasm SIMD (memchr's
# simd128 paths; wasmtime supports SIMD by default).
core=$(WASM_PROFILE=policy-release WASM_RUSTFLAGS="-C target-feature=+simd128" \
  bash scripts/wasm32-build.sh mangaassist-policy)
mkdir -p policy/dist
echo "==> wasm-tools component new" >&2
wasm-tools component new "$core" -o policy/dist/policy.wasm.tmp
wasm-tools validate policy/dist/policy.wasm.tmp
mv policy/dist/policy.wasm.tmp policy/dist/policy.wasm
echo "==> policy/dist/policy.wasm: $(wc -c < policy/dist/policy.wasm) bytes, sha256 $(sha256sum policy/dist/policy.wasm | cut -c1-16)" >&2
