# cython: language_level=3
"""Compiled route matcher: fastproxy._match_py's twin, same API, same results.

Everything a request needs is flattened in __init__ into typed cdef records
held in a tuple, so match() is a C loop that compares bytes with memcmp and
only calls into Python for regexes.  Per-request allocations happen only when
a spec with header or query conditions is reached: header values are looked
up lazily, one scan of the header list per needed name, and query parameters
are found by scanning the query in place (never split into a dict).
Semantics: traffic-semantics.md 2.4 / 2.5.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.string cimport memcmp

from fastproxy import table

# StringMatch kinds; kept equal to fastproxy.table's constants (checked at import).
cdef enum:
    K_NONE = 0
    K_EXACT = 1
    K_PREFIX = 2
    K_REGEX = 3
    K_PRESENT = 4

if (table.EXACT, table.PREFIX, table.REGEX, table.PRESENT) != (K_EXACT, K_PREFIX, K_REGEX, K_PRESENT):
    raise ImportError("fastproxy._match is out of date with fastproxy.table; rebuild it")

# Slot codes for pseudo-headers used as `headers` keys.
cdef enum:
    P_NONE = -1
    P_METHOD = 0
    P_PATH = 1
    P_AUTHORITY = 2
    P_SCHEME = 3

_PSEUDO = {b":method": P_METHOD, b":path": P_PATH, b":authority": P_AUTHORITY, b":scheme": P_SCHEME}

_ASCII_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")

# Marks a header slot not looked up yet during this call (None means absent).
cdef object _UNSET = object()


@cython.final
cdef class _Str:
    """One StringMatch, flattened."""
    cdef int kind
    cdef bytes value
    cdef object fullmatch  # bound regex.fullmatch, or None

    def __cinit__(self, sm, bint lower=False):
        self.kind = sm.kind
        value = bytes(sm.value)
        self.value = value.translate(_ASCII_LOWER) if lower else value
        self.fullmatch = sm.regex.fullmatch if sm.kind == K_REGEX and sm.regex is not None else None


@cython.final
cdef class _Cond:
    """A header / query condition: a StringMatch plus where its value comes from."""
    cdef _Str sm
    cdef bytes name
    cdef Py_ssize_t slot  # header value slot (headers only)

    def __cinit__(self, bytes name, _Str sm, Py_ssize_t slot):
        self.name = name
        self.sm = sm
        self.slot = slot


@cython.final
cdef class _Spec:
    cdef long port
    cdef _Str method
    cdef _Str scheme
    cdef _Str authority
    cdef _Str uri
    cdef bint icase
    cdef tuple headers  # of _Cond
    cdef tuple without  # of _Cond
    cdef tuple query  # of _Cond
    cdef bint has_headers
    cdef bint has_query


cdef inline int _str_match(_Str m, bytes v) except -1:
    """1 when `v` satisfies `m`, else 0; -1 only if a regex call raised."""
    cdef Py_ssize_t n
    cdef int kind = m.kind
    if kind == K_EXACT:
        n = PyBytes_GET_SIZE(m.value)
        return n == PyBytes_GET_SIZE(v) and memcmp(PyBytes_AS_STRING(m.value), PyBytes_AS_STRING(v), n) == 0
    if kind == K_PREFIX:
        n = PyBytes_GET_SIZE(m.value)
        return n <= PyBytes_GET_SIZE(v) and memcmp(PyBytes_AS_STRING(m.value), PyBytes_AS_STRING(v), n) == 0
    if kind == K_REGEX:
        return m.fullmatch is not None and m.fullmatch(v) is not None
    return kind == K_PRESENT


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline bint _icase_eq(const char* p, const char* lowered, Py_ssize_t n) noexcept:
    """ASCII case-insensitive compare of p[:n] against an already lower-cased value."""
    cdef Py_ssize_t i
    cdef char c
    for i in range(n):
        c = p[i]
        if c >= 65 and c <= 90:  # 'A'..'Z'
            c = c + 32
        if c != lowered[i]:
            return False
    return True


cdef int _uri_match(_Spec s, bytes path, Py_ssize_t plen) except -1:
    """Match the URI condition against path[:plen] (query and fragment cut off, no copy)."""
    cdef _Str m = s.uri
    cdef Py_ssize_t n
    cdef int kind = m.kind
    if kind == K_EXACT or kind == K_PREFIX:
        n = PyBytes_GET_SIZE(m.value)
        if n > plen or (kind == K_EXACT and n != plen):
            return 0
        if s.icase:
            return _icase_eq(PyBytes_AS_STRING(path), PyBytes_AS_STRING(m.value), n)
        return memcmp(PyBytes_AS_STRING(path), PyBytes_AS_STRING(m.value), n) == 0
    if kind == K_REGEX:
        if m.fullmatch is None:
            return 0
        if plen == PyBytes_GET_SIZE(path):
            return m.fullmatch(path) is not None
        # pos/endpos bounds the match without slicing the path.
        return m.fullmatch(path, 0, plen) is not None
    return kind == K_PRESENT


@cython.boundscheck(False)
@cython.wraparound(False)
cdef object _header_value(list headers, bytes name):
    """The value of header `name` (repeats joined with ","), or None when absent."""
    cdef Py_ssize_t i, n = PyList_GET_SIZE(headers)
    cdef Py_ssize_t nlen = PyBytes_GET_SIZE(name)
    cdef object item, hname
    cdef bytes first = None
    cdef list parts = None
    for i in range(n):
        item = <object>PyList_GET_ITEM(headers, i)
        if type(item) is not tuple or PyTuple_GET_SIZE(item) != 2:
            # Unusual shape (list pair, ...): fall back to generic unpacking.
            hname, value = item
        else:
            hname = <object>PyTuple_GET_ITEM(item, 0)
            value = <object>PyTuple_GET_ITEM(item, 1)
        if (
            type(hname) is bytes
            and PyBytes_GET_SIZE(hname) == nlen
            and memcmp(PyBytes_AS_STRING(hname), PyBytes_AS_STRING(name), nlen) == 0
        ):
            if first is None:
                first = value
            elif parts is None:
                parts = [first, value]
            else:
                parts.append(value)
    if parts is not None:
        return b",".join(parts)
    return first


cdef object _value_of(object headers, bytes name):
    """The value of header `name`: from a header list, or by a RequestHead's
    bound header_value."""
    if type(headers) is list:
        return _header_value(<list>headers, name)
    return headers(name)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _headers_match(_Spec s, list vals, object headers) except -1:
    cdef Py_ssize_t i
    cdef _Cond c
    cdef object v
    for i in range(PyTuple_GET_SIZE(s.headers)):
        c = <_Cond>PyTuple_GET_ITEM(s.headers, i)
        v = vals[c.slot]
        if v is _UNSET:
            v = _value_of(headers, c.name)
            vals[c.slot] = v
        # An absent header fails every kind, presence included.
        if v is None or not _str_match(c.sm, <bytes>v):
            return 0
    for i in range(PyTuple_GET_SIZE(s.without)):
        c = <_Cond>PyTuple_GET_ITEM(s.without, i)
        v = vals[c.slot]
        if v is _UNSET:
            v = _value_of(headers, c.name)
            vals[c.slot] = v
        if c.sm.kind == K_PRESENT:
            if v is not None:
                return 0
        # Envoy's treat_missing_header_as_empty: absent is matched as "".
        elif _str_match(c.sm, b"" if v is None else <bytes>v):
            return 0
    return 1


@cython.boundscheck(False)
@cython.wraparound(False)
cdef object _query_value(bytes path, Py_ssize_t start, Py_ssize_t end, bytes key):
    """Value of the first `key` parameter in path[start:end] (the query), or None.

    `?key` and `?key=` both give b""; values are returned as sent (not
    percent-decoded).  Scanning in place costs less than splitting the query
    into a dict, and most queries are short.
    """
    cdef const char* p = PyBytes_AS_STRING(path)
    cdef const char* k = PyBytes_AS_STRING(key)
    cdef Py_ssize_t klen = PyBytes_GET_SIZE(key)
    cdef Py_ssize_t pos = start, stop, eq
    while pos < end:
        stop = pos
        eq = -1
        while stop < end and p[stop] != 38:  # '&'
            if eq < 0 and p[stop] == 61:  # '='
                eq = stop
            stop += 1
        if stop > pos:  # empty parameters ("a&&b") are skipped
            if eq < 0:
                if stop - pos == klen and memcmp(p + pos, k, klen) == 0:
                    return b""
            elif eq - pos == klen and memcmp(p + pos, k, klen) == 0:
                return path[eq + 1 : stop]
        pos = stop + 1
    return None


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _query_match(_Spec s, bytes path, Py_ssize_t start, Py_ssize_t end) except -1:
    cdef Py_ssize_t i
    cdef _Cond c
    cdef object v
    for i in range(PyTuple_GET_SIZE(s.query)):
        c = <_Cond>PyTuple_GET_ITEM(s.query, i)
        v = _query_value(path, start, end, c.name)
        if v is None or not _str_match(c.sm, <bytes>v):
            return 0
    return 1


cdef class RouteMatcher:
    """First-match route selection over a vhost's MatchSpecs."""
    cdef tuple _specs  # of _Spec
    cdef Py_ssize_t _nslots
    cdef tuple _pseudo  # of (slot, P_* code)

    def __init__(self, specs):
        cdef _Spec s
        slots = {}
        pseudo = []
        compiled = []

        def cond(name, sm):
            name = bytes(name).lower()
            slot = slots.get(name)
            if slot is None:
                slot = slots[name] = len(slots)
                code = _PSEUDO.get(name, P_NONE)
                if code != P_NONE:
                    pseudo.append((slot, code))
            return _Cond(name, _Str(sm), slot)

        for spec in specs:
            s = _Spec.__new__(_Spec)
            s.port = spec.port
            s.method = _Str(spec.method) if spec.method is not None else None
            s.scheme = _Str(spec.scheme) if spec.scheme is not None else None
            s.authority = _Str(spec.authority) if spec.authority is not None else None
            s.icase = bool(spec.ignore_uri_case) and spec.uri is not None and spec.uri.kind != K_REGEX
            s.uri = _Str(spec.uri, s.icase) if spec.uri is not None else None
            s.headers = tuple([cond(n, sm) for n, sm in spec.headers])
            s.without = tuple([cond(n, sm) for n, sm in spec.without_headers])
            s.query = tuple([_Cond(bytes(k), _Str(sm), -1) for k, sm in spec.query_params])
            s.has_headers = bool(s.headers) or bool(s.without)
            s.has_query = bool(s.query)
            compiled.append(s)
        self._specs = tuple(compiled)
        self._nslots = len(slots)
        self._pseudo = tuple(pseudo)

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def match(
        self,
        bytes method not None,
        bytes path not None,
        bytes authority not None,
        bytes scheme not None,
        headers,
        long port,
    ):
        cdef Py_ssize_t i, n = PyTuple_GET_SIZE(self._specs)
        cdef Py_ssize_t plen = PyBytes_GET_SIZE(path)
        cdef Py_ssize_t qpos = -1
        cdef const char* p = PyBytes_AS_STRING(path)
        cdef _Spec s
        cdef list vals = None
        cdef object hsrc = None
        cdef Py_ssize_t qend = -1
        cdef char c

        # One pass to find where "?query" or "#fragment" starts; the URI condition stops there.
        for i in range(plen):
            c = p[i]
            if c == 63:  # '?'
                qpos = i
                plen = i
                break
            if c == 35:  # '#': no query; a '?' after it belongs to the fragment
                plen = i
                break

        for i in range(n):
            s = <_Spec>PyTuple_GET_ITEM(self._specs, i)
            if s.port != 0 and s.port != port:
                continue
            if s.method is not None and not _str_match(s.method, method):
                continue
            if s.scheme is not None and not _str_match(s.scheme, scheme):
                continue
            if s.authority is not None and not _str_match(s.authority, authority):
                continue
            if s.uri is not None and not _uri_match(s, path, plen):
                continue
            if s.has_headers:
                if vals is None:
                    vals = self._new_slots(method, path, authority, scheme)
                    if type(headers) is list:
                        hsrc = headers
                    else:
                        # A RequestHead answers for each name; any other iterable of pairs is listed.
                        hsrc = getattr(headers, "header_value", None)
                        if hsrc is None:
                            hsrc = list(headers)
                if not _headers_match(s, vals, hsrc):
                    continue
            if s.has_query:
                if qpos < 0:
                    continue  # no query string: every query condition fails
                if qend < 0:
                    qend = qpos + 1
                    while qend < PyBytes_GET_SIZE(path) and p[qend] != 35:  # '#'
                        qend += 1
                if not _query_match(s, path, qpos + 1, qend):
                    continue
            return i
        return -1

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef list _new_slots(self, bytes method, bytes path, bytes authority, bytes scheme):
        cdef list vals = [_UNSET] * self._nslots
        cdef Py_ssize_t j, slot
        cdef int code
        for j in range(PyTuple_GET_SIZE(self._pseudo)):
            slot, code = <tuple>PyTuple_GET_ITEM(self._pseudo, j)
            if code == P_METHOD:
                vals[slot] = method
            elif code == P_PATH:
                vals[slot] = path
            elif code == P_AUTHORITY:
                vals[slot] = authority
            else:
                vals[slot] = scheme
        return vals


@cython.boundscheck(False)
@cython.wraparound(False)
def pick(tuple cumulative not None, rnd):
    """Weighted choice: bisect_right(cumulative, rnd % cumulative[-1]); weight-0 entries never win."""
    cdef Py_ssize_t n = PyTuple_GET_SIZE(cumulative)
    cdef Py_ssize_t lo = 0, hi, mid
    cdef long long r
    if n == 1:
        return 0
    if n == 0:
        raise IndexError("pick() from empty cumulative weights")
    # Python's % keeps r in [0, total) for any int rnd, however large or negative.
    r = rnd % <object>PyTuple_GET_ITEM(cumulative, n - 1)
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if r < <long long>(<object>PyTuple_GET_ITEM(cumulative, mid)):
            hi = mid
        else:
            lo = mid + 1
    return lo
