"""Which modules setup.py compiles from their own Python source, and the
import hook that loads those sources instead when FASTPROXY_NO_EXTENSIONS is set.

These modules are compiled in Cython's pure-Python mode: the ``.py`` is the
code, the ``.pxd`` next to it only adds C types, so the source is the pure
twin by construction.  Python imports an extension module in preference to a
``.py`` of the same name, hence the finder.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

PURE_MODE = (
    "fastproxy.table",
    "fastproxy.codec.messages",
    "fastproxy.pipeline.headers",
    "fastproxy.pipeline.replies",
    "fastproxy.pipeline.downstream",
    "fastproxy.pipeline.exchange",
    "fastproxy.upstream.connection",
    "fastproxy.upstream.pool",
    "fastproxy.upstream.balancer",
    "fastproxy.admin.stats",
    "fastproxy.server",
)


class SourceTwins:
    """Meta-path finder: PURE_MODE modules from their .py files."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in PURE_MODE or not path:
            return None
        leaf = fullname.rpartition(".")[2] + ".py"
        for folder in path:
            source = os.path.join(folder, leaf)
            if os.path.exists(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def is_compiled(module: ModuleType) -> bool:
    """Whether `module` was loaded from an extension, not from its .py twin."""
    return not (module.__file__ or "").endswith(".py")


def compiled_modules() -> dict[str, bool]:
    """For each PURE_MODE module: whether the loaded one is the compiled one (imports them)."""
    return {name: is_compiled(sys.modules.get(name) or importlib.import_module(name)) for name in PURE_MODE}


def uncompiled() -> list[str]:
    """Compiled parts that are running as their pure twin (imports them all)."""
    from fastproxy import codec, matcher, wire
    from fastproxy.pipeline import heads

    missing = [name for name, compiled in compiled_modules().items() if not compiled]
    if matcher.IMPLEMENTATION != "cython":
        missing.append("fastproxy._match")
    if heads.IMPLEMENTATION != "cython":
        missing.append("fastproxy.pipeline._heads")
    if wire.IMPLEMENTATION != "cython":
        missing.append("fastproxy._wire")
    if codec.select("httptools")[0].__module__ != "fastproxy.codec._http":
        missing.append("fastproxy.codec._http")
    return missing
