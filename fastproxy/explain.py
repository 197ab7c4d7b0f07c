"""`fastproxy explain`: which listener, virtual host and route would take a
request, why the routes before it did not match (condition by condition),
and what the chosen route does: rewrite, redirect, header operations, fault,
timeout, retries, mirrors and destinations with their weights.

It walks the same compiled tables the proxy serves from, with a condition
evaluator that follows the matcher's rules (traffic-semantics.md 2.4-2.6),
so what it prints is what a request would get.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastproxy import table
from fastproxy.pipeline.exchange import split_authority
from fastproxy.pipeline.rewrite import normalize_path, redirect_location, rewrite_path

_KIND = {table.EXACT: "exact", table.PREFIX: "prefix", table.REGEX: "regex", table.PRESENT: "present"}
_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")


class ExplainError(Exception):
    pass


def _s(b: bytes | None) -> str:
    return "" if b is None else b.decode("latin-1")


def describe(sm: table.StringMatch) -> str:
    kind = _KIND.get(sm.kind, str(sm.kind))
    if sm.kind == table.PRESENT:
        return kind
    if sm.kind == table.REGEX and sm.regex is not None:
        return f'{kind} "{_s(sm.regex.pattern)}"'
    return f'{kind} "{_s(sm.value)}"'


def _test(sm: table.StringMatch, value: bytes) -> bool:
    if sm.kind == table.EXACT:
        return value == sm.value
    if sm.kind == table.PREFIX:
        return value.startswith(sm.value)
    if sm.kind == table.REGEX:
        return sm.regex is not None and sm.regex.fullmatch(value) is not None
    return sm.kind == table.PRESENT


def _verdict(ok: bool, what: str, value: bytes | None) -> tuple[bool, str]:
    shown = "absent" if value is None else f'"{_s(value)}"'
    return ok, f"{'ok  ' if ok else 'FAIL'} {what}: request has {shown}"


def conditions(
    spec: table.MatchSpec,
    method: bytes,
    path: bytes,
    authority: bytes,
    headers: dict[bytes, bytes],
    port: int,
) -> list[tuple[bool, str]]:
    """Every condition of one match block with its outcome (all are evaluated)."""
    out: list[tuple[bool, str]] = []
    upath, _, query = path.partition(b"?")
    upath = upath.split(b"#", 1)[0]
    query = query.split(b"#", 1)[0]
    if spec.port:
        out.append(
            (spec.port == port, f"{'ok  ' if spec.port == port else 'FAIL'} port {spec.port}: request port {port}")
        )
    if spec.method is not None:
        out.append(_verdict(_test(spec.method, method), f"method {describe(spec.method)}", method))
    if spec.scheme is not None:
        out.append(_verdict(_test(spec.scheme, b"http"), f"scheme {describe(spec.scheme)}", b"http"))
    if spec.authority is not None:
        out.append(_verdict(_test(spec.authority, authority), f"authority {describe(spec.authority)}", authority))
    if spec.uri is not None:
        icase = spec.ignore_uri_case and spec.uri.kind != table.REGEX
        value = upath.translate(_LOWER) if icase else upath
        what = f"uri {describe(spec.uri)}" + (" (ignoring case)" if icase else "")
        out.append(_verdict(_test(spec.uri, value), what, upath))
    pseudo = {b":method": method, b":path": path, b":authority": authority, b":scheme": b"http"}
    for name, sm in spec.headers:
        v = pseudo.get(name, headers.get(name))
        out.append(_verdict(v is not None and _test(sm, v), f"header {_s(name)} {describe(sm)}", v))
    for name, sm in spec.without_headers:
        v = pseudo.get(name, headers.get(name))
        ok = v is None if sm.kind == table.PRESENT else not _test(sm, b"" if v is None else v)
        out.append(_verdict(ok, f"withoutHeaders {_s(name)} {describe(sm)}", v))
    params: dict[bytes, bytes] = {}
    for part in query.split(b"&"):
        if part:
            k, _, v = part.partition(b"=")
            params.setdefault(k, v)
    for key, sm in spec.query_params:
        v = params.get(key)
        out.append(_verdict(v is not None and _test(sm, v), f"queryParam {_s(key)} {describe(sm)}", v))
    if not out:
        out.append((True, "ok   no conditions (matches every request)"))
    return out


def _ops(ops: tuple[table.HeaderOps, ...]) -> list[str]:
    lines = []
    for op in ops:
        lines += [f"remove {_s(n)}" for n in op.remove]
        lines += [f"set {_s(n)}: {_s(v)}" for n, v in op.set]
        lines += [f"add {_s(n)}: {_s(v)}" for n, v in op.add]
    return lines


def _retry_on(bits: int) -> str:
    names = [name for name, bit in table.RETRY_ON_NAMES.items() if bits & bit]
    return ",".join(names) or "-"


def _seconds(v: float) -> str:
    return f"{v:g}s"


def _percent(ppm: int) -> str:
    return f"{ppm / 10_000:g} %"


def _cluster_line(dest: table.Destination) -> str:
    c = dest.cluster
    if c is None:
        return f"{dest.cluster_name} (no such cluster: 503 NC)"
    if not c.endpoints:
        return f"{dest.cluster_name} (no endpoints: 503 UH)"
    eps = ", ".join(f"{e.address}:{e.port} ({e.app} {e.version})" for e in c.endpoints)
    return f"{dest.cluster_name} -> {eps}"


def _pick_listener(config: table.Config, gateway: str | None, port: int | None) -> table.Listener:
    if gateway is None:
        return config.mesh
    ns, _, name = gateway.rpartition("/")
    found = []
    for server in config.gateways:
        lns, _, rest = server.listener.name.partition("/")
        lname = rest.rpartition(":")[0]
        if lname == name and (not ns or lns == ns):
            found.append(server)
    if not found:
        raise ExplainError(f"no HTTP server of Gateway {gateway}")
    for server in found:
        if port is None or server.port == port:
            return server.listener
    ports = ", ".join(str(s.port) for s in found)
    raise ExplainError(f"Gateway {gateway} has no server on port {port} (ports: {ports})")


def explain(
    config: table.Config, request: str, headers: list[str] | None = None, gateway: str | None = None
) -> list[str]:
    """The explanation as lines of text."""
    method_s, _, url = request.strip().partition(" ")
    url = url.strip()
    if not method_s or not url:
        raise ExplainError("the request must look like 'GET http://host[:port]/path'")
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if not parts.netloc:
        raise ExplainError(f"no host in {url!r}")
    method = method_s.upper().encode()
    authority = parts.netloc.encode()
    path = (parts.path or "/").encode() + (b"?" + parts.query.encode() if parts.query else b"")
    hdrs: dict[bytes, bytes] = {}
    for h in headers or []:
        name, sep, value = h.partition(":")
        if not sep:
            raise ExplainError(f"header {h!r} must look like 'name: value'")
        key = name.strip().lower().encode()
        hdrs[key] = hdrs[key] + b"," + value.strip().encode() if key in hdrs else value.strip().encode()
    host, port = split_authority(authority, 80)
    if host is None:
        raise ExplainError(f"bad host {parts.netloc!r}")
    explicit_port = port if b":" in authority.rsplit(b"]", 1)[-1] else None
    listener = _pick_listener(config, gateway, explicit_port)
    out = [f"request: {method_s.upper()} {url}"]
    for k, v in hdrs.items():
        out.append(f"  header {_s(k)}: {_s(v)}")
    if listener.kind == table.LISTENER_MESH:
        out.append(f"listener: mesh (sidecar outbound), Host port {port}")
        vh = listener.find(host, port)
        match_port = port
    else:
        out.append(f"listener: gateway {listener.name}")
        vh = listener.find(host, 0)
        match_port = listener.port
    if vh is None:
        out.append(f"virtual host: none for {_s(host)}:{port}")
        out.append("result: 404 NR (no virtual host)")
        return out
    out.append(f"virtual host: {vh.name} (domains: {', '.join(vh.domains)})")
    npath = normalize_path(path) if b"/." in path else path
    if npath != path:
        out.append(f"path normalised: {_s(path)} -> {_s(npath)}")
    chosen: table.Route | None = None
    for i, entry in enumerate(vh.entries, 1):
        route = entry.route
        results = conditions(entry.match, method, npath, authority, hdrs, match_port)
        matched = all(ok for ok, _ in results)
        vs = f"VirtualService {route.virtual_service}" if route.virtual_service else "generated default route"
        out.append(f"route {i}/{len(vh.entries)} {route.name} ({vs}): {'MATCH' if matched else 'no match'}")
        out += [f"    {text}" for _, text in results]
        if matched:
            chosen = route
            break
    if chosen is None:
        out.append("result: 404 NR (no route matched)")
        return out
    out += _describe_route(chosen, method, npath, authority)
    return out


def _describe_route(route: table.Route, method: bytes, path: bytes, authority: bytes) -> list[str]:
    out = [f"selected route: {route.name}"]
    if route.fault is not None:
        f = route.fault
        if f.delay_ppm and f.delay is not None:
            out.append(f"  fault delay: {_seconds(f.delay)} for {_percent(f.delay_ppm)} of requests (flag DI)")
        if f.abort_ppm:
            what = f"HTTP {f.abort_status}" if f.abort_status else f"gRPC {f.abort_grpc}"
            out.append(f"  fault abort: {what} for {_percent(f.abort_ppm)} of requests (flag FI)")
    if route.action == table.ACTION_REDIRECT and route.redirect is not None:
        loc = redirect_location(route.redirect, b"http", authority, path)
        out.append(f"  redirect: {route.redirect.status} location {_s(loc)}")
        return out
    if route.action == table.ACTION_DIRECT and route.direct is not None:
        out.append(f"  direct response: {route.direct.status} body {len(route.direct.body)} bytes")
        return out
    if route.rewrite is not None:
        out.append(f"  rewrite: path {_s(path)} -> {_s(rewrite_path(route.rewrite, path))}")
    out.append(f"  timeout: {_seconds(route.timeout) if route.timeout is not None else 'none'}")
    r = route.retry
    if r.attempts:
        line = f"  retries: {r.attempts} on {_retry_on(r.retry_on)}"
        if r.retriable_codes:
            line += f" (status {','.join(str(c) for c in sorted(r.retriable_codes))})"
        if r.per_try_timeout is not None:
            line += f", per try {_seconds(r.per_try_timeout)}"
        out.append(line)
    else:
        out.append("  retries: none")
    for m in route.mirrors:
        out.append(f"  mirror: {_percent(m.ppm)} of requests to {m.destination.cluster_name}")
    total = route.cumulative[-1] if route.cumulative else 0
    out.append("  destinations:")
    prev = 0
    for dest, cum in zip(route.destinations, route.cumulative or (1,) * len(route.destinations), strict=False):
        share = (cum - prev) * 100 / total if total else 100.0
        prev = cum
        out.append(f"    {share:g} % {_cluster_line(dest)}")
        if dest.authority is not None:
            out.append(f"      host rewritten to {_s(dest.authority)}")
        for line in _ops(dest.request_ops):
            out.append(f"      request headers: {line}")
        for line in _ops(dest.response_ops):
            out.append(f"      response headers: {line}")
    return out


__all__ = ["ExplainError", "conditions", "describe", "explain"]
