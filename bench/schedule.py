#!/usr/bin/env python3
"""Scheduling-policy benchmark of kthena-router against simulated engines.

NOT a test: CI never runs it (see bench/README.md, "Scheduling policies"). It starts ENGINES
kthena-mock processes sized so that prefill dominates time to first token and one engine's KV
cache cannot hold every conversation, puts the release router in front of them with one
scheduler configuration per policy, and drives streaming chat completions with Poisson
arrivals from an asyncio client (python3 stdlib only, loopback only):

- workload "shared": SYSTEM_PROMPTS system prompts of SYSTEM_TOKENS tokens; USERS users at a
  time, each a conversation of 1..TURNS turns (every turn re-sends the whole history plus a
  new question of QUESTION_TOKENS tokens); each arrival is the next turn of a random idle user;
- workload "none": every request a fresh random prompt of NONE_TOKENS tokens (no shared
  prefix).

Capacity is measured first, per workload: a closed loop of CAP_CONCURRENCY clients through the
router with least-request, fresh engines, completed requests per second after CAP_WARMUP. The
open-loop rates are RATES (shared) and RATES_NONE (none) times that capacity.

Policies (POLICIES): random, round-robin (no such plugin: the load generator itself rotates
over the engines, directly, without the router), least-request, default (Kthena's chart
default: Filter least-request; Score least-request, gpu-usage, least-latency, prefix-cache,
weight 1), prefix-cache (alone). Every cell (workload x load x policy) gets fresh engines
(cold caches) and a fresh router started with that policy's --scheduler-config file.

Per cell: TTFT p50/p99 (client clock, from the request's scheduled Poisson arrival to the
first SSE chunk with non-empty content), throughput (requests completed with 200 during the
measured window / its length), prefix hit rate (delta of the engines' vllm:prefix_cache_hits_
total / vllm:prefix_cache_queries_total over the window, summed), the busiest engine's share
of requests, CPU of client / router / engines, and the machine noise (other load, steal,
loadavg). Markdown on stdout and in OUT (target/bench-schedule.md); progress on stderr.

Environment (defaults): DURATION (arrival window per cell, s, 45; the first WARMUP s, 5, are
not measured), CAP_DURATION (20), CAP_WARMUP (5), CAP_CONCURRENCY (ENGINES*MAX_NUM_SEQS*3/2),
CAPACITY_SHARED / CAPACITY_NONE (req/s: skip that capacity run), RATES (0.7,0.9), RATES_NONE
(0.9), POLICIES (random,round-robin,least-request,default,prefix-cache), WORKLOADS
(shared,none), USERS (200), TURNS (6), SYSTEM_PROMPTS (16), SYSTEM_TOKENS (2000),
QUESTION_TOKENS (100), NONE_TOKENS (SYSTEM_TOKENS + 3*QUESTION_TOKENS), ENGINES (8),
KV_BLOCKS (1024), BLOCK_SIZE (16), MAX_NUM_SEQS (8), PREFILL (200us), ITL (5ms), TTFT_BASE
(0), TOKENS (16), SCRAPE (router --metrics-scrape-interval, 1s), ROUTER_CPU (0), LOAD_CPU (1),
SEED (1), MAX_INFLIGHT (3000), DRAIN (s, 15), QUIET_PCT (25) / QUIET_WAIT (s, 30): before each
cell wait at most QUIET_WAIT s for other processes to use < QUIET_PCT % of a core, SKIP_BUILD,
OUT, TIMEOUT (s per wait, 60), ACCESS_LOGS (a folder: the router writes JSON access logs
there, one file per cell, and the mocks' logs are kept there; off by default, as it costs
router CPU), MOCK_LOG (the mocks' RUST_LOG, warn; kthena_mock=debug logs every admission).
"""

import asyncio
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUTER = os.environ.get("ROUTER_BIN") or os.path.join(ROOT, "target/release/kthena-router")
MOCK = os.path.join(ROOT, "target/release/kthena-mock")
MODEL = "bench-model"
ACCESS_LOGS = os.environ.get("ACCESS_LOGS")
CLK_TCK = os.sysconf("SC_CLK_TCK")
STARTED = time.monotonic()


def env_num(name, default, kind=int):
    v = os.environ.get(name)
    if v is None or v == "":
        return default
    try:
        return kind(v)
    except ValueError:
        sys.exit(f"schedule: {name} must be a number, got {v!r}")


def env_list(name, default):
    return [x.strip() for x in os.environ.get(name, default).split(",") if x.strip()]


DURATION = env_num("DURATION", 45.0, float)
WARMUP = env_num("WARMUP", 5.0, float)
CAP_DURATION = env_num("CAP_DURATION", 20.0, float)
CAP_WARMUP = env_num("CAP_WARMUP", 5.0, float)
ENGINES = env_num("ENGINES", 8)
MAX_NUM_SEQS = env_num("MAX_NUM_SEQS", 8)
CAP_CONCURRENCY = env_num("CAP_CONCURRENCY", ENGINES * MAX_NUM_SEQS * 3 // 2)
RATES = [float(x) for x in env_list("RATES", "0.7,0.9")]
RATES_NONE = [float(x) for x in env_list("RATES_NONE", "0.9")]
POLICIES = env_list("POLICIES", "random,round-robin,least-request,default,prefix-cache")
WORKLOADS = env_list("WORKLOADS", "shared,none")
USERS = env_num("USERS", 200)
TURNS = env_num("TURNS", 6)
SYSTEM_PROMPTS = env_num("SYSTEM_PROMPTS", 16)
SYSTEM_TOKENS = env_num("SYSTEM_TOKENS", 2000)
QUESTION_TOKENS = env_num("QUESTION_TOKENS", 100)
NONE_TOKENS = env_num("NONE_TOKENS", SYSTEM_TOKENS + 3 * QUESTION_TOKENS)
KV_BLOCKS = env_num("KV_BLOCKS", 1024)
BLOCK_SIZE = env_num("BLOCK_SIZE", 16)
PREFILL = os.environ.get("PREFILL", "200us")
ITL = os.environ.get("ITL", "5ms")
TTFT_BASE = os.environ.get("TTFT_BASE", "0")
TOKENS = env_num("TOKENS", 16)
SCRAPE = os.environ.get("SCRAPE", "1s")
ROUTER_CPU = os.environ.get("ROUTER_CPU", "0")
LOAD_CPU = os.environ.get("LOAD_CPU", "1")
SEED = env_num("SEED", 1)
MAX_INFLIGHT = env_num("MAX_INFLIGHT", 3000)
DRAIN = env_num("DRAIN", 15.0, float)
TIMEOUT = env_num("TIMEOUT", 60.0, float)
OUT = os.environ.get("OUT", os.path.join(ROOT, "target/bench-schedule.md"))
QUIET_PCT = env_num("QUIET_PCT", 25.0, float)
QUIET_WAIT = env_num("QUIET_WAIT", 30.0, float)

KNOWN_POLICIES = ("random", "round-robin", "least-request", "default", "prefix-cache",
                  "default-256")
for p in POLICIES:
    if p not in KNOWN_POLICIES:
        sys.exit(f"schedule: unknown policy {p!r}; known: {', '.join(KNOWN_POLICIES)}")
for w in WORKLOADS:
    if w not in ("shared", "none"):
        sys.exit(f"schedule: unknown workload {w!r}; known: shared, none")
if not 0 <= WARMUP < DURATION or not 0 <= CAP_WARMUP < CAP_DURATION:
    sys.exit("schedule: needs 0 <= WARMUP < DURATION and 0 <= CAP_WARMUP < CAP_DURATION")

# Kthena's routerConfiguration per policy (round-robin has none: the client rotates).
POLICY_YAML = {
    "random": "scheduler:\n  plugins:\n    Score:\n      enabled:\n      - {name: random, weight: 1}\n",
    "least-request": (
        "scheduler:\n  plugins:\n    Filter:\n      enabled: [least-request]\n"
        "    Score:\n      enabled:\n      - {name: least-request, weight: 1}\n"
    ),
    "default": (
        "scheduler:\n  plugins:\n    Filter:\n      enabled: [least-request]\n"
        "    Score:\n      enabled:\n      - {name: least-request, weight: 1}\n"
        "      - {name: gpu-usage, weight: 1}\n      - {name: least-latency, weight: 1}\n"
        "      - {name: prefix-cache, weight: 1}\n"
    ),
    "prefix-cache": "scheduler:\n  plugins:\n    Score:\n      enabled:\n      - {name: prefix-cache, weight: 1}\n",
}
# Not in the default POLICIES: the default set with a 16 KiB prefix-hash window (Kthena's
# default, 128 blocks of 64 bytes, covers little more than one 2,000-token system prompt).
POLICY_YAML["default-256"] = (
    "scheduler:\n  pluginConfig:\n  - name: prefix-cache\n    args: {maxBlocksToMatch: 256}\n"
    + POLICY_YAML["default"][len("scheduler:\n"):])
POLICY_LABEL = {
    "random": "random",
    "round-robin": "round robin (client → engines, no router)",
    "least-request": "least-request",
    "default": "Kthena default set",
    "prefix-cache": "prefix-cache alone",
    "default-256": "default set, prefix window 256 blocks",
}

PROCS = []


def log(msg):
    print(f"[schedule {time.strftime('%H:%M:%S')} +{time.monotonic() - STARTED:.0f}s] {msg}",
          file=sys.stderr, flush=True)


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def cleanup(*sig):
    for p in PROCS:
        stop(p)
    PROCS.clear()
    if sig:
        sys.exit(1)


signal.signal(signal.SIGTERM, cleanup)
signal.signal(signal.SIGINT, cleanup)


# ------------------------------------------------------------------------- /proc readings

def proc_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (FileNotFoundError, ProcessLookupError):
        return 0


def cpu_lines():
    """{'cpu': [...], 'cpu0': [...], ...} from /proc/stat, in ticks."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu"):
                k, *v = line.split()
                out[k] = [int(x) for x in v]
    return out


def busy(v):  # user nice system irq softirq
    return v[0] + v[1] + v[2] + v[5] + v[6]


class Meter:
    """CPU of the client, the router, the engines and everything else over a window."""

    def __init__(self, router_pid, mock_pids):
        self.router_pid, self.mock_pids = router_pid, mock_pids

    def read(self):
        t = os.times()
        return (time.monotonic(), cpu_lines(), (t.user + t.system),
                proc_ticks(self.router_pid) if self.router_pid else 0,
                sum(proc_ticks(p) for p in self.mock_pids))

    def start(self):
        self.a = self.read()

    def stop(self):
        b = self.read()
        a = self.a
        wall = b[0] - a[0]
        d = {k: [y - x for x, y in zip(a[1][k], b[1][k])] for k in b[1]}
        core = CLK_TCK * wall  # ticks of one core over the window
        client = (b[2] - a[2]) / wall * 100
        router = (b[3] - a[3]) / core * 100
        mocks = (b[4] - a[4]) / core * 100
        other = busy(d["cpu"]) / core * 100 - client - router - mocks
        total = sum(d["cpu"][:8]) or 1
        with open("/proc/loadavg") as f:
            load1 = f.read().split()[0]
        return {"client": client, "router": router, "mocks": mocks, "other": max(other, 0.0),
                "steal": d["cpu"][7] / total * 100, "load1": load1,
                "load_core": busy(d.get(f"cpu{LOAD_CPU}", d["cpu"])) / core * 100,
                "router_core": busy(d.get(f"cpu{ROUTER_CPU}", d["cpu"])) / core * 100}


# ------------------------------------------------------------------------- processes

def wait_file(path, pattern, proc, what):
    deadline = time.monotonic() + TIMEOUT
    rx = re.compile(pattern)
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            m = rx.search(f.read())
        if m:
            return m
        if proc.poll() is not None:
            with open(path, errors="replace") as f:
                tail = f.read()[-2000:]
            sys.exit(f"schedule: {what} exited ({proc.returncode}):\n{tail}")
        time.sleep(0.02)
    sys.exit(f"schedule: timed out waiting for {what} ({pattern!r} in {path})")


def mock_flags():
    return ["--served-model-name", MODEL, "--kv-cache-blocks", str(KV_BLOCKS),
            "--block-size", str(BLOCK_SIZE), "--max-num-seqs", str(MAX_NUM_SEQS),
            "--prefill-time-per-token", PREFILL, "--time-to-first-token", TTFT_BASE,
            "--inter-token-latency", ITL, "--tokens", str(TOKENS)]


class Cluster:
    """ENGINES mocks on 127.78.0.2.. sharing one port, the manifest folder, maybe a router."""

    def __init__(self, tmp, label, policy):
        self.dir = tempfile.mkdtemp(prefix=f"{label}.", dir=tmp)
        self.mocks, self.ips, self.port = [], [], 0
        env = dict(os.environ, RUST_LOG=os.environ.get("MOCK_LOG", "warn"))
        for i in range(ENGINES):
            ip = f"127.78.0.{2 + i}"
            out = os.path.join(self.dir, f"mock-{i}.log")
            with open(out, "w") as f:
                p = subprocess.Popen(
                    ["taskset", "-c", LOAD_CPU, MOCK, "--listen", f"{ip}:{self.port}",
                     "--pod-name", f"engine-{i}", *mock_flags()],
                    stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
            PROCS.append(p)
            m = wait_file(out, r"kthena-mock listening on [\d.]+:(\d+)", p, f"mock {i}")
            self.port = self.port or int(m.group(1))
            self.mocks.append(p)
            self.ips.append(ip)
        self.router = None
        self.router_addr = None
        if policy != "round-robin":
            self.start_router(policy)

    def write_manifests(self):
        man = os.path.join(self.dir, "manifests")
        os.makedirs(man)
        docs = [f"""apiVersion: networking.serving.volcano.sh/v1alpha1
kind: ModelServer
metadata: {{name: bench, namespace: default}}
spec:
  inferenceEngine: vLLM
  workloadSelector: {{matchLabels: {{app: bench}}}}
  workloadPort: {{port: {self.port}}}
""", f"""apiVersion: networking.serving.volcano.sh/v1alpha1
kind: ModelRoute
metadata: {{name: bench, namespace: default}}
spec:
  modelName: {MODEL}
  rules:
  - targetModels:
    - modelServerName: bench
"""]
        for i, ip in enumerate(self.ips):
            docs.append(f"""apiVersion: v1
kind: Pod
metadata: {{name: engine-{i}, namespace: default, labels: {{app: bench}}}}
status:
  phase: Running
  podIP: {ip}
  conditions: [{{type: Ready, status: "True"}}]
""")
        with open(os.path.join(man, "bench.yaml"), "w") as f:
            f.write("---\n".join(docs))
        return man

    def start_router(self, policy):
        man = self.write_manifests()
        cfg = os.path.join(self.dir, "scheduler.yaml")
        with open(cfg, "w") as f:
            f.write(POLICY_YAML[policy])
        out = os.path.join(self.dir, "router.log")
        env = dict(os.environ, RUST_LOG="info", ACCESS_LOG_ENABLED="false")
        if ACCESS_LOGS:
            # For looking into the picks: JSON lines carry every candidate's scores.
            os.makedirs(ACCESS_LOGS, exist_ok=True)
            env.update(ACCESS_LOG_ENABLED="true", ACCESS_LOG_FORMAT="json",
                       ACCESS_LOG_OUTPUT=os.path.join(
                           ACCESS_LOGS, f"{policy}-{int(time.time())}.jsonl"))
        with open(out, "w") as f:
            self.router = subprocess.Popen(
                ["taskset", "-c", ROUTER_CPU, ROUTER, "--manifests", man, "--port", "0",
                 "--listen-address", "127.0.0.1", "--metrics-port", "0", "--debug-port", "0",
                 "--workers", "1", "--scheduler-config", cfg,
                 "--metrics-scrape-interval", SCRAPE],
                stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        PROCS.append(self.router)
        m = wait_file(out, r"server=router addr=(\S+)", self.router, "router")
        host, port = m.group(1).rsplit(":", 1)
        self.router_addr = (host, int(port))
        m = wait_file(out, r"server=debug addr=(\S+)", self.router, "router debug server")
        debug = m.group(1)
        wait_file(out, r"route table published", self.router, "router route table")
        # Ready once the pool lists every engine with scraped engine state.
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"http://{debug}/debug/config_dump/pods",
                                            timeout=5) as r:
                    dump = json.load(r)
                eps = [e for pool in dump.get("endpoints", []) for e in pool["endpoints"]]
                if len(eps) == ENGINES and all(
                        (e.get("engine") or e).get("running") is not None for e in eps):
                    break
            except (OSError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                with open(out, errors="replace") as f:
                    tail = f.read()[-2000:]
                sys.exit(f"schedule: the router never listed {ENGINES} scraped engines:\n{tail}")
            time.sleep(0.1)
        warnings = [line for line in open(out, errors="replace") if " WARN " in line]
        if warnings:
            log(f"router warnings ({policy}): {' | '.join(w.strip()[-200:] for w in warnings[:3])}")

    def pids(self):
        return [p.pid for p in self.mocks]

    def close(self):
        for p in ([self.router] if self.router else []) + self.mocks:
            stop(p)
            if p in PROCS:
                PROCS.remove(p)


# ------------------------------------------------------------------------- HTTP client

CONTENT = re.compile(rb'"content":"(?!")')
PIECE = re.compile(rb'"content":"((?:[^"\\]|\\.)*)"')


class Http(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, parsed incrementally in `data_received`.

    A streamed answer arrives one token per --inter-token-latency, and every wakeup costs the
    client ~60 µs of CPU (epoll, recv, parsing): ~1 ms per request, too much at a few hundred
    requests per second on the engines' core. Only the first content chunk is timed, so once
    `on_data` says it saw it (returns true), reading pauses for `hold` s (the rest of the
    answer's expected duration) and the remaining chunks are read in one go from the socket
    buffer. The server is unaffected (a few KB fit in the socket buffers)."""

    def __init__(self):
        self.transport, self.closed, self.fut = None, False, None
        self.buf = bytearray()

    def connection_made(self, transport):
        self.transport = transport

    def send(self, data, fut, on_data, hold=0.0):
        self.fut, self.on_data, self.hold = fut, on_data, hold
        self.state, self.status, self.keep = "head", 0, True
        self.transport.write(data)

    def data_received(self, data):
        if self.fut is None:
            return
        self.buf += data
        buf = self.buf
        while True:
            st = self.state
            if st == "chunk":
                if len(buf) < self.need:
                    return
                if self.on_data and self.on_data(bytes(buf[: self.need - 2])) and self.hold:
                    self.transport.pause_reading()
                    asyncio.get_running_loop().call_later(self.hold, self.resume)
                    self.hold = 0.0
                del buf[: self.need]
                self.state = "size"
            elif st == "size":
                i = buf.find(b"\r\n")
                if i < 0:
                    return
                size = int(bytes(buf[:i]).split(b";")[0], 16)
                del buf[: i + 2]
                if size:
                    self.need, self.state = size + 2, "chunk"
                else:
                    self.state = "trailer"
            elif st == "head":
                i = buf.find(b"\r\n\r\n")
                if i < 0:
                    return
                lines = bytes(buf[:i]).split(b"\r\n")
                del buf[: i + 4]
                self.status = int(lines[0].split(None, 2)[1])
                self.state, self.length = "eof", None
                for h in lines[1:]:
                    k, _, v = h.partition(b":")
                    k, v = k.strip().lower(), v.strip().lower()
                    if k == b"content-length":
                        self.length, self.state = int(v), "body"
                    elif k == b"transfer-encoding" and b"chunked" in v:
                        self.state = "size"
                    elif k == b"connection" and v == b"close":
                        self.keep = False
                if self.state == "eof":
                    self.keep = False
            elif st == "trailer":
                i = buf.find(b"\r\n")
                if i < 0:
                    return
                del buf[: i + 2]
                if i == 0:
                    return self.finish()
            elif st == "body":
                if len(buf) < self.length:
                    return
                if self.on_data:
                    self.on_data(bytes(buf[: self.length]))
                del buf[: self.length]
                return self.finish()
            else:  # "eof": read until the server closes
                if self.on_data and buf:
                    self.on_data(bytes(buf))
                buf.clear()
                return

    def resume(self):
        if not self.closed:
            self.transport.resume_reading()

    def finish(self):
        fut, self.fut = self.fut, None
        if not fut.done():
            fut.set_result(self.status)

    def connection_lost(self, exc):
        self.closed = True
        fut, self.fut = self.fut, None
        if fut is not None and not fut.done():
            if self.state == "eof" and self.status:
                fut.set_result(self.status)
            else:
                fut.set_exception(ConnectionError(f"closed in state {self.state}"))


class Client:
    """HTTP/1.1 keep-alive client, one idle-connection pool per target."""

    def __init__(self):
        self.pools = {}
        self.loop = asyncio.get_running_loop()

    async def request(self, target, method, path, body=b"", on_data=None, hold=0.0):
        """The response status; `on_data(bytes)` sees every body chunk as it arrives (see
        `Http` for `hold`)."""
        pool = self.pools.setdefault(target, [])
        head = (f"{method} {path} HTTP/1.1\r\nHost: {target[0]}:{target[1]}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body
        for attempt in range(2):
            conn = None
            while pool and conn is None:
                c = pool.pop()
                if not c.closed:
                    conn = c
            reused = conn is not None
            if conn is None:
                _, conn = await self.loop.create_connection(Http, *target)
            fut = self.loop.create_future()
            conn.send(head, fut, on_data, hold)
            try:
                status = await fut
            except ConnectionError:
                if reused and attempt == 0 and not conn.status:
                    continue  # a stale pooled connection: retry once on a new one
                raise
            if conn.keep and not conn.closed:
                pool.append(conn)
            else:
                conn.transport.close()
            return status
        raise ConnectionError("unreachable")

    async def get(self, target, path):
        parts = []
        status = await self.request(target, "GET", path, on_data=parts.append)
        return status, b"".join(parts)

    def close(self):
        for pool in self.pools.values():
            for c in pool:
                c.transport.close()
        self.pools.clear()


# ------------------------------------------------------------------------- workloads

def text(rng, tokens):
    """Random text of `tokens` mock tokens (4 bytes each)."""
    return rng.randbytes(tokens * 2).hex()


class Shared:
    """Shared system prompts, multi-turn conversations; the next turn of a random idle user."""

    name = "shared"

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.systems = [f"System prompt {k}: " + text(self.rng, SYSTEM_TOKENS)
                        for k in range(SYSTEM_PROMPTS)]
        self.next_id = 0
        self.idle = [self.new_user() for _ in range(USERS)]
        self.extra = 0  # users created because all USERS were busy

    def new_user(self):
        self.next_id += 1
        k = self.rng.randrange(SYSTEM_PROMPTS)
        return {"id": self.next_id, "left": self.rng.randint(1, TURNS), "turn": 0,
                "messages": [{"role": "system", "content": self.systems[k]}]}

    def next(self):
        if self.idle:
            i = self.rng.randrange(len(self.idle))
            self.idle[i], self.idle[-1] = self.idle[-1], self.idle[i]
            user = self.idle.pop()
        else:
            self.extra += 1
            user = self.new_user()
        user["turn"] += 1
        user["messages"].append({"role": "user", "content": (
            f"User {user['id']}, turn {user['turn']}: " + text(self.rng, QUESTION_TOKENS))})
        return user, user["messages"]

    def done(self, user, answer, ok):
        user["left"] -= 1
        if ok and user["left"] > 0:
            user["messages"].append({"role": "assistant", "content": answer})
            self.idle.append(user)
        else:  # conversation over (or failed): a new user takes the place
            self.idle.append(self.new_user())


class NoPrefix:
    """Every request a fresh random prompt."""

    name = "none"

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def next(self):
        return None, [{"role": "system", "content": text(self.rng, NONE_TOKENS)}]

    def done(self, user, answer, ok):
        pass


WORKLOAD = {"shared": Shared, "none": NoPrefix}


def dur_s(s):
    s = s.strip()
    for unit, f in (("us", 1e-6), ("ms", 1e-3), ("s", 1.0)):
        if s.endswith(unit):
            return float(s[: -len(unit)]) * f
    return float(s) * 1e-3  # the mock reads a bare number as ms


HOLD = (TOKENS - 1) * dur_s(ITL)  # see Http


def body_of(messages):
    return json.dumps({"model": MODEL, "messages": messages, "stream": True,
                       "max_tokens": TOKENS}).encode()


# ------------------------------------------------------------------------- load

class Run:
    """One cell's requests: (scheduled s, ttft s or None, done s, status, body bytes, lag s)."""

    def __init__(self, client, workload, pick):
        self.client, self.workload, self.pick = client, workload, pick
        self.records = []
        self.errors = {}
        self.samples = {}  # first body per error status
        self.loop = asyncio.get_running_loop()

    async def one(self, t_sched):
        user, messages = self.workload.next()
        body = body_of(messages)
        target = self.pick()
        first = [None]
        pieces = []

        def on_data(data):
            pieces.append(data)
            if first[0] is None and CONTENT.search(data):
                first[0] = self.loop.time()
                return True
            return False

        lag = self.loop.time() - t_sched
        status = 0
        try:
            status = await self.client.request(target, "POST", "/v1/chat/completions", body,
                                               on_data, HOLD)
        except (ConnectionError, asyncio.IncompleteReadError, OSError, ValueError) as e:
            self.errors[type(e).__name__] = self.errors.get(type(e).__name__, 0) + 1
        t_done = self.loop.time()
        ok = status == 200 and first[0] is not None
        answer = ""
        if ok:
            try:
                answer = json.loads(b'"' + b"".join(PIECE.findall(b"".join(pieces))) + b'"')
            except ValueError:
                answer = "This is simulated message"
        elif status:
            self.errors[f"HTTP {status}"] = self.errors.get(f"HTTP {status}", 0) + 1
            self.samples.setdefault(status, b"".join(pieces)[:200].decode(errors="replace"))
        self.workload.done(user, answer, ok)
        self.records.append((t_sched, first[0] - t_sched if ok else None, t_done, status,
                             len(body), lag))


async def scrape(client, targets):
    """Summed hits, queries and per-engine request counts from the engines' /metrics."""
    hits = queries = 0.0
    counts = []
    for t in targets:
        status, data = await client.get(t, "/metrics")
        if status != 200:
            raise SystemExit(f"schedule: /metrics of {t} answered {status}")
        n = 0.0
        for line in data.decode().splitlines():
            if line.startswith("vllm:prefix_cache_hits_total"):
                hits += float(line.split()[-1])
            elif line.startswith("vllm:prefix_cache_queries_total"):
                queries += float(line.split()[-1])
            elif line.startswith("vllm:e2e_request_latency_seconds_count"):
                n += float(line.split()[-1])
        counts.append(n)
    return hits, queries, counts


async def drive(cluster, policy, workload, mode, rate_or_conc, duration, warmup, meter):
    """Open loop (mode 'open', Poisson `rate`) or closed loop (mode 'closed', `conc` clients)
    over `duration` s; measures from `warmup` s on. Returns a result dict."""
    client = Client()
    engines = [(ip, cluster.port) for ip in cluster.ips]
    if policy == "round-robin":
        state = [0]

        def pick():
            state[0] = (state[0] + 1) % len(engines)
            return engines[state[0]]
    else:
        def pick(addr=cluster.router_addr):
            return addr
    run = Run(client, workload, pick)
    loop = asyncio.get_running_loop()
    arrivals = random.Random(SEED * 7919 + 1)
    t0 = loop.time()
    tasks = set()
    marks = {}

    async def mark_start():
        await asyncio.sleep(max(0.0, t0 + warmup - loop.time()))
        marks["m0"] = await scrape(client, engines)
        meter.start()

    marker = loop.create_task(mark_start())
    dropped = 0
    if mode == "open":
        t = t0
        while True:
            t += arrivals.expovariate(rate_or_conc)
            if t - t0 >= duration:
                break
            delay = t - loop.time()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            if len(tasks) >= MAX_INFLIGHT:
                dropped += 1
                continue
            task = loop.create_task(run.one(t))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    else:
        async def worker():
            while loop.time() - t0 < duration:
                await run.one(loop.time())
        tasks = {loop.create_task(worker()) for _ in range(rate_or_conc)}
        await asyncio.sleep(max(0.0, t0 + duration - loop.time()))
    await marker
    m1 = await scrape(client, engines)
    cpu = meter.stop()
    window_end = loop.time()
    if tasks:
        await asyncio.wait(tasks, timeout=DRAIN)
    unfinished = sum(1 for task in tasks if not task.done())
    for task in tasks:
        task.cancel()
    client.close()

    # Requests scheduled in [warmup, duration): TTFT; completed with 200 in the window: rate.
    lo, hi = t0 + warmup, t0 + duration
    measured = [r for r in run.records if lo <= r[0] < hi]
    ttfts = sorted(r[1] for r in measured if r[1] is not None)
    done_ok = sum(1 for r in run.records if r[1] is not None and lo <= r[2] < window_end)
    (h0, q0, c0), (h1, q1, c1) = marks["m0"], m1
    per_engine = [b - a for a, b in zip(c0, c1)]
    mean = sum(per_engine) / len(per_engine) if per_engine else 0
    lags = sorted(r[5] for r in measured)
    return {
        "n": len(measured), "ok": len(ttfts), "p50": pct(ttfts, 0.5), "p99": pct(ttfts, 0.99),
        "rps": done_ok / (window_end - lo), "hit": (h1 - h0) / (q1 - q0) if q1 > q0 else 0.0,
        "spread": max(per_engine) / mean if mean else 0.0,
        "errors": sum(run.errors.values()) + dropped + unfinished,
        "error_kinds": dict(run.errors, dropped=dropped, unfinished=unfinished),
        "lag99": pct(lags, 0.99), "bytes": sum(r[4] for r in measured) / max(len(measured), 1),
        "cpu": cpu, "extra_users": getattr(workload, "extra", 0), "samples": run.samples,
    }


def pct(v, q):
    if not v:
        return float("nan")
    return v[max(0, math.ceil(q * len(v)) - 1)]


def wait_quiet(label):
    """Waits (at most QUIET_WAIT s) until the machine uses < QUIET_PCT % of a core; nothing of
    ours runs between cells, so this is other processes (a parallel cargo build)."""
    start = time.monotonic()
    while True:
        a = busy(cpu_lines()["cpu"])
        time.sleep(1)
        pct = (busy(cpu_lines()["cpu"]) - a) / CLK_TCK * 100
        if pct < QUIET_PCT:
            return
        if time.monotonic() - start >= QUIET_WAIT:
            log(f"{label}: machine still busy ({pct:.0f} % of a core) after {QUIET_WAIT:.0f} s;"
                " measuring anyway")
            return
        log(f"{label}: machine busy ({pct:.0f} % of a core), waiting")
        time.sleep(2)


def cell(tmp, policy, wname, mode, x, duration, warmup, label):
    wait_quiet(label)
    cluster = Cluster(tmp, label, policy)
    try:
        meter = Meter(cluster.router.pid if cluster.router else None, cluster.pids())
        workload = WORKLOAD[wname](SEED)
        res = asyncio.run(drive(cluster, policy, workload, mode, x, duration, warmup, meter))
        if cluster.router and cluster.router.poll() is not None:
            sys.exit(f"schedule: the router died during {label}")
    finally:
        cluster.close()
        if ACCESS_LOGS:
            for f in os.listdir(cluster.dir):
                if f.startswith("mock-"):
                    shutil.copy(os.path.join(cluster.dir, f),
                                os.path.join(ACCESS_LOGS, f"{policy}-{f}"))
        shutil.rmtree(cluster.dir, ignore_errors=True)
    c = res["cpu"]
    log(f"{label}: TTFT p50 {res['p50'] * 1000:.1f} ms p99 {res['p99'] * 1000:.1f} ms, "
        f"{res['rps']:.1f} req/s, hit {res['hit'] * 100:.1f} %, spread {res['spread']:.2f}, "
        f"errors {res['errors']} {res['error_kinds'] if res['errors'] else ''}; CPU client "
        f"{c['client']:.0f} % router {c['router']:.0f} % engines {c['mocks']:.0f} % other "
        f"{c['other']:.0f} % steal {c['steal']:.1f} %, client lag p99 {res['lag99'] * 1000:.1f} ms"
        + "".join(f"; first {k} body: {v!r}" for k, v in res["samples"].items()))
    return res


# ------------------------------------------------------------------------- report

def theoretical_none():
    """Engine-side capacity of the no-prefix workload from the mock's parameters."""
    prompt = NONE_TOKENS + 6  # + the chat rendering "<|system|>\n...\n" (~6 tokens)
    blocks = math.ceil((prompt + TOKENS) / BLOCK_SIZE)
    slots = min(MAX_NUM_SEQS, KV_BLOCKS // blocks)
    service = dur_s(TTFT_BASE) + prompt * dur_s(PREFILL) + (TOKENS - 1) * dur_s(ITL)
    return ENGINES * slots / service, slots, service


def fmt_ms(s):
    return "–" if s != s else f"{s * 1000:.1f}"


def main():
    if not os.environ.get("SKIP_BUILD"):
        log("cargo build --release --locked -p kthena-router -p kthena-mock")
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "kthena-router",
                        "-p", "kthena-mock"], cwd=ROOT, check=True)
    for b in (ROUTER, MOCK):
        if not os.access(b, os.X_OK):
            sys.exit(f"schedule: {b} missing (build it or unset SKIP_BUILD)")
    # The load generator shares the engines' core.
    os.sched_setaffinity(0, {int(LOAD_CPU)})
    tmp = tempfile.mkdtemp(prefix="kthena-schedule.")
    try:
        report(tmp)
    finally:
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def report(tmp):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    lines = []

    def out(s=""):
        lines.append(s)

    # Capacity per workload.
    capacity, cap_notes = {}, {}
    for w in WORKLOADS:
        given = os.environ.get(f"CAPACITY_{w.upper()}")
        if given:
            capacity[w] = float(given)
            cap_notes[w] = f"given (CAPACITY_{w.upper()})"
            continue
        log(f"capacity, {w}: closed loop, {CAP_CONCURRENCY} clients, least-request, "
            f"{CAP_DURATION:.0f} s")
        res = cell(tmp, "least-request", w, "closed", CAP_CONCURRENCY, CAP_DURATION,
                   CAP_WARMUP, f"capacity-{w}")
        capacity[w] = res["rps"]
        c = res["cpu"]
        cap_notes[w] = (f"closed loop of {CAP_CONCURRENCY} clients through the router "
                        f"(least-request), completed req/s over s {CAP_WARMUP:.0f}–"
                        f"{CAP_DURATION:.0f}; hit rate {res['hit'] * 100:.0f} %, TTFT p50 "
                        f"{fmt_ms(res['p50'])} ms; client CPU {c['client']:.0f} %, engines "
                        f"{c['mocks']:.0f} %, load core busy {c['load_core']:.0f} %, other "
                        f"{c['other']:.0f} %")
    theo, slots, service = theoretical_none()

    results = {}
    for w in WORKLOADS:
        for frac in (RATES if w == "shared" else RATES_NONE):
            rate = frac * capacity[w]
            for policy in POLICIES:
                label = f"{w}-{int(frac * 100)}-{policy}"
                log(f"{label}: Poisson {rate:.1f} req/s for {DURATION:.0f} s")
                results[(w, frac, policy)] = cell(tmp, policy, w, "open", rate, DURATION,
                                                  WARMUP, label)

    total = time.monotonic() - STARTED
    out(f"## kthena-router scheduling policies — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    out()
    out(f"Commit {commit}{' + uncommitted changes' if dirty else ''}; {os.cpu_count()} cores; "
        f"router (`--workers 1`, access log off, `--metrics-scrape-interval {SCRAPE}`) pinned to "
        f"CPU {ROUTER_CPU}; the {ENGINES} engines and the load generator pinned to CPU "
        f"{LOAD_CPU}. Total runtime {total / 60:.1f} min.")
    out()
    out(f"Engines: {ENGINES} × `kthena-mock {' '.join(mock_flags()[2:])}` on 127.78.0.2–"
        f"{1 + ENGINES}, fresh for every cell (cold caches). KV cache {KV_BLOCKS * BLOCK_SIZE} "
        f"tokens per engine.")
    out()
    out(f"Workloads: **shared**: {SYSTEM_PROMPTS} system prompts of {SYSTEM_TOKENS} tokens, "
        f"{USERS} users at a time, conversations of 1–{TURNS} turns (uniform), each turn the "
        f"whole history + a {QUESTION_TOKENS}-token question; a finished user is replaced. "
        f"**none**: every request a fresh random prompt of {NONE_TOKENS} tokens. Streaming chat, "
        f"`max_tokens` {TOKENS}. Poisson arrivals for {DURATION:.0f} s per cell; the first "
        f"{WARMUP:.0f} s are not measured. TTFT = client clock from the scheduled arrival to "
        f"the first SSE chunk with content. Throughput = 200s completed in the window / its "
        f"length. Hit rate = Δ`vllm:prefix_cache_hits_total` / Δ`vllm:prefix_cache_queries_total`"
        f" over the window, all engines. Spread = busiest engine's requests / mean.")
    out()
    out("Capacity (req/s):")
    out()
    for w in WORKLOADS:
        out(f"- {w}: **{capacity[w]:.1f}** — {cap_notes[w]}.")
    if "none" in WORKLOADS:
        out(f"- none, from the mock's parameters: {ENGINES} engines × {slots} slots (KV: "
            f"{KV_BLOCKS} blocks / {math.ceil((NONE_TOKENS + 6 + TOKENS) / BLOCK_SIZE)} per "
            f"request, max {MAX_NUM_SEQS}) / {service * 1000:.0f} ms per request = {theo:.1f}.")
    out()
    out("Round robin is not a router plugin: its rows are the load generator rotating over the "
        "engines directly (no router in the path).")
    for w in WORKLOADS:
        for frac in (RATES if w == "shared" else RATES_NONE):
            rows = [(p, results[(w, frac, p)]) for p in POLICIES]
            mean_bytes = sum(r["bytes"] for _, r in rows) / len(rows)
            out()
            out(f"### {w} prefixes, {frac * 100:.0f} % of capacity "
                f"({frac * capacity[w]:.1f} req/s offered; mean request {mean_bytes / 1024:.1f}"
                f" KiB)")
            out()
            out("| policy | TTFT p50 ms | TTFT p99 ms | throughput req/s | prefix hit rate | "
                "spread | errors | CPU % client / router / engines | other load % | steal % "
                "| loadavg |")
            out("|---|---|---|---|---|---|---|---|---|---|---|")
            for p, r in rows:
                c = r["cpu"]
                out(f"| {POLICY_LABEL[p]} | {fmt_ms(r['p50'])} | {fmt_ms(r['p99'])} | "
                    f"{r['rps']:.1f} | {r['hit'] * 100:.1f} % | {r['spread']:.2f} | "
                    f"{r['errors']} | {c['client']:.0f} / {c['router']:.0f} / {c['mocks']:.0f} | "
                    f"{c['other']:.0f} | {c['steal']:.1f} | {c['load1']} |")
            errs = [(p, r) for p, r in rows if r["errors"]]
            if errs:
                out()
                out("Errors (not in the TTFT figures): " + "; ".join(
                    f"{POLICY_LABEL[p]}: " + ", ".join(
                        f"{k} ×{n}" for k, n in r["error_kinds"].items() if n)
                    + "".join(f" (first {k} body: `{v.strip()[:120]}`)"
                              for k, v in r["samples"].items()) for p, r in errs) + ".")
            if "default" in POLICIES and "least-request" in POLICIES:
                d, lr = results[(w, frac, "default")], results[(w, frac, "least-request")]
                out()
                out(f"Default set vs least-request (> 1: the default set is better): TTFT p50 "
                    f"×{lr['p50'] / d['p50']:.2f}, p99 ×{lr['p99'] / d['p99']:.2f} (least-request"
                    f" / default); throughput ×{d['rps'] / lr['rps']:.3f} (default / "
                    f"least-request).")
    if "default" in POLICIES and "least-request" in POLICIES:
        out()
        out("### Targets")
        out()
        out("| target | measured | verdict |")
        out("|---|---|---|")

        def v(ok):
            return "met" if ok else "**NOT met**"
        for w in WORKLOADS:
            for frac in (RATES if w == "shared" else RATES_NONE):
                d, lr = results[(w, frac, "default")], results[(w, frac, "least-request")]
                a, b = lr["p50"] / d["p50"], lr["p99"] / d["p99"]
                load = f"{frac * 100:.0f} %"
                if w == "shared":
                    out(f"| shared, {load}: default ≥ 2× better TTFT p50 than least-request | "
                        f"×{a:.2f} | {v(a >= 2)} |")
                    out(f"| shared, {load}: default ≥ 1.5× better TTFT p99 | ×{b:.2f} | "
                        f"{v(b >= 1.5)} |")
                else:
                    for name, x in (("TTFT p50", d["p50"] / lr["p50"]),
                                    ("TTFT p99", d["p99"] / lr["p99"]),
                                    ("throughput", d["rps"] / lr["rps"])):
                        out(f"| none, {load}: default within 5 % of least-request, {name} | "
                            f"default / least-request = {x:.3f} | {v(abs(x - 1) <= 0.05)} |")
    cpus = [r["cpu"] for r in results.values()]
    if cpus:
        out()
        out(f"Noise over the cells: other load {min(c['other'] for c in cpus):.0f}–"
            f"{max(c['other'] for c in cpus):.0f} % of a core (machine busy time minus client, "
            f"router and engines; includes loopback softirq not charged to them), steal "
            f"{min(c['steal'] for c in cpus):.1f}–{max(c['steal'] for c in cpus):.1f} % of CPU "
            f"time, 1-min loadavg {min(float(c['load1']) for c in cpus):.2f}–"
            f"{max(float(c['load1']) for c in cpus):.2f}; load core (CPU {LOAD_CPU}) busy "
            f"{min(c['load_core'] for c in cpus):.0f}–{max(c['load_core'] for c in cpus):.0f} %, "
            f"client lag p99 ≤ {max(r['lag99'] for r in results.values()) * 1000:.1f} ms.")
    text_out = "\n".join(lines) + "\n"
    sys.stdout.write(text_out)
    if OUT:
        os.makedirs(os.path.dirname(OUT), exist_ok=True)
        with open(OUT, "w") as f:
            f.write(text_out)
        log(f"wrote {OUT}")


if __name__ == "__main__":
    main()
