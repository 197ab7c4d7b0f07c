"""Fuzz the config loader: random YAML documents (Istio-shaped and not) and
mutated seed files never raise; they load, or give problem lines naming the file."""

from __future__ import annotations

from pathlib import Path

import yaml
from fuzzlib import SCALE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastproxy.config import loads

SEED_DIR = Path(__file__).resolve().parent.parent / "data" / "config" / "seed"
SEEDS = [p.read_text() for p in sorted(SEED_DIR.glob("*.yaml"))]

KEYS = [
    "apiVersion", "kind", "metadata", "name", "namespace", "spec", "hosts", "gateways", "http", "match",
    "uri", "prefix", "exact", "regex", "headers", "route", "destination", "host", "subset", "port", "number",
    "weight", "timeout", "retries", "attempts", "perTryTimeout", "retryOn", "fault", "delay", "abort",
    "percentage", "value", "fixedDelay", "httpStatus", "mirror", "mirrorPercentage", "rewrite", "redirect",
    "request", "response", "set", "add", "remove", "subsets", "labels", "trafficPolicy", "loadBalancer",
    "simple", "connectionPool", "outlierDetection", "servers", "protocol", "endpoints", "address", "ports",
    "resolution", "location", "workloadSelector", "selector", "sourceLabels", "queryParams", "authority",
]  # fmt: skip
KINDS = ["VirtualService", "DestinationRule", "ServiceEntry", "WorkloadEntry", "Gateway", "Deployment", ""]
APIS = ["networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3", "v1", "x"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["*", "/", "5xx", "1s", "100ms", "-1s", "v1", "reviews", "a.b.c", "^(.*$", "0", "HTTP", "mesh"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
    max_leaves=25,
)
documents = st.fixed_dictionaries(
    {"apiVersion": st.sampled_from(APIS), "kind": st.sampled_from(KINDS)},
    optional={
        "metadata": st.fixed_dictionaries({"name": st.text(max_size=8).filter(lambda t: "\n" not in t)}),
        "spec": values,
    },
)

FUZZ = settings(
    max_examples=300 * SCALE,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check(text: str) -> None:
    check_loads(text)


def check_loads(text: str) -> None:
    result = loads(("fuzz.yaml", text))
    if result.config is None:
        assert result.problems
    for line in result.problems:
        assert line.startswith(("fuzz.yaml", "internal error")) and "\n" not in line, line
        assert not line.startswith("internal error"), line  # a compiler crash is a bug too


@FUZZ
@given(st.lists(documents, min_size=1, max_size=3))
def test_istio_shaped_documents(docs):
    check(yaml.safe_dump_all(docs))


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(text):
    check(text)


@FUZZ
@given(st.sampled_from(SEEDS), st.integers(0, 10_000), st.integers(0, 40), st.text(max_size=12))
def test_mutated_seed_files(seed, pos, cut, insert):
    pos %= len(seed) + 1
    check(seed[:pos] + insert + seed[pos + cut :])


def test_control_character_is_a_problem_line_not_a_crash():
    check_loads("kind: \x1f\n")


def test_a_name_with_a_newline_gives_single_line_problems():
    check_loads('apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: "a\\nb"}\nspec: {}\n')
