# Types for compiling table.py with Cython (pure-Python mode); table.py stays its own pure twin.
#
# Each record becomes an extension type, so the pipeline reads route.retry or
# dest.cluster as a struct member instead of a generic attribute lookup.  The
# attributes are listed in table.py's field order (the dataclass __init__ takes
# them in this order); `readonly` keeps the records frozen for Python code.


cdef class StringMatch:
    cdef readonly long kind
    cdef readonly bytes value
    cdef readonly object regex


cdef class MatchSpec:
    cdef readonly StringMatch uri
    cdef readonly bint ignore_uri_case
    cdef readonly StringMatch method, authority, scheme
    cdef readonly tuple headers, without_headers, query_params
    cdef readonly long port


cdef class HeaderOps:
    cdef readonly tuple remove, set, add


cdef class Endpoint:
    cdef readonly str address
    cdef readonly long port
    cdef readonly dict labels
    cdef readonly long weight
    cdef readonly str app, version, workload, namespace


cdef class ConnectionPoolPolicy:
    cdef readonly long max_connections
    cdef readonly double connect_timeout
    cdef readonly long http1_max_pending, max_requests, max_requests_per_connection, max_retries
    cdef readonly double idle_timeout


cdef class OutlierPolicy:
    cdef readonly long consecutive_5xx, consecutive_gateway
    cdef readonly double interval, base_ejection_time
    cdef readonly long max_ejection_percent, min_health_percent


cdef class HashPolicy:
    cdef readonly object header, cookie, cookie_path, cookie_ttl
    cdef readonly bint source_ip
    cdef readonly object query_param


cdef class Cluster:
    cdef readonly str name, service, namespace
    cdef readonly long port
    cdef readonly str subset
    cdef readonly tuple endpoints
    cdef readonly long lb
    cdef readonly ConnectionPoolPolicy pool
    cdef readonly OutlierPolicy outlier
    cdef readonly HashPolicy hash


cdef class Destination:
    cdef readonly str cluster_name
    cdef readonly Cluster cluster
    cdef readonly tuple request_ops, response_ops
    cdef readonly object authority
    cdef readonly frozenset response_drop
    cdef readonly object response_tail


cdef class Rewrite:
    cdef readonly long kind, strip
    cdef readonly bytes replacement
    cdef readonly object regex


cdef class Redirect:
    cdef readonly long status
    cdef readonly object scheme, authority, port, path
    cdef readonly long strip
    cdef readonly bint prefix_rewrite


cdef class DirectResponse:
    cdef readonly long status
    cdef readonly bytes body


cdef class RetryPolicy:
    cdef readonly long attempts, retry_on
    cdef readonly frozenset retriable_codes
    cdef readonly object per_try_timeout
    cdef readonly double backoff_base, backoff_max
    cdef readonly bint retry_other_hosts


cdef class Fault:
    cdef readonly object delay
    cdef readonly long delay_ppm
    cdef readonly object abort_status, abort_grpc
    cdef readonly long abort_ppm


cdef class Mirror:
    cdef readonly Destination destination
    cdef readonly long ppm


cdef class CorsPolicy:
    cdef readonly tuple allow_origins
    cdef readonly object allow_methods, allow_headers, expose_headers, max_age
    cdef readonly bint allow_credentials, forward_unmatched_preflights


cdef class Route:
    cdef readonly str name, virtual_service
    cdef readonly long action
    cdef readonly tuple destinations, cumulative
    cdef readonly Rewrite rewrite
    cdef readonly Redirect redirect
    cdef readonly DirectResponse direct
    cdef readonly tuple response_ops
    cdef readonly object timeout
    cdef readonly RetryPolicy retry
    cdef readonly Fault fault
    cdef readonly tuple mirrors
    cdef readonly CorsPolicy cors
    cdef readonly long listener_port
    cdef readonly str path_description


cdef class RouteEntry:
    cdef readonly MatchSpec match
    cdef readonly Route route


cdef class VirtualHost:
    cdef readonly str name
    cdef readonly tuple domains
    cdef readonly long port
    cdef readonly tuple entries
    cdef readonly object matcher


cdef class Listener:
    cdef readonly str name
    cdef readonly long kind, port
    cdef readonly dict exact
    cdef readonly tuple suffix_wildcards, prefix_wildcards
    cdef readonly dict catch_all


cdef class GatewayServer:
    cdef readonly Listener listener
    cdef readonly long port
    cdef readonly object bind
    cdef readonly bint https_redirect


cdef class Config:
    cdef readonly Listener mesh
    cdef readonly tuple gateways
    cdef readonly dict clusters, dump
    cdef readonly tuple sources
