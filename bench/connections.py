#!/usr/bin/env python3
"""Hold many idle keep-alive client connections on one fastproxy worker and
report what each costs.

    python bench/connections.py [--connections 10000] [--hold 10] [--codec httptools|h11]

Every connection sends one request and reads its response first, so it is a
real kept-alive client connection (parser, protocol object, socket buffers),
not just an accepted socket.  Prints the proxy's RSS and file-descriptor
count before and after, the bytes per connection, and checks after the hold
that a sample of the connections still answers and that new clients are
still served.  Needs a file-descriptor limit above the connection count
(this process holds every client socket).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def upstream_server() -> tuple[asyncio.AbstractServer, int]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            # (cancelled when the bench exits with connections still open)
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


REQUEST = b"GET / HTTP/1.1\r\nhost: app\r\n\r\n"


async def one_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    writer.write(REQUEST)
    head = await reader.readuntil(b"\r\n\r\n")
    n = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    await reader.readexactly(n)
    return head.startswith(b"HTTP/1.1 200 ")


async def main(args: argparse.Namespace) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    server, up_port = await upstream_server()
    tmp = Path(tempfile.mkdtemp(prefix="fastproxy-conns-"))
    cfg = tmp / "config.yaml"
    cfg.write_text(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: app}\n"
        "spec:\n  hosts: [app.default.svc.cluster.local]\n  resolution: STATIC\n"
        "  ports: [{number: 80, name: http, protocol: HTTP}]\n"
        f"  endpoints: [{{address: 127.0.0.1, ports: {{http: {up_port}}}}}]\n"
    )
    port, admin = free_port(), free_port()
    cmd = [sys.executable, "-m", "fastproxy", "run", "-c", str(cfg), "--listen", f"127.0.0.1:{port}",
           "--admin", f"127.0.0.1:{admin}", "--max-connections", str(args.connections + 100)]  # fmt: skip
    if args.codec:
        cmd += ["--codec", args.codec]
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    print("fastproxy did not start", file=sys.stderr)
                    return 1
                await asyncio.sleep(0.1)
        conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        r, w = await asyncio.open_connection("127.0.0.1", port)
        await one_request(r, w)  # warm the upstream pool and the code paths
        w.close()
        await asyncio.sleep(0.5)
        rss0, fd0 = rss_kib(proc.pid), fds(proc.pid)
        started = time.monotonic()
        batch = 500
        failed = 0
        for i in range(0, args.connections, batch):

            async def open_one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
                try:
                    pair = await asyncio.open_connection("127.0.0.1", port)
                    return pair if await one_request(*pair) else None
                except (OSError, asyncio.IncompleteReadError):
                    return None

            got = await asyncio.gather(*(open_one() for _ in range(min(batch, args.connections - i))))
            failed += sum(1 for g in got if g is None)
            conns.extend(g for g in got if g is not None)
        opened = time.monotonic() - started
        print(f"opened {len(conns)} keep-alive connections in {opened:.1f}s ({failed} failed)", flush=True)
        await asyncio.sleep(args.hold)
        rss1, fd1 = rss_kib(proc.pid), fds(proc.pid)
        sample = conns[:: max(1, len(conns) // 100)]
        ok = sum(await asyncio.gather(*(one_request(*c) for c in sample)))
        r, w = await asyncio.open_connection("127.0.0.1", port)
        fresh_ok = await one_request(r, w)
        w.close()
        n = len(conns)
        print(f"proxy RSS   before {rss0 / 1024:8.1f} MiB   with {n} idle connections {rss1 / 1024:8.1f} MiB")
        print(f"proxy fds   before {fd0:8d}       with {n} idle connections {fd1:8d}")
        if n:
            print(f"bytes per idle keep-alive connection: {(rss1 - rss0) * 1024 / n:.0f}")
        print(
            f"after {args.hold:.0f}s idle: {ok}/{len(sample)} sampled connections answered; "
            f"new client served: {fresh_ok}"
        )
        for _, w in conns:
            w.close()
        return 0 if failed == 0 and ok == len(sample) and fresh_ok else 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        server.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=10_000)
    p.add_argument("--hold", type=float, default=10.0, help="seconds to hold them idle before re-checking")
    p.add_argument("--codec", choices=["httptools", "h11"])
    raise SystemExit(asyncio.run(main(p.parse_args())))
