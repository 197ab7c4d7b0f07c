"""Chooses the compiled matcher or its pure twin, once, at import.

API (identical in fastproxy._match and fastproxy._match_py):

    RouteMatcher(specs: Sequence[table.MatchSpec])
        .match(method, path, authority, scheme, headers, port) -> int
            index of the first spec whose conditions all hold, or -1.
            `path` is the request path with its query string; `headers` is the
            request's list of (lower-case name, value) pairs, or its RequestHead
            (the compiled matcher then reads only the values its conditions
            need, from the head's bytes when the codec deferred the list).
    pick(cumulative: tuple[int, ...], rnd: int) -> int
            weighted choice: index i with probability w_i / total, for a
            uniformly random non-negative int `rnd`.
"""

from __future__ import annotations

import os

IMPLEMENTATION = "python"

if not os.environ.get("FASTPROXY_NO_EXTENSIONS"):
    try:
        from fastproxy._match import RouteMatcher, pick

        IMPLEMENTATION = "cython"
    except ImportError:
        if os.environ.get("FASTPROXY_REQUIRE_EXTENSIONS"):
            raise

if IMPLEMENTATION == "python":
    from fastproxy._match_py import RouteMatcher, pick  # noqa: F811

__all__ = ["IMPLEMENTATION", "RouteMatcher", "pick"]
