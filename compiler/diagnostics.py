"""Diagnostics: every problem irc reports is a value, never an exception.

A diagnostic carries a code, a message, a position (file, line, column, all
1-based) and optional hint and notes. Stages return lists of them; the CLI
renders them all at once as text (compiler style, with the source line and a
caret), JSON or GitHub Actions annotations.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Literal, NamedTuple

from .shipped import is_shipped

Severity = Literal["error", "warning"]


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice a typo most likely meant; never the word itself (it is what was rejected)."""
    close = difflib.get_close_matches(word, [c for c in choices if c != word], n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    match = closest(word, choices)
    return f"did you mean {match!r}?" if match else None


class Code(NamedTuple):
    meaning: str  # one line
    example: str  # a spec fragment or situation that gets this code


# The one registry of codes (`irc codes` prints it; a test checks that every
# code the compiler uses is here and every code here is used).
CODES: dict[str, Code] = {
    "IRC001": Code("file cannot be read", "a spec file without read permission"),
    "IRC101": Code("YAML syntax error", "input: [299, 299, 3   (the bracket never closes)"),
    "IRC102": Code("file is not UTF-8", "a spec saved as Latin-1 with an accented letter in doc:"),
    "IRC103": Code("file is empty", "a file holding nothing, or only comments"),
    "IRC104": Code("duplicate key", "resnet_b: written twice under blocks:"),
    "IRC105": Code("tag not allowed", "input: !!python/tuple [299, 299, 3]"),
    "IRC106": Code(
        "resource limit exceeded", "an alias of an alias of ... (a 'billion laughs'), a 3 MB file"
    ),
    "IRC107": Code("unsupported YAML construct", "<<: *defaults   (a merge key)"),
    "IRC108": Code(
        "malformed deviation annotation", "project: {value: conv 1152 1x1, paper: conv 1154 1x1}"
    ),
    "IRC109": Code(
        "extends cycle or chain too long", "a.yaml extends b.yaml, b.yaml extends a.yaml"
    ),
    "IRC110": Code("base spec not found", "extends: ../irv3.yaml   (no such file)"),
    "IRC111": Code("bad --set argument", "--set network.resnet_b.repeat   (no =VALUE)"),
    "IRC112": Code(
        "no such list item, or an ambiguous name",
        "network: {aux_haed: $delete}   (or `conv` where a seq has two convs)",
    ),
    "IRC113": Code("unknown scale", "--scale smal   (the spec's scales: small, base, large)"),
    "IRC201": Code("unknown key", "netwrk: [stem, gap]"),
    "IRC202": Code("invalid value", "input: big"),
    "IRC203": Code("missing key", "a spec without network:"),
    "IRC204": Code("malformed op", "conv 192 3y3"),
    "IRC205": Code("unknown activation", "conv 64 3x3 rleu"),
    "IRC206": Code("invalid identifier", "name: inception-resnet-v2   (not a Python name)"),
    "IRC207": Code("number out of range", "conv 0 1x1"),
    "IRC208": Code("fused activation after batch norm", "conv 64 3x3 relu bn fused"),
    "IRC209": Code(
        "activation a ReLU layer cannot compute", "{act: {activation: elu, layer: ReLU}}"
    ),
    "IRC210": Code(
        "`correct` padding without its kernel, or a kernel without it",
        "{pad: {padding: correct}}   (write `pad correct 3x3`)",
    ),
    "IRC301": Code(
        "residual sum of unequal channels",
        "project: conv 1154 1x1 linear, summed with a 1152-channel input",
    ),
    "IRC302": Code(
        "residual sum of unequal spatial sizes", "a residual branch ending in conv 32 3x3 s2"
    ),
    "IRC303": Code(
        "concatenation of unequal spatial sizes",
        "concat: [[conv 32 3x3 valid], [conv 32 3x3 same]]",
    ),
    "IRC304": Code("window larger than its input", "maxpool 3x3 s2 valid on a 1x1 input"),
    "IRC305": Code("tensor shrinks to nothing", "conv 64 3x3 s4 on a 2x2 input"),
    "IRC306": Code("op needs a different rank", "conv 64 3x3 after flatten"),
    "IRC307": Code(
        "gate does not fit the path it scales",
        "gate: [gap keepdims, conv 8 1x1 sigmoid] on a 16-channel path",
    ),
    "IRC308": Code("network without layers", "network: [identity]"),
    "IRC309": Code(
        "tensor too large for a framework",
        "conv 100000 3x3 on a 299x299 input (8.9 G elements per image, 2^31 - 1 at most)",
    ),
    "IRC310": Code("groups do not divide the channels", "conv 64 3x3 g3 on a 32-channel input"),
    "IRC311": Code(
        "builder.any_size with a top that depends on the input's size",
        "builder: {any_size: true} with a head of flatten, dense classes",
    ),
    "IRC312": Code(
        "statistics do not fit the channels",
        "{normalization: {mean: [1, 2], variance: [1, 1]}} on a 3-channel input",
    ),
    "IRC401": Code("unknown block", "network: [stem, resnet_d]   (no block resnet_d)"),
    "IRC402": Code("block uses itself", "a: {seq: [b]} and b: {seq: [a]}"),
    "IRC403": Code("parameter error", "reduction_a: {k: 256}   (l, m and n missing)"),
    "IRC404": Code("network too large", "b x1000 where block b holds a x1000"),
    "IRC405": Code("duplicate layer name", "two ops that irc would name alike"),
    "IRC406": Code("node not allowed here", "aux: aux_head inside a block's seq"),
    "IRC407": Code(
        "valid, but no code backend can write it",
        "{twice: {repeat: n}} where twice is dwconv 3x3 dm2 (2**n channels)",
    ),
    "IRC408": Code(
        "a tensor reference that reaches nothing",
        "- b: {from: q, seq: relu}   (a dag step reading no earlier tensor q)",
    ),
    "IRC501": Code(
        "generated module stale, missing or orphaned (irc compile --check)",
        "a spec edited, or deleted, since `irc compile` wrote its module",
    ),
}


def describe_code(code: str) -> str:
    """One code for `irc codes`: the code, its meaning, and an example."""
    entry = CODES[code]
    return f"{code}  {entry.meaning}\n        e.g. {entry.example}"


@dataclass(frozen=True)
class Span:
    """A place in a source file; line and column are 1-based."""

    file: str
    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None

    def narrowed(self, start: int, end: int) -> Span:
        """The sub-span of characters start..end of a one-line scalar at this span."""
        return Span(self.file, self.line, self.column + start, self.line, self.column + end)


@dataclass(frozen=True)
class Note:
    message: str
    span: Span | None = None


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None = None
    hint: str | None = None
    notes: tuple[Note, ...] = field(default_factory=tuple)
    severity: Severity = "error"
    # The spec path the problem was found at (("blocks", "stem", ...)); used to
    # find a position when the stage that found it did not know one.
    path: tuple[str | int, ...] = ()

    def with_span(self, span: Span | None) -> Diagnostic:
        return Diagnostic(
            self.code, self.message, span, self.hint, self.notes, self.severity, self.path
        )

    def with_note(self, note: Note) -> Diagnostic:
        return Diagnostic(
            self.code,
            self.message,
            self.span,
            self.hint,
            (*self.notes, note),
            self.severity,
            self.path,
        )

    def to_json(self) -> dict:
        data = asdict(self)
        data["path"] = list(self.path)
        return data


class DiagnosticError(Exception):
    """Raised by a stage that cannot go on; carries everything found so far."""

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__("\n".join(d.message for d in diagnostics))
        self.diagnostics = diagnostics


def _excerpt(span: Span, sources: dict[str, list[str]] | list[str] | None) -> list[str]:
    source_lines = sources.get(span.file) if isinstance(sources, dict) else sources
    if source_lines is None or not 1 <= span.line <= len(source_lines):
        return []
    text = source_lines[span.line - 1].rstrip("\n")
    if len(text) > 200:
        return []
    width = 1
    if span.end_line == span.line and span.end_column and span.end_column > span.column:
        width = span.end_column - span.column
    gutter = f"{span.line:>5} | "
    return [gutter + text, " " * (len(gutter) - 2) + "| " + " " * (span.column - 1) + "^" * width]


def render_text(
    diag: Diagnostic, source_lines: dict[str, list[str]] | list[str] | None = None
) -> str:
    """Compiler-style text; `source_lines` (per file, or one file's) gives the excerpt."""
    where = f"{diag.span.file}:{diag.span.line}:{diag.span.column}: " if diag.span else ""
    out = [f"{where}{diag.severity}[{diag.code}]: {diag.message}"]
    if diag.span:
        out += _excerpt(diag.span, source_lines)
    for note in diag.notes:
        at = f" (at {note.span.file}:{note.span.line}:{note.span.column})" if note.span else ""
        out.append(f"  note: {note.message}{at}")
    if diag.hint:
        out.append(f"  hint: {diag.hint}")
    return "\n".join(out)


def _escape_data(text: str) -> str:
    """A workflow command's message (GitHub's toolkit, command.ts escapeData)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    """A workflow command's property value (command.ts escapeProperty)."""
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(
    diag: Diagnostic,
    spec: str | None = None,
    source_lines: dict[str, list[str]] | None = None,
    anchors: Mapping[str, Span] | None = None,
) -> str:
    """A GitHub Actions annotation (`::error file=...,line=...::message`).

    Notes and the hint follow the message on lines of their own. A problem in a
    `--set` argument (no file of its own) is attributed to `spec`, the argument
    named in the message; so is one in `--scale` or `--input`. GitHub attaches an
    annotation only to a file of the repository: one in a shipped spec
    (`irc:irv2`) goes on its anchor, the user's `extends:` that reached it (see
    pipeline.annotation_anchors), with its own place in a note; without an anchor
    (a shipped spec checked by name) it names no file.
    """
    span = diag.span
    if span is not None and is_shipped(span.file):
        place = f"{span.file}:{span.line}:{span.column}"
        anchor = (anchors or {}).get(span.file)
        if anchor is None:
            diag = replace(diag, message=f"{place}: {diag.message}", span=None)
        else:
            note = Note(f"the value is at {place}, in a shipped spec this file extends")
            diag = replace(diag, span=anchor, notes=(note, *diag.notes))
    span, message, props = diag.span, diag.message, {}
    if span is not None and span.file.startswith("--") and spec is not None:
        argument = (source_lines or {}).get(span.file, [""])[0]
        message = f"{span.file} {argument!r}, column {span.column}: {message}"
        if not is_shipped(spec):
            props["file"] = spec
    elif span is not None:
        props |= {"file": span.file, "line": span.line, "col": span.column}
        if span.end_line is not None:
            props["endLine"] = span.end_line
        if span.end_column is not None:
            props["endColumn"] = span.end_column
    props["title"] = diag.code
    lines = [message]
    for note in diag.notes:
        at = f" (at {note.span.file}:{note.span.line}:{note.span.column})" if note.span else ""
        lines.append(f"note: {note.message}{at}")
    if diag.hint:
        lines.append(f"hint: {diag.hint}")
    rendered = ",".join(f"{key}={_escape_property(str(value))}" for key, value in props.items())
    body = _escape_data("\n".join(lines))
    return f"::{diag.severity} {rendered}::{body}"


def render_json(diagnostics: list[Diagnostic]) -> str:
    return json.dumps([d.to_json() for d in diagnostics], indent=2)
