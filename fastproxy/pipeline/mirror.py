"""Fire-and-forget shadow copies (VirtualService mirror / mirrors).

The copy is the request exactly as it went upstream (after rewrites and
header operations, Host unchanged as in Istio >= 1.28), sent once the whole
request was received.  It is never retried, its response is read and
dropped, and nothing about it can delay or fail the primary request.  A cap
on copies in flight protects the proxy from a slow mirror target: beyond
it, copies are dropped and counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastproxy.upstream.connection import ResponseSink
from fastproxy.upstream.pool import ConnectFailure

if TYPE_CHECKING:
    from fastproxy.server import ProxyState
    from fastproxy.upstream.balancer import HostState
    from fastproxy.upstream.connection import UpstreamConnection

# Without a route timeout a mirror copy still gives up after this long, so a
# mirror target that never answers cannot hold slots forever.
MIRROR_TIMEOUT = 30.0


class MirrorAttempt(ResponseSink):
    """Plays the role of an Attempt on a pooled connection, discarding the reply."""

    __slots__ = ("state", "host", "data", "conn", "timer", "done", "task", "keep_alive")

    def __init__(self, state: ProxyState, host: HostState, data: bytes, timeout: float | None) -> None:
        self.state = state
        self.host = host
        self.data = data
        self.conn: UpstreamConnection | None = None
        self.done = False
        self.task: Any = None
        self.keep_alive = False
        state.mirrors_in_flight += 1
        host.active += 1
        self.timer = state.loop.call_later(timeout or MIRROR_TIMEOUT, self._timed_out)
        conn = host.pool.take_idle()
        if conn is not None:
            self._bind(conn)
        else:
            self.task = state.loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            conn = await self.host.pool.connect(self.state.limits.connect_timeout)
        except ConnectFailure:
            self._finish(None, False, "mirror_failed")
            return
        if self.done:
            conn.pool.release(conn, True)
            return
        self._bind(conn)

    def _bind(self, conn: UpstreamConnection) -> None:
        self.conn = conn
        conn.attempt = self
        if self.data.startswith(b"HEAD "):
            conn.parser.expect_no_body()
        conn.writer.write(self.data)

    def _finish(self, conn: UpstreamConnection | None, reusable: bool, counter: str) -> None:
        if self.done:
            return
        self.done = True
        self.timer.cancel()
        self.state.mirrors_in_flight -= 1
        self.state.counters[counter] += 1
        self.host.active -= 1
        if conn is not None:
            conn.attempt = None
            if reusable and not conn.closed:
                conn.pool.release(conn, True)
            else:
                conn.pool.lost_busy()
                conn.abort()

    def _timed_out(self) -> None:
        self._finish(self.conn, False, "mirror_failed")

    # -- ResponseSink (flush and the source pauses: the base's no-ops) -------
    def on_response_head(self, head: Any) -> None:
        self.keep_alive = head.keep_alive

    def on_response_body(self, data: bytes) -> None:
        pass

    def on_response_end(self, conn: UpstreamConnection) -> None:
        self._finish(conn, self.keep_alive, "mirror_completed")

    def on_upstream_failure(self, reason: str, transport: str | None) -> None:
        self._finish(None, False, "mirror_failed")

    def on_upgraded(self, conn: UpstreamConnection, rest: bytes) -> None:
        self._finish(conn, False, "mirror_failed")


def send_mirrors(state: ProxyState, mirrors: tuple[Any, ...], data: bytes, timeout: float | None, service: str) -> None:
    """Send one copy per mirror policy whose percentage rolls in."""
    for mirror in mirrors:
        if mirror.ppm < 1_000_000 and state.rng.randrange(1_000_000) >= mirror.ppm:
            continue
        dest = mirror.destination
        cs = state.clusters.get(dest.cluster_name) if dest.cluster is not None else None
        if cs is None:
            continue  # missing mirror cluster: skipped silently, like Envoy
        if state.mirrors_in_flight >= state.max_mirrors_in_flight:
            state.counters["mirror_dropped"] += 1
            continue
        host = cs.choose()
        if host is None:
            state.counters["mirror_dropped"] += 1
            continue
        state.counters["mirror_sent"] += 1
        state.stats.mirrored(service, dest.cluster_name)
        MirrorAttempt(state, host, data, timeout)
