"""The stages end to end: a spec file in, a validated Spec and its Graph or diagnostics out.

Also where Pydantic's errors become diagnostics: a Pydantic `loc` is a path
into the loaded data, and the loader kept the position of every path.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError

from . import compact, ops, schema, settings
from .diagnostics import (
    Diagnostic,
    DiagnosticError,
    Note,
    Span,
    closest,
    did_you_mean,
)
from .graph import Graph
from .layering import (
    SetError,
    apply_scale,
    apply_set,
    deleted_block,
    load_layered,
    replaced_list,
)
from .program import ProgramError, build
from .references import unknown_blocks
from .shipped import UnknownShippedSpec, is_shipped, shipped_file
from .source import MAX_BYTES, Source, load, split_lines


@dataclass
class Result:
    file: str
    source: Source | None = None
    spec: schema.Spec | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    lines: dict[str, list[str]] | None = None  # per file, for excerpts, even when loading failed
    set_misused: bool = False  # a --set (or --input) could not be applied: misuse, not a spec error

    @property
    def ok(self) -> bool:
        return self.spec is not None and not any(d.severity == "error" for d in self.diagnostics)

    @property
    def valid_spec(self) -> schema.Spec:
        """The spec of an `ok` result, for the stages after the check (which take no other)."""
        if self.spec is None:
            raise ValueError(f"{self.file} did not pass the check")
        return self.spec

    @property
    def graph(self) -> Graph:
        return self.valid_spec.graph


def check_file(
    path: str | Path,
    paper: bool = False,
    display: str | None = None,
    sets: Sequence[str] = (),
    input_size: tuple[int, int] | None = None,
    scale: str | None = None,
) -> Result:
    """Run every stage on one file (and the files it extends), its scale preset
    (`scale`: `--scale`), then each `--set`. `path` may name a shipped spec,
    `irc:NAME`, as `extends:` does; diagnostics then call it `irc:NAME`.

    `display` is the name diagnostics use for the file. `input_size` (height,
    width), from `--input`, sets the input after the `--set`s and keeps its
    channels.
    """
    text = path if isinstance(path, str) else path.as_posix()
    shipped = is_shipped(text)
    name = display or (text if shipped else Path(path).as_posix())
    arguments = _set_lines(sets)
    source: Source | None = None  # a SetError comes after the load
    try:
        file = shipped_file(text) if shipped else Path(path)
        source = load_layered(file, name, paper)
        apply_scale(source, scale, paper)
        for index, argument in enumerate(sets, 1):
            apply_set(source, argument, index, paper=paper)
        if input_size is not None:
            argument = f"input=[{input_size[0]}, {input_size[1]}, {_channels(source.data)}]"
            arguments[INPUT_LABEL] = [argument]
            apply_set(source, argument, len(sets) + 1, paper=paper, label=INPUT_LABEL)
    except DiagnosticError as exc:
        return Result(name, diagnostics=exc.diagnostics, lines=_texts(exc.diagnostics))
    except SetError as exc:
        lines = {**(source.lines if source else {}), **arguments, "--scale": [scale or ""]}
        return Result(name, diagnostics=[exc.diagnostic], lines=lines, set_misused=True)
    except UnknownShippedSpec as exc:
        return Result(name, diagnostics=[Diagnostic("IRC110", str(exc), hint=exc.hint)])
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
    settings.fill_from_name(source)
    settings.fill_title(source)  # the title states the input, width and depth in force
    warnings: list[Diagnostic] = []
    try:
        result.spec = schema.Spec.model_validate(source.data, context={"diagnostics": warnings})
        found = warnings
    except ValidationError as exc:
        found = from_pydantic(exc, source)
        if not any(e["type"] == "irc_analysis" for e in exc.errors()):
            # resolve did not run: check the block references on the raw data
            reported = [source.locate(d.path)[0] for d in found if d.path]
            found += unknown_blocks(source.data, reported)
    if result.spec is not None and not any(d.severity == "error" for d in found):
        found += _unwritable(result)
    result.diagnostics = _in_file_order(
        _unique([_inherited(source, _explained(source, position(source, d))) for d in found])
    )
    return result


def _unwritable(result: Result) -> list[Diagnostic]:
    """What the code backends cannot write, found by building their program here: a spec
    `irc check` accepts is one `irc compile` writes (the program has no framework)."""
    try:
        build(result, root=Path("/"))  # its file names are not used here; no cwd needed
    except ProgramError as exc:
        return [Diagnostic("IRC407", exc.message, path=exc.path, hint=exc.hint or None)]
    return []


def _explained(source: Source, diag: Diagnostic) -> Diagnostic:
    """A diagnostic with what a variant did to cause it, where it did something."""
    return replaced_list(source, deleted_block(source, diag))


def _in_file_order(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Sorted as a reader meets them: by file (the spec's own first, then the bases it
    extends, in the order met), line and column; Pydantic reports fields in model order."""
    files: dict[str, int] = {}
    for d in diagnostics:
        if d.span is not None:
            files.setdefault(d.span.file, len(files))

    def key(d: Diagnostic) -> tuple:
        span = d.span
        return (0, 0, 0) if span is None else (files[span.file] + 1, span.line, span.column)

    return sorted(diagnostics, key=key)


def _inherited(source: Source, diag: Diagnostic) -> Diagnostic:
    """Say through which `extends` chain a base file's value reached this spec."""
    if diag.span is None or diag.span.file not in source.chain[1:]:
        return diag
    chain = " -> ".join(source.chain[: source.chain.index(diag.span.file) + 1])
    return diag.with_note(
        Note(f"the value is set in a base spec, reached through extends: {chain}")
    )


def annotation_anchors(source: Source | None) -> dict[str, Span]:
    """For each shipped spec of the `extends` chain, the `extends:` value of the
    nearest file before it that is the user's own: where a GitHub annotation of a
    problem in the shipped spec can go (GitHub attaches none to `irc:irv2`)."""
    anchors: dict[str, Span] = {}
    if source is None:
        return anchors
    nearest = None
    for name in source.chain:
        if is_shipped(name):
            if nearest is not None:
                anchors[name] = nearest
        else:
            nearest = source.extends_spans.get(name)
    return anchors


def _texts(diagnostics: list[Diagnostic]) -> dict[str, list[str]]:
    """Source lines of the files diagnostics name, read again for their excerpts."""
    lines: dict[str, list[str]] = {}
    for diag in diagnostics:
        name = diag.span.file if diag.span else None
        if not name or name in lines:
            continue
        path = Path(name)
        if path.is_file() and path.stat().st_size <= MAX_BYTES:
            lines[name] = split_lines(path.read_text(encoding="utf-8", errors="replace"))
    return lines


def _set_lines(sets: Sequence[str]) -> dict[str, list[str]]:
    return {f"--set[{i}]": [argument] for i, argument in enumerate(sets, 1)}


INPUT_LABEL = "--input"


def _channels(data: Any) -> Any:
    """The input's channel count as the spec gives it (3 where it gives none that fits)."""
    shape = data.get("input") if isinstance(data, dict) else None
    if isinstance(shape, list) and len(shape) == 3 and type(shape[2]) is int:
        return shape[2]
    return 3


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
    errors = exc.errors(include_url=False)
    # A value of the wrong op kind (`project: act linear`) is one error, not
    # also the conv fields it lacks.
    wrong_kind = [tuple(e["loc"][:-1]) for e in errors if _is_wrong_kind(e)]
    out: list[Diagnostic] = []
    for err in errors:
        kind, loc, ctx = err["type"], tuple(err["loc"]), err.get("ctx") or {}
        if any(loc[: len(p)] == p for p in wrong_kind) and not _is_wrong_kind(err):
            continue
        if kind == "irc_analysis":
            out.extend(ctx["diagnostics"])
            continue
        msg = err["msg"]
        where = _describe(loc)
        if kind == "extra_forbidden":
            out.append(_unknown_key(loc))
        elif kind in _PLAIN:
            out.append(_plain(err, loc, ctx))
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
            # ctx's message, not msg: Pydantic fills every {key} of the context into msg,
            # into the user's text too (`conv 8 3x3 {hint}` read as the hint)
            out.append(Diagnostic(code, ctx["message"], span, ctx.get("hint"), path=loc))
        elif kind == "irc_identifier":
            out.append(Diagnostic("IRC206", msg, path=loc))
        elif kind in _NUMBER_ERRORS or kind in ("irc_range", "finite_number"):
            out.append(Diagnostic("IRC207", f"{_field(loc)}: {msg[0].lower()}{msg[1:]}", path=loc))
        else:
            out.append(Diagnostic("IRC202", f"{where}: {msg}" if where else msg, path=loc))
    if any(d.code == "IRC201" and len(d.path) == 1 and _meant_extends(d.path[0]) for d in out):
        # a misspelt `extends`: the keys it would have brought are not missing
        out = [d for d in out if not (d.code == "IRC203" and d.path == ())]
    return out


def _meant_extends(key: object) -> bool:
    """Whether an unknown top-level key is a misspelt `extends` (the key _unknown_key's
    hint suggests for it)."""
    allowed = [name for name in schema.Spec.model_fields if name != "kind"] + ["extends"]
    return closest(str(key), allowed) == "extends"


def _is_wrong_kind(err: Mapping[str, Any]) -> bool:
    return err["type"] == "literal_error" and err["loc"][-1] == "kind"


_TYPES = {
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_PLAIN = {*_TYPES, "literal_error", "too_long", "too_short"}
_SIZES = {"kernel", "pool", "strides"}
_PROJECTION = "a residual's projection is a conv; `conv in 1x1 linear` gives it as many filters as the residual's input"


def _plain(err: Mapping[str, Any], loc: tuple, ctx: dict) -> Diagnostic:
    """Pydantic's own errors (types, choices, lengths) in irc's words."""
    kind, value, name = err["type"], err.get("input"), _field(loc)
    hint = None
    if kind == "literal_error" and loc[-1] == "kind":
        name = _field(loc[:-1])
        message = f"{name}: expected a {ctx['expected'].strip(chr(39))} op, got `{value}`"
        hint = _PROJECTION if name == "project" else None
    elif kind == "literal_error":
        message = f"{name}: {_describe_value(value)} is not one of {ctx['expected']}"
        choices = [c.strip("' ") for c in ctx["expected"].replace(" or ", ",").split(",")]
        hint = did_you_mean(str(value), choices)
    elif kind in ("too_long", "too_short"):
        bound = ctx.get("max_length") if kind == "too_long" else ctx.get("min_length")
        actual = ctx.get("actual_length")
        what = "at most" if kind == "too_long" else "at least"
        message = f"{name}: expected {what} {bound} item(s), got {actual}"
        if name in _SIZES:
            message = f"{name}: expected a size (height, width), got {actual} numbers"
            hint = f"write `{name}: 3x3`, `{name}: 3` or `{name}: [1, 7]`"
        elif name == "input":
            message = f"input: expected [height, width, channels], got {actual} number(s)"
    else:
        message = f"{name}: expected {_TYPES[kind]}, got {_describe_value(value)}"
    return Diagnostic("IRC202", message, hint=hint, path=loc)


def _describe_value(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return repr(value)


def _field(loc: tuple) -> str:
    """The field a location names: `strides` for ('...', 'strides', 0)."""
    return next((str(p) for p in reversed(loc) if isinstance(p, str) and p != "[key]"), "value")


def _describe(loc: tuple) -> str:
    """A Pydantic location as a dotted path, without the union tags after list items."""
    kept = [
        p for i, p in enumerate(loc) if not (p in _UNION_TAGS and i and isinstance(loc[i - 1], int))
    ]
    return ".".join(map(str, kept))


_UNION_TAGS = {*ops.KINDS, "use", "aux", "concat", "residual", "gate"}


def _unknown_key(loc: tuple) -> Diagnostic:
    """IRC201 with the keys of the very part the key is in, and where else the key belongs."""
    key = str(loc[-1])
    model = _model_at(loc[:-1])
    if model is None:
        hint = did_you_mean(key, _KNOWN_KEYS)
        hint = hint or "remove it; `irc docs spec-language` describes the keys each part takes"
        return Diagnostic("IRC201", f"unknown key {key!r}", hint=hint, path=loc)
    allowed = [name for name in model.model_fields if name != "kind"]
    if model is schema.Spec:
        allowed.append("extends")  # read by the loader before validation
    takes = f"{_part(loc[:-1])} takes: {', '.join(allowed) or 'no keys'}"
    home = _HOMES.get(key)
    hint = (
        did_you_mean(key, allowed)
        or (home and f"{key!r} is a key of `{home}`; {takes}")
        or f"remove it; `irc docs spec-language` describes the keys each part takes ({takes})"
    )
    return Diagnostic("IRC201", f"unknown key {key!r}", hint=hint, path=loc)


def _part(loc: tuple) -> str:
    """How a hint names the part at loc: `a bn op`, `builder`, `the spec`."""
    if len(loc) >= 2 and isinstance(loc[-2], int) and loc[-1] in _UNION_TAGS:
        return f"a {loc[-1]} op" if loc[-1] in ops.KINDS else f"`{loc[-1]}`"
    return f"`{_describe(loc)}`" if loc else "the spec"


def _options(annotation: Any, tag: str | None = None) -> list[tuple[Any, str | None]]:
    """The types an annotation allows (Annotated and unions unwrapped), each with its tag."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *meta = get_args(annotation)
        tag = next((m.tag for m in meta if isinstance(m, Tag)), tag)
        return _options(base, tag)
    if origin in (Union, types.UnionType):
        return [o for arg in get_args(annotation) for o in _options(arg, tag)]
    return [(annotation, tag)]


def _step(annotation: Any, segment: str | int) -> Any:
    """The annotation one location segment further down, or None."""
    options = _options(annotation)
    for option, tag in options:  # a union's tag (`bn` in network.0.bn) comes first
        if tag == segment:
            return option
    for option, _ in options:
        if isinstance(option, type) and issubclass(option, BaseModel):
            if segment in option.model_fields:
                return option.model_fields[segment].annotation
        elif get_origin(option) is list and isinstance(segment, int):
            return get_args(option)[0]
        elif get_origin(option) is dict and isinstance(segment, str):
            return get_args(option)[1]
    return None


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The schema model of the mapping at a Pydantic location."""
    annotation: Any = schema.Spec
    for segment in loc:
        annotation = _step(annotation, segment)
        if annotation is None:
            return None
    models = [
        o for o, _ in _options(annotation) if isinstance(o, type) and issubclass(o, BaseModel)
    ]
    return models[0] if len(models) == 1 else None


def _homes(model: type[BaseModel], prefix: str = "") -> dict[str, str]:
    """Each key of the parts reached through plain keys (defaults.bn), by its dotted path."""
    found: dict[str, str] = {}
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        inner = [o for o, _ in _options(info.annotation) if isinstance(o, type)]
        for option in inner:
            if issubclass(option, BaseModel) and option is not model:
                for key, where in _homes(option, path).items():
                    found.setdefault(key, where)
        if prefix:
            found.setdefault(name, prefix)
    return found


_HOMES = _homes(schema.Spec)


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
            _, _, spans = ops.parse(value)
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
    candidates = [(*best, name)] if wrapper is None else [(*best, name), (*best, wrapper, name)]
    for candidate in candidates:
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
