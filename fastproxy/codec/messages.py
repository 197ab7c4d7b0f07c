"""The heads the codecs hand to the pipeline: one request head, one response head.

Compiled with Cython in pure-Python mode (types in messages.pxd), so the
pipeline reads their fields as C struct members; this file is also the pure
twin (fastproxy/_twins.py).  Every codec builds them: _http.pyx directly,
fast.py, reference.py and framing.py through the constructors.
"""

from __future__ import annotations


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
