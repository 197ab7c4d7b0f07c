"""One keep-alive HTTP/1.1 connection to an upstream endpoint.

The protocol only moves bytes: response events go straight to the attempt
that currently owns the connection (pipeline/exchange.py), and write
backpressure on this socket pauses reading from the client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastproxy import wire
from fastproxy.codec import ProtocolError
from fastproxy.codec.messages import ResponseEvents

if TYPE_CHECKING:
    from fastproxy.codec.messages import ResponseHead
    from fastproxy.upstream.pool import Pool


class ResponseSink:
    """What reads a response off an UpstreamConnection: an Attempt (pipeline/exchange.py)
    or a mirror copy (pipeline/mirror.py).  A compiled base class, so the
    connection reaches its reader through C calls, not by method name."""

    __slots__ = ()

    def on_response_head(self, head: Any) -> None:
        raise NotImplementedError

    def on_response_body(self, data: bytes) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """End of one upstream read."""

    def on_response_end(self, conn: UpstreamConnection) -> None:
        raise NotImplementedError

    def on_upgraded(self, conn: UpstreamConnection, rest: bytes) -> None:
        raise NotImplementedError

    def on_upstream_failure(self, reason: str, transport: str | None) -> None:
        raise NotImplementedError

    def pause_source(self) -> None:
        """The upstream socket is full."""

    def resume_source(self) -> None:
        """The upstream socket drained."""


class UpstreamConnection(ResponseEvents):
    __slots__ = (
        "pool",
        "transport",
        "writer",
        "parser",
        "attempt",
        "generation",
        "idle_since",
        "closed",
        "requests",
        "tunnel",
        "owner",
        "eof",
    )

    def __init__(self, pool: Pool, new_parser: Callable[..., Any]) -> None:
        self.pool = pool
        self.transport: Any = None
        # Every write to the upstream goes through it (wire.py).
        self.writer: Any = None
        self.parser = new_parser(self)
        # The ResponseSink reading from this connection, if any.
        self.attempt: ResponseSink | None = None
        self.generation = pool.generation
        self.idle_since = 0.0
        self.closed = False
        self.requests = 0
        # Downstream protocol once an upgrade turned this into a raw tunnel.
        self.tunnel: Any = None
        self.eof = False  # the upstream half-closed a tunnel
        # The ClusterState whose connection limit this connection counts against.
        self.owner: Any = None

    # -- asyncio.Protocol (duck-typed: uvloop only calls these; a compiled class cannot subclass it)
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.writer = wire.Writer(transport)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.writer.write(data)
            return
        try:
            self.parser.feed(data)
        except ProtocolError:
            attempt = self.attempt
            self.abort()
            if attempt is not None:
                attempt.on_upstream_failure("protocol error", None)
            return
        attempt = self.attempt
        if attempt is not None:
            attempt.flush()

    def eof_received(self) -> bool:
        tunnel = self.tunnel
        if tunnel is not None:
            self.eof = True
            if tunnel.eof:
                # The client had finished sending too: the tunnel is over.
                tunnel.close()
                return False
            if tunnel.transport.can_write_eof():
                tunnel.transport.write_eof()
            return True
        try:
            self.parser.feed_eof()
        except ProtocolError:
            pass
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self._disown()
        # The parser calls back into this object: drop it so that the pair is
        # freed by reference counting, not by a cyclic-GC pass.
        self.parser = None
        tunnel = self.tunnel
        if tunnel is not None:
            self.tunnel = None
            tunnel.transport.close()
            return
        attempt = self.attempt
        if attempt is not None:
            self.attempt = None
            attempt.on_upstream_failure("connection termination", None)
        else:
            self.pool.discard(self)

    def pause_writing(self) -> None:
        attempt = self.attempt
        if attempt is not None:
            attempt.pause_source()
        elif self.tunnel is not None:
            self.tunnel.pause(2)

    def resume_writing(self) -> None:
        attempt = self.attempt
        if attempt is not None:
            attempt.resume_source()
        elif self.tunnel is not None:
            self.tunnel.resume(2)

    # -- response sink (codec) --------------------------------------------
    def on_response_head(self, head: ResponseHead) -> None:
        attempt = self.attempt
        if attempt is not None:
            attempt.on_response_head(head)

    def on_response_body(self, data: bytes) -> None:
        attempt = self.attempt
        if attempt is not None:
            attempt.on_response_body(data)

    def on_response_end(self) -> None:
        attempt = self.attempt
        if attempt is not None:
            self.attempt = None
            attempt.on_response_end(self)

    def on_upgrade(self, rest: bytes) -> None:
        attempt = self.attempt
        if attempt is not None:
            self.attempt = None
            attempt.on_upgraded(self, rest)

    # -- control ----------------------------------------------------------
    def _disown(self) -> None:
        owner = self.owner
        if owner is not None:
            self.owner = None
            owner.connections -= 1
            if owner.pending:
                owner.wake()

    def abort(self) -> None:
        """Drop the connection without draining (never reused)."""
        self.attempt = None
        self._disown()
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
        self.pool.discard(self)
