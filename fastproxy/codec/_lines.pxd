# How a header line of a head the codec validated splits, and how the blocks
# rendered from such lines are written, for every compiled loop that reads a
# head's bytes (codec/_http.pyx, pipeline/_heads.pyx, pipeline/exchange.py).
# No module behind this file: the functions are inlined where they are cimported.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.string cimport memchr, memcpy


cdef inline Py_ssize_t header_line(const char* p, Py_ssize_t pos, Py_ssize_t stop, Py_ssize_t* colon,
                                   Py_ssize_t* vs, Py_ssize_t* ve) noexcept nogil:
    """The line at `pos` (lines run to `stop`): returns where it ends (its CR,
    or `stop`); sets *colon where the name ends and [*vs, *ve) to the value
    without the optional whitespace around it."""
    cdef const char* q = <const char*>memchr(p + pos, 13, stop - pos)
    cdef Py_ssize_t e = stop if q == NULL else q - p
    cdef Py_ssize_t c, s, t
    q = <const char*>memchr(p + pos, 58, e - pos)
    c = e if q == NULL else q - p
    s = c + 1
    t = e
    while s < t and (p[s] == 32 or p[s] == 9):
        s += 1
    while t > s and (p[t - 1] == 32 or p[t - 1] == 9):
        t -= 1
    colon[0] = c
    vs[0] = s
    ve[0] = t
    return e


cdef inline Py_ssize_t block_room(Py_ssize_t pos, Py_ssize_t stop) noexcept nogil:
    """Room for a block rendered from the lines in [pos, stop): a line grows by
    at most one byte (the space after the colon), the last one by three (its
    CRLF lies outside [pos, stop))."""
    return 2 * (stop - pos) + 8


cdef inline Py_ssize_t put_value(char* buf, Py_ssize_t o, const char* value, Py_ssize_t n) noexcept nogil:
    """Behind a name that ends at buf[o]: ": ", the value and CRLF; returns the new end."""
    buf[o] = 58  # ":"
    buf[o + 1] = 32
    memcpy(buf + o + 2, value, n)
    buf[o + 2 + n] = 13
    buf[o + 3 + n] = 10
    return o + n + 4


cdef inline bint has_slash_dot(bytes path) noexcept:
    """path.find(b"/.") >= 0, without the method call's argument parsing: a
    request path that may hold a dot segment to normalise."""
    cdef const char* p = PyBytes_AS_STRING(path)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(path), i = 0
    cdef const char* q
    while i + 1 < n:
        q = <const char*>memchr(p + i, 47, n - i - 1)
        if q == NULL:
            return False
        i = q - p
        if p[i + 1] == 46:
            return True
        i += 1
    return False
