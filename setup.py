"""Build the compiled parts of fastproxy; fall back to the pure twins without a compiler.

pyproject.toml holds the metadata; this file only declares the extension.

FASTPROXY_REQUIRE_EXTENSIONS=1 turns a failed build into an error (CI),
FASTPROXY_NO_EXTENSIONS=1 skips compiling altogether (also skipped on non-CPython),
FASTPROXY_CYTHON_ANNOTATE=1 writes Cython's annotated HTML next to the .pyx.

    python setup.py build_ext --inplace     # build the compiled modules in place for a checkout
"""

import os
import platform
import runpy
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
NO_EXTENSIONS = bool(os.environ.get("FASTPROXY_NO_EXTENSIONS")) or platform.python_implementation() != "CPython"
REQUIRE_EXTENSIONS = bool(os.environ.get("FASTPROXY_REQUIRE_EXTENSIONS"))


def warn_fallback(reason):
    # pip only shows build output with -v or on failure, so make it stand out in a log.
    bar = "*" * 78
    print(
        f"\n{bar}\n"
        f"WARNING: a compiled part of fastproxy was NOT built:\n  {reason}\n"
        "Installing the pure-Python twins instead; everything works, several times slower.\n"
        "Set FASTPROXY_REQUIRE_EXTENSIONS=1 to make this an error.\n"
        f"{bar}\n",
        file=sys.stderr,
    )


class OptionalBuildExt(build_ext):
    """Compile the extension; when that fails, install the pure twins loudly (unless required)."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler at all, missing Python headers, ...
            if REQUIRE_EXTENSIONS:
                raise
            warn_fallback(f"{type(exc).__name__}: {exc}")

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            if REQUIRE_EXTENSIONS:
                raise
            # A module left in build/ by an earlier run is stale now; never ship it.
            stale = Path(self.get_ext_fullpath(ext.name))
            if stale.exists():
                stale.unlink()
            warn_fallback(f"{ext.name}: {type(exc).__name__}: {exc}")


# Compiled modules and their pure twins (chosen at import: fastproxy/matcher.py, fastproxy/codec/__init__.py,
# fastproxy/pipeline/heads.py, fastproxy/wire.py).
COMPILED = {
    "fastproxy._match": "fastproxy/_match.pyx",  # twin: fastproxy/_match_py.py
    "fastproxy.codec._http": "fastproxy/codec/_http.pyx",  # twin: fastproxy/codec/fast.py
    "fastproxy.pipeline._heads": "fastproxy/pipeline/_heads.pyx",  # twin: fastproxy/pipeline/_heads_py.py
    "fastproxy._wire": "fastproxy/_wire.pyx",  # twin: fastproxy/_wire_py.py
}


# Hot-path modules compiled from their own source in Cython's pure-Python mode
# (typed by the .pxd next to each); the .py is the pure twin.  The list lives
# with the import hook that selects the twins (fastproxy/_twins.py).
PURE_MODE = [name.replace(".", "/") + ".py" for name in runpy.run_path(str(HERE / "fastproxy/_twins.py"))["PURE_MODE"]]


def extensions():
    if NO_EXTENSIONS:
        return []
    sources = [Extension(path[:-3].replace("/", "."), [path]) for path in PURE_MODE]
    for name, pyx in COMPILED.items():
        c_file = pyx[:-4] + ".c"
        if (HERE / pyx).exists():
            sources.append(Extension(name, [pyx]))
        elif (HERE / c_file).exists():
            # An sdist carries the generated C file and no .pyx: compile that as is.
            sources.append(Extension(name, [c_file]))
        elif REQUIRE_EXTENSIONS:
            raise RuntimeError(f"neither {pyx} nor {c_file} found")
        else:
            warn_fallback(f"neither {pyx} nor {c_file} found")
    if not any(ext.sources[0].endswith((".pyx", ".py")) for ext in sources):
        return sources
    try:
        from Cython.Build import cythonize

        return cythonize(
            sources,
            # The .py sources carry annotations for readers and type checkers;
            # the C types come from the .pxd files only.
            compiler_directives={"language_level": "3", "annotation_typing": False},
            annotate=bool(os.environ.get("FASTPROXY_CYTHON_ANNOTATE")),
        )
    except Exception as exc:  # Cython missing, or it rejected a .pyx
        if REQUIRE_EXTENSIONS:
            raise
        warn_fallback(f"Cython: {type(exc).__name__}: {exc}")
        return []


setup(
    packages=[
        "fastproxy",
        "fastproxy.codec",
        "fastproxy.config",
        "fastproxy.pipeline",
        "fastproxy.upstream",
        "fastproxy.admin",
        "fastproxy.demo",
        "fastproxy.examples",
    ],
    package_dir={"fastproxy.examples": "examples"},
    # Only these data files ship: never the generated .c, the .pyx or annotation HTML.
    package_data={
        "fastproxy": ["_match.pyi", "py.typed"],
        "fastproxy.admin": ["static/*"],
        "fastproxy.examples": ["*/*.yaml", "*/*/*.yaml"],
    },
    ext_modules=extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
)
