"""Istio standard metrics (traffic-semantics.md 16.1) and fastproxy's own.

Compiled with Cython in pure-Python mode (types in stats.pxd); this file is
also its own pure twin (fastproxy/_twins.py).

Cost model: a finished request costs a few identity comparisons and a handful
of integer additions.  What a request is counted under is decided by its
listener, destination (or route), endpoint, status and flags.  The last key
seen in each of _RECENT slots (picked by the objects' addresses and the status)
is compared first; a miss looks the key up in a dict keyed by the same values
with object ids, and the first request with a new key takes the slow path,
which derives the Istio label values once and pins the objects so their ids
cannot be reused.  Text is only produced when /stats/prometheus is scraped.

Label values fastproxy has to choose (it has no Kubernetes to ask):
- reporter is always "source": the mesh listener is a client sidecar and
  gateways report as source in Istio too.
- The mesh listener's client is not known: source_* = "unknown".  A gateway
  listener reports its Gateway: source_workload / source_app / canonical
  service = the Gateway's name, source_workload_namespace = its namespace.
- destination_* comes from the endpoint's labels (app, version, workload),
  "unknown" when no endpoint was reached (NR, UH, FI before routing, ...).
- destination_cluster / source_cluster: "Kubernetes" (Istio's default cluster
  id) for known workloads, "unknown" otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

try:  # a build dependency only: absent, this module runs as its pure twin
    import cython

    _COMPILED = cython.compiled
except ImportError:
    _COMPILED = False

if TYPE_CHECKING:
    from fastproxy import table
    from fastproxy.pipeline.exchange import Exchange

# Envoy's default histogram buckets (traffic-semantics.md 16.1), +Inf implied.
BUCKETS: tuple[float, ...] = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
    300000, 600000, 1800000, 3600000,
)  # fmt: skip
NB = len(BUCKETS) + 1  # + the +Inf slot (stats.pxd sizes the compiled arrays by these: 19 and 20)
# The bounds as floats; compiled, a C array of doubles.
_BOUNDS: tuple[float, ...] = tuple(float(b) for b in BUCKETS)
_NBOUNDS = len(BUCKETS)
_NO_COUNTS = (0,) * NB


def _bucket(v: float) -> int:
    """bisect_left over BUCKETS: the slot of the first bound >= v (NB - 1 is +Inf).

    Most observations (milliseconds, small bodies) land in the first few slots.
    """
    i = 0
    while i < _NBOUNDS:
        bound = _BOUNDS[i]  # a C double when compiled: no float object per comparison
        if bound >= v:
            break
        i += 1
    return i


LABELS: tuple[str, ...] = (
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "source_canonical_service",
    "source_canonical_revision",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "destination_cluster",
    "destination_canonical_service",
    "destination_canonical_revision",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
)
L = {name: i for i, name in enumerate(LABELS)}

DEFAULT_CLUSTER = "Kubernetes"
UNKNOWN = "unknown"


class Series:
    """Counters for one Istio label set (plus where it went, for /clusters and the graph)."""

    __slots__ = ("labels", "cluster", "host", "listener", "subset", "count", "dur_sum", "req_sum", "resp_sum",
                 "dur_b", "req_b", "resp_b")  # fmt: skip

    def __init__(self, labels: tuple[str, ...], cluster: str, host: str, listener: str, subset: str) -> None:
        self.labels = labels
        self.cluster = cluster  # Envoy cluster name, "" when none was chosen
        self.host = host  # "address:port" of the endpoint, "" when none was reached
        self.listener = listener  # Listener.name: "mesh" or "NS/GATEWAY:PORT"
        self.subset = subset
        self.count = 0
        self.dur_sum = 0.0
        self.req_sum = 0
        self.resp_sum = 0
        # Per-bucket (not cumulative) counts; cumulated when rendered.  Compiled,
        # C arrays: reading one gives a list (a copy), assigning one takes a list.
        self.dur_b = list(_NO_COUNTS)
        self.req_b = list(_NO_COUNTS)
        self.resp_b = list(_NO_COUNTS)

    def row(self) -> list[Any]:
        return [list(self.labels), self.cluster, self.host, self.listener, self.subset, self.count,
                self.dur_sum, self.req_sum, self.resp_sum, self.dur_b, self.req_b, self.resp_b]  # fmt: skip

    @classmethod
    def from_row(cls, row: list[Any]) -> Series:
        s = cls(tuple(row[0]), row[1], row[2], row[3], row[4])
        s.count, s.dur_sum, s.req_sum, s.resp_sum = row[5], row[6], row[7], row[8]
        s.dur_b, s.req_b, s.resp_b = list(row[9]), list(row[10]), list(row[11])
        return s

    def add(self, other: Series) -> None:
        self.count += other.count
        self.dur_sum += other.dur_sum
        self.req_sum += other.req_sum
        self.resp_sum += other.resp_sum
        for i in range(NB):
            self.dur_b[i] += other.dur_b[i]
            self.req_b[i] += other.req_b[i]
            self.resp_b[i] += other.resp_b[i]


class _Key:
    """One (listener, target, endpoint, status, flags) key and the Series it counts into."""

    __slots__ = ("listener", "target", "ep", "status", "flags", "series")

    def __init__(self, listener: str, target: Any, ep: Any, status: int, flags: Any, series: Series) -> None:
        self.listener = listener
        self.target = target
        self.ep = ep
        self.status = status
        self.flags = flags
        self.series = series


# Slots of the recent-key cache: a power of two, so a mask picks one.
_RECENT = 64


def _slot(target: Any, ep: Any, status: int) -> int:
    """The recent-key slot of a key: its objects' addresses (id) mixed with the status."""
    if _COMPILED:
        a = cython.cast(cython.size_t, cython.cast(cython.p_void, target))
        b = cython.cast(cython.size_t, cython.cast(cython.p_void, ep))
    else:
        a = id(target)
        b = id(ep)
    # Objects are 16-byte aligned: the low bits carry nothing.
    return ((a >> 4) ^ (b >> 6) ^ status) & (_RECENT - 1)


def service_name(service: str, namespace: str) -> str:
    suffix = f".{namespace}.svc.cluster.local"
    return service[: -len(suffix)] if service.endswith(suffix) else service


def _source_labels(listener: table.Listener | None) -> tuple[str, str, str]:
    """(workload, namespace, cluster) of the client a listener reports for."""
    if listener is None or listener.name == "mesh":
        return UNKNOWN, UNKNOWN, UNKNOWN
    ns, _, rest = listener.name.partition("/")
    return rest.rpartition(":")[0] or rest, ns, DEFAULT_CLUSTER


class Stats:
    """Per-worker request metrics.  `record` is the hot path."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.series: dict[tuple[Any, ...], Series] = {}
        self._fast: dict[tuple[Any, ...], Series] = {}
        self._recent: list[_Key | None] = [None] * _RECENT
        self._pins: list[Any] = []
        self._config: Any = None
        # Mirror copies per (primary service, mirror cluster): a float because a
        # mirror percentage below 100 is counted as its expected share.
        self.mirrors: dict[tuple[str, str], float] = {}

    def record(self, ex: Exchange) -> None:
        state = ex.state
        if state.config is not self._config:
            # A reload: forget id-keyed entries so the old objects can be freed.
            self._config = state.config
            self._fast.clear()
            self._recent = [None] * _RECENT
            self._pins.clear()
        dest = ex.dest
        ep = ex.endpoint
        # Without a destination (fault abort, redirect, NR) the route stands in for it.
        target = dest if dest is not None else ex.route
        status = ex.status
        flags = ex.flags
        listener = ex.ds.listener_key_str
        i = _slot(target, ep, status)
        k = self._recent[i]
        if (
            k is not None
            and k.target is target
            and k.ep is ep
            and k.status == status
            and k.listener == listener
            and k.flags == flags
        ):
            s = k.series
        else:
            key = (listener, id(target), id(ep), status, flags)
            s = self._fast.get(key)
            if s is None:
                s = self._slow(ex, key)
            self._recent[i] = _Key(listener, target, ep, status, flags, s)
        s.count += 1
        ms = (state.now() - ex.start) * 1000.0
        s.dur_sum += ms
        s.dur_b[_bucket(ms)] += 1
        cl = ex.head.content_length
        req = cl if cl > 0 else ex.body_size
        s.req_sum += req
        s.req_b[_bucket(req)] += 1
        resp = ex.bytes_sent
        s.resp_sum += resp
        s.resp_b[_bucket(resp)] += 1

    def mirrored(self, service: str, cluster_name: str) -> None:
        """One mirror copy sent from `service`'s traffic to `cluster_name` (pipeline/mirror.py)."""
        k = (service, cluster_name)
        self.mirrors[k] = self.mirrors.get(k, 0.0) + 1

    def _slow(self, ex: Exchange, key: tuple[Any, ...]) -> Series:
        dest = ex.dest
        ep = ex.endpoint
        listener = ex.ds.listener()
        src_wl, src_ns, src_cluster = _source_labels(listener)
        cluster = dest.cluster if dest is not None else None
        route = ex.route
        if dest is None and route is not None and route.destinations:
            # A fault abort is reported against the service the route leads to (as Kiali shows it).
            cluster = route.destinations[0].cluster
        if cluster is not None:
            service, svc_ns = cluster.service, cluster.namespace
            svc_name = service_name(service, svc_ns)
        else:
            service = svc_name = svc_ns = UNKNOWN
        if ep is not None:
            d_wl, d_ns, d_app, d_ver = ep.workload, ep.namespace, ep.app, ep.version
            d_cluster = DEFAULT_CLUSTER
            host = f"{ep.address}:{ep.port}"
        else:
            d_wl = d_ns = d_app = d_ver = d_cluster = UNKNOWN
            host = ""
        labels = (
            "source",
            src_wl, src_ns, UNKNOWN, src_wl, UNKNOWN, src_cluster, src_wl, "latest" if src_wl != UNKNOWN else UNKNOWN,
            d_wl, d_ns, UNKNOWN, d_app, d_ver,
            service, svc_name, svc_ns, d_cluster,
            d_app if d_app != UNKNOWN else d_wl, d_ver if d_ver != UNKNOWN else ("latest" if ep else UNKNOWN),
            "http", str(ex.status), "-", ex.flags or "-", UNKNOWN,
        )  # fmt: skip
        cname = dest.cluster_name if dest is not None else ""
        lname = listener.name if listener is not None else "mesh"
        full = (labels, cname, host, lname)
        s = self.series.get(full)
        if s is None:
            s = Series(labels, cname, host, lname, cluster.subset if cluster is not None and dest else "")
            self.series[full] = s
        self._fast[key] = s
        self._pins.append((dest, ep, route))
        return s

    # -- snapshots (workers -> parent) ---------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"series": [s.row() for s in self.series.values()],
                "mirrors": [[k[0], k[1], v] for k, v in self.mirrors.items()]}  # fmt: skip


class Merged:
    """Totals over one or more workers' snapshots."""

    def __init__(self) -> None:
        self.series: dict[tuple[Any, ...], Series] = {}
        self.mirrors: dict[tuple[str, str], float] = {}

    def add_snapshot(self, snap: dict[str, Any]) -> None:
        for row in snap.get("series", ()):
            s = Series.from_row(row)
            key = (s.labels, s.cluster, s.host, s.listener)
            mine = self.series.get(key)
            if mine is None:
                self.series[key] = s
            else:
                mine.add(s)
        for src, cluster, v in snap.get("mirrors", ()):
            self.mirrors[(src, cluster)] = self.mirrors.get((src, cluster), 0.0) + v

    @classmethod
    def of(cls, snaps: Iterable[dict[str, Any]]) -> Merged:
        m = cls()
        for snap in snaps:
            m.add_snapshot(snap)
        return m


# -- Prometheus text exposition ------------------------------------------------
def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(v: float) -> str:
    if isinstance(v, int) or float(v).is_integer():
        return str(int(v))
    return repr(float(v))


_BUCKET_LE = tuple(_fmt(b) for b in BUCKETS) + ("+Inf",)

_HISTOGRAMS = (
    ("istio_request_duration_milliseconds", "Request duration in milliseconds.", "dur"),
    ("istio_request_bytes", "Request body size in bytes.", "req"),
    ("istio_response_bytes", "Response body size in bytes.", "resp"),
)


def render_prometheus(
    merged: Merged,
    counters: dict[str, int],
    gauges: dict[str, float],
    labelled: Iterable[tuple[str, str, str, list[tuple[dict[str, str], float]]]] = (),
) -> bytes:
    """The /stats/prometheus page.

    `counters` become fastproxy_<name>_total, `gauges` fastproxy_<name>;
    `labelled` adds (name, type, help, [(labels, value), ...]) families.
    """
    out: list[str] = []
    series = sorted(merged.series.values(), key=lambda s: s.labels)
    label_text = {id(s): ",".join(f'{n}="{escape(v)}"' for n, v in zip(LABELS, s.labels, strict=True))
                  for s in series}  # fmt: skip
    # Several (cluster, host) keys can share one Istio label set: sum them.
    grouped: dict[str, Series] = {}
    for s in series:
        text = label_text[id(s)]
        g = grouped.get(text)
        if g is None:
            g = grouped[text] = Series(s.labels, "", "", "", "")
        g.add(s)
    out.append("# HELP istio_requests_total Total number of requests handled by the proxy.")
    out.append("# TYPE istio_requests_total counter")
    for text, g in grouped.items():
        out.append(f"istio_requests_total{{{text}}} {g.count}")
    for name, help_text, which in _HISTOGRAMS:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} histogram")
        for text, g in grouped.items():
            buckets = getattr(g, which + "_b")
            total = 0
            for le, n in zip(_BUCKET_LE, buckets, strict=True):
                total += n
                out.append(f'{name}_bucket{{{text},le="{le}"}} {total}')
            out.append(f"{name}_sum{{{text}}} {_fmt(getattr(g, which + '_sum'))}")
            out.append(f"{name}_count{{{text}}} {g.count}")
    for name, value in sorted(counters.items()):
        out.append(f"# HELP fastproxy_{name}_total fastproxy operational counter {name}.")
        out.append(f"# TYPE fastproxy_{name}_total counter")
        out.append(f"fastproxy_{name}_total {_fmt(value)}")
    for name, value in sorted(gauges.items()):
        out.append(f"# HELP fastproxy_{name} fastproxy operational gauge {name}.")
        out.append(f"# TYPE fastproxy_{name} gauge")
        out.append(f"fastproxy_{name} {_fmt(value)}")
    for name, kind, help_text, samples in labelled:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
            out.append(f"{name}{{{text}}} {_fmt(value)}")
    return ("\n".join(out) + "\n").encode()


__all__ = ["BUCKETS", "LABELS", "Merged", "Series", "Stats", "escape", "render_prometheus", "service_name"]
