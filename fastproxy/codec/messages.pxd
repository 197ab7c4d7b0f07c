# Types for compiling messages.py with Cython (pure-Python mode); messages.py stays its own pure twin.

cdef class DeferredHeaders:
    cdef list _headers
    cdef bytes _raw
    cdef Py_ssize_t _start
    cdef object _lines


cdef class RequestHead(DeferredHeaders):
    cdef public bytes method, path, authority, version, host
    cdef public bint keep_alive, chunked, upgrade, expect_continue
    cdef public long long content_length


cdef class ResponseHead(DeferredHeaders):
    cdef public long status
    cdef public bint keep_alive, chunked
    cdef public long long content_length
    cdef public bytes version
    cdef public bytes block
    cdef public bint has_date
