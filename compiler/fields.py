"""Field types of the spec language: names, counts, windows, paddings.

Shared by the op definitions (compiler.ops) and the rest of the schema
(compiler.schema): each type validates one value as written, so an error
points at the value. A count or a window side may be a block parameter or
arithmetic on parameters, substituted in compiler.resolve.
"""

from __future__ import annotations

import keyword
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    TypeAdapter,
)
from pydantic_core import PydanticCustomError

from . import compact, expr

MAX_COUNT = 1_000_000  # filters, units, repeats: anything larger is a typo
MAX_REPEAT = 1_000
MAX_WINDOW = 4_096


def _identifier(value: str) -> str:
    if not value.isidentifier() or not value.isascii():
        raise PydanticCustomError(
            "irc_identifier",
            "'{value}' is not a valid name: use letters, digits and underscores, not starting with a digit",
            {"value": value},
        )
    if keyword.iskeyword(value) or (value.startswith("__") and value.endswith("__")):
        raise PydanticCustomError(
            "irc_identifier",
            "'{value}' is reserved in Python and cannot name anything in a spec",
            {"value": value},
        )
    return value


def _expression(value: str) -> str:
    """A parameter name or integer arithmetic on parameters (`4*f`, `f//2`), as written."""
    if not expr.is_expression(value):
        return _identifier(value)
    try:
        expr.parse(value)
    except expr.ExprError as exc:
        raise PydanticCustomError(
            "irc_expression", "{value!r}: {message}", {"value": value, "message": exc.message}
        ) from None
    return value.strip()


def _window(value: Any) -> Any:
    """`3x3`, `3`, `[1, 7]`, `k` or `[1, k]` to a (height, width) pair."""
    if isinstance(value, str):
        if value[:1].isdigit() and not expr.is_expression(value):
            try:
                return compact._window(compact.Token(value, 0), "size")
            except compact.CompactError as exc:
                raise PydanticCustomError(
                    "irc_window", "{message}", {"message": exc.message}
                ) from None
        return [value, value]
    if isinstance(value, int) and not isinstance(value, bool):
        return [value, value]
    return value


def _dim(value: Any, low: int = 1) -> int | str:
    """One side of a window, stride or padding: a number, a parameter or arithmetic on one."""
    if isinstance(value, str):
        return _expression(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if not low <= value <= MAX_WINDOW:
            raise PydanticCustomError(
                "irc_range",
                "must be between {low} and {max}, got {value}",
                {"low": low, "max": MAX_WINDOW, "value": value},
            )
        return value
    raise PydanticCustomError(
        "irc_type",
        "must be a whole number or a parameter name, got {value}",
        {"value": repr(value)},
    )


def _input_side(value: Any) -> int:
    """One side of the network's input: a number (no block parameter is in scope there)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError(
            "irc_type", "must be a whole number, got {value}", {"value": repr(value)}
        )
    _dim(value)  # the range check
    return value


def pad_side(value: Any) -> Any:
    """One side of a zero padding: a window side that may be 0."""
    return _dim(value, low=0)


def padding_sides(value: Any) -> Any:
    """`3` (every side), `1x2` (height, width), `[t, b, l, r]` to (top, bottom, left, right)."""
    if isinstance(value, str) and value[:1].isdigit() and not expr.is_expression(value):
        try:
            h, w = compact._window(compact.Token(value, 0), "padding", zero=True)
        except compact.CompactError as exc:
            raise PydanticCustomError("irc_window", "{message}", {"message": exc.message}) from None
        return [h, h, w, w]
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [value] * 4
    if isinstance(value, list) and len(value) == 2:
        return [value[0], value[0], value[1], value[1]]
    return value


PadSize = Annotated[Union[int, str], PlainValidator(pad_side)]
PadSides = Annotated[tuple[PadSize, PadSize, PadSize, PadSize], BeforeValidator(padding_sides)]
CORRECT = "correct"  # a pad's padding as keras' correct_pad computes it (ops.layout)
_PAD_SIDES = TypeAdapter(PadSides)


def pad_padding(value: Any) -> Any:
    """A pad's padding: `correct`, or sides as `padding_sides` reads them. One validator
    rather than a union, so that a wrong size is one error at its own position."""
    return value if value == CORRECT else _PAD_SIDES.validate_python(value)


Ident = Annotated[str, Strict(), AfterValidator(_identifier)]
PosInt = Annotated[int, Strict(), Field(gt=0, le=MAX_COUNT)]
Size = Annotated[Union[int, str], PlainValidator(_dim)]
Window = Annotated[tuple[Size, Size], BeforeValidator(_window)]
InputSide = Annotated[int, PlainValidator(_input_side)]
LayerName = Annotated[
    str,
    Strict(),
    Field(pattern=r"^[A-Za-z0-9_*]*$", max_length=64),  # `*`: the block use's name
]


INPUT_CHANNELS = "in"  # a projection's filters: as many as the residual's input has
CLASSES = "classes"  # a count that is the builder's class count (a classifier's units)


def _count(value: Any) -> int | str:
    """A count written as a number, the name of a block parameter, or `in`."""
    if value == INPUT_CHANNELS:
        return value
    if isinstance(value, str):
        return _expression(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 < value <= MAX_COUNT:
            raise PydanticCustomError(
                "irc_range",
                "must be between 1 and {max}, got {value}",
                {"max": MAX_COUNT, "value": value},
            )
        return value
    raise PydanticCustomError(
        "irc_type",
        "must be a whole number or a parameter name, got {value}",
        {"value": repr(value)},
    )


Count = Annotated[Union[int, str], PlainValidator(_count)]


def _repeat(value: Any) -> int | str:
    """A repeat count: a whole number up to MAX_REPEAT, or a block parameter's name
    or arithmetic on parameters (`n`, `n-1`)."""
    if isinstance(value, str):
        return _expression(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_REPEAT:
        return value
    raise PydanticCustomError(
        "irc_range",
        "must be a whole number between 1 and {max} or a parameter name, got {value}",
        {"max": MAX_REPEAT, "value": repr(value)},
    )


Repeat = Annotated[Union[int, str], PlainValidator(_repeat)]


def _rate(value: Any) -> float | str:
    """A fraction in [0, 1) (a dropout rate), or the name of a block parameter."""
    if isinstance(value, str):
        return _identifier(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not 0 <= value < 1:  # also false for nan
            raise PydanticCustomError(
                "irc_range", "must be a number in [0, 1), got {value}", {"value": value}
            )
        return float(value)
    raise PydanticCustomError(
        "irc_type", "must be a number or a parameter name, got {value}", {"value": repr(value)}
    )


Rate = Annotated[Union[float, str], PlainValidator(_rate)]


Padding = Literal["same", "valid"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def widen(count: int, multiplier: float) -> int:
    """A count under a width (or depth) multiplier: rounded half up, at least 1.

    Every backend must use this same rule (the Keras backend does).
    """
    return max(1, int(count * multiplier + 0.5))
