"""Typed model of the Istio resources fastproxy reads.

Each class mirrors one Istio API message; attribute names are the snake_case
of the YAML (camelCase) field names, and `convert()` in validate.py derives the
YAML name from the attribute name, so the model *is* the schema.  Absent fields
stay None: Istio gives absence its own meaning in several places (no `retries`
block, no `mirrorPercentage`, ...).

Every object remembers where it came from (`_path`, `_line`, and `_lines` for
its fields) so that the semantic checks can name file lines too.  Durations are
already converted to float seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NewType

# Marker types the converter understands.
Duration = NewType("Duration", float)  # Istio duration string -> seconds
Ttl = NewType("Ttl", float)  # like Duration, but 0s is allowed (cookie ttl)


@dataclass(slots=True, kw_only=True)
class Node:
    _path: str = field(default="", repr=False, compare=False)
    _line: int = field(default=0, repr=False, compare=False)
    _lines: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def line_of(self, name: str) -> int:
        return self._lines.get(name, self._line)


# ---------------------------------------------------------------- common


@dataclass(slots=True, kw_only=True)
class StringMatch(Node):
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None


@dataclass(slots=True, kw_only=True)
class PortSelector(Node):
    number: int | None = None


@dataclass(slots=True, kw_only=True)
class Percent(Node):
    value: float | None = None


@dataclass(slots=True, kw_only=True)
class WorkloadSelector(Node):
    labels: dict[str, str] | None = None


# ---------------------------------------------------------------- VirtualService


@dataclass(slots=True, kw_only=True)
class HeaderOperations(Node):
    set: dict[str, str] | None = None
    add: dict[str, str] | None = None
    remove: list[str] | None = None


@dataclass(slots=True, kw_only=True)
class Headers(Node):
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


@dataclass(slots=True, kw_only=True)
class Destination(Node):
    host: str | None = None
    subset: str | None = None
    port: PortSelector | None = None


@dataclass(slots=True, kw_only=True)
class HTTPRouteDestination(Node):
    destination: Destination | None = None
    weight: int | None = None
    headers: Headers | None = None


@dataclass(slots=True, kw_only=True)
class HTTPMatchRequest(Node):
    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[str, StringMatch] | None = None
    port: int | None = None
    source_labels: dict[str, str] | None = None
    gateways: list[str] | None = None
    query_params: dict[str, StringMatch] | None = None
    ignore_uri_case: bool | None = None
    without_headers: dict[str, StringMatch] | None = None
    source_namespace: str | None = None
    stat_prefix: str | None = None


@dataclass(slots=True, kw_only=True)
class HTTPRedirect(Node):
    uri: str | None = None
    authority: str | None = None
    port: int | None = None
    derive_port: Literal["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"] | None = None
    scheme: str | None = None
    redirect_code: int | None = None
    prefix_rewrite: str | None = None


@dataclass(slots=True, kw_only=True)
class HTTPBody(Node):
    string: str | None = None
    bytes: str | None = None  # base64 in YAML


@dataclass(slots=True, kw_only=True)
class HTTPDirectResponse(Node):
    status: int | None = None
    body: HTTPBody | None = None


@dataclass(slots=True, kw_only=True)
class Delegate(Node):
    name: str | None = None
    namespace: str | None = None


@dataclass(slots=True, kw_only=True)
class RegexRewrite(Node):
    match: str | None = None
    rewrite: str | None = None


@dataclass(slots=True, kw_only=True)
class HTTPRewrite(Node):
    uri: str | None = None
    authority: str | None = None
    uri_regex_rewrite: RegexRewrite | None = None


@dataclass(slots=True, kw_only=True)
class HTTPRetry(Node):
    attempts: int | None = None
    per_try_timeout: Duration | None = None
    retry_on: str | None = None
    retry_remote_localities: bool | None = None
    retry_ignore_previous_hosts: bool | None = None
    backoff: Duration | None = None


@dataclass(slots=True, kw_only=True)
class FaultDelay(Node):
    fixed_delay: Duration | None = None
    exponential_delay: Any = None  # rejected by validation, as in Istio
    percentage: Percent | None = None
    percent: int | None = None


@dataclass(slots=True, kw_only=True)
class FaultAbort(Node):
    http_status: int | None = None
    grpc_status: str | None = None
    http2_error: Any = None  # rejected by validation, as in Istio
    percentage: Percent | None = None
    percent: int | None = None


@dataclass(slots=True, kw_only=True)
class HTTPFaultInjection(Node):
    delay: FaultDelay | None = None
    abort: FaultAbort | None = None


@dataclass(slots=True, kw_only=True)
class HTTPMirrorPolicy(Node):
    destination: Destination | None = None
    percentage: Percent | None = None


@dataclass(slots=True, kw_only=True)
class CorsPolicy(Node):
    allow_origins: list[StringMatch] | None = None
    allow_origin: list[str] | None = None
    allow_methods: list[str] | None = None
    allow_headers: list[str] | None = None
    expose_headers: list[str] | None = None
    max_age: Duration | None = None
    allow_credentials: bool | None = None
    unmatched_preflights: Literal["UNSPECIFIED", "FORWARD", "IGNORE"] | None = None


@dataclass(slots=True, kw_only=True)
class HTTPRoute(Node):
    name: str | None = None
    match: list[HTTPMatchRequest] | None = None
    route: list[HTTPRouteDestination] | None = None
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    delegate: Delegate | None = None
    rewrite: HTTPRewrite | None = None
    timeout: Duration | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: list[HTTPMirrorPolicy] | None = None
    mirror_percentage: Percent | None = None
    mirror_percent: int | None = None
    cors_policy: CorsPolicy | None = None
    headers: Headers | None = None


@dataclass(slots=True, kw_only=True)
class VirtualServiceSpec(Node):
    hosts: list[str] | None = None
    gateways: list[str] | None = None
    http: list[HTTPRoute] | None = None
    tls: list[Any] | None = None  # accepted, not served (warning)
    tcp: list[Any] | None = None  # accepted, not served (warning)
    export_to: list[str] | None = None


# ---------------------------------------------------------------- DestinationRule


@dataclass(slots=True, kw_only=True)
class HTTPCookie(Node):
    name: str | None = None
    path: str | None = None
    ttl: Ttl | None = None
    attributes: list[Any] | None = None


@dataclass(slots=True, kw_only=True)
class RingHash(Node):
    minimum_ring_size: int | None = None


@dataclass(slots=True, kw_only=True)
class Maglev(Node):
    table_size: int | None = None


@dataclass(slots=True, kw_only=True)
class ConsistentHashLB(Node):
    http_header_name: str | None = None
    http_cookie: HTTPCookie | None = None
    use_source_ip: bool | None = None
    http_query_parameter_name: str | None = None
    ring_hash: RingHash | None = None
    maglev: Maglev | None = None
    minimum_ring_size: int | None = None


@dataclass(slots=True, kw_only=True)
class LoadBalancerSettings(Node):
    simple: Literal["UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"] | None = None
    consistent_hash: ConsistentHashLB | None = None
    locality_lb_setting: Any = None  # accepted; locality LB is not modelled
    warmup_duration_secs: Duration | None = None
    warmup: Any = None


@dataclass(slots=True, kw_only=True)
class TcpKeepalive(Node):
    probes: int | None = None
    time: Duration | None = None
    interval: Duration | None = None


@dataclass(slots=True, kw_only=True)
class TCPSettings(Node):
    max_connections: int | None = None
    connect_timeout: Duration | None = None
    tcp_keepalive: TcpKeepalive | None = None
    max_connection_duration: Duration | None = None
    idle_timeout: Duration | None = None


@dataclass(slots=True, kw_only=True)
class HTTPSettings(Node):
    http1_max_pending_requests: int | None = None
    http2_max_requests: int | None = None
    max_requests_per_connection: int | None = None
    max_retries: int | None = None
    idle_timeout: Duration | None = None
    h2_upgrade_policy: Literal["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"] | None = None
    use_client_protocol: bool | None = None
    max_concurrent_streams: int | None = None


@dataclass(slots=True, kw_only=True)
class ConnectionPoolSettings(Node):
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


@dataclass(slots=True, kw_only=True)
class OutlierDetection(Node):
    consecutive_errors: int | None = None
    consecutive_local_origin_failures: int | None = None
    consecutive_gateway_errors: int | None = None
    consecutive_5xx_errors: int | None = None
    split_external_local_origin_errors: bool | None = None
    interval: Duration | None = None
    base_ejection_time: Duration | None = None
    max_ejection_percent: int | None = None
    min_health_percent: int | None = None


@dataclass(slots=True, kw_only=True)
class PortTrafficPolicy(Node):
    port: PortSelector | None = None
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: Any = None


@dataclass(slots=True, kw_only=True)
class TrafficPolicy(Node):
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: Any = None  # accepted, ignored: fastproxy speaks plain HTTP upstream
    port_level_settings: list[PortTrafficPolicy] | None = None
    tunnel: Any = None
    proxy_protocol: Any = None
    retry_budget: Any = None


@dataclass(slots=True, kw_only=True)
class Subset(Node):
    name: str | None = None
    labels: dict[str, str] | None = None
    traffic_policy: TrafficPolicy | None = None


@dataclass(slots=True, kw_only=True)
class DestinationRuleSpec(Node):
    host: str | None = None
    traffic_policy: TrafficPolicy | None = None
    subsets: list[Subset] | None = None
    export_to: list[str] | None = None
    workload_selector: WorkloadSelector | None = None


# ---------------------------------------------------------------- ServiceEntry / WorkloadEntry


@dataclass(slots=True, kw_only=True)
class WorkloadEntrySpec(Node):
    address: str | None = None
    ports: dict[str, int] | None = None
    labels: dict[str, str] | None = None
    network: str | None = None
    locality: str | None = None
    weight: int | None = None
    service_account: str | None = None


@dataclass(slots=True, kw_only=True)
class ServicePort(Node):
    number: int | None = None
    protocol: str | None = None
    name: str | None = None
    target_port: int | None = None


@dataclass(slots=True, kw_only=True)
class ServiceEntrySpec(Node):
    hosts: list[str] | None = None
    addresses: list[str] | None = None
    ports: list[ServicePort] | None = None
    location: Literal["MESH_EXTERNAL", "MESH_INTERNAL"] | None = None
    resolution: Literal["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"] | None = None
    endpoints: list[WorkloadEntrySpec] | None = None
    workload_selector: WorkloadSelector | None = None
    export_to: list[str] | None = None
    subject_alt_names: list[str] | None = None


# ---------------------------------------------------------------- Gateway


@dataclass(slots=True, kw_only=True)
class ServerTLSSettings(Node):
    https_redirect: bool | None = None
    mode: str | None = None
    # Accepted so that real Gateway YAML loads; fastproxy does not terminate TLS.
    server_certificate: Any = None
    private_key: Any = None
    ca_certificates: Any = None
    ca_crl: Any = None
    credential_name: Any = None
    credential_names: Any = None
    tls_certificates: Any = None
    subject_alt_names: Any = None
    verify_certificate_spki: Any = None
    verify_certificate_hash: Any = None
    min_protocol_version: Any = None
    max_protocol_version: Any = None
    cipher_suites: Any = None


@dataclass(slots=True, kw_only=True)
class GatewayPort(Node):
    number: int | None = None
    protocol: str | None = None
    name: str | None = None
    target_port: int | None = None


@dataclass(slots=True, kw_only=True)
class Server(Node):
    port: GatewayPort | None = None
    bind: str | None = None
    hosts: list[str] | None = None
    tls: ServerTLSSettings | None = None
    default_endpoint: str | None = None
    name: str | None = None


@dataclass(slots=True, kw_only=True)
class GatewaySpec(Node):
    servers: list[Server] | None = None
    selector: dict[str, str] | None = None


# ---------------------------------------------------------------- resources

SPEC_TYPES: dict[str, type[Node]] = {
    "VirtualService": VirtualServiceSpec,
    "DestinationRule": DestinationRuleSpec,
    "ServiceEntry": ServiceEntrySpec,
    "WorkloadEntry": WorkloadEntrySpec,
    "Gateway": GatewaySpec,
}

API_VERSIONS = ("networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3")


@dataclass(slots=True, kw_only=True)
class Resource:
    """One validated Istio object; `order` is its position in load order."""

    kind: str
    api_version: str
    name: str
    namespace: str
    file: str
    line: int
    order: int
    spec: Any  # the SPEC_TYPES[kind] instance
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def ident(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(slots=True)
class Model:
    """Everything that passed validation, each list in load order."""

    virtual_services: list[Resource] = field(default_factory=list)
    destination_rules: list[Resource] = field(default_factory=list)
    service_entries: list[Resource] = field(default_factory=list)
    workload_entries: list[Resource] = field(default_factory=list)
    gateways: list[Resource] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
