"""The proxy's clocks read what Python's time module reads, compiled or not."""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate

from fastproxy.config import loads
from fastproxy.pipeline.replies import DATE
from fastproxy.server import Limits, ProxyState

CONFIG = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: up}
spec:
  hosts: [up.example]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1}]
"""


def test_now_is_time_monotonic() -> None:
    loop = asyncio.new_event_loop()
    try:
        result = loads(("clock.yaml", CONFIG))
        assert result.config is not None, result.problems
        state = ProxyState(loop, result.config, Limits())
        for _ in range(1000):
            before = time.monotonic()
            now = state.now()
            after = time.monotonic()
            # Rounding to a double may differ by a nanosecond from Python's own conversion.
            assert before - 1e-6 <= now <= after + 1e-6
    finally:
        loop.close()


def test_date_line_is_the_current_wall_second() -> None:
    for _ in range(3):
        before = int(time.time())
        line = DATE.line()
        after = int(time.time())
        if before == after:  # not across a second boundary
            assert line == b"date: " + formatdate(before, usegmt=True).encode() + b"\r\n"
            return
    raise AssertionError("three reads each crossed a second boundary")
