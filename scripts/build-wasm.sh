#!/usr/bin/env bash
# Builds the npm package into wasm/pkg/ (and a tarball with --pack).
# scripts/setup.sh installs the tools; scripts/wasm32-build.sh picks the route.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
say() { printf '==> %s\n' "$*"; }

# On the build-std route (these machines) std is rebuilt for size as well:
# a panic traps at once (no message formatting, no file/line strings; with
# panic=abort it traps anyway, and the core never panics on input). 21 KB
# gzip of the .wasm (BENCHMARKS.md).
wasm=$(WASM_BUILD_STD_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none" \
  bash scripts/wasm32-build.sh mangaassist-wasm)

pkg=wasm/pkg
rm -rf "$pkg"
mkdir -p "$pkg"
for flavour in web node; do
  case $flavour in web) bindgen_target=web ;; node) bindgen_target=nodejs ;; esac
  say "wasm-bindgen --target $bindgen_target"
  # No wasm-opt: Debian's binaryen 108 rewrites the externref table that
  # wasm-bindgen 0.2.130 emits and the module then fails to load.
  wasm-bindgen --target "$bindgen_target" --remove-name-section --remove-producers-section --out-dir "$pkg/$flavour" --out-name mangaassist "$wasm"
  rm -f "$pkg/$flavour/mangaassist.d.ts" "$pkg/$flavour/mangaassist_bg.wasm.d.ts" "$pkg/$flavour/package.json"
done
# One .wasm in the package: both bindgen targets emit the same module, and
# the Node loader is pointed at the web copy.
cmp -s "$pkg/web/mangaassist_bg.wasm" "$pkg/node/mangaassist_bg.wasm" ||
  { echo "build-wasm: the web and node .wasm differ; cannot ship one copy" >&2; exit 1; }
rm "$pkg/node/mangaassist_bg.wasm"
node_js="$pkg/node/mangaassist.js"
grep -q '`${__dirname}/mangaassist_bg.wasm`' "$node_js" ||
  { echo "build-wasm: wasm-bindgen's Node loader changed; update the path rewrite" >&2; exit 1; }
sed -i 's|`${__dirname}/mangaassist_bg.wasm`|`${__dirname}/../web/mangaassist_bg.wasm`|' "$node_js"
cp wasm/bindgen/npm/package.json wasm/bindgen/npm/index.d.ts wasm/bindgen/README.md LICENSE "$pkg/"
# The CommonJS entry's types: the same declarations without init/initSync.
python3 - "$pkg/index.d.ts" "$pkg/index.d.cts" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
cjs, n = re.subn(r"// <esm-only>.*?// </esm-only>\n", "", text, flags=re.S)
if n != 1:
    sys.exit("build-wasm: index.d.ts has no single <esm-only> block")
open(sys.argv[2], "w", encoding="utf-8").write(cjs)
PY
cp wasm/bindgen/npm/node/index.mjs "$pkg/node/"
printf '{"type":"commonjs"}\n' > "$pkg/node/package.json"

raw=$(wc -c < "$pkg/web/mangaassist_bg.wasm")
gz=$(gzip -9 -c "$pkg/web/mangaassist_bg.wasm" | wc -c)
say "wasm/pkg ready: mangaassist_bg.wasm $raw bytes, $gz bytes gzip -9 (goal: 153600)"

if [ "${1:-}" = "--pack" ]; then
  (cd "$pkg" && npm pack --silent --pack-destination ..) | sed 's/^/==> packed wasm\//'
fi
