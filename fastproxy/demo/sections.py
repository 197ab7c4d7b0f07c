"""The seed tutorial's sections: where their config lives and what to try."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = [
    "ADMIN",
    "GATEWAY",
    "GATEWAY_HOST",
    "MESH",
    "SECTIONS",
    "Section",
    "Probe",
    "copy_config",
    "seed_root",
]

MESH = ("127.0.0.1", 15001)
ADMIN = ("127.0.0.1", 15000)
GATEWAY = ("127.0.0.1", 18080)
GATEWAY_HOST = "fe.toptops.top"

_CURL_MESH = f"curl -x http://{MESH[0]}:{MESH[1]}"
_CURL_GW = f"curl -H 'Host: {GATEWAY_HOST}' http://{GATEWAY[0]}:{GATEWAY[1]}"


@dataclass(frozen=True, slots=True)
class Probe:
    """One request of the tutorial: through the mesh (authority = the service) or the gateway."""

    via: str  # "mesh" or "gateway"
    authority: str  # mesh: "proxy", "demoapp:8080", ...; gateway: ignored
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Section:
    key: str  # "1.1"
    folder: str  # folder under examples/seed
    title: str
    commands: tuple[tuple[str, str], ...]  # (shell command, what to expect)
    traffic: tuple[Probe, ...]  # what --traffic sends, in turn


SECTIONS: dict[str, Section] = {
    s.key: s
    for s in (
        Section(
            "1.1",
            "1.1-redirect-rewrite",
            "URL redirect and rewrite",
            (
                (f"{_CURL_MESH} http://proxy/", "Proxying value: iKubernetes demoapp v1.0 ..."),
                (f"{_CURL_MESH} http://proxy/canary", "rewritten to / and sent to v1.1"),
                (f"{_CURL_MESH} -I http://proxy/backend", "HTTP/1.1 301, location: http://backend:8082/"),
                (f"{_CURL_MESH} http://backend:8082/", "gowebserver backend v3.6 ..."),
            ),
            (Probe("mesh", "proxy"), Probe("mesh", "proxy", "/canary")),
        ),
        Section(
            "1.2",
            "1.2-traffic-split",
            "weight-based traffic split (90/10)",
            (
                (f"{_CURL_MESH} http://proxy/", "about 9 in 10 answers from v1.0, 1 in 10 from v1.1"),
                (f"{_CURL_GW}/", "the same split, from outside through the gateway"),
                (
                    f"while true; do {_CURL_MESH} -s http://proxy/; sleep 0.2; done",
                    "the tutorial's steady traffic",
                ),
            ),
            (Probe("mesh", "proxy"),),
        ),
        Section(
            "1.3",
            "1.3-headers",
            "header match and header operations",
            (
                (f"{_CURL_MESH} -H 'x-canary: true' http://demoapp:8080/", "iKubernetes demoapp v1.1 ..."),
                (f"{_CURL_MESH} -I -H 'x-canary: true' http://demoapp:8080/", "response has x-canary: true"),
                (f"{_CURL_MESH} -H 'x-canary: true' http://demoapp:8080/user-agent", "User-Agent: Chrome"),
                (f"{_CURL_MESH} http://demoapp:8080/user-agent", "User-Agent: curl/..."),
                (f"{_CURL_MESH} -I http://demoapp:8080/user-agent", "response has x-envoy: test"),
            ),
            (
                Probe("mesh", "demoapp:8080", "/user-agent", (("x-canary", "true"),)),
                Probe("mesh", "demoapp:8080", "/user-agent"),
            ),
        ),
        Section(
            "1.4",
            "1.4-fault-injection",
            "fault injection (20 % 3 s delays, 20 % 555 aborts)",
            (
                (
                    f"while true; do {_CURL_GW}/; sleep 0.$RANDOM; done",
                    "about 1 in 5 answers takes ~3000 milliseconds",
                ),
                (
                    f"while true; do {_CURL_MESH} -s http://proxy/canary; sleep 0.$RANDOM; done",
                    "about 1 in 5: Proxying value: fault filter abort",
                ),
            ),
            (Probe("gateway", "", "/"), Probe("mesh", "proxy", "/canary")),
        ),
        Section(
            "1.5",
            "1.5-timeout-retry",
            "timeout and retries on the gateway (50 % faults)",
            (
                (
                    f"while true; do {_CURL_GW}/; echo; sleep 0.$RANDOM; done",
                    "about half: upstream request timeout (after 1 s)",
                ),
                (
                    f"while true; do {_CURL_GW}/canary; sleep 0.$RANDOM; done",
                    "about half: Proxying value: fault filter abort",
                ),
            ),
            (Probe("gateway", "", "/"), Probe("gateway", "", "/canary")),
        ),
        Section(
            "1.6",
            "1.6-mirror",
            "traffic mirroring (v1.0 answers, v1.1 gets a copy)",
            (
                (
                    f"{_CURL_MESH} http://proxy/",
                    "answers from v1.0; this terminal logs a copy at demoappv11-*",
                ),
                (f"{_CURL_GW}/", "the same from outside"),
            ),
            (Probe("mesh", "proxy"),),
        ),
    )
}


def seed_root() -> Traversable:
    """examples/seed, from the installed package or, in a source checkout, from the repository."""
    try:
        root = resources.files("fastproxy.examples") / "seed"
        if root.is_dir():
            return root
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[2] / "examples" / "seed"


def copy_config(folder: str, dest: Path) -> None:
    """Replace dest's YAML files with the ones in examples/seed/<folder>."""
    src = seed_root() / folder
    if not src.is_dir():
        raise FileNotFoundError(f"example folder {folder!r} is missing from the package")
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.iterdir():
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()
    for item in src.iterdir():
        if item.is_file() and item.name.endswith((".yaml", ".yml")):
            (dest / item.name).write_bytes(item.read_bytes())
