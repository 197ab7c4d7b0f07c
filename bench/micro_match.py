"""Micro-benchmark of RouteMatcher.match() on both implementations.

Modelled on Envoy's route-table speed test: the matching route is the last of
the table, so every earlier route is tried and rejected first.

    python setup.py build_ext --inplace && python bench/micro_match.py
"""

from __future__ import annotations

import importlib
import re
import sys
import timeit
from collections.abc import Callable
from types import ModuleType

from fastproxy.table import EXACT, PREFIX, PRESENT, REGEX, MatchSpec, StringMatch

HEADERS = [
    (b"host", b"reviews:9080"),
    (b"user-agent", b"curl/8.5.0"),
    (b"accept", b"*/*"),
    (b"x-request-id", b"3f1c0a4e-5b7d-4c1a-9e2f-0d8b6a7c9e11"),
    (b"end-user", b"jason"),
]


def uri_table() -> tuple[list[MatchSpec], tuple]:
    """Ten routes, nine prefixes that miss and a last one that matches."""
    specs = [MatchSpec(uri=StringMatch(PREFIX, b"/api/v%d/" % i)) for i in range(9)]
    specs.append(MatchSpec(uri=StringMatch(PREFIX, b"/productpage")))
    request = (b"GET", b"/productpage?u=normal", b"reviews:9080", b"http", HEADERS, 9080)
    return specs, request


def mixed_table() -> tuple[list[MatchSpec], tuple]:
    """Ten routes of assorted kinds; the last one matches on a header."""
    specs = [
        MatchSpec(uri=StringMatch(EXACT, b"/login")),
        MatchSpec(uri=StringMatch(REGEX, regex=re.compile(rb"/static/.*\.css"))),
        MatchSpec(method=StringMatch(EXACT, b"POST"), uri=StringMatch(PREFIX, b"/api")),
        MatchSpec(authority=StringMatch(EXACT, b"admin.example.com")),
        MatchSpec(headers=((b"x-canary", StringMatch(PRESENT)),)),
        MatchSpec(query_params=((b"debug", StringMatch(EXACT, b"1")),)),
        MatchSpec(uri=StringMatch(PREFIX, b"/canary")),
        MatchSpec(headers=((b"end-user", StringMatch(EXACT, b"admin")),)),
        MatchSpec(without_headers=((b"user-agent", StringMatch(PREFIX, b"curl")),)),
        MatchSpec(headers=((b"end-user", StringMatch(EXACT, b"jason")),)),
    ]
    request = (b"GET", b"/reviews/1?u=jason", b"reviews:9080", b"http", HEADERS, 9080)
    return specs, request


def per_call_us(fn: Callable[[], object]) -> float:
    number = 20_000
    best = min(timeit.repeat(fn, number=number, repeat=5))
    return best / number * 1e6


def main() -> int:
    impls: dict[str, ModuleType] = {"python": importlib.import_module("fastproxy._match_py")}
    try:
        impls["cython"] = importlib.import_module("fastproxy._match")
    except ImportError:
        print("fastproxy._match is not built; run: python setup.py build_ext --inplace", file=sys.stderr)

    print(f"{'case':<28}{'python µs':>12}{'cython µs':>12}{'ratio':>8}")
    for name, build in (("10 prefixes, last matches", uri_table), ("10 mixed, header on last", mixed_table)):
        specs, request = build()
        times: dict[str, float] = {}
        for impl_name, mod in impls.items():
            m = mod.RouteMatcher(specs)
            assert m.match(*request) == len(specs) - 1, (impl_name, name)
            times[impl_name] = per_call_us(lambda m=m, r=request: m.match(*r))
        py = times["python"]
        cy = times.get("cython")
        cy_s = f"{cy:12.3f}" if cy is not None else f"{'-':>12}"
        ratio = f"{py / cy:7.1f}x" if cy else f"{'-':>8}"
        print(f"{name:<28}{py:12.3f}{cy_s}{ratio}")

    cumulative = (20, 50, 100)
    times = {n: per_call_us(lambda mod=mod: mod.pick(cumulative, 0x5DEECE66D)) for n, mod in impls.items()}
    cy = times.get("cython")
    print(
        f"{'pick, 3 destinations':<28}{times['python']:12.3f}"
        + (f"{cy:12.3f}{times['python'] / cy:7.1f}x" if cy else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
