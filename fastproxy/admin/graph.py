"""The live traffic graph (/graph.json), shaped like Kiali's versioned-app graph
(traffic-semantics.md 16.2): client or gateway -> service -> app version.

Counts come from the Istio series (admin/stats.py); rates and shares are
taken over the last WINDOW seconds from snapshots kept between calls, and fall
back to all-time totals until two snapshots exist.
"""

from __future__ import annotations

import time
from collections import deque
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastproxy.admin.stats import L, Merged, service_name

if TYPE_CHECKING:
    from fastproxy import table

WINDOW = 10.0  # seconds of history behind rates and shares

_CODE = L["response_code"]
_FLAGS = L["response_flags"]
_SERVICE = L["destination_service"]
_APP = L["destination_app"]
_VERSION = L["destination_version"]
_WORKLOAD = L["destination_workload"]


def _source(listener: str) -> tuple[str, str]:
    if listener == "mesh":
        return "src:mesh", "client (mesh listener)"
    ns, _, rest = listener.partition("/")
    name, _, port = rest.rpartition(":")
    return f"src:{listener}", f"{name or rest} gateway :{port} ({ns})"


def _version_id(service: str, app: str, version: str) -> str:
    return f"ver:{service}|{app}|{version}"


def _health(errors: float, total: float) -> str:
    # Kiali's default thresholds: >= 20 % failing is a failure, > 0.1 % degraded.
    if total <= 0:
        return "idle"
    rate = errors / total
    if rate >= 0.2:
        return "failure"
    if rate > 0.001:
        return "degraded"
    return "healthy"


class GraphState:
    """Keeps the snapshots behind windowed rates (one per admin listener)."""

    def __init__(self) -> None:
        self.history: deque[tuple[float, dict[str, tuple[float, float]]]] = deque()

    def build(self, merged: Merged, config: table.Config | None, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        nodes: dict[str, dict[str, Any]] = {}
        edges: dict[str, dict[str, Any]] = {}

        def node(nid: str, kind: str, label: str, **extra: Any) -> dict[str, Any]:
            n = nodes.get(nid)
            if n is None:
                n = nodes[nid] = {"id": nid, "kind": kind, "label": label, **extra}
            return n

        def edge(src: str, dst: str, kind: str = "http") -> dict[str, Any]:
            eid = f"{src}->{dst}" + ("~mirror" if kind == "mirror" else "")
            e = edges.get(eid)
            if e is None:
                e = edges[eid] = {"id": eid, "from": src, "to": dst, "kind": kind, "total": 0.0,
                                  "errors": 0.0, "fault_injected": 0, "codes": {}, "flags": {}}  # fmt: skip
            return e

        # Every known service and version, even before traffic, so the layout is stable.
        mirrored: set[str] = set()
        if config is not None:
            for cluster in config.clusters.values():
                svc = f"svc:{cluster.service}"
                node(svc, "service", service_name(cluster.service, cluster.namespace),
                     service=cluster.service, namespace=cluster.namespace)  # fmt: skip
                for ep in cluster.endpoints:
                    node(_version_id(cluster.service, ep.app, ep.version), "version",
                         f"{ep.app} {ep.version}", service=cluster.service, app=ep.app, version=ep.version)  # fmt: skip
            for listener in [config.mesh] + [g.listener for g in config.gateways]:
                for vhosts in (listener.exact.values(), listener.catch_all.values()):
                    for vh in vhosts:
                        for entry in vh.entries:
                            if entry.route.mirrors:
                                for d in entry.route.destinations:
                                    if d.cluster is not None:
                                        mirrored.add(f"svc:{d.cluster.service}")

        for s in merged.series.values():
            labels = s.labels
            code = labels[_CODE]
            flags = labels[_FLAGS]
            src, src_label = _source(s.listener)
            node(src, "source", src_label)
            service = labels[_SERVICE]
            svc = f"svc:{service}"
            svc_label = labels[L["destination_service_name"]] if service != "unknown" else "unknown (no route)"
            node(svc, "service", svc_label, service=service, namespace=labels[L["destination_service_namespace"]])
            failed = code == "0" or code[0] in "45"
            fi = "FI" in flags.split(",")
            targets = [edge(src, svc)]
            if s.host:
                app, version = labels[_APP], labels[_VERSION]
                vid = _version_id(service, app, version)
                node(vid, "version", f"{app} {version}", service=service, app=app, version=version,
                     workload=labels[_WORKLOAD])  # fmt: skip
                targets.append(edge(svc, vid))
            for e in targets:
                e["total"] += s.count
                if failed:
                    e["errors"] += s.count
                if fi:
                    e["fault_injected"] += s.count
                e["codes"][code] = e["codes"].get(code, 0) + s.count
                if flags != "-":
                    e["flags"][flags] = e["flags"].get(flags, 0) + s.count

        if config is not None:
            for (src_service, cluster_name), value in merged.mirrors.items():
                cluster = config.clusters.get(cluster_name)
                if cluster is None or not cluster.endpoints:
                    continue
                per = value / len(cluster.endpoints)
                for ep in cluster.endpoints:
                    vid = _version_id(cluster.service, ep.app, ep.version)
                    node(vid, "version", f"{ep.app} {ep.version}", service=cluster.service,
                         app=ep.app, version=ep.version)  # fmt: skip
                    e = edge(f"svc:{src_service}", vid, "mirror")
                    e["total"] += per
                mirrored.add(f"svc:{src_service}")

        # Windowed deltas against the oldest snapshot still inside the window.
        current = {eid: (e["total"], e["errors"]) for eid, e in edges.items()}
        history = self.history
        while len(history) > 1 and now - history[1][0] >= WINDOW:
            history.popleft()
        base_t, base = history[0] if history else (now, {})
        span = now - base_t
        history.append((now, current))
        windowed = span >= 0.5
        for eid, e in edges.items():
            t0, err0 = base.get(eid, (0.0, 0.0))
            dt, derr = e["total"] - t0, e["errors"] - err0
            e["rps"] = round(dt / span, 3) if windowed else 0.0
            e["window_total"] = dt if windowed else e["total"]
            e["window_errors"] = derr if windowed else e["errors"]
        # Share of each edge among the edges leaving the same node (same kind).
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for e in edges.values():
            groups.setdefault((e["from"], e["kind"]), []).append(e)
        for group in groups.values():
            recent = sum(e["window_total"] for e in group)
            key = "window_total" if recent > 0 else "total"
            whole = recent if recent > 0 else sum(e["total"] for e in group)
            for e in group:
                e["share"] = round(100.0 * e[key] / whole, 1) if whole > 0 else 0.0
                err_key, tot_key = ("window_errors", "window_total") if recent > 0 else ("errors", "total")
                e["error_rate"] = round(100.0 * e[err_key] / e[tot_key], 1) if e[tot_key] > 0 else 0.0
                e["health"] = "mirror" if e["kind"] == "mirror" else _health(e[err_key], e[tot_key])
        for e in edges.values():
            e["total"] = round(e["total"], 1)
            del e["window_total"], e["window_errors"]
        for nid in mirrored:
            if nid in nodes:
                nodes[nid]["has_mirroring"] = True
        return {
            "generated": time.time(),
            "window_seconds": round(span, 1) if windowed else 0,
            "nodes": sorted(nodes.values(), key=lambda n: (n["kind"], n["id"])),
            "edges": sorted(edges.values(), key=lambda e: e["id"]),
        }


def page() -> bytes:
    """The graph page, bundled as package data."""
    return resources.files("fastproxy.admin").joinpath("static/graph.html").read_bytes()


__all__ = ["WINDOW", "GraphState", "page"]
