# Types for compiling downstream.py with Cython (pure-Python mode); downstream.py stays its own pure twin.

cimport cython

from fastproxy._wire cimport Writer
from fastproxy.codec.messages cimport Parser, RequestEvents, RequestHead
from fastproxy.pipeline.exchange cimport Exchange
from fastproxy.server cimport ProxyState

cdef long _IDLE, _HEAD, _BUSY, PAUSE_PIPELINE, PAUSE_UPSTREAM, PAUSE_BIND


cdef class Downstream(RequestEvents):
    cdef public ProxyState state
    cdef public object loop, listener_name, server, server_line, transport, client_ip
    cdef public Parser parser
    cdef public Writer writer
    cdef public Exchange current, deferred
    cdef public object rx, queue, pending_error, tunnel, listener_key_str, vhost_cache
    cdef public bint mesh, write_paused, closed, advancing, feeding, eof
    cdef public long paused, phase
    cdef public double deadline
    cpdef pause(self, long reason)
    cpdef resume(self, long reason)
    cpdef exchange_done(self, Exchange ex, bint close)
    cpdef close(self)
    @cython.locals(ex=Exchange)
    cpdef on_request_head(self, RequestHead head)
    @cython.locals(ex=Exchange)
    cpdef on_request_body(self, data)
    @cython.locals(ex=Exchange)
    cpdef on_request_end(self)
    cpdef on_upgrade(self, rest)
