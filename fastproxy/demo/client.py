"""A tiny HTTP/1.1 client for the demo apps, the demo runner and its checks.

One request per connection: the demo measures routing, not client pooling, and
a fresh connection can never hit a half-closed idle socket.  h11 does the
framing (content-length, chunked, close-delimited, HEAD) so the callers only
see a status, headers and a body.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import h11

__all__ = ["Response", "ProtocolError", "request"]


class ProtocolError(Exception):
    """The server's answer was not valid HTTP/1.1."""


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    elapsed: float = 0.0  # seconds from connect to the last body byte

    def header(self, name: str) -> str | None:
        """First value of header `name` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


async def request(
    host: str,
    port: int,
    target: str = "/",
    *,
    method: str = "GET",
    headers: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    timeout: float = 10.0,
) -> Response:
    """Send one request to host:port and read the whole answer.

    `target` may be origin-form ("/path") or absolute-form ("http://name/path",
    which is how an HTTP proxy such as fastproxy's mesh listener is asked).
    A Host header is derived from an absolute-form target when not given.
    Raises OSError when the connection fails, TimeoutError after `timeout`
    seconds and ProtocolError on a malformed answer.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    hdrs = list(headers)
    if not any(k.lower() == "host" for k, _ in hdrs):
        hdrs.insert(0, ("Host", _authority(target) or f"{host}:{port}"))
    if body:
        hdrs.append(("Content-Length", str(len(body))))
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            return await _exchange(reader, writer, method, target, hdrs, body, loop, started)
        finally:
            writer.close()


def _authority(target: str) -> str | None:
    if "://" not in target:
        return None
    rest = target.split("://", 1)[1]
    return rest.split("/", 1)[0].split("?", 1)[0] or None


async def _exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    method: str,
    target: str,
    hdrs: list[tuple[str, str]],
    body: bytes,
    loop: asyncio.AbstractEventLoop,
    started: float,
) -> Response:
    conn = h11.Connection(h11.CLIENT)
    try:
        out = conn.send(h11.Request(method=method, target=target, headers=hdrs))
        if body:
            out += conn.send(h11.Data(data=body))
        out += conn.send(h11.EndOfMessage())
    except h11.LocalProtocolError as exc:
        raise ValueError(f"cannot send this request: {exc}") from None
    writer.write(out)
    await writer.drain()

    response: Response | None = None
    chunks: list[bytes] = []
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise ProtocolError(str(exc)) from None
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
            continue
        if isinstance(event, h11.InformationalResponse):
            continue
        if isinstance(event, h11.Response):
            response = Response(
                status=event.status_code,
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers],
            )
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            break
        elif isinstance(event, h11.ConnectionClosed):
            raise ProtocolError("connection closed before a complete response")
    assert response is not None  # h11 yields a Response before EndOfMessage
    response.body = b"".join(chunks)
    response.elapsed = loop.time() - started
    return response
