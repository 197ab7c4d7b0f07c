# Types for compiling pool.py with Cython (pure-Python mode); pool.py stays its own pure twin.

cimport cython

from fastproxy._clock cimport monotonic as _c_monotonic
from fastproxy.upstream.connection cimport UpstreamConnection


cdef bint _COMPILED


cdef class Pool:
    cdef public list idle
    cdef public object address, loop, new_parser
    cdef public long port, busy, connecting, generation
    cdef public double idle_timeout
    cdef public bint closed
    @cython.locals(conn=UpstreamConnection)
    cpdef take_idle(self)
    cpdef release(self, UpstreamConnection conn, bint reusable)
    cpdef discard(self, conn)
    cpdef lost_busy(self)
