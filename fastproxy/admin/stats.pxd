# Types for compiling stats.py with Cython (pure-Python mode); stats.py stays its own pure twin.

cimport cython

from fastproxy.pipeline.exchange cimport Exchange
from fastproxy.server cimport ProxyState

cdef double _BOUNDS[19]  # len(BUCKETS)
cdef Py_ssize_t _NBOUNDS
cdef bint _COMPILED
cdef Py_ssize_t _RECENT


@cython.locals(i=Py_ssize_t, bound=double)
cdef Py_ssize_t _bucket(double v)


@cython.locals(a="size_t", b="size_t")
cdef Py_ssize_t _slot(object target, object ep, long long status)


cdef class _Key:
    cdef public object listener, target, ep, flags
    cdef public long long status
    cdef public Series series


cdef class Series:
    cdef public object labels, cluster, host, listener, subset
    cdef public long long count, req_sum, resp_sum
    cdef public double dur_sum
    # NB each
    cdef public long long dur_b[20]
    cdef public long long req_b[20]
    cdef public long long resp_b[20]
    @cython.locals(i=Py_ssize_t)
    cpdef add(self, Series other)


@cython.final
cdef class Stats:
    cdef public object loop, series, _pins, _config, mirrors
    cdef public dict _fast
    cdef public list _recent

    @cython.locals(s=Series, k=_Key, i=Py_ssize_t, status="long long", state=ProxyState, ms=double, cl="long long",
                   req="long long", resp="long long")
    cpdef record(self, Exchange ex)
