"""Per-cluster endpoint choice and the registry of endpoint pools.

A ClusterState is built once per config load for every compiled cluster; the
pools behind its hosts live in the UpstreamManager and survive reloads (their
generation is bumped instead), so a reload never drops warm connections that
are still valid.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from fastproxy import table
from fastproxy.upstream.pool import Pool


class HostState:
    """One endpoint as seen from one cluster: its pool and live request count."""

    __slots__ = ("endpoint", "pool", "active", "label")

    def __init__(self, endpoint: table.Endpoint, pool: Pool) -> None:
        self.endpoint = endpoint
        self.pool = pool
        self.active = 0
        self.label = f"{endpoint.address}:{endpoint.port}"


class ClusterState:
    __slots__ = ("cluster", "hosts", "rr", "lb", "rng")

    def __init__(self, cluster: table.Cluster, hosts: list[HostState], rng: random.Random) -> None:
        self.cluster = cluster
        self.hosts = hosts
        self.rr = 0
        self.lb = cluster.lb
        self.rng = rng

    def choose(self, tried: tuple[HostState, ...] = ()) -> HostState | None:
        """Pick an endpoint; avoid hosts in `tried` when another one exists
        (Envoy's previous_hosts predicate re-picks up to 5 times)."""
        hosts = self.hosts
        n = len(hosts)
        if n == 0:
            return None
        if n == 1:
            return hosts[0]
        host = self._pick(hosts, n)
        if tried:
            for _ in range(5):
                if host not in tried:
                    break
                host = self._pick(hosts, n)
        return host

    def _pick(self, hosts: list[HostState], n: int) -> HostState:
        lb = self.lb
        if lb == table.LB_ROUND_ROBIN:
            i = self.rr
            self.rr = (i + 1) % n
            return hosts[i % n]
        getrandbits = self.rng.getrandbits
        if lb == table.LB_RANDOM:
            return hosts[getrandbits(32) % n]
        # LEAST_REQUEST (Istio's default): the less loaded of two random hosts.
        a = hosts[getrandbits(32) % n]
        b = hosts[getrandbits(32) % n]
        return b if b.active < a.active else a


class UpstreamManager:
    """All endpoint pools of one worker, keyed by (address, port)."""

    __slots__ = ("loop", "pools", "parser_cls", "idle_timeout", "_sweeper")

    def __init__(self, loop: asyncio.AbstractEventLoop, parser_cls: type, idle_timeout: float = 60.0) -> None:
        self.loop = loop
        self.pools: dict[tuple[str, int], Pool] = {}
        self.parser_cls = parser_cls
        self.idle_timeout = idle_timeout
        self._sweeper: Any = None

    def pool(self, address: str, port: int) -> Pool:
        key = (address, port)
        pool = self.pools.get(key)
        if pool is None:
            pool = Pool(self.loop, address, port, self.parser_cls)
            pool.idle_timeout = self.idle_timeout
            self.pools[key] = pool
        return pool

    def build(self, config: table.Config, rng: random.Random) -> dict[str, ClusterState]:
        """ClusterStates for a freshly compiled config (run once per load)."""
        states: dict[str, ClusterState] = {}
        for name, cluster in config.clusters.items():
            hosts = [HostState(ep, self.pool(ep.address, ep.port)) for ep in cluster.endpoints]
            states[name] = ClusterState(cluster, hosts, rng)
        return states

    def new_generation(self) -> None:
        """Retire connections made under the previous config as they come back."""
        for pool in self.pools.values():
            pool.generation += 1
            pool.close_idle()

    def start_sweeper(self, interval: float = 1.0) -> None:
        def sweep() -> None:
            now = self.loop.time()
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
