#!/usr/bin/env bash
# Builds one workspace crate for wasm32-unknown-unknown and prints the path of
# its .wasm. Prefers rustup's target; without it (these machines) uses
# Debian's rustc-web route from ../shared/TOOLCHAIN.md.
#   [WASM_PROFILE=wasm-release] [WASM_RUSTFLAGS=...] [WASM_BUILD_STD_RUSTFLAGS=...] \
#     scripts/wasm32-build.sh <package> [cargo args...]
# WASM_BUILD_STD_RUSTFLAGS are added on the build-std route only, where std is
# built from source and unstable flags are allowed (RUSTC_BOOTSTRAP).
# The npm build uses the size profile; the policy component a speed profile
# with SIMD (each in its own target directory, so neither rebuilds the other).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
package=$1
shift
profile="${WASM_PROFILE:-wasm-release}"
wasm_target_dir="${WASM_TARGET_DIR:-$HOME/.cache/mangaassist/wasm-target}/$profile"
target=wasm32-unknown-unknown
export RUSTFLAGS="${WASM_RUSTFLAGS:-}"
if rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  echo "==> cargo build -p $package ($target via rustup, profile $profile)" >&2
  CARGO_TARGET_DIR="$wasm_target_dir" cargo build --locked --profile "$profile" --target "$target" -p "$package" "$@" >&2
else
  echo "==> cargo build -p $package ($target via Debian rustc-web and build-std, profile $profile)" >&2
  RUSTFLAGS="$RUSTFLAGS ${WASM_BUILD_STD_RUSTFLAGS:-}" \
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$wasm_target_dir" \
    /usr/bin/cargo build --locked --profile "$profile" --target "$target" \
    -Zbuild-std=std,panic_abort -p "$package" "$@" >&2
fi
echo "$wasm_target_dir/$target/$profile/${package//-/_}.wasm"
