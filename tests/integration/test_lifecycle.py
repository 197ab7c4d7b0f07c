"""Startup, SIGHUP reload, SIGTERM drain and --workers, as a user sees them."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from support import Proxy, Response, Upstream, free_port, read_response, request, service_entry, wait_until


def vs(host: str, header_value: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: tag}}
spec:
  hosts: [{host}]
  http:
  - headers:
      response:
        set: {{x-config: "{header_value}"}}
    route:
    - destination: {{host: {host}}}
"""


@pytest.fixture(scope="module")
def upstream():
    with Upstream("up") as up:
        yield up


def test_sighup_reload_applies_new_config_and_rejects_a_bad_one(upstream, tmp_path):
    se = service_entry("app", 80, [(upstream.port, {"app": "app"})])
    with Proxy(tmp_path, se + "---\n" + vs("app", "one")) as proxy:
        assert request(proxy.port, "/", host="app").header("x-config") == "one"
        proxy.config_path.write_text(se + "---\n" + vs("app", "two"))
        proxy.signal(signal.SIGHUP)
        wait_until(lambda: request(proxy.port, "/", host="app").header("x-config") == "two", timeout=5)
        # A broken config is rejected with `check`'s lines and the old one keeps serving.
        proxy.config_path.write_text(se + "---\n" + vs("app", "three").replace("hosts:", "hostz:"))
        proxy.signal(signal.SIGHUP)
        wait_until(lambda: "reload rejected" in proxy.stderr(), timeout=5)
        assert "hostz" in proxy.stderr()
        assert request(proxy.port, "/", host="app").header("x-config") == "two"


def test_keep_alive_connection_follows_reloads_and_each_requests_host(upstream, tmp_path):
    # One client connection throughout: the proxy may remember the virtual host
    # of the previous request, but never across a reload or another Host.
    se = service_entry("app", 80, [(upstream.port, {"app": "app"})])
    other = service_entry("other", 80, [(upstream.port, {"app": "other"})])
    config = se + "---\n" + other + "---\n" + vs("app", "one")
    with Proxy(tmp_path, config) as proxy, socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        buf = bytearray()

        def ask(host: str) -> Response:
            sock.sendall(f"GET / HTTP/1.1\r\nhost: {host}\r\n\r\n".encode())
            return read_response(sock, buf=buf)

        assert ask("app").header("x-config") == "one"
        assert ask("other").header("x-config") is None
        assert ask("app").header("x-config") == "one"
        proxy.config_path.write_text(se + "---\n" + other + "---\n" + vs("app", "two"))
        proxy.signal(signal.SIGHUP)
        wait_until(lambda: request(proxy.port, "/", host="app").header("x-config") == "two", timeout=5)
        assert ask("app").header("x-config") == "two"
        assert ask("other").header("x-config") is None


def _request_in_flight(proxy: Proxy, upstream: Upstream, path: str) -> tuple[threading.Thread, dict[str, object]]:
    """A request for `path` through `proxy`, returned once the upstream has it (result["r"] when it ends)."""
    result: dict[str, object] = {}

    def send() -> None:
        try:
            result["r"] = request(proxy.port, path, host="app")
        except OSError as exc:
            result["r"] = exc

    # The upstream is shared by this module's tests: wait for this test's own request.
    before = sum(1 for r in upstream.requests if r["path"] == path)
    t = threading.Thread(target=send, daemon=True)
    t.start()
    wait_until(lambda: sum(1 for r in upstream.requests if r["path"] == path) > before)
    return t, result


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signals_let_in_flight_requests_finish(upstream, tmp_path, sig):
    se = service_entry("app", 80, [(upstream.port, {"app": "app"})])
    proxy = Proxy(tmp_path, se).start()
    t, result = _request_in_flight(proxy, upstream, "/delay/0.7")
    proxy.signal(sig)
    t.join(10)
    assert isinstance(result["r"], Response) and result["r"].status == 200, result
    assert proxy.stop() == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_stop_signals_repeated_while_exiting_still_exit_0(upstream, tmp_path, workers):
    # A supervisor that repeats its SIGTERM must not turn a clean exit into death by signal,
    # whichever moment of the shutdown the repeats land in.
    se = service_entry("app", 80, [(upstream.port, {"app": "app"})])
    proxy = Proxy(tmp_path, se, "--workers", workers).start()
    assert request(proxy.port, "/", host="app").status == 200
    assert proxy.proc is not None
    proxy.signal(signal.SIGTERM)
    while proxy.proc.poll() is None:
        try:
            proxy.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            break
    assert proxy.stop() == 0


def test_drain_timeout_bounds_the_wait_for_requests_in_flight(upstream, tmp_path):
    # CONTRACT: in-flight requests get up to --drain-timeout, then the proxy exits 0 anyway.
    se = service_entry("app", 80, [(upstream.port, {"app": "app"})])
    proxy = Proxy(tmp_path, se, "--drain-timeout", "1").start()
    t, result = _request_in_flight(proxy, upstream, "/delay/20")
    started = time.monotonic()
    proxy.signal(signal.SIGTERM)
    assert proxy.proc is not None
    assert proxy.proc.wait(10) == 0
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 5, elapsed
    t.join(5)
    # The request still running at the deadline was cut, not answered.
    assert not isinstance(result.get("r"), Response)


def test_second_stop_signal_ends_the_drain_now(upstream, tmp_path):
    se = service_entry("app", 80, [(upstream.port, {"app": "app"})])
    proxy = Proxy(tmp_path, se, "--drain-timeout", "30").start()
    t, result = _request_in_flight(proxy, upstream, "/delay/20")
    proxy.signal(signal.SIGTERM)
    # The first signal drains: the request in flight keeps the process alive.
    with pytest.raises(subprocess.TimeoutExpired):
        assert proxy.proc is not None
        proxy.proc.wait(0.5)
    proxy.signal(signal.SIGINT)
    assert proxy.proc.wait(5) == 0
    t.join(5)
    assert not isinstance(result.get("r"), Response)


def test_startup_failures_are_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec: {hosts: 5}\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastproxy",
            "run",
            "-c",
            str(bad),
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--admin",
            f"127.0.0.1:{free_port()}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 1
    assert "bad.yaml:4" in run.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        good = tmp_path / "good.yaml"
        good.write_text(service_entry("app", 80, []))
        admin = free_port()
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "fastproxy",
                "run",
                "-c",
                str(good),
                "--listen",
                f"127.0.0.1:{port}",
                "--admin",
                f"127.0.0.1:{admin}",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert run.returncode == 1
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], run.stderr
        # Nothing left listening: the admin port is free again.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", admin))


def test_workers_share_the_port_and_admin_reports_ready(upstream, tmp_path):
    se = service_entry("app", 80, [(upstream.port, {"app": "app"})])
    with Proxy(tmp_path, se, "--workers", "2") as proxy:
        for _ in range(20):
            assert request(proxy.port, "/", host="app").status == 200
        assert b"LIVE" in proxy.admin("/ready")
        wait_until(lambda: b'response_code="200"' in proxy.admin("/stats/prometheus"), timeout=5)
        proxy.config_path.write_text(se + "---\n" + vs("app", "w"))
        proxy.signal(signal.SIGHUP)
        wait_until(
            lambda: all(request(proxy.port, "/", host="app").header("x-config") == "w" for _ in range(6)), timeout=10
        )
    assert proxy.proc.returncode == 0


def test_admin_endpoints(upstream, tmp_path):
    se = service_entry("app", 80, [(upstream.port, {"app": "app"})])
    with Proxy(tmp_path, se + "---\n" + vs("app", "a")) as proxy:
        assert proxy.admin("/ready").startswith(b"LIVE")
        import json

        dump = json.loads(proxy.admin("/config_dump"))
        assert isinstance(dump, dict) and dump
        routes = proxy.admin("/routes").decode()
        assert "NAME" in routes and "VIRTUAL SERVICE" in routes and "tag.default" in routes
