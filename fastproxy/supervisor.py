"""Process lifecycle: start (all or nothing), SIGHUP reload, SIGTERM drain,
and `--workers N` (forked workers sharing the ports with SO_REUSEPORT; the
parent serves the admin listener and passes signals on)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from fastproxy import table
from fastproxy.admin.server import AdminServer, index_page
from fastproxy.config import load
from fastproxy.listeners import ListenError, ListenerSet, bind_socket, parse_hostport
from fastproxy.server import Limits, ProxyState


@dataclass
class RunOptions:
    configs: list[str]
    listen: tuple[str, int] = ("127.0.0.1", 15001)
    bind: str = "0.0.0.0"
    admin: tuple[str, int] = ("127.0.0.1", 15000)
    workers: int = 1
    access_log: str | None = None
    codec: str | None = None
    drain_timeout: float = 10.0
    seed: int | None = None
    limits: Limits = field(default_factory=Limits)


def err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def load_or_report(paths: list[str]) -> table.Config | None:
    result = load(paths)
    for warning in result.warnings:
        err(warning)
    for problem in result.problems:
        err(problem)
    return result.config if not result.problems else None


def _loop_factory() -> Any:
    try:
        import uvloop

        return uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.new_event_loop


def run(opts: RunOptions) -> int:
    config = load_or_report(opts.configs)
    if config is None:
        return 1
    if opts.admin[0] not in ("127.0.0.1", "::1", "localhost"):
        err(f"fastproxy: warning: the admin listener on {opts.admin[0]} is reachable from other hosts")
    if opts.workers <= 1:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(_single(opts, config))
    return _multi(opts, config)


def _stats_payload(state: ProxyState) -> dict[str, Any]:
    return {
        "counters": dict(state.counters),
        "responses": [[list(k), v] for k, v in state.responses.items()],
        "connections": len(state.connections),
    }


def render_stats(counters: Counter[str], responses: Counter[tuple[Any, ...]], connections: int) -> bytes:
    lines = [
        "# HELP fastproxy_requests_total Requests finished by fastproxy.",
        "# TYPE fastproxy_requests_total counter",
    ]
    for (listener, cluster, code, flags), value in sorted(responses.items(), key=lambda kv: str(kv[0])):
        lines.append(
            f'fastproxy_requests_total{{listener="{listener}",cluster="{cluster}",'
            f'response_code="{code}",response_flags="{flags}"}} {value}'
        )
    lines.append("# TYPE fastproxy_downstream_connections gauge")
    lines.append(f"fastproxy_downstream_connections {connections}")
    for name, value in sorted(counters.items()):
        lines.append(f"# TYPE fastproxy_{name}_total counter")
        lines.append(f"fastproxy_{name}_total {value}")
    return ("\n".join(lines) + "\n").encode()


def admin_routes(get_config: Any, is_ready: Any, get_stats: Any) -> dict[str, Any]:
    from fastproxy.config import dump
    from fastproxy.config.routes_view import render_routes

    routes: dict[str, Any] = {}

    def ready() -> tuple[int, bytes, bytes]:
        if is_ready():
            return 200, b"text/plain", b"LIVE\n"
        return 503, b"text/plain", b"PRE_INITIALIZING\n"

    routes["/ready"] = ready
    routes["/config_dump"] = lambda: (200, b"application/json", orjson.dumps(dump(get_config())))
    routes["/routes"] = lambda: (200, b"text/plain", render_routes(get_config()).encode())
    routes["/stats/prometheus"] = lambda: (200, b"text/plain; version=0.0.4", get_stats())
    paths = sorted(routes)
    routes["/"] = lambda: (200, b"text/html; charset=utf-8", index_page(paths))
    return routes


async def _single(opts: RunOptions, config: table.Config) -> int:
    loop = asyncio.get_running_loop()
    state = ProxyState(loop, config, opts.limits, opts.codec, opts.seed)
    listeners = ListenerSet(state, opts.listen, opts.bind, reuse_port=False)
    try:
        await listeners.open_all()
        admin_sock = bind_socket(*opts.admin, reuse_port=False)
    except ListenError as exc:
        listeners.close()
        err(f"fastproxy: {exc}")
        return 1
    admin = AdminServer(
        admin_routes(
            lambda: state.config,
            lambda: True,
            lambda: render_stats(state.counters, state.responses, len(state.connections)),
        )
    )
    await admin.start(admin_sock)
    state.start()
    stop = asyncio.Event()

    async def reload() -> None:
        result = await loop.run_in_executor(None, load, opts.configs)
        if result.problems:
            for problem in result.problems:
                err(problem)
            err("fastproxy: reload rejected; the previous config keeps serving")
            state.counters["config_reloads_failed"] += 1
            return
        state.apply(result.config)  # type: ignore[arg-type]
        for problem in await listeners.reconcile():
            err(f"fastproxy: {problem}")
        err("fastproxy: config reloaded")

    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reload()))
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await _drain(state, listeners, opts.drain_timeout)
    admin.close()
    return 0


async def _drain(state: ProxyState, listeners: ListenerSet, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    listeners.close()
    state.begin_drain()
    deadline = loop.time() + timeout
    # Finishing requests close their connections themselves (state.draining).
    while state.connections and loop.time() < deadline:
        await asyncio.sleep(0.02)
    for conn in list(state.connections):
        conn.transport.abort()
    state.stop()


# -- several workers -----------------------------------------------------------
def _worker(opts: RunOptions, config: table.Config, fd: int) -> int:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        state = ProxyState(loop, config, opts.limits, opts.codec, opts.seed)
        listeners = ListenerSet(state, opts.listen, opts.bind, reuse_port=True)
        try:
            await listeners.open_all()
        except ListenError as exc:
            err(f"fastproxy: {exc}")
            return 1
        state.start()
        pipe = os.fdopen(fd, "wb", buffering=0)

        def report(kind: str) -> None:
            payload = {"kind": kind, "pid": os.getpid(), **_stats_payload(state)}
            with contextlib.suppress(OSError):
                pipe.write(orjson.dumps(payload) + b"\n")

        report("ready")
        stop = asyncio.Event()

        async def reload() -> None:
            result = await loop.run_in_executor(None, load, opts.configs)
            if result.config is None:
                return  # the parent already printed the problems
            state.apply(result.config)
            for problem in await listeners.reconcile():
                err(f"fastproxy: {problem}")

        async def reporter() -> None:
            while True:
                await asyncio.sleep(0.5)
                report("stats")

        task = loop.create_task(reporter())
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reload()))
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await stop.wait()
        await _drain(state, listeners, opts.drain_timeout)
        report("stats")
        task.cancel()
        return 0

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(main())


def _multi(opts: RunOptions, config: table.Config) -> int:
    # Probe every address first so a port in use fails the start as a whole.
    probes: list[socket.socket] = []
    try:
        addresses = [opts.listen] + [(s.bind or opts.bind, s.port) for s in config.gateways]
        for host, port in addresses:
            probes.append(bind_socket(host, port, reuse_port=True, listen=False))
        admin_sock = bind_socket(*opts.admin, reuse_port=False)
    except ListenError as exc:
        for sock in probes:
            sock.close()
        err(f"fastproxy: {exc}")
        return 1
    children: dict[int, int] = {}
    for _ in range(opts.workers):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # worker
            os.close(read_fd)
            admin_sock.close()
            for sock in probes:
                sock.close()
            code = 1
            try:
                code = _worker(opts, config, write_fd)
            finally:
                os._exit(code)
        os.close(write_fd)
        children[pid] = read_fd
    for sock in probes:
        sock.close()
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_parent(opts, config, children, admin_sock))


async def _parent(opts: RunOptions, config: table.Config, children: dict[int, int], admin_sock: Any) -> int:
    loop = asyncio.get_running_loop()
    current = {"config": config}
    ready: set[int] = set()
    latest: dict[int, dict[str, Any]] = {}
    buffers: dict[int, bytes] = {}
    exited: asyncio.Queue[tuple[int, int]] = asyncio.Queue()

    def on_readable(pid: int, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            # The worker's end of the pipe closed: it exited (or is about to).
            loop.remove_reader(fd)
            os.close(fd)
            loop.create_task(collect(pid))
            return
        buf = buffers.get(pid, b"") + data
        *lines, buffers[pid] = buf.split(b"\n")
        for line in lines:
            msg = orjson.loads(line)
            if msg["kind"] == "ready":
                ready.add(pid)
            latest[pid] = msg

    for pid, fd in children.items():
        loop.add_reader(fd, on_readable, pid, fd)

    def stats() -> bytes:
        counters: Counter[str] = Counter()
        responses: Counter[tuple[Any, ...]] = Counter()
        connections = 0
        for msg in latest.values():
            counters.update(msg["counters"])
            for key, value in msg["responses"]:
                responses[tuple(key)] += value
            connections += msg["connections"]
        return render_stats(counters, responses, connections)

    admin = AdminServer(admin_routes(lambda: current["config"], lambda: len(ready) == len(children), stats))
    await admin.start(admin_sock)

    async def reload() -> None:
        result = await loop.run_in_executor(None, load, opts.configs)
        if result.problems:
            for problem in result.problems:
                err(problem)
            err("fastproxy: reload rejected; the previous config keeps serving")
            return
        current["config"] = result.config  # type: ignore[assignment]
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)
        err("fastproxy: config reloaded")

    def forward_stop() -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    async def collect(pid: int) -> None:
        _, status = await loop.run_in_executor(None, os.waitpid, pid, 0)
        exited.put_nowait((pid, os.waitstatus_to_exitcode(status)))

    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reload()))
    loop.add_signal_handler(signal.SIGTERM, forward_stop)
    loop.add_signal_handler(signal.SIGINT, forward_stop)
    worst = 0
    remaining = set(children)
    while remaining:
        pid, code = await exited.get()
        if pid in remaining:
            remaining.discard(pid)
            worst = max(worst, abs(code))
            if code != 0:
                # One worker died: stop the others rather than serve half a fleet silently.
                err(f"fastproxy: worker {pid} exited with {code}")
                forward_stop()
    admin.close()
    return 0 if worst == 0 else 1


__all__ = ["RunOptions", "parse_hostport", "run"]
