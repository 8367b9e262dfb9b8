#!/usr/bin/env python3
"""The router's memory under connection bursts, idle connections and stalled uploads.

NOT a test: CI never runs it (see bench/README.md). It starts the release mock and the release
router (standalone, default flags but the ports, access log to a file) on loopback and prints:

- RSS at rest after a warm-up;
- RSS with CONNS idle client connections open (no request sent), and per connection;
- RSS with UPLOADS uploads stalled after UPLOAD_BYTES of an announced 8 MiB body, and per upload;
- RSS after each of ROUNDS bursts of CONNS concurrent connections, each sending one chat
  completion and reading the answer, all closed before the next round (measured once the
  router has closed them too);
- the difference between the last round and rest, against the 20 MB target.

Environment: ROUNDS (16), CONNS (5000), UPLOADS (32), UPLOAD_BYTES (8 MiB - 1 KiB),
ROUTER_BIN (target/release/kthena-router), MOCK_BIN (target/release/kthena-mock),
ROUTER_ARGS (extra router flags), ROUTER_ENV (extra KEY=VALUE pairs for the router's
environment, space-separated), TIMEOUT (s per phase, 120).
"""

import asyncio
import os
import re
import resource
import shlex
import socket
import subprocess
import sys
import tempfile
import time

ROUNDS = int(os.environ.get("ROUNDS", "16"))
CONNS = int(os.environ.get("CONNS", "5000"))
UPLOADS = int(os.environ.get("UPLOADS", "32"))
UPLOAD_BYTES = int(os.environ.get("UPLOAD_BYTES", str(8 * 1024 * 1024 - 1024)))
TIMEOUT = float(os.environ.get("TIMEOUT", "120"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUTER = os.environ.get("ROUTER_BIN", os.path.join(ROOT, "target/release/kthena-router"))
MOCK = os.environ.get("MOCK_BIN", os.path.join(ROOT, "target/release/kthena-mock"))
BODY = b'{"model":"bench-model","messages":[{"role":"user","content":"hello"}],"max_tokens":6}'


def log(msg):
    print(f"[memory {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M).group(1))


def served(port):
    """Client connections of the router's port the router has not closed yet (any state but
    LISTEN, TIME_WAIT and CLOSE, read from /proc/net/tcp)."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, state = fields[1], fields[3]
            if int(local.split(":")[1], 16) == port and state not in ("0A", "06", "07"):
                n += 1
    return n


async def wait_for(cond, what):
    deadline = time.monotonic() + TIMEOUT
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"memory: timed out waiting for {what}")
        await asyncio.sleep(0.05)


def request(port):
    return (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY


async def one(port, gate, ok):
    async with gate:
        r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(request(port))
    head = await r.readuntil(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
    await r.readexactly(length)
    if head.startswith(b"HTTP/1.1 200"):
        ok.append(1)
    return w


async def burst(port):
    gate = asyncio.Semaphore(500)  # connects in flight at once (the listen backlog)
    ok = []
    writers = await asyncio.wait_for(
        asyncio.gather(*(one(port, gate, ok) for _ in range(CONNS))), TIMEOUT
    )
    for w in writers:
        w.close()
    return len(ok)


async def idle_connections(port, pid):
    gate = asyncio.Semaphore(500)

    async def connect():
        async with gate:
            return await asyncio.open_connection("127.0.0.1", port)

    conns = await asyncio.gather(*(connect() for _ in range(CONNS)))
    await wait_for(lambda: served(port) >= CONNS, "the router to accept them")
    await asyncio.sleep(0.5)
    held = rss_kb(pid)
    for _, w in conns:
        w.close()
    return held


async def stalled_uploads(port, pid):
    conns = []
    chunk = b" " * 65536
    for _ in range(UPLOADS):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {8 * 1024 * 1024}\r\n\r\n".encode()
        )
        sent = 0
        while sent < UPLOAD_BYTES:
            n = min(len(chunk), UPLOAD_BYTES - sent)
            w.write(chunk[:n])
            sent += n
            await w.drain()
        conns.append((r, w))
    # The router has read them once its RSS stops growing.
    last, still = rss_kb(pid), 0
    while still < 5:
        await asyncio.sleep(0.1)
        now = rss_kb(pid)
        still = still + 1 if now == last else 0
        last = now
    for _, w in conns:
        w.close()
    return last


async def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < CONNS + 1000:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, CONNS * 4), hard))
    tmp = tempfile.mkdtemp(prefix="kthena-memory.")
    procs = []
    try:
        mock = subprocess.Popen(
            [MOCK, "--listen", "127.0.0.1:0", "--served-model-name", "bench-model"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        procs.append(mock)
        line = mock.stdout.readline()
        addr = re.search(r"listening on (\S+)", line).group(1)
        ip, mport = addr.rsplit(":", 1)
        subprocess.run(
            ["bash", "-c", f'source "{ROOT}/bench/manifests.sh"; write_manifests "$1" "$2" "$3"',
             "-", f"{tmp}/manifests", ip, mport], check=True)
        port = free_port()
        env = {**os.environ, "RUST_LOG": "warn", "ACCESS_LOG_OUTPUT": f"{tmp}/access.log"}
        for kv in shlex.split(os.environ.get("ROUTER_ENV", "")):
            k, v = kv.split("=", 1)
            env[k] = v
        router = subprocess.Popen(
            [ROUTER, "--manifests", f"{tmp}/manifests", "--port", str(port),
             "--metrics-port", str(free_port()), "--debug-port", str(free_port()),
             "--listen-address", "127.0.0.1", *shlex.split(os.environ.get("ROUTER_ARGS", ""))],
            stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/router.err", "w"), env=env,
        )
        procs.append(router)
        pid = router.pid

        def up():
            try:
                with socket.create_connection(("127.0.0.1", port), 0.2) as s:
                    s.sendall(request(port))
                    return s.recv(12) == b"HTTP/1.1 200"
            except OSError:
                return False

        await wait_for(up, "the router to route")
        for _ in range(200):
            up()
        await asyncio.sleep(1)
        rest = rss_kb(pid)
        log(f"at rest: {rest / 1024:.1f} MB")
        rows = [("at rest", rest, "")]

        held = await idle_connections(port, pid)
        per = (held - rest) * 1024 / CONNS
        rows.append((f"{CONNS} idle connections open", held, f"{per / 1024:.1f} KiB each"))
        await wait_for(lambda: served(port) == 0, "the router to close them")

        if UPLOADS:
            before = rss_kb(pid)
            held = await stalled_uploads(port, pid)
            per = (held - before) * 1024 / UPLOADS
            rows.append((f"{UPLOADS} uploads stalled after {UPLOAD_BYTES / 2**20:.1f} MiB", held,
                         f"{per / 2**20:.2f} MiB each"))
            await wait_for(lambda: served(port) == 0, "the router to close them")
            await asyncio.sleep(0.5)
            rows.append(("after the uploads closed", rss_kb(pid), ""))

        prev = 1
        for i in range(1, ROUNDS + 1):
            ok = await burst(port)
            await wait_for(lambda: served(port) == 0, "the router to close them")
            await asyncio.sleep(0.5)
            now = rss_kb(pid)
            log(f"round {i}: {ok}/{CONNS} answered 200, RSS {now / 1024:.1f} MB")
            if ok != CONNS:
                raise SystemExit(f"memory: round {i}: only {ok} of {CONNS} answered 200")
            rows.append((f"after burst {i} of {CONNS} connections", now, ""))
        for wait in (1, 5, 10):
            await asyncio.sleep(wait - (0 if wait == 1 else prev))
            prev = wait
            final = rss_kb(pid)
            rows.append((f"{wait} s later", final, ""))

        print(f"| router: {os.path.relpath(ROUTER, ROOT)} {os.environ.get('ROUTER_ARGS', '')} "
              f"{os.environ.get('ROUTER_ENV', '')} | RSS (MB) | |")
        print("|---|---|---|")
        for what, kb, note in rows:
            print(f"| {what} | {kb / 1024:.1f} | {note} |")
        delta = (final - rest) / 1024
        print(f"\nafter {ROUNDS} bursts: {delta:+.1f} MB over rest "
              f"(target: within 20 MB) -> {'met' if delta <= 20 else 'NOT met'}")
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    asyncio.run(main())
