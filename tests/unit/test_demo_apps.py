"""The demo upstreams answer exactly like the seed tutorial's images."""

import asyncio
import re
import signal
import subprocess
import sys

from fastproxy.demo import client
from fastproxy.demo.apps import NOT_FOUND_PAGE, DemoApp, RequestLog


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


async def raw_exchange(port: int, data: bytes, until: bytes) -> bytes:
    """Write raw bytes, read until `until` has appeared as many times as asked by the caller."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    buf = b""
    while until not in buf:
        chunk = await reader.read(65536)
        if not chunk:
            break
        buf += chunk
    writer.close()
    return buf


class StandInMesh:
    """A stand-in for fastproxy's mesh listener: records request heads, answers from a script."""

    def __init__(self, answers: list[bytes]):
        self.answers = answers
        self.heads: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            writer.write(self.answers.pop(0))
            await writer.drain()
        finally:
            writer.close()

    def close(self):
        assert self.server is not None
        self.server.close()


def answer(status: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\ncontent-type: text/plain\r\n{extra}\r\n".encode() + body
    )


def test_demoapp_root_line_and_headers():
    logs: list[RequestLog] = []

    async def go():
        app = DemoApp("demoapp", "v1.1", "demoappv11-0", log=logs.append)
        await app.start("127.0.0.1", 0)
        try:
            resp = await client.request("127.0.0.1", app.port, "/", headers=[("x-request-id", "abc-1")])
            head = await client.request("127.0.0.1", app.port, "/", method="HEAD")
        finally:
            await app.close()
        return resp, head

    resp, head = run(go())
    expected = "iKubernetes demoapp v1.1 !! ClientIP: 127.0.0.1, ServerName: demoappv11-0, ServerIP: 127.0.0.1!\n"
    assert resp.status == 200
    assert resp.text == expected
    assert resp.header("content-type") == "text/html; charset=utf-8"
    assert head.status == 200 and head.body == b""
    assert head.header("content-length") == str(len(expected))
    assert [(e.name, e.method, e.target, e.status, e.request_id) for e in logs] == [
        ("demoappv11-0", "GET", "/", 200, "abc-1"),
        ("demoappv11-0", "HEAD", "/", 200, ""),
    ]
    assert str(logs[0]).startswith("[demoappv11-0] GET / -> 200")
    assert "x-request-id=abc-1" in str(logs[0])


def test_demoapp_user_agent_hostname_and_404():
    async def go():
        app = DemoApp("demoapp", "v1.0", "demoappv10-1", log=None)
        await app.start("127.0.0.1", 0)
        try:
            ua = await client.request("127.0.0.1", app.port, "/user-agent", headers=[("User-Agent", "Chrome")])
            host = await client.request("127.0.0.1", app.port, "/hostname")
            missing = await client.request("127.0.0.1", app.port, "/backend")
        finally:
            await app.close()
        return ua, host, missing

    ua, host, missing = run(go())
    assert ua.text == "User-Agent: Chrome\n"
    assert host.text == "ServerName: demoappv10-1\n"
    assert missing.status == 404
    assert missing.body == NOT_FOUND_PAGE
    assert b"<title>404 Not Found</title>" in missing.body
    assert missing.header("content-type") == "text/html; charset=utf-8"


def test_keep_alive_and_pipelining_on_one_connection():
    async def go():
        app = DemoApp("backend", "v3.6", "backendv36-0", log=None)
        await app.start("127.0.0.1", 0)
        try:
            two = b"GET / HTTP/1.1\r\nHost: backend\r\n\r\nGET /x HTTP/1.1\r\nHost: backend\r\n\r\n"
            reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
            writer.write(two)
            buf = b""
            while buf.count(b"HTTP/1.1 200") < 2 or not buf.endswith(b"!\n"):
                chunk = await reader.read(65536)
                assert chunk, f"connection closed early: {buf!r}"
                buf += chunk
            # The connection is still usable for a third request.
            writer.write(b"GET / HTTP/1.1\r\nHost: backend\r\n\r\n")
            third = await reader.readuntil(b"!\n")
            writer.close()
        finally:
            await app.close()
        return buf, third

    buf, third = run(go())
    line = b"gowebserver backend v3.6 !! ClientIP: 127.0.0.1, ServerName: backendv36-0, ServerIP: 127.0.0.1!\n"
    assert buf.count(line) == 2
    assert third.startswith(b"HTTP/1.1 200 OK\r\n") and third.endswith(line)


def test_malformed_request_gets_400():
    async def go():
        app = DemoApp("demoapp", "v1.0", "demoappv10-0", log=None)
        await app.start("127.0.0.1", 0)
        try:
            return await raw_exchange(app.port, b"GET / HTTP/1.1\r\nHost a\r\n\r\n", b"bad request")
        finally:
            await app.close()

    assert run(go()).startswith(b"HTTP/1.1 400 ")


def test_frontend_asks_demoapp_through_the_mesh_in_absolute_form():
    upstream_line = b"iKubernetes demoapp v1.1 !! ClientIP: 127.0.0.1, ServerName: demoappv11-0, ServerIP: 127.0.0.1!\n"

    async def go():
        mesh = StandInMesh([answer("200 OK", upstream_line)])
        mesh_port = await mesh.start()
        app = DemoApp("proxy", "v0.1", "proxy-0", mesh=("127.0.0.1", mesh_port), log=None)
        await app.start("127.0.0.1", 0)
        try:
            resp = await client.request("127.0.0.1", app.port, "/canary?x=1", headers=[("x-request-id", "rid-7")])
        finally:
            await app.close()
            mesh.close()
        return resp, mesh.heads

    resp, heads = run(go())
    assert resp.status == 200
    assert re.fullmatch(
        r"Proxying value: iKubernetes demoapp v1\.1 !! ClientIP: 127\.0\.0\.1, ServerName: demoappv11-0, "
        r"ServerIP: 127\.0\.0\.1! - Took \d+ milliseconds\.\n",
        resp.text,
    ), resp.text
    (head,) = heads
    lines = head.decode().split("\r\n")
    assert lines[0] == "GET http://demoapp:8080/canary?x=1 HTTP/1.1"
    assert "host: demoapp:8080" in [h.lower() for h in lines[1:]]
    assert "x-request-id: rid-7" in lines[1:]


def test_frontend_reports_fault_abort_and_404_inside_proxying_value():
    async def go():
        mesh = StandInMesh(
            [
                answer("555 Unknown", b"fault filter abort"),
                answer("404 NOT FOUND", NOT_FOUND_PAGE),
            ]
        )
        mesh_port = await mesh.start()
        app = DemoApp("proxy", "v0.1", "proxy-0", mesh=("127.0.0.1", mesh_port), log=None)
        await app.start("127.0.0.1", 0)
        try:
            abort = await client.request("127.0.0.1", app.port, "/canary")
            missing = await client.request("127.0.0.1", app.port, "/backend")
        finally:
            await app.close()
            mesh.close()
        return abort, missing

    abort, missing = run(go())
    # The seed's frontend answers 200 whatever demoapp said.
    assert abort.status == 200
    assert re.fullmatch(r"Proxying value: fault filter abort - Took \d+ milliseconds\.\n", abort.text)
    assert missing.status == 200
    assert missing.text.startswith("Proxying value: <!doctype html>")
    assert "<h1>Not Found</h1>" in missing.text
    assert re.search(r"</p> - Took \d+ milliseconds\.\n$", missing.text)


def test_frontend_follows_redirects_through_the_mesh():
    async def go():
        mesh = StandInMesh(
            [
                answer("301 Moved Permanently", b"", "location: http://backend:8082/\r\n"),
                answer("200 OK", b"gowebserver backend v3.6 !! ...\n"),
            ]
        )
        mesh_port = await mesh.start()
        app = DemoApp("proxy", "v0.1", "proxy-0", mesh=("127.0.0.1", mesh_port), log=None)
        await app.start("127.0.0.1", 0)
        try:
            resp = await client.request("127.0.0.1", app.port, "/backend")
        finally:
            await app.close()
            mesh.close()
        return resp, mesh.heads

    resp, heads = run(go())
    assert resp.text.startswith("Proxying value: gowebserver backend v3.6 !! ... - Took ")
    assert [h.split(b"\r\n", 1)[0] for h in heads] == [
        b"GET http://demoapp:8080/backend HTTP/1.1",
        b"GET http://backend:8082/ HTTP/1.1",
    ]


def test_frontend_without_mesh_listener_answers_a_clear_502():
    async def go():
        # Grab a free port, then close it so nothing listens there.
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        dead_port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        app = DemoApp("proxy", "v0.1", "proxy-0", mesh=("127.0.0.1", dead_port), log=None)
        await app.start("127.0.0.1", 0)
        try:
            first = await client.request("127.0.0.1", app.port, "/")
            # The app survived and still answers.
            second = await client.request("127.0.0.1", app.port, "/")
        finally:
            await app.close()
        return first, second, dead_port

    first, second, dead_port = run(go())
    assert first.status == 502 and second.status == 502
    assert re.fullmatch(
        rf"Proxying error: http://demoapp:8080/ through the mesh listener 127\.0\.0\.1:{dead_port}: "
        r"connection refused \(is fastproxy running\?\) - Took \d+ milliseconds\.\n",
        first.text,
    ), first.text


def test_single_app_command_line():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fastproxy.demo.apps",
            "demoapp",
            "--version",
            "v1.1",
            "--port",
            "0",
            "--name",
            "demoappv11-3",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        m = re.fullmatch(r"demoappv11-3 listening on http://127\.0\.0\.1:(\d+)\n", line)
        assert m, line
        resp = run(client.request("127.0.0.1", int(m.group(1)), "/hostname"))
        assert resp.text == "ServerName: demoappv11-3\n"
        assert proc.stdout.readline().startswith("[demoappv11-3] GET /hostname -> 200")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
