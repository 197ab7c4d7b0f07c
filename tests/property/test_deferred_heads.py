"""Heads whose header list the compiled codec defers give the pipeline the same bytes.

The compiled codec does not build a request's or a response's header list;
the pipeline renders the forwarded blocks from the head's bytes instead
(`request_block_of`, `ResponseHead.block`), and `headers` splits the list on
first use.  Each of those must equal what the h11 oracle's list gives
through the pure functions.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import compiled_codec

from fastproxy import _match_py
from fastproxy.codec import reference
from fastproxy.pipeline import _heads_py, heads
from fastproxy.pipeline._heads_py import HEADER_ACTION
from fastproxy.pipeline.headers import RESPONSE_SKIP
from fastproxy.table import EXACT, PRESENT, MatchSpec, StringMatch

compiled = compiled_codec()
if compiled is not None:
    from fastproxy import _match
pytestmark = pytest.mark.skipif(compiled is None, reason="the compiled codec is not loaded")

# Every name the blocks treat specially, in several spellings, plus ordinary ones.
SPECIAL = sorted(HEADER_ACTION) + sorted(RESPONSE_SKIP) + [b"date", b"x-envoy-custom", b"x-envoy-"]
ORDINARY = [b"accept", b"user-agent", b"x-trace", b"cookie", b"content-type", b"x-b3-traceid", b"x"]
TOKEN = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!#", min_size=1, max_size=12)
VALUE = st.text(" \tabcdefghijklmnopqrstuvwxyz0123456789,;=/.:-", max_size=30).map(str.encode)


@st.composite
def names(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(SPECIAL + ORDINARY) | TOKEN.map(str.encode))
    case = draw(st.sampled_from(["lower", "upper", "title"]))
    text = name.decode()
    return (text.upper() if case == "upper" else text.title() if case == "title" else text).encode()


@st.composite
def header_lines(draw: st.DrawFn) -> list[bytes]:
    lines = []
    for name, value in draw(st.lists(st.tuples(names(), VALUE), max_size=30)):
        low = name.lower()
        if low in (b"host", b"content-length", b"transfer-encoding", b"expect", b"upgrade", b"te", b"connection"):
            continue  # framing headers: covered by the codec differential, they change what a head is
        lines.append(name + draw(st.sampled_from([b":", b": ", b":\t", b":  "])) + value)
    if draw(st.booleans()):
        lines.append(b"X-Big: " + b"b" * draw(st.integers(2000, 6000)))  # past the stack buffers
    return lines


class Sink:
    def __init__(self) -> None:
        self.heads: list[object] = []

    def on_request_head(self, head: object) -> None:
        self.heads.append(head)

    def on_response_head(self, head: object) -> None:
        self.heads.append(head)

    def on_request_body(self, data: bytes) -> None: ...
    def on_response_body(self, data: bytes) -> None: ...
    def on_request_end(self) -> None: ...
    def on_response_end(self) -> None: ...


def parse_request(module: object, data: bytes) -> object:
    sink = Sink()
    module.RequestParser(sink, max_head_bytes=1 << 16).feed(data)
    return sink.heads[0]


def parse_response(module: object, data: bytes) -> object:
    sink = Sink()
    module.ResponseParser(sink, forward_skip=RESPONSE_SKIP).feed(data)
    return sink.heads[0]


@settings(max_examples=300, deadline=None)
@given(header_lines(), st.booleans())
def test_request_block_from_the_head_bytes(lines: list[bytes], gateway: bool) -> None:
    data = b"GET /p HTTP/1.1\r\nHost: h\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"
    oracle = parse_request(reference, data).headers
    head = parse_request(compiled, data)
    # Rendered from the bytes, before anything asked for the list ...
    assert heads.request_block_of(head, gateway) == _heads_py.request_block(oracle, gateway)
    # ... and the list, split on first use, is the oracle's; from then on
    # request_block_of renders from it, to the same bytes.
    assert head.headers == oracle
    assert heads.request_block_of(head, gateway) == _heads_py.request_block(oracle, gateway)


@pytest.mark.parametrize(
    ("lines", "limit"),
    [
        # Past the 32 lines whose places the codec records: the rest are split again.
        ([b"X-N%d: v%d" % (i, i) for i in range(40)] + [b"X-Forwarded-Proto: https", b"Connection: x-n3"], 1 << 16),
        # Past the 65,535 bytes the recorded offsets can address.
        ([b"Accept: */*", b"X-Big: " + b"b" * 70_000, b"X-Request-Id: r", b"X-Envoy-Foo: 1"], 1 << 17),
    ],
    ids=["40-lines", "70k-head"],
)
def test_request_block_beyond_the_recorded_lines(lines: list[bytes], limit: int) -> None:
    data = b"GET /p HTTP/1.1\r\nHost: h\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"
    parsed = []
    for module in (reference, compiled):
        sink = Sink()
        module.RequestParser(sink, max_head_bytes=limit).feed(data)
        parsed.append(sink.heads[0])
    oracle = parsed[0].headers
    for gateway in (False, True):
        assert heads.request_block_of(parsed[1], gateway) == _heads_py.request_block(oracle, gateway)


@settings(max_examples=300, deadline=None)
@given(header_lines(), st.sampled_from([b"", b"Content-Length: 0\r\n", b"Connection: keep-alive\r\nServer: s\r\n"]))
def test_response_block_from_the_head_bytes(lines: list[bytes], framing: bytes) -> None:
    data = b"HTTP/1.1 204 No Content\r\n" + framing + b"".join(line + b"\r\n" for line in lines) + b"\r\n"
    oracle = parse_response(reference, data).headers
    head = parse_response(compiled, data)
    assert head.block is not None  # the compiled codec renders it when told what to skip
    assert (head.block, head.has_date) == _heads_py.response_block(oracle, frozenset())
    assert head.headers == oracle


def test_a_parser_not_told_what_to_skip_renders_nothing() -> None:
    sink = Sink()
    compiled.ResponseParser(sink).feed(b"HTTP/1.1 204 No Content\r\nServer: s\r\nX-A: 1\r\n\r\n")
    head = sink.heads[0]
    assert head.block is None
    assert head.headers == [(b"server", b"s"), (b"x-a", b"1")]


def test_skipped_names_outside_the_shared_table_are_skipped_too() -> None:
    sink = Sink()
    skip = RESPONSE_SKIP | {b"x-internal-only"}
    compiled.ResponseParser(sink, forward_skip=skip).feed(
        b"HTTP/1.1 204 No Content\r\nX-Internal-Only: 1\r\nServer: s\r\nX-Kept: 2\r\n\r\n"
    )
    assert sink.heads[0].block == b"x-kept: 2\r\n"


def joined(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    values = [v for n, v in headers if n == name]
    return b",".join(values) if values else None


@settings(max_examples=300, deadline=None)
@given(header_lines(), st.lists(names(), min_size=1, max_size=4))
def test_header_values_and_header_routes_from_the_head_bytes(lines: list[bytes], wanted: list[bytes]) -> None:
    data = b"GET /p HTTP/1.1\r\nHost: h\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"
    oracle = parse_request(reference, data).headers
    wanted = [w.lower() for w in wanted] + [n for n, _ in oracle[:2]]
    head = parse_request(compiled, data)
    for name in wanted:
        assert head.header_value(name) == joined(oracle, name)
    # A route per name, on its value; then one on presence: the compiled
    # matcher reading the head picks the route the twin picks from the list.
    specs = [MatchSpec(headers=((n, StringMatch(EXACT, joined(oracle, n) or b"-")),)) for n in wanted]
    specs.append(MatchSpec(headers=((wanted[0], StringMatch(PRESENT)),)))
    expected = _match_py.RouteMatcher(specs).match(b"GET", b"/p", b"h", b"http", oracle, 80)
    fresh = parse_request(compiled, data)
    assert _match.RouteMatcher(specs).match(b"GET", b"/p", b"h", b"http", fresh, 80) == expected
    assert _match_py.RouteMatcher(specs).match(b"GET", b"/p", b"h", b"http", fresh, 80) == expected
    # Once split, the head answers from its list, the same.
    assert head.headers == oracle
    for name in wanted:
        assert head.header_value(name) == joined(oracle, name)
