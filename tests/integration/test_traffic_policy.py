"""DestinationRule traffic policies and CORS, end to end on real sockets."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections import Counter

import pytest
from support import Proxy, Upstream, read_response, request, service_entry, wait_until

POLICIES = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: tight}
spec:
  host: tight
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 2}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: flaky}
spec:
  host: flaky
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection:
      consecutive5xxErrors: 3
      interval: 1s
      baseEjectionTime: 30s
      maxEjectionPercent: 100
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: sticky}
spec:
  host: sticky
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpHeaderName: x-user}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cookie}
spec:
  host: cookie
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie: {name: session, path: /, ttl: 60s}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: random}
spec:
  host: random
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: byip}
spec:
  host: byip
  trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: byquery}
spec:
  host: byquery
  trafficPolicy: {loadBalancer: {consistentHash: {httpQueryParameterName: user}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: prev}
spec:
  hosts: [prev]
  http:
  - retries: {attempts: 1, retryOn: 5xx}
    route: [{destination: {host: prev}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: slowconnect}
spec:
  host: slowconnect
  trafficPolicy: {connectionPool: {tcp: {connectTimeout: 300ms}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cors}
spec:
  hosts: [cors]
  http:
  - corsPolicy:
      allowOrigins: [{exact: "https://ok.example"}, {regex: "https://.*\\\\.trusted\\\\.example"}]
      allowMethods: [POST, GET]
      allowHeaders: [X-Foo-Bar, X-Foo-Baz]
      exposeHeaders: [X-Exposed]
      maxAge: 24h
      allowCredentials: true
    route:
    - destination: {host: cors}
"""


def _full_backlog() -> tuple[list[socket.socket], int]:
    """A listener that never accepts, its backlog filled: new SYNs go unanswered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(8):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    return [listener, *fillers], port


@pytest.fixture(scope="module")
def backlog_port():
    sockets, port = _full_backlog()
    yield port
    for sock in sockets:
        sock.close()


@pytest.fixture(scope="module")
def upstreams():
    with Upstream("u1") as u1, Upstream("u2") as u2, Upstream("u3") as u3:
        yield [u1, u2, u3]


@pytest.fixture(scope="module")
def proxy(upstreams, backlog_port, tmp_path_factory):
    eps = [(u.port, {"app": "x", "version": u.name}) for u in upstreams]
    config = "---\n".join(
        [
            service_entry("tight", 80, eps[:1]),
            service_entry("flaky", 80, eps),
            service_entry("sticky", 80, eps),
            service_entry("cookie", 80, eps),
            service_entry("cors", 80, eps[:1]),
            service_entry("random", 80, eps),
            service_entry("byip", 80, eps),
            service_entry("byquery", 80, eps),
            service_entry("prev", 80, eps[:2]),
            service_entry("slowconnect", 80, [(backlog_port, {"app": "slow"})]),
            POLICIES,
        ]
    )
    with Proxy(tmp_path_factory.mktemp("policy"), config) as p:
        yield p


def test_connection_pool_overflow_gives_envoys_503_uo(proxy, upstreams):
    # maxConnections 1 + one pending request: of three concurrent slow requests,
    # one is served, one waits for the connection, the third overflows.
    results = []

    def call() -> None:
        results.append(request(proxy.port, "/slow", host="tight", headers=[("x-delay", "0.6")]))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    statuses = sorted(r.status for r in results)
    assert statuses == [200, 200, 503], statuses
    overflow = next(r for r in results if r.status == 503)
    assert overflow.body == b"upstream connect error or disconnect/reset before headers. reset reason: overflow"
    assert overflow.header("x-envoy-overloaded") == "true"


def test_max_requests_per_connection_recycles_upstream_connections(proxy, upstreams):
    u1 = upstreams[0]
    before = u1.connections
    with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        for _ in range(6):
            sock.sendall(b"GET / HTTP/1.1\r\nhost: tight\r\n\r\n")
            assert read_response(sock).status == 200
    assert u1.connections - before == 3  # 2 requests per upstream connection


def test_outlier_detection_ejects_a_failing_endpoint(proxy, upstreams):
    bad = upstreams[1]
    bad.handler = lambda req: (500, [], b"broken")
    try:
        seen = Counter()
        for _ in range(30):
            r = request(proxy.port, "/", host="flaky")
            seen[(r.status, r.json()["server"] if r.status == 200 else "u2")] += 1
        # Three consecutive 5xx from u2 eject it (maxEjectionPercent 100); afterwards
        # round robin only visits u1 and u3.
        assert seen[(500, "u2")] == 3, seen
        before = len(bad.requests)
        for _ in range(10):
            assert request(proxy.port, "/", host="flaky").status == 200
        assert len(bad.requests) == before
        label = f"127.0.0.1:{bad.port}"
        wait_until(
            lambda: (
                f"outbound|80||flaky.default.svc.cluster.local::{label}::health_flags::/failed_outlier_check"
                in proxy.admin("/clusters").decode()
            ),
            timeout=5,
        )
        assert "fastproxy_outlier_ejections_total 1" in proxy.admin("/stats/prometheus").decode()
    finally:
        bad.handler = None


def test_consistent_hash_on_a_header_is_sticky(proxy):
    for user in ("alice", "bob", "carol", "dave"):
        header = [("x-user", user)]
        servers = {request(proxy.port, "/", host="sticky", headers=header).json()["server"] for _ in range(8)}
        assert len(servers) == 1, (user, servers)
    spread = {
        request(proxy.port, "/", host="sticky", headers=[("x-user", f"user{i}")]).json()["server"] for i in range(40)
    }
    assert len(spread) >= 2


def test_random_spreads_evenly_within_4_sigma(proxy):
    n = 300
    seen = Counter(request(proxy.port, "/", host="random").json()["server"] for _ in range(n))
    sigma = math.sqrt(n * (1 / 3) * (2 / 3))
    for name in ("u1", "u2", "u3"):
        assert abs(seen[name] - n / 3) <= 4 * sigma, seen


def test_consistent_hash_on_source_ip_and_query_parameter(proxy):
    assert len({request(proxy.port, "/", host="byip").json()["server"] for _ in range(10)}) == 1
    for user in ("a", "b", "c"):
        path = f"/p?x=1&user={user}"
        assert len({request(proxy.port, path, host="byquery").json()["server"] for _ in range(6)}) == 1


def test_consistent_hash_cookie_is_generated_then_honoured(proxy):
    first = request(proxy.port, "/", host="cookie")
    cookie = first.header("set-cookie")
    assert cookie and cookie.startswith("session=") and "Max-Age=60" in cookie and "Path=/" in cookie
    value = cookie.split(";")[0]
    servers = {request(proxy.port, "/", host="cookie", headers=[("cookie", value)]).json()["server"] for _ in range(8)}
    assert servers == {first.json()["server"]}
    assert request(proxy.port, "/", host="cookie", headers=[("cookie", value)]).header("set-cookie") is None


def test_cors_preflight_is_answered_by_the_proxy(proxy, upstreams):
    before = len(upstreams[0].requests)
    r = request(
        proxy.port,
        "/",
        host="cors",
        method="OPTIONS",
        headers=[("origin", "https://ok.example"), ("access-control-request-method", "POST")],
    )
    assert r.status == 200 and r.body == b""
    assert r.header("access-control-allow-origin") == "https://ok.example"
    assert r.header("access-control-allow-methods") == "POST,GET"
    assert r.header("access-control-allow-headers") == "X-Foo-Bar,X-Foo-Baz"
    assert r.header("access-control-max-age") == "86400"
    assert r.header("access-control-allow-credentials") == "true"
    assert len(upstreams[0].requests) == before


def test_cors_actual_request_headers_and_unmatched_origin(proxy):
    r = request(proxy.port, "/", host="cors", headers=[("origin", "https://a.trusted.example")])
    assert r.status == 200
    assert r.header("access-control-allow-origin") == "https://a.trusted.example"
    assert r.header("access-control-expose-headers") == "X-Exposed"
    r = request(proxy.port, "/", host="cors", headers=[("origin", "https://evil.example")])
    assert r.header("access-control-allow-origin") is None
    # An unmatched preflight is forwarded (unmatchedPreflights defaults to FORWARD).
    r = request(
        proxy.port,
        "/",
        host="cors",
        method="OPTIONS",
        headers=[("origin", "https://evil.example"), ("access-control-request-method", "POST")],
    )
    assert r.json()["method"] == "OPTIONS"


def test_no_request_leaves_the_breakers_held(proxy):
    # After all of the above, the tight cluster serves a plain request at once.
    wait_until(lambda: request(proxy.port, "/", host="tight").status == 200, timeout=5)


def test_a_retry_goes_to_another_endpoint(proxy, upstreams):
    bad = upstreams[1]
    bad.handler = lambda req: (503, [], b"down")
    try:
        for _ in range(20):
            r = request(proxy.port, "/", host="prev")
            assert r.status == 200 and r.json()["server"] == "u1"
    finally:
        bad.handler = None


def test_connect_timeout_from_the_destination_rule(proxy):
    started = time.monotonic()
    r = request(proxy.port, "/", host="slowconnect")
    elapsed = time.monotonic() - started
    assert r.status == 503
    assert r.body.endswith(b"reset reason: connection timeout")
    # Two default retries, each cut at 300 ms.
    assert 0.8 < elapsed < 3
