"""Faults, timeouts, retries and mirroring through a running proxy."""

from __future__ import annotations

import time

import pytest
from support import Proxy, Upstream, request, service_entry, wait_until

VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app}
spec:
  hosts: [app]
  http:
  - match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 555, percentage: {value: 100}}}
    route: [{destination: {host: app}}]
  - match: [{uri: {prefix: /faultdelay}}]
    fault: {delay: {fixedDelay: 300ms, percentage: {value: 100}}}
    timeout: 200ms
    route: [{destination: {host: app}}]
  - match: [{uri: {prefix: /timeout}}]
    timeout: 300ms
    route: [{destination: {host: app}}]
  - match: [{uri: {prefix: /retry5xx}}]
    retries: {attempts: 3, retryOn: 5xx}
    route: [{destination: {host: app}}]
  - match: [{uri: {prefix: /pertry}}]
    timeout: 5s
    retries: {attempts: 2, perTryTimeout: 200ms, retryOn: "5xx"}
    route: [{destination: {host: app}}]
  - match: [{uri: {prefix: /noretry}}]
    retries: {attempts: 0}
    route: [{destination: {host: app}}]
  - match: [{uri: {prefix: /mirror}}]
    mirror: {host: shadow}
    route: [{destination: {host: app}}]
  - route: [{destination: {host: app}}]
"""


@pytest.fixture(scope="module")
def upstreams():
    with Upstream("app") as app, Upstream("shadow") as shadow:
        yield app, shadow


@pytest.fixture(scope="module")
def proxy(upstreams, tmp_path_factory):
    app, shadow = upstreams
    config = "---\n".join(
        [
            service_entry("app", 80, [(app.port, {"app": "app"})]),
            service_entry("shadow", 80, [(shadow.port, {"app": "shadow"})]),
            VS,
        ]
    )
    with Proxy(tmp_path_factory.mktemp("res"), config) as p:
        yield p


def test_fault_abort_never_reaches_the_upstream(proxy, upstreams):
    app, _ = upstreams
    before = len(app.requests)
    r = request(proxy.port, "/abort", host="app")
    assert (r.status, r.body) == (555, b"fault filter abort")
    assert r.header("content-type") == "text/plain"
    assert len(app.requests) == before


def test_fault_delay_is_not_counted_in_the_route_timeout(proxy):
    started = time.monotonic()
    r = request(proxy.port, "/faultdelay", host="app")
    assert r.status == 200
    assert time.monotonic() - started >= 0.3


def test_route_timeout_gives_504(proxy):
    started = time.monotonic()
    r = request(proxy.port, "/timeout", host="app", headers=[("x-delay", "2")])
    assert (r.status, r.body) == (504, b"upstream request timeout")
    assert r.header("x-envoy-upstream-service-time") is None
    assert 0.25 < time.monotonic() - started < 1.5
    assert request(proxy.port, "/timeout", host="app").status == 200


def test_retries_on_5xx_carry_attempt_counts(proxy, upstreams):
    app, _ = upstreams
    calls = []

    def flaky(req):
        if not req["path"].startswith("/retry5xx"):
            return None
        calls.append(dict(req["headers"])["x-envoy-attempt-count"])
        if len(calls) < 3:
            return 503, [], b"busy"
        return 200, [], b"finally"

    app.handler = flaky
    try:
        r = request(proxy.port, "/retry5xx", host="app")
    finally:
        app.handler = None
    assert (r.status, r.body) == (200, b"finally")
    assert calls == ["1", "2", "3"]


def test_exhausted_retries_return_the_last_upstream_response(proxy, upstreams):
    app, _ = upstreams
    app.handler = lambda req: (503, [], b"still busy") if req["path"].startswith("/retry5xx") else None
    try:
        r = request(proxy.port, "/retry5xx", host="app")
    finally:
        app.handler = None
    assert (r.status, r.body) == (503, b"still busy")


def test_default_policy_does_not_retry_an_application_503(proxy, upstreams):
    app, _ = upstreams
    calls = []

    def busy(req):
        calls.append(1)
        return 503, [], b"nope"

    app.handler = busy
    try:
        r = request(proxy.port, "/plain", host="app")
    finally:
        app.handler = None
    assert (r.status, r.body, len(calls)) == (503, b"nope", 1)


def test_per_try_timeout_is_retried_then_504(proxy, upstreams):
    app, _ = upstreams
    before = sum(1 for q in app.requests if q["path"] == "/pertry")
    started = time.monotonic()
    r = request(proxy.port, "/pertry", host="app", headers=[("x-delay", "1")])
    assert (r.status, r.body) == (504, b"upstream request timeout")
    tries = sum(1 for q in app.requests if q["path"] == "/pertry") - before
    assert tries == 3  # 1 try + 2 retries, each cut at 200 ms
    assert time.monotonic() - started < 2


def test_attempts_0_disables_retries_even_for_connect_failures(proxy, upstreams):
    app, _ = upstreams
    app.handler = lambda req: (503, [], b"x") if req["path"].startswith("/noretry") else None
    try:
        before = len(app.requests)
        r = request(proxy.port, "/noretry", host="app")
    finally:
        app.handler = None
    assert r.status == 503 and len(app.requests) - before == 1


def test_mirror_sends_a_copy_and_never_delays_the_primary(proxy, upstreams):
    app, shadow = upstreams
    r = request(proxy.port, "/mirror?x=1", host="app", headers=[("x-request-id", "mirror-1")])
    assert r.status == 200 and r.json()["server"] == "app"
    wait_until(lambda: any(dict(q["headers"]).get("x-request-id") == "mirror-1" for q in shadow.requests))
    copy = next(q for q in shadow.requests if dict(q["headers"]).get("x-request-id") == "mirror-1")
    assert copy["path"] == "/mirror?x=1"
    assert dict(copy["headers"])["host"] == "app"  # Istio >= 1.28: no -shadow suffix
