# Types for compiling balancer.py with Cython (pure-Python mode); balancer.py stays its own pure twin.

cimport cython

from fastproxy.table cimport Cluster, ConnectionPoolPolicy, Endpoint, OutlierPolicy
from fastproxy.upstream.pool cimport Pool

cdef long _LB_ROUND_ROBIN, _LB_RANDOM, _LB_CONSISTENT_HASH


cdef class HostState:
    cdef public Endpoint endpoint
    cdef public object label
    cdef public Pool pool
    cdef public long active, errors_5xx, errors_gateway, ejections
    cdef public double ejected_until


cdef class ClusterState:
    cdef public Cluster cluster
    cdef public ConnectionPoolPolicy limits
    cdef public OutlierPolicy outlier
    cdef public object rng, loop, pending, timer, counters
    cdef public list hosts, healthy, ring, ring_hosts
    cdef public long lb, rr, active, connections, retries

    @cython.locals(n=Py_ssize_t)
    cpdef choose(self, tuple tried=*, key=*)
    @cython.locals(i=long, a=HostState, b=HostState)
    cpdef _pick(self, list hosts, Py_ssize_t n)
    cpdef wake(self)
    cpdef report(self, HostState host, bint failed, bint gateway)
