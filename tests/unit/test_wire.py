"""wire.Writer on real sockets under uvloop: bytes arrive whole and in order, flow control and
closing stay the transport's, whichever build (compiled or pure twin) writes them."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from fastproxy import _wire_py

IMPLEMENTATIONS = [_wire_py]
try:
    from fastproxy import _wire

    IMPLEMENTATIONS.append(_wire)
except ImportError:  # not built: the twin alone
    pass

DEADLINE = 10.0
each_build = pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=lambda m: m.__name__.rpartition(".")[2])


def run(coro_fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(coro_fn(), DEADLINE))


class Proto(asyncio.Protocol):
    def __init__(self) -> None:
        self.paused = 0
        self.resumed = asyncio.Event()
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def pause_writing(self) -> None:
        self.paused += 1
        self.resumed.clear()

    def resume_writing(self) -> None:
        self.resumed.set()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


class Counting:
    """The real transport, with its write calls counted: which writes the Writer handed to it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.inner = transport
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def connected_pair() -> tuple[asyncio.Transport, Proto, socket.socket]:
    """A uvloop transport and the plain, blocking socket at its other end."""
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        loop = asyncio.get_running_loop()
        accepted = loop.run_in_executor(None, listener.accept)
        transport, proto = await loop.create_connection(Proto, *listener.getsockname())
        peer, _ = await accepted
    return transport, proto, peer  # type: ignore[return-value]


def read_all(peer: socket.socket, out: bytearray, done: threading.Event) -> None:
    while chunk := peer.recv(1 << 16):
        out += chunk
    done.set()


async def drain_close_and_join(
    transport: asyncio.Transport, proto: Proto, peer: socket.socket, done: threading.Event
) -> None:
    """Let the transport send all it holds, close it, and wait for the reader to see the end."""
    while transport.get_write_buffer_size():
        await asyncio.sleep(0.001)
    transport.close()
    await proto.lost
    await asyncio.get_running_loop().run_in_executor(None, done.wait)
    peer.close()


@each_build
def test_writes_arrive_in_order_through_a_full_socket_and_flow_control_holds(impl: Any) -> None:
    chunks = [struct.pack(">I", i) * 16384 for i in range(160)]  # 64 KiB each, 10 MiB in all

    async def main() -> None:
        transport, proto, peer = await connected_pair()
        counted = Counting(transport)
        writer = impl.Writer(counted)
        assert impl.socket_fd(transport) >= 0
        # Room in the socket: straight to it, the transport is not asked.
        writer.write(chunks[0])
        assert counted.writes == 0 and transport.get_write_buffer_size() == 0
        # Nobody reads: the socket fills, the rest queues in the transport, which pauses us.
        for c in chunks[1:100]:
            writer.write(c)
        assert counted.writes > 0 and proto.paused == 1
        received = bytearray()
        done = threading.Event()
        reader = threading.Thread(target=read_all, args=(peer, received, done), daemon=True)
        reader.start()
        await proto.resumed.wait()
        while transport.get_write_buffer_size():  # resumed at the low-water mark: let it drain fully
            await asyncio.sleep(0.001)
        before = counted.writes
        for c in chunks[100:]:
            writer.write(c)
        # Drained: the direct path again, until the socket is full once more.
        assert counted.writes - before < len(chunks) - 100
        await drain_close_and_join(transport, proto, peer, done)
        assert bytes(received) == b"".join(chunks)

    run(main)


@each_build
def test_a_closing_transport_drops_later_writes_as_its_own_write_does(impl: Any) -> None:
    async def main() -> None:
        transport, proto, peer = await connected_pair()
        writer = impl.Writer(transport)
        writer.write(b"before close\n")
        transport.close()
        writer.write(b"after close\n")
        await proto.lost
        loop = asyncio.get_running_loop()
        got = bytearray()
        while chunk := await loop.run_in_executor(None, peer.recv, 4096):
            got += chunk
        peer.close()
        assert got == b"before close\n"

    run(main)


@each_build
def test_a_reset_peer_is_reported_through_connection_lost(impl: Any) -> None:
    async def main() -> None:
        transport, proto, peer = await connected_pair()
        writer = impl.Writer(transport)
        writer.write(b"hello")
        # An abortive close: the next segments we send draw a RST.
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        while not proto.lost.done():
            writer.write(b"x" * 1024)
            await asyncio.sleep(0.001)
        assert isinstance(proto.lost.result(), OSError)

    run(main)


@each_build
def test_transports_without_a_socket_get_every_write(impl: Any) -> None:
    class Sink:
        def __init__(self) -> None:
            self.data: list[Any] = []

        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return default

        def write(self, data: Any) -> None:
            self.data.append(data)

    sink = Sink()
    assert impl.socket_fd(sink) == -1 and impl.socket_fd(None) == -1
    writer = impl.Writer(sink)
    writer.write(b"one")
    writer.write(bytearray(b"two"))
    assert sink.data == [b"one", bytearray(b"two")]


@each_build
def test_writelines_sends_pieces_whole_and_in_order_partly_sent_or_not(impl: Any) -> None:
    # Lists of 1-20 pieces (more than the 16 one system call takes), some of them not bytes,
    # some cut by a full socket: the peer sees b"".join of everything, in order.
    pieces = [bytes([65 + i % 26]) * (1000 + 7919 * i % 50000) for i in range(400)]
    lists: list[list[Any]] = []
    i = 0
    while i < len(pieces):
        k = 1 + i % 20
        lists.append(pieces[i : i + k])
        i += k
    lists[3] = [bytearray(p) for p in lists[3]]

    async def main() -> None:
        transport, proto, peer = await connected_pair()
        counted = Counting(transport)
        writer = impl.Writer(counted)
        writer.writelines(lists[0])
        assert counted.writes == 0  # room in the socket: one system call, no transport write
        for group in lists[1:]:
            writer.writelines(group)
        assert counted.writes > 0 and proto.paused == 1
        received = bytearray()
        done = threading.Event()
        threading.Thread(target=read_all, args=(peer, received, done), daemon=True).start()
        await drain_close_and_join(transport, proto, peer, done)
        assert bytes(received) == b"".join(bytes(p) for group in lists for p in group)

    run(main)
