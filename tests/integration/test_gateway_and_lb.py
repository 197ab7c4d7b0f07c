"""Gateway listeners, load balancing and the upstream pool, end to end."""

from __future__ import annotations

import signal
import socket
from collections import Counter

import pytest
from support import Proxy, Upstream, free_port, read_response, request, service_entry, wait_until

GATEWAY_PORT = free_port()
REDIRECT_PORT = free_port()

CONFIG = f"""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: edge, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {GATEWAY_PORT}, name: http, protocol: HTTP}}
    hosts: ["fe.example.com", "*.wild.example.com"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: tls-only, namespace: istio-system}}
spec:
  servers:
  - port: {{number: {REDIRECT_PORT}, name: http, protocol: HTTP}}
    hosts: ["fe.example.com"]
    tls: {{httpsRedirect: true}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: fe}}
spec:
  hosts: ["fe.example.com", "*.wild.example.com"]
  gateways: [istio-system/edge, istio-system/tls-only]
  http:
  - route:
    - destination: {{host: pool}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: pool}}
spec:
  host: pool
  trafficPolicy:
    loadBalancer: {{simple: ROUND_ROBIN}}
"""


@pytest.fixture(scope="module")
def upstreams():
    with Upstream("a") as a, Upstream("b") as b, Upstream("c") as c:
        yield [a, b, c]


@pytest.fixture(scope="module")
def proxy(upstreams, tmp_path_factory):
    eps = [(u.port, {"app": "pool", "version": u.name}) for u in upstreams]
    config = service_entry("pool", 80, eps) + "---\n" + service_entry("rnd", 80, eps) + "---\n" + CONFIG
    with Proxy(tmp_path_factory.mktemp("gw"), config) as p:
        yield p


def test_gateway_routes_by_host_and_marks_itself_istio_envoy(proxy):
    r = request(GATEWAY_PORT, "/x", host="fe.example.com")
    assert r.status == 200
    assert r.header("server") == "istio-envoy"
    assert request(GATEWAY_PORT, "/x", host="FE.example.com:8080").status == 200  # port ignored, case folded
    assert request(GATEWAY_PORT, "/x", host="a.wild.example.com").status == 200
    assert (request(GATEWAY_PORT, "/x", host="other.example.com").status) == 404
    assert request(GATEWAY_PORT, "/x", host="wild.example.com").status == 404


def test_https_redirect_gateway_server_answers_301_to_https(proxy, upstreams):
    before = sum(len(u.requests) for u in upstreams)
    r = request(REDIRECT_PORT, "/a/b?q=1", host="fe.example.com")
    assert (r.status, r.header("location"), r.body) == (301, "https://fe.example.com/a/b?q=1", b"")
    r = request(REDIRECT_PORT, "/", host="fe.example.com:80")
    assert r.header("location") == "https://fe.example.com/"
    assert sum(len(u.requests) for u in upstreams) == before


def test_gateway_appends_xff_and_strips_envoy_control_headers(proxy):
    r = request(
        GATEWAY_PORT,
        "/",
        host="fe.example.com",
        headers=[("x-forwarded-for", "10.0.0.1"), ("x-envoy-retry-on", "5xx"), ("x-envoy-max-retries", "9")],
    )
    headers = dict(r.json()["headers"])
    assert headers["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"
    r = request(GATEWAY_PORT, "/", host="fe.example.com", headers=[("x-forwarded-proto", "https")])
    # A gateway overwrites x-forwarded-proto from its own (plain HTTP) connection.
    assert dict(r.json()["headers"])["x-forwarded-proto"] == "http"
    assert "x-envoy-retry-on" not in headers and "x-envoy-max-retries" not in headers
    assert headers["x-envoy-attempt-count"] == "1"


def test_mesh_listener_leaves_xff_alone(proxy):
    r = request(proxy.port, "/", host="pool", headers=[("x-forwarded-for", "10.0.0.1")])
    assert dict(r.json()["headers"])["x-forwarded-for"] == "10.0.0.1"
    assert r.header("server") == "envoy"


def test_round_robin_visits_every_endpoint_in_turn(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        seen = []
        for _ in range(9):
            sock.sendall(b"GET / HTTP/1.1\r\nhost: pool\r\n\r\n")
            seen.append(read_response(sock).json()["server"])
    assert Counter(seen) == {"a": 3, "b": 3, "c": 3}
    assert all(seen[i] != seen[i + 1] for i in range(8))


def test_default_least_request_spreads_load(proxy):
    seen = Counter(request(proxy.port, "/", host="rnd").json()["server"] for _ in range(60))
    assert set(seen) == {"a", "b", "c"}


def test_upstream_connections_are_reused(proxy, upstreams):
    before = sum(u.connections for u in upstreams)
    with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        for _ in range(30):
            sock.sendall(b"GET / HTTP/1.1\r\nhost: pool\r\n\r\n")
            assert read_response(sock).status == 200
    # Round robin over 3 endpoints: at most one new pooled connection each.
    assert sum(u.connections for u in upstreams) - before <= 3


def test_stale_pooled_connection_is_retried_on_a_fresh_one(proxy, upstreams, tmp_path):
    # A single endpoint, so the pooled connection is certainly the one reused.
    config = service_entry("one", 80, [(upstreams[0].port, {"app": "one"})])
    with Proxy(tmp_path, config, "--seed", "1") as p:
        assert request(p.port, "/arm-drop", host="one").status == 200
        before = len(upstreams[0].requests)
        r = request(p.port, "/after", host="one", headers=[("x-request-id", "stale-1")])
        assert r.status == 200
        tries = [q for q in upstreams[0].requests[before:] if dict(q["headers"]).get("x-request-id") == "stale-1"]
        assert len(tries) == 2  # dropped on the stale connection, then served on a fresh one


def test_reload_adds_and_removes_gateway_ports(proxy, upstreams, tmp_path):
    new_port = free_port()
    original = proxy.config_path.read_text()
    proxy.config_path.write_text(original.replace(str(GATEWAY_PORT), str(new_port)))
    try:
        proxy.signal(signal.SIGHUP)
        wait_until(lambda: _answers(new_port), timeout=5)
        wait_until(lambda: not _answers(GATEWAY_PORT), timeout=5)
    finally:
        proxy.config_path.write_text(original)
        proxy.signal(signal.SIGHUP)
        wait_until(lambda: _answers(GATEWAY_PORT), timeout=5)


def _answers(port: int) -> bool:
    try:
        return request(port, "/", host="fe.example.com", timeout=2).status == 200
    except OSError:
        return False
