"""Pure-Python twin of fastproxy._match: same API, same results, no compiler needed.

The compiled module is the one that runs in production; this one is the
reference the property tests hold it to, and the fallback when the extension
could not be built.  Semantics: traffic-semantics.md 2.4 / 2.5.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fastproxy import table
from fastproxy.codec.messages import RequestHead

_EXACT = table.EXACT
_PREFIX = table.PREFIX
_REGEX = table.REGEX
_PRESENT = table.PRESENT

# Pseudo-headers usable as `headers` keys (Envoy matches them like headers).
_PSEUDO = {b":method": 0, b":path": 1, b":authority": 2, b":scheme": 3}

_ASCII_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")


class _Str:
    """One StringMatch, flattened: kind, value, and the bound fullmatch of its regex."""

    __slots__ = ("kind", "value", "fullmatch")

    def __init__(self, sm: table.StringMatch, lower: bool = False) -> None:
        self.kind = sm.kind
        value = bytes(sm.value)
        # The compiler already lower-cases ignoreUriCase values; doing it again is free here.
        self.value = value.translate(_ASCII_LOWER) if lower else value
        self.fullmatch: Callable[..., Any] | None = (
            sm.regex.fullmatch if sm.kind == _REGEX and sm.regex is not None else None
        )

    def test(self, v: bytes) -> bool:
        kind = self.kind
        if kind == _EXACT:
            return v == self.value
        if kind == _PREFIX:
            return v.startswith(self.value)
        if kind == _REGEX:
            return self.fullmatch is not None and self.fullmatch(v) is not None
        return kind == _PRESENT


class _Spec:
    __slots__ = (
        "port",
        "method",
        "scheme",
        "authority",
        "uri",
        "icase",
        "headers",
        "without",
        "query",
    )

    def __init__(self, spec: table.MatchSpec) -> None:
        self.port = spec.port
        self.method = _Str(spec.method) if spec.method is not None else None
        self.scheme = _Str(spec.scheme) if spec.scheme is not None else None
        self.authority = _Str(spec.authority) if spec.authority is not None else None
        self.icase = bool(spec.ignore_uri_case) and spec.uri is not None and spec.uri.kind != _REGEX
        self.uri = _Str(spec.uri, lower=self.icase) if spec.uri is not None else None
        self.headers = tuple((bytes(n).lower(), _Str(sm)) for n, sm in spec.headers)
        self.without = tuple((bytes(n).lower(), _Str(sm)) for n, sm in spec.without_headers)
        self.query = tuple((bytes(k), _Str(sm)) for k, sm in spec.query_params)


def _header_values(names: frozenset[bytes], headers: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """One pass over the request headers, keeping only the names some spec asks for."""
    found: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        if name in names:
            lst = found.get(name)
            if lst is None:
                found[name] = [value]
            else:
                lst.append(value)
    # Envoy joins a repeated header's values with "," before matching.
    return {n: (v[0] if len(v) == 1 else b",".join(v)) for n, v in found.items()}


def _parse_query(query: bytes) -> dict[bytes, bytes]:
    params: dict[bytes, bytes] = {}
    for part in query.split(b"&"):
        if not part:
            continue
        key, _, value = part.partition(b"=")
        # First occurrence wins; values are matched as sent (not percent-decoded).
        if key not in params:
            params[key] = value
    return params


class RouteMatcher:
    """First-match route selection over a vhost's MatchSpecs."""

    __slots__ = ("_specs", "_names")

    def __init__(self, specs: Sequence[table.MatchSpec]) -> None:
        self._specs = tuple(_Spec(s) for s in specs)
        names: set[bytes] = set()
        for s in self._specs:
            for n, _ in s.headers + s.without:
                if n not in _PSEUDO:
                    names.add(n)
        self._names = frozenset(names)

    def match(
        self,
        method: bytes,
        path: bytes,
        authority: bytes,
        scheme: bytes,
        headers: list[tuple[bytes, bytes]],
        port: int,
    ) -> int:
        # Split off "?query" and "#fragment" once; the URI condition never sees them.
        q = path.find(b"?")
        h = path.find(b"#")
        if q < 0 or (0 <= h < q):
            q = -1
            upath = path if h < 0 else path[:h]
        else:
            upath = path[:q]
        upath_lower: bytes | None = None
        hvals: dict[bytes, bytes] | None = None
        qvals: dict[bytes, bytes] | None = None

        for index, s in enumerate(self._specs):
            if s.port and s.port != port:
                continue
            if s.method is not None and not s.method.test(method):
                continue
            if s.scheme is not None and not s.scheme.test(scheme):
                continue
            if s.authority is not None and not s.authority.test(authority):
                continue
            uri = s.uri
            if uri is not None:
                if s.icase:
                    if upath_lower is None:
                        upath_lower = upath.translate(_ASCII_LOWER)
                    if not uri.test(upath_lower):
                        continue
                elif not uri.test(upath):
                    continue
            if s.headers or s.without:
                if hvals is None:
                    if isinstance(headers, RequestHead):
                        headers = headers.headers  # the twin reads the list
                    hvals = _header_values(self._names, headers)
                    hvals[b":method"] = method
                    hvals[b":path"] = path
                    hvals[b":authority"] = authority
                    hvals[b":scheme"] = scheme
                if not _headers_ok(s, hvals):
                    continue
            if s.query:
                if qvals is None:
                    if q < 0:
                        qvals = {}
                    else:
                        end = path.find(b"#", q)
                        qvals = _parse_query(path[q + 1 :] if end < 0 else path[q + 1 : end])
                if not _query_ok(s, qvals):
                    continue
            return index
        return -1


def _headers_ok(s: _Spec, hvals: dict[bytes, bytes]) -> bool:
    for name, sm in s.headers:
        v = hvals.get(name)
        # An absent header fails every kind, presence included.
        if v is None or not sm.test(v):
            return False
    for name, sm in s.without:
        v = hvals.get(name)
        if sm.kind == _PRESENT:
            if v is not None:
                return False
        # Envoy's treat_missing_header_as_empty: absent is matched as "".
        elif sm.test(b"" if v is None else v):
            return False
    return True


def _query_ok(s: _Spec, qvals: dict[bytes, bytes]) -> bool:
    for key, sm in s.query:
        v = qvals.get(key)
        if v is None or not sm.test(v):
            return False
    return True


def pick(cumulative: tuple[int, ...], rnd: int) -> int:
    # cumulative == (30, 100) for weights 30/70; a weight of 0 is never chosen.
    if len(cumulative) == 1:
        return 0
    return bisect_right(cumulative, rnd % cumulative[-1])


__all__ = ["RouteMatcher", "pick"]
