# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled httptools codec: the hot path's request and response parsers.

Same API and the same outcomes as ``fast.py`` (its pure twin, which glues
httptools to framing.py in Python).  The difference is where the work runs:

* llhttp (strict) only *validates* each head: the one callback registered
  is message-complete, so it never calls back into Python per header, and
  one llhttp parser serves a whole connection;
* the head is split, the start line checked and the header list built by
  the C loops below, in one pass over bytes llhttp has already accepted;
* the framing rules (framing.build_request_head / build_response_head) and
  the body framing (framing._Framer) are the same rules, typed.

Whenever a start line does not take the common shape, the Python function in
framing.py decides (it raises the exact error, or returns what it parsed),
so rare inputs cannot drift from the twin.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from libc.string cimport memchr, memcmp, memcpy

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser, HttpResponseParser

from fastproxy.codec import ProtocolError
from fastproxy.codec._lines cimport block_room, header_line, put_value
from fastproxy.codec.messages cimport (
    AT_LINES, DeferredHeaders, Parser, RequestEvents, RequestHead, ResponseEvents, ResponseHead,
)
from fastproxy.codec import framing as _fr

__all__ = ["RequestParser", "ResponseParser"]

cdef object _METHODS = _fr.METHODS
cdef dict _CONNECTION_COMMON = _fr.CONNECTION_COMMON
# Connection tokens a head's framing depends on (_HeadFields.connection_tokens).
cdef enum:
    C_CLOSE = 1
    C_KEEP_ALIVE = 2
    C_UPGRADE = 4
cdef object _tokens = _fr._tokens
cdef long long _MAX_CL = _fr.MAX_CONTENT_LENGTH
cdef Py_ssize_t _MAX_CHUNK_LINE = _fr.MAX_CHUNK_LINE
cdef bytes _V11 = b"1.1"
cdef bytes _V10 = b"1.0"
cdef bytes _GET = b"GET"
cdef bytes _HEAD_M = b"HEAD"
cdef bytes _POST = b"POST"
cdef bytes _INTERIM = b"HTTP/1.1 100 Continue"

# Byte classes, filled once at import.
cdef unsigned char TCHAR[256]       # RFC 9110 token characters
cdef unsigned char REGNAME[256]     # uri-host reg-name characters (framing._HOST)
cdef unsigned char V6[256]          # characters inside an IP-literal
cdef unsigned char TEXT[256]        # reason phrase / chunk extension / trailer value bytes
cdef unsigned char HEXVAL[256]      # hex digit value + 1 (0 = not a hex digit)


cdef void _fill_tables():
    cdef int c
    cdef bytes tchar = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    cdef bytes regname = b"-._~%!$&'()*+,;=0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    cdef bytes v6 = b"0123456789ABCDEFabcdef:."
    for c in range(256):
        TCHAR[c] = 0
        REGNAME[c] = 0
        V6[c] = 0
        HEXVAL[c] = 0
        # [^\x00-\x08\x0a-\x1f\x7f]: HTAB and everything from SP up, but DEL
        TEXT[c] = 1 if (c == 9 or (c >= 32 and c != 127)) else 0
    for c in tchar:
        TCHAR[c] = 1
    for c in regname:
        REGNAME[c] = 1
    for c in v6:
        V6[c] = 1
    for c in range(10):
        HEXVAL[48 + c] = c + 1
    for c in range(6):
        HEXVAL[65 + c] = 11 + c
        HEXVAL[97 + c] = 11 + c


_fill_tables()

# framing state machine (same states as framing._Framer)
cdef enum:
    S_HEAD = 0
    S_BODY = 1
    S_CHUNK_SIZE_LINE = 2
    S_CHUNK_DATA = 3
    S_CHUNK_CRLF = 4
    S_TRAILERS = 5
    S_EOF_BODY = 6
    S_UPGRADED = 7
    S_DEAD = 8

# which framing header a lower-cased name is
cdef enum:
    H_OTHER = 0
    H_HOST = 1
    H_CL = 2
    H_TE = 3
    H_CONNECTION = 4
    H_UPGRADE = 5
    H_EXPECT = 6


cdef inline int _special(const char* s, Py_ssize_t n):
    if n == 4:
        return H_HOST if memcmp(s, b"host", 4) == 0 else H_OTHER
    if n == 14:
        return H_CL if memcmp(s, b"content-length", 14) == 0 else H_OTHER
    if n == 17:
        return H_TE if memcmp(s, b"transfer-encoding", 17) == 0 else H_OTHER
    if n == 10:
        return H_CONNECTION if memcmp(s, b"connection", 10) == 0 else H_OTHER
    if n == 7:
        return H_UPGRADE if memcmp(s, b"upgrade", 7) == 0 else H_OTHER
    if n == 6:
        return H_EXPECT if memcmp(s, b"expect", 6) == 0 else H_OTHER
    return H_OTHER


cdef inline int _special_raw(const char* s, Py_ssize_t n):
    """_special of a name as sent (any case): most names fail on length alone."""
    if n == 4:
        return H_HOST if _ieq_c(s, b"host", 4) else H_OTHER
    if n == 14:
        return H_CL if _ieq_c(s, b"content-length", 14) else H_OTHER
    if n == 17:
        return H_TE if _ieq_c(s, b"transfer-encoding", 17) else H_OTHER
    if n == 10:
        return H_CONNECTION if _ieq_c(s, b"connection", 10) else H_OTHER
    if n == 7:
        return H_UPGRADE if _ieq_c(s, b"upgrade", 7) else H_OTHER
    if n == 6:
        return H_EXPECT if _ieq_c(s, b"expect", 6) else H_OTHER
    return H_OTHER


cdef inline bint _ieq_c(const char* s, const char* low, Py_ssize_t n):
    """s equals the lower-case `low`, ignoring ASCII case."""
    cdef Py_ssize_t i
    cdef char x
    for i in range(n):
        x = s[i]
        if (x + 32 if 65 <= x <= 90 else x) != low[i]:
            return False
    return True


cdef inline bytes _lower(const char* s, Py_ssize_t n):
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n)
    cdef char* o = PyBytes_AS_STRING(out)
    cdef Py_ssize_t i
    cdef char c
    for i in range(n):
        c = s[i]
        o[i] = c + 32 if 65 <= c <= 90 else c
    return out


# Header names common enough to share one bytes object each: a name found here
# costs no allocation, and its hash is computed once per process, not once per
# dict or set lookup on every request.
cdef tuple _COMMON_NAMES = (
    b"host", b"user-agent", b"accept", b"accept-encoding", b"accept-language", b"accept-charset",
    b"accept-ranges", b"cookie", b"set-cookie", b"connection", b"keep-alive", b"content-length",
    b"content-type", b"content-encoding", b"content-language", b"content-range", b"cache-control", b"date",
    b"server", b"authorization", b"referer", b"origin", b"pragma", b"upgrade", b"expect", b"te",
    b"transfer-encoding", b"last-modified", b"etag", b"expires", b"vary", b"location", b"range", b"age",
    b"if-none-match", b"if-modified-since", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",
    b"x-request-id", b"x-real-ip", b"traceparent", b"tracestate", b"x-b3-traceid", b"x-b3-spanid",
    b"x-b3-parentspanid", b"x-b3-sampled", b"x-b3-flags", b"b3", b"x-envoy-upstream-service-time",
    b"x-envoy-attempt-count", b"x-envoy-original-path", b"access-control-allow-origin",
    b"strict-transport-security", b"x-content-type-options", b"x-frame-options", b"via", b"forwarded",
    b"dnt", b"sec-fetch-mode", b"sec-fetch-site", b"sec-fetch-dest", b"upgrade-insecure-requests",
)
# A table over the common names, keyed by length and four of their bytes: one
# probe and one memcmp per header.
cdef PyObject* _NAME_SLOT[512]


cdef inline unsigned int _slot(const char* low, Py_ssize_t n):
    # Multipliers picked so that no two of _COMMON_NAMES share a slot (a unit test checks).
    return (<unsigned int>n * 8u + <unsigned char>low[0] * 10u + <unsigned char>low[n - 1] * 3u
            + <unsigned char>low[n >> 1] + <unsigned char>low[n - 2 if n > 1 else 0] * 5u) & 511u


cdef void _fill_names():
    cdef bytes nm
    cdef unsigned int k
    for nm in _COMMON_NAMES:
        k = _slot(PyBytes_AS_STRING(nm), PyBytes_GET_SIZE(nm))
        if _NAME_SLOT[k] == NULL:  # a name whose slot is taken is simply not shared
            _NAME_SLOT[k] = <PyObject*>nm  # _COMMON_NAMES keeps it alive


_fill_names()
COMMON_NAMES = _COMMON_NAMES  # for tests


cdef inline bytes _name(const char* s, Py_ssize_t n):
    """The lower-cased header name: a shared object when it is a common one."""
    cdef int k
    return _name_k(s, n, &k)


cdef inline bytes _name_k(const char* s, Py_ssize_t n, int* k):
    """_name, and in *k the shared name's slot (-1 when the name is not shared)."""
    cdef char low[32]
    cdef PyObject* cand
    cdef Py_ssize_t i
    cdef char x
    cdef unsigned int slot
    k[0] = -1
    if n > 32 or n == 0:
        return _lower(s, n)
    for i in range(n):
        x = s[i]
        low[i] = x + 32 if 65 <= x <= 90 else x
    slot = _slot(low, n)
    cand = _NAME_SLOT[slot]
    if cand != NULL and PyBytes_GET_SIZE(<object>cand) == n and memcmp(PyBytes_AS_STRING(<object>cand), low, n) == 0:
        k[0] = slot
        return <bytes>cand
    return PyBytes_FromStringAndSize(low, n)


cdef inline long long _content_length_at(const char* p, Py_ssize_t n):
    """int(value) of the n bytes at p when value.isdigit() (non-empty, ASCII
    digits only) and it is at most framing.MAX_CONTENT_LENGTH; -1 otherwise
    (both are refused alike)."""
    cdef Py_ssize_t i
    cdef long long v = 0, d
    if n == 0:
        return -1
    for i in range(n):
        if not 48 <= p[i] <= 57:
            return -1
        d = p[i] - 48
        if v > (_MAX_CL - d) // 10:
            return -1
        v = v * 10 + d
    return v


cdef inline bytes _sub(bytes data, Py_ssize_t start, Py_ssize_t end):
    # data[start:end] without a slice object and its two index ints
    return PyBytes_FromStringAndSize(PyBytes_AS_STRING(data) + start, end - start)


cdef inline bint _host_ok(bytes host):
    # framing._HOST fullmatch: reg-name or [IP-literal], then an optional :port
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(host)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(host), i = 0
    if n == 0:
        return False
    if p[0] == 91:  # "["
        i = 1
        while i < n and V6[p[i]]:
            i += 1
        if i == 1 or i >= n or p[i] != 93:
            return False
        i += 1
    else:
        while i < n and REGNAME[p[i]]:
            i += 1
        if i == 0:
            return False
    if i == n:
        return True
    if p[i] != 58:  # ":"
        return False
    i += 1
    while i < n:
        if not 48 <= p[i] <= 57:
            return False
        i += 1
    return True


cdef inline bint _ieq(bytes value, const char* lower, Py_ssize_t n):
    # ASCII case-insensitive equality with a lower-case literal
    cdef const char* p
    cdef Py_ssize_t i
    cdef char c
    if PyBytes_GET_SIZE(value) != n:
        return False
    p = PyBytes_AS_STRING(value)
    for i in range(n):
        c = p[i]
        if 65 <= c <= 90:
            c += 32
        if c != lower[i]:
            return False
    return True


cdef inline Py_ssize_t _find_crlfcrlf(const char* p, Py_ssize_t start, Py_ssize_t n):
    cdef const char* q
    cdef Py_ssize_t i = start
    while i + 3 < n:
        q = <const char*>memchr(p + i, 13, n - 3 - i)
        if q == NULL:
            return -1
        i = q - p
        if p[i + 1] == 10 and p[i + 2] == 13 and p[i + 3] == 10:
            return i
        i += 1
    return -1


cdef inline bint _bare_lf(const char* p, Py_ssize_t start, Py_ssize_t end):
    # framing._BARE_LF.search(buf, start, end): a LF whose previous byte (which
    # may lie before `start`) is not CR
    cdef Py_ssize_t i
    for i in range(start, end):
        if p[i] == 10 and (i == 0 or p[i - 1] != 13):
            return True
    return False


cdef class _Done:
    """The only llhttp callback: whether the head ended llhttp's message."""

    cdef public bint complete

    def on_message_complete(self):
        self.complete = True


cdef class _Framer(Parser):
    """framing._Framer, typed: head splitting, head limits, body framing."""

    cdef object _sink
    cdef Py_ssize_t _max_head
    cdef Py_ssize_t _max_headers
    cdef int _state
    cdef bytearray _buf
    cdef Py_ssize_t _searched
    cdef unsigned long long _remaining
    cdef bytearray _line
    cdef Py_ssize_t _trailer_bytes
    cdef object _error
    cdef object _on_body
    cdef object _on_end
    cdef int _limit_status
    cdef str _limit_reason
    cdef int _framing_status
    cdef str _framing_reason
    cdef object _llhttp  # the validating parser, reused while it is between messages
    cdef object _llhttp_feed  # its bound feed_data: no method lookup per head
    cdef object _head_cb  # the sink's head callback, bound once
    cdef _Done _done

    def __init__(self, sink, Py_ssize_t max_head_bytes, Py_ssize_t max_headers):
        self._sink = sink
        self._max_head = max_head_bytes
        self._max_headers = max_headers
        self._state = S_HEAD
        self._buf = None
        self._searched = 0
        self._remaining = 0
        self._line = None
        self._trailer_bytes = 0
        self._error = None
        self._llhttp = None
        self._done = _Done()

    cpdef bint head_started(self):
        return self._state == S_HEAD and self._buf is not None and len(self._buf) > 0

    cpdef feed(self, data):
        if self._error is not None:
            raise self._error
        try:
            self._feed(bytes(data) if type(data) is not bytes else data)
        except ProtocolError as exc:
            self._error = exc
            self._state = S_DEAD
            self._buf = self._line = None
            raise

    cdef object _fail(self):
        # also the error for a head whose grammar llhttp refuses (400 / 502)
        return ProtocolError(self._framing_status, self._framing_reason)

    cdef object _too_large(self):
        return ProtocolError(self._limit_status, self._limit_reason)

    cdef int _on_head(self, bytes head, bytes data, Py_ssize_t pos) except -1:
        raise NotImplementedError

    # The sink's body and end callbacks: C calls when the sink derives from
    # messages.RequestEvents / ResponseEvents, bound-method calls otherwise.
    cdef int _body(self, bytes data) except -1:
        self._on_body(data)
        return 0

    cdef int _end(self) except -1:
        self._on_end()
        return 0

    cdef int _feed(self, bytes data) except -1:
        cdef Py_ssize_t pos = 0, n = len(data), end, old, k, take
        cdef const char* p
        cdef bytearray buf
        cdef bytes head, line
        cdef int state
        cdef int want
        cdef unsigned long long size = 0
        while pos < n:
            state = self._state
            p = PyBytes_AS_STRING(data)
            if state == S_HEAD:
                buf = self._buf
                if buf is None:
                    # Empty lines between messages are skipped, not counted.
                    while pos + 1 < n and p[pos] == 13 and p[pos + 1] == 10:
                        pos += 2
                    if pos >= n:
                        return 0
                    end = _find_crlfcrlf(p, pos, n)
                    if end < 0:
                        # A head with a bare LF would never end: refuse it now
                        # (it takes precedence over the size limit).
                        if p[pos] == 10 or _bare_lf(p, pos, min(n, pos + self._max_head + 1)):
                            raise self._fail()
                        if n - pos > self._max_head:
                            raise self._too_large()
                        self._buf = bytearray(data[pos:] if pos else data)
                        self._searched = 0
                        return 0
                    end += 4
                    head = data if (pos == 0 and end == n) else _sub(data, pos, end)
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
                        if _fr._BARE_LF.search(buf, max(old - 1, 0), self._max_head + 1) is not None:
                            raise self._fail()
                        if len(buf) > self._max_head:
                            raise self._too_large()
                        self._searched = max(len(buf) - 3, 0)
                        return 0
                    end += 4
                    head = bytes(buf[:end])
                    data = bytes(buf[end:])
                    pos = 0
                    n = len(data)
                    self._buf = None
                try:
                    if len(head) > self._max_head:
                        raise self._too_large()
                    self._on_head(head, data, pos)
                except ProtocolError as exc:
                    # A bare LF in the first max+1 bytes is a 400 before any 431/505.
                    if exc.status != 400 and _bare_lf(PyBytes_AS_STRING(head), 0, min(len(head), self._max_head + 1)):
                        raise self._fail() from None
                    raise
                if self._state == S_UPGRADED:
                    return 0
            elif state == S_BODY:
                take = n - pos
                if <unsigned long long>take >= self._remaining:
                    take = <Py_ssize_t>self._remaining
                    self._body(_sub(data, pos, pos + take))
                    pos += take
                    self._state = S_HEAD
                    self._end()
                else:
                    self._body(data[pos:] if pos else data)
                    self._remaining -= take
                    return 0
            elif state == S_CHUNK_DATA:
                take = n - pos
                if <unsigned long long>take >= self._remaining:
                    take = <Py_ssize_t>self._remaining
                    self._body(_sub(data, pos, pos + take))
                    pos += take
                    self._state = S_CHUNK_CRLF
                    self._remaining = 2
                else:
                    self._body(data[pos:] if pos else data)
                    self._remaining -= take
                    return 0
            elif state == S_CHUNK_CRLF:
                want = 13 if self._remaining == 2 else 10
                if p[pos] != want:
                    raise self._fail()
                pos += 1
                self._remaining -= 1
                if not self._remaining:
                    self._state = S_CHUNK_SIZE_LINE
            elif state == S_CHUNK_SIZE_LINE or state == S_TRAILERS:
                line = self._read_line(data, &pos)
                if line is None:
                    return 0
                if state == S_CHUNK_SIZE_LINE:
                    if _chunk_size(line, &size) < 0:
                        raise self._fail()
                    if size:
                        self._state = S_CHUNK_DATA
                        self._remaining = size
                    else:
                        self._state = S_TRAILERS
                        self._trailer_bytes = 0
                elif len(line) == 2:
                    self._state = S_HEAD
                    self._end()
                else:
                    self._trailer_bytes += len(line)
                    if self._trailer_bytes > self._max_head:
                        raise self._too_large()
                    if not _trailer_ok(line):
                        raise self._fail()
            elif state == S_EOF_BODY:
                self._body(data[pos:] if pos else data)
                return 0
            else:
                return 0
        return 0

    cdef bytes _read_line(self, bytes data, Py_ssize_t* pos):
        """One CRLF-terminated line of chunk framing, or None (need more)."""
        cdef const char* p = PyBytes_AS_STRING(data)
        cdef Py_ssize_t n = len(data), start = pos[0]
        cdef const char* q = <const char*>memchr(p + start, 10, n - start)
        cdef bytearray line = self._line
        cdef bytes out
        cdef Py_ssize_t i, length
        if q == NULL:
            if line is None:
                line = self._line = bytearray()
            line += data[start:]
            if len(line) > _MAX_CHUNK_LINE:
                raise self._fail()
            pos[0] = n
            return None
        i = q - p
        if line is None:
            out = data[start : i + 1]
        else:
            line += data[start : i + 1]
            out = bytes(line)
            self._line = None
        pos[0] = i + 1
        length = len(out)
        # bare LF or CR in chunk framing
        if length > _MAX_CHUNK_LINE or length < 2 or PyBytes_AS_STRING(out)[length - 2] != 13:
            raise self._fail()
        if memchr(PyBytes_AS_STRING(out), 13, length - 2) != NULL:
            raise self._fail()
        return out

    cdef int _validate(self, bytes head, bint request) except -1:
        """llhttp checks the head's grammar; only its message-complete callback runs."""
        if self._llhttp is None:
            self._llhttp = _strict(request, self._done)
            self._llhttp_feed = self._llhttp.feed_data
        self._done.complete = False
        try:
            self._llhttp_feed(head)
        except HttpParserUpgrade:
            self._llhttp = None  # paused after an upgrade head: never reused
            return 0
        except HttpParserError as exc:
            reason = str(exc)
            self._llhttp = None
            if reason.startswith("Pause on CONNECT/Upgrade"):
                # A 101 without upgrade headers: the head was complete and valid.
                return 0
            if "Duplicate Content-Length" in reason:
                # llhttp refuses any repeated Content-Length; identical ones are
                # coalesced (as Envoy does): check the rest of the grammar with
                # the repeats renamed.
                error = self._fail()
                renamed, _ = _fr.dedupe_content_length(head, error)
                try:
                    _strict(request, self._done).feed_data(renamed)
                except HttpParserUpgrade:
                    pass
                except HttpParserError:
                    raise error from None
                return 0
            raise self._fail() from None
        if not self._done.complete:
            # llhttp now expects a body, which this module frames: the next
            # head goes to a fresh parser.
            self._llhttp = None
        return 0


cdef object _strict(bint request, _Done done):
    # Only framing rules this module enforces itself are relaxed; the grammar stays strict.
    parser = HttpRequestParser(done) if request else HttpResponseParser(done)
    parser.set_dangerous_leniencies(
        lenient_keep_alive=True, lenient_transfer_encoding=True, lenient_chunked_length=True
    )
    return parser


cdef int _chunk_size(bytes line, unsigned long long* out):
    # framing._CHUNK_SIZE fullmatch: 1-16 hex digits, optional ;extension, CRLF
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(line)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(line) - 2, i = 0
    cdef unsigned long long size = 0
    cdef unsigned char v
    while i < n and i < 17:
        v = HEXVAL[p[i]]
        if not v:
            break
        size = (size << 4) | (v - 1)
        i += 1
    if i == 0 or i > 16:
        return -1
    if i < n:
        if p[i] != 59:  # ";"
            return -1
        i += 1
        while i < n:
            if not TEXT[p[i]]:
                return -1
            i += 1
    out[0] = size
    return 0


cdef bint _trailer_ok(bytes line):
    # framing._TRAILER_LINE fullmatch: token ":" text* CRLF
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(line)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(line) - 2, i = 0
    while i < n and TCHAR[p[i]]:
        i += 1
    if i == 0 or i >= n or p[i] != 58:
        return False
    i += 1
    while i < n:
        if not TEXT[p[i]]:
            return False
        i += 1
    return True


cdef bytes _interim_head(bytes head, Py_ssize_t line_end):
    # _INTERIM + head[line_end:], in one allocation
    cdef Py_ssize_t k = PyBytes_GET_SIZE(_INTERIM), rest = PyBytes_GET_SIZE(head) - line_end
    cdef bytes out = PyBytes_FromStringAndSize(NULL, k + rest)
    cdef char* q = PyBytes_AS_STRING(out)
    memcpy(q, PyBytes_AS_STRING(_INTERIM), k)
    memcpy(q + k, PyBytes_AS_STRING(head) + line_end, rest)
    return out


cdef inline bint _keep_alive(int tokens, bint v11):
    """framing's keep-alive rule from _HeadFields.connection_tokens (-1: no Connection header)."""
    if tokens < 0:
        return v11
    if tokens & C_CLOSE:
        return False
    return v11 or (tokens & C_KEEP_ALIVE) != 0


cdef class _HeadFields:
    """The framing headers of one head, collected while the list is built."""

    cdef public object host
    cdef public int hosts
    cdef public bint cl_conflict
    cdef public object te
    cdef public int tes
    cdef public object conn
    cdef public bint has_upgrade
    cdef public bint expect
    # Content-Length and Connection values are noted where they lie in the
    # head's bytes: the common head builds no bytes object for them.
    cdef const char* _p  # the head's bytes, while it is split
    cdef Py_ssize_t cl_start, cl_len  # the first Content-Length value; cl_len -1: none
    cdef Py_ssize_t conn_start, conn_len  # a lone Connection value; conn_len -1: none or `conn` holds them

    cdef void reset(self, const char* p):
        self.host = None
        self.hosts = 0
        self.cl_conflict = False
        self.te = None
        self.tes = 0
        self.conn = None
        self.has_upgrade = False
        self.expect = False
        self._p = p
        self.cl_len = -1
        self.conn_len = -1

    cdef int note_at(self, int kind, Py_ssize_t vs, Py_ssize_t ve, bint request) except -1:
        """A framing header (kind from _special) whose value is [vs, ve) of the head."""
        cdef Py_ssize_t n = ve - vs
        if kind == H_CL:
            if self.cl_len < 0:
                self.cl_start = vs
                self.cl_len = n
            elif n != self.cl_len or memcmp(self._p + vs, self._p + self.cl_start, n) != 0:
                self.cl_conflict = True
        elif kind == H_CONNECTION:
            if self.conn_len < 0 and self.conn is None:
                self.conn_start = vs
                self.conn_len = n
            else:
                # Repeated: the values joined with ",", as bytes.
                self.conn = self.connection() + b"," + PyBytes_FromStringAndSize(self._p + vs, n)
                self.conn_len = -1
        else:
            self.note(kind, PyBytes_FromStringAndSize(self._p + vs, n), request)
        return 0

    cdef long long content_length(self):
        """_content_length of the first Content-Length value, without a bytes object."""
        return _content_length_at(self._p + self.cl_start, self.cl_len)

    cdef object connection(self):
        """The Connection values joined with ","; None when there is none."""
        if self.conn_len >= 0:
            return PyBytes_FromStringAndSize(self._p + self.conn_start, self.conn_len)
        return self.conn

    cdef int connection_tokens(self) except -2:
        """Which of close / keep-alive / upgrade framing's tokens of the Connection
        values hold (C_CLOSE | C_KEEP_ALIVE | C_UPGRADE); -1 when there is no
        Connection header.  A lone common value is matched in place."""
        cdef const char* v
        cdef Py_ssize_t n = self.conn_len
        cdef int found = 0
        if n >= 0:
            v = self._p + self.conn_start
            if n == 10 and _ieq_c(v, b"keep-alive", 10):
                return C_KEEP_ALIVE
            if n == 5 and _ieq_c(v, b"close", 5):
                return C_CLOSE
        conn = self.connection()
        if conn is None:
            return -1
        tokens = _CONNECTION_COMMON.get(conn) or _tokens(conn)
        if b"close" in tokens:
            found |= C_CLOSE
        if b"keep-alive" in tokens:
            found |= C_KEEP_ALIVE
        if b"upgrade" in tokens:
            found |= C_UPGRADE
        return found

    cdef int note(self, int kind, bytes value, bint request) except -1:
        """A framing header (kind from _special) and its value, as the head's splitters find them."""
        if kind == H_HOST:
            self.host = value
            self.hosts += 1
        elif kind == H_CL or kind == H_CONNECTION:
            raise AssertionError("noted by note_at")
        elif kind == H_TE:
            if request:
                self.te = value if (self.te is None or not value) else self.te
            else:
                self.te = value
            self.tes += 1
        elif kind == H_UPGRADE:
            self.has_upgrade = True
        elif _ieq(value, b"100-continue", 12):
            self.expect = True
        return 0


cdef Py_ssize_t _split_headers(bytes head, Py_ssize_t line_end, _HeadFields f, bint request, list out,
                               unsigned short* at=NULL) except -1:
    """Scan the header lines of a head llhttp accepted: fill `f` and return
    the count; with `out`, also append each (lower-cased name, OWS-trimmed
    value).  Without it only the framing headers' values are allocated.  With
    `at` (room for AT_LINES lines), record where the first lines lie
    (RequestHead._at; offsets past 65,535 wrap, and the caller drops them)."""
    cdef const char* p = PyBytes_AS_STRING(head)
    cdef Py_ssize_t stop = PyBytes_GET_SIZE(head) - 4, pos = line_end + 2, e, colon, vs, ve, count = 0
    cdef bytes name, value
    cdef int kind
    f.reset(p)
    if pos >= stop:
        return 0
    while True:
        e = header_line(p, pos, stop, &colon, &vs, &ve)
        if at != NULL and count < AT_LINES:
            at[4 * count] = <unsigned short>pos
            at[4 * count + 1] = <unsigned short>colon
            at[4 * count + 2] = <unsigned short>vs
            at[4 * count + 3] = <unsigned short>ve
        count += 1
        if out is not None:
            name = _name(p + pos, colon - pos)
            kind = _special(PyBytes_AS_STRING(name), colon - pos)
        else:
            kind = _special_raw(p + pos, colon - pos)
        if out is not None:
            value = PyBytes_FromStringAndSize(p + vs, ve - vs)
            out.append((name, value))
            if kind:
                if kind == H_CL or kind == H_CONNECTION:
                    f.note_at(kind, vs, ve, request)
                else:
                    f.note(kind, value, request)
        elif kind:
            f.note_at(kind, vs, ve, request)
        if e >= stop:
            break
        pos = e + 2
    return count


cdef _HeadFields _SCRATCH = _HeadFields()


cdef class HeadLines:
    """What a head whose header list this codec deferred asks of its bytes
    (messages.py): the whole list, or one header's value.  The head is passed
    whole: its bytes (which this codec validated) and where its lines begin
    are C fields, read without boxing."""

    def split(self, DeferredHeaders head not None):
        cdef list out = []
        _split_headers(head._raw, head._start - 2, _SCRATCH, False, out)
        return out

    def value(self, RequestHead rh not None, bytes name not None):
        """The value of header `name` (lower-case), repeats joined with ","; None when absent."""
        cdef bytes head = rh._raw
        cdef const char* p = PyBytes_AS_STRING(head)
        cdef const char* nm = PyBytes_AS_STRING(name)
        cdef Py_ssize_t stop = PyBytes_GET_SIZE(head) - 4, pos = rh._start, e, vs, ve
        cdef Py_ssize_t nlen = PyBytes_GET_SIZE(name)
        cdef const char* q
        cdef bytes first = None, value
        cdef list parts = None
        if pos >= stop:
            return None
        while True:
            # Not header_line: most lines fail on the byte where this name would
            # end (a name is a token, so it ends at the colon), before any search.
            q = <const char*>memchr(p + pos, 13, stop - pos)
            e = stop if q == NULL else q - p
            if e - pos > nlen and p[pos + nlen] == 58 and _ieq_c(p + pos, nm, nlen):
                vs = pos + nlen + 1
                ve = e
                while vs < ve and (p[vs] == 32 or p[vs] == 9):
                    vs += 1
                while ve > vs and (p[ve - 1] == 32 or p[ve - 1] == 9):
                    ve -= 1
                value = PyBytes_FromStringAndSize(p + vs, ve - vs)
                if first is None:
                    first = value
                elif parts is None:
                    parts = [first, value]
                else:
                    parts.append(value)
            if e >= stop:
                break
            pos = e + 2
        if parts is not None:
            return b",".join(parts)
        return first


cdef HeadLines _LINES = HeadLines()


cdef Py_ssize_t _render_response(ResponseHead r, bytes head, Py_ssize_t line_end, _HeadFields f,
                                 const unsigned char* skip_slot, frozenset skip_rare) except -1:
    """_split_headers for a response, without the list: fills `f`, renders
    r.block (the lines whose name is not skipped, as response_block writes
    them) and r.has_date, and returns the header count.  The list is split
    from the same bytes only if someone asks for it (ResponseHead.headers).
    Skipped: a shared name whose slot is marked in `skip_slot`, or a name in
    `skip_rare` (the skipped names that are not shared)."""
    cdef const char* p = PyBytes_AS_STRING(head)
    cdef Py_ssize_t stop = PyBytes_GET_SIZE(head) - 4, pos = line_end + 2, e, colon, vs, ve, n, o = 0, count = 0
    cdef char stack[2048]
    cdef char* buf = stack
    cdef bytes name, value
    cdef int kind, k
    cdef bint has_date = False, skipped
    f.reset(p)
    r._headers = None
    r._raw = head
    r._start = pos
    r._lines = _LINES
    if pos >= stop:
        r.block = b""
        r.has_date = False
        return 0
    if block_room(pos, stop) > 2048:
        buf = <char*>PyMem_Malloc(block_room(pos, stop))
        if buf == NULL:
            raise MemoryError()
    try:
        while True:
            e = header_line(p, pos, stop, &colon, &vs, &ve)
            n = colon - pos
            name = _name_k(p + pos, n, &k)
            count += 1
            kind = _special(PyBytes_AS_STRING(name), n)
            if kind:
                f.note_at(kind, vs, ve, False)
            if k >= 0:
                skipped = skip_slot[k]
            else:
                skipped = skip_rare is not None and name in skip_rare
            if not skipped:
                if n == 4 and memcmp(PyBytes_AS_STRING(name), b"date", 4) == 0:
                    has_date = True
                memcpy(buf + o, PyBytes_AS_STRING(name), n)
                o = put_value(buf, o + n, p + vs, ve - vs)
            if e >= stop:
                break
            pos = e + 2
        r.block = PyBytes_FromStringAndSize(buf, o)
    finally:
        if buf != stack:
            PyMem_Free(buf)
    r.has_date = has_date
    return count


cdef class RequestParser(_Framer):
    cdef _HeadFields _f
    cdef RequestEvents _events

    def __init__(self, sink, Py_ssize_t max_head_bytes=61440, Py_ssize_t max_headers=100):
        _Framer.__init__(self, sink, max_head_bytes, max_headers)
        self._head_cb = sink.on_request_head
        self._on_body = sink.on_request_body
        self._on_end = sink.on_request_end
        self._events = sink if isinstance(sink, RequestEvents) else None
        self._limit_status = 431
        self._limit_reason = _fr.TOO_LARGE
        self._framing_status = 400
        self._framing_reason = _fr.BAD_REQUEST
        self._f = _HeadFields()

    cdef int _on_head(self, bytes head, bytes data, Py_ssize_t pos) except -1:
        req = self._parse_head(head)
        sink = self._sink
        if self._events is not None:
            self._events.on_request_head(req)
        else:
            self._head_cb(req)
        if req.upgrade:
            self._end()
            sink.on_upgrade(data[pos:])
            self._state = S_UPGRADED
            return 0
        if req.chunked:
            self._state = S_CHUNK_SIZE_LINE
            return 0
        if req.content_length > 0:
            self._remaining = req.content_length
            self._state = S_BODY
            return 0
        self._state = S_HEAD
        self._end()
        return 0

    cdef int _body(self, bytes data) except -1:
        if self._events is not None:
            self._events.on_request_body(data)
        else:
            self._on_body(data)
        return 0

    cdef int _end(self) except -1:
        if self._events is not None:
            self._events.on_request_end()
        else:
            self._on_end()
        return 0

    cdef RequestHead _parse_head(self, bytes head):
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(head)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(head), i = 0, m_end, t_start = 0, t_end = 0, line_end
        cdef bytes method, target, version
        cdef _HeadFields f = self._f
        cdef Py_ssize_t count
        cdef long long content_length
        cdef bint chunked, keep_alive, upgrade, v11
        cdef int tokens
        cdef unsigned short at[4 * AT_LINES]
        # Request line, the shape framing._REQUEST_LINE accepts:
        # token SP target SP "HTTP/1." [01] CRLF
        while i < n and TCHAR[p[i]]:
            i += 1
        m_end = i
        line_end = -1
        if 0 < m_end < n and p[i] == 32:
            i += 1
            t_start = i
            while i < n and p[i] != 32 and p[i] != 13 and p[i] != 10:
                i += 1
            t_end = i
            if (
                t_end > t_start
                and i + 11 <= n
                and memcmp(p + i, b" HTTP/1.", 8) == 0
                and (p[i + 8] == 48 or p[i + 8] == 49)
                and p[i + 9] == 13
                and p[i + 10] == 10
            ):
                line_end = i + 9
        if line_end < 0:
            # not the common shape: framing decides (raises 400/505, or parses it)
            method, target, version, line_end = _fr.parse_request_line(head)
        else:
            if m_end == 3 and memcmp(p, b"GET", 3) == 0:
                method = _GET
            elif m_end == 4 and memcmp(p, b"POST", 4) == 0:
                method = _POST
            elif m_end == 4 and memcmp(p, b"HEAD", 4) == 0:
                method = _HEAD_M
            else:
                method = PyBytes_FromStringAndSize(<const char*>p, m_end)
                if method not in _METHODS:
                    raise _fr.bad_request()
            target = PyBytes_FromStringAndSize(<const char*>p + t_start, t_end - t_start)
            version = _V11 if p[line_end - 1] == 49 else _V10
        v11 = version == _V11
        self._validate(head, True)
        count = _split_headers(head, line_end, f, True, None, at)
        # from here on: framing.build_request_head, the same rules in the same order
        if count > self._max_headers:
            raise ProtocolError(431, _fr.TOO_LARGE)
        # memchr, not `in`: bytes.__contains__ first tries its argument as an
        # int and formats (then clears) a TypeError on every call.
        if target[0] == 47 and memchr(PyBytes_AS_STRING(target), 35, PyBytes_GET_SIZE(target)) == NULL:
            path = target
            authority = None
        else:
            path, authority = _fr.split_target(method, target)
        content_length = -1
        if f.cl_len >= 0:
            content_length = f.content_length()
            if f.cl_conflict or content_length < 0:
                raise _fr.bad_request()
        if f.hosts > 1 or (f.hosts == 0 and v11):
            raise _fr.bad_request()
        host = f.host
        if host is not None and not _host_ok(host):
            raise _fr.bad_request()
        chunked = False
        if f.tes:
            te = f.te
            if not v11 or f.cl_len >= 0 or not te:
                raise _fr.bad_request()
            if f.tes > 1 or not _ieq(te, b"chunked", 7):
                raise ProtocolError(501, _fr.NOT_IMPLEMENTED)
            chunked = True
        tokens = f.connection_tokens()
        keep_alive = _keep_alive(tokens, v11)
        upgrade = tokens > 0 and f.has_upgrade and (tokens & C_UPGRADE) != 0
        # Filled field by field: no argument tuple for eleven values per request.
        cdef RequestHead h = RequestHead.__new__(RequestHead)
        if n <= 65535 and 0 < count <= AT_LINES:  # offsets that fit their 16 bits, every line recorded
            memcpy(h._at, at, 4 * count * sizeof(unsigned short))
            h._nlines = count
        h.method = method
        h.path = path
        h.authority = authority
        h.version = version
        # The list is split from the head's bytes only if someone asks for it.
        h._headers = None
        h._raw = head
        h._start = line_end + 2
        h._lines = _LINES
        h.host = host
        h.keep_alive = keep_alive
        h.chunked = chunked
        h.content_length = content_length
        h.upgrade = upgrade
        h.expect_continue = f.expect
        return h


cdef class ResponseParser(_Framer):
    cdef _HeadFields _f
    cdef bint _no_body
    cdef bint _render
    cdef ResponseEvents _events
    cdef unsigned char _skip_slot[512]  # by _NAME_SLOT slot: that shared name is skipped
    cdef frozenset _skip_rare

    def __init__(self, sink, Py_ssize_t max_headers=100, forward_skip=None):
        _Framer.__init__(self, sink, _fr.RESPONSE_MAX_HEAD_BYTES, max_headers)
        # Given: each head carries its forwarded block (ResponseHead.block).
        cdef int k
        cdef bytes low
        self._render = forward_skip is not None
        rare = set()
        for name in forward_skip or ():
            low = bytes(name).lower()
            _name_k(PyBytes_AS_STRING(low), PyBytes_GET_SIZE(low), &k)
            if k < 0:
                rare.add(low)
            else:
                self._skip_slot[k] = 1
        self._skip_rare = frozenset(rare) if rare else None
        self._head_cb = sink.on_response_head
        self._on_body = sink.on_response_body
        self._on_end = sink.on_response_end
        self._events = sink if isinstance(sink, ResponseEvents) else None
        self._limit_status = 502
        self._limit_reason = _fr.UPSTREAM_ERROR
        self._framing_status = 502
        self._framing_reason = _fr.UPSTREAM_ERROR
        self._f = _HeadFields()
        self._no_body = False

    def expect_no_body(self):
        self._no_body = True

    def feed_eof(self):
        if self._error is not None:
            raise self._error
        state = self._state
        if state == S_EOF_BODY:
            self._state = S_DEAD
            self._error = _fr.upstream_error()  # nothing may follow the close
            self._end()
        elif (state == S_HEAD and not self._buf) or state == S_UPGRADED:
            return
        else:
            self._error = _fr.upstream_error()
            self._state = S_DEAD
            raise self._error

    cdef int _on_head(self, bytes head, bytes data, Py_ssize_t pos) except -1:
        resp = self._parse_head(head)
        cdef int status = resp.status
        sink = self._sink
        if status < 200:
            if status == 101:
                self._head(resp)
                sink.on_upgrade(data[pos:])
                self._state = S_UPGRADED
                return 0
            self._state = S_HEAD  # interim response: swallowed
            return 0
        if self._no_body or status == 204 or status == 304:
            self._no_body = False
            self._head(resp)
            self._state = S_HEAD
            self._end()
            return 0
        if resp.chunked:
            self._head(resp)
            self._state = S_CHUNK_SIZE_LINE
            return 0
        cdef long long cl = resp.content_length
        if cl < 0:
            resp.keep_alive = False  # the body ends when the upstream closes
            self._head(resp)
            self._state = S_EOF_BODY
            return 0
        self._head(resp)
        if cl == 0:
            self._state = S_HEAD
            self._end()
            return 0
        self._remaining = cl
        self._state = S_BODY
        return 0

    cdef int _head(self, ResponseHead resp) except -1:
        if self._events is not None:
            self._events.on_response_head(resp)
        else:
            self._head_cb(resp)
        return 0

    cdef int _body(self, bytes data) except -1:
        if self._events is not None:
            self._events.on_response_body(data)
        else:
            self._on_body(data)
        return 0

    cdef int _end(self) except -1:
        if self._events is not None:
            self._events.on_response_end()
        else:
            self._on_end()
        return 0

    cdef ResponseHead _parse_head(self, bytes head):
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(head)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(head), i, line_end
        cdef int status
        cdef bytes version
        cdef _HeadFields f = self._f
        cdef Py_ssize_t count
        cdef list headers
        cdef long long content_length
        cdef bint chunked, keep_alive, ok, v11
        # Status line, the shape framing._STATUS_LINE accepts:
        # "HTTP/1." [01] SP [1-9][0-9][0-9] [SP text*] CRLF
        ok = (
            n >= 14
            and memcmp(p, b"HTTP/1.", 7) == 0
            and (p[7] == 48 or p[7] == 49)
            and p[8] == 32
            and 49 <= p[9] <= 57
            and 48 <= p[10] <= 57
            and 48 <= p[11] <= 57
        )
        line_end = -1
        if ok:
            i = 12
            if p[i] == 32:
                i += 1
                while i < n and TEXT[p[i]]:
                    i += 1
            if i + 1 < n and p[i] == 13 and p[i + 1] == 10:
                line_end = i
        if line_end < 0:
            status, version, line_end = _fr.parse_status_line(head)
        else:
            status = (p[9] - 48) * 100 + (p[10] - 48) * 10 + (p[11] - 48)
            version = _V11 if p[7] == 49 else _V10
        v11 = version == _V11
        # llhttp sees the header lines behind an interim status line: a 1xx
        # message ends with its head whatever the framing headers say, so one
        # parser serves every response on the connection (a real status with
        # a body would leave it waiting for that body, and a fresh parser per
        # response costs more than this copy).  The real status line was
        # checked above.
        self._validate(_interim_head(head, line_end), False)
        cdef ResponseHead r = ResponseHead.__new__(ResponseHead)
        if self._render:
            count = _render_response(r, head, line_end, f, self._skip_slot, self._skip_rare)
        else:
            headers = []
            count = _split_headers(head, line_end, f, False, headers)
            r._headers = headers
        # framing.build_response_head, the same rules in the same order
        if count > self._max_headers:
            raise _fr.upstream_error()
        if f.cl_conflict:
            raise _fr.upstream_error()
        content_length = -1
        if f.cl_len >= 0:
            content_length = f.content_length()
            if content_length < 0 or f.tes:
                raise _fr.upstream_error()
        chunked = False
        if f.tes:
            if f.tes > 1 or not _ieq(f.te, b"chunked", 7):
                raise _fr.upstream_error()
            chunked = True
        keep_alive = _keep_alive(f.connection_tokens(), v11)
        r.status = status
        r.keep_alive = keep_alive
        r.chunked = chunked
        r.content_length = content_length
        r.version = version
        return r
