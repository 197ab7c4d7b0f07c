"""--max-connections: beyond the limit new connections are refused at once,
the admitted ones keep being served, and refusals are counted in metrics."""

from __future__ import annotations

import re
import resource
import select
import signal
import socket
import time

from support import Proxy, Upstream, read_response, request, service_entry, wait_until

from fastproxy.listeners import FD_RESERVE, default_max_connections


def refused(port: int) -> bool:
    """True when the proxy drops a new connection without serving it."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        try:
            sock.sendall(b"GET / HTTP/1.1\r\nhost: app\r\n\r\n")
            return sock.recv(100) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True


def served(port: int) -> bool:
    try:
        return request(port, "/", host="app", timeout=2).status == 200
    except OSError:
        return False  # still refused: the freed slot is not seen yet


def test_connections_beyond_the_limit_are_refused_quickly(tmp_path):
    with Upstream("ov") as up:
        config = service_entry("app", 80, [(up.port, {"app": "app"})])
        with Proxy(tmp_path, config, "--max-connections", "5") as proxy:
            held = []
            for _ in range(5):
                s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
                s.sendall(b"GET / HTTP/1.1\r\nhost: app\r\n\r\n")
                assert read_response(s).status == 200
                held.append(s)
            for _ in range(3):
                started = time.monotonic()
                assert refused(proxy.port)
                assert time.monotonic() - started < 0.5
            # The admitted connections are unaffected.
            for s in held:
                s.sendall(b"GET / HTTP/1.1\r\nhost: app\r\n\r\n")
                assert read_response(s).status == 200
            text = proxy.admin("/stats/prometheus").decode()
            m = re.search(r"fastproxy_downstream_cx_overflow_total (\d+)", text)
            assert m and int(m.group(1)) >= 3, text[-2000:]
            # A slot freed is a slot available again.
            held.pop().close()
            wait_until(lambda: served(proxy.port), timeout=5)
            for s in held:
                s.close()


def test_default_limit_is_sized_to_the_file_descriptor_limit():
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert default_max_connections() == max(16, (soft - FD_RESERVE) // 2)


def test_a_burst_of_new_clients_waits_in_the_accept_queue(tmp_path):
    # 300 clients connect at once while the worker cannot accept (stopped):
    # the kernel completes every handshake into the listen backlog, and all
    # are served once the worker runs.  With asyncio's default backlog (100)
    # the rest would lose their SYNs and retry a second or more later.
    burst = 300
    with Upstream("burst") as up:
        config = service_entry("app", 80, [(up.port, {"app": "app"})])
        with Proxy(tmp_path, config) as proxy:
            socks = []
            proxy.proc.send_signal(signal.SIGSTOP)
            try:
                for _ in range(burst):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setblocking(False)
                    s.connect_ex(("127.0.0.1", proxy.port))
                    socks.append(s)
                pending = set(socks)
                deadline = time.monotonic() + 3
                while pending and time.monotonic() < deadline:
                    _, writable, _ = select.select([], list(pending), [], 0.1)
                    pending.difference_update(writable)
                done = [s for s in socks if s not in pending]
                handshakes = [s for s in done if not s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)]
            finally:
                proxy.proc.send_signal(signal.SIGCONT)
            try:
                assert len(handshakes) == burst
                for s in socks:
                    s.setblocking(True)
                    s.settimeout(10)
                    s.sendall(b"GET / HTTP/1.1\r\nhost: app\r\n\r\n")
                for s in socks:
                    assert read_response(s).status == 200
            finally:
                for s in socks:
                    s.close()
