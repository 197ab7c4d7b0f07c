"""`--access-log PATH|-`: Istio's default TEXT access-log line per request
(traffic-semantics.md 15.2).

The event loop only formats the line and appends it to a deque; a daemon
thread writes what has accumulated in one write() per batch, so a slow disk
or a full pipe never stalls request handling.  With several workers each one
appends to the same file opened with O_APPEND, one whole batch per write, so
lines do not interleave.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastproxy.pipeline.exchange import Exchange

FLUSH_INTERVAL = 0.1  # seconds between batches
MAX_PENDING = 100_000  # lines kept while the writer is behind; older ones are dropped

# %RESPONSE_CODE_DETAILS% for local replies, by the first response flag.
_DETAILS = {
    "NR": "route_not_found",
    "FI": "fault_filter_abort",
    "UH": "no_healthy_upstream",
    "NC": "cluster_not_found",
    "UT": "upstream_response_timeout",
    "UF": "upstream_reset_before_response_started{connection_failure}",
    "UC": "upstream_reset_before_response_started{connection_termination}",
    "UPE": "upstream_reset_before_response_started{protocol_error}",
    "UO": "upstream_reset_before_response_started{overflow}",
    "DC": "downstream_remote_disconnect",
}


def _iso(ts: float) -> str:
    ms = int(ts * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{ms:03d}Z"


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for k, v in headers:
        if k == name:
            return v.decode("latin-1")
    return "-"


def _addr(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return "-"


def format_line(ex: Exchange, wall_offset: float, now: float) -> str:
    """One log line (without the newline) for a finished Exchange."""
    head = ex.head
    headers = head.headers
    flags = ex.flags or "-"
    first = flags.split(",", 1)[0]
    if ex.response_started:
        details = "via_upstream"
    elif ex.route is not None and ex.route.action != 0 and not ex.flags:
        details = "direct_response"
    else:
        details = _DETAILS.get(first, "-")
    request_id = _header(headers, b"x-request-id")
    if request_id == "-" and ex.up_head:
        # The proxy generated one: it is in the head sent upstream.
        i = ex.up_head.find(b"\r\nx-request-id: ")
        if i >= 0:
            end = ex.up_head.find(b"\r\n", i + 2)
            request_id = ex.up_head[i + 16 : end].decode("latin-1")
    cl = head.content_length
    received = cl if cl > 0 else ex.body_size
    ep = ex.endpoint
    dest = ex.dest
    route = ex.route
    transport = ex.ds.transport
    local = _addr(transport.get_extra_info("sockname")) if transport is not None else "-"
    remote = _addr(transport.get_extra_info("peername")) if transport is not None else "-"
    return (
        f'[{_iso(ex.start + wall_offset)}] "{head.method.decode("latin-1")} {head.path.decode("latin-1")} '
        f'HTTP/{head.version.decode("latin-1")}" {ex.status} {flags} {details} - "-" '
        f"{received} {ex.bytes_sent} {int((now - ex.start) * 1000)} "
        f"{ex.service_time if ex.service_time >= 0 else '-'} "
        f'"{_header(headers, b"x-forwarded-for")}" "{_header(headers, b"user-agent")}" "{request_id}" '
        f'"{ex.authority.decode("latin-1") or "-"}" "{f"{ep.address}:{ep.port}" if ep is not None else "-"}" '
        f"{dest.cluster_name if dest is not None else '-'} - {local} {remote} - "
        f"{route.name if route is not None and route.name else '-'}"
    )


class AccessLog:
    def __init__(self, target: str, loop: Any) -> None:
        self.loop = loop
        self.wall_offset = time.time() - time.monotonic()
        if target == "-":
            self.fd = sys.stdout.fileno()
            self.own_fd = False
        else:
            self.fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self.own_fd = True
        self.pending: deque[str] = deque(maxlen=MAX_PENDING)
        self.wake = threading.Event()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="fastproxy-access-log", daemon=True)
        self.thread.start()

    def log(self, ex: Exchange) -> None:
        self.pending.append(format_line(ex, self.wall_offset, time.monotonic()))

    def _drain(self) -> None:
        pending = self.pending
        lines = []
        # popleft is atomic, so lines appended meanwhile by the loop are kept for the next batch.
        while pending:
            lines.append(pending.popleft())
        if lines:
            data = ("\n".join(lines) + "\n").encode("utf-8", "replace")
            try:
                while data:
                    n = os.write(self.fd, data)
                    data = data[n:]
            except OSError:
                pass  # a closed stdout or a full disk must not take the proxy down

    def _run(self) -> None:
        while not self.stopped:
            self.wake.wait(FLUSH_INTERVAL)
            self._drain()

    def close(self) -> None:
        """Write what is left and stop the writer (called at shutdown)."""
        self.stopped = True
        self.wake.set()
        self.thread.join(5)
        self._drain()
        if self.own_fd:
            os.close(self.fd)


__all__ = ["AccessLog", "format_line"]
