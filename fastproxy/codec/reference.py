"""h11 codec: the pure-Python twin of fast.py and the oracle in tests.

framing.py splits the stream; each head goes to a fresh h11.Connection, so
pipelined requests never wait for a response.  h11 is laxer than llhttp
(strict) in places, so framing.check_head_bytes closes those gaps first:
bare LF/CR, obs-fold (h11 unfolds it), CTLs and DEL in values.  h11 also
applies framing rules of its own (Host, CL, TE) with other outcomes than
ours (e.g. 400 where we owe 501, coalescing "3, 3"); those errors only come
after its grammar checks passed, so we ignore them and apply ours.
The header list is built here from the raw head rather than from h11's
event, because h11 rewrites values (lower-cases Transfer-Encoding, drops
repeated Content-Length).
"""

from __future__ import annotations

import h11

from fastproxy.codec import RequestHead, ResponseHead
from fastproxy.codec.framing import (
    SPECIAL,
    RequestFramer,
    ResponseFramer,
    bad_request,
    build_request_head,
    build_response_head,
    check_head_bytes,
    parse_request_line,
    parse_status_line,
    upstream_error,
)

__all__ = ["RequestParser", "ResponseParser"]

_PROBE_HEADERS = [("Host", "h"), ("Connection", "upgrade"), ("Upgrade", "x")]

# Messages of h11's framing-rule errors (raised after its grammar checks).
_H11_RULES = (
    "Missing mandatory Host",
    "Found multiple Host",
    "conflicting Content-Length",
    "bad Content-Length",
    "multiple Transfer-Encoding",
    "Only Transfer-Encoding",
)


def _grammar_ok(conn: h11.Connection, head: bytes, expected: type) -> bool:
    conn.receive_data(head)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError as exc:
        return str(exc).startswith(_H11_RULES)
    return isinstance(event, expected)


def _split_headers(head: bytes, line_end: int) -> list[tuple[bytes, bytes]]:
    headers = []
    if line_end + 4 < len(head):
        for line in head[line_end + 2 : -4].split(b"\r\n"):
            name, _, value = line.partition(b":")
            headers.append((name.lower(), value.strip(b" \t")))
    return headers


class RequestParser(RequestFramer):
    __slots__ = ()

    def _parse_head(self, head: bytes) -> RequestHead:
        method, target, version, line_end = parse_request_line(head)
        if not check_head_bytes(head):
            raise bad_request()
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=len(head) + 1)
        if not _grammar_ok(conn, head, h11.Request):
            raise bad_request()
        headers = _split_headers(head, line_end)
        special = [h for h in headers if h[0] in SPECIAL]
        return build_request_head(method, target, version, headers, special, self._max_headers)


class ResponseParser(ResponseFramer):
    __slots__ = ()

    def _parse_head(self, head: bytes) -> ResponseHead:
        status, version, line_end = parse_status_line(head)
        if not check_head_bytes(head):
            raise upstream_error()
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=len(head) + 1)
        # h11 only reads a response after a request; proposing an upgrade
        # lets it accept a 101 as well.
        conn.send(h11.Request(method="GET", target="/", headers=_PROBE_HEADERS))
        conn.send(h11.EndOfMessage())
        if not _grammar_ok(conn, head, (h11.Response, h11.InformationalResponse)):
            raise upstream_error()
        headers = _split_headers(head, line_end)
        special = [h for h in headers if h[0] in SPECIAL]
        return build_response_head(status, version, headers, special, self._max_headers)
