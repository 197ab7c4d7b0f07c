"""Suite-wide setup, and checks that each mode (REQUIRE or NO_EXTENSIONS) loaded what it claims."""

from __future__ import annotations

import importlib
import os
import pkgutil

import pytest

# Subprocesses run `python -m fastproxy`; without this, a test that runs one
# from the repository root would import the source tree (which has no
# compiled matcher after a plain `pip install .`) instead of the installed package.
os.environ["PYTHONSAFEPATH"] = "1"


def _import_hypothesis_internals() -> None:
    # pytest rewrites (ast.parse) every module of a distribution that ships a
    # pytest plugin -- hypothesis's internals too, even with its plugin off.
    # Hypothesis imports some of them lazily in the middle of a test, deep in
    # the stack, where CPython 3.11.7's AST recursion check fails at random
    # ("AST constructor recursion depth mismatch", cpython#106905).  Importing
    # them here, from a shallow stack, rewrites them once and safely.
    try:
        import hypothesis
    except ImportError:
        return
    for info in pkgutil.walk_packages(hypothesis.__path__, "hypothesis."):
        if info.name.startswith("hypothesis.extra"):
            continue  # optional integrations (numpy, django, ...)
        try:
            importlib.import_module(info.name)
        except Exception:
            pass


_import_hypothesis_internals()


def pytest_report_header(config: pytest.Config) -> str:
    from fastproxy import _twins, codec, matcher

    parser = codec.select()[0]
    pipeline = "compiled" if all(_twins.compiled_modules().values()) else "pure"
    return f"fastproxy matcher: {matcher.IMPLEMENTATION}; codec default: {parser.__module__}; pipeline: {pipeline}"


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("FASTPROXY_REQUIRE_EXTENSIONS") and not os.environ.get("FASTPROXY_NO_EXTENSIONS"):
        from fastproxy import _twins

        missing = _twins.uncompiled()
        if missing:
            raise pytest.UsageError(f"FASTPROXY_REQUIRE_EXTENSIONS=1 but these loaded uncompiled: {missing}")
    if os.environ.get("FASTPROXY_NO_EXTENSIONS"):
        from fastproxy import _twins

        compiled = [name for name, c in _twins.compiled_modules().items() if c]
        if compiled:
            raise pytest.UsageError(f"FASTPROXY_NO_EXTENSIONS=1 but these loaded compiled: {compiled}")
