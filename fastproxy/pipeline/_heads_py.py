"""Pure twin of fastproxy/pipeline/_heads.pyx: header blocks of the heads we write.

API and behaviour are documented in fastproxy/pipeline/heads.py.
"""

from __future__ import annotations

import random

from fastproxy.codec.messages import RequestHead
from fastproxy.pipeline.headers import RESPONSE_SKIP

# How each client request header is treated on the way upstream.
SKIP = 1  # hop-by-hop or re-derived
CONNECTION = 2
XFP = 3
XFF = 4
REQUEST_ID = 5
UPGRADE = 6
HEADER_ACTION: dict[bytes, int] = {
    b"connection": CONNECTION,
    b"keep-alive": SKIP,
    b"proxy-connection": SKIP,
    b"te": SKIP,
    b"trailer": SKIP,
    b"transfer-encoding": SKIP,
    b"upgrade": UPGRADE,
    b"host": SKIP,
    b"content-length": SKIP,
    b"expect": SKIP,
    b"x-envoy-attempt-count": SKIP,
    # Router control headers: consumed (or ignored) by the proxy, never forwarded.
    b"x-envoy-retry-on": SKIP,
    b"x-envoy-retry-grpc-on": SKIP,
    b"x-envoy-max-retries": SKIP,
    b"x-envoy-retriable-status-codes": SKIP,
    b"x-envoy-retriable-header-names": SKIP,
    b"x-envoy-upstream-rq-timeout-ms": SKIP,
    b"x-envoy-upstream-rq-per-try-timeout-ms": SKIP,
    b"x-envoy-hedge-on-per-try-timeout": SKIP,
    b"x-forwarded-proto": XFP,
    b"x-forwarded-for": XFF,
    b"x-request-id": REQUEST_ID,
}

HAS_XFP = 1
HAS_REQUEST_ID = 2


def request_kept(
    headers: list[tuple[bytes, bytes]], gateway: bool
) -> tuple[list[tuple[bytes, bytes]], int, bytes | None, bytes | None, bytes | None]:
    kept = []
    flags = 0
    xff = conn = upgrade = None
    action_of = HEADER_ACTION.get
    for h in headers:
        action = action_of(h[0])
        if action is None:
            if gateway and h[0].startswith(b"x-envoy-"):
                continue
        elif action == SKIP:
            continue
        elif action == CONNECTION:
            conn = h[1] if conn is None else conn + b"," + h[1]
            continue
        elif action == XFP:
            if gateway:
                continue
            flags |= HAS_XFP
        elif action == REQUEST_ID:
            flags |= HAS_REQUEST_ID
        elif action == XFF:
            if gateway:
                xff = h[1] if xff is None else xff + b"," + h[1]
                continue
        else:  # upgrade
            upgrade = h[1]
            continue
        kept.append(h)
    return kept, flags, xff, conn, upgrade


# Every upstream head ends with its attempt's count; a first attempt's is this.
FIRST_ATTEMPT = b"x-envoy-attempt-count: 1\r\n\r\n"


# The x-forwarded-proto line a head gets when the client sent none that is kept.
XFP_LINE = b"x-forwarded-proto: http\r\n"


def upstream_head(
    method: bytes,
    path: bytes,
    authority: bytes,
    block: bytes,
    extra: list[tuple[bytes, bytes]],
    framing: bytes,
    xfp: bool = False,
    request_id: bytes | None = None,
) -> bytes:
    out = [method, b" ", path, b" HTTP/1.1\r\nhost: ", authority, b"\r\n", block]
    for name, value in extra:
        out += (name, b": ", value, b"\r\n")
    if xfp:
        out.append(XFP_LINE)
    if request_id is not None:
        out += (b"x-request-id: ", request_id, b"\r\n")
    out += (framing, FIRST_ATTEMPT)
    return b"".join(out)


def response_head(
    status_line: bytes,
    block: bytes,
    service: bytes | None,
    tail: bytes | None,
    date: bytes | None,
    server: bytes,
    framing: bytes | None,
    connection: bytes | None,
) -> bytes:
    pieces = (status_line, block, service, tail, date, server, framing, connection, b"\r\n")
    return b"".join(p for p in pieces if p is not None)


def request_block_of(head: RequestHead, gateway: bool) -> tuple[bytes, int, bytes | None, bytes | None, bytes | None]:
    return request_block(head.headers, gateway)


def request_block(
    headers: list[tuple[bytes, bytes]], gateway: bool
) -> tuple[bytes, int, bytes | None, bytes | None, bytes | None]:
    kept, flags, xff, conn, upgrade = request_kept(headers, gateway)
    return b"".join(b"%b: %b\r\n" % h for h in kept), flags, xff, conn, upgrade


def response_block(headers: list[tuple[bytes, bytes]], drop: frozenset[bytes]) -> tuple[bytes, bool]:
    block = []
    has_date = False
    for h in headers:
        name = h[0]
        if name in RESPONSE_SKIP:
            continue
        if name == b"date":
            has_date = True
        if name in drop:
            continue
        block += (name, b": ", h[1], b"\r\n")
    return b"".join(block), has_date


class RequestIds:
    """x-request-id values: version-4 UUID texts from `rng` (a random.Random)."""

    __slots__ = ("_rng",)

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def next(self) -> bytes:
        return request_id(self._rng.getrandbits(128))


def request_id(bits: int) -> bytes:
    # A UUID version 4 (RFC 4122) from 128 random bits.
    bits = (bits & ~(0xF000 << 64)) | (0x4000 << 64)
    bits = (bits & ~(0xC000 << 48)) | (0x8000 << 48)
    h = b"%032x" % bits
    return b"-".join((h[:8], h[8:12], h[12:16], h[16:20], h[20:]))
