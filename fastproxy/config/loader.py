"""Files and directories -> YAML documents that remember where every node was.

Only yaml.SafeLoader's composer is used: we build plain dicts/lists ourselves
from the node graph so that each mapping key and list item keeps the line it
came from, which is what lets validate.py name `vs.yaml:14` in a problem.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import yaml


class YMap(dict):
    """A YAML mapping: a dict plus the line of the mapping and of each key."""

    __slots__ = ("line", "key_lines")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}


class YList(list):
    """A YAML sequence: a list plus the line of the sequence and of each item."""

    __slots__ = ("line", "item_lines")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


@dataclass(slots=True)
class Document:
    file: str
    line: int  # 1-based line where the document starts
    index: int  # 0-based position in its file
    data: Any  # YMap for a sane document; anything else is reported


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


# YAML 1.1's own types; anything else (!!python/..., !custom) means nothing to Istio.
_STANDARD_TAGS = frozenset(
    "tag:yaml.org,2002:" + t
    for t in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp", "binary", "merge", "value")
)


class _Refused(ValueError):
    """A document that cannot be used at all, with the line of the culprit."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


class _Builder:
    """Turns a composed node graph into YMap/YList/scalars."""

    def __init__(self, file: str, problems: list[str]) -> None:
        self._scalars = yaml.SafeLoader("")  # only its construct_* methods are used
        self._file = file
        self._problems = problems

    def build(self, node: yaml.Node, depth: int = 0) -> Any:
        if depth > 200:
            raise ValueError("document nested too deeply")
        if isinstance(node, yaml.ScalarNode):
            try:
                return self._scalars.construct_object(node, deep=True)
            except yaml.YAMLError as exc:
                self._problems.append(f"{self._file}:{_line(node)}: {_one_line(exc)}")
                return None
        if node.tag not in _STANDARD_TAGS:
            # Application tags (!!python/..., !custom) mean nothing to Istio; safe
            # loading would ignore them on collections, so the document is refused.
            raise _Refused(_line(node), f"unsupported YAML tag {node.tag!r}")
        if isinstance(node, yaml.SequenceNode):
            out = YList(_line(node))
            for item in node.value:
                out.append(self.build(item, depth + 1))
                out.item_lines.append(_line(item))
            return out
        assert isinstance(node, yaml.MappingNode)
        out = YMap(_line(node))
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                # Merge keys hide where a field came from; Kubernetes rejects them too.
                self._problems.append(f"{self._file}:{_line(key_node)}: YAML merge keys (<<) are not supported")
                continue
            key = self.build(key_node, depth + 1)
            if isinstance(key, (list, dict)):
                self._problems.append(f"{self._file}:{_line(key_node)}: mapping keys must be scalars")
                continue
            if key in out:
                self._problems.append(
                    f"{self._file}:{_line(key_node)}: duplicate key {key!r} (first on line {out.key_lines[key]})"
                )
                continue
            out[key] = self.build(value_node, depth + 1)
            out.key_lines[key] = _line(key_node)
        return out


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _yaml_error_text(exc: yaml.YAMLError) -> str:
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    text = ", ".join(p for p in parts if p)
    return text or _one_line(exc)


def _yaml_error_line(exc: yaml.YAMLError) -> int:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else 1


def expand_paths(paths: Sequence[str], problems: list[str]) -> list[str]:
    """Directories become their *.yaml/*.yml files, sorted by name."""
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            try:
                names = sorted(os.listdir(path))
            except OSError as exc:
                problems.append(f"{path}:0: cannot read directory: {exc.strerror or exc}")
                continue
            for name in names:
                full = os.path.join(path, name)
                if name.endswith((".yaml", ".yml")) and os.path.isfile(full):
                    files.append(full)
        else:
            files.append(path)
    return files


def load_file(path: str, problems: list[str]) -> Iterator[Document]:
    """Yields the documents of one file; read and syntax errors become problems."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        problems.append(f"{path}:0: cannot read file: {exc.strerror or exc}")
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(f"{path}:{line}: file is not valid UTF-8")
        return
    yield from load_text(text, path, problems)


def load_text(text: str, path: str, problems: list[str]) -> Iterator[Document]:
    builder = _Builder(path, problems)
    try:
        # The reader validates the characters of the whole text on creation.
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        problems.append(f"{path}:{_yaml_error_line(exc)}: YAML syntax error: {_yaml_error_text(exc)}")
        return
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
                # An empty document (a trailing `---`) carries nothing; kubectl skips it too.
                index += 1
                continue
            try:
                data = builder.build(node)
            except ValueError as exc:
                problems.append(f"{path}:{getattr(exc, 'line', _line(node))}: {exc}")
                index += 1
                continue
            yield Document(path, _line(node), index, data)
            index += 1
    except yaml.YAMLError as exc:
        problems.append(f"{path}:{_yaml_error_line(exc)}: YAML syntax error: {_yaml_error_text(exc)}")
    finally:
        loader.dispose()


def load_documents(paths: Sequence[str], problems: list[str]) -> list[Document]:
    docs: list[Document] = []
    for file in expand_paths(paths, problems):
        docs.extend(load_file(file, problems))
    return docs
