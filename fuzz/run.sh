#!/usr/bin/env bash
# Coverage-guided fuzzing of what the router reads from the outside (cargo fuzz, libFuzzer,
# AddressSanitizer). Targets (fuzz/fuzz_targets/): body_view, sse_usage, route_match,
# manifest, admission_review, prompt_hash; each checks properties, not only "no panic".
#
#   fuzz/run.sh smoke          each target 12 s from the seeds (CI; ~1.5 minutes in all)
#   fuzz/run.sh long SECONDS   each target SECONDS, growing fuzz/corpus/<target>
#   fuzz/run.sh TARGET ARGS    one target, ARGS passed to libFuzzer
#
# Seeds: fuzz/seeds/<target>/ (committed) and, for the manifest target, examples/. A crash is
# written to fuzz/artifacts/<target>/ and the run fails; each one found becomes a regression
# test where the code it broke is tested. Needs cargo-fuzz (installed when missing) and a
# nightly toolchain, or stable with RUSTC_BOOTSTRAP=1 for the sanitizer flags.
set -euo pipefail
cd "$(dirname "$0")"

TARGETS=(body_view sse_usage route_match manifest admission_review prompt_hash)

log() { printf '[fuzz %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    timeout 900 cargo install cargo-fuzz --locked --version 0.13.2 >&2
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    FUZZ=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    FUZZ=(cargo fuzz)
fi

# One target for SECONDS (0: libFuzzer's own limits, e.g. -runs=N in ARGS); prints its
# executions.
run() {
    local target=$1 seconds=$2
    shift 2
    local seeds=(seeds/"$target")
    [[ $target == manifest ]] && seeds+=(../examples)
    mkdir -p corpus/"$target" artifacts/"$target"
    local out
    out=$(mktemp)
    local status=0
    "${FUZZ[@]}" run -O "$target" corpus/"$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix=artifacts/"$target"/ -print_final_stats=1 "$@" >"$out" 2>&1 || status=$?
    local runs
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out" | grep -o '[0-9]*$' || echo 0)
    log "$target: $runs executions in ${seconds}s, exit $status"
    if [[ $status -ne 0 ]]; then
        tail -40 "$out" >&2
        rm -f "$out"
        return "$status"
    fi
    rm -f "$out"
    echo "$runs"
}

case ${1:-smoke} in
smoke | long)
    seconds=12
    [[ $1 == long ]] && seconds=${2:?"fuzz/run.sh long SECONDS"}
    log "building the targets (instrumented, release)"
    "${FUZZ[@]}" build -O >&2
    total=0
    for t in "${TARGETS[@]}"; do
        n=$(run "$t" "$seconds")
        total=$((total + n))
    done
    log "all targets: $total executions"
    ;;
*)
    target=$1
    shift
    run "$target" 0 "$@"
    ;;
esac
