"""WebSocket-upgrade smuggling: bytes sent behind an upgrade request must not
reach an upstream that refused (or ignored) the upgrade, and the upstream
connection must not go back to the pool with a smuggled request on it."""

from __future__ import annotations

import socket

import pytest
from chaos import Chaos, fd_count
from support import Proxy, Upstream, read_response, request, service_entry, wait_until

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nhost: chaos\r\n\r\n"
UPGRADE = b"GET /ws HTTP/1.1\r\nhost: chaos\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"


@pytest.fixture(scope="module")
def chaos():
    with Chaos() as c:
        yield c


@pytest.fixture(scope="module")
def proxy(chaos, tmp_path_factory):
    config = service_entry("chaos", 80, [(chaos.port, {"app": "chaos"})])
    with Proxy(tmp_path_factory.mktemp("ws"), config) as p:
        yield p


def test_bytes_behind_a_refused_upgrade_never_reach_the_upstream(proxy, chaos):
    before = len(chaos.requests)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(UPGRADE + SMUGGLED)
        r = read_response(sock)
        assert r.status == 200  # the origin ignored the upgrade
    # Whatever the proxy does with the tunnel bytes, the origin must not parse them as a request ...
    for _ in range(5):
        r = request(proxy.port, "/next", host="chaos")
        # ... and no later client may receive the answer to someone else's smuggled request.
        assert r.body == b"/next"
    assert b"/smuggled" not in b"".join(p.encode() for p in chaos.paths()[before:])


@pytest.mark.parametrize("early_eof", [False, True])
def test_a_finished_tunnel_releases_both_connections(tmp_path, early_eof):
    # Client half-closes (before or after the 101), the origin answers and
    # closes: the proxy must close both sides, not keep half-closed sockets forever.
    with Upstream("ws") as up, Proxy(tmp_path, service_entry("app", 80, [(up.port, {"app": "app"})])) as proxy:
        assert request(proxy.port, "/", host="app").status == 200
        fds = fd_count(proxy.proc.pid)
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            hello = UPGRADE.replace(b"chaos", b"app") + b"ping"
            sock.sendall(hello)
            if early_eof:
                sock.shutdown(socket.SHUT_WR)
            got = b""
            while b"echo:ping" not in got:
                got += sock.recv(4096)
            if not early_eof:
                sock.shutdown(socket.SHUT_WR)
            while sock.recv(4096):
                pass
        wait_until(lambda: fd_count(proxy.proc.pid) <= fds, timeout=5)
