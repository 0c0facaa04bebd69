#!/usr/bin/env bash
# Links the npm package (wasm/pkg, from scripts/build-wasm.sh) into
# web-demo/node_modules, where the page imports it; `mangaassist serve`
# serves web-demo/ at /.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f wasm/pkg/package.json ] || { echo "build-web-demo: wasm/pkg is missing: run scripts/build-wasm.sh first" >&2; exit 1; }
(cd web-demo && npm install --no-audit --no-fund --silent)
echo "==> web-demo/ ready: $(du -shL web-demo/node_modules/mangaassist/web | cut -f1) of package files" >&2
