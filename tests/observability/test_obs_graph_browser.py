"""The /graph page in a real headless Chromium while the seed 1.2 split runs:
the v1.0 and v1.1 edges must read about 90 % and 10 %."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from obs_support import seed_split_config
from support import REPO, Proxy, Upstream, request

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
EDGE = re.compile(r"<g ([^>]*class=\"edge [^\"]*\"[^>]*)>")
ATTR = re.compile(r'([a-z-]+)="([^"]*)"')


def _chromium(tmp: Path, *args: str) -> str:
    assert CHROMIUM is not None
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(cmd, capture_output=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


def _edges(dom: str) -> list[dict[str, str]]:
    return [{k: html.unescape(v) for k, v in ATTR.findall(m.group(1))} for m in EDGE.finditer(dom)]


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="chromium not installed (apt: chromium)")
def test_graph_page_shows_the_split(tmp_path: Path) -> None:
    stop = threading.Event()
    with (
        Upstream("v10") as a,
        Upstream("v11") as b,
        Proxy(tmp_path, seed_split_config([a.port], [b.port]), "--seed", "21") as proxy,
    ):
        sent = threading.Semaphore(0)

        def traffic() -> None:
            while not stop.is_set():
                request(proxy.port, "/", host="demoapp:8080")
                sent.release()

        worker = threading.Thread(target=traffic, daemon=True)
        worker.start()
        try:
            for _ in range(300):  # enough traffic before the first look
                assert sent.acquire(timeout=10)
            url = f"http://127.0.0.1:{proxy.admin_port}/graph"
            dom = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", url)
            artifacts = REPO / "artifacts"
            artifacts.mkdir(exist_ok=True)
            shot = artifacts / "graph-seed-1.2.png"
            _chromium(tmp_path, "--virtual-time-budget=5000", "--window-size=1100,700", f"--screenshot={shot}", url)
        finally:
            stop.set()
            worker.join(10)
    edges = _edges(dom)
    versions = {e["data-to"].rsplit("|", 1)[-1]: e for e in edges if e["data-from"].startswith("svc:demoapp")}
    assert set(versions) == {"v1.0", "v1.1"}, edges
    v10, v11 = float(versions["v1.0"]["data-share"]), float(versions["v1.1"]["data-share"])
    assert 84 <= v10 <= 96 and 4 <= v11 <= 16, (v10, v11)
    assert v10 + v11 == pytest.approx(100, abs=0.2)
    # The numbers are drawn as the edge labels, not only carried as attributes.
    labels = re.findall(r'<text [^>]*class="label"[^>]*>([^<]*)', dom)
    assert any(f"{v10:.1f} %" in t for t in labels) and any(f"{v11:.1f} %" in t for t in labels), labels
    assert "healthy" in versions["v1.0"]["class"]
    assert shot.exists() and shot.stat().st_size > 1000
