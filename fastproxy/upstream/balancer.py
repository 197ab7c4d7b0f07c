"""Per-cluster endpoint choice, circuit breakers and outlier detection, and
the registry of endpoint pools.

A ClusterState is built once per config load for every compiled cluster; the
pools behind its hosts live in the UpstreamManager and survive reloads (their
generation is bumped instead), so a reload never drops warm connections that
are still valid.

Compiled with Cython in pure-Python mode (types in balancer.pxd); this file is
also its own pure twin (fastproxy/_twins.py).
"""

from __future__ import annotations

import asyncio
import random
import zlib
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from time import monotonic as _now  # the proxy's clock (uvloop's loop.time() reads the same one, in ms)
from typing import Any

from fastproxy import table
from fastproxy.upstream.pool import Pool

# Envoy's ring hash default minimum ring size.
_RING_SIZE = 1024
# The load-balancing kinds as plain module constants (C longs when compiled).
_LB_ROUND_ROBIN = table.LB_ROUND_ROBIN
_LB_RANDOM = table.LB_RANDOM
_LB_CONSISTENT_HASH = table.LB_CONSISTENT_HASH
# Envoy's max_ejection_time default; ejections never last longer than this
# (or than baseEjectionTime, when that is larger).
_MAX_EJECTION = 300.0


class HostState:
    """One endpoint as seen from one cluster: its pool, load and health."""

    __slots__ = ("endpoint", "pool", "active", "label", "errors_5xx", "errors_gateway", "ejected_until", "ejections")

    def __init__(self, endpoint: table.Endpoint, pool: Pool) -> None:
        self.endpoint = endpoint
        self.pool = pool
        self.active = 0
        self.label = f"{endpoint.address}:{endpoint.port}"
        self.errors_5xx = 0  # consecutive
        self.errors_gateway = 0  # consecutive
        self.ejected_until = 0.0  # 0: not ejected
        self.ejections = 0


class ClusterState:
    __slots__ = (
        "cluster",
        "hosts",
        "healthy",
        "rr",
        "lb",
        "rng",
        "loop",
        "limits",
        "outlier",
        "active",
        "connections",
        "pending",
        "retries",
        "ring",
        "ring_hosts",
        "timer",
        "counters",
    )

    def __init__(
        self,
        cluster: table.Cluster,
        hosts: list[HostState],
        rng: random.Random,
        loop: asyncio.AbstractEventLoop | None = None,
        counters: Any = None,
    ) -> None:
        self.cluster = cluster
        self.hosts = hosts
        self.healthy = hosts  # the hosts the balancer may pick (ejected ones left out)
        self.rr = 0
        self.lb = cluster.lb
        self.rng = rng
        self.loop = loop
        self.limits = cluster.pool
        self.outlier = cluster.outlier
        # Circuit-breaker counts (Envoy applies them per cluster).
        self.active = 0  # requests in flight
        self.connections = 0  # upstream connections this cluster opened and that are open
        self.pending: deque[Any] = deque()  # attempts waiting for a connection
        self.retries = 0  # retries in flight
        self.ring: list[int] = []
        self.ring_hosts: list[HostState] = []
        self.timer: Any = None
        self.counters = counters
        if cluster.lb == table.LB_CONSISTENT_HASH and hosts:
            self._build_ring()
        if self.outlier is not None and loop is not None:
            self.timer = loop.call_later(self.outlier.interval, self._sweep)

    # -- choosing an endpoint ----------------------------------------------
    def choose(self, tried: tuple[HostState, ...] = (), key: bytes | None = None) -> HostState | None:
        """Pick an endpoint; avoid hosts in `tried` when another one exists."""
        hosts = self.healthy
        outlier = self.outlier
        # Panic mode: with too few healthy hosts, all hosts are used again.
        if (
            outlier is not None
            and outlier.min_health_percent
            and hosts is not self.hosts
            and len(hosts) * 100 < outlier.min_health_percent * len(self.hosts)
        ):
            hosts = self.hosts
        n = len(hosts)
        if n == 0:
            return None
        if key is not None and self.ring:
            return self._by_hash(key)
        if n == 1:
            return hosts[0]
        if tried:
            # Envoy's previous_hosts predicate re-picks (up to 5 times) until it
            # finds a host not tried yet; picking among the untried ones gets the
            # same result without depending on luck.
            untried = [h for h in hosts if h not in tried]
            if untried:
                hosts = untried
                n = len(hosts)
                if n == 1:
                    return hosts[0]
        return self._pick(hosts, n)

    def _pick(self, hosts: list[HostState], n: int) -> HostState:
        lb = self.lb
        if lb == _LB_ROUND_ROBIN:
            i = self.rr
            self.rr = (i + 1) % n
            return hosts[i % n]
        getrandbits = self.rng.getrandbits
        if lb in (_LB_RANDOM, _LB_CONSISTENT_HASH):
            # A consistent-hash cluster without a hash key picks at random.
            return hosts[getrandbits(32) % n]
        # LEAST_REQUEST (Istio's default): the less loaded of two random hosts.
        a = hosts[getrandbits(32) % n]
        b = hosts[getrandbits(32) % n]
        return b if b.active < a.active else a

    def _build_ring(self) -> None:
        points = []
        per_host = max(1, -(-_RING_SIZE // len(self.hosts)))
        for host in self.hosts:
            label = host.label.encode()
            for i in range(per_host):
                points.append((zlib.crc32(b"%s_%d" % (label, i)), host))
        points.sort(key=lambda p: p[0])
        self.ring = [p[0] for p in points]
        self.ring_hosts = [p[1] for p in points]

    def _by_hash(self, key: bytes) -> HostState | None:
        ring = self.ring
        i = bisect_left(ring, zlib.crc32(key))
        n = len(ring)
        # Walk the ring past ejected hosts, as Envoy's ring hash does for unhealthy ones.
        for step in range(n):
            host = self.ring_hosts[(i + step) % n]
            if not host.ejected_until:
                return host
        return None

    # -- circuit breakers ------------------------------------------------------
    def wake(self) -> None:
        """A connection became free or closed: start waiting attempts that now fit."""
        pending = self.pending
        while pending and self.connections < self.limits.max_connections:
            attempt = pending.popleft()
            if not attempt.cancelled:
                attempt.start()
        # An idle connection may serve a waiting attempt even at the limit.
        if pending:
            attempt = pending[0]
            if attempt.cancelled:
                pending.popleft()
            else:
                conn = attempt.host.pool.take_idle()
                if conn is not None:
                    pending.popleft()
                    attempt.bind(conn, True)

    # -- outlier detection -----------------------------------------------------
    def report(self, host: HostState, failed: bool, gateway: bool) -> None:
        """One attempt's outcome, for outlier detection (not called for overflow)."""
        policy = self.outlier
        if policy is None:
            return
        if not failed:
            host.errors_5xx = 0
            host.errors_gateway = 0
            return
        host.errors_5xx += 1
        if gateway:
            host.errors_gateway += 1
        else:
            host.errors_gateway = 0
        if (policy.consecutive_5xx and host.errors_5xx >= policy.consecutive_5xx) or (
            policy.consecutive_gateway and host.errors_gateway >= policy.consecutive_gateway
        ):
            self._eject(host, policy)

    def _eject(self, host: HostState, policy: table.OutlierPolicy) -> None:
        if host.ejected_until or self.loop is None:
            return
        ejected = sum(1 for h in self.hosts if h.ejected_until)
        # Current Envoy counts the host about to be ejected (traffic-semantics 11.6).
        if 100 * (ejected + 1) > policy.max_ejection_percent * len(self.hosts):
            return
        host.ejections += 1
        duration = min(policy.base_ejection_time * host.ejections, max(_MAX_EJECTION, policy.base_ejection_time))
        host.ejected_until = self.loop.time() + duration
        host.errors_5xx = host.errors_gateway = 0
        self.healthy = [h for h in self.hosts if not h.ejected_until]
        if self.counters is not None:
            self.counters["outlier_ejections"] += 1

    def _sweep(self) -> None:
        # Ejected hosts come back on the interval timer, so up to one interval late.
        now = self.loop.time()  # type: ignore[union-attr]
        changed = False
        for host in self.hosts:
            if host.ejected_until and now >= host.ejected_until:
                host.ejected_until = 0.0
                changed = True
        if changed:
            self.healthy = [h for h in self.hosts if not h.ejected_until]
        self.timer = self.loop.call_later(self.outlier.interval, self._sweep)  # type: ignore[union-attr]

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class UpstreamManager:
    """All endpoint pools of one worker, keyed by (address, port)."""

    __slots__ = ("loop", "pools", "new_parser", "idle_timeout", "_sweeper")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, new_parser: Callable[..., Any], idle_timeout: float = 60.0
    ) -> None:
        self.loop = loop
        self.pools: dict[tuple[str, int], Pool] = {}
        self.new_parser = new_parser
        self.idle_timeout = idle_timeout
        self._sweeper: Any = None

    def pool(self, address: str, port: int) -> Pool:
        key = (address, port)
        pool = self.pools.get(key)
        if pool is None:
            pool = Pool(self.loop, address, port, self.new_parser)
            pool.idle_timeout = self.idle_timeout
            self.pools[key] = pool
        return pool

    def build(self, config: table.Config, rng: random.Random, counters: Any = None) -> dict[str, ClusterState]:
        """ClusterStates for a freshly compiled config (run once per load)."""
        states: dict[str, ClusterState] = {}
        default_idle = table.ConnectionPoolPolicy().idle_timeout
        for name, cluster in config.clusters.items():
            hosts = []
            for ep in cluster.endpoints:
                pool = self.pool(ep.address, ep.port)
                if cluster.pool.idle_timeout != default_idle:
                    # A DestinationRule idleTimeout shortens the pool's idle expiry.
                    pool.idle_timeout = min(pool.idle_timeout, cluster.pool.idle_timeout)
                hosts.append(HostState(ep, pool))
            states[name] = ClusterState(cluster, hosts, rng, self.loop, counters)
        return states

    def new_generation(self) -> None:
        """Retire connections made under the previous config as they come back."""
        for pool in self.pools.values():
            pool.generation += 1
            pool.close_idle()

    def start_sweeper(self, interval: float = 1.0) -> None:
        def sweep() -> None:
            now = _now()
            for pool in self.pools.values():
                pool.sweep(now)
            self._sweeper = self.loop.call_later(interval, sweep)

        self._sweeper = self.loop.call_later(interval, sweep)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for pool in self.pools.values():
            pool.closed = True
            pool.close_idle()
