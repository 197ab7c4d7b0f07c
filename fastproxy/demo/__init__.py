"""The seed tutorial on one machine: demo upstreams (apps.py) and `fastproxy demo` (runner.py)."""

from __future__ import annotations

__all__ = ["run_demo"]


def run_demo(argv: list[str]) -> int:
    """`fastproxy demo ARGS...`; imported lazily so `fastproxy run` never loads the demo."""
    from fastproxy.demo.runner import main

    return main(argv)
