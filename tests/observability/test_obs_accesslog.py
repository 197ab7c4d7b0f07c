"""--access-log: Istio's default TEXT line per request, response flags included."""

from __future__ import annotations

import re
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

from obs_support import seed_split_config
from support import Proxy, Upstream, free_port, request, service_entry, wait_until

LINE = re.compile(
    r'^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] "(\S+) (\S+) (HTTP/1\.[01])" (\d+) (\S+) (\S+) - "-" '
    r'(\d+) (\d+) (\d+) (\S+) "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" (\S+) - (\S+) (\S+) - (\S+)$'
)


def _lines(path: Path, n: int) -> list[re.Match[str]]:
    wait_until(lambda: path.exists() and len(path.read_text().splitlines()) >= n)
    out = []
    for line in path.read_text().splitlines():
        m = LINE.match(line)
        assert m, f"not Istio's format: {line!r}"
        out.append(m)
    return out


def test_access_log_lines_and_flags(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    dead = free_port()  # nothing listens here: connect failure
    with Upstream("v10") as a, Upstream("v11") as b:
        cfg = seed_split_config([a.port], [b.port], "1.4-fault-injection")
        cfg += "---\n" + service_entry("down", 80, [(dead, {"app": "down", "version": "v1"})])
        cfg += "---\n" + service_entry("empty", 80, [])
        with Proxy(tmp_path, cfg, "--access-log", str(log), "--seed", "5") as proxy:
            ok = request(
                proxy.port,
                "/hello?x=1",
                host="demoapp:8080",
                headers=[("user-agent", "ua/1"), ("x-request-id", "rid-1")],
            )
            assert ok.status == 200
            aborted = 0
            for _ in range(30):
                aborted += request(proxy.port, "/canary", host="demoapp:8080").status == 555
            assert aborted
            assert request(proxy.port, "/", host="nowhere").status == 404
            assert request(proxy.port, "/", host="down").status == 503
            assert request(proxy.port, "/", host="empty").status == 503
            # A client that goes away before the answer: DC with code 0.
            with socket.create_connection(("127.0.0.1", proxy.port)) as s:
                s.sendall(b"GET /delay/0.5 HTTP/1.1\r\nhost: demoapp:8080\r\n\r\n")
                wait_until(lambda: any(r["path"] == "/delay/0.5" for r in a.requests))
                # A reset, not a half-close (after which a proxy still answers).
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            wait_until(lambda: any(m.group(6).endswith("DC") for m in _lines(log, 34)))
            lines = _lines(log, 35)
    first = lines[0]
    assert first.group(2, 3, 4, 5, 6, 7) == ("GET", "/hello?x=1", "HTTP/1.1", "200", "-", "via_upstream")
    assert first.group(13) == "ua/1" and first.group(14) == "rid-1" and first.group(15) == "demoapp:8080"
    assert first.group(16) == f"127.0.0.1:{a.port}"
    assert first.group(17) == "outbound|8080|v10|demoapp.default.svc.cluster.local"
    assert first.group(20) == "default"
    assert int(first.group(9)) == len(ok.body)
    assert first.group(11) != "-"  # x-envoy-upstream-service-time
    by_flags = {}
    for m in lines:
        by_flags.setdefault(m.group(6), []).append(m)
    assert len(by_flags["FI"]) == aborted
    assert by_flags["FI"][0].group(5) == "555" and by_flags["FI"][0].group(7) == "fault_filter_abort"
    assert by_flags["NR"][0].group(5) == "404"
    assert by_flags["UF,URX"][0].group(5) == "503"
    assert by_flags["UH"][0].group(5) == "503" and by_flags["UH"][0].group(17).endswith(
        "empty.default.svc.cluster.local"
    )
    dc = [m for m in lines if m.group(6).split(",")[-1] == "DC"]
    assert len(dc) == 1 and dc[0].group(5) == "0", sorted(by_flags)
    # The x-request-id the proxy generated for the upstream is logged too.
    assert all(m.group(14) not in ("", "-") for m in lines if m.group(16) != "-")


def test_access_log_to_stdout_and_off_by_default(tmp_path: Path) -> None:
    with Upstream() as up:
        cfg = service_entry("demo", 80, [(up.port, {"app": "demo", "version": "v1"})])
        with Proxy(tmp_path, cfg) as proxy:
            request(proxy.port, "/", host="demo")
        assert not list(tmp_path.glob("*.log"))
        out = tmp_path / "stdout.txt"
        port, admin = free_port(), free_port()
        cmd = [sys.executable, "-m", "fastproxy", "run", "-c", str(proxy.config_path), "--listen", f"127.0.0.1:{port}",
               "--admin", f"127.0.0.1:{admin}", "--access-log", "-", "--workers", "2"]  # fmt: skip
        with open(out, "wb") as stdout:
            proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: _answers(port), timeout=15)
            for _ in range(10):
                request(port, "/a", host="demo")
            _lines(out, 11)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
        lines = _lines(out, 11)
        assert sum(m.group(3) == "/a" for m in lines) == 10


def _answers(port: int) -> bool:
    try:
        return request(port, "/", host="demo", timeout=1).status == 200
    except OSError:
        return False


def test_unwritable_access_log_fails_the_start(tmp_path: Path) -> None:
    cfg = service_entry("demo", 80, [])
    proxy = Proxy(tmp_path, cfg, "--access-log", str(tmp_path / "no" / "such" / "dir" / "log"))
    proxy.start(wait=False)
    assert proxy.proc is not None
    assert proxy.proc.wait(10) == 1
    proxy.stop()
    assert "cannot open the access log" in proxy.stderr()
