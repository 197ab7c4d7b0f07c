"""Client side: one asyncio Protocol per accepted connection.

It feeds bytes to the codec, answers pipelined requests in order (later
requests wait, with reading paused, while one is in flight), enforces the
head and idle timeouts through a per-worker sweep (no timer per request), and
pauses reading from the client while the upstream cannot take more bytes.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from fastproxy import wire
from fastproxy.codec import ProtocolError
from fastproxy.codec.messages import RequestEvents
from fastproxy.pipeline import replies
from fastproxy.pipeline.exchange import Exchange

if TYPE_CHECKING:
    from fastproxy.codec.messages import RequestHead
    from fastproxy.server import ProxyState
    from fastproxy.table import Listener
    from fastproxy.upstream.connection import UpstreamConnection

# Pause reasons (bits): a pipelined request is waiting, the upstream socket is
# full, a request body is waiting for its upstream connection.
PAUSE_PIPELINE = 1
PAUSE_UPSTREAM = 2
PAUSE_BIND = 4

_IDLE = 0  # between requests: idle keep-alive deadline
_HEAD = 1  # receiving a request head: head deadline
_BUSY = 2  # a request is in flight: no deadline


class Pending:
    """A pipelined request received while an earlier one is in flight."""

    __slots__ = ("head", "chunks", "ended", "rest")

    def __init__(self, head: Any) -> None:
        self.head = head
        self.chunks: list[bytes] = []
        self.ended = False
        self.rest = b""

    def on_body(self, data: bytes) -> None:
        self.chunks.append(data)

    def on_end(self) -> None:
        self.ended = True

    def on_upgrade_data(self, rest: bytes) -> None:
        self.rest += rest


class Downstream(RequestEvents):
    __slots__ = (
        "state",
        "loop",
        "listener_name",
        "mesh",
        "server",
        "server_line",
        "transport",
        "writer",
        "parser",
        "client_ip",
        "current",
        "rx",
        "queue",
        "pending_error",
        "paused",
        "write_paused",
        "phase",
        "deadline",
        "closed",
        "advancing",
        "tunnel",
        "listener_key_str",
        "feeding",
        "deferred",
        "eof",
        "vhost_cache",
    )

    def __init__(self, state: ProxyState, listener_name: Any, mesh: bool) -> None:
        self.state = state
        self.listener_key_str = "mesh" if mesh else f"gateway:{listener_name}"
        self.loop = state.loop
        self.listener_name = listener_name
        self.mesh = mesh
        # Envoy names itself `envoy` on sidecar listeners, `istio-envoy` on gateways.
        self.server = b"envoy" if mesh else b"istio-envoy"
        self.server_line = b"server: " + self.server + b"\r\n"
        self.transport: Any = None
        # Every write to the client goes through it (wire.py).
        self.writer: Any = None
        self.parser: Any = None
        self.client_ip = b""
        self.current: Exchange | None = None
        self.rx: Any = None
        self.queue: deque[Pending] = deque()
        self.pending_error: ProtocolError | None = None
        self.paused = 0
        self.write_paused = False
        self.phase = _HEAD
        self.deadline = 0.0
        self.closed = False
        self.advancing = False
        self.tunnel: UpstreamConnection | None = None
        # While the codec is parsing one chunk, a new request is only set up;
        # it starts once the whole chunk parsed cleanly, so a request whose
        # body is malformed in the same packet never reaches an upstream.
        self.feeding = False
        self.deferred: Exchange | None = None
        self.eof = False  # the client half-closed (eof_received)
        # (listeners table, authority, virtual host, port to match) of the last
        # request: see Exchange.begin.
        self.vhost_cache: tuple[Any, bytes | None, Any, int, Any] | None = None

    def listener(self) -> Listener | None:
        # None once a reload removed this gateway port: requests get 404.
        return self.state.listeners.get(self.listener_name)

    # -- asyncio.Protocol (duck-typed: uvloop only calls these; a compiled class cannot subclass it)
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.writer = wire.Writer(transport)
        state = self.state
        peer = transport.get_extra_info("peername")
        if peer:
            self.client_ip = str(peer[0]).encode()
        self.parser = state.request_parser(self, state.max_head_bytes, state.max_headers)
        self.deadline = state.now() + state.head_timeout
        state.connections.add(self)

    def data_received(self, data: bytes) -> None:
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel.writer.write(data)
            return
        if self.parser is None:
            rx = self.rx
            if rx is not None and rx.head.upgrade and self.pending_error is None:
                rx.on_upgrade_data(data)  # waiting for the upstream's 101
            return  # otherwise after a protocol error: discard
        if self.phase == _IDLE:
            self.phase = _HEAD
            self.deadline = self.state.now() + self.state.head_timeout
        self.feeding = True
        try:
            self.parser.feed(data)  # compiled: a C call (codec/messages.py Parser)
        except ProtocolError as err:
            self.feeding = False
            self.protocol_error(err)
            return
        self.feeding = False
        ex = self.deferred
        if ex is not None:
            self.deferred = None
            ex.begin()

    def eof_received(self) -> bool:
        self.eof = True
        tunnel = self.tunnel
        if tunnel is not None:
            if tunnel.eof:
                # Both directions of the tunnel are finished: close both sides
                # (a half-closed transport is never closed for us).
                tunnel.transport.close()
                return False
            if tunnel.transport.can_write_eof():
                tunnel.transport.write_eof()
            return True
        # A client half-closing after its request still gets the response; a
        # request whose body was still arriving can never complete, so the
        # connection closes (and its upstream side is aborted) instead of
        # holding an upstream connection forever.
        if self.current is None and not self.queue:
            return False
        rx = self.rx
        if isinstance(rx, Pending):
            return rx.ended
        return rx is None or rx.request_complete

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.state.connections.discard(self)
        # The parser calls back into this object: drop it so that the pair is
        # freed by reference counting now, not by a cyclic-GC pass later.
        self.parser = None
        self.deferred = None
        self.rx = None
        current = self.current
        if current is not None:
            self.current = None
            current.abort_downstream()
        self.queue.clear()
        tunnel = self.tunnel
        if tunnel is not None:
            self.tunnel = None
            tunnel.tunnel = None
            tunnel.abort()

    def pause_writing(self) -> None:
        # The client reads slower than the upstream sends: stop reading upstream.
        self.write_paused = True
        conn = self._upstream()
        if conn is not None:
            conn.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        conn = self._upstream()
        if conn is not None:
            conn.transport.resume_reading()

    def _upstream(self) -> UpstreamConnection | None:
        if self.tunnel is not None:
            return self.tunnel
        current = self.current
        if current is not None and current.attempt is not None:
            return current.attempt.conn
        return None

    # -- flow control ----------------------------------------------------
    def pause(self, reason: int) -> None:
        if not self.paused and not self.closed:
            self.transport.pause_reading()
        self.paused |= reason

    def resume(self, reason: int) -> None:
        if self.paused & reason:
            self.paused &= ~reason
            if not self.paused and not self.closed:
                self.transport.resume_reading()

    # -- request sink (codec) -----------------------------------------------
    def on_request_head(self, head: RequestHead) -> None:
        self.phase = _BUSY
        if self.current is None and not self.queue:
            ex = Exchange.__new__(Exchange)
            ex.setup(self, head)
            self.current = ex
            self.rx = ex
            if self.feeding:
                self.deferred = ex
            else:
                ex.begin()
        else:
            pending = Pending(head)
            self.queue.append(pending)
            self.rx = pending
            self.pause(PAUSE_PIPELINE)

    def on_request_body(self, data: bytes) -> None:
        rx = self.rx
        if isinstance(rx, Exchange):
            ex = rx  # compiled: typed, a C call
            ex.on_body(data)
        else:
            rx.on_body(data)

    def on_request_end(self) -> None:
        rx = self.rx
        if isinstance(rx, Exchange):
            ex = rx
            ex.on_end()
        else:
            rx.on_end()

    def on_upgrade(self, rest: bytes) -> None:
        self.parser = None
        self.rx.on_upgrade_data(rest)

    # -- lifecycle of exchanges -----------------------------------------------
    def exchange_done(self, ex: Exchange, close: bool) -> None:
        if self.current is ex:
            self.current = None
        if self.closed:
            return
        if close:
            self.close()
            return
        if self.advancing:
            return  # the loop below picks up the next request
        self.advancing = True
        try:
            while self.current is None and self.queue and not self.closed:
                pending = self.queue.popleft()
                ex = Exchange.__new__(Exchange)
                ex.setup(self, pending.head)
                self.current = ex
                if self.rx is pending:
                    self.rx = ex
                ex.begin()
                for chunk in pending.chunks:
                    ex.on_body(chunk)
                if pending.rest:
                    ex.on_upgrade_data(pending.rest)
                if pending.ended:
                    ex.on_end()
        finally:
            self.advancing = False
        if self.current is None and not self.closed:
            if self.pending_error is not None:
                self._reply_error(self.pending_error)
                return
            if self.eof:
                # The client half-closed while we answered: nothing more can come.
                self.close()
                return
            self.resume(PAUSE_PIPELINE)
            if self.parser is not None and self.parser.head_started():
                self.phase = _HEAD
                self.deadline = self.state.now() + self.state.head_timeout
            else:
                self.phase = _IDLE
                self.deadline = self.state.now() + self.state.idle_timeout
            if self.state.draining:
                self.close()

    def protocol_error(self, err: ProtocolError) -> None:
        self.parser = None
        ex = self.deferred
        if ex is not None:
            self.deferred = None
            if ex.request_complete:
                ex.begin()
            else:
                # Its body was malformed in the very packet that carried its head.
                self.current = None
                ex.done = True
        current = self.current
        if current is not None and self.rx is current and not current.request_complete:
            # The request in flight has a malformed body: abandon its upstream side.
            started = current.response_started
            current.abort_downstream()
            self.current = None
            if started:
                self.close()
                return
        if self.current is None and not self.queue:
            self._reply_error(err)
        else:
            self.pending_error = err
            self.pause(PAUSE_PIPELINE)

    def _reply_error(self, err: ProtocolError) -> None:
        self.state.counters["downstream_protocol_errors"] += 1
        body = err.reason.encode()
        self.writer.write(replies.local_reply(err.status, body, self.server, close=True))
        self.close()

    def start_tunnel(self, conn: UpstreamConnection, rest: bytes) -> None:
        """The upstream accepted an upgrade: from now on, bytes flow raw both ways."""
        self.tunnel = conn
        conn.tunnel = self
        self.current = None
        self.parser = None
        self.phase = _BUSY
        if rest:
            self.writer.write(rest)
        if self.eof and conn.transport.can_write_eof():
            # The client finished sending before the upstream accepted the
            # upgrade: pass its half-close on, or both sides wait forever.
            conn.transport.write_eof()
        if self.paused:
            self.paused = 0
            self.transport.resume_reading()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    def check_deadline(self, now: float) -> None:
        """Called by the per-worker sweep: enforce head and idle timeouts."""
        if self.phase == _BUSY or self.closed or now < self.deadline:
            return
        if self.phase == _HEAD and self.parser is not None and self.parser.head_started():
            self.writer.write(replies.local_reply(408, b"Request Timeout", self.server, close=True))
        self.close()

    def close_if_idle(self) -> None:
        if self.current is None and not self.queue and self.tunnel is None:
            self.close()
