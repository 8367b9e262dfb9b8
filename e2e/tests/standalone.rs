//! The router in standalone mode, end to end: real binaries on loopback, mock engines behind.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kthena_e2e::cluster::eventually;
use kthena_e2e::{Env, chat, client, free_port, get, post};

const SMALL: &str = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B";
const BIG: &str = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B";

/// The walkthrough's world from examples/: three engine Pods and the example routes.
fn walkthrough() -> Env {
    let mut env = Env::new();
    env.mock(
        "small-v1",
        &[("app", "deepseek-r1-1-5b"), ("version", "v1")],
        &["--served-model-name", SMALL],
    );
    env.mock(
        "small-v2",
        &[("app", "deepseek-r1-1-5b"), ("version", "v2")],
        &["--served-model-name", SMALL],
    );
    env.mock(
        "big",
        &[("app", "deepseek-r1-7b")],
        &["--served-model-name", BIG, "--lora", "lora-A,lora-B"],
    );
    for f in [
        "modelserver-deepseek-r1-1-5b.yaml",
        "modelserver-deepseek-r1-7b.yaml",
        "modelserver-deepseek-r1-1-5b-canary.yaml",
        "modelroute-simple.yaml",
        "modelroute-lora.yaml",
        "modelroute-subset.yaml",
        "modelroute-multi-models.yaml",
    ] {
        env.example(f);
    }
    env
}

fn content(answer: &kthena_e2e::Answer) -> String {
    answer.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[actix_rt::test]
async fn walkthrough_scenarios_answer_as_documented() {
    let env = walkthrough();
    let router = env.router(&[]);
    let c = client();
    let url = router.url("/v1/chat/completions");

    let simple = post(&c, &url, &[], chat("deepseek-r1")).await;
    assert_eq!(simple.status, 200, "{}", simple.body);
    assert_eq!(
        content(&simple),
        format!("This is simulated message from {SMALL}!")
    );

    let lora = post(&c, &url, &[], chat("lora-A")).await;
    assert_eq!(
        (lora.status, lora.pod.as_deref()),
        (200, Some("big")),
        "{}",
        lora.body
    );
    assert_eq!(content(&lora), "This is simulated message from lora-A!");

    let premium = post(
        &c,
        &url,
        &[("user-type", "premium")],
        chat("deepseek-multi"),
    )
    .await;
    assert_eq!(premium.pod.as_deref(), Some("big"), "{}", premium.body);
    assert_eq!(
        content(&premium),
        format!("This is simulated message from {BIG}!")
    );
    for headers in [vec![], vec![("user-type", "free")]] {
        let other = post(&c, &url, &headers, chat("deepseek-multi")).await;
        assert_eq!(
            content(&other),
            format!("This is simulated message from {SMALL}!"),
            "{headers:?}"
        );
    }

    // deepseek-subset: exactly 70/30 over 100 consecutive requests.
    let mut split = BTreeMap::new();
    for _ in 0..100 {
        let a = post(&c, &url, &[], chat("deepseek-r1-canary")).await;
        assert_eq!(a.status, 200, "{}", a.body);
        *split.entry(a.pod.unwrap_or_default()).or_insert(0) += 1;
    }
    assert_eq!(
        split,
        BTreeMap::from([("small-v1".to_owned(), 70), ("small-v2".to_owned(), 30)])
    );

    let models = get(&c, &router.url("/v1/models")).await.json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    for id in [
        "deepseek-r1",
        "deepseek-multi",
        "deepseek-r1-canary",
        "lora-A",
        "lora-B",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    assert_eq!(models["object"], "list");

    // The access log has Kthena's tokens.
    router.access_log_line(
        "lora-A",
        &[
            " model_route=default/deepseek-lora",
            " model_server=default/deepseek-r1-7b",
            " selected_pod=default/big",
        ],
    );
}

/// SIGHUP reads the configuration files again and never ends the process: a route file
/// behind a symlink edited in place (inotify on the folder cannot see it) and a scheduler
/// configuration apply at once, with hour-long polling intervals.
#[cfg(unix)]
#[actix_rt::test]
async fn sighup_rereads_the_configuration_and_keeps_serving() {
    let mut env = Env::new();
    env.mock(
        "engine",
        &[("app", "engine")],
        &["--served-model-name", "m", "--served-model-name", "n"],
    );
    env.model_server("engine", "engine", "");
    // Beside the folder, not in it: removed with it at the end.
    let outside = env.dir.join("..").join(format!(
        "{}-outside",
        env.dir.file_name().and_then(|n| n.to_str()).expect("utf-8")
    ));
    std::fs::create_dir_all(&outside).expect("temp dir");
    let route = |model: &str| {
        format!(
            "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
             metadata: {{name: linked, namespace: default}}\nspec:\n  modelName: {model}\n  \
             rules:\n  - targetModels:\n    - modelServerName: engine\n"
        )
    };
    // A symlink to a file in a subfolder, as in a ConfigMap volume (`x.yaml -> ..data/x.yaml`):
    // inotify does not see the file edited in place there.
    let linked = env.dir.join("..2026");
    std::fs::create_dir_all(&linked).expect("subfolder");
    let target = linked.join("route.yaml");
    std::fs::write(&target, route("m")).expect("write");
    std::os::unix::fs::symlink(&target, env.dir.join("mr-linked.yaml")).expect("symlink");
    let scheduler = outside.join("scheduler.yaml");
    let config = |score: &str| {
        format!("scheduler:\n  plugins:\n    Score:\n      enabled:\n      - name: {score}\n")
    };
    std::fs::write(&scheduler, config("least-request")).expect("write");
    let mut router = env.router(&[
        "--manifests-interval",
        "1h",
        "--scheduler-config",
        scheduler.to_str().expect("utf-8"),
        "--scheduler-config-interval",
        "1h",
    ]);
    let c = client();
    let url = router.url("/v1/chat/completions");
    assert_eq!(post(&c, &url, &[], chat("m")).await.status, 200);

    std::fs::write(&target, route("n")).expect("edit in place");
    std::fs::write(&scheduler, config("random")).expect("edit in place");
    router.process.signal("HUP");
    router
        .process
        .wait_for("SIGHUP: reading the configuration files again");
    let line = router.process.wait_for("scheduler configuration reloaded");
    assert!(line.contains("random"), "{line}");
    router.process.wait_for("route table published");
    assert_eq!(post(&c, &url, &[], chat("n")).await.status, 200);
    assert_eq!(post(&c, &url, &[], chat("m")).await.status, 404);
    assert!(router.process.running(), "SIGHUP ended the router");
    std::fs::remove_dir_all(&outside).ok();
}

/// A FIFO, a symlink to a device, an oversized file and a document nested 100,000 levels deep
/// in the manifest folder neither block the watcher nor fill its memory: the rest serves.
#[cfg(unix)]
#[actix_rt::test]
async fn fifos_devices_huge_and_deep_files_in_the_folder_are_left_alone() {
    let mut env = Env::new();
    env.engine("engine", "m", &[]);
    let made = std::process::Command::new("mkfifo")
        .arg(env.dir.join("a-fifo.yaml"))
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    std::os::unix::fs::symlink("/dev/zero", env.dir.join("b-zero.yaml")).expect("symlink");
    let huge = vec![b'#'; kthena_api::manifest::MAX_FILE_BYTES as usize + 1];
    std::fs::write(env.dir.join("c-huge.yaml"), huge).expect("write");
    // 100,000 levels in 200 KB: refused before the YAML parser (quadratic in depth) sees it.
    let deep = format!(
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
         metadata: {{name: deep}}\nspec: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    std::fs::write(env.dir.join("d-deep.yaml"), deep).expect("write");
    let router = env.router(&[]);
    let lines = router.process.lines_with("d-deep.yaml");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("nested deeper than 64 levels")),
        "{lines:?}"
    );
    // Logged with the file and the reason before the configuration was in force.
    let lines = router.process.lines_with("c-huge.yaml");
    assert!(lines.iter().any(|l| l.contains("larger than")), "{lines:?}");
    let a = post(
        &client(),
        &router.url("/v1/chat/completions"),
        &[],
        chat("m"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

/// An engine that dies mid-answer: the client never gets a short answer that reads as whole.
/// A JSON body is cut off with the connection (its announced length is never reached); a
/// stream gets an error event in OpenAI's shape, then the connection closes without the
/// stream's end. Both are counted as `stream_error`.
#[actix_rt::test]
async fn an_answer_cut_by_the_engine_is_never_passed_on_as_whole() {
    let mut env = Env::new();
    env.engine("dying", "m", &["--cut-body-after", "60"]);
    let router = env.router(&[]);
    let url = router.url("/v1/chat/completions");

    // The connection may close before the head is even written; when the head arrives, the
    // body falls short of its announced length (awc, unlike curl, does not report that itself).
    if let Ok(mut json) = client().post(&url).send_body(chat("m")).await {
        assert_eq!(json.status().as_u16(), 200);
        let announced: Option<usize> = json
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let body = json.body().await;
        assert!(
            match (&body, announced) {
                (Err(_), _) => true,
                (Ok(b), Some(n)) => b.len() < n,
                (Ok(_), None) => false,
            },
            "a cut JSON answer reads as whole: {announced:?} {body:?}"
        );
    }

    // awc ends a chunked body at a closed connection as if whole: the framing is read raw.
    let request = serde_json::json!({"model": "m", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let raw = raw_post(&url, &request);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("transfer-encoding: chunked"), "{text}");
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "the stream's end was written: {text}"
    );
    assert!(!text.contains("[DONE]"), "{text}");
    let event = text
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("data: "))
        .last()
        .unwrap_or_else(|| panic!("no event: {text}"));
    let event: serde_json::Value = serde_json::from_str(event).expect("the last event is JSON");
    assert_eq!(event["error"]["type"], "stream_error", "{text}");
    assert_eq!(event["error"]["code"], 502);

    let metrics = get(&client(), &format!("http://{}/metrics", router.metrics))
        .await
        .body;
    assert!(
        metrics.contains(r#"kthena_router_requests_total{error_type="stream_error",model="m",path="/v1/chat/completions",status_code="200"} 2"#),
        "{metrics}"
    );
}

/// An engine's error answer to a stream request is plain JSON with no `[DONE]`: it reaches
/// the client whole, never as a cut stream.
#[actix_rt::test]
async fn an_engine_error_to_a_stream_request_passes_whole() {
    let mut env = Env::new();
    env.engine("failing", "m", &["--failure-rate", "1.0"]);
    let router = env.router(&[]);
    let request = serde_json::json!({"model": "m", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let a = post(
        &client(),
        &router.url("/v1/chat/completions"),
        &[],
        request.to_string(),
    )
    .await;
    assert_eq!(a.status, 500, "{}", a.body);
    assert!(!a.body.contains("stream_error"), "{}", a.body);
    assert!(a.json()["error"].is_object(), "{}", a.body);
}

/// A body stalled either way is timed out: an upload that stops sending gets 408 and its
/// connection closed; an engine that stops sending after its headers ends the client's stream
/// with an error event and a closed connection.
#[actix_rt::test]
async fn stalled_bodies_are_timed_out_both_ways() {
    let mut env = Env::new();
    env.engine("slow", "m", &["--time-to-first-token", "20s"]);
    let router = env.router(&[
        "--request-body-timeout",
        "300ms",
        "--upstream-idle-timeout",
        "300ms",
    ]);
    let url = router.url("/v1/chat/completions");

    let started = Instant::now();
    let raw = raw_post_part(&url, 1000, r#"{"model": "m", "#);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains(r#""type":"request_timeout""#), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let request = serde_json::json!({"model": "m", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let raw = raw_post(&url, &request);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(r#""type":"stream_error""#), "{text}");
    assert!(text.contains("sent nothing for 300ms"), "{text}");
    assert!(!text.ends_with("0\r\n\r\n"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// An engine that sends one event far larger than any OpenAI event (no blank line for 4 MiB)
/// does not make the router hold it: the client receives it while the engine still sends it,
/// and the events after it are read as usual (the injected usage chunk is read and hidden).
#[test]
fn an_oversized_stream_event_reaches_the_client_before_it_ends() {
    use std::io::{BufRead, BufReader, Read, Write};
    const BIG: usize = 4 << 20;
    let (got_half, half) = std::sync::mpsc::channel::<()>();
    let half = std::sync::Mutex::new(half);
    let mut env = Env::new();
    env.raw_engine("giant", "m", move |conn| {
        let mut reader = BufReader::new(conn.try_clone().expect("clone"));
        let mut request_line = String::new();
        let _ = reader.read_line(&mut request_line);
        let mut conn = conn;
        if !request_line.starts_with("POST /v1/chat/completions ") {
            // The router's scrapes of /metrics and /v1/models.
            let _ = conn.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            return;
        }
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().expect("a length");
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("the body");
        let chunk = |conn: &mut std::net::TcpStream, data: &[u8]| {
            write!(conn, "{:x}\r\n", data.len())?;
            conn.write_all(data)?;
            conn.write_all(b"\r\n")
        };
        conn.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .expect("head");
        chunk(&mut conn, b"data: ").expect("start");
        let x = vec![b'x'; 64 << 10];
        for _ in 0..BIG / x.len() {
            if chunk(&mut conn, &x).is_err() {
                return;
            }
        }
        // The rest only once the client has received half of the event.
        let _ = half.lock().expect("lock").recv_timeout(Duration::from_secs(30));
        let end = "\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n\
                   data: [DONE]\n\n";
        let _ = chunk(&mut conn, end.as_bytes()).and_then(|()| conn.write_all(b"0\r\n\r\n"));
    });
    let router = env.router(&[]);
    let url = router.url("/v1/chat/completions");
    let rest = url.strip_prefix("http://").expect("http");
    let (authority, path) = rest.split_at(rest.find('/').expect("a path"));
    let request = serde_json::json!({"model": "m", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let mut socket = std::net::TcpStream::connect(authority).expect("connects");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        socket,
        "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{request}",
        request.len()
    )
    .expect("request written");
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut signalled = false;
    let mut xs = 0;
    loop {
        let n = socket.read(&mut buf).unwrap_or_else(|e| {
            panic!(
                "the event arrives while the engine holds its end back ({xs} bytes of it did): {e}"
            )
        });
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
        xs += buf[..n].iter().filter(|b| **b == b'x').count();
        if !signalled && xs >= BIG / 2 {
            signalled = true;
            got_half.send(()).expect("the engine waits");
        }
    }
    assert!(signalled, "the client never got half of the event");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "{}", &text[..200]);
    let body = &text[text.find("\r\n\r\n").expect("a head")..];
    assert_eq!(body.matches('x').count(), BIG);
    assert!(
        text.trim_end().ends_with("0"),
        "the chunked stream ends cleanly"
    );
    assert!(text.contains("data: [DONE]"));
    assert!(
        !text.contains("usage"),
        "the injected usage chunk is hidden"
    );
    router.access_log_line("m", &[" tokens=3/4"]);
}

/// Every request's headers are timed, not only a connection's first: a kept-alive connection
/// that dribbles its next request's headers a byte at a time is closed once the idle and
/// headers timeouts have passed since its last answer, while a connection busy with a stream
/// longer than both keeps it whole.
#[actix_rt::test]
async fn a_kept_alive_connection_cannot_dribble_its_next_requests_headers() {
    use std::io::{Read, Write};
    let mut env = Env::new();
    env.engine(
        "engine",
        "m",
        &["--tokens", "15", "--inter-token-latency", "200ms"],
    );
    let router = env.router(&["--idle-timeout", "1s", "--request-headers-timeout", "1s"]);
    let url = router.url("/v1/chat/completions");

    // A stream of 3 s, past both timeouts, arrives whole.
    let stream = serde_json::json!({"model": "m", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let a = post(&client(), &url, &[], stream.to_string()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.trim_end().ends_with("data: [DONE]"), "{}", a.body);

    let authority = router
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut socket = std::net::TcpStream::connect(&authority).expect("connects");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    write!(socket, "GET /healthz HTTP/1.1\r\nhost: {authority}\r\n\r\n").expect("first request");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n") {
        match socket.read(&mut buf) {
            Ok(0) => panic!("closed before the first answer"),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // The next request's headers, a byte every 100 ms (each read waits that long), never
    // complete: the connection must close after 1 s idle + 1 s headers (+ the 1 s sweep).
    let answered = Instant::now();
    let next = b"GET /healthz HTTP/1.1\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let closed = next.iter().find_map(|byte| {
        if socket.write_all(&[*byte]).is_err() {
            return Some(answered.elapsed());
        }
        match socket.read(&mut buf) {
            Ok(0) => Some(answered.elapsed()),
            Ok(_) => panic!("answered headers never completed"),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(_) => Some(answered.elapsed()),
        }
    });
    let closed = closed.expect("still open after dribbling 8 s of headers");
    assert!(
        closed >= Duration::from_millis(1_900) && closed < Duration::from_secs(5),
        "closed {closed:?} after the answer"
    );
}

/// A request whose line and headers exceed `--max-header-bytes` gets 431 in OpenAI's shape and
/// is not forwarded; one under the limit is.
#[actix_rt::test]
async fn headers_over_the_limit_get_431_and_are_not_forwarded() {
    let mut env = Env::new();
    let ip = env.engine("engine", "m", &[]);
    let engine = format!("http://{ip}:{}/metrics", env.port.expect("a mock"));
    let router = env.router(&["--max-header-bytes", "1024"]);
    let c = client();
    let url = router.url("/v1/chat/completions");
    let big = "x".repeat(2_000);
    let a = post(&c, &url, &[("x-big", &big)], chat("m")).await;
    assert_eq!(a.status, 431, "{}", a.body);
    assert_eq!(a.json()["error"]["type"], "request_header_fields_too_large");
    assert!(
        a.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("over the limit of 1024")),
        "{}",
        a.body
    );
    let small = "x".repeat(500);
    let b = post(&c, &url, &[("x-big", &small)], chat("m")).await;
    assert_eq!(b.status, 200, "{}", b.body);
    let metrics = get(&c, &format!("http://{}/metrics", router.metrics))
        .await
        .body;
    assert!(
        metrics.contains(r#"kthena_router_requests_total{error_type="request_header_fields_too_large",model="unknown",path="/v1/chat/completions",status_code="431"} 1"#),
        "{metrics}"
    );
    // The engine served one request: the small one.
    let served = get(&c, &engine).await.body;
    let count = served
        .lines()
        .find(|l| l.starts_with("vllm:e2e_request_latency_seconds_count"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or_else(|| panic!("{served}"));
    assert_eq!(count, "1", "{served}");
}

/// Past `--max-connections` a client waits to be accepted instead of failing or taking a
/// descriptor, and is served once a connection closes; health probes, on the metrics port,
/// are answered meanwhile.
#[actix_rt::test]
async fn connections_past_the_cap_wait_and_probes_are_answered_meanwhile() {
    let mut env = Env::new();
    env.engine("engine", "m", &[]);
    let router = env.router(&[
        "--workers",
        "1",
        "--max-connections",
        "3",
        "--request-headers-timeout",
        "1s",
    ]);
    let c = client();
    let authority = router
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    // Three connections that never send a request hold the cap until their headers time out.
    let held = Instant::now();
    let _silent: Vec<std::net::TcpStream> = (0..3)
        .map(|_| std::net::TcpStream::connect(&authority).expect("connects"))
        .collect();
    let probe = get(&c, &format!("http://{}/readyz", router.metrics)).await;
    assert_eq!(probe.status, 200, "{}", probe.body);
    assert!(
        held.elapsed() < Duration::from_millis(800),
        "the probe waited {:?}",
        held.elapsed()
    );
    let a = post(&c, &router.url("/v1/chat/completions"), &[], chat("m")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        held.elapsed() >= Duration::from_millis(900),
        "served after {:?}, before a held connection closed",
        held.elapsed()
    );
}

/// A manifest file emptied in place (an editor or `>` redirection truncating it before
/// writing) keeps its objects: its route answers while it is empty; written again, the new
/// version applies; left empty, its objects go once it has been empty for the grace period.
#[actix_rt::test]
async fn an_emptied_manifest_keeps_its_objects_until_written_or_the_grace_ends() {
    let (_env, router, file, route) = route_file_env();
    let c = client();
    let url = router.url("/v1/chat/completions");
    assert_eq!(post(&c, &url, &[], chat("m")).await.status, 200);

    std::fs::write(&file, "").expect("truncated");
    router.process.wait_for("manifest file emptied");
    all_ok(&c, &url, "m", 20).await;

    std::fs::write(&file, route.replace("modelName: m", "modelName: n")).expect("written");
    let applied = "the rewritten route applies";
    until_answered(
        applied,
        Duration::from_secs(10),
        &c,
        &url,
        &[("m", 404), ("n", 200)],
    )
    .await;

    let emptied = Instant::now();
    std::fs::write(&file, "").expect("truncated");
    let gone = "the route goes after the grace";
    until_answered(gone, Duration::from_secs(15), &c, &url, &[("n", 404)]).await;
    assert!(
        emptied.elapsed() >= Duration::from_secs(2),
        "gone after {:?}, before the 3 s grace",
        emptied.elapsed()
    );
}

/// `--max-connections-per-ip`: a client address with that many connections open gets its
/// next one closed as it is accepted (counted), while its open ones keep working; closing one
/// makes room.
#[actix_rt::test]
async fn connections_past_the_per_address_cap_are_closed_as_accepted() {
    use std::io::{Read, Write};
    let mut env = Env::new();
    env.engine("engine", "m", &[]);
    let router = env.router(&["--max-connections-per-ip", "2"]);
    let healthz = |socket: &mut std::net::TcpStream| -> std::io::Result<String> {
        write!(socket, "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")?;
        let mut buf = [0u8; 1024];
        let n = socket.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let open = || {
        let s = std::net::TcpStream::connect(router.api).expect("connects");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    };
    let (mut a, mut b) = (open(), open());
    assert!(healthz(&mut a).expect("a").starts_with("HTTP/1.1 200"));
    assert!(healthz(&mut b).expect("b").starts_with("HTTP/1.1 200"));
    let mut c = open();
    match healthz(&mut c) {
        Ok(text) => assert!(text.is_empty(), "the third is answered: {text}"),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "{e}"
        ),
    }
    assert!(
        healthz(&mut a)
            .expect("a again")
            .starts_with("HTTP/1.1 200")
    );
    let metrics = get(&client(), &format!("http://{}/metrics", router.metrics))
        .await
        .body;
    assert!(
        metrics.contains(r#"kthena_router_connections_refused_total{reason="per_ip"} 1"#),
        "{metrics}"
    );
    drop(b);
    eventually(
        "a closed connection makes room",
        Duration::from_secs(10),
        || {
            let mut d = open();
            async move {
                match healthz(&mut d) {
                    Ok(t) if t.starts_with("HTTP/1.1 200") => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        },
    )
    .await;
}

/// A manifest file still open for writing is not read half-written, even when the half parses
/// (here as a header comment that declares nothing): its objects stay until the writer closes
/// it, or until it has gone 3 s without a write.
#[actix_rt::test]
async fn a_file_still_being_written_is_not_read_half_written() {
    use std::io::Write;
    let (_env, router, file, route) = route_file_env();
    let c = client();
    let url = router.url("/v1/chat/completions");
    assert_eq!(post(&c, &url, &[], chat("m")).await.status, 200);

    let mut writer = std::fs::File::create(&file).expect("opened for writing");
    writer
        .write_all(b"# the engine's route\n")
        .expect("a first part");
    router.process.wait_for("manifest file being written");
    all_ok(&c, &url, "m", 20).await;
    writer
        .write_all(route.replace("modelName: m", "modelName: n").as_bytes())
        .expect("the rest");
    drop(writer);
    let applied = "the whole file applies once closed";
    until_answered(
        applied,
        Duration::from_secs(10),
        &c,
        &url,
        &[("m", 404), ("n", 200)],
    )
    .await;

    // A writer that stops writing but never closes: read as it is 3 s after its last write.
    let opened = Instant::now();
    let mut writer = std::fs::File::create(&file).expect("opened for writing");
    writer.write_all(b"# nothing here\n").expect("written");
    let read = "the file is read after the quiet period";
    until_answered(read, Duration::from_secs(15), &c, &url, &[("n", 404)]).await;
    assert!(
        opened.elapsed() >= Duration::from_secs(2),
        "read after {:?}, before the 3 s quiet period",
        opened.elapsed()
    );
    router
        .process
        .wait_for("manifest file still open for writing");
    drop(writer);
}

/// Manifests that could wedge or blow up the watcher are refused, each logged with its file
/// and reason, and later changes still apply: a FIFO, a symlink leading out of the folder, a
/// symlink loop, a file of aliases that would expand past its budget, deep nesting.
#[actix_rt::test]
async fn hostile_manifest_files_are_refused_by_name_and_later_changes_apply() {
    let mut env = Env::new();
    env.engine("engine", "m", &["--served-model-name", "m2"]);
    let router = env.router(&[]);
    let c = client();
    let url = router.url("/v1/chat/completions");
    assert_eq!(post(&c, &url, &[], chat("m")).await.status, 200);

    let outside = env.dir.with_extension("outside.yaml");
    std::fs::write(&outside, "apiVersion: v1\nkind: Pod\nmetadata: {name: o}\n").expect("file");
    std::os::unix::fs::symlink(&outside, env.dir.join("link-out.yaml")).expect("link");
    std::os::unix::fs::symlink("loop.yaml", env.dir.join("loop.yaml")).expect("link");
    let fifo = std::process::Command::new("mkfifo")
        .arg(env.dir.join("fifo.yaml"))
        .status()
        .is_ok_and(|s| s.success());
    let big = format!(
        "[{}]",
        vec![format!("\"{}\"", "x".repeat(100)); 100].join(",")
    );
    let mut laughs =
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\ndata:\n  big: &b {big}\n");
    for i in 0..5000 {
        laughs.push_str(&format!("  r{i}: *b\n"));
    }
    env.write("aliases.yaml", &laughs);
    env.write(
        "deep.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nspec: {}\n",
            "[".repeat(100_000)
        ),
    );
    // A change after them all still applies.
    env.route("second", "m2", "engine");
    let applied = "the later route applies";
    until_answered(applied, Duration::from_secs(10), &c, &url, &[("m2", 200)]).await;
    // The load that applied it logged every refusal before this line.
    router.process.wait_for("modelroutes=2");
    for (reason, file) in [
        ("leading out of the folder", "link-out.yaml"),
        ("symbolic links", "loop.yaml"),
        ("aliases expand the document", "aliases.yaml"),
        ("nested deeper than", "deep.yaml"),
    ]
    .into_iter()
    .chain(fifo.then_some(("not a regular file", "fifo.yaml")))
    {
        let lines = router.process.lines_with(reason);
        assert!(
            lines.iter().any(|l| l.contains(file)),
            "no line says {file}: {reason}; output:\n{}",
            router.process.output()
        );
    }
    assert_eq!(post(&c, &url, &[], chat("m")).await.status, 200);
    let _ = std::fs::remove_file(&outside);
}

/// A ModelRoute `name` for model `name` to ModelServer `engine` with `spec.rateLimit` `limit`
/// (YAML flow-style keys, without braces).
fn limited_route(name: &str, limit: &str) -> String {
    format!(
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
         metadata: {{name: {name}, namespace: default}}\nspec:\n  modelName: {name}\n  \
         rules:\n  - targetModels:\n    - modelServerName: engine\n  \
         rateLimit: {{{limit}}}\n"
    )
}

/// Posts chat requests for `model` with `headers` until one is refused (at most `most`
/// admitted); the answers admitted and the refusal, which must be a 429.
async fn admitted_until_refused(
    c: &awc::Client,
    url: &str,
    headers: &[(&str, &str)],
    model: &str,
    most: usize,
) -> (Vec<kthena_e2e::Answer>, kthena_e2e::Answer) {
    let mut admitted = Vec::new();
    loop {
        let a = post(c, url, headers, chat(model)).await;
        match a.status {
            200 => admitted.push(a),
            429 => return (admitted, a),
            s => panic!("{s}: {}", a.body),
        }
        assert!(admitted.len() < most, "{model}: never refused");
    }
}

/// `spec.rateLimit` as Kthena enforces it, exact: a request reserves its prompt's estimated
/// tokens and the answer's usage settles them, so the prompts let through add up to at most
/// the budget; an output budget admits while one token is left and charges what the engine
/// generated. Past a budget: 429 with Kthena's text, `Retry-After`, and the counter.
#[actix_rt::test]
async fn token_rate_limits_refuse_past_the_budget_and_count_the_engines_tokens() {
    let mut env = Env::new();
    env.mock(
        "engine",
        &[("app", "engine")],
        &["--served-model-name", "m", "--served-model-name", "o"],
    );
    env.model_server("engine", "engine", "");
    env.write(
        "mr-m.yaml",
        &limited_route("m", "inputTokensPerUnit: 60, unit: hour"),
    );
    env.write(
        "mr-o.yaml",
        &limited_route("o", "outputTokensPerUnit: 10, unit: hour"),
    );
    let router = env.router(&[]);
    let c = client();
    let url = router.url("/v1/chat/completions");

    // Input: prompts add up to at most 60 tokens as the engine counts them.
    let (admitted, refused) = admitted_until_refused(&c, &url, &[], "m", 60).await;
    let prompt_tokens: u64 = admitted
        .iter()
        .map(|a| a.json()["usage"]["prompt_tokens"].as_u64().expect("usage"))
        .sum();
    assert!(!admitted.is_empty(), "the first request fits the budget");
    assert!(
        prompt_tokens <= 60,
        "{prompt_tokens} prompt tokens let through"
    );
    assert!(
        refused.body.contains("input token rate limit exceeded"),
        "{}",
        refused.body
    );
    // The response's Retry-After: the wait until the estimate fits, in whole seconds.
    let mut resp = c
        .post(&url)
        .insert_header(("content-type", "application/json"))
        .send_body(chat("m"))
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=3600).contains(&retry), "{retry}");
    let _ = resp.body().await;

    // Output: 10 a hour and 6 per answer: the second request is admitted with 4 left and
    // takes the bucket into debt; the third is refused.
    for _ in 0..2 {
        let a = post(&c, &url, &[], chat("o")).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.json()["usage"]["completion_tokens"], 6, "{}", a.body);
    }
    let a = post(&c, &url, &[], chat("o")).await;
    assert_eq!(a.status, 429, "{}", a.body);
    assert!(
        a.body.contains("output token rate limit exceeded"),
        "{}",
        a.body
    );

    let metrics = get(&client(), &format!("http://{}/metrics", router.metrics))
        .await
        .body;
    for (model, kind, n) in [("m", "input_tokens", 2), ("o", "output_tokens", 1)] {
        let line = format!(
            r#"kthena_router_rate_limit_exceeded_total{{limit_type="{kind}",model="{model}",path="/v1/chat/completions"}} {n}"#
        );
        assert!(metrics.contains(&line), "{line} missing in {metrics}");
    }
}

/// A client that leaves before the answer's headers, or in the middle of a stream, cancels the
/// engine's work at once: the router drops its upstream request, the engine sees its
/// connection close and frees the request's place (as vLLM aborts a request whose client
/// left), and the router counts and logs a 499 `client_disconnected`.
#[actix_rt::test]
async fn a_client_that_leaves_before_the_answer_cancels_the_engines_work() {
    use std::io::Write;
    let mut env = Env::new();
    let ip = env.engine("slow", "m", &["--time-to-first-token", "20s"]);
    let engine = format!("http://{ip}:{}/metrics", env.port.expect("a mock"));
    let ip = env.engine(
        "streamer",
        "s",
        &["--tokens", "300", "--inter-token-latency", "50ms"],
    );
    let streamer = format!("http://{ip}:{}/metrics", env.port.expect("a mock"));
    let router = env.router(&[]);
    let c = client();
    let running = |metrics: &str| -> Option<String> {
        metrics
            .lines()
            .find(|l| l.starts_with("vllm:num_requests_running"))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    };
    let engine_running = |want: &'static str| {
        let (c, engine) = (c.clone(), engine.clone());
        move || {
            let (c, engine) = (c.clone(), engine.clone());
            async move {
                let m = get(&c, &engine).await.body;
                match running(&m) {
                    Some(n) if n == want => Ok(()),
                    n => Err(format!("running {n:?}")),
                }
            }
        }
    };

    let url = router.url("/v1/chat/completions");
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_at(rest.find('/').expect("a path"));
    let body = chat("m");
    let mut socket = std::net::TcpStream::connect(authority).expect("connects");
    write!(
        socket,
        "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("request written");
    eventually(
        "the engine runs the request",
        Duration::from_secs(10),
        engine_running("1"),
    )
    .await;
    let left = Instant::now();
    drop(socket);
    eventually(
        "the engine's place is freed",
        Duration::from_secs(5),
        engine_running("0"),
    )
    .await;
    assert!(
        left.elapsed() < Duration::from_secs(5),
        "{:?}",
        left.elapsed()
    );
    let metrics = format!("http://{}/metrics", router.metrics);
    eventually("the router counts it", Duration::from_secs(5), || {
        let (c, metrics) = (c.clone(), metrics.clone());
        async move {
            let m = get(&c, &metrics).await.body;
            if m.contains(r#"kthena_router_requests_total{error_type="client_disconnected",model="m",path="/v1/chat/completions",status_code="499"} 1"#) {
                Ok(())
            } else {
                Err(m)
            }
        }
    })
    .await;
    let line = router.access_log_line("m", &["499"]);
    assert!(line.contains("client_disconnected"), "{line}");

    // Mid-stream: a client that leaves after the first chunks of a long stream.
    let body = serde_json::json!({"model": "s", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let mut socket = std::net::TcpStream::connect(authority).expect("connects");
    write!(
        socket,
        "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("request written");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("data: {") {
        let n = std::io::Read::read(&mut socket, &mut buf).expect("the stream starts");
        assert!(n > 0, "closed before the stream started");
        seen.extend_from_slice(&buf[..n]);
    }
    let streamer_running = |want: &'static str| {
        let (c, engine) = (c.clone(), streamer.clone());
        move || {
            let (c, engine) = (c.clone(), engine.clone());
            async move {
                match running(&get(&c, &engine).await.body) {
                    Some(n) if n == want => Ok(()),
                    n => Err(format!("running {n:?}")),
                }
            }
        }
    };
    eventually(
        "the stream runs",
        Duration::from_secs(5),
        streamer_running("1"),
    )
    .await;
    drop(socket);
    eventually(
        "the streaming engine's place is freed",
        Duration::from_secs(5),
        streamer_running("0"),
    )
    .await;
    let line = router.access_log_line("s", &["499"]);
    assert!(line.contains("client_disconnected"), "{line}");
}

/// A client cannot forge an access-log line or field, nor blow a line up: a model name with a
/// newline and `key=value`s, a request id with spaces and a 1 MiB model each stay one line,
/// escaped and cut.
#[actix_rt::test]
async fn access_log_lines_cannot_be_forged_or_blown_up() {
    let mut env = Env::new();
    env.engine("engine", "m", &[]);
    let router = env.router(&["--max-body-bytes", "4194304"]);
    let c = client();
    let url = router.url("/v1/chat/completions");
    let forged = "x\n[2026-01-01T00:00:00Z] \"POST /v1/chat/completions HTTP/1.1\" 200 model_name=forged selected_pod=default/evil";
    let a = post(&c, &url, &[("x-request-id", "one")], chat(forged)).await;
    assert_eq!(a.status, 404, "{}", a.body);
    let b = post(
        &c,
        &url,
        &[("x-request-id", "two selected_pod=default/evil")],
        chat("m"),
    )
    .await;
    assert_eq!(b.status, 200, "{}", b.body);
    let huge = "h".repeat(1 << 20);
    let d = post(&c, &url, &[("x-request-id", "three")], chat(&huge)).await;
    assert_eq!(d.status, 404);
    router.process.wait_for("request_id=three");
    let lines = router
        .process
        .lines_with("\"POST /v1/chat/completions HTTP/1.1\"");
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[0].contains(r#" model_name=x\x0a[2026-01-01T00:00:00Z]\x20\x22POST\x20"#),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(r" request_id=two\x20selected_pod=default/evil"),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains(" selected_pod=default/engine"),
        "{}",
        lines[1]
    );
    for l in &lines {
        assert!(
            !l.contains(" model_name=forged") && !l.contains(" selected_pod=default/evil"),
            "{l}"
        );
    }
    assert!(
        lines[2].len() < 1024,
        "a 1 MiB model makes a {}-byte line",
        lines[2].len()
    );
    assert!(lines[2].contains(&format!(" model_name={}... ", "h".repeat(256))));
}

#[actix_rt::test]
async fn errors_have_documented_status_and_body() {
    let mut env = Env::new();
    env.mock(
        "engine",
        &[("app", "engine")],
        &["--served-model-name", "m"],
    );
    env.model_server("engine", "engine", "");
    env.model_server("empty", "nobody", "");
    env.route("live", "m", "engine");
    env.route("dead", "dead", "empty");
    let router = env.router(&["--max-body-bytes", "2048"]);
    let c = client();
    let url = router.url("/v1/chat/completions");
    let big = format!(r#"{{"model":"m","prompt":"{}"}}"#, "x".repeat(4096));
    let cases: [(&str, String, u16, &str); 6] = [
        (
            "invalid JSON",
            "{not json".into(),
            400,
            "invalid request body",
        ),
        (
            "missing model",
            r#"{"messages":[]}"#.into(),
            404,
            "model not found",
        ),
        ("unknown model", chat("nope"), 404, "route not found"),
        (
            "no ready pod",
            chat("dead"),
            503,
            "no available pods for model server: default/empty",
        ),
        (
            "oversized body",
            big,
            413,
            "request body is larger than 2048 bytes",
        ),
        ("routed", chat("m"), 200, "simulated message"),
    ];
    for (what, body, status, message) in cases {
        let a = post(&c, &url, &[], body).await;
        assert_eq!(a.status, status, "{what}: {}", a.body);
        assert!(a.body.contains(message), "{what}: {}", a.body);
        if status != 200 {
            let e = a.json();
            assert_eq!(e["error"]["code"], status, "{what}: {}", a.body);
            assert!(
                e["error"]["type"].is_string() && e["error"]["message"].is_string(),
                "{what}"
            );
        }
    }
    let metrics = get(&c, &format!("http://{}/metrics", router.metrics))
        .await
        .body;
    assert!(metrics.contains(r#"kthena_router_requests_total{error_type="route_not_found",model="unknown",path="/v1/chat/completions",status_code="404"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"kthena_router_tokens_total{model="m",path="/v1/chat/completions",token_type="output"} 6"#), "{metrics}");
    let status = router.debug("/debug/status").await.json();
    let empty = status["modelservers"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["name"] == "empty"))
        .map(|u| u["status"].clone())
        .unwrap_or_default();
    assert_eq!(
        empty["conditions"][0]["reason"], "NoReadyEndpoints",
        "{status}"
    );
    assert_eq!(empty["readyEndpoints"], 0, "{status}");
    let routes = status["modelroutes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(routes.len(), 2, "{status}");
    assert!(
        routes
            .iter()
            .all(|r| r["status"]["conditions"][0]["status"] == "True"),
        "{status}"
    );
    let dump = router.debug("/debug/config_dump/modelroutes").await;
    assert_eq!(dump.status, 200);
    assert!(dump.body.contains("\"dead\""), "{}", dump.body);
}

#[actix_rt::test]
async fn stream_chunks_reach_the_client_before_the_engine_finishes() {
    let mut env = Env::new();
    env.engine("slow", "m", &["--inter-token-latency", "150ms"]);
    let router = env.router(&[]);
    let body = serde_json::json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let resp = client()
        .post(router.url("/v1/chat/completions"))
        .send_json(&body)
        .await
        .expect("stream starts");
    assert_eq!(resp.status().as_u16(), 200);
    let start = Instant::now();
    let mut chunks = Vec::new();
    let mut stream = resp;
    while let Some(chunk) = stream.next().await {
        chunks.push((start.elapsed(), chunk.expect("chunk")));
    }
    let text: String = chunks
        .iter()
        .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    // The router asked for usage but the client did not: no usage chunk reaches the client.
    assert!(!text.contains("\"usage\""), "{text}");
    // Six tokens 150 ms apart: the first arrives while the engine still has ~750 ms to go.
    let first = chunks.first().expect("a chunk").0;
    let last = chunks.last().expect("a chunk").0;
    assert!(
        last - first >= Duration::from_millis(500),
        "chunks were bunched: first {first:?}, last {last:?}"
    );
    // The router still counted the tokens from the hidden usage chunk (the mock's prompt
    // count is its chat template's, 4 bytes a token).
    let line = router.process.wait_for("/6 timings=");
    assert!(!line.contains(" tokens=0/"), "{line}");
}

#[actix_rt::test]
async fn retry_moves_a_failed_request_to_the_healthy_endpoint() {
    let mut env = Env::new();
    env.mock(
        "broken",
        &[("app", "pair")],
        &["--served-model-name", "m", "--failure-rate", "1.0"],
    );
    env.mock("healthy", &[("app", "pair")], &["--served-model-name", "m"]);
    // A ready Pod where nothing listens: connect errors are retried too.
    env.pod("gone", &[("app", "pair")], Some("127.0.0.254"));
    env.model_server(
        "pair",
        "pair",
        "  trafficPolicy:\n    retry: {attempts: 2, retryInterval: 1ms}\n",
    );
    env.route("pair", "m", "pair");
    let router = env.router(&[]);
    let c = client();
    for i in 0..12 {
        // Distinct prompts: prefix affinity to `healthy` would keep the others from being tried.
        let body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": format!("{i}")}]});
        let a = post(
            &c,
            &router.url("/v1/chat/completions"),
            &[],
            body.to_string(),
        )
        .await;
        assert_eq!(
            (a.status, a.pod.as_deref()),
            (200, Some("healthy")),
            "request {i}: {}",
            a.body
        );
    }
    // Access log lines are flushed every 50 ms: wait for all 12 before reading them.
    let attempts: Vec<String> = (0..12)
        .map(|_| router.process.wait_for("model_name=m"))
        .collect();
    assert!(
        attempts
            .iter()
            .any(|l| l.contains(" upstream_attempts=2") || l.contains(" upstream_attempts=3")),
        "{attempts:#?}"
    );

    // Without retries the engine's 500 is passed through.
    let mut env = Env::new();
    env.mock(
        "broken",
        &[("app", "one")],
        &["--served-model-name", "m", "--failure-rate", "1.0"],
    );
    env.model_server("one", "one", "");
    env.route("one", "m", "one");
    let router = env.router(&[]);
    let a = post(&c, &router.url("/v1/chat/completions"), &[], chat("m")).await;
    assert_eq!(a.status, 500, "{}", a.body);
}

#[actix_rt::test]
async fn a_stalled_engine_gives_504_after_the_timeout() {
    let mut env = Env::new();
    env.mock(
        "stalled",
        &[("app", "stalled")],
        &["--served-model-name", "m", "--time-to-first-token", "5s"],
    );
    env.model_server("stalled", "stalled", "  trafficPolicy: {timeout: 300ms}\n");
    env.route("stalled", "m", "stalled");
    let router = env.router(&[]);
    let started = Instant::now();
    let a = post(
        &client(),
        &router.url("/v1/chat/completions"),
        &[],
        chat("m"),
    )
    .await;
    assert_eq!(a.status, 504, "{}", a.body);
    assert!(
        a.body.contains("upstream timed out after 300ms"),
        "{}",
        a.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}

/// Two engines serving `m` behind ModelServers `blue` and `green`; ModelRoute `switch` sends
/// `m` to blue.
fn blue_green() -> Env {
    let mut env = Env::new();
    env.mock("blue", &[("app", "blue")], &["--served-model-name", "m"]);
    env.mock("green", &[("app", "green")], &["--served-model-name", "m"]);
    env.model_server("blue", "blue", "");
    env.model_server("green", "green", "");
    env.route("switch", "m", "blue");
    env
}

#[actix_rt::test]
async fn live_manifest_edits_under_load_lose_no_request() {
    let env = blue_green();
    let router = env.router(&[]);
    let url = router.url("/v1/chat/completions");
    // Load from threads of their own, so this thread can block waiting on the router's log.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (url, stop) = (url.clone(), stop.clone());
            std::thread::spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let c = client();
                    let mut seen = BTreeMap::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let a = post(&c, &url, &[], chat("m")).await;
                        assert_eq!(a.status, 200, "{}", a.body);
                        *seen.entry(a.pod.unwrap_or_default()).or_insert(0u32) += 1;
                    }
                    seen
                })
            })
        })
        .collect();
    // The load is running before the first edit.
    router.process.wait_for("model_name=m");
    // Flip the route between the two servers, and once through an invalid object that must be
    // left out while the rest keeps serving.
    for (i, target) in ["green", "blue", "green"].iter().enumerate() {
        env.route("switch", "m", target);
        router.process.wait_for("route table published");
        if i == 1 {
            env.write("mr-broken.yaml", "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\nmetadata: {name: broken}\nspec:\n  modelName: x\n  rules:\n  - modelMatch: {uri: {regex: '('}}\n    targetModels: [{modelServerName: blue}]\n");
            let err = router.process.wait_for("invalid manifest");
            assert!(
                err.contains("mr-broken.yaml")
                    && err.contains("ModelRoute default/broken")
                    && err.contains("spec.rules[0].modelMatch.uri.regex"),
                "{err}"
            );
            std::fs::remove_file(env.dir.join("mr-broken.yaml")).expect("remove broken route");
            // The folder with the broken file still applies (its other objects); wait for the
            // version without it before the next edit. Its ModelRoutes are those in force
            // already, so no new table is built for it.
            router.process.wait_for("problems=0");
        }
    }
    let c = client();
    let after = post(&c, &url, &[], chat("m")).await;
    assert_eq!(after.pod.as_deref(), Some("green"));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = BTreeMap::new();
    for task in load {
        for (pod, n) in task.join().expect("load thread") {
            *total.entry(pod).or_insert(0) += n;
        }
    }
    assert!(
        total.get("blue").copied().unwrap_or(0) > 0 && total.get("green").copied().unwrap_or(0) > 0,
        "{total:?}"
    );
}

#[actix_rt::test]
async fn sigterm_drains_a_stream_in_flight_then_exits() {
    let mut env = Env::new();
    env.engine("slow", "m", &["--inter-token-latency", "100ms"]);
    let mut router = env.router(&["--drain-timeout", "10s"]);
    let body = serde_json::json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let mut stream = client()
        .post(router.url("/v1/chat/completions"))
        .send_json(&body)
        .await
        .expect("stream starts");
    let first = stream.next().await.expect("a first chunk").expect("chunk");
    assert!(first.starts_with(b"data: "));
    router.process.terminate();
    router.process.wait_for("shutting down");
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.expect("the stream finishes cleanly"));
    }
    assert!(String::from_utf8_lossy(&rest).ends_with("data: [DONE]\n\n"));
    assert_eq!(router.process.wait_exit(), Some(0));
}

#[actix_rt::test]
async fn same_model_name_on_two_gateways_answers_from_different_engines() {
    let mut env = Env::new();
    env.mock("small", &[("app", "small")], &["--served-model-name", "m"]);
    env.mock("big", &[("app", "big")], &["--served-model-name", "m"]);
    env.model_server("small", "small", "");
    env.model_server("big", "big", "");
    let (a, b) = (free_port(), free_port());
    for (name, port) in [("default", a), ("gateway-b", b)] {
        gateway(&env, name, port);
    }
    for (route, parent, server) in [("on-a", "default", "small"), ("on-b", "gateway-b", "big")] {
        env.write(
            &format!("mr-{route}.yaml"),
            &format!(
                "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\nmetadata: {{name: {route}, namespace: default}}\n\
                 spec:\n  modelName: m\n  parentRefs: [{{name: {parent}, sectionName: http}}]\n  \
                 rules: [{{targetModels: [{{modelServerName: {server}}}]}}]\n"
            ),
        );
    }
    let port = a.to_string();
    let router = env.router(&["--enable-gateway-api", "--port", &port]);
    // Gateway ports are bound before the route table is published, which env.router waited for.
    let bound = router
        .process
        .lines_with(&format!("server=gateway addr=127.0.0.1:{b}"));
    assert_eq!(bound.len(), 1, "{}", router.process.output());
    let c = client();
    for (port, engine) in [(a, "small"), (b, "big")] {
        let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
        let answer = post(&c, &url, &[], chat("m")).await;
        assert_eq!(
            (answer.status, answer.pod.as_deref()),
            (200, Some(engine)),
            "port {port}: {}",
            answer.body
        );
    }
    let line = router.process.wait_for("gateway=default/gateway-b");
    assert!(line.contains(" model_route=default/on-b"), "{line}");
}

/// Writes a Gateway `name` with one HTTP listener `http` on `port`, routes from All namespaces.
fn gateway(env: &Env, name: &str, port: u16) {
    env.write(
        &format!("gw-{name}.yaml"),
        &format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: default}}\n\
             spec:\n  gatewayClassName: kthena-router\n  listeners:\n  - name: http\n    port: {port}\n    protocol: HTTP\n    \
             allowedRoutes: {{namespaces: {{from: All}}}}\n"
        ),
    );
}

/// Writes an InferencePool `name` (v1) selecting `app: <app>` on the env's mock port.
fn inference_pool(env: &Env, name: &str, app: &str) {
    let port = env.port.expect("a mock first");
    env.write(
        &format!("pool-{name}.yaml"),
        &format!(
            "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: {{name: {name}, namespace: default}}\n\
             spec:\n  selector: {{matchLabels: {{app: {app}}}}}\n  targetPorts: [{{number: {port}}}]\n  \
             endpointPickerRef: {{name: {name}-epp, port: {{number: 9002}}}}\n"
        ),
    );
}

#[actix_rt::test]
async fn httproutes_send_requests_to_inference_pools_by_model_header() {
    let mut env = Env::new();
    env.mock(
        "qwen-0",
        &[("app", "qwen")],
        &["--served-model-name", "qwen"],
    );
    env.mock(
        "deepseek-0",
        &[("app", "deepseek")],
        &["--served-model-name", "deepseek-r1"],
    );
    inference_pool(&env, "qwen-pool", "qwen");
    inference_pool(&env, "deepseek-pool", "deepseek");
    let port = free_port();
    gateway(&env, "default", port);
    env.write(
        "httproute.yaml",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: by-model, namespace: default}\n\
         spec:\n  parentRefs: [{name: default}]\n  rules:\n  \
         - matches: [{path: {type: PathPrefix, value: /}, headers: [{name: X-Gateway-Model-Name, value: qwen}]}]\n    \
           backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: qwen-pool}]\n  \
         - matches: [{path: {type: PathPrefix, value: /}, headers: [{name: X-Gateway-Model-Name, value: deepseek-r1}]}]\n    \
           filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-served-by, value: deepseek-pool}]}}]\n    \
           backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: deepseek-pool}]\n",
    );
    let router = env.gateway_router(port);
    let c = client();
    let url = router.url("/v1/completions");
    for (model, engine) in [("qwen", "qwen-0"), ("deepseek-r1", "deepseek-0")] {
        let body = serde_json::json!({"model": model, "prompt": "hi"}).to_string();
        let a = post(&c, &url, &[], body).await;
        assert_eq!(
            (a.status, a.pod.as_deref()),
            (200, Some(engine)),
            "{model}: {}",
            a.body
        );
        assert_eq!(
            a.json()["choices"][0]["text"],
            format!("This is simulated message from {model}!")
        );
    }
    // The response header filter applies to the deepseek rule only.
    let resp = c
        .post(&url)
        .send_body(serde_json::json!({"model": "deepseek-r1", "prompt": "hi"}).to_string())
        .await
        .expect("answer");
    assert_eq!(
        resp.headers()
            .get("x-served-by")
            .map(|v| v.to_str().unwrap()),
        Some("deepseek-pool")
    );
    // No rule matches another model: 404 route not found.
    let other = post(&c, &url, &[], chat("llama")).await;
    assert_eq!(other.status, 404, "{}", other.body);
    let dump = router.debug("/debug/config_dump/httproutes").await.json();
    assert_eq!(
        dump["attached"][0]["httproutes"][0], "default/by-model",
        "{dump}"
    );
    let status = router.debug("/debug/status").await.json();
    let parent = &status["httproutes"][0]["status"]["parents"][0];
    assert_eq!(
        parent["controllerName"], "volcano.sh/kthena-router",
        "{status}"
    );
    assert_eq!(parent["conditions"][0]["type"], "Accepted", "{status}");
    assert_eq!(parent["conditions"][0]["status"], "True", "{status}");
    assert_eq!(
        parent["conditions"][1]["reason"], "ResolvedRefs",
        "{status}"
    );
    let qwen = status["inferencepools"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "qwen-pool"))
        .map(|p| p["status"].clone())
        .unwrap_or_default();
    assert_eq!(
        qwen["parents"][0]["parentRef"]["name"], "default",
        "{status}"
    );
    let message = qwen["parents"][0]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("\"qwen-pool-epp\" is not called"),
        "{status}"
    );
    let pools = router
        .debug("/debug/config_dump/inferencepools")
        .await
        .json();
    assert_eq!(
        pools["inferencepools"].as_array().map(Vec::len),
        Some(2),
        "{pools}"
    );
    router.access_log_line(
        "qwen",
        &[
            " gateway=default/default",
            " http_route=default/by-model",
            " inference_pool=default/qwen-pool",
        ],
    );
}

#[actix_rt::test]
async fn httproute_path_prefix_slash_serves_completions_and_redirects() {
    let mut env = Env::new();
    env.mock(
        "engine-0",
        &[("app", "engine")],
        &["--served-model-name", "m"],
    );
    inference_pool(&env, "pool", "engine");
    let port = free_port();
    gateway(&env, "default", port);
    env.write(
        "httproute.yaml",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: all, namespace: default}\n\
         spec:\n  parentRefs: [{name: default, sectionName: http}]\n  rules:\n  \
         - matches: [{path: {type: PathPrefix, value: /old}}]\n    \
           filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /v1}, statusCode: 301}}]\n  \
         - matches: [{path: {type: PathPrefix, value: /}}]\n    \
           backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: pool, weight: 1}]\n  \
         - matches: [{path: {type: Exact, value: /empty}}]\n",
    );
    let router = env.gateway_router(port);
    let c = client();
    let body = serde_json::json!({"model": "m", "prompt": "hi"}).to_string();
    let a = post(&c, &router.url("/v1/completions"), &[], body.clone()).await;
    assert_eq!(
        (a.status, a.pod.as_deref()),
        (200, Some("engine-0")),
        "{}",
        a.body
    );
    let no_follow = awc::Client::builder().disable_redirects().finish();
    let redirected = no_follow
        .post(router.url("/old/completions"))
        .send_body(body.clone())
        .await
        .expect("answer");
    assert_eq!(redirected.status().as_u16(), 301);
    let location = redirected
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        location.ends_with(&format!(":{port}/v1/completions")),
        "{location}"
    );
    // A rule without backends answers 500, as the Gateway API asks.
    let empty = post(&c, &router.url("/empty"), &[], body).await;
    assert_eq!(empty.status, 500, "{}", empty.body);
}

#[actix_rt::test]
async fn inference_model_splits_its_model_exactly_over_target_models() {
    let mut env = Env::new();
    env.mock(
        "food-0",
        &[("app", "food")],
        &["--served-model-name", "food-review-1,food-review-2"],
    );
    let engine_port = env.port.expect("mock port");
    env.write(
        "pool.yaml",
        &format!(
            "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\nmetadata: {{name: food-pool, namespace: default}}\n\
             spec:\n  selector: {{app: food}}\n  targetPortNumber: {engine_port}\n  extensionRef: {{name: food-epp}}\n"
        ),
    );
    env.write(
        "model.yaml",
        "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\nmetadata: {name: food-review, namespace: default}\n\
         spec:\n  modelName: food-review\n  criticality: Critical\n  poolRef: {name: food-pool}\n  \
         targetModels: [{name: food-review-1, weight: 70}, {name: food-review-2, weight: 30}]\n",
    );
    let port = free_port();
    gateway(&env, "default", port);
    env.write(
        "httproute.yaml",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: food, namespace: default}\n\
         spec:\n  parentRefs: [{name: default}]\n  rules:\n  \
         - backendRefs: [{group: inference.networking.x-k8s.io, kind: InferencePool, name: food-pool}]\n",
    );
    let router = env.gateway_router(port);
    let c = client();
    let mut split = BTreeMap::new();
    for _ in 0..100 {
        let a = post(
            &c,
            &router.url("/v1/chat/completions"),
            &[],
            chat("food-review"),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.body);
        *split.entry(content(&a)).or_insert(0) += 1;
    }
    assert_eq!(
        split,
        BTreeMap::from([
            (
                "This is simulated message from food-review-1!".to_owned(),
                70
            ),
            (
                "This is simulated message from food-review-2!".to_owned(),
                30
            ),
        ])
    );
    router.access_log_line("food-review", &[" inference_pool=default/food-pool"]);
}

#[actix_rt::test]
async fn a_taken_port_is_port_unavailable_while_other_listeners_serve() {
    let mut env = Env::new();
    env.mock(
        "engine-0",
        &[("app", "engine")],
        &["--served-model-name", "m"],
    );
    env.model_server("engine", "engine", "");
    env.route("r", "m", "engine");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port to hold");
    let taken_port = taken.local_addr().expect("address").port();
    let free = free_port();
    env.write(
        "gw-default.yaml",
        &format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: default, namespace: default}}\n\
             spec:\n  gatewayClassName: kthena-router\n  listeners:\n  \
             - {{name: http, port: {free}, protocol: HTTP}}\n  - {{name: busy, port: {taken_port}, protocol: HTTP}}\n"
        ),
    );
    let p = free.to_string();
    let router = env.router(&["--enable-gateway-api", "--port", &p]);
    let c = client();
    let a = post(&c, &router.url("/v1/chat/completions"), &[], chat("m")).await;
    assert_eq!(
        (a.status, a.pod.as_deref()),
        (200, Some("engine-0")),
        "{}",
        a.body
    );
    let status = router.debug("/debug/status").await.json();
    let gw = &status["gateways"][0]["status"];
    let listener = |name: &str| {
        gw["listeners"]
            .as_array()
            .and_then(|ls| ls.iter().find(|l| l["name"] == name))
            .cloned()
            .unwrap_or_default()
    };
    let busy = listener("busy");
    assert_eq!(
        busy["conditions"][0]["reason"], "PortUnavailable",
        "{status}"
    );
    assert_eq!(busy["conditions"][1]["type"], "Programmed", "{status}");
    assert_eq!(busy["conditions"][1]["status"], "False", "{status}");
    let http = listener("http");
    assert_eq!(http["conditions"][1]["status"], "True", "{status}");
    assert_eq!(http["attachedRoutes"], 1, "{status}");
    assert_eq!(
        gw["conditions"][0]["reason"], "ListenersNotValid",
        "{status}"
    );
    drop(taken);
}

#[actix_rt::test]
async fn an_https_listener_serves_with_the_secret_certificate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let issued =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("test certificate");
    let indent = |pem: String| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    let mut env = Env::new();
    env.mock(
        "engine-0",
        &[("app", "engine")],
        &["--served-model-name", "m"],
    );
    env.model_server("engine", "engine", "");
    env.route("r", "m", "engine");
    env.write(
        "secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: router-tls, namespace: default}}\ntype: kubernetes.io/tls\n\
             stringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
            indent(issued.cert.pem()),
            indent(issued.key_pair.serialize_pem())
        ),
    );
    let (plain, tls) = (free_port(), free_port());
    env.write(
        "gw-default.yaml",
        &format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: default, namespace: default}}\n\
             spec:\n  gatewayClassName: kthena-router\n  listeners:\n  - {{name: http, port: {plain}, protocol: HTTP}}\n  \
             - name: https\n    port: {tls}\n    protocol: HTTPS\n    tls:\n      mode: Terminate\n      \
             certificateRefs: [{{name: router-tls}}]\n  - name: broken\n    port: {}\n    protocol: HTTPS\n    \
             tls: {{certificateRefs: [{{name: missing}}]}}\n  - name: foreign\n    port: {}\n    protocol: HTTPS\n    \
             tls: {{certificateRefs: [{{name: router-tls, namespace: elsewhere}}]}}\n",
            free_port(),
            free_port()
        ),
    );
    let p = plain.to_string();
    let router = env.router(&["--enable-gateway-api", "--port", &p]);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(issued.cert.der().clone())
        .expect("trust the test certificate");
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let url = format!("https://localhost:{tls}/v1/chat/completions");
    // HTTP/1.1, then h2 by ALPN (offered like Go's server does), logged as Go logs it.
    for (alpn, proto) in [("http/1.1", "HTTP/1.1"), ("h2", "HTTP/2.0")] {
        config.alpn_protocols = vec![alpn.as_bytes().to_vec()];
        let https = awc::Client::builder()
            .connector(awc::Connector::new().rustls_0_23(std::sync::Arc::new(config.clone())))
            .finish();
        let a = post(&https, &url, &[], chat("m")).await;
        assert_eq!(
            (a.status, a.pod.as_deref()),
            (200, Some("engine-0")),
            "{alpn}: {}",
            a.body
        );
        router.access_log_line(
            "m",
            &[&format!("\"POST /v1/chat/completions {proto}\" 200")],
        );
    }
    let status = router.debug("/debug/status").await.json();
    let listeners = status["gateways"][0]["status"]["listeners"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let find = |name: &str| {
        listeners
            .iter()
            .find(|l| l["name"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(find("https")["conditions"][1]["status"], "True", "{status}");
    assert_eq!(
        find("broken")["conditions"][2]["reason"],
        "InvalidCertificateRef",
        "{status}"
    );
    assert_eq!(
        find("broken")["conditions"][1]["status"],
        "False",
        "{status}"
    );
    assert_eq!(
        find("foreign")["conditions"][2]["reason"],
        "RefNotPermitted",
        "{status}"
    );
}

/// A Service backend in another namespace needs a ReferenceGrant; a listener admits routes by
/// namespace labels; a listener asking for HTTPS on the HTTP `--port` conflicts; every
/// condition repeats the object's generation; the Gateway reports its address.
#[actix_rt::test]
async fn service_backends_reference_grants_selectors_and_conflicts() {
    let mut env = Env::new();
    let ip = env.mock(
        "engine-0",
        &[("app", "engine")],
        &["--served-model-name", "m"],
    );
    let mock_port = env.port.expect("mock port");
    // The same engine as a Pod of namespace `models`, with a named container port.
    env.write(
        "pod-models.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: engine-0, namespace: models, labels: {{app: engine}}}}\n\
             spec:\n  containers: [{{name: vllm, image: vllm, ports: [{{name: http, containerPort: {mock_port}}}]}}]\n\
             status:\n  phase: Running\n  podIP: {ip}\n  conditions: [{{type: Ready, status: \"True\"}}]\n"
        ),
    );
    env.write(
        "service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: svc, namespace: models}\n\
         spec:\n  selector: {app: engine}\n  ports: [{port: 80, targetPort: http}]\n",
    );
    env.write(
        "namespaces.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a, labels: {team: a}}\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata: {name: team-b, labels: {team: b}}\n",
    );
    let port = free_port();
    env.write(
        "gateway.yaml",
        &format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {{name: kthena-router, generation: 2}}\n\
             spec: {{controllerName: volcano.sh/kthena-router}}\n---\n\
             apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: default, namespace: default, generation: 3}}\n\
             spec:\n  gatewayClassName: kthena-router\n  listeners:\n  \
             - name: http\n    port: {port}\n    protocol: HTTP\n    \
               allowedRoutes: {{namespaces: {{from: Selector, selector: {{matchLabels: {{team: a}}}}}}}}\n  \
             - name: clash\n    port: {port}\n    protocol: HTTPS\n    hostname: tls.example.com\n    \
               tls: {{certificateRefs: [{{name: missing}}]}}\n"
        ),
    );
    let route = |ns: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: to-svc, namespace: {ns}, generation: 5}}\n\
             spec:\n  parentRefs: [{{name: default, namespace: default, sectionName: http}}]\n  rules:\n  \
             - backendRefs: [{{name: svc, namespace: models, port: 80}}]\n"
        )
    };
    env.write("route-a.yaml", &route("team-a"));
    env.write("route-b.yaml", &route("team-b"));
    let p = port.to_string();
    let router = env.router(&["--enable-gateway-api", "--port", &p]);
    let c = client();
    let url = router.url("/v1/chat/completions");

    // No ReferenceGrant in `models`: the backend's share of traffic is a 500.
    let refused = post(&c, &url, &[], chat("m")).await;
    assert_eq!(refused.status, 500, "{}", refused.body);
    assert_eq!(
        refused.json()["error"]["type"],
        "ref_not_permitted",
        "{}",
        refused.body
    );
    let status = router.debug("/debug/status").await.json();
    let find = |kind: &str, ns: &str, name: &str| {
        status[kind]
            .as_array()
            .and_then(|l| l.iter().find(|o| o["namespace"] == ns && o["name"] == name))
            .map(|o| o["status"].clone())
            .unwrap_or_default()
    };
    let cond = |conditions: &serde_json::Value, kind: &str| {
        conditions
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
            .cloned()
            .unwrap_or_default()
    };
    let a = find("httproutes", "team-a", "to-svc");
    let parent = &a["parents"][0];
    assert_eq!(parent["parentRef"]["sectionName"], "http", "{status}");
    let resolved = cond(&parent["conditions"], "ResolvedRefs");
    assert_eq!(resolved["reason"], "RefNotPermitted", "{status}");
    assert_eq!(resolved["observedGeneration"], 5, "{status}");
    assert_eq!(
        cond(&parent["conditions"], "Accepted")["status"],
        "True",
        "{status}"
    );
    let b = find("httproutes", "team-b", "to-svc");
    assert_eq!(
        cond(&b["parents"][0]["conditions"], "Accepted")["reason"],
        "NotAllowedByListeners",
        "{status}"
    );
    let gw = find("gateways", "default", "default");
    assert_eq!(
        gw["addresses"],
        serde_json::json!([{"type": "IPAddress", "value": "127.0.0.1"}]),
        "{status}"
    );
    let clash = gw["listeners"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["name"] == "clash"))
        .cloned()
        .unwrap_or_default();
    let conflicted = cond(&clash["conditions"], "Conflicted");
    assert_eq!(
        (&conflicted["status"], &conflicted["reason"]),
        (&"True".into(), &"ProtocolConflict".into()),
        "{status}"
    );
    assert_eq!(conflicted["observedGeneration"], 3, "{status}");
    let http = gw["listeners"][0].clone();
    assert_eq!(http["attachedRoutes"], 1, "{status}");
    assert_eq!(
        cond(&http["conditions"], "Programmed")["status"],
        "True",
        "{status}"
    );
    let class = find("gatewayclasses", "", "kthena-router");
    let accepted = cond(&class["conditions"], "Accepted");
    assert_eq!(
        (&accepted["status"], &accepted["observedGeneration"]),
        (&"True".into(), &2.into()),
        "{status}"
    );

    // The grant in `models` lets team-a's HTTPRoutes use its Services: served, resolved.
    env.write(
        "grant.yaml",
        "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: team-a, namespace: models}\n\
         spec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: team-a}]\n  \
         to: [{group: \"\", kind: Service}]\n",
    );
    // Wait for the configuration with the grant (not an earlier reload): its status.
    let resolved_now = |status: &serde_json::Value| {
        status["httproutes"].as_array().is_some_and(|l| {
            l.iter().any(|o| {
                o["namespace"] == "team-a"
                    && cond(&o["status"]["parents"][0]["conditions"], "ResolvedRefs")["status"]
                        == "True"
            })
        })
    };
    while !resolved_now(&router.debug("/debug/status").await.json()) {
        router.process.wait_for("configuration in force");
    }
    // Status is published only once the tables serve it: the first request must be served.
    let served = post(&c, &url, &[], chat("m")).await;
    assert_eq!(
        (served.status, served.pod.as_deref()),
        (200, Some("engine-0")),
        "{}",
        served.body
    );
    let status = router.debug("/debug/status").await.json();
    let a = status["httproutes"]
        .as_array()
        .and_then(|l| l.iter().find(|o| o["namespace"] == "team-a"))
        .cloned()
        .unwrap_or_default();
    let resolved = cond(&a["status"]["parents"][0]["conditions"], "ResolvedRefs");
    assert_eq!(resolved["status"], "True", "{status}");
}

/// The seed walkthrough "Gateway Inference Extension Support": the Gateway `default` in
/// `kthena-system` on the router's port, an InferencePool with only `selector` and
/// `targetPorts` (the router picks endpoints itself), and an HTTPRoute to it. The router
/// runs with the default `--namespace`, so it adds its own `default/default` Gateway on the
/// same port, which must yield.
#[actix_rt::test]
async fn seed_inference_pool_walkthrough_serves_posts_and_body_less_gets() {
    let mut env = Env::new();
    env.mock(
        "qwen-0",
        &[("app", "qwen")],
        &["--served-model-name", "qwen"],
    );
    let engine_port = env.port.expect("mock started");
    let port = free_port();
    env.write(
        "walkthrough.yaml",
        &format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: default\n  namespace: kthena-system\n\
             spec:\n  gatewayClassName: kthena-router\n  listeners:\n  - name: http\n    port: {port}\n    protocol: HTTP\n    \
             allowedRoutes:\n      namespaces:\n        from: All\n---\n\
             apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata:\n  name: qwen-pool\n  namespace: default\n\
             spec:\n  targetPorts:\n  - number: {engine_port}\n  selector:\n    matchLabels:\n      app: qwen\n---\n\
             apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: qwen-route\n  namespace: default\n\
             spec:\n  parentRefs:\n  - name: default\n    namespace: kthena-system\n  rules:\n  - backendRefs:\n    \
             - group: inference.networking.k8s.io\n      kind: InferencePool\n      name: qwen-pool\n"
        ),
    );
    let router = env.gateway_router(port);
    let c = client();
    let a = post(
        &c,
        &router.url("/v1/completions"),
        &[],
        serde_json::json!({"model": "qwen", "prompt": "hi"}).to_string(),
    )
    .await;
    assert_eq!(
        (a.status, a.pod.as_deref()),
        (200, Some("qwen-0")),
        "{}",
        a.body
    );
    // A GET without a body is an ordinary HTTP request to the pool's engine.
    let health = get(&c, &router.url("/health")).await;
    assert_eq!(
        (health.status, health.pod.as_deref()),
        (200, Some("qwen-0")),
        "{}",
        health.body
    );
    let models = get(&c, &router.url("/v1/models")).await;
    assert_eq!(models.status, 200, "{}", models.body);
    let status = router.debug("/debug/status").await.json();
    let gateways = status["gateways"].as_array().cloned().unwrap_or_default();
    let listener = |ns: &str| {
        gateways
            .iter()
            .find(|g| g["namespace"] == ns && g["name"] == "default")
            .map(|g| g["status"]["listeners"][0]["conditions"].clone())
            .unwrap_or_default()
    };
    let conflicted = |conds: &serde_json::Value| {
        conds
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Conflicted")
            .map(|c| (c["status"].clone(), c["reason"].clone()))
    };
    assert_eq!(
        conflicted(&listener("kthena-system")).map(|c| c.0),
        Some("False".into()),
        "{status}"
    );
    assert_eq!(
        conflicted(&listener("default")),
        Some(("True".into(), "HostnameConflict".into())),
        "{status}"
    );
    let pool = status["inferencepools"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "qwen-pool"))
        .map(|p| p["status"]["parents"][0]["conditions"][0].clone())
        .unwrap_or_default();
    assert_eq!(
        (pool["type"].as_str(), pool["status"].as_str()),
        (Some("Accepted"), Some("True")),
        "{status}"
    );
}

/// One bad document does not stop a folder: the rest is served, an object that never was
/// valid is left out, and one that turns invalid keeps its last valid version.
#[actix_rt::test]
async fn a_folder_with_bad_documents_serves_the_rest() {
    let mut env = Env::new();
    env.mock("blue", &[("app", "blue")], &["--served-model-name", "m"]);
    env.mock("green", &[("app", "green")], &["--served-model-name", "m"]);
    // Both engines serve `m`; the route for `n` reaches them as `m`.
    // blue sets a field the router does not act on yet: served, and its status says so.
    env.model_server("blue", "blue", "  model: m\n  kvConnector: {type: nixl}\n");
    env.model_server("green", "green", "  model: m\n");
    env.route("keep", "m", "blue");
    env.route("other", "n", "green");
    // Not YAML at all, and an object that is invalid from the start.
    env.write("not-yaml.yaml", "kind: [unclosed\n");
    env.write(
        "mr-broken.yaml",
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\nmetadata: {name: broken}\n\
         spec:\n  modelName: b\n  rules:\n  - modelMatch: {uri: {regex: '('}}\n    targetModels: [{modelServerName: blue}]\n",
    );
    let router = env.router(&[]);
    let c = client();
    let url = router.url("/v1/chat/completions");
    let m = post(&c, &url, &[], chat("m")).await;
    assert_eq!(
        (m.status, m.pod.as_deref()),
        (200, Some("blue")),
        "{}",
        m.body
    );
    let n = post(&c, &url, &[], chat("n")).await;
    assert_eq!(
        (n.status, n.pod.as_deref()),
        (200, Some("green")),
        "{}",
        n.body
    );
    let b = post(&c, &url, &[], chat("b")).await;
    assert_eq!(b.status, 404, "{}", b.body);
    // Logged at the first load (already read by the time the router serves).
    let out = router.process.output();
    assert!(
        out.lines().any(|l| l.contains("mr-broken.yaml")
            && l.contains("ModelRoute default/broken")
            && l.contains("spec.rules[0].modelMatch.uri.regex")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("not-yaml.yaml") && l.contains("invalid manifest")),
        "{out}"
    );
    let status = router.debug("/debug/status").await.json();
    let broken = status["modelroutes"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == "broken"))
        .map(|r| r["status"]["conditions"][0].clone())
        .unwrap_or_default();
    assert_eq!(broken["status"], "False", "{status}");
    let honored = |kind: &str, name: &str| {
        status[kind]
            .as_array()
            .and_then(|os| os.iter().find(|o| o["name"] == name))
            .and_then(|o| o["status"]["conditions"].as_array().cloned())
            .and_then(|cs| cs.into_iter().find(|c| c["type"] == "FieldsHonored"))
            .unwrap_or_default()
    };
    let blue = honored("modelservers", "blue");
    assert_eq!(
        (blue["status"].as_str(), blue["reason"].as_str()),
        (Some("False"), Some("FieldNotHonored")),
        "{status}"
    );
    assert!(
        blue["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("spec.kvConnector:"),
        "{status}"
    );
    assert_eq!(
        honored("modelservers", "green")["status"],
        "True",
        "{status}"
    );
    assert_eq!(honored("modelroutes", "keep")["status"], "True", "{status}");

    // `keep` turns invalid (a bad regex) while being moved to green: the valid
    // version (to blue) stays; `other` moves to blue in the same folder version and applies.
    env.write(
        "mr-keep.yaml",
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\nmetadata: {name: keep, namespace: default}\n\
         spec:\n  modelName: m\n  rules:\n  - modelMatch: {uri: {regex: '('}}\n    targetModels: [{modelServerName: green}]\n",
    );
    env.route("other", "n", "blue");
    let line = router.process.wait_for("its last valid version stays");
    assert!(line.contains("ModelRoute default/keep"), "{line}");
    router.process.wait_for("route table published");
    let n = post(&c, &url, &[], chat("n")).await;
    assert_eq!(n.pod.as_deref(), Some("blue"), "{}", n.body);
    let m = post(&c, &url, &[], chat("m")).await;
    assert_eq!(
        (m.status, m.pod.as_deref()),
        (200, Some("blue")),
        "{}",
        m.body
    );
}

/// On Linux the folder is watched (inotify): a change applies at once, not at the next
/// `--manifests-interval` check (an hour here).
#[cfg(target_os = "linux")]
#[actix_rt::test]
async fn a_changed_folder_applies_without_waiting_for_the_interval() {
    let env = blue_green();
    let router = env.router(&["--manifests-interval", "1h"]);
    let c = client();
    let url = router.url("/v1/chat/completions");
    assert_eq!(
        post(&c, &url, &[], chat("m")).await.pod.as_deref(),
        Some("blue")
    );
    let started = Instant::now();
    env.route("switch", "m", "green");
    router.process.wait_for("route table published");
    assert_eq!(
        post(&c, &url, &[], chat("m")).await.pod.as_deref(),
        Some("green")
    );
    // A removed file too.
    std::fs::remove_file(env.dir.join("mr-switch.yaml")).expect("remove the route");
    router.process.wait_for("route table published");
    assert_eq!(post(&c, &url, &[], chat("m")).await.status, 404);
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// Waits, at most `within`, until a chat request for each model gets its status.
async fn until_answered(
    what: &str,
    within: Duration,
    c: &awc::Client,
    url: &str,
    want: &[(&str, u16)],
) {
    eventually(what, within, || {
        let (c, url) = (c.clone(), url.to_owned());
        let want: Vec<(String, u16)> = want.iter().map(|(m, s)| ((*m).to_owned(), *s)).collect();
        async move {
            let mut got = Vec::new();
            for (model, _) in &want {
                got.push(post(&c, &url, &[], chat(model)).await.status);
            }
            if got.iter().zip(&want).all(|(g, (_, w))| g == w) {
                Ok(())
            } else {
                Err(format!("{want:?}: got {got:?}"))
            }
        }
    })
    .await;
}

/// A router serving model `m` from a mock that also serves `n`, and the text of the route's
/// file (`mr-engine.yaml`), for tests that rewrite it.
fn route_file_env() -> (Env, kthena_e2e::Router, std::path::PathBuf, String) {
    let mut env = Env::new();
    env.engine("engine", "m", &["--served-model-name", "n"]);
    let file = env.dir.join("mr-engine.yaml");
    let route = std::fs::read_to_string(&file).expect("the route's file");
    let router = env.router(&[]);
    (env, router, file, route)
}

/// Sends `count` chat requests for `model`; each must get 200.
async fn all_ok(c: &awc::Client, url: &str, model: &str, count: usize) {
    for _ in 0..count {
        let a = post(c, url, &[], chat(model)).await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
}

/// POSTs `body` to `url` over a plain socket and returns every byte the server sent until it
/// closed the connection (bounded by a read timeout).
fn raw_post(url: &str, body: &str) -> Vec<u8> {
    raw_post_part(url, body.len(), body)
}

/// POSTs the first part `sent` of a body announced as `length` bytes (the rest never comes),
/// and returns every byte the server sent until it closed the connection (bounded by a read
/// timeout).
fn raw_post_part(url: &str, length: usize, sent: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_at(rest.find('/').expect("a path"));
    let mut socket = std::net::TcpStream::connect(authority).expect("connects");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        socket,
        "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n\
         content-length: {length}\r\n\r\n{sent}"
    )
    .expect("request written");
    let mut out = Vec::new();
    socket
        .read_to_end(&mut out)
        .expect("read until the server closes");
    out
}

/// A signing key of the test's identity provider, with its public JWK.
struct IdpKey {
    jwk: serde_json::Value,
    key: jsonwebtoken::EncodingKey,
}

fn idp_key(kid: &str) -> IdpKey {
    use base64::Engine;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).expect("key");
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).expect("key");
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    IdpKey {
        jwk: serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": x}),
        key: jsonwebtoken::EncodingKey::from_ed_der(doc.as_ref()),
    }
}

/// A token of `key` (header `kid`) with `claims`.
fn idp_token(key: &IdpKey, kid: &str, claims: serde_json::Value) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    h.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&h, &claims, &key.key).expect("signed")
}

/// The issuer's JWKS on loopback: its URI, the document it serves (the test may change it)
/// and the number of fetches.
fn jwks_server(
    document: String,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<String>>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    let published = Arc::new(Mutex::new(document));
    let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let jwks = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let uri = format!("http://{}/keys", jwks.local_addr().expect("addr"));
    let (doc, count) = (published.clone(), fetches.clone());
    std::thread::spawn(move || {
        for mut conn in jwks.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = doc.lock().expect("lock").clone();
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (uri, published, fetches)
}

/// The router's `auth` section with an issuer of `jwks_uri` and audience `kthena`, plus
/// `extra` YAML lines, in a file of its own; its path.
fn auth_config(name: &str, jwks_uri: &str, extra: &str) -> std::path::PathBuf {
    let config = std::env::temp_dir().join(format!("kthena-{name}-{}.yaml", std::process::id()));
    std::fs::write(
        &config,
        format!("auth:\n  issuer: https://idp.test\n  audiences: [kthena]\n  jwksUri: {jwks_uri}\n{extra}"),
    )
    .expect("write");
    config
}

/// The router's `auth` section, as Kthena's ConfigMap holds it: `/v1/` requests need a
/// bearer JWT signed by a key of the issuer's JWKS (served here on loopback), with the
/// issuer, an audience and a time that fit; the refusals are 401 with Kthena's texts, are
/// logged and counted; a key the issuer adds later is fetched when a token first names it.
#[actix_rt::test]
async fn jwt_authentication_admits_good_tokens_and_refuses_the_rest() {
    let mut env = Env::new();
    env.mock(
        "engine",
        &[("app", "engine")],
        &["--served-model-name", "m", "--served-model-name", "u"],
    );
    env.model_server("engine", "engine", "");
    env.route("engine", "m", "engine");
    // Model u: 12 prompt tokens an hour for each user.
    env.write(
        "mr-u.yaml",
        &limited_route(
            "u",
            "inputTokensPerUnit: 12, unit: hour, limitBy: {type: User}",
        ),
    );
    let (old, new) = (idp_key("k1"), idp_key("k2"));
    let (jwks_uri, published, fetches) =
        jwks_server(serde_json::json!({"keys": [old.jwk]}).to_string());
    let config = auth_config("auth", &jwks_uri, "");
    let router = env.router(&["--scheduler-config", config.to_str().expect("utf-8")]);
    router.process.wait_for("JWKS fetched");
    let c = client();
    let url = router.url("/v1/chat/completions");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = |iss: &str, aud: &str, exp: u64| serde_json::json!({"iss": iss, "aud": aud, "sub": "alice", "iat": now, "exp": exp});
    let good = idp_token(&old, "k1", claims("https://idp.test", "kthena", now + 300));
    let bearer = |t: &str| format!("Bearer {t}");

    let a = post(&c, &url, &[("authorization", &bearer(&good))], chat("m")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    // The token's subject is the request's user in the access log.
    router.process.wait_for(" 200 model_name=m user=alice ");

    let refusals = [
        (None, "Authorization header missing or invalid"),
        (
            Some("Basic YWxpY2U6eA==".to_owned()),
            "Authorization header missing or invalid",
        ),
        (
            Some(bearer(&idp_token(
                &old,
                "k1",
                claims("https://idp.test", "kthena", now - 3600),
            ))),
            "Unauthorized: failed to validate claims: time claims validation failed: token has expired",
        ),
        (
            Some(bearer(&idp_token(
                &old,
                "k1",
                claims("https://evil.test", "kthena", now + 300),
            ))),
            "Unauthorized: failed to validate claims: issuer validation failed: invalid issuer: expected https://idp.test, got https://evil.test",
        ),
        (
            Some(bearer(&idp_token(
                &old,
                "k1",
                claims("https://idp.test", "other", now + 300),
            ))),
            "Unauthorized: failed to validate claims: audience validation failed",
        ),
        // Signed by a key the issuer does not publish, under a published key's id.
        (
            Some(bearer(&idp_token(
                &new,
                "k1",
                claims("https://idp.test", "kthena", now + 300),
            ))),
            "Unauthorized: failed to parse jwt",
        ),
    ];
    for (header, text) in &refusals {
        let headers: Vec<(&str, &str)> = header
            .as_deref()
            .map(|h| ("authorization", h))
            .into_iter()
            .collect();
        let a = post(&c, &url, &headers, chat("m")).await;
        assert_eq!(a.status, 401, "{header:?}: {}", a.body);
        assert!(a.body.contains(text), "{header:?}: {}", a.body);
    }
    // Only /v1/ is authenticated, as in Kthena.
    assert_eq!(get(&c, &router.url("/healthz")).await.status, 200);
    let metrics = get(&c, &format!("http://{}/metrics", router.metrics))
        .await
        .body;
    assert!(
        metrics.contains(
            "kthena_router_requests_total{error_type=\"authentication_error\",model=\"unknown\",path=\"/v1/chat/completions\",status_code=\"401\"} 6"
        ),
        "{metrics}"
    );

    // The issuer rotates a key in: the first token naming it makes the router fetch the set.
    let before = fetches.load(std::sync::atomic::Ordering::SeqCst);
    *published.lock().expect("lock") = serde_json::json!({"keys": [old.jwk, new.jwk]}).to_string();
    let rotated = idp_token(&new, "k2", claims("https://idp.test", "kthena", now + 300));
    let header = bearer(&rotated);
    eventually(
        "the rotated key is fetched",
        Duration::from_secs(10),
        || {
            let (c, url, header) = (c.clone(), url.clone(), header.clone());
            async move {
                let a = post(&c, &url, &[("authorization", &header)], chat("m")).await;
                match a.status {
                    200 => Ok(()),
                    401 => Err(a.body),
                    s => panic!("{s}: {}", a.body),
                }
            }
        },
    )
    .await;
    assert_eq!(
        fetches.load(std::sync::atomic::Ordering::SeqCst),
        before + 1
    );

    // limitBy User: each token's subject has a budget of its own.
    let as_user = |sub: &str| {
        bearer(&idp_token(
            &old,
            "k1",
            serde_json::json!({"iss": "https://idp.test", "aud": "kthena", "sub": sub, "exp": now + 300}),
        ))
    };
    let (alice, bob) = (as_user("alice"), as_user("bob"));
    let (admitted, _) =
        admitted_until_refused(&c, &url, &[("authorization", &alice)], "u", 12).await;
    assert!(!admitted.is_empty());
    router
        .process
        .wait_for(" 200 model_name=u user=alice rate_limit_budget=u|user=alice ");
    let a = post(&c, &url, &[("authorization", &bob)], chat("u")).await;
    assert_eq!(a.status, 200, "bob has his own budget: {}", a.body);
    let _ = std::fs::remove_file(&config);
}

/// kthena-rs `limitBy`: each value of a request header draws from a budget of its own, so a
/// tenant past its budget is refused while another is not; the access log names the budget.
#[actix_rt::test]
async fn a_budget_per_header_value_refuses_one_tenant_and_not_the_other() {
    let mut env = Env::new();
    env.mock(
        "engine",
        &[("app", "engine")],
        &["--served-model-name", "m"],
    );
    env.model_server("engine", "engine", "");
    env.write(
        "mr-m.yaml",
        &limited_route(
            "m",
            "inputTokensPerUnit: 30, unit: hour, limitBy: {type: Header, header: x-tenant-id}",
        ),
    );
    let router = env.router(&[]);
    let c = client();
    let url = router.url("/v1/chat/completions");
    let as_tenant = |t: &'static str| [("x-tenant-id", t)];
    let (admitted, refused) = admitted_until_refused(&c, &url, &as_tenant("acme"), "m", 30).await;
    assert!(!admitted.is_empty());
    assert!(
        refused.body.contains("input token rate limit exceeded"),
        "{}",
        refused.body
    );
    router
        .process
        .wait_for(" 200 model_name=m rate_limit_budget=m|x-tenant-id=acme ");
    // Another tenant, and requests without the header, have budgets of their own.
    for _ in 0..admitted.len() {
        let a = post(&c, &url, &as_tenant("globex"), chat("m")).await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    assert_eq!(post(&c, &url, &[], chat("m")).await.status, 200);
    // acme stays refused: the others did not draw from its budget.
    assert_eq!(
        post(&c, &url, &as_tenant("acme"), chat("m")).await.status,
        429
    );
}

/// The headers of each request an engine received (lower-cased names, in order).
type SeenHeaders = std::sync::Arc<std::sync::Mutex<Vec<Vec<(String, String)>>>>;

/// An engine (Pod, ModelServer and ModelRoute `name` for `model`) answering every chat
/// completion with a small OpenAI answer and recording each request's headers (lower-cased
/// names, in order).
fn recording_engine(env: &mut Env, name: &str, model: &str) -> SeenHeaders {
    use std::io::{BufRead, BufReader, Read, Write};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let answer = serde_json::json!({"id": "c", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
    .to_string();
    env.raw_engine(name, model, move |conn| {
        let mut reader = BufReader::new(conn.try_clone().expect("clone"));
        let mut conn = conn;
        let mut request_line = String::new();
        let _ = reader.read_line(&mut request_line);
        let mut headers = Vec::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some((n, v)) = line.trim_end().split_once(':') {
                let (n, v) = (n.to_ascii_lowercase(), v.trim().to_owned());
                if n == "content-length" {
                    length = v.parse().unwrap_or(0);
                }
                headers.push((n, v));
            }
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        if !request_line.starts_with("POST /v1/chat/completions ") {
            let _ = conn.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            return;
        }
        record.lock().expect("lock").push(headers);
        let _ = write!(
            conn,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        );
    });
    seen
}

/// kthena-rs `auth.access`: a model open only to listed users or groups answers 403 to the
/// others, and, with `forwardAuthorization: false`, the engine never sees the client's
/// credentials; a model without an entry is open to every authenticated caller and gets them
/// (Kthena forwards them).
#[actix_rt::test]
async fn model_access_admits_listed_callers_and_keeps_credentials_from_the_engine() {
    let mut env = Env::new();
    let private = recording_engine(&mut env, "private", "p");
    let open = recording_engine(&mut env, "open", "o");
    let key = idp_key("k1");
    let (jwks_uri, _, _) = jwks_server(serde_json::json!({"keys": [key.jwk]}).to_string());
    let config = auth_config(
        "access",
        &jwks_uri,
        "  groupsClaim: roles\n  access:\n  \
         - {modelName: p, allowedUsers: [carol], allowedGroups: [ml], forwardAuthorization: false}\n",
    );
    let router = env.router(&["--scheduler-config", config.to_str().expect("utf-8")]);
    router.process.wait_for("JWKS fetched");
    let c = client();
    let url = router.url("/v1/chat/completions");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let as_caller = |sub: &str, roles: &[&str]| {
        format!(
            "Bearer {}",
            idp_token(
                &key,
                "k1",
                serde_json::json!({"iss": "https://idp.test", "aud": "kthena", "sub": sub,
                    "roles": roles, "exp": now + 300}),
            )
        )
    };
    let (carol, dave, erin) = (
        as_caller("carol", &[]),
        as_caller("dave", &["ops", "ml"]),
        as_caller("erin", &["ops"]),
    );
    for (who, header) in [("carol", &carol), ("dave", &dave)] {
        let a = post(
            &c,
            &url,
            &[("authorization", header), ("x-api-key", "sk-client")],
            chat("p"),
        )
        .await;
        assert_eq!(a.status, 200, "{who}: {}", a.body);
    }
    let a = post(&c, &url, &[("authorization", &erin)], chat("p")).await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        a.body
            .contains("Forbidden: user \\\"erin\\\" may not call model \\\"p\\\""),
        "{}",
        a.body
    );
    let a = post(&c, &url, &[("authorization", &erin)], chat("o")).await;
    assert_eq!(
        a.status, 200,
        "no entry: every authenticated caller: {}",
        a.body
    );

    let seen = private.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2, "erin never reached the engine");
    for headers in &seen {
        assert!(
            headers
                .iter()
                .all(|(n, _)| n != "authorization" && n != "x-api-key"),
            "credentials reached the engine: {headers:?}"
        );
    }
    let seen = open.lock().expect("lock").clone();
    assert!(
        seen[0]
            .iter()
            .any(|(n, v)| n == "authorization" && *v == erin),
        "forwarded by default: {:?}",
        seen[0]
    );
    let _ = std::fs::remove_file(&config);
}

/// An API-key Secret (kthena-rs): `key`, `user`, `groups`, labelled so the router reads it.
fn api_key_secret(name: &str, key: &str, user: &str, groups: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: default\n  \
         labels: {{networking.serving.volcano.sh/api-key: \"true\"}}\n\
         stringData: {{key: {key}, user: {user}, groups: \"{groups}\"}}\n"
    )
}

/// kthena-rs `auth.apiKeys`: keys from labelled Secrets in the folder, as `x-api-key` or a
/// bearer token, each mapped to a user and groups that the access rules and the access log
/// see; an unknown key is refused; a Secret removed takes its key away at once, one added
/// brings it; the keys never reach the log.
#[actix_rt::test]
async fn api_keys_from_secrets_authenticate_their_users() {
    let mut env = Env::new();
    env.engine("engine", "m", &[]);
    env.write(
        "secret-alice.yaml",
        &api_key_secret("alice", "sk-alice-1", "alice", "ml"),
    );
    env.write(
        "secret-bob.yaml",
        &api_key_secret("bob", "sk-bob-2", "bob", "ops"),
    );
    let config = std::env::temp_dir().join(format!("kthena-keys-{}.yaml", std::process::id()));
    std::fs::write(
        &config,
        "auth:\n  apiKeys: true\n  access:\n  - {modelName: m, allowedGroups: [ml]}\n",
    )
    .expect("write");
    let router = env.router(&["--scheduler-config", config.to_str().expect("utf-8")]);
    let c = client();
    let url = router.url("/v1/chat/completions");
    let a = post(&c, &url, &[("x-api-key", "sk-alice-1")], chat("m")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    router.process.wait_for(" 200 model_name=m user=alice ");
    let a = post(
        &c,
        &url,
        &[("authorization", "Bearer sk-alice-1")],
        chat("m"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = post(&c, &url, &[("x-api-key", "sk-bob-2")], chat("m")).await;
    assert_eq!(a.status, 403, "bob is not in group ml: {}", a.body);
    let a = post(&c, &url, &[("x-api-key", "sk-nobody")], chat("m")).await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert!(
        a.body.contains("Unauthorized: invalid API key"),
        "{}",
        a.body
    );
    let a = post(&c, &url, &[], chat("m")).await;
    assert_eq!(a.status, 401, "{}", a.body);

    // The Secret goes, and its key with it; a new one is honoured as soon as it is read.
    std::fs::remove_file(env.dir.join("secret-alice.yaml")).expect("remove");
    env.write(
        "secret-carol.yaml",
        &api_key_secret("carol", "sk-carol-3", "carol", "ml"),
    );
    eventually("the folder is read again", Duration::from_secs(10), || {
        let c = c.clone();
        let url = url.clone();
        async move {
            let alice = post(&c, &url, &[("x-api-key", "sk-alice-1")], chat("m"))
                .await
                .status;
            let carol = post(&c, &url, &[("x-api-key", "sk-carol-3")], chat("m"))
                .await
                .status;
            if (alice, carol) == (401, 200) {
                Ok(())
            } else {
                Err(format!("alice {alice}, carol {carol}"))
            }
        }
    })
    .await;
    let log = router.process.output();
    for key in ["sk-alice-1", "sk-bob-2", "sk-carol-3"] {
        assert!(!log.contains(key), "{key} in the router's output");
    }
    let _ = std::fs::remove_file(&config);
}
