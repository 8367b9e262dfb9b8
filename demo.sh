#!/usr/bin/env bash
# The walkthrough "Router Routing" with no cluster: kthena-router in standalone mode on
# examples/, with kthena-mock engines as the Pods of examples/pods-standalone.yaml.
#
#   ./demo.sh              start everything, print curl lines to try, run until Ctrl-C
#   DEMO_CHECK=1 ./demo.sh start, check the four scenarios answer as documented, stop
#   DEMO_GATEWAY=1 ./demo.sh  the same with --enable-gateway-api: Gateways on 8080 and 8081
#                          (examples/gateway*.yaml), the HTTPRoute to InferencePools
#                          (examples/httproute.yaml, examples/inferencepool.yaml)
#
# Env: PORT (router, default 8080), METRICS_PORT (9090), DEBUG_PORT (15000).
set -euo pipefail
cd "$(dirname "$0")"

PORT=${PORT:-8080}
METRICS_PORT=${METRICS_PORT:-9090}
DEBUG_PORT=${DEBUG_PORT:-15000}
SMALL=deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B
BIG=deepseek-ai/DeepSeek-R1-Distill-Qwen-7B
LOGS=$(mktemp -d)
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building kthena-router and kthena-mock ..."
cargo build -q -p kthena-router -p kthena-mock
BIN=target/debug

# wait_for FILE TEXT: until FILE contains TEXT (bounded).
wait_for() {
  for _ in $(seq 1 200); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "timed out waiting for '$2' in $1:" >&2
  cat "$1" >&2
  exit 1
}

# mock IP NAME MODEL [FLAGS...]: one engine Pod of examples/pods-standalone.yaml.
mock() {
  local ip=$1 name=$2 model=$3
  shift 3
  "$BIN/kthena-mock" --listen "$ip:8000" --pod-name "$name" --served-model-name "$model" "$@" \
    >"$LOGS/$name.log" 2>&1 &
  pids+=($!)
  wait_for "$LOGS/$name.log" "kthena-mock listening on"
}

# The engines also answer to short names, for requests that reach them through InferencePools
# (which, unlike ModelServers, do not rewrite the model).
mock 127.0.0.11 deepseek-r1-1-5b-v1-0 "$SMALL,deepseek-r1-1-5b"
mock 127.0.0.12 deepseek-r1-1-5b-v2-0 "$SMALL,deepseek-r1-1-5b"
mock 127.0.0.21 deepseek-r1-7b-0 "$BIG,deepseek-r1-7b" --lora lora-A,lora-B

GATEWAY_FLAGS=()
if [[ "${DEMO_GATEWAY:-}" == 1 ]]; then
  # examples/gateway.yaml puts Gateway default on 8080: the router's port must match.
  PORT=8080
  GATEWAY_FLAGS=(--enable-gateway-api --enable-gateway-api-inference-extension)
fi

"$BIN/kthena-router" --manifests examples --listen-address 127.0.0.1 --port "$PORT" \
  --metrics-port "$METRICS_PORT" --debug-port "$DEBUG_PORT" "${GATEWAY_FLAGS[@]}" \
  >"$LOGS/access.log" 2>"$LOGS/router.log" &
pids+=($!)
wait_for "$LOGS/router.log" "route table published"

URL="http://127.0.0.1:$PORT/v1/chat/completions"
chat() { # chat MODEL [CURL ARGS...]
  local model=$1
  shift
  curl -s "$URL" -H 'content-type: application/json' "$@" \
    -d "{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}"
}

if [[ "${DEMO_CHECK:-}" == 1 ]]; then
  expect() { # expect WHAT ACTUAL WANTED-SUBSTRING
    if [[ "$2" != *"$3"* ]]; then echo "FAIL $1: got $2" >&2; exit 1; fi
    echo "ok   $1"
  }
  expect "deepseek-simple -> 1.5B" "$(chat deepseek-r1)" "simulated message from $SMALL!"
  expect "deepseek-lora -> lora-A" "$(chat lora-A)" "simulated message from lora-A!"
  expect "premium -> 7B" "$(chat deepseek-multi -H 'user-type: premium')" "simulated message from $BIG!"
  expect "default -> 1.5B" "$(chat deepseek-multi)" "simulated message from $SMALL!"
  v1=0
  v2=0
  for _ in $(seq 1 100); do
    pod=$(curl -s -o /dev/null -D - "$URL" -H 'content-type: application/json' \
      -d '{"model":"deepseek-r1-canary","messages":[{"role":"user","content":"hi"}]}' |
      tr -d '\r' | awk -F': ' 'tolower($1)=="x-mock-pod"{print $2}')
    case "$pod" in
      deepseek-r1-1-5b-v1-0) v1=$((v1 + 1)) ;;
      deepseek-r1-1-5b-v2-0) v2=$((v2 + 1)) ;;
      *) echo "FAIL canary answered by '$pod'" >&2; exit 1 ;;
    esac
  done
  expect "deepseek-subset 70/30 over 100" "$v1/$v2" "70/30"
  if [[ "${DEMO_GATEWAY:-}" == 1 ]]; then
    gw() { # gw PORT MODEL
      curl -s "http://127.0.0.1:$1/v1/chat/completions" -H 'content-type: application/json' \
        -d "{\"model\":\"$2\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}"
    }
    expect "deepseek-r1-gw on 8080 -> 1.5B" "$(gw 8080 deepseek-r1-gw)" "simulated message from $SMALL!"
    expect "deepseek-r1-gw on 8081 -> 7B" "$(gw 8081 deepseek-r1-gw)" "simulated message from $BIG!"
    expect "HTTPRoute: deepseek-r1-7b -> 7B pool" "$(gw 8080 deepseek-r1-7b)" "simulated message from deepseek-r1-7b!"
    expect "HTTPRoute: other models -> 1.5B pool" "$(gw 8080 deepseek-r1-1-5b)" "simulated message from deepseek-r1-1-5b!"
    expect "InferenceModel: deepseek-r1-lora -> lora-A" "$(gw 8080 deepseek-r1-lora)" "simulated message from lora-A!"
    expect "InferenceModel: deepseek-r1-lora -> lora-B" "$(gw 8080 deepseek-r1-lora)" "simulated message from lora-B!"
  else
    expect "unknown model -> 404" "$(chat nope)" "route not found"
  fi
  echo "demo checks passed"
  exit 0
fi

cat <<MSG

kthena-router is serving http://127.0.0.1:$PORT (metrics :$METRICS_PORT/metrics, debug 127.0.0.1:$DEBUG_PORT)
with examples/ and three mock engines. Try:

  # deepseek-simple: deepseek-r1 -> ModelServer deepseek-r1-1-5b (model rewritten to $SMALL)
  curl -s $URL -d '{"model":"deepseek-r1","messages":[{"role":"user","content":"hi"}]}'

  # deepseek-lora: lora-A -> deepseek-r1-7b, the adapter name kept
  curl -s $URL -d '{"model":"lora-A","messages":[{"role":"user","content":"hi"}]}'

  # deepseek-multi-models: premium users -> 7B, everyone else -> 1.5B
  curl -s $URL -H 'user-type: premium' -d '{"model":"deepseek-multi","messages":[{"role":"user","content":"hi"}]}'
  curl -s $URL -d '{"model":"deepseek-multi","messages":[{"role":"user","content":"hi"}]}'

  # deepseek-subset: exactly 70/30 between canary v1 and v2 (see the x-mock-pod header)
  for i in \$(seq 10); do curl -s -o /dev/null -D - $URL -d '{"model":"deepseek-r1-canary","messages":[{"role":"user","content":"hi"}]}' | grep -i x-mock-pod; done

  # streaming
  curl -sN $URL -d '{"model":"deepseek-r1","stream":true,"messages":[{"role":"user","content":"hi"}]}'

  curl -s http://127.0.0.1:$PORT/v1/models
  curl -s http://127.0.0.1:$METRICS_PORT/metrics | grep kthena_router_requests_total
  curl -s http://127.0.0.1:$DEBUG_PORT/debug/config_dump/pods

Edit a file under examples/ and the router applies it live. Access log: $LOGS/access.log,
router log: $LOGS/router.log. Ctrl-C stops everything.
MSG
wait
