"""Request smuggling and malformed input through a real proxy, both codecs.

For every vector: the exact status, the connection closed by the proxy,
nothing forwarded upstream, and the proxy still serving afterwards.
"""

from __future__ import annotations

import socket
import time

import pytest
from support import Proxy, Upstream, read_response, request, service_entry

CODECS = ["httptools", "h11"]

P = b"POST / HTTP/1.1\r\nhost: app\r\n"
G = b"GET / HTTP/1.1\r\nhost: app\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nhost: app\r\n\r\n"

VECTORS = {
    # CL.TE / TE.CL: both framings present, a smuggled request in the body
    "cl-te": (P + b"content-length: 6\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 400),
    "te-cl": (P + b"transfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", 400),
    "te-cl-obfuscated": (P + b"transfer-encoding: xchunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n", 400),
    # TE.TE: obfuscated Transfer-Encoding
    "te-xchunked": (P + b"transfer-encoding: xchunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 501),
    "te-chunked-identity": (P + b"transfer-encoding: chunked, identity\r\n\r\n0\r\n\r\n", 501),
    "te-identity-chunked-dup": (
        P + b"transfer-encoding: chunked\r\ntransfer-encoding: identity\r\n\r\n0\r\n\r\n" + SMUGGLED,
        501,
    ),
    "te-duplicate-chunked": (P + b"transfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", 501),
    "te-quoted": (P + b'transfer-encoding: "chunked"\r\n\r\n0\r\n\r\n', 501),
    "te-trailing-comma": (P + b"transfer-encoding: chunked,\r\n\r\n0\r\n\r\n", 501),
    "te-space-before-colon": (P + b"transfer-encoding : chunked\r\n\r\n0\r\n\r\n", 400),
    "te-tab-before-colon": (P + b"transfer-encoding\t: chunked\r\n\r\n0\r\n\r\n", 400),
    "te-leading-space-line": (P + b" transfer-encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "te-vertical-tab": (P + b"transfer-encoding:\x0bchunked\r\n\r\n0\r\n\r\n", 400),
    "te-empty-then-chunked": (P + b"transfer-encoding:\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "te-folded": (P + b"transfer-encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400),
    "te-nul": (P + b"transfer-encoding: chunked\x00\r\n\r\n0\r\n\r\n", 400),
    # Content-Length
    "cl-conflicting": (P + b"content-length: 3\r\ncontent-length: 4\r\n\r\nabcd", 400),
    "cl-list": (P + b"content-length: 3, 4\r\n\r\nabcd", 400),
    "cl-list-same": (P + b"content-length: 3, 3\r\n\r\nabc", 400),
    "cl-plus": (P + b"content-length: +3\r\n\r\nabc", 400),
    "cl-minus": (P + b"content-length: -3\r\n\r\nabc", 400),
    "cl-hex": (P + b"content-length: 0x3\r\n\r\nabc", 400),
    "cl-inner-space": (P + b"content-length: 3 3\r\n\r\nabc", 400),
    "cl-empty": (P + b"content-length: \r\n\r\n", 400),
    "cl-overflow": (P + b"content-length: 99999999999999999999999\r\n\r\n", 400),
    "cl-unicode-digit": (P + "content-length: \uff13\r\n\r\nabc".encode(), 400),
    "cl-space-before-colon": (P + b"content-length : 3\r\n\r\nabc", 400),
    # chunked bodies
    "chunk-size-overflow": (P + b"transfer-encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n", 400),
    "chunk-size-negative": (P + b"transfer-encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n", 400),
    "chunk-size-0x": (P + b"transfer-encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", 400),
    "chunk-size-space": (P + b"transfer-encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n", 400),
    "chunk-size-empty": (P + b"transfer-encoding: chunked\r\n\r\n\r\nabc\r\n0\r\n\r\n", 400),
    "chunk-ext-ctl": (P + b"transfer-encoding: chunked\r\n\r\n3;a=\x01\r\nabc\r\n0\r\n\r\n", 400),
    "chunk-ext-bare-lf": (P + b"transfer-encoding: chunked\r\n\r\n3;a=b\nabc\r\n0\r\n\r\n", 400),
    "chunk-data-too-long": (P + b"transfer-encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", 400),
    "chunk-bare-lf-end": (P + b"transfer-encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n", 400),
    "chunk-trailer-fold": (P + b"transfer-encoding: chunked\r\n\r\n0\r\nx: a\r\n b\r\n\r\n", 400),
    "chunk-trailer-space-colon": (P + b"transfer-encoding: chunked\r\n\r\n0\r\nx : a\r\n\r\n", 400),
    # line endings and bytes
    "bare-lf": (b"GET / HTTP/1.1\nhost: app\n\n", 400),
    "bare-lf-one-line": (b"GET / HTTP/1.1\r\nhost: app\nx: a\r\n\r\n", 400),
    "bare-cr-line": (b"GET / HTTP/1.1\r\nhost: app\rx: a\r\n\r\n", 400),
    "bare-cr-value": (G + b"x: a\rb\r\n\r\n", 400),
    "obs-fold": (G + b"x: a\r\n b\r\n\r\n", 400),
    "obs-fold-tab": (G + b"x: a\r\n\tb\r\n\r\n", 400),
    "space-before-colon": (b"GET / HTTP/1.1\r\nhost : app\r\n\r\n", 400),
    "nul-value": (G + b"x: a\x00b\r\n\r\n", 400),
    "nul-name": (G + b"x\x00: a\r\n\r\n", 400),
    "esc-value": (G + b"x: a\x1bb\r\n\r\n", 400),
    "del-value": (G + b"x: a\x7fb\r\n\r\n", 400),
    "nul-target": (b"GET /a\x00b HTTP/1.1\r\nhost: app\r\n\r\n", 400),
    "ctl-target": (b"GET /a\x01b HTTP/1.1\r\nhost: app\r\n\r\n", 400),
    "name-at": (G + b"x@y: a\r\n\r\n", 400),
    "name-paren": (G + b"x(y): a\r\n\r\n", 400),
    "name-slash": (G + b"x/y: a\r\n\r\n", 400),
    "name-empty": (G + b": a\r\n\r\n", 400),
    "name-high-byte": (G + b"x\xffy: a\r\n\r\n", 400),
    "no-colon": (G + b"just-a-name\r\n\r\n", 400),
    # request line
    "version-2": (b"GET / HTTP/2.0\r\nhost: app\r\n\r\n", 505),
    "version-1.2": (b"GET / HTTP/1.2\r\nhost: app\r\n\r\n", 505),
    "version-lower": (b"GET / http/1.1\r\nhost: app\r\n\r\n", 400),
    "http-0.9": (b"GET /\r\n\r\n", 400),
    "double-space": (b"GET  / HTTP/1.1\r\nhost: app\r\n\r\n", 400),
    "method-lower": (b"get / HTTP/1.1\r\nhost: app\r\n\r\n", 400),
    "connect": (b"CONNECT app:80 HTTP/1.1\r\nhost: app\r\n\r\n", 400),
    "fragment": (b"GET /a#b HTTP/1.1\r\nhost: app\r\n\r\n", 400),
    # Host
    "no-host": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "duplicate-host": (b"GET / HTTP/1.1\r\nhost: app\r\nhost: evil\r\n\r\n", 400),
    "duplicate-host-same": (b"GET / HTTP/1.1\r\nhost: app\r\nhost: app\r\n\r\n", 400),
    "host-empty": (b"GET / HTTP/1.1\r\nhost: \r\n\r\n", 400),
    "host-space": (b"GET / HTTP/1.1\r\nhost: app evil\r\n\r\n", 400),
    "host-slash": (b"GET / HTTP/1.1\r\nhost: app/evil\r\n\r\n", 400),
    "host-userinfo": (b"GET / HTTP/1.1\r\nhost: user@app\r\n\r\n", 400),
    "host-bad-port": (b"GET / HTTP/1.1\r\nhost: app:8x\r\n\r\n", 400),
    "absolute-no-host": (b"GET http://app/ HTTP/1.1\r\n\r\n", 400),
    "absolute-userinfo": (b"GET http://u@app/ HTTP/1.1\r\nhost: app\r\n\r\n", 400),
    "absolute-ftp": (b"GET ftp://app/ HTTP/1.1\r\nhost: app\r\n\r\n", 400),
    # HTTP/1.0 with Transfer-Encoding
    "http10-te": (b"POST / HTTP/1.0\r\nhost: app\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 400),
    # limits
    "too-many-headers": (G + b"".join(b"x-%d: v\r\n" % i for i in range(101)) + b"\r\n", 431),
    "head-too-large": (G + b"x: " + b"a" * 61440 + b"\r\n\r\n", 431),
    # a pipelined request right after a rejected one
    "pipelined-after-rejected": (b"GET / HTTP/1.1\r\nhost : app\r\n\r\n" + SMUGGLED, 400),
}


@pytest.fixture(scope="module")
def upstream():
    with Upstream("smuggle") as up:
        yield up


@pytest.fixture(scope="module", params=CODECS)
def proxy(request, upstream, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"smuggle-{request.param}")
    config = service_entry("app", 80, [(upstream.port, {"app": "app"})])
    with Proxy(tmp, config, "--codec", request.param) as p:
        yield p


def exchange(port: int, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send `data`; return (everything received, whether the proxy closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the proxy may close while a big head is still being sent
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return out, True
            except TimeoutError:
                break
            if not chunk:
                return out, True
            out += chunk
        return out, False


def peer_closed(sock: socket.socket) -> bool:
    # A reset counts: bytes the client sent after the rejection were never read.
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("name", list(VECTORS))
def test_vector_is_rejected_closed_and_never_forwarded(proxy, upstream, name):
    data, status = VECTORS[name]
    before = len(upstream.requests)
    out, closed = exchange(proxy.port, data)
    assert out.startswith(b"HTTP/1.1 %d " % status), out[:200]
    assert out.count(b"HTTP/1.1 ") == 1, out  # nothing after the rejection
    assert b"\r\nconnection: close\r\n" in out
    assert closed
    assert len(upstream.requests) == before, upstream.requests[before:]
    assert request(proxy.port, "/", host="app").status == 200


def test_bytewise_delivery_gets_the_same_answer(proxy, upstream):
    # A few vectors dripped one byte per send: the outcome must not depend on packetisation.
    for name in ("cl-te", "te-xchunked", "bare-lf", "obs-fold", "chunk-size-overflow", "pipelined-after-rejected"):
        data, status = VECTORS[name]
        before = len(upstream.requests)
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                for i in range(len(data)):
                    sock.sendall(data[i : i + 1])
            except (BrokenPipeError, ConnectionResetError):
                pass
            r = read_response(sock)
            assert r.status == status, name
            assert peer_closed(sock), name
        assert len(upstream.requests) == before, name


def test_valid_then_rejected_then_smuggled(proxy, upstream):
    # The first request is served, the second rejected, the third never read.
    before = len(upstream.requests)
    data = b"GET /first HTTP/1.1\r\nhost: app\r\n\r\n" + b"GET / HTTP/1.1\r\nhost: app\r\nx: a\x00\r\n\r\n" + SMUGGLED
    out, closed = exchange(proxy.port, data)
    assert closed
    assert out.startswith(b"HTTP/1.1 200 ")
    assert out.count(b"HTTP/1.1 400 ") == 1 and out.count(b"HTTP/1.1 ") == 2
    assert [r["path"] for r in upstream.requests[before:]] == ["/first"]


def test_valid_chunked_request_is_reframed_not_passed_through(proxy, upstream):
    # Extensions and trailers are dropped; the upstream sees one clean message.
    before = len(upstream.requests)
    data = P + b"transfer-encoding: ChUnKeD\r\n\r\n3;ext=1\r\nabc\r\n0\r\nx-trailer: t\r\n\r\n"
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(data)
        r = read_response(sock)
    assert r.status == 200
    [seen] = upstream.requests[before:]
    assert seen["body"] == "abc"
    names = [k for k, _ in seen["headers"]]
    assert names.count("transfer-encoding") == 1 and "content-length" not in names
    assert "x-trailer" not in names


def test_absolute_form_wins_over_host_and_is_forwarded_in_origin_form(proxy, upstream):
    before = len(upstream.requests)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"GET http://app/abs?q=1 HTTP/1.1\r\nhost: other.example\r\n\r\n")
        r = read_response(sock)
    assert r.status == 200
    [seen] = upstream.requests[before:]
    assert seen["path"] == "/abs?q=1"
    assert [v for k, v in seen["headers"] if k == "host"] == ["app"]
