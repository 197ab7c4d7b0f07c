"""`fastproxy demo --check`: every seed section (1.1-1.6) reproduced end to end
with the built-in demo upstreams and the seed's own YAML, as a user runs it."""

from __future__ import annotations

import subprocess
import sys


def test_demo_check_reproduces_every_seed_section(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "fastproxy", "demo", "--check", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    for section in ("1.1", "1.2", "1.3", "1.4", "1.5", "1.6"):
        assert f"PASS {section}" in run.stdout
    assert "6 of 6 sections passed" in run.stdout
