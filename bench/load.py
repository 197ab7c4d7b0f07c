#!/usr/bin/env python3
"""Load test: fastproxy against nginx as a reverse proxy, same upstream, same machine.

    python bench/load.py [--rounds 3] [--duration 10] [--connections 50]

Layout (2 CPUs): the nginx upstream and wrk share CPU 0; the proxy under test
(nginx with one worker, or fastproxy with one worker) gets CPU 1 to itself.
Scenarios:
  plain   a ServiceEntry pointing at the upstream, no VirtualService (Istio's default route)
  routes  seed 1.3's header match and header operations, with 1.2's 90/10 split on the default route
nginx gets an equivalent config for each scenario (map + split_clients + add_header).
Rounds are interleaved (nginx, fastproxy, nginx, ...) so drift hits both alike;
the table shows medians over rounds.  Needs `wrk`, `nginx` and `taskset` on PATH.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# 8 request headers, Host included (wrk adds no others).
COMMON_HEADERS = [
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) bench/1.0",
    "Accept: text/html,application/xhtml+xml,*/*;q=0.8",
    "Accept-Encoding: gzip, deflate",
    "Accept-Language: en-US,en;q=0.5",
    "Cookie: session=0123456789abcdef",
    "X-B3-Sampled: 0",
    "x-canary: false",
]

NGINX_COMMON = """
worker_processes 1;
daemon off;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}-error.log warn;
events {{ worker_connections 4096; }}
"""

NGINX_HTTP_COMMON = """
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_temp_path {tmp}/{name}-body;
    proxy_temp_path {tmp}/{name}-proxy;
    fastcgi_temp_path {tmp}/{name}-fastcgi;
    uwsgi_temp_path {tmp}/{name}-uwsgi;
    scgi_temp_path {tmp}/{name}-scgi;
"""

UPSTREAM_CONF = (
    NGINX_COMMON
    + """
http {{
{http_common}
    default_type text/plain;
    server {{
        listen 127.0.0.1:{v10};
        location / {{ return 200 "upstream v1.0\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{v11};
        location / {{ return 200 "upstream v1.1\\n"; }}
    }}
}}
"""
)

PROXY_CONF = (
    NGINX_COMMON
    + """
http {{
{http_common}
    upstream v10 {{ server 127.0.0.1:{v10}; keepalive 64; }}
    upstream v11 {{ server 127.0.0.1:{v11}; keepalive 64; }}

    # routes scenario: x-canary: true -> v11 (User-Agent: Chrome, response x-canary: true);
    # otherwise 90/10 split with response header X-Envoy: test.
    split_clients "${{request_id}}" $split {{ 90% v10; * v11; }}
    map $http_x_canary $pool {{ "true" v11; default $split; }}
    map $http_x_canary $ua {{ "true" Chrome; default $http_user_agent; }}
    map $http_x_canary $resp_canary {{ "true" "true"; default ""; }}
    map $http_x_canary $resp_envoy {{ "true" ""; default test; }}

    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;

    server {{
        listen 127.0.0.1:{plain};
        location / {{ proxy_pass http://v10; }}
    }}
    server {{
        listen 127.0.0.1:{routes};
        location / {{
            # a location's own proxy_set_header drops the inherited ones: repeat them
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header User-Agent $ua;
            add_header x-canary $resp_canary;
            add_header X-Envoy $resp_envoy;
            proxy_pass http://$pool;
        }}
    }}
}}
"""
)

FASTPROXY_PLAIN = """\
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata:
  name: upstream
spec:
  hosts: [upstream.bench.local]
  location: MESH_INTERNAL
  ports:
  - {{number: 80, name: http, protocol: HTTP}}
  resolution: STATIC
  endpoints:
  - address: 127.0.0.1
    ports: {{http: {v10}}}
    labels: {{app: upstream, version: v1.0}}
"""

FASTPROXY_ROUTES = """\
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata:
  name: demoapp
spec:
  hosts: [demoapp.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports:
  - {{number: 8080, name: http, protocol: HTTP}}
  resolution: STATIC
  endpoints:
  - address: 127.0.0.1
    ports: {{http: {v10}}}
    labels: {{app: demoapp, version: v1.0}}
  - address: 127.0.0.1
    ports: {{http: {v11}}}
    labels: {{app: demoapp, version: v1.1}}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: demoapp
spec:
  host: demoapp
  subsets:
  - {{name: v10, labels: {{version: v1.0}}}}
  - {{name: v11, labels: {{version: v1.1}}}}
---
# seed 1.3 (headers) with the 1.2 90/10 split on the default route
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: demoapp
spec:
  hosts: [demoapp]
  http:
  - name: canary
    match:
    - headers:
        x-canary:
          exact: "true"
    route:
    - destination: {{host: demoapp, subset: v11}}
      headers:
        request:
          set: {{User-Agent: Chrome}}
        response:
          add: {{x-canary: "true"}}
  - name: default
    headers:
      response:
        add: {{X-Envoy: test}}
    route:
    - destination: {{host: demoapp, subset: v10}}
      weight: 90
    - destination: {{host: demoapp, subset: v11}}
      weight: 10
"""


@dataclass
class Target:
    scenario: str
    server: str  # "upstream", "nginx" or "fastproxy"
    port: int
    host: str
    expect_header: tuple[str, str] | None = None
    error: str | None = None
    runs: list[dict[str, float]] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def pinned(cpu: int, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *cmd] if shutil.which("taskset") else cmd


def start_nginx(tmp: Path, name: str, conf: str, cpu: int, ports: list[int]) -> subprocess.Popen:
    path = tmp / f"{name}.conf"
    path.write_text(conf)
    log = open(tmp / f"{name}-stderr.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        pinned(cpu, ["nginx", "-p", str(tmp), "-c", str(path), "-e", str(tmp / f"{name}-error.log")]),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    if not all(wait_port(p, proc, deadline) for p in ports):
        proc.kill()
        raise SystemExit(f"nginx ({name}) did not start; see {tmp}/{name}-error.log and {name}-stderr.log")
    return proc


def start_fastproxy(
    tmp: Path, cpu: int, mesh: int, admin: int, extra: list[str]
) -> tuple[subprocess.Popen, str]:
    log_path = tmp / f"fastproxy-{mesh}.log"
    log = open(log_path, "wb")  # noqa: SIM115
    cmd = [
        sys.executable, "-m", "fastproxy", "run",
        "-c", str(tmp / "fastproxy-plain.yaml"), "-c", str(tmp / "fastproxy-routes.yaml"),
        "--listen", f"127.0.0.1:{mesh}", "--admin", f"127.0.0.1:{admin}",
        "--bind", "127.0.0.1", "--workers", "1", *extra,
    ]  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(pinned(cpu, cmd), stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc, f"fastproxy exited with code {proc.returncode}: {tail(log_path)}"
        try:
            conn = http.client.HTTPConnection("127.0.0.1", admin, timeout=1)
            conn.request("GET", "/ready")
            if conn.getresponse().status == 200:
                return proc, ""
        except OSError:
            pass
        time.sleep(0.1)
    return proc, f"fastproxy not ready on /ready within 20 s: {tail(log_path)}"


def tail(path: Path, n: int = 3) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-n:])[:300]


def headers_for(target: Target) -> list[str]:
    return [f"Host: {target.host}", *COMMON_HEADERS]


def sanity(target: Target) -> str | None:
    """One request before loading: the proxy must answer 200 from the upstream (and do the header ops)."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=5)
        conn.putrequest("GET", "/", skip_host=True, skip_accept_encoding=True)
        for line in headers_for(target):
            name, value = line.split(": ", 1)
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
    except OSError as exc:
        return f"request failed: {exc}"
    if resp.status != 200 or not body.startswith(b"upstream v1."):
        return f"answered {resp.status} {body[:60]!r} instead of the upstream's 200"
    if target.expect_header:
        name, value = target.expect_header
        if resp.getheader(name) != value:
            return f"response header {name} is {resp.getheader(name)!r}, expected {value!r}"
    return None


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_latency(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def run_wrk(target: Target, duration: int, connections: int, cpu: int) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    for h in headers_for(target):
        cmd += ["-H", h]
    cmd.append(f"http://127.0.0.1:{target.port}/")
    out = subprocess.run(pinned(cpu, cmd), capture_output=True, text=True, timeout=duration + 30).stdout
    result = {"rps": float("nan"), "p50": float("nan"), "p99": float("nan"), "errors": 0.0}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        result["rps"] = float(m.group(1))
    if m := re.search(r"^\s+50%\s+(\S+)", out, re.M):
        result["p50"] = parse_latency(m.group(1))
    if m := re.search(r"^\s+99%\s+(\S+)", out, re.M):
        result["p99"] = parse_latency(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        result["errors"] += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        result["errors"] += sum(int(g) for g in m.groups())
    return result


def fmt(v: float, spec: str) -> str:
    return "n/a" if v != v else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load per target first")
    ap.add_argument("--fastproxy-arg", action="append", default=[], help="extra argument for `fastproxy run`")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (configs and logs)")
    ap.add_argument(
        "--metrics-off",
        action="store_true",
        help="also measure a second fastproxy started with --no-metrics (the cost of counting requests)",
    )
    args = ap.parse_args(argv)

    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            print(f"bench: `{tool}` not found; apt-get install -y wrk nginx", file=sys.stderr)
            return 1
    ncpu = len(os.sched_getaffinity(0))
    load_cpu, proxy_cpu = (0, 1) if ncpu >= 2 else (0, 0)
    if ncpu < 2:
        print("bench: only one CPU; everything shares it, numbers will be noisy", file=sys.stderr)

    tmp = Path(tempfile.mkdtemp(prefix="fastproxy-bench-"))
    tmp.chmod(0o755)  # nginx workers may run as nobody when started by root
    ports = {k: free_port() for k in ("v10", "v11", "plain", "routes", "mesh", "admin", "mesh2", "admin2")}
    procs: list[subprocess.Popen] = []
    try:
        fmtargs = {"tmp": tmp, **ports}
        up_conf = UPSTREAM_CONF.format(
            name="upstream", http_common=NGINX_HTTP_COMMON.format(name="upstream", **fmtargs), **fmtargs
        )
        px_conf = PROXY_CONF.format(
            name="proxy", http_common=NGINX_HTTP_COMMON.format(name="proxy", **fmtargs), **fmtargs
        )
        procs.append(start_nginx(tmp, "upstream", up_conf, load_cpu, [ports["v10"], ports["v11"]]))
        procs.append(start_nginx(tmp, "proxy", px_conf, proxy_cpu, [ports["plain"], ports["routes"]]))
        (tmp / "fastproxy-plain.yaml").write_text(FASTPROXY_PLAIN.format(**ports))
        (tmp / "fastproxy-routes.yaml").write_text(FASTPROXY_ROUTES.format(**ports))
        fp_proc, fp_error = start_fastproxy(tmp, proxy_cpu, ports["mesh"], ports["admin"], args.fastproxy_arg)
        procs.append(fp_proc)

        envoy_like = ("X-Envoy", "test")
        targets = [
            Target("direct (no proxy)", "upstream", ports["v10"], "upstream.bench.local"),
            Target("plain", "nginx", ports["plain"], "upstream.bench.local"),
            Target("plain", "fastproxy", ports["mesh"], "upstream.bench.local", error=fp_error or None),
            Target("routes", "nginx", ports["routes"], "demoapp:8080", envoy_like),
            Target("routes", "fastproxy", ports["mesh"], "demoapp:8080", envoy_like, error=fp_error or None),
        ]
        if args.metrics_off:
            # Same config and CPU; only one of the two fastproxies is loaded at a time.
            nm_proc, nm_error = start_fastproxy(
                tmp, proxy_cpu, ports["mesh2"], ports["admin2"], [*args.fastproxy_arg, "--no-metrics"]
            )
            procs.append(nm_proc)
            targets.insert(
                3,
                Target(
                    "plain", "fastproxy --no-metrics", ports["mesh2"], "upstream.bench.local", error=nm_error or None
                ),
            )
        for t in targets:
            if t.error is None:
                t.error = sanity(t)
            if t.error is None and args.warmup:
                run_wrk(t, args.warmup, args.connections, load_cpu)

        for r in range(args.rounds):
            for t in targets:
                if t.error is None:
                    t.runs.append(run_wrk(t, args.duration, args.connections, load_cpu))
                    last = t.runs[-1]
                    print(
                        f"round {r + 1}/{args.rounds} {t.scenario:>18} {t.server:>9}: "
                        f"{fmt(last['rps'], '.0f')} req/s",
                        file=sys.stderr,
                        flush=True,
                    )
        print_table(targets, args, ncpu)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM if "fastproxy" in " ".join(map(str, p.args)) else signal.SIGQUIT)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        if args.keep:
            print(f"bench: configs and logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def print_table(targets: list[Target], args: argparse.Namespace, ncpu: int) -> None:
    impl = subprocess.run(
        [sys.executable, "-c", "import fastproxy.matcher as m; print(m.IMPLEMENTATION)"],
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout.strip()
    print(
        f"\nwrk -t1 -c{args.connections} -d{args.duration}s, {len(COMMON_HEADERS) + 1} request headers, "
        f"median of {args.rounds} interleaved rounds; {ncpu} CPUs; fastproxy matcher: {impl or 'unknown'}\n"
    )
    print("| scenario | server | req/s | p50 ms | p99 ms | vs nginx | errors |")
    print("|---|---|---:|---:|---:|---:|---|")
    nginx_rps = {
        t.scenario: statistics.median(r["rps"] for r in t.runs)
        for t in targets
        if t.server == "nginx" and t.runs
    }
    for t in targets:
        if t.error or not t.runs:
            reason = (t.error or "no runs").replace("|", "/")
            print(f"| {t.scenario} | {t.server} | error | | | | {reason} |")
            continue
        rps = statistics.median(r["rps"] for r in t.runs)
        p50 = statistics.median(r["p50"] for r in t.runs)
        p99 = statistics.median(r["p99"] for r in t.runs)
        errors = int(sum(r["errors"] for r in t.runs))
        ratio = f"{rps / nginx_rps[t.scenario]:.2f}x" if t.scenario in nginx_rps else ""
        print(
            f"| {t.scenario} | {t.server} | {fmt(rps, '.0f')} | {fmt(p50, '.2f')} | {fmt(p99, '.2f')} "
            f"| {ratio} | {errors or ''} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
