//! A `redis-server` of a test's own on 127.0.0.1, for global rate limits: no persistence, its
//! output collected like the router's, killed when dropped.

use std::path::PathBuf;

use crate::{Process, free_port};

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    process: Process,
}

/// `redis-server` on `$PATH`; the tests that need it fail, saying how to install it, when it
/// is not there.
fn binary() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("redis-server"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "redis-server is not installed, and the global rate limit tests start one: \
                 install it (Debian: `apt-get install redis-server`; .ci/run does)"
            )
        })
}

impl RedisServer {
    /// Starts one on a free port.
    pub fn start() -> Self {
        Self::on(free_port())
    }

    /// Starts one on `port` (again, after [`RedisServer::stop`], to bring a Redis back);
    /// returns once it accepts connections.
    pub fn on(port: u16) -> Self {
        let args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let process = Process::spawn("redis", &binary(), &args, &[]);
        process.wait_for("Ready to accept connections");
        Self { port, process }
    }

    /// `127.0.0.1:<port>`, as a route's `global.redis.address`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL: no goodbye to its clients).
    pub fn stop(self) {
        drop(self.process);
    }
}
