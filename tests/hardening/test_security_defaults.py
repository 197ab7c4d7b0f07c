"""Security defaults: loopback admin (and a warning otherwise), no header
injection, x-envoy-* stripped at gateways, safe YAML."""

from __future__ import annotations

import socket

import pytest
from support import Proxy, Upstream, free_port, read_response, request, service_entry

from fastproxy.cli import _parser
from fastproxy.config import loads

GATEWAY_PORT = free_port()

GATEWAY = f"""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: edge, namespace: istio-system}}
spec:
  servers:
  - port: {{number: {GATEWAY_PORT}, name: http, protocol: HTTP}}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: edge}}
spec:
  hosts: ["*"]
  gateways: [istio-system/edge]
  http:
  - route: [{{destination: {{host: app}}}}]
"""

CONTROL_HEADERS = [
    ("x-envoy-retry-on", "5xx"),
    ("x-envoy-max-retries", "10"),
    ("x-envoy-upstream-rq-timeout-ms", "1"),
    ("x-envoy-fault-abort-request", "503"),
    ("x-envoy-internal", "true"),
    ("x-envoy-original-path", "/admin"),
]


@pytest.fixture(scope="module")
def upstream():
    with Upstream("sec") as up:
        yield up


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    config = service_entry("app", 80, [(upstream.port, {"app": "app"})]) + "---\n" + GATEWAY
    with Proxy(tmp_path_factory.mktemp("sec"), config) as p:
        yield p


def test_admin_defaults_to_loopback():
    args = _parser().parse_args(["run", "-c", "x.yaml"])
    assert args.admin.startswith("127.0.0.1:")


@pytest.mark.parametrize("host, warns", [("127.0.0.1", False), ("0.0.0.0", True)])
def test_admin_bound_elsewhere_warns(tmp_path, host, warns):
    config = service_entry("app", 80, [])
    for attempt in range(3):
        # A port free on 127.0.0.1 may still be taken on 0.0.0.0 by a client
        # socket of a concurrent test: pick another one then.
        proxy = Proxy(tmp_path, config)
        proxy.extra = ["--admin", f"{host}:{proxy.admin_port}"]
        try:
            with proxy:
                break
        except AssertionError:
            if attempt == 2 or "cannot listen" not in proxy.stderr():
                raise
    warning = "admin listener on 0.0.0.0 is reachable from other hosts"
    assert (warning in proxy.stderr()) is warns, proxy.stderr()


def test_x_envoy_headers_are_stripped_at_gateways_and_kept_on_the_mesh(proxy, upstream):
    r = request(GATEWAY_PORT, "/gw", host="anything.example", headers=CONTROL_HEADERS)
    assert r.status == 200
    seen = dict(upstream.requests[-1]["headers"])
    for name, _ in CONTROL_HEADERS:
        if name != "x-envoy-original-path":
            assert name not in seen, name
    assert "x-envoy-original-path" not in seen
    # The sidecar (mesh) listener passes other x-envoy-* headers on, as Envoy with
    # use_remote_address=false does; the router's control headers it consumes and
    # never forwards (traffic-semantics 14.1).
    r = request(proxy.port, "/mesh", host="app", headers=[("x-envoy-max-retries", "1"), ("x-envoy-custom", "1")])
    assert r.status == 200
    seen = dict(upstream.requests[-1]["headers"])
    assert seen.get("x-envoy-custom") == "1"
    assert "x-envoy-max-retries" not in seen


@pytest.mark.parametrize("port_of", ["mesh", "gateway"])
def test_cr_lf_in_a_header_value_cannot_inject_a_header(proxy, upstream, port_of):
    port = proxy.port if port_of == "mesh" else GATEWAY_PORT
    before = len(upstream.requests)
    for evil in (b"a\rx-injected: 1", b"a\nx-injected: 1", b"a\x00x-injected: 1", b"a\r\n x-injected: 1"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nhost: app\r\nx-v: " + evil + b"\r\n\r\n")
            assert read_response(sock).status == 400
    assert len(upstream.requests) == before
    # A value that merely looks like a header line stays inside its header.
    r = request(port, "/", host="app", headers=[("x-v", "a x-injected: 1")])
    assert r.status == 200
    names = [k for k, _ in upstream.requests[-1]["headers"]]
    assert "x-injected" not in names


def test_config_header_values_with_cr_lf_are_problems():
    text = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: x}
spec:
  hosts: [a]
  http:
  - headers: {response: {set: {x-a: "a\\r\\nset-cookie: evil"}}}
    route: [{destination: {host: a}}]
"""
    result = loads(("vs.yaml", text))
    assert result.config is None
    assert any("vs.yaml:7:" in p and "CR" in p for p in result.problems), result.problems


def test_python_tags_on_scalars_and_sequences_are_problems_not_code(tmp_path):
    marker = tmp_path / "pwned"
    for doc in (
        f'!!python/object/apply:os.system ["touch {marker}"]\n',
        f"kind: !!python/object/apply:os.system ['touch {marker}']\n",
        "kind: !!python/name:os.system\n",
    ):
        result = loads(("evil.yaml", doc))
        assert result.config is None and result.problems, doc
        assert all(p.startswith("evil.yaml:") for p in result.problems)
    assert not marker.exists()


def test_python_tag_on_a_mapping_is_a_problem_line():
    text = (
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
        "metadata: !!python/object:argparse.Namespace {name: x}\n"
        "spec:\n  hosts: [a.example]\n  resolution: STATIC\n"
        "  ports: [{number: 80, name: http, protocol: HTTP}]\n  endpoints: [{address: 127.0.0.1}]\n"
    )
    result = loads(("evil.yaml", text))
    assert any(p.startswith("evil.yaml:3:") for p in result.problems), result.problems


def test_upstream_response_cannot_inject_downstream_headers(tmp_path):
    # An upstream header value with a bare CR or NUL is a protocol error (502),
    # never relayed where a client parser could split it.
    with Upstream("inj") as up:
        up.handler = lambda req: (200, [("x-a", "a\rset-cookie: evil")], b"")
        with Proxy(tmp_path, service_entry("app", 80, [(up.port, {"app": "app"})])) as proxy:
            r = request(proxy.port, "/", host="app")
            assert r.status == 502
            assert r.header("set-cookie") is None
