//! Harness of the end-to-end tests: starts the real `kthena-router` and `kthena-mock`
//! binaries on loopback addresses, writes the standalone manifests they read, and waits on
//! their output lines (never on sleeps).
//!
//! The binaries are found next to the test executable (`target/<profile>/`); `cargo test
//! --workspace` builds them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod cluster;
pub mod helm;
pub mod redis;

/// How long any expected output line may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// The path of a workspace binary built beside the test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` (or `cargo test --workspace`)",
        path.display()
    );
    path
}

/// A child process whose output lines are collected; killed when dropped.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `bin` with `args` and `env`, collecting stdout and stderr.
    pub fn spawn(name: &str, bin: &Path, args: &[String], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let (tx, lines) = channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        for (stream, reader) in [
            ("out", Box::new(stdout) as Box<dyn std::io::Read + Send>),
            ("err", Box::new(stderr)),
        ] {
            let tx = tx.clone();
            let log = log.clone();
            let name = name.to_owned();
            std::thread::spawn(move || {
                for line in BufReader::new(reader).lines().map_while(Result::ok) {
                    log.lock()
                        .expect("log lock")
                        .push(format!("[{name} {stream}] {line}"));
                    let _ = tx.send(line);
                }
            });
        }
        Self {
            name: name.to_owned(),
            child,
            lines,
            log,
        }
    }

    /// Waits for an output line containing `needle` and returns it.
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!(
                        "{}: no line with {needle:?} within {WAIT:?}; output:\n{}",
                        self.name,
                        self.output()
                    )
                }
            }
        }
    }

    /// Waits for the router's `listening server=<server> addr=<addr>` line; the address.
    pub fn listening(&self, server: &str) -> SocketAddr {
        let line = self.wait_for(&format!("server={server} "));
        line.split("addr=")
            .nth(1)
            .and_then(|a| a.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "kill -TERM {}",
            self.child.id()
        );
    }

    /// Sends signal `name` (`HUP`, `TERM`, ...) with `kill`.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -s {name} {}", self.name);
    }

    /// True while the process has not exited.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("polling the child").is_none()
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("polling the child") {
                return status.code();
            }
            // Exit is observed by polling: there is no portable child-exit channel in std.
            std::thread::yield_now();
        }
        panic!(
            "{} did not exit within {WAIT:?}:\n{}",
            self.name,
            self.output()
        )
    }

    /// Every line printed so far.
    pub fn output(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }

    /// Lines printed so far that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.log
            .lock()
            .expect("log lock")
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- output of {} ----\n{}", self.name, self.output());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static NEXT_ENV: AtomicU32 = AtomicU32::new(0);

/// One test's world: a manifest folder, mock engines on `127.77.<k>.<n>`, one router.
#[derive(Debug)]
pub struct Env {
    /// The manifest folder the router watches.
    pub dir: PathBuf,
    block: u32,
    next_host: u32,
    /// The port every mock of this env listens on (the ModelServers' workloadPort).
    pub port: Option<u16>,
    mocks: Vec<Process>,
}

impl Env {
    /// A fresh, empty world.
    pub fn new() -> Self {
        let n = NEXT_ENV.fetch_add(1, Ordering::Relaxed);
        let block = 1 + (std::process::id() % 50) * 5 + n;
        let dir = std::env::temp_dir().join(format!("kthena-e2e-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the manifest folder");
        Self {
            dir,
            block: block % 250 + 1,
            next_host: 2,
            port: None,
            mocks: Vec::new(),
        }
    }

    /// Starts a mock engine as Pod `name` with `labels` and extra mock flags; writes the Pod.
    /// Returns the Pod's IP.
    pub fn mock(&mut self, name: &str, labels: &[(&str, &str)], flags: &[&str]) -> String {
        let ip = format!("127.77.{}.{}", self.block, self.next_host);
        self.next_host += 1;
        let listen = format!("{ip}:{}", self.port.unwrap_or(0));
        let mut args = vec![
            "--listen".to_owned(),
            listen,
            "--pod-name".to_owned(),
            name.to_owned(),
        ];
        args.extend(flags.iter().map(|f| (*f).to_owned()));
        let p = Process::spawn(name, &binary("kthena-mock"), &args, &[("RUST_LOG", "warn")]);
        let line = p.wait_for("kthena-mock listening on ");
        let addr: SocketAddr = line
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .expect("mock address");
        self.port.get_or_insert(addr.port());
        self.mocks.push(p);
        self.pod(name, labels, Some(&ip));
        ip
    }

    /// An engine written by the test: Pod `name` (label `app: name`) on a loopback address of
    /// its own and this env's port, each connection handed to `serve` on a thread of its own,
    /// with ModelServer `name` and ModelRoute `name` sending `model` to it. For engines that
    /// misbehave in ways no mock flag offers. Returns the Pod's IP.
    pub fn raw_engine(
        &mut self,
        name: &str,
        model: &str,
        serve: impl Fn(std::net::TcpStream) + Send + Sync + 'static,
    ) -> String {
        let ip = format!("127.77.{}.{}", self.block, self.next_host);
        self.next_host += 1;
        let listener = std::net::TcpListener::bind(format!("{ip}:{}", self.port.unwrap_or(0)))
            .expect("binding the engine's address");
        let port = listener.local_addr().expect("engine address").port();
        self.port.get_or_insert(port);
        let serve = Arc::new(serve);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let serve = serve.clone();
                std::thread::spawn(move || serve(conn));
            }
        });
        self.pod(name, &[("app", name)], Some(&ip));
        self.model_server(name, name, "");
        self.route(name, model, name);
        ip
    }

    /// Writes a Pod manifest; `ip: None` makes a Pod that is not ready.
    pub fn pod(&self, name: &str, labels: &[(&str, &str)], ip: Option<&str>) {
        let labels: BTreeMap<_, _> = labels.iter().copied().collect();
        let labels = labels
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let status = match ip {
            Some(ip) => format!(
                "phase: Running\n  podIP: {ip}\n  conditions: [{{type: Ready, status: \"True\"}}]"
            ),
            None => "phase: Pending".to_owned(),
        };
        self.write(
            &format!("pod-{name}.yaml"),
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\n  labels: {{{labels}}}\n\
                 status:\n  {status}\n"
            ),
        );
    }

    /// Writes `text` as `file` in the manifest folder (atomically: write then rename).
    pub fn write(&self, file: &str, text: &str) {
        let tmp = self.dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text).expect("writing a manifest");
        std::fs::rename(&tmp, self.dir.join(file)).expect("renaming a manifest");
    }

    /// Copies `examples/<file>`, with every `port: 8000` replaced by this env's mock port.
    pub fn example(&self, file: &str) {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(file);
        let text =
            std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        let port = self.port.expect("start a mock before copying ModelServers");
        self.write(file, &text.replace("port: 8000", &format!("port: {port}")));
    }

    /// A ModelServer `name` selecting `app: <app>` on this env's port, with extra spec YAML.
    pub fn model_server(&self, name: &str, app: &str, extra: &str) {
        let port = self.port.expect("start a mock first");
        self.write(
            &format!("ms-{name}.yaml"),
            &format!(
                "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelServer\n\
                 metadata: {{name: {name}, namespace: default}}\nspec:\n  inferenceEngine: vLLM\n  \
                 workloadSelector: {{matchLabels: {{app: {app}}}}}\n  workloadPort: {{port: {port}}}\n{extra}"
            ),
        );
    }

    /// One engine serving `model`: mock Pod `name` (label `app: name`, extra mock `flags`),
    /// ModelServer `name` selecting it and ModelRoute `name` sending `model` to it. Returns the
    /// Pod's IP.
    pub fn engine(&mut self, name: &str, model: &str, flags: &[&str]) -> String {
        let mut all = vec!["--served-model-name", model];
        all.extend_from_slice(flags);
        let ip = self.mock(name, &[("app", name)], &all);
        self.model_server(name, name, "");
        self.route(name, model, name);
        ip
    }

    /// A ModelRoute `name` sending `model` to ModelServer `server`.
    pub fn route(&self, name: &str, model: &str, server: &str) {
        self.write(
            &format!("mr-{name}.yaml"),
            &format!(
                "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
                 metadata: {{name: {name}, namespace: default}}\nspec:\n  modelName: {model}\n  \
                 rules:\n  - targetModels:\n    - modelServerName: {server}\n"
            ),
        );
    }

    /// A router in gateway mode with the Inference Extension, `--port` `port`.
    pub fn gateway_router(&self, port: u16) -> Router {
        let port = port.to_string();
        self.router(&[
            "--enable-gateway-api",
            "--enable-gateway-api-inference-extension",
            "--port",
            &port,
        ])
    }

    /// Starts the router on this env's folder with extra flags; waits until it serves.
    pub fn router(&self, flags: &[&str]) -> Router {
        self.router_with_env(flags, &[("RUST_LOG", "info")])
    }

    /// [`Env::router`] with the process environment `env` (which should set `RUST_LOG`).
    pub fn router_with_env(&self, flags: &[&str], env: &[(&str, &str)]) -> Router {
        let mut args: Vec<String> = [
            "--manifests",
            self.dir.to_str().expect("utf-8 temp path"),
            "--manifests-interval",
            "20ms",
            "--listen-address",
            "127.0.0.1",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--debug-port",
            "0",
            "--workers",
            "2",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        // A flag given by the test replaces the default (clap refuses repeated flags).
        for flag in flags.iter().filter(|f| f.starts_with("--")) {
            if let Some(i) = args.iter().position(|a| a == flag) {
                args.drain(i..i + 2);
            }
        }
        args.extend(flags.iter().map(|f| (*f).to_owned()));
        let p = Process::spawn("router", &binary("kthena-router"), &args, env);
        let (api, metrics, debug) = (
            p.listening("router"),
            p.listening("metrics"),
            p.listening("debug"),
        );
        p.wait_for("configuration in force");
        Router {
            process: p,
            api,
            metrics,
            debug,
        }
    }
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running router.
#[derive(Debug)]
pub struct Router {
    /// Its output.
    pub process: Process,
    /// Inference API address.
    pub api: SocketAddr,
    /// Metrics address.
    pub metrics: SocketAddr,
    /// Debug address.
    pub debug: SocketAddr,
}

impl Router {
    /// `http://<api><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    /// GETs `path` on the debug port.
    pub async fn debug(&self, path: &str) -> Answer {
        get(&client(), &format!("http://{}{path}", self.debug)).await
    }

    /// Waits for the access log line of a request for `model`, checks that it has every
    /// token (` key=value`), and returns it.
    pub fn access_log_line(&self, model: &str, tokens: &[&str]) -> String {
        let line = self.process.wait_for(&format!("model_name={model}"));
        for token in tokens {
            assert!(line.contains(token), "{token} missing in {line}");
        }
        line
    }
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// `x-mock-pod` (which engine answered), if any.
    pub pod: Option<String>,
    /// `x-mock-http-version`: the HTTP version the engine was spoken to with, if any.
    pub http_version: Option<String>,
    /// Body.
    pub body: String,
}

impl Answer {
    /// The answer of a response with `status`, `headers` and `body`.
    pub fn new(status: u16, headers: &awc::http::header::HeaderMap, body: &[u8]) -> Self {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            status,
            pod: header("x-mock-pod"),
            http_version: header("x-mock-http-version"),
            body: String::from_utf8_lossy(body).into_owned(),
        }
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// A port that was free a moment ago (for manifests that must name a port up front).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}

/// A client with generous timeouts for tests.
pub fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
}

/// POSTs `body` to `url` with `headers`.
pub async fn post(
    client: &awc::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<bytes::Bytes>,
) -> Answer {
    let mut req = client
        .post(url)
        .insert_header(("content-type", "application/json"));
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let resp = req
        .send_body(body.into())
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    answer(url, resp).await
}

/// GETs `url`.
pub async fn get(client: &awc::Client, url: &str) -> Answer {
    let resp = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    answer(url, resp).await
}

/// Reads a whole response.
async fn answer<S>(url: &str, mut resp: awc::ClientResponse<S>) -> Answer
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
{
    let body = resp
        .body()
        .limit(16 << 20)
        .await
        .unwrap_or_else(|e| panic!("reading {url}: {e}"));
    Answer::new(resp.status().as_u16(), resp.headers(), &body)
}

/// A chat request body for `model`.
pub fn chat(model: &str) -> String {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
        .to_string()
}
