"""Shared by the observability tests: the seed 1.2 split on test upstreams."""

from __future__ import annotations

import re
from pathlib import Path

from support import REPO, service_entry

SEED = REPO / "examples" / "seed"


def seed_split_config(v10_ports: list[int], v11_ports: list[int], section: str = "1.2-traffic-split") -> str:
    """examples/seed services' DestinationRule + a section's demoapp VirtualService,
    with the demoapp endpoints pointed at test upstreams."""
    eps = [(p, {"app": "demoapp", "version": "v1.0"}) for p in v10_ports]
    eps += [(p, {"app": "demoapp", "version": "v1.1"}) for p in v11_ports]
    cfg = service_entry("demoapp", 8080, eps)
    rule = (SEED / "services" / "demoapp.yaml").read_text().split("---", 1)[1]
    cfg += "---\n" + rule
    cfg += "---\n" + (SEED / section / "virtualservice-demoapp.yaml").read_text()
    return cfg


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Samples of a text exposition; fails on any malformed line."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"malformed sample line: {line!r}"
        labels = dict(_LABEL.findall(m.group(3) or ""))
        out.append((m.group(1), labels, float(m.group(4))))
    return out


def total(samples: list[tuple[str, dict[str, str], float]], name: str, **want: str) -> float:
    return sum(v for n, labels, v in samples if n == name and all(labels.get(k) == x for k, x in want.items()))


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path
