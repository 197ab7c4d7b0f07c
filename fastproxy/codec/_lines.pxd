# How a header line of a head the codec validated splits, for every compiled
# loop that reads a head's bytes (codec/_http.pyx, pipeline/_heads.pyx).  No
# module behind this file: the function is inlined where it is cimported.

from libc.string cimport memchr


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
