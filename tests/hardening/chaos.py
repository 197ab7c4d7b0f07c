"""A misbehaving upstream on real sockets, plus process probes for leak checks.

`Chaos` is an HTTP/1.1 origin in a background thread whose behaviour is
chosen by the request path (first segment):

  /ok                  200 "ok", keep-alive
  /reset               abort (RST) before any response byte
  /close-mid-body      head announcing 1000 bytes, 100 sent, then close
  /slow                200 after 0.3 s
  /never               never answers; holds the connection until the peer closes
  /bad-status          malformed status line
  /bad-header          header line without a colon
  /nul-header          NUL inside a header value
  /cr-header           bare CR inside a header value
  /one-shot            200 with keep-alive semantics, then the connection is closed
  /drop-reused         aborts without answering when this is not the first
                       request on the connection
  /big/N               N bytes of body, written with backpressure
  anything else        200 with the path as body

It ignores Upgrade headers (an origin that does not speak WebSocket) and
parses every request it reads, so bytes smuggled behind a request show up in
`.requests`.  `.open` counts connections currently open (leak checks).
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from typing import Any

from support import ThreadedServer


class Chaos(ThreadedServer):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.heads: list[str] = []  # targets of request heads, recorded before their bodies
        self.open = 0
        self.connections = 0

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.connections += 1
        try:
            await self._requests(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self.open -= 1
            writer.transport.abort()

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = 0
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            self.heads.append(target)
            headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if line]
            hmap = {k.lower(): v for k, v in headers}
            body = b""
            if "content-length" in hmap:
                body = await reader.readexactly(int(hmap["content-length"]))
            elif hmap.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        await reader.readuntil(b"\r\n")
                        break
                    body += await reader.readexactly(size)
                    await reader.readexactly(2)
            self.requests.append({"method": method, "path": target, "headers": headers, "body": body, "nth": served})
            served += 1
            kind = target.split("?")[0].strip("/").split("/")
            w = writer.write
            if kind[0] == "reset" or (kind[0] == "drop-reused" and served > 1):
                _rst(writer)
                return
            if kind[0] == "close-mid-body":
                w(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + b"x" * 100)
                await writer.drain()
                return
            if kind[0] == "slow":
                await asyncio.sleep(0.3)
            if kind[0] == "never":
                await reader.read()  # until the proxy gives up on us
                return
            if kind[0] == "bad-status":
                w(b"HTTP/1.1 2xx nonsense\r\ncontent-length: 0\r\n\r\n")
            elif kind[0] == "bad-header":
                w(b"HTTP/1.1 200 OK\r\nthis is not a header\r\ncontent-length: 0\r\n\r\n")
            elif kind[0] == "nul-header":
                w(b"HTTP/1.1 200 OK\r\nx-a: a\x00b\r\ncontent-length: 0\r\n\r\n")
            elif kind[0] == "cr-header":
                w(b"HTTP/1.1 200 OK\r\nx-a: a\rb\r\ncontent-length: 0\r\n\r\n")
            elif kind[0] == "big":
                size = int(kind[1])
                w(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
                block = b"x" * 65536
                while size > 0:
                    w(block[: min(size, len(block))])
                    size -= len(block)
                    await writer.drain()
                continue
            else:
                payload = target.encode()
                w(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(payload), payload))
            await writer.drain()
            if kind[0] in ("bad-status", "bad-header", "nul-header", "cr-header", "one-shot"):
                return


def _rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # Linger 0: close sends RST, like a crashing server.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# -- process probes ------------------------------------------------------------------
def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connects are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
