"""The heads the codecs hand to the pipeline: one request head, one response
head; what a parser reports to (RequestEvents, ResponseEvents), and the base
of every parser (Parser).

Compiled with Cython in pure-Python mode (types in messages.pxd), so the
pipeline reads their fields as C struct members; this file is also the pure
twin (fastproxy/_twins.py).  Every codec builds them: _http.pyx directly,
fast.py, reference.py and framing.py through the constructors.
"""

from __future__ import annotations

# What a codec decides about a head, field by field (the rest of each class
# is how the compiled codec defers the work): codecs agree on these.
REQUEST_FIELDS = (
    "method", "path", "authority", "version", "headers", "host", "keep_alive", "chunked", "content_length", "upgrade",
    "expect_continue",
)  # fmt: skip
RESPONSE_FIELDS = ("status", "headers", "keep_alive", "chunked", "content_length", "version")


class DeferredHeaders:
    """A head's header list, which the compiled codec leaves unsplit: `headers`
    splits it from the head's validated bytes (`_raw`, lines from `_start`) by
    the codec's `_lines` on first use, and most requests and responses never
    ask.  The other codecs hand the list over split."""

    __slots__ = ("_headers", "_raw", "_start", "_lines")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self._headers = headers
        self._raw = None
        self._start = 0
        self._lines = None

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """Every header in order, names lower-cased, values OWS-trimmed."""
        if self._headers is None:
            self._headers = self._lines.split(self)
        return self._headers

    @headers.setter
    def headers(self, value: list[tuple[bytes, bytes]]) -> None:
        self._headers = value


class RequestHead(DeferredHeaders):
    __slots__ = (
        "method",
        "path",
        "authority",
        "version",
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
        DeferredHeaders.__init__(self, headers)
        self.host = host  # the single Host header value, None when absent
        self.keep_alive = keep_alive  # connection may be reused after this request
        self.chunked = chunked  # request body uses chunked framing
        self.content_length = content_length  # -1 when none
        self.upgrade = upgrade  # Connection: upgrade with an Upgrade header
        self.expect_continue = expect_continue  # Expect: 100-continue

    def header_value(self, name: bytes) -> bytes | None:
        """The value of header `name` (lower-case), repeats joined with ","; None when absent.

        Reads the head's bytes when the list is deferred: a route's header
        condition costs no header list."""
        if self._headers is None:
            return self._lines.value(self, name)
        values = [v for n, v in self._headers if n == name]
        if not values:
            return None
        return values[0] if len(values) == 1 else b",".join(values)


class ResponseHead(DeferredHeaders):
    __slots__ = ("status", "keep_alive", "chunked", "content_length", "version", "block", "has_date")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        chunked: bool,
        content_length: int,
        version: bytes,
    ) -> None:
        DeferredHeaders.__init__(self, headers)
        self.status = status
        self.keep_alive = keep_alive
        self.chunked = chunked
        self.content_length = content_length  # -1 when none (chunked or close-delimited)
        self.version = version
        # The header lines as the proxy forwards them ("name: value\r\n",
        # names lower-cased, minus the names the parser was told to skip),
        # when the codec renders them while it splits the head (the compiled
        # one does); None otherwise.  `has_date`: a Date header was among them.
        self.block = None
        self.has_date = False


class Parser:
    """What the pipeline asks of every parser (the whole interface: codec/__init__.py).
    A compiled base class, so the compiled pipeline calls these in C."""

    __slots__ = ()

    def feed(self, data: bytes) -> None:
        raise NotImplementedError

    def head_started(self) -> bool:
        """Whether part of the next head has arrived (idle or head timeout)."""
        raise NotImplementedError


class RequestEvents:
    """What a request parser reports to.  Any object with these methods will do;
    the compiled codec calls a sink that derives from this class in C."""

    __slots__ = ()

    def on_request_head(self, head: RequestHead) -> None:
        raise NotImplementedError

    def on_request_body(self, data: bytes) -> None:
        raise NotImplementedError

    def on_request_end(self) -> None:
        raise NotImplementedError

    def on_upgrade(self, rest: bytes) -> None:
        """The head asked for an upgrade: `rest` is what followed it in the same read."""
        raise NotImplementedError


class ResponseEvents:
    """What a response parser reports to (see RequestEvents)."""

    __slots__ = ()

    def on_response_head(self, head: ResponseHead) -> None:
        raise NotImplementedError

    def on_response_body(self, data: bytes) -> None:
        raise NotImplementedError

    def on_response_end(self) -> None:
        raise NotImplementedError

    def on_upgrade(self, rest: bytes) -> None:
        """A 101 switched protocols: `rest` is what followed its head in the same read."""
        raise NotImplementedError
