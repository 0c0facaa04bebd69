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

py_unicode=$(python3 -c 'import unicodedata; print(unicodedata.unidata_version)')
case "$py_unicode" in
  14.*) ;;
  *) echo "setup: note: Python's Unicode is $py_unicode; the corpus cross-check was written against 14 (Python 3.11)" >&2 ;;
esac
say "toolchain ready: $(cargo --version), python $(python3 -c 'import sys; print(sys.version.split()[0])') (Unicode $py_unicode)"
