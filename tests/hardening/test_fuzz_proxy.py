"""Fuzz the running proxy (both codecs): random and mutated request bytes, sent
whole or in small pieces, then the client half-closes.  Allowed outcomes:
responses with a sane status, or a clean close, within a deadline; anything
forwarded upstream is well-formed; the proxy logs no traceback and keeps serving.
The regression corpus (tests/corpus/*.http) is replayed the same way."""

from __future__ import annotations

import re
import socket
import time

import pytest
from fuzzlib import SCALE, corpus_inputs, inputs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import Proxy, Upstream, request, service_entry

DEADLINE = 5.0
_STATUS = re.compile(rb"(?:^|\r\n)HTTP/1\.1 (\d{3}) ")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")
_CTL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

FUZZ = settings(
    max_examples=120 * SCALE,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def upstream():
    with Upstream("fuzz") as up:
        yield up


@pytest.fixture(scope="module", params=["httptools", "h11"])
def proxy(request, upstream, tmp_path_factory):
    config = service_entry("app", 80, [(upstream.port, {"app": "app"})])
    tmp = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    with Proxy(tmp, config, "--codec", request.param, "--head-timeout", "1") as p:
        yield p
    assert "Traceback" not in p.stderr(), p.stderr()


def send(port: int, data: bytes, piece: int) -> bytes:
    """Send `data` in `piece`-byte writes, half-close, read until the proxy closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for i in range(0, len(data), piece):
                sock.sendall(data[i : i + piece])
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the proxy already answered and closed (EPIPE, ECONNRESET, ENOTCONN)
        out = b""
        deadline = time.monotonic() + DEADLINE
        while True:
            assert time.monotonic() < deadline, f"no close within {DEADLINE}s; got {out[:300]!r}"
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return out
            except TimeoutError:
                raise AssertionError(f"hang: no close within {DEADLINE}s; got {out[:300]!r}") from None
            if not chunk:
                return out
            out += chunk


def check(proxy: Proxy, upstream: Upstream, data: bytes, piece: int) -> None:
    before = len(upstream.requests)
    out = send(proxy.port, data, piece)
    for status in _STATUS.findall(out):
        code = int(status)
        assert code in (100, 101, 200) or 400 <= code < 600, (data, out[:300])
        assert code != 500, (data, out[:300])
    if out:
        assert out.startswith(b"HTTP/1.1 "), (data, out[:300])
    for req in upstream.requests[before:]:
        assert req["method"].isupper() and req["path"][:1] in "/*", req
        for name, value in req["headers"]:
            assert _TOKEN.fullmatch(name) and not _CTL.search(value), req


@FUZZ
@given(data=inputs, piece=st.sampled_from([1, 7, 1 << 20]))
def test_fuzz_proxy(proxy, upstream, data, piece):
    check(proxy, upstream, data, piece)


@pytest.mark.parametrize("name, data", corpus_inputs())
def test_corpus_replay_proxy(proxy, upstream, name, data):
    for piece in (1, 1 << 20):
        check(proxy, upstream, data, piece)
    assert request(proxy.port, "/", host="app").status == 200
