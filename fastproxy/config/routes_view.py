"""Human and JSON views of a compiled table.Config.

`render_routes` prints what `fastproxy routes` and admin `/routes` show, laid
out like `istioctl proxy-config routes` (traffic-semantics.md 17).
`dump_config` builds the JSON-ready dict behind admin `/config_dump`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from fastproxy import table

HEADER = ("NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE")


def unexpand_domains(domains: Iterable[str]) -> list[str]:
    """Drops `x.svc.cluster.local` / `x.svc` when `x` is also present, keeping the original order."""
    items = list(domains)
    present = set(items)
    drop = set()
    for d in items:
        for suffix in (".svc.cluster.local", ".svc"):
            if d.endswith(suffix) and d[: -len(suffix)] in present:
                drop.add(d)
    return [d for d in items if d not in drop]


def describe_domains(domains: Iterable[str]) -> str:
    items = list(domains)
    if len(items) <= 1:
        return items[0] if items else ""
    short = unexpand_domains(d for d in items if ":" not in d or d.startswith("["))
    if len(short) > 2:
        return f"{', '.join(short[:2])} + {len(short) - 2} more..."
    return ", ".join(short)


def route_rows(config: table.Config) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    mesh_vhosts = _unique_vhosts(config.mesh)
    mesh_vhosts.sort(key=lambda vh: (vh.port, vh.name))
    for vh in mesh_vhosts:
        rows.extend(_vhost_rows(str(vh.port), vh))
    for server in config.gateways:
        for vh in sorted(_unique_vhosts(server.listener), key=lambda v: v.name):
            rows.extend(_vhost_rows(f"http.{server.port}", vh))
    return rows


def _unique_vhosts(listener: table.Listener) -> list[table.VirtualHost]:
    seen: dict[int, table.VirtualHost] = {}
    for vh in listener.exact.values():
        seen.setdefault(id(vh), vh)
    for _, _, vh in listener.suffix_wildcards + listener.prefix_wildcards:
        seen.setdefault(id(vh), vh)
    for vh in listener.catch_all.values():
        seen.setdefault(id(vh), vh)
    return list(seen.values())


def _vhost_rows(name: str, vh: table.VirtualHost) -> list[tuple[str, str, str, str]]:
    domains = describe_domains(vh.domains)
    if not vh.entries:
        return [(name, domains, "/*", "404")]
    return [(name, domains, e.route.path_description, e.route.virtual_service) for e in vh.entries]


def render_routes(config: table.Config) -> str:
    """The route table as aligned text columns, header first, one row per route entry."""
    rows = [HEADER, *route_rows(config)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- /config_dump

_LB_NAMES = {
    table.LB_LEAST_REQUEST: "LEAST_REQUEST",
    table.LB_ROUND_ROBIN: "ROUND_ROBIN",
    table.LB_RANDOM: "RANDOM",
    table.LB_PASSTHROUGH: "PASSTHROUGH",
    table.LB_CONSISTENT_HASH: "CONSISTENT_HASH",
}
_MATCH_KINDS = {table.EXACT: "exact", table.PREFIX: "prefix", table.REGEX: "regex", table.PRESENT: "present"}
_ACTIONS = {
    table.ACTION_ROUTE: "route",
    table.ACTION_REDIRECT: "redirect",
    table.ACTION_DIRECT: "direct_response",
}


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _jsonable(value: Any) -> Any:
    """Generic record -> JSON: bytes become text, regexes their pattern, tuples lists."""
    if isinstance(value, table.StringMatch):
        out: dict[str, Any] = {"kind": _MATCH_KINDS.get(value.kind, str(value.kind))}
        if value.kind == table.REGEX and value.regex is not None:
            out["regex"] = _text(value.regex.pattern)
        elif value.kind != table.PRESENT:
            out["value"] = _text(value.value)
        return out
    if isinstance(value, table.Destination):
        return {
            "cluster": value.cluster_name,
            "cluster_exists": value.cluster is not None,
            "request_ops": _jsonable(value.request_ops),
            "response_ops": _jsonable(value.response_ops),
            "authority": _jsonable(value.authority),
        }
    if isinstance(value, table.RetryPolicy):
        out = {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        out["retry_on"] = [name for name, bit in table.RETRY_ON_NAMES.items() if value.retry_on & bit]
        return out
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "matcher"}
    if isinstance(value, (bytes, bytearray)):
        return _text(bytes(value))
    if isinstance(value, re.Pattern):
        p = value.pattern
        return _text(p) if isinstance(p, bytes) else p
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_jsonable(v) for v in value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _route_json(entry: table.RouteEntry) -> dict[str, Any]:
    r = entry.route
    out = _jsonable(r)
    out["action"] = _ACTIONS.get(r.action, str(r.action))
    weights = [c - (r.cumulative[i - 1] if i else 0) for i, c in enumerate(r.cumulative)]
    for d, w in zip(out["destinations"], weights, strict=False):
        d["weight"] = w
    out.pop("cumulative", None)
    return {"match": _jsonable(entry.match), "route": out}


def _listener_json(listener: table.Listener, extra: dict[str, Any]) -> dict[str, Any]:
    vhosts = sorted(_unique_vhosts(listener), key=lambda v: (v.port, v.name))
    return {
        "name": listener.name,
        "kind": "mesh" if listener.kind == table.LISTENER_MESH else "gateway",
        "port": listener.port,
        **extra,
        "virtual_hosts": [
            {
                "name": vh.name,
                "domains": list(vh.domains),
                "port": vh.port,
                "routes": [_route_json(e) for e in vh.entries],
            }
            for vh in vhosts
        ],
    }


def dump_config(
    mesh: table.Listener,
    gateways: Iterable[table.GatewayServer],
    clusters: Mapping[str, table.Cluster],
    sources: Iterable[str],
) -> dict[str, Any]:
    """JSON-ready description of a compiled config (admin /config_dump)."""
    listeners = [_listener_json(mesh, {})]
    for gs in gateways:
        listeners.append(_listener_json(gs.listener, {"bind": gs.bind, "https_redirect": gs.https_redirect}))
    cluster_list = []
    for c in clusters.values():
        item = _jsonable(c)
        item["lb"] = _LB_NAMES.get(c.lb, str(c.lb))
        cluster_list.append(item)
    return {"sources": list(sources), "listeners": listeners, "clusters": cluster_list}
