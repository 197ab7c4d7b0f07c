"""Response header operations on the upstream's block: dropping Destination.response_drop from
the block and running the ops on the headers behind it gives what running the ops on the whole
list gives, for any sequence of removes, sets and adds (route and destination levels alike)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fastproxy import table
from fastproxy.pipeline import heads
from fastproxy.pipeline.headers import RESPONSE_SKIP, apply_ops

NAMES = [b"date", b"x-a", b"x-b", b"content-type", b"x-envoy-upstream-service-time", b"set-cookie", b"server"]
name = st.sampled_from(NAMES)
pair = st.tuples(name, st.sampled_from([b"1", b"2", b"v"]))
header_lists = st.lists(pair, max_size=8)
ops = st.lists(
    st.builds(
        table.HeaderOps,
        remove=st.lists(name, max_size=2).map(tuple),
        set=st.lists(pair, max_size=2).map(tuple),
        add=st.lists(pair, max_size=2).map(tuple),
    ),
    max_size=3,
).map(tuple)


@settings(max_examples=500, deadline=None)
@given(header_lists, header_lists, ops)
def test_dropping_from_the_block_then_running_ops_on_the_rest_equals_running_them_on_all(
    upstream: list[tuple[bytes, bytes]], own: list[tuple[bytes, bytes]], response_ops: tuple[table.HeaderOps, ...]
) -> None:
    # `own`: what the proxy adds behind the upstream's headers (service time, CORS, cookies).
    dest = table.Destination("c", None, response_ops=response_ops)
    kept = [h for h in upstream if h[0] not in RESPONSE_SKIP]
    whole = apply_ops(kept + own, response_ops)
    block, _ = heads.response_block(upstream, dest.response_drop)
    behind = apply_ops(list(own), response_ops)
    assert block + b"".join(b"%b: %b\r\n" % h for h in behind) == b"".join(b"%b: %b\r\n" % h for h in whole)


@settings(max_examples=500, deadline=None)
@given(header_lists, st.booleans(), ops)
def test_the_pre_rendered_tail_equals_running_the_ops_per_response(
    upstream: list[tuple[bytes, bytes]], service_time: bool, response_ops: tuple[table.HeaderOps, ...]
) -> None:
    # Destination.response_tail stands in for the ops whenever it is not None.
    dest = table.Destination("c", None, response_ops=response_ops)
    own = [(b"x-envoy-upstream-service-time", b"3")] if service_time else []
    kept = [h for h in upstream if h[0] not in RESPONSE_SKIP]
    whole = b"".join(b"%b: %b\r\n" % h for h in apply_ops(kept + own, response_ops))
    if dest.response_tail is None:
        assert b"x-envoy-upstream-service-time" in dest.response_drop
        return
    block, _ = heads.response_block(upstream, dest.response_drop)
    assert block + b"".join(b"%b: %b\r\n" % h for h in own) + dest.response_tail == whole
