"""Variants: `extends:` chains and `--set` overrides, with where each value came from.

Merge rules (docs/spec-language.md, "Variants"):

- mappings merge key by key, recursively; a dotted key `a.b: v` is `a: {b: v}`;
- lists and scalars replace what the base had, whole;
- a value of `$delete` removes the key from the result;
- a mapping where the base has a list edits the list: items named by index
  or by what they use are deleted, replaced by a node, changed field by
  field (`NAME.FIELD: v`, or `NAME: {FIELD: v}` where no key is a node's),
  or get new items inserted before or after them.

Every value keeps the position of the file (or `--set` argument) that set it,
and each overridden path remembers what it replaced, so `irc explain` can show
the whole story and an error in a base file points into the base.
"""

from __future__ import annotations

import copy
import os
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from . import compact, ops
from .diagnostics import Diagnostic, DiagnosticError, Note, Span, did_you_mean
from .shipped import SHIPPED_PREFIX, UnknownShippedSpec, shipped_display, shipped_file
from .source import Path_, Source, load, read_source

DELETE = "$delete"
BEFORE, AFTER = "$before", "$after"
MAX_CHAIN = 16
# A mapping where the base has a list edits the list item by item, except in
# these lists, whose mapping form is a value of its own (`params: {scale: 0.2}`).
WHOLE_LISTS = ("params",)


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


def _rekey(path: Path_, old: Path_, new: Path_) -> Path_:
    """`path` with its prefix `old` replaced by `new` (unchanged if it lies elsewhere)."""
    return (*new, *path[len(old) :]) if path[: len(old)] == old else path


class _NoItem(Exception):
    """A list item named by a path that the list does not hold (or holds twice)."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.message, self.hint = message, hint


class _Merger:
    """Overlays one layer (a file or a --set value) onto the merged result so far.

    The layer's position tables are keyed by its own paths; a dotted key or a
    list item named by what it uses is re-keyed to the result's path (`_take`)
    as it is merged, and when an edit inserts or removes a list item, every
    table (positions, overrides, deviations) follows the items that move.
    `lenient` (checking against the paper) lets a deletion find nothing: the
    paper may not have the item at all.
    """

    def __init__(self, result: Source, layer: Source, lenient: bool = False):
        self.result, self.layer, self.lenient = result, layer, lenient

    def merge(self, base: Any, value: Any, path: Path_) -> Any:
        if isinstance(base, list) and isinstance(value, dict) and path[-1:] != WHOLE_LISTS:
            return self.edit(base, value, path)
        if isinstance(base, dict) and isinstance(value, dict):
            out = dict(base)
            for key, item in value.items():
                head, dot, rest = key.partition(".")
                if dot:  # `a.b: v` is short for `a: {b: v}`
                    inner = out.get(head)
                    if inner is not None and not isinstance(inner, (dict, list)):
                        self.fail(
                            f"{self.dotted((*path, head))} is a value, not a mapping or list; "
                            f"cannot go into {rest.split('.')[0]!r}",
                            (*path, key),
                            "set it whole",
                        )
                    self._take((*path, key), (*path, head, rest))
                    out[head] = self.merge(
                        {} if inner is None else inner, {rest: item}, (*path, head)
                    )
                    span = self.layer.spans.get((*path, head, rest))
                    if inner is None and span is not None:  # a mapping the base lacked
                        self.result.spans.setdefault((*path, head), span)
                    continue
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

    def edit(self, items: list, edits: dict, path: Path_) -> list:
        """Apply `{NAME: VALUE, NAME.FIELD: VALUE, $before NAME: [...], $after NAME: [...]}`
        to a list, in the order written (docs/spec-language.md, "Editing lists")."""
        out = list(items)
        for key, value in edits.items():
            where = (*path, key)
            word, _, name = key.partition(" ")
            if word in (BEFORE, AFTER) and name.strip():
                at = self.find(out, name.strip(), path, where) + (word == AFTER)
                new = value if isinstance(value, list) else [value]
                self._shift(path, at, len(new))
                for k in range(len(new)):
                    self._take((*where, k) if isinstance(value, list) else where, (*path, at + k))
                    self._replace((*path, at + k), None)
                out[at:at] = new
                continue
            head, _, rest = key.partition(".")
            if value == DELETE and not rest and self.lenient and _missing(out, head):
                continue
            i = self.find(out, head, path, where)
            if rest:
                out[i] = self._set_field(out[i], head, rest, value, (*path, i), where)
            elif isinstance(value, dict) and self._fields(value):  # `NAME.FIELD: v`, written nested
                for name, inner in value.items():
                    dotted = (*path, f"{key}.{name}")
                    self._take((*where, name), dotted)
                    out[i] = self._set_field(out[i], head, name, inner, (*path, i), dotted)
            elif value == DELETE:
                del out[i]
                for table in self._tables(result_only=True):
                    _drop(table, (*path, i))
                self.result.deviations = [
                    d for d in self.result.deviations if d.path[: len(path) + 1] != (*path, i)
                ]
                self._shift(path, i + 1, -1)
            else:  # the item replaced whole
                self._take(where, (*path, i))
                self._replace((*path, i), out[i])
                out[i] = value
        return out

    def _set_field(
        self, item: Any, head: str, rest: str, value: Any, path: Path_, where: Path_
    ) -> Any:
        """The list item at `path` with `rest` (a dotted field) set to `value`: into a
        block use's or an op's mapping, through its one key."""
        item = _expand_use(item)
        if not isinstance(item, dict):
            self.fail(
                f"{self.dotted((*path[:-1], head))} is a one-line op; its fields cannot be set one by one",
                where,
                f"replace it whole, e.g. `{head}: {item}` with the new values",
            )
        inner: Any = {rest: value}
        target = path
        if len(item) == 1 and next(iter(item)) != rest.split(".")[0]:
            (only,) = item
            inner, target = {only: inner}, (*path, only)
            if item[only] is None:
                item = {only: {}}
        self._take(where, (*target, rest))
        return self.merge(item, inner, path)

    def _fields(self, value: Any) -> bool:
        """Whether an edit's mapping value holds fields of the item it names rather
        than a node of its own: no key is an op kind, a composite (`concat`, ...) or a
        block (docs/spec-language.md, "Editing lists")."""
        if not isinstance(value, dict) or not value:
            return False
        blocks = {
            name
            for data in (self.result.data, self.layer.data)
            if isinstance(data, dict) and isinstance(data.get("blocks"), dict)
            for name in data["blocks"]
        }
        return not any(key in ops.NODE_KINDS or key in blocks for key in value)

    def find(self, items: list, name: str, path: Path_, where: Path_) -> int:
        try:
            return find_item(items, name, self.dotted(path))
        except _NoItem as exc:
            self.fail(exc.message, where, exc.hint)

    def fail(self, message: str, where: Path_, hint: str | None = None) -> NoReturn:
        layer = self.layer
        span = layer.key_spans.get(where) or layer.spans.get(where) or Span(layer.file, 1, 1)
        raise DiagnosticError([Diagnostic("IRC112", message, span, hint=hint)])

    @staticmethod
    def dotted(path: Path_) -> str:
        return ".".join(map(str, path)) or "the spec"

    def _tables(self, result_only: bool = False) -> list[dict]:
        r, layer = self.result, self.layer
        tables = [r.spans, r.key_spans, r.text_offsets, r.overrides]
        return (
            tables if result_only else [*tables, layer.spans, layer.key_spans, layer.text_offsets]
        )

    def _shift(self, path: Path_, start: int, by: int) -> None:
        """Items from index `start` of the list at `path` move by `by` places."""
        n = len(path)

        def moved(p: Path_) -> Path_:
            if len(p) > n and p[:n] == path and isinstance(i := p[n], int) and i >= start:
                return (*path, i + by, *p[n + 1 :])
            return p

        for table in self._tables():
            shifted = {moved(p): v for p, v in table.items()}
            table.clear()
            table.update(shifted)
        for owner in (self.result, self.layer):
            owner.deviations = [replace(d, path=moved(d.path)) for d in owner.deviations]

    def _take(self, old: Path_, new: Path_) -> None:
        """Re-key the layer's positions and deviations under `old` to `new`."""
        layer = self.layer
        for table in (layer.spans, layer.key_spans, layer.text_offsets):
            for p, v in _subtree(table, old).items():
                del table[p]
                table[_rekey(p, old, new)] = v
        layer.deviations = [replace(d, path=_rekey(d.path, old, new)) for d in layer.deviations]

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
        # An annotation no longer holds where its value, or a part of it, is replaced.
        r.deviations = [
            d for d in r.deviations if d.path[: len(path)] != path and path[: len(d.path)] != d.path
        ]


def overlay(result: Source, layer: Source, lenient: bool = False) -> None:
    """Merge the layer's value into `result`, in place."""
    result.data = _Merger(result, layer, lenient).merge(result.data, layer.data, ())
    result.texts.update(layer.texts)
    result.paths.update(layer.paths)
    result.deviations = result.deviations + layer.deviations


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
    # Published weights fit the network they were trained for, not a variant of it.
    if isinstance(base.data, dict) and base.data.pop("weights", None) is not None:
        for table in (base.spans, base.key_spans, base.text_offsets):
            _drop(table, ("weights",))
    base.chain = (display, *base.chain)
    base.extends_spans[display] = where
    overlay(base, source, lenient=paper)
    base.file, base.text = display, source.text
    return base


def _shipped(target: str, where: Span) -> tuple[Path, str]:
    """The file behind `irc:NAME`; an unknown name is IRC110 with the closest names."""
    try:
        return shipped_file(target), target
    except UnknownShippedSpec as exc:
        raise DiagnosticError([Diagnostic("IRC110", str(exc), where, hint=exc.hint)]) from None


def _through(diag: Diagnostic, child: str) -> Diagnostic:
    return diag.with_note(Note(f"reached through `extends` from {child}"))


# -- --set ----------------------------------------------------------------------


class SetError(Exception):
    """A --set argument that cannot be applied; carries its diagnostic."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def apply_set(
    source: Source, argument: str, index: int, paper: bool = False, label: str | None = None
) -> None:
    """Apply one `--set PATH=VALUE` (VALUE is YAML) to a loaded spec, in place.

    `--set a.b.c=V` is the one-key variant `{a.b.c: V}`: the same merge and
    list-edit rules apply (docs/spec-language.md, "Variants"). `label` names
    the argument in diagnostics (default `--set[index]`).
    """
    label = label or f"--set[{index}]"
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
    # The value's positions, keyed under the one key, in the argument's columns.
    shifted = Source(label, text, {dotted: layer.data}, texts={label: text})
    for table, target in ((layer.spans, shifted.spans), (layer.key_spans, shifted.key_spans)):
        for p, span in table.items():
            end = (span.end_column or span.column) + offset
            target[(dotted, *p)] = Span(label, 1, span.column + offset, 1, end)
    # Errors about the key point at its last segment (`nmae` in `builder.nmae=x`).
    last = dotted.rsplit(".", 1)[-1]
    shifted.key_spans[(dotted,)] = Span(label, 1, len(dotted) - len(last) + 1, 1, offset)
    for p, off in layer.text_offsets.items():
        shifted.text_offsets[(dotted, *p)] = off
    shifted.deviations = [replace(d, path=(dotted, *d.path)) for d in layer.deviations]
    try:
        overlay(source, shifted, lenient=paper)
    except DiagnosticError as exc:
        raise SetError(exc.diagnostics[0]) from None


def _shift(diag: Diagnostic, offset: int, text: str) -> Diagnostic:
    span = diag.span
    if span is not None:
        span = Span(span.file, 1, span.column + offset)
    return diag.with_span(span)


def address(source: Source, dotted: str) -> Path_:
    """Turn `network.resnet_b.repeat` into a data path, naming list items by what they use.

    A list item is named by its index, by the block or op it uses, or, where
    several use the same, by its layer-style local name (`conv2`). A segment
    after an item's name goes into the item's one key, and a compact use
    (`resnet_b x20`) is rewritten to its mapping form so a field can be read.
    """
    data = source.data
    path: list[str | int] = []
    segments = dotted.split(".")
    for n, segment in enumerate(segments):
        where = ".".join(map(str, path)) or "the spec"
        if isinstance(data, list):
            try:
                index = find_item(data, segment, where)
            except _NoItem as exc:
                raise SetError(
                    Diagnostic("IRC112", exc.message, Span(source.file, 1, 1), hint=exc.hint)
                ) from None
            path.append(index)
            if n + 1 < len(segments):
                data[index] = _expand_use(data[index])
            data = data[index]
            if (
                n + 1 < len(segments)
                and isinstance(data, dict)
                and len(data) == 1
                and segments[n + 1] not in data
            ):
                (name,) = data
                path.append(name)
                data = data[name]
        elif isinstance(data, dict) or data is None:
            path.append(segment)
            data = data.get(segment) if isinstance(data, dict) else None
        else:
            raise SetError(
                Diagnostic(
                    "IRC111",
                    f"{where} is a value, not a mapping or list; cannot go into {segment!r}",
                    Span(source.file, 1, 1),
                )
            )
    return tuple(path)


def _item_key(item: Any) -> str | None:
    """The word a raw list item is named by, as naming.node_key names a validated node."""
    if isinstance(item, str):
        words = [token.text for token in compact.tokenize(item)]
        return words[1] if words[:1] == ["act"] and len(words) > 1 else (words or [None])[0]
    if isinstance(item, dict) and len(item) == 1:
        ((key, inner),) = item.items()
        if key == "aux" and isinstance(inner, str):
            return inner
        if key == "act" and isinstance(inner, dict) and isinstance(inner.get("activation"), str):
            return inner["activation"]
        return key
    return None


def find_item(items: list, name: str, where: str) -> int:
    """The index of the item `name` names (see `address`); _NoItem if none or several."""
    if name.isascii() and name.isdigit():
        if int(name) < len(items):
            return int(name)
        raise _NoItem(
            f"{where} has {len(items)} item(s); there is no index {name}",
            "items are numbered from 0",
        )
    keys = [_item_key(item) for item in items]
    totals = Counter(keys)
    seen: Counter = Counter()
    names = []
    for key in keys:
        seen[key] += 1
        names.append(key if key is None or totals[key] == 1 else f"{key}{seen[key]}")
    if name in names:
        return names.index(name)
    if totals[name] > 1:
        several = [n for n, key in zip(names, keys) if key == name]
        raise _NoItem(
            f"{name!r} is ambiguous in {where}: {len(several)} items use it",
            f"name one of {', '.join(several)}, or give its index",
        )
    listing = ", ".join(f"{n} ({i})" for i, n in enumerate(names) if n)
    raise _NoItem(
        f"no item {name!r} in {where}",
        did_you_mean(name, [n for n in names if n])
        or (f"items here: {listing}" if listing else "use an index"),
    )


def _missing(items: list, name: str) -> bool:
    try:
        find_item(items, name, "")
    except _NoItem:
        return True
    return False


def _expand_use(text: str) -> Any:
    """`resnet_b x20` as `{resnet_b: {repeat: 20}}`; other items stay as they are."""
    if not isinstance(text, str):
        return text
    try:
        kind, fields, _ = ops.parse(text)
    except compact.CompactError:
        return text
    if kind != "use":
        return text
    return {fields["block"]: {"repeat": fields["repeat"]} if "repeat" in fields else {}}


def deleted_block(source: Source, diag: Diagnostic) -> Diagnostic:
    """An unknown block (IRC401) that a variant or `--set` deleted: say where, and
    that its uses must go too, in place of a "did you mean" for a typo."""
    if diag.code != "IRC401" or not diag.path:
        return diag
    try:
        name = _item_key(_value_at(source.data, diag.path))
    except (KeyError, IndexError, TypeError):
        return diag
    blocks = source.data.get("blocks") if isinstance(source.data, dict) else None
    if name is None or ("blocks", name) not in source.overrides:
        return diag
    if isinstance(blocks, dict) and name in blocks:
        return diag
    fixed = replace(
        diag,
        hint=f"delete or replace its uses too, e.g. `network: {{{name}: $delete}}`",
    )
    return fixed.with_note(
        Note(f"block {name!r} is deleted here", source.spans.get(("blocks", name)))
    )


def replaced_list(source: Source, diag: Diagnostic) -> Diagnostic:
    """A key missing (IRC203) from an item of a list that a variant gave as a list:
    the list replaced the base's whole, so an item meant as an edit of the base's
    (`seq: [residual: {scale: 0.2}]`) lost every field it did not repeat. Say so,
    and how to edit one field instead."""
    if diag.code != "IRC203" or diag.hint is not None or not diag.path:
        return diag
    best, _ = source.locate(diag.path)
    for n in range(len(best) - 1, 0, -1):
        listed, index = best[:n], best[n]
        history = source.overrides.get(listed)
        if not history or not isinstance(index, int) or not isinstance(history[-1][1], list):
            continue
        item = _value_at(source.data, best[: n + 1])
        name = _item_key(item)
        if name is None or _missing(history[-1][1], name):
            return diag
        field, value = "FIELD", "VALUE"
        inner = item.get(name) if isinstance(item, dict) else None
        if isinstance(inner, dict) and inner:
            field, value = next(iter(inner.items()))
            value = value if isinstance(value, (int, float, str)) else "..."
        key = listed[-1]
        fixed = replace(
            diag,
            hint=(
                f"this `{key}:` list replaces the base's whole, so its {name!r} item has only "
                f"the fields written here; to change one field of the base's item write "
                f"`{key}: {{{name}.{field}: {value}}}` (or `{key}: {{{name}: {{{field}: {value}}}}}`)"
            ),
        )
        return fixed.with_note(Note("the base's list, replaced whole", history[-1][0]))
    return diag


# -- scales ----------------------------------------------------------------------

SCALED = ("width", "depth", "input")


def apply_scale(source: Source, name: str | None = None, paper: bool = False) -> None:
    """Apply the scale preset in force to a loaded spec, in place.

    `name` comes from `--scale`: it also renames the spec and its builder
    (`<name>_<scale>`), so each size compiles to its own module. Without it,
    a `scale:` the files set (a variant that `extends`) selects the preset.
    The preset's values override the files'; `--set` comes after.
    """
    data = source.data
    if not isinstance(data, dict):
        return
    label = "--scale"
    if name is not None:
        arg = Span(label, 1, 1, 1, len(name) + 1)
        layer = Source(label, name, {"scale": name}, texts={label: name})
        layer.spans[("scale",)] = arg
        if isinstance(data.get("name"), str):
            layer.data["name"] = f"{data['name']}_{name}"
            layer.spans[("name",)] = arg
        builder = data.get("builder")
        if isinstance(builder, dict) and isinstance(builder.get("name"), str):
            layer.data["builder"] = {"name": f"{builder['name']}_{name}"}
            layer.spans[("builder", "name")] = arg
        _check_scale(source, name, arg)
        overlay(source, layer, lenient=paper)
    chosen = data.get("scale") if name is None else name
    if not isinstance(chosen, str):
        return  # absent, or not a name: the schema says so
    if name is None:
        _check_scale(source, chosen, source.spans.get(("scale",), Span(source.file, 1, 1)))
    preset = source.data["scales"][chosen]
    if not isinstance(preset, dict):
        return  # the schema says what a preset must be
    # A setting the preset leaves out (or null) keeps the spec's value.
    chosen_values = {k: v for k, v in preset.items() if k in SCALED and v is not None}
    layer = Source(source.file, source.text, chosen_values)
    for table, target in ((source.spans, layer.spans), (source.key_spans, layer.key_spans)):
        for setting in layer.data:
            for p, span in _subtree(table, ("scales", chosen, setting)).items():
                target[p[2:]] = span
    overlay(source, layer, lenient=paper)


def _check_scale(source: Source, name: str, where: Span) -> None:
    scales = source.data.get("scales")
    if isinstance(scales, dict) and name in scales:
        return
    if not isinstance(scales, dict) or not scales:
        message, hint = (
            f"scale {name!r}: the spec has no `scales:` table",
            ("add `scales: {NAME: {width: ..., depth: ..., input: [...]}}`"),
        )
    else:
        message = f"unknown scale {name!r}"
        hint = did_you_mean(name, scales) or f"this spec's scales: {', '.join(scales)}"
    diagnostic = Diagnostic("IRC113", message, where, hint=hint)
    if where.file == "--scale":
        raise SetError(diagnostic)
    raise DiagnosticError([diagnostic])


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
