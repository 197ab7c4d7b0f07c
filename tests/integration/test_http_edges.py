"""HTTP/1.1 edges from CONTRACT.md through a running proxy: limits, timeouts,
malformed input, disconnects, backpressure."""

from __future__ import annotations

import socket
import time

import pytest
from support import Proxy, Upstream, raw, read_response, request, service_entry, wait_until


@pytest.fixture(scope="module")
def upstream():
    with Upstream("edge") as up:
        yield up


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edges")
    config = service_entry("app", 80, [(upstream.port, {"app": "app", "version": "v1"})])
    with Proxy(tmp, config, "--head-timeout", "0.6", "--idle-timeout", "1.0") as p:
        yield p


@pytest.mark.parametrize(
    "data, status",
    [
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"GET / HTTP/1.1\r\nhost: app\r\nhost: app\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nhost: app\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab", 400),
        (b"GET / HTTP/1.1\r\nhost: app\r\ncontent-length: +1\r\n\r\na", 400),
        (b"GET / HTTP/1.1\r\nhost : app\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nhost: app\r\nx-a: 1\r\n b\r\n\r\n", 400),  # obs-fold
        (b"GET / HTTP/1.1\nhost: app\n\n", 400),  # bare LF
        (b"POST / HTTP/1.1\r\nhost: app\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"POST / HTTP/1.1\r\nhost: app\r\ntransfer-encoding: gzip\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\nhost: app\r\n\r\n", 505),
        (b"GET / HTTP/1.0\r\nhost: app\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ],
)
def test_malformed_requests_get_4xx_5xx_and_never_reach_the_upstream(proxy, upstream, data, status):
    before = len(upstream.requests)
    out = raw(proxy.port, data)
    assert out.startswith(b"HTTP/1.1 %d " % status), out
    assert len(upstream.requests) == before
    assert request(proxy.port, "/", host="app").status == 200


def test_header_limits_give_431(proxy):
    many = b"".join(b"x-h%d: v\r\n" % i for i in range(101))
    assert raw(proxy.port, b"GET / HTTP/1.1\r\nhost: app\r\n" + many + b"\r\n").startswith(b"HTTP/1.1 431 ")
    big = b"x-big: " + b"a" * (61 * 1024) + b"\r\n"
    assert raw(proxy.port, b"GET / HTTP/1.1\r\nhost: app\r\n" + big + b"\r\n").startswith(b"HTTP/1.1 431 ")


def test_slow_head_gets_408_and_others_are_served_meanwhile(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nhost: ap")
        assert request(proxy.port, "/", host="app").status == 200
        started = time.monotonic()
        out = b""
        while True:
            chunk = slow.recv(4096)
            if not chunk:
                break
            out += chunk
        assert out.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 4


def test_idle_keep_alive_connection_is_closed(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nhost: app\r\n\r\n")
        assert read_response(sock).status == 200
        started = time.monotonic()
        assert sock.recv(10) == b""
        assert 0.5 < time.monotonic() - started < 4


def test_client_disconnect_mid_response_releases_the_upstream(proxy, upstream):
    before = upstream.connections
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"GET /big/50000000 HTTP/1.1\r\nhost: app\r\n\r\n")
        assert sock.recv(65536)
    # The proxy aborts that upstream connection instead of draining 50 MB into
    # the void: the next request needs a fresh upstream connection too.
    wait_until(lambda: request(proxy.port, "/", host="app").status == 200)
    assert upstream.connections > before


def test_slow_reader_gets_the_whole_body_through_backpressure(proxy):
    size = 8 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.sendall(b"GET /big/%d HTTP/1.1\r\nhost: app\r\n\r\n" % size)
        r = read_response(sock)
    assert len(r.body) == size


def test_expect_100_continue(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"POST /e HTTP/1.1\r\nhost: app\r\ncontent-length: 3\r\nexpect: 100-continue\r\n\r\n")
        interim = sock.recv(100)
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"abc")
        r = read_response(sock)
    assert r.json()["body"] == "abc"
    assert "expect" not in dict(r.json()["headers"])
