# Types for compiling messages.py with Cython (pure-Python mode); messages.py stays its own pure twin.

cdef class RequestHead:
    cdef public bytes method, path, authority, version, host
    cdef public bint keep_alive, chunked, upgrade, expect_continue
    cdef public long long content_length
    cdef list _headers
    cdef bytes _raw
    cdef Py_ssize_t _start
    cdef object _lines


cdef class ResponseHead:
    cdef public long status
    cdef list _headers
    cdef public bint keep_alive, chunked
    cdef public long long content_length
    cdef public bytes version
    cdef public bytes block
    cdef public bint has_date
    cdef bytes _raw
    cdef Py_ssize_t _start
    cdef object _lines
