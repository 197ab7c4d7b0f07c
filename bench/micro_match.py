"""Micro-benchmark of RouteMatcher.match() on both implementations, at 10, 100 and 1,000 routes.

Modelled on Envoy's route-table speed test: the matching route is the last of
the table, so every earlier route is tried and rejected first.

    python bench/micro_match.py                 # one table: compiled (fastproxy._match) vs pure twin
    python bench/micro_match.py --sizes 10,100  # fewer table sizes

The compiled module is built by `pip install -e .` (or `python setup.py build_ext --inplace`);
without it only the pure twin's column is filled.
"""

from __future__ import annotations

import argparse
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

Request = tuple[bytes, bytes, bytes, bytes, list[tuple[bytes, bytes]], int]


def prefix_table(n: int) -> tuple[list[MatchSpec], Request]:
    """n routes: n-1 URI prefixes that miss, and a last one that matches."""
    specs = [MatchSpec(uri=StringMatch(PREFIX, b"/api/v%d/" % i)) for i in range(n - 1)]
    specs.append(MatchSpec(uri=StringMatch(PREFIX, b"/productpage")))
    request = (b"GET", b"/productpage?u=normal", b"reviews:9080", b"http", HEADERS, 9080)
    return specs, request


def missing(i: int) -> list[MatchSpec]:
    """Nine specs of assorted kinds that all reject the benchmark request; `i` keeps their values distinct."""
    return [
        MatchSpec(uri=StringMatch(EXACT, b"/login%d" % i)),
        MatchSpec(uri=StringMatch(REGEX, regex=re.compile(rb"/static%d/.*\.css" % i))),
        MatchSpec(method=StringMatch(EXACT, b"POST"), uri=StringMatch(PREFIX, b"/api%d" % i)),
        MatchSpec(authority=StringMatch(EXACT, b"admin%d.example.com" % i)),
        MatchSpec(headers=((b"x-canary-%d" % i, StringMatch(PRESENT)),)),
        MatchSpec(query_params=((b"debug%d" % i, StringMatch(EXACT, b"1")),)),
        MatchSpec(uri=StringMatch(PREFIX, b"/canary%d" % i)),
        MatchSpec(headers=((b"end-user", StringMatch(EXACT, b"admin%d" % i)),)),
        MatchSpec(without_headers=((b"user-agent", StringMatch(PREFIX, b"curl")),)),
    ]


def mixed_table(n: int) -> tuple[list[MatchSpec], Request]:
    """n routes of assorted kinds (exact, regex, method, authority, headers, query); the last matches a header."""
    specs: list[MatchSpec] = []
    i = 0
    while len(specs) < n - 1:
        specs += missing(i)[: n - 1 - len(specs)]
        i += 1
    specs.append(MatchSpec(headers=((b"end-user", StringMatch(EXACT, b"jason")),)))
    request = (b"GET", b"/reviews/1?u=jason", b"reviews:9080", b"http", HEADERS, 9080)
    return specs, request


def per_call_us(fn: Callable[[], object]) -> float:
    """Best of 5 repeats, each long enough (autorange: >= 0.2 s) for the clock not to matter."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def load_impls() -> dict[str, ModuleType]:
    impls: dict[str, ModuleType] = {"python": importlib.import_module("fastproxy._match_py")}
    try:
        impls["cython"] = importlib.import_module("fastproxy._match")
    except ImportError:
        print("fastproxy._match is not built; run: pip install -e . (or setup.py build_ext --inplace)", file=sys.stderr)
    return impls


def row(case: str, routes: str, times: dict[str, float]) -> str:
    py, cy = times["python"], times.get("cython")
    cy_s = f"{cy:.3f}" if cy is not None else "n/a"
    ratio = f"{py / cy:.1f}x" if cy else "n/a"
    return f"| {case} | {routes} | {py:.3f} | {cy_s} | {ratio} |"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10,100,1000", help="comma-separated route-table sizes (default 10,100,1000)")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    impls = load_impls()

    print("| case | routes | pure python us/match | compiled us/match | compiled speed-up |")
    print("|---|---:|---:|---:|---:|")
    for case, build in (("URI prefixes, last matches", prefix_table), ("mixed kinds, header on last", mixed_table)):
        for n in sizes:
            specs, request = build(n)
            times: dict[str, float] = {}
            for impl_name, mod in impls.items():
                m = mod.RouteMatcher(specs)
                # A table where an earlier route matched would time less work than it claims.
                assert m.match(*request) == len(specs) - 1, (impl_name, case, n)
                times[impl_name] = per_call_us(lambda m=m, r=request: m.match(*r))
            print(row(case, str(n), times), flush=True)

    cumulative = (20, 50, 100)
    times = {n: per_call_us(lambda mod=mod: mod.pick(cumulative, 0x5DEECE66D)) for n, mod in impls.items()}
    print(row("pick, weighted destinations", "3 destinations", times))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
