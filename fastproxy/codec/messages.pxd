# Types for compiling messages.py with Cython (pure-Python mode); messages.py stays its own pure twin.

cdef class RequestHead:
    cdef public bytes method, path, authority, version, host
    cdef public list headers
    cdef public bint keep_alive, chunked, upgrade, expect_continue
    cdef public long long content_length


cdef class ResponseHead:
    cdef public long status
    cdef public list headers
    cdef public bint keep_alive, chunked
    cdef public long long content_length
    cdef public bytes version
