"""Binds the mesh and gateway listeners of one worker and keeps the set of
gateway ports in step with the config across reloads."""

from __future__ import annotations

import asyncio
import resource
import socket
from typing import Any

from fastproxy.pipeline.downstream import Downstream
from fastproxy.server import ProxyState


class ListenError(Exception):
    pass


# File descriptors kept back for listeners, the admin server, logs and DNS.
FD_RESERVE = 64


def default_max_connections() -> int:
    """Client connections a worker can hold without running out of file
    descriptors: each may need a second one for its upstream connection."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(16, (soft - FD_RESERVE) // 2)


# Accept queue per listening socket: a burst of new clients (1,000 at once from
# a load generator, or a restart of many keep-alive clients) waits here instead
# of losing SYNs to a full queue and retrying them a second later.
LISTEN_BACKLOG = 1024


class _Refused(asyncio.Protocol):
    """Over the connection limit: drop the new connection at once (RST), so
    an overload costs the newcomer a fast failure instead of slowing everyone."""

    __slots__ = ()

    def connection_made(self, transport: Any) -> None:
        transport.abort()


def parse_hostport(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = default_host, text
    host = host.strip("[]") or default_host
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"bad address {text!r} (expected HOST:PORT)")
    return host, int(port)


def bind_socket(host: str, port: int, reuse_port: bool, listen: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


class ListenerSet:
    """The listening servers of one worker."""

    def __init__(self, state: ProxyState, listen: tuple[str, int], bind: str, reuse_port: bool) -> None:
        self.state = state
        self.listen = listen
        self.bind = bind
        self.reuse_port = reuse_port
        self.servers: dict[Any, asyncio.AbstractServer] = {}
        self.addresses: dict[Any, tuple[str, int]] = {}

    def wanted(self) -> dict[Any, tuple[str, int]]:
        want: dict[Any, tuple[str, int]] = {"mesh": self.listen}
        for server in self.state.config.gateways:
            want[server.port] = (server.bind or self.bind, server.port)
        return want

    async def open_all(self) -> None:
        """Bind every listener or none (startup: a failure leaves nothing listening)."""
        sockets: dict[Any, socket.socket] = {}
        try:
            for key, (host, port) in self.wanted().items():
                sockets[key] = bind_socket(host, port, self.reuse_port)
        except ListenError:
            for sock in sockets.values():
                sock.close()
            raise
        for key, sock in sockets.items():
            await self._serve(key, sock)

    async def _serve(self, key: Any, sock: socket.socket) -> None:
        state = self.state
        mesh = key == "mesh"
        loop = asyncio.get_running_loop()
        limit = state.limits.max_connections or default_max_connections()
        connections = state.connections
        counters = state.counters

        def accept() -> asyncio.Protocol:
            # `connections` holds every open client connection of this worker,
            # across listeners; the factory runs right before connection_made.
            if len(connections) >= limit:
                counters["downstream_cx_overflow"] += 1
                return _Refused()
            return Downstream(state, key, mesh)

        # create_server listens again on the socket, with its own default
        # backlog (100) unless told: a burst of clients would overflow it.
        server = await loop.create_server(accept, sock=sock, backlog=LISTEN_BACKLOG)
        self.servers[key] = server
        self.addresses[key] = sock.getsockname()[:2]

    async def reconcile(self) -> list[str]:
        """After a reload: open new gateway ports, close removed ones."""
        errors = []
        want = self.wanted()
        for key in list(self.servers):
            if key != "mesh" and (key not in want or want[key] != self.addresses.get(key)):
                self.servers.pop(key).close()
                self.addresses.pop(key, None)
        for key, (host, port) in want.items():
            if key not in self.servers:
                try:
                    await self._serve(key, bind_socket(host, port, self.reuse_port))
                except ListenError as exc:
                    errors.append(str(exc))
        return errors

    def close(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()
