{{/* Whether the router is installed at all. */}}
{{- define "kthena.enabled" -}}
{{- if and .Values.networking.enabled .Values.networking.kthenaRouter.enabled -}}true{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "kthena.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kthena
{{- end -}}

{{/* Labels that select the router Pods. */}}
{{- define "kthena.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: kthena-router
{{- end -}}

{{/* The router image. */}}
{{- define "kthena.image" -}}
{{- $i := .Values.networking.kthenaRouter.image -}}
{{- printf "%s:%s" $i.repository (default .Chart.AppVersion $i.tag) -}}
{{- end -}}

{{/* Whether the webhook runs with certificates the router generates (auto mode). */}}
{{- define "kthena.autoCerts" -}}
{{- if and .Values.networking.kthenaRouter.webhook.enabled (eq .Values.global.certManagementMode "auto") -}}true{{- end -}}
{{- end -}}

{{/* Whether the webhook reads its certificate from the mounted Secret. */}}
{{- define "kthena.mountedWebhookCerts" -}}
{{- if and .Values.networking.kthenaRouter.webhook.enabled (ne .Values.global.certManagementMode "auto") -}}true{{- end -}}
{{- end -}}

{{/* The name of the ValidatingWebhookConfiguration (the router's default). */}}
{{- define "kthena.webhookConfigurationName" -}}kthena-router-validating-webhook{{- end -}}

{{/* Refuses values the router cannot honour, naming them. */}}
{{- define "kthena.checks" -}}
{{- $r := .Values.networking.kthenaRouter -}}
{{- if and $r.gatewayAPI.inferenceExtension (not $r.gatewayAPI.enabled) -}}
{{- fail "networking.kthenaRouter.gatewayAPI.inferenceExtension requires networking.kthenaRouter.gatewayAPI.enabled=true" -}}
{{- end -}}
{{- if $r.sessionBoost.enabled -}}
{{- fail "networking.kthenaRouter.sessionBoost.enabled=true: session boost is not implemented by kthena-rs; set it to false" -}}
{{- end -}}
{{- if ne $r.sessionSticky.store "memory" -}}
{{- fail (printf "networking.kthenaRouter.sessionSticky.store=%s: kthena-rs has no session-sticky store; use memory" $r.sessionSticky.store) -}}
{{- end -}}
{{- if and $r.jwtAuth.enabled (not (regexMatch "(?m)^auth:" ($r.routerConfiguration | default ""))) -}}
{{- fail "networking.kthenaRouter.jwtAuth.enabled=true: JWT authentication is set up by an auth: section (issuer, audiences, jwksUri) in networking.kthenaRouter.routerConfiguration, and it has none" -}}
{{- end -}}
{{- if $r.debugBackendPodHeader -}}
{{- fail "networking.kthenaRouter.debugBackendPodHeader=true: not implemented by kthena-rs (the access log's selected_pod names the Pod); set it to false" -}}
{{- end -}}
{{- if and $r.webhook.enabled (eq .Values.global.certManagementMode "manual") (not .Values.global.webhook.caBundle) -}}
{{- fail "global.webhook.caBundle is required when global.certManagementMode=manual (base64 of the CA that signed the Secret networking.kthenaRouter.webhook.tls.secretName)" -}}
{{- end -}}
{{- if and $r.tls.enabled (eq .Values.global.certManagementMode "cert-manager") (not $r.tls.dnsName) -}}
{{- fail "networking.kthenaRouter.tls.dnsName is required for the router certificate in cert-manager mode" -}}
{{- end -}}
{{- if and $r.webhook.enabled (ne .Values.global.certManagementMode "auto") (ne (dir $r.webhook.tls.certFile) (dir $r.webhook.tls.keyFile)) -}}
{{- fail "networking.kthenaRouter.webhook.tls.certFile and keyFile must be in one folder (the Secret is mounted there)" -}}
{{- end -}}
{{- $ports := list (int $r.port) (int $r.metrics.port) (int $r.debugPort) -}}
{{- if $r.webhook.enabled -}}{{- $ports = append $ports (int $r.webhook.port) -}}{{- end -}}
{{- if ne (len $ports) (len (uniq $ports)) -}}
{{- fail (printf "networking.kthenaRouter: port, metrics.port, debugPort and webhook.port must all differ, got %v (metrics.exposeOnRouterPort serves /metrics on the router port too)" $ports) -}}
{{- end -}}
{{- end -}}
