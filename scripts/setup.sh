#!/usr/bin/env bash
# Installs what the project needs and is missing. Idempotent and quick when
# everything is there. Source of truth for a fresh machine of this kind
# (Debian 12, rustup Rust 1.95, Python 3.11, Node 20); see ../shared/TOOLCHAIN.md.
set -euo pipefail

say() { printf '==> %s\n' "$*"; }

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' is required but not installed ($2)" >&2; exit 1; }
}

need_cmd cargo "install Rust with rustup: https://rustup.rs"
need_cmd python3 "the corpus cross-check uses Python 3's standard library"

# rustfmt and clippy are part of the test command.
if command -v rustup >/dev/null 2>&1; then
  for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
      say "rustup component add ${component}"
      rustup component add "${component}"
    fi
  done
fi
cargo fmt --version >/dev/null 2>&1 || { echo "setup: cargo fmt is missing" >&2; exit 1; }
cargo clippy --version >/dev/null 2>&1 || { echo "setup: cargo clippy is missing" >&2; exit 1; }

# --- WebAssembly: the npm package (../shared/TOOLCHAIN.md) ---------------
need_cmd node "Node.js 18+ runs the npm package's tests"
need_cmd npm "npm packs the package"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  # rustup has no wasm32 std here: Debian's rustc-web builds it from source.
  missing=()
  [ -x /usr/bin/rustc ] && /usr/bin/rustc --version 2>/dev/null | grep -q . || missing+=(rustc-web)
  [ -x /usr/bin/cargo ] || missing+=(cargo-web)
  [ -d /usr/lib/rustlib/src/rust ] || missing+=(rust-web-src)
  command -v rust-lld >/dev/null 2>&1 || missing+=(lld-22)
  if [ "${#missing[@]}" -gt 0 ]; then
    say "apt-get install ${missing[*]} (wasm32 toolchain)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src lld-22 >/dev/null
  fi
fi

# wasm-bindgen-cli must match the wasm-bindgen crate exactly.
here=$(cd "$(dirname "$0")/.." && pwd)
bindgen_version=$(sed -nE 's/^wasm-bindgen = "=([0-9.]+)".*/\1/p' "$here/wasm/bindgen/Cargo.toml")
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $bindgen_version" ]; then
  say "cargo install wasm-bindgen-cli --version $bindgen_version (about 2 minutes)"
  # Not --locked: the registry mirror can lag the CLI's own lock file.
  cargo install --quiet wasm-bindgen-cli --version "$bindgen_version"
fi

# wasm-tools turns the policy crate's core module into a component.
wasm_tools_version=1.240.0
if [ "$(wasm-tools --version 2>/dev/null | cut -d' ' -f2)" != "$wasm_tools_version" ]; then
  say "cargo install wasm-tools --version $wasm_tools_version (several minutes, once)"
  cargo install --quiet wasm-tools --version "$wasm_tools_version"
fi

# --- The widget's end-to-end tests: Debian's Chromium (TOOLCHAIN.md: a
# playwright browser download fails here), CJK fonts so Japanese renders in
# screenshots, and playwright-core from npm (pinned by its lock file).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || missing+=(fonts-noto-cjk)
if [ "${#missing[@]}" -gt 0 ]; then
  say "apt-get install ${missing[*]} (widget tests in headless Chromium)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# --- Shared stores the scaled-out tests run against: Debian's redis-server
# (started by the tests themselves on a loopback port, never as a service).
# openssl makes the certificates of the Redis-over-TLS test.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
  say "apt-get install ${missing[*]} (shared-store tests)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The package starts a system instance on 6379; the tests use their own.
  as_root sh -c 'command -v systemctl >/dev/null && systemctl disable --now redis-server >/dev/null 2>&1 || true'
fi
# moto's server for DynamoDB, SQS and SSM, in the project's own virtual
# environment (nothing installed system-wide), every package pinned.
moto_venv="$here/.venv/moto"
moto_requirements="$here/scripts/python/moto-requirements.txt"
if ! cmp -s "$moto_requirements" "$moto_venv/.installed" 2>/dev/null; then
  say "pip install moto[server] into .venv/moto (about 30 seconds, once)"
  if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$moto_venv"
  python3 -m venv "$moto_venv"
  "$moto_venv/bin/pip" install --quiet --disable-pip-version-check -r "$moto_requirements"
  cp "$moto_requirements" "$moto_venv/.installed"
fi
if [ ! -d "$here/tests/e2e/node_modules/playwright-core" ]; then
  say "npm ci in tests/e2e (playwright-core)"
  (cd "$here/tests/e2e" && npm ci --no-audit --no-fund --silent)
fi
if [ ! -d "$here/tests/bundlers/node_modules/webpack" ] || [ ! -d "$here/tests/bundlers/node_modules/vite" ]; then
  say "npm ci in tests/bundlers (vite, webpack, playwright-core; pinned by its lock file)"
  (cd "$here/tests/bundlers" && npm ci --no-audit --no-fund --silent)
fi

py_unicode=$(python3 -c 'import unicodedata; print(unicodedata.unidata_version)')
case "$py_unicode" in
  14.*) ;;
  *) echo "setup: note: Python's Unicode is $py_unicode; the corpus cross-check was written against 14 (Python 3.11)" >&2 ;;
esac
say "toolchain ready: $(cargo --version), $(wasm-bindgen --version), $(wasm-tools --version), $(redis-server --version | cut -d' ' -f1-3), moto $("$moto_venv/bin/python" -c 'import moto; print(moto.__version__)'), node $(node --version), python $(python3 -c 'import sys; print(sys.version.split()[0])') (Unicode $py_unicode)"
