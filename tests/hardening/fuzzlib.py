"""Shared pieces of the fuzz harnesses: input strategies, the outcome oracle,
and the regression corpus in tests/corpus/.

FASTPROXY_FUZZ_SCALE (default 1) multiplies every example count, for long
runs outside the normal suite: `FASTPROXY_FUZZ_SCALE=50 pytest tests/hardening -k fuzz`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from hypothesis import strategies as st

from fastproxy.codec import ProtocolError
from fastproxy.codec.messages import REQUEST_FIELDS

SCALE = max(1, int(os.environ.get("FASTPROXY_FUZZ_SCALE", "1")))
CORPUS = Path(__file__).resolve().parent.parent / "corpus"

ALLOWED_REJECTIONS = {400, 431, 501, 505}

SEEDS = [
    b"GET / HTTP/1.1\r\nhost: app\r\n\r\n",
    b"GET /a?b=c HTTP/1.1\r\nhost: app\r\nuser-agent: x\r\naccept: */*\r\n\r\n",
    b"POST /p HTTP/1.1\r\nhost: app\r\ncontent-length: 5\r\n\r\nhello",
    b"POST /c HTTP/1.1\r\nhost: app\r\ntransfer-encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nt: v\r\n\r\n",
    b"GET / HTTP/1.0\r\nhost: app\r\nconnection: keep-alive\r\n\r\n",
    b"GET http://app/abs HTTP/1.1\r\nhost: app\r\n\r\n",
    b"GET / HTTP/1.1\r\nhost: app\r\n\r\nGET /2 HTTP/1.1\r\nhost: app\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nhost: app\r\n\r\n",
]

# Fragments that tend to sit on framing decisions.
TOKENS = [
    b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\x00", b" ", b"\t", b":", b",", b";", b"\x7f", b"\xff",
    b"chunked", b"content-length: 5\r\n", b"transfer-encoding: chunked\r\n", b"host: app\r\n",
    b"0\r\n\r\n", b"ffffffffffffffffff", b"HTTP/1.1", b"HTTP/1.0", b"-1", b"+5", b"0x5",
    b"connection: upgrade\r\nupgrade: websocket\r\n", b"expect: 100-continue\r\n",
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 4))
        pos = draw(st.integers(0, len(data)))
        if op == 0:  # insert a framing fragment
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == 1:  # insert random bytes
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == 2 and data:  # delete a range
            end = draw(st.integers(pos, min(len(data), pos + 8)))
            del data[pos:end]
        elif op == 3 and pos < len(data):  # flip one byte
            data[pos] = draw(st.integers(0, 255))
        else:  # duplicate a line
            lines = bytes(data).split(b"\r\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            data = bytearray(b"\r\n".join(lines))
    return bytes(data)


inputs = st.one_of(mutated(), st.binary(max_size=200))

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
_VALUE_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def check_head(head: object) -> None:
    """A head the codec lets through is well-formed (what reaches an upstream)."""
    assert head.method.isupper() and _TOKEN.fullmatch(head.method.lower())
    assert head.path[:1] == b"/" or head.path == b"*"
    assert not _VALUE_BAD.search(head.path) and b" " not in head.path
    assert head.version in (b"1.0", b"1.1")
    for name, value in head.headers:
        assert _TOKEN.fullmatch(name), name
        assert not _VALUE_BAD.search(value), value
    assert head.version == b"1.0" or head.host is not None
    assert not (head.chunked and head.content_length >= 0)


class Sink:
    """Records events and checks their order: head, body*, end (or upgrade)."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.open = False

    def on_request_head(self, head: object) -> None:
        assert not self.open
        check_head(head)
        self.open = True
        self.events.append(("head", tuple(getattr(head, k) for k in REQUEST_FIELDS)))

    def on_request_body(self, data: bytes) -> None:
        assert self.open
        if self.events[-1][0] == "body":
            self.events[-1] = ("body", self.events[-1][1] + bytes(data))
        else:
            self.events.append(("body", bytes(data)))

    def on_request_end(self) -> None:
        assert self.open
        self.open = False
        self.events.append(("end",))

    def on_upgrade(self, rest: bytes) -> None:
        self.events.append(("upgrade", bytes(rest)))


def parse(module: object, data: bytes, bytewise: bool) -> tuple[object, list[tuple]]:
    """(outcome, events): outcome is "ok" or the rejection status."""
    sink = Sink()
    parser = module.RequestParser(sink)
    pieces = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    try:
        for i, piece in enumerate(pieces):
            parser.feed(piece)
            if sink.events and sink.events[-1][0] == "upgrade":
                # Later bytes belong to the tunnel, which the caller feeds itself.
                sink.events[-1] = ("upgrade", sink.events[-1][1] + b"".join(pieces[i + 1 :]))
                break
    except ProtocolError as exc:
        assert exc.status in ALLOWED_REJECTIONS, exc.status
        return exc.status, sink.events
    return "ok", sink.events


def corpus_inputs() -> list[tuple[str, bytes]]:
    return sorted((p.name, p.read_bytes()) for p in CORPUS.glob("*.http"))
