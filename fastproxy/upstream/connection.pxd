# Types for compiling connection.py with Cython (pure-Python mode); connection.py stays its own pure twin.

from fastproxy.upstream.pool cimport Pool


cdef class UpstreamConnection:
    cdef public Pool pool
    cdef public object transport, parser, attempt, tunnel, owner
    cdef public long generation, requests
    cdef public double idle_since
    cdef public bint closed, eof
    cpdef _disown(self)
    cpdef abort(self)
