"""`irc explain`: a value of a spec, where each part of it was set, and what it overrode.

A value no file sets is the spec language's default, and is shown as one. A
mapping or list is listed leaf by leaf, each with its own file, line and
column, so a variant's override inside an inherited block is not hidden
behind the block's own position.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from .diagnostics import Span, did_you_mean
from .layering import SetError, explain
from .source import Source

_MISSING = object()


class NoValue(LookupError):
    """The path leads to no value: none is set and the spec language has no default there."""


def flow(value: Any) -> str:
    """A value in one line of YAML (flow style), as a spec would write it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float) or value is None:
        return "null" if value is None else str(value)
    if isinstance(value, dict) and len(value) == 1 and not _nested(value):
        ((key, inner),) = value.items()  # one block use, `aux: aux_head`, as a spec writes it
        return f"{key}: {flow(inner)}"
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1 << 30)
    return text.strip()


def _at(span: Span | None) -> str:
    return f"{span.file}:{span.line}:{span.column}" if span else "?"


def lines(source: Source, spec: BaseModel | None, dotted: str) -> list[str]:
    """What `irc explain` prints. Raises NoValue for a path that leads nowhere (also
    for an unknown list item, whose message says which items there are)."""
    try:
        found = explain(source, dotted)
    except SetError as exc:
        default = _default(spec, dotted.split("."))
        if default is not _MISSING:
            return [f"{dotted} = {flow(default)} (default: no file sets it)"]
        if exc.diagnostic.code == "IRC112":  # an unknown list item: the message names it
            hint = f"; {exc.diagnostic.hint}" if exc.diagnostic.hint else ""
            raise NoValue(f"{exc.diagnostic.message}{hint}") from None
        fields = [*(spec.model_fields if spec else ()), *source.data]
        close = did_you_mean(dotted.split(".")[0], fields)
        raise NoValue(
            f"no value at {dotted} in {source.file}: no file sets it, and the spec language "
            f"has no default there{'; ' + close if close else ''}"
        ) from None
    name = ".".join(map(str, found["path"]))
    value = found["value"]
    if _nested(value):
        out = [f"{name}: set at {_at(found['span'])}; each value where it was set:"]
        for tail, leaf in _leaves(value):
            span = source.spans.get((*found["path"], *tail))
            out.append(f"  {'.'.join(map(str, tail))} = {flow(leaf)}  ({_at(span)})")
    else:
        out = [f"{name} = {flow(value)}", f"  set at {_at(found['span'])}"]
    for old in reversed(found["history"]):
        out.append(f"  overrides {_at(old['span'])}: {old['path']} = {flow(old['value'])}")
    for old_path, entries in sorted(source.overrides.items(), key=lambda e: str(e[0])):
        if len(old_path) > len(found["path"]) and old_path[: len(found["path"])] == found["path"]:
            for span, old in reversed(entries):
                path = ".".join(map(str, old_path))
                out.append(f"  overrides {_at(span)}: {path} = {flow(old)}")
    dev = found["deviation"]
    if dev is not None:
        if dev.has_paper:  # absent: the paper has no such value
            out.append(f"  paper: {'(absent)' if dev.paper is None else flow(dev.paper)}")
        if dev.has_seed:
            out.append(f"  seed: {'(absent)' if dev.seed is None else flow(dev.seed)}")
        out.append(f"  why: {dev.why}")
    return out


def _nested(value: Any) -> bool:
    """Whether a value is listed leaf by leaf: a non-empty mapping, or a list that holds
    collections (a list of scalars, such as the input shape, reads best in one line)."""
    if isinstance(value, dict):
        return len(value) > 1 or any(isinstance(v, dict | list) for v in value.values())
    return isinstance(value, list) and any(isinstance(v, dict | list) for v in value)


def _leaves(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every scalar (or empty collection) inside a value, with its path below it."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, inner in items:
        if isinstance(inner, dict | list) and inner:
            yield from _leaves(inner, (*path, key))
        else:
            yield (*path, key), inner


def _default(spec: BaseModel | None, segments: list[str]) -> Any:
    """The validated spec's value at a path no file sets: a field's default (`width`,
    `defaults.bn.epsilon`); _MISSING where the path names no field."""
    node: Any = spec
    for segment in segments:
        if isinstance(node, BaseModel):
            fields = {f.alias or name: name for name, f in type(node).model_fields.items()}
            if segment not in fields:
                return _MISSING
            node = getattr(node, fields[segment])
        elif isinstance(node, dict) and segment in node:
            node = node[segment]
        else:
            return _MISSING
    return _MISSING if node is spec else to_jsonable_python(node, by_alias=True, exclude_none=True)
