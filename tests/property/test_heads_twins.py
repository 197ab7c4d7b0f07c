"""The compiled header-block builders and their pure twin give the same bytes."""

from __future__ import annotations

import random
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastproxy.pipeline import _heads_py

# Not built, or the heads run as their pure twin (the compiled module reads their C fields:
# it refuses them with an ImportError, or Cython does first, on a type's size: a ValueError, or
# a RuntimeWarning, which this suite turns into an error).
try:
    from fastproxy.pipeline import _heads as compiled
except (ImportError, ValueError, RuntimeWarning) as exc:
    pytest.skip(f"compiled module not loadable here: {exc}", allow_module_level=True)

# Names the builders treat specially, mixed with ordinary ones.
NAMES = [
    b"host", b"connection", b"keep-alive", b"upgrade", b"te", b"transfer-encoding", b"content-length",
    b"x-forwarded-for", b"x-forwarded-proto", b"x-request-id", b"x-envoy-retry-on", b"x-envoy-custom",
    b"x-envoy-", b"date", b"server", b"user-agent", b"accept", b"x",
]  # fmt: skip
header_lists = st.lists(
    st.tuples(st.sampled_from(NAMES) | st.binary(min_size=1, max_size=12), st.binary(max_size=20)), max_size=140
)


@settings(max_examples=300, deadline=None)
@given(header_lists, st.booleans())
def test_request_block_twins_agree(headers: list[tuple[bytes, bytes]], gateway: bool) -> None:
    assert compiled.request_block(headers, gateway) == _heads_py.request_block(headers, gateway)


@settings(max_examples=300, deadline=None)
@given(header_lists, st.booleans())
def test_request_kept_twins_agree_and_render_to_the_block(headers: list[tuple[bytes, bytes]], gateway: bool) -> None:
    kept = compiled.request_kept(headers, gateway)
    assert kept == _heads_py.request_kept(headers, gateway)
    block = b"".join(b"%b: %b\r\n" % h for h in kept[0])
    assert (block, *kept[1:]) == compiled.request_block(headers, gateway)


@settings(max_examples=300, deadline=None)
@given(header_lists, st.frozensets(st.sampled_from(NAMES), max_size=4))
def test_response_block_twins_agree(headers: list[tuple[bytes, bytes]], drop: frozenset[bytes]) -> None:
    assert compiled.response_block(headers, drop) == _heads_py.response_block(headers, drop)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**128 - 1))
def test_request_id_twins_agree_and_are_uuid4(bits: int) -> None:
    rid = compiled.request_id(bits)
    assert rid == _heads_py.request_id(bits)
    parsed = uuid.UUID(rid.decode())
    assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_gateway_block_drops_what_clients_may_not_steer() -> None:
    headers = [
        (b"host", b"h"), (b"x-envoy-retry-on", b"5xx"), (b"x-envoy-foo", b"1"), (b"x-forwarded-for", b"1.1.1.1"),
        (b"x-forwarded-proto", b"https"), (b"connection", b"keep-alive"), (b"accept", b"*/*"),
    ]  # fmt: skip
    for impl in (compiled, _heads_py):
        assert impl.request_block(headers, True) == (b"accept: */*\r\n", 0, b"1.1.1.1", b"keep-alive", None)
        block, flags, xff, conn, upgrade = impl.request_block(headers, False)
        assert block == b"x-envoy-foo: 1\r\nx-forwarded-for: 1.1.1.1\r\nx-forwarded-proto: https\r\naccept: */*\r\n"
        assert flags == 1 and xff is None


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([b"GET", b"POST", b"M-SEARCH"]),
    st.binary(min_size=1, max_size=40),
    st.binary(max_size=20),
    st.binary(max_size=300),
    header_lists,
    st.sampled_from([b"", b"content-length: 12\r\n", b"transfer-encoding: chunked\r\n"]),
    st.booleans(),
    st.none() | st.binary(max_size=40),
)
def test_upstream_head_twins_agree(
    method: bytes,
    path: bytes,
    authority: bytes,
    block: bytes,
    extra: list[tuple[bytes, bytes]],
    framing: bytes,
    xfp: bool,
    request_id: bytes | None,
) -> None:
    head = compiled.upstream_head(method, path, authority, block, extra, framing, xfp, request_id)
    assert head == _heads_py.upstream_head(method, path, authority, block, extra, framing, xfp, request_id)
    lines = b"".join(b"%b: %b\r\n" % h for h in extra)
    if xfp:
        lines += b"x-forwarded-proto: http\r\n"
    if request_id is not None:
        lines += b"x-request-id: %b\r\n" % request_id
    assert head == b"%b %b HTTP/1.1\r\nhost: %b\r\n%b%b%b" % (method, path, authority, block, lines, framing) + (
        b"x-envoy-attempt-count: 1\r\n\r\n"
    )
    if not xfp and request_id is None:
        assert head == compiled.upstream_head(method, path, authority, block, extra, framing)


optional_line = st.none() | st.binary(max_size=30)


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(
        st.binary(min_size=1, max_size=20),
        st.binary(max_size=200),
        optional_line,
        optional_line,
        optional_line,
        st.binary(max_size=20),
        optional_line,
        optional_line,
    )
)
def test_response_head_twins_agree(pieces: tuple[bytes | None, ...]) -> None:
    head = compiled.response_head(*pieces)
    assert head == _heads_py.response_head(*pieces)
    assert head == b"".join(p for p in pieces if p is not None) + b"\r\n"


@pytest.mark.parametrize("impl", [compiled, _heads_py], ids=["compiled", "pure"])
def test_request_ids_are_distinct_uuid4_texts_and_follow_the_seed(impl: object) -> None:
    ids = impl.RequestIds(random.Random(7))
    seen = [ids.next() for _ in range(20_000)]
    assert len(set(seen)) == len(seen)
    for rid in seen[:500]:
        parsed = uuid.UUID(rid.decode())
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed).encode() == rid
    # Seeded from the worker's generator: the same seed, the same ids; another seed, others.
    assert impl.RequestIds(random.Random(7)).next() == seen[0]
    assert impl.RequestIds(random.Random(8)).next() not in seen
