"""Suite-wide checks: with FASTPROXY_REQUIRE_EXTENSIONS=1 the compiled matcher and codec must be the ones loaded."""

from __future__ import annotations

import os

import pytest

# Subprocesses run `python -m fastproxy`; without this, a test that runs one
# from the repository root would import the source tree (which has no
# compiled matcher after a plain `pip install .`) instead of the installed package.
os.environ["PYTHONSAFEPATH"] = "1"


def pytest_report_header(config: pytest.Config) -> str:
    from fastproxy import _twins, codec, matcher

    parser = codec.select()[0]
    pipeline = "compiled" if all(_twins.compiled_modules().values()) else "pure"
    return f"fastproxy matcher: {matcher.IMPLEMENTATION}; codec default: {parser.__module__}; pipeline: {pipeline}"


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("FASTPROXY_REQUIRE_EXTENSIONS") and not os.environ.get("FASTPROXY_NO_EXTENSIONS"):
        from fastproxy import matcher

        if matcher.IMPLEMENTATION != "cython":
            raise pytest.UsageError("FASTPROXY_REQUIRE_EXTENSIONS=1 but the compiled matcher did not load")
        from fastproxy import codec

        if codec.select()[0].__module__ != "fastproxy.codec._http":
            raise pytest.UsageError("FASTPROXY_REQUIRE_EXTENSIONS=1 but the compiled codec did not load")
        from fastproxy import _twins
        from fastproxy.pipeline import heads

        missing = [name for name, compiled in _twins.compiled_modules().items() if not compiled]
        if heads.IMPLEMENTATION != "cython":
            missing.append("fastproxy.pipeline._heads")
        if missing:
            raise pytest.UsageError(f"FASTPROXY_REQUIRE_EXTENSIONS=1 but these loaded uncompiled: {missing}")
    if os.environ.get("FASTPROXY_NO_EXTENSIONS"):
        from fastproxy import _twins

        compiled = [name for name, c in _twins.compiled_modules().items() if c]
        if compiled:
            raise pytest.UsageError(f"FASTPROXY_NO_EXTENSIONS=1 but these loaded compiled: {compiled}")
