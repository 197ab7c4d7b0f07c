# Types for compiling exchange.py with Cython (pure-Python mode); exchange.py stays its own pure twin.

cimport cython

cdef bint _COMPILED

from fastproxy.codec._lines cimport has_slash_dot
from fastproxy.codec.messages cimport RequestHead, ResponseHead
from fastproxy.pipeline.downstream cimport Downstream
from fastproxy.pipeline._heads cimport request_block_of, response_head, upstream_head
from fastproxy.pipeline.replies cimport DateHeader, content_length_line, status_line
from fastproxy.server cimport ProxyState
from fastproxy.table cimport Destination, Endpoint, Fault, Route, RouteEntry, RetryPolicy, VirtualHost
from fastproxy.upstream.balancer cimport ClusterState, HostState
from fastproxy.upstream.connection cimport ResponseSink, UpstreamConnection

cdef long _ACTION_ROUTE, _RETRY_RETRIABLE_HEADERS, _HAS_XFP, _HAS_REQUEST_ID
cdef tuple _SERVICE_TIME
cdef list _NO_EXTRA, _NO_BODY
cdef DateHeader DATE


cdef class Attempt(ResponseSink):
    # The ResponseSink methods (on_response_head, ...) are cpdef by inheritance.
    cdef public Exchange ex
    cdef public HostState host
    cdef public object timer, task
    cdef public UpstreamConnection conn
    cdef public long number
    cdef public bint reused, got_response, cancelled, fresh
    cpdef setup(self, Exchange ex, HostState host, long number, bint fresh)
    cpdef start(self)
    cpdef bind(self, UpstreamConnection conn, bint reused)
    cpdef _after_write(self, UpstreamConnection conn)
    cpdef arm_per_try_timer(self)
    cpdef release(self, bint reusable)


@cython.final
cdef class Exchange:
    cdef public Downstream ds
    cdef public RequestHead head
    cdef public ClusterState cs
    cdef public tuple tried
    cdef public ProxyState state
    cdef public Route route
    cdef public Destination dest
    cdef public Endpoint endpoint
    cdef public object loop, up_head, body_buf
    cdef public Attempt attempt
    cdef public object route_timer, backoff_timer, delay_timer, tunnel_rest, flags, authority, path, out
    cdef public object hash_key, extra_response
    cdef public bint chunked_up, chunked_down, request_complete, routing, retried, response_started
    cdef public bint upstream_keep_alive, close_after, done, waiting_bind, stale_retry_used, counted, retry_slot
    cdef public long long body_size, tries, retries_left, status, bytes_sent, service_time
    cdef public double complete_time, start
    cpdef setup(self, Downstream ds, RequestHead head)
    cpdef begin(self)
    @cython.locals(path=bytes, entry=RouteEntry, route=Route, fault=Fault)
    cpdef _match(self, VirtualHost vh, long match_port, match)
    @cython.locals(cs=ClusterState, route=Route, fault=Fault, dest=Destination)
    cpdef _route(self)
    @cython.locals(flags=long, xfp=bint)
    cpdef _build_upstream_head(self, Route route, Destination dest)
    cpdef on_body(self, data)
    cpdef on_end(self)
    cpdef _arm_route_timer(self)
    cpdef _release_slots(self)
    @cython.locals(attempt=Attempt)
    cpdef _new_attempt(self, bint fresh, HostState host=*)
    @cython.locals(route=Route, policy=RetryPolicy, dest=Destination)
    cpdef response_head(self, Attempt attempt, ResponseHead head)
    cpdef response_complete(self)
    cpdef finish(self, bint close)
    cpdef _report(self)
