"""Admin listener (loopback by default): /ready, /config_dump, /routes,
/stats/prometheus and an index page.

It is off the hot path, so it uses asyncio streams and reads one small
request at a time; handlers are plain functions returning (status, type, body).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from fastproxy.pipeline import replies

Handler = Callable[[], tuple[int, bytes, bytes]]

_MAX_HEAD = 16 * 1024


class AdminServer:
    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes
        self.server: asyncio.AbstractServer | None = None

    async def start(self, sock: Any) -> None:
        self.server = await asyncio.start_server(self._handle, sock=sock)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                    return
                if len(head) > _MAX_HEAD:
                    return
                line, _, rest = head.partition(b"\r\n")
                parts = line.split()
                if len(parts) != 3:
                    writer.write(replies.local_reply(400, b"Bad Request", b"envoy", close=True))
                    return
                method, target = parts[0], parts[1].decode("latin-1")
                close = b"connection: close" in rest.lower() or parts[2] == b"HTTP/1.0"
                path = target.split("?", 1)[0]
                handler = self.routes.get(path)
                if method not in (b"GET", b"HEAD"):
                    status, ctype, body = 405, b"text/plain", b"method not allowed"
                elif handler is None:
                    status, ctype, body = 404, b"text/plain", b"not found"
                else:
                    status, ctype, body = handler()
                out = [
                    replies.status_line(status),
                    b"content-type: " + ctype + b"\r\n",
                    b"content-length: %d\r\n" % len(body),
                    replies.DATE.line(),
                    b"cache-control: no-cache\r\n",
                ]
                if close:
                    out.append(b"connection: close\r\n")
                out.append(b"\r\n")
                if method != b"HEAD":
                    out.append(body)
                writer.write(b"".join(out))
                await writer.drain()
                if close:
                    return
        except (ConnectionError, OSError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()


def index_page(paths: list[str]) -> bytes:
    links = "".join(f'<li><a href="{p}">{p}</a></li>' for p in paths)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>fastproxy admin</title></head>"
        f"<body><h1>fastproxy admin</h1><ul>{links}</ul></body></html>"
    ).encode()
