#!/usr/bin/env bash
# The cost of a token rate limit check, as instructions per proxied request (callgrind, the
# router process only) with no limit, a local limit and a Redis-shared one, plus the round
# trip of one decision on a loopback Redis (redis-benchmark running the same script). NOT a
# test: CI never runs it (see bench/README.md).
#
# The limits are large enough never to refuse (4e9 tokens a second): what is measured is the
# check, the reservation and its settlement. Needs valgrind (bench/instructions.sh installs
# it) and redis-server / redis-benchmark (Debian: redis-server, redis-tools).
#
# Environment: REQUESTS (1000), SKIP_BUILD (as bench/instructions.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-1000}
log() { printf '[rate_limit %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
for tool in redis-server redis-cli redis-benchmark; do
    command -v "$tool" >/dev/null || die "$tool is missing; install it with: sudo apt-get install -y redis-server redis-tools"
done

TMP=$(mktemp -d -t kthena-ratelimit.XXXXXX)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log" >/dev/null
trap 'kill "$(cat "$TMP/redis.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$TMP"' EXIT
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$PORT" ping >/dev/null || die "redis-server did not start: $(cat "$TMP/redis.log")"

BIG='inputTokensPerUnit: 4000000000, outputTokensPerUnit: 4000000000, unit: second'
declare -A PER
for case in none local global; do
    case $case in
        none) limit= ;;
        local) limit="{$BIG}" ;;
        global) limit="{$BIG, global: {redis: {address: '127.0.0.1:$PORT'}}}" ;;
    esac
    log "instructions per request, rate limit: $case"
    PER[$case]=$(RATE_LIMIT=$limit REQUESTS=$REQUESTS TOP=1 SKIP_BUILD=${SKIP_BUILD:-} \
        bash bench/instructions.sh 2>/dev/null |
        sed -n 's/^\*\*\([0-9.]*k\) instructions per request.*/\1/p')
    [[ -n ${PER[$case]} ]] || die "bench/instructions.sh gave no figure for $case"
    SKIP_BUILD=1
done
[[ $(redis-cli -p "$PORT" --scan --pattern 'kthena:ratelimit:*' | wc -l) -eq 2 ]] ||
    die "the global case left no budget in Redis: it was not measured"

# One admit decision, as the router sends it, on Redis's clock.
SHA=$(redis-cli -p "$PORT" script load "$(cat core/src/rate_limit.lua)")
log "redis-benchmark: EVALSHA of one admit decision, 1 connection"
RB=$(redis-benchmark -p "$PORT" -c 1 -n 20000 -q --csv EVALSHA "$SHA" 2 \
    kthena:ratelimit:rb:input kthena:ratelimit:rb:output admit '' 4000000000 4000000000 \
    4000000000 4000000000 5 '' 60 2>/dev/null | tail -1)

cat <<REPORT

## Cost of a token rate limit check — $(date -u +%Y-%m-%dT%H:%M:%SZ)

Code: commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $REQUESTS sequential requests per case (bench/instructions.sh).

| route's limit | router instructions per request |
|---|---|
| none | ${PER[none]} |
| local (\`spec.rateLimit\`) | ${PER[local]} |
| global (\`global.redis\`, loopback Redis) | ${PER[global]} |

One admit decision on the loopback Redis (redis-benchmark, 1 connection, 20,000 calls; csv:
"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"):
$RB
REPORT
