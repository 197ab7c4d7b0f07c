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
from collections.abc import Iterable
from typing import Protocol

from fastproxy._twins import is_compiled

# The parsed heads (compiled with Cython in pure-Python mode; see messages.py).
from fastproxy.codec import messages
from fastproxy.codec.messages import RequestHead, ResponseHead


class ProtocolError(Exception):
    """Malformed message.  `status` is the reply owed to the peer (for requests)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


__all__ = ["ProtocolError", "RequestHead", "ResponseHead", "select"]


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
    def __init__(self, sink: object, max_headers: int = 100, forward_skip: Iterable[bytes] | None = None) -> None:
        """`forward_skip`: header names left out of ResponseHead.block, which a
        codec may render while it splits the head (the compiled one does)."""

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
            if not is_compiled(messages):
                # _http fills the compiled heads' C fields: never pair it with their twins.
                raise ImportError("fastproxy.codec.messages runs as its pure twin")
            from fastproxy.codec._http import RequestParser, ResponseParser
        except ImportError:
            if os.environ.get("FASTPROXY_REQUIRE_EXTENSIONS") and not no_ext:
                raise
            from fastproxy.codec.fast import RequestParser, ResponseParser
    else:
        raise ValueError(f"unknown codec {name!r} (choose httptools or h11)")
    return RequestParser, ResponseParser
