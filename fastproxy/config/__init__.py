"""The config stage: Istio YAML files -> validated model -> compiled table.Config.

    load(paths) -> LoadResult(config, problems, warnings)

`config` is None whenever there is at least one problem; `problems` and
`warnings` are ready-to-print lines (`FILE:LINE: Kind ns/name: path: message`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastproxy import table
from fastproxy.config.compile import compile_model
from fastproxy.config.loader import Document, load_documents, load_text
from fastproxy.config.routes_view import render_routes
from fastproxy.config.validate import validate_documents
from fastproxy.errors import ConfigError


@dataclass(slots=True)
class LoadResult:
    config: table.Config | None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def raise_for_problems(self) -> table.Config:
        """The config, or ConfigError carrying every problem line."""
        if self.config is None:
            raise ConfigError(self.problems or ["no configuration loaded"])
        return self.config


def load(paths: Sequence[str]) -> LoadResult:
    """Reads, validates and compiles every file; never raises for bad input."""
    problems: list[str] = []
    docs = load_documents(paths, problems)
    return _finish(docs, problems)


def loads(*files: tuple[str, str]) -> LoadResult:
    """Like load(), from in-memory (name, text) pairs: for tests and generated configs."""
    problems: list[str] = []
    docs: list[Document] = []
    for name, text in files:
        docs.extend(load_text(text, name, problems))
    return _finish(docs, problems)


def _finish(docs: list[Document], problems: list[str]) -> LoadResult:
    model, found, warnings = validate_documents(docs)
    problems.extend(found)
    if problems:
        return LoadResult(None, _in_file_order(problems, model.sources), warnings)
    try:
        config, compile_warnings = compile_model(model)
    except Exception as exc:  # a compiler bug must not take the CLI or a reload down with a traceback
        return LoadResult(None, [f"internal error while compiling the configuration: {exc!r}"], warnings)
    return LoadResult(config, [], warnings + compile_warnings)


def _in_file_order(lines: list[str], sources: list[str]) -> list[str]:
    """Stable sort by (file as loaded, line) so `check` output reads top to bottom."""
    rank = {f: i for i, f in enumerate(sources)}

    def key(line: str) -> tuple[int, int]:
        for f, i in rank.items():
            prefix = f + ":"
            if line.startswith(prefix):
                num = line[len(prefix) :].split(":", 1)[0]
                return i, int(num) if num.isdigit() else 0
        return len(rank), 0

    return sorted(lines, key=key)


def dump(config: table.Config) -> dict[str, Any]:
    """JSON-ready description of `config` (admin /config_dump)."""
    return config.dump


__all__ = ["ConfigError", "LoadResult", "dump", "load", "loads", "render_routes"]
