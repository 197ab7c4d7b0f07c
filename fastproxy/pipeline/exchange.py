"""One request end to end: match -> fault -> route action -> attempts -> reply.

Everything here runs in protocol callbacks and loop timers; a plain proxied
request creates no coroutine or task (only opening a new upstream connection
does).  An Exchange owns the request; each try upstream is one Attempt, which
owns its pooled connection and its per-try timer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:  # a build dependency only: absent, this module runs as its pure twin
    import cython

    _COMPILED = cython.compiled
except ImportError:
    _COMPILED = False
from fastproxy import table
from fastproxy.codec.framing import CONNECTION_COMMON
from fastproxy.matcher import pick
from fastproxy.pipeline import replies
from fastproxy.pipeline.headers import RESPONSE_SKIP, apply_ops, render
from fastproxy.pipeline.heads import (
    FIRST_ATTEMPT,
    HAS_REQUEST_ID,
    HAS_XFP,
    request_block_of,
    request_kept,
    response_block,
    response_head,
    upstream_head,
)
from fastproxy.pipeline.mirror import send_mirrors
from fastproxy.pipeline.replies import DATE, content_length_line, status_line
from fastproxy.pipeline.retry import (
    CONNECT_FAILURES,
    backoff,
    retry_on_per_try_timeout,
    retry_on_reset,
    retry_on_response,
)
from fastproxy.pipeline.rewrite import normalize_path, redirect_location, rewrite_path
from fastproxy.upstream.connection import ResponseSink
from fastproxy.upstream.pool import ConnectFailure

if TYPE_CHECKING:
    from fastproxy.pipeline.downstream import Downstream
    from fastproxy.upstream.balancer import ClusterState, HostState
    from fastproxy.upstream.connection import UpstreamConnection

# Request bodies up to this size are kept for retries and mirroring (CONTRACT.md).
REPLAY_LIMIT = 1 << 20

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_NO_NAMES: frozenset[bytes] = frozenset()
# gRPC status names (google.rpc.Code) as Istio's grpcStatus takes them.
_GRPC_CODES = {
    name: i
    for i, name in enumerate(
        (
            "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
            "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
            "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
        )
    )
}  # fmt: skip
_ACTION_ROUTE = table.ACTION_ROUTE  # module constants the compiled build types (exchange.pxd)
_RETRY_RETRIABLE_HEADERS = table.RETRY_RETRIABLE_HEADERS
_HAS_XFP = HAS_XFP
_HAS_REQUEST_ID = HAS_REQUEST_ID
_CHUNK_END = b"0\r\n\r\n"
_NO_EXTRA: list[tuple[bytes, bytes]] = []  # never appended to: upstream_head only reads it
_NO_BODY: list[bytes] = []  # never appended to (Exchange.on_body swaps in a list of its own)
# Service-time lines for the usual values, formatted once instead of per response.
_SERVICE_TIME = tuple(b"x-envoy-upstream-service-time: %d\r\n" % n for n in range(256))
_ATTEMPT_COUNT = tuple(b"x-envoy-attempt-count: %d\r\n\r\n" % n for n in range(8))


def split_authority(authority: bytes | None, default_port: int) -> tuple[bytes | None, int]:
    """(lower-case host, port) from a Host value; (None, 0) when unusable."""
    if not authority:
        return None, 0
    if authority[0] == 0x5B:  # "[v6]:port"
        end = authority.find(b"]")
        if end < 0:
            return None, 0
        host = authority[: end + 1]
        rest = authority[end + 1 :]
        if not rest:
            return host.lower(), default_port
        if rest[0] != 0x3A or not rest[1:].isdigit():
            return None, 0
        return host.lower(), int(rest[1:])
    colon = authority.rfind(b":")
    if colon < 0:
        return authority.lower(), default_port
    port = authority[colon + 1 :]
    if not port.isdigit() or len(port) > 5:
        return None, 0
    return authority[:colon].lower(), int(port)


_CONNECTION_OPTIONS = frozenset({b"close", b"keep-alive", b"upgrade"})


def _nominated(value: bytes, seen: frozenset[bytes] | None) -> frozenset[bytes] | None:
    if value in CONNECTION_COMMON:  # keep-alive, close, upgrade: nominate nothing
        return seen
    names = {t.strip().lower() for t in value.split(b",")} - _CONNECTION_OPTIONS - {b""}
    if not names:
        return seen
    return frozenset(names) | seen if seen else frozenset(names)


def _string_match(sm: table.StringMatch, value: bytes) -> bool:
    if sm.kind == table.EXACT:
        return value == sm.value or sm.value == b"*"
    if sm.kind == table.PREFIX:
        return value.startswith(sm.value)
    if sm.kind == table.REGEX:
        return sm.regex is not None and sm.regex.fullmatch(value) is not None
    return True


class Attempt(ResponseSink):
    """One try upstream: its endpoint, its connection and its per-try timer."""

    __slots__ = ("ex", "host", "number", "conn", "reused", "got_response", "timer", "task", "cancelled", "fresh")

    # Made as Attempt.__new__(Attempt) and setup(): compiled, a C call with no
    # argument tuple to parse, once per try.
    def setup(self, ex: Exchange, host: HostState, number: int, fresh: bool) -> None:
        self.ex = ex
        self.host = host
        self.number = number
        self.conn: UpstreamConnection | None = None
        self.reused = False
        self.got_response = False
        self.timer: Any = None
        self.task: Any = None
        self.cancelled = False
        self.fresh = fresh  # must not reuse a pooled connection (stale-connection retry)
        host.active += 1

    def start(self) -> None:
        host = self.host
        if not self.fresh:
            conn = host.pool.take_idle()
            if conn is not None:
                self.bind(conn, True)
                return
        cs = self.ex.cs
        limits = cs.limits
        if cs.connections >= limits.max_connections:
            # HTTP/1.1 at the connection limit: wait for a connection, unless
            # the queue of waiting requests is full too (Envoy's overflow).
            if len(cs.pending) >= limits.http1_max_pending:
                self.ex.overflow(self)
                return
            cs.pending.append(self)
            return
        cs.connections += 1
        self.task = self.ex.loop.create_task(self._connect(cs))

    async def _connect(self, cs: ClusterState) -> None:
        ex = self.ex
        try:
            conn = await self.host.pool.connect(cs.limits.connect_timeout)
        except ConnectFailure as failure:
            self.task = None
            cs.connections -= 1
            cs.wake()
            if not self.cancelled:
                ex.attempt_failed(self, failure.reason, failure.transport)
            return
        conn.owner = cs
        self.task = None
        if self.cancelled:
            conn.pool.release(conn, True)
            cs.wake()
            return
        self.bind(conn, False)

    def bind(self, conn: UpstreamConnection, reused: bool) -> None:
        ex = self.ex
        self.conn = conn
        self.reused = reused
        conn.attempt = self
        conn.requests += 1
        head = ex.head
        if head.method == b"HEAD":
            conn.parser.expect_no_body()
        number = self.number
        up = ex.up_head  # built for a first attempt
        if number != 1:
            count = _ATTEMPT_COUNT[number] if number < 8 else b"x-envoy-attempt-count: %d\r\n\r\n" % number
            up = up[: len(up) - len(FIRST_ATTEMPT)] + count
        chunks = ex.body_buf
        if not chunks and not ex.chunked_up:
            # The common request: a head alone.
            if ex.request_complete:
                self.arm_per_try_timer()
            conn.writer.write(up)
            self._after_write(conn)
            return
        out = [up]
        if chunks:
            if ex.chunked_up:
                for chunk in chunks:
                    out.append(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            else:
                out.extend(chunks)
        if ex.request_complete:
            if ex.chunked_up:
                out.append(_CHUNK_END)
            self.arm_per_try_timer()
        conn.writer.write(b"".join(out))
        if ex.body_size > REPLAY_LIMIT:
            ex.body_buf = None
        self._after_write(conn)

    def _after_write(self, conn: UpstreamConnection) -> None:
        ex = self.ex
        ds = ex.ds
        if ds.write_paused:
            conn.transport.pause_reading()
        if ex.waiting_bind:
            ex.waiting_bind = False
            ds.resume(4)

    def arm_per_try_timer(self) -> None:
        ptt = self.ex.route.retry.per_try_timeout
        if ptt is not None and self.timer is None:
            route_timeout = self.ex.route.timeout
            if route_timeout is None or ptt < route_timeout:
                self.timer = self.ex.loop.call_later(ptt, self.on_per_try_timeout)

    def send_body(self, data: bytes) -> None:
        conn = self.conn
        if conn is None:
            return
        if self.ex.chunked_up:
            conn.writer.write(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            conn.writer.write(data)

    def release(self, reusable: bool) -> None:
        """Give the connection back (or drop it), stop timers; idempotent."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        conn = self.conn
        if conn is not None:
            self.conn = None
            conn.attempt = None
            ex = self.ex
            per_conn = ex.cs.limits.max_requests_per_connection
            if reusable and not conn.closed and not (per_conn and conn.requests >= per_conn):
                if ex.ds.write_paused:
                    conn.transport.resume_reading()
                conn.pool.release(conn, True)
                if ex.cs.pending:
                    ex.cs.wake()
            else:
                conn.pool.lost_busy()
                conn.abort()
        if self.task is not None:
            self.cancelled = True
            self.task = None
        if self.host is not None:
            self.host.active -= 1
            self.host = None  # type: ignore[assignment]

    # -- from the upstream connection ------------------------------------
    def pause_source(self) -> None:
        # The upstream socket is full: stop reading the request from the client.
        self.ex.ds.pause(2)

    def resume_source(self) -> None:
        self.ex.ds.resume(2)

    def on_upstream_failure(self, reason: str, transport: str | None) -> None:
        self.ex.attempt_failed(self, reason, transport)

    def on_per_try_timeout(self) -> None:
        self.timer = None
        self.ex.per_try_timed_out(self)

    def on_response_head(self, head: Any) -> None:
        self.got_response = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.ex.response_head(self, head)

    def on_response_body(self, data: bytes) -> None:
        ex = self.ex
        if ex.chunked_down:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        out = ex.out
        if out is not None:
            out.append(data)
        else:
            ex.ds.writer.write(data)
        ex.bytes_sent += len(data)

    def flush(self) -> None:
        """End of one upstream read: send what it produced to the client at once."""
        ex = self.ex
        out = ex.out
        if out is not None:
            ex.out = None
            ex.ds.writer.writelines(out)

    def on_response_end(self, conn: UpstreamConnection) -> None:
        ex = self.ex
        # The connection already forgot us; release() puts it back in the pool.
        self.conn = conn
        # An upgrade request answered without a 101 leaves the connection in
        # an unknown state for the upstream: never reuse it.
        self.release(ex.upstream_keep_alive and ex.request_complete and not ex.head.upgrade)
        ex.response_complete()

    def on_upgraded(self, conn: UpstreamConnection, rest: bytes) -> None:
        ex = self.ex
        self.conn = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        conn.pool.lost_busy()
        conn.pool.discard(conn)
        self.host.active -= 1
        self.host = None  # type: ignore[assignment]
        if ex.tunnel_rest:
            conn.writer.write(ex.tunnel_rest)
            ex.tunnel_rest = b""
        ex.ds.start_tunnel(conn, rest)
        ex.upgraded()


class Exchange:
    __slots__ = (
        "ds",
        "head",
        "loop",
        "state",
        "route",
        "dest",
        "cs",
        "up_head",
        "chunked_up",
        "chunked_down",
        "body_buf",
        "body_size",
        "request_complete",
        "complete_time",
        "routing",
        "attempt",
        "tries",
        "retries_left",
        "retried",
        "tried",
        "response_started",
        "upstream_keep_alive",
        "close_after",
        "done",
        "route_timer",
        "backoff_timer",
        "delay_timer",
        "waiting_bind",
        "tunnel_rest",
        "status",
        "flags",
        "bytes_sent",
        "start",
        "stale_retry_used",
        "authority",
        "path",
        "out",
        "endpoint",
        "service_time",
        "counted",
        "retry_slot",
        "hash_key",
        "extra_response",
    )

    # Made as Exchange.__new__(Exchange) and setup() (Downstream): compiled, a
    # C call with no argument tuple to parse, once per request.
    def setup(self, ds: Downstream, head: Any) -> None:
        self.ds = ds
        self.head = head
        # Read through the typed attributes: compiled, the parameters are plain objects.
        self.loop = self.ds.loop
        self.state = self.ds.state
        self.route: table.Route | None = None
        self.dest: table.Destination | None = None
        self.cs: ClusterState = None  # type: ignore[assignment]
        self.up_head = b""
        self.chunked_up = self.head.chunked
        self.chunked_down = False
        # Kept for a retry or a mirror; a request without a body shares one empty list.
        self.body_buf: list[bytes] | None = [] if head.chunked or head.content_length > 0 else _NO_BODY
        self.body_size = 0
        self.request_complete = False
        self.complete_time = 0.0
        self.routing = False
        self.attempt: Attempt | None = None
        self.tries = 0
        self.retries_left = 0
        self.retried = False
        self.tried: tuple[HostState, ...] = ()
        self.response_started = False
        self.upstream_keep_alive = False
        self.close_after = not self.head.keep_alive
        self.done = False
        self.route_timer: Any = None
        self.backoff_timer: Any = None
        self.delay_timer: Any = None
        self.waiting_bind = False
        self.tunnel_rest = b""
        self.status = 0
        self.flags = ""
        self.bytes_sent = 0
        self.start = self.state.now()
        self.stale_retry_used = False
        self.authority = b""
        self.path = b""
        self.out: list[bytes] | None = None
        # The endpoint of the last attempt, and ms from request end to its response head.
        self.endpoint: table.Endpoint | None = None
        self.service_time = -1
        self.counted = False  # holds a slot in the cluster's active-request count
        self.retry_slot = False  # holds a slot in the cluster's retry count
        self.hash_key: bytes | None = None
        # Response headers the proxy adds itself (CORS, a generated hash cookie).
        self.extra_response: list[tuple[bytes, bytes]] | None = None

    # -- request side (called by Downstream) -----------------------------
    def begin(self) -> None:
        head = self.head
        ds = self.ds
        authority = head.authority if head.authority is not None else head.host
        cached = ds.vhost_cache
        if cached is not None and cached[0] is self.state.listeners and cached[1] == authority:
            # Keep-alive clients send the same Host on every request: the virtual
            # host found for the previous one holds until a reload swaps the tables.
            self.authority = authority  # type: ignore[assignment]
            self._match(cached[2], cached[3], cached[4])
            return
        listener = ds.listener()
        self.authority = authority or b""
        host, port = split_authority(authority, 80)
        if listener is None:
            self.local(404, flags="NR")
            return
        if host is None:
            self.local(400, b"Bad Request", close=True)
            return
        if ds.mesh:
            vh = listener.find(host, port)
            match_port = port
        elif ds.listener_name in self.state.https_redirect:
            # Gateway `tls.httpsRedirect`: Envoy's require_tls answers every request.
            target = host if port == 80 or authority is None else authority
            self.path = head.path
            self._reply_with_ops(301, b"", [(b"location", b"https://" + target + head.path)], ())
            return
        else:
            vh = listener.find(host, 0)
            match_port = listener.port
        if vh is None:
            self.local(404, flags="NR")
            return
        # The matcher's bound `match` is kept with it: no method lookup per request.
        match = vh.matcher.match
        ds.vhost_cache = (self.state.listeners, authority, vh, match_port, match)
        self._match(vh, match_port, match)

    def _match(self, vh: table.VirtualHost, match_port: int, match: Any) -> None:
        head = self.head
        authority = self.authority
        path = head.path
        # Compiled, a C scan (codec/_lines.pxd); find, not `in`: bytes.__contains__
        # formats and clears a TypeError per call.
        if has_slash_dot(path) if _COMPILED else path.find(b"/.") >= 0:  # noqa: F821
            path = normalize_path(path)
        self.path = path
        # The head, not its list: the compiled matcher reads the few header
        # values its conditions need from the head's bytes.
        idx = match(head.method, path, authority, b"http", head, match_port)
        if idx < 0:
            self.local(404, flags="NR")
            return
        entry = vh.entries[idx]
        route = entry.route
        self.route = route
        fault = route.fault
        if fault is not None and fault.delay_ppm and self.state.fault_rng.randrange(1_000_000) < fault.delay_ppm:
            self.flags = "DI"
            self.delay_timer = self.loop.call_later(fault.delay, self._after_delay)  # type: ignore[arg-type]
            return
        self._route()

    def _after_delay(self) -> None:
        self.delay_timer = None
        if not self.done:
            self._route()

    def _route(self) -> None:
        route = self.route
        assert route is not None
        fault = route.fault
        if fault is not None and fault.abort_ppm and self.state.fault_rng.randrange(1_000_000) < fault.abort_ppm:
            if fault.abort_status is None and fault.abort_grpc is not None:
                self._grpc_abort(fault.abort_grpc)
                return
            self.local(fault.abort_status or 503, replies.FAULT_ABORT, flags=self._flag("FI"))
            return
        if route.cors is not None and self._cors(route.cors):
            return
        action = route.action
        if action != _ACTION_ROUTE:
            self._local_action(route)
            return
        dests = route.destinations
        if len(dests) == 1:
            dest = dests[0]
        else:
            dest = dests[pick(route.cumulative, self.state.rng.getrandbits(32))]
        self.dest = dest
        if dest.cluster is None:
            self.local(503, flags="NC")
            return
        cs = self.state.clusters.get(dest.cluster_name)
        if cs is None or not cs.hosts:
            self.local(503, replies.NO_HEALTHY_UPSTREAM, flags="UH")
            return
        self.cs = cs
        if cs.active >= cs.limits.max_requests:
            self.overflow(None)
            return
        cs.active += 1
        self.counted = True
        if cs.ring:
            self.hash_key = self._hash_key(cs.cluster.hash)  # type: ignore[arg-type]
        self._build_upstream_head(route, dest)
        self.retries_left = route.retry.attempts
        if self.head.expect_continue and not self.request_complete:
            self.ds.writer.write(_CONTINUE)
        self.routing = True
        if self.request_complete:
            self._arm_route_timer()
            if route.mirrors:
                self._mirror()
        self._new_attempt(False)

    def _grpc_abort(self, code: str) -> None:
        """A grpcStatus abort: HTTP 200 carrying the gRPC status, as Envoy's fault filter replies."""
        self.flags = self._flag("FI")
        number = _GRPC_CODES.get(code.upper(), 2)
        extra = [(b"grpc-status", b"%d" % number), (b"grpc-message", b"fault filter abort")]
        if any(n == b"content-type" and v.startswith(b"application/grpc") for n, v in self.head.headers):
            # A trailers-only gRPC response: no body, the status in the headers.
            self._reply_with_ops(200, b"", [(b"content-type", b"application/grpc"), *extra], ())
        else:
            self._reply_with_ops(200, replies.FAULT_ABORT, [(b"content-type", b"text/plain"), *extra], ())

    def _flag(self, flag: str) -> str:
        return self.flags + "," + flag if self.flags else flag

    def _local_action(self, route: table.Route) -> None:
        if route.action == table.ACTION_REDIRECT:
            rd = route.redirect
            assert rd is not None
            location = redirect_location(rd, b"http", self.authority, self.path)
            extra = [(b"location", location)]
            self._reply_with_ops(rd.status, b"", extra, route.response_ops)
            return
        dr = route.direct
        assert dr is not None
        extra = []
        if dr.status == 201 or 300 <= dr.status < 400:
            extra.append((b"location", b"http://" + self.authority + self.path))
        if dr.body:
            extra.append((b"content-type", b"text/plain"))
        self._reply_with_ops(dr.status, dr.body, extra, route.response_ops)

    def _reply_with_ops(
        self, status: int, body: bytes, extra: list[tuple[bytes, bytes]], ops: tuple[table.HeaderOps, ...]
    ) -> None:
        # Redirects and direct responses get the route's response header ops
        # (unlike Envoy's error replies).
        headers = apply_ops(extra, ops) if ops else extra
        close = self.close_after or not self.request_complete
        out = [status_line(status), content_length_line(len(body))]
        render(headers, out)
        out.append(DATE.line())
        out.append(self.ds.server_line)
        if close:
            out.append(b"connection: close\r\n")
        out.append(b"\r\n")
        if body and self.head.method != b"HEAD":
            out.append(body)
        self.status = status
        self.ds.writer.write(b"".join(out))
        self.bytes_sent = len(body)
        self.finish(close)

    def _build_upstream_head(self, route: table.Route, dest: table.Destination) -> None:
        head = self.head
        ds = self.ds
        gateway = not ds.mesh
        path = self.path
        up_path = path
        if route.rewrite is not None:
            up_path = rewrite_path(route.rewrite, path)
        authority = dest.authority if dest.authority is not None else self.authority
        ops = dest.request_ops
        # Header operations work on the header list; otherwise the client's
        # headers go up as one pre-rendered block.
        if ops:
            headers, flags, xff, conn, upgrade = request_kept(head.headers, gateway)
            block = None
        else:
            block, flags, xff, conn, upgrade = request_block_of(head, gateway)
            headers = None
        nominated = _nominated(conn, None) if conn is not None else None
        if nominated and headers is None:
            # Rare: the Connection header names more hop-by-hop headers to drop.
            headers = request_kept(head.headers, gateway)[0]
        # x-forwarded-proto and x-request-id are upstream_head's own parameters:
        # a common head builds no `extra` list.
        extra = _NO_EXTRA
        if (head.upgrade and upgrade is not None) or gateway or up_path is not path:
            extra = []
            if head.upgrade and upgrade is not None:
                extra.append((b"connection", b"upgrade"))
                extra.append((b"upgrade", upgrade))
            if gateway:
                client = ds.client_ip
                extra.append((b"x-forwarded-for", xff + b", " + client if xff else client))
            if up_path is not path:
                extra.append((b"x-envoy-original-path", head.path))
        xfp = not flags & _HAS_XFP
        request_id = None if flags & _HAS_REQUEST_ID else self.state.request_ids.next()
        if self.chunked_up:
            framing = b"transfer-encoding: chunked\r\n"
        elif head.content_length >= 0:
            framing = content_length_line(head.content_length)
        else:
            framing = b""
        if headers is not None:
            headers += extra
            if xfp:
                headers.append((b"x-forwarded-proto", b"http"))
            if request_id is not None:
                headers.append((b"x-request-id", request_id))
            if nominated:
                headers = [h for h in headers if h[0] not in nominated]
            if ops:
                headers = apply_ops(headers, ops)
            self.up_head = upstream_head(head.method, up_path, authority, b"", headers, framing)
        else:
            self.up_head = upstream_head(head.method, up_path, authority, block, extra, framing, xfp, request_id)

    def on_body(self, data: bytes) -> None:
        if self.done:
            return
        buf = self.body_buf
        if buf is _NO_BODY:  # never appended to
            buf = self.body_buf = []
        if buf is not None:
            buf.append(data)
            self.body_size += len(data)
        attempt = self.attempt
        if attempt is not None and attempt.conn is not None:
            attempt.send_body(data)
            if buf is not None and self.body_size > REPLAY_LIMIT:
                self.body_buf = None
        elif buf is None:
            # Nowhere to send it and nothing kept for a replay.
            self.local(507, replies.RETRY_BUFFER_EXCEEDED, close=True)
        elif self.body_size > REPLAY_LIMIT and not self.waiting_bind:
            self.waiting_bind = True
            self.ds.pause(4)

    def on_end(self) -> None:
        self.request_complete = True
        self.complete_time = self.state.now()
        if self.done:
            return
        if self.routing:
            self._arm_route_timer()
            if self.route.mirrors:  # type: ignore[union-attr]
                self._mirror()
        attempt = self.attempt
        if attempt is not None and attempt.conn is not None:
            if self.chunked_up:
                attempt.conn.writer.write(_CHUNK_END)
            attempt.arm_per_try_timer()

    def on_upgrade_data(self, rest: bytes) -> None:
        # Bytes behind an upgrade request are held until the upstream accepts
        # the upgrade (101): an upstream that ignores it must never read them
        # as another request.
        self.tunnel_rest += rest
        if len(self.tunnel_rest) > 65536:
            self.ds.pause(4)

    def _mirror(self) -> None:
        chunks = self.body_buf
        if chunks is None:
            return  # the body outgrew the replay buffer: Envoy does not mirror it either
        out = [self.up_head]  # a mirror is a first attempt
        if self.chunked_up:
            for chunk in chunks:
                out.append(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            out.append(_CHUNK_END)
        else:
            out.extend(chunks)
        route = self.route
        service = self.dest.cluster.service  # type: ignore[union-attr]
        send_mirrors(self.state, route.mirrors, b"".join(out), route.timeout, service)  # type: ignore[union-attr]

    # -- attempts --------------------------------------------------------
    def _arm_route_timer(self) -> None:
        timeout = self.route.timeout  # type: ignore[union-attr]
        if timeout is not None and self.route_timer is None:
            self.route_timer = self.loop.call_later(timeout, self._route_timed_out)

    def _new_attempt(self, fresh: bool, host: HostState | None = None) -> None:
        route = self.route
        assert route is not None
        if host is None:
            host = self.cs.choose(self.tried if route.retry.retry_other_hosts else (), self.hash_key)
            if host is None:
                self.local(503, replies.NO_HEALTHY_UPSTREAM, flags=self._flag("UH"))
                return
            self.tries += 1
        if route.retry.retry_other_hosts:  # the only reader of the hosts tried
            self.tried += (host,)
        attempt = Attempt.__new__(Attempt)
        attempt.setup(self, host, self.tries, fresh)
        self.attempt = attempt
        self.endpoint = host.endpoint
        attempt.start()

    def _retry_slot(self) -> bool:
        """Envoy's max_retries circuit breaker: one retry in flight per slot."""
        cs = self.cs
        if self.retry_slot:
            return True
        if cs.retries >= cs.limits.max_retries:
            self.flags = self._flag("UO")
            return False
        cs.retries += 1
        self.retry_slot = True
        return True

    def _retry_later(self) -> None:
        self.retries_left -= 1
        self.retried = True
        number = self.tries  # retries so far + 1
        delay = backoff(self.route.retry, number, self.state.rng.getrandbits(32))  # type: ignore[union-attr]
        self.state.counters["retries"] += 1
        self.backoff_timer = self.loop.call_later(delay, self._after_backoff)

    def _after_backoff(self) -> None:
        self.backoff_timer = None
        if not self.done:
            self._new_attempt(False)

    def attempt_failed(self, attempt: Attempt, reason: str, transport: str | None) -> None:
        if attempt is not self.attempt or self.done:
            attempt.release(False)
            return
        host = attempt.host
        reused = attempt.reused and not attempt.got_response
        attempt.release(False)
        self.attempt = None
        # Locally seen failures count as 5xx and gateway errors for outlier detection.
        self.cs.report(host, True, True)
        if self.response_started:
            # Too late for a reply: cut the client connection like Envoy does.
            self.flags = self._flag("UC")
            self.finish(True)
            return
        replayable = self.body_buf is not None
        if reused and replayable and not self.stale_retry_used and reason == "connection termination":
            # The pooled connection was closed by the upstream while idle.
            self.stale_retry_used = True
            self._new_attempt(True, host)
            return
        policy = self.route.retry  # type: ignore[union-attr]
        sent = reason not in CONNECT_FAILURES
        if self.retries_left > 0 and replayable and retry_on_reset(policy, reason, sent) and self._retry_slot():
            self._retry_later()
            return
        if reason in CONNECT_FAILURES:
            flag = "UF"
        elif reason == "protocol error":
            flag = "UPE"
        else:
            flag = "UC"
        flags = self._flag(flag)
        if self.retries_left == 0 and policy.attempts and retry_on_reset(policy, reason, sent):
            flags += ",URX"
        status = 502 if reason == "protocol error" else 503
        self.local(status, replies.reset_body(reason, transport, self.retried), flags=flags)

    def per_try_timed_out(self, attempt: Attempt) -> None:
        if attempt is not self.attempt or self.done:
            return
        self.cs.report(attempt.host, True, True)
        attempt.release(False)
        self.attempt = None
        policy = self.route.retry  # type: ignore[union-attr]
        if (
            self.retries_left > 0
            and self.body_buf is not None
            and retry_on_per_try_timeout(policy)
            and self._retry_slot()
        ):
            self._retry_later()
            return
        self.local(504, replies.UPSTREAM_TIMEOUT, flags=self._flag("UT"))

    def _route_timed_out(self) -> None:
        self.route_timer = None
        if self.done:
            return
        if self.response_started:
            self.flags = self._flag("UT")
            self.finish(True)
            return
        self.local(504, replies.UPSTREAM_TIMEOUT, flags=self._flag("UT"))

    # -- response side ---------------------------------------------------
    def response_head(self, attempt: Attempt, head: Any) -> None:
        if attempt is not self.attempt or self.done:
            return
        status = head.status
        route = self.route
        assert route is not None
        cs = self.cs
        if cs.outlier is not None:  # most clusters have no outlier detection: skip the call
            cs.report(attempt.host, status >= 500, status in (502, 503, 504))
        policy = route.retry
        # Below 400 only an explicitly listed status code can be retriable
        # (gRPC status conditions do not occur on HTTP/1.1).
        if policy.retry_on & _RETRY_RETRIABLE_HEADERS:
            retriable = self._retriable_header_names()
            retry = bool(retriable) or status >= 400 or status in policy.retriable_codes
        else:
            retriable = _NO_NAMES
            retry = status >= 400 or status in policy.retriable_codes
        if policy.retry_on and retry and retry_on_response(policy, status, head.headers, retriable):
            if self.retries_left > 0 and self.body_buf is not None and self._retry_slot():
                attempt.release(False)
                self.attempt = None
                self._retry_later()
                return
            if policy.attempts:
                self.flags = self._flag("URX")
        self.response_started = True
        self.upstream_keep_alive = head.keep_alive
        self.status = status
        req = self.head
        no_body = req.method == b"HEAD" or status == 204 or status == 304 or status < 200
        upgrade = status == 101
        dest = self.dest
        assert dest is not None
        ops = dest.response_ops
        if self.request_complete:
            self.service_time = int((self.state.now() - self.complete_time) * 1000)
        headers: list[tuple[bytes, bytes]] | None = None
        service = tail = None
        if upgrade:
            # The connection / upgrade pair a 101 keeps: the header list.
            headers = []
            block = b""
            has_date = False
            for h in head.headers:
                name = h[0]
                if name in RESPONSE_SKIP:
                    if name == b"connection" or name == b"upgrade":
                        headers.append(h)  # type: ignore[union-attr]
                    continue
                if name == b"date":
                    has_date = True
                headers.append(h)  # type: ignore[union-attr]
        else:
            # The upstream's headers go to the client as one block, minus the
            # names the ops remove or set; the ops then run on what follows it,
            # which is usually rendered already (Destination.response_tail).
            # The compiled codec hands over the block itself (ResponseHead.block).
            block = head.block
            if block is not None and not dest.response_drop:
                has_date = head.has_date
            else:
                block, has_date = response_block(head.headers, dest.response_drop)
            tail = dest.response_tail
            if tail is not None and self.extra_response is None:
                if self.request_complete:
                    st = self.service_time
                    service = _SERVICE_TIME[st] if 0 <= st < 256 else b"x-envoy-upstream-service-time: %d\r\n" % st
            else:
                headers = []
        if headers is not None:
            if self.request_complete:
                headers.append((b"x-envoy-upstream-service-time", b"%d" % self.service_time))
            if self.extra_response is not None:
                headers += self.extra_response
            if ops:
                headers = apply_ops(headers, ops)
            lines: list[bytes] = []
            render(headers, lines)
            tail = b"".join(lines)
        cl = head.content_length
        framing = connection = None
        if no_body:
            if cl >= 0 and status != 204 and status >= 200:
                framing = content_length_line(cl)
        elif cl >= 0:
            framing = content_length_line(cl)
        elif req.version == b"1.1":
            framing = b"transfer-encoding: chunked\r\n"
            self.chunked_down = True
        else:
            self.close_after = True
        if req.upgrade and not upgrade:
            # The client may already be sending tunnel bytes we cannot parse.
            self.close_after = True
        if not upgrade:
            if self.close_after:
                connection = b"connection: close\r\n"
            elif req.version == b"1.0":
                connection = b"connection: keep-alive\r\n"
        data = response_head(
            status_line(status),
            block,
            service,
            tail,
            None if has_date else DATE.line(),
            self.ds.server_line,
            framing,
            connection,
        )
        if upgrade:
            self.ds.writer.write(data)
        else:
            # Held until the end of this upstream read, so that a head and the
            # body that came with it leave in one write (one wakeup of the client).
            self.out = [data]

    def response_complete(self) -> None:
        if self.done:
            return
        self.attempt = None
        out = self.out
        if out is not None:
            self.out = None
            if self.chunked_down:
                out.append(_CHUNK_END)
            self.ds.writer.writelines(out)
        elif self.chunked_down:
            self.ds.writer.write(_CHUNK_END)
        self.finish(False)

    def upgraded(self) -> None:
        self.attempt = None
        self.done = True
        if self.counted or self.retry_slot:
            self._release_slots()
        self._cancel_timers()
        self._report()

    def _retriable_header_names(self) -> frozenset[bytes]:
        # Only the mesh listener honours it: gateways strip x-envoy-* from clients.
        if not self.ds.mesh:
            return _NO_NAMES
        names: set[bytes] = set()
        for name, value in self.head.headers:
            if name == b"x-envoy-retriable-header-names":
                names.update(t.strip().lower() for t in value.split(b",") if t.strip())
        return frozenset(names)

    def overflow(self, attempt: Attempt | None) -> None:
        """A circuit breaker is full: Envoy's 503 UO, never retried."""
        if attempt is not None and attempt is self.attempt:
            attempt.release(False)
            self.attempt = None
        self.state.counters["upstream_overflow"] += 1
        self.local(503, replies.reset_body("overflow", None, False), flags=self._flag("UO"))

    def _hash_key(self, hp: table.HashPolicy) -> bytes | None:
        head = self.head
        if hp.header is not None:
            for name, value in head.headers:
                if name == hp.header:
                    return value
            return None
        if hp.cookie is not None:
            want = hp.cookie.encode()
            for name, value in head.headers:
                if name == b"cookie":
                    for part in value.split(b";"):
                        k, _, v = part.strip().partition(b"=")
                        if k == want:
                            return v
            if hp.cookie_ttl is None:
                return None
            # Envoy generates the cookie when a ttl is configured, and hands it out.
            value = b"%016x" % self.state.id_rng.getrandbits(64)
            attrs = [hp.cookie.encode() + b"=" + value]
            if hp.cookie_ttl:
                attrs.append(b"Max-Age=%d" % int(hp.cookie_ttl))
            if hp.cookie_path:
                attrs.append(b"Path=" + hp.cookie_path.encode())
            attrs.append(b"HttpOnly")
            self._add_response_header(b"set-cookie", b"; ".join(attrs))
            return value
        if hp.source_ip:
            return self.ds.client_ip
        if hp.query_param is not None:
            path = self.path
            q = path.find(b"?")
            if q >= 0:
                for part in path[q + 1 :].split(b"&"):
                    k, _, v = part.partition(b"=")
                    if k == hp.query_param:
                        return v
        return None

    def _add_response_header(self, name: bytes, value: bytes) -> None:
        if self.extra_response is None:
            self.extra_response = []
        self.extra_response.append((name, value))

    def _cors(self, cors: table.CorsPolicy) -> bool:
        """Envoy's CORS filter; True when it answered the request itself."""
        head = self.head
        origin = request_method = None
        for name, value in head.headers:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                request_method = value
        if not origin:
            return False
        allowed = any(_string_match(sm, origin) for sm in cors.allow_origins)
        if head.method == b"OPTIONS" and request_method:
            if not allowed and cors.forward_unmatched_preflights:
                return False
            headers = []
            if allowed:
                headers.append((b"access-control-allow-origin", origin))
                if cors.allow_credentials:
                    headers.append((b"access-control-allow-credentials", b"true"))
            if cors.allow_methods:
                headers.append((b"access-control-allow-methods", cors.allow_methods))
            if cors.allow_headers:
                headers.append((b"access-control-allow-headers", cors.allow_headers))
            if cors.max_age:
                headers.append((b"access-control-max-age", cors.max_age))
            self._reply_with_ops(200, b"", headers, ())
            return True
        if allowed:
            self._add_response_header(b"access-control-allow-origin", origin)
            if cors.allow_credentials:
                self._add_response_header(b"access-control-allow-credentials", b"true")
            if cors.expose_headers:
                self._add_response_header(b"access-control-expose-headers", cors.expose_headers)
        return False

    # -- endings ---------------------------------------------------------
    def local(self, status: int, body: bytes = b"", flags: str = "", close: bool = False) -> None:
        """Envoy-style local reply (route response ops are not applied)."""
        if self.done:
            return
        attempt = self.attempt
        if attempt is not None:
            self.attempt = None
            attempt.release(False)
        if flags:
            self.flags = flags
        self.status = status
        close = close or self.close_after or not self.request_complete
        extra = [(b"x-envoy-overloaded", b"true")] if flags.startswith("UO") else None
        data = replies.local_reply(status, body, self.ds.server, close, extra, head_only=self.head.method == b"HEAD")
        self.ds.writer.write(data)
        self.bytes_sent = len(body)
        self.finish(close)

    def _cancel_timers(self) -> None:
        for name in ("route_timer", "backoff_timer", "delay_timer"):
            timer = getattr(self, name)
            if timer is not None:
                timer.cancel()
                setattr(self, name, None)

    def _release_slots(self) -> None:
        cs = self.cs
        if self.counted:
            self.counted = False
            cs.active -= 1
        if self.retry_slot:
            self.retry_slot = False
            cs.retries -= 1

    def finish(self, close: bool) -> None:
        if self.done:
            return
        self.done = True
        if self.counted or self.retry_slot:
            self._release_slots()
        out = self.out
        if out is not None:
            self.out = None
            self.ds.writer.writelines(out)
        if self.route_timer is not None or self.backoff_timer is not None or self.delay_timer is not None:
            self._cancel_timers()
        attempt = self.attempt
        if attempt is not None:
            self.attempt = None
            attempt.release(False)
        if self.waiting_bind:
            self.waiting_bind = False
            self.ds.resume(4)
        self._report()
        self.ds.exchange_done(self, close or self.close_after or not self.request_complete)

    def _report(self) -> None:
        """Count the finished request in the metrics and log it (once per request)."""
        state = self.state
        state.record(self)
        log = state.access_log
        if log is not None:
            log.log(self)

    def abort_downstream(self) -> None:
        """The client went away: drop the upstream side without draining it."""
        if self.done:
            return
        self.done = True
        if self.counted or self.retry_slot:
            self._release_slots()
        self.flags = self._flag("DC")
        self._cancel_timers()
        attempt = self.attempt
        if attempt is not None:
            self.attempt = None
            attempt.release(False)
        if not self.response_started:
            self.status = 0
        self._report()
