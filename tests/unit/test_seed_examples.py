"""examples/seed: every section folder is complete with services/, valid, and matches the demo apps."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fastproxy.demo.apps import DEFAULT_APPS
from fastproxy.demo.sections import SECTIONS, copy_config, seed_root

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed"


def documents(folder: Path) -> list[dict]:
    docs = []
    for path in sorted(folder.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


@pytest.mark.parametrize("key", list(SECTIONS))
def test_section_combines_with_services_without_duplicates(key):
    folder = SEED / SECTIONS[key].folder
    docs = documents(SEED / "services") + documents(folder)
    names = [(d["kind"], d["metadata"].get("namespace", "default"), d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), names
    assert ("VirtualService", "default", "demoapp") in names


@pytest.mark.parametrize("key", list(SECTIONS))
def test_section_passes_fastproxy_check(key):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastproxy",
            "check",
            "-c",
            str(SEED / "services"),
            "-c",
            str(SEED / SECTIONS[key].folder),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_service_entries_point_at_the_demo_apps():
    endpoints = {}
    for doc in documents(SEED / "services"):
        if doc["kind"] == "ServiceEntry":
            for ep in doc["spec"]["endpoints"]:
                endpoints[ep["ports"]["http"]] = (ep["labels"]["app"], ep["labels"]["version"])
    apps = {spec.port: (spec.kind, spec.version) for spec in DEFAULT_APPS}
    assert endpoints == apps


def test_gateway_section_folders_bind_proxy_to_the_gateway():
    for key in ("1.2", "1.4", "1.5", "1.6"):
        (vs,) = [
            d
            for d in documents(SEED / SECTIONS[key].folder)
            if d["kind"] == "VirtualService" and d["metadata"]["name"] == "proxy"
        ]
        assert vs["spec"]["gateways"] == ["istio-system/proxy-gateway"]
        assert vs["spec"]["hosts"] == ["fe.toptops.top"]


def test_copy_config_replaces_the_previous_section(tmp_path):
    dest = tmp_path / "section"
    copy_config(SECTIONS["1.5"].folder, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["virtualservice-demoapp.yaml", "virtualservice-proxy.yaml"]
    copy_config(SECTIONS["1.3"].folder, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["virtualservice-demoapp.yaml"]
    assert (dest / "virtualservice-demoapp.yaml").read_bytes() == (
        Path(str(seed_root())) / "1.3-headers" / "virtualservice-demoapp.yaml"
    ).read_bytes()
