"""RouteMatcher and pick, on both implementations (traffic-semantics 2.4, 2.5, 4.2)."""

from __future__ import annotations

import importlib
import os
import re
from types import ModuleType

import pytest

from fastproxy.table import EXACT, PREFIX, PRESENT, REGEX, MatchSpec, StringMatch


def _compiled_available() -> bool:
    try:
        importlib.import_module("fastproxy._match")
    except ImportError:
        return False
    return True


needs_ext = pytest.mark.skipif(
    not _compiled_available() and not os.environ.get("FASTPROXY_REQUIRE_EXTENSIONS"),
    reason="fastproxy._match is not built (python setup.py build_ext --inplace)",
)


@pytest.fixture(params=["python", pytest.param("cython", marks=needs_ext)])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    name = "fastproxy._match_py" if request.param == "python" else "fastproxy._match"
    return importlib.import_module(name)


def exact(v: bytes) -> StringMatch:
    return StringMatch(EXACT, v)


def prefix(v: bytes) -> StringMatch:
    return StringMatch(PREFIX, v)


def regex(r: bytes) -> StringMatch:
    return StringMatch(REGEX, regex=re.compile(r))


PRESENCE = StringMatch(PRESENT)


def one(
    impl: ModuleType,
    spec: MatchSpec,
    path: bytes = b"/",
    *,
    method: bytes = b"GET",
    authority: bytes = b"svc",
    scheme: bytes = b"http",
    headers: list[tuple[bytes, bytes]] | None = None,
    port: int = 80,
) -> bool:
    """Does a one-spec table match this request?"""
    idx = impl.RouteMatcher([spec]).match(method, path, authority, scheme, headers or [], port)
    assert idx in (0, -1)
    return idx == 0


# ---- URI -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (b"/foo", True),
        (b"/foo?x=1", True),
        (b"/foo#frag", True),
        (b"/foo/", False),
        (b"/fo", False),
        (b"/FOO", False),
        (b"/foobar", False),
    ],
)
def test_uri_exact_ignores_query_and_fragment(impl: ModuleType, path: bytes, expected: bool) -> None:
    assert one(impl, MatchSpec(uri=exact(b"/foo")), path) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (b"/foo", True),
        (b"/foobar", True),
        (b"/foo/x?y=1", True),
        (b"/fo", False),
        (b"/fo?o", False),
        (b"//foo", False),
        (b"/Foo", False),
    ],
)
def test_uri_prefix_is_a_raw_string_prefix(impl: ModuleType, path: bytes, expected: bool) -> None:
    assert one(impl, MatchSpec(uri=prefix(b"/foo")), path) is expected


def test_uri_prefix_does_not_reach_into_the_query(impl: ModuleType) -> None:
    assert not one(impl, MatchSpec(uri=prefix(b"/a?b")), b"/a?b=1")


@pytest.mark.parametrize(
    ("path", "expected"),
    [(b"/v1/x", True), (b"/v1/x?q=/v1/y", True), (b"/xv1/x", False), (b"/v1/", False), (b"/v1/x/y", False)],
)
def test_uri_regex_is_a_full_match_of_the_path_only(impl: ModuleType, path: bytes, expected: bool) -> None:
    assert one(impl, MatchSpec(uri=regex(rb"/v\d/[a-z]+")), path) is expected


def test_uri_regex_sees_no_fragment(impl: ModuleType) -> None:
    assert one(impl, MatchSpec(uri=regex(rb"/a")), b"/a#b")
    # A '?' inside the fragment does not start a query.
    assert one(impl, MatchSpec(uri=regex(rb"/a")), b"/a#b?c")


@pytest.mark.parametrize(
    ("uri", "path", "expected"),
    [
        (exact(b"/foo"), b"/FoO", True),
        (exact(b"/foo"), b"/FoO?X=1", True),
        (prefix(b"/api"), b"/APIx", True),
        (prefix(b"/api"), b"/ap", False),
        (exact(b"/foo"), b"/FoOo", False),
    ],
)
def test_ignore_uri_case_for_exact_and_prefix(impl: ModuleType, uri: StringMatch, path: bytes, expected: bool) -> None:
    assert one(impl, MatchSpec(uri=uri, ignore_uri_case=True), path) is expected


def test_ignore_uri_case_does_not_apply_to_regex(impl: ModuleType) -> None:
    spec = MatchSpec(uri=regex(rb"/foo"), ignore_uri_case=True)
    assert one(impl, spec, b"/foo")
    assert not one(impl, spec, b"/FOO")


def test_no_conditions_matches_everything(impl: ModuleType) -> None:
    assert one(impl, MatchSpec(), b"/anything?x")


# ---- method, authority, scheme, port -----------------------------------------------------------


def test_method_is_case_sensitive(impl: ModuleType) -> None:
    spec = MatchSpec(method=exact(b"GET"))
    assert one(impl, spec, method=b"GET")
    assert not one(impl, spec, method=b"get")
    assert not one(impl, spec, method=b"POST")


def test_authority_is_the_raw_host_with_port_and_case(impl: ModuleType) -> None:
    spec = MatchSpec(authority=exact(b"reviews"))
    assert one(impl, spec, authority=b"reviews")
    assert not one(impl, spec, authority=b"reviews:9080")
    assert not one(impl, spec, authority=b"Reviews")
    assert one(impl, MatchSpec(authority=prefix(b"reviews")), authority=b"reviews:9080")
    assert one(impl, MatchSpec(authority=regex(rb"rev.*:\d+")), authority=b"reviews:9080")


def test_scheme(impl: ModuleType) -> None:
    spec = MatchSpec(scheme=exact(b"https"))
    assert one(impl, spec, scheme=b"https")
    assert not one(impl, spec, scheme=b"http")


def test_port_zero_is_any_else_equal(impl: ModuleType) -> None:
    assert one(impl, MatchSpec(port=0), port=8080)
    assert one(impl, MatchSpec(port=8080), port=8080)
    assert not one(impl, MatchSpec(port=8080), port=80)


# ---- headers (2.5 truth table) ------------------------------------------------------------------

# (condition, header value or None for absent, matches as `headers`, matches as `withoutHeaders`)
TRUTH_TABLE = [
    (exact(b"X"), b"X", True, False),
    (exact(b"X"), b"x", False, True),
    (exact(b"X"), None, False, True),
    (exact(b""), b"", True, False),
    (exact(b""), b"a", False, True),
    (exact(b""), None, False, False),  # absent is "" for withoutHeaders, and "" == ""
    (prefix(b"ab"), b"abc", True, False),
    (prefix(b"ab"), b"a", False, True),
    (prefix(b"ab"), None, False, True),
    (regex(rb"a.c"), b"abc", True, False),
    (regex(rb"a.c"), b"xabcx", False, True),
    (regex(rb"a.c"), None, False, True),
    (regex(rb".*"), None, False, False),  # Istio's "never matches" case
    (regex(rb".*"), b"", True, False),
    (PRESENCE, b"", True, False),  # an empty value counts as present
    (PRESENCE, b"v", True, False),
    (PRESENCE, None, False, True),
]


@pytest.mark.parametrize(("sm", "value", "as_headers", "as_without"), TRUTH_TABLE)
def test_header_truth_table(
    impl: ModuleType, sm: StringMatch, value: bytes | None, as_headers: bool, as_without: bool
) -> None:
    headers = [(b"other", b"X"), (b"end-user", value)] if value is not None else [(b"other", b"X")]
    assert one(impl, MatchSpec(headers=((b"end-user", sm),)), headers=headers) is as_headers
    assert one(impl, MatchSpec(without_headers=((b"end-user", sm),)), headers=headers) is as_without


def test_repeated_headers_are_joined_with_a_comma(impl: ModuleType) -> None:
    headers = [(b"x-a", b"1"), (b"x-b", b"z"), (b"x-a", b"2"), (b"x-a", b"3")]
    assert one(impl, MatchSpec(headers=((b"x-a", exact(b"1,2,3")),)), headers=headers)
    assert not one(impl, MatchSpec(headers=((b"x-a", exact(b"1")),)), headers=headers)
    assert one(impl, MatchSpec(headers=((b"x-a", prefix(b"1,2")),)), headers=headers)
    assert one(impl, MatchSpec(without_headers=((b"x-a", exact(b"1")),)), headers=headers)


def test_every_header_condition_must_hold(impl: ModuleType) -> None:
    spec = MatchSpec(headers=((b"a", exact(b"1")), (b"b", exact(b"2"))), without_headers=((b"c", PRESENCE),))
    assert one(impl, spec, headers=[(b"b", b"2"), (b"a", b"1")])
    assert not one(impl, spec, headers=[(b"a", b"1")])
    assert not one(impl, spec, headers=[(b"a", b"1"), (b"b", b"2"), (b"c", b"")])


def test_header_values_are_case_sensitive(impl: ModuleType) -> None:
    spec = MatchSpec(headers=((b"end-user", exact(b"jason")),))
    assert not one(impl, spec, headers=[(b"end-user", b"Jason")])


def test_pseudo_headers_work_as_header_keys(impl: ModuleType) -> None:
    spec = MatchSpec(headers=((b":method", exact(b"POST")), (b":path", prefix(b"/a?x"))))
    assert one(impl, spec, b"/a?x=1", method=b"POST")
    assert not one(impl, spec, b"/a?x=1", method=b"GET")
    assert one(impl, MatchSpec(headers=((b":authority", exact(b"h:1")),)), authority=b"h:1")
    assert one(impl, MatchSpec(without_headers=((b":scheme", exact(b"https")),)), scheme=b"http")


# ---- query parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sm", "path", "expected"),
    [
        (exact(b"1"), b"/p?a=1", True),
        (exact(b"1"), b"/p?b=2&a=1", True),
        (exact(b"1"), b"/p?a=2", False),
        (exact(b"1"), b"/p", False),
        (exact(b"1"), b"/p?a=1#frag", True),
        (exact(b"1"), b"/p#?a=1", False),  # that "?" is inside the fragment
        (exact(b""), b"/p?a", True),
        (exact(b""), b"/p?a=", True),
        (exact(b"1"), b"/p?a=1&a=2", True),  # first occurrence wins
        (exact(b"2"), b"/p?a=1&a=2", False),
        (exact(b"a b"), b"/p?a=a%20b", False),  # not percent-decoded
        (exact(b"a%20b"), b"/p?a=a%20b", True),
        (prefix(b"ab"), b"/p?a=abc", True),
        (prefix(b"ab"), b"/p?a=xab", False),
        (regex(rb"\d+"), b"/p?a=123", True),
        (regex(rb"\d+"), b"/p?a=123x", False),
        (PRESENCE, b"/p?a", True),
        (PRESENCE, b"/p?a=", True),
        (PRESENCE, b"/p?ab=1", False),
        (PRESENCE, b"/p?x=a", False),
    ],
)
def test_query_params(impl: ModuleType, sm: StringMatch, path: bytes, expected: bool) -> None:
    assert one(impl, MatchSpec(query_params=((b"a", sm),)), path) is expected


def test_query_params_all_must_hold(impl: ModuleType) -> None:
    spec = MatchSpec(uri=exact(b"/p"), query_params=((b"a", exact(b"1")), (b"b", PRESENCE)))
    assert one(impl, spec, b"/p?b&a=1")
    assert not one(impl, spec, b"/p?a=1")


# ---- ordering ----------------------------------------------------------------------------------


def test_first_matching_spec_wins(impl: ModuleType) -> None:
    m = impl.RouteMatcher(
        [
            MatchSpec(uri=prefix(b"/canary")),
            MatchSpec(uri=prefix(b"/backend")),
            MatchSpec(headers=((b"end-user", exact(b"jason")),)),
            MatchSpec(),
        ]
    )
    assert m.match(b"GET", b"/canary/x", b"demoapp", b"http", [], 80) == 0
    assert m.match(b"GET", b"/backend", b"demoapp", b"http", [(b"end-user", b"jason")], 80) == 1
    assert m.match(b"GET", b"/", b"demoapp", b"http", [(b"end-user", b"jason")], 80) == 2
    assert m.match(b"GET", b"/", b"demoapp", b"http", [], 80) == 3


def test_no_match_and_empty_table(impl: ModuleType) -> None:
    assert impl.RouteMatcher([MatchSpec(uri=exact(b"/a"))]).match(b"GET", b"/b", b"h", b"http", [], 80) == -1
    assert impl.RouteMatcher([]).match(b"GET", b"/", b"h", b"http", [], 80) == -1


def test_matcher_is_reusable_across_requests(impl: ModuleType) -> None:
    # Lazily looked-up header values must not leak from one call into the next.
    m = impl.RouteMatcher([MatchSpec(headers=((b"x", exact(b"1")),)), MatchSpec(headers=((b"x", exact(b"2")),))])
    assert m.match(b"GET", b"/", b"h", b"http", [(b"x", b"1")], 80) == 0
    assert m.match(b"GET", b"/", b"h", b"http", [(b"x", b"2")], 80) == 1
    assert m.match(b"GET", b"/", b"h", b"http", [], 80) == -1


# ---- pick ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cumulative", "rnd", "expected"),
    [
        ((30, 100), 0, 0),
        ((30, 100), 29, 0),
        ((30, 100), 30, 1),
        ((30, 100), 99, 1),
        ((30, 100), 100, 0),  # wraps around the total
        ((30, 100), 10**30 + 31, 1),
        ((30, 100), -1, 1),  # Python's modulo keeps it in range
        ((0, 50, 50, 100), 0, 1),  # weight 0 (first and third) never chosen
        ((0, 50, 50, 100), 50, 3),
        ((100,), 12345, 0),
        ((0,), 7, 0),  # a single destination gets everything, whatever its weight
    ],
)
def test_pick(impl: ModuleType, cumulative: tuple[int, ...], rnd: int, expected: int) -> None:
    assert impl.pick(cumulative, rnd) == expected


def test_pick_never_chooses_a_zero_weight(impl: ModuleType) -> None:
    cumulative = (10, 10, 25, 25, 40)
    chosen = {impl.pick(cumulative, r) for r in range(200)}
    assert chosen == {0, 2, 4}


def test_matcher_module_exports_one_implementation() -> None:
    from fastproxy import matcher

    assert matcher.IMPLEMENTATION in ("python", "cython")
    expected = "fastproxy._match" if matcher.IMPLEMENTATION == "cython" else "fastproxy._match_py"
    assert matcher.RouteMatcher.__module__ == expected
    assert matcher.pick((1, 2), 1) == 1
    if os.environ.get("FASTPROXY_REQUIRE_EXTENSIONS") and not os.environ.get("FASTPROXY_NO_EXTENSIONS"):
        assert matcher.IMPLEMENTATION == "cython"
