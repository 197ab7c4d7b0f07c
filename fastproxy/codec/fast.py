"""httptools (llhttp) codec in Python: the pure twin of the compiled ``_http``.

framing.py splits the byte stream into heads and bodies; llhttp checks the
header grammar of each head (strict mode: bare LF/CR, obs-fold, CTLs,
whitespace before the colon, bad tokens) and hands us the header fields
through callbacks, so no byte-level scan of the head happens in Python here.
Its own CL/TE and keep-alive rules are relaxed (lenient flags) because
framing.build_request_head applies ours, identically for both codecs.
``_http`` applies the same rules with llhttp as a validator only (no
callbacks) and C loops for the rest; the codec tests run all three codecs.
"""

from __future__ import annotations

from collections.abc import Iterable

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser, HttpResponseParser

from fastproxy.codec import ProtocolError, RequestHead, ResponseHead
from fastproxy.codec.framing import (
    DUP_CL_PLACEHOLDER,
    SPECIAL,
    RequestFramer,
    ResponseFramer,
    bad_request,
    build_request_head,
    build_response_head,
    dedupe_content_length,
    parse_request_line,
    parse_status_line,
    upstream_error,
)

__all__ = ["RequestParser", "ResponseParser"]


def _relax(parser: HttpRequestParser | HttpResponseParser) -> HttpRequestParser | HttpResponseParser:
    # Only framing rules we enforce ourselves are relaxed; the grammar stays strict.
    parser.set_dangerous_leniencies(
        lenient_keep_alive=True, lenient_transfer_encoding=True, lenient_chunked_length=True
    )
    return parser


class _HeadCallbacks:
    """llhttp callbacks and the llhttp error policy shared by both directions."""

    __slots__ = ()
    _headers: list[tuple[bytes, bytes]]
    _special: list[tuple[bytes, bytes]]
    _done: bool

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        # llhttp drops the leading OWS of a value but keeps the trailing OWS.
        item = (name, value.rstrip(b" \t"))
        self._headers.append(item)
        if name in SPECIAL:
            self._special.append(item)

    def on_message_complete(self) -> None:
        self._done = True

    def _llhttp_error(self, head: bytes, exc: HttpParserError, error: ProtocolError) -> None:
        reason = str(exc)
        if reason.startswith("Pause on CONNECT/Upgrade"):
            # A 101 without upgrade headers: llhttp pauses and httptools
            # reports it as an error, but the head was complete and valid.
            self._done = False
        elif "Duplicate Content-Length" in reason:
            self._feed_deduped(head, error)
        else:
            raise error from None

    def _feed_deduped(self, head: bytes, error: ProtocolError) -> None:
        # Rare path: llhttp refuses any repeated Content-Length, we accept
        # identical ones (as Envoy does).  Reparse with the repeats renamed,
        # then give them their name back.
        head, lines = dedupe_content_length(head, error)
        self._headers = []
        self._done = False
        try:
            self._fresh().feed_data(head)  # type: ignore[attr-defined]
        except HttpParserUpgrade:
            pass
        except HttpParserError:
            raise error from None
        headers = self._headers
        for i in lines:
            name, value = headers[i]
            if name == DUP_CL_PLACEHOLDER:
                headers[i] = (b"content-length", value)
        self._special = [h for h in headers if h[0] in SPECIAL]
        self._done = False  # the current parser saw the error: replace it

    def _fresh(self) -> object:
        raise NotImplementedError


class RequestParser(_HeadCallbacks, RequestFramer):
    __slots__ = ("_p", "_headers", "_special", "_done")

    def __init__(self, sink: object, max_head_bytes: int = 61440, max_headers: int = 100) -> None:
        RequestFramer.__init__(self, sink, max_head_bytes, max_headers)
        self._done = False
        self._p = self._fresh()

    def _fresh(self) -> HttpRequestParser:
        return _relax(HttpRequestParser(self))

    def _parse_head(self, head: bytes) -> RequestHead:
        method, target, version, _ = parse_request_line(head)
        self._headers = []
        self._special = []
        self._done = False
        try:
            self._p.feed_data(head)
        except HttpParserUpgrade:
            pass  # whether it is an upgrade is decided by build_request_head
        except HttpParserError as exc:
            self._llhttp_error(head, exc, bad_request())
        if not self._done:
            # llhttp now expects a body (or was upgraded); framing.py reads
            # bodies, so the next head goes to a fresh parser.
            self._p = self._fresh()
        return build_request_head(method, target, version, self._headers, self._special, self._max_headers)


class ResponseParser(_HeadCallbacks, ResponseFramer):
    __slots__ = ("_p", "_headers", "_special", "_done")

    def __init__(self, sink: object, max_headers: int = 100, forward_skip: Iterable[bytes] | None = None) -> None:
        ResponseFramer.__init__(self, sink, max_headers, forward_skip)
        self._done = False
        self._p = self._fresh()

    def _fresh(self) -> HttpResponseParser:
        return _relax(HttpResponseParser(self))

    def _parse_head(self, head: bytes) -> ResponseHead:
        status, version, _ = parse_status_line(head)
        self._headers = []
        self._special = []
        self._done = False
        try:
            self._p.feed_data(head)
        except HttpParserUpgrade:
            pass
        except HttpParserError as exc:
            self._llhttp_error(head, exc, upstream_error())
        if not self._done:
            self._p = self._fresh()
        return build_response_head(status, version, self._headers, self._special, self._max_headers)
