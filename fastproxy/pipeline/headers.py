"""Header handling on the request path: hop-by-hop removal, compiled header
operations, and the heads we write, as pure functions over header lists.

Header lists are lists of (lower-case name, value) byte pairs, as the codec
produces them.  Compiled with Cython in pure-Python mode (headers.pxd); this
file is also its own pure twin.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastproxy.table import HeaderOps

# RFC 9110 7.6.1 plus the legacy ones Envoy also strips.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

# Never copied from a client request: hop-by-hop, plus what we re-frame or
# re-derive (Host from the authority, Content-Length from the framing, Expect
# because we answer 100-continue ourselves).
REQUEST_SKIP = HOP_BY_HOP | {b"host", b"content-length", b"expect"}
# Gateways treat clients as external: they may not steer Envoy's router
# through x-envoy-* headers (retry policy, timeouts, ...).
RESPONSE_SKIP = HOP_BY_HOP | {b"content-length", b"server"}


def connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names a Connection header nominates as hop-by-hop."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            for token in value.split(b","):
                token = token.strip().lower()
                if token:
                    tokens.add(token)
    return frozenset(tokens)


def apply_ops(headers: list[tuple[bytes, bytes]], ops: tuple[HeaderOps, ...]) -> list[tuple[bytes, bytes]]:
    """Run Envoy header parsers in order: each removes, then sets, then adds."""
    for op in ops:
        if op.remove:
            drop = op.remove
            headers = [h for h in headers if h[0] not in drop]
        for name, value in op.set:
            headers = [h for h in headers if h[0] != name]
            headers.append((name, value))
        if op.add:
            headers.extend(op.add)
    return headers


def render(headers: Iterable[tuple[bytes, bytes]], out: list[bytes]) -> None:
    """Append `name: value\\r\\n` lines to `out` (joined once by the caller)."""
    for name, value in headers:
        out.append(name)
        out.append(b": ")
        out.append(value)
        out.append(b"\r\n")


def has_header(headers: list[tuple[bytes, bytes]], name: bytes) -> bool:
    return any(h[0] == name for h in headers)


def get_header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for n, v in headers:
        if n == name:
            return v
    return None
