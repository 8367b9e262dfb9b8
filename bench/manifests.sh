# Sourced by the bench scripts: the one ModelServer / ModelRoute / Pod they route through.

# write_manifests DIR MOCK_IP MOCK_PORT
# $RATE_LIMIT (optional): a ModelRoute `spec.rateLimit` in YAML flow style, e.g.
# '{inputTokensPerUnit: 4000000000, unit: second}' (a budget no benchmark exhausts: the cost of
# the check alone), with `global: {redis: {address: HOST:PORT}}` for a Redis-shared one.
write_manifests() {
    mkdir -p "$1"
    cat >"$1/bench.yaml" <<EOF
apiVersion: networking.serving.volcano.sh/v1alpha1
kind: ModelServer
metadata: {name: bench, namespace: default}
spec:
  inferenceEngine: vLLM
  workloadSelector: {matchLabels: {app: bench}}
  workloadPort: {port: $3}
---
apiVersion: networking.serving.volcano.sh/v1alpha1
kind: ModelRoute
metadata: {name: bench, namespace: default}
spec:
  modelName: bench-model
  rules: [{name: default, targetModels: [{modelServerName: bench}]}]
${RATE_LIMIT:+  rateLimit: $RATE_LIMIT}
---
apiVersion: v1
kind: Pod
metadata: {name: bench-0, namespace: default, labels: {app: bench}}
status: {phase: Running, podIP: $2, conditions: [{type: Ready, status: "True"}]}
EOF
}
