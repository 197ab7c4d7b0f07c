# Types for compiling server.py with Cython (pure-Python mode); server.py stays its own pure twin.

cimport cython

from fastproxy._clock cimport monotonic as _c_monotonic
from fastproxy.pipeline._heads cimport RequestIds

@cython.final
cdef class ProxyState:
    cdef public object loop, limits, request_parser, upstream, rng, fault_rng, id_rng, counters
    cdef public object stats, record, access_log, config, _sweeper
    cdef public set connections, https_redirect
    cdef public dict listeners, clusters
    cdef public long max_head_bytes, max_headers, mirrors_in_flight, max_mirrors_in_flight
    cdef public double head_timeout, idle_timeout
    cdef public bint draining
    cdef public RequestIds request_ids
    cpdef double now(self)
