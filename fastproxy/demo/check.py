"""`fastproxy demo --check`: run each seed section's commands and compare with the tutorial.

The probabilistic sections (split, faults) use bounds several standard
deviations wide, so a correct proxy fails them far less than once in 10 000 runs.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Awaitable, Callable

from fastproxy.demo import client
from fastproxy.demo.apps import RequestLog
from fastproxy.demo.sections import GATEWAY, GATEWAY_HOST, MESH

__all__ = ["Checker", "CHECKS"]

USER_AGENT = "fastproxy-demo-check/0.1"
V10 = re.compile(
    r"Proxying value: iKubernetes demoapp v1\.0 !! .*ServerName: demoappv10-\d+.* - Took \d+ milliseconds\.\n"
)
V11 = re.compile(
    r"Proxying value: iKubernetes demoapp v1\.1 !! .*ServerName: demoappv11-\d+.* - Took \d+ milliseconds\.\n"
)
ABORT = re.compile(r"Proxying value: fault filter abort - Took \d+ milliseconds\.\n")
TOOK = re.compile(r" - Took (\d+) milliseconds\.\n$")


class Checker:
    """Sends the tutorial's requests and collects what did not look like the tutorial."""

    def __init__(self, records: deque[RequestLog]) -> None:
        self.records = records  # every request the demo apps served, newest last
        self.failures: list[str] = []
        self.notes: list[str] = []

    def expect(self, ok: bool, message: str) -> bool:
        if not ok:
            self.failures.append(message)
        return ok

    async def mesh(
        self,
        authority: str,
        path: str = "/",
        *,
        method: str = "GET",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> client.Response:
        return await client.request(
            *MESH,
            f"http://{authority}{path}",
            method=method,
            headers=[("User-Agent", USER_AGENT), *headers],
            timeout=15,
        )

    async def gateway(self, path: str = "/", *, headers: tuple[tuple[str, str], ...] = ()) -> client.Response:
        return await client.request(
            *GATEWAY, path, headers=[("Host", GATEWAY_HOST), ("User-Agent", USER_AGENT), *headers], timeout=15
        )

    async def many(
        self, n: int, concurrency: int, send: Callable[[int], Awaitable[client.Response]]
    ) -> list[client.Response]:
        """Send n requests, `concurrency` at a time; transport errors count as failures."""
        sem = asyncio.Semaphore(concurrency)
        results: list[client.Response | None] = [None] * n

        async def one(i: int) -> None:
            async with sem:
                try:
                    results[i] = await send(i)
                except (OSError, TimeoutError, client.ProtocolError) as exc:
                    self.failures.append(f"request {i}: {type(exc).__name__}: {exc}")

        await asyncio.gather(*(one(i) for i in range(n)))
        return [r for r in results if r is not None]

    def body_is(self, resp: client.Response, pattern: re.Pattern[str], what: str) -> bool:
        return self.expect(
            resp.status == 200 and pattern.fullmatch(resp.text) is not None,
            f"{what}: expected {pattern.pattern[:60]!r}..., got {resp.status} {resp.text[:120]!r}",
        )


async def check_1_1(c: Checker) -> None:
    c.body_is(await c.mesh("proxy"), V10, "curl proxy")
    c.body_is(await c.mesh("proxy", "/canary"), V11, "curl proxy/canary")
    for authority in ("proxy", "demoapp:8080"):
        r = await c.mesh(authority, "/backend", method="HEAD")
        c.expect(
            r.status == 301 and r.header("location") == "http://backend:8082/",
            f"curl -I {authority}/backend: expected 301 to http://backend:8082/, "
            f"got {r.status} location={r.header('location')}",
        )
    r = await c.mesh("backend:8082")
    c.expect(r.status == 200 and "backend v3.6" in r.text, f"curl backend:8082: got {r.status} {r.text[:80]!r}")


async def check_1_2(c: Checker) -> None:
    answers = await c.many(200, 8, lambda i: c.mesh("proxy"))
    v10 = sum(1 for r in answers if V10.fullmatch(r.text))
    v11 = sum(1 for r in answers if V11.fullmatch(r.text))
    c.notes.append(f"200 requests: {v10} from v1.0, {v11} from v1.1")
    c.expect(v10 + v11 == 200, f"{200 - v10 - v11} answers were neither v1.0 nor v1.1")
    # 10 % of 200 is 20, sd 4.2: outside 6..38 is a broken split.
    c.expect(6 <= v11 <= 38, f"expected about 20 of 200 from v1.1 (90/10), got {v11}")
    r = await c.gateway()
    c.expect(
        V10.fullmatch(r.text) is not None or V11.fullmatch(r.text) is not None,
        f"through the gateway: got {r.status} {r.text[:120]!r}",
    )


async def check_1_3(c: Checker) -> None:
    canary = (("x-canary", "true"),)
    r = await c.mesh("demoapp:8080", headers=canary)
    c.expect(r.text.startswith("iKubernetes demoapp v1.1 !!"), f"x-canary: true -> expected v1.1, got {r.text!r}")
    c.expect(r.header("x-canary") == "true", f"x-canary: true -> response header x-canary={r.header('x-canary')}")
    r = await c.mesh("demoapp:8080", "/user-agent", headers=canary)
    c.expect(r.text == "User-Agent: Chrome\n", f"canary /user-agent: expected 'User-Agent: Chrome', got {r.text!r}")
    r = await c.mesh("demoapp:8080", "/user-agent")
    c.expect(r.text == f"User-Agent: {USER_AGENT}\n", f"default /user-agent: got {r.text!r}")
    c.expect(r.header("x-envoy") == "test", f"default route: response header x-envoy={r.header('x-envoy')}")
    c.expect(r.header("x-canary") is None, "default route: unexpected x-canary response header")
    r = await c.mesh("demoapp:8080")
    c.expect(r.text.startswith("iKubernetes demoapp v1.0 !!"), f"no x-canary -> expected v1.0, got {r.text!r}")


async def check_1_4(c: Checker) -> None:
    answers = await c.many(60, 6, lambda i: c.mesh("proxy", "/canary"))
    aborts = sum(1 for r in answers if ABORT.fullmatch(r.text))
    v11 = sum(1 for r in answers if V11.fullmatch(r.text))
    c.notes.append(f"60 x proxy/canary: {aborts} fault aborts, {v11} from v1.1")
    c.expect(aborts + v11 == len(answers) == 60, "some /canary answers were neither an abort nor v1.1")
    c.expect(3 <= aborts <= 24, f"expected about 12 of 60 aborted (20 %), got {aborts}")

    # All at once, so the 3 s delays overlap instead of adding up.
    answers = await c.many(40, 40, lambda i: c.gateway())
    delayed = [r for r in answers if r.elapsed >= 2.9]
    c.notes.append(f"40 x gateway /: {len(delayed)} delayed by ~3 s")
    c.expect(all(V10.fullmatch(r.text) for r in answers), "some gateway answers were not v1.0")
    c.expect(1 <= len(delayed) <= 20, f"expected about 8 of 40 delayed (20 %), got {len(delayed)}")
    for r in delayed:
        m = TOOK.search(r.text)
        c.expect(m is not None and int(m.group(1)) >= 2900, f"delayed answer does not say ~3000 ms: {r.text!r}")
        c.expect(r.elapsed < 6, f"delayed answer took {r.elapsed:.1f} s")


async def check_1_5(c: Checker) -> None:
    answers = await c.many(30, 30, lambda i: c.gateway())
    timeouts = [r for r in answers if r.status == 504]
    ok = [r for r in answers if r.status == 200]
    c.notes.append(f"30 x gateway /: {len(timeouts)} timed out after 1 s, {len(ok)} answered")
    c.expect(len(timeouts) + len(ok) == len(answers) == 30, "answers other than 200 or 504")
    c.expect(5 <= len(timeouts) <= 25, f"expected about 15 of 30 timeouts (50 %), got {len(timeouts)}")
    for r in timeouts:
        c.expect(r.text == "upstream request timeout", f"504 body: {r.text!r}")
        c.expect(0.9 <= r.elapsed < 2.5, f"timeout answered after {r.elapsed:.2f} s instead of ~1 s")
    for r in ok:
        c.body_is(r, V10, "gateway /")

    answers = await c.many(30, 10, lambda i: c.gateway("/canary"))
    aborts = sum(1 for r in answers if ABORT.fullmatch(r.text))
    v11 = sum(1 for r in answers if V11.fullmatch(r.text))
    c.notes.append(f"30 x gateway /canary: {aborts} fault aborts, {v11} from v1.1")
    c.expect(aborts + v11 == 30, "some /canary answers were neither an abort nor v1.1")
    c.expect(5 <= aborts <= 25, f"expected about 15 of 30 aborted (50 %), got {aborts}")


async def check_1_6(c: Checker) -> None:
    ids = [f"demo-check-mirror-{i}" for i in range(10)]
    for rid in ids:
        c.body_is(await c.mesh("proxy", headers=(("x-request-id", rid),)), V10, "curl proxy")
    # Mirroring is fire-and-forget: the copies may land after the answers.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3
    while True:
        mirrored = {e.request_id: e for e in c.records if e.version == "v1.1" and e.request_id in ids}
        if len(mirrored) == len(ids) or loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    c.notes.append(f"{len(mirrored)} of {len(ids)} requests mirrored to v1.1")
    c.expect(len(mirrored) == len(ids), f"only {len(mirrored)} of {len(ids)} mirrored copies reached v1.1")
    hosts = {e.host for e in mirrored.values()}
    c.expect(hosts <= {"demoapp:8080"}, f"mirrored copies carried Host {sorted(hosts)}, expected demoapp:8080")


CHECKS: dict[str, Callable[[Checker], Awaitable[None]]] = {
    "1.1": check_1_1,
    "1.2": check_1_2,
    "1.3": check_1_3,
    "1.4": check_1_4,
    "1.5": check_1_5,
    "1.6": check_1_6,
}
