"""Writer of a connection's outgoing bytes: the compiled module or its pure twin, chosen once.

API (identical in fastproxy._wire and fastproxy._wire_py):

    Writer(transport).write(data)
        writes `data` to the connection.  While the transport holds no bytes
        back, bytes go to the socket in one non-blocking send(), which skips
        the event loop's write path (its buffer list, its write context) for
        the common case of a socket with room.  Whatever the socket does not
        take, and every write while the transport is closing or still holds
        bytes, goes to transport.write, so order, flow control (pause_writing)
        and error reporting (connection_lost) stay the transport's.
        Every write to a connection must go through its Writer, or the
        "holds nothing back" test could miss bytes queued behind its back.
    Writer(transport).writelines(pieces)
        write(b"".join(pieces)) for a list of bytes, sent in one system call
        (sendmsg; the twin: os.writev) without a joined copy when the socket
        takes them.
    Writer.transport
        the transport it writes to.
    socket_fd(transport) -> int
        the fd a Writer sends on, or -1 when it only uses the transport (a
        TLS or non-socket transport, or one without a socket, as in tests).

Why this is safe: the fd is read while the transport is open, and a transport
marks itself closing (is_closing) before its fd is closed, so a Writer never
sends on a closed or reused fd.
"""

from __future__ import annotations

import os

IMPLEMENTATION = "python"

if not os.environ.get("FASTPROXY_NO_EXTENSIONS"):
    try:
        from fastproxy._wire import Writer, socket_fd

        IMPLEMENTATION = "cython"
    except ImportError:
        if os.environ.get("FASTPROXY_REQUIRE_EXTENSIONS"):
            raise

if IMPLEMENTATION == "python":
    from fastproxy._wire_py import Writer, socket_fd  # noqa: F811

__all__ = ["IMPLEMENTATION", "Writer", "socket_fd"]
