"""Reading YAML: files, directories, syntax errors, skipped kinds, line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastproxy.config import load, loads
from fastproxy.config.validate import parse_duration

DATA = Path(__file__).resolve().parent.parent / "data" / "config"
SEED = DATA / "seed"
REGISTRY = str(SEED / "00-registry.yaml")

GATEWAY = (
    "apiVersion: networking.istio.io/v1beta1\nkind: Gateway\nmetadata:\n  name: {name}\n"
    "spec:\n  servers:\n  - port: {{number: {port}, protocol: HTTP}}\n    hosts: ['*']\n"
)


@pytest.mark.parametrize("section", sorted(p.name for p in SEED.glob("1.*.yaml")))
def test_every_seed_section_loads_cleanly(section: str) -> None:
    result = load([REGISTRY, str(SEED / section)])
    assert result.problems == []
    assert result.config is not None
    assert result.warnings == [
        f"{REGISTRY}:101: skipping apps/v1 Deployment default/backendv36 (not a traffic-management kind)"
    ]
    assert result.config.sources == (REGISTRY, str(SEED / section))


def test_directory_reads_yaml_and_yml_sorted_by_name(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text(GATEWAY.format(name="b", port=81))
    (tmp_path / "a.yaml").write_text(GATEWAY.format(name="a", port=80))
    (tmp_path / "c.txt").write_text("not: yaml: at all: [")
    (tmp_path / "sub.yaml").mkdir()
    result = load([str(tmp_path)])
    assert result.problems == []
    assert result.config is not None
    assert result.config.sources == (str(tmp_path / "a.yaml"), str(tmp_path / "b.yml"))
    assert [g.listener.name for g in result.config.gateways] == ["default/a:80", "default/b:81"]


def test_several_paths_are_one_config(tmp_path: Path) -> None:
    one = tmp_path / "one.yaml"
    one.write_text(GATEWAY.format(name="a", port=80))
    result = load([REGISTRY, str(one)])
    assert result.problems == []
    assert result.config is not None
    assert "outbound|8080||demoapp.default.svc.cluster.local" in result.config.clusters
    # Servers of different Gateways on one port share one listener, named after the first.
    assert [(g.port, g.listener.name) for g in result.config.gateways] == [(80, "istio-system/proxy-gateway:80")]


def test_missing_file_is_a_problem_not_an_exception(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = load([str(missing)])
    assert result.config is None
    assert result.problems == [f"{missing}:0: cannot read file: No such file or directory"]


def test_yaml_syntax_error_names_file_and_line() -> None:
    result = loads(("bad.yaml", "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: [x\n"))
    assert result.config is None
    assert result.problems == [
        "bad.yaml:4: YAML syntax error: while parsing a flow sequence, expected ',' or ']', but got '<stream end>'"
    ]


def test_tabs_and_bad_indentation_are_syntax_errors() -> None:
    result = loads(("t.yaml", "kind: Gateway\nmetadata:\n\tname: x\n"))
    assert len(result.problems) == 1
    assert result.problems[0].startswith("t.yaml:3: YAML syntax error: ")


def test_duplicate_yaml_key_is_a_problem() -> None:
    text = GATEWAY.format(name="a", port=80) + "kind: Gateway\n"
    assert loads(("d.yaml", text)).problems == ["d.yaml:9: duplicate key 'kind' (first on line 2)"]


def test_non_utf8_file(tmp_path: Path) -> None:
    f = tmp_path / "latin1.yaml"
    f.write_bytes(b"kind: Gateway\nmetadata: {name: caf\xe9}\n")
    assert load([str(f)]).problems == [f"{f}:2: file is not valid UTF-8"]


def test_unsafe_tags_are_rejected() -> None:
    result = loads(("u.yaml", "kind: !!python/object/apply:os.system ['true']\n"))
    assert result.config is None
    assert len(result.problems) == 1 and result.problems[0].startswith("u.yaml:1: ")


def test_empty_documents_and_comments_are_skipped() -> None:
    text = "# only a comment\n---\n---\n" + GATEWAY.format(name="a", port=80) + "---\n"
    result = loads(("e.yaml", text))
    assert result.problems == [] and result.warnings == []
    assert result.config is not None and len(result.config.gateways) == 1


def test_skipped_kinds_warn_once_each() -> None:
    text = """\
apiVersion: v1
kind: Service
metadata: {name: backend}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: s, namespace: prod}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: k8s-gw}
"""
    result = loads(("k.yaml", text))
    assert result.problems == []
    assert result.warnings == [
        "k.yaml:1: skipping v1 Service default/backend (not a traffic-management kind)",
        "k.yaml:5: skipping networking.istio.io/v1 Sidecar prod/s (not a traffic-management kind)",
        "k.yaml:9: skipping gateway.networking.k8s.io/v1 Gateway default/k8s-gw (not a traffic-management kind)",
    ]


def test_all_three_api_versions_are_accepted() -> None:
    for version in ("v1", "v1beta1", "v1alpha3"):
        text = GATEWAY.format(name="a", port=80).replace("v1beta1", version)
        assert loads(("v.yaml", text)).problems == []


def test_metadata_extras_are_accepted() -> None:
    text = GATEWAY.format(name="a", port=80).replace(
        "  name: a\n",
        "  name: a\n  namespace: edge\n  labels: {team: web}\n  annotations: {note: x}\n"
        "  creationTimestamp: 2022-01-29T04:32:08Z\n  uid: 1234\n  resourceVersion: '5'\n",
    )
    result = loads(("m.yaml", text))
    assert result.problems == []
    assert result.config is not None
    assert result.config.gateways[0].listener.name == "edge/a:80"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("1m", 60.0),
        ("1h", 3600.0),
        ("10us", 0.00001),
        ("1h30m", 5400.0),
        ("0", 0.0),
        ("24h", 86400.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "s", "1x", "1.2.3s", "one second", "1 s"])
def test_bad_durations(text: str) -> None:
    assert parse_duration(text) is None
