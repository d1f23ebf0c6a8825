"""The stages end to end: a spec file in, a validated Spec and its Graph or diagnostics out.

Also where Pydantic's errors become diagnostics: a Pydantic `loc` is a path
into the loaded data, and the loader kept the position of every path.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from irc_cnn.compiler import compact, schema
from irc_cnn.compiler.diagnostics import Diagnostic, DiagnosticError, Note, Span
from irc_cnn.compiler.graph import Graph
from irc_cnn.compiler.layering import SetError, apply_set, load_layered
from irc_cnn.compiler.source import MAX_BYTES, Source, load, split_lines


@dataclass
class Result:
    file: str
    source: Source | None = None
    spec: schema.Spec | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    lines: dict[str, list[str]] | None = None  # per file, for excerpts, even when loading failed

    @property
    def ok(self) -> bool:
        return self.spec is not None and not any(d.severity == "error" for d in self.diagnostics)

    @property
    def graph(self) -> Graph:
        return self.spec.graph


def check_file(
    path: str | Path, paper: bool = False, display: str | None = None, sets: Sequence[str] = ()
) -> Result:
    """Run every stage on one file (and the files it extends), then each `--set`.

    `display` is the name diagnostics use for the file.
    """
    name = display or Path(path).as_posix()
    try:
        source = load_layered(Path(path), name, paper)
        for index, argument in enumerate(sets, 1):
            apply_set(source, argument, index)
    except DiagnosticError as exc:
        return Result(name, diagnostics=exc.diagnostics, lines=_texts(exc.diagnostics))
    except SetError as exc:
        return Result(
            name, diagnostics=[exc.diagnostic], lines={**source.lines, **_set_lines(sets)}
        )
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return Result(
            name,
            diagnostics=[Diagnostic("IRC001", f"cannot read {name}: {reason}", Span(name, 1, 1))],
        )
    return validate(source)


def check_bytes(raw: bytes, file: str, paper: bool = False) -> Result:
    """Run every stage on one document given as bytes (no `extends`: it has no folder)."""
    try:
        source = load(raw, file, paper=paper)
    except DiagnosticError as exc:
        lines = {file: split_lines(raw.decode("utf-8", errors="replace"))}
        return Result(file, diagnostics=exc.diagnostics, lines=lines)
    return validate(source)


def validate(source: Source) -> Result:
    """Schema, resolve and infer on loaded data; every diagnostic gets its position."""
    result = Result(source.file, source, lines=source.lines)
    warnings: list[Diagnostic] = []
    try:
        result.spec = schema.Spec.model_validate(source.data, context={"diagnostics": warnings})
        found = warnings
    except ValidationError as exc:
        found = from_pydantic(exc, source)
    result.diagnostics = _unique([_inherited(source, position(source, d)) for d in found])
    return result


def _inherited(source: Source, diag: Diagnostic) -> Diagnostic:
    """Say through which `extends` chain a base file's value reached this spec."""
    if diag.span is None or diag.span.file not in source.chain[1:]:
        return diag
    chain = " -> ".join(source.chain[: source.chain.index(diag.span.file) + 1])
    return diag.with_note(
        Note(f"the value is set in a base spec, reached through extends: {chain}")
    )


def _texts(diagnostics: list[Diagnostic]) -> dict[str, list[str]]:
    """Source lines of the files diagnostics name, read again for their excerpts."""
    lines: dict[str, list[str]] = {}
    for diag in diagnostics:
        name = diag.span.file if diag.span else None
        path = Path(name) if name else None
        if path and name not in lines and path.is_file() and path.stat().st_size <= MAX_BYTES:
            lines[name] = split_lines(path.read_text(encoding="utf-8", errors="replace"))
    return lines


def _set_lines(sets: Sequence[str]) -> dict[str, list[str]]:
    return {f"--set[{i}]": [argument] for i, argument in enumerate(sets, 1)}


# -- Pydantic errors to diagnostics ------------------------------------------

_KNOWN_KEYS = sorted(
    {
        name
        for model in vars(schema).values()
        if isinstance(model, type) and issubclass(model, BaseModel)
        for name in model.model_fields
    }
)

_NUMBER_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def from_pydantic(exc: ValidationError, source: Source) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for err in exc.errors(include_url=False):
        kind, loc, ctx = err["type"], tuple(err["loc"]), err.get("ctx") or {}
        if kind == "irc_analysis":
            out.extend(ctx["diagnostics"])
            continue
        msg = err["msg"]
        where = _describe(loc)
        if kind == "extra_forbidden":
            key = loc[-1]
            hint = _did_you_mean(str(key), _KNOWN_KEYS)
            out.append(
                Diagnostic(
                    "IRC201",
                    f"unknown key {key!r}",
                    hint=hint
                    or "remove it; `irc docs spec-language` describes the keys each part takes",
                    path=loc,
                )
            )
        elif kind == "missing" and isinstance(loc[-1], int):
            out.append(
                Diagnostic(
                    "IRC202", f"{_field(loc)}: too few items (no item {loc[-1] + 1})", path=loc[:-1]
                )
            )
        elif kind == "missing":
            out.append(Diagnostic("IRC203", f"missing key {loc[-1]!r}", path=loc[:-1]))
        elif kind == "irc_compact":
            code = ctx.get("code", "IRC204")
            best, _ = source.locate(loc)
            span = source.token_span(best, ctx["start"], ctx["end"])
            out.append(Diagnostic(code, msg, span, ctx.get("hint"), path=loc))
        elif kind == "irc_identifier":
            out.append(Diagnostic("IRC206", msg, path=loc))
        elif kind in _NUMBER_ERRORS or kind in ("irc_range", "finite_number"):
            out.append(Diagnostic("IRC207", f"{_field(loc)}: {msg[0].lower()}{msg[1:]}", path=loc))
        else:
            out.append(Diagnostic("IRC202", f"{where}: {msg}" if where else msg, path=loc))
    return out


def _field(loc: tuple) -> str:
    """The field a location names: `strides` for ('...', 'strides', 0)."""
    return next((str(p) for p in reversed(loc) if isinstance(p, str) and p != "[key]"), "value")


def _describe(loc: tuple) -> str:
    """A Pydantic location as a dotted path, without the union tags after list items."""
    kept = [
        p for i, p in enumerate(loc) if not (p in _UNION_TAGS and i and isinstance(loc[i - 1], int))
    ]
    return ".".join(map(str, kept))


_UNION_TAGS = {*compact.OP_KINDS, "use", "aux", "concat", "residual"}


def _did_you_mean(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


# -- positions ---------------------------------------------------------------


def value_at(data: Any, path: tuple) -> Any:
    for segment in path:
        try:
            data = data[segment]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def position(source: Source, diag: Diagnostic) -> Diagnostic:
    """Give a path-only diagnostic its file position, down to a token of a compact op."""
    if diag.span is not None:
        return diag
    if "[key]" in diag.path:  # a problem with a mapping key (Pydantic's marker)
        return diag.with_span(_key_span(source, diag.path[: diag.path.index("[key]")]))
    key = diag.code in ("IRC201",)
    best, span = source.locate(diag.path, key=key)
    if span is None:
        return diag.with_span(Span(source.file, 1, 1))
    value = value_at(source.data, best)
    if not key and isinstance(value, str) and len(best) < len(diag.path):
        try:
            _, _, spans = compact.parse(value)
        except compact.CompactError:
            spans = {}
        for segment in reversed(diag.path[len(best) :]):
            if segment in spans:
                narrowed = source.token_span(best, *spans[segment])
                return diag.with_span(narrowed)
    return diag.with_span(span)


def _key_span(source: Source, path: tuple) -> Span | None:
    """Where a mapping key (or the list item standing for one, as in `params: [k, l]`) is."""
    parent, name = path[:-1], path[-1]
    best, span = source.locate(parent)
    wrapper = source.single_key(best)
    for candidate in ((*best, name), (*best, wrapper, name)):
        if candidate in source.key_spans:
            return source.key_spans[candidate]
    items = value_at(source.data, best)
    if isinstance(items, list) and name in items:
        return source.spans.get((*best, items.index(name)), span)
    return span


def _unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Drop repeats (Pydantic reports `s0` once per axis of the stride pair)."""
    seen: set = set()
    out = []
    for d in diagnostics:
        key = (d.code, d.span, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
