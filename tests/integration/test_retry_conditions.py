"""Each retryOn condition, fault modes with seeded draws, and mirror targets
that are slow or dead, end to end."""

from __future__ import annotations

import math
import time

import pytest
from support import Proxy, Upstream, free_port, request, service_entry, wait_until


def rule(prefix: str, retry_on: str, attempts: int = 2) -> str:
    return (
        f"  - match: [{{uri: {{prefix: /{prefix}}}}}]\n"
        f'    retries: {{attempts: {attempts}, retryOn: "{retry_on}"}}\n'
        f"    route: [{{destination: {{host: app}}}}]\n"
    )


VS = (
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: app}\nspec:\n  hosts: [app]\n  http:\n"
    + rule("gw", "gateway-error")
    + rule("r4xx", "retriable-4xx")
    + rule("codes", "418,retriable-status-codes")
    + rule("reset", "reset")
    + rule("rbr", "reset-before-request")
    + rule("limited", "5xx")
    + rule("ratelimited", "envoy-ratelimited")
    + rule("cf", "connect-failure")
    + rule("hdrs", "retriable-headers")
    + """  - match: [{uri: {prefix: /grpcabort}}]
    fault:
      abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}
    route: [{destination: {host: app}}]
"""
    + """  - match: [{uri: {prefix: /both}}]
    fault:
      delay: {fixedDelay: 100ms, percentage: {value: 100}}
      abort: {httpStatus: 503, percentage: {value: 100}}
    route: [{destination: {host: app}}]
  - match: [{uri: {prefix: /some}}]
    fault:
      abort: {httpStatus: 555, percentage: {value: 20}}
    route: [{destination: {host: app}}]
  - match: [{uri: {prefix: /mirror-dead}}]
    mirror: {host: dead}
    route: [{destination: {host: app}}]
  - match: [{uri: {prefix: /mirror-slow}}]
    mirrors:
    - destination: {host: slow}
    - destination: {host: slow}
      percentage: {value: 0}
    route: [{destination: {host: app}}]
  - route: [{destination: {host: app}}]
"""
)


@pytest.fixture(scope="module")
def upstreams():
    with Upstream("app") as app, Upstream("slow") as slow:
        yield app, slow


@pytest.fixture(scope="module")
def proxy(upstreams, tmp_path_factory):
    app, slow = upstreams
    config = "---\n".join(
        [
            service_entry("app", 80, [(app.port, {"app": "app"})]),
            service_entry("slow", 80, [(slow.port, {"app": "slow"})]),
            service_entry("dead", 80, [(free_port(), {"app": "dead"})]),
            VS,
        ]
    )
    with Proxy(tmp_path_factory.mktemp("retryon"), config, "--seed", "42") as p:
        yield p


def serve(app: Upstream, prefix: str, replies: list[tuple[int, list[tuple[str, str]], bytes]]):
    """Answer requests under `prefix` with `replies` in turn (the last one repeats)."""
    calls: list[dict] = []

    def handler(req):
        if not req["path"].startswith(prefix):
            return None
        calls.append(req)
        return replies[min(len(calls), len(replies)) - 1]

    app.handler = handler
    return calls


@pytest.mark.parametrize(
    "prefix, first, retried",
    [
        ("/gw", (502, [], b"bad gateway"), True),
        ("/gw", (500, [], b"internal"), False),  # gateway-error is 502/503/504 only
        ("/r4xx", (409, [], b"conflict"), True),
        ("/r4xx", (404, [], b"missing"), False),
        ("/codes", (418, [], b"teapot"), True),
        ("/codes", (503, [], b"busy"), False),
        ("/limited", (503, [("x-envoy-ratelimited", "true")], b"limited"), False),  # needs envoy-ratelimited
        ("/ratelimited", (429, [("x-envoy-ratelimited", "true")], b"limited"), True),
    ],
)
def test_retry_on_response_conditions(proxy, upstreams, prefix, first, retried):
    app, _ = upstreams
    calls = serve(app, prefix, [first, (200, [], b"ok")])
    try:
        r = request(proxy.port, prefix, host="app")
    finally:
        app.handler = None
    if retried:
        assert (r.status, r.body, len(calls)) == (200, b"ok", 2)
        assert [dict(c["headers"])["x-envoy-attempt-count"] for c in calls] == ["1", "2"]
    else:
        assert (r.status, r.body, len(calls)) == (first[0], first[2], 1)


def test_reset_is_retried_under_reset_but_not_under_reset_before_request(proxy, upstreams):
    app, _ = upstreams
    before = len(app.requests)
    r = request(proxy.port, "/reset", host="app")
    assert r.status == 503
    assert r.body.endswith(b"retried and the latest reset reason: connection termination")
    counts = {dict(q["headers"])["x-envoy-attempt-count"] for q in app.requests[before:]}
    assert counts == {"1", "2", "3"}
    # reset-before-request: bytes were sent before this reset, so no retry.
    calls = serve(app, "/rbr", ["reset"])  # type: ignore[list-item]
    try:
        r = request(proxy.port, "/rbr", host="app")
    finally:
        app.handler = None
    assert r.status == 503
    assert r.body.endswith(b"reset reason: connection termination")
    assert {dict(c["headers"])["x-envoy-attempt-count"] for c in calls} == {"1"}


def test_reset_before_request_retries_connect_failures(tmp_path):
    config = service_entry("gone", 80, [(free_port(), {"app": "gone"})]) + (
        "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: gone}\nspec:\n"
        "  hosts: [gone]\n  http:\n" + rule("", "reset-before-request", attempts=3).replace("app", "gone")
    )
    with Proxy(tmp_path, config) as p:
        r = request(p.port, "/", host="gone")
    assert r.status == 503
    assert b"retried and the latest reset reason: remote connection failure" in r.body


def test_connect_failure_policy_retries_refused_connections(proxy, tmp_path):
    port = free_port()
    config = service_entry("gone", 80, [(port, {"app": "gone"})])
    with Proxy(tmp_path, config) as p:
        r = request(p.port, "/", host="gone")
    assert r.status == 503
    assert b"retried and the latest reset reason: remote connection failure" in r.body


def test_delay_and_abort_together(proxy):
    started = time.monotonic()
    r = request(proxy.port, "/both", host="app")
    assert (r.status, r.body) == (503, b"fault filter abort")
    assert time.monotonic() - started >= 0.1


def test_abort_percentage_is_about_20_percent(proxy):
    n = 400
    aborted = sum(request(proxy.port, "/some", host="app").status == 555 for _ in range(n))
    sigma = math.sqrt(n * 0.2 * 0.8)
    assert abs(aborted - n * 0.2) <= 4 * sigma, aborted


def test_dead_mirror_never_hurts_the_primary(proxy):
    for _ in range(5):
        r = request(proxy.port, "/mirror-dead", host="app")
        assert r.status == 200 and r.json()["server"] == "app"


def test_slow_mirror_does_not_delay_the_primary_and_zero_percent_sends_nothing(proxy, upstreams):
    _, slow = upstreams
    slow.handler = lambda req: None
    started = time.monotonic()
    r = request(proxy.port, "/mirror-slow", host="app", headers=[("x-delay", "0")])
    assert r.status == 200
    assert time.monotonic() - started < 0.5
    wait_until(lambda: any(q["path"] == "/mirror-slow" for q in slow.requests))
    copies = [q for q in slow.requests if q["path"] == "/mirror-slow"]
    assert len(copies) == 1  # the 0 % mirror policy sent nothing


def test_retriable_headers_named_by_the_request(proxy, upstreams):
    app, _ = upstreams
    calls = serve(app, "/hdrs", [(503, [("x-please-retry", "1")], b"again"), (200, [], b"ok")])
    try:
        r = request(proxy.port, "/hdrs", host="app", headers=[("x-envoy-retriable-header-names", "X-Please-Retry")])
    finally:
        app.handler = None
    assert (r.status, r.body, len(calls)) == (200, b"ok", 2)
    # The control header is consumed by the proxy, never forwarded.
    assert "x-envoy-retriable-header-names" not in dict(calls[0]["headers"])
    calls = serve(app, "/hdrs", [(503, [("x-other", "1")], b"again"), (200, [], b"ok")])
    try:
        r = request(proxy.port, "/hdrs", host="app", headers=[("x-envoy-retriable-header-names", "x-please-retry")])
    finally:
        app.handler = None
    assert (r.status, len(calls)) == (503, 1)


def test_grpc_status_abort(proxy, upstreams):
    app, _ = upstreams
    before = len(app.requests)
    r = request(proxy.port, "/grpcabort", host="app", headers=[("content-type", "application/grpc")])
    assert r.status == 200 and r.body == b""
    assert (r.header("grpc-status"), r.header("grpc-message")) == ("14", "fault filter abort")
    assert len(app.requests) == before


def test_bodies_beyond_the_replay_buffer_stream_and_are_not_retried(proxy, upstreams):
    app, _ = upstreams
    calls = serve(app, "/gw", [(502, [], b"bad"), (200, [], b"ok")])
    try:
        r = request(proxy.port, "/gw", host="app", method="POST", body=b"z" * (1024 * 1024 + 10))
    finally:
        app.handler = None
    assert (r.status, len(calls)) == (502, 1)
    assert len(calls[0]["body"]) == 1024 * 1024 + 10
    calls = serve(app, "/gw", [(502, [], b"bad"), (200, [], b"ok")])
    try:
        r = request(proxy.port, "/gw", host="app", method="POST", body=b"z" * 1000)
    finally:
        app.handler = None
    assert (r.status, len(calls)) == (200, 2)
    assert calls[1]["body"] == "z" * 1000


def test_mirror_copies_beyond_the_in_flight_bound_are_dropped_and_counted(upstreams, tmp_path):
    app, slow = upstreams
    config = "---\n".join(
        [
            service_entry("app", 80, [(app.port, {"app": "app"})]),
            service_entry("slow", 80, [(slow.port, {"app": "slow"})]),
            VS,
        ]
    )
    # The mirror target holds each copy for 1 s (x-delay); the primary answers at once.
    app.handler = lambda req: (200, [], b"primary")
    try:
        with Proxy(tmp_path, config, "--max-mirrors", "1") as p:
            for _ in range(3):
                assert request(p.port, "/mirror-slow", host="app", headers=[("x-delay", "1")]).body == b"primary"
            stats = p.admin("/stats/prometheus").decode()
            assert "fastproxy_mirror_sent_total 1" in stats and "fastproxy_mirror_dropped_total 2" in stats
    finally:
        app.handler = None


def test_max_retries_circuit_breaker(upstreams, tmp_path):
    import threading

    app, _ = upstreams
    config = "---\n".join(
        [
            service_entry("app", 80, [(app.port, {"app": "app"})]),
            """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: app}
spec:
  host: app
  trafficPolicy: {connectionPool: {http: {maxRetries: 1}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app}
spec:
  hosts: [app]
  http:
  - retries: {attempts: 2, retryOn: 5xx}
    route: [{destination: {host: app}}]
""",
        ]
    )
    # First tries fail at once; a retry is held for 1 s by the upstream, so while
    # one request's retry is in flight the other finds the only retry slot taken.
    app.handler = lambda req: (503, [], b"first") if dict(req["headers"]).get("x-envoy-attempt-count") == "1" else None
    results = []
    try:
        with Proxy(tmp_path, config) as p:
            threads = [
                threading.Thread(target=lambda: results.append(request(p.port, "/delay/1", host="app")))
                for _ in range(2)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
    finally:
        app.handler = None
    assert sorted((r.status, r.body[:5]) for r in results) == [(200, results_body(results)), (503, b"first")]


def results_body(results) -> bytes:
    return next(r.body[:5] for r in results if r.status == 200)
