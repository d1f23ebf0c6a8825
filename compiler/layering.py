"""Variants: `extends:` chains and `--set` overrides, with where each value came from.

Merge rules (docs/spec-language.md, "Variants"):

- mappings merge key by key, recursively;
- lists and scalars replace what the base had, whole;
- a value of `$delete` removes the key from the result.

Every value keeps the position of the file (or `--set` argument) that set it,
and each overridden path remembers what it replaced, so `irc explain` can show
the whole story and an error in a base file points into the base.
"""

from __future__ import annotations

import copy
import difflib
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from irc_cnn.compiler import compact
from irc_cnn.compiler.diagnostics import Diagnostic, DiagnosticError, Note, Span
from irc_cnn.compiler.source import Path_, Source, load, read_source

DELETE = "$delete"
MAX_CHAIN = 16

# The specs that ship with irc: `extends: irc:irv2` names specs/irv2.yaml.
# specs/ installs as irc_cnn.specs beside irc_cnn.compiler (pyproject's
# package-dir), and in the repository it is this package's sibling folder too,
# so one path serves an editable install and a wheel alike.
SHIPPED_PREFIX = "irc:"
SHIPPED = Path(__file__).resolve().parent.parent / "specs"


def shipped_names() -> list[str]:
    """Every shipped spec's name: its path under specs/ without `.yaml` (`variants/irv2_small`)."""
    return sorted(
        p.relative_to(SHIPPED).with_suffix("").as_posix() for p in SHIPPED.rglob("*.yaml")
    )


def shipped_display(path: Path) -> str | None:
    """`irc:NAME` for a file inside the shipped specs, else None."""
    try:
        name = path.resolve().relative_to(SHIPPED).with_suffix("").as_posix()
    except ValueError:
        return None
    return SHIPPED_PREFIX + name


def _subtree(table: dict, prefix: Path_) -> dict:
    n = len(prefix)
    return {p: v for p, v in table.items() if p[:n] == prefix}


def _drop(table: dict, prefix: Path_) -> None:
    for stale in _subtree(table, prefix):
        del table[stale]


def _value_at(data: Any, path: Path_) -> Any:
    for segment in path:
        data = data[segment]
    return data


class _Merger:
    """Overlays one layer (a file or a --set value) onto the merged result so far.

    The layer's position tables are keyed by full paths of the result.
    """

    def __init__(self, result: Source, layer: Source):
        self.result, self.layer = result, layer
        self.replaced: list[Path_] = []

    def merge(self, base: Any, value: Any, path: Path_) -> Any:
        if isinstance(base, dict) and isinstance(value, dict):
            out = dict(base)
            for key, item in value.items():
                child = (*path, key)
                if item == DELETE:
                    if key in out:
                        self._replace(child, out.pop(key))
                elif key in out:
                    out[key] = self.merge(out[key], item, child)
                else:
                    out[key] = item
                    self._replace(child, None)
            return out
        self._replace(path, base)
        return value

    def _replace(self, path: Path_, old: Any) -> None:
        """The layer's value at `path` (if any) replaces the result's, positions included."""
        r = self.result
        if path in r.spans:
            r.overrides.setdefault(path, []).append((r.spans[path], copy.deepcopy(old)))
        key_span = r.key_spans.get(path)
        for table, source in (
            (r.spans, self.layer.spans),
            (r.key_spans, self.layer.key_spans),
            (r.text_offsets, self.layer.text_offsets),
        ):
            _drop(table, path)
            table.update(_subtree(source, path))
        if key_span is not None and path not in r.key_spans and path in r.spans:
            r.key_spans[path] = key_span
        self.replaced.append(path)


def overlay(result: Source, layer: Source, path: Path_ = ()) -> None:
    """Merge the layer's value (keyed at `path` of the result) into `result`, in place."""
    merger = _Merger(result, layer)
    value = layer.data
    if not path:
        result.data = merger.merge(result.data, value, ())
    else:
        parent = _value_at(result.data, path[:-1])
        key = path[-1]
        old = parent[key] if isinstance(parent, list) or key in parent else None
        parent[key] = merger.merge(old, value, path)
    result.texts.update(layer.texts)
    result.paths.update(layer.paths)
    kept = [d for d in result.deviations if not any(d.path[: len(p)] == p for p in merger.replaced)]
    result.deviations = kept + layer.deviations


# -- extends ------------------------------------------------------------------


def load_layered(path: Path, display: str, paper: bool = False, _chain: tuple = ()) -> Source:
    """Load a spec and everything it extends, base first, this file last."""
    resolved = path.resolve()
    if len(_chain) >= MAX_CHAIN:
        raise DiagnosticError(
            [
                Diagnostic(
                    "IRC109", f"extends chain longer than {MAX_CHAIN} files", Span(display, 1, 1)
                )
            ]
        )
    source = load(read_source(path, display), display, paper=paper)
    source.paths[display] = resolved
    if not isinstance(source.data, dict) or "extends" not in source.data:
        return source
    target = source.data["extends"]
    where = source.spans[("extends",)]
    if not isinstance(target, str):
        raise DiagnosticError(
            [Diagnostic("IRC202", "extends: expected a path to a spec file", where)]
        )
    if target.startswith(SHIPPED_PREFIX):
        base_path, base_display = _shipped(target, where)
    else:
        base_path = path.parent / target
        base_display = Path(os.path.normpath(Path(display).parent / target)).as_posix()
        if display.startswith(SHIPPED_PREFIX):  # a shipped spec's own base is shipped too
            base_display = shipped_display(base_path) or base_display
    if not base_path.is_file():
        raise DiagnosticError(
            [
                Diagnostic(
                    "IRC110",
                    f"base spec {target!r} not found (looked for {base_display})",
                    where,
                    hint="extends takes a path relative to this file, or irc:NAME for a shipped spec",
                )
            ]
        )
    chain = (*_chain, (resolved, display))
    if base_path.resolve() in [p for p, _ in chain]:
        names = " -> ".join([name for _, name in chain] + [base_display])
        raise DiagnosticError(
            [
                Diagnostic(
                    "IRC109",
                    f"extends cycle: {names}",
                    where,
                    hint="a spec cannot extend itself, directly or through its bases",
                )
            ]
        )
    try:
        base = load_layered(base_path, base_display, paper, chain)
    except DiagnosticError as exc:
        raise DiagnosticError([_through(d, display) for d in exc.diagnostics]) from None
    del source.data["extends"]
    for table in (source.spans, source.key_spans, source.text_offsets):
        _drop(table, ("extends",))
    base.chain = (display, *base.chain)
    overlay(base, source)
    base.file, base.text = display, source.text
    return base


def _shipped(target: str, where: Span) -> tuple[Path, str]:
    """The file behind `irc:NAME`; an unknown name is IRC110 with the closest names."""
    name = target[len(SHIPPED_PREFIX) :]
    names = shipped_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        suggestion = (
            f"did you mean {', '.join(SHIPPED_PREFIX + c for c in close)}? " if close else ""
        )
        raise DiagnosticError(
            [
                Diagnostic(
                    "IRC110",
                    f"no shipped spec named {target!r}",
                    where,
                    hint=f"{suggestion}`irc specs` lists the shipped specs",
                )
            ]
        )
    return SHIPPED / f"{name}.yaml", SHIPPED_PREFIX + name


def _through(diag: Diagnostic, child: str) -> Diagnostic:
    return diag.with_note(Note(f"reached through `extends` from {child}"))


# -- --set ----------------------------------------------------------------------


class SetError(Exception):
    """A --set argument that cannot be applied; carries its diagnostic."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def apply_set(source: Source, argument: str, index: int) -> None:
    """Apply one `--set PATH=VALUE` (VALUE is YAML) to a loaded spec, in place."""
    label = f"--set[{index}]"
    text = argument
    if "=" not in argument:
        raise SetError(
            Diagnostic(
                "IRC111",
                f"--set needs PATH=VALUE, got {argument!r}",
                Span(label, 1, 1),
                hint="for example --set network.resnet_b.repeat=5",
            )
        )
    dotted, value_text = argument.split("=", 1)
    offset = len(dotted) + 1
    try:
        layer = load(value_text.encode("utf-8"), label)
    except DiagnosticError as exc:
        raise SetError(_shift(exc.diagnostics[0], offset, text)) from None
    segments = address(source, dotted, label)
    # The value's positions, keyed at the path it lands on, in the argument's columns.
    shifted = Source(label, text, layer.data, texts={label: text})
    for table, target in ((layer.spans, shifted.spans), (layer.key_spans, shifted.key_spans)):
        for p, span in table.items():
            end = (span.end_column or span.column) + offset
            target[(*segments, *p)] = Span(label, 1, span.column + offset, 1, end)
    for p, off in layer.text_offsets.items():
        shifted.text_offsets[(*segments, *p)] = off
    shifted.deviations = [replace(d, path=(*segments, *d.path)) for d in layer.deviations]
    overlay(source, shifted, segments)


def _shift(diag: Diagnostic, offset: int, text: str) -> Diagnostic:
    span = diag.span
    if span is not None:
        span = Span(span.file, 1, span.column + offset)
    return diag.with_span(span)


def address(source: Source, dotted: str, label: str | None = None) -> Path_:
    """Turn `network.resnet_b.repeat` into a data path, naming list items by block.

    A list item can be named by its index or, in `network`/`head`/a `seq`, by
    the block or op it uses; a compact use (`resnet_b x20`) is rewritten to its
    mapping form (`{resnet_b: {repeat: 20}}`) so that a field inside it can be set.
    """
    data = source.data
    path: list[str | int] = []
    for segment in dotted.split("."):
        if isinstance(data, list):
            index = _find_item(data, segment)
            if index is None:
                names = ", ".join(filter(None, (_item_name(i) for i in data)))
                raise SetError(
                    Diagnostic(
                        "IRC111",
                        f"no item {segment!r} in {'.'.join(map(str, path)) or 'the spec'}",
                        Span(label or source.file, 1, 1),
                        hint=f"items here: {names}" if names else "use an index",
                    )
                )
            path.append(index)
            item = data[index]
            if isinstance(item, str) and not segment.isdigit():
                item = _expand_use(item)
                data[index] = item
            data = item
            if isinstance(item, dict) and len(item) == 1 and not segment.isdigit():
                (name,) = item
                path.append(name)
                if item[name] is None:
                    item[name] = {}
                data = item[name]
        elif isinstance(data, dict) or data is None:
            path.append(segment)
            data = data.get(segment) if isinstance(data, dict) else None
        else:
            raise SetError(
                Diagnostic(
                    "IRC111",
                    f"{'.'.join(map(str, path))} is a value, not a mapping or list; cannot go into {segment!r}",
                    Span(label or source.file, 1, 1),
                )
            )
    return tuple(path)


def _item_name(item: Any) -> str | None:
    if isinstance(item, str):
        tokens = compact.tokenize(item)
        return tokens[0].text if tokens else None
    if isinstance(item, dict) and len(item) == 1:
        return next(iter(item))
    return None


def _find_item(items: list, segment: str) -> int | None:
    if segment.isdigit():
        return int(segment) if int(segment) < len(items) else None
    matches = [i for i, item in enumerate(items) if _item_name(item) == segment]
    return matches[0] if matches else None


def _expand_use(text: str) -> Any:
    """`resnet_b x20` as `{resnet_b: {repeat: 20}}`; other ops stay as they are."""
    try:
        kind, fields, _ = compact.parse(text)
    except compact.CompactError:
        return text
    if kind != "use":
        return text
    return {fields["block"]: {"repeat": fields["repeat"]} if "repeat" in fields else {}}


# -- explain ---------------------------------------------------------------------


def explain(source: Source, dotted: str) -> dict[str, Any]:
    """The value at a dotted path, where it was set, and what it overrode, oldest first."""
    path = address(source, dotted)
    best, span = source.locate(path)
    try:
        value = _value_at(source.data, path)
    except (KeyError, IndexError, TypeError):
        raise SetError(
            Diagnostic(
                "IRC111", f"{dotted}: no such value in {source.file}", Span(source.file, 1, 1)
            )
        ) from None
    history = []
    for n in range(len(best) + 1):
        for old_span, old in source.overrides.get(best[:n], []):
            history.append({"path": ".".join(map(str, best[:n])), "span": old_span, "value": old})
    deviation = next((d for d in source.deviations if d.path == best), None)
    return {"path": path, "value": value, "span": span, "history": history, "deviation": deviation}
