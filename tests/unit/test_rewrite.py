"""Path normalisation, rewrite and redirect Location (traffic-semantics 2.6, 3.1, 3.2)."""

from __future__ import annotations

import re

import pytest

from fastproxy.pipeline.rewrite import normalize_path, redirect_location, rewrite_path, split_query
from fastproxy.table import REWRITE_PREFIX, REWRITE_REGEX, Redirect, Rewrite

# ---- normalize_path ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (b"/a/./b/../c", b"/a/c"),
        (b"/..", b"/"),
        (b"/../a", b"/a"),
        (b"/.", b"/"),
        (b"/a/b/..", b"/a/"),
        (b"/a/b/.", b"/a/b/"),
        (b"/a/b/../", b"/a/"),
        (b"/a/../../b", b"/b"),
        (b"/a//../b", b"/a/b"),  # ".." removes the empty segment between the slashes
        (b"//foo/./bar", b"//foo/bar"),  # duplicate slashes are not merged
        (b"/a/./b?x=/../y", b"/a/b?x=/../y"),  # the query is left alone
        (b"/a/../b#/./c", b"/b#/./c"),
        (b"/a%2F..%2Fb/./c", b"/a%2F..%2Fb/c"),  # %2F stays encoded and is not a separator
        (b"/.hidden/..file", b"/.hidden/..file"),
    ],
)
def test_normalize_path(path: bytes, expected: bytes) -> None:
    assert normalize_path(path) == expected


@pytest.mark.parametrize("path", [b"/", b"/a/b", b"//foo", b"/a?x=/./", b"/.well-known/x", b"*"])
def test_normalize_path_returns_the_same_object_when_unchanged(path: bytes) -> None:
    assert normalize_path(path) is path


def test_split_query() -> None:
    assert split_query(b"/a?b#c") == (b"/a", b"?b#c")
    assert split_query(b"/a#b?c") == (b"/a", b"#b?c")
    assert split_query(b"/a") == (b"/a", b"")


# ---- rewrite_path --------------------------------------------------------------------------------


def prefix_rw(strip: int, replacement: bytes) -> Rewrite:
    return Rewrite(kind=REWRITE_PREFIX, strip=strip, replacement=replacement)


def regex_rw(pattern: bytes, replacement: bytes) -> Rewrite:
    return Rewrite(kind=REWRITE_REGEX, replacement=replacement, regex=re.compile(pattern))


@pytest.mark.parametrize(
    ("rw", "path", "expected"),
    [
        # The seed: prefix /canary rewritten to /.
        (prefix_rw(len(b"/canary"), b"/"), b"/canary", b"/"),
        (prefix_rw(len(b"/canary"), b"/"), b"/canary?x=1", b"/?x=1"),
        (prefix_rw(len(b"/canary"), b"/"), b"/canary/a", b"//a"),
        # 3.1.1: prefix /api -> /v2.
        (prefix_rw(4, b"/v2"), b"/api/x?q=1", b"/v2/x?q=1"),
        (prefix_rw(4, b"/v2"), b"/apix", b"/v2x"),
        # The "//" gotcha: prefix /x (or /common) + uri /.
        (prefix_rw(2, b"/"), b"/x/rest", b"//rest"),
        (prefix_rw(len(b"/common"), b"/"), b"/common/api", b"//api"),
        # exact / regex match: the whole path, query kept.
        (prefix_rw(-1, b"/v2"), b"/foo?key=value", b"/v2?key=value"),
        (prefix_rw(-1, b"/v2"), b"/anything", b"/v2"),
        # No uri condition: the default prefix "/" is the matched part.
        (prefix_rw(1, b"/v2"), b"/foo", b"/v2foo"),
    ],
)
def test_rewrite_prefix(rw: Rewrite, path: bytes, expected: bytes) -> None:
    assert rewrite_path(rw, path) == expected


@pytest.mark.parametrize(
    ("rw", "path", "expected"),
    [
        (regex_rw(rb"^/common/?(.*)", rb"/\1"), b"/common/api?x=1", b"/api?x=1"),
        (regex_rw(rb"^/common/?(.*)", rb"/\1"), b"/common", b"/"),
        (
            regex_rw(rb"^/service/([^/]+)(/.*)$", rb"\2/instance/\1"),
            b"/service/foo/v1/api",
            b"/v1/api/instance/foo",
        ),
        # Replace-all, over the path only: the query is re-appended untouched.
        (regex_rw(rb"a", rb"b"), b"/aa/a?a=a", b"/bb/b?a=a"),
        # No match: unchanged.
        (regex_rw(rb"zzz", rb"y"), b"/abc?q", b"/abc?q"),
        # RE2 replace-all: no empty match right after a previous match.
        (regex_rw(rb".*", rb"/x"), b"/abc?q=1", b"/x?q=1"),
        (regex_rw(rb"b*", rb"-"), b"/abd", b"-/-a-d-"),
    ],
)
def test_rewrite_regex(rw: Rewrite, path: bytes, expected: bytes) -> None:
    assert rewrite_path(rw, path) == expected


def test_rewrite_regex_with_empty_result_is_no_rewrite() -> None:
    path = b"/abc?q=1"
    assert rewrite_path(regex_rw(rb"/abc", b""), path) == path


# ---- redirect_location ---------------------------------------------------------------------------


def redirect(
    *,
    scheme: bytes | None = None,
    authority: bytes | None = None,
    port: int | None = None,
    path: bytes | None = None,
    strip: int = 0,
    prefix_rewrite: bool = False,
) -> Redirect:
    return Redirect(301, scheme, authority, port, path, strip, prefix_rewrite)


@pytest.mark.parametrize(
    ("rd", "scheme", "host", "path", "expected"),
    [
        # The seed: redirect {uri: /, authority: backend, port: 8082} on GET /backend, Host proxy.
        (
            redirect(path=b"/", authority=b"backend", port=8082),
            b"http",
            b"proxy",
            b"/backend",
            b"http://backend:8082/",
        ),
        # 3.2's exact-bytes example: the query is kept.
        (redirect(path=b"/new"), b"http", b"shop", b"/old?x=1", b"http://shop/new?x=1"),
        # ... unless the redirect uri has its own.
        (redirect(path=b"/new?y=2"), b"http", b"shop", b"/old?x=1", b"http://shop/new?y=2"),
        # uri replaces the whole path whatever matched; a missing leading "/" is added.
        (redirect(path=b"new"), b"http", b"shop", b"/old/deep", b"http://shop/new"),
        # derivePort FROM_REQUEST_PORT on port 80: Istio drops the port (80 with http).
        (redirect(path=b"/foo"), b"http", b"b", b"/", b"http://b/foo"),
        (redirect(path=b"/foo"), b"http", b"b:80", b"/", b"http://b:80/foo"),
        # ... on service port 85: explicit port; the Host's own port makes way for it.
        (redirect(path=b"/foo", port=85), b"http", b"b", b"/", b"http://b:85/foo"),
        (redirect(path=b"/foo", port=85), b"http", b"b:9999", b"/", b"http://b:85/foo"),
        # ... with scheme https on port 80: 80 is kept because it is not https's default.
        (redirect(path=b"/foo", scheme=b"https", port=80), b"http", b"b", b"/", b"https://b:80/foo"),
        # Scheme change drops the Host port only if it was the old scheme's default.
        (redirect(scheme=b"https"), b"http", b"b:80", b"/p?q", b"https://b/p?q"),
        (redirect(scheme=b"https"), b"http", b"b:8080", b"/p", b"https://b:8080/p"),
        (redirect(scheme=b"http"), b"https", b"b:443", b"/p", b"http://b/p"),
        (redirect(scheme=b"http"), b"http", b"b:80", b"/p", b"http://b:80/p"),  # same scheme: kept
        # Authority only: path and query kept, explicit authority used verbatim.
        (redirect(authority=b"other.example"), b"http", b"b:80", b"/p?q=1", b"http://other.example/p?q=1"),
        # IPv6 literal Host.
        (redirect(port=8443, scheme=b"https"), b"http", b"[::1]:8080", b"/", b"https://[::1]:8443/"),
        (redirect(path=b"/x"), b"http", b"[::1]", b"/", b"http://[::1]/x"),
        # prefixRewrite replaces the matched prefix and keeps the rest and the query.
        (redirect(path=b"/", strip=4, prefix_rewrite=True), b"http", b"h", b"/foo/baz", b"http://h//baz"),
        (redirect(path=b"/", strip=5, prefix_rewrite=True), b"http", b"h", b"/foo/baz?a", b"http://h/baz?a"),
        (redirect(path=b"/v2", strip=4, prefix_rewrite=True), b"http", b"h", b"/api", b"http://h/v2"),
    ],
)
def test_redirect_location(rd: Redirect, scheme: bytes, host: bytes, path: bytes, expected: bytes) -> None:
    assert redirect_location(rd, scheme, host, path) == expected


def test_https_redirect_of_a_gateway_server() -> None:
    # tls.httpsRedirect: https://<host-without-:80><path?query>
    rd = redirect(scheme=b"https")
    assert redirect_location(rd, b"http", b"shop.example:80", b"/a/b?c=d") == b"https://shop.example/a/b?c=d"
    assert redirect_location(rd, b"http", b"shop.example", b"/") == b"https://shop.example/"
