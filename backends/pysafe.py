"""The only ways a spec's text reaches generated Python: as a literal, a name, or a comment.

Every value a template prints passes through one of these filters, so no
spec can inject code: a string becomes a quoted literal, an identifier is
checked to be one, and free text (docs, reasons) is made inert for the
docstring or comment it lands in.
"""

from __future__ import annotations

import keyword
import math
import re
import unicodedata

_SAFE_NAME_PART = re.compile(r"[A-Za-z0-9_]*\Z")


def literal(value: object) -> str:
    """A Python literal for a spec value (numbers, strings, bools, None, tuples)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot emit non-finite number {value!r}")
        return repr(value)
    if isinstance(value, str):
        text = repr(value)
        # repr picks single quotes; the formatter's style is double quotes.
        if '"' not in value and "\\" not in text:
            text = '"' + text[1:-1] + '"'
        return text
    if isinstance(value, (tuple, list)):
        items = [literal(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    raise TypeError(f"no literal for {type(value).__name__}")


def identifier(value: str) -> str:
    """A name for generated code: an ASCII identifier that is no keyword or dunder."""
    if (
        not isinstance(value, str)
        or not value.isascii()
        or not value.isidentifier()
        or keyword.iskeyword(value)
        or value.startswith("__")
    ):
        raise ValueError(f"{value!r} cannot be used as a Python name")
    return value


def name_part(value: str) -> str:
    """Text spliced into an f-string layer name: letters, digits and underscores only."""
    if not _SAFE_NAME_PART.match(value):
        raise ValueError(f"{value!r} cannot be part of a layer name")
    return value


def text(value: str) -> str:
    """Free text made safe inside a triple-quoted docstring or a comment line."""
    cleaned = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in str(value))
    cleaned = cleaned.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return " ".join(cleaned.split())
