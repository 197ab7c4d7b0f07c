"""Both HTTP/1.1 codecs: exact inputs, fed whole and one byte at a time."""

from __future__ import annotations

import pytest
from support import compiled_codec

from fastproxy.codec import ProtocolError, fast, reference, select

# None when not built or under FASTPROXY_NO_EXTENSIONS: the pure codecs alone.
compiled = compiled_codec()

# The compiled httptools codec, its pure twin and the h11 codec: same inputs, same outcomes.
CODECS = [pytest.param(fast, id="httptools-py"), pytest.param(reference, id="h11")]
if compiled is not None:
    CODECS.insert(0, pytest.param(compiled, id="httptools"))


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def _body(self, kind: str, data: bytes) -> None:
        if self.events and self.events[-1][0] == kind:
            self.events[-1] = (kind, self.events[-1][1] + bytes(data))
        else:
            self.events.append((kind, bytes(data)))

    def on_request_head(self, head: object) -> None:
        self.events.append(("head", head))

    on_response_head = on_request_head

    def on_request_body(self, data: bytes) -> None:
        self._body("body", data)

    on_response_body = on_request_body

    def on_request_end(self) -> None:
        self.events.append(("end",))

    on_response_end = on_request_end

    def on_upgrade(self, rest: bytes) -> None:
        self.events.append(("upgrade", bytes(rest)))

    def heads(self) -> list:
        return [e[1] for e in self.events if e[0] == "head"]

    def shape(self) -> list:
        return [e[0] if e[0] in ("head", "end") else e for e in self.events]


def pieces(data: bytes, bytewise: bool) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))] if bytewise else [data]


def parse(codec, data: bytes, bytewise: bool = False, **kw) -> Sink:
    sink = Sink()
    parser = codec.RequestParser(sink, **kw)
    for p in pieces(data, bytewise):
        parser.feed(p)
    return sink


def reject(codec, data: bytes, bytewise: bool = False, **kw) -> ProtocolError:
    sink = Sink()
    parser = codec.RequestParser(sink, **kw)
    with pytest.raises(ProtocolError) as info:
        for p in pieces(data, bytewise):
            parser.feed(p)
    # the parser is dead: more input raises again and delivers nothing
    n = len(sink.events)
    with pytest.raises(ProtocolError):
        parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert len(sink.events) == n
    return info.value


H = b"Host: a\r\n"

REJECTIONS = {
    # bad request line / method
    "http09-line": (b"GET /\r\n\r\n", 400),
    "double-space": (b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400),
    "space-after-version": (b"GET / HTTP/1.1 \r\n" + H + b"\r\n", 400),
    "lowercase-http": (b"GET / http/1.1\r\n" + H + b"\r\n", 400),
    "no-method": (b" / HTTP/1.1\r\n" + H + b"\r\n", 400),
    "empty-target": (b"GET  HTTP/1.1\r\n" + H + b"\r\n", 400),
    "space-in-target": (b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", 400),
    "ctl-in-target": (b"GET /a\x01 HTTP/1.1\r\n" + H + b"\r\n", 400),
    "8bit-in-target": (b"GET /a\xff HTTP/1.1\r\n" + H + b"\r\n", 400),
    "fragment": (b"GET /a#b HTTP/1.1\r\n" + H + b"\r\n", 400),
    "star-not-options": (b"GET * HTTP/1.1\r\n" + H + b"\r\n", 400),
    "relative-target": (b"GET a/b HTTP/1.1\r\n" + H + b"\r\n", 400),
    "ftp-absolute": (b"GET ftp://h/ HTTP/1.1\r\n" + H + b"\r\n", 400),
    "userinfo-absolute": (b"GET http://u@h/ HTTP/1.1\r\n" + H + b"\r\n", 400),
    "bad-method-token": (b"G(T / HTTP/1.1\r\n" + H + b"\r\n", 400),
    "lowercase-method": (b"get / HTTP/1.1\r\n" + H + b"\r\n", 400),
    "unknown-method": (b"FOO / HTTP/1.1\r\n" + H + b"\r\n", 400),
    "connect": (b"CONNECT h:443 HTTP/1.1\r\n" + H + b"\r\n", 400),
    # Content-Length / Transfer-Encoding
    "cl-and-te": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    "te-and-cl": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400),
    "cl-differ": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    "cl-same-number-other-bytes": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 03\r\n\r\n",
        400,
    ),
    "cl-list": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3, 3\r\n\r\nabc", 400),
    "cl-plus": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +3\r\n\r\nabc", 400),
    "cl-negative": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400),
    "cl-hex": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x3\r\n\r\nabc", 400),
    "cl-inner-space": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1 2\r\n\r\n", 400),
    "cl-empty": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: \r\n\r\n", 400),
    "cl-huge": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 9223372036854775808\r\n\r\n", 400),
    "cl-overflow": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999\r\n\r\n", 400),
    "http10-te": (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    # chunk framing
    "chunk-size-not-hex": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    "chunk-size-0x": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", 400),
    "chunk-size-space": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n", 400),
    "chunk-size-empty": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n\r\n", 400),
    "chunk-size-overflow": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + b"f" * 17 + b"\r\n",
        400,
    ),
    "chunk-no-crlf-after-data": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
        400,
    ),
    "chunk-bad-trailer": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX Y: 1\r\n\r\n",
        400,
    ),
    "chunk-ctl-in-extension": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3;a\x01\r\nabc\r\n0\r\n\r\n",
        400,
    ),
    # header grammar
    "obs-fold-space": (b"GET / HTTP/1.1\r\n" + H + b"X: a\r\n b\r\n\r\n", 400),
    "obs-fold-tab": (b"GET / HTTP/1.1\r\n" + H + b"X: a\r\n\tb\r\n\r\n", 400),
    "space-before-first-header": (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
    "ctl-in-value": (b"GET / HTTP/1.1\r\n" + H + b"X: a\x01b\r\n\r\n", 400),
    "del-in-value": (b"GET / HTTP/1.1\r\n" + H + b"X: a\x7fb\r\n\r\n", 400),
    "nul-in-value": (b"GET / HTTP/1.1\r\n" + H + b"X: a\x00b\r\n\r\n", 400),
    "cr-in-value": (b"GET / HTTP/1.1\r\n" + H + b"X: a\rb\r\n\r\n", 400),
    "ctl-in-name": (b"GET / HTTP/1.1\r\n" + H + b"X\x01: a\r\n\r\n", 400),
    "space-in-name": (b"GET / HTTP/1.1\r\n" + H + b"X Y: a\r\n\r\n", 400),
    "empty-name": (b"GET / HTTP/1.1\r\n" + H + b": a\r\n\r\n", 400),
    "no-colon": (b"GET / HTTP/1.1\r\n" + H + b"XY\r\n\r\n", 400),
    "space-before-colon": (b"GET / HTTP/1.1\r\n" + H + b"X : a\r\n\r\n", 400),
    "tab-before-colon": (b"GET / HTTP/1.1\r\n" + H + b"X\t: a\r\n\r\n", 400),
    # Host
    "no-host-http11": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "two-hosts": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    "two-hosts-http10": (b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400),
    # bare LF
    "bare-lf-everywhere": (b"GET / HTTP/1.1\nHost: a\n\n", 400),
    "bare-lf-request-line": (b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
    "bare-lf-header": (b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400),
    "bare-lf-blank-line": (b"GET / HTTP/1.1\r\nHost: a\r\nX: b\n\r\n\r\n", 400),
    "bare-lf-chunk-size": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400),
    "bare-lf-after-chunk": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n", 400),
    "bare-lf-last-chunk": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\n\r\n", 400),
    "bare-lf-trailer-end": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\n", 400),
    "bare-lf-before-request": (b"\nGET / HTTP/1.1\r\n" + H + b"\r\n", 400),
    # 501
    "te-gzip": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    "te-gzip-chunked": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    "te-chunked-twice": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 501),
    "te-two-headers": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    "te-empty": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: \r\n\r\n", 400),
    "te-identity": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\n\r\n", 501),
    # 505
    "http20": (b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    "http12": (b"GET / HTTP/1.2\r\n" + H + b"\r\n", 505),
    "http09": (b"GET / HTTP/0.9\r\n" + H + b"\r\n", 505),
    "http31": (b"GET / HTTP/3.1\r\n" + H + b"\r\n", 505),
    "h2-preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
}


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
@pytest.mark.parametrize("case", list(REJECTIONS))
def test_rejections(codec, bytewise: bool, case: str) -> None:
    data, status = REJECTIONS[case]
    err = reject(codec, data, bytewise)
    assert err.status == status
    assert (
        err.reason
        == {
            400: "Bad Request",
            501: "Not Implemented",
            505: "HTTP Version Not Supported",
        }[status]
    )


@pytest.mark.parametrize("codec", CODECS)
def test_rejected_request_after_a_good_one_is_delivered_first(codec) -> None:
    sink = Sink()
    parser = codec.RequestParser(sink)
    with pytest.raises(ProtocolError) as info:
        parser.feed(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n")
    assert info.value.status == 400
    assert sink.shape() == ["head", "end"]
    assert sink.heads()[0].path == b"/ok"


# --------------------------------------------------------------------------- limits


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_head_size_limit_is_inclusive(codec, bytewise: bool) -> None:
    base = b"GET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n"
    exact = base.replace(b"X: ", b"X: " + b"v" * (200 - len(base)))
    assert len(exact) == 200
    assert parse(codec, exact, bytewise, max_head_bytes=200).heads()[0].headers[1] == (b"x", b"v" * 168)
    longer = exact.replace(b"X: ", b"X: v")
    err = reject(codec, longer, bytewise, max_head_bytes=200)
    assert (err.status, err.reason) == (431, "Request Header Fields Too Large")


@pytest.mark.parametrize("codec", CODECS)
def test_endless_head_is_rejected_as_soon_as_limit_is_crossed(codec) -> None:
    parser = codec.RequestParser(Sink(), max_head_bytes=1000)
    parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX: ")
    sent = 28
    while sent + 100 <= 1000:
        parser.feed(b"v" * 100)
        sent += 100
        assert parser.head_started()
    with pytest.raises(ProtocolError) as info:
        parser.feed(b"v" * 100)  # crosses 1000
    assert info.value.status == 431


@pytest.mark.parametrize("codec", CODECS)
def test_header_count_limit(codec) -> None:
    head = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(9)) + H
    assert len(parse(codec, head + b"\r\n", max_headers=10).heads()[0].headers) == 10
    err = reject(codec, head + b"Y: 1\r\n\r\n", max_headers=10)
    assert (err.status, err.reason) == (431, "Request Header Fields Too Large")


@pytest.mark.parametrize("codec", CODECS)
def test_default_limits(codec) -> None:
    many = b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n"
    assert reject(codec, many).status == 431
    big = b"GET / HTTP/1.1\r\n" + H + b"X: " + b"v" * 61440 + b"\r\n\r\n"
    assert reject(codec, big).status == 431


# --------------------------------------------------------------------------- heads


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_request_head_fields(codec, bytewise: bool) -> None:
    data = (
        b"GET /a/b?c=d HTTP/1.1\r\nHost: example.com \r\nX-Multi:  one two \t\r\nx-multi: 3\r\n"
        b"Expect: 100-Continue\r\nEmpty:\r\nX-8bit: caf\xe9\r\n\r\n"
    )
    sink = parse(codec, data, bytewise)
    assert sink.shape() == ["head", "end"]
    head = sink.heads()[0]
    assert (head.method, head.path, head.authority, head.version) == (b"GET", b"/a/b?c=d", None, b"1.1")
    assert head.headers == [
        (b"host", b"example.com"),
        (b"x-multi", b"one two"),
        (b"x-multi", b"3"),
        (b"expect", b"100-Continue"),
        (b"empty", b""),
        (b"x-8bit", b"caf\xe9"),
    ]
    assert head.host == b"example.com"
    assert (head.keep_alive, head.chunked, head.content_length, head.upgrade) == (True, False, -1, False)
    assert head.expect_continue is True


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    "target,path,authority",
    [
        (b"http://host:8080/p?q", b"/p?q", b"host:8080"),
        (b"HTTPS://Host/", b"/", b"Host"),
        (b"http://host", b"/", b"host"),
        (b"http://host?x=1", b"/?x=1", b"host"),
        (b"http://[::1]:8/p", b"/p", b"[::1]:8"),
    ],
)
def test_absolute_form(codec, target: bytes, path: bytes, authority: bytes) -> None:
    head = parse(codec, b"GET " + target + b" HTTP/1.1\r\nHost: other\r\n\r\n").heads()[0]
    assert (head.path, head.authority, head.host) == (path, authority, b"other")


@pytest.mark.parametrize("codec", CODECS)
def test_options_star(codec) -> None:
    head = parse(codec, b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n").heads()[0]
    assert (head.method, head.path, head.authority) == (b"OPTIONS", b"*", None)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    "version,connection,keep_alive",
    [
        (b"1.1", None, True),
        (b"1.1", b"close", False),
        (b"1.1", b"Keep-Alive, CLOSE", False),
        (b"1.0", None, False),
        (b"1.0", b"keep-alive", True),
        (b"1.0", b"Keep-Alive", True),
        (b"1.0", b"foo, keep-alive", True),
    ],
)
def test_keep_alive(codec, version: bytes, connection: bytes | None, keep_alive: bool) -> None:
    data = b"GET / HTTP/" + version + b"\r\n" + H
    if connection is not None:
        data += b"Connection: " + connection + b"\r\n"
    assert parse(codec, data + b"\r\n").heads()[0].keep_alive is keep_alive


@pytest.mark.parametrize("codec", CODECS)
def test_http10_without_host_is_served(codec) -> None:
    head = parse(codec, b"GET / HTTP/1.0\r\n\r\n").heads()[0]
    assert (head.version, head.host) == (b"1.0", None)


@pytest.mark.parametrize("codec", CODECS)
def test_leading_empty_lines_are_skipped(codec) -> None:
    sink = parse(codec, b"\r\n\r\nGET / HTTP/1.1\r\n" + H + b"\r\n", bytewise=True)
    assert sink.shape() == ["head", "end"]


# --------------------------------------------------------------------------- bodies


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_content_length_body(codec, bytewise: bool) -> None:
    sink = parse(codec, b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello", bytewise)
    assert sink.shape() == ["head", ("body", b"hello"), "end"]
    assert sink.heads()[0].content_length == 5


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("value", [b"0", b"007", b"1844674407370955161", b"9223372036854775807"])
def test_content_length_values_up_to_the_largest(codec, value: bytes) -> None:
    # 2**63 - 1 is the largest accepted (one more is a 400: MALFORMED "cl-huge").
    sink = parse(codec, b"POST / HTTP/1.1\r\n" + H + b"Content-Length: " + value + b"\r\n\r\n")
    assert sink.heads()[0].content_length == int(value)
    resp = Sink()
    codec.ResponseParser(resp).feed(b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\n")
    assert resp.heads()[0].content_length == int(value)


CONNECTION_CASES = [
    # (version, Connection lines, keep-alive)
    (b"1.1", [], True),
    (b"1.0", [], False),
    (b"1.0", [b"KEEP-ALIVE"], True),
    (b"1.0", [b"keep-alive "], True),
    (b"1.1", [b"Close"], False),
    (b"1.1", [b"cLoSe"], False),
    (b"1.1", [b"keep-alive", b"close"], False),
    (b"1.0", [b"foo", b"Keep-Alive"], True),
    (b"1.0", [b"keep-alive, close"], False),
    (b"1.1", [b"closed"], True),
    (b"1.0", [b"keep-alivex"], False),
]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(("version", "values", "keep_alive"), CONNECTION_CASES)
def test_connection_values_decide_keep_alive(codec, version: bytes, values: list[bytes], keep_alive: bool) -> None:
    lines = b"".join(b"Connection: " + v + b"\r\n" for v in values)
    sink = parse(codec, b"GET / HTTP/" + version + b"\r\n" + H + lines + b"\r\n")
    assert sink.heads()[0].keep_alive is keep_alive
    resp = Sink()
    codec.ResponseParser(resp).feed(b"HTTP/" + version + b" 200 OK\r\nContent-Length: 0\r\n" + lines + b"\r\n")
    assert resp.heads()[0].keep_alive is keep_alive


@pytest.mark.parametrize("codec", CODECS)
def test_identical_content_lengths_are_coalesced(codec) -> None:
    data = b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\ncontent-length:  3\r\nX: y\r\n\r\nabc"
    sink = parse(codec, data)
    head = sink.heads()[0]
    assert head.content_length == 3
    assert head.headers == [(b"host", b"a"), (b"content-length", b"3"), (b"content-length", b"3"), (b"x", b"y")]
    assert sink.shape() == ["head", ("body", b"abc"), "end"]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_chunked_body_with_extensions_and_trailers(codec, bytewise: bool) -> None:
    data = (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: Chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
    )
    sink = parse(codec, data, bytewise)
    assert sink.shape() == ["head", ("body", b"hello, world!!!"), "end"]
    head = sink.heads()[0]
    assert (head.chunked, head.content_length) == (True, -1)


@pytest.mark.parametrize("codec", CODECS)
def test_chunk_payload_is_delivered_as_it_arrives(codec) -> None:
    sink = Sink()
    parser = codec.RequestParser(sink)
    parser.feed(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n10\r\nabcd")
    assert sink.shape() == ["head", ("body", b"abcd")]
    parser.feed(b"efghijklmnop\r\n")
    assert sink.shape() == ["head", ("body", b"abcdefghijklmnop")]
    parser.feed(b"0\r\n\r\n")
    assert sink.shape()[-1] == "end"


@pytest.mark.parametrize("codec", CODECS)
def test_content_length_body_is_delivered_as_it_arrives(codec) -> None:
    sink = Sink()
    parser = codec.RequestParser(sink)
    parser.feed(b"PUT / HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\n0123")
    assert sink.events[-1] == ("body", b"0123")
    parser.feed(b"456789")
    assert sink.shape() == ["head", ("body", b"0123456789"), "end"]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_pipelined_requests_in_order(codec, bytewise: bool) -> None:
    data = (
        b"POST /1 HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n\r\nabc"
        b"POST /2 HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n"
        b"GET /3 HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"
        b"GET /4 HTTP/1.1\r\n" + H + b"\r\n"
    )
    sink = parse(codec, data, bytewise)
    assert sink.shape() == [
        "head",
        ("body", b"abc"),
        "end",
        "head",
        ("body", b"de"),
        "end",
        "head",
        "end",
        "head",
        "end",
    ]
    assert [h.path for h in sink.heads()] == [b"/1", b"/2", b"/3", b"/4"]
    assert [h.keep_alive for h in sink.heads()] == [True, True, False, True]


@pytest.mark.parametrize("codec", CODECS)
def test_head_started(codec) -> None:
    parser = codec.RequestParser(Sink())
    assert not parser.head_started()
    parser.feed(b"GET / HT")
    assert parser.head_started()
    parser.feed(b"TP/1.1\r\n" + H + b"\r\n")
    assert not parser.head_started()
    parser.feed(b"G")
    assert parser.head_started()


# --------------------------------------------------------------------------- upgrade


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_upgrade(codec, bytewise: bool) -> None:
    data = b"GET /ws HTTP/1.1\r\n" + H + b"Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n"
    sink = Sink()
    parser = codec.RequestParser(sink)
    for p in pieces(data, bytewise):
        parser.feed(p)
    parser.feed(b"after")  # later feeds are the tunnel's business, not ours
    assert sink.shape() == ["head", "end", ("upgrade", b"")]
    assert sink.heads()[0].upgrade is True

    sink = parse(codec, data + b"\x81\x05hello")
    assert sink.shape() == ["head", "end", ("upgrade", b"\x81\x05hello")]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    "extra", [b"Upgrade: websocket\r\n", b"Connection: upgrade\r\n"], ids=["no-connection", "no-upgrade"]
)
def test_not_an_upgrade(codec, extra: bytes) -> None:
    sink = parse(codec, b"GET / HTTP/1.1\r\n" + H + extra + b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n")
    assert sink.shape() == ["head", "end", "head", "end"]
    assert sink.heads()[0].upgrade is False


# --------------------------------------------------------------------------- responses


def respond(codec, data: bytes, bytewise: bool = False, no_body: bool = False, eof: bool = False) -> Sink:
    sink = Sink()
    parser = codec.ResponseParser(sink)
    if no_body:
        parser.expect_no_body()
    for p in pieces(data, bytewise):
        parser.feed(p)
    if eof:
        parser.feed_eof()
    return sink


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_response_content_length(codec, bytewise: bool) -> None:
    sink = respond(codec, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi", bytewise)
    assert sink.shape() == ["head", ("body", b"hi"), "end"]
    head = sink.heads()[0]
    assert (head.status, head.version, head.keep_alive, head.chunked, head.content_length) == (
        200, b"1.1", True, False, 2,
    )  # fmt: skip
    assert head.headers == [(b"content-type", b"text/plain"), (b"content-length", b"2")]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_response_chunked_and_reuse(codec, bytewise: bool) -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        b"HTTP/1.1 500 Oops\r\nContent-Length: 1\r\n\r\nx"
    )
    sink = respond(codec, data, bytewise)
    assert sink.shape() == ["head", ("body", b"abc"), "end", "head", "end", "head", ("body", b"x"), "end"]
    assert [h.status for h in sink.heads()] == [200, 404, 500]
    assert sink.heads()[0].chunked is True


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_response_to_head_has_no_body(codec, bytewise: bool) -> None:
    sink = Sink()
    parser = codec.ResponseParser(sink)
    parser.expect_no_body()
    for p in pieces(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", bytewise):
        parser.feed(p)
    assert sink.shape() == ["head", "end"]
    assert sink.heads()[0].content_length == 1234
    # the flag is spent: the next response has its body again
    for p in pieces(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n", bytewise):
        parser.feed(p)
    assert sink.shape() == ["head", "end", "head", ("body", b"z"), "end"]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("status", [204, 304])
def test_204_304_have_no_body(codec, status: int) -> None:
    data = b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx" % status
    sink = respond(codec, data)
    assert sink.shape() == ["head", "end", "head", ("body", b"x"), "end"]
    assert sink.heads()[0].keep_alive is True


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_close_delimited_body(codec, bytewise: bool) -> None:
    sink = Sink()
    parser = codec.ResponseParser(sink)
    for p in pieces(b"HTTP/1.1 200 OK\r\nX: y\r\n\r\npart one, ", bytewise):
        parser.feed(p)
    parser.feed(b"part two")
    assert sink.shape() == ["head", ("body", b"part one, part two")]
    parser.feed_eof()
    assert sink.shape()[-1] == "end"
    head = sink.heads()[0]
    assert (head.keep_alive, head.content_length, head.chunked) == (False, -1, False)


@pytest.mark.parametrize("codec", CODECS)
def test_interim_responses_are_swallowed(codec) -> None:
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    )
    sink = respond(codec, data, no_body=False)
    assert sink.shape() == ["head", ("body", b"ok"), "end"]
    assert sink.heads()[0].status == 201


@pytest.mark.parametrize("codec", CODECS)
def test_interim_response_before_head_response(codec) -> None:
    data = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"
    sink = respond(codec, data, no_body=True)
    assert sink.shape() == ["head", "end"]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_101_switching_protocols(codec, bytewise: bool) -> None:
    data = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    sink = Sink()
    parser = codec.ResponseParser(sink)
    for p in pieces(data + (b"" if bytewise else b"\x81\x00"), bytewise):
        parser.feed(p)
    parser.feed(b"more tunnel bytes")
    assert sink.shape() == ["head", ("upgrade", b"" if bytewise else b"\x81\x00")]
    assert sink.heads()[0].status == 101


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Le",
    ],
    ids=["short-cl", "unfinished-chunked", "half-head"],
)
def test_response_cut_short(codec, data: bytes) -> None:
    sink = Sink()
    parser = codec.ResponseParser(sink)
    parser.feed(data)
    with pytest.raises(ProtocolError) as info:
        parser.feed_eof()
    assert (info.value.status, info.value.reason) == (502, "protocol error")
    assert "end" not in sink.shape()


@pytest.mark.parametrize("codec", CODECS)
def test_eof_between_responses_is_quiet(codec) -> None:
    sink = respond(codec, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", eof=True)
    assert sink.shape() == ["head", "end"]


MALFORMED_RESPONSES = {
    "http2": b"HTTP/2.0 200 OK\r\n\r\n",
    "bad-status": b"HTTP/1.1 20 OK\r\n\r\n",
    "four-digit-status": b"HTTP/1.1 2000 OK\r\n\r\n",
    "ctl-in-reason": b"HTTP/1.1 200 O\x01K\r\n\r\n",
    "not-http": b"HELLO\r\n\r\n",
    "bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    "ctl-in-value": b"HTTP/1.1 200 OK\r\nX: a\x01\r\nContent-Length: 0\r\n\r\n",
    "space-before-colon": b"HTTP/1.1 200 OK\r\nX : a\r\nContent-Length: 0\r\n\r\n",
    "cl-differ": b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "cl-not-digits": b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nab",
    "cl-huge": b"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n",
    "cl-overflow": b"HTTP/1.1 200 OK\r\nContent-Length: 184467440737095516150\r\n\r\n",
    "cl-empty": b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
    "cl-and-te": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    "bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
    "too-many-headers": b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 101 + b"\r\n",
}


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("case", list(MALFORMED_RESPONSES))
def test_malformed_responses(codec, case: str) -> None:
    parser = codec.ResponseParser(Sink())
    with pytest.raises(ProtocolError) as info:
        parser.feed(MALFORMED_RESPONSES[case])
    assert (info.value.status, info.value.reason) == (502, "protocol error")
    with pytest.raises(ProtocolError):
        parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize("codec", CODECS)
def test_response_header_count_limit(codec) -> None:
    ok = b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 99 + b"Content-Length: 0\r\n\r\n"
    assert respond(codec, ok).shape() == ["head", "end"]


def test_select(monkeypatch: pytest.MonkeyPatch) -> None:
    hot = compiled or fast
    monkeypatch.delenv("FASTPROXY_NO_EXTENSIONS", raising=False)
    if compiled is None:
        # The twin heads are loaded: falling back is the only answer, which REQUIRE forbids.
        monkeypatch.delenv("FASTPROXY_REQUIRE_EXTENSIONS", raising=False)
    assert select("httptools") == (hot.RequestParser, hot.ResponseParser)
    assert select() == (hot.RequestParser, hot.ResponseParser)
    monkeypatch.setenv("FASTPROXY_NO_EXTENSIONS", "1")
    assert select("httptools") == (fast.RequestParser, fast.ResponseParser)
    assert select() == (reference.RequestParser, reference.ResponseParser)
    assert select("h11") == (reference.RequestParser, reference.ResponseParser)
    with pytest.raises(ValueError):
        select("nope")


@pytest.mark.skipif(compiled is not None, reason="the heads' pure twin is not loaded in this process")
def test_select_never_pairs_the_compiled_codec_with_twin_heads(monkeypatch: pytest.MonkeyPatch) -> None:
    # The compiled codec writes the compiled heads' C fields; with the twins loaded it must not be chosen.
    monkeypatch.delenv("FASTPROXY_NO_EXTENSIONS", raising=False)
    monkeypatch.setenv("FASTPROXY_REQUIRE_EXTENSIONS", "1")
    with pytest.raises(ImportError, match="pure twin"):
        select("httptools")
    monkeypatch.delenv("FASTPROXY_REQUIRE_EXTENSIONS")
    assert select("httptools") == (fast.RequestParser, fast.ResponseParser)


@pytest.mark.skipif(compiled is None, reason="the compiled codec is not loaded in this process")
def test_common_header_names_come_back_as_one_shared_object_each() -> None:
    # Every name in the compiled codec's table is returned shared, whatever its case;
    # a near miss gets its own object with the right bytes.
    framing = (b"host", b"content-length", b"transfer-encoding")  # sent once, or not at all
    names = [n for n in compiled.COMMON_NAMES if n not in framing] + [b"x-near-miss", b"hosts", b"referrer"]
    lines = b"".join(n.upper() + b": v\r\n" for n in names)
    request = b"GET / HTTP/1.1\r\nHost: h\r\n" + lines + b"\r\n"
    heads = []
    for _ in range(2):
        sink = Sink()
        parser = compiled.RequestParser(sink, max_headers=200)
        parser.feed(request)
        heads.append(sink.events[0][1].headers)
    first, second = heads
    assert [n for n, _ in first] == [b"host", *names]
    shared = {n for n, _ in first if n in compiled.COMMON_NAMES}
    assert shared == set(compiled.COMMON_NAMES) - {b"content-length", b"transfer-encoding"}
    for (a, _), (b, _) in zip(first, second, strict=True):
        assert (a is b) == (a in compiled.COMMON_NAMES), a
