"""Outlier detection decisions of a ClusterState (traffic-semantics 11.6), driven
directly: a real event loop provides the clock, nothing is mocked."""

from __future__ import annotations

import asyncio
import random

import pytest

from fastproxy import table
from fastproxy.upstream.balancer import ClusterState, HostState
from fastproxy.upstream.pool import Pool


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def cluster_state(loop, n: int, **policy) -> ClusterState:
    endpoints = tuple(table.Endpoint(address="127.0.0.1", port=1000 + i, labels={}) for i in range(n))
    cluster = table.Cluster(
        name="outbound|80||c", service="c", namespace="default", port=80, subset="",
        endpoints=endpoints, outlier=table.OutlierPolicy(**policy),
    )  # fmt: skip
    hosts = [HostState(ep, Pool(loop, ep.address, ep.port, object)) for ep in endpoints]
    state = ClusterState(cluster, hosts, random.Random(1), loop, None)
    return state


def fail(state: ClusterState, host: HostState, times: int, gateway: bool = False) -> None:
    for _ in range(times):
        state.report(host, True, gateway)


def test_consecutive_5xx_ejects_and_a_success_resets_the_count(loop):
    state = cluster_state(loop, 2, consecutive_5xx=3, max_ejection_percent=100)
    a, b = state.hosts
    fail(state, a, 2)
    state.report(a, False, False)
    fail(state, a, 2)
    assert not a.ejected_until
    fail(state, a, 1)
    assert a.ejected_until and state.healthy == [b]
    assert state.choose() is b
    state.close()


def test_gateway_errors_count_separately(loop):
    state = cluster_state(loop, 2, consecutive_5xx=0, consecutive_gateway=2, max_ejection_percent=100)
    a, _ = state.hosts
    fail(state, a, 5, gateway=False)  # plain 5xx: consecutive_5xx is disabled
    assert not a.ejected_until
    fail(state, a, 2, gateway=True)
    assert a.ejected_until
    state.close()


def test_default_max_ejection_percent_ejects_nothing_below_ten_hosts(loop):
    state = cluster_state(loop, 5, consecutive_5xx=1)  # maxEjectionPercent 10 by default
    fail(state, state.hosts[0], 10)
    assert not any(h.ejected_until for h in state.hosts)
    state.close()


def test_ejection_time_grows_with_each_ejection(loop):
    state = cluster_state(loop, 2, consecutive_5xx=1, base_ejection_time=30.0, max_ejection_percent=100)
    a, _ = state.hosts
    fail(state, a, 1)
    first = a.ejected_until - loop.time()
    a.ejected_until = 0.0
    state.healthy = state.hosts
    fail(state, a, 1)
    second = a.ejected_until - loop.time()
    assert 29 < first <= 30 and 59 < second <= 60
    state.close()


def test_all_ejected_means_no_healthy_upstream_unless_panic(loop):
    state = cluster_state(loop, 2, consecutive_5xx=1, max_ejection_percent=100)
    for h in state.hosts:
        fail(state, h, 1)
    assert state.choose() is None  # minHealthPercent 0: panic mode off, 503 UH
    state.close()
    panic = cluster_state(loop, 2, consecutive_5xx=1, max_ejection_percent=100, min_health_percent=50)
    fail(panic, panic.hosts[0], 1)
    fail(panic, panic.hosts[1], 1)
    assert panic.choose() in panic.hosts  # below 50 % healthy: every host is used again
    panic.close()


def test_ejected_hosts_return_on_the_interval_sweep(loop):
    state = cluster_state(loop, 2, consecutive_5xx=1, max_ejection_percent=100, interval=0.05, base_ejection_time=0.01)
    a, _ = state.hosts
    fail(state, a, 1)
    assert state.healthy != state.hosts
    loop.run_until_complete(asyncio.sleep(0.2))
    assert not a.ejected_until and state.healthy == state.hosts
    state.close()
