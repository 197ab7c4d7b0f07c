"""Per-worker runtime state: the config in force, the listeners' route tables,
the cluster states and pools, the open client connections and counters.

A reload builds everything new off to the side and swaps it in with plain
attribute assignments, so each request sees one whole config: an Exchange
keeps the records it looked up, so requests in flight finish on the old one.

Compiled with Cython in pure-Python mode (server.pxd types ProxyState, which
the pipeline reads on every request); this file is also its own pure twin.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections import Counter
from dataclasses import dataclass
from time import monotonic as _now  # the proxy's clock (uvloop's loop.time() reads the same one, in ms)
from typing import TYPE_CHECKING, Any

from fastproxy import codec, table

try:  # a build dependency only: absent, this module runs as its pure twin
    import cython

    _COMPILED = cython.compiled
except ImportError:
    _COMPILED = False
from fastproxy.admin.stats import Stats
from fastproxy.pipeline import heads
from fastproxy.pipeline.headers import RESPONSE_SKIP
from fastproxy.upstream.balancer import ClusterState, UpstreamManager

if TYPE_CHECKING:
    from fastproxy.pipeline.downstream import Downstream


@dataclass(frozen=True, slots=True)
class Limits:
    max_head_bytes: int = 60 * 1024
    max_headers: int = 100
    head_timeout: float = 60.0
    idle_timeout: float = 300.0
    upstream_idle_timeout: float = 60.0
    connect_timeout: float = 10.0
    # Client connections per worker beyond which new ones are refused at
    # once; 0 sizes it from the file-descriptor limit (listeners.py).
    max_connections: int = 0
    # Mirror copies in flight per worker; beyond it copies are dropped (and counted).
    max_mirrors: int = 256


class ProxyState:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: table.Config,
        limits: Limits,
        codec_name: str | None = None,
        seed: int | None = None,
    ) -> None:
        self.loop = loop
        self.limits = limits
        self.max_head_bytes = limits.max_head_bytes
        self.max_headers = limits.max_headers
        self.head_timeout = limits.head_timeout
        self.idle_timeout = limits.idle_timeout
        self.request_parser, response_parser = codec.select(codec_name)
        # Each response head arrives with the block the client gets, when the codec renders it.
        response_parser = functools.partial(response_parser, forward_skip=RESPONSE_SKIP)
        self.upstream = UpstreamManager(loop, response_parser, limits.upstream_idle_timeout)
        # Weighted picks, load balancing and retry jitter; `--seed` makes them repeatable.
        self.rng = random.Random(seed)
        self.fault_rng = random.Random(None if seed is None else seed + 1)
        self.id_rng = random.Random()
        self.request_ids = heads.RequestIds(self.id_rng)
        self.connections: set[Downstream] = set()
        self.counters: Counter[str] = Counter()
        # Istio standard metrics (admin/stats.py) and the optional access log
        # (admin/accesslog.py, set by the supervisor for --access-log).
        self.stats = Stats(loop)
        self.record = self.stats.record
        self.access_log: Any = None
        self.draining = False
        self.mirrors_in_flight = 0
        self.max_mirrors_in_flight = limits.max_mirrors
        self.config: table.Config = config
        self.listeners: dict[Any, table.Listener] = {}
        # Gateway ports whose server sets tls.httpsRedirect: every request gets a 301 to https.
        self.https_redirect: set[int] = set()
        self.clusters: dict[str, ClusterState] = {}
        self.apply(config, first=True)
        self._sweeper: Any = None

    def apply(self, config: table.Config, first: bool = False) -> None:
        listeners: dict[Any, table.Listener] = {"mesh": config.mesh}
        https_redirect = set()
        for server in config.gateways:
            listeners[server.port] = server.listener
            if server.https_redirect:
                https_redirect.add(server.port)
        self.https_redirect = https_redirect
        clusters = self.upstream.build(config, self.rng, self.counters)
        if not first:
            self.upstream.new_generation()
            for state in self.clusters.values():
                state.close()
        self.config = config
        self.listeners = listeners
        self.clusters = clusters
        self.counters["config_reloads_ok" if not first else "config_loads"] += 1

    def now(self) -> float:
        """The proxy's clock, time.monotonic; compiled, a C read that callers get as a C double."""
        if _COMPILED:
            return _c_monotonic()  # noqa: F821 (fastproxy/_clock.pxd, cimported by server.pxd)
        return _now()

    # -- periodic work -----------------------------------------------------
    def start(self) -> None:
        self.upstream.start_sweeper()
        interval = max(0.05, min(1.0, self.head_timeout / 4, self.idle_timeout / 4))

        def sweep() -> None:
            now = _now()
            for conn in list(self.connections):
                conn.check_deadline(now)
            self._sweeper = self.loop.call_later(interval, sweep)

        self._sweeper = self.loop.call_later(interval, sweep)

    def begin_drain(self) -> None:
        self.draining = True
        for conn in list(self.connections):
            conn.close_if_idle()

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.upstream.close()
