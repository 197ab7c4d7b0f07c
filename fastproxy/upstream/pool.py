"""Hand-written keep-alive pool, one per upstream endpoint (address, port).

Idle connections are kept LIFO so the warmest socket is reused first; a
generation number, bumped on every config reload, retires connections made
under an older config when they come back; a periodic sweep closes
connections idle for longer than the idle timeout.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable
from time import monotonic as _now  # the proxy's clock (uvloop's loop.time() reads the same one, in ms)
from typing import Any

try:  # a build dependency only: absent, this module runs as its pure twin
    import cython

    _COMPILED = cython.compiled
except ImportError:
    _COMPILED = False
from fastproxy.upstream.connection import UpstreamConnection


class ConnectFailure(Exception):
    """A connect that failed; `reason` and `transport` are Envoy's wording."""

    def __init__(self, reason: str, transport: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transport = transport


def describe_connect_error(exc: BaseException) -> ConnectFailure:
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return ConnectFailure("connection timeout", None)
    if isinstance(exc, OSError):
        code = exc.errno
        if code is None and exc.args and isinstance(exc.args[0], int):
            code = exc.args[0]
        text = os.strerror(code) if code else (str(exc) or exc.__class__.__name__)
        if code in (errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT):
            return ConnectFailure("remote connection failure", "delayed connect error: " + text)
        return ConnectFailure("local connection failure", text)
    return ConnectFailure("local connection failure", str(exc) or exc.__class__.__name__)


class Pool:
    __slots__ = (
        "address",
        "port",
        "idle",
        "busy",
        "connecting",
        "generation",
        "loop",
        "new_parser",
        "idle_timeout",
        "closed",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, address: str, port: int, new_parser: Callable[..., Any]
    ) -> None:
        self.loop = loop
        self.address = address
        self.port = port
        self.idle: list[UpstreamConnection] = []
        self.busy = 0  # connections handed out and not yet back
        self.connecting = 0
        self.generation = 0
        self.new_parser = new_parser
        self.idle_timeout = 60.0
        self.closed = False

    def take_idle(self) -> UpstreamConnection | None:
        idle = self.idle
        while idle:
            conn = idle.pop()
            if conn.closed or conn.generation != self.generation:
                conn.abort()
                continue
            self.busy += 1
            return conn
        return None

    def release(self, conn: UpstreamConnection, reusable: bool) -> None:
        """A response ended on `conn`: keep it for the next request if we may."""
        self.busy -= 1
        if not reusable or conn.closed or conn.generation != self.generation or self.closed:
            conn.abort()
            return
        # Compiled, the same clock read inline (fastproxy/_clock.pxd).
        conn.idle_since = _c_monotonic() if _COMPILED else _now()  # noqa: F821
        self.idle.append(conn)

    def discard(self, conn: UpstreamConnection) -> None:
        try:
            self.idle.remove(conn)
        except ValueError:
            pass

    def lost_busy(self) -> None:
        """A busy connection was dropped by its attempt (never released)."""
        self.busy -= 1

    async def connect(self, timeout: float) -> UpstreamConnection:
        self.connecting += 1
        try:
            async with asyncio.timeout(timeout):
                _, conn = await self.loop.create_connection(
                    lambda: UpstreamConnection(self, self.new_parser), self.address, self.port
                )
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise describe_connect_error(exc) from None
        finally:
            self.connecting -= 1
        self.busy += 1
        return conn

    def sweep(self, now: float) -> None:
        """Close connections idle for longer than the idle timeout."""
        if not self.idle:
            return
        limit = now - self.idle_timeout
        keep = []
        for conn in self.idle:
            if conn.idle_since < limit or conn.closed:
                conn.attempt = None
                conn.closed = True
                if conn.transport is not None:
                    conn.transport.close()
            else:
                keep.append(conn)
        self.idle[:] = keep

    def close_idle(self) -> None:
        for conn in self.idle:
            conn.closed = True
            if conn.transport is not None:
                conn.transport.close()
        self.idle.clear()

    def stats(self) -> dict[str, Any]:
        return {"idle": len(self.idle), "busy": self.busy, "connecting": self.connecting}
