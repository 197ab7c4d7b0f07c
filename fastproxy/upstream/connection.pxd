# Types for compiling connection.py with Cython (pure-Python mode); connection.py stays its own pure twin.

from fastproxy._wire cimport Writer
from fastproxy.codec.messages cimport Parser, ResponseEvents, ResponseHead
from fastproxy.upstream.pool cimport Pool

cdef class UpstreamConnection


cdef class ResponseSink:
    cpdef on_response_head(self, ResponseHead head)
    cpdef on_response_body(self, data)
    cpdef flush(self)
    cpdef on_response_end(self, UpstreamConnection conn)
    cpdef on_upgraded(self, UpstreamConnection conn, rest)
    cpdef on_upstream_failure(self, reason, transport)
    cpdef pause_source(self)
    cpdef resume_source(self)


cdef class UpstreamConnection(ResponseEvents):
    cdef public Pool pool
    cdef public ResponseSink attempt
    cdef public object transport, tunnel, owner
    cdef public Parser parser
    cdef public Writer writer
    cdef public long generation, requests
    cdef public double idle_since
    cdef public bint closed, eof
    cpdef _disown(self)
    cpdef abort(self)
    cpdef on_response_head(self, ResponseHead head)
    cpdef on_response_body(self, data)
    cpdef on_response_end(self)
    cpdef on_upgrade(self, rest)
