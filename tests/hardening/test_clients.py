"""Hostile or careless clients: disconnects release upstream connections, a
slow reader is served with bounded memory, slowloris is cut by the head
timeout while others are served."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from chaos import Chaos, fd_count, rss_kib
from support import Proxy, read_response, request, service_entry, wait_until


@pytest.fixture(scope="module")
def chaos():
    with Chaos() as c:
        yield c


@pytest.fixture(scope="module")
def proxy(chaos, tmp_path_factory):
    config = service_entry("chaos", 80, [(chaos.port, {"app": "chaos"})])
    with Proxy(tmp_path_factory.mktemp("clients"), config, "--head-timeout", "0.5") as p:
        yield p


@pytest.fixture
def baseline(proxy, chaos):
    assert request(proxy.port, "/warm", host="chaos").status == 200
    return fd_count(proxy.proc.pid), chaos.open


def back_to(proxy: Proxy, chaos: Chaos, baseline: tuple[int, int]) -> None:
    fds, upstream_open = baseline
    wait_until(lambda: fd_count(proxy.proc.pid) <= fds, timeout=5)
    wait_until(lambda: chaos.open <= upstream_open, timeout=5)


def test_disconnect_mid_request_body_releases_the_upstream(proxy, chaos, baseline):
    heads = len(chaos.heads)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"POST /never HTTP/1.1\r\nhost: chaos\r\ncontent-length: 100000\r\n\r\n" + b"a" * 1000)
        wait_until(lambda: len(chaos.heads) > heads, timeout=5)
    back_to(proxy, chaos, baseline)


def test_half_close_with_an_unfinished_body_closes_the_connection(proxy, chaos, baseline):
    # The body can never complete once the client sent FIN: the proxy must
    # not hold the client and upstream connections open forever.
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"POST /never HTTP/1.1\r\nhost: chaos\r\ncontent-length: 100\r\n\r\nonly-ten-b")
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(100) == b""
    back_to(proxy, chaos, baseline)


def test_half_close_after_a_whole_request_gets_the_response_then_a_close(proxy):
    # The FIN arrives while the request is in flight; after the response the
    # connection is closed at once, not kept for the idle timeout (300 s here).
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"POST /slow HTTP/1.1\r\nhost: chaos\r\ncontent-length: 3\r\n\r\nabc")
        sock.shutdown(socket.SHUT_WR)
        r = read_response(sock)
        assert (r.status, r.body) == (200, b"/slow")
        assert sock.recv(100) == b""


def test_disconnect_mid_response_releases_the_upstream(proxy, chaos, baseline):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"GET /big/200000000 HTTP/1.1\r\nhost: chaos\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    back_to(proxy, chaos, baseline)


def test_slow_reader_of_50_mib_keeps_rss_growth_under_32_mib(proxy, chaos):
    size = 50 * 1024 * 1024
    pid = proxy.proc.pid
    start = rss_kib(pid)
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            done.wait(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    got = 0
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
            sock.sendall(b"GET /big/%d HTTP/1.1\r\nhost: chaos\r\n\r\n" % size)
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
            got = len(head) - head.index(b"\r\n\r\n") - 4
            stalls = 0
            while got < size:
                chunk = sock.recv(16384)
                assert chunk
                got += len(chunk)
                # Stop reading now and then while the upstream keeps sending:
                # everything it sends meanwhile must stay in its socket, not in our heap.
                if got > (stalls + 1) * 12 * 1024 * 1024:
                    stalls += 1
                    time.sleep(0.3)
    finally:
        done.set()
        sampler.join()
    assert got == size
    growth_mib = (peak[0] - start) / 1024
    print(f"slow reader of 50 MiB: proxy RSS grew by {growth_mib:.1f} MiB")
    assert growth_mib < 32, f"RSS grew by {growth_mib:.1f} MiB"


def test_slowloris_is_cut_by_the_head_timeout_while_others_are_served(proxy):
    lorises = []
    for _ in range(40):
        s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nhost: cha")
        lorises.append(s)
    started = time.monotonic()
    alive = set(range(len(lorises)))
    served = 0
    while alive and time.monotonic() - started < 5:
        # Keep dripping a byte into every open slowloris connection ...
        for i in list(alive):
            try:
                lorises[i].sendall(b"o")
            except OSError:
                alive.discard(i)
        # ... while a normal client is answered promptly.
        t0 = time.monotonic()
        assert request(proxy.port, "/ok", host="chaos").status == 200
        assert time.monotonic() - t0 < 1
        served += 1
        for i in list(alive):
            lorises[i].setblocking(False)
            try:
                data = lorises[i].recv(4096)
                assert data == b"" or data.startswith(b"HTTP/1.1 408 ")
                alive.discard(i)
            except BlockingIOError:
                pass
            except ConnectionResetError:
                alive.discard(i)
    elapsed = time.monotonic() - started
    for s in lorises:
        s.close()
    assert not alive, f"{len(alive)} slowloris connections still open after {elapsed:.1f}s"
    assert elapsed < 3  # head timeout 0.5 s plus the sweep's slack
    assert served > 0
