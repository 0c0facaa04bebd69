#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for N minutes each.
#
#   scripts/fuzz.sh [minutes] [target ...]   default 1 minute, every target
#   scripts/fuzz.sh --smoke          10 s each (what .ci/run does)
#   scripts/fuzz.sh --runs N [target ...]   N executions each, then stop
#
# Stable Rust with RUSTC_BOOTSTRAP=1 for libFuzzer's instrumentation flags;
# no sanitizer (`-s none`): the code under test has no `unsafe` of its own,
# and ASan would halve the executions for the dependencies' sake. Debug
# assertions are on. Corpora grow in fuzz/corpus/<target> (not committed),
# seeded from the conformance corpus and the regression inputs. A crash
# stops the run and names its input: copy it to
# tests/fuzz/testdata/<target>/<what-it-was>, fix, and the ordinary tests
# replay it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

seconds=60
runs=""
case "${1:-}" in
  --smoke) seconds=10; shift ;;
  --runs) runs="$2"; seconds=""; shift 2 ;;
  ""|[!0-9]*) ;;
  *) seconds=$(( $1 * 60 )); shift ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz 0.13.2"
  cargo install cargo-fuzz --version 0.13.2
fi
[[ -f wasm/component/dist/policy.wasm ]] || bash scripts/build-policy.sh

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(check contract cache_key body policy sandbox service)
fi

export RUSTC_BOOTSTRAP=1
flags=(-s none --release --debug-assertions)

echo "==> building ${#targets[@]} fuzz targets"
(cd fuzz && cargo fuzz build "${flags[@]}")

# Seeds: each target's regression inputs, and the corpus inputs that fit it.
python3 - "${targets[@]}" <<'EOF'
import hashlib, json, pathlib, sys
root = pathlib.Path(".")
suites = {
    "check": [("check", lambda i: i["message"])],
    "contract": [("contract", json.dumps), ("screen", json.dumps)],
    "cache_key": [("cache_key", json.dumps)],
    "policy": [("policy", lambda i: "\x01".join(i["policy"].get("disallowedPatterns", []) + [i["message"]]))],
    "sandbox": [("check", lambda i: i["message"]), ("screen", json.dumps), ("cache_key", json.dumps)],
}
for target in sys.argv[1:]:
    corpus = root / "fuzz" / "corpus" / target
    corpus.mkdir(parents=True, exist_ok=True)
    seeds = []
    for suite, make in suites.get(target, []):
        for line in (root / "tests" / "corpus" / f"{suite}.jsonl").read_text(encoding="utf-8").split("\n"):
            if not line:
                continue
            try:
                seeds.append(make(json.loads(line)["input"]).encode())
            except (KeyError, TypeError, AttributeError):
                pass
    regressions = root / "tests" / "fuzz" / "testdata" / target
    if regressions.is_dir():
        seeds += [p.read_bytes() for p in sorted(regressions.iterdir())]
    for data in seeds:
        (corpus / hashlib.sha1(data).hexdigest()).write_bytes(data)
EOF

mkdir -p fuzz/artifacts target
summary=fuzz/artifacts/summary.txt
: > "$summary"
for t in "${targets[@]}"; do
  mkdir -p "fuzz/artifacts/$t"
  limit=(-max_total_time="$seconds")
  [[ -n "$runs" ]] && limit=(-runs="$runs")
  echo "==> $t (${seconds:+$seconds s}${runs:+$runs runs})"
  log="fuzz/artifacts/$t.log"
  if ! (cd fuzz && cargo fuzz run "${flags[@]}" "$t" "corpus/$t" -- \
        "${limit[@]}" -print_final_stats=1 -timeout=60 -rss_limit_mb=4096 \
        -artifact_prefix="artifacts/$t/") >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $t FAILED; its input is in fuzz/artifacts/$t/ (log: $log)" >&2
    echo "copy it to tests/fuzz/testdata/$t/<what-it-was>, fix, and run again" >&2
    exit 1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -Eo '(INITED|DONE|pulse|NEW|REDUCE) +cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 | grep -Eo 'cov: [0-9]+ ft: [0-9]+' || echo "cov: ?")
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  printf '%-10s %12s executions  %s  corpus %s\n' "$t" "$execs" "$cov" "$corpus" | tee -a "$summary"
done
echo "==> every target ran without a failure ($summary)"
