"""Reload under load (20 SIGHUPs, zero failures, each response from one whole
config) and SIGTERM under load (every in-flight request completes, exit 0
within the drain timeout)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest
from support import Proxy, Upstream, read_response, request, service_entry, wait_until


def config(tag: str, dest: str, ports: dict[str, int]) -> str:
    # Config `tag` sends host `app` to service `dest` and stamps the response,
    # so a response mixing two configs would show a wrong (tag, upstream) pair.
    vs = f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: app}}
spec:
  hosts: [app]
  http:
  - headers: {{response: {{set: {{x-config: "{tag}"}}}}}}
    route: [{{destination: {{host: {dest}}}}}]
"""
    ses = [service_entry(name, 80, [(port, {"app": name})]) for name, port in sorted(ports.items())]
    return "---\n".join([*ses, service_entry("app", 80, []), vs])


class Load:
    """Client threads sending keep-alive requests until stopped; every failure is kept."""

    def __init__(self, port: int, threads: int, path: str = "/") -> None:
        self.port = port
        self.path = path
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.seen: list[tuple[str | None, str | None]] = []
        self.threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)

    def _run(self) -> None:
        sock = None
        while not self.stop.is_set():
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                sock.sendall(f"GET {self.path} HTTP/1.1\r\nhost: app\r\n\r\n".encode())
                r = read_response(sock)
                if r.status != 200:
                    self.failures.append(f"status {r.status}: {r.body[:100]!r}")
                self.seen.append((r.header("x-config"), r.header("x-up")))
                if r.header("connection") == "close":
                    sock.close()
                    sock = None
            except OSError as exc:
                self.failures.append(repr(exc))
                sock = None
        if sock is not None:
            sock.close()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_twenty_reloads_under_load_fail_nothing_and_never_mix_configs(tmp_path, workers):
    with Upstream("A") as a, Upstream("B") as b:
        ports = {"svc-a": a.port, "svc-b": b.port}
        configs = {"one": config("one", "svc-a", ports), "two": config("two", "svc-b", ports)}
        access_log = tmp_path / "access.log"
        with Proxy(tmp_path, configs["one"], "--workers", workers, "--access-log", str(access_log)) as proxy:
            path = proxy.config_path
            with Load(proxy.port, threads=4) as load:
                wait_until(lambda: len(load.seen) > 20)
                for i in range(20):
                    tag = "two" if i % 2 == 0 else "one"
                    tmp = path.with_suffix(".new")
                    tmp.write_text(configs[tag])
                    os.replace(tmp, path)
                    proxy.signal(signal.SIGHUP)
                    # CONTRACT: new requests use the new config within 1 s.
                    # (With workers, each new connection may land on any of them.)
                    wait_until(
                        lambda t=tag: all(
                            request(proxy.port, "/", host="app").header("x-config") == t for _ in range(4)
                        ),
                        1.5,
                    )
                    n = len(load.seen)
                    wait_until(lambda n=n: len(load.seen) > n + 5, timeout=5)
            # On failure, show the proxy's own account of the failed requests (flags, upstream).
            failed_lines = [line for line in access_log.read_text().splitlines() if '" 200 ' not in line]
            assert load.failures == [], failed_lines[:5]
            assert set(load.seen) <= {("one", "A"), ("two", "B")}, set(load.seen)
            assert {("one", "A"), ("two", "B")} <= set(load.seen)
            assert proxy.stderr().count("config reloaded") == 20
            assert len(load.seen) > 200
            print(f"reload under load, {workers} worker(s): {len(load.seen)} requests, 0 failures")


def test_sigterm_under_load_completes_every_in_flight_request(tmp_path):
    with Upstream("slow") as up:
        se = service_entry("app", 80, [(up.port, {"app": "app"})])
        proxy = Proxy(tmp_path, se, "--drain-timeout", "5").start()
        results: list[object] = []
        lock = threading.Lock()

        def one(i: int) -> None:
            try:
                r = request(proxy.port, f"/delay/0.8?i={i}", host="app")
                out: object = (r.status, r.json()["path"])
            except OSError as exc:
                out = exc
            with lock:
                results.append(out)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(30)]
        for t in threads:
            t.start()
        wait_until(lambda: sum(r["path"].startswith("/delay/0.8") for r in up.requests) == 30)
        # Idle keep-alive clients are closed at once; they hold nothing in flight.
        idle = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        idle.sendall(b"GET / HTTP/1.1\r\nhost: app\r\n\r\n")
        assert read_response(idle).status == 200
        started = time.monotonic()
        proxy.signal(signal.SIGTERM)
        assert idle.recv(10) == b""
        idle.close()
        for t in threads:
            t.join(10)
        code = proxy.proc.wait(10)
        elapsed = time.monotonic() - started
        proxy.stop()
        assert sorted(results, key=str) == sorted(((200, f"/delay/0.8?i={i}") for i in range(30)), key=str)
        assert code == 0
        assert elapsed < 5
