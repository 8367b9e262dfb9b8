//! `--port` over HTTPS (`--tls-cert`, `--tls-key`): a real rustls client on 127.0.0.1 against
//! the router's own listener, certificates from rcgen, reloads called directly (no timers).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use clap::Parser;
use kthena_dataplane::access_log::{AccessLog, Format, Sink};
use kthena_dataplane::actors::listener::{Listener, Stop};
use kthena_dataplane::exchange::Observability;
use kthena_dataplane::handlers::RouterContext;
use kthena_dataplane::metrics::Metrics;
use kthena_dataplane::state::Shared;
use kthena_dataplane::tls::files::{CertFileError, CertFiles, CertPaths, Reload};
use rustls::pki_types::CertificateDer;

/// A self-signed certificate for localhost.
struct Issued {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn issue() -> Issued {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("test cert");
    Issued {
        cert_pem: c.cert.pem(),
        key_pem: c.key_pair.serialize_pem(),
        der: c.cert.der().clone(),
    }
}

/// A temporary folder holding `tls.crt` and `tls.key`; removed when dropped.
struct Files {
    dir: PathBuf,
    paths: CertPaths,
}

impl Files {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("kthena-router-tls-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let paths = CertPaths {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        };
        Self { dir, paths }
    }

    fn write(&self, cert_pem: &str, key_pem: &str) {
        std::fs::write(&self.paths.cert, cert_pem).expect("write cert");
        std::fs::write(&self.paths.key, key_pem).expect("write key");
    }

    fn issue(&self) -> Issued {
        let issued = issue();
        self.write(&issued.cert_pem, &issued.key_pem);
        issued
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn context(expose_metrics: bool) -> RouterContext {
    let registry = prometheus::Registry::new();
    let metrics = Metrics::new(&registry).expect("metrics register");
    // A series with a value, so the exposition is not empty.
    metrics.active_downstream.with_label_values(&["m"]).set(0);
    let obs = Arc::new(Observability {
        metrics,
        access_log: AccessLog {
            enabled: false,
            format: Format::Text,
            sink: Sink::Stdout,
        },
    });
    let shared = Arc::new(Shared::default());
    shared.set_ready();
    RouterContext {
        shared,
        obs,
        max_body_bytes: 1024,
        max_connections: 1_000,
        max_header_bytes: 64 << 10,
        metrics: expose_metrics.then_some(registry),
        pod_tls: kthena_dataplane::upstream::tls::client_config(&Default::default())
            .expect("default pod TLS"),
        outlier: Default::default(),
        retry_budget: Default::default(),
        timeouts: Default::default(),
        rate_limits: Default::default(),
        fairness: None,
        auth: None,
    }
}

/// Starts the router's `--port` listener on 127.0.0.1 serving `files`; its address.
fn serve(files: Arc<CertFiles>, expose_metrics: bool) -> (SocketAddr, Addr<Listener>) {
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("bound address");
    let listener = kthena_dataplane::app::router_listener(
        socket,
        context(expose_metrics),
        (1, Duration::from_secs(1)),
        Some(files),
    )
    .expect("TLS listener")
    .start();
    (addr, listener)
}

async fn stop(listener: Addr<Listener>) {
    listener
        .send(Stop {
            graceful: false,
            drain: Duration::from_secs(1),
        })
        .await
        .expect("listener stops");
}

/// One GET over a new TLS connection (a client trusting `trusted`, TLS 1.2 or 1.3): the leaf
/// the server presented and the raw HTTP response.
async fn get(
    addr: SocketAddr,
    trusted: Vec<CertificateDer<'static>>,
    path: &str,
) -> (CertificateDer<'static>, String) {
    let path = path.to_owned();
    actix_rt::task::spawn_blocking(move || {
        let mut roots = rustls::RootCertStore::empty();
        for t in trusted {
            roots.add(t).expect("trust");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = "localhost".try_into().expect("server name");
        let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(
            format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        )
        .expect("request sent over TLS");
        let mut response = Vec::new();
        // The server may close without close_notify once the response is sent.
        match tls.read_to_end(&mut response) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
            Err(e) => panic!("reading the response: {e}"),
        }
        let leaf = tls.conn.peer_certificates().expect("server certificate")[0].clone();
        (leaf, String::from_utf8_lossy(&response).into_owned())
    })
    .await
    .expect("client thread")
}

#[actix_rt::test]
async fn the_router_port_serves_https_and_a_reload_swaps_the_certificate_live() {
    let files = Files::new("reload");
    let first = files.issue();
    let serving = Arc::new(CertFiles::load(files.paths.clone()).expect("certificate loads"));
    let (addr, listener) = serve(serving.clone(), false);
    let (leaf, response) = get(addr, vec![first.der.clone()], "/healthz").await;
    assert_eq!(leaf, first.der);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    assert_eq!(serving.reload().expect("same files"), Reload::Unchanged);

    let next = files.issue();
    assert_eq!(serving.reload().expect("renewed files"), Reload::Replaced);
    assert_eq!(serving.leaf(), next.der);
    let trusted = vec![first.der.clone(), next.der.clone()];
    let (leaf, response) = get(addr, trusted, "/healthz").await;
    assert_eq!(leaf, next.der, "a new connection sees the new certificate");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    stop(listener).await;
}

#[actix_rt::test]
async fn broken_certificate_files_are_refused_and_the_old_certificate_stays() {
    let files = Files::new("broken");
    let first = files.issue();
    let serving = Arc::new(CertFiles::load(files.paths.clone()).expect("certificate loads"));
    let (addr, listener) = serve(serving.clone(), false);
    let next = issue();

    // Half-way through a rotation: the new certificate with the old key.
    files.write(&next.cert_pem, &first.key_pem);
    let err = serving.reload().expect_err("key is not the certificate's");
    assert!(matches!(err, CertFileError::Pair { .. }), "{err}");
    assert!(err.to_string().contains("tls.crt"), "{err}");
    // Garbage, then a missing key file: each named.
    files.write("garbage", &first.key_pem);
    let err = serving.reload().expect_err("not PEM");
    assert!(err.to_string().contains("tls.crt"), "{err}");
    files.write(&first.cert_pem, "garbage");
    let err = serving.reload().expect_err("no key");
    assert!(err.to_string().contains("tls.key"), "{err}");
    std::fs::remove_file(&files.paths.key).expect("remove key");
    let err = serving.reload().expect_err("missing key");
    assert!(err.to_string().contains("tls.key"), "{err}");

    let trusted = vec![first.der.clone(), next.der.clone()];
    let (leaf, response) = get(addr, trusted.clone(), "/healthz").await;
    assert_eq!(leaf, first.der, "the last good certificate is still served");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // Once the rotation completes, the new pair is taken.
    files.write(&next.cert_pem, &next.key_pem);
    assert_eq!(serving.reload().expect("complete pair"), Reload::Replaced);
    let (leaf, _) = get(addr, trusted, "/healthz").await;
    assert_eq!(leaf, next.der);
    stop(listener).await;
}

#[actix_rt::test]
async fn metrics_are_served_over_https_on_the_router_port_when_exposed() {
    let files = Files::new("metrics");
    let first = files.issue();
    let serving = Arc::new(CertFiles::load(files.paths.clone()).expect("certificate loads"));
    let (addr, listener) = serve(serving, true);
    let (_, response) = get(addr, vec![first.der], "/metrics").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains(kthena_dataplane::metrics::CONTENT_TYPE)
            && response.contains("kthena_router_active_downstream_requests{model=\"m\"} 0"),
        "{response}"
    );
    stop(listener).await;
}

fn load_error(paths: &CertPaths) -> String {
    CertFiles::load(paths.clone())
        .expect_err("unusable")
        .to_string()
}

#[test]
fn unusable_files_at_start_are_errors_naming_the_file() {
    let files = Files::new("start");
    let a = issue();
    let b = issue();
    let cert = files.paths.cert.display().to_string();
    let key = files.paths.key.display().to_string();

    let err = load_error(&files.paths);
    assert!(err.contains(&cert) && err.contains("reading"), "{err}");
    files.write("not a certificate", &a.key_pem);
    let err = load_error(&files.paths);
    assert!(err.contains(&cert), "{err}");
    files.write(&a.cert_pem, "not a key");
    let err = load_error(&files.paths);
    assert!(err.contains(&key), "{err}");
    files.write(&a.cert_pem, &b.key_pem);
    let err = load_error(&files.paths);
    assert!(err.contains(&cert) && err.contains(&key), "{err}");
    files.write(&a.cert_pem, &a.key_pem);
    assert_eq!(
        CertFiles::load(files.paths.clone())
            .expect("good pair")
            .leaf(),
        a.der
    );
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

#[actix_rt::test]
async fn the_router_does_not_start_with_a_missing_certificate_file() {
    let files = Files::new("run");
    let manifests = files.dir.join("manifests");
    std::fs::create_dir_all(&manifests).expect("manifests dir");
    let args = kthena_dataplane::args::Args::try_parse_from([
        "kthena-router",
        "--manifests",
        path_str(&manifests),
        "--port",
        "0",
        "--metrics-port",
        "0",
        "--debug-port",
        "0",
        "--listen-address",
        "127.0.0.1",
        "--tls-cert",
        path_str(&files.paths.cert),
        "--tls-key",
        path_str(&files.paths.key),
    ])
    .expect("flags parse");
    args.check().expect("both TLS flags");
    let err = kthena_dataplane::app::run(args.into_options(), None)
        .await
        .expect_err("no certificate file");
    let text = format!("{err:#}");
    assert!(text.contains(path_str(&files.paths.cert)), "{text}");
}
