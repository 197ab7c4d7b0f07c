"""Header blocks of the heads we write: the compiled module or its pure twin, chosen once.

API (identical in fastproxy.pipeline._heads and fastproxy.pipeline._heads_py):

    request_block(headers, gateway) -> (block, flags, xff, connection, upgrade)
        `block`: the `name: value\\r\\n` lines of the client headers that go
        upstream as they are (hop-by-hop, re-derived and router-control
        headers left out; on a gateway also x-envoy-*, x-forwarded-proto and
        x-forwarded-for).  `flags`: HAS_XFP / HAS_REQUEST_ID when the client
        sent one that is kept.  `xff`: on a gateway, the client's
        X-Forwarded-For values joined with ","; `connection`: all Connection
        values joined with ","; `upgrade`: the last Upgrade value (None when absent).
    request_block_of(head, gateway)
        request_block of a RequestHead's headers; the compiled module renders
        it from the head's bytes when the codec has not split the list.
    request_kept(headers, gateway) -> (kept, flags, xff, connection, upgrade)
        the same, with the kept headers as a list of (name, value) pairs, for
        header operations that work on the list.
    upstream_head(method, path, authority, block, extra, framing, xfp=False, request_id=None) -> bytes
        the head of an upstream request's first attempt, in one bytes object:
        `method path HTTP/1.1`, `host: authority`, `block`, the (name, value)
        pairs of `extra` as lines, XFP_LINE if `xfp`, `x-request-id:
        request_id` unless it is None, `framing` (the content-length or
        transfer-encoding line, or b""), then FIRST_ATTEMPT
        (x-envoy-attempt-count: 1 and the blank line).  The two fixed lines
        are parameters so the common head needs no `extra` list.
    response_head(status_line, block, service, tail, date, server, framing, connection) -> bytes
        a response head from its pieces in that order (None: absent) and the
        blank line, in one bytes object.
    response_block(headers, drop) -> (block, has_date)
        the upstream response headers the client gets as they are (hop-by-hop,
        content-length, server and the names in the frozenset `drop` left out),
        and whether the upstream sent a Date (dropped or not).
    request_id(bits) -> bytes
        a version-4 UUID from 128 random bits.
    RequestIds(rng).next() -> bytes
        request ids one after another, from a generator seeded from `rng`
        (compiled: xoshiro256**; twin: rng.getrandbits(128) each time).
"""

from __future__ import annotations

import os

from fastproxy.pipeline._heads_py import FIRST_ATTEMPT, HAS_REQUEST_ID, HAS_XFP, HEADER_ACTION

IMPLEMENTATION = "python"

if not os.environ.get("FASTPROXY_NO_EXTENSIONS"):
    try:
        from fastproxy.pipeline._heads import (
            RequestIds,
            request_block,
            request_block_of,
            request_id,
            request_kept,
            response_block,
            response_head,
            upstream_head,
        )

        IMPLEMENTATION = "cython"
    except ImportError:
        if os.environ.get("FASTPROXY_REQUIRE_EXTENSIONS"):
            raise

if IMPLEMENTATION == "python":
    from fastproxy.pipeline._heads_py import (  # noqa: F811
        RequestIds,
        request_block,
        request_block_of,
        request_id,
        request_kept,
        response_block,
        response_head,
        upstream_head,
    )

__all__ = [
    "FIRST_ATTEMPT",
    "HAS_REQUEST_ID",
    "HAS_XFP",
    "HEADER_ACTION",
    "IMPLEMENTATION",
    "RequestIds",
    "request_block",
    "request_block_of",
    "request_id",
    "request_kept",
    "response_block",
    "response_head",
    "upstream_head",
]
