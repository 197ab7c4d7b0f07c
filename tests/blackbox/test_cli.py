"""The command line as a user runs it: exit codes and exact output lines."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from support import REPO, Proxy, Upstream, free_port, request, service_entry, wait_until

SEED = REPO / "examples" / "seed"


def fastproxy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fastproxy", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_version(tmp_path):
    import fastproxy as fp

    run = fastproxy("--version", cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.strip() == f"fastproxy {fp.__version__}"


def test_check_accepts_the_seed_and_reports_problems_with_file_line_and_path(tmp_path):
    run = fastproxy("check", "-c", str(SEED / "services"), "-c", str(SEED / "1.3-headers"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    bad = tmp_path / "vs.yaml"
    bad.write_text(
        "apiVersion: networking.istio.io/v1\n"
        "kind: VirtualService\n"
        "metadata: {name: demoapp}\n"
        "spec:\n"
        "  hosts: [demoapp]\n"
        "  http:\n"
        "  - route:\n"
        "    - destination: {host: demoapp}\n"
        "      weight: -1\n"
        "    retries: {attempts: 2, retryon: 5xx}\n"
        "---\n"
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata: {name: backendv36}\n"
    )
    run = fastproxy("check", "-c", str(bad), cwd=tmp_path)
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    where = f"{bad}:9: VirtualService default/demoapp: spec.http[0].route[0].weight:"
    assert any(line.startswith(where) for line in lines), lines
    where = f"{bad}:10: VirtualService default/demoapp: spec.http[0].retries"
    assert any(line.startswith(where) and "retryon" in line for line in lines), lines
    assert any("Deployment" in line and "skipping" in line for line in lines), lines


def test_routes_prints_the_seed_table(tmp_path):
    run = fastproxy("routes", "-c", str(SEED / "services"), "-c", str(SEED / "1.1-redirect-rewrite"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = [line.split() for line in run.stdout.splitlines()]
    assert rows[0] == ["NAME", "DOMAINS", "MATCH", "VIRTUAL", "SERVICE"]
    assert ["8080", "demoapp,", "demoapp.default", "+", "1", "more...", "/canary*", "demoapp.default"] in rows
    assert ["80", "proxy,", "proxy.default", "+", "1", "more...", "/backend*", "proxy.default"] in rows


def test_run_with_the_h11_codec(tmp_path):
    with (
        Upstream("h11") as up,
        Proxy(tmp_path, service_entry("app", 80, [(up.port, {"app": "app"})]), "--codec", "h11") as proxy,
    ):
        r = request(proxy.port, "/codec", host="app")
        assert r.status == 200 and r.json()["path"] == "/codec"


def test_no_metrics_flag_stops_counting_but_not_serving(tmp_path):
    with (
        Upstream("quiet") as up,
        Proxy(tmp_path, service_entry("app", 80, [(up.port, {"app": "app"})]), "--no-metrics") as proxy,
    ):
        for _ in range(3):
            assert request(proxy.port, "/", host="app").status == 200
        text = proxy.admin("/stats/prometheus").decode()
        assert "istio_requests_total{" not in text


WARNING = "warning: running pure-Python twins"


def _startup_stderr(env: dict[str, str], cwd: Path) -> str:
    """What `fastproxy run` printed on stderr by the time it was ready."""
    config = cwd / "se.yaml"
    config.write_text(service_entry("app", 80, [(free_port(), {"app": "app"})]))
    admin = free_port()
    args = ["run", "-c", str(config), "--listen", f"127.0.0.1:{free_port()}", "--admin", f"127.0.0.1:{admin}"]
    cmd = [sys.executable, "-m", "fastproxy", *args]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: _ready(admin) or proc.poll() is not None, timeout=20)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    return stderr


def _ready(admin: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def test_run_warns_when_the_compiled_parts_are_missing(tmp_path):
    import fastproxy as fp

    # The installed package as a build without a compiler would leave it: sources only.
    pure = tmp_path / "pure"
    shutil.copytree(Path(fp.__file__).parent, pure / "fastproxy", ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTPROXY_")}
    stderr = _startup_stderr({**env, "PYTHONPATH": str(pure)}, tmp_path)
    assert WARNING in stderr and "fastproxy.pipeline.exchange" in stderr, stderr
    # As installed (or with the twins chosen on purpose) there is no such line.
    assert WARNING not in _startup_stderr(dict(os.environ), tmp_path)
