"""Broken upstreams: the client sees Envoy's answer, the pool recovers, and
nothing leaks (proxy file descriptors, upstream connections, busy pool slots)."""

from __future__ import annotations

import re
import socket

import pytest
from chaos import Chaos, closed_port, fd_count
from support import Proxy, read_response, request, service_entry, wait_until

RESET = "upstream connect error or disconnect/reset before headers. reset reason: "

VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: chaos}
spec:
  hosts: [chaos]
  http:
  - match: [{uri: {prefix: /never}}]
    timeout: 300ms
    retries: {attempts: 0}
    route: [{destination: {host: chaos}}]
  - retries: {attempts: 0}
    route: [{destination: {host: chaos}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: dead}
spec:
  hosts: [dead]
  http:
  - retries: {attempts: 0}
    route: [{destination: {host: dead}}]
"""


@pytest.fixture(scope="module")
def chaos():
    with Chaos() as c:
        yield c


@pytest.fixture(scope="module", params=["httptools", "h11"])
def proxy(request, chaos, tmp_path_factory):
    config = "---\n".join(
        [
            service_entry("chaos", 80, [(chaos.port, {"app": "chaos"})]),
            service_entry("dead", 80, [(closed_port(), {"app": "dead"})]),
            VS,
        ]
    )
    with Proxy(tmp_path_factory.mktemp("chaos"), config, "--codec", request.param) as p:
        yield p


def busy_slots(proxy: Proxy, port: int) -> int:
    text = proxy.admin("/stats/prometheus").decode()
    pattern = r'fastproxy_upstream_pool_connections\{endpoint="127.0.0.1:' + str(port) + r'",state="busy"\} (\d+)'
    m = re.search(pattern, text)
    return int(m.group(1)) if m else 0


@pytest.fixture
def no_leaks(proxy, chaos):
    """Baseline after a warm-up request; afterwards every count must come back."""
    assert request(proxy.port, "/ok", host="chaos").status == 200
    fds = fd_count(proxy.proc.pid)
    upstream_open = chaos.open
    yield
    wait_until(lambda: fd_count(proxy.proc.pid) <= fds, timeout=5)
    wait_until(lambda: chaos.open <= max(upstream_open, 1), timeout=5)
    wait_until(lambda: busy_slots(proxy, chaos.port) == 0, timeout=5)
    assert request(proxy.port, "/ok", host="chaos").status == 200  # the pool recovered


def test_refused_connection(proxy, no_leaks):
    r = request(proxy.port, "/", host="dead")
    assert r.status == 503
    assert r.body.decode() == (
        RESET + "remote connection failure, transport failure reason: delayed connect error: Connection refused"
    )


def test_reset_before_headers(proxy, chaos, no_leaks):
    for _ in range(3):
        r = request(proxy.port, "/reset", host="chaos")
        assert (r.status, r.body.decode()) == (503, RESET + "connection termination")


def test_close_mid_body_cuts_the_client_connection(proxy, chaos, no_leaks):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"GET /close-mid-body HTTP/1.1\r\nhost: chaos\r\n\r\n")
        out = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"content-length: 1000" in head
    assert body == b"x" * 100  # then the connection was closed: the client can tell it is cut


def test_never_answering_upstream_hits_the_route_timeout(proxy, chaos, no_leaks):
    r = request(proxy.port, "/never", host="chaos")
    assert (r.status, r.body) == (504, b"upstream request timeout")


@pytest.mark.parametrize("path", ["/bad-status", "/bad-header", "/nul-header", "/cr-header"])
def test_malformed_response_is_502_protocol_error(proxy, chaos, no_leaks, path):
    r = request(proxy.port, path, host="chaos")
    assert (r.status, r.body.decode()) == (502, RESET + "protocol error")
    assert r.header("x-a") is None


def test_upstream_closing_every_keep_alive_connection(proxy, chaos, no_leaks):
    # The upstream announces keep-alive but closes after each response: a
    # pooled connection may be dead when reused; clients never notice.
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        for i in range(20):
            sock.sendall(b"GET /one-shot/%d HTTP/1.1\r\nhost: chaos\r\n\r\n" % i)
            r = read_response(sock)
            assert (r.status, r.body) == (200, b"/one-shot/%d" % i)


def test_upstream_dropping_a_reused_connection(proxy, chaos, no_leaks):
    # Every second request on an upstream connection is dropped unanswered:
    # the proxy retries it once on a fresh connection.
    for i in range(10):
        r = request(proxy.port, f"/drop-reused/{i}", host="chaos")
        assert (r.status, r.body) == (200, b"/drop-reused/%d" % i)


def test_chaos_mix_leaves_nothing_behind(proxy, chaos, no_leaks):
    paths = ["/ok", "/reset", "/bad-status", "/one-shot", "/drop-reused", "/never", "/nul-header"]
    for round_ in range(3):
        for path in paths:
            r = request(proxy.port, f"{path}/{round_}", host="chaos")
            assert r.status in (200, 502, 503, 504)
