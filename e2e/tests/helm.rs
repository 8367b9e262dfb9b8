//! The Helm chart, rendered with `helm template` (no cluster): for the default values, Gateway
//! API on, each certificate mode and a Kthena user's values file, the objects, the router's
//! arguments (parsed by the real binary), ports, probes, security context, webhook
//! registrations and RBAC that those values must produce; values the router cannot honour are
//! refused; the chart's CRDs are the generated ones.
//!
//! Needs `helm` (`.ci/install-helm`, or `$HELM`); `.ci/run` installs it.

use std::collections::BTreeSet;
use std::process::Command;

use kthena_e2e::cluster::repo_root;
use kthena_e2e::helm::{self, Grant, NAMESPACE, find, grants, kinds, template};
use serde_json::Value;

fn render(sets: &[&str]) -> Vec<Value> {
    template(sets).unwrap_or_else(|e| panic!("helm template {sets:?}: {e}"))
}

fn render_file(file: &str) -> Vec<Value> {
    let chart = helm::chart_dir();
    let values = chart.join("ci").join(file);
    let text = helm::run(&[
        "template",
        "kthena",
        chart.to_str().expect("UTF-8 path"),
        "--namespace",
        NAMESPACE,
        "-f",
        values.to_str().expect("UTF-8 path"),
    ])
    .unwrap_or_else(|e| panic!("helm template -f {file}: {e}"));
    helm::parse(&text).expect("rendered YAML")
}

fn refused(sets: &[&str]) -> String {
    match template(sets) {
        Ok(objects) => panic!("{sets:?} rendered {:?}", kinds(&objects)),
        Err(e) => e,
    }
}

fn container(objects: &[Value]) -> &Value {
    let d = find(objects, "Deployment", "kthena-router");
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

fn args(objects: &[Value]) -> Vec<String> {
    container(objects)["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_owned())
        .collect()
}

fn has_arg(objects: &[Value], arg: &str) -> bool {
    args(objects).iter().any(|a| a == arg)
}

fn assert_args(objects: &[Value], expected: &[&str]) {
    let args = args(objects);
    for e in expected {
        assert!(args.iter().any(|a| a == e), "{e} missing from {args:?}");
    }
}

/// The rendered arguments are accepted by the real `kthena-router`: they are parsed (every
/// flag exists, every value has its type) before its `validate` command runs.
fn assert_binary_accepts(objects: &[Value]) {
    let mut cmd = Command::new(kthena_e2e::binary("kthena-router"));
    cmd.args(args(objects))
        .arg("validate")
        .arg("-f")
        .arg(repo_root().join("examples/modelroute-simple.yaml"))
        .env_clear();
    let out = cmd.output().expect("run kthena-router");
    assert!(
        out.status.success(),
        "kthena-router refused the chart's arguments {:?}: {}",
        args(objects),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ports(service: &Value) -> Vec<(String, i64, Value)> {
    service["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("port name").to_owned(),
                p["port"].as_i64().expect("port"),
                p["targetPort"].clone(),
            )
        })
        .collect()
}

fn mounts(objects: &[Value]) -> Vec<(String, String)> {
    container(objects)["volumeMounts"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| {
                    (
                        m["name"].as_str().expect("name").to_owned(),
                        m["mountPath"].as_str().expect("path").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn webhooks(objects: &[Value]) -> Vec<&Value> {
    find(
        objects,
        "ValidatingWebhookConfiguration",
        "kthena-router-validating-webhook",
    )["webhooks"]
        .as_array()
        .expect("webhooks")
        .iter()
        .collect()
}

/// (path, API group, resource) of every registered webhook.
fn registrations(objects: &[Value]) -> BTreeSet<(String, String, String)> {
    webhooks(objects)
        .into_iter()
        .map(|w| {
            let rule = &w["rules"][0];
            (
                w["clientConfig"]["service"]["path"]
                    .as_str()
                    .expect("path")
                    .to_owned(),
                rule["apiGroups"][0].as_str().expect("group").to_owned(),
                rule["resources"][0].as_str().expect("resource").to_owned(),
            )
        })
        .collect()
}

fn reg(path: &str, group: &str, resource: &str) -> (String, String, String) {
    (path.to_owned(), group.to_owned(), resource.to_owned())
}

/// The README's RBAC table ("Kubernetes mode"): one row per group × resource × verb; `(router
/// namespace)` rows are the Role's.
fn readme_rbac() -> BTreeSet<(String, String, String, bool)> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let table = readme
        .split_once("RBAC — exactly what the binary calls:")
        .expect("the README's RBAC table")
        .1;
    let mut rows = BTreeSet::new();
    for line in table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (group, namespaced) = match cells[1].strip_suffix("(router namespace)") {
            Some(g) => (g.trim(), true),
            None => (cells[1], false),
        };
        let group = group.trim_matches('`').replace("\"\"", "");
        for resource in cells[2].split(',').map(str::trim) {
            for verb in cells[3].split(',').map(str::trim) {
                rows.insert((
                    group.clone(),
                    resource.to_owned(),
                    verb.to_owned(),
                    namespaced,
                ));
            }
        }
    }
    assert!(rows.len() > 20, "README RBAC table not parsed: {rows:?}");
    rows
}

fn unnamed(g: &BTreeSet<Grant>) -> BTreeSet<(String, String, String, bool)> {
    g.iter()
        .map(|g| {
            (
                g.group.clone(),
                g.resource.clone(),
                g.verb.clone(),
                g.namespaced,
            )
        })
        .collect()
}

fn grant(objects: &[Value], group: &str, resource: &str, verb: &str) -> bool {
    grants(objects)
        .iter()
        .any(|g| g.group == group && g.resource == resource && g.verb == verb)
}

#[test]
fn helm_lint_passes_for_every_value_set() {
    let chart = helm::chart_dir();
    let chart = chart.to_str().expect("UTF-8 path");
    helm::run(&["lint", "--strict", chart]).unwrap_or_else(|e| panic!("helm lint: {e}"));
    for file in [
        "kthena-values.yaml",
        "gateway-cert-manager-values.yaml",
        "manual-values.yaml",
    ] {
        let values = helm::chart_dir().join("ci").join(file);
        helm::run(&[
            "lint",
            "--strict",
            chart,
            "-f",
            values.to_str().expect("path"),
        ])
        .unwrap_or_else(|e| panic!("helm lint -f {file}: {e}"));
    }
}

#[test]
fn default_values_install_router_services_webhook_and_rbac() {
    let o = render(&[]);
    let expected: BTreeSet<String> = [
        "ServiceAccount/kthena-router",
        "ClusterRole/kthena-router",
        "ClusterRoleBinding/kthena-router",
        "Role/kthena-router",
        "RoleBinding/kthena-router",
        "Service/kthena-router",
        "Service/kthena-router-metrics",
        "Service/kthena-router-webhook",
        "Deployment/kthena-router",
        "ConfigMap/kthena-router-config",
        "ValidatingWebhookConfiguration/kthena-router-validating-webhook",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(kinds(&o), expected);
    for obj in &o {
        if obj["kind"] != "ClusterRole"
            && obj["kind"] != "ClusterRoleBinding"
            && obj["kind"] != "ValidatingWebhookConfiguration"
        {
            assert_eq!(obj["metadata"]["namespace"], NAMESPACE, "{obj}");
        }
    }

    // Arguments: Kthena's flags from the values, parsed by the real binary.
    assert_args(
        &o,
        &[
            "--port=8080",
            "--metrics-port=9090",
            "--debug-port=15000",
            "--enable-gateway-api=false",
            "--enable-gateway-api-inference-extension=false",
            "--enable-webhook=true",
            "--webhook-port=8443",
            "--cert-secret-name=kthena-router-webhook-certs",
            "--webhook-service-name=kthena-router-webhook",
            "--webhook-configuration-name=kthena-router-validating-webhook",
            "--service-name=kthena-router",
            "--drain-timeout=5m",
            "--access-log=true",
            "--access-log-format=text",
            "--access-log-output=stdout",
            "--kube-api-qps=0",
            "--kube-api-burst=0",
        ],
    );
    assert!(!args(&o).iter().any(|a| a.starts_with("--tls-")));
    assert_binary_accepts(&o);

    // Pod: identity from the downward API, probes on the router port, locked down.
    let c = container(&o);
    let env: Vec<&str> = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    assert!(
        env.contains(&"POD_NAMESPACE") && env.contains(&"POD_NAME"),
        "{env:?}"
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        assert_eq!(c[probe]["httpGet"]["port"], "metrics", "{probe}");
        assert_eq!(c[probe]["httpGet"]["scheme"], "HTTP", "{probe}");
    }
    let container_ports: Vec<(String, i64)> = c["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("name").to_owned(),
                p["containerPort"].as_i64().expect("port"),
            )
        })
        .collect();
    assert_eq!(
        container_ports,
        [
            ("http".to_owned(), 8080),
            ("metrics".to_owned(), 9090),
            ("webhook".to_owned(), 8443)
        ]
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let pod = &find(&o, "Deployment", "kthena-router")["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["serviceAccountName"], "kthena-router");
    assert_eq!(pod["terminationGracePeriodSeconds"], 330);
    assert_eq!(c["resources"]["requests"]["cpu"], "100m");
    assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
    // auto certificates live in memory and in the Secret: only the router configuration is
    // mounted.
    assert_eq!(
        mounts(&o),
        [("router-config".to_owned(), "/etc/config".to_owned())]
    );

    // Services: 80 -> the router port (as a number, which managed Service ports recognise).
    let router = find(&o, "Service", "kthena-router");
    assert_eq!(router["spec"]["type"], "LoadBalancer");
    assert_eq!(ports(router), [("http".to_owned(), 80, Value::from(8080))]);
    assert_eq!(
        ports(find(&o, "Service", "kthena-router-metrics")),
        [("metrics".to_owned(), 9090, Value::from("metrics"))]
    );
    assert_eq!(
        ports(find(&o, "Service", "kthena-router-webhook")),
        [("webhook".to_owned(), 443, Value::from("webhook"))]
    );
    let selector = &router["spec"]["selector"];
    let labels = &pod_labels(&o);
    for (k, v) in selector.as_object().expect("selector") {
        assert_eq!(&labels[k], v, "the Service selects the router Pods");
    }

    // The webhook: ModelRoute and ModelServer only, without a caBundle (auto mode writes it).
    assert_eq!(
        registrations(&o),
        [
            reg(
                "/validate/modelroute",
                "networking.serving.volcano.sh",
                "modelroutes"
            ),
            reg(
                "/validate/modelserver",
                "networking.serving.volcano.sh",
                "modelservers"
            ),
        ]
        .into_iter()
        .collect()
    );
    for w in webhooks(&o) {
        assert_eq!(w["failurePolicy"], "Fail");
        assert_eq!(w["sideEffects"], "None");
        assert!(w["timeoutSeconds"].as_i64().expect("timeout") <= 10);
        assert_eq!(w["admissionReviewVersions"], serde_json::json!(["v1"]));
        assert_eq!(
            w["rules"][0]["operations"],
            serde_json::json!(["CREATE", "UPDATE"])
        );
        assert_eq!(
            w["clientConfig"]["service"]["name"],
            "kthena-router-webhook"
        );
        assert_eq!(w["clientConfig"]["service"]["namespace"], NAMESPACE);
        assert_eq!(w["clientConfig"]["service"]["port"], 443);
        assert!(w["clientConfig"].get("caBundle").is_none(), "{w}");
    }
}

fn pod_labels(o: &[Value]) -> Value {
    find(o, "Deployment", "kthena-router")["spec"]["template"]["metadata"]["labels"].clone()
}

#[test]
fn gateway_api_values_become_flags_webhooks_and_rbac() {
    let o = render(&["networking.kthenaRouter.gatewayAPI.enabled=true"]);
    assert_args(
        &o,
        &["--enable-gateway-api=true", "--manage-service-ports=true"],
    );
    assert_binary_accepts(&o);
    let r = registrations(&o);
    assert!(r.contains(&reg(
        "/validate/gateway",
        "gateway.networking.k8s.io",
        "gateways"
    )));
    assert!(r.contains(&reg(
        "/validate/httproute",
        "gateway.networking.k8s.io",
        "httproutes"
    )));
    assert_eq!(r.len(), 4, "{r:?}");
    assert!(grant(
        &o,
        "gateway.networking.k8s.io",
        "gateways/status",
        "patch"
    ));
    assert!(!grant(
        &o,
        "inference.networking.k8s.io",
        "inferencepools",
        "list"
    ));

    let o = render(&[
        "networking.kthenaRouter.gatewayAPI.enabled=true",
        "networking.kthenaRouter.gatewayAPI.inferenceExtension=true",
    ]);
    assert_args(&o, &["--enable-gateway-api-inference-extension=true"]);
    assert_binary_accepts(&o);
    // Every path the webhook serves is registered, each kind at its own path.
    let paths: BTreeSet<String> = registrations(&o).into_iter().map(|r| r.0).collect();
    let served: BTreeSet<String> = kthena_webhook::server::Endpoint::ALL
        .iter()
        .map(|e| e.path().to_owned())
        .collect();
    assert_eq!(paths, served);
    let r = registrations(&o);
    for (group, resource) in [
        ("inference.networking.k8s.io", "inferencepools"),
        ("inference.networking.x-k8s.io", "inferencepools"),
        ("inference.networking.x-k8s.io", "inferencemodels"),
        ("inference.networking.x-k8s.io", "inferenceobjectives"),
    ] {
        let path = format!("/validate/{}", resource.trim_end_matches('s'));
        assert!(
            r.contains(&reg(&path, group, resource)),
            "{group}/{resource} in {r:?}"
        );
    }
}

#[test]
fn rbac_is_exactly_the_readme_table() {
    let readme = readme_rbac();
    // Everything on (auto certificates, Gateway API, the Inference Extension, managed Service
    // ports): every row of the table, nothing more.
    let all = render(&[
        "networking.kthenaRouter.gatewayAPI.enabled=true",
        "networking.kthenaRouter.gatewayAPI.inferenceExtension=true",
    ]);
    let granted = unnamed(&grants(&all));
    assert_eq!(
        granted.difference(&readme).collect::<Vec<_>>(),
        Vec::<&(String, String, String, bool)>::new(),
        "granted but not in the README"
    );
    assert_eq!(
        readme.difference(&granted).collect::<Vec<_>>(),
        Vec::<&(String, String, String, bool)>::new(),
        "in the README but not granted"
    );
    // Verbs on one object are limited to it.
    let g = grants(&all);
    for (resource, verb, name) in [
        ("leases", "update", "kthena-router"),
        ("services", "patch", "kthena-router"),
        ("secrets", "patch", "kthena-router-webhook-certs"),
        (
            "validatingwebhookconfigurations",
            "patch",
            "kthena-router-validating-webhook",
        ),
    ] {
        let rows: Vec<&Grant> = g
            .iter()
            .filter(|g| g.resource == resource && g.verb == verb)
            .collect();
        assert!(
            !rows.is_empty() && rows.iter().all(|g| g.name.as_deref() == Some(name)),
            "{resource} {verb}: {rows:?}"
        );
    }

    // Defaults: no Gateway API, Inference Extension or cluster-wide Service rows; Secrets are
    // listed and watched for provider credentials (the router selects the labelled ones).
    let default = render(&[]);
    let d = unnamed(&grants(&default));
    assert!(d.is_subset(&readme));
    assert!(
        d.iter()
            .all(|(group, ..)| !group.starts_with("gateway") && !group.starts_with("inference")),
        "{d:?}"
    );
    assert!(d.contains(&(String::new(), "secrets".into(), "list".into(), false)));
    assert!(!d.contains(&(String::new(), "secrets".into(), "get".into(), false)));
    assert!(!d.contains(&(String::new(), "services".into(), "patch".into(), true)));
    assert!(d.contains(&(String::new(), "secrets".into(), "create".into(), true)));

    // Certificates not written by the router: no Secret writes, no webhook configuration.
    for mode in [
        "global.certManagementMode=cert-manager",
        "global.webhook.caBundle=Q0E=",
    ] {
        let sets = if mode.starts_with("global.webhook") {
            vec!["global.certManagementMode=manual", mode]
        } else {
            vec![mode]
        };
        let o = render(&sets);
        assert!(!grant(&o, "", "secrets", "create"), "{sets:?}");
        assert!(
            !grant(
                &o,
                "admissionregistration.k8s.io",
                "validatingwebhookconfigurations",
                "patch"
            ),
            "{sets:?}"
        );
    }
    // Service ports managed by hand: no Service patch.
    let o = render(&[
        "networking.kthenaRouter.gatewayAPI.enabled=true",
        "networking.kthenaRouter.manageServicePorts=false",
    ]);
    assert!(!grant(&o, "", "services", "patch"));
    assert_args(&o, &["--manage-service-ports=false"]);
}

#[test]
fn cert_manager_mode_issues_and_mounts_certificates() {
    let o = render(&["global.certManagementMode=cert-manager"]);
    let cert = find(&o, "Certificate", "kthena-router-webhook");
    assert_eq!(cert["spec"]["secretName"], "kthena-router-webhook-certs");
    let dns = format!("kthena-router-webhook.{NAMESPACE}.svc");
    assert!(
        cert["spec"]["dnsNames"]
            .as_array()
            .expect("dnsNames")
            .contains(&Value::from(dns)),
        "{cert}"
    );
    assert_eq!(
        cert["spec"]["issuerRef"]["name"],
        "kthena-router-selfsigned"
    );
    find(&o, "Issuer", "kthena-router-selfsigned");
    let vwc = find(
        &o,
        "ValidatingWebhookConfiguration",
        "kthena-router-validating-webhook",
    );
    assert_eq!(
        vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!("{NAMESPACE}/kthena-router-webhook")
    );
    assert_eq!(
        mounts(&o),
        [
            ("router-config".to_owned(), "/etc/config".to_owned()),
            ("webhook-certs".to_owned(), "/etc/tls".to_owned())
        ]
    );
    let pod = &find(&o, "Deployment", "kthena-router")["spec"]["template"]["spec"];
    let volume = &pod["volumes"][1];
    assert_eq!(
        volume["secret"]["secretName"],
        "kthena-router-webhook-certs"
    );
    assert!(
        volume["secret"].get("optional").is_none(),
        "the Pod waits for the Secret"
    );
    assert_args(
        &o,
        &[
            "--webhook-tls-cert-file=/etc/tls/tls.crt",
            "--webhook-tls-private-key-file=/etc/tls/tls.key",
        ],
    );
    assert_binary_accepts(&o);
}

#[test]
fn manual_mode_needs_and_registers_the_ca_bundle() {
    let e = refused(&["global.certManagementMode=manual"]);
    assert!(e.contains("global.webhook.caBundle is required"), "{e}");
    let o = render(&[
        "global.certManagementMode=manual",
        "global.webhook.caBundle=Q0FCVU5ETEU=",
    ]);
    for w in webhooks(&o) {
        assert_eq!(w["clientConfig"]["caBundle"], "Q0FCVU5ETEU=");
    }
    assert_eq!(
        mounts(&o),
        [
            ("router-config".to_owned(), "/etc/config".to_owned()),
            ("webhook-certs".to_owned(), "/etc/tls".to_owned())
        ]
    );
    assert!(
        !o.iter()
            .any(|x| x["kind"] == "Certificate" || x["kind"] == "Issuer")
    );
    let e = refused(&[
        "global.certManagementMode=manual",
        "global.webhook.caBundle=not base64!",
    ]);
    assert!(e.contains("caBundle"), "{e}");
}

#[test]
fn webhook_disabled_registers_nothing() {
    let o = render(&["networking.kthenaRouter.webhook.enabled=false"]);
    assert_args(&o, &["--enable-webhook=false"]);
    assert!(!args(&o).iter().any(|a| a.starts_with("--webhook-port")));
    assert!(
        !o.iter()
            .any(|x| x["kind"] == "ValidatingWebhookConfiguration")
    );
    assert!(
        !o.iter()
            .any(|x| x["metadata"]["name"] == "kthena-router-webhook")
    );
    assert!(!grant(&o, "", "secrets", "create"));
    assert_binary_accepts(&o);
}

#[test]
fn router_tls_access_log_file_and_metrics_on_router_port() {
    let o = render_file("gateway-cert-manager-values.yaml");
    assert_args(
        &o,
        &[
            "--tls-cert=/etc/router-tls/tls.crt",
            "--tls-key=/etc/router-tls/tls.key",
            "--access-log-output=/var/log/kthena/access.log",
            "--expose-metrics-on-router-port=true",
        ],
    );
    assert_binary_accepts(&o);
    let c = container(&o);
    // The probes stay on the plain metrics port when the router port serves HTTPS.
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        assert_eq!(c[probe]["httpGet"]["port"], "metrics", "{probe}");
        assert_eq!(c[probe]["httpGet"]["scheme"], "HTTP", "{probe}");
    }
    let m = mounts(&o);
    assert!(
        m.contains(&("router-tls".to_owned(), "/etc/router-tls".to_owned())),
        "{m:?}"
    );
    assert!(
        m.contains(&("access-log".to_owned(), "/var/log/kthena".to_owned())),
        "{m:?}"
    );
    let cert = find(&o, "Certificate", "kthena-router-tls");
    assert_eq!(
        cert["spec"]["dnsNames"],
        serde_json::json!(["llm.example.com"])
    );
    assert_eq!(cert["spec"]["secretName"], "kthena-router-tls");
    let sm = find(&o, "ServiceMonitor", "kthena-router");
    assert_eq!(sm["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    let metrics_labels = &find(&o, "Service", "kthena-router-metrics")["metadata"]["labels"];
    for (k, v) in sm["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("selector")
    {
        assert_eq!(
            &metrics_labels[k], v,
            "the ServiceMonitor selects the metrics Service"
        );
    }
    let pdb = find(&o, "PodDisruptionBudget", "kthena-router");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(
        find(&o, "Deployment", "kthena-router")["spec"]["replicas"],
        3
    );
}

#[test]
fn a_kthena_values_file_installs_unchanged() {
    let o = render_file("kthena-values.yaml");
    assert_args(
        &o,
        &[
            "--enable-gateway-api=true",
            "--enable-gateway-api-inference-extension=true",
            "--kube-api-qps=50",
            "--kube-api-burst=100",
            "--access-log-format=json",
        ],
    );
    assert_binary_accepts(&o);
    let c = container(&o);
    assert_eq!(c["image"], "registry.example.com/kthena-router:v0.1.0");
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["resources"]["limits"]["memory"], "1Gi");
    assert_eq!(
        find(&o, "Service", "kthena-router")["spec"]["type"],
        "ClusterIP"
    );
    assert_eq!(
        find(&o, "Deployment", "kthena-router")["spec"]["replicas"],
        2
    );
}

#[test]
fn pod_tls_values_mount_the_ca_and_become_flags() {
    let o = render(&[
        "networking.kthenaRouter.podTLS.caSecretName=engine-ca",
        "networking.kthenaRouter.podTLS.caKey=bundle.pem",
        "networking.kthenaRouter.podTLS.serverName=engine.local",
    ]);
    assert_args(
        &o,
        &[
            "--pod-tls-ca-file=/etc/pod-tls-ca/bundle.pem",
            "--pod-tls-server-name=engine.local",
        ],
    );
    assert_binary_accepts(&o);
    let m = mounts(&o);
    assert!(
        m.contains(&("pod-tls-ca".to_owned(), "/etc/pod-tls-ca".to_owned())),
        "{m:?}"
    );
    let d = find(&o, "Deployment", "kthena-router");
    let volume = d["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == "pod-tls-ca")
        .cloned()
        .unwrap_or_else(|| panic!("no pod-tls-ca volume: {d}"));
    assert_eq!(volume["secret"]["secretName"], "engine-ca");
    assert_eq!(
        volume["secret"]["items"],
        serde_json::json!([{"key": "bundle.pem", "path": "bundle.pem"}])
    );
    // By default nothing of it is rendered: Pod certificates are not verified.
    let plain = render(&[]);
    assert!(
        !args(&plain).iter().any(|a| a.starts_with("--pod-tls")),
        "{:?}",
        args(&plain)
    );
}

#[test]
fn values_the_router_cannot_honour_are_refused_by_name() {
    for (set, needle) in [
        (
            "networking.kthenaRouter.bogus=1",
            "additional properties 'bogus'",
        ),
        (
            "networking.kthenaRouter.port=http",
            "/networking/kthenaRouter/port",
        ),
        (
            "networking.kthenaRouter.port=0",
            "/networking/kthenaRouter/port",
        ),
        (
            "global.certManagementMode=self",
            "/global/certManagementMode",
        ),
        (
            "networking.kthenaRouter.webhook.timeoutSeconds=30",
            "timeoutSeconds",
        ),
        ("networking.kthenaRouter.drainTimeout=soon", "drainTimeout"),
        (
            "networking.kthenaRouter.accessLog.format=xml",
            "accessLog/format",
        ),
        (
            "networking.kthenaRouter.accessLog.output=relative.log",
            "accessLog/output",
        ),
        ("networking.kthenaRouter.kubeAPIQPS=-1", "kubeAPIQPS"),
        (
            "networking.kthenaRouter.service.type=Ingress",
            "service/type",
        ),
        (
            "networking.kthenaRouter.gatewayAPI.inferenceExtension=true",
            "inferenceExtension requires networking.kthenaRouter.gatewayAPI.enabled",
        ),
        (
            "networking.kthenaRouter.sessionBoost.enabled=true",
            "session boost is not implemented",
        ),
        (
            "networking.kthenaRouter.sessionSticky.store=redis",
            "sessionSticky.store=redis",
        ),
        (
            "networking.kthenaRouter.jwtAuth.enabled=true",
            "set up by an auth: section",
        ),
        (
            "networking.kthenaRouter.podTLS.serverName=engine.local",
            "podTLS.serverName needs podTLS.caSecretName",
        ),
        (
            "networking.kthenaRouter.metrics.port=8080",
            "must all differ",
        ),
        (
            "networking.kthenaRouter.webhook.port=15000",
            "must all differ",
        ),
    ] {
        let e = refused(&[set]);
        assert!(e.contains(needle), "{set}: {needle:?} not in {e}");
    }
}

#[test]
fn jwt_auth_is_the_router_configurations_auth_section() {
    let o = render(&[
        "networking.kthenaRouter.jwtAuth.enabled=true",
        r"networking.kthenaRouter.routerConfiguration=auth: {issuer: https://idp\, jwksUri: https://idp/keys}",
    ]);
    let cm = find(&o, "ConfigMap", "kthena-router-config");
    let text = cm["data"]["routerConfiguration"].as_str().expect("text");
    let cfg = kthena_api::router_config::parse(text).expect("the router reads it");
    let auth = cfg.auth.expect("auth on");
    assert_eq!(auth.issuer, "https://idp");
    assert_eq!(auth.jwks_uri, "https://idp/keys");
}

#[test]
fn router_disabled_installs_only_the_crds() {
    for set in [
        "networking.kthenaRouter.enabled=false",
        "networking.enabled=false",
    ] {
        let o = render(&[set]);
        assert!(o.is_empty(), "{set}: {:?}", kinds(&o));
    }
}

/// The chart ships exactly the generated CRDs (Helm installs them on first install).
#[test]
fn chart_crds_are_the_generated_crds() {
    let list = |dir: &std::path::Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| {
                let p = e.expect("entry").path();
                (
                    p.file_name().expect("name").to_string_lossy().into_owned(),
                    std::fs::read(&p).expect("read"),
                )
            })
            .collect();
        files.sort();
        files
    };
    let generated = list(&repo_root().join("crds"));
    let shipped = list(&helm::chart_dir().join("crds"));
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&shipped),
        names(&generated),
        "charts/kthena/crds: cp crds/*.yaml charts/kthena/crds/"
    );
    for ((name, a), (_, b)) in shipped.iter().zip(&generated) {
        assert!(
            a == b,
            "charts/kthena/crds/{name} differs from crds/{name}: cp crds/*.yaml charts/kthena/crds/"
        );
    }
}

/// The image the chart runs: the Dockerfile builds both binaries and runs as the chart's user.
#[test]
fn dockerfile_builds_the_binaries_as_the_charts_user() {
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).expect("Dockerfile");
    for bin in ["kthena-router", "kthena-mock"] {
        assert!(
            dockerfile.contains(&format!("target/release/{bin}")),
            "Dockerfile does not build {bin}"
        );
    }
    let o = render(&[]);
    let uid = find(&o, "Deployment", "kthena-router")["spec"]["template"]["spec"]
        ["securityContext"]["runAsUser"]
        .as_i64()
        .expect("runAsUser");
    assert!(
        dockerfile.contains(&format!("USER {uid}:{uid}")),
        "the image's USER is not the chart's runAsUser {uid}"
    );
    assert!(!has_arg(&o, "--manifests"), "Kubernetes mode in the chart");
}

/// The cluster example NOTES.txt points at runs the mock from the chart's default image, on
/// the Pods and port the example ModelServer selects.
#[test]
fn the_cluster_mock_example_matches_the_chart_and_the_model_server() {
    let read = |p: &str| {
        let text =
            std::fs::read_to_string(repo_root().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        helm::parse(&text).expect("YAML").remove(0)
    };
    let deployment = read("examples/cluster/mock-engine-deepseek-r1-1-5b.yaml");
    let server = read("examples/modelserver-deepseek-r1-1-5b.yaml");
    let pod = &deployment["spec"]["template"];
    for (k, v) in server["spec"]["workloadSelector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(&pod["metadata"]["labels"][k], v, "label {k}");
    }
    let c = &pod["spec"]["containers"][0];
    assert_eq!(
        c["ports"][0]["containerPort"],
        server["spec"]["workloadPort"]["port"]
    );
    assert!(
        c["args"]
            .as_array()
            .expect("args")
            .contains(&Value::from("--listen=0.0.0.0:8000"))
    );
    let notes =
        std::fs::read_to_string(helm::chart_dir().join("templates/NOTES.txt")).expect("NOTES");
    assert!(notes.contains("examples/cluster/mock-engine-deepseek-r1-1-5b.yaml"));
    let chart_image = container(&render(&[]))["image"].clone();
    assert_eq!(
        c["image"], chart_image,
        "the mock runs from the router image"
    );
    assert!(
        c["command"][0]
            .as_str()
            .is_some_and(|cmd| cmd.ends_with("/kthena-mock")),
        "{c}"
    );
}

#[test]
fn the_router_configuration_is_kthenas_configmap_mounted_where_the_flag_reads_it() {
    let objects = render(&[]);
    let cm = find(&objects, "ConfigMap", "kthena-router-config");
    let text = cm["data"]["routerConfiguration"]
        .as_str()
        .expect("routerConfiguration");
    let cfg = kthena_api::router_config::parse(text).expect("the chart's configuration reads");
    let d = kthena_core::scheduler::SchedulerConfig::default();
    assert_eq!(
        (&cfg.scheduler.filters, &cfg.scheduler.scores),
        (&d.filters, &d.scores)
    );
    cfg.scheduler
        .build(&Default::default())
        .expect("and builds");
    assert_args(
        &objects,
        &[
            "--scheduler-config=/etc/config/routerConfiguration.yaml",
            "--metrics-scrape-interval=1s",
            "--outlier-consecutive-failures=5",
            "--retry-budget-percent=20",
            "--retry-budget-min-concurrency=3",
            "--rate-limit-redis-failure-mode=closed",
            "--rate-limit-redis-timeout=500ms",
        ],
    );
    assert!(
        mounts(&objects).contains(&("router-config".to_owned(), "/etc/config".to_owned())),
        "{:?}",
        mounts(&objects)
    );
    // A user's configuration replaces the default, verbatim.
    let custom = "scheduler:\n  plugins:\n    Score:\n      enabled:\n      - name: random\n";
    let objects = render(&[&format!(
        "networking.kthenaRouter.routerConfiguration={custom}"
    )]);
    let cm = find(&objects, "ConfigMap", "kthena-router-config");
    let cfg =
        kthena_api::router_config::parse(cm["data"]["routerConfiguration"].as_str().expect("text"))
            .expect("reads");
    assert_eq!(cfg.scheduler.scores, [("random".to_owned(), 1.0)]);
    assert_binary_accepts(&objects);
}

/// Fairness values (Kthena's keys, and kthena-rs's additions) become the router's
/// `--fairness-*` flags when enabled, none when not; the schema refuses a negative weight.
#[test]
fn fairness_values_become_flags_when_enabled() {
    let off = render(&[]);
    assert!(
        !args(&off).iter().any(|a| a.contains("fairness")),
        "{:?}",
        args(&off)
    );
    let objects = render(&[
        "networking.kthenaRouter.fairness.enabled=true",
        "networking.kthenaRouter.fairness.windowSize=30m",
        "networking.kthenaRouter.fairness.inputTokenWeight=1.5",
        "networking.kthenaRouter.fairness.outputTokenWeight=3",
        "networking.kthenaRouter.fairness.maxConcurrent=8",
        "networking.kthenaRouter.fairness.queueTimeout=20s",
    ]);
    assert_args(
        &objects,
        &[
            "--enable-fairness-scheduling=true",
            "--fairness-window-size=30m",
            "--fairness-input-token-weight=1.5",
            "--fairness-output-token-weight=3",
            "--fairness-priority-token-weight=1",
            "--fairness-priority-request-num-weight=0",
            "--fairness-max-concurrent=8",
            "--fairness-max-qps=100",
            "--fairness-queue-timeout=20s",
            "--fairness-max-queue-size=5000",
        ],
    );
    assert_binary_accepts(&objects);
    let e = refused(&["networking.kthenaRouter.fairness.outputTokenWeight=-1"]);
    assert!(e.contains("outputTokenWeight"), "{e}");
}

/// Global rate limits' Redis failure mode and timeout are values; the router reads them as
/// flags, and the schema refuses a mode it does not know.
#[test]
fn global_rate_limit_values_become_flags() {
    let objects = render(&[
        "networking.kthenaRouter.rateLimit.redisFailureMode=open",
        "networking.kthenaRouter.rateLimit.redisTimeout=250ms",
    ]);
    assert_args(
        &objects,
        &[
            "--rate-limit-redis-failure-mode=open",
            "--rate-limit-redis-timeout=250ms",
        ],
    );
    assert_binary_accepts(&objects);
    let e = refused(&["networking.kthenaRouter.rateLimit.redisFailureMode=half"]);
    assert!(e.contains("redisFailureMode"), "{e}");
}
