"""Ops that move values without weights: `pad` (zeros around the map; `pad correct 3x3`
is keras' imagenet_utils.correct_pad, which depends on the input's size), `crop` (rows
and columns cut off its edges), `identity` (the input as it is: a branch that passes
through), `flatten` and `reshape` (a vector as a 1x1 map, and back)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import PlainValidator

from .. import compact
from ..fields import CORRECT, PadSides, Window, pad_padding
from ..graph import Origin, SpecPath, Tensor
from .base import Inferring, Lowering, Op, OpDef, Resolving, Saves, register, saves


class Pad(Op):
    """Zeros around the feature map: (top, bottom, left, right) rows and columns, or
    `correct`: keras.applications' `correct_pad(x, kernel)` before a strided valid
    window, `kernel // 2` below and right and one less above and left where that side
    of the input is even (also where Keras does not know the size)."""

    kind: Literal["pad"] = "pad"  # pyright: ignore[reportIncompatibleVariableOverride]
    padding: Annotated[Union[Literal["correct"], PadSides], PlainValidator(pad_padding)]
    kernel: Window | None = None  # the window a `correct` padding is for


class Crop(Op):
    """Rows and columns cut off the feature map's edges: (top, bottom, left, right)."""

    kind: Literal["crop"] = "crop"  # pyright: ignore[reportIncompatibleVariableOverride]
    cropping: PadSides


class Identity(Op):
    """The input unchanged: a concat's pass-through branch. Builds no layer."""

    kind: Literal["identity"] = "identity"  # pyright: ignore[reportIncompatibleVariableOverride]


class Flatten(Op):
    kind: Literal["flatten"] = "flatten"  # pyright: ignore[reportIncompatibleVariableOverride]


class Reshape(Op):
    """Keras' Reshape between a vector of c values and a 1x1xc map, the two that
    keras.applications writes: `1x1` makes the map (an SE block's squeeze,
    `Reshape((1, 1, c))`), `flat` the vector (MobileNet's classifier, `Reshape((c,))`).
    Any other map becomes a vector through `flatten`."""

    kind: Literal["reshape"] = "reshape"  # pyright: ignore[reportIncompatibleVariableOverride]
    to: Literal["1x1", "flat"]


def correct_padding(size: tuple[int, int], kernel: tuple[int, int]) -> tuple[int, ...]:
    """keras.applications' imagenet_utils.correct_pad at a known size: (top, bottom,
    left, right)."""
    (h, w), (kh, kw) = size, kernel
    return (kh // 2 - (1 - h % 2), kh // 2, kw // 2 - (1 - w % 2), kw // 2)


@dataclass(frozen=True)
class PadDef(OpDef):
    feature_map: bool = True

    def concrete(self, r: Resolving, op: Any, path: SpecPath, env: dict) -> dict[str, Any]:
        if op.padding == CORRECT and op.kernel is None:
            r.error(
                "IRC210",
                "a `correct` padding needs the kernel it pads for",
                (*path, "padding"),
                hint="write `pad correct 3x3`, or `{pad: {padding: correct, kernel: 3}}`",
            )
        elif op.padding != CORRECT and op.kernel is not None:
            r.error(
                "IRC210",
                "a pad's kernel is only for a `correct` padding",
                (*path, "kernel"),
                hint="write `padding: correct` to pad as keras' correct_pad does, "
                "or leave the kernel out",
            )
        elif op.kernel is not None:  # at least 2: correct_pad leaves 1 below for a 1x1 kernel
            path = (*path, "kernel")
            return {"kernel": tuple(r.number(v, env, path, "kernel", 2) for v in op.kernel)}
        return {}

    def infer(self, i: Inferring, op: Any, name: str, path: SpecPath, x: Tensor) -> Tensor:
        h, w, c = x.known_shape
        padding = op.padding
        if padding == CORRECT:
            padding = correct_padding((h, w), op.kernel)
        top, bottom, left, right = padding
        return i.add(name, self.kind, (h + top + bottom, w + left + right, c), path, (x,))

    def attrs(self, b: Lowering, scope: Any, op: Any) -> dict[str, Any]:
        if op.padding == CORRECT:
            return {"padding": CORRECT, "kernel": b.pair(scope, op.kernel)}
        return {"padding": b.pair(scope, op.padding)}


@dataclass(frozen=True)
class CropDef(OpDef):
    feature_map: bool = True

    def infer(self, i: Inferring, op: Any, name: str, path: SpecPath, x: Tensor) -> Tensor:
        h, w, c = x.known_shape
        top, bottom, left, right = op.cropping
        if top + bottom >= h or left + right >= w:
            i.error(
                "IRC305",
                f"cropping ({top}, {bottom}, {left}, {right}) leaves nothing of a {h}x{w} input",
                (*path, "cropping"),
                hint="crop less, or move the crop before the map shrinks",
            )
            return Tensor(None)
        return i.add(name, self.kind, (h - top - bottom, w - left - right, c), path, (x,))

    def attrs(self, b: Lowering, scope: Any, op: Any) -> dict[str, Any]:
        return {"cropping": b.pair(scope, op.cropping)}


@dataclass(frozen=True)
class IdentityDef(OpDef):
    builds: bool = False

    def infer(self, i: Inferring, op: Any, name: str, path: SpecPath, x: Tensor) -> Tensor:
        return x


@dataclass(frozen=True)
class FlattenDef(OpDef):
    saves: Saves = saves("view")  # its output is its input, reshaped
    channels: str = "flat"

    def infer(self, i: Inferring, op: Any, name: str, path: SpecPath, x: Tensor) -> Tensor:
        shape = x.known_shape
        origin = Origin(f"{name!r} (flattened {shape})", path)
        return i.add(name, self.kind, (math.prod(shape),), path, (x,), origin=origin)


@dataclass(frozen=True)
class ReshapeDef(OpDef):
    saves: Saves = saves("view")

    def infer(self, i: Inferring, op: Any, name: str, path: SpecPath, x: Tensor) -> Tensor:
        shape = x.known_shape
        channels = shape[-1]
        wanted, out = {
            "1x1": ((channels,), (1, 1, channels)),
            "flat": ((1, 1, channels), (channels,)),
        }[op.to]
        if shape != wanted:
            given = "x".join(map(str, shape))
            i.error(
                "IRC306",
                f"reshape {op.to} takes a {'x'.join(map(str, wanted))} input, got {given}",
                (*path, "to"),
                hint="reshape turns c values into a 1x1xc map (`1x1`) or back (`flat`); "
                "use `flatten` for a larger map, `gap` to pool one",
            )
            return Tensor(None)
        return i.add(name, self.kind, out, path, (x,))

    def attrs(self, b: Lowering, scope: Any, op: Any) -> dict[str, Any]:
        return {"to": op.to}


_SIZE = compact.Arg("padding", "padding", "a padding size")
register(
    PadDef("pad", Pad, compact.Syntax("pad", (_SIZE,), frozenset({"kernel"}), "pad 3")),
    CropDef(
        "crop",
        Crop,
        compact.Syntax("crop", (compact.Arg("cropping", "padding", "a size"),), example="crop 1"),
    ),
    IdentityDef("identity", Identity, compact.Syntax("identity", example="identity")),
    FlattenDef("flatten", Flatten, compact.Syntax("flatten", example="flatten")),
    ReshapeDef(
        "reshape",
        Reshape,
        compact.Syntax(
            "reshape", (compact.Arg("to", "name", "`1x1` or `flat`"),), example="reshape 1x1"
        ),
    ),
)
