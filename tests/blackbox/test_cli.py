"""The command line as a user runs it: exit codes and exact output lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import REPO, Proxy, Upstream, request, service_entry

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
