"""Flat, read-only records that config/compile.py builds once per load.

Compiled with Cython in pure-Python mode (table.pxd): each record is an
extension type whose fields the pipeline reads as struct members; this file is
also the pure twin.  Records are frozen dataclasses in both forms.

This module is the contract between the stages: the compiler writes these
records, the matcher, the request pipeline, the upstream pool and the admin
endpoints only read them.  Nothing here is re-derived per request: names are
lower-cased bytes, weights are cumulative, retry conditions are a bitmask.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

try:
    import cython

    _COMPILED = cython.compiled
except ImportError:  # the pure twin, where Cython is not installed
    _COMPILED = False

# StringMatch kinds (shared with _match.pyx / _match_py.py).
EXACT = 1
PREFIX = 2
REGEX = 3
PRESENT = 4  # header / query parameter presence only

# Route actions.
ACTION_ROUTE = 0
ACTION_REDIRECT = 1
ACTION_DIRECT = 2

# Rewrite kinds.
REWRITE_PREFIX = 1  # replace the first `strip` bytes of the path with `replacement`
REWRITE_REGEX = 2  # regex.sub(replacement, path-without-query)

# Load-balancer algorithms.
LB_LEAST_REQUEST = 0
LB_ROUND_ROBIN = 1
LB_RANDOM = 2
LB_PASSTHROUGH = 3
LB_CONSISTENT_HASH = 4

# Listener kinds.
LISTENER_MESH = 0
LISTENER_GATEWAY = 1

# retryOn bits (Envoy's RetryPolicy flags).
RETRY_5XX = 1 << 0
RETRY_GATEWAY_ERROR = 1 << 1
RETRY_RESET = 1 << 2
RETRY_CONNECT_FAILURE = 1 << 3
RETRY_RETRIABLE_4XX = 1 << 4
RETRY_REFUSED_STREAM = 1 << 5
RETRY_RETRIABLE_STATUS_CODES = 1 << 6
RETRY_RETRIABLE_HEADERS = 1 << 7
RETRY_ENVOY_RATELIMITED = 1 << 8
RETRY_RESET_BEFORE_REQUEST = 1 << 9
RETRY_GRPC_CANCELLED = 1 << 10
RETRY_GRPC_DEADLINE_EXCEEDED = 1 << 11
RETRY_GRPC_INTERNAL = 1 << 12
RETRY_GRPC_RESOURCE_EXHAUSTED = 1 << 13
RETRY_GRPC_UNAVAILABLE = 1 << 14

RETRY_ON_NAMES: dict[str, int] = {
    "5xx": RETRY_5XX,
    "gateway-error": RETRY_GATEWAY_ERROR,
    "reset": RETRY_RESET,
    "reset-before-request": RETRY_RESET_BEFORE_REQUEST,
    "connect-failure": RETRY_CONNECT_FAILURE,
    "retriable-4xx": RETRY_RETRIABLE_4XX,
    "refused-stream": RETRY_REFUSED_STREAM,
    "retriable-status-codes": RETRY_RETRIABLE_STATUS_CODES,
    "retriable-headers": RETRY_RETRIABLE_HEADERS,
    "envoy-ratelimited": RETRY_ENVOY_RATELIMITED,
    "cancelled": RETRY_GRPC_CANCELLED,
    "deadline-exceeded": RETRY_GRPC_DEADLINE_EXCEEDED,
    "internal": RETRY_GRPC_INTERNAL,
    "resource-exhausted": RETRY_GRPC_RESOURCE_EXHAUSTED,
    "unavailable": RETRY_GRPC_UNAVAILABLE,
}

# Istio >= 1.24 default outbound policy (CONTRACT.md: we follow 1.28).
DEFAULT_RETRY_ON = (
    RETRY_CONNECT_FAILURE
    | RETRY_REFUSED_STREAM
    | RETRY_GRPC_UNAVAILABLE
    | RETRY_GRPC_CANCELLED
    | RETRY_RETRIABLE_STATUS_CODES
)


@dataclass(frozen=True)
class StringMatch:
    kind: int
    # EXACT / PREFIX text.  For a URI match with ignoreUriCase it is lower-cased.
    value: bytes = b""
    # REGEX: compiled for re.fullmatch on bytes.
    regex: re.Pattern[bytes] | None = None


@dataclass(frozen=True)
class MatchSpec:
    """One HTTPMatchRequest block: every present condition must hold (AND)."""

    uri: StringMatch | None = None  # matched against the path without query
    ignore_uri_case: bool = False
    method: StringMatch | None = None
    authority: StringMatch | None = None  # raw Host value, port and case kept
    scheme: StringMatch | None = None
    headers: tuple[tuple[bytes, StringMatch], ...] = ()  # lower-case names
    without_headers: tuple[tuple[bytes, StringMatch], ...] = ()
    query_params: tuple[tuple[bytes, StringMatch], ...] = ()
    port: int = 0  # 0 = any


# repr=False: Cython's generated __repr__ calls set(), which the field named
# `set` shadows in the class body; this one says the same.
@dataclass(frozen=True, repr=False)
class HeaderOps:
    """One Envoy header parser: all removes, then set, then add (in order)."""

    remove: tuple[bytes, ...] = ()  # lower-case names
    set: tuple[tuple[bytes, bytes], ...] = ()  # (lower-case name, value)
    add: tuple[tuple[bytes, bytes], ...] = ()

    def __repr__(self) -> str:
        return f"HeaderOps(remove={self.remove!r}, set={self.set!r}, add={self.add!r})"


@dataclass(frozen=True)
class Endpoint:
    address: str  # IP literal or DNS name
    port: int
    labels: dict[str, str]
    weight: int = 1
    # Telemetry identity, taken from labels at compile time.
    app: str = "unknown"
    version: str = "unknown"
    workload: str = "unknown"
    namespace: str = "default"


@dataclass(frozen=True)
class ConnectionPoolPolicy:
    max_connections: int = 2**32 - 1
    connect_timeout: float = 10.0
    http1_max_pending: int = 2**32 - 1
    max_requests: int = 2**32 - 1
    max_requests_per_connection: int = 0  # 0 = unlimited
    max_retries: int = 2**32 - 1
    idle_timeout: float = 3600.0


@dataclass(frozen=True)
class OutlierPolicy:
    consecutive_5xx: int = 5
    consecutive_gateway: int = 0  # 0 = disabled
    interval: float = 10.0
    base_ejection_time: float = 30.0
    max_ejection_percent: int = 10
    min_health_percent: int = 0


@dataclass(frozen=True)
class HashPolicy:
    header: bytes | None = None  # lower-case header name
    cookie: str | None = None
    cookie_path: str | None = None
    cookie_ttl: float | None = None
    source_ip: bool = False
    query_param: bytes | None = None


@dataclass(frozen=True)
class Cluster:
    """Envoy cluster outbound|PORT|SUBSET|HOST, with its endpoints and policy."""

    name: str
    service: str  # FQDN
    namespace: str
    port: int  # service port
    subset: str
    endpoints: tuple[Endpoint, ...]
    lb: int = LB_LEAST_REQUEST
    pool: ConnectionPoolPolicy = field(default_factory=ConnectionPoolPolicy)
    outlier: OutlierPolicy | None = None
    hash: HashPolicy | None = None


@dataclass(frozen=True)
class Destination:
    cluster_name: str
    cluster: Cluster | None  # None: the cluster does not exist -> 503 NC
    # Header parsers for a request / response through this destination, in the
    # order Envoy runs them (route vs destination precedence already resolved).
    request_ops: tuple[HeaderOps, ...] = ()
    response_ops: tuple[HeaderOps, ...] = ()
    authority: bytes | None = None  # Host sent upstream, when rewritten
    # Derived: every name the response ops remove or set.  Whatever the ops'
    # order, their effect on the upstream's own headers is only "drop these
    # names"; the rest (sets, adds) is appended after them.  So the upstream's
    # headers still go to the client as one block, minus these names
    # (pipeline/exchange.py, pipeline/heads.py).
    response_drop: frozenset[bytes] = field(init=False, default=frozenset())
    # Derived: what the response ops add behind the upstream's block, rendered
    # once ("name: value\r\n" lines).  Exact whenever the ops neither remove
    # nor set x-envoy-upstream-service-time, the one header the proxy puts
    # there itself: untouched, it stays in front of what the ops append.
    # None otherwise (the pipeline then runs the ops per response).
    response_tail: bytes | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        drop = frozenset(name for op in self.response_ops for name in (*op.remove, *(n for n, _ in op.set)))
        tail = None
        if b"x-envoy-upstream-service-time" not in drop:
            from fastproxy.pipeline.headers import apply_ops  # not at the top: headers imports this module

            tail = b"".join(b"%b: %b\r\n" % h for h in apply_ops([], self.response_ops))
        if _COMPILED:
            # readonly attributes, writable from the class's own C code
            self.response_drop = drop
            self.response_tail = tail
        else:
            object.__setattr__(self, "response_drop", drop)
            object.__setattr__(self, "response_tail", tail)


@dataclass(frozen=True)
class Rewrite:
    kind: int
    strip: int = 0  # REWRITE_PREFIX: number of leading path bytes replaced
    replacement: bytes = b""
    regex: re.Pattern[bytes] | None = None  # REWRITE_REGEX


@dataclass(frozen=True)
class Redirect:
    status: int  # 301 by default
    scheme: bytes | None  # None: keep the request's scheme
    authority: bytes | None  # None: the request Host
    port: int | None  # resolved explicit / derived port; None: none
    path: bytes | None  # None: keep the request path
    strip: int = 0  # prefixRewrite: number of leading path bytes replaced by `path`
    prefix_rewrite: bool = False


@dataclass(frozen=True)
class DirectResponse:
    status: int
    body: bytes


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int  # number of retries (tries = attempts + 1); 0 = none
    retry_on: int  # RETRY_* bits
    retriable_codes: frozenset[int] = frozenset()
    per_try_timeout: float | None = None
    backoff_base: float = 0.025
    backoff_max: float = 0.25
    retry_other_hosts: bool = True


DEFAULT_RETRY = RetryPolicy(attempts=2, retry_on=DEFAULT_RETRY_ON)
NO_RETRY = RetryPolicy(attempts=0, retry_on=0)


@dataclass(frozen=True)
class Fault:
    delay: float | None = None  # seconds
    delay_ppm: int = 0  # parts per million of requests delayed
    abort_status: int | None = None
    abort_grpc: str | None = None
    abort_ppm: int = 0


@dataclass(frozen=True)
class Mirror:
    destination: Destination
    ppm: int = 1_000_000


@dataclass(frozen=True)
class CorsPolicy:
    allow_origins: tuple[StringMatch, ...] = ()
    allow_methods: bytes | None = None
    allow_headers: bytes | None = None
    expose_headers: bytes | None = None
    max_age: bytes | None = None
    allow_credentials: bool = False
    forward_unmatched_preflights: bool = True


@dataclass(frozen=True)
class Route:
    name: str  # Envoy route name: http[].name (+ "." + match name), "default" when generated
    virtual_service: str  # "name.namespace", "" for Istio's generated default route
    action: int = ACTION_ROUTE
    destinations: tuple[Destination, ...] = ()
    cumulative: tuple[int, ...] = ()  # cumulative weights, last = total
    rewrite: Rewrite | None = None
    redirect: Redirect | None = None
    direct: DirectResponse | None = None
    # Route-level response ops, applied to redirect / direct responses.
    response_ops: tuple[HeaderOps, ...] = ()
    timeout: float | None = None
    retry: RetryPolicy = DEFAULT_RETRY
    fault: Fault | None = None
    mirrors: tuple[Mirror, ...] = ()
    cors: CorsPolicy | None = None
    listener_port: int = 80  # the port the route table was built for
    # The URI condition kind this route was selected by, shown by `routes`.
    path_description: str = "/*"


@dataclass(frozen=True)
class RouteEntry:
    match: MatchSpec
    route: Route


@dataclass(frozen=True)
class VirtualHost:
    name: str  # "<host>:<port>"
    domains: tuple[str, ...]
    port: int
    entries: tuple[RouteEntry, ...]
    # RouteMatcher from fastproxy.matcher built over the entries' MatchSpecs.
    matcher: Any = None


@dataclass(frozen=True)
class Listener:
    name: str  # "mesh", or "NAMESPACE/GATEWAY:PORT"
    kind: int
    port: int  # gateway server port; 0 for the mesh listener
    # Exact domains.  Mesh: key (lower-case host, port); gateways ignore the
    # Host port, so their keys use port 0.
    exact: dict[tuple[bytes, int], VirtualHost]
    # (suffix such as b".example.com", port, vhost), longest suffix first.
    suffix_wildcards: tuple[tuple[bytes, int, VirtualHost], ...] = ()
    # (prefix such as b"foo.", port, vhost), longest prefix first.
    prefix_wildcards: tuple[tuple[bytes, int, VirtualHost], ...] = ()
    # vhost for "*" per port (port 0 for gateways).
    catch_all: dict[int, VirtualHost] = field(default_factory=dict)

    def find(self, host: bytes, port: int) -> VirtualHost | None:
        """Envoy's vhost lookup: exact, longest suffix wildcard, prefix wildcard, '*'.

        `host` is lower-cased with the port already removed; gateways pass port 0.
        """
        vh = self.exact.get((host, port))
        if vh is not None:
            return vh
        for suffix, p, vh in self.suffix_wildcards:
            if p == port and len(host) > len(suffix) and host.endswith(suffix):
                return vh
        for prefix, p, vh in self.prefix_wildcards:
            if p == port and len(host) > len(prefix) and host.startswith(prefix):
                return vh
        return self.catch_all.get(port)


@dataclass(frozen=True)
class GatewayServer:
    listener: Listener
    port: int
    bind: str | None  # servers[].bind, None = the --bind default
    https_redirect: bool = False


@dataclass(frozen=True)
class Config:
    """Everything one load produced: swapped atomically on reload."""

    mesh: Listener
    gateways: tuple[GatewayServer, ...]
    clusters: dict[str, Cluster]
    # JSON-ready description of the inputs and outputs for /config_dump.
    dump: dict[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
