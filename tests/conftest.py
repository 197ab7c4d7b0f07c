"""Suite-wide checks: with FASTPROXY_REQUIRE_EXTENSIONS=1 the compiled matcher must be the one loaded."""

from __future__ import annotations

import os

import pytest

# Subprocesses run `python -m fastproxy`; without this, a test that runs one
# from the repository root would import the source tree (which has no
# compiled matcher after a plain `pip install .`) instead of the installed package.
os.environ["PYTHONSAFEPATH"] = "1"


def pytest_report_header(config: pytest.Config) -> str:
    from fastproxy import matcher

    return f"fastproxy matcher: {matcher.IMPLEMENTATION}; codec default: " + (
        "h11" if os.environ.get("FASTPROXY_NO_EXTENSIONS") else "httptools"
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("FASTPROXY_REQUIRE_EXTENSIONS") and not os.environ.get("FASTPROXY_NO_EXTENSIONS"):
        from fastproxy import matcher

        if matcher.IMPLEMENTATION != "cython":
            raise pytest.UsageError("FASTPROXY_REQUIRE_EXTENSIONS=1 but the compiled matcher did not load")
