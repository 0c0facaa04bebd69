#!/usr/bin/env bash
# Builds the policy component (wasm/component crate, world wasm/component/wit/world.wit)
# into wasm/component/dist/policy.wasm, which host/sandbox embeds as its default policy.
#
#   scripts/build-policy.sh [--config FILE.json] [--out PATH]
#
# --config builds a policy with another configuration (the core's
# PolicyConfig as JSON, e.g. {"disallowedPatterns": [...]}) built in; it
# answers that configuration from its `config` export, and a service
# running it publishes it at GET /v1/policy.
set -euo pipefail
usage() { echo "usage: scripts/build-policy.sh [--config FILE.json] [--out PATH]" >&2; exit 2; }
config=""
out=""
# Paths are taken as given, relative to where the script was called from.
while [ $# -gt 0 ]; do
  case $1 in
    --config) [ $# -ge 2 ] || usage; config=$(realpath -m -- "$2"); shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out=$(realpath -m -- "$2"); shift 2 ;;
    *) usage ;;
  esac
done
cd "$(dirname "$0")/.."
source scripts/env.sh
out=${out:-$PWD/wasm/component/dist/policy.wasm}
if [ -n "$config" ]; then
  python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$config" ||
    { echo "build-policy: $config is not JSON" >&2; exit 1; }
  export MANGA_POLICY_BUILD_CONFIG="$(cat "$config")"
else
  unset MANGA_POLICY_BUILD_CONFIG
fi
# Speed, not size, on the server: opt-level 3 and wasm SIMD (memchr's
# simd128 paths; wasmtime supports SIMD by default).
core=$(WASM_PROFILE=policy-release WASM_RUSTFLAGS="-C target-feature=+simd128" \
  bash scripts/wasm32-build.sh mangaassist-policy)
mkdir -p "$(dirname "$out")"
echo "==> wasm-tools component new" >&2
wasm-tools component new "$core" -o "$out.tmp"
wasm-tools validate "$out.tmp"
mv "$out.tmp" "$out"
echo "==> $out: $(wc -c < "$out") bytes, sha256 $(sha256sum "$out" | cut -c1-16)" >&2
