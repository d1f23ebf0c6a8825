"""Diagnostics: every problem irc reports is a value, never an exception.

A diagnostic carries a code, a message, a position (file, line, column, all
1-based) and optional hint and notes. Stages return lists of them; the CLI
renders them all at once as text (compiler style, with the source line and a
caret), JSON or GitHub Actions annotations.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]

# One table of codes, so that a code means one thing everywhere.
CODES: dict[str, str] = {
    "IRC001": "file cannot be read",
    "IRC101": "YAML syntax error",
    "IRC102": "file is not UTF-8",
    "IRC103": "file is empty",
    "IRC104": "duplicate key",
    "IRC105": "tag not allowed",
    "IRC106": "resource limit exceeded",
    "IRC107": "unsupported YAML construct",
    "IRC108": "malformed deviation annotation",
    "IRC109": "extends cycle or chain too long",
    "IRC110": "base spec not found",
    "IRC111": "bad --set argument",
    "IRC201": "unknown key",
    "IRC202": "invalid value",
    "IRC203": "missing key",
    "IRC204": "malformed op",
    "IRC205": "unknown activation",
    "IRC206": "invalid identifier",
    "IRC207": "number out of range",
    "IRC301": "residual sum of unequal channels",
    "IRC302": "residual sum of unequal spatial sizes",
    "IRC303": "concatenation of unequal spatial sizes",
    "IRC304": "window larger than its input",
    "IRC305": "tensor shrinks to nothing",
    "IRC306": "op needs a different rank",
    "IRC307": "gate does not fit the path it scales",
    "IRC401": "unknown block",
    "IRC402": "block uses itself",
    "IRC403": "parameter error",
    "IRC404": "network too large",
    "IRC405": "duplicate layer name",
    "IRC406": "node not allowed here",
}


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


def render_github(diag: Diagnostic) -> str:
    def escape(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    props = [f"title={diag.code}"]
    if diag.span:
        props = [
            f"file={diag.span.file}",
            f"line={diag.span.line}",
            f"col={diag.span.column}",
        ] + props
    body = diag.message + (f" (hint: {diag.hint})" if diag.hint else "")
    return f"::{diag.severity} {','.join(props)}::{escape(body)}"


def render_json(diagnostics: list[Diagnostic]) -> str:
    return json.dumps([d.to_json() for d in diagnostics], indent=2)
