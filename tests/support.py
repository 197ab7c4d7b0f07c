"""Test support: real upstream servers, a real fastproxy subprocess, raw clients.

Everything talks over real sockets on 127.0.0.1; nothing here mocks our I/O.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def compiled_codec() -> Any:
    """fastproxy.codec._http, or None when it is not built or the heads run as their twin.

    The compiled codec fills the compiled heads (codec/messages); under
    FASTPROXY_NO_EXTENSIONS the heads' pure twin is loaded instead, and the
    two cannot meet in one process (codec.select() applies the same rule).
    """
    from fastproxy._twins import is_compiled
    from fastproxy.codec import messages

    if not is_compiled(messages):
        return None
    try:
        from fastproxy.codec import _http
    except ImportError:
        return None
    return _http


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


# -- upstream servers ------------------------------------------------------------
class ThreadedServer:
    """An asyncio TCP server on 127.0.0.1 running in a background thread;
    subclasses implement `_serve(reader, writer)`."""

    def __init__(self) -> None:
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    def __enter__(self) -> Any:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(5)
        return self

    def __exit__(self, *exc: Any) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class Upstream(ThreadedServer):
    """An HTTP/1.1 origin on 127.0.0.1 in a background thread.

    Default reply: 200 with a JSON echo of the request.  Paths steer it:
    /status/N, /delay/SECONDS, /chunked, /close-delimited, /reset (close
    before any response byte), /garbage (malformed response), /big/N (N bytes),
    /head-check, /arm-drop (the connection is dropped on its next request);
    a request header `x-delay: SECONDS` delays any answer.  Every request is
    recorded in `.requests`; `handler(req)` may return (status, headers, body)
    or "reset" to take over the reply.
    """

    def __init__(self, name: str = "up") -> None:
        super().__init__()
        self.name = name
        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        self.closed_connections = 0
        self.handler: Callable[[dict[str, Any]], Any] | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        drop_next = False
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ", 2)
                headers = []
                for line in lines[1:]:
                    if line:
                        k, _, v = line.partition(":")
                        headers.append((k.strip().lower(), v.strip()))
                hmap = {}
                for k, v in headers:
                    hmap.setdefault(k, v)
                body = b""
                if "content-length" in hmap:
                    body = await reader.readexactly(int(hmap["content-length"]))
                elif hmap.get("transfer-encoding", "").lower() == "chunked":
                    while True:
                        size_line = await reader.readuntil(b"\r\n")
                        size = int(size_line.split(b";")[0], 16)
                        if size == 0:
                            await reader.readuntil(b"\r\n")
                            break
                        body += await reader.readexactly(size)
                        await reader.readexactly(2)
                req = {
                    "method": method,
                    "path": target,
                    "version": version,
                    "headers": headers,
                    "body": body.decode("latin-1"),
                    "server": self.name,
                }
                self.requests.append(req)
                if drop_next:
                    # Closes a kept-alive connection on its next request, as a
                    # server timing out an idle connection at that moment would.
                    writer.transport.abort()
                    return
                drop_next = target == "/arm-drop"
                if hmap.get("upgrade", "").lower() == "websocket":
                    writer.write(
                        b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"
                    )
                    while True:
                        data = await reader.read(65536)
                        if not data:
                            writer.close()
                            return
                        writer.write(b"echo:" + data)
                custom = self.handler(req) if self.handler else None
                if custom == "reset":
                    writer.transport.abort()
                    return
                if custom is not None:
                    status, rheaders, rbody = custom
                    out = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in rheaders)
                    out += f"content-length: {len(rbody)}\r\n\r\n"
                    writer.write(out.encode() + rbody)
                    await writer.drain()
                    continue
                path = target.split("?")[0]
                parts = path.strip("/").split("/")
                if parts[0] == "reset":
                    writer.transport.abort()
                    return
                if parts[0] == "garbage":
                    writer.write(b"HTTP/1.1 2xx nonsense\r\n\r\n")
                    await writer.drain()
                    writer.close()
                    return
                if parts[0] == "delay":
                    await asyncio.sleep(float(parts[1]))
                if "x-delay" in hmap:
                    await asyncio.sleep(float(hmap["x-delay"]))
                status = int(parts[1]) if parts[0] == "status" else 200
                payload = json.dumps(req).encode()
                if parts[0] == "big":
                    payload = b"x" * int(parts[1])
                if parts[0] == "chunked":
                    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-up: " + self.name.encode())
                    writer.write(b"\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
                    await writer.drain()
                    continue
                if parts[0] == "close-delimited":
                    writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" + b"until-close " * 100)
                    await writer.drain()
                    writer.close()
                    return
                out = (
                    f"HTTP/1.1 {status} Whatever\r\ncontent-type: application/json\r\n"
                    f"x-up: {self.name}\r\nserver: upstream-server\r\n"
                )
                if method == "HEAD" or status in (204, 304):
                    out += f"content-length: {len(payload)}\r\n\r\n" if status != 204 else "\r\n"
                    writer.write(out.encode())
                else:
                    out += f"content-length: {len(payload)}\r\n\r\n"
                    writer.write(out.encode() + payload)
                await writer.drain()
                if hmap.get("connection", "").lower() == "close":
                    writer.close()
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self.closed_connections += 1


# -- the proxy -----------------------------------------------------------------------
def service_entry(name: str, port: int, endpoints: list[tuple[int, dict[str, str]]], namespace: str = "default") -> str:
    """YAML for a ServiceEntry standing in for a Kubernetes Service."""
    eps = "".join(
        f"  - address: 127.0.0.1\n    ports: {{http: {p}}}\n    labels: {json.dumps(labels)}\n"
        for p, labels in endpoints
    )
    return (
        f"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}, namespace: {namespace}}}\n"
        f"spec:\n  hosts: [{name}.{namespace}.svc.cluster.local]\n  location: MESH_INTERNAL\n"
        f"  resolution: STATIC\n  ports:\n  - {{number: {port}, name: http, protocol: HTTP}}\n"
        + (f"  endpoints:\n{eps}\n" if endpoints else "  endpoints: []\n")
    )


class Proxy:
    """`python -m fastproxy run` as a subprocess, ready when /ready says so."""

    def __init__(self, tmp: Path, config: str | list[str], *extra: str, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        if isinstance(config, str):
            path = tmp / "config.yaml"
            path.write_text(config)
            self.config_args = ["-c", str(path)]
            self.config_path = path
        else:
            self.config_args = [a for c in config for a in ("-c", c)]
            self.config_path = Path(config[0])
        self.port = free_port()
        self.admin_port = free_port()
        self.extra = list(extra)
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_path = tmp / f"proxy-{self.port}.stderr"

    def start(self, wait: bool = True) -> Proxy:
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        cmd = [
            sys.executable,
            "-m",
            "fastproxy",
            "run",
            *self.config_args,
            "--listen",
            f"127.0.0.1:{self.port}",
            "--admin",
            f"127.0.0.1:{self.admin_port}",
            "--bind",
            "127.0.0.1",
            *self.extra,
        ]
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, cwd=self.tmp, env=env, stdout=subprocess.DEVNULL, stderr=self._stderr)
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                # No __exit__ follows a failed start: stop it here, so the failure is what gets reported.
                self.stop()
                raise
        return self

    def wait_ready(self, timeout: float = 15.0) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"fastproxy exited {self.proc.returncode}: {self.stderr()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until(ready, timeout)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def admin(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=5) as r:
            return r.read()

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._stderr.close()
        return code

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# -- clients -------------------------------------------------------------------------
class Response:
    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes, raw: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.raw = raw

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    def json(self) -> Any:
        return json.loads(self.body)


def read_response(sock: socket.socket, head_request: bool = False, buf: bytearray | None = None) -> Response:
    """Read one response from `sock` (CL, chunked or close-delimited)."""
    data = buf if buf is not None else bytearray()
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a full head: {bytes(data)!r}")
        data += chunk
    end = data.index(b"\r\n\r\n") + 4
    head = bytes(data[:end])
    del data[:end]
    lines = head.decode("latin-1").split("\r\n")
    _, status, *reason = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers.append((k.strip().lower(), v.strip()))
    hmap = dict(headers)
    status_i = int(status)
    body = b""
    if head_request or status_i in (204, 304) or 100 <= status_i < 200:
        pass
    elif "content-length" in hmap:
        n = int(hmap["content-length"])
        while len(data) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed mid-body")
            data += chunk
        body = bytes(data[:n])
        del data[:n]
    elif hmap.get("transfer-encoding") == "chunked":
        out = bytearray()
        while True:
            while b"\r\n" not in data:
                data += sock.recv(65536)
            i = data.index(b"\r\n")
            size = int(bytes(data[:i]).split(b";")[0], 16)
            del data[: i + 2]
            while len(data) < size + 2:
                data += sock.recv(65536)
            out += data[:size]
            del data[: size + 2]
            if size == 0:
                break
        body = bytes(out)
    else:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        body = bytes(data)
        data.clear()
    return Response(status_i, reason[0] if reason else "", headers, body, head)


def request(
    port: int,
    path: str = "/",
    host: str = "demo",
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> Response:
    """One request on a fresh connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        lines = [f"{method} {path} HTTP/1.1", f"host: {host}"]
        for k, v in headers or []:
            lines.append(f"{k}: {v}")
        if body is not None:
            lines.append(f"content-length: {len(body)}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        return read_response(sock, head_request=method == "HEAD")


def raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, return everything until the proxy closes (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        out = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
        except TimeoutError:
            pass
        return out
