#!/usr/bin/env python3
"""Load test: fastproxy against nginx as a reverse proxy, same upstream, same machine.

    python bench/load.py [--scenarios plain,routes,...] [--rounds 3] [--duration 10] [--connections 50]

Layout (2 CPUs): the nginx upstream and wrk share CPU 0; the proxy under test
(nginx with one worker, or fastproxy with one worker) gets CPU 1 to itself.
Scenarios (nginx gets an equivalent config for each):
  plain      a ServiceEntry pointing at the upstream, no VirtualService (Istio's default route)
  routes     seed 1.3's header match and header operations, with 1.2's 90/10 split on the default route
  routes100  a 100-route VirtualService; the request matches only the last route (nginx: 100 locations)
  body1k     POST with a 1 KiB body, 1 KiB response body
  body64k    POST with a 64 KiB body, 64 KiB response body
  conn1000   the plain route with 1,000 concurrent keep-alive connections
  noka       the plain route with a new connection per request (Connection: close)
  workers    the plain route with 2 fastproxy workers and with 1, against nginx with 2 workers,
             all free to use both CPUs (which wrk and the upstream also use)
Rounds are interleaved (nginx, fastproxy, nginx, ...) so drift hits both alike;
the table shows medians over rounds.  It also shows the proxy process's CPU time and
C-allocator calls per request (the latter through the LD_PRELOAD shim
bench/malloc_count.c, built here with `cc`), except for the multi-process workers rows.
Needs `wrk`, `nginx` and `taskset` on PATH.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

SCENARIOS = ("plain", "routes", "routes100", "body1k", "body64k", "conn1000", "noka", "workers")
BODY_SIZES = {"body1k": 1024, "body64k": 65536}
MANY_CONNECTIONS = 1000
ROUTES_IN_TABLE = 100

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
worker_processes {workers};
daemon off;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}-error.log warn;
# conn1000: 1,000 clients plus as many upstream connections per worker.
events {{ worker_connections 8192; }}
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
        # body scenarios: files of the body's size.  The static module answers 405 to a
        # POST; error_page turns that into a GET of the same file after nginx has read
        # and discarded the request body, which is the work an upstream has to do.
        location /body/ {{ root {tmp}/www; error_page 405 =200 $uri; }}
        location / {{ return 200 "upstream v1.0\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{v11};
        location / {{ return 200 "upstream v1.1\\n"; }}
    }}
}}
"""
)

PROXY_HTTP = """
http {{
{http_common}
    # keepalive 1024: fastproxy's pool keeps every idle upstream connection, so nginx
    # must not close (and re-open) the ones beyond 64 under conn1000.
    upstream v10 {{ server 127.0.0.1:{v10}; keepalive 1024; }}
    upstream v11 {{ server 127.0.0.1:{v11}; keepalive 1024; }}

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
    server {{
        listen 127.0.0.1:{body};
        # Bodies stay in memory as fastproxy keeps them (it holds up to 1 MiB of a request
        # for retries and streams responses): no temp files on either side.
        client_body_buffer_size 128k;
        proxy_buffer_size 16k;
        proxy_buffers 16 16k;
        proxy_max_temp_file_size 0;
        location / {{ proxy_pass http://v10; }}
    }}
    server {{
        listen 127.0.0.1:{routes100};
{routes100_locations}
    }}
}}
"""

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

FASTPROXY_ROUTES100_HEAD = """\
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata:
  name: r100
spec:
  hosts: [r100.bench.local]
  location: MESH_INTERNAL
  ports:
  - {{number: 80, name: http, protocol: HTTP}}
  resolution: STATIC
  endpoints:
  - address: 127.0.0.1
    ports: {{http: {v10}}}
---
# 99 prefixes the request misses, then the one it matches: every route is tried.
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: r100
spec:
  hosts: [r100.bench.local]
  http:
"""

FASTPROXY_ROUTE = """\
  - name: {name}
    match:
    - uri: {{prefix: {prefix}}}
    headers:
      response:
        set: {{x-route: {name}}}
    route:
    - destination: {{host: r100.bench.local}}
"""

# POST with a fixed body; wrk adds Content-Length.
WRK_BODY_SCRIPT = """\
wrk.method = "POST"
wrk.body = string.rep("a", {size})
wrk.headers["Content-Type"] = "application/octet-stream"
"""


def route_names() -> list[tuple[str, str]]:
    """(name, uri prefix) of the routes100 table: /r0/ .. /r98/ miss a request for /, the last takes it."""
    return [(f"r{i}", f"/r{i}/") for i in range(ROUTES_IN_TABLE - 1)] + [("last", "/")]


def routes100_yaml(ports: dict[str, int]) -> str:
    routes = "".join(FASTPROXY_ROUTE.format(name=n, prefix=p) for n, p in route_names())
    return FASTPROXY_ROUTES100_HEAD.format(**ports) + routes


def routes100_locations() -> str:
    return "\n".join(
        f"        location {p} {{ add_header x-route {n}; proxy_pass http://v10; }}" for n, p in route_names()
    )


@dataclass
class Target:
    scenario: str
    server: str  # "upstream", "nginx", "fastproxy", ... as printed
    port: int
    host: str
    expect_header: tuple[str, str] | None = None
    path: str = "/"
    body: int = 0  # POST a body of this many bytes; the answer must be as long
    script: str | None = None  # wrk Lua script (the POST body)
    connections: int = 0  # 0: --connections
    close: bool = False  # Connection: close on every request
    baseline: bool = False  # the nginx row the scenario's "vs nginx" divides by
    pid: int | None = None  # process whose CPU and allocator calls are measured
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


def pinned(cpu: int | None, cmd: list[str]) -> list[str]:
    """taskset execs the command, so the Popen pid stays the measured process's pid."""
    return ["taskset", "-c", str(cpu), *cmd] if cpu is not None and shutil.which("taskset") else cmd


def start_nginx(
    tmp: Path, name: str, conf: str, cpu: int | None, ports: list[int], env: dict[str, str] | None = None
) -> subprocess.Popen:
    path = tmp / f"{name}.conf"
    path.write_text(conf)
    log = open(tmp / f"{name}-stderr.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        pinned(cpu, ["nginx", "-p", str(tmp), "-c", str(path), "-e", str(tmp / f"{name}-error.log")]),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 10
    if not all(wait_port(p, proc, deadline) for p in ports):
        proc.kill()
        raise SystemExit(f"nginx ({name}) did not start; see {tmp}/{name}-error.log and {name}-stderr.log")
    return proc


def start_fastproxy(
    tmp: Path, cpu: int | None, mesh: int, admin: int, extra: list[str], env_extra: dict[str, str]
) -> tuple[subprocess.Popen, str]:
    log_path = tmp / f"fastproxy-{mesh}.log"
    log = open(log_path, "wb")  # noqa: SIM115
    configs = [arg for name in ("plain", "routes", "routes100") for arg in ("-c", str(tmp / f"fastproxy-{name}.yaml"))]
    cmd = [
        sys.executable, "-m", "fastproxy", "run", *configs,
        "--listen", f"127.0.0.1:{mesh}", "--admin", f"127.0.0.1:{admin}",
        "--bind", "127.0.0.1", "--workers", "1", *extra,
    ]  # fmt: skip
    env = dict(os.environ, **env_extra)
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


def nginx_worker(master: int) -> int | None:
    """The worker of a one-worker nginx: the master only forks it and waits, the worker does the proxying."""
    # The master listens before it forks, so the worker may not exist yet when the port answers.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Fields after the parenthesised command name: state, ppid, ...
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                return int(entry.name)
        time.sleep(0.05)
    return None


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build_malloc_shim(tmp: Path) -> tuple[str | None, str]:
    """(path of the shim, "") or (None, why there are no allocator counts)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None, "no C compiler (cc) to build bench/malloc_count.c"
    so = tmp / "malloc_count.so"
    done = subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-o", str(so), str(REPO / "bench" / "malloc_count.c"), "-ldl"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return None, f"building bench/malloc_count.c failed: {done.stderr.strip()[:200]}"
    (tmp / "mallocs").mkdir()
    return str(so), ""


def malloc_calls(tmp: Path, pid: int) -> float:
    """Allocator calls (malloc, calloc, realloc, aligned) of the process so far (nan without the shim)."""
    try:
        data = (tmp / "mallocs" / str(pid)).read_bytes()
    except OSError:
        return float("nan")
    return float(sum(struct.unpack("4Q", data[:32]))) if len(data) >= 32 else float("nan")


def headers_for(target: Target) -> list[str]:
    extra = ["Connection: close"] if target.close else []
    return [f"Host: {target.host}", *COMMON_HEADERS, *extra]


def sanity(target: Target) -> str | None:
    """One request before loading: the proxy must answer 200 from the upstream (and do the header ops)."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=5)
        conn.putrequest("POST" if target.body else "GET", target.path, skip_host=True, skip_accept_encoding=True)
        for line in headers_for(target):
            name, value = line.split(": ", 1)
            conn.putheader(name, value)
        if target.body:
            conn.putheader("Content-Type", "application/octet-stream")
            conn.putheader("Content-Length", str(target.body))
        conn.endheaders(b"a" * target.body if target.body else None)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
    except OSError as exc:
        return f"request failed: {exc}"
    if resp.status != 200 or not body.startswith(b"upstream v1."):
        return f"answered {resp.status} {body[:60]!r} instead of the upstream's 200"
    if target.body and len(body) != target.body:
        return f"answered {len(body)} bytes, expected {target.body}"
    if target.expect_header:
        name, value = target.expect_header
        if resp.getheader(name) != value:
            return f"response header {name} is {resp.getheader(name)!r}, expected {value!r}"
    return None


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_latency(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def run_wrk(target: Target, duration: int, connections: int, cpu: int, tmp: Path) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{target.connections or connections}", f"-d{duration}s", "--latency"]
    for h in headers_for(target):
        cmd += ["-H", h]
    if target.script:
        cmd += ["-s", target.script]
    cmd.append(f"http://127.0.0.1:{target.port}{target.path}")
    pid = target.pid
    before = (cpu_seconds(pid), malloc_calls(tmp, pid)) if pid else None
    out = subprocess.run(pinned(cpu, cmd), capture_output=True, text=True, timeout=duration + 30).stdout
    after = (cpu_seconds(pid), malloc_calls(tmp, pid)) if pid else None
    result = {
        "rps": float("nan"),
        "p50": float("nan"),
        "p99": float("nan"),
        "errors": 0.0,
        "cpu_us": float("nan"),
        "mallocs": float("nan"),
    }
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
    m = re.search(r"(\d+) requests in", out)
    if before and after and m and int(m.group(1)):
        requests = int(m.group(1))
        result["cpu_us"] = (after[0] - before[0]) / requests * 1e6
        result["mallocs"] = (after[1] - before[1]) / requests
    return result


def fmt(v: float, spec: str) -> str:
    return "n/a" if v != v else format(v, spec)


def raise_fd_limit() -> int:
    """conn1000 needs ~2,000 descriptors in a proxy (clients + upstreams): children inherit the raised limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        want = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft


def parse_scenarios(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in SCENARIOS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown scenario(s) {', '.join(unknown)}; choose from {','.join(SCENARIOS)}")
    return names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--scenarios",
        type=parse_scenarios,
        default=list(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)} (default: all)",
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=50, help=f"wrk connections (conn1000: {MANY_CONNECTIONS})")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load per target first")
    ap.add_argument("--fastproxy-arg", action="append", default=[], help="extra argument for `fastproxy run`")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (configs and logs)")
    ap.add_argument(
        "--metrics-off",
        action="store_true",
        help="also measure a second fastproxy started with --no-metrics (the cost of counting requests)",
    )
    ap.add_argument(
        "--no-mallocs", action="store_true", help="do not preload the allocator-counting shim into the proxies"
    )
    args = ap.parse_args(argv)
    selected = set(args.scenarios)

    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            print(f"bench: `{tool}` not found; apt-get install -y wrk nginx", file=sys.stderr)
            return 1
    ncpu = len(os.sched_getaffinity(0))
    load_cpu, proxy_cpu = (0, 1) if ncpu >= 2 else (0, 0)
    if ncpu < 2:
        print("bench: only one CPU; everything shares it, numbers will be noisy", file=sys.stderr)
    fd_limit = raise_fd_limit()
    if "conn1000" in selected and fd_limit < 4 * MANY_CONNECTIONS:
        print(f"bench: open-file limit {fd_limit} is low for conn1000 (ulimit -n 4096 or more)", file=sys.stderr)

    tmp = Path(tempfile.mkdtemp(prefix="fastproxy-bench-"))
    tmp.chmod(0o755)  # nginx workers may run as nobody when started by root
    port_names = ["v10", "v11", "plain", "routes", "body", "routes100", "mesh", "admin", "mesh2", "admin2"]
    port_names += ["w2_plain", "w2_routes", "w2_body", "w2_routes100", "w2_mesh", "w2_admin", "w1_mesh", "w1_admin"]
    ports = {k: free_port() for k in port_names}
    procs: list[subprocess.Popen] = []
    notes: list[str] = []
    try:
        shim, why_not = (None, "--no-mallocs") if args.no_mallocs else build_malloc_shim(tmp)
        if why_not:
            notes.append(f"mallocs/req: not measured ({why_not})")
            print(f"bench: {notes[-1]}", file=sys.stderr)
        # The shim goes into every proxy (never the upstream or wrk) so its small cost is
        # the same for nginx and fastproxy; --no-mallocs measures without it.
        proxy_env = dict(os.environ, LD_PRELOAD=shim, MALLOC_COUNT_DIR=str(tmp / "mallocs")) if shim else None

        (tmp / "www" / "body").mkdir(parents=True)
        for name, size in BODY_SIZES.items():
            (tmp / "www" / "body" / name).write_bytes((b"upstream v1.0\n" + b"b" * size)[:size])
            (tmp / f"{name}.lua").write_text(WRK_BODY_SCRIPT.format(size=size))

        fmtargs = {"tmp": tmp, **ports}
        up_conf = UPSTREAM_CONF.format(
            name="upstream",
            workers=1,
            http_common=NGINX_HTTP_COMMON.format(name="upstream", **fmtargs),
            **fmtargs,
        )
        procs.append(start_nginx(tmp, "upstream", up_conf, load_cpu, [ports["v10"], ports["v11"]]))
        proxy_ports = ["plain", "routes", "body", "routes100"]
        px_conf = proxy_conf(tmp, "proxy", 1, ports)
        px = start_nginx(tmp, "proxy", px_conf, proxy_cpu, [ports[p] for p in proxy_ports], proxy_env)
        procs.append(px)
        px_worker = nginx_worker(px.pid)
        (tmp / "fastproxy-plain.yaml").write_text(FASTPROXY_PLAIN.format(**ports))
        (tmp / "fastproxy-routes.yaml").write_text(FASTPROXY_ROUTES.format(**ports))
        (tmp / "fastproxy-routes100.yaml").write_text(routes100_yaml(ports))
        env_extra = {k: v for k, v in (proxy_env or {}).items() if k in ("LD_PRELOAD", "MALLOC_COUNT_DIR")}
        fp_proc, fp_error = start_fastproxy(
            tmp, proxy_cpu, ports["mesh"], ports["admin"], args.fastproxy_arg, env_extra
        )
        procs.append(fp_proc)

        up, mesh = "upstream.bench.local", ports["mesh"]

        def pair(scenario: str, nginx_port: int, host: str, **opts: Any) -> list[Target]:
            """The scenario's nginx row (its baseline) and fastproxy row, loaded the same way."""
            return [
                Target(scenario, "nginx", nginx_port, host, baseline=True, pid=px_worker, **opts),
                Target(scenario, "fastproxy", mesh, host, pid=fp_proc.pid, error=fp_error or None, **opts),
            ]

        targets: list[Target] = []
        if "plain" in selected:
            targets.append(Target("direct (no proxy)", "upstream", ports["v10"], up))
            targets += pair("plain", ports["plain"], up)
            if args.metrics_off:
                # Same config and CPU; only one of the two fastproxies is loaded at a time.
                nm_args = [*args.fastproxy_arg, "--no-metrics"]
                nm_proc, nm_error = start_fastproxy(tmp, proxy_cpu, ports["mesh2"], ports["admin2"], nm_args, env_extra)
                procs.append(nm_proc)
                nm = Target(
                    "plain", "fastproxy --no-metrics", ports["mesh2"], up, pid=nm_proc.pid, error=nm_error or None
                )
                targets.append(nm)
        if "routes" in selected:
            targets += pair("routes", ports["routes"], "demoapp:8080", expect_header=("X-Envoy", "test"))
        if "routes100" in selected:
            targets += pair("routes100", ports["routes100"], "r100.bench.local", expect_header=("x-route", "last"))
        for name, size in BODY_SIZES.items():
            if name in selected:
                script = str(tmp / f"{name}.lua")
                targets += pair(name, ports["body"], up, path=f"/body/{name}", body=size, script=script)
        if "conn1000" in selected:
            targets += pair("conn1000", ports["plain"], up, connections=MANY_CONNECTIONS)
        if "noka" in selected:
            targets += pair("noka", ports["plain"], up, close=True)
        if "workers" in selected:
            targets += start_workers_scenario(tmp, ports, args.fastproxy_arg, env_extra, proxy_env, procs)

        for t in targets:
            if t.error is None:
                t.error = sanity(t)
            if t.error is None and args.warmup:
                run_wrk(t, args.warmup, args.connections, load_cpu, tmp)

        for r in range(args.rounds):
            for t in targets:
                if t.error is None:
                    t.runs.append(run_wrk(t, args.duration, args.connections, load_cpu, tmp))
                    last = t.runs[-1]
                    # Per round, so a noisy round (req/s down, cpu us/req not) can be told from a slow proxy.
                    cost = f", {fmt(last['cpu_us'], '.1f')} cpu us/req" if t.pid else ""
                    print(
                        f"round {r + 1}/{args.rounds} {t.scenario:>18} {t.server:>22}: "
                        f"{fmt(last['rps'], '.0f')} req/s{cost}",
                        file=sys.stderr,
                        flush=True,
                    )
        print_table(targets, args, ncpu, notes)
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


def proxy_conf(tmp: Path, name: str, workers: int, ports: dict[str, int], prefix: str = "") -> str:
    """nginx as the reverse proxy; `prefix` picks another set of listening ports (the 2-worker nginx)."""
    fmtargs = {
        "tmp": tmp,
        "name": name,
        "workers": workers,
        "v10": ports["v10"],
        "v11": ports["v11"],
        **{k: ports[prefix + k] for k in ("plain", "routes", "body", "routes100")},
    }
    return (NGINX_COMMON + PROXY_HTTP).format(
        http_common=NGINX_HTTP_COMMON.format(**fmtargs), routes100_locations=routes100_locations(), **fmtargs
    )


def start_workers_scenario(
    tmp: Path,
    ports: dict[str, int],
    fastproxy_args: list[str],
    env_extra: dict[str, str],
    proxy_env: dict[str, str] | None,
    procs: list[subprocess.Popen],
) -> list[Target]:
    """nginx with 2 workers and fastproxy with 2 and with 1, none pinned.

    Pinning 2 workers to CPU 1 would measure one core twice; unpinned, they share CPU 0
    with wrk and the upstream, which is the ceiling the README explains.  The 1-worker
    fastproxy runs unpinned too, so the 2-to-1 ratio compares worker counts alone.
    """
    conf = proxy_conf(tmp, "proxy-w2", 2, ports, prefix="w2_")
    procs.append(start_nginx(tmp, "proxy-w2", conf, None, [ports["w2_plain"]], proxy_env))
    up = "upstream.bench.local"
    targets = [Target("workers", "nginx (2 workers)", ports["w2_plain"], up, baseline=True)]
    for n in (2, 1):
        proc, error = start_fastproxy(
            tmp, None, ports[f"w{n}_mesh"], ports[f"w{n}_admin"], [*fastproxy_args, "--workers", str(n)], env_extra
        )
        procs.append(proc)
        targets.append(Target("workers", f"fastproxy --workers {n}", ports[f"w{n}_mesh"], up, error=error or None))
    return targets


def print_table(targets: list[Target], args: argparse.Namespace, ncpu: int, notes: list[str]) -> None:
    impl = subprocess.run(
        [
            sys.executable,
            "-c",
            "import fastproxy.matcher as m, fastproxy._twins as t; "
            "print(m.IMPLEMENTATION, 'compiled' if all(t.compiled_modules().values()) else 'pure')",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout.strip()
    print(
        f"\nwrk -t1 -c{args.connections} -d{args.duration}s (conn1000: -c{MANY_CONNECTIONS}), "
        f"{len(COMMON_HEADERS) + 1} request headers, median of {args.rounds} interleaved rounds; "
        f"{ncpu} CPUs; fastproxy matcher, pipeline: {impl or 'unknown'}"
    )
    print(
        "cpu us/req: user+system CPU of the proxy process (nginx: its worker) over the wrk run / requests; "
        "mallocs/req: its malloc+calloc+realloc+posix_memalign/aligned_alloc/memalign calls / requests "
        "(not for the workers rows: several processes); cpu vs nginx: nginx's cpu us/req / this row's "
        "(the steadier ratio when nginx is not saturated)"
    )
    for note in notes:
        print(note)
    print()
    columns = ("scenario", "server", "req/s", "p50 ms", "p99 ms", "vs nginx", "cpu us/req", "cpu vs nginx",
               "mallocs/req", "errors")  # fmt: skip
    print("| " + " | ".join(columns) + " |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    baseline = {t.scenario: median(t, "rps") for t in targets if t.baseline and t.runs}
    base_cpu = {t.scenario: median(t, "cpu_us") for t in targets if t.baseline and t.runs and t.pid}
    for t in targets:
        if t.error or not t.runs:
            reason = (t.error or "no runs").replace("|", "/")
            print(f"| {t.scenario} | {t.server} | error | | | | | | | {reason} |")
            continue
        rps = median(t, "rps")
        errors = int(sum(r["errors"] for r in t.runs))
        ratio = f"{rps / baseline[t.scenario]:.2f}x" if t.scenario in baseline else ""
        cpu = fmt(median(t, "cpu_us"), ".1f") if t.pid else ""
        mallocs = fmt(median(t, "mallocs"), ".1f") if t.pid else ""
        own_cpu = median(t, "cpu_us") if t.pid else 0.0
        cpu_ratio = f"{base_cpu[t.scenario] / own_cpu:.2f}x" if t.scenario in base_cpu and own_cpu > 0 else ""
        print(
            f"| {t.scenario} | {t.server} | {fmt(rps, '.0f')} | {fmt(median(t, 'p50'), '.2f')} "
            f"| {fmt(median(t, 'p99'), '.2f')} | {ratio} | {cpu} | {cpu_ratio} | {mallocs} | {errors or ''} |"
        )
    scaling = {t.server: median(t, "rps") for t in targets if t.scenario == "workers" and t.runs}
    if "fastproxy --workers 2" in scaling and "fastproxy --workers 1" in scaling:
        print(
            f"\nworkers: fastproxy --workers 2 / --workers 1 = "
            f"{scaling['fastproxy --workers 2'] / scaling['fastproxy --workers 1']:.2f}x "
            "(proxies unpinned, sharing both CPUs with wrk and the upstream)"
        )


def median(t: Target, key: str) -> float:
    return statistics.median(r[key] for r in t.runs)


if __name__ == "__main__":
    raise SystemExit(main())
