#!/usr/bin/env bash
# Load benchmark of kthena-router against the kthena-mock engine, on loopback only.
#
# NOT a test: CI never runs it (see bench/README.md). It builds the release binaries, then,
# REPEAT times, one case after another under the same pinning and load:
#   1. the mock directly,
#   2. nginx (Debian's nginx-light, installed when missing) routing by the body's "model" with a
#      `map $request_body` rule, pinned where the router runs: the reference,
#   3. the router in front of the same mock, access log off (default scheduler plugins),
#   4. the router with the cheapest pick (random only, no engine scraping),
#   5. the router with the access log on (written to a file);
# then the first SSE chunk direct / via nginx / via the router from a mock with
# --time-to-first-token 20ms, on fresh and on kept-alive connections. It prints a markdown
# summary: medians over the repetitions, and the router's figures as ratios to nginx measured
# in the same run. Every step is bounded in time; every process it starts is stopped on exit.
#
# Environment: DURATION (seconds, default 10), CONNECTIONS (64), THREADS (wrk threads, 1),
# WARMUP (seconds, 2), REPEAT (2), TTFB_SAMPLES (50), ROUTER_CPU (0), LOAD_CPU (1), SKIP_BUILD (unset),
# BUILD_TIMEOUT (seconds, 1800), QUIET_PCT (20), QUIET_WAIT (seconds, 300), ATTEMPTS (3): before
# each measurement wait (at most QUIET_WAIT) until other processes use < QUIET_PCT% of a core,
# and measure again (at most ATTEMPTS times) when they used more during the run.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/manifests.sh
source bench/manifests.sh

DURATION=${DURATION:-10}
DURATION=${DURATION%s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
WARMUP=${WARMUP:-2}
WARMUP=${WARMUP%s}
TTFB_SAMPLES=${TTFB_SAMPLES:-50}
ROUTER_CPU=${ROUTER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-1800}
QUIET_WAIT=${QUIET_WAIT:-300}
QUIET_PCT=${QUIET_PCT:-20}
ATTEMPTS=${ATTEMPTS:-3}
REPEAT=${REPEAT:-2}
for v in DURATION CONNECTIONS THREADS WARMUP REPEAT TTFB_SAMPLES BUILD_TIMEOUT QUIET_WAIT QUIET_PCT ATTEMPTS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench: $v must be a whole number, got '${!v}'" >&2; exit 2; }
done

MOCK=target/release/kthena-mock
ROUTER=target/release/kthena-router
BODY='{"model":"bench-model","messages":[{"role":"user","content":"hello"}],"max_tokens":6}'
STREAM_BODY='{"model":"bench-model","messages":[{"role":"user","content":"hello"}],"max_tokens":6,"stream":true}'

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- processes and cleanup
TMP=$(mktemp -d -t kthena-bench.XXXXXX)
PIDS=()

stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

forget_pid() {
    local pid=$1 p kept=()
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
    PIDS=("${kept[@]}")
}

# run_fg CMD...: runs CMD in the background and waits for it, so that a signal to this script
# is handled at once (bash defers traps until a foreground command ends) and CMD is stopped.
run_fg() {
    "$@" &
    local pid=$! rc=0
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    forget_pid "$pid"
    return "$rc"
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- tools
if ! command -v wrk >/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing wrk with apt-get"
        timeout 300 apt-get install -y wrk >/dev/null 2>&1 ||
            { timeout 300 apt-get update >/dev/null 2>&1 && timeout 300 apt-get install -y wrk >/dev/null 2>&1; } ||
            die "could not install wrk; install it with: sudo apt-get install -y wrk"
    else
        die "wrk is missing; install it with: sudo apt-get install -y wrk"
    fi
fi
NGINX=$(command -v nginx || true)
[[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
if [[ -z $NGINX ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing nginx-light with apt-get (the reference proxy)"
        timeout 300 apt-get install -y nginx-light >/dev/null 2>&1 ||
            { timeout 300 apt-get update >/dev/null 2>&1 && timeout 300 apt-get install -y nginx-light >/dev/null 2>&1; } ||
            die "could not install nginx-light; install it with: sudo apt-get install -y nginx-light"
        # The package starts a system nginx on port 80; the benchmark runs its own.
        { service nginx stop || systemctl stop nginx || true; } >/dev/null 2>&1
        NGINX=/usr/sbin/nginx
    else
        die "nginx is missing; install it with: sudo apt-get install -y nginx-light"
    fi
fi
for tool in curl taskset getconf awk python3; do
    command -v "$tool" >/dev/null || die "$tool is missing"
done
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- build
if [[ -z ${SKIP_BUILD:-} ]]; then
    log "building release binaries (cargo build --release -p kthena-router -p kthena-mock)"
    run_fg timeout "$BUILD_TIMEOUT" cargo build --release -p kthena-router -p kthena-mock >&2 ||
        die "release build failed or took more than ${BUILD_TIMEOUT}s"
fi
GIT_DIRTY=$(git status --porcelain -- core api router mock Cargo.lock 2>/dev/null | wc -l)
[[ -x $MOCK && -x $ROUTER ]] || die "$MOCK or $ROUTER missing (build first)"

# ---------------------------------------------------------------- helpers

# start_mock NAME ARGS...: starts a mock on LOAD_CPU, sets MOCK_ADDR to IP:PORT.
start_mock() {
    local name=$1 i line=
    shift
    RUST_LOG=warn taskset -c "$LOAD_CPU" "$MOCK" --listen 127.0.0.1:0 \
        --served-model-name bench-model --workers 1 "$@" \
        >"$TMP/$name.out" 2>"$TMP/$name.err" &
    PIDS+=($!)
    local pid=$!
    for ((i = 0; i < 100; i++)); do
        line=$(grep -m1 '^kthena-mock listening on ' "$TMP/$name.out" 2>/dev/null || true)
        [[ -n $line ]] && break
        kill -0 "$pid" 2>/dev/null || die "mock $name exited: $(cat "$TMP/$name.err")"
        sleep 0.1
    done
    [[ -n $line ]] || die "mock $name did not print its address within 10s"
    MOCK_ADDR=${line#kthena-mock listening on }
    MOCK_PID=$pid
    log "mock $name (pid $pid) listening on $MOCK_ADDR"
}

# free_port: sets PORT to a loopback TCP port nothing listens on and not handed out before,
# below the kernel's ephemeral range (a port there can be held by one of the many outgoing
# connections of a load run, even with nothing listening on it).
USED_PORTS=" "
EPHEMERAL_LOW=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
((EPHEMERAL_LOW > 12000)) || die "the ephemeral port range starts at $EPHEMERAL_LOW; free ports below it are needed"
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
        [[ $USED_PORTS == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            USED_PORTS+="$p "
            PORT=$p
            return 0
        fi
    done
    die "no free port found"
}

# write_manifests DIR MOCK_IP MOCK_PORT: bench/manifests.sh

# start_router NAME MOCK_ADDR ACCESS_LOG(true|false) [ROUTER FLAGS...]: sets ROUTER_PID and
# ROUTER_URL.
start_router() {
    local name=$1 addr=$2 access=$3 i code
    shift 3
    local dir="$TMP/$name-manifests"
    write_manifests "$dir" "${addr%:*}" "${addr##*:}"
    local port metrics debug
    free_port; port=$PORT
    free_port; metrics=$PORT
    free_port; debug=$PORT
    # ROUTER_WORKERS=N ROUTER_CPUS=LIST start_router …: another worker count / CPU set.
    ACCESS_LOG_ENABLED=$access RUST_LOG=warn DRAIN_TIMEOUT=1s \
        taskset -c "${ROUTER_CPUS:-$ROUTER_CPU}" "$ROUTER" --manifests "$dir" --port "$port" \
        --metrics-port "$metrics" --debug-port "$debug" --listen-address 127.0.0.1 \
        --workers "${ROUTER_WORKERS:-1}" "$@" \
        >"$TMP/$name.out" 2>"$TMP/$name.err" &
    PIDS+=($!)
    ROUTER_PID=$!
    ROUTER_URL="http://127.0.0.1:$port"
    for ((i = 0; i < 150; i++)); do
        kill -0 "$ROUTER_PID" 2>/dev/null || die "router $name exited: $(cat "$TMP/$name.err")"
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$ROUTER_URL/readyz" || true)
        [[ $code == 200 ]] && break
        sleep 0.1
    done
    [[ $code == 200 ]] || die "router $name not ready within 15s (last /readyz: $code)"
    # Ready means the config is loaded; also wait until the route answers (bounded).
    for ((i = 0; i < 50; i++)); do
        code=$(curl -s -o "$TMP/$name.smoke" -w '%{http_code}' --max-time 2 \
            -H 'content-type: application/json' -d "$BODY" "$ROUTER_URL/v1/chat/completions" || true)
        [[ $code == 200 ]] && break
        sleep 0.1
    done
    [[ $code == 200 ]] || die "router $name: chat completion answered $code: $(head -c 300 "$TMP/$name.smoke")"
    grep -q '"choices"' "$TMP/$name.smoke" || die "router $name: unexpected body: $(head -c 300 "$TMP/$name.smoke")"
    log "router $name (pid $ROUTER_PID, access log $access) ready on $ROUTER_URL -> $addr"
}

# start_nginx NAME MOCK_ADDR: nginx with one worker pinned to ROUTER_CPU, routing POSTs by the
# body's "model" (a `map $request_body` rule; the mirror module reads the body before the
# upstream is chosen, which plain `proxy_pass` would not), keep-alive to the mock as the router
# keeps it, response buffering off as a streaming proxy needs. Sets NGINX_PID (the worker),
# NGINX_MASTER and NGINX_URL.
start_nginx() {
    local name=$1 addr=$2 dir="$TMP/$1" i code port
    mkdir -p "$dir"
    free_port; port=$PORT
    cat >"$dir/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
error_log $dir/error.log warn;
pid $dir/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    client_body_buffer_size 64k;
    map \$request_body \$model_upstream {
        "~\"model\"\\s*:\\s*\"bench-model\"" bench_model;
        default unknown_model;
    }
    upstream bench_model { server $addr; keepalive 64; }
    upstream unknown_model { server 127.0.0.1:9; }
    server {
        listen 127.0.0.1:$port;
        location = /read-body { internal; return 204; }
        location / {
            mirror /read-body;
            mirror_request_body on;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_pass http://\$model_upstream;
        }
    }
}
NGINX
    taskset -c "$ROUTER_CPU" "$NGINX" -c "$dir/nginx.conf" -p "$dir" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    PIDS+=($!)
    NGINX_MASTER=$!
    NGINX_URL="http://127.0.0.1:$port"
    for ((i = 0; i < 50; i++)); do
        kill -0 "$NGINX_MASTER" 2>/dev/null || die "nginx $name exited: $(cat "$TMP/$name.err" "$dir/error.log" 2>/dev/null)"
        code=$(curl -s -o "$TMP/$name.smoke" -w '%{http_code}' --max-time 2 \
            -H 'content-type: application/json' -d "$BODY" "$NGINX_URL/v1/chat/completions" || true)
        [[ $code == 200 ]] && break
        sleep 0.1
    done
    [[ $code == 200 ]] || die "nginx $name: chat completion answered $code: $(head -c 300 "$TMP/$name.smoke")"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -d '{"model":"other"}' "$NGINX_URL/v1/chat/completions" || true)
    [[ $code == 502 ]] || die "nginx $name does not route by model: another model answered $code"
    NGINX_PID=$(pgrep -P "$NGINX_MASTER" | head -1)
    [[ -n $NGINX_PID ]] || die "nginx $name: no worker process"
    log "nginx $name (worker pid $NGINX_PID) ready on $NGINX_URL -> $addr, routing by model"
}

cpu_ticks() { # utime+stime of PID in clock ticks (fields 14 and 15 of /proc/PID/stat)
    sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
status_kb() { # status_kb PID FIELD -> kB
    awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"
}

cat >"$TMP/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
EOF

# run_wrk SECONDS URL OUTFILE
run_wrk() {
    run_fg timeout $(($1 + 30)) taskset -c "$LOAD_CPU" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$1"s \
        --latency -s "$TMP/post.lua" "$2/v1/chat/completions" >"$3" 2>&1 ||
        die "wrk failed: $(cat "$3")"
}

# wrk value parsers
to_ms() { # 1.23ms | 456.00us | 1.20s | 2.00m -> milliseconds
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
        else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
        else printf "nan" }'
}
wrk_rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
wrk_total() { awk '/ requests in / {print $1}' "$1"; }
wrk_pct() { to_ms "$(awk -v p="$2%" '$1 == p {print $2}' "$1")"; }
wrk_non2xx() { awk '/Non-2xx or 3xx responses:/ {print $NF; f = 1} END {if (!f) print 0}' "$1"; }
wrk_sockerr() { awk '/Socket errors:/ {sub(/^ *Socket errors: */, ""); print; f = 1} END {if (!f) print "none"}' "$1"; }

# Other load on the machine skews every number here (a parallel cargo build halves the
# router's throughput), so each measured run waits for a quiet machine and reports the CPU
# that neither router, mock nor wrk used during the run.
sys_busy() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }
sys_steal() { awk '$1 == "cpu" {print $9; exit}' /proc/stat; }
# children_ticks VAR: sets VAR to the CPU of the waited-for children of this shell (bash
# `times`), in clock ticks. Not via $(...): a subshell's children times start at zero.
children_ticks() {
    times >"$TMP/times"
    printf -v "$1" '%s' "$(awk -v hz="$CLK_TCK" 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
        printf "%d", t * hz }' "$TMP/times")"
}
wait_quiet() { # waits (at most QUIET_WAIT s) until the machine uses < QUIET_PCT% of one core
    local start=$SECONDS b0 b1 pct
    while :; do
        b0=$(sys_busy); sleep 1; b1=$(sys_busy)
        pct=$(((b1 - b0) * 100 / CLK_TCK))
        ((pct < QUIET_PCT)) && return 0
        if ((SECONDS - start >= QUIET_WAIT)); then
            log "WARNING: machine still busy (${pct}% of one core) after ${QUIET_WAIT}s; measuring anyway"
            NOISY=1
            return 0
        fi
        log "machine busy (${pct}% of one core used by other processes), waiting; top: $(ps -eo pcpu,comm --sort=-pcpu --no-headers | head -3 | tr -s ' \n' ' ')"
        sleep 4
    done
}
NOISY=

# ---------------------------------------------------------------- throughput
log "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
log "load: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, warm-up ${WARMUP}s, router on CPU $ROUTER_CPU, mock+wrk on CPU $LOAD_CPU"

start_mock fast
FAST_ADDR=$MOCK_ADDR
FAST_PID=$MOCK_PID

declare -A RPS P50 P99 TOTAL NON2XX SOCKERR CPU_US CPU_PCT RSS HWM OTHER STEAL
run_case() { # run_case CASE URL [ROUTER_PID]
    local case=$1 url=$2 rpid=${3:-} t0=0 t1=0 m0 m1 c0 c1 b0 b1 s0 s1 attempt
    for ((attempt = 1; ; attempt++)); do
        wait_quiet
        log "$case: warm-up ${WARMUP}s"
        [[ $WARMUP -gt 0 ]] && run_wrk "$WARMUP" "$url" "$TMP/$case.warmup"
        [[ -n $rpid ]] && t0=$(cpu_ticks "$rpid")
        m0=$(cpu_ticks "$FAST_PID"); children_ticks c0; b0=$(sys_busy); s0=$(sys_steal)
        log "$case: measuring ${DURATION}s (attempt $attempt)"
        run_wrk "$DURATION" "$url" "$TMP/$case.wrk"
        m1=$(cpu_ticks "$FAST_PID"); children_ticks c1; b1=$(sys_busy); s1=$(sys_steal)
        if [[ -n $rpid ]]; then
            t1=$(cpu_ticks "$rpid")
            kill -0 "$rpid" 2>/dev/null || die "router died during $case: $(tail -5 "$TMP/$case.err")"
        fi
        # busy CPU of the whole machine minus router, mock and wrk, in % of one core
        OTHER[$case]=$(awk -v d="$(((b1 - b0) - (t1 - t0) - (m1 - m0) - (c1 - c0)))" -v hz="$CLK_TCK" \
            -v s="$DURATION" 'BEGIN {v = d / hz / s * 100; if (v < 0) v = 0; printf "%.0f", v}')
        STEAL[$case]=$(awk -v d="$((s1 - s0))" -v hz="$CLK_TCK" -v s="$DURATION" 'BEGIN {printf "%.0f", d / hz / s * 100}')
        local other=${OTHER[$case]}
        ((other < QUIET_PCT)) && break
        if ((attempt >= ATTEMPTS)); then
            log "WARNING: $case: other processes used ${other}% of a core in all $ATTEMPTS attempts; keeping the last"
            NOISY=1
            break
        fi
        log "$case: other processes used ${other}% of a core during the run; measuring again"
    done
    cat "$TMP/$case.wrk" >&2
    RPS[$case]=$(wrk_rps "$TMP/$case.wrk")
    TOTAL[$case]=$(wrk_total "$TMP/$case.wrk")
    P50[$case]=$(wrk_pct "$TMP/$case.wrk" 50)
    P99[$case]=$(wrk_pct "$TMP/$case.wrk" 99)
    NON2XX[$case]=$(wrk_non2xx "$TMP/$case.wrk")
    SOCKERR[$case]=$(wrk_sockerr "$TMP/$case.wrk")
    if [[ -n $rpid ]]; then
        CPU_US[$case]=$(awk -v d="$((t1 - t0))" -v hz="$CLK_TCK" -v n="${TOTAL[$case]}" \
            'BEGIN {printf "%.1f", d / hz * 1e6 / n}')
        CPU_PCT[$case]=$(awk -v d="$((t1 - t0))" -v hz="$CLK_TCK" -v s="$DURATION" \
            'BEGIN {printf "%.0f", d / hz / s * 100}')
        RSS[$case]=$(status_kb "$rpid" VmRSS)
        HWM[$case]=$(status_kb "$rpid" VmHWM)
    else
        CPU_US[$case]=-; CPU_PCT[$case]=-; RSS[$case]=-; HWM[$case]=-
    fi
}

# The cheapest pick: one score plugin and no engine scraping, to show what the default
# plugins (filter least-request; least-request, gpu-usage, least-latency, prefix-cache) cost.
printf 'scheduler:\n  plugins:\n    Score:\n      enabled:\n      - {name: random, weight: 1}\n' >"$TMP/random.yaml"

CASES=(direct nginx-model router router-minimal router-accesslog router-2workers)
ACCESS_LINES=0
ACCESS_BYTES=0
for ((rep = 1; rep <= REPEAT; rep++)); do
    log "repetition $rep of $REPEAT"
    run_case "direct#$rep" "http://$FAST_ADDR"

    start_nginx "nginx-$rep" "$FAST_ADDR"
    run_case "nginx-model#$rep" "$NGINX_URL" "$NGINX_PID"
    stop_pid "$NGINX_MASTER"
    forget_pid "$NGINX_MASTER"

    start_router "router-$rep" "$FAST_ADDR" false
    run_case "router#$rep" "$ROUTER_URL" "$ROUTER_PID"
    [[ -s $TMP/router-$rep.err ]] && { log "router stderr (last 5 lines):"; tail -5 "$TMP/router-$rep.err" >&2; }
    stop_pid "$ROUTER_PID"
    forget_pid "$ROUTER_PID"
    OFF_LINES=$(wc -l <"$TMP/router-$rep.out")

    start_router "router-minimal-$rep" "$FAST_ADDR" false --scheduler-config "$TMP/random.yaml" --metrics-scrape-interval 0
    run_case "router-minimal#$rep" "$ROUTER_URL" "$ROUTER_PID"
    stop_pid "$ROUTER_PID"
    forget_pid "$ROUTER_PID"

    start_router "router-accesslog-$rep" "$FAST_ADDR" true
    run_case "router-accesslog#$rep" "$ROUTER_URL" "$ROUTER_PID"
    ACCESS_LINES=$((ACCESS_LINES + $(wc -l <"$TMP/router-accesslog-$rep.out")))
    ACCESS_BYTES=$((ACCESS_BYTES + $(wc -c <"$TMP/router-accesslog-$rep.out")))
    log "access log: $(head -1 "$TMP/router-accesslog-$rep.out")"
    stop_pid "$ROUTER_PID"
    forget_pid "$ROUTER_PID"
    : >"$TMP/router-accesslog-$rep.out"

    # Two workers, not pinned (both cores, shared with wrk and the mock): CPU per request
    # must not grow over one pinned worker's.
    ROUTER_WORKERS=2 ROUTER_CPUS=0-$(($(nproc) - 1)) start_router "router-2workers-$rep" "$FAST_ADDR" false
    run_case "router-2workers#$rep" "$ROUTER_URL" "$ROUTER_PID"
    stop_pid "$ROUTER_PID"
    forget_pid "$ROUTER_PID"
done

# median CASE ARRAY -> the median of ARRAY over the repetitions of CASE ("-" when unmeasured)
median() {
    local -n arr=$2
    local r
    for ((r = 1; r <= REPEAT; r++)); do echo "${arr[$1#$r]:--}"; done | awk '$1 != "-" {v[++n] = $1 + 0}
        END {
            if (!n) { print "-"; exit }
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            printf "%.6g\n", m
        }'
}
# each CASE ARRAY -> ARRAY's value in every repetition of CASE, "a / b"
each() {
    local -n arr=$2
    local r out=
    for ((r = 1; r <= REPEAT; r++)); do out+="${out:+ / }${arr[$1#$r]:--}"; done
    echo "$out"
}
# total CASE ARRAY -> ARRAY summed over the repetitions of CASE
total() {
    local -n arr=$2
    local r t=0
    for ((r = 1; r <= REPEAT; r++)); do t=$((t + ${arr[$1#$r]:-0})); done
    echo "$t"
}
# errors CASE -> "none", or the socket errors of each repetition
errors() {
    local r out=
    for ((r = 1; r <= REPEAT; r++)); do
        [[ ${SOCKERR[$1#$r]} == none ]] || out+="${out:+; }rep $r: ${SOCKERR[$1#$r]}"
    done
    echo "${out:-none}"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a != "-" && b != "-" && b + 0 > 0) printf "%.3f", a / b; else print "-"}'; }
declare -A M_RPS M_CPU M_P50 M_P99 M_RSS M_HWM M_OTHER M_STEAL
for c in "${CASES[@]}"; do
    M_RPS[$c]=$(median "$c" RPS)
    M_CPU[$c]=$(median "$c" CPU_US)
    M_P50[$c]=$(median "$c" P50)
    M_P99[$c]=$(median "$c" P99)
    M_RSS[$c]=$(median "$c" RSS)
    M_HWM[$c]=$(median "$c" HWM)
    M_OTHER[$c]=$(median "$c" OTHER)
    M_STEAL[$c]=$(median "$c" STEAL)
done

# ---------------------------------------------------------------- streaming first chunk
start_mock slow --time-to-first-token 20ms --inter-token-latency 5ms --tokens 6
SLOW_ADDR=$MOCK_ADDR
# Two layouts: the proxies on CPU $ROUTER_CPU as in the throughput runs (every hop wakes a
# process on the other core), and on CPU $LOAD_CPU with the client and the mock (no cross-core
# wakeups: what the proxy itself adds).
declare -A STREAM_ROUTER STREAM_NGINX
start_router router-stream "$SLOW_ADDR" false
STREAM_ROUTER[split]=${ROUTER_URL#http://}
start_nginx nginx-stream "$SLOW_ADDR"
STREAM_NGINX[split]=${NGINX_URL#http://}
SAVED_CPU=$ROUTER_CPU
ROUTER_CPU=$LOAD_CPU
start_router router-stream-shared "$SLOW_ADDR" false
STREAM_ROUTER[shared]=${ROUTER_URL#http://}
start_nginx nginx-stream-shared "$SLOW_ADDR"
STREAM_NGINX[shared]=${NGINX_URL#http://}
ROUTER_CPU=$SAVED_CPU

# Time to the first body byte (the first SSE chunk, sent by the mock after its 20 ms time to
# first token) and to the response headers, per path, the paths interleaved request by request.
# `fresh`: a new connection per request; `keepalive`: one connection per path, reused.
cat >"$TMP/first_chunk.py" <<'PY'
import socket, sys, time
mode, targets = sys.argv[1], sys.argv[2].split(",")
n, body = int(sys.argv[3]), sys.argv[4].encode()
outs = [open(p, "w") for p in sys.argv[5].split(",")]
conns = {}
def connect(addr):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s
def once(addr):
    keep = mode == "keepalive"
    req = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\nConnection: {'keep-alive' if keep else 'close'}\r\n\r\n").encode() + body
    t0 = time.perf_counter()
    s = conns.get(addr) if keep else None
    if s is None:
        s = connect(addr)
        if keep:
            conns[addr] = s
    s.sendall(req)
    buf, head_t, first = b"", None, None
    while first is None:
        data = s.recv(65536)
        if not data:
            raise SystemExit(f"{addr}: closed before the first body byte")
        buf += data
        if head_t is None and b"\r\n\r\n" in buf:
            head_t = time.perf_counter()
        if head_t is not None and len(buf) > buf.index(b"\r\n\r\n") + 4:
            first = time.perf_counter()
    status = buf.split(b" ", 2)[1].decode()
    if keep:
        head = buf[: buf.index(b"\r\n\r\n")].lower()
        if b"transfer-encoding: chunked" not in head:
            raise SystemExit(f"{addr}: a kept-alive stream must be chunked")
        while not buf.endswith(b"0\r\n\r\n"):
            data = s.recv(65536)
            if not data:
                raise SystemExit(f"{addr}: closed mid-stream")
            buf += data
    else:
        while s.recv(65536):
            pass
        s.close()
    return (head_t - t0) * 1000, (first - t0) * 1000, status
for i in range(n + 5):
    for t, out in zip(targets, outs):
        h, f, st = once(t)
        if i >= 5:
            out.write(f"{f / 1000:.6f} {st} {h / 1000:.6f}\n")
for out in outs:
    out.close()
PY
stats() { # stats FILE -> "median_ms p90_ms"
    awk '{print $1 * 1000}' "$1" | sort -n | awk '{v[NR] = $1}
        END {
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            k = int(0.9 * NR); if (k < 0.9 * NR) k++
            printf "%.3f %.3f\n", m, v[k]
        }'
}
declare -A S_MED S_P90
STREAM_BAD=0
STREAM_ROWS=()
for layout in split shared; do
    for conn in fresh keepalive; do
        mode=$layout.$conn
        STREAM_ROWS+=("$mode")
        wait_quiet
        log "first SSE chunk ($conn connections, proxies on the $layout core): $TTFB_SAMPLES streaming requests per path, interleaved"
        run_fg timeout 120 taskset -c "$LOAD_CPU" python3 "$TMP/first_chunk.py" "$conn" \
            "$SLOW_ADDR,${STREAM_NGINX[$layout]},${STREAM_ROUTER[$layout]}" "$TTFB_SAMPLES" "$STREAM_BODY" \
            "$TMP/chunk.$mode.direct,$TMP/chunk.$mode.nginx,$TMP/chunk.$mode.router" >&2 ||
            die "first-chunk timing ($mode) failed"
        for path in direct nginx router; do
            read -r "S_MED[$mode.$path]" "S_P90[$mode.$path]" < <(stats "$TMP/chunk.$mode.$path")
            STREAM_BAD=$((STREAM_BAD + $(awk '$2 != 200' "$TMP/chunk.$mode.$path" | wc -l)))
        done
    done
done
delta() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.3f", a - b}'; }

# ---------------------------------------------------------------- summary
mb() { [[ $1 == - ]] && echo - || awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
cat <<EOF

## kthena-router benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)

Machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); kernel $(uname -r); $($NGINX -v 2>&1)
Code: commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $GIT_DIRTY changed files under core/ api/ router/ mock/ Cargo.lock at build time
Load: \`wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency\` (after ${WARMUP}s warm-up), POST /v1/chat/completions, max_tokens 6; $REPEAT repetitions of every case, one case after another.
Pinning: the proxy under test — nginx (1 worker) or the router (\`--workers 1\`) — on CPU $ROUTER_CPU, alone; the mock (\`--workers 1\`) and wrk on CPU $LOAD_CPU.

### Non-streaming throughput (medians of $REPEAT repetitions)

| case | req/s | p50 ms | p99 ms | proxy CPU µs/req | µs/req ÷ nginx-model | req/s ÷ nginx-model | RSS MB (peak) | non-2xx | socket errors | other load % of 1 core | steal % |
|---|---|---|---|---|---|---|---|---|---|---|---|
EOF
for c in "${CASES[@]}"; do
    case $c in
        direct) label="direct to mock" ;;
        nginx-model) label="nginx, \`map \$request_body\` model rule (reference)" ;;
        router) label="router, access log off (default scheduler plugins, scraping 1s)" ;;
        router-minimal) label="router, access log off, scheduler random only, no scraping" ;;
        router-accesslog) label="router, access log on (file)" ;;
        router-2workers) label="router, \`--workers 2\`, not pinned (shares the load core)" ;;
    esac
    cpu_ratio=$(ratio "${M_CPU[$c]}" "${M_CPU[nginx-model]}")
    [[ $c == direct || $c == nginx-model ]] && cpu_ratio=-
    printf '| %s | %s | %s | %s | %s | %s | %s | %s (%s) | %s | %s | %s | %s |\n' "$label" "${M_RPS[$c]}" \
        "${M_P50[$c]}" "${M_P99[$c]}" "${M_CPU[$c]}" "$cpu_ratio" "$(ratio "${M_RPS[$c]}" "${M_RPS[nginx-model]}")" \
        "$(mb "${M_RSS[$c]}")" "$(mb "${M_HWM[$c]}")" "$(total "$c" NON2XX)" "$(errors "$c")" \
        "$(each "$c" OTHER)" "$(each "$c" STEAL)"
done
cat <<EOF

Per repetition: req/s — $(for c in "${CASES[@]}"; do printf '%s %s; ' "$c" "$(each "$c" RPS)"; done)
proxy CPU µs/req — $(for c in nginx-model router router-minimal router-accesslog router-2workers; do printf '%s %s; ' "$c" "$(each "$c" CPU_US)"; done)

"other load": CPU used during the run by processes other than the proxy, the mock and wrk
(includes loopback softirq time not charged to them); above a few % the numbers are skewed.
"steal": CPU time the hypervisor gave to other guests.${NOISY:+ WARNING: other processes loaded the machine during at least one run; see the log.}
When "direct" is not far above nginx and the router, the load core (wrk + mock) is the ceiling:
compare proxy CPU µs/req then, not req/s.

Default scheduler plugins against the cheapest pick, same run: req/s ratio $(ratio "${M_RPS[router]}" "${M_RPS[router-minimal]}"), router CPU µs/req ratio $(ratio "${M_CPU[router]}" "${M_CPU[router-minimal]}").
Access log off: $OFF_LINES lines on the router's stdout. Access log on: $ACCESS_LINES lines ($ACCESS_BYTES bytes) written to a file (all warm-ups and attempts).

### Streaming: time to the first SSE chunk (mock --time-to-first-token 20ms, $TTFB_SAMPLES requests per path, interleaved)

| proxies on / connection | direct median / p90 ms | via nginx median / p90 ms | via router median / p90 ms | router Δ vs direct (median) | nginx Δ vs direct (median) |
|---|---|---|---|---|---|
EOF
for mode in "${STREAM_ROWS[@]}"; do
    label="CPU $ROUTER_CPU (client, mock on $LOAD_CPU) / ${mode#*.}"
    [[ $mode == shared.* ]] && label="CPU $LOAD_CPU with client and mock / ${mode#*.}"
    printf '| %s | %s / %s | %s / %s | %s / %s | %s ms | %s ms |\n' "$label" \
        "${S_MED[$mode.direct]}" "${S_P90[$mode.direct]}" "${S_MED[$mode.nginx]}" "${S_P90[$mode.nginx]}" \
        "${S_MED[$mode.router]}" "${S_P90[$mode.router]}" \
        "$(delta "${S_MED[$mode.router]}" "${S_MED[$mode.direct]}")" "$(delta "${S_MED[$mode.nginx]}" "${S_MED[$mode.direct]}")"
done
cat <<EOF

Non-200 streaming answers: $STREAM_BAD. Fresh: a new TCP connection per request; keepalive: one
connection per path, reused for every request. With the proxy on the other core every hop is a
cross-core wakeup (a few tens of µs each on this kind of VM), which nginx pays as well; with it on
the client's core the Δ is what the proxy itself adds.

### Targets (ratios to nginx-model, same run)

EOF
verdict() { if awk "BEGIN {exit !($1)}"; then echo met; else echo "NOT met"; fi; }
R_OFF=$(ratio "${M_CPU[router]}" "${M_CPU[nginx-model]}")
R_ON=$(ratio "${M_CPU[router-accesslog]}" "${M_CPU[nginx-model]}")
R_RPS=$(ratio "${M_RPS[router]}" "${M_RPS[nginx-model]}")
D_FRESH=$(delta "${S_MED[split.fresh.router]}" "${S_MED[split.fresh.direct]}")
D_KEEP=$(delta "${S_MED[split.keepalive.router]}" "${S_MED[split.keepalive.direct]}")
D_FRESH_S=$(delta "${S_MED[shared.fresh.router]}" "${S_MED[shared.fresh.direct]}")
D_KEEP_S=$(delta "${S_MED[shared.keepalive.router]}" "${S_MED[shared.keepalive.direct]}")
printf '| target | measured | verdict |\n|---|---|---|\n'
printf '| router µs/req ÷ nginx-model µs/req ≤ 1.0, access log off | %s | %s |\n' "$R_OFF" "$(verdict "$R_OFF <= 1.0")"
printf '| router µs/req ÷ nginx-model µs/req ≤ 1.1, access log on | %s | %s |\n' "$R_ON" "$(verdict "$R_ON <= 1.1")"
printf '| router req/s ≥ nginx-model req/s | ×%s | %s |\n' "$R_RPS" "$(verdict "$R_RPS >= 1.0")"
printf '| first SSE chunk within 0.2 ms of direct (median), fresh connection, router on its own core | %s ms (nginx %s) | %s |\n' "$D_FRESH" "$(delta "${S_MED[split.fresh.nginx]}" "${S_MED[split.fresh.direct]}")" "$(verdict "$D_FRESH <= 0.2")"
printf '| same, kept-alive connection | %s ms (nginx %s) | %s |\n' "$D_KEEP" "$(delta "${S_MED[split.keepalive.nginx]}" "${S_MED[split.keepalive.direct]}")" "$(verdict "$D_KEEP <= 0.2")"
printf '| same, fresh connection, router on the client'"'"'s core | %s ms (nginx %s) | %s |\n' "$D_FRESH_S" "$(delta "${S_MED[shared.fresh.nginx]}" "${S_MED[shared.fresh.direct]}")" "$(verdict "$D_FRESH_S <= 0.2")"
printf '| same, kept-alive connection, router on the client'"'"'s core | %s ms (nginx %s) | %s |\n' "$D_KEEP_S" "$(delta "${S_MED[shared.keepalive.nginx]}" "${S_MED[shared.keepalive.direct]}")" "$(verdict "$D_KEEP_S <= 0.2")"
R_W2=$(ratio "${M_CPU[router-2workers]}" "${M_CPU[router]}")
printf '| `--workers 2` unpinned: µs/req not above one pinned worker'"'"'s (ratio ≤ 1.05, noise) | ×%s | %s |\n' "$R_W2" "$(verdict "$R_W2 <= 1.05")"
printf '| RSS ≤ 30 MB (VmHWM after the run) | %s MB | %s |\n' "$(mb "${M_HWM[router]}")" "$(verdict "${M_HWM[router]} <= 30 * 1024")"
E_ROUTER=$(( $(total router NON2XX) + $(total router-accesslog NON2XX) + $(total router-minimal NON2XX) + $(total router-2workers NON2XX) + STREAM_BAD ))
printf '| no errors | non-2xx %s, socket errors: %s / %s / %s | %s |\n' "$E_ROUTER" "$(errors router)" "$(errors router-minimal)" "$(errors router-accesslog)" \
    "$( [[ $E_ROUTER == 0 && $(errors router) == none && $(errors router-minimal) == none && $(errors router-accesslog) == none ]] && echo met || echo "NOT met")"
