"""Build the compiled parts of fastproxy; fall back to the pure twins without a compiler.

FASTPROXY_REQUIRE_EXTENSIONS=1 turns a failed build into an error,
FASTPROXY_NO_EXTENSIONS=1 skips compiling altogether.
"""

import os
import platform
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

NO_EXTENSIONS = bool(os.environ.get("FASTPROXY_NO_EXTENSIONS")) or platform.python_implementation() != "CPython"
REQUIRE_EXTENSIONS = bool(os.environ.get("FASTPROXY_REQUIRE_EXTENSIONS"))


class OptionalBuildExt(build_ext):
    """Compile the extension; when that fails, install the pure twins loudly (unless required)."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # compiler or Cython missing
            self._fallback(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._fallback(exc)

    def _fallback(self, exc):
        if REQUIRE_EXTENSIONS:
            raise
        print(
            f"WARNING: building the fastproxy extensions failed ({exc}); "
            "installing the pure-Python twins, which are slower.",
            file=sys.stderr,
        )


def extensions():
    if NO_EXTENSIONS:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRE_EXTENSIONS:
            raise
        print("WARNING: Cython is missing; installing the pure-Python twins.", file=sys.stderr)
        return []
    return cythonize(
        ["fastproxy/_match.pyx"],
        compiler_directives={"language_level": "3"},
        annotate=bool(os.environ.get("FASTPROXY_CYTHON_ANNOTATE")),
    )


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
    package_data={"fastproxy": ["_match.pyi", "py.typed"], "fastproxy.admin": ["static/*"], "fastproxy.examples": ["*/*.yaml", "*/*/*.yaml"]},
    ext_modules=extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
)
