"""The compiled matcher and its pure twin agree on random tables and requests; pick is fair."""

from __future__ import annotations

import importlib
import os
import re
from collections import Counter
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastproxy import _match_py
from fastproxy.table import EXACT, PREFIX, PRESENT, REGEX, MatchSpec, StringMatch


def _compiled() -> ModuleType | None:
    try:
        return importlib.import_module("fastproxy._match")
    except ImportError:
        if os.environ.get("FASTPROXY_REQUIRE_EXTENSIONS"):
            raise
        return None


compiled = _compiled()
needs_ext = pytest.mark.skipif(compiled is None, reason="fastproxy._match is not built")

# A small alphabet so that random conditions and random requests often meet.
ALPHABET = b"/aAb?=&#.,"
REGEXES = [rb".*", rb"/a.*", rb"[ab]+", rb"/A?b*", rb"", rb"a|b", rb"(?i)/a.*", rb"[^?]*"]
PRESENCE = st.just(StringMatch(PRESENT))

short = st.binary(max_size=4).map(lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b))
tiny = st.sampled_from([b"", b"/", b"a", b"A", b"/a", b"/b", b"a,", b"/a/"])
path_st = short.map(lambda b: b"/" + b) | short
regex_sm = st.sampled_from(REGEXES).map(lambda r: StringMatch(REGEX, regex=re.compile(r)))
value_sm = st.builds(StringMatch, st.sampled_from([EXACT, PREFIX]), tiny | short) | regex_sm
any_sm = value_sm | PRESENCE


def rare(s: st.SearchStrategy) -> st.SearchStrategy:
    """Absent three times out of four, so that random specs still match now and then."""
    return st.one_of(st.none(), st.none(), st.none(), s)


# Pseudo-headers are rarer; request headers repeat often, to exercise the "," join.
HEADER_NAMES = [b"x-a", b"x-a", b"end-user", b"end-user", b":method", b":path", b":authority", b":scheme"]
REQUEST_HEADER_NAMES = [b"x-a", b"end-user", b"other"]
QUERY_KEYS = [b"a", b"b"]
METHODS = [b"GET", b"POST", b"get"]
AUTHORITIES = [b"svc", b"svc:80", b"Svc", b"a"]
SCHEMES = [b"http", b"https"]
PORTS = [80, 8080]

cond_map = rare(st.lists(st.tuples(st.sampled_from(HEADER_NAMES), any_sm), min_size=1, max_size=2)).map(
    lambda c: tuple(c or ())
)


@st.composite
def specs(draw: st.DrawFn) -> MatchSpec:
    uri = draw(st.none() | value_sm)
    icase = draw(st.booleans())
    if uri is not None and icase and uri.kind != REGEX:
        uri = StringMatch(uri.kind, uri.value.lower())  # what the compiler stores
    return MatchSpec(
        uri=uri,
        ignore_uri_case=icase,
        method=draw(rare(st.sampled_from(METHODS).map(lambda m: StringMatch(EXACT, m)) | value_sm)),
        authority=draw(rare(st.sampled_from(AUTHORITIES).map(lambda a: StringMatch(EXACT, a)) | value_sm)),
        scheme=draw(rare(st.sampled_from(SCHEMES).map(lambda s: StringMatch(EXACT, s)))),
        headers=draw(cond_map),
        without_headers=draw(cond_map),
        query_params=draw(
            rare(st.lists(st.tuples(st.sampled_from(QUERY_KEYS), any_sm), min_size=1, max_size=2)).map(
                lambda c: tuple(c or ())
            )
        ),
        port=draw(st.sampled_from([0, 0, *PORTS])),
    )


query_part = st.lists(
    st.tuples(st.sampled_from(QUERY_KEYS), st.none() | tiny | short).map(
        lambda kv: kv[0] if kv[1] is None else kv[0] + b"=" + kv[1]
    ),
    max_size=3,
).map(lambda parts: b"&".join(parts))


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, bytes, bytes, bytes, list[tuple[bytes, bytes]], int]:
    path = draw(path_st)
    if draw(st.booleans()):
        path += b"?" + draw(query_part)
    if draw(st.booleans()):
        path += b"#" + draw(short)
    headers = draw(st.lists(st.tuples(st.sampled_from(REQUEST_HEADER_NAMES), tiny | short), max_size=4))
    return (
        draw(st.sampled_from(METHODS)),
        path,
        draw(st.sampled_from(AUTHORITIES)),
        draw(st.sampled_from(SCHEMES)),
        headers,
        draw(st.sampled_from(PORTS)),
    )


@needs_ext
@settings(max_examples=150, deadline=None)
@given(st.lists(specs(), max_size=6), st.lists(requests(), min_size=1, max_size=5))
def test_compiled_and_pure_matchers_agree(table_specs: list[MatchSpec], reqs: list[tuple]) -> None:
    assert compiled is not None
    fast = compiled.RouteMatcher(table_specs)
    slow = _match_py.RouteMatcher(table_specs)
    for req in reqs:
        assert fast.match(*req) == slow.match(*req), req


tiny_sm = st.builds(StringMatch, st.sampled_from([EXACT, PREFIX]), tiny) | regex_sm | PRESENCE
tiny_conds = st.lists(st.tuples(st.sampled_from([b"x-a", b"end-user"]), tiny_sm), max_size=2).map(tuple)


@st.composite
def header_query_specs(draw: st.DrawFn) -> MatchSpec:
    return MatchSpec(
        headers=draw(tiny_conds),
        without_headers=draw(tiny_conds),
        query_params=draw(st.lists(st.tuples(st.sampled_from(QUERY_KEYS), tiny_sm), max_size=2).map(tuple)),
    )


@st.composite
def header_query_requests(draw: st.DrawFn) -> tuple[bytes, bytes, bytes, bytes, list[tuple[bytes, bytes]], int]:
    params = draw(st.lists(st.tuples(st.sampled_from(QUERY_KEYS), st.none() | tiny), max_size=3))
    query = b"&".join(k if v is None else k + b"=" + v for k, v in params)
    headers = draw(st.lists(st.tuples(st.sampled_from(REQUEST_HEADER_NAMES), tiny), max_size=4))
    return (b"GET", b"/p?" + query, b"svc", b"http", headers, 80)


@needs_ext
@settings(max_examples=150, deadline=None)
@given(st.lists(header_query_specs(), min_size=1, max_size=4), st.lists(header_query_requests(), max_size=8))
def test_compiled_and_pure_agree_on_header_and_query_conditions(
    table_specs: list[MatchSpec], reqs: list[tuple]
) -> None:
    # Focused on repeated headers, absent-vs-empty and repeated query keys, which the
    # general test above reaches only now and then.
    assert compiled is not None
    fast = compiled.RouteMatcher(table_specs)
    slow = _match_py.RouteMatcher(table_specs)
    for req in reqs:
        assert fast.match(*req) == slow.match(*req), req


weights_st = st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=6).filter(
    lambda ws: len(ws) == 1 or sum(ws) > 0
)


def cumulative_of(weights: list[int]) -> tuple[int, ...]:
    out, total = [], 0
    for w in weights:
        total += w
        out.append(total)
    return tuple(out)


@needs_ext
@settings(max_examples=300, deadline=None)
@given(weights_st, st.integers(min_value=-(2**80), max_value=2**80))
def test_compiled_and_pure_pick_agree(weights: list[int], rnd: int) -> None:
    assert compiled is not None
    cumulative = cumulative_of(weights)
    assert compiled.pick(cumulative, rnd) == _match_py.pick(cumulative, rnd)


IMPLS = [
    pytest.param(_match_py, id="python"),
    pytest.param(compiled, id="cython", marks=needs_ext),
]


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=100, deadline=None)
@given(weights=weights_st.filter(lambda ws: len(ws) > 1))
def test_pick_distribution_is_exactly_the_weights(impl: ModuleType, weights: list[int]) -> None:
    # Over one full cycle of rnd values each index is chosen exactly w_i times.
    cumulative = cumulative_of(weights)
    counts = Counter(impl.pick(cumulative, r) for r in range(cumulative[-1]))
    assert [counts[i] for i in range(len(weights))] == weights


@pytest.mark.parametrize("impl", IMPLS)
def test_pick_with_random_ints_follows_the_weights(impl: ModuleType) -> None:
    import random

    rng = random.Random(1234)
    cumulative = (20, 20, 100)  # 20% / 0% / 80%
    n = 20_000
    counts = Counter(impl.pick(cumulative, rng.getrandbits(64)) for _ in range(n))
    assert counts[1] == 0
    # 5 standard deviations of a binomial(20000, 0.2) is about 283.
    assert abs(counts[0] - 0.2 * n) < 300
