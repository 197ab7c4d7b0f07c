# Types for compiling downstream.py with Cython (pure-Python mode); downstream.py stays its own pure twin.

from fastproxy.pipeline.exchange cimport Exchange
from fastproxy.server cimport ProxyState


cdef class Downstream:
    cdef public ProxyState state
    cdef public object loop, listener_name, server, server_line, transport, writer, parser, client_ip
    cdef public Exchange current, deferred
    cdef public object rx, queue, pending_error, tunnel, listener_key_str, vhost_cache
    cdef public bint mesh, write_paused, closed, advancing, feeding, eof
    cdef public long paused, phase
    cdef public double deadline
    cpdef pause(self, long reason)
    cpdef resume(self, long reason)
    cpdef exchange_done(self, ex, bint close)
    cpdef close(self)
