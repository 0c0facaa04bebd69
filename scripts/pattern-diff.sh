#!/usr/bin/env bash
# Differential pattern fuzzing: the core's policy patterns (native meta
# engine and the browser's lazy DFA) against Python's re.
#
#   scripts/pattern-diff.sh [pairs] [seed]     default 1000000 pairs, seed 1
#
# Exits 1 and prints each disagreement when there is one; the summary line
# is what docs/reliability.md records.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
pairs="${1:-1000000}"
seed="${2:-1}"
bin="$CARGO_TARGET_DIR/pattern-diff"
mkdir -p "$bin"
cargo build --release --locked -p mangaassist-pattern-diff
cp "$CARGO_TARGET_DIR/release/pattern-diff" "$bin/native"
cargo build --release --locked -p mangaassist-pattern-diff --no-default-features
cp "$CARGO_TARGET_DIR/release/pattern-diff" "$bin/lazy-dfa"
python3 tests/differential/patterns.py --pairs "$pairs" --seed "$seed" \
  --bin "$bin/native" --bin "$bin/lazy-dfa"
