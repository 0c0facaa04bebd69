#!/usr/bin/env bash
# The soak test for longer: `mangaassist serve` (release build) under a
# steady mixed load while the emulator's regions fail on a schedule.
#
#   scripts/soak.sh [minutes]    default 30
#
# The same test .ci/run runs for two minutes (host/cli/tests/cli/soak.rs);
# it prints the schedule, the outcome counts and the memory, open-file and
# policy-instance figures docs/reliability.md records.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
minutes="${1:-30}"
[[ -f wasm/component/dist/policy.wasm ]] || bash scripts/build-policy.sh
SOAK_SECONDS=$(( minutes * 60 )) \
  cargo test --release --locked -p mangaassist --test cli -- --exact \
  soak::soak_under_regional_faults_loses_nothing --nocapture
