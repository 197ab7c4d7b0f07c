"""YAML documents -> typed model, collecting every problem on the way.

This is the only place that reports config problems.  Two passes share one
`Ctx`: `convert()` checks shapes and types against the dataclasses in model.py
(unknown fields, wrong types, enum values, duration syntax), then the
`_check_*` functions apply the Istio validation rules users actually hit.
Nothing stops at the first problem; each line names FILE:LINE, the resource,
the field path and what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import http
import ipaddress
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

from fastproxy import table
from fastproxy.config import model as m
from fastproxy.config.loader import Document, YList, YMap

MAX_REGEX_LEN = 1024
MAX_DIRECT_BODY = 1024 * 1024


class Ctx:
    """Problem sink for one resource: formats `FILE:LINE: Kind ns/name: path: message`."""

    __slots__ = ("file", "ident", "problems", "warnings")

    def __init__(self, file: str, ident: str, problems: list[str], warnings: list[str]) -> None:
        self.file = file
        self.ident = ident
        self.problems = problems
        self.warnings = warnings

    def add(self, line: int, path: str, message: str) -> None:
        self.problems.append(_one_line(f"{self.file}:{line}: {self.ident}: {path}: {message}"))

    def at(self, node: m.Node, name: str, message: str) -> None:
        """A problem with field `name` of `node` (its own line when it has one)."""
        path = f"{node._path}.{_camel(name)}" if name else node._path
        self.add(node.line_of(name) if name else node._line, path, message)

    def warn(self, line: int, path: str, message: str) -> None:
        self.warnings.append(_one_line(f"{self.file}:{line}: {self.ident}: {path}: {message}"))


# ---------------------------------------------------------------- shape conversion


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


_FIELDS: dict[type, list[tuple[str, str, Any]]] = {}


def _fields(cls: type) -> list[tuple[str, str, Any]]:
    """(attribute, yaml name, type) for a model class, computed once."""
    got = _FIELDS.get(cls)
    if got is None:
        hints = typing.get_type_hints(cls, globalns=vars(m))
        got = [(f.name, _camel(f.name), hints[f.name]) for f in dataclasses.fields(cls) if not f.name.startswith("_")]
        _FIELDS[cls] = got
    return got


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """Go time.ParseDuration syntax (`1s`, `1.5s`, `500ms`, `1h30m`) -> seconds, None if malformed."""
    s = text.strip()
    if s in ("0", "+0", "-0"):
        return 0.0
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if not s:
        return None
    total = 0.0
    pos = 0
    while pos < len(s):
        mt = _DURATION_PART.match(s, pos)
        if mt is None or mt.group(1) in ("", "."):
            return None
        total += float(mt.group(1)) * _UNIT[mt.group(2)]
        pos = mt.end()
    return sign * total


def convert(ctx: Ctx, tp: Any, value: Any, path: str, line: int) -> Any:
    """Checks `value` against model type `tp`; returns the converted value or None."""
    if value is None or tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return convert(ctx, inner, value, path, line)
    if tp is m.Duration or tp is m.Ttl:
        if not isinstance(value, str):
            ctx.add(line, path, f"expected duration string such as 1s or 500ms, got {type_name(value)}")
            return None
        seconds = parse_duration(value)
        if seconds is None:
            ctx.add(line, path, f'invalid duration "{value}"')
            return None
        if seconds < 0:
            ctx.add(line, path, "duration must not be negative")
            return None
        if tp is m.Duration and seconds < 0.001:
            ctx.add(line, path, "duration must be at least 1ms")
            return None
        if abs(seconds * 1000 - round(seconds * 1000)) > 1e-6:
            ctx.add(line, path, "only durations to ms precision are supported")
            return None
        return seconds
    if tp is str:
        if not isinstance(value, str):
            ctx.add(line, path, f"expected string, got {type_name(value)}")
            return None
        return value
    if tp is bool:
        if not isinstance(value, bool):
            ctx.add(line, path, f"expected boolean, got {type_name(value)}")
            return None
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            ctx.add(line, path, f"expected integer, got {type_name(value)}")
            return None
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            ctx.add(line, path, f"expected number, got {type_name(value)}")
            return None
        return float(value)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if not isinstance(value, str):
            ctx.add(line, path, f"expected string, got {type_name(value)}")
            return None
        if value not in allowed:
            ctx.add(line, path, f'invalid value "{value}" (expected one of {", ".join(allowed)})')
            return None
        return value
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, list):
            ctx.add(line, path, f"expected list, got {type_name(value)}")
            return None
        lines = value.item_lines if isinstance(value, YList) else [line] * len(value)
        out = []
        for i, item in enumerate(value):
            got = convert(ctx, inner, item, f"{path}[{i}]", lines[i])
            if got is not None:
                out.append(got)
            elif item is None:
                ctx.add(lines[i], f"{path}[{i}]", "list item must not be null")
        return out
    if origin is dict:
        _, inner = typing.get_args(tp)
        if not isinstance(value, dict):
            ctx.add(line, path, f"expected mapping, got {type_name(value)}")
            return None
        key_lines = value.key_lines if isinstance(value, YMap) else {}
        out_map: dict[str, Any] = {}
        for key, item in value.items():
            kline = key_lines.get(key, line)
            if not isinstance(key, str):
                ctx.add(kline, path, f"expected string key, got {type_name(key)} {key!r}")
                continue
            got = convert(ctx, inner, item, f"{path}[{key}]", kline)
            if got is None and item is None and inner is not Any:
                ctx.add(kline, f"{path}[{key}]", f"expected {_scalar_name(inner)}, got null")
            elif got is not None or inner is Any:
                out_map[key] = got
        return out_map
    if isinstance(tp, type) and issubclass(tp, m.Node):
        if not isinstance(value, dict):
            ctx.add(line, path, f"expected mapping, got {type_name(value)}")
            return None
        key_lines = value.key_lines if isinstance(value, YMap) else {}
        obj_line = value.line if isinstance(value, YMap) else line
        by_yaml = {yname: (attr, ftp) for attr, yname, ftp in _fields(tp)}
        kwargs: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for key, item in value.items():
            kline = key_lines.get(key, obj_line)
            spec = by_yaml.get(key) if isinstance(key, str) else None
            if spec is None:
                ctx.add(kline, path, f'unknown field "{key}"')
                continue
            attr, ftp = spec
            lines[attr] = lines[key] = kline  # so checks may name a field either way
            kwargs[attr] = convert(ctx, ftp, item, f"{path}.{key}", kline)
        obj = tp(**kwargs)
        obj._path = path
        obj._line = obj_line
        obj._lines = lines
        return obj
    raise TypeError(f"model type {tp!r} not handled")  # a bug in model.py, not in the YAML


def _scalar_name(tp: Any) -> str:
    return {str: "string", int: "integer", bool: "boolean", float: "number"}.get(tp, "a value")


# ---------------------------------------------------------------- documents -> resources


def validate_documents(docs: Iterable[Document]) -> tuple[m.Model, list[str], list[str]]:
    """Returns (model, problems, warnings); the model holds only resources without problems."""
    problems: list[str] = []
    warnings: list[str] = []
    model = m.Model()
    seen: dict[tuple[str, str, str], str] = {}
    order = 0
    for doc in docs:
        if doc.file not in model.sources:
            model.sources.append(doc.file)
        res = _resource(doc, problems, warnings, seen, order)
        if res is None:
            continue
        order += 1
        {
            "VirtualService": model.virtual_services,
            "DestinationRule": model.destination_rules,
            "ServiceEntry": model.service_entries,
            "WorkloadEntry": model.workload_entries,
            "Gateway": model.gateways,
        }[res.kind].append(res)
    return model, problems, warnings


_TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec", "status"}


def _resource(
    doc: Document,
    problems: list[str],
    warnings: list[str],
    seen: dict[tuple[str, str, str], str],
    order: int,
) -> m.Resource | None:
    data = doc.data
    where = f"{doc.file}:{doc.line}"
    if not isinstance(data, YMap):
        problems.append(f"{where}: document {doc.index + 1}: expected a mapping, got {type_name(data)}")
        return None
    kind = data.get("kind")
    api = data.get("apiVersion")
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    if namespace is None:
        namespace = "default"
    label = f"{kind if isinstance(kind, str) and kind else 'document ' + str(doc.index + 1)}"
    shown = f"{namespace}/{name}" if isinstance(name, str) and name else f"{namespace}/<unnamed>"
    ctx = Ctx(doc.file, f"{label} {shown}", problems, warnings)

    if not isinstance(kind, str) or not kind:
        line = data.key_lines.get("kind", data.line)
        ctx.add(line, "kind", "required field missing" if kind is None else "expected a non-empty string")
        return None
    if not isinstance(api, str) or not api:
        line = data.key_lines.get("apiVersion", data.line)
        ctx.add(line, "apiVersion", "required field missing" if api is None else "expected a non-empty string")
        return None
    group = api.split("/", 1)[0] if "/" in api else ""
    if group != "networking.istio.io" or kind not in m.SPEC_TYPES:
        warnings.append(_one_line(f"{where}: skipping {api} {kind} {shown} (not a traffic-management kind)"))
        return None
    if api not in m.API_VERSIONS:
        ctx.add(
            data.key_lines.get("apiVersion", data.line),
            "apiVersion",
            f'unsupported apiVersion "{api}" (expected networking.istio.io/v1, v1beta1 or v1alpha3)',
        )
        return None

    before = len(problems)
    for key in data:
        if key not in _TOP_LEVEL:
            ctx.add(data.key_lines.get(key, data.line), "", f'unknown field "{key}"')
    labels: dict[str, str] = {}
    if not isinstance(meta, dict):
        line = data.key_lines.get("metadata", data.line)
        ctx.add(line, "metadata", "required field missing" if meta is None else "expected mapping")
    else:
        mline = data.key_lines.get("metadata", data.line)
        klines = meta.key_lines if isinstance(meta, YMap) else {}
        if not isinstance(name, str) or not name:
            ctx.add(
                klines.get("name", mline),
                "metadata.name",
                "required field missing" if name is None else "expected a non-empty string",
            )
        elif not _DNS1123_SUBDOMAIN.fullmatch(name):
            ctx.add(klines.get("name", mline), "metadata.name", f'invalid name "{name}" (must be a DNS-1123 name)')
        if not isinstance(namespace, str) or not _DNS1123_LABEL.fullmatch(namespace):
            ctx.add(klines.get("namespace", mline), "metadata.namespace", f"invalid namespace {namespace!r}")
        got = convert(ctx, dict[str, str] | None, meta.get("labels"), "metadata.labels", klines.get("labels", mline))
        labels = got or {}
        convert(
            ctx,
            dict[str, Any] | None,
            meta.get("annotations"),
            "metadata.annotations",
            klines.get("annotations", mline),
        )

    spec_data = data.get("spec")
    spec_line = data.key_lines.get("spec", data.line)
    if spec_data is None:
        spec_data = YMap(spec_line)
    spec = convert(ctx, m.SPEC_TYPES[kind], spec_data, "spec", spec_line)
    if spec is not None:
        _CHECKS[kind](ctx, spec, namespace if isinstance(namespace, str) else "default")
    if len(problems) != before or spec is None:
        return None
    assert isinstance(name, str) and isinstance(namespace, str)
    key = (kind, namespace, name)
    first = seen.get(key)
    if first is not None:
        ctx.add(doc.line, "metadata.name", f"duplicate {kind} {namespace}/{name} (first defined at {first})")
        return None
    seen[key] = where
    return m.Resource(
        kind=kind,
        api_version=api,
        name=name,
        namespace=namespace,
        file=doc.file,
        line=doc.line,
        order=order,
        spec=spec,
        labels=labels,
    )


# ---------------------------------------------------------------- shared checks


def _one_line(text: str) -> str:
    # A problem is one line whatever a name or value in it contains.
    return text.replace("\r", "\\r").replace("\n", "\\n")


_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HOST_LABEL = r"[A-Za-z0-9]([-A-Za-z0-9_]*[A-Za-z0-9])?"
_FQDN = re.compile(rf"^{_HOST_LABEL}(\.{_HOST_LABEL})*\.?$")
_HEADER_NAME = re.compile(r"^:?[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_GRPC_STATUSES = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
}
# Accepted by Istio's validation but with no meaning for an HTTP/1.1 proxy.
_RETRY_ON_EXTRA = {"http3-post-connect-failure"}
_KNOWN_STATUS = {int(s) for s in http.HTTPStatus}
_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
# Constructs Python's `re` accepts but RE2 (Envoy's regex engine) rejects.
_NOT_RE2 = re.compile(r"\(\?[=!]|\(\?<[=!]|\\[1-9]|\(\?P=|\(\?\(|\\Z")


def check_hostname(ctx: Ctx, node: m.Node, name: str, host: str, allow_star: bool = True) -> bool:
    if host == "*":
        if not allow_star:
            ctx.at(node, name, 'invalid host "*"')
            return False
        return True
    rest = host[2:] if host.startswith("*.") else host
    if not host or not _FQDN.match(rest) or len(host) > 255:
        ctx.at(node, name, f'invalid host "{host}"')
        return False
    return True


def check_port(ctx: Ctx, node: m.Node, name: str, value: int | None, required: bool = False) -> None:
    if value is None:
        if required:
            ctx.at(node, name, "required field missing")
        return
    if not 1 <= value <= 65535:
        ctx.at(node, name, f"port number {value} must be in the range 1..65535")


def check_regex(ctx: Ctx, node: m.Node, name: str, pattern: str) -> bool:
    if len(pattern) > MAX_REGEX_LEN:
        ctx.at(node, name, f"regex is too long ({len(pattern)} > {MAX_REGEX_LEN} characters)")
        return False
    if _NOT_RE2.search(pattern):
        ctx.at(
            node,
            name,
            f'"{pattern}" is not a valid RE2 regex (look-around and back-references are not supported)',
        )
        return False
    try:
        re.compile(pattern)
    except re.error as exc:
        ctx.at(node, name, f'"{pattern}" is not a valid regex: {exc}')
        return False
    return True


def check_string_match(
    ctx: Ctx, sm: m.StringMatch, *, allow_empty_prefix: bool, allow_empty: bool, allow_star: bool = False
) -> None:
    set_fields = [f for f in ("exact", "prefix", "regex") if getattr(sm, f) is not None]
    if len(set_fields) > 1:
        ctx.at(sm, "", f"only one of exact, prefix or regex may be set (got {', '.join(set_fields)})")
        return
    if not set_fields:
        if not allow_empty:
            ctx.at(sm, "", "one of exact, prefix or regex is required")
        return
    if sm.prefix is not None and sm.prefix == "" and not allow_empty_prefix:
        ctx.at(sm, "prefix", "prefix must not be empty")
    if sm.regex is not None:
        if allow_star and sm.regex == "*":
            return
        check_regex(ctx, sm, "regex", sm.regex)


def check_percent(ctx: Ctx, pct: m.Percent | None) -> None:
    if pct is not None and pct.value is not None and not 0.0 <= pct.value <= 100.0:
        ctx.at(pct, "value", f"percentage {pct.value:g} must be in the range 0..100")


def check_int_range(ctx: Ctx, node: m.Node, name: str, lo: int, hi: int | None = None) -> None:
    value = getattr(node, name)
    if value is None:
        return
    if value < lo or (hi is not None and value > hi):
        ctx.at(node, name, f"must be >= {lo}" if hi is None else f"must be in the range {lo}..{hi}")


# ---------------------------------------------------------------- VirtualService


def is_authority_key(key: str) -> bool:
    return key.lower() in (":authority", "host")


def _check_header_ops(ctx: Ctx, ops: m.HeaderOperations | None) -> None:
    if ops is None:
        return
    for which in ("set", "add"):
        entries = getattr(ops, which)
        for key, value in (entries or {}).items():
            if not key or not _HEADER_NAME.match(key):
                ctx.at(ops, which, f'invalid header name "{key}"')
            if any(c in value for c in "\r\n\0"):
                ctx.at(ops, which, f'header "{key}": value must not contain CR, LF or NUL')
            elif "%" in value.replace("%%", ""):
                ctx.at(
                    ops,
                    which,
                    f'header "{key}": %VAR% substitutions are not supported (write %% for a literal %)',
                )
    for i, key in enumerate(ops.remove or []):
        if not key or not _HEADER_NAME.match(key):
            ctx.add(ops.line_of("remove"), f"{ops._path}.remove[{i}]", f'invalid header name "{key}"')


def _check_headers(ctx: Ctx, headers: m.Headers | None) -> None:
    if headers is not None:
        _check_header_ops(ctx, headers.request)
        _check_header_ops(ctx, headers.response)


def _check_authority_once(ctx: Ctx, node: m.Node, rewrite_authority: str | None, headers: m.Headers | None) -> None:
    current = rewrite_authority or ""
    req = headers.request if headers is not None else None
    if req is None:
        return
    for which in ("set", "add"):
        for key, value in (getattr(req, which) or {}).items():
            if is_authority_key(key):
                if current:
                    ctx.at(
                        req,
                        which,
                        f'authority header cannot be set multiple times: have "{current}", attempting to set "{value}"',
                    )
                current = value


def _check_destination(ctx: Ctx, dest: m.Destination | None, owner: m.Node, name: str) -> None:
    if dest is None:
        ctx.at(owner, name, "destination is required")
        return
    if not dest.host:
        ctx.at(dest, "host", "destination host is required")
    else:
        check_hostname(ctx, dest, "host", dest.host, allow_star=False)
    if dest.subset is not None and not _DNS1123_LABEL.fullmatch(dest.subset):
        ctx.at(dest, "subset", f'invalid subset name "{dest.subset}"')
    if dest.port is not None:
        check_port(ctx, dest.port, "number", dest.port.number, required=True)


def _check_match(ctx: Ctx, mt: m.HTTPMatchRequest) -> None:
    if mt.uri is not None:
        check_string_match(ctx, mt.uri, allow_empty_prefix=True, allow_empty=False)
    for fname in ("scheme", "method", "authority"):
        sm = getattr(mt, fname)
        if sm is not None:
            check_string_match(ctx, sm, allow_empty_prefix=False, allow_empty=False)
    for fname in ("headers", "without_headers", "query_params"):
        entries = getattr(mt, fname) or {}
        for key, sm in entries.items():
            if not key:
                ctx.at(mt, _camel(fname), "header name must not be empty")
            elif fname != "query_params" and key.lower() != key:
                ctx.at(sm, "", f'header name "{key}" must be lower-case')
            check_string_match(
                ctx, sm, allow_empty_prefix=False, allow_empty=True, allow_star=fname == "without_headers"
            )
    check_port(ctx, mt, "port", mt.port)
    for i, gw in enumerate(mt.gateways or []):
        if not gw:
            ctx.add(mt.line_of("gateways"), f"{mt._path}.gateways[{i}]", "gateway name must not be empty")


def _check_http_route(ctx: Ctx, rule: m.HTTPRoute) -> None:
    for mt in rule.match or []:
        _check_match(ctx, mt)
    has_route = bool(rule.route)
    if rule.delegate is not None:
        ctx.at(rule, "delegate", "delegate is not supported")
    if rule.redirect is not None:
        if has_route:
            ctx.at(rule, "redirect", "HTTP route cannot contain both route and redirect")
        if rule.fault is not None:
            ctx.at(rule, "redirect", "HTTP route cannot contain both fault and redirect")
        if rule.rewrite is not None:
            ctx.at(rule, "redirect", "HTTP route rule cannot contain both rewrite and redirect")
        if rule.direct_response is not None:
            ctx.at(rule, "redirect", "HTTP route cannot contain both redirect and direct response")
    if rule.direct_response is not None:
        if has_route:
            ctx.at(rule, "directResponse", "HTTP route cannot contain both route and direct response")
        if rule.fault is not None:
            ctx.at(rule, "directResponse", "HTTP route cannot contain both fault and direct response")
        if rule.rewrite is not None:
            ctx.at(rule, "directResponse", "HTTP route rule cannot contain both rewrite and direct response")
    if not has_route and rule.redirect is None and rule.direct_response is None and rule.delegate is None:
        ctx.at(rule, "", "HTTP route, redirect or direct response is required")
    if rule.mirror is not None and rule.mirrors is not None:
        ctx.at(rule, "mirrors", "HTTP route cannot contain both mirror and mirrors")

    # destinations and weights
    dests = rule.route or []
    for i, rd in enumerate(dests):
        _check_destination(ctx, rd.destination, rd, "destination")
        if rd.weight is not None and rd.weight < 0:
            ctx.at(rd, "weight", "must be >= 0")
        _check_headers(ctx, rd.headers)
        _check_authority_once(ctx, rd, None, rd.headers)
        del i
    if len(dests) > 1 and all((rd.weight or 0) >= 0 for rd in dests) and sum(rd.weight or 0 for rd in dests) == 0:
        ctx.at(rule, "route", "total destination weight = 0")
    _check_headers(ctx, rule.headers)
    _check_authority_once(ctx, rule, rule.rewrite.authority if rule.rewrite else None, rule.headers)

    rd_ = rule.redirect
    if rd_ is not None:
        if not (rd_.uri or rd_.authority or rd_.scheme or rd_.port or rd_.derive_port or rd_.prefix_rewrite):
            ctx.at(rd_, "", "redirect must specify URI, authority, scheme, or port")
        if rd_.redirect_code is not None and rd_.redirect_code != 0 and not 300 <= rd_.redirect_code <= 399:
            ctx.at(rd_, "redirectCode", f"{rd_.redirect_code} is not a valid redirect code, must be 3xx")
        if rd_.port is not None and rd_.derive_port is not None:
            ctx.at(rd_, "derivePort", "redirect may only contain one of port or derivePort")
        check_port(ctx, rd_, "port", rd_.port)
        if rd_.uri is not None and rd_.prefix_rewrite is not None:
            ctx.at(rd_, "prefixRewrite", "redirect may only contain one of uri or prefixRewrite")
        if rd_.prefix_rewrite is not None:
            blocks = rule.match or []
            if not blocks or any(b.uri is None or b.uri.prefix is None for b in blocks):
                ctx.at(rd_, "prefixRewrite", "prefixRewrite requires every match block to use a uri prefix")
        if rd_.scheme is not None and rd_.scheme not in ("http", "https"):
            ctx.at(rd_, "scheme", f'unsupported scheme "{rd_.scheme}" (expected http or https)')

    dr = rule.direct_response
    if dr is not None:
        if dr.status is None:
            ctx.at(dr, "status", "required field missing")
        elif not 200 <= dr.status <= 599:
            ctx.at(dr, "status", f"status {dr.status} must be in the range 200..599")
        body = dr.body
        if body is not None:
            if body.string is not None and body.bytes is not None:
                ctx.at(body, "", "body may only contain one of string or bytes")
            size = 0
            if body.string is not None:
                size = len(body.string.encode())
            elif body.bytes is not None:
                try:
                    size = len(base64.b64decode(body.bytes, validate=True))
                except (binascii.Error, ValueError):
                    ctx.at(body, "bytes", "body bytes are not valid base64")
            if size > MAX_DIRECT_BODY:
                ctx.at(body, "", f"body is {size} bytes, more than the 1 MiB limit")

    rw = rule.rewrite
    if rw is not None:
        if rw.uri is not None and rw.uri_regex_rewrite is not None:
            ctx.at(rw, "", "rewrite may only contain one of URI or UriRegexRewrite")
        if not rw.uri and rw.uri_regex_rewrite is None and not rw.authority:
            ctx.at(rw, "", "rewrite must specify URI, authority, or uriRegexRewrite")
        rr = rw.uri_regex_rewrite
        if rr is not None:
            if not rr.match:
                ctx.at(rr, "match", "required field missing")
            else:
                check_regex(ctx, rr, "match", rr.match)
            if rr.rewrite is None:
                ctx.at(rr, "rewrite", "required field missing")
            elif not re.fullmatch(r"(?:[^\\]|\\[0-9\\])*", rr.rewrite):
                ctx.at(rr, "rewrite", "only \\0..\\9 and \\\\ escapes are allowed in a regex rewrite")

    rt = rule.retries
    if rt is not None:
        if rt.attempts is not None and rt.attempts < 0:
            ctx.at(rt, "attempts", "attempts cannot be negative")
        elif not rt.attempts and (
            rt.per_try_timeout is not None
            or rt.retry_on is not None
            or rt.retry_remote_localities is not None
            or rt.retry_ignore_previous_hosts is not None
            or rt.backoff is not None
        ):
            ctx.at(rt, "attempts", "http retry policy configured when attempts are set to 0 (disabled)")
        if rt.retry_on is not None:
            for token in rt.retry_on.split(","):
                if token in table.RETRY_ON_NAMES or token in _RETRY_ON_EXTRA:
                    continue
                if token.isdigit() and int(token) in _KNOWN_STATUS:
                    continue
                ctx.at(rt, "retryOn", f'"{token}" is not a valid retryOn condition')

    ft = rule.fault
    if ft is not None:
        if ft.delay is None and ft.abort is None:
            ctx.at(ft, "", "HTTP fault injection must have an abort and/or a delay")
        if ft.delay is not None:
            d = ft.delay
            if d.exponential_delay is not None:
                ctx.at(d, "exponentialDelay", "exponentialDelay not supported yet")
            elif d.fixed_delay is None:
                ctx.at(d, "fixedDelay", "required field missing")
            check_percent(ctx, d.percentage)
            check_int_range(ctx, d, "percent", 0, 100)
        if ft.abort is not None:
            a = ft.abort
            if a.http2_error is not None:
                ctx.at(a, "http2Error", "http2Error not supported yet")
            if a.http_status is not None and a.grpc_status is not None:
                ctx.at(a, "", "abort may only contain one of httpStatus or grpcStatus")
            elif a.http_status is None and a.grpc_status is None and a.http2_error is None:
                ctx.at(a, "", "abort must specify httpStatus or grpcStatus")
            if a.http_status is not None and not 200 <= a.http_status <= 600:
                ctx.at(a, "httpStatus", f"invalid abort http status {a.http_status} (must be 200..600)")
            if a.grpc_status is not None and a.grpc_status not in _GRPC_STATUSES:
                ctx.at(a, "grpcStatus", f'unknown gRPC status "{a.grpc_status}"')
            check_percent(ctx, a.percentage)
            check_int_range(ctx, a, "percent", 0, 100)

    if rule.mirror is not None:
        _check_destination(ctx, rule.mirror, rule, "mirror")
    check_percent(ctx, rule.mirror_percentage)
    check_int_range(ctx, rule, "mirror_percent", 0, 100)
    for mp in rule.mirrors or []:
        _check_destination(ctx, mp.destination, mp, "destination")
        check_percent(ctx, mp.percentage)

    cors = rule.cors_policy
    if cors is not None:
        for sm in cors.allow_origins or []:
            check_string_match(ctx, sm, allow_empty_prefix=False, allow_empty=False)
        for i, method in enumerate(cors.allow_methods or []):
            if method not in _METHODS:
                ctx.add(
                    cors.line_of("allow_methods"),
                    f"{cors._path}.allowMethods[{i}]",
                    f'"{method}" is not a valid HTTP method',
                )
        for fname in ("allow_headers", "expose_headers"):
            for i, hname in enumerate(getattr(cors, fname) or []):
                if not _HEADER_NAME.match(hname):
                    ctx.add(
                        cors.line_of(fname),
                        f"{cors._path}.{_camel(fname)}[{i}]",
                        f'invalid header name "{hname}"',
                    )


def _check_virtual_service(ctx: Ctx, spec: m.VirtualServiceSpec, namespace: str) -> None:
    hosts = spec.hosts or []
    if not hosts:
        ctx.at(spec, "hosts", "virtual service must have at least one host")
    gateways = spec.gateways or []
    mesh_bound = not gateways or "mesh" in gateways
    for i, host in enumerate(hosts):
        if host == "*" and mesh_bound:
            ctx.add(
                spec.line_of("hosts"),
                f"spec.hosts[{i}]",
                "wildcard host * is not allowed for virtual services bound to the mesh gateway",
            )
        elif host != "*" and not _host_ok(host):
            ctx.add(spec.line_of("hosts"), f"spec.hosts[{i}]", f'invalid host "{host}"')
    for i, gw in enumerate(gateways):
        parts = gw.split("/")
        if not gw or len(parts) > 2 or not all(parts) or not all(_DNS1123_SUBDOMAIN.match(p) for p in parts):
            ctx.add(spec.line_of("gateways"), f"spec.gateways[{i}]", f'invalid gateway name "{gw}"')
    if not spec.http and not spec.tcp and not spec.tls:
        ctx.at(spec, "", "http, tcp or tls must be provided in virtual service")
    for which in ("tcp", "tls"):
        if getattr(spec, which):
            ctx.warn(
                spec.line_of(which),
                f"spec.{which}",
                f"{which.upper()} routes are not served by fastproxy (ignored)",
            )
    for rule in spec.http or []:
        _check_http_route(ctx, rule)
    del namespace


def _host_ok(host: str) -> bool:
    rest = host[2:] if host.startswith("*.") else host
    return bool(host) and len(host) <= 255 and _FQDN.match(rest) is not None


# ---------------------------------------------------------------- DestinationRule


def _check_traffic_policy(ctx: Ctx, tp: m.TrafficPolicy | m.PortTrafficPolicy | None) -> None:
    if tp is None:
        return
    lb = tp.load_balancer
    if lb is not None:
        if lb.simple is not None and lb.consistent_hash is not None:
            ctx.at(lb, "", "loadBalancer may only contain one of simple or consistentHash")
        ch = lb.consistent_hash
        if ch is not None:
            keys = [
                k
                for k in ("http_header_name", "http_cookie", "use_source_ip", "http_query_parameter_name")
                if getattr(ch, k) not in (None, False)
            ]
            if len(keys) != 1:
                ctx.at(
                    ch,
                    "",
                    "consistentHash must specify exactly one of httpHeaderName, httpCookie, "
                    "useSourceIp or httpQueryParameterName",
                )
            if ch.http_cookie is not None and not ch.http_cookie.name:
                ctx.at(ch.http_cookie, "name", "required field missing")
            if ch.ring_hash is not None and ch.maglev is not None:
                ctx.at(ch, "", "consistentHash may only contain one of ringHash or maglev")
            if ch.http_header_name is not None and not _HEADER_NAME.match(ch.http_header_name):
                ctx.at(ch, "httpHeaderName", f'invalid header name "{ch.http_header_name}"')
    pool = tp.connection_pool
    if pool is not None:
        if pool.tcp is not None:
            check_int_range(ctx, pool.tcp, "max_connections", 0)
        if pool.http is not None:
            for fname in (
                "http1_max_pending_requests",
                "http2_max_requests",
                "max_requests_per_connection",
                "max_retries",
                "max_concurrent_streams",
            ):
                check_int_range(ctx, pool.http, fname, 0)
    od = tp.outlier_detection
    if od is not None:
        for fname in (
            "consecutive_errors",
            "consecutive_local_origin_failures",
            "consecutive_gateway_errors",
            "consecutive_5xx_errors",
        ):
            check_int_range(ctx, od, fname, 0)
        check_int_range(ctx, od, "max_ejection_percent", 0, 100)
        check_int_range(ctx, od, "min_health_percent", 0, 100)
    if isinstance(tp, m.TrafficPolicy):
        seen: set[int] = set()
        for pls in tp.port_level_settings or []:
            if pls.port is None:
                ctx.at(pls, "port", "port must be specified in portLevelSettings")
                continue
            check_port(ctx, pls.port, "number", pls.port.number, required=True)
            if pls.port.number in seen:
                ctx.at(pls, "port", f"duplicate port {pls.port.number} in portLevelSettings")
            seen.add(pls.port.number or 0)
            _check_traffic_policy(ctx, pls)


def _check_destination_rule(ctx: Ctx, spec: m.DestinationRuleSpec, namespace: str) -> None:
    if not spec.host:
        ctx.at(spec, "host", "host is required")
    elif not _host_ok(spec.host) and spec.host != "*":
        ctx.at(spec, "host", f'invalid host "{spec.host}"')
    _check_traffic_policy(ctx, spec.traffic_policy)
    names: dict[str, int] = {}
    for sub in spec.subsets or []:
        if not sub.name:
            ctx.at(sub, "name", "subset name is required")
        elif not _DNS1123_LABEL.match(sub.name):
            ctx.at(sub, "name", f'invalid subset name "{sub.name}"')
        elif sub.name in names:
            ctx.at(sub, "name", f'duplicate subset name "{sub.name}" (first on line {names[sub.name]})')
        else:
            names[sub.name] = sub.line_of("name")
        _check_traffic_policy(ctx, sub.traffic_policy)
    del namespace


# ---------------------------------------------------------------- ServiceEntry / WorkloadEntry


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _check_workload(ctx: Ctx, we: m.WorkloadEntrySpec, resolution: str | None, port_names: set[str] | None) -> None:
    if not we.address and not we.network:
        ctx.at(we, "address", "address is required")
    elif (
        we.address
        and resolution in ("STATIC", None)
        and port_names is not None
        and not _is_ip(we.address)
        and not we.address.startswith("unix://")
    ):
        ctx.at(we, "address", f'endpoint address "{we.address}" is not a valid IP address (resolution STATIC)')
    for pname, pnum in (we.ports or {}).items():
        if not 1 <= pnum <= 65535:
            ctx.add(
                we.line_of("ports"),
                f"{we._path}.ports[{pname}]",
                f"port number {pnum} must be in the range 1..65535",
            )
        if port_names is not None and pname not in port_names:
            ctx.add(
                we.line_of("ports"),
                f"{we._path}.ports[{pname}]",
                f'endpoint port "{pname}" is not defined by the service entry',
            )
    check_int_range(ctx, we, "weight", 0)


def _check_service_entry(ctx: Ctx, spec: m.ServiceEntrySpec, namespace: str) -> None:
    hosts = spec.hosts or []
    if not hosts:
        ctx.at(spec, "hosts", "service entry must have at least one host")
    for i, host in enumerate(hosts):
        if host == "*" or not _host_ok(host):
            ctx.add(spec.line_of("hosts"), f"spec.hosts[{i}]", f'invalid host "{host}"')
    for i, addr in enumerate(spec.addresses or []):
        try:
            ipaddress.ip_network(addr, strict=False)
        except ValueError:
            ctx.add(spec.line_of("addresses"), f"spec.addresses[{i}]", f'invalid address "{addr}"')
    ports = spec.ports or []
    if not ports:
        ctx.at(spec, "ports", "service entry must have at least one port")
    numbers: set[int] = set()
    names: set[str] = set()
    for p in ports:
        check_port(ctx, p, "number", p.number, required=True)
        check_port(ctx, p, "targetPort", p.target_port)
        if p.number in numbers:
            ctx.at(p, "number", f"duplicate port number {p.number}")
        if p.name:
            if p.name in names:
                ctx.at(p, "name", f'duplicate port name "{p.name}"')
            names.add(p.name)
        numbers.add(p.number or 0)
    if spec.endpoints and spec.workload_selector is not None:
        ctx.at(spec, "workloadSelector", "only one of endpoints or workloadSelector may be set")
    if spec.resolution == "NONE" and spec.endpoints:
        ctx.at(spec, "endpoints", "no endpoints should be provided for resolution type NONE")
    if spec.resolution in ("STATIC", None) and spec.endpoints is not None and any(h.startswith("*") for h in hosts):
        pass  # allowed: wildcard hosts with fixed endpoints
    for we in spec.endpoints or []:
        _check_workload(ctx, we, spec.resolution or "NONE", names)
    del namespace


def _check_workload_entry(ctx: Ctx, spec: m.WorkloadEntrySpec, namespace: str) -> None:
    _check_workload(ctx, spec, None, None)
    del namespace


# ---------------------------------------------------------------- Gateway


def _check_gateway(ctx: Ctx, spec: m.GatewaySpec, namespace: str) -> None:
    if not spec.servers:
        ctx.at(spec, "servers", "gateway must have at least one server")
    for srv in spec.servers or []:
        if srv.port is None:
            ctx.at(srv, "port", "port is required")
        else:
            check_port(ctx, srv.port, "number", srv.port.number, required=True)
            check_port(ctx, srv.port, "targetPort", srv.port.target_port)
            if not srv.port.protocol:
                ctx.at(srv.port, "protocol", "protocol is required")
        if not srv.hosts:
            ctx.at(srv, "hosts", "server config must contain at least one host")
        for i, host in enumerate(srv.hosts or []):
            ns, _, name = host.rpartition("/")
            if (
                (ns and ns not in ("*", ".") and not _DNS1123_LABEL.match(ns))
                or host.count("/") > 1
                or (name != "*" and not _host_ok(name))
            ):
                ctx.add(srv.line_of("hosts"), f"{srv._path}.hosts[{i}]", f'invalid host "{host}"')
        if srv.bind is not None and not _is_ip(srv.bind) and not srv.bind.startswith("unix://"):
            ctx.at(srv, "bind", f'bind "{srv.bind}" must be an IP address')
    del namespace


_CHECKS = {
    "VirtualService": _check_virtual_service,
    "DestinationRule": _check_destination_rule,
    "ServiceEntry": _check_service_entry,
    "WorkloadEntry": _check_workload_entry,
    "Gateway": _check_gateway,
}
