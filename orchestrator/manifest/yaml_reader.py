"""YAML text → plain values that remember their lines, read safely.

Hostile YAML is a problem like any other: aliases may not expand a file past a
budget relative to what it writes (a "billion laughs" is 500 bytes), nesting may not
pass MAX_YAML_DEPTH, and only plain values are built (no tags of an application).
YAML 1.1's surprises are undone: `3:4` stays text (not the base-60 number 184), and
so does a date, which JSON cannot carry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import yaml
import yaml.constructor

from .describe import show
from .values import MAX_NESTING

# YAML aliases may expand a file to at most this many values per value it writes,
# plus the floor: merging an anchored job into 100,000 others stays well inside,
# a "billion laughs" (9 levels of 9 aliases in 500 bytes) does not.
YAML_EXPANSION_FACTOR: Final = 32
YAML_EXPANSION_FLOOR: Final = 100_000
# Past this depth a manifest is refused: the root, `jobs`, a job and its `inputs` sit
# above an input's own MAX_NESTING levels. It also keeps the recursion below shallow.
MAX_YAML_DEPTH: Final = MAX_NESTING + 8

_INT_TAG: Final = "tag:yaml.org,2002:int"
_FLOAT_TAG: Final = "tag:yaml.org,2002:float"
_MAP_TAG: Final = "tag:yaml.org,2002:map"
_SEQ_TAG: Final = "tag:yaml.org,2002:seq"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_VALUE_TAG: Final = "tag:yaml.org,2002:value"
_STR_TAG: Final = "tag:yaml.org,2002:str"
_TIMESTAMP_TAG: Final = "tag:yaml.org,2002:timestamp"
_PLAIN_SCALARS: Final = (str, int, float, bool, type(None))

PLAIN: Final = "write plain text, numbers, lists or mappings"
TOO_DEEP: Final = (
    f"lists or mappings are nested more than {MAX_YAML_DEPTH} levels deep here; "
    "a manifest needs only a few: flatten this value"
)

Report = Callable[[int | None, str | None, str], None]  # (line, field, message)
_Pair = tuple[yaml.Node, yaml.Node]


class YMap(dict[str, Any]):
    """A YAML mapping that remembers its own line and the line of each key."""

    __slots__ = ("key_lines", "line")

    def __init__(self, line: int):
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}


class YList(list[Any]):
    """A YAML sequence that remembers the line of each item."""

    __slots__ = ("item_lines", "line")

    def __init__(self, line: int):
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


class YamlRefused(Exception):
    """The YAML document cannot be read safely; one problem says where and why."""

    def __init__(self, line: int | None, path: str, message: str):
        super().__init__(message)
        self.line = line
        self.path = path
        self.message = message


class YamlReader:
    """Builds plain values from a composed node tree, keeping each node's line.

    Aliases make the tree a graph: `*a` is the node `&a` itself. Each list and mapping
    is built once and shared by its aliases, but the values they stand for are counted
    (`_expanded`, as if written out) against a budget relative to the values the file
    really writes (`_written`): a few hundred bytes of nested aliases would otherwise
    expand to gigabytes, here or when the jobs are stored.
    """

    def __init__(self, report: Report):
        self._constructor = yaml.constructor.SafeConstructor()
        self._report = report
        self._open: set[int] = set()  # nodes being built: catches recursive aliases
        self._built: dict[int, tuple[Any, int]] = {}  # id(node) → (value, values in it)
        self._merged: dict[int, list[_Pair]] = {}  # id(mapping) → pairs after `<<`
        self._merging: set[int] = set()  # mappings whose merges are being applied
        self._written = 0  # values the file writes (an alias counts as one)
        self._expanded = 0  # values built or stood for by aliases
        self._limit = YAML_EXPANSION_FLOOR  # for _expanded, as _written grows
        self._depth = 0

    def convert(self, node: yaml.Node, path: str, at: int | None = None) -> Any:
        """The value of `node`; `at` is the line that refers to it (where an alias is)."""
        line = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):
            self._charge(1, line, path)
            if node.tag == _STR_TAG:  # most values: what SafeConstructor returns, directly
                return node.value
            return self._scalar(node, path, line)
        built = self._built.get(id(node))
        if built is not None:  # an alias of a list or mapping built before
            self._charge(built[1], at or line, path)
            return built[0]
        if id(node) in self._open:
            self._report(line, path or None, "a YAML alias refers to itself; remove the loop")
            return None
        if self._depth >= MAX_YAML_DEPTH:
            raise YamlRefused(line, path, TOO_DEEP)
        self._written += 1 + len(node.value) * (2 if isinstance(node, yaml.MappingNode) else 1)
        self._limit = self._written * YAML_EXPANSION_FACTOR + YAML_EXPANSION_FLOOR
        before = self._expanded
        self._charge(1, line, path)
        self._open.add(id(node))
        self._depth += 1
        try:
            value = self._container(node, path, line)
        finally:
            self._open.discard(id(node))
            self._depth -= 1
        self._built[id(node)] = (value, self._expanded - before)
        return value

    def _container(self, node: yaml.Node, path: str, line: int) -> Any:
        if isinstance(node, yaml.MappingNode) and node.tag == _MAP_TAG:
            return self._mapping(node, path, line)
        if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ_TAG:
            items = YList(line)
            # Each list item is a job (or a plain value): fields restart there.
            for child in node.value:
                try:
                    items.append(self.convert(child, "", line))
                except YamlRefused as refused:
                    refused.path = refused.path or path  # name the list, not ""
                    raise
                items.item_lines.append(child.start_mark.line + 1)
            return items
        # !!set, !!omap, !!pairs or an application's tag: not JSON, never a job's.
        self._report(line, path or None, f"cannot read this value (tag {node.tag}); {PLAIN}")
        return None

    def _charge(self, values: int, line: int, path: str) -> None:
        self._expanded += values
        if self._expanded > self._limit:
            raise YamlRefused(
                line,
                path,
                "YAML aliases expand too far here (to more than "
                f"{YAML_EXPANSION_FACTOR} times the values the file writes); write the "
                "values out, or put what jobs share under `defaults:`",
            )

    def _scalar(self, node: yaml.ScalarNode, path: str, line: int) -> Any:
        # YAML 1.1 reads a plain 3:4 as the base-60 number 184: an aspect ratio
        # was meant, never sexagesimal, so keep the text.
        if node.tag in (_INT_TAG, _FLOAT_TAG) and ":" in node.value:
            return node.value
        if node.tag == _VALUE_TAG:  # a plain `=`, which PyYAML reads as text in a key
            return node.value
        value = self._construct(node, path, line)
        if isinstance(value, _PLAIN_SCALARS):
            return value
        if node.tag == _TIMESTAMP_TAG:
            return node.value  # 2025-03-01 names something here; JSON has no dates
        self._report(line, path or None, f"cannot read this value (tag {node.tag}); {PLAIN}")
        return None

    def _mapping(self, node: yaml.MappingNode, path: str, line: int) -> YMap:
        own: dict[str, int] = {}
        merges = False
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                merges = True
            elif isinstance(key_node, yaml.ScalarNode):
                key_line = key_node.start_mark.line + 1
                if key_node.value in own:
                    self._report(
                        key_line,
                        _join(path, key_node.value),
                        f"duplicate key {key_node.value!r} (first on line "
                        f"{own[key_node.value]}); keep one: YAML silently keeps the last",
                    )
                own[key_node.value] = key_line
        pairs = self._flatten(node, path, line) if merges else node.value
        out = YMap(line)
        for key_node, value_node in pairs:
            key = self.convert(key_node, path)
            key = key if type(key) is str else str(key)
            key_line = key_node.start_mark.line + 1
            out.key_lines[key] = key_line
            out[key] = self.convert(value_node, _join(path, key), key_line)
        return out

    def _flatten(self, node: yaml.MappingNode, path: str, line: int) -> list[_Pair]:
        """The pairs of a mapping with its `<<` merges applied as PyYAML applies them
        (its own keys win, then the earlier source), but each key once: PyYAML copies
        every merged pair, so chained merges of merges grow exponentially."""
        done = self._merged.get(id(node))
        if done is not None:
            return done
        if id(node) in self._merging or self._depth >= MAX_YAML_DEPTH:
            raise YamlRefused(
                line,
                path,
                "YAML merges (<<) here refer back to themselves or nest too deep; "
                "write the keys out, or put what jobs share under `defaults:`",
            )
        self._merging.add(id(node))
        self._depth += 1
        try:
            merged: list[_Pair] = []
            own: list[_Pair] = []
            for key_node, value_node in node.value:
                if key_node.tag != _MERGE_TAG:
                    own.append((key_node, value_node))
                    continue
                merged.extend(self._merge_sources(key_node, value_node, path, line))
            pairs = _last_of_each_key(merged + own)
        finally:
            self._merging.discard(id(node))
            self._depth -= 1
        self._merged[id(node)] = pairs
        return pairs

    def _merge_sources(
        self, key_node: yaml.Node, value_node: yaml.Node, path: str, line: int
    ) -> list[_Pair]:
        """The pairs one `<<` brings in, its last source first (so earlier ones win)."""
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        merged: list[_Pair] = []
        for source in reversed(sources):
            if not isinstance(source, yaml.MappingNode):
                self._report(
                    key_node.start_mark.line + 1,
                    path or None,
                    "cannot merge here: '<<' takes a mapping or a list of mappings "
                    "(e.g. <<: *defaults)",
                )
                continue
            pairs = self._flatten(source, path, line) if source.value else []
            self._charge(len(pairs), line, path)
            merged.extend(pairs)
        return merged

    def _construct(self, node: yaml.Node, path: str, line: int) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self._report(
                line,
                path or None,
                f"cannot read this value ({getattr(exc, 'problem', None) or exc}); {PLAIN}",
            )
            return None


def read_yaml(text: str, report: Report) -> YMap | None:
    """The document's top-level mapping, or None after reporting why there is none."""
    # The C parser is ~10x faster; both give the node marks we need for lines.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        node = yaml.compose(text, Loader=loader)
    except RecursionError:  # PyYAML's own composer recurses once per level
        report(_deep_line(text, loader), None, TOO_DEEP)
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        what = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        report(
            mark.line + 1 if mark is not None else None,
            None,
            f"YAML syntax error: {what}{f' ({context})' if context else ''}; "
            "fix the YAML here (check indentation, colons and quotes)",
        )
        return None
    if node is None:
        report(None, None, "the file is empty; add a 'jobs:' list")
        return None
    try:
        root = YamlReader(report).convert(node, "")
    except YamlRefused as refused:
        report(refused.line, refused.path or None, refused.message)
        return None
    if not isinstance(root, YMap):
        report(
            node.start_mark.line + 1,
            None,
            f"the top level must be a mapping with a 'jobs:' list; got {show(root)}",
        )
        return None
    return root


def _last_of_each_key(pairs: list[_Pair]) -> list[_Pair]:
    """Keep the last pair of each key (the one a mapping would keep), in order."""
    seen: set[Any] = set()
    kept: list[_Pair] = []
    for pair in reversed(pairs):
        key_node = pair[0]
        key = (
            (key_node.tag, key_node.value)
            if isinstance(key_node, yaml.ScalarNode)
            else id(key_node)
        )
        if key not in seen:
            seen.add(key)
            kept.append(pair)
    kept.reverse()
    return kept


def _deep_line(text: str, loader: Any) -> int | None:
    """The line where nesting passes MAX_YAML_DEPTH: the parser's events, unlike its
    recursive composer, run in constant stack."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    mark = event.start_mark
                    return None if mark is None else mark.line + 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        pass
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
