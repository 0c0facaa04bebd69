#!/usr/bin/env bash
# Sets up, builds and runs `mangaassist` (release build).
#   scripts/run.sh                 # the chat service on http://127.0.0.1:8080/, offline
#                                  # (embedded Bedrock emulator; no AWS account needed)
#   scripts/run.sh serve --listen 0.0.0.0:8080 --config mangaassist.toml
#   scripts/run.sh check < in.jsonl | body | cache-key | schema | emulator
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
echo "==> setting up (toolchains, policy component); the first run takes a while" >&2
bash scripts/setup.sh >/dev/null
# The policy component the service runs in wasmtime (embedded in the binary).
bash scripts/build-policy.sh
# The chat page at / uses the npm package (wasm/pkg) through web-demo/.
bash scripts/build-wasm.sh
bash scripts/build-web-demo.sh
echo "==> building mangaassist (release)" >&2
cargo build --release --locked -q -p mangaassist
bin="$CARGO_TARGET_DIR/release/mangaassist"
if [ "$#" -gt 0 ]; then
  exec "$bin" "$@"
fi
echo "==> starting the service (Ctrl-C stops it): open http://127.0.0.1:8080/ or try" >&2
echo "    curl -s localhost:8080/v1/chat -H 'Content-Type: application/json' \\" >&2
echo "      -d '{\"action\":\"sendMessage\",\"data\":{\"message\":\"ワンピースの最新刊はありますか？\"}}'" >&2
exec "$bin" serve
