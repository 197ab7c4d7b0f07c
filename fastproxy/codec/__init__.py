"""HTTP/1.1 codec: bytes in, request/response heads and body chunks out.

Three implementations share this interface: ``_http`` (compiled, httptools /
llhttp validating, the hot path), ``fast`` (its pure twin: the same rules
glued to httptools in Python) and ``reference`` (h11, the pure-Python codec
and test oracle).
``framing`` adds our own checks on top of either, so both reject exactly the
same malformed input.  ``select()`` picks one implementation once.

Sinks are plain objects with these methods (the codec never does I/O):

request sink (the downstream protocol):
    on_request_head(head: RequestHead) -> None
    on_request_body(data: bytes) -> None
    on_request_end() -> None
    on_upgrade(rest: bytes) -> None   # after head+end of an upgrade request;
                                      # `rest` are the tunnel bytes that followed
                                      # the head; the parser takes no more input

response sink (an upstream connection):
    on_response_head(head: ResponseHead) -> None
    on_response_body(data: bytes) -> None
    on_response_end() -> None
    on_upgrade(rest: bytes) -> None   # after a 101 response head
"""

from __future__ import annotations

import os
from typing import Protocol


class ProtocolError(Exception):
    """Malformed message.  `status` is the reply owed to the peer (for requests)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class RequestHead:
    __slots__ = (
        "method",
        "path",
        "authority",
        "version",
        "headers",
        "host",
        "keep_alive",
        "chunked",
        "content_length",
        "upgrade",
        "expect_continue",
    )

    def __init__(
        self,
        method: bytes,
        path: bytes,
        authority: bytes | None,
        version: bytes,
        headers: list[tuple[bytes, bytes]],
        host: bytes | None,
        keep_alive: bool,
        chunked: bool,
        content_length: int,
        upgrade: bool,
        expect_continue: bool,
    ) -> None:
        self.method = method  # b"GET"
        # Origin-form target (path and query).  For an absolute-form target
        # (GET http://host/p?q) this is b"/p?q" and `authority` is b"host".
        self.path = path
        self.authority = authority
        self.version = version  # b"1.1" or b"1.0"
        # Every header in order, names lower-cased, values as sent (OWS trimmed).
        # Hop-by-hop headers are still here; the pipeline drops them.
        self.headers = headers
        self.host = host  # the single Host header value, None when absent
        self.keep_alive = keep_alive  # connection may be reused after this request
        self.chunked = chunked  # request body uses chunked framing
        self.content_length = content_length  # -1 when none
        self.upgrade = upgrade  # Connection: upgrade with an Upgrade header
        self.expect_continue = expect_continue  # Expect: 100-continue


class ResponseHead:
    __slots__ = ("status", "headers", "keep_alive", "chunked", "content_length", "version")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        chunked: bool,
        content_length: int,
        version: bytes,
    ) -> None:
        self.status = status
        self.headers = headers  # names lower-cased, in order
        self.keep_alive = keep_alive
        self.chunked = chunked
        self.content_length = content_length  # -1 when none (chunked or close-delimited)
        self.version = version


class RequestParserAPI(Protocol):
    def __init__(self, sink: object, max_head_bytes: int = 61440, max_headers: int = 100) -> None: ...

    def feed(self, data: bytes) -> None:
        """Parse `data`; call the sink; raise ProtocolError on malformed input.

        Pipelined requests in one chunk are all delivered in order.  After a
        ProtocolError the parser is dead.
        """

    def head_started(self) -> bool:
        """True once any byte of a request head has been received and its head
        is not complete yet (used for the 408 on a head timeout)."""


class ResponseParserAPI(Protocol):
    def __init__(self, sink: object, max_headers: int = 100) -> None: ...

    def expect_no_body(self) -> None:
        """The next response answers a HEAD request: it has no body."""

    def feed(self, data: bytes) -> None:
        """Raise ProtocolError (status 502) on a malformed response."""

    def feed_eof(self) -> None:
        """The upstream closed: ends a close-delimited body (calls
        on_response_end), or raises ProtocolError when a message was cut short."""


def select(name: str | None = None) -> tuple[type, type]:
    """Return (RequestParser, ResponseParser) for `name` ("httptools" or "h11").

    Default: httptools, unless FASTPROXY_NO_EXTENSIONS is set.  "httptools"
    is the compiled module ``_http`` when it is built, else its pure twin
    ``fast`` (FASTPROXY_NO_EXTENSIONS forces the twin,
    FASTPROXY_REQUIRE_EXTENSIONS forbids it).
    """
    no_ext = bool(os.environ.get("FASTPROXY_NO_EXTENSIONS"))
    if name is None:
        name = "h11" if no_ext else "httptools"
    if name == "h11":
        from fastproxy.codec.reference import RequestParser, ResponseParser
    elif name == "httptools":
        try:
            if no_ext:
                raise ImportError("FASTPROXY_NO_EXTENSIONS is set")
            from fastproxy.codec._http import RequestParser, ResponseParser
        except ImportError:
            if os.environ.get("FASTPROXY_REQUIRE_EXTENSIONS") and not no_ext:
                raise
            from fastproxy.codec.fast import RequestParser, ResponseParser
    else:
        raise ValueError(f"unknown codec {name!r} (choose httptools or h11)")
    return RequestParser, ResponseParser
