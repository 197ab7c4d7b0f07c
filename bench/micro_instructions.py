"""Instructions per proxied request: micro_pipeline.py, or with --server the
real `fastproxy run`, under valgrind's callgrind.

Timings on a shared 2-vCPU VM move by 10-15 % between runs; instruction counts
do not, so this is the figure to compare two builds by.  Runs twice (SHORT and
LONG requests) and divides the difference in instructions by the difference in
requests, which cancels start-up, imports and config compilation.

    python bench/micro_instructions.py [--config plain|routes] [--server] [--top 30]

Without --server: the pipeline alone, on in-memory transports (no event loop,
no sockets).  With --server: one `fastproxy run` worker on uvloop, an nginx
upstream (bench/load.py's) and a client sending load.py's 8-header GETs over
10 keep-alive connections; this counts uvloop, the socket writes and the
parsers' callbacks too.  Needs valgrind (apt-get install -y valgrind), and
nginx for --server; about a minute per run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHORT, LONG = 1000, 5000


def run_server(n: int, config: str, out: Path, tmp: Path, upstream_port: int) -> None:
    """`fastproxy run` under callgrind, answering n requests from the client below, then SIGTERM."""
    import load  # bench/load.py: the same configs as the load test

    ports = {"v10": upstream_port, "v11": upstream_port}
    cfg = tmp / f"{config}.yaml"
    cfg.write_text((load.FASTPROXY_PLAIN if config == "plain" else load.FASTPROXY_ROUTES).format(**ports))
    mesh, admin = load.free_port(), load.free_port()
    cmd = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, "-m", "fastproxy", "run", "-c", str(cfg), "--listen", f"127.0.0.1:{mesh}",
        "--admin", f"127.0.0.1:{admin}", "--workers", "1",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 120
        if not load.wait_port(mesh, proc, deadline):
            raise SystemExit("fastproxy under valgrind did not start")
        host = "upstream.bench.local" if config == "plain" else "demoapp:8080"
        head = "".join(f"{h}\r\n" for h in load.COMMON_HEADERS)
        request = f"GET / HTTP/1.1\r\nHost: {host}\r\n{head}\r\n".encode()
        conns = [socket.create_connection(("127.0.0.1", mesh)) for _ in range(10)]
        for i in range(n):
            sock = conns[i % len(conns)]
            sock.sendall(request)
            buf = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    raise SystemExit("fastproxy closed a connection")
                buf += chunk
                end = buf.find(b"\r\n\r\n")
                if end >= 0:
                    length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", buf[: end + 2]).group(1))
                    if len(buf) >= end + 4 + length:
                        break
            if not buf.startswith(b"HTTP/1.1 200 "):
                raise SystemExit(f"unexpected response: {buf[:100]!r}")
        for sock in conns:
            sock.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)


def run(n: int, config: str, out: Path) -> None:
    cmd = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, str(HERE / "micro_pipeline.py"), "-n", str(n), "--config", config,
    ]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def server_counts(tmp: Path, config: str, short: Path, long: Path) -> tuple[Counter[str], Counter[str]]:
    import load  # bench/ is this script's directory: on sys.path

    up = load.free_port()
    fmtargs = {"tmp": tmp, "v10": up, "v11": load.free_port()}
    conf = load.UPSTREAM_CONF.format(
        name="upstream", workers=1, http_common=load.NGINX_HTTP_COMMON.format(name="upstream", **fmtargs), **fmtargs
    )
    nginx = load.start_nginx(tmp, "upstream", conf, None, [up, fmtargs["v11"]])
    try:
        run_server(SHORT, config, short, tmp, up)
        run_server(LONG, config, long, tmp, up)
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(15)
    return per_function(short), per_function(long)


def per_function(path: Path) -> Counter[str]:
    """Exclusive instruction counts by function name, from callgrind_annotate."""
    text = subprocess.run(
        ["callgrind_annotate", "--threshold=100", "--inclusive=no", "--tree=none", "--auto=no", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*?)(?: \[.*\])?$", line)
        if m and "PROGRAM TOTALS" not in line:
            counts[m.group(2).rsplit(":", 1)[-1]] += int(m.group(1).replace(",", ""))
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=["plain", "routes"], default="plain")
    ap.add_argument("--top", type=int, default=0, help="also list the N costliest functions per request")
    ap.add_argument("--server", action="store_true", help="the real server on uvloop with an nginx upstream")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind not found: apt-get install -y valgrind", file=sys.stderr)
        return 2
    if args.server and shutil.which("nginx") is None:
        print("nginx not found: apt-get install -y nginx", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        short, long = Path(tmp, "short.out"), Path(tmp, "long.out")
        # No randomised str hashing: the same dict probes in both runs.
        os.environ["PYTHONHASHSEED"] = "0"
        if args.server:
            a, b = server_counts(Path(tmp), args.config, short, long)
        else:
            run(SHORT, args.config, short)
            run(LONG, args.config, long)
            a, b = per_function(short), per_function(long)
    diff = {name: (b[name] - a.get(name, 0)) / (LONG - SHORT) for name in b}
    total = sum(diff.values())
    what = "`fastproxy run`, requests" if args.server else "micro_pipeline -n"
    print(
        f"{args.config}{' --server' if args.server else ''}: {total:,.0f} instructions per proxied request "
        f"(callgrind, {what} {LONG} minus {SHORT})"
    )
    for name, ir in sorted(diff.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{ir:9,.0f}  {100 * ir / total:5.1f} %  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
