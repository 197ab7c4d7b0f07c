"""A closed client connection is freed by reference counting: no reference
cycle is left for the cyclic garbage collector, whose passes would otherwise
grow with connection churn (a connection per request) and pause the worker."""

from __future__ import annotations

import asyncio
import gc

import uvloop
from support import Upstream, request, service_entry

from fastproxy.config import loads
from fastproxy.listeners import ListenerSet
from fastproxy.server import Limits, ProxyState


async def _churn(upstream_port: int, connections: int) -> list[str]:
    """Names of the proxy's own types among what the cyclic GC had to free."""
    loop = asyncio.get_running_loop()
    config = loads(("c.yaml", service_entry("app", 80, [(upstream_port, {"app": "app"})]))).config
    assert config is not None
    state = ProxyState(loop, config, Limits(), None, seed=1)
    listeners = ListenerSet(state, ("127.0.0.1", 0), "127.0.0.1", False)
    await listeners.open_all()
    port = listeners.addresses["mesh"][1]
    gc.collect()
    gc.disable()
    # Keep what the collector finds, to see what it is (other threads of this
    # test process may leave cycles of their own, e.g. exception tracebacks).
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        close = [("connection", "close")]
        for _ in range(connections):
            r = await loop.run_in_executor(None, lambda: request(port, "/", host="app", headers=close))
            assert r.status == 200
        deadline = loop.time() + 5
        while state.connections and loop.time() < deadline:  # the proxy's side of the last close
            await asyncio.sleep(0.01)
        assert not state.connections
        gc.collect()
        return [
            f"{type(o).__module__}.{type(o).__qualname__}"
            for o in gc.garbage
            if type(o).__module__.startswith("fastproxy.")
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
        listeners.close()
        state.stop()


def test_closed_connections_leave_no_reference_cycles():
    with Upstream("cycles") as up:
        assert uvloop.run(_churn(up.port, 30)) == []
