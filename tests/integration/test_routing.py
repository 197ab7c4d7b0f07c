"""Routing behaviour end to end: fastproxy as a subprocess, real upstreams, real sockets."""

from __future__ import annotations

import re
import socket
from collections import Counter

import pytest
from support import Proxy, Upstream, free_port, read_response, request, service_entry

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

ROUTES = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: demoapp}
spec:
  host: demoapp
  subsets:
  - name: v10
    labels: {version: v1.0}
  - name: v11
    labels: {version: v1.1}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: demoapp}
spec:
  hosts: [demoapp]
  http:
  - name: canary
    match:
    - headers:
        x-canary: {exact: "true"}
    route:
    - destination: {host: demoapp, subset: v11}
      headers:
        request:
          set: {User-Agent: Chrome}
        response:
          add: {x-canary: "true"}
  - name: rewrite
    match:
    - uri: {prefix: /canary}
    rewrite: {uri: /}
    route:
    - destination: {host: demoapp, subset: v11}
  - name: redirect
    match:
    - uri: {prefix: /backend}
    redirect: {uri: /, authority: backend, port: 8082}
  - name: direct
    match:
    - uri: {exact: /direct}
    directResponse: {status: 418, body: {string: "short and stout"}}
  - name: nosubset
    match:
    - uri: {prefix: /nosubset}
    route:
    - destination: {host: demoapp, subset: missing}
  - name: split
    match:
    - uri: {prefix: /split}
    route:
    - destination: {host: demoapp, subset: v10}
      weight: 90
    - destination: {host: demoapp, subset: v11}
      weight: 10
  - name: default
    headers:
      response:
        add: {X-Envoy: test}
    route:
    - destination: {host: demoapp, subset: v10}
"""


@pytest.fixture(scope="module")
def upstreams():
    with Upstream("v10") as v10, Upstream("v11") as v11, Upstream("plain") as plain:
        yield {"v10": v10, "v11": v11, "plain": plain}


@pytest.fixture(scope="module")
def proxy(upstreams, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("routing")
    config = "\n---\n".join(
        [
            service_entry(
                "demoapp",
                8080,
                [
                    (upstreams["v10"].port, {"app": "demoapp", "version": "v1.0"}),
                    (upstreams["v11"].port, {"app": "demoapp", "version": "v1.1"}),
                ],
            ),
            service_entry("plain", 80, [(upstreams["plain"].port, {"app": "plain", "version": "v1"})]),
            service_entry("empty", 80, []),
            service_entry("dead", 80, [(free_port(), {"app": "dead"})]),
            ROUTES,
        ]
    )
    with Proxy(tmp, config, "--seed", "7") as p:
        yield p


def test_default_route_to_a_service_without_virtualservice(proxy):
    r = request(proxy.port, "/hello?x=1", host="plain")
    assert r.status == 200
    echo = r.json()
    assert echo["server"] == "plain"
    assert echo["path"] == "/hello?x=1"
    headers = dict(echo["headers"])
    assert headers["host"] == "plain"
    assert headers["x-forwarded-proto"] == "http"
    assert UUID4.match(headers["x-request-id"])
    assert headers["x-envoy-attempt-count"] == "1"
    assert r.header("server") == "envoy"
    assert r.header("x-envoy-upstream-service-time").isdigit()
    assert r.header("date")


@pytest.mark.parametrize(
    "host", ["plain", "plain.default", "plain.default.svc", "plain.default.svc.cluster.local", "PLAIN:80"]
)
def test_mesh_host_forms(proxy, host):
    assert request(proxy.port, "/", host=host).json()["server"] == "plain"


def test_unknown_host_and_unknown_port_get_empty_404(proxy):
    for host in ("nowhere", "plain:8080", "demoapp"):  # demoapp only has port 8080
        r = request(proxy.port, "/", host=host)
        assert (r.status, r.body) == (404, b"")


def test_request_id_kept_and_hop_by_hop_dropped(proxy):
    r = request(
        proxy.port,
        "/",
        host="plain",
        headers=[
            ("x-request-id", "abc"),
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "s"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("proxy-connection", "keep-alive"),
        ],
    )
    headers = dict(r.json()["headers"])
    assert headers["x-request-id"] == "abc"
    for name in ("connection", "x-secret", "keep-alive", "te", "proxy-connection"):
        assert name not in headers


def test_header_match_with_header_operations_seed_1_3(proxy):
    canary = [("x-canary", "true"), ("user-agent", "curl/8")]
    r = request(proxy.port, "/user-agent", host="demoapp:8080", headers=canary)
    assert r.json()["server"] == "v11"
    assert dict(r.json()["headers"])["user-agent"] == "Chrome"
    assert r.header("x-canary") == "true"
    r = request(proxy.port, "/user-agent", host="demoapp:8080", headers=[("user-agent", "curl/8")])
    assert r.json()["server"] == "v10"
    assert dict(r.json()["headers"])["user-agent"] == "curl/8"
    assert r.header("x-envoy") == "test"
    assert r.header("x-canary") is None


def test_rewrite_keeps_query_and_sends_original_path(proxy):
    r = request(proxy.port, "/canary?q=1", host="demoapp:8080")
    echo = r.json()
    assert echo["server"] == "v11"
    assert echo["path"] == "/?q=1"
    assert dict(echo["headers"])["x-envoy-original-path"] == "/canary?q=1"


def test_redirect_seed_1_1(proxy):
    r = request(proxy.port, "/backend", host="demoapp:8080")
    assert r.status == 301
    assert r.header("location") == "http://backend:8082/"
    assert r.body == b""


def test_direct_response(proxy):
    r = request(proxy.port, "/direct", host="demoapp:8080")
    assert (r.status, r.body) == (418, b"short and stout")
    assert r.header("content-type") == "text/plain"


def test_weighted_split_is_about_90_10(proxy):
    seen = Counter()
    with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        for _ in range(400):
            sock.sendall(b"GET /split HTTP/1.1\r\nhost: demoapp:8080\r\n\r\n")
            seen[read_response(sock).json()["server"]] += 1
    assert 320 <= seen["v10"] <= 390, seen
    assert seen["v10"] + seen["v11"] == 400


def test_no_endpoints_gives_no_healthy_upstream(proxy):
    r = request(proxy.port, "/", host="empty")
    assert (r.status, r.body) == (503, b"no healthy upstream")
    assert r.header("content-type") == "text/plain"


def test_connect_refused_is_retried_then_reported_like_envoy(proxy):
    r = request(proxy.port, "/", host="dead")
    assert r.status == 503
    assert r.body.startswith(
        b"upstream connect error or disconnect/reset before headers. retried and the latest reset reason: "
        b"remote connection failure, transport failure reason: delayed connect error:"
    )


def test_keep_alive_and_pipelining_answer_in_order(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        sock.sendall(b"".join(b"GET /n%d HTTP/1.1\r\nhost: plain\r\n\r\n" % i for i in range(5)))
        buf = bytearray()
        paths = [read_response(sock, buf=buf).json()["path"] for _ in range(5)]
    assert paths == [f"/n{i}" for i in range(5)]


def test_absolute_form_is_routed_by_authority_and_sent_in_origin_form(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        sock.sendall(b"GET http://plain/abs?z=9 HTTP/1.1\r\nhost: plain\r\n\r\n")
        echo = read_response(sock).json()
    assert echo["path"] == "/abs?z=9"


def test_post_bodies_content_length_and_chunked(proxy):
    r = request(proxy.port, "/post", host="plain", method="POST", body=b"a" * 70000)
    assert r.json()["body"] == "a" * 70000
    with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        sock.sendall(
            b"POST /c HTTP/1.1\r\nhost: plain\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
        )
        echo = read_response(sock).json()
    assert echo["body"] == "abcdefg"
    assert dict(echo["headers"])["transfer-encoding"] == "chunked"


def test_chunked_response_and_http10_client(proxy):
    r = request(proxy.port, "/chunked", host="plain")
    assert r.body == b"hello world"
    assert r.header("transfer-encoding") == "chunked"
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"GET /chunked HTTP/1.0\r\nhost: plain\r\n\r\n")
        r = read_response(sock)
        assert r.header("transfer-encoding") is None
        assert r.body == b"hello world"


def test_close_delimited_upstream_body_is_delivered_whole(proxy):
    r = request(proxy.port, "/close-delimited", host="plain")
    assert r.body == b"until-close " * 100


def test_head_204_304_keep_the_connection_usable(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        buf = bytearray()
        sock.sendall(b"HEAD /x HTTP/1.1\r\nhost: plain\r\n\r\n")
        r = read_response(sock, head_request=True, buf=buf)
        assert r.status == 200 and int(r.header("content-length")) > 0
        sock.sendall(b"GET /status/204 HTTP/1.1\r\nhost: plain\r\n\r\n")
        assert read_response(sock, buf=buf).status == 204
        sock.sendall(b"GET /status/304 HTTP/1.1\r\nhost: plain\r\n\r\n")
        assert read_response(sock, buf=buf).status == 304
        sock.sendall(b"GET /after HTTP/1.1\r\nhost: plain\r\n\r\n")
        assert read_response(sock, buf=buf).json()["path"] == "/after"


def test_upstream_reset_and_garbage(proxy):
    r = request(proxy.port, "/reset", host="plain")
    assert r.status == 503
    assert r.body == b"upstream connect error or disconnect/reset before headers. reset reason: connection termination"
    r = request(proxy.port, "/garbage", host="plain")
    assert r.status == 502
    assert r.body == b"upstream connect error or disconnect/reset before headers. reset reason: protocol error"
    assert request(proxy.port, "/", host="plain").status == 200


def test_malformed_request_gets_400_and_proxy_keeps_serving(proxy):
    from support import raw

    out = raw(proxy.port, b"GET / HTTP/1.1\r\nhost: plain\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ")
    assert request(proxy.port, "/", host="plain").status == 200


def test_websocket_upgrade_is_tunnelled(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"GET /ws HTTP/1.1\r\nhost: plain\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n")
        r = read_response(sock, head_request=True)
        assert r.status == 101
        sock.sendall(b"ping")
        data = b""
        while len(data) < 9:
            data += sock.recv(100)
        assert data == b"echo:ping"


def test_unknown_subset_is_503_with_an_empty_body(proxy):
    # The cluster outbound|8080|missing|... does not exist: Envoy's 503 NC, no body.
    r = request(proxy.port, "/nosubset", host="demoapp:8080")
    assert (r.status, r.body) == (503, b"")
    assert r.header("content-type") is None


def test_http10_keep_alive_is_honoured(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        buf = bytearray()
        for i in range(2):
            sock.sendall(b"GET /ka%d HTTP/1.0\r\nhost: plain\r\nconnection: keep-alive\r\n\r\n" % i)
            r = read_response(sock, buf=buf)
            assert r.json()["path"] == f"/ka{i}"
            assert r.header("connection") == "keep-alive"
        sock.sendall(b"GET /last HTTP/1.0\r\nhost: plain\r\n\r\n")
        r = read_response(sock, buf=buf)
        assert r.header("connection") == "close"
        assert sock.recv(10) == b""
