"""`fastproxy demo`: the seed tutorial on one machine.

Starts the demo upstreams in this process, fastproxy as a child process on a
temporary copy of examples/seed/services plus one section, and prints the
commands to try.  Switching sections rewrites the copy and sends SIGHUP, which
is also how a user would change config on a running proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from fastproxy.demo import client
from fastproxy.demo.apps import DEFAULT_APPS, DemoApp, RequestLog, start_demo_apps, stop_demo_apps
from fastproxy.demo.check import CHECKS, Checker
from fastproxy.demo.sections import ADMIN, GATEWAY, GATEWAY_HOST, MESH, SECTIONS, Probe, Section, copy_config

__all__ = ["main"]

READY_TIMEOUT = 20.0  # first start may include importing a cold install
RELOAD_TIMEOUT = 3.0
STOP_TIMEOUT = 12.0
TRAFFIC_USER_AGENT = "curl/8.0 (fastproxy demo --traffic)"  # a little over the proxy's default 10 s drain


class DemoError(Exception):
    """A failure worth one clear line and exit code 1."""


def _addr(hp: tuple[str, int]) -> str:
    return f"{hp[0]}:{hp[1]}"


def _die_with_parent() -> None:
    # If the demo is killed outright, the proxy must not stay behind holding the ports.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _check_ports_free(ports: list[tuple[str, int, str]]) -> None:
    for host, port, what in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise DemoError(
                        f"port {host}:{port} ({what}) is already in use (is another fastproxy demo running?)"
                    ) from None
                raise DemoError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.records: deque[RequestLog] = deque(maxlen=20000)
        self.show_logs = not (args.check or args.quiet)
        self.apps: list[DemoApp] = []
        self.proc: asyncio.subprocess.Process | None = None
        self.tmp: Path | None = None
        self.section: Section = SECTIONS[args.section or "1.1"]
        self.stop = asyncio.Event()
        self.switch_lock = asyncio.Lock()

    def _log(self, entry: RequestLog) -> None:
        self.records.append(entry)
        if self.show_logs:
            print(f"    {entry}", flush=True)

    # -- lifecycle ------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        try:
            _check_ports_free(
                [
                    (*MESH, "mesh listener"),
                    (*ADMIN, "admin listener"),
                    (*GATEWAY, "gateway listener"),
                    *(("127.0.0.1", spec.port, f"demo app {spec.name}") for spec in DEFAULT_APPS),
                ]
            )
            try:
                self.apps = await start_demo_apps("127.0.0.1", DEFAULT_APPS, mesh=MESH, log=self._log)
            except OSError as exc:
                raise DemoError(f"cannot start the demo apps: {exc.strerror or exc}") from None
            self.tmp = Path(tempfile.mkdtemp(prefix="fastproxy-demo-"))
            copy_config("services", self.tmp / "services")
            copy_config(self.section.folder, self.tmp / "section")
            await self._start_proxy()
            if self.args.check:
                return await self._check_all()
            return await self._interactive()
        except DemoError as exc:
            print(f"fastproxy demo: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            await self._shutdown()

    async def _start_proxy(self) -> None:
        assert self.tmp is not None
        cmd = [
            sys.executable, "-m", "fastproxy", "run",
            "-c", str(self.tmp / "services"), "-c", str(self.tmp / "section"),
            "--listen", _addr(MESH), "--admin", _addr(ADMIN), "--bind", GATEWAY[0],
        ]  # fmt: skip
        self.proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        while True:
            if self.proc.returncode is not None:
                raise DemoError(
                    f"the proxy exited with code {self.proc.returncode} before it was ready "
                    f"(its message is above); command: {' '.join(cmd)}"
                )
            with contextlib.suppress(OSError, TimeoutError, client.ProtocolError):
                resp = await client.request(*ADMIN, "/ready", timeout=1)
                if resp.status == 200:
                    return
            if loop.time() > deadline:
                raise DemoError(
                    f"the proxy did not answer 200 on http://{_addr(ADMIN)}/ready within {READY_TIMEOUT:g} s"
                )
            if self.stop.is_set():
                raise DemoError("stopped before the proxy was ready")
            await asyncio.sleep(0.05)

    async def _shutdown(self) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        await stop_demo_apps(self.apps)
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- switching sections ---------------------------------------------------

    async def _config_dump(self) -> bytes | None:
        try:
            resp = await client.request(*ADMIN, "/config_dump", timeout=2)
        except (OSError, TimeoutError, client.ProtocolError):
            return None
        return resp.body if resp.status == 200 else None

    async def switch(self, key: str) -> bool:
        """Point the running proxy at section `key`; True once the new config serves."""
        async with self.switch_lock:
            assert self.tmp is not None and self.proc is not None
            section = SECTIONS[key]
            before = await self._config_dump()
            copy_config(section.folder, self.tmp / "section")
            self.proc.send_signal(signal.SIGHUP)
            loop = asyncio.get_running_loop()
            sent = loop.time()
            applied = False
            while loop.time() - sent < RELOAD_TIMEOUT:
                await asyncio.sleep(0.05)
                if self.proc.returncode is not None:
                    raise DemoError(f"the proxy exited with code {self.proc.returncode} on SIGHUP")
                after = await self._config_dump()
                if before is None or after is None:
                    # No config dump to compare: rely on the contract (new config within 1 s).
                    if loop.time() - sent >= 1.1:
                        applied = True
                        break
                elif after != before:
                    applied = True
                    break
            self.section = section
            return applied

    # -- --check ----------------------------------------------------------------

    async def _check_all(self) -> int:
        keys = [self.args.section] if self.args.section else list(SECTIONS)
        failed = 0
        for n, key in enumerate(keys):
            section = SECTIONS[key]
            if n and not await self.switch(key):
                print(f"  note: no sign of the reload to {key} after {RELOAD_TIMEOUT:g} s", flush=True)
            checker = Checker(self.records)
            started = time.monotonic()
            try:
                await CHECKS[key](checker)
            except (OSError, TimeoutError, client.ProtocolError) as exc:
                checker.failures.append(f"request failed: {type(exc).__name__}: {exc}")
            took = time.monotonic() - started
            verdict = "FAIL" if checker.failures else "PASS"
            failed += bool(checker.failures)
            print(f"{verdict} {key} {section.title} ({took:.1f} s)", flush=True)
            for note in checker.notes:
                print(f"     {note}", flush=True)
            for failure in checker.failures[:10]:
                print(f"     x {failure}", flush=True)
            if len(checker.failures) > 10:
                print(f"     x ... and {len(checker.failures) - 10} more", flush=True)
            if self.stop.is_set():
                return 1
        print(f"{len(keys) - failed} of {len(keys)} sections passed", flush=True)
        return 1 if failed else 0

    # -- interactive --------------------------------------------------------------

    def _print_intro(self) -> None:
        s = self.section
        print(f"\n== seed section {s.key}: {s.title}", flush=False)
        print(f"   config: examples/seed/services + examples/seed/{s.folder}")
        print("   try:")
        for cmd, expect in s.commands:
            print(f"     {cmd}")
            print(f"         # {expect}")
        print(f"   admin: http://{_addr(ADMIN)}/routes  /config_dump  /stats/prometheus  /clusters")
        print(f"   live traffic graph: http://{_addr(ADMIN)}/graph")
        if sys.stdin.isatty():
            print(f"   type a section ({', '.join(SECTIONS)}) and Enter to switch; Ctrl-C to stop", flush=True)
        else:
            print("   Ctrl-C to stop", flush=True)

    async def _interactive(self) -> int:
        apps = ", ".join(f"{a.name} :{a.port}" for a in self.apps)
        print(f"fastproxy demo: demo apps up ({apps})")
        print(f"fastproxy demo: proxy up, mesh listener {_addr(MESH)}, gateway {GATEWAY_HOST} on {_addr(GATEWAY)}")
        self._print_intro()
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        if sys.stdin.isatty():
            loop.add_reader(sys.stdin.fileno(), self._on_input, tasks)
        traffic = asyncio.create_task(self._traffic()) if self.args.traffic else None
        assert self.proc is not None
        proc_wait = asyncio.create_task(self.proc.wait())
        stop_wait = asyncio.create_task(self.stop.wait())
        try:
            await asyncio.wait({proc_wait, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if sys.stdin.isatty():
                loop.remove_reader(sys.stdin.fileno())
            for task in (traffic, stop_wait, *tasks):
                if task is not None:
                    task.cancel()
            for task in (traffic, stop_wait, *tasks):
                if task is not None:
                    with contextlib.suppress(asyncio.CancelledError, DemoError):
                        await task
        if not self.stop.is_set():
            print(f"fastproxy demo: the proxy exited with code {self.proc.returncode}", file=sys.stderr)
            return 1
        proc_wait.cancel()
        print("\nfastproxy demo: stopping", flush=True)
        return 0

    def _on_input(self, tasks: set[asyncio.Task[None]]) -> None:
        line = sys.stdin.readline()
        if not line:  # EOF: keep running, stop listening to the terminal
            asyncio.get_running_loop().remove_reader(sys.stdin.fileno())
            return
        key = line.strip()
        if not key:
            return
        if key in ("q", "quit", "exit"):
            self.stop.set()
        elif key in SECTIONS:
            task = asyncio.create_task(self._switch_and_report(key))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        else:
            print(f"   unknown section {key!r}; type one of {', '.join(SECTIONS)} (or q to quit)", flush=True)

    async def _switch_and_report(self, key: str) -> None:
        try:
            applied = await self.switch(key)
        except DemoError as exc:
            print(f"fastproxy demo: {exc}", file=sys.stderr, flush=True)
            self.stop.set()
            return
        if not applied:
            print("   note: the proxy did not show the new config yet (see its messages above)", flush=True)
        self._print_intro()

    async def _traffic(self) -> None:
        """The tutorial's `while true; do curl ...; sleep 0.$RANDOM; done`, printed line by line."""
        turn = 0
        while True:
            probes = self.section.traffic
            probe = probes[turn % len(probes)]
            turn += 1
            label = _probe_label(probe)
            headers = [("User-Agent", TRAFFIC_USER_AGENT), *probe.headers]
            try:
                if probe.via == "gateway":
                    resp = await client.request(
                        *GATEWAY, probe.path, headers=[("Host", GATEWAY_HOST), *headers], timeout=30
                    )
                else:
                    resp = await client.request(
                        *MESH,
                        f"http://{probe.authority}{probe.path}",
                        headers=headers,
                        timeout=30,
                    )
                print(f"{label}  {_answer_line(resp)}", flush=True)
            except (OSError, TimeoutError, client.ProtocolError) as exc:
                print(f"{label}  error: {type(exc).__name__}: {exc}", flush=True)
                await asyncio.sleep(1)
            await asyncio.sleep(random.uniform(0.1, 0.6))


def _probe_label(probe: Probe) -> str:
    where = GATEWAY_HOST if probe.via == "gateway" else probe.authority
    extra = "".join(f" ({k}: {v})" for k, v in probe.headers)
    return f"{where}{probe.path}{extra}:"


def _answer_line(resp: client.Response) -> str:
    if 300 <= resp.status < 400:
        return f"{resp.status} location: {resp.header('location')}"
    text = resp.text.strip()
    if not text:
        return f"{resp.status} (empty body)"
    if resp.status != 200:
        return f"{resp.status} {text[:300]}"
    return text[:300]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fastproxy demo",
        description="Run the seed tutorial locally: demo upstreams plus fastproxy, and the commands to try.",
    )
    p.add_argument("--section", choices=list(SECTIONS), default=None, help="seed section to start with (default 1.1)")
    p.add_argument("--traffic", action="store_true", help="send steady traffic and print every answer")
    p.add_argument("--quiet", action="store_true", help="do not print the demo apps' request logs")
    p.add_argument(
        "--check",
        action="store_true",
        help="run every section's commands (or only --section's), compare the answers with the "
        "tutorial's, exit 1 on a mismatch",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not (seed := Path(str(_seed_marker()))).exists():
        print(f"fastproxy demo: the example configs are missing ({seed})", file=sys.stderr)
        return 1
    os.environ.setdefault("PYTHONUNBUFFERED", "1")  # the child's log lines interleave readably
    return asyncio.run(Demo(args).run())


def _seed_marker() -> object:
    from fastproxy.demo.sections import seed_root

    return seed_root() / "services"


if __name__ == "__main__":
    raise SystemExit(main())
