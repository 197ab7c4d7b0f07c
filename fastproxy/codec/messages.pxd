# Types for compiling messages.py with Cython (pure-Python mode); messages.py stays its own pure twin.

cimport cython

# Header lines whose places a compiled request head records (RequestHead._at).
cdef enum:
    AT_LINES = 32


@cython.no_gc
cdef class DeferredHeaders:
    cdef list _headers
    cdef bytes _raw
    cdef Py_ssize_t _start
    cdef object _lines


@cython.no_gc
cdef class RequestHead(DeferredHeaders):
    cdef public bytes method, path, authority, version, host
    cdef public bint keep_alive, chunked, upgrade, expect_continue
    cdef public long long content_length
    # Compiled codec only: where its first header lines lie in _raw, four
    # offsets each (line start, colon, value start, value end), so the block
    # sent upstream (pipeline/_heads.pyx) is rendered without splitting them
    # again.  _nlines: how many are recorded; 0 when the head has more lines
    # than fit or is too long for the offsets (then they are split again).
    cdef unsigned short _at[4 * AT_LINES]
    cdef Py_ssize_t _nlines


@cython.no_gc
cdef class ResponseHead(DeferredHeaders):
    cdef public long status
    cdef public bint keep_alive, chunked
    cdef public long long content_length
    cdef public bytes version
    cdef public bytes block
    cdef public bint has_date


cdef class Parser:
    cpdef feed(self, data)
    cpdef bint head_started(self)


cdef class RequestEvents:
    cpdef on_request_head(self, RequestHead head)
    cpdef on_request_body(self, data)
    cpdef on_request_end(self)
    cpdef on_upgrade(self, rest)


cdef class ResponseEvents:
    cpdef on_response_head(self, ResponseHead head)
    cpdef on_response_body(self, data)
    cpdef on_response_end(self)
    cpdef on_upgrade(self, rest)
