# cython: language_level=3, boundscheck=False, wraparound=False
"""Header blocks of the heads we write, compiled; pure twin: _heads_py.py.

The blocks are built in two passes over the header list (measure, then copy
into one bytes object), so a head costs one allocation instead of a list of
pieces joined at the end.  API in fastproxy/pipeline/heads.py.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.long cimport PyLong_AsUnsignedLongLongMask
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.string cimport memcmp, memcpy

from fastproxy.codec._lines cimport block_room, header_line, put_value

from fastproxy._twins import is_compiled
from fastproxy.codec import messages as _messages

if not is_compiled(_messages):
    # request_block_of reads the compiled heads' C fields (codec.select() pairs them the same way).
    raise ImportError("fastproxy.codec.messages runs as its pure twin")

from fastproxy.pipeline._heads_py import (
    CONNECTION,
    FIRST_ATTEMPT,
    HAS_REQUEST_ID,
    HAS_XFP,
    HEADER_ACTION,
    REQUEST_ID,
    SKIP,
    XFF,
    XFP,
    XFP_LINE,
)
from fastproxy.pipeline.headers import RESPONSE_SKIP

cdef dict _ACTION = HEADER_ACTION
cdef frozenset _RESPONSE_SKIP = RESPONSE_SKIP
cdef long _SKIP = SKIP, _CONNECTION = CONNECTION, _XFP = XFP, _XFF = XFF, _REQUEST_ID = REQUEST_ID
cdef long _HAS_XFP = HAS_XFP, _HAS_REQUEST_ID = HAS_REQUEST_ID
cdef bytes _HEX = b"0123456789abcdef"


cdef bytes _render(list headers, unsigned char* keep, Py_ssize_t count):
    """`name: value\\r\\n` for every header i with keep[i], in one bytes object."""
    cdef Py_ssize_t i, total = 0, ln, lv
    cdef object h
    cdef bytes name, value, out
    cdef char* o
    for i in range(count):
        if keep[i]:
            h = <object>PyList_GET_ITEM(headers, i)
            total += PyBytes_GET_SIZE(<bytes>PyTuple_GET_ITEM(h, 0)) + PyBytes_GET_SIZE(<bytes>PyTuple_GET_ITEM(h, 1)) + 4
    out = PyBytes_FromStringAndSize(NULL, total)
    o = PyBytes_AS_STRING(out)
    for i in range(count):
        if keep[i]:
            h = <object>PyList_GET_ITEM(headers, i)
            name = <bytes>PyTuple_GET_ITEM(h, 0)
            value = <bytes>PyTuple_GET_ITEM(h, 1)
            ln = PyBytes_GET_SIZE(name)
            lv = PyBytes_GET_SIZE(value)
            memcpy(o, PyBytes_AS_STRING(name), ln)
            o[ln] = 58  # ":"
            o[ln + 1] = 32
            memcpy(o + ln + 2, PyBytes_AS_STRING(value), lv)
            o[ln + 2 + lv] = 13
            o[ln + 3 + lv] = 10
            o += ln + lv + 4
    return out


cdef tuple _classify(list headers, bint gateway, unsigned char* keep):
    """Mark in `keep` the headers that go up as they are; (flags, xff, connection, upgrade)."""
    cdef Py_ssize_t i, count = PyList_GET_SIZE(headers)
    cdef long flags = 0, action
    cdef PyObject* found
    cdef object h
    cdef bytes name, value
    xff = conn = upgrade = None
    for i in range(count):
        h = <object>PyList_GET_ITEM(headers, i)
        name = <bytes>PyTuple_GET_ITEM(h, 0)
        keep[i] = 0
        found = PyDict_GetItem(_ACTION, name)
        if found == NULL:
            if gateway and PyBytes_GET_SIZE(name) >= 8 and memcmp(PyBytes_AS_STRING(name), b"x-envoy-", 8) == 0:
                continue
        else:
            action = <long><object>found
            value = <bytes>PyTuple_GET_ITEM(h, 1)
            if action == _SKIP:
                continue
            if action == _CONNECTION:
                conn = value if conn is None else conn + b"," + value
                continue
            if action == _XFP:
                if gateway:
                    continue
                flags |= _HAS_XFP
            elif action == _REQUEST_ID:
                flags |= _HAS_REQUEST_ID
            elif action == _XFF:
                if gateway:
                    xff = value if xff is None else xff + b"," + value
                    continue
            else:  # upgrade
                upgrade = value
                continue
        keep[i] = 1
    return flags, xff, conn, upgrade


# HEADER_ACTION as an open-addressing table over the lower-cased name bytes,
# so a head whose list was never split is classified without a name object.
cdef enum:
    _SLOTS = 128  # a power of two, several times HEADER_ACTION's size
cdef const char* _SLOT_NAME[_SLOTS]
cdef Py_ssize_t _SLOT_LEN[_SLOTS]
cdef long _SLOT_ACTION[_SLOTS]
cdef list _SLOT_KEEP = []  # keeps the names the table points into alive


cdef inline unsigned int _hash(const char* low, Py_ssize_t n):
    return (<unsigned int>n * 31u + <unsigned char>low[0] * 7u + <unsigned char>low[n - 1] * 3u
            + <unsigned char>low[n >> 1]) & (_SLOTS - 1)


cdef void _fill_slots():
    cdef unsigned int k
    cdef bytes name
    for k in range(_SLOTS):
        _SLOT_LEN[k] = 0
    for name, action in HEADER_ACTION.items():
        _SLOT_KEEP.append(name)
        k = _hash(PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name))
        while _SLOT_LEN[k]:
            k = (k + 1) & (_SLOTS - 1)
        _SLOT_NAME[k] = PyBytes_AS_STRING(name)
        _SLOT_LEN[k] = PyBytes_GET_SIZE(name)
        _SLOT_ACTION[k] = action


_fill_slots()


cdef inline long _action_of(const char* low, Py_ssize_t n):
    """HEADER_ACTION's value for a lower-cased name; 0 when it has none."""
    cdef unsigned int k
    if n == 0:
        return 0
    k = _hash(low, n)
    while _SLOT_LEN[k]:
        if _SLOT_LEN[k] == n and memcmp(_SLOT_NAME[k], low, n) == 0:
            return _SLOT_ACTION[k]
        k = (k + 1) & (_SLOTS - 1)
    return 0


cdef tuple _request_block_raw(bytes head, Py_ssize_t start, bint gateway, const unsigned short* at,
                              Py_ssize_t nlines):
    """request_block over the header lines of a validated head (from `start`),
    rendered straight from its bytes: the same rules as _classify, no list.
    With `at`, the lines are where the codec recorded them (RequestHead._at:
    all `nlines` of them), not split again."""
    cdef const char* p = PyBytes_AS_STRING(head)
    cdef Py_ssize_t stop = PyBytes_GET_SIZE(head) - 4, pos = start, e, colon, vs, ve, n, i, o = 0
    cdef char stack[4096]
    cdef char* buf = stack
    cdef char* nm
    cdef char x
    cdef long flags = 0, action
    cdef bint keep, last
    cdef Py_ssize_t li = 0
    xff = conn = upgrade = None
    if pos >= stop:
        return b"", 0, None, None, None
    if block_room(pos, stop) > 4096:
        buf = <char*>PyMem_Malloc(block_room(pos, stop))
        if buf == NULL:
            raise MemoryError()
    try:
        while True:
            if at != NULL:
                pos = at[4 * li]
                colon = at[4 * li + 1]
                vs = at[4 * li + 2]
                ve = at[4 * li + 3]
                li += 1
                last = li >= nlines
            else:
                e = header_line(p, pos, stop, &colon, &vs, &ve)
                last = e >= stop
            n = colon - pos
            nm = buf + o  # the name is lower-cased in place; kept if the line is
            for i in range(n):
                x = p[pos + i]
                nm[i] = x + 32 if 65 <= x <= 90 else x
            keep = True
            action = _action_of(nm, n)
            if action == 0:
                if gateway and n >= 8 and memcmp(nm, b"x-envoy-", 8) == 0:
                    keep = False
            elif action == _SKIP:
                keep = False
            elif action == _CONNECTION:
                value = PyBytes_FromStringAndSize(p + vs, ve - vs)
                conn = value if conn is None else conn + b"," + value
                keep = False
            elif action == _XFP:
                if gateway:
                    keep = False
                else:
                    flags |= _HAS_XFP
            elif action == _REQUEST_ID:
                flags |= _HAS_REQUEST_ID
            elif action == _XFF:
                if gateway:
                    value = PyBytes_FromStringAndSize(p + vs, ve - vs)
                    xff = value if xff is None else xff + b"," + value
                    keep = False
            else:  # upgrade
                upgrade = PyBytes_FromStringAndSize(p + vs, ve - vs)
                keep = False
            if keep:
                o = put_value(buf, o + n, p + vs, ve - vs)
            if last:
                break
            if at == NULL:
                pos = e + 2
        block = PyBytes_FromStringAndSize(buf, o)
    finally:
        if buf != stack:
            PyMem_Free(buf)
    return block, flags, xff, conn, upgrade


cdef bytes _HTTP11_HOST = b" HTTP/1.1\r\nhost: "
cdef bytes _FIRST_ATTEMPT = FIRST_ATTEMPT
cdef bytes _XFP_LINE = XFP_LINE
cdef bytes _REQUEST_ID_NAME = b"x-request-id: "


cpdef bytes upstream_head(bytes method, bytes path, bytes authority, bytes block, list extra, bytes framing,
                          bint xfp=False, bytes request_id=None):
    """The head for an upstream's first attempt, in one allocation."""
    if method is None or path is None or authority is None or block is None or extra is None or framing is None:
        raise TypeError("upstream_head() takes no None")
    cdef Py_ssize_t i, n = PyList_GET_SIZE(extra), total
    cdef object h
    cdef bytes name, value, out
    cdef char* o
    total = (PyBytes_GET_SIZE(method) + 1 + PyBytes_GET_SIZE(path) + PyBytes_GET_SIZE(_HTTP11_HOST)
             + PyBytes_GET_SIZE(authority) + 2 + PyBytes_GET_SIZE(block) + PyBytes_GET_SIZE(framing)
             + PyBytes_GET_SIZE(_FIRST_ATTEMPT))
    if xfp:
        total += PyBytes_GET_SIZE(_XFP_LINE)
    if request_id is not None:
        total += PyBytes_GET_SIZE(_REQUEST_ID_NAME) + PyBytes_GET_SIZE(request_id) + 2
    for i in range(n):
        h = <object>PyList_GET_ITEM(extra, i)
        total += PyBytes_GET_SIZE(<bytes>h[0]) + PyBytes_GET_SIZE(<bytes>h[1]) + 4
    out = PyBytes_FromStringAndSize(NULL, total)
    o = PyBytes_AS_STRING(out)
    o = _put(o, method)
    o[0] = 32
    o = _put(o + 1, path)
    o = _put(o, _HTTP11_HOST)
    o = _put(o, authority)
    o[0] = 13
    o[1] = 10
    o = _put(o + 2, block)
    for i in range(n):
        h = <object>PyList_GET_ITEM(extra, i)
        name = <bytes>h[0]
        value = <bytes>h[1]
        o = _put(o, name)
        o[0] = 58  # ":"
        o[1] = 32
        o = _put(o + 2, value)
        o[0] = 13
        o[1] = 10
        o += 2
    if xfp:
        o = _put(o, _XFP_LINE)
    if request_id is not None:
        o = _put(_put(o, _REQUEST_ID_NAME), request_id)
        o[0] = 13
        o[1] = 10
        o += 2
    o = _put(o, framing)
    _put(o, _FIRST_ATTEMPT)
    return out


cpdef bytes response_head(bytes status_line, bytes block, service, tail, date, bytes server, framing, connection):
    """The pieces of a response head (None: absent) and the blank line, in one allocation."""
    if status_line is None or block is None or server is None:
        raise TypeError("response_head() takes a status line, a block and a server line")
    cdef Py_ssize_t total = PyBytes_GET_SIZE(status_line) + PyBytes_GET_SIZE(block) + PyBytes_GET_SIZE(server) + 2
    cdef bytes out
    cdef char* o
    if service is not None:
        total += PyBytes_GET_SIZE(<bytes?>service)
    if tail is not None:
        total += PyBytes_GET_SIZE(<bytes?>tail)
    if date is not None:
        total += PyBytes_GET_SIZE(<bytes?>date)
    if framing is not None:
        total += PyBytes_GET_SIZE(<bytes?>framing)
    if connection is not None:
        total += PyBytes_GET_SIZE(<bytes?>connection)
    out = PyBytes_FromStringAndSize(NULL, total)
    o = _put(PyBytes_AS_STRING(out), status_line)
    o = _put(o, block)
    if service is not None:
        o = _put(o, <bytes>service)
    if tail is not None:
        o = _put(o, <bytes>tail)
    if date is not None:
        o = _put(o, <bytes>date)
    o = _put(o, server)
    if framing is not None:
        o = _put(o, <bytes>framing)
    if connection is not None:
        o = _put(o, <bytes>connection)
    o[0] = 13
    o[1] = 10
    return out


cdef inline char* _put(char* o, bytes b):
    cdef Py_ssize_t n = PyBytes_GET_SIZE(b)
    memcpy(o, PyBytes_AS_STRING(b), n)
    return o + n


cpdef tuple request_block_of(RequestHead head, bint gateway):
    if head is None:
        raise TypeError("request_block_of() takes a RequestHead")
    if head._headers is None and head._raw is not None:
        if head._nlines > 0:
            return _request_block_raw(head._raw, head._start, gateway, head._at, head._nlines)
        return _request_block_raw(head._raw, head._start, gateway, NULL, 0)
    return request_block(head.headers, gateway)


def request_block(list headers, bint gateway):
    cdef Py_ssize_t count = PyList_GET_SIZE(headers)
    cdef unsigned char stack_keep[128]
    cdef bytearray heap_keep = None
    cdef unsigned char* keep = stack_keep
    if count > 128:
        heap_keep = bytearray(count)
        keep = <unsigned char*><char*>heap_keep
    flags, xff, conn, upgrade = _classify(headers, gateway, keep)
    return _render(headers, keep, count), flags, xff, conn, upgrade


def request_kept(list headers, bint gateway):
    cdef Py_ssize_t i, count = PyList_GET_SIZE(headers)
    cdef bytearray keep = bytearray(count)
    cdef unsigned char* k = <unsigned char*><char*>keep
    flags, xff, conn, upgrade = _classify(headers, gateway, k)
    return [<object>PyList_GET_ITEM(headers, i) for i in range(count) if k[i]], flags, xff, conn, upgrade


def response_block(list headers, frozenset drop):
    cdef Py_ssize_t i, count = PyList_GET_SIZE(headers)
    cdef unsigned char stack_keep[128]
    cdef bytearray heap_keep = None
    cdef unsigned char* keep = stack_keep
    cdef bint has_date = False
    cdef object h
    cdef bytes name
    if count > 128:
        heap_keep = bytearray(count)
        keep = <unsigned char*><char*>heap_keep
    for i in range(count):
        h = <object>PyList_GET_ITEM(headers, i)
        name = <bytes>PyTuple_GET_ITEM(h, 0)
        if name in _RESPONSE_SKIP:
            keep[i] = 0
            continue
        if PyBytes_GET_SIZE(name) == 4 and memcmp(PyBytes_AS_STRING(name), b"date", 4) == 0:
            has_date = True
        keep[i] = not (drop and name in drop)
    return _render(headers, keep, count), has_date


cdef int _UUID_POS[16]  # where each of the 16 bytes' two hex digits go in the 36-byte text
cdef char _HEX2[512]  # each byte value's two hex digits


cdef void _fill_uuid_tables():
    cdef int i, k = 0
    cdef const char* hexd = PyBytes_AS_STRING(_HEX)
    for i in range(16):
        if i == 4 or i == 6 or i == 8 or i == 10:
            k += 1  # a dash
        _UUID_POS[i] = k
        k += 2
    for i in range(256):
        _HEX2[2 * i] = hexd[i >> 4]
        _HEX2[2 * i + 1] = hexd[i & 15]


_fill_uuid_tables()


cpdef bytes request_id(bits):
    """A version-4 UUID (RFC 4122) from 128 random bits."""
    # Mask, not convert: no intermediate 64-bit Python ints.
    return _uuid_text(PyLong_AsUnsignedLongLongMask(bits >> 64), PyLong_AsUnsignedLongLongMask(bits))


cdef bytes _uuid_text(unsigned long long hi, unsigned long long lo):
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 36)
    cdef char* o = PyBytes_AS_STRING(out)
    cdef int i
    hi = (hi & ~(<unsigned long long>0xF000)) | 0x4000
    lo = (lo & ~(<unsigned long long>0xC000 << 48)) | (<unsigned long long>0x8000 << 48)
    for i in range(8):  # a byte (two digits) per table read
        memcpy(o + _UUID_POS[i], &_HEX2[2 * ((hi >> (56 - 8 * i)) & 0xFF)], 2)
        memcpy(o + _UUID_POS[8 + i], &_HEX2[2 * ((lo >> (56 - 8 * i)) & 0xFF)], 2)
    o[8] = o[13] = o[18] = o[23] = 45  # "-"
    return out


cdef inline unsigned long long _rotl(unsigned long long x, int k) noexcept:
    return (x << k) | (x >> (64 - k))


cdef class RequestIds:
    """x-request-id values: version-4 UUID texts from xoshiro256**, seeded from
    `rng` (a random.Random, itself seeded from the OS in each worker).  Like
    Envoy's, the ids are unique, not secret."""

    def __init__(self, rng):
        cdef int i
        for i in range(4):
            self._s[i] = rng.getrandbits(64)
        if not (self._s[0] | self._s[1] | self._s[2] | self._s[3]):
            self._s[0] = 1  # the one state xoshiro never leaves

    cdef inline unsigned long long _next64(self) noexcept:
        cdef unsigned long long* s = self._s
        cdef unsigned long long result = _rotl(s[1] * 5, 7) * 9
        cdef unsigned long long t = s[1] << 17
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    cpdef bytes next(self):
        cdef unsigned long long hi = self._next64()
        return _uuid_text(hi, self._next64())
