"""The demo upstreams: stand-ins for the images the seed tutorial deploys.

- ``demoapp`` (ikubernetes/demoapp v1.0 and v1.1): answers ``/`` with a line naming
  its version and instance, ``/user-agent``, ``/hostname``, and a Flask-style
  404 page for anything else.
- ``backend`` (the tutorial's gowebserver v3.6): one line naming version and instance.
- ``proxy`` (the frontend): for a request to path P it asks ``http://demoapp:8080`` + P
  through fastproxy's mesh listener, used as an HTTP proxy, and answers
  ``Proxying value: <body> - Took <N> milliseconds.``

Every instance logs one line per request (instance, method, path, status,
x-request-id), so mirrored copies show up in the mirror target's log.

Run one instance:  python -m fastproxy.demo.apps demoapp --version v1.0 --port 18081 --name demoappv10-0
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import NamedTuple
from urllib.parse import urlsplit

import h11

from fastproxy.demo import client

__all__ = [
    "AppSpec",
    "DEFAULT_APPS",
    "DemoApp",
    "RequestLog",
    "main",
    "start_app",
    "start_demo_apps",
    "stop_demo_apps",
]

KINDS = ("demoapp", "backend", "proxy")
MESH_DEFAULT = ("127.0.0.1", 15001)
PROXY_USER_AGENT = "fastproxy-demo-proxy/0.1"
# The frontend waits this long for demoapp; longer than the seed's 3 s fault delay.
PROXY_UPSTREAM_TIMEOUT = 15.0
MAX_REDIRECTS = 5  # the seed's frontend follows redirects, as Python's requests does
MAX_REQUEST_BODY = 1 << 20

NOT_FOUND_PAGE = (
    b"<!doctype html>\n"
    b"<html lang=en>\n"
    b"<title>404 Not Found</title>\n"
    b"<h1>Not Found</h1>\n"
    b"<p>The requested URL was not found on the server. If you entered the URL manually "
    b"please check your spelling and try again.</p>\n"
)

HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


class AppSpec(NamedTuple):
    kind: str  # "demoapp", "backend" or "proxy"
    version: str
    name: str
    port: int


# The fixed layout the seed configs in examples/seed/services point at.
DEFAULT_APPS: tuple[AppSpec, ...] = (
    AppSpec("demoapp", "v1.0", "demoappv10-0", 18081),
    AppSpec("demoapp", "v1.0", "demoappv10-1", 18082),
    AppSpec("demoapp", "v1.1", "demoappv11-0", 18083),
    AppSpec("demoapp", "v1.1", "demoappv11-1", 18084),
    AppSpec("backend", "v3.6", "backendv36-0", 18091),
    AppSpec("backend", "v3.6", "backendv36-1", 18092),
    AppSpec("proxy", "v0.1", "proxy-0", 18071),
)


@dataclass(slots=True)
class RequestLog:
    """One served request, as the instance logs it."""

    name: str
    version: str
    method: str
    target: str
    status: int
    request_id: str
    host: str

    def __str__(self) -> str:
        return (
            f"[{self.name}] {self.method} {self.target} -> {self.status} "
            f"host={self.host} x-request-id={self.request_id or '-'}"
        )


def print_log(entry: RequestLog) -> None:
    print(entry, flush=True)


LogFn = Callable[[RequestLog], None]


class _Request:
    __slots__ = ("method", "target", "path", "headers", "body", "peer_ip", "local_ip")

    def __init__(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        peer_ip: str,
        local_ip: str,
    ) -> None:
        self.method = method
        self.target = target
        # A proxy-style absolute target still has a path to route on.
        self.path = urlsplit(target).path if "://" in target else target.split("?", 1)[0]
        self.headers = headers
        self.body = body
        self.peer_ip = peer_ip
        self.local_ip = local_ip

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == name:
                return value
        return ""


class DemoApp:
    """One instance of a demo upstream: an HTTP/1.1 server with keep-alive."""

    def __init__(
        self,
        kind: str,
        version: str,
        name: str,
        *,
        mesh: tuple[str, int] = MESH_DEFAULT,
        upstream: str = "demoapp:8080",
        log: LogFn | None = print_log,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown demo app kind {kind!r} (expected one of {', '.join(KINDS)})")
        self.kind = kind
        self.version = version
        self.name = name
        self.mesh = mesh
        self.upstream = upstream
        self.log = log
        self.server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self.server is not None, "start() first"
        return self.server.sockets[0].getsockname()[1]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
        self.server = await asyncio.start_server(self._serve_connection, host, port)
        return self.server

    async def close(self) -> None:
        """Stop listening and drop open keep-alive connections."""
        if self.server is not None:
            self.server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self.server is not None:
            await self.server.wait_closed()

    # -- connection handling ------------------------------------------------

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        conn = h11.Connection(h11.SERVER)
        peer = writer.get_extra_info("peername") or ("?", 0)
        local = writer.get_extra_info("sockname") or ("?", 0)
        try:
            while True:
                req = await self._read_request(conn, reader, peer[0], local[0])
                if req is None:
                    break
                status, headers, body = await self.respond(req)
                if self.log is not None:
                    self.log(
                        RequestLog(
                            self.name,
                            self.version,
                            req.method,
                            req.target,
                            status,
                            req.header("x-request-id"),
                            req.header("host"),
                        )
                    )
                headers = [*headers, ("Content-Length", str(len(body))), ("Server", "fastproxy-demo")]
                out = conn.send(h11.Response(status_code=status, headers=headers, reason=_reason(status)))
                if req.method != "HEAD" and body:
                    out += conn.send(h11.Data(data=body))
                out += conn.send(h11.EndOfMessage())
                writer.write(out)
                await writer.drain()
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                try:
                    msg = f"bad request: {exc}\n".encode()
                    writer.write(
                        conn.send(
                            h11.Response(
                                status_code=exc.error_status_hint,
                                headers=[("Content-Length", str(len(msg))), ("Connection", "close")],
                            )
                        )
                        + conn.send(h11.Data(data=msg))
                        + conn.send(h11.EndOfMessage())
                    )
                except (h11.LocalProtocolError, ConnectionError):
                    pass
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away (e.g. a gateway timed out); nothing to answer
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader, peer_ip: str, local_ip: str
    ) -> _Request | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                if len(body) + len(event.data) > MAX_REQUEST_BODY:
                    raise h11.RemoteProtocolError("request body too large", error_status_hint=413)
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return _Request(
                    head.method.decode("ascii", "replace"),
                    head.target.decode("latin-1"),
                    [(k.decode("latin-1"), v.decode("latin-1")) for k, v in head.headers],
                    bytes(body),
                    peer_ip,
                    local_ip,
                )
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None

    # -- the apps themselves ------------------------------------------------

    async def respond(self, req: _Request) -> tuple[int, list[tuple[str, str]], bytes]:
        if self.kind == "demoapp":
            return self._demoapp(req)
        if self.kind == "backend":
            line = (
                f"gowebserver backend {self.version} !! ClientIP: {req.peer_ip}, "
                f"ServerName: {self.name}, ServerIP: {req.local_ip}!\n"
            )
            return 200, [("Content-Type", TEXT)], line.encode()
        return await self._frontend(req)

    def _demoapp(self, req: _Request) -> tuple[int, list[tuple[str, str]], bytes]:
        if req.path == "/":
            line = (
                f"iKubernetes demoapp {self.version} !! ClientIP: {req.peer_ip}, "
                f"ServerName: {self.name}, ServerIP: {req.local_ip}!\n"
            )
        elif req.path == "/user-agent":
            line = f"User-Agent: {req.header('user-agent')}\n"
        elif req.path == "/hostname":
            line = f"ServerName: {self.name}\n"
        elif req.path in ("/livez", "/readyz"):
            line = "OK\n"
        else:
            return 404, [("Content-Type", HTML)], NOT_FOUND_PAGE
        return 200, [("Content-Type", HTML)], line.encode()

    async def _frontend(self, req: _Request) -> tuple[int, list[tuple[str, str]], bytes]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        query = req.target.split("?", 1)[1] if "?" in req.target else ""
        url = f"http://{self.upstream}{req.path}" + (f"?{query}" if query else "")
        headers = [("User-Agent", PROXY_USER_AGENT)]
        request_id = req.header("x-request-id")
        if request_id:
            # Propagated as a mesh app should, so one id follows the request in every log.
            headers.append(("x-request-id", request_id))
        mesh_host, mesh_port = self.mesh
        try:
            for _ in range(MAX_REDIRECTS + 1):
                resp = await client.request(mesh_host, mesh_port, url, headers=headers, timeout=PROXY_UPSTREAM_TIMEOUT)
                location = resp.header("location")
                if resp.status not in (301, 302, 303, 307, 308) or not location:
                    break
                url = _follow(url, location)
                if url is None:
                    break
        except (OSError, TimeoutError, client.ProtocolError) as exc:
            took = round((loop.time() - started) * 1000)
            status, reason = _describe_failure(exc)
            line = (
                f"Proxying error: {url} through the mesh listener {mesh_host}:{mesh_port}: "
                f"{reason} - Took {took} milliseconds.\n"
            )
            return status, [("Content-Type", TEXT)], line.encode()
        took = round((loop.time() - started) * 1000)
        value = resp.text.rstrip("\r\n")
        # Like the seed's frontend: whatever demoapp (or a fault) answered is
        # reported with 200, so gateway retries on 5xx do not see app-level errors.
        line = f"Proxying value: {value} - Took {took} milliseconds.\n"
        return 200, [("Content-Type", HTML)], line.encode()


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def _follow(current: str, location: str) -> str | None:
    if location.startswith("/"):
        parts = urlsplit(current)
        return f"{parts.scheme}://{parts.netloc}{location}"
    if location.startswith("http://"):
        return location
    return None  # https or exotic schemes cannot go through the plain-HTTP mesh listener


def _describe_failure(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, TimeoutError):
        return 504, f"no answer within {PROXY_UPSTREAM_TIMEOUT:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return 502, "connection refused (is fastproxy running?)"
    if isinstance(exc, client.ProtocolError):
        return 502, f"malformed response ({exc})"
    if isinstance(exc, OSError):
        return 502, exc.strerror or str(exc) or type(exc).__name__
    return 502, str(exc)


async def start_app(
    spec: AppSpec,
    host: str = "127.0.0.1",
    *,
    mesh: tuple[str, int] = MESH_DEFAULT,
    log: LogFn | None = print_log,
) -> DemoApp:
    """Start one demo app on host:spec.port (0 picks a free port; see `.port`)."""
    app = DemoApp(spec.kind, spec.version, spec.name, mesh=mesh, log=log)
    await app.start(host, spec.port)
    return app


async def start_demo_apps(
    host: str = "127.0.0.1",
    apps: Iterable[AppSpec] = DEFAULT_APPS,
    *,
    mesh: tuple[str, int] = MESH_DEFAULT,
    log: LogFn | None = print_log,
) -> list[DemoApp]:
    """Start every app in `apps`; on a bind failure, stop the ones already started and re-raise."""
    started: list[DemoApp] = []
    try:
        for spec in apps:
            started.append(await start_app(spec, host, mesh=mesh, log=log))
    except BaseException:
        await stop_demo_apps(started)
        raise
    return started


async def stop_demo_apps(apps: Iterable[DemoApp]) -> None:
    for app in apps:
        await app.close()


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastproxy.demo.apps", description="Run one demo upstream.")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--version", default=None, help="version label (default: v1.0, v3.6 or v0.1 by kind)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default=None, help="instance name shown in answers and logs")
    parser.add_argument(
        "--mesh", type=_host_port, default=MESH_DEFAULT, help="proxy app: fastproxy mesh listener HOST:PORT"
    )
    parser.add_argument("--upstream", default="demoapp:8080", help="proxy app: authority to call")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)
    version = args.version or {"demoapp": "v1.0", "backend": "v3.6", "proxy": "v0.1"}[args.kind]
    name = args.name or ("proxy-0" if args.kind == "proxy" else f"{args.kind}{version.replace('.', '')}-0")

    async def serve() -> None:
        app = DemoApp(
            args.kind,
            version,
            name,
            mesh=args.mesh,
            upstream=args.upstream,
            log=None if args.quiet else print_log,
        )
        try:
            await app.start(args.host, args.port)
        except OSError as exc:
            print(f"{name}: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
            raise SystemExit(1) from None
        # Tests and the bench read this line to learn the port.
        print(f"{name} listening on http://{args.host}:{app.port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await app.close()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
