#!/usr/bin/env bash
# Sets up, builds and runs `mangaassist` (release build).
#   scripts/run.sh                 # demo: a few chat messages through `check`
#   scripts/run.sh check < in.jsonl
#   scripts/run.sh body | cache-key | schema
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh >/dev/null
cargo build --release --locked -q -p mangaassist
bin="$CARGO_TARGET_DIR/release/mangaassist"
if [ "$#" -gt 0 ]; then
  exec "$bin" "$@"
fi
echo "demo: mangaassist check (one JSON line in, one JSON line out)" >&2
"$bin" check <<'JSONL'
{"message":"こんにちは！『鬼滅の刃』の最新巻はありますか？"}
{"message":"  か\u3099んは\u309aる\u200b  "}
{"message":"<script>alert(1)</script>"}
{"message":"漫画 Привет"}
not json
JSONL
