"""Safe YAML loading that remembers where every value came from (line and column).

Only plain data is built (mappings, sequences, strings, numbers, booleans, null): the YAML is
composed with PyYAML's safe loader and every tag that would construct an object is refused.
Duplicate keys, which PyYAML accepts silently, are errors. The number of values is bounded
(``max_yaml_nodes``, :mod:`simgen.limits`) so a file of nested aliases (a "billion laughs")
cannot exhaust memory.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from simgen.errors import Problem, SceneFileError

Path_ = tuple[str | int, ...]
MAX_NODES = 200_000  # the default of simgen.limits.Limits.max_yaml_nodes
_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null")}
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_STR = "tag:yaml.org,2002:str"
_FLOAT_12 = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_KEYS = "plain scalar keys (names), e.g. 'mass: 1.0'"
_SYNTAX = (
    "one YAML document of plain data: 'key: value' mappings, '- item' or '[a, b]' lists, "
    "indented with spaces (not tabs)"
)


@dataclass
class Positions:
    """1-based (line, column) of each value and of each mapping key, by field path."""

    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def find(self, path: Path_, prefer_key: bool = False) -> tuple[int, int] | None:
        """Position of ``path``, or of its nearest recorded ancestor."""
        p = tuple(path)
        while True:
            if prefer_key and p in self.keys:
                return self.keys[p]
            if p in self.values:
                return self.values[p]
            if not p:
                return None
            p = p[:-1]


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, filename: str | None) -> None:
        self.loader = loader
        self.filename = filename
        self.positions = Positions()
        self.count = 0
        from simgen.limits import current

        self.max_nodes = current().max_yaml_nodes
        self.max_number = current().max_abs_number

    def fail(self, node: yaml.Node, path: Path_, message: str, allowed: str | None = None) -> None:
        line, col = _mark(node)
        raise SceneFileError([Problem(path, message, line, col, allowed)], self.filename)

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > self.max_nodes:
            self.fail(
                node,
                path,
                f"document has more than {self.max_nodes} values (nested aliases?)",
                f"at most {self.max_nodes} values (limit max_yaml_nodes)",
            )
        self.positions.values[path] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                self.fail(node, path, f"YAML tag {node.tag!r} is not allowed", "plain YAML data")
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        v = self._scalar(node, path)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) > self.max_number:
            if not (isinstance(v, float) and math.isinf(v)):  # inf: the schema says what to do
                from simgen.limits import exceeded

                self.fail(
                    node,
                    path,
                    exceeded("max_abs_number", "this number", v),
                    f"numbers within +-{self.max_number:g}",
                )
        return v

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        if node.tag != "tag:yaml.org,2002:map":
            self.fail(node, path, f"YAML tag {node.tag!r} is not allowed", "plain YAML data")
        self.loader.flatten_mapping(node)  # YAML merge keys (<<)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._scalar(key_node, path)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                self.fail(key_node, path, "mapping keys must be plain strings", _KEYS)
            key = str(key)
            kpath = (*path, key)
            if key in out:
                line, _ = self.positions.keys[kpath]
                self.fail(
                    key_node,
                    kpath,
                    f"duplicate key {key!r} (first at line {line})",
                    "each key once in a mapping",
                )
            self.positions.keys[kpath] = _mark(key_node)
            out[key] = self.build(value_node, (*path, key))
        return out

    def _scalar(self, node: yaml.Node, path: Path_) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, path, "mapping keys must be plain strings", _KEYS)
        plain = getattr(node, "style", None) is None
        if node.tag == _STR and plain and _FLOAT_12.fullmatch(node.value):
            return float(node.value)  # 1e5, 1.0e5: numbers in YAML 1.2 (text in PyYAML's 1.1)
        if node.tag not in _PLAIN_TAGS:
            if node.tag == _TIMESTAMP:  # 2024-01-31 is data, not a date object: a string
                return str(node.value)
            self.fail(node, path, f"YAML tag {node.tag!r} is not allowed", "plain YAML data")
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as e:
            self.fail(
                node, path, f"YAML tag {node.tag!r} is not allowed ({e.problem})", "plain YAML data"
            )


def load_yaml(text: str, filename: str | None = None) -> tuple[Any, Positions]:
    """Parse one YAML document into plain data and the positions of its values."""
    try:
        loader = yaml.SafeLoader(text)  # checks the characters first
    except yaml.reader.ReaderError as e:
        at_line = text.count("\n", 0, e.position) + 1
        at_col = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        ch = e.character if isinstance(e.character, int) else ord(e.character)
        msg = f"character U+{ch:04X} is not allowed in YAML (a control character)"
        raise SceneFileError(
            [Problem((), msg, at_line, at_col, "printable UTF-8 text")], filename
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise SceneFileError(
                [Problem((), "the file is empty", 1, 1, "a mapping: schema_version: 1, ...")],
                filename,
            )
        builder = _Builder(loader, filename)
        return builder.build(node, ()), builder.positions
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        msg = f"invalid YAML: {e.problem or e.context}"
        raise SceneFileError([Problem((), msg, line, col, _SYNTAX)], filename) from None
    except yaml.YAMLError as e:
        raise SceneFileError([Problem((), f"invalid YAML: {e}", 1, 1, _SYNTAX)], filename) from None
    finally:
        loader.dispose()
