#!/usr/bin/env bash
# Builds the npm package into wasm/pkg/ (and a tarball with --pack).
# Prefers rustup's wasm32 target; without it (these machines) uses Debian's
# rustc-web route from ../shared/TOOLCHAIN.md. scripts/setup.sh installs tools.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
say() { printf '==> %s\n' "$*"; }

wasm_target_dir="${WASM_TARGET_DIR:-$HOME/.cache/mangaassist/wasm-target}"
target=wasm32-unknown-unknown
if rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  say "cargo build ($target via rustup, profile wasm-release)"
  CARGO_TARGET_DIR="$wasm_target_dir" cargo build --locked --profile wasm-release --target "$target" -p mangaassist-wasm
else
  say "cargo build ($target via Debian rustc-web and build-std, profile wasm-release)"
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$wasm_target_dir" \
    /usr/bin/cargo build --locked --profile wasm-release --target "$target" \
    -Zbuild-std=std,panic_abort -p mangaassist-wasm
fi
wasm="$wasm_target_dir/$target/wasm-release/mangaassist_wasm.wasm"

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
cp wasm/npm/package.json wasm/npm/index.d.ts wasm/README.md "$pkg/"
cp wasm/npm/node/index.mjs "$pkg/node/"
printf '{"type":"commonjs"}\n' > "$pkg/node/package.json"

raw=$(wc -c < "$pkg/web/mangaassist_bg.wasm")
gz=$(gzip -9 -c "$pkg/web/mangaassist_bg.wasm" | wc -c)
say "wasm/pkg ready: mangaassist_bg.wasm $raw bytes, $gz bytes gzip -9 (goal: 153600)"

if [ "${1:-}" = "--pack" ]; then
  (cd "$pkg" && npm pack --silent --pack-destination ..) | sed 's/^/==> packed wasm\//'
fi
