#!/usr/bin/env python3
"""Soak: mixed traffic through one fastproxy for N minutes, with faults,
retries, timeouts, mirroring, a misbehaving upstream and periodic SIGHUP
reloads; prints the proxy's RSS and file-descriptor curve and fails on any
unexpected outcome.

    python bench/soak.py [--minutes 10] [--clients 16] [--sample 10] [--reload 30]

The config follows the seed scenarios (1.2 weights, 1.3 header operations,
1.4 faults, 1.5 retries, 1.6 mirror) on one `demoapp` service with subsets
v10/v11, a `backend` mirror target, and endpoints served by this script on
free ports.  Every request has a known set of allowed statuses:

  /split      90/10 weights, response header set          200
  /canary     header match -> v11, request header added   200
  /fault      abort 555 for 30 %, 20 ms delay for 30 %    200 or 555
  /retry      upstream answers 503 to the first attempt   200 (retry on 5xx)
  /reset      upstream resets the first attempt           200 (retry on reset)
  /timeout    upstream takes 0.5 s for 1 in 10            200, else 504 (timeout 200 ms)
  /mirror     mirrored to backend                         200
  /big        256 KiB response                            200, whole body
  /post       1-64 KiB request body echoed                200, same length

Anything else (another status, a short body, a connection error) is counted
as unexpected and printed.  Exit status 0 only when there were none.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

ALLOWED = {
    "/split": {200},
    "/canary": {200},
    "/fault": {200, 555},
    "/retry": {200},
    "/reset": {200},
    "/timeout": {200, 504},
    "/mirror": {200},
    "/big": {200},
    "/post": {200},
}

VS = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: demoapp}
spec:
  host: demoapp
  subsets:
  - {name: v10, labels: {version: v1.0}}
  - {name: v11, labels: {version: v1.1}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: demoapp}
spec:
  hosts: [demoapp]
  http:
  - match: [{uri: {prefix: /canary}, headers: {x-canary: {exact: "true"}}}]
    headers: {request: {set: {User-Agent: Chrome}}, response: {add: {x-canary: "true"}}}
    route: [{destination: {host: demoapp, subset: v11}}]
  - match: [{uri: {prefix: /fault}}]
    fault:
      abort: {httpStatus: 555, percentage: {value: 30}}
      delay: {fixedDelay: 20ms, percentage: {value: 30}}
    route: [{destination: {host: demoapp, subset: v10}}]
  - match: [{uri: {prefix: /retry}}]
    retries: {attempts: 3, retryOn: 5xx}
    route: [{destination: {host: demoapp}}]
  - match: [{uri: {prefix: /reset}}]
    retries: {attempts: 3, retryOn: reset}
    route: [{destination: {host: demoapp}}]
  - match: [{uri: {prefix: /timeout}}]
    timeout: 200ms
    retries: {attempts: 0}
    route: [{destination: {host: demoapp}}]
  - match: [{uri: {prefix: /mirror}}]
    mirror: {host: backend}
    mirrorPercentage: {value: 100}
    route: [{destination: {host: demoapp, subset: v10}}]
  - headers: {response: {set: {x-envoy: test}}}
    route:
    - {destination: {host: demoapp, subset: v10}, weight: 90}
    - {destination: {host: demoapp, subset: v11}, weight: 10}
"""


def service_entry(name: str, port: int, endpoints: list[tuple[int, str]]) -> str:
    eps = "".join(
        f"  - {{address: 127.0.0.1, ports: {{http: {p}}}, labels: {{app: {name}, version: {v}}}}}\n"
        for p, v in endpoints
    )
    return (
        f"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}}}\nspec:\n"
        f"  hosts: [{name}.default.svc.cluster.local]\n  resolution: STATIC\n"
        f"  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  endpoints:\n{eps}"
    )


# -- upstream ------------------------------------------------------------------
async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            path = lines[0].split(b" ")[1]
            headers = {}
            for line in lines[1:]:
                if line:
                    k, _, v = line.partition(b":")
                    headers[k.strip().lower()] = v.strip()
            body = b""
            if b"content-length" in headers:
                body = await reader.readexactly(int(headers[b"content-length"]))
            elif headers.get(b"transfer-encoding") == b"chunked":
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        await reader.readuntil(b"\r\n")
                        break
                    body += await reader.readexactly(size)
                    await reader.readexactly(2)
            first = headers.get(b"x-envoy-attempt-count") == b"1"
            if path.startswith(b"/reset") and first:
                writer.transport.abort()
                return
            status = b"503 Service Unavailable" if path.startswith(b"/retry") and first else b"200 OK"
            if path.startswith(b"/timeout") and headers.get(b"x-slow") == b"1":
                await asyncio.sleep(0.5)
            if path.startswith(b"/big"):
                payload = b"b" * 262144
            elif path.startswith(b"/post"):
                payload = body
            else:
                payload = b"ok " + path
            writer.write(b"HTTP/1.1 %s\r\ncontent-length: %d\r\n\r\n%s" % (status, len(payload), payload))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        writer.transport.abort()


def run_upstreams(ports: list[int], ready: list[int]) -> None:
    async def main() -> None:
        for _ in ports:
            server = await asyncio.start_server(serve, "127.0.0.1", 0)
            ready.append(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


# -- clients --------------------------------------------------------------------
class Stats:
    def __init__(self) -> None:
        self.total = 0
        self.by_status: Counter[tuple[str, int]] = Counter()
        self.unexpected: list[str] = []


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(b":")
            headers[k.strip().lower()] = v.strip()
    if b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    else:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    return status, headers, body


async def client(port: int, stats: Stats, stop: asyncio.Event, rng: random.Random) -> None:
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    paths = list(ALLOWED)
    while not stop.is_set():
        path = rng.choice(paths)
        extra = b""
        body = b""
        if path == "/canary":
            extra = b"x-canary: true\r\n"
        elif path == "/timeout" and rng.random() < 0.1:
            extra = b"x-slow: 1\r\n"
        elif path == "/post":
            body = os.urandom(rng.randint(1024, 65536))
            extra = b"content-length: %d\r\n" % len(body)
        req = b"%s %s HTTP/1.1\r\nhost: demoapp\r\n%s\r\n" % (
            b"POST" if body else b"GET",
            path.encode(),
            extra,
        )
        try:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", port)
            reader, writer = conn
            writer.write(req + body)
            status, headers, got = await asyncio.wait_for(read_response(reader), 10)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            stats.unexpected.append(f"{path}: {exc!r}")
            if conn is not None:
                conn[1].close()
            conn = None
            continue
        stats.total += 1
        stats.by_status[(path, status)] += 1
        ok = status in ALLOWED[path]
        if ok and status == 200:
            if path == "/big":
                ok = len(got) == 262144
            elif path == "/post":
                ok = got == body
            elif path == "/canary":
                ok = headers.get(b"x-canary") == b"true"
        if not ok:
            stats.unexpected.append(f"{path}: {status} {got[:80]!r}")
        if headers.get(b"connection") == b"close":
            conn[1].close()
            conn = None
    if conn is not None:
        conn[1].close()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def soak(args: argparse.Namespace) -> int:
    import threading

    ports: list[int] = []
    threading.Thread(target=run_upstreams, args=([0, 0, 0], ports), daemon=True).start()
    while len(ports) < 3:
        await asyncio.sleep(0.05)
    tmp = Path(tempfile.mkdtemp(prefix="fastproxy-soak-"))
    cfg = tmp / "config.yaml"
    cfg.write_text(
        "---\n".join(
            [
                service_entry("demoapp", 80, [(ports[0], "v1.0"), (ports[1], "v1.1")]),
                service_entry("backend", 80, [(ports[2], "v3.6")]),
                VS,
            ]
        )
    )
    port, admin = free_port(), free_port()
    cmd = [sys.executable, "-m", "fastproxy", "run", "-c", str(cfg), "--listen", f"127.0.0.1:{port}",
           "--admin", f"127.0.0.1:{admin}"]  # fmt: skip
    if args.codec:
        cmd += ["--codec", args.codec]
    stderr = open(tmp / "proxy.stderr", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=stderr)
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1).read()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                print("fastproxy did not start:", (tmp / "proxy.stderr").read_text(), file=sys.stderr)
                return 1
            await asyncio.sleep(0.1)
    stats = Stats()
    stop = asyncio.Event()
    rng = random.Random(args.seed)
    tasks = [asyncio.create_task(client(port, stats, stop, random.Random(rng.random()))) for _ in range(args.clients)]
    started = time.monotonic()
    end = started + args.minutes * 60
    next_reload = started + args.reload
    reloads = 0
    curve = []
    print(f"{'t (s)':>6} {'requests':>9} {'req/s':>7} {'RSS MiB':>8} {'fds':>5} {'unexpected':>10}", flush=True)
    last_total, last_t = 0, started
    while time.monotonic() < end:
        await asyncio.sleep(min(args.sample, max(0.0, end - time.monotonic())))
        now = time.monotonic()
        if args.reload and now >= next_reload:
            proc.send_signal(signal.SIGHUP)
            reloads += 1
            next_reload += args.reload
        point = (now - started, stats.total, rss_kib(proc.pid) / 1024, fds(proc.pid), len(stats.unexpected))
        curve.append(point)
        rate = (stats.total - last_total) / (now - last_t)
        last_total, last_t = stats.total, now
        print(f"{point[0]:6.0f} {point[1]:9d} {rate:7.0f} {point[2]:8.1f} {point[3]:5d} {point[4]:10d}", flush=True)
    stop.set()
    await asyncio.gather(*tasks)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(30)
    stderr.close()
    log = (tmp / "proxy.stderr").read_text(errors="replace")
    print(f"\n{stats.total} requests, {reloads} reloads, proxy exit {code}")
    for (path, status), n in sorted(stats.by_status.items()):
        print(f"  {path:9s} {status}  {n}")
    if curve:
        rss = [p[2] for p in curve]
        fd = [p[3] for p in curve]
        print(f"RSS MiB first {rss[0]:.1f} last {rss[-1]:.1f} max {max(rss):.1f}; ", end="")
        print(f"fds first {fd[0]} last {fd[-1]} max {max(fd)}")
    if "Traceback" in log:
        stats.unexpected.append("traceback in the proxy's stderr:\n" + log[-2000:])
    print(f"unexpected: {len(stats.unexpected)}")
    for line in stats.unexpected[:20]:
        print("  " + line)
    return 0 if not stats.unexpected and code == 0 else 1


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--clients", type=int, default=16, help="concurrent keep-alive client connections")
    p.add_argument("--sample", type=float, default=10.0, help="seconds between curve points")
    p.add_argument("--reload", type=float, default=30.0, help="seconds between SIGHUPs (0: none)")
    p.add_argument("--codec", choices=["httptools", "h11"])
    p.add_argument("--seed", type=int, default=1)
    raise SystemExit(asyncio.run(soak(p.parse_args())))
