"""Pure twin of fastproxy/_wire.pyx: writer of a connection's outgoing bytes.

API and the rules it keeps are documented in fastproxy/wire.py.  The twin
sends with os.write on the same non-blocking fd, so both builds take the same
paths.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["Writer", "socket_fd"]

# Pieces one writelines call sends at once (compiled: one sendmsg); longer lists are joined.
MAX_PIECES = 16


class Writer:
    """Writes go to the socket in one send() while the transport holds nothing back."""

    __slots__ = ("_fd", "_held", "_is_closing", "transport")

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self._fd = socket_fd(transport)
        self._held = False
        # Bound once: each socket write asks it, and a method lookup per call
        # costs more than the call.  Without a socket no write asks.
        self._is_closing = transport.is_closing if self._fd >= 0 else None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        transport = self.transport
        if self._fd < 0 or type(data) is not bytes:
            transport.write(data)
            return
        if self._held:
            if transport.get_write_buffer_size():
                transport.write(data)
                return
            self._held = False
        if self._is_closing():
            transport.write(data)
            return
        if not data:
            return
        try:
            sent = os.write(self._fd, data)  # EINTR is retried (PEP 475)
        except OSError:  # EAGAIN, EPIPE, ...
            sent = -1
        if sent == len(data):
            return
        self._held = True
        transport.write(data[sent:] if sent > 0 else data)

    def writelines(self, pieces: list[bytes]) -> None:
        """write(b"".join(pieces)), without the join when the pieces go to the socket."""
        transport = self.transport
        if (
            self._fd < 0
            or len(pieces) > MAX_PIECES
            or self._held
            or self._is_closing()
            or any(type(p) is not bytes for p in pieces)
        ):
            self.write(b"".join(pieces))
            return
        total = sum(len(p) for p in pieces)
        if not total:
            return
        try:
            sent = os.writev(self._fd, pieces)
        except OSError:
            sent = -1
        if sent == total:
            return
        self._held = True
        if sent <= 0:
            transport.write(b"".join(pieces))
            return
        rest = []
        for piece in pieces:
            if sent >= len(piece):
                sent -= len(piece)
                continue
            rest.append(piece[sent:] if sent else piece)
            sent = 0
        transport.write(b"".join(rest))


def socket_fd(transport: Any) -> int:
    """The fd of a plain TCP or Unix stream transport, -1 for any other (TLS, pipes, test doubles)."""
    if transport is None or transport.get_extra_info("sslcontext") is not None:
        return -1
    sock = transport.get_extra_info("socket")
    if sock is None:
        return -1
    try:
        fd = sock.fileno()
    except (AttributeError, OSError):
        return -1
    return fd if isinstance(fd, int) and fd >= 0 else -1
