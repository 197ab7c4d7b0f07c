"""Python cost of one proxied request, without sockets.

Drives the real Downstream / Exchange / UpstreamConnection objects with
in-memory transports that only collect what is written, so the figure is
the interpreter's share of a request (parsing both heads, matching, header
rewriting, pool bookkeeping), i.e. what the kernel and wrk do not explain.

    python bench/micro_pipeline.py [--codec httptools|h11] [-n 20000] [--config routes]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import uvloop

from fastproxy.config import loads
from fastproxy.pipeline.downstream import Downstream
from fastproxy.server import Limits, ProxyState
from fastproxy.upstream.connection import UpstreamConnection

PLAIN = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: up}
spec:
  hosts: [up.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: 9}, labels: {app: up, version: v1}}]
"""

ROUTES = (
    PLAIN
    + """---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: up}
spec:
  host: up
  subsets: [{name: v10, labels: {version: v1}}, {name: v11, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: up}
spec:
  hosts: [up]
  http:
  - name: canary
    match: [{headers: {x-canary: {exact: "true"}}}]
    route:
    - destination: {host: up, subset: v11}
      headers: {request: {set: {User-Agent: Chrome}}, response: {add: {x-canary: "true"}}}
  - name: default
    headers: {response: {add: {X-Envoy: test}}}
    route:
    - {destination: {host: up, subset: v10}, weight: 90}
    - {destination: {host: up, subset: v11}, weight: 10}
"""
)

REQUEST = (
    b"GET /index.html HTTP/1.1\r\nHost: up\r\nUser-Agent: wrk\r\nAccept: */*\r\n"
    b"Accept-Language: en\r\nAccept-Encoding: gzip\r\nCache-Control: no-cache\r\n"
    b"X-Trace: abc\r\nCookie: a=b\r\n\r\n"
)
RESPONSE = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world\n"


class SinkTransport:
    """Collects writes; enough of the transport API for the pipeline."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else None

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--codec", default="httptools")
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("--config", choices=["plain", "routes"], default="plain")
    args = ap.parse_args()
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    result = loads(("bench.yaml", PLAIN if args.config == "plain" else ROUTES))
    assert result.config is not None, result.problems
    state = ProxyState(loop, result.config, Limits(), args.codec, seed=1)
    ds = Downstream(state, "mesh", True)
    ds.connection_made(SinkTransport())
    # One pooled upstream connection per cluster endpoint, reused by every request.
    conns = []
    for cs in state.clusters.values():
        for host in cs.hosts:
            conn = UpstreamConnection(host.pool, state.upstream.new_parser)
            conn.connection_made(SinkTransport())
            host.pool.idle.append(conn)
            conns.append(conn)

    def one() -> None:
        ds.data_received(REQUEST)
        current = ds.current
        conn = current.attempt.conn  # type: ignore[union-attr]
        conn.data_received(RESPONSE)

    for _ in range(2000):
        one()
    # Best of 7 rounds: the minimum is the figure least disturbed by other load.
    per_round = max(1, args.n // 7)
    best = float("inf")
    for _ in range(7):
        # CPU time of this process: time spent descheduled by other load does not count.
        started = time.process_time()
        for _ in range(per_round):
            one()
        best = min(best, (time.process_time() - started) / per_round)
    print(f"{args.codec} {args.config}: {best * 1e6:.1f} us per proxied request (Python share, best of 7)")


if __name__ == "__main__":
    main()
