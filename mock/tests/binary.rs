//! The real `kthena-mock` binary: it prints its bound address once on stdout, then answers
//! over a real socket.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

/// Kills the child when the test ends, passing or not.
struct Mock(Child);

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Mock, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kthena-mock"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kthena-mock");
    let stdout = child.stdout.take().expect("piped stdout");
    let mock = Mock(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("listening line within 30 s");
    let addr = line
        .strip_prefix("kthena-mock listening on ")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (mock, addr)
}

fn exchange(addr: &str, path: &str, body: &str) -> String {
    request(addr, "POST", path, body)
}

fn request(addr: &str, method: &str, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
}

#[test]
fn binary_prints_bound_port_and_answers_chat() {
    let (_mock, addr) = start(&["--served-model-name", "m1,m2", "--pod-name", "pod-7"]);
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert_ne!(addr, "127.0.0.1:0", "the real port is printed");

    let body = r#"{"model":"m2","messages":[{"role":"user","content":"hi"}]}"#;
    let response = exchange(&addr, "/v1/chat/completions", body);
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("\r\nx-mock-pod: pod-7\r\n"),
        "{response}"
    );
    assert!(
        response.contains(r#""content":"This is simulated message from m2!""#),
        "{response}"
    );
}

#[test]
fn binary_streams_over_a_real_socket_with_latency() {
    let (_mock, addr) = start(&[
        "--time-to-first-token",
        "5ms",
        "--inter-token-latency",
        "1ms",
    ]);
    let body = r#"{"model":"mock-model","prompt":"hi","stream":true,
        "stream_options":{"include_usage":true}}"#;
    let response = exchange(&addr, "/v1/completions", body);
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("text/event-stream"), "{response}");
    assert!(response.contains(r#""choices":[],"usage":{"prompt_tokens":1,"completion_tokens":6"#));
    assert!(response.contains("data: [DONE]\n\n"), "{response}");
}

#[test]
fn binary_takes_the_simulation_flags_and_speaks_sglang_metrics() {
    let (_mock, addr) = start(&[
        "--engine",
        "sglang",
        "--kv-cache-blocks",
        "4",
        "--block-size",
        "8",
        "--max-num-seqs",
        "2",
        "--prefill-time-per-token",
        "20us",
    ]);
    // 40 prompt tokens: more than the 4 × 8 tokens of the cache.
    let body = format!(r#"{{"prompt":"{}"}}"#, "z".repeat(160));
    let response = exchange(&addr, "/v1/completions", &body);
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    assert!(
        response.contains("maximum context length is 32 tokens"),
        "{response}"
    );

    let response = exchange(&addr, "/v1/completions", r#"{"prompt":"hi"}"#);
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    let metrics = request(&addr, "GET", "/metrics", "");
    assert!(
        metrics.contains("sglang:num_running_reqs{model_name=\"mock-model\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("sglang:prompt_tokens_total{model_name=\"mock-model\"} 1"));
}
