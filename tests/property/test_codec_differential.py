"""httptools and h11 codecs must agree: same sink events or same rejection."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import compiled_codec

from fastproxy.codec import ProtocolError, fast, reference
from fastproxy.codec.messages import REQUEST_FIELDS, RESPONSE_FIELDS
from fastproxy.pipeline._heads_py import response_block
from fastproxy.pipeline.headers import RESPONSE_SKIP

# None when not built or under FASTPROXY_NO_EXTENSIONS: the pure codecs alone.
compiled = compiled_codec()

# h11 first: the oracle the httptools codecs (compiled and pure twin) must agree with.
CODECS = (reference, fast) + ((compiled,) if compiled is not None else ())


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def _add(self, kind: str, value: object = None) -> None:
        # Body pieces are merged: how a body is cut into pieces depends on
        # how the bytes arrived, not on the codec.
        if kind.endswith("body") and self.events and self.events[-1][0] == kind:
            self.events[-1] = (kind, self.events[-1][1] + value)
        else:
            self.events.append((kind, value))

    def on_request_head(self, head: object) -> None:
        self._add("request_head", tuple(getattr(head, k) for k in REQUEST_FIELDS))

    def on_response_head(self, head: object) -> None:
        self._add("response_head", tuple(getattr(head, k) for k in RESPONSE_FIELDS))
        if head.block is not None:
            # A codec that renders the forwarded block renders what the
            # pipeline would from the header list (the twin's function).
            assert (head.block, head.has_date) == response_block(head.headers, frozenset())

    def on_request_body(self, data: bytes) -> None:
        self._add("request_body", bytes(data))

    def on_response_body(self, data: bytes) -> None:
        self._add("response_body", bytes(data))

    def on_request_end(self) -> None:
        self._add("request_end")

    def on_response_end(self) -> None:
        self._add("response_end")

    def on_upgrade(self, rest: bytes) -> None:
        self._add("upgrade", bytes(rest))


def feed_all(parser: object, rec: Recorder, pieces: list[bytes]) -> None:
    for i, piece in enumerate(pieces):
        parser.feed(piece)
        if rec.events and rec.events[-1][0] == "upgrade":
            # After an upgrade the caller sends later bytes to the tunnel
            # itself; count them as tunnel bytes so arrival patterns compare.
            rec.events[-1] = ("upgrade", rec.events[-1][1] + b"".join(pieces[i + 1 :]))
            return


def run_requests(module: object, pieces: list[bytes]) -> list[tuple]:
    rec = Recorder()
    parser = module.RequestParser(rec, max_head_bytes=600, max_headers=8)
    try:
        feed_all(parser, rec, pieces)
    except ProtocolError as exc:
        rec.events.append(("error", exc.status))
    return rec.events


def run_responses(module: object, pieces: list[bytes], no_body: bool) -> list[tuple]:
    rec = Recorder()
    # as the proxy builds them: the compiled codec renders ResponseHead.block
    parser = module.ResponseParser(rec, max_headers=8, forward_skip=RESPONSE_SKIP)
    if no_body:
        parser.expect_no_body()
    try:
        feed_all(parser, rec, pieces)
        parser.feed_eof()
    except ProtocolError as exc:
        rec.events.append(("error", exc.status))
    return rec.events


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return [p for p in out if p]


METHODS = [b"GET", b"POST", b"HEAD", b"OPTIONS", b"PUT", b"M-SEARCH", b"get", b"FOO", b"CONNECT", b"G T", b""]
TARGETS = [
    b"/", b"/a/b?c=d", b"*", b"http://h:8080/p?q", b"HTTPS://h", b"http://h?x", b"http://u@h/", b"ftp://h/",
    b"/a#f", b"//x", b"a/b", b"/a b", b"/\x01", b"/\xff", b"", b"http://[::1]:8/p",
]  # fmt: skip
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2", b"HTTP/0.9", b"http/1.1", b"HTTP/1", b""]
NAMES = [
    b"Host", b"host", b"Content-Length", b"Transfer-Encoding", b"Connection", b"Upgrade", b"Expect",
    b"X-A", b"x_b", b"X A", b"X(", b"", b" X", b"X ", b"\tY", b"X\x01",
    # the compiled codec shares one object per common name: near misses must not match
    b"User-Agent", b"ACCEPT", b"x-b3-SAMPLED", b"Accept-Encodinx", b"cookies", b"Set-Cookie", b"hosT", b"Te",
]  # fmt: skip
VALUES = [
    b"a", b"", b"0", b"3", b"03", b"3, 3", b"-1", b"+3", b"99999999999999999999", b"chunked", b"CHUNKED",
    b"gzip, chunked", b"chunked, chunked", b"gzip", b"close", b"keep-alive", b"Upgrade", b"upgrade, close",
    b"websocket", b"100-continue", b" v ", b"\tv\t", b"a\x01b", b"a\x7fb", b"a\x00b", b"\xe9", b"a\rb",
    b"v" * 250,  # a few of these cross the 600-byte head limit used below
]  # fmt: skip
SEPS = [b": ", b":", b" : ", b":\t", b":  "]
EOLS = [b"\r\n"] * 12 + [b"\n", b"\r", b"\r\r\n"]


@st.composite
def header_lines(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(NAMES) | st.binary(max_size=6))
    value = draw(st.sampled_from(VALUES) | st.binary(max_size=8))
    return name + draw(st.sampled_from(SEPS)) + value + draw(st.sampled_from(EOLS))


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["none", "raw", "chunked"]))
    if kind == "raw":
        return draw(st.binary(max_size=12))
    if kind == "chunked":
        out = b""
        for size in draw(st.lists(st.integers(0, 20), max_size=3)):
            ext = draw(st.sampled_from([b"", b";a=b", b" ", b";\x01"]))
            out += b"%x" % size + ext + draw(st.sampled_from(EOLS)) + b"x" * size + draw(st.sampled_from(EOLS))
        out += b"0" + draw(st.sampled_from(EOLS))
        if draw(st.booleans()):
            out += draw(header_lines())
        return out + draw(st.sampled_from(EOLS))
    return b""


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    line = (
        draw(st.sampled_from(METHODS))
        + draw(st.sampled_from([b" ", b"  "]))
        + draw(st.sampled_from(TARGETS))
        + b" "
        + draw(st.sampled_from(VERSIONS))
    )
    head = line + draw(st.sampled_from(EOLS))
    # Mostly well-formed heads with a Host and a framing header, plus noise.
    if draw(st.integers(0, 3)):
        head += b"Host: h\r\n"
    body = draw(bodies())
    framing = draw(st.sampled_from(["none", "cl", "te", "both"]))
    if framing in ("cl", "both"):
        head += b"Content-Length: %d\r\n" % draw(st.sampled_from([len(body), 0, 3]))
    if framing in ("te", "both"):
        head += b"Transfer-Encoding: chunked\r\n"
    for h in draw(st.lists(header_lines(), max_size=4)):
        head += h
    data = head + draw(st.sampled_from([b"\r\n"] * 6 + [b"\n", b""])) + body
    if draw(st.integers(0, 4)) == 0:
        # one random byte replaced or inserted
        pos = draw(st.integers(0, len(data)))
        byte = bytes([draw(st.integers(0, 255))])
        data = data[:pos] + byte + data[pos + draw(st.integers(0, 1)) :]
    return data


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(requests(), min_size=1, max_size=3), st.lists(st.integers(0, 10_000), max_size=6))
def test_request_codecs_agree(msgs: list[bytes], cuts: list[int]) -> None:
    data = b"".join(msgs)
    pieces = split(data, cuts)
    whole = [run_requests(m, [data]) for m in CODECS]
    for other in whole[1:]:
        assert other == whole[0], data
    # Arrival pattern changes nothing, in either codec.
    for m in CODECS:
        assert run_requests(m, pieces) == whole[0], (data, pieces)


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    status = draw(st.sampled_from([b"200", b"204", b"304", b"100", b"101", b"404", b"099", b"20", b"600"]))
    line = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTP/1.1"])) + b" " + status
    line += draw(st.sampled_from([b" OK", b"", b" ", b" O\x01K", b" \xe9"]))
    head = line + draw(st.sampled_from(EOLS))
    body = draw(bodies())
    framing = draw(st.sampled_from(["none", "cl", "te", "both"]))
    if framing in ("cl", "both"):
        head += b"Content-Length: %d\r\n" % draw(st.sampled_from([len(body), 0, 3]))
    if framing in ("te", "both"):
        head += b"Transfer-Encoding: chunked\r\n"
    for h in draw(st.lists(header_lines(), max_size=4)):
        head += h
    return head + draw(st.sampled_from([b"\r\n"] * 6 + [b"\n"])) + body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(responses(), min_size=1, max_size=3),
    st.lists(st.integers(0, 10_000), max_size=6),
    st.booleans(),
)
def test_response_codecs_agree(msgs: list[bytes], cuts: list[int], no_body: bool) -> None:
    data = b"".join(msgs)
    whole = [run_responses(m, [data], no_body) for m in CODECS]
    for other in whole[1:]:
        assert other == whole[0], data
    for m in CODECS:
        assert run_responses(m, split(data, cuts), no_body) == whole[0], data
