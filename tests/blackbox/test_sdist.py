"""The source distribution carries what the compiled build needs."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sdist_ships_the_cython_sources_and_pxd_types(tmp_path):
    subprocess.run(
        # A fresh egg-info: setuptools would otherwise add the files a previous sdist listed.
        [sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(tmp_path), "sdist", "-d", str(tmp_path)],
        cwd=ROOT,
        # The file list does not depend on compiling: no Cython needed in this environment.
        env={
            **{k: v for k, v in os.environ.items() if k != "FASTPROXY_REQUIRE_EXTENSIONS"},
            "FASTPROXY_NO_EXTENSIONS": "1",
        },
        check=True,
        capture_output=True,
        timeout=120,
    )
    (archive,) = tmp_path.glob("fastproxy-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    pure_mode = runpy.run_path(str(ROOT / "fastproxy" / "_twins.py"))["PURE_MODE"]
    for module in pure_mode:
        stem = module.replace(".", "/")
        assert stem + ".py" in names
        assert stem + ".pxd" in names, f"{stem}.pxd missing: the module would compile untyped"
    for pyx in ("fastproxy/_match.pyx", "fastproxy/codec/_http.pyx", "fastproxy/pipeline/_heads.pyx"):
        assert pyx in names
