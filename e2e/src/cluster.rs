//! Harness of the cluster end-to-end tests (`tests/cluster.rs`): `kubectl` against the API
//! server of `$KUBECONFIG`, one throwaway namespace per test, engine Pods whose status is
//! patched by hand so that neither a scheduler nor a kubelet is needed (their IPs are
//! `kthena-mock` engines on loopback), and the real `kthena-router` run as a local process in
//! Kubernetes mode.
//!
//! Every kubectl step is printed on stderr. What a test creates in its namespace, and the
//! namespace, are deleted when its [`Cleanup`] guard drops, also when the test fails. The CRDs
//! and the GatewayClass `kthena-router` are cluster-scoped and may be shared with others: they
//! are left in place.
//!
//! Waits are bounded: `kubectl wait --timeout`, and for what the router does asynchronously
//! (serving a new configuration, writing status) a retry of the condition until a deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{Answer, Process, Router, binary};

/// `spec.nodeName` of every engine Pod: set at creation, so no scheduler is needed; no kubelet
/// runs there, so the status the test patches stays as patched.
pub const FAKE_NODE: &str = "e2e-fake-node";

/// Bound of every `kubectl wait` and of every retried condition.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Pause between two tries of a retried condition.
pub const POLL: Duration = Duration::from_millis(250);

/// The router's log line after each configuration it assembled from the API server.
pub const REBUILT: &str = "configuration updated from the API server";

/// The router's log line each time it publishes a route table (weighted pickers restart).
pub const PUBLISHED: &str = "route table published";

/// The field manager of every write the tests make.
const FIELD_MANAGER: &str = "kthena-e2e";

/// Namespaced kinds the tests create (or make the router create), deleted one by one before
/// the namespace: on a bare API server no namespace controller deletes a namespace's content.
const NAMESPACED_KINDS: &[&str] = &[
    "modelroutes.networking.serving.volcano.sh",
    "modelservers.networking.serving.volcano.sh",
    "httproutes.gateway.networking.k8s.io",
    "gateways.gateway.networking.k8s.io",
    "inferencemodels.inference.networking.x-k8s.io",
    "inferencepools.inference.networking.x-k8s.io",
    "inferencepools.inference.networking.k8s.io",
    "leases.coordination.k8s.io",
    "serviceaccounts",
];

static NEXT_NAMESPACE: AtomicU32 = AtomicU32::new(0);

/// The repository root (where `crds/` and `examples/` are).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where the upstream Gateway API and Inference Extension CRDs are looked for:
/// `../shared/upstream-crds/` relative to the repository root.
pub fn upstream_crds_dir() -> PathBuf {
    repo_root().join("../shared/upstream-crds")
}

/// The `.yaml` files of `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// `kubectl` bound to one kubeconfig and one namespace. Every command is printed before it
/// runs; [`Kube::run`] panics with kubectl's stderr when a command fails.
#[derive(Debug, Clone)]
pub struct Kube {
    kubeconfig: String,
    namespace: String,
}

impl Kube {
    /// kubectl on `kubeconfig` (the value of `$KUBECONFIG`), in `namespace`.
    pub fn new(kubeconfig: &str, namespace: &str) -> Self {
        Self {
            kubeconfig: kubeconfig.to_owned(),
            namespace: namespace.to_owned(),
        }
    }

    /// The namespace every command runs in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The kubeconfig (as `$KUBECONFIG` gave it).
    pub fn kubeconfig(&self) -> &str {
        &self.kubeconfig
    }

    /// Runs `kubectl <args>` with `stdin`; its stdout, or a message with its stderr.
    ///
    /// `--kubeconfig` is passed when `$KUBECONFIG` names one file (a `:`-separated list only
    /// works through the environment, which is set as well). Every command but `wait` (whose
    /// watch `--timeout` bounds) carries `--request-timeout=30s`.
    pub fn try_run(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", &self.kubeconfig);
        if !self.kubeconfig.contains(':') {
            cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        }
        cmd.arg("--namespace").arg(&self.namespace);
        if args.first() != Some(&"wait") {
            cmd.arg("--request-timeout=30s");
        }
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match stdin {
            Some(text) => eprintln!(
                "+ kubectl -n {} {} <<EOF\n{}\nEOF",
                self.namespace,
                args.join(" "),
                text.trim_end()
            ),
            None => eprintln!("+ kubectl -n {} {}", self.namespace, args.join(" ")),
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting kubectl (is it installed?): {e}"))?;
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().expect("piped stdin");
            pipe.write_all(text.as_bytes())
                .map_err(|e| format!("writing kubectl's stdin: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("waiting for kubectl: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "kubectl {} failed ({}): {}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim_end(),
                if stdout.is_empty() {
                    String::new()
                } else {
                    format!("\nstdout: {stdout}")
                }
            ))
        }
    }

    /// Runs `kubectl <args>`; its stdout. Panics when kubectl fails.
    pub fn run(&self, args: &[&str]) -> String {
        self.try_run(args, None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Applies `manifest` (YAML or JSON, one or more objects) with server-side apply, so an
    /// object created meanwhile by a controller (the `default` ServiceAccount) is no conflict.
    pub fn apply_yaml(&self, manifest: &str) {
        self.try_run(
            &[
                "apply",
                "--server-side",
                "--field-manager",
                FIELD_MANAGER,
                "-f",
                "-",
            ],
            Some(manifest),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Applies the file `path` with server-side apply (CRDs are too large for the annotation
    /// of a client-side apply), taking over fields other managers own; the applied objects as
    /// `kind.group/name`.
    pub fn apply_file(&self, path: &Path) -> Vec<String> {
        let path = path.to_str().expect("utf-8 path");
        self.run(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            FIELD_MANAGER,
            "-o",
            "name",
            "-f",
            path,
        ])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
    }

    /// `kubectl wait --for=condition=<condition> --timeout=60s <resources>`: each resource
    /// (`kind/name`) has a condition of that type with status True.
    pub fn wait_condition<S: AsRef<str>>(&self, condition: &str, resources: &[S]) {
        let for_ = format!("--for=condition={condition}");
        let timeout = format!("--timeout={}s", TIMEOUT.as_secs());
        let mut args = vec!["wait", for_.as_str(), timeout.as_str()];
        args.extend(resources.iter().map(AsRef::as_ref));
        let out = self.run(&args);
        eprint!("{out}");
    }

    /// `kubectl get <resource> -o json`, parsed.
    pub fn get_json(&self, resource: &str) -> Value {
        let text = self.run(&["get", resource, "-o", "json"]);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Creates Pod `name` with `labels` on [`FAKE_NODE`], one container `engine` (image
    /// `kthena-mock`, never pulled: no kubelet runs there), no service account token.
    pub fn create_pod(&self, name: &str, labels: &[(&str, &str)]) {
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": self.namespace, "labels": labels},
            "spec": {
                "nodeName": FAKE_NODE,
                "automountServiceAccountToken": false,
                "containers": [{"name": "engine", "image": "kthena-mock"}],
            },
        });
        self.apply_yaml(&pod.to_string());
    }

    /// Patches the status of Pod `name` as a kubelet would for a started, ready container:
    /// phase Running, `podIP` `ip`, condition Ready=True.
    pub fn patch_pod_ready(&self, name: &str, ip: &str) {
        let status = json!({"status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
        }})
        .to_string();
        self.run(&[
            "patch",
            &format!("pod/{name}"),
            "--subresource=status",
            "--type=merge",
            "-p",
            &status,
        ]);
    }
}

/// The condition of type `kind` in a `conditions` list, or `null`.
pub fn condition(conditions: &Value, kind: &str) -> Value {
    conditions
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .cloned()
        .unwrap_or_default()
}

/// Deletes a test's namespace and everything in it when dropped (also when the test panics).
///
/// Engine Pods are deleted with `--grace-period=0 --force` (no kubelet confirms a graceful
/// deletion), then each kind of [`NAMESPACED_KINDS`], then the namespace. When no namespace
/// controller finishes the deletion (a bare API server runs none), what is left is deleted and
/// the namespace is finalized through its `finalize` subresource.
#[derive(Debug)]
pub struct Cleanup {
    kube: Kube,
}

impl Cleanup {
    /// A guard for `kube`'s namespace.
    pub fn new(kube: Kube) -> Self {
        Self { kube }
    }

    fn step(&self, args: &[&str]) -> Option<String> {
        match self.kube.try_run(args, None) {
            Ok(out) => Some(out),
            Err(e) => {
                eprintln!("cleanup: {e}");
                None
            }
        }
    }

    /// `Ok(Some(namespace))` while it exists, `Ok(None)` once it is gone, `Err` when it cannot
    /// be read.
    fn namespace(&self) -> Result<Option<Value>, ()> {
        let ns = format!("namespace/{}", self.kube.namespace);
        let text = self
            .step(&["get", &ns, "--ignore-not-found", "-o", "json"])
            .ok_or(())?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text).map(Some).map_err(|_| ())
    }

    fn finalize_by_hand(&self, mut namespace: Value) {
        let ns = self.kube.namespace.clone();
        eprintln!(
            "cleanup: no namespace controller finished deleting {ns} (a bare API server has \
             none): deleting what is left and finalizing the namespace by hand"
        );
        if let Some(kinds) = self.step(&[
            "api-resources",
            "--verbs=list,delete",
            "--namespaced",
            "-o",
            "name",
        ]) {
            let kinds: Vec<&str> = kinds.lines().filter(|l| !l.trim().is_empty()).collect();
            if !kinds.is_empty() {
                self.step(&[
                    "delete",
                    &kinds.join(","),
                    "--all",
                    "--ignore-not-found",
                    "--wait=false",
                ]);
            }
        }
        namespace["spec"]["finalizers"] = json!([]);
        let path = format!("/api/v1/namespaces/{ns}/finalize");
        if let Err(e) = self.kube.try_run(
            &["replace", "--raw", &path, "-f", "-"],
            Some(&namespace.to_string()),
        ) {
            eprintln!("cleanup: {e}");
        }
        self.step(&[
            "delete",
            &format!("namespace/{ns}"),
            "--ignore-not-found",
            "--wait=false",
        ]);
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ns = self.kube.namespace.clone();
        eprintln!("---- cleanup of namespace {ns} ----");
        self.step(&[
            "delete",
            "pods",
            "--all",
            "--grace-period=0",
            "--force",
            "--ignore-not-found",
            "--wait=false",
        ]);
        for kind in NAMESPACED_KINDS {
            self.step(&[
                "delete",
                kind,
                "--all",
                "--ignore-not-found",
                "--wait=false",
            ]);
        }
        self.step(&[
            "delete",
            &format!("namespace/{ns}"),
            "--ignore-not-found",
            "--wait=false",
        ]);
        // A namespace controller sets status conditions as it works; none within this time
        // means there is none.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let namespace = match self.namespace() {
                Ok(Some(namespace)) => namespace,
                Ok(None) => {
                    eprintln!("cleanup: namespace {ns} deleted");
                    break;
                }
                Err(()) => {
                    eprintln!("cleanup: cannot read namespace {ns}: check it by hand");
                    break;
                }
            };
            let conditions = namespace["status"]["conditions"]
                .as_array()
                .is_some_and(|c| !c.is_empty());
            if conditions {
                let timeout = format!("--timeout={}s", 2 * TIMEOUT.as_secs());
                if self
                    .step(&["wait", "--for=delete", &format!("namespace/{ns}"), &timeout])
                    .is_none()
                {
                    eprintln!("cleanup: namespace {ns} is still being deleted by its controller");
                }
                break;
            }
            if Instant::now() >= deadline {
                self.finalize_by_hand(namespace);
                if !matches!(self.namespace(), Ok(None)) {
                    eprintln!("cleanup: namespace {ns} is still there: delete it by hand");
                }
                break;
            }
            std::thread::sleep(POLL);
        }
        eprintln!(
            "cleanup: the CRDs and the GatewayClass kthena-router are cluster-scoped and left in place"
        );
    }
}

/// One test's namespace on the cluster of `$KUBECONFIG`, with the CRDs installed.
#[derive(Debug)]
pub struct Cluster {
    /// kubectl in the test's namespace.
    pub kube: Kube,
    /// Dropped last: deletes the namespace.
    _cleanup: Cleanup,
}

impl Cluster {
    /// Sets up test `test`: a namespace `kthena-e2e-<pid>-<n>` (with a `default`
    /// ServiceAccount, which Pod admission needs and a bare API server does not create), our
    /// CRDs (`crds/*.yaml`) and, with `gateway`, the upstream Gateway API and Inference
    /// Extension CRDs (`../shared/upstream-crds/*.yaml`), each waited for until Established.
    ///
    /// `None`, after printing why, when the test must be skipped: `$KUBECONFIG` unset, or
    /// `gateway` and the upstream CRDs not found.
    pub fn start(test: &str, gateway: bool) -> Option<Self> {
        let kubeconfig = match std::env::var("KUBECONFIG") {
            Ok(k) if !k.trim().is_empty() => k,
            _ => {
                eprintln!(
                    "SKIPPED {test}: $KUBECONFIG is not set; the cluster tests need an API \
                     server (cargo test -p kthena-e2e --test cluster -- --ignored --test-threads=1)"
                );
                return None;
            }
        };
        let upstream = upstream_crds_dir();
        if gateway && !upstream.is_dir() {
            eprintln!(
                "SKIPPED {test}: the upstream Gateway API / Inference Extension CRDs are not at {}",
                upstream.display()
            );
            return None;
        }
        let n = NEXT_NAMESPACE.fetch_add(1, Ordering::Relaxed);
        let namespace = format!("kthena-e2e-{}-{n}", std::process::id());
        eprintln!("==== {test}: namespace {namespace} ====");
        let kube = Kube::new(&kubeconfig, &namespace);
        let cleanup = Cleanup::new(kube.clone());
        kube.apply_yaml(
            &json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": namespace, "labels": {"app.kubernetes.io/created-by": FIELD_MANAGER}},
            })
            .to_string(),
        );
        kube.apply_yaml(
            &json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": namespace},
            })
            .to_string(),
        );
        let mut files = yaml_files(&repo_root().join("crds"));
        if gateway {
            files.extend(yaml_files(&upstream));
        }
        let mut crds: Vec<String> = Vec::new();
        for file in &files {
            crds.extend(
                kube.apply_file(file)
                    .into_iter()
                    .filter(|o| o.starts_with("customresourcedefinition")),
            );
        }
        kube.wait_condition("Established", &crds);
        Some(Self {
            kube,
            _cleanup: cleanup,
        })
    }

    /// Applies `examples/<file>` in the test namespace: every `namespace: default` becomes the
    /// test namespace, and each `(from, to)` of `replace` is applied (each must occur, so a
    /// changed example fails loudly rather than silently testing something else).
    pub fn example(&self, file: &str, replace: &[(&str, String)]) {
        let path = repo_root().join("examples").join(file);
        let mut text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let ns = format!("namespace: {}", self.kube.namespace);
        for (from, to) in [("namespace: default", ns.as_str())]
            .into_iter()
            .chain(replace.iter().map(|(f, t)| (*f, t.as_str())))
        {
            assert!(text.contains(from), "{file} has no {from:?}");
            text = text.replace(from, to);
        }
        self.kube.apply_yaml(&text);
    }

    /// Creates Pod `name` with `labels` and marks it Running and Ready with IP `ip` (a
    /// `kthena-mock` engine listening there).
    pub fn engine_pod(&self, name: &str, labels: &[(&str, &str)], ip: &str) {
        self.kube.create_pod(name, labels);
        self.kube.patch_pod_ready(name, ip);
    }

    /// Starts `kthena-router` in Kubernetes mode on `127.0.0.1:<port>`, watching the test
    /// namespace only and competing for the Lease `kthena-e2e-<namespace>` there, with extra
    /// `flags` and `RUST_LOG=<log>`; waits until it has applied its first configuration (every
    /// initial list done).
    pub fn router(&self, port: u16, flags: &[&str], log: &str) -> Router {
        let ns = self.kube.namespace.as_str();
        let (port, metrics, debug) = (
            port.to_string(),
            crate::free_port().to_string(),
            crate::free_port().to_string(),
        );
        let lease = format!("kthena-e2e-{ns}");

        let mut args: Vec<String> = [
            "--listen-address",
            "127.0.0.1",
            "--port",
            &port,
            "--metrics-port",
            &metrics,
            "--debug-port",
            &debug,
            "--workers",
            "2",
            "--namespace",
            ns,
            "--watch-namespace",
            ns,
            "--pod-name",
            "e2e-router",
            "--lease-name",
            &lease,
            "--manage-service-ports=false",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        // Each router's webhook on its own port, unless the test gives one.
        if !flags.contains(&"--webhook-port") {
            args.extend(["--webhook-port".to_owned(), crate::free_port().to_string()]);
        }
        args.extend(flags.iter().map(|f| (*f).to_owned()));
        eprintln!(
            "+ KUBECONFIG={} RUST_LOG={log} kthena-router {}",
            self.kube.kubeconfig,
            args.join(" ")
        );
        let p = Process::spawn(
            "router",
            &binary("kthena-router"),
            &args,
            &[("RUST_LOG", log), ("KUBECONFIG", &self.kube.kubeconfig)],
        );
        let (api, metrics, debug) = (
            p.listening("router"),
            p.listening("metrics"),
            p.listening("debug"),
        );
        p.wait_for(REBUILT);
        eprintln!("router: first configuration applied");
        Router {
            process: p,
            api,
            metrics,
            debug,
        }
    }
}

/// Calls `attempt` until it returns `Ok`, at most for `timeout`, pausing [`POLL`] between
/// tries; panics with `what` and the last error when time is up. For conditions the router
/// reaches asynchronously (status written, a configuration applied), never for a fixed delay.
pub fn retry_until<T>(
    what: &str,
    timeout: Duration,
    mut attempt: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match attempt() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => {
                panic!("{what}: still not the case after {timeout:?}: {e}")
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// [`retry_until`] for async attempts (requests to the router), pausing without blocking.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match attempt().await {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => {
                panic!("{what}: still not the case after {timeout:?}: {e}")
            }
            Err(_) => actix_rt::time::sleep(POLL).await,
        }
    }
}

/// Waits (bounded) until `process` has printed at least `count` lines containing `needle`;
/// returns those lines. Reads the whole log, so a line printed before the call counts.
pub fn wait_logged(process: &Process, needle: &str, count: usize) -> Vec<String> {
    retry_until(
        &format!("{count} log lines with {needle:?}"),
        TIMEOUT,
        || {
            let lines = process.lines_with(needle);
            if lines.len() >= count {
                Ok(lines)
            } else {
                Err(format!("{} so far", lines.len()))
            }
        },
    )
}

/// POSTs `body` to `url` with `headers`; connection errors are an `Err` (a port that is not
/// served yet), not a panic.
pub async fn try_post(
    client: &awc::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: String,
) -> Result<Answer, String> {
    let mut req = client
        .post(url)
        .insert_header(("content-type", "application/json"));
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let mut resp = req
        .send_body(body)
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let bytes = resp
        .body()
        .limit(16 << 20)
        .await
        .map_err(|e| format!("reading {url}: {e}"))?;
    Ok(Answer::new(resp.status().as_u16(), resp.headers(), &bytes))
}

/// [`try_post`] that is `Ok` only for a 200 answer.
pub async fn post_ok(
    client: &awc::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: String,
) -> Result<Answer, String> {
    let a = try_post(client, url, headers, body).await?;
    if a.status == 200 {
        Ok(a)
    } else {
        Err(format!("{} {}", a.status, a.body))
    }
}

/// Sends `n` requests with `send` (each must answer 200), counts them by `key` and checks the
/// counts equal `want`.
///
/// A weighted picker restarts its cycle whenever the router publishes a route table, which
/// every applied configuration does (one of its own status writes is enough). A run during
/// which a table was published and whose split is off proves nothing, so it is run again (at
/// most 5 times); a run without one must be exact.
pub async fn exact_split<F, Fut>(
    router: &Router,
    n: usize,
    want: &BTreeMap<String, usize>,
    mut send: F,
    key: impl Fn(&Answer) -> String,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Answer>,
{
    for run in 1..=5 {
        let before = router.process.lines_with(PUBLISHED).len();
        let mut split = BTreeMap::new();
        for _ in 0..n {
            let a = send().await;
            assert_eq!(a.status, 200, "{}", a.body);
            *split.entry(key(&a)).or_insert(0) += 1;
        }
        if &split == want {
            eprintln!("split over {n} requests: {split:?}");
            return;
        }
        let after = router.process.lines_with(PUBLISHED).len();
        assert_ne!(
            before, after,
            "no route table was published during the run, yet the split is {split:?}, not {want:?}"
        );
        eprintln!("run {run}: a route table was published meanwhile ({split:?}): again");
    }
    panic!("the router kept publishing route tables: no undisturbed run of {n} requests");
}
