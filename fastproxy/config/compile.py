"""Validated model -> fastproxy.table records (traffic-semantics.md 2-13).

Runs once per load.  Everything the request path needs is precomputed here:
lower-cased byte names, cumulative weights, retry bitmasks, header parsers in
Envoy's order, resolved redirect ports.  Nothing here reports problems (that
is validate.py's job); the few things Istio silently drops become warnings.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from fastproxy import table
from fastproxy.config import model as m
from fastproxy.config.routes_view import dump_config
from fastproxy.matcher import RouteMatcher

SVC_SUFFIX = ".svc.cluster.local"
HTTP_PROTOCOLS = {"HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY"}
GATEWAY_HTTP_PROTOCOLS = {"HTTP", "HTTP2", "GRPC"}
MESH = "mesh"


def expand_host(host: str, namespace: str) -> str:
    """Istio's short-name rule: no dot -> NAME.NAMESPACE.svc.cluster.local; `*` and dotted names stay."""
    host = host.lower()
    if host == "*" or "." in host or _is_ipish(host):
        return host
    return f"{host}.{namespace}{SVC_SUFFIX}"


def _is_ipish(host: str) -> bool:
    return ":" in host


def wildcard_covers(pattern: str, host: str) -> bool:
    """`*` covers everything; `*.x.com` covers `a.x.com` and `*.a.x.com`, not `x.com`."""
    if pattern == "*":
        return True
    if not pattern.startswith("*."):
        return pattern == host
    suffix = pattern[1:]
    return host.endswith(suffix) and len(host) > len(suffix)


def intersect_hosts(a: str, b: str) -> str | None:
    """Istio host intersection: the more specific of two names when one covers the other."""
    if a == b:
        return a
    if wildcard_covers(a, b):
        return b
    if wildcard_covers(b, a):
        return a
    return None


def mesh_domains(host: str, addresses: Iterable[str] = ()) -> tuple[str, ...]:
    """Domains a sidecar in namespace `default` answers to for registry host `host`.

    Order matters for `routes`: istioctl collapses the FQDN and `.svc` forms,
    so FQDN, short name, n.ns.svc, n.ns, FQDN. shows as `n, n.ns + 1 more...`.
    """
    out = [host]
    if host.endswith(SVC_SUFFIX):
        parts = host[: -len(SVC_SUFFIX)].split(".")
        if len(parts) == 2:
            name, ns = parts
            if ns == "default":
                out.append(name)
            out.append(f"{name}.{ns}.svc")
            out.append(f"{name}.{ns}")
        out.append(host + ".")
    for addr in addresses:
        if "/" not in addr or addr.endswith(("/32", "/128")):
            out.append(addr.split("/")[0])
    return tuple(dict.fromkeys(out))


def _is_http_port(port: m.ServicePort) -> bool:
    if port.protocol:
        return port.protocol.upper() in HTTP_PROTOCOLS
    name = (port.name or "").lower()
    return name.split("-")[0] in ("http", "http2", "grpc", "grpc-web") or name.startswith("http")


def _b(text: str) -> bytes:
    return text.encode("utf-8")


def _ppm(pct: m.Percent | None, percent: int | None, default: int = 0) -> int:
    """Istio's percentage -> parts per million: floor(value * 10000); `percent` only without `percentage`."""
    if pct is not None:
        return int(math.floor((pct.value or 0.0) * 10000)) if pct.value is not None else 0
    if percent is not None:
        return percent * 10000
    return default


# ---------------------------------------------------------------- registry


@dataclass(slots=True)
class RawEndpoint:
    address: str
    ports: dict[str, int]
    labels: dict[str, str]
    weight: int
    namespace: str
    name: str | None  # WorkloadEntry name, when it came from one


@dataclass(slots=True)
class Service:
    host: str
    namespace: str
    ports: list[m.ServicePort]
    http_ports: list[m.ServicePort]
    addresses: list[str]
    endpoints: list[RawEndpoint]
    resource: m.Resource


def _telemetry(labels: dict[str, str], workload_name: str | None) -> tuple[str, str, str]:
    """Telemetry identity of an endpoint, from its labels.

    app: `app`, else `app.kubernetes.io/name`, else "unknown"; version: `version`, else
    `app.kubernetes.io/version`, else "unknown"; workload: label `workload`, else the
    WorkloadEntry's name, else app + version with non-alphanumerics dropped (the seed's
    Deployment names: demoapp + v1.0 -> demoappv10), else app.
    """
    app = labels.get("app") or labels.get("app.kubernetes.io/name") or "unknown"
    version = labels.get("version") or labels.get("app.kubernetes.io/version") or "unknown"
    if labels.get("workload"):
        workload = labels["workload"]
    elif workload_name:
        workload = workload_name
    elif app == "unknown":
        workload = "unknown"
    elif version == "unknown":
        workload = app
    else:
        # Deployment-style name: app `demoapp` + version `v1.0` -> `demoappv10`, as in the seed tutorial.
        workload = app + re.sub(r"[^A-Za-z0-9]", "", version)
    return app, version, workload


# ---------------------------------------------------------------- header operations


@dataclass(slots=True)
class _Ops:
    remove: tuple[bytes, ...] = ()
    set: tuple[tuple[bytes, bytes], ...] = ()
    add: tuple[tuple[bytes, bytes], ...] = ()
    authority_set: str | None = None
    authority_add: str | None = None

    @property
    def authority(self) -> str | None:
        return self.authority_set or self.authority_add


def _literal(value: str) -> bytes:
    # validate.py allowed only `%%` escapes; Envoy writes them as one `%`.
    return _b(value.replace("%%", "%"))


def _compile_ops(ops: m.HeaderOperations | None) -> _Ops:
    if ops is None:
        return _Ops()
    out = _Ops()
    for which in ("set", "add"):
        pairs: list[tuple[bytes, bytes]] = []
        for key, value in (getattr(ops, which) or {}).items():
            low = key.lower()
            if low in (":authority", "host"):
                if value:
                    setattr(out, f"authority_{which}", value)
                continue
            if low.startswith(":") or value == "":
                continue  # Istio drops pseudo-headers; Envoy skips empty values
            pairs.append((_b(low), _literal(value)))
        pairs.sort(key=lambda kv: kv[0])
        setattr(out, which, tuple(pairs))
    out.remove = tuple(_b(k.lower()) for k in ops.remove or [] if not k.startswith(":") and k.lower() != "host")
    return out


def _header_ops(*parts: tuple[tuple[bytes, ...], tuple, tuple]) -> tuple[table.HeaderOps, ...]:
    return tuple(table.HeaderOps(remove=r, set=s, add=a) for r, s, a in parts if r or s or a)


# ---------------------------------------------------------------- compiler


@dataclass(slots=True)
class _Policy:
    lb: m.LoadBalancerSettings | None = None
    pool: m.ConnectionPoolSettings | None = None
    outlier: m.OutlierDetection | None = None


@dataclass(slots=True)
class _MergedDR:
    traffic_policy: m.TrafficPolicy | None
    subsets: list[m.Subset] = field(default_factory=list)


class Compiler:
    def __init__(self, model: m.Model) -> None:
        self.model = model
        self.warnings: list[str] = []
        self.services: dict[str, Service] = {}
        self.clusters: dict[str, table.Cluster] = {}

    # ------------------------------------------------------------ entry point

    def run(self) -> table.Config:
        self._build_registry()
        self._build_clusters()
        mesh = self._build_mesh()
        gateways = self._build_gateways()
        sources = tuple(self.model.sources)
        dump = dump_config(mesh, gateways, self.clusters, sources)
        return table.Config(mesh=mesh, gateways=gateways, clusters=self.clusters, dump=dump, sources=sources)

    def warn(self, res: m.Resource, path: str, message: str) -> None:
        self.warnings.append(f"{res.file}:{res.line}: {res.ident}: {path}: {message}")

    # ------------------------------------------------------------ registry + clusters

    def _build_registry(self) -> None:
        wes = self.model.workload_entries
        for res in self.model.service_entries:
            spec: m.ServiceEntrySpec = res.spec
            ports = list(spec.ports or [])
            http_ports = [p for p in ports if _is_http_port(p)]
            raw: list[RawEndpoint] = []
            if spec.endpoints:
                for ep in spec.endpoints:
                    raw.append(
                        RawEndpoint(
                            ep.address or "",
                            dict(ep.ports or {}),
                            dict(ep.labels or {}),
                            ep.weight or 1,
                            res.namespace,
                            None,
                        )
                    )
            elif spec.workload_selector is not None:
                want = spec.workload_selector.labels or {}
                for we in wes:
                    labels = we.spec.labels or {}
                    if we.namespace == res.namespace and all(labels.get(k) == v for k, v in want.items()):
                        raw.append(
                            RawEndpoint(
                                we.spec.address or "",
                                dict(we.spec.ports or {}),
                                dict(labels),
                                we.spec.weight or 1,
                                we.namespace,
                                we.name,
                            )
                        )
            for host in spec.hosts or []:
                host = host.lower()
                if host in self.services:
                    first = self.services[host].resource
                    self.warn(
                        res,
                        "spec.hosts",
                        f'host "{host}" is already defined by {first.ident} ({first.file}:{first.line}); ignored here',
                    )
                    continue
                endpoints = raw
                if not raw and spec.resolution in ("DNS", "DNS_ROUND_ROBIN") and not host.startswith("*"):
                    endpoints = [RawEndpoint(host, {}, {}, 1, res.namespace, None)]
                self.services[host] = Service(
                    host, res.namespace, ports, http_ports, list(spec.addresses or []), endpoints, res
                )
            skipped = [str(p.number) for p in ports if p not in http_ports]
            if skipped:
                self.warn(res, "spec.ports", f"port(s) {', '.join(skipped)} are not HTTP and are not served")

    def _endpoints(self, svc: Service, port: m.ServicePort) -> list[table.Endpoint]:
        out = []
        for ep in svc.endpoints:
            if port.name and port.name in ep.ports:
                number = ep.ports[port.name]
            else:
                number = port.target_port or port.number or 0
            app, version, workload = _telemetry(ep.labels, ep.name)
            out.append(
                table.Endpoint(
                    address=ep.address,
                    port=number,
                    labels=ep.labels,
                    weight=ep.weight,
                    app=app,
                    version=version,
                    workload=workload,
                    namespace=ep.namespace,
                )
            )
        return out

    def _destination_rule(self, host: str) -> _MergedDR | None:
        exact = [r for r in self.model.destination_rules if expand_host(r.spec.host, r.namespace) == host]
        if not exact:
            wild = [(r, expand_host(r.spec.host, r.namespace)) for r in self.model.destination_rules]
            wild = [(r, h) for r, h in wild if h.startswith("*") and wildcard_covers(h, host)]
            if not wild:
                return None
            best = max(len(h) for _, h in wild)
            exact = [r for r, h in wild if len(h) == best]
        merged = _MergedDR(None)
        names: set[str] = set()
        for res in exact:
            spec: m.DestinationRuleSpec = res.spec
            if merged.traffic_policy is None:
                merged.traffic_policy = spec.traffic_policy
            for sub in spec.subsets or []:
                if sub.name not in names:
                    names.add(sub.name or "")
                    merged.subsets.append(sub)
        return merged

    @staticmethod
    def _port_policy(tp: m.TrafficPolicy | None, port: int) -> _Policy:
        if tp is None:
            return _Policy()
        for pls in tp.port_level_settings or []:
            if pls.port is not None and pls.port.number == port:
                # A port-level entry replaces the top-level policy wholesale (11.3 step 1).
                return _Policy(pls.load_balancer, pls.connection_pool, pls.outlier_detection)
        return _Policy(tp.load_balancer, tp.connection_pool, tp.outlier_detection)

    @staticmethod
    def _subset_policy(base: _Policy, stp: m.TrafficPolicy | None, port: int) -> _Policy:
        if stp is None:
            return base
        for pls in stp.port_level_settings or []:
            if pls.port is not None and pls.port.number == port:
                return _Policy(pls.load_balancer, pls.connection_pool, pls.outlier_detection)
        # Whole blocks replace (11.3 step 2): no deep merge inside connectionPool etc.
        return _Policy(
            stp.load_balancer if stp.load_balancer is not None else base.lb,
            stp.connection_pool if stp.connection_pool is not None else base.pool,
            stp.outlier_detection if stp.outlier_detection is not None else base.outlier,
        )

    def _cluster(
        self, svc: Service, port: m.ServicePort, subset: str, policy: _Policy, endpoints: list[table.Endpoint]
    ) -> table.Cluster:
        lb, hash_policy = _lb(policy.lb)
        return table.Cluster(
            name=f"outbound|{port.number}|{subset}|{svc.host}",
            service=svc.host,
            namespace=svc.namespace,
            port=port.number or 0,
            subset=subset,
            endpoints=tuple(endpoints),
            lb=lb,
            pool=_pool(policy.pool),
            outlier=_outlier(policy.outlier),
            hash=hash_policy,
        )

    def _build_clusters(self) -> None:
        for svc in self.services.values():
            dr = self._destination_rule(svc.host)
            for port in svc.http_ports:
                number = port.number or 0
                endpoints = self._endpoints(svc, port)
                base = self._port_policy(dr.traffic_policy if dr else None, number)
                cluster = self._cluster(svc, port, "", base, endpoints)
                self.clusters[cluster.name] = cluster
                for sub in dr.subsets if dr else []:
                    want = sub.labels or {}
                    chosen = [e for e in endpoints if all(e.labels.get(k) == v for k, v in want.items())]
                    policy = self._subset_policy(base, sub.traffic_policy, number)
                    cluster = self._cluster(svc, port, sub.name or "", policy, chosen)
                    self.clusters[cluster.name] = cluster

    # ------------------------------------------------------------ routes

    def _dest_cluster(
        self, dest: m.Destination, namespace: str, listener_port: int
    ) -> tuple[str, table.Cluster | None]:
        host = expand_host(dest.host or "", namespace)
        if dest.port is not None and dest.port.number:
            port = dest.port.number
        else:
            svc = self.services.get(host)
            port = svc.ports[0].number or 0 if svc is not None and len(svc.ports) == 1 else listener_port
        name = f"outbound|{port}|{dest.subset or ''}|{host}"
        return name, self.clusters.get(name)

    def _route(
        self, vs: m.Resource, rule: m.HTTPRoute, block: m.HTTPMatchRequest | None, listener_port: int
    ) -> table.Route:
        ns = vs.namespace
        uri = block.uri if block is not None else None
        name = rule.name or ""
        if block is not None and block.name:
            name = f"{name}.{block.name}"
        route_req = _compile_ops(rule.headers.request if rule.headers else None)
        route_resp = _compile_ops(rule.headers.response if rule.headers else None)
        route_authority = (
            rule.rewrite.authority if rule.rewrite and rule.rewrite.authority else None
        ) or route_req.authority
        kwargs: dict[str, Any] = {
            "name": name,
            "virtual_service": f"{vs.name}.{ns}",
            "listener_port": listener_port,
            "path_description": _path_description(uri),
            "timeout": rule.timeout,
            "response_ops": _header_ops((route_resp.remove, route_resp.set, route_resp.add)),
        }

        if rule.redirect is not None:
            kwargs["action"] = table.ACTION_REDIRECT
            kwargs["redirect"] = _redirect(rule.redirect, uri, listener_port)
        elif rule.direct_response is not None:
            kwargs["action"] = table.ACTION_DIRECT
            kwargs["direct"] = _direct(rule.direct_response)
        else:
            kwargs["action"] = table.ACTION_ROUTE

        routed = [rd for rd in rule.route or [] if rd.destination is not None]
        if len(routed) > 1:
            routed = [rd for rd in routed if rd.weight]  # weight-0 entries never get traffic
        weighted = len(routed) > 1
        dests: list[table.Destination] = []
        total = 0
        cumulative: list[int] = []
        for rd in routed:
            assert rd.destination is not None
            cname, cluster = self._dest_cluster(rd.destination, ns, listener_port)
            d_req = _compile_ops(rd.headers.request if rd.headers else None)
            d_resp = _compile_ops(rd.headers.response if rd.headers else None)
            if weighted:
                # Istio puts destination ops on the weighted cluster: Envoy runs them before the
                # route's, so the route's `set` wins (traffic-semantics 5.2).
                req = _header_ops(
                    (d_req.remove, d_req.set, d_req.add), (route_req.remove, route_req.set, route_req.add)
                )
                resp = _header_ops(
                    (d_resp.remove, d_resp.set, d_resp.add),
                    (route_resp.remove, route_resp.set, route_resp.add),
                )
            else:
                # One combined list: all removes, route set/add, then destination set/add (destination wins).
                req = _header_ops(
                    (route_req.remove + d_req.remove, route_req.set, route_req.add),
                    ((), d_req.set, d_req.add),
                )
                resp = _header_ops(
                    (route_resp.remove + d_resp.remove, route_resp.set, route_resp.add),
                    ((), d_resp.set, d_resp.add),
                )
            authority = route_authority or d_req.authority
            dests.append(
                table.Destination(
                    cluster_name=cname,
                    cluster=cluster,
                    request_ops=req,
                    response_ops=resp,
                    authority=_b(authority) if authority else None,
                )
            )
            total += rd.weight if weighted else 100
            cumulative.append(total)
        kwargs["destinations"] = tuple(dests)
        kwargs["cumulative"] = tuple(cumulative)

        if rule.rewrite is not None and kwargs["action"] == table.ACTION_ROUTE:
            kwargs["rewrite"] = _rewrite(rule.rewrite, uri)
        has_hash = any(d.cluster is not None and d.cluster.hash is not None for d in dests)
        kwargs["retry"] = _retry(rule.retries, has_hash)
        kwargs["fault"] = _fault(rule.fault)
        # Mirrors copy the request after the primary's header ops; with one destination those are
        # its ops, with several the per-destination part is not known up front, so only the route's.
        if len(dests) == 1:
            mirror_ops, mirror_auth = dests[0].request_ops, dests[0].authority
        else:
            mirror_ops = _header_ops((route_req.remove, route_req.set, route_req.add))
            mirror_auth = _b(route_authority) if route_authority else None
        mirrors: list[table.Mirror] = []
        if rule.mirror is not None:
            if rule.mirror_percentage is None and rule.mirror_percent is None:
                ppm = 1_000_000
            else:
                ppm = _ppm(rule.mirror_percentage, rule.mirror_percent)
            if ppm > 0:
                mirrors.append(self._mirror(rule.mirror, ns, listener_port, ppm, mirror_ops, mirror_auth))
        for mp in rule.mirrors or []:
            ppm = 1_000_000 if mp.percentage is None else _ppm(mp.percentage, None)
            if ppm > 0 and mp.destination is not None:
                mirrors.append(self._mirror(mp.destination, ns, listener_port, ppm, mirror_ops, mirror_auth))
        kwargs["mirrors"] = tuple(mirrors)
        kwargs["cors"] = _cors(rule.cors_policy)
        return table.Route(**kwargs)

    def _mirror(
        self,
        dest: m.Destination,
        ns: str,
        listener_port: int,
        ppm: int,
        ops: tuple[table.HeaderOps, ...],
        authority: bytes | None,
    ) -> table.Mirror:
        cname, cluster = self._dest_cluster(dest, ns, listener_port)
        return table.Mirror(
            destination=table.Destination(cluster_name=cname, cluster=cluster, request_ops=ops, authority=authority),
            ppm=min(ppm, 1_000_000),
        )

    def vs_entries(
        self, vs: m.Resource, listener_port: int, gateway: str | None, proxy_namespace: str
    ) -> list[tuple[table.RouteEntry, bool]]:
        """Route entries of one VirtualService for one route table, with their catch-all flag.

        `gateway` is "ns/name" for a gateway route table, None for the mesh.  Config-time match
        fields (port, gateways, sourceLabels, sourceNamespace) drop blocks here; a catch-all block
        ends the VirtualService (traffic-semantics 2.3).
        """
        out: list[tuple[table.RouteEntry, bool]] = []
        spec: m.VirtualServiceSpec = vs.spec
        for rule in spec.http or []:
            blocks: list[m.HTTPMatchRequest | None] = list(rule.match) if rule.match else [None]
            for block in blocks:
                if block is not None and not self._block_applies(
                    block, vs.namespace, listener_port, gateway, proxy_namespace
                ):
                    continue
                spec_ = _match_spec(block)
                route = self._route(vs, rule, block, listener_port)
                catch_all = _is_catch_all(block)
                out.append((table.RouteEntry(match=spec_, route=route), catch_all))
                if catch_all:
                    return out
        return out

    @staticmethod
    def _block_applies(
        block: m.HTTPMatchRequest, vs_ns: str, listener_port: int, gateway: str | None, proxy_namespace: str
    ) -> bool:
        if block.port is not None and block.port != listener_port:
            return False
        if block.gateways:
            wanted = {_gateway_key(g, vs_ns) for g in block.gateways}
            return (MESH if gateway is None else gateway) in wanted
        if block.source_labels:
            return False  # our proxy carries no workload labels
        return not (block.source_namespace is not None and block.source_namespace != proxy_namespace)

    # ------------------------------------------------------------ mesh listener

    def _default_route(self, svc: Service, port: int) -> table.RouteEntry:
        cname = f"outbound|{port}||{svc.host}"
        dest = table.Destination(cluster_name=cname, cluster=self.clusters.get(cname))
        route = table.Route(
            name="default",
            virtual_service="",
            destinations=(dest,),
            cumulative=(100,),
            retry=table.DEFAULT_RETRY,
            listener_port=port,
        )
        return table.RouteEntry(match=table.MatchSpec(), route=route)

    def _build_mesh(self) -> table.Listener:
        mesh_vs = [vs for vs in self.model.virtual_services if not vs.spec.gateways or MESH in vs.spec.gateways]
        exact_owner: dict[str, m.Resource] = {}
        wildcards: list[tuple[str, m.Resource]] = []
        for vs in mesh_vs:
            for host in vs.spec.hosts or []:
                h = expand_host(host, vs.namespace)
                if h.startswith("*"):
                    if all(h != w for w, _ in wildcards):
                        wildcards.append((h, vs))
                elif h not in exact_owner:
                    exact_owner[h] = vs
                elif exact_owner[h] is not vs:
                    first = exact_owner[h]
                    self.warn(
                        vs,
                        "spec.hosts",
                        f'host "{h}" is already routed by {first.ident} '
                        f"(oldest wins at the mesh listener); ignored here",
                    )

        vhosts: list[table.VirtualHost] = []
        for svc in self.services.values():
            owner = exact_owner.get(svc.host)
            if owner is None:
                covering = [(w, vs) for w, vs in wildcards if wildcard_covers(w, svc.host)]
                if covering:
                    owner = max(covering, key=lambda wv: len(wv[0]))[1]  # most specific; max keeps the oldest tie
            for port in svc.http_ports:
                number = port.number or 0
                entries: list[table.RouteEntry] = []
                if owner is not None:
                    entries = [e for e, _ in self.vs_entries(owner, number, None, "default")]
                if not entries:
                    entries = [self._default_route(svc, number)]
                vhosts.append(_vhost(f"{svc.host}:{number}", mesh_domains(svc.host, svc.addresses), number, entries))

        # VirtualService hosts outside the registry only get a port-80 vhost (Istio's "hack").
        for host, vs in list(exact_owner.items()) + wildcards:
            if host in self.services:
                continue
            entries = [e for e, _ in self.vs_entries(vs, 80, None, "default")]
            if entries:
                domains = (host,) if host.startswith("*") else mesh_domains(host)
                vhosts.append(_vhost(f"{host}:80", domains, 80, entries))
        return _listener("mesh", table.LISTENER_MESH, 0, vhosts, mesh=True)

    # ------------------------------------------------------------ gateway listeners

    def _build_gateways(self) -> tuple[table.GatewayServer, ...]:
        groups: dict[tuple[int, str | None], list[tuple[m.Resource, m.Server]]] = {}
        for gw in self.model.gateways:
            for i, srv in enumerate(gw.spec.servers or []):
                assert srv.port is not None
                proto = (srv.port.protocol or "").upper()
                if proto not in GATEWAY_HTTP_PROTOCOLS:
                    self.warn(
                        gw,
                        f"spec.servers[{i}]",
                        f"protocol {srv.port.protocol} on port {srv.port.number} "
                        "is not served (fastproxy serves HTTP servers only)",
                    )
                    continue
                groups.setdefault((srv.port.number or 0, srv.bind), []).append((gw, srv))

        out: list[table.GatewayServer] = []
        for (port, bind), members in groups.items():
            first_gw = members[0][0]
            per_host: dict[str, list[tuple[table.RouteEntry, bool]]] = {}
            done: set[tuple[int, str]] = set()
            cache: dict[tuple[int, str], list[tuple[table.RouteEntry, bool]]] = {}
            for vs in self.model.virtual_services:
                for gw, srv in members:
                    gkey = f"{gw.namespace}/{gw.name}"
                    if gkey not in {_gateway_key(g, vs.namespace) for g in vs.spec.gateways or []}:
                        continue
                    for shost in srv.hosts or []:
                        sns, _, sname = shost.rpartition("/")
                        if sns not in ("", "*") and sns != (gw.namespace if sns == "." else vs.namespace):
                            continue
                        for vhost in vs.spec.hosts or []:
                            h = intersect_hosts(sname.lower(), expand_host(vhost, vs.namespace))
                            if h is None or (vs.order, h) in done:
                                continue
                            done.add((vs.order, h))
                            key = (vs.order, gkey)
                            if key not in cache:
                                cache[key] = self.vs_entries(vs, port, gkey, gw.namespace)
                            per_host.setdefault(h, []).extend(cache[key])
            vhosts = []
            for h, items in per_host.items():
                # Gateways merge VirtualServices per host, catch-alls last (stable) (2.3).
                entries = [e for e, c in items if not c] + [e for e, c in items if c]
                if entries:
                    vhosts.append(_vhost(f"{h}:{port}", (h,), port, entries))
            listener = _listener(
                f"{first_gw.namespace}/{first_gw.name}:{port}",
                table.LISTENER_GATEWAY,
                port,
                vhosts,
                mesh=False,
            )
            redirect = any(srv.tls is not None and bool(srv.tls.https_redirect) for _, srv in members)
            out.append(table.GatewayServer(listener=listener, port=port, bind=bind, https_redirect=redirect))
        return tuple(out)


# ---------------------------------------------------------------- pure helpers


def _gateway_key(name: str, vs_namespace: str) -> str:
    if name == MESH:
        return MESH
    return name if "/" in name else f"{vs_namespace}/{name}"


def _vhost(name: str, domains: tuple[str, ...], port: int, entries: list[table.RouteEntry]) -> table.VirtualHost:
    return table.VirtualHost(
        name=name,
        domains=domains,
        port=port,
        entries=tuple(entries),
        matcher=RouteMatcher(tuple(e.match for e in entries)),
    )


def _listener(name: str, kind: int, port: int, vhosts: list[table.VirtualHost], *, mesh: bool) -> table.Listener:
    exact: dict[tuple[bytes, int], table.VirtualHost] = {}
    suffixes: list[tuple[bytes, int, table.VirtualHost]] = []
    prefixes: list[tuple[bytes, int, table.VirtualHost]] = []
    catch_all: dict[int, table.VirtualHost] = {}
    for vh in vhosts:
        key_port = vh.port if mesh else 0
        for domain in vh.domains:
            d = domain.lower()
            if d == "*":
                catch_all.setdefault(key_port, vh)
            elif d.startswith("*"):
                suffixes.append((_b(d[1:]), key_port, vh))
            elif d.endswith("*"):
                prefixes.append((_b(d[:-1]), key_port, vh))
            else:
                exact.setdefault((_b(d), key_port), vh)
    suffixes.sort(key=lambda t: -len(t[0]))  # stable: equal lengths keep the older first
    prefixes.sort(key=lambda t: -len(t[0]))
    return table.Listener(
        name=name,
        kind=kind,
        port=port,
        exact=exact,
        suffix_wildcards=tuple(suffixes),
        prefix_wildcards=tuple(prefixes),
        catch_all=catch_all,
    )


def _string_match(sm: m.StringMatch, lower: bool = False) -> table.StringMatch:
    if sm.exact is not None:
        return table.StringMatch(table.EXACT, _b(sm.exact.lower() if lower else sm.exact))
    if sm.prefix is not None:
        return table.StringMatch(table.PREFIX, _b(sm.prefix.lower() if lower else sm.prefix))
    if sm.regex is not None and sm.regex != "*":
        return table.StringMatch(table.REGEX, regex=re.compile(_b(sm.regex)))
    return table.StringMatch(table.PRESENT)


def _match_spec(block: m.HTTPMatchRequest | None) -> table.MatchSpec:
    if block is None:
        return table.MatchSpec()
    ignore = bool(block.ignore_uri_case)

    def named(entries: dict[str, m.StringMatch] | None, lower: bool) -> tuple[tuple[bytes, table.StringMatch], ...]:
        return tuple((_b(k.lower() if lower else k), _string_match(v)) for k, v in (entries or {}).items())

    return table.MatchSpec(
        uri=_string_match(block.uri, lower=ignore) if block.uri is not None else None,
        ignore_uri_case=ignore,
        method=_string_match(block.method) if block.method is not None else None,
        authority=_string_match(block.authority) if block.authority is not None else None,
        scheme=_string_match(block.scheme) if block.scheme is not None else None,
        headers=named(block.headers, True),
        without_headers=named(block.without_headers, True),
        query_params=named(block.query_params, False),
    )


def _is_catch_all(block: m.HTTPMatchRequest | None) -> bool:
    if block is None:
        return True
    if block.headers or block.without_headers or block.query_params:
        return False
    if block.method is not None or block.authority is not None or block.scheme is not None:
        return False
    uri = block.uri
    return uri is None or uri.prefix == "/" or uri.regex in (".*", "/.*")


def _path_description(uri: m.StringMatch | None) -> str:
    if uri is None:
        return "/*"
    if uri.prefix is not None:
        return f"{uri.prefix}*"
    if uri.exact is not None:
        return uri.exact
    if uri.regex is not None:
        return f"regex {uri.regex}"
    return "/*"


def _uri_strip(uri: m.StringMatch | None) -> int:
    """How much of the path `rewrite.uri` replaces: matched prefix, whole path (-1), or `/` (3.1.1)."""
    if uri is None:
        return 1
    if uri.prefix is not None:
        return len(_b(uri.prefix))
    return -1


_RE2_GROUP = re.compile(r"\\(\\|[0-9])")


def regex_replacement(rewrite: str) -> bytes:
    """Envoy/RE2 `\\1` style replacement -> Python `\\g<1>`; `\\\\` stays a literal backslash."""
    return _b(_RE2_GROUP.sub(lambda mt: "\\\\" if mt.group(1) == "\\" else f"\\g<{mt.group(1)}>", rewrite))


def _rewrite(rw: m.HTTPRewrite, uri: m.StringMatch | None) -> table.Rewrite | None:
    if rw.uri_regex_rewrite is not None:
        rr = rw.uri_regex_rewrite
        return table.Rewrite(
            kind=table.REWRITE_REGEX,
            replacement=regex_replacement(rr.rewrite or ""),
            regex=re.compile(_b(rr.match or "")),
        )
    if rw.uri:
        return table.Rewrite(kind=table.REWRITE_PREFIX, strip=_uri_strip(uri), replacement=_b(rw.uri))
    return None  # authority only: carried by Destination.authority


def _redirect(rd: m.HTTPRedirect, uri: m.StringMatch | None, listener_port: int) -> table.Redirect:
    port: int | None = None
    if rd.port:
        port = rd.port
    elif rd.derive_port == "FROM_REQUEST_PORT":
        port = listener_port
    scheme = rd.scheme or "http"  # no TLS servers here, so the request scheme defaults to http
    if (port == 80 and scheme == "http") or (port == 443 and scheme == "https"):
        port = None
    path: bytes | None = None
    strip = 0
    prefix_rewrite = False
    if rd.uri is not None:
        path = _b(rd.uri)
    elif rd.prefix_rewrite is not None:
        path = _b(rd.prefix_rewrite)
        strip = _uri_strip(uri)
        prefix_rewrite = True
    return table.Redirect(
        status=rd.redirect_code or 301,
        scheme=_b(rd.scheme) if rd.scheme else None,
        authority=_b(rd.authority) if rd.authority else None,
        port=port,
        path=path,
        strip=strip,
        prefix_rewrite=prefix_rewrite,
    )


def _direct(dr: m.HTTPDirectResponse) -> table.DirectResponse:
    body = b""
    if dr.body is not None:
        if dr.body.string is not None:
            body = _b(dr.body.string)
        elif dr.body.bytes is not None:
            body = base64.b64decode(dr.body.bytes)
    return table.DirectResponse(status=dr.status or 200, body=body)


def _retry(rt: m.HTTPRetry | None, has_hash: bool) -> table.RetryPolicy:
    if rt is None:
        return replace(table.DEFAULT_RETRY, retry_other_hosts=False) if has_hash else table.DEFAULT_RETRY
    if not rt.attempts:
        return table.NO_RETRY
    if rt.retry_on is None:
        bits, codes = table.DEFAULT_RETRY_ON, set()
    else:
        bits, codes = 0, set()
        for token in rt.retry_on.split(","):
            token = token.strip()
            if token in table.RETRY_ON_NAMES:
                bits |= table.RETRY_ON_NAMES[token]
            elif token.isdigit():
                codes.add(int(token))
                bits |= table.RETRY_RETRIABLE_STATUS_CODES
    base = rt.backoff if rt.backoff is not None else 0.025
    other = True if rt.retry_ignore_previous_hosts is None else rt.retry_ignore_previous_hosts
    return table.RetryPolicy(
        attempts=rt.attempts,
        retry_on=bits,
        retriable_codes=frozenset(codes),
        per_try_timeout=rt.per_try_timeout,
        backoff_base=base,
        backoff_max=base * 10,
        retry_other_hosts=other and not has_hash,
    )


def _fault(ft: m.HTTPFaultInjection | None) -> table.Fault | None:
    if ft is None:
        return None
    kwargs: dict[str, Any] = {}
    if ft.delay is not None and ft.delay.fixed_delay is not None:
        kwargs["delay"] = ft.delay.fixed_delay
        kwargs["delay_ppm"] = min(_ppm(ft.delay.percentage, ft.delay.percent), 1_000_000)
    if ft.abort is not None:
        kwargs["abort_status"] = ft.abort.http_status
        kwargs["abort_grpc"] = ft.abort.grpc_status
        kwargs["abort_ppm"] = min(_ppm(ft.abort.percentage, ft.abort.percent), 1_000_000)
    return table.Fault(**kwargs)


def _cors(cp: m.CorsPolicy | None) -> table.CorsPolicy | None:
    if cp is None:
        return None
    if cp.allow_origins is not None:
        origins = tuple(_string_match(sm) for sm in cp.allow_origins)
    else:
        origins = tuple(table.StringMatch(table.EXACT, _b(o)) for o in cp.allow_origin or [])

    def joined(items: list[str] | None) -> bytes | None:
        return _b(",".join(items)) if items else None

    return table.CorsPolicy(
        allow_origins=origins,
        allow_methods=joined(cp.allow_methods),
        allow_headers=joined(cp.allow_headers),
        expose_headers=joined(cp.expose_headers),
        max_age=_b(str(int(cp.max_age))) if cp.max_age is not None else None,
        allow_credentials=bool(cp.allow_credentials),
        forward_unmatched_preflights=cp.unmatched_preflights != "IGNORE",
    )


def _lb(lb: m.LoadBalancerSettings | None) -> tuple[int, table.HashPolicy | None]:
    if lb is None:
        return table.LB_LEAST_REQUEST, None
    if lb.consistent_hash is not None:
        ch = lb.consistent_hash
        cookie = ch.http_cookie
        return table.LB_CONSISTENT_HASH, table.HashPolicy(
            header=_b(ch.http_header_name.lower()) if ch.http_header_name else None,
            cookie=cookie.name if cookie is not None else None,
            cookie_path=cookie.path if cookie is not None else None,
            cookie_ttl=cookie.ttl if cookie is not None else None,
            source_ip=bool(ch.use_source_ip),
            query_param=_b(ch.http_query_parameter_name) if ch.http_query_parameter_name else None,
        )
    return {
        "ROUND_ROBIN": table.LB_ROUND_ROBIN,
        "RANDOM": table.LB_RANDOM,
        "PASSTHROUGH": table.LB_PASSTHROUGH,
    }.get(lb.simple or "", table.LB_LEAST_REQUEST), None


def _pos(value: int | None, default: int) -> int:
    # Istio: zero and negatives cannot be expressed; they mean "default" (11.5).
    return value if value is not None and value > 0 else default


def _pool(pool: m.ConnectionPoolSettings | None) -> table.ConnectionPoolPolicy:
    d = table.ConnectionPoolPolicy()
    if pool is None:
        return d
    tcp, http = pool.tcp, pool.http
    idle = d.idle_timeout
    if http is not None and http.idle_timeout is not None:
        idle = http.idle_timeout
    elif tcp is not None and tcp.idle_timeout is not None:
        idle = tcp.idle_timeout
    return table.ConnectionPoolPolicy(
        max_connections=_pos(tcp.max_connections if tcp else None, d.max_connections),
        connect_timeout=tcp.connect_timeout if tcp is not None and tcp.connect_timeout else d.connect_timeout,
        http1_max_pending=_pos(http.http1_max_pending_requests if http else None, d.http1_max_pending),
        max_requests=_pos(http.http2_max_requests if http else None, d.max_requests),
        max_requests_per_connection=_pos(http.max_requests_per_connection if http else None, 0),
        max_retries=_pos(http.max_retries if http else None, d.max_retries),
        idle_timeout=idle,
    )


def _outlier(od: m.OutlierDetection | None) -> table.OutlierPolicy | None:
    if od is None:
        return None
    d = table.OutlierPolicy()
    return table.OutlierPolicy(
        consecutive_5xx=od.consecutive_5xx_errors if od.consecutive_5xx_errors is not None else d.consecutive_5xx,
        consecutive_gateway=od.consecutive_gateway_errors or 0,
        interval=od.interval if od.interval is not None else d.interval,
        base_ejection_time=od.base_ejection_time if od.base_ejection_time is not None else d.base_ejection_time,
        max_ejection_percent=od.max_ejection_percent if od.max_ejection_percent is not None else d.max_ejection_percent,
        min_health_percent=od.min_health_percent or 0,
    )


def compile_model(model: m.Model) -> tuple[table.Config, list[str]]:
    """Returns the compiled config and the warnings about things Istio would silently drop."""
    compiler = Compiler(model)
    config = compiler.run()
    return config, compiler.warnings
