"""Stage 1, load: YAML text to plain data, keeping the position of every node.

Built on `yaml.compose` (safe resolver, no object construction) so that each
mapping key and value keeps its line and column. On the way it rejects what
`safe_load` would silently accept or choke on: duplicate keys, non-standard
tags, merge keys, documents nested or expanded beyond the limits below.

Deviation annotations are unwrapped here, once, for every later stage: a
mapping `{value: V, paper: P, seed: S, why: W}` stands for V (or for P when
checking against the paper) and is recorded as a `Deviation`.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .diagnostics import Diagnostic, DiagnosticError, Note, Span

Path_ = tuple[str | int, ...]

# Bounds on what one file may cost; a spec of the three networks uses a
# small fraction of each.
MAX_BYTES = 2_000_000
MAX_DEPTH = 64
MAX_NODES = 200_000

# libyaml's parser when PyYAML was built with it (several times faster); both
# give the same nodes and positions.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STANDARD_TAGS = {
    "tag:yaml.org,2002:" + name for name in ("str", "int", "float", "bool", "null", "map", "seq")
}
_DEVIATION_KEYS = {"value", "paper", "seed", "why"}
_ABSENT = object()  # a deviation whose paper value is null, checked against the paper


@dataclass(frozen=True)
class Deviation:
    """A value where the spec departs from the paper (or from the seed)."""

    path: Path_
    value: Any
    paper: Any
    seed: Any
    why: str
    span: Span
    paper_span: Span | None
    has_paper: bool
    has_seed: bool


def describe(value: Any) -> str:
    """A deviation's value in one line, for listings and generated docstrings."""
    if value is None:
        return "(absent)"
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        return f"{key}: {inner}"
    return str(value)


@dataclass
class Source:
    """A loaded spec: plain data plus where each piece came from."""

    file: str
    text: str
    data: Any
    spans: dict[Path_, Span] = field(default_factory=dict)
    key_spans: dict[Path_, Span] = field(default_factory=dict)
    # For one-line scalars: the column offset of the scalar's text inside the
    # node (1 for quoted scalars), so that a token inside it can be pointed at.
    text_offsets: dict[Path_, int] = field(default_factory=dict)
    deviations: list[Deviation] = field(default_factory=list)
    # With `extends` and `--set`: the text of every file a span may name, the
    # chain of files (this one first), and for each path the values it
    # overrode, oldest first (see compiler.layering).
    texts: dict[str, str] = field(default_factory=dict)
    chain: tuple[str, ...] = ()
    # The file on disk behind each name in `chain` (set by compiler.layering;
    # the result cache, compiler.cache, hashes them to know what a check read).
    paths: dict[str, Path] = field(default_factory=dict)
    overrides: dict[Path_, list[tuple[Span | None, Any]]] = field(default_factory=dict)
    # The `extends:` value of each file in `chain` that has one (GitHub annotations
    # of a shipped base's problem go on the user's own `extends:` line).
    extends_spans: dict[str, Span] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.texts.setdefault(self.file, self.text)
        self.chain = self.chain or (self.file,)

    @property
    def lines(self) -> dict[str, list[str]]:
        """Source lines of every file this spec was built from, for excerpts."""
        return {name: split_lines(text) for name, text in self.texts.items()}

    def locate(self, path: Path_, key: bool = False) -> tuple[Path_, Span | None]:
        """The deepest existing prefix of `path` and its span.

        Paths from Pydantic carry extra segments (union tags, fields parsed out
        of a compact string); they are skipped rather than trusted.
        """
        current: Path_ = ()
        for segment in path:
            candidate = (*current, segment)
            if candidate in self.spans:
                current = candidate
                continue
            # Look through a one-key wrapper (`{conv: {...}}`, `{reduction_a: {k: 256}}`),
            # which the schema unwraps and Pydantic's locations leave out.
            wrapper = self.single_key(current)
            if wrapper is not None and (*current, wrapper, segment) in self.spans:
                current = (*current, wrapper, segment)
        if key and current in self.key_spans:
            return current, self.key_spans[current]
        return current, self.spans.get(current, self.spans.get((), None))

    def single_key(self, path: Path_) -> str | None:
        value: Any = self.data
        for segment in path:
            try:
                value = value[segment]
            except (KeyError, IndexError, TypeError):
                return None
        if isinstance(value, dict) and len(value) == 1:
            return next(iter(value))
        return None

    def token_span(self, path: Path_, start: int, end: int) -> Span | None:
        """Span of characters start..end inside the one-line scalar at path."""
        span = self.spans.get(path)
        if span is None or path not in self.text_offsets:
            return span
        return span.narrowed(self.text_offsets[path] + start, self.text_offsets[path] + end)


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """Lines as editors count them: broken at \\n, \\r\\n and a lone \\r only.

    YAML 1.1 also breaks lines at U+0085, U+2028 and U+2029, so positions are
    recomputed from character offsets rather than taken from PyYAML's marks.
    """
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


class LineIndex:
    """Character offset to (line, column), both 1-based, in editor lines."""

    def __init__(self, file: str, text: str):
        self.file = file
        self.starts = [0] + [m.end() for m in _LINE_BREAK.finditer(text)]

    def position(self, index: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, index)
        return line, index - self.starts[line - 1] + 1

    def mark(self, mark: Any) -> Span:
        return Span(self.file, *self.position(mark.index))

    def node(self, node: yaml.Node) -> Span:
        line, column = self.position(node.start_mark.index)
        end_line, end_column = self.position(node.end_mark.index)
        return Span(self.file, line, column, end_line, end_column)


def read_source(path: str | Path, display: str | None = None) -> bytes:
    """Read a file's bytes, refusing oversized files before reading them whole."""
    path = Path(path)
    name = display or str(path)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise DiagnosticError(
            [
                Diagnostic(
                    "IRC106",
                    f"file is {size:,} bytes; a spec may be at most {MAX_BYTES:,}",
                    Span(name, 1, 1),
                    hint="split the spec or check that this is the file you meant",
                )
            ]
        )
    return path.read_bytes()


def load(raw: bytes, file: str, paper: bool = False) -> Source:
    """Parse spec bytes. Raises DiagnosticError with every problem it can find."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Lines and columns count characters, as everywhere else, not bytes.
        before = raw[: exc.start].decode("utf-8", errors="replace")
        line, column = LineIndex(file, before).position(len(before))
        raise DiagnosticError(
            [
                Diagnostic(
                    "IRC102",
                    f"byte 0x{raw[exc.start]:02x} at offset {exc.start} is not valid UTF-8",
                    Span(file, line, column),
                    hint="save the file as UTF-8",
                )
            ]
        ) from None
    if len(raw) > MAX_BYTES:
        raise DiagnosticError(
            [
                Diagnostic(
                    "IRC106", f"spec is {len(raw):,} bytes; at most {MAX_BYTES:,}", Span(file, 1, 1)
                )
            ]
        )
    lines = LineIndex(file, text)
    _check_depth(text, lines)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        span = lines.mark(mark) if mark else Span(file, 1, 1)
        problem = exc.problem or "invalid YAML"
        if "maximum nesting depth" in problem:  # libyaml >= 0.2.5's own limit, hit first
            raise DiagnosticError(
                [Diagnostic("IRC106", f"nesting deeper than {MAX_DEPTH} levels", span)]
            ) from None
        context = f" {exc.context}" if exc.context else ""
        raise DiagnosticError(
            [
                Diagnostic(
                    "IRC101",
                    f"YAML syntax error: {problem}{context}",
                    span,
                    hint="check indentation and quoting on this line and the one before",
                )
            ]
        ) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        raise DiagnosticError(
            [
                Diagnostic(
                    "IRC101",
                    f"character U+{exc.character:04X} is not allowed in YAML ({exc.reason})",
                    Span(file, *lines.position(exc.position)),
                    hint="remove it, or write it as an escape inside a double-quoted string",
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise DiagnosticError(
            [Diagnostic("IRC101", f"YAML error: {exc}", Span(file, 1, 1))]
        ) from None
    if node is None:
        raise DiagnosticError(
            [
                Diagnostic(
                    "IRC103",
                    "file is empty",
                    Span(file, 1, 1),
                    hint="a spec needs at least `name`, `input` and `network`",
                )
            ]
        )
    builder = _Builder(lines, paper)
    data = builder.convert(node, ())
    if builder.diagnostics:
        raise DiagnosticError(builder.diagnostics)
    return Source(
        file, text, data, builder.spans, builder.key_spans, builder.text_offsets, builder.deviations
    )


def _check_depth(text: str, lines: LineIndex) -> None:
    """Refuse deep nesting before `compose`, whose recursion it would exhaust."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise DiagnosticError(
                        [
                            Diagnostic(
                                "IRC106",
                                f"nesting deeper than {MAX_DEPTH} levels",
                                lines.mark(event.start_mark),
                                hint="a spec nests blocks, branches and ops a few levels deep at most",
                            )
                        ]
                    )
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return  # compose reports syntax errors with better context


class _Builder:
    """Turns a composed node graph into plain data, collecting problems."""

    def __init__(self, lines: LineIndex, paper: bool):
        self.file = lines.file
        self.lines = lines
        self.paper = paper
        self.spans: dict[Path_, Span] = {}
        self.key_spans: dict[Path_, Span] = {}
        self.text_offsets: dict[Path_, int] = {}
        self.deviations: list[Deviation] = []
        self.diagnostics: list[Diagnostic] = []
        self.nodes = 0
        self.constructor = yaml.SafeLoader("")

    def error(
        self, code: str, message: str, node: yaml.Node, hint: str | None = None, **kw
    ) -> None:
        self.diagnostics.append(Diagnostic(code, message, self.lines.node(node), hint, **kw))

    def convert(self, node: yaml.Node, path: Path_) -> Any:
        self.nodes += 1
        if len(path) > MAX_DEPTH:
            # Reachable through aliases only: the event stream was checked.
            if not any(d.code == "IRC106" for d in self.diagnostics):
                self.diagnostics.append(
                    Diagnostic(
                        "IRC106",
                        f"nesting deeper than {MAX_DEPTH} levels (through aliases)",
                        self.key_spans.get(path[:1]) or self.lines.node(node),
                    )
                )
            return None
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                # Point at the top-level key whose value blew up: the alias
                # itself kept no position once composed.
                top = self.key_spans.get(path[:1])
                self.diagnostics.append(
                    Diagnostic(
                        "IRC106",
                        f"spec expands to more than {MAX_NODES:,} YAML nodes "
                        "(aliases count each time they are used)",
                        top or self.lines.node(node),
                        "an alias of an alias multiplies; write the structure out "
                        "or use block templates",
                    )
                )
            return None
        if node.tag not in _STANDARD_TAGS:
            self.error(
                "IRC105",
                f"tag {node.tag!r} is not allowed in a spec",
                node,
                hint="specs hold plain mappings, lists, strings and numbers; remove the tag",
            )
            return None
        self.spans[path] = self.lines.node(node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for item in node.value:
                value = self.convert(item, (*path, len(items)))
                if value is _ABSENT:
                    self._forget((*path, len(items)))
                else:
                    items.append(value)
            return items
        if isinstance(node, yaml.ScalarNode) and node.start_mark.line == node.end_mark.line:
            self.text_offsets[path] = 0 if not node.style else 1  # plain: '' (libyaml) or None
        try:
            return self.constructor.construct_object(node)
        except yaml.YAMLError as exc:
            self.error("IRC101", f"cannot read scalar: {exc}", node)
        except ValueError:  # Python refuses to convert integers of over 4300 digits
            self.error("IRC207", f"number with {len(node.value):,} digits is too large", node)
        return None

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> Any:
        keys = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
        if "value" in keys and ("paper" in keys or "seed" in keys or "why" in keys):
            return self._deviation(node, path)
        result: dict[str, Any] = {}
        first_seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.error(
                    "IRC107",
                    "merge keys (`<<`) are not supported",
                    key_node,
                    hint="use block templates with parameters to share structure",
                )
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                self.error(
                    "IRC107",
                    "mapping keys must be plain strings",
                    key_node,
                    hint="quote the key if it is meant as text",
                )
                continue
            key = key_node.value
            if key in first_seen:
                self._duplicate(key, key_node, first_seen[key])
                continue
            first_seen[key] = key_node
            self.key_spans[(*path, key)] = self.lines.node(key_node)
            value = self.convert(value_node, (*path, key))
            if value is _ABSENT:
                self._forget((*path, key))
            else:
                result[key] = value
        return result

    def _duplicate(self, key: str, again: yaml.Node, first: yaml.Node) -> None:
        self.error(
            "IRC104",
            f"duplicate key {key!r}: YAML would silently keep only the last value",
            again,
            hint="remove one of the two, or rename it",
            notes=(Note(f"first {key!r} is here", self.lines.node(first)),),
        )

    def _forget(self, prefix: Path_) -> None:
        """Drop the positions recorded under a value that turned out absent."""
        n = len(prefix)
        for table in (self.spans, self.key_spans, self.text_offsets):
            for stale in [p for p in table if p[:n] == prefix]:
                del table[stale]

    def _deviation(self, node: yaml.MappingNode, path: Path_) -> Any:
        parts: dict[str, yaml.Node] = {}
        keys: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.error("IRC107", "mapping keys must be plain strings", key_node)
                continue
            key = key_node.value
            if key not in _DEVIATION_KEYS:
                self.error(
                    "IRC108",
                    f"unknown key {key!r} in a deviation annotation",
                    key_node,
                    hint="a deviation has `value`, `why` and `paper` and/or `seed`",
                )
            elif key in parts:
                self._duplicate(key, key_node, keys[key])
            else:
                parts[key], keys[key] = value_node, key_node
        why_node = parts.get("why")
        if why_node is None or not (
            isinstance(why_node, yaml.ScalarNode) and why_node.value.strip()
        ):
            self.error(
                "IRC108",
                "a deviation from the paper needs `why`: the reason the value differs",
                node,
                hint="add `why: <reason>`",
            )
            return None
        in_paper = self.paper and "paper" in parts
        value = self.convert(parts["value"], (*path, "$value") if in_paper else path)
        paper = seed = None
        paper_span = None
        if "paper" in parts:
            paper = self.convert(parts["paper"], path if in_paper else (*path, "$paper"))
            paper_span = self.lines.node(parts["paper"])
        if "seed" in parts:
            seed = self.convert(parts["seed"], (*path, "$seed"))
        self.deviations.append(
            Deviation(
                path,
                value,
                paper,
                seed,
                why_node.value.strip(),
                self.lines.node(parts["value"]),
                paper_span,
                "paper" in parts,
                "seed" in parts,
            )
        )
        # A null stands for "no such thing": `{value: null, paper: dropout 0.2}`
        # is an op the paper has and the spec leaves out, and the reverse.
        chosen = paper if in_paper else value
        return _ABSENT if chosen is None else chosen
