"""Message framing and the checks both codecs share.

Why the codecs only parse heads: llhttp and h11 disagree on a lot of
malformed input (below), and httptools does not say where a message ended
inside a buffer, so pipelined requests after a chunked body could not be
located exactly.  So this module owns everything around the head:

* it finds each head (up to and including the blank line) and counts its
  bytes as they arrive: 431 as soon as the limit is crossed, never
  buffering more; a bare LF in an unfinished head is a 400 at once (that
  head would never end);
* it checks the start line (method, target form, version: 400/505);
* the implementation (``fast`` or ``reference``) checks the header grammar
  with its library (400) and returns the header list;
* ``build_request_head`` / ``build_response_head`` then apply the header
  count limit (431) and the framing rules (CL/TE, Host, keep-alive,
  upgrade: 400/501), once, for both;
* bodies (Content-Length, chunked, close-delimited) are cut here and handed
  to the sink as they arrive; a body is never accumulated.

So the outcome for a request is decided in this order, by shared code
except for step 3: bare LF (400) > head size (431) > start line (400/505) >
header grammar (400) > header count (431) > framing rules (400, then 501).

What the libraries accept on their own (httptools 0.9 / llhttp strict, h11
0.16), measured while writing this; the gaps are closed as noted:

* llhttp accepts, h11 refuses: double SP in the request line, HTTP/0.9
  lines (``GET /``), ``HTTP/2.0``, leading empty lines, a missing or
  repeated Host, ``Transfer-Encoding: gzip, chunked``  -> start-line regex,
  build_request_head.
* h11 accepts, llhttp refuses: any method token (``FOO``, ``get``),
  versions 1.2-1.9, bare LF line endings, obs-fold (h11 unfolds it), CTLs
  and DEL in values, CL with TE, ``Content-Length: 3, 3``, repeated
  identical CL (llhttp refuses any repeat) -> METHODS, check_head_bytes,
  build_request_head, dedupe_content_length.
* Both accept: ``GET *``, fragments, ``ftp://`` targets, HTTP/1.0 with TE,
  control bytes in a reason phrase -> split_target, the status-line regex.
* Both refuse, with other statuses than ours (llhttp: HTTP/1.2 as a generic
  error; h11: TE gzip as 400) -> our start-line check runs first, and
  framing rules are ours (llhttp runs with its CL/TE leniencies on).
* Chunked bodies are decoded here (llhttp refuses ``3 \r\n`` and a bare LF
  after the last chunk, h11 accepts both): hex size, optional extensions
  without CTLs, CRLF everywhere.

Rules that are a choice, not forced by the RFC (documented for the lead):

* Repeated Content-Length headers with byte-identical values are coalesced
  (Envoy does the same); differing values are a 400.
* Transfer-Encoding must be exactly one ``chunked`` coding (case-insensitive),
  in a single header.  Anything else, including ``chunked, chunked`` or two
  Transfer-Encoding headers, is 501 -- unless a 400 rule also applies, which
  wins (HTTP/1.0 with Transfer-Encoding, CL together with TE, an empty
  Transfer-Encoding value, bad CL, Host).
* A Host value must be uri-host [":" port] (RFC 9110 7.2), else 400.
* A request line that looks like ``METHOD target HTTP/d.d`` with another
  version is 505; anything else that is not ``... HTTP/1.0|1.1`` is 400
  (so an HTTP/0.9 line ``GET /`` is 400).
* Methods are llhttp's HTTP method list; CONNECT is rejected with 400
  (no CONNECT tunnelling), as is ``*`` for anything but OPTIONS, a
  fragment (``#``) in the target, and absolute-form targets with a scheme
  other than http/https or with userinfo.
* Empty lines (CRLF) before a request line are skipped, as RFC 9112 2.2
  allows; a bare LF there is a bare-LF error.
* Chunk extensions are accepted and ignored; trailers are checked like
  header lines and dropped.
* Response heads follow the same grammar; every response error is
  ProtocolError(502, "protocol error").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from fastproxy.codec import ProtocolError, RequestHead, ResponseHead
from fastproxy.codec.messages import Parser

BAD_REQUEST = "Bad Request"
TOO_LARGE = "Request Header Fields Too Large"
NOT_IMPLEMENTED = "Not Implemented"
BAD_VERSION = "HTTP Version Not Supported"
UPSTREAM_ERROR = "protocol error"

# Envoy's default max_response_headers_kb is 60 KiB, like the request side.
RESPONSE_MAX_HEAD_BYTES = 61440
# llhttp refuses Content-Length values above 2**64-1 by itself; we cap lower
# so that both codecs reject the same values and an int64 always holds it.
MAX_CONTENT_LENGTH = 2**63 - 1
# A chunk-size line (size + extensions) or a trailer line longer than this is
# rejected instead of being buffered.
MAX_CHUNK_LINE = 4096

# llhttp 9's HTTP request methods (RTSP/ICE ones are refused by llhttp in an
# HTTP/1.x request); CONNECT is left out on purpose (no tunnelling).
METHODS = frozenset(
    (
        b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE",
        b"COPY", b"LOCK", b"MKCOL", b"MOVE", b"PROPFIND", b"PROPPATCH", b"SEARCH",
        b"UNLOCK", b"BIND", b"REBIND", b"UNBIND", b"ACL", b"REPORT", b"MKACTIVITY",
        b"CHECKOUT", b"MERGE", b"M-SEARCH", b"NOTIFY", b"SUBSCRIBE", b"UNSUBSCRIBE",
        b"PURGE", b"MKCALENDAR", b"LINK", b"UNLINK", b"SOURCE", b"QUERY",
    )
)  # fmt: skip

# Headers whose values decide framing; the codecs collect these while
# building the header list so the rules below never rescan all headers.
SPECIAL = frozenset((b"host", b"content-length", b"transfer-encoding", b"connection", b"upgrade", b"expect"))

# 1.1 µs per request line on the bench machine, against 3.6 µs for the same
# checks done with find/slice (bench/micro_codec.py).
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^ \r\n]+) HTTP/1\.([01])\r\n")
_VERSIONISH = re.compile(rb"[^ ]+ [^ ]+ HTTP/[0-9]\.[0-9]")
_ABSOLUTE = re.compile(rb"(?i:https?)://((?:[A-Za-z0-9\-._~%!$&'()*+,;=]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?)([/?][^#]*)?")
# RFC 9110 7.2: Host = uri-host [ ":" port ]; anything else (spaces, "/",
# "@", a list) is refused rather than routed and forwarded upstream.
_HOST = re.compile(rb"(?:[A-Za-z0-9\-._~%!$&'()*+,;=]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?")
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: [^\x00-\x08\x0a-\x1f\x7f]*)?")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\x00-\x08\x0a-\x1f\x7f]*)?\r\n")
_TRAILER_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\x00-\x08\x0a-\x1f\x7f]*\r\n")
_DUP_CL = re.compile(rb"\r\n(content-length)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*(?=\r\n)", re.I)
# Bytes forbidden anywhere in a head once line endings are known to be CRLF:
# CTLs other than HTAB (CR and LF are checked by counting), and DEL.
_BARE_LF = re.compile(rb"(?<!\r)\n")
_HEAD_CTL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def bad_request() -> ProtocolError:
    return ProtocolError(400, BAD_REQUEST)


def upstream_error() -> ProtocolError:
    return ProtocolError(502, UPSTREAM_ERROR)


# --------------------------------------------------------------------------- start lines


def parse_request_line(head: bytes) -> tuple[bytes, bytes, bytes, int]:
    """Return (method, target, version, end of line) or raise 400/505."""
    m = _REQUEST_LINE.match(head)
    if m is None:
        line_end = head.find(b"\r\n")
        if _VERSIONISH.fullmatch(head, 0, line_end) and head[line_end - 3 : line_end] not in (b"1.1", b"1.0"):
            raise ProtocolError(505, BAD_VERSION)
        # includes a second space (double SP, SP inside the target), which
        # llhttp accepts and h11 does not
        raise bad_request()
    method, target, minor = m.groups()
    if method not in METHODS:
        raise bad_request()
    return method, target, b"1.1" if minor == b"1" else b"1.0", m.end() - 2


def split_target(method: bytes, target: bytes) -> tuple[bytes, bytes | None]:
    """Origin-form path and authority (absolute-form) of a request target."""
    if target[0] == 47:  # "/": the common case
        if b"#" in target:
            raise bad_request()
        return target, None
    if target == b"*":
        if method == b"OPTIONS":
            return target, None
        raise bad_request()
    m = _ABSOLUTE.fullmatch(target)
    if m is None:
        raise bad_request()
    path = m.group(2)
    if not path:
        path = b"/"
    elif path[0] == 63:  # "?": http://h?q has the path "/"
        path = b"/" + path
    return path, m.group(1)


def parse_status_line(head: bytes) -> tuple[int, bytes, int]:
    """Return (status, version, end of line) or raise 502."""
    line_end = head.find(b"\r\n")
    m = _STATUS_LINE.fullmatch(head, 0, line_end)
    if m is None:
        raise upstream_error()
    return int(m.group(2)), b"1.1" if m.group(1) == b"1" else b"1.0", line_end


# --------------------------------------------------------------------------- byte checks


def check_head_bytes(head: bytes) -> bool:
    """True when every line ends in CRLF, no line folds, and no CTL/DEL occurs.

    llhttp (strict) enforces all of this itself; h11 accepts bare LF,
    obs-fold and CTLs in values, so the reference codec calls this first.
    """
    n = head.count(b"\r\n")
    return (
        head.count(b"\n") == n
        and head.count(b"\r") == n
        and b"\n " not in head
        and b"\n\t" not in head
        and _HEAD_CTL.search(head) is None
    )


def dedupe_content_length(head: bytes, error: ProtocolError) -> tuple[bytes, list[int]]:
    """llhttp refuses any repeated Content-Length; we coalesce identical ones.

    Returns the head with every Content-Length line after the first renamed
    to a same-length placeholder (so llhttp parses it as an ordinary header),
    and the header indexes of the renamed lines.  Raises `error` when the
    values differ.
    """
    found = list(_DUP_CL.finditer(head))
    if len({m.group(2) for m in found}) != 1:
        raise error
    out = bytearray(head)
    lines = []
    for m in found[1:]:
        start = m.start(1)
        out[start : start + 14] = DUP_CL_PLACEHOLDER
        # CRLFs before the name = lines before it, the start line included
        lines.append(head.count(b"\r\n", 0, start) - 1)
    return bytes(out), lines


DUP_CL_PLACEHOLDER = b"x-fastproxy-cl"  # as long as "content-length"


# --------------------------------------------------------------------------- framing rules


def _tokens(value: bytes) -> list[bytes] | tuple[bytes, ...]:
    return [t.strip(b" \t").lower() for t in value.split(b",")]


# Connection values seen on nearly every request, tokenised ahead of time.
CONNECTION_COMMON = {
    v: (v.lower(),) for v in (b"keep-alive", b"Keep-Alive", b"close", b"Close", b"upgrade", b"Upgrade")
}


def build_request_head(
    method: bytes,
    target: bytes,
    version: bytes,
    headers: list[tuple[bytes, bytes]],
    special: list[tuple[bytes, bytes]],
    max_headers: int,
) -> RequestHead:
    """Apply the request framing rules; `special` = the SPECIAL headers in order.

    Runs once the header grammar was accepted, so a head that is both
    malformed and too long gets the grammar's 400 from either codec.
    """
    if len(headers) > max_headers:
        raise ProtocolError(431, TOO_LARGE)
    if target[0] == 47 and target.find(b"#") < 0:  # origin-form, the common case (find: see _http.pyx)
        path = target
        authority = None
    else:
        path, authority = split_target(method, target)
    host = None
    hosts = 0
    cl_raw = None
    cl_conflict = False
    te = None
    tes = 0
    conn = None
    has_upgrade = False
    expect = False
    for name, value in special:
        if name == b"host":
            host = value
            hosts += 1
        elif name == b"content-length":
            if cl_raw is None:
                cl_raw = value
            elif value != cl_raw:
                cl_conflict = True
        elif name == b"transfer-encoding":
            te = value if te is None or not value else te
            tes += 1
        elif name == b"connection":
            conn = value if conn is None else conn + b"," + value
        elif name == b"upgrade":
            has_upgrade = True
        elif value.lower() == b"100-continue":  # expect
            expect = True
    content_length = -1
    if cl_raw is not None:
        if cl_conflict or not cl_raw.isdigit():
            raise bad_request()
        content_length = int(cl_raw)
        if content_length > MAX_CONTENT_LENGTH:
            raise bad_request()
    if hosts > 1 or (hosts == 0 and version == b"1.1"):
        raise bad_request()
    if host is not None and _HOST.fullmatch(host) is None:
        raise bad_request()
    chunked = False
    if tes:
        # An empty value is a syntax error (llhttp says so first), not an
        # unknown coding.
        if version == b"1.0" or cl_raw is not None or not te:
            raise bad_request()
        if tes > 1 or te.lower() != b"chunked":
            raise ProtocolError(501, NOT_IMPLEMENTED)
        chunked = True
    upgrade = False
    if conn is None:
        keep_alive = version == b"1.1"
    else:
        tokens = CONNECTION_COMMON.get(conn) or _tokens(conn)
        if b"close" in tokens:
            keep_alive = False
        else:
            keep_alive = version == b"1.1" or b"keep-alive" in tokens
        upgrade = has_upgrade and b"upgrade" in tokens
    return RequestHead(
        method, path, authority, version, headers, host, keep_alive, chunked, content_length, upgrade, expect
    )


def build_response_head(
    status: int,
    version: bytes,
    headers: list[tuple[bytes, bytes]],
    special: list[tuple[bytes, bytes]],
    max_headers: int,
) -> ResponseHead:
    """Apply the response framing rules (every violation is a 502)."""
    if len(headers) > max_headers:
        raise upstream_error()
    cl_raw = None
    te = None
    tes = 0
    conn = None
    for name, value in special:
        if name == b"content-length":
            if cl_raw is None:
                cl_raw = value
            elif value != cl_raw:
                raise upstream_error()
        elif name == b"transfer-encoding":
            te = value
            tes += 1
        elif name == b"connection":
            conn = value if conn is None else conn + b"," + value
    content_length = -1
    if cl_raw is not None:
        if not cl_raw.isdigit() or tes:
            raise upstream_error()
        content_length = int(cl_raw)
        if content_length > MAX_CONTENT_LENGTH:
            raise upstream_error()
    chunked = False
    if tes:
        if tes > 1 or te.lower() != b"chunked":
            raise upstream_error()
        chunked = True
    if conn is None:
        keep_alive = version == b"1.1"
    else:
        tokens = CONNECTION_COMMON.get(conn) or _tokens(conn)
        if b"close" in tokens:
            keep_alive = False
        else:
            keep_alive = version == b"1.1" or b"keep-alive" in tokens
    return ResponseHead(status, headers, keep_alive, chunked, content_length, version)


# --------------------------------------------------------------------------- body framing

_HEAD = 0
_BODY = 1  # Content-Length body, `_remaining` bytes to go
_CHUNK_SIZE_LINE = 2
_CHUNK_DATA = 3
_CHUNK_CRLF = 4
_TRAILERS = 5
_EOF_BODY = 6  # response body delimited by connection close
_UPGRADED = 7
_DEAD = 8


class _Framer(Parser):
    """Head splitting, head limits and body framing shared by both parsers.

    Subclasses set `_on_body` / `_on_end` and implement `_on_head(head, rest)`,
    which parses the head and returns the state to continue in.
    """

    __slots__ = (
        "_sink",
        "_max_head",
        "_max_headers",
        "_state",
        "_buf",
        "_searched",
        "_remaining",
        "_line",
        "_trailer_bytes",
        "_error",
        "_on_body",
        "_on_end",
    )

    # (status, reason) for "head too large" and for broken body framing
    _limit_error: tuple[int, str]
    _framing_error: tuple[int, str]

    def __init__(self, sink: object, max_head_bytes: int, max_headers: int) -> None:
        self._sink = sink
        self._max_head = max_head_bytes
        self._max_headers = max_headers
        self._state = _HEAD
        self._buf: bytearray | None = None  # partial head
        self._searched = 0
        self._remaining = 0
        self._line: bytearray | None = None  # partial chunk-size / trailer line
        self._trailer_bytes = 0
        self._error: ProtocolError | None = None

    def head_started(self) -> bool:
        return self._state == _HEAD and bool(self._buf)

    def feed(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        try:
            self._feed(data)
        except ProtocolError as exc:
            self._error = exc
            self._state = _DEAD
            self._buf = self._line = None
            raise

    def _fail(self) -> ProtocolError:
        return ProtocolError(*self._framing_error)

    def _too_large(self) -> ProtocolError:
        return ProtocolError(*self._limit_error)

    def _feed(self, data: bytes) -> None:
        pos = 0
        n = len(data)
        while pos < n:
            state = self._state
            if state == _HEAD:
                buf = self._buf
                if buf is None:
                    # Empty lines between messages are skipped, not counted.
                    while data.startswith(b"\r\n", pos):
                        pos += 2
                    if pos >= n:
                        return
                    end = data.find(b"\r\n\r\n", pos)
                    if end < 0:
                        # A head with a bare LF would never end: refuse it now.
                        # It takes precedence over the size limit, so that the
                        # outcome does not depend on how the bytes arrived.
                        # (A LF right at `pos` is checked on its own: the
                        # lookbehind would see the previous message's last byte.)
                        if data[pos] == 10 or _BARE_LF.search(data, pos, pos + self._max_head + 1) is not None:
                            raise self._fail()
                        if n - pos > self._max_head:
                            raise self._too_large()
                        self._buf = bytearray(data[pos:] if pos else data)
                        self._searched = 0
                        return
                    end += 4
                    head = data if (pos == 0 and end == n) else data[pos:end]
                    pos = end
                else:
                    old = len(buf)
                    buf += data[pos:] if pos else data
                    if buf.startswith(b"\r\n"):
                        k = 0
                        while buf.startswith(b"\r\n", k):
                            k += 2
                        del buf[:k]
                        self._searched = 0
                    end = buf.find(b"\r\n\r\n", self._searched)
                    if end < 0:
                        # only the new bytes: the lookbehind still sees the old ones
                        if _BARE_LF.search(buf, max(old - 1, 0), self._max_head + 1) is not None:
                            raise self._fail()
                        if len(buf) > self._max_head:
                            raise self._too_large()
                        self._searched = max(len(buf) - 3, 0)
                        return
                    end += 4
                    head = bytes(buf[:end])
                    data = bytes(buf[end:])
                    pos = 0
                    n = len(data)
                    self._buf = None
                try:
                    if len(head) > self._max_head:
                        raise self._too_large()
                    self._state = self._on_head(head, data, pos)
                except ProtocolError as exc:
                    # Same precedence as for an unfinished head: a bare LF in
                    # the first max+1 bytes is a 400 before any 431/505.
                    # Checked only on this error path to keep heads cheap.
                    if exc.status != 400 and _BARE_LF.search(head, 0, self._max_head + 1):
                        raise self._fail() from None
                    raise
                if self._state == _UPGRADED:
                    return
            elif state == _BODY:
                take = n - pos
                if take >= self._remaining:
                    take = self._remaining
                    self._on_body(data[pos : pos + take])
                    pos += take
                    self._state = _HEAD
                    self._on_end()
                else:
                    self._on_body(data[pos:] if pos else data)
                    self._remaining -= take
                    return
            elif state == _CHUNK_DATA:
                take = n - pos
                if take >= self._remaining:
                    take = self._remaining
                    self._on_body(data[pos : pos + take])
                    pos += take
                    self._state = _CHUNK_CRLF
                    self._remaining = 2
                else:
                    self._on_body(data[pos:] if pos else data)
                    self._remaining -= take
                    return
            elif state == _CHUNK_CRLF:
                # `_remaining` is 2 (expect CR) or 1 (expect LF).
                want = 13 if self._remaining == 2 else 10
                if data[pos] != want:
                    raise self._fail()
                pos += 1
                self._remaining -= 1
                if not self._remaining:
                    self._state = _CHUNK_SIZE_LINE
            elif state in (_CHUNK_SIZE_LINE, _TRAILERS):
                line, pos = self._read_line(data, pos)
                if line is None:
                    return
                if state == _CHUNK_SIZE_LINE:
                    m = _CHUNK_SIZE.fullmatch(line)
                    if m is None:
                        raise self._fail()
                    size = int(m.group(1), 16)
                    if size:
                        self._state = _CHUNK_DATA
                        self._remaining = size
                    else:
                        self._state = _TRAILERS
                        self._trailer_bytes = 0
                elif line == b"\r\n":
                    self._state = _HEAD
                    self._on_end()
                else:
                    self._trailer_bytes += len(line)
                    if self._trailer_bytes > self._max_head:
                        raise self._too_large()
                    if _TRAILER_LINE.fullmatch(line) is None:
                        raise self._fail()
            elif state == _EOF_BODY:
                self._on_body(data[pos:] if pos else data)
                return
            else:  # upgraded: the tunnel owns the bytes now; dead raised in feed()
                return

    def _read_line(self, data: bytes, pos: int) -> tuple[bytes | None, int]:
        """One CRLF-terminated line of chunk framing, or None (need more)."""
        i = data.find(b"\n", pos)
        line = self._line
        if i < 0:
            if line is None:
                line = self._line = bytearray()
            line += data[pos:]
            if len(line) > MAX_CHUNK_LINE:
                raise self._fail()
            return None, len(data)
        if line is None:
            out = data[pos : i + 1]
        else:
            line += data[pos : i + 1]
            out = bytes(line)
            self._line = None
        if len(out) > MAX_CHUNK_LINE or out.find(b"\r") != len(out) - 2:
            raise self._fail()  # bare LF or CR in chunk framing
        return out, i + 1


class RequestFramer(_Framer):
    """Base of both RequestParsers; subclasses implement `_parse_head`."""

    __slots__ = ()

    _limit_error = (431, TOO_LARGE)
    _framing_error = (400, BAD_REQUEST)

    def __init__(self, sink: object, max_head_bytes: int = 61440, max_headers: int = 100) -> None:
        super().__init__(sink, max_head_bytes, max_headers)
        self._on_body = sink.on_request_body  # type: ignore[attr-defined]
        self._on_end = sink.on_request_end  # type: ignore[attr-defined]

    def _parse_head(self, head: bytes) -> RequestHead:
        raise NotImplementedError

    def _on_head(self, head: bytes, data: bytes, pos: int) -> int:
        req = self._parse_head(head)
        sink = self._sink
        sink.on_request_head(req)  # type: ignore[attr-defined]
        if req.upgrade:
            self._on_end()
            sink.on_upgrade(data[pos:])  # type: ignore[attr-defined]
            return _UPGRADED
        if req.chunked:
            return _CHUNK_SIZE_LINE
        if req.content_length > 0:
            self._remaining = req.content_length
            return _BODY
        self._on_end()
        return _HEAD


class ResponseFramer(_Framer):
    """Base of both ResponseParsers; subclasses implement `_parse_head`."""

    __slots__ = ("_no_body",)

    _limit_error = (502, UPSTREAM_ERROR)
    _framing_error = (502, UPSTREAM_ERROR)

    def __init__(self, sink: object, max_headers: int = 100, forward_skip: Iterable[bytes] | None = None) -> None:
        # forward_skip: the compiled codec renders ResponseHead.block without
        # these names; the pure codecs leave block None (the pipeline renders it).
        super().__init__(sink, RESPONSE_MAX_HEAD_BYTES, max_headers)
        self._on_body = sink.on_response_body  # type: ignore[attr-defined]
        self._on_end = sink.on_response_end  # type: ignore[attr-defined]
        self._no_body = False

    def expect_no_body(self) -> None:
        self._no_body = True

    def _parse_head(self, head: bytes) -> ResponseHead:
        raise NotImplementedError

    def _on_head(self, head: bytes, data: bytes, pos: int) -> int:
        resp = self._parse_head(head)
        status = resp.status
        sink = self._sink
        if status < 200:
            if status == 101:
                sink.on_response_head(resp)  # type: ignore[attr-defined]
                sink.on_upgrade(data[pos:])  # type: ignore[attr-defined]
                return _UPGRADED
            return _HEAD  # interim response: swallowed
        if self._no_body or status == 204 or status == 304:
            self._no_body = False
            sink.on_response_head(resp)  # type: ignore[attr-defined]
            self._on_end()
            return _HEAD
        if resp.chunked:
            sink.on_response_head(resp)  # type: ignore[attr-defined]
            return _CHUNK_SIZE_LINE
        cl = resp.content_length
        if cl < 0:
            resp.keep_alive = False  # the body ends when the upstream closes
            sink.on_response_head(resp)  # type: ignore[attr-defined]
            return _EOF_BODY
        sink.on_response_head(resp)  # type: ignore[attr-defined]
        if cl == 0:
            self._on_end()
            return _HEAD
        self._remaining = cl
        return _BODY

    def feed_eof(self) -> None:
        if self._error is not None:
            raise self._error
        state = self._state
        if state == _EOF_BODY:
            self._state = _DEAD
            self._error = upstream_error()  # nothing may follow the close
            self._on_end()
        elif state == _HEAD and not self._buf or state == _UPGRADED:
            return
        else:
            self._error = upstream_error()
            self._state = _DEAD
            raise self._error
