"""Process lifecycle: start (all or nothing), SIGHUP reload, SIGTERM drain,
and `--workers N` (forked workers sharing the ports with SO_REUSEPORT; the
parent serves the admin listener and passes signals on)."""

from __future__ import annotations

import asyncio
import concurrent.futures
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
from fastproxy.admin.graph import GraphState
from fastproxy.admin.graph import page as graph_page
from fastproxy.admin.server import AdminServer, index_page
from fastproxy.admin.stats import LABELS, Merged, render_prometheus
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
    metrics: bool = True
    limits: Limits = field(default_factory=Limits)


def _no_record(ex: object) -> None:
    """--no-metrics: requests are not counted (for measuring what counting costs)."""


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
    """One worker's numbers: sent to the parent every 0.5 s with --workers N."""
    live: dict[str, list[list[Any]]] = {}
    for name, cs in state.clusters.items():
        rows = []
        for host in cs.hosts:
            pool = host.pool
            # The last field counts workers that have this endpoint ejected.
            ejected = int(bool(host.ejected_until))
            rows.append([host.label, host.active, len(pool.idle), pool.busy, pool.connecting, ejected])
        live[name] = rows
    return {
        "counters": dict(state.counters),
        "connections": len(state.connections),
        "stats": state.stats.snapshot(),
        "live": live,
    }


# Counters every scrape shows, even at 0, so rate() works from the first sample.
_COUNTERS = (
    "config_loads",
    "config_reloads_ok",
    "config_reloads_failed",
    "retries",
    "mirror_sent",
    "mirror_dropped",
    "mirror_completed",
    "mirror_failed",
    "downstream_protocol_errors",
    "outlier_ejections",
    "upstream_overflow",
    "downstream_cx_overflow",
)


def merge_payloads(payloads: list[dict[str, Any]], parent: Counter[str] | None = None) -> dict[str, Any]:
    """Totals across workers: sums, except config loads, which every worker does once."""
    counters: Counter[str] = Counter({name: 0 for name in _COUNTERS})
    for p in payloads:
        for name, value in p["counters"].items():
            if name.startswith("config_"):
                counters[name] = max(counters[name], value)
            else:
                counters[name] += value
    if parent:
        counters.update(parent)
    live: dict[str, dict[str, list[Any]]] = {}
    for p in payloads:
        for cluster, rows in p["live"].items():
            hosts = live.setdefault(cluster, {})
            for label, *values in rows:
                mine = hosts.get(label)
                if mine is None:
                    hosts[label] = list(values)
                else:
                    for i, v in enumerate(values):
                        mine[i] += v
    return {
        "counters": counters,
        "connections": sum(p["connections"] for p in payloads),
        "merged": Merged.of(p["stats"] for p in payloads),
        "live": live,
        "workers": len(payloads),
    }


def _per_endpoint(merged: Merged) -> dict[tuple[str, str], list[int]]:
    """(cluster, host) -> [requests, 5xx/no-response, total 4xx]."""
    out: dict[tuple[str, str], list[int]] = {}
    code_i = LABELS.index("response_code")
    for s in merged.series.values():
        if not s.host:
            continue
        row = out.setdefault((s.cluster, s.host), [0, 0, 0])
        code = s.labels[code_i]
        row[0] += s.count
        if code == "0" or code[0] == "5":
            row[1] += s.count
        elif code[0] == "4":
            row[2] += s.count
    return out


def render_stats(totals: dict[str, Any]) -> bytes:
    live = totals["live"]
    pools: dict[str, list[Any]] = {}
    active = []
    for cluster, hosts in sorted(live.items()):
        for label, values in sorted(hosts.items()):
            pools[label] = values  # one pool per endpoint address, shared by clusters
            active.append(({"cluster": cluster, "endpoint": label}, values[0]))
    ejected = []
    for cluster, hosts in sorted(live.items()):
        for label, values in sorted(hosts.items()):
            ejected.append(({"cluster": cluster, "endpoint": label}, values[4]))
    pool_samples = []
    for label, values in sorted(pools.items()):
        for state_name, v in zip(("idle", "busy", "connecting"), values[1:4], strict=True):
            pool_samples.append(({"endpoint": label, "state": state_name}, v))
    requests = []
    errors = []
    for (cluster, host), (n, e5, _e4) in sorted(_per_endpoint(totals["merged"]).items()):
        requests.append(({"cluster": cluster, "endpoint": host}, n))
        errors.append(({"cluster": cluster, "endpoint": host}, e5))
    return render_prometheus(
        totals["merged"],
        dict(totals["counters"]),
        {"downstream_connections": totals["connections"], "workers": totals["workers"]},
        [
            ("fastproxy_upstream_active_requests", "gauge", "Requests in flight per cluster endpoint.", active),
            ("fastproxy_upstream_pool_connections", "gauge", "Upstream connections per endpoint pool.", pool_samples),
            ("fastproxy_upstream_requests_total", "counter", "Requests that reached an endpoint.", requests),
            ("fastproxy_upstream_errors_total", "counter", "5xx or no-response outcomes per endpoint.", errors),
            ("fastproxy_upstream_ejected", "gauge", "Workers with the endpoint ejected by outlier detection.", ejected),
        ],
    )


def render_clusters(config: table.Config, totals: dict[str, Any]) -> bytes:
    """Envoy's /clusters text layout: CLUSTER::HOST::STAT::VALUE."""
    per = _per_endpoint(totals["merged"])
    live = totals["live"]
    lines = []
    for name, cluster in sorted(config.clusters.items()):
        lines.append(f"{name}::default_priority::max_connections::{cluster.pool.max_connections}")
        lines.append(f"{name}::default_priority::max_requests::{cluster.pool.max_requests}")
        lines.append(f"{name}::default_priority::max_retries::{cluster.pool.max_retries}")
        hosts = live.get(name, {})
        for ep in cluster.endpoints:
            label = f"{ep.address}:{ep.port}"
            act, idle, busy, connecting, ejected = hosts.get(label, [0, 0, 0, 0, 0])
            n, e5, e4 = per.get((name, label), [0, 0, 0])
            prefix = f"{name}::{label}::"
            lines.append(f"{prefix}rq_active::{act}")
            lines.append(f"{prefix}rq_total::{n}")
            lines.append(f"{prefix}rq_error::{e5}")
            lines.append(f"{prefix}rq_4xx::{e4}")
            lines.append(f"{prefix}cx_idle::{idle}")
            lines.append(f"{prefix}cx_busy::{busy}")
            lines.append(f"{prefix}cx_connecting::{connecting}")
            lines.append(f"{prefix}weight::{ep.weight}")
            # Envoy's flag for an endpoint ejected by outlier detection.
            lines.append(f"{prefix}health_flags::{'/failed_outlier_check' if ejected else 'healthy'}")
            lines.append(f"{prefix}labels::{','.join(f'{k}={v}' for k, v in sorted(ep.labels.items()))}")
    return ("\n".join(lines) + "\n").encode()


def open_access_log(target: str | None, loop: Any) -> Any:
    """The --access-log writer, or None when it is off (the default)."""
    if not target:
        return None
    from fastproxy.admin.accesslog import AccessLog

    try:
        return AccessLog(target, loop)
    except OSError as exc:
        err(f"fastproxy: cannot open the access log {target}: {exc.strerror or exc}")
        raise SystemExit(1) from None


def admin_routes(get_config: Any, is_ready: Any, get_totals: Any) -> dict[str, Any]:
    from fastproxy.config import dump
    from fastproxy.config.routes_view import render_routes

    routes: dict[str, Any] = {}
    graph_state = GraphState()

    def ready() -> tuple[int, bytes, bytes]:
        if is_ready():
            return 200, b"text/plain", b"LIVE\n"
        return 503, b"text/plain", b"PRE_INITIALIZING\n"

    def config_dump() -> tuple[int, bytes, bytes]:
        data = dict(dump(get_config()))
        # Live endpoint state next to the compiled config (Envoy's EDS dump).
        totals = get_totals()
        per = _per_endpoint(totals["merged"])
        data["endpoint_state"] = [
            {
                "cluster": cluster,
                "endpoint": label,
                "health": "EJECTED" if v[4] else "HEALTHY",
                "active_requests": v[0],
                "pool_idle": v[1],
                "pool_busy": v[2],
                "pool_connecting": v[3],
                "requests": per.get((cluster, label), [0])[0],
            }  # fmt: skip
            for cluster, hosts in sorted(totals["live"].items())
            for label, v in sorted(hosts.items())
        ]
        return 200, b"application/json", orjson.dumps(data)

    routes["/ready"] = ready
    routes["/config_dump"] = config_dump
    routes["/routes"] = lambda: (200, b"text/plain", render_routes(get_config()).encode())
    routes["/clusters"] = lambda: (200, b"text/plain", render_clusters(get_config(), get_totals()))
    routes["/stats/prometheus"] = lambda: (200, b"text/plain; version=0.0.4; charset=utf-8", render_stats(get_totals()))
    routes["/graph"] = lambda: (200, b"text/html; charset=utf-8", graph_page())
    routes["/graph.json"] = lambda: (
        200,
        b"application/json",
        orjson.dumps(graph_state.build(get_totals()["merged"], get_config())),
    )
    paths = sorted(routes)
    routes["/"] = lambda: (200, b"text/html; charset=utf-8", index_page(paths))
    return routes


async def _reload(opts: RunOptions, lock: asyncio.Lock, counters: Any, apply: Any, report: bool = True) -> None:
    """SIGHUP: load every config file again and hand the result to `apply`.

    Reloads run one at a time, so two quick SIGHUPs can never apply an older
    read of the files after a newer one.  A config with problems is rejected
    (its lines printed unless `report` is off) and the previous one keeps serving.
    """
    async with lock:
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, load, opts.configs)
        if result.config is None:
            if report:
                for problem in result.problems:
                    err(problem)
                err("fastproxy: reload rejected; the previous config keeps serving")
                counters["config_reloads_failed"] += 1
            return
        await apply(result.config)


def _new_state(opts: RunOptions, config: table.Config, loop: asyncio.AbstractEventLoop) -> ProxyState:
    """One worker's runtime state, as the run options ask for it."""
    state = ProxyState(loop, config, opts.limits, opts.codec, opts.seed)
    if not opts.metrics:
        state.record = _no_record
    state.access_log = open_access_log(opts.access_log, loop)
    return state


async def _single(opts: RunOptions, config: table.Config) -> int:
    loop = asyncio.get_running_loop()
    _signals_to_the_loop_thread(loop)
    state = _new_state(opts, config, loop)
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
            lambda: merge_payloads([_stats_payload(state)]),
        )
    )
    await admin.start(admin_sock)
    state.start()
    stop = asyncio.Event()

    async def apply(config: table.Config) -> None:
        state.apply(config)
        for problem in await listeners.reconcile():
            err(f"fastproxy: {problem}")
        err("fastproxy: config reloaded")

    lock = asyncio.Lock()
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload(opts, lock, state.counters, apply)))
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await _drain(state, listeners, opts.drain_timeout)
    admin.close()
    _ignore_stop_signals(loop)
    return 0


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def _drain(state: ProxyState, listeners: ListenerSet, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    listeners.close()
    state.begin_drain()
    deadline = loop.time() + timeout
    # A second SIGTERM/SIGINT (Ctrl-C twice) ends the wait: the operator has said "now".
    now = asyncio.Event()
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, now.set)
    # Finishing requests close their connections themselves (state.draining).
    while state.connections and loop.time() < deadline and not now.is_set():
        await asyncio.sleep(0.02)
    for conn in list(state.connections):
        conn.transport.abort()
    state.stop()
    if state.access_log is not None:
        state.access_log.close()


def _ignore_stop_signals(loop: asyncio.AbstractEventLoop) -> None:
    """The drain is over and the exit code decided: a late SIGTERM must not turn it into a kill.

    Closing the loop would put the default actions back, and a stop signal sent
    while the interpreter winds down (a supervisor repeating its SIGTERM) would
    then end the process with -15 instead of the 0 the drain earned.
    """
    # Blocked first: removing a loop handler briefly restores the default action.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    for sig in _STOP_SIGNALS:
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)


def _signals_to_the_loop_thread(loop: asyncio.AbstractEventLoop) -> None:
    """Executor threads (config reads, waitpid) block the stop signals.

    The kernel hands a process signal to any thread that does not block it;
    once the loop's handlers are gone that would be the default action, so only
    the loop's thread may receive them.
    """
    loop.set_default_executor(
        concurrent.futures.ThreadPoolExecutor(
            initializer=signal.pthread_sigmask, initargs=(signal.SIG_BLOCK, (*_STOP_SIGNALS, signal.SIGHUP))
        )
    )


# -- several workers -----------------------------------------------------------
def _worker(opts: RunOptions, config: table.Config, fd: int) -> int:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        _signals_to_the_loop_thread(loop)
        state = _new_state(opts, config, loop)
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

        async def apply(config: table.Config) -> None:
            state.apply(config)
            for problem in await listeners.reconcile():
                err(f"fastproxy: {problem}")

        lock = asyncio.Lock()

        async def reporter() -> None:
            while True:
                await asyncio.sleep(0.5)
                report("stats")

        task = loop.create_task(reporter())
        # The parent already printed any problems of this config: report=False.
        loop.add_signal_handler(
            signal.SIGHUP, lambda: loop.create_task(_reload(opts, lock, state.counters, apply, report=False))
        )
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await stop.wait()
        await _drain(state, listeners, opts.drain_timeout)
        report("stats")
        task.cancel()
        _ignore_stop_signals(loop)
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
    _signals_to_the_loop_thread(loop)
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

    parent_counters: Counter[str] = Counter()

    def totals() -> dict[str, Any]:
        return merge_payloads(list(latest.values()), parent_counters)

    admin = AdminServer(admin_routes(lambda: current["config"], lambda: len(ready) == len(children), totals))
    await admin.start(admin_sock)

    async def apply(config: table.Config) -> None:
        current["config"] = config
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)
        err("fastproxy: config reloaded")

    lock = asyncio.Lock()

    def forward_stop() -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    async def collect(pid: int) -> None:
        _, status = await loop.run_in_executor(None, os.waitpid, pid, 0)
        exited.put_nowait((pid, os.waitstatus_to_exitcode(status)))

    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload(opts, lock, parent_counters, apply)))
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
    _ignore_stop_signals(loop)
    return 0 if worst == 0 else 1


__all__ = ["RunOptions", "parse_hostport", "run"]
