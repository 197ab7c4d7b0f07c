# The compiled header-block builders the compiled pipeline calls directly
# (fastproxy/pipeline/_heads.pyx; its pure twin is _heads_py.py).

from fastproxy.codec.messages cimport RequestHead

cpdef bytes upstream_head(bytes method, bytes path, bytes authority, bytes block, list extra, bytes framing,
                          bint xfp=*, bytes request_id=*)
cpdef bytes response_head(bytes status_line, bytes block, service, tail, date, bytes server, framing, connection)
cpdef tuple request_block_of(RequestHead head, bint gateway)
cpdef bytes request_id(bits)


cdef class RequestIds:
    cdef unsigned long long _s[4]
    cdef unsigned long long _next64(self) noexcept
    cpdef bytes next(self)
