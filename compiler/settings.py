"""The settings a network is built with (input, width, depth, scale), and a
title that states them, so that an inherited title never goes stale.

A title may name the settings with placeholders: `{input}` (`149x149`),
`{width}`, `{depth}`, `{scale}`. A setting the title does not name, whose
value was set after the title was written (by a file that extends the one
holding the title, a scale preset, or `--set`), is appended in parentheses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from .schema import Spec
from .source import Source

PLACEHOLDERS = ("input", "width", "depth", "scale")
# What a spec may leave out because its name says it: the title is the name, the
# builder a function named after the spec (docs/spec-language.md, "Top level").
FROM_NAME = ("title", "builder")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def _number(value: float) -> str:
    return f"{value:g}"


def in_force(spec: Spec) -> str:
    """`input 299x299x3, width 1, depth 1` (and `, scale small` under a preset)."""
    shape = "x".join(map(str, spec.input))
    text = f"input {shape}, width {_number(spec.width)}, depth {_number(spec.depth)}"
    return text + (f", scale {spec.scale}" if spec.scale else "")


def _values(data: dict) -> dict[str, str] | None:
    """Each setting as a title prints it, read from the loaded data (None if ill-typed:
    validation then reports it, and the title is left alone)."""
    shape, width, depth = data.get("input"), data.get("width", 1), data.get("depth", 1)
    scale = data.get("scale") or ""
    numbers = [width, depth] + (shape if isinstance(shape, list) else [None])
    if not all(
        isinstance(n, (int, float)) and not isinstance(n, bool) and -1e9 < n < 1e9 for n in numbers
    ):
        return None  # also nan and the 5000-digit integers the fuzzer writes
    if not isinstance(shape, list) or len(shape) < 2 or not isinstance(scale, str):
        return None
    return {
        "input": "x".join(map(str, shape[:2])),
        "width": _number(width),
        "depth": _number(depth),
        "scale": scale,
    }


def _set_after_title(source: Source, setting: str) -> bool:
    """Whether the setting's value came from a layer applied after the title's."""
    span = source.spans.get((setting,))
    if span is None:
        return False  # the default: every title is written knowing it
    title = source.spans.get(("title",))
    scale = source.data.get("scale") if isinstance(source.data, dict) else None
    if scale is not None and span == source.spans.get(("scales", scale, setting)):
        return True  # a preset: the title cannot know which one is chosen
    if title is None:
        return span.file not in source.chain  # set on the command line, after the files
    return _applied(span.file, source.chain) > _applied(title.file, source.chain)


def _applied(label: str, chain: Sequence[str]) -> float:
    """When a layer is applied: the files from the base up (`chain` is this file first),
    then `--scale`, the `--set` arguments in their order, then `--input`."""
    if label in chain:
        return len(chain) - 1 - chain.index(label)
    if label.startswith("--set["):
        return len(chain) + 1 + int(label[len("--set[") : -1])
    return len(chain) if label == "--scale" else math.inf  # --input: last


def fill_title(source: Source) -> None:
    """Put the title in force into the loaded data, before validation: placeholders
    filled, settings changed after the title was written appended."""
    data = source.data
    if not isinstance(data, dict) or not isinstance(data.get("title"), str):
        return
    found = _values(data)
    if found is None:
        return
    written = data["title"]
    text = _PLACEHOLDER.sub(lambda m: found[m.group(1)], written)
    named = set(_PLACEHOLDER.findall(written))
    extra = [
        f"{name} {found[name]}"
        for name in ("scale", "input", "width", "depth")
        if name not in named and found[name] and _set_after_title(source, name)
    ]
    data["title"] = f"{text} ({', '.join(extra)})" if extra else text


def fill_from_name(source: Source) -> None:
    """Put the title and builder name a spec left out into the loaded data, before
    validation, at the position of its `name`, so an error in either points there."""
    data = source.data
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return
    name, filled = data["name"], []
    if "title" not in data:
        data["title"] = name
        filled.append(("title",))
    if "builder" not in data:
        data["builder"] = {"name": name}
        filled += [("builder",), ("builder", "name")]
    elif isinstance(data["builder"], dict) and "name" not in data["builder"]:
        data["builder"] = {"name": name, **data["builder"]}
        filled.append(("builder", "name"))
    where = source.spans.get(("name",))
    if where is not None:
        for path in filled:
            source.spans.setdefault(path, where)
