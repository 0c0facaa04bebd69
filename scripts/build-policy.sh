#!/usr/bin/env bash
# Builds the policy component (wasm/component crate, world wasm/component/wit/world.wit)
# into wasm/component/dist/policy.wasm, which host/sandbox embeds as its default policy.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# Speed, not size, on the server: opt-level 3 and wasm SIMD (memchr's
# simd128 paths; wasmtime supports SIMD by default).
core=$(WASM_PROFILE=policy-release WASM_RUSTFLAGS="-C target-feature=+simd128" \
  bash scripts/wasm32-build.sh mangaassist-policy)
mkdir -p wasm/component/dist
echo "==> wasm-tools component new" >&2
wasm-tools component new "$core" -o wasm/component/dist/policy.wasm.tmp
wasm-tools validate wasm/component/dist/policy.wasm.tmp
mv wasm/component/dist/policy.wasm.tmp wasm/component/dist/policy.wasm
echo "==> wasm/component/dist/policy.wasm: $(wc -c < wasm/component/dist/policy.wasm) bytes, sha256 $(sha256sum wasm/component/dist/policy.wasm | cut -c1-16)" >&2
