#!/usr/bin/env bash
# Core throughput against the Python baseline on the same corpus, interleaved
# three times (this machine's speed drifts; the ratio of neighbours is stable).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 bench/make_corpus.py
cargo build --release -q -p mangaassist-bench --bin throughput
bin="${CARGO_TARGET_DIR:-target}/release/throughput"
for round in 1 2 3; do
  rust=$("$bin" | tail -1)
  py=$(python3 bench/python_baseline.py | tail -1)
  r=$(echo "$rust" | sed -E 's/.*= ([0-9]+) messages.*/\1/')
  p=$(echo "$py" | sed -E 's/.*= ([0-9,]+) messages.*/\1/' | tr -d ,)
  echo "round $round: rust $r msg/s | python $p msg/s | ratio $(( r / p ))x"
  echo "  rust:   $rust"
  echo "  python: $py"
done
