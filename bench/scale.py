#!/usr/bin/env python3
"""Control-plane scale benchmark of kthena-router in standalone mode (`--manifests DIR`).

NOT a test: CI never runs it (see bench/README.md, "Scale"). It writes a folder of ModelRoutes,
ModelServers and Pods, starts the release router on it (pinned to one core) with one
kthena-mock engine as the only live endpoint, and measures from outside:

- cold start: process start to `/readyz` 200 and a routed request answered 200;
- RSS (VmRSS, VmHWM) once loaded;
- idle CPU: router CPU per second while nothing changes (the folder poll);
- one changed Pod: a Pod file rewritten so that one ModelServer's only Pod turns Ready, then
  requests for that ModelServer's model until one answers 200: time to visible, and router CPU
  over that time minus the idle rate (repeated CHANGES times, median and max);
- one changed ModelRoute: a route's modelName changed to a new name, then requests for the new
  name until 200, the same way;
- request latency: sequential keep-alive requests through the router at this size and at a
  10-route folder in the same run (ratio), both against the same mock.

Every network call goes to 127.0.0.1 and every wait is bounded. Environment: ROUTES (10000),
SERVERS (5000), PODS (10000), PER_FILE (objects per file, 100), CHANGES (5), LATENCY_SAMPLES
(500), INTERVAL (folder check interval, 250ms), ROUTER_CPU (0), LOAD_CPU (1), SKIP_BUILD,
TIMEOUT (seconds any one wait may take, 300). Prints a markdown summary on stdout.
"""

import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ROUTER_BIN: another build to measure (e.g. the previous commit's, for a before/after).
ROUTER = os.environ.get("ROUTER_BIN") or os.path.join(ROOT, "target/release/kthena-router")
MOCK = os.path.join(ROOT, "target/release/kthena-mock")
MODEL = "bench-model"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def env_int(name, default):
    v = os.environ.get(name, str(default))
    if not v.isdigit():
        sys.exit(f"scale: {name} must be a whole number, got {v!r}")
    return int(v)


ROUTES = env_int("ROUTES", 10000)
SERVERS = env_int("SERVERS", 5000)
PODS = env_int("PODS", 10000)
PER_FILE = max(1, env_int("PER_FILE", 100))
CHANGES = max(1, env_int("CHANGES", 5))
LATENCY_SAMPLES = env_int("LATENCY_SAMPLES", 500)
TIMEOUT = env_int("TIMEOUT", 300)
INTERVAL = os.environ.get("INTERVAL", "250ms")
ROUTER_CPU = os.environ.get("ROUTER_CPU", "0")
LOAD_CPU = os.environ.get("LOAD_CPU", "1")

if SERVERS < CHANGES + 2 or ROUTES < SERVERS or PODS < SERVERS:
    sys.exit("scale: needs SERVERS >= CHANGES+2, ROUTES >= SERVERS, PODS >= SERVERS")

PROCS = []


def log(msg):
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cleanup(*_):
    for p in PROCS:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
    if signal.getsignal(signal.SIGTERM) is cleanup and _:
        sys.exit(1)


signal.signal(signal.SIGTERM, cleanup)
signal.signal(signal.SIGINT, cleanup)


def cpu_seconds(pid):
    """CPU time of `pid`: the nanosecond run time of its threads (`schedstat`), which resolves
    a few-millisecond change; `/proc/PID/stat` ticks (10 ms) where schedstat is missing."""
    try:
        total = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                out[k] = int(v.split()[0]) / 1024
    return out["VmRSS"], out["VmHWM"]


def steal_and_busy():
    with open("/proc/stat") as f:
        cpu = f.readline().split()[1:]
    vals = [int(x) for x in cpu]
    idle = vals[3] + vals[4]
    return vals[7], sum(vals[:8]) - idle, sum(vals[:8])


def free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_mock():
    p = subprocess.Popen(
        ["taskset", "-c", LOAD_CPU, MOCK, "--listen", "127.0.0.1:0", "--served-model-name", MODEL],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    PROCS.append(p)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if m:
            return p, int(m.group(1))
        if not line and p.poll() is not None:
            break
    sys.exit("scale: the mock did not start")


# ------------------------------------------------------------------------- manifests

def server_doc(i, port):
    return f"""apiVersion: networking.serving.volcano.sh/v1alpha1
kind: ModelServer
metadata: {{name: ms-{i}, namespace: default}}
spec:
  model: {MODEL}
  inferenceEngine: vLLM
  workloadSelector: {{matchLabels: {{app: ms-{i}}}}}
  workloadPort: {{port: {port}}}
"""


def route_doc(i, model=None):
    model = model or f"model-{i}"
    return f"""apiVersion: networking.serving.volcano.sh/v1alpha1
kind: ModelRoute
metadata: {{name: mr-{i}, namespace: default}}
spec:
  modelName: {model}
  rules:
  - name: default
    targetModels: [{{modelServerName: ms-{i % SERVERS}}}]
"""


def pod_doc(j, live):
    # Pod j belongs to ms-(j % SERVERS). A live Pod is Ready on 127.0.0.1 (the mock); every
    # other Pod is Ready on an address nothing listens on, except the Pods of the "probe"
    # servers, which start not Ready so that turning one Ready is the change measured.
    server = j % SERVERS
    probe = 1 <= server <= CHANGES
    ready = "True" if (live or not probe) else "False"
    ip = "127.0.0.1" if live or probe else f"10.{(j >> 16) & 255}.{(j >> 8) & 255}.{j & 255}"
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: pod-{j}, namespace: default, labels: {{app: ms-{server}}}}}
status:
  phase: Running
  podIP: {ip}
  conditions: [{{type: Ready, status: "{ready}"}}]
"""


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class Folder:
    """The manifest folder: objects in files of PER_FILE documents."""

    def __init__(self, root, routes, servers, pods, port):
        self.dir = root
        self.port = port
        self.routes = {i: route_doc(i) for i in range(routes)}
        self.servers = {i: server_doc(i, port) for i in range(servers)}
        self.pods = {j: pod_doc(j, live=(j % servers == 0)) for j in range(pods)}
        os.makedirs(root, exist_ok=True)
        for kind, docs in (("routes", self.routes), ("servers", self.servers), ("pods", self.pods)):
            for start in range(0, len(docs), PER_FILE):
                self.write(kind, start)

    def file(self, kind, index):
        return os.path.join(self.dir, f"{kind}-{index // PER_FILE:05}.yaml")

    def write(self, kind, index):
        docs = getattr(self, kind)
        start = index - index % PER_FILE
        text = "---\n".join(docs[k] for k in range(start, min(start + PER_FILE, len(docs))))
        write_atomic(self.file(kind, index), text)


# ------------------------------------------------------------------------- router

class Router:
    def __init__(self, folder, cold_label):
        self.port = free_port()
        env = dict(os.environ, RUST_LOG="warn", ACCESS_LOG_ENABLED="false",
                   # The Pods are fake addresses: scraping them would measure connect timeouts.
                   METRICS_SCRAPE_INTERVAL=os.environ.get("METRICS_SCRAPE_INTERVAL", "0"))
        self.log = open(os.path.join(folder, "..", f"router-{cold_label}.log"), "w")
        started = time.monotonic()
        self.proc = subprocess.Popen(
            ["taskset", "-c", ROUTER_CPU, ROUTER, "--manifests", folder,
             "--manifests-interval", INTERVAL, "--port", str(self.port),
             "--listen-address", "127.0.0.1", "--workers", "1"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        PROCS.append(self.proc)
        self.conn = None
        wait_until(lambda: self.status("GET", "/readyz") == 200, "router ready")
        self.ready_s = time.monotonic() - started
        wait_until(lambda: self.chat("model-0") == 200, "first routed request")
        self.cold_s = time.monotonic() - started

    def status(self, method, path, body=None):
        for _ in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                headers = {"content-type": "application/json"} if body else {}
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                r.read()
                return r.status
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn = None
                if self.proc.poll() is not None:
                    sys.exit(f"scale: the router exited with {self.proc.returncode}")
        return None

    def chat(self, model):
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}],
                           "max_tokens": 2})
        return self.status("POST", "/v1/chat/completions", body)

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def wait_until(check, what, poll=0.002):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(poll)
    sys.exit(f"scale: timed out waiting for {what}")


def idle_rate(router, seconds=3.0):
    c0, t0 = router.cpu(), time.monotonic()
    time.sleep(seconds)
    return (router.cpu() - c0) / (time.monotonic() - t0)


def measure_change(router, apply, check, idle):
    """Applies one change, polls `check` until true; returns (visible s, CPU s minus idle)."""
    c0, t0 = router.cpu(), time.monotonic()
    apply()
    wait_until(check, "change visible", poll=0.002)
    visible = time.monotonic() - t0
    # Let work the change started finish before reading the CPU (one more folder check).
    time.sleep(0.6)
    elapsed = time.monotonic() - t0
    cpu = router.cpu() - c0 - idle * elapsed
    return visible, max(cpu, 0.0)


def latency(router, model, n):
    samples = []
    for _ in range(max(n // 10, 5)):
        router.chat(model)
    for _ in range(n):
        t = time.perf_counter()
        if router.chat(model) != 200:
            sys.exit("scale: a latency request failed")
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def fmt_ms(s):
    return f"{s * 1000:.1f}"


def main():
    if not os.environ.get("SKIP_BUILD"):
        log("cargo build --release -p kthena-router -p kthena-mock")
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "kthena-router",
                        "-p", "kthena-mock"], cwd=ROOT, check=True)
    for b in (ROUTER, MOCK):
        if not os.access(b, os.X_OK):
            sys.exit(f"scale: {b} missing (build it or unset SKIP_BUILD)")
    tmp = tempfile.mkdtemp(prefix="kthena-scale.")
    try:
        run(tmp)
    finally:
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    _, port = start_mock()
    log(f"mock on 127.0.0.1:{port}")

    # Reference in the same run: a 10-route folder against the same mock.
    small_dir = os.path.join(tmp, "small")
    Folder(small_dir, 10, 10, 10, port)
    small = Router(small_dir, "small")
    small_lat = latency(small, "model-0", LATENCY_SAMPLES)
    small_rss = rss_mb(small.proc.pid)
    small.stop()
    log(f"10 routes: p50 {small_lat[0]:.3f} ms")

    big_dir = os.path.join(tmp, "big")
    t = time.monotonic()
    folder = Folder(big_dir, ROUTES, SERVERS, PODS, port)
    log(f"wrote {ROUTES} routes, {SERVERS} servers, {PODS} pods in {time.monotonic() - t:.1f} s")
    steal0, busy0, total0 = steal_and_busy()
    router = Router(big_dir, "big")
    log(f"cold start: ready {router.ready_s:.2f} s, routing {router.cold_s:.2f} s")
    rss, hwm = rss_mb(router.proc.pid)
    idle = idle_rate(router)
    log(f"idle CPU {idle * 100:.1f} % of a core; RSS {rss:.0f} MB (peak {hwm:.0f} MB)")

    pod_results = []
    for k in range(CHANGES):
        server = 1 + k  # probe servers 1..CHANGES: their Pods start not Ready
        j = server  # pod-<server> belongs to ms-<server>

        def apply(j=j):
            folder.pods[j] = pod_doc(j, live=True)
            folder.write("pods", j)

        route = server  # mr-<server> routes model-<server> to ms-<server>
        pod_results.append(measure_change(
            router, apply, lambda r=route: router.chat(f"model-{r}") == 200, idle))
        log(f"pod change {k}: visible {fmt_ms(pod_results[-1][0])} ms, "
            f"CPU {fmt_ms(pod_results[-1][1])} ms")

    route_results = []
    for k in range(CHANGES):
        # mr-<1+k> routes to ms-<1+k>, whose Pod the Pod change above made Ready.
        i = 1 + k
        name = f"renamed-{k}-{time.monotonic_ns()}"

        def apply(i=i, name=name):
            folder.routes[i] = route_doc(i, model=name)
            folder.write("routes", i)

        route_results.append(measure_change(
            router, apply, lambda n=name: router.chat(n) == 200, idle))
        log(f"route change {k}: visible {fmt_ms(route_results[-1][0])} ms, "
            f"CPU {fmt_ms(route_results[-1][1])} ms")

    big_lat = latency(router, "model-0", LATENCY_SAMPLES)
    rss_after, hwm_after = rss_mb(router.proc.pid)
    steal1, busy1, total1 = steal_and_busy()
    router.stop()
    steal_pct = 100 * (steal1 - steal0) / max(total1 - total0, 1)

    def row(name, results):
        vis = sorted(r[0] for r in results)
        cpu = sorted(r[1] for r in results)
        return (f"| {name} | {fmt_ms(statistics.median(vis))} / {fmt_ms(vis[-1])} | "
                f"{fmt_ms(statistics.median(cpu))} / {fmt_ms(cpu[-1])} |")

    print(f"### Scale: {ROUTES} ModelRoutes, {SERVERS} ModelServers, {PODS} Pods "
          f"({PER_FILE} objects per file, interval {INTERVAL})\n")
    print(f"Commit {commit}{' + uncommitted changes' if dirty else ''}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
          f"router pinned to CPU {ROUTER_CPU}, mock to CPU {LOAD_CPU}; "
          f"steal over the run {steal_pct:.1f} %.\n")
    print("| measure | value |\n|---|---|")
    print(f"| cold start: ready / first routed request | {router.ready_s:.2f} s / "
          f"{router.cold_s:.2f} s |")
    print(f"| RSS loaded / after changes (peak) | {rss:.0f} MB / {rss_after:.0f} MB "
          f"({hwm_after:.0f} MB) |")
    print(f"| RSS at 10 routes (same run) | {small_rss[0]:.0f} MB |")
    print(f"| idle router CPU (folder poll) | {idle * 100:.1f} % of a core |")
    print(f"| request p50 / p99 at 10 routes | {small_lat[0]:.3f} / {small_lat[1]:.3f} ms |")
    print(f"| request p50 / p99 at {ROUTES} routes | {big_lat[0]:.3f} / {big_lat[1]:.3f} ms |")
    print(f"| p50 ratio {ROUTES} / 10 routes | {big_lat[0] / small_lat[0]:.2f} |\n")
    print(f"| one change ({CHANGES} times) | visible after, ms: median / max | "
          f"router CPU above idle, ms: median / max |\n|---|---|---|")
    print(row("Pod turns Ready", pod_results))
    print(row("ModelRoute renamed", route_results))


if __name__ == "__main__":
    main()
