#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: the stable figure for a
# before/after of an optimisation (it does not depend on the machine's noise, as req/s does).
#
# NOT a test: CI never runs it (see bench/README.md). It starts the release mock (normally) and
# the release router under `valgrind --tool=callgrind` (collection off), sends WARMUP requests,
# switches collection on, sends REQUESTS sequential requests on one kept-alive connection,
# switches it off and prints the router's instructions per request, in total and for the
# heaviest functions (inclusive), plus how many of them ran in the data plane's worker thread.
#
# Environment: REQUESTS (2000), WARMUP (200), BODY (a small chat completion), ROUTER_BIN
# (target/release/kthena-router), ROUTER_ARGS (extra router flags), ACCESS_LOG (false),
# TOP (25 functions), OUT (callgrind file to keep; default a temp file), SKIP_BUILD,
# RATE_LIMIT (the route's spec.rateLimit, see bench/manifests.sh: the cost of a limit check).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/manifests.sh
source bench/manifests.sh

REQUESTS=${REQUESTS:-2000}
WARMUP=${WARMUP:-200}
TOP=${TOP:-25}
ACCESS_LOG=${ACCESS_LOG:-false}
ROUTER=${ROUTER_BIN:-target/release/kthena-router}
MOCK=target/release/kthena-mock
BODY=${BODY:-'{"model":"bench-model","messages":[{"role":"user","content":"hello"}],"max_tokens":6}'}
for v in REQUESTS WARMUP TOP; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "instructions: $v must be a whole number, got '${!v}'" >&2; exit 2; }
done

log() { printf '[instructions %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v valgrind >/dev/null || {
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing valgrind with apt-get"
        timeout 300 apt-get install -y valgrind >/dev/null 2>&1 || die "could not install valgrind"
    else
        die "valgrind is missing; install it with: sudo apt-get install -y valgrind"
    fi
}
command -v python3 >/dev/null || die "python3 is missing"

if [[ -z ${SKIP_BUILD:-} ]]; then
    log "building release binaries"
    timeout 1800 cargo build --release --locked -p kthena-router -p kthena-mock >&2 || die "build failed"
fi
[[ -x $ROUTER && -x $MOCK ]] || die "$ROUTER or $MOCK missing (build first)"

TMP=$(mktemp -d -t kthena-instr.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

# A free loopback port: bind port 0 and read what the kernel gave.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

RUST_LOG=warn "$MOCK" --listen 127.0.0.1:0 --served-model-name bench-model --workers 1 >"$TMP/mock.out" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 100; i++)); do
    MOCK_ADDR=$(sed -n 's/^kthena-mock listening on //p' "$TMP/mock.out")
    [[ -n $MOCK_ADDR ]] && break
    sleep 0.1
done
[[ -n $MOCK_ADDR ]] || die "the mock did not start: $(cat "$TMP/mock.out")"

write_manifests "$TMP/manifests" "${MOCK_ADDR%:*}" "${MOCK_ADDR##*:}"

PORT=$(free_port)
OUT=${OUT:-$TMP/callgrind.out}
# shellcheck disable=SC2086
ACCESS_LOG_ENABLED=$ACCESS_LOG RUST_LOG=warn valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$OUT" "$ROUTER" --manifests "$TMP/manifests" --port "$PORT" \
    --metrics-port "$(free_port)" --debug-port "$(free_port)" --listen-address 127.0.0.1 \
    --workers 1 ${ROUTER_ARGS:-} >"$TMP/router.out" 2>"$TMP/router.err" &
VG=$!
PIDS+=($VG)

cat >"$TMP/client.py" <<'PY'
import http.client, sys, time
port, n, body, deadline = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode(), float(sys.argv[4])
end = time.monotonic() + deadline
# Wait (bounded) until the route answers, then send n requests on one connection.
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        r = c.getresponse(); r.read()
        if r.status == 200:
            break
        c.close()
    except OSError:
        pass
    if time.monotonic() > end:
        raise SystemExit("the router did not answer 200 in time")
    time.sleep(0.2)
for _ in range(n):
    c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status != 200:
        raise SystemExit(f"status {r.status}")
PY

log "router under callgrind (pid $VG) on 127.0.0.1:$PORT -> mock $MOCK_ADDR; warm-up $WARMUP requests"
timeout 300 python3 "$TMP/client.py" "$PORT" "$WARMUP" "$BODY" 240 || die "warm-up failed: $(tail -5 "$TMP/router.err")"
callgrind_control -i on "$VG" >/dev/null
log "collecting $REQUESTS requests"
timeout 600 python3 "$TMP/client.py" "$PORT" "$REQUESTS" "$BODY" 60 || die "measured run failed"
callgrind_control -i off "$VG" >/dev/null
kill -INT "$VG"
wait "$VG" 2>/dev/null || true
# The measured run sent one readiness request before its REQUESTS.
N=$((REQUESTS + 1))

callgrind_annotate "$OUT" >"$TMP/self.txt" 2>/dev/null || die "callgrind_annotate failed on $OUT"
callgrind_annotate --inclusive=yes "$OUT" >"$TMP/inclusive.txt" 2>/dev/null || die "callgrind_annotate failed on $OUT"
TOTAL=$(awk '/PROGRAM TOTALS/ && !t {gsub(",", "", $1); t = $1} END {print t}' "$TMP/self.txt")
[[ -n $TOTAL ]] || die "no callgrind totals in $OUT"
cat <<EOF

## Router instructions per request (callgrind) — $(date -u +%Y-%m-%dT%H:%M:%SZ)

Code: commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), binary $ROUTER; flags: --workers 1 ${ROUTER_ARGS:-}; access log $ACCESS_LOG; rate limit ${RATE_LIMIT:-none}.
$N sequential requests on one kept-alive connection (after $WARMUP warm-up requests), body: \`$BODY\`.

**$(awk -v t="$TOTAL" -v n="$N" 'BEGIN {printf "%.1fk", t / n / 1000}') instructions per request** (userland, every thread of the router; the kernel is not counted).

Heaviest functions, inclusive, per request:

| instructions / request | function |
|---|---|
EOF
awk -v n="$N" -v top="$TOP" '
    /^-+$/ { sep++ ; next }
    sep >= 4 && $1 ~ /^[0-9,]+$/ {
        v = $1; gsub(",", "", v)
        f = $0; sub(/^ *[0-9,]+ +\([^)]*\) +/, "", f); sub(/ \[.*$/, "", f)
        if (f ~ /^\?\?\?(:0x[0-9a-f]+)?$|libc_start|lang_start|rust_begin_short|\(below main\)|thread_start|start_thread|clone3?$/) next
        if (seen[f]++) next
        if (k++ < top) printf "| %.0f | `%s` |\n", v / n, substr(f, 1, 160)
    }' "$TMP/inclusive.txt"
echo
echo "Heaviest functions, self (exclusive), per request:"
echo
echo "| instructions / request | function |"
echo "|---|---|"
awk -v n="$N" -v top="$TOP" '
    /^-+$/ { sep++ ; next }
    sep >= 4 && $1 ~ /^[0-9,]+$/ {
        v = $1; gsub(",", "", v)
        f = $0; sub(/^ *[0-9,]+ +\([^)]*\) +/, "", f); sub(/ \[.*$/, "", f)
        if (k++ < top) printf "| %.0f | `%s` |\n", v / n, substr(f, 1, 160)
    }' "$TMP/self.txt"
