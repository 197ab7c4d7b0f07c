"""`fastproxy explain` on the seed configs: exact output lines."""

from __future__ import annotations

import subprocess
import sys

from support import REPO

SEED = REPO / "examples" / "seed"
VHOST = (
    "virtual host: demoapp.default.svc.cluster.local:8080 (domains: demoapp.default.svc.cluster.local, demoapp, "
    "demoapp.default.svc, demoapp.default, demoapp.default.svc.cluster.local.)"
)
DEFAULT_RETRIES = "  retries: 2 on connect-failure,refused-stream,retriable-status-codes,cancelled,unavailable"
V10 = (
    "outbound|8080|v10|demoapp.default.svc.cluster.local -> "
    "127.0.0.1:18081 (demoapp v1.0), 127.0.0.1:18082 (demoapp v1.0)"
)
V11 = (
    "outbound|8080|v11|demoapp.default.svc.cluster.local -> "
    "127.0.0.1:18083 (demoapp v1.1), 127.0.0.1:18084 (demoapp v1.1)"
)


def explain(section: str, *args: str) -> tuple[int, list[str], str]:
    cmd = [sys.executable, "-m", "fastproxy", "explain", "-c", str(SEED / "services"), "-c", str(SEED / section)]
    done = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=30, check=False)
    return done.returncode, done.stdout.splitlines(), done.stderr


def test_headers_section_canary_header() -> None:
    code, lines, _ = explain("1.3-headers", "GET http://demoapp:8080/canary", "-H", "x-canary: true")
    assert code == 0
    assert lines == [
        "request: GET http://demoapp:8080/canary",
        "  header x-canary: true",
        "listener: mesh (sidecar outbound), Host port 8080",
        VHOST,
        "route 1/2 canary (VirtualService demoapp.default): MATCH",
        '    ok   header x-canary exact "true": request has "true"',
        "selected route: canary",
        "  timeout: none",
        DEFAULT_RETRIES,
        "  destinations:",
        f"    100 % {V11}",
        "      request headers: set user-agent: Chrome",
        "      response headers: add x-canary: true",
    ]


def test_headers_section_without_the_header_says_why() -> None:
    code, lines, _ = explain("1.3-headers", "GET http://demoapp:8080/canary", "-H", "x-canary: false")
    assert code == 0
    assert lines[4:8] == [
        "route 1/2 canary (VirtualService demoapp.default): no match",
        '    FAIL header x-canary exact "true": request has "false"',
        "route 2/2 default (VirtualService demoapp.default): MATCH",
        "    ok   no conditions (matches every request)",
    ]
    assert lines[-3:] == ["  destinations:", f"    100 % {V10}", "      response headers: add x-envoy: test"]


def test_split_fault_redirect_and_mirror() -> None:
    _, lines, _ = explain("1.2-traffic-split", "GET http://demoapp:8080/")
    assert lines[-3:] == ["  destinations:", f"    90 % {V10}", f"    10 % {V11}"]
    _, lines, _ = explain("1.4-fault-injection", "GET http://demoapp:8080/canary/x")
    assert lines[4:9] == [
        '    ok   uri prefix "/canary": request has "/canary/x"',
        "selected route: canary",
        "  fault abort: HTTP 555 for 20 % of requests (flag FI)",
        "  rewrite: path /canary/x -> //x",
        "  timeout: none",
    ]
    _, lines, _ = explain("1.1-redirect-rewrite", "GET http://demoapp:8080/backend")
    assert lines[3:] == [
        "route 1/3 rewrite (VirtualService demoapp.default): no match",
        '    FAIL uri prefix "/canary": request has "/backend"',
        "route 2/3 redirect (VirtualService demoapp.default): MATCH",
        '    ok   uri prefix "/backend": request has "/backend"',
        "selected route: redirect",
        "  redirect: 301 location http://backend:8082/",
    ]
    _, lines, _ = explain("1.6-mirror", "GET http://demoapp:8080/")
    assert "  mirror: 100 % of requests to outbound|8080|v11|demoapp.default.svc.cluster.local" in lines


def test_gateway_and_unknown_host() -> None:
    code, lines, _ = explain(
        "1.2-traffic-split", "GET http://fe.toptops.top/", "--gateway", "istio-system/proxy-gateway"
    )
    assert code == 0
    assert lines[:4] == [
        "request: GET http://fe.toptops.top/",
        "listener: gateway istio-system/proxy-gateway:18080",
        "virtual host: fe.toptops.top:18080 (domains: fe.toptops.top)",
        "route 1/1 default (VirtualService proxy.default): MATCH",
    ]
    assert lines[-1] == "    100 % outbound|80||proxy.default.svc.cluster.local -> 127.0.0.1:18071 (proxy v0.1)"
    _, lines, _ = explain("1.2-traffic-split", "GET http://nowhere/")
    assert lines[-2:] == ["virtual host: none for nowhere:80", "result: 404 NR (no virtual host)"]
    code, _, err = explain("1.2-traffic-split", "GET http://x/", "--gateway", "default/nope")
    assert code == 1 and err.strip() == "fastproxy explain: no HTTP server of Gateway default/nope"
