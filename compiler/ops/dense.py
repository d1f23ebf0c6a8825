"""`dense`: a fully connected layer on a flat input, with its own activation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .. import compact
from ..fields import CLASSES, Count
from ..graph import Origin, SpecPath, Tensor
from .base import (
    Inferring,
    Lowering,
    Op,
    OpDef,
    Resolving,
    Saves,
    linear_none,
    register,
    saves,
)


class Dense(Op):
    kind: Literal["dense"] = "dense"  # pyright: ignore[reportIncompatibleVariableOverride]
    units: Count
    activation: str | None = None  # None: linear
    bias: bool = True


@dataclass(frozen=True)
class DenseDef(OpDef):
    saves: Saves = saves("input", "fused_activation")
    channels: str = "units"

    def concrete(self, r: Resolving, op: Any, path: SpecPath, env: dict) -> dict[str, Any]:
        return {
            "units": r.count(op.units, env, (*path, "units"), "units"),
            "activation": r.activation(op.activation, env, (*path, "activation")),
        }

    def infer(self, i: Inferring, op: Any, name: str, path: SpecPath, x: Tensor) -> Tensor:
        shape = x.known_shape
        if len(shape) != 1:
            i.error(
                "IRC306",
                f"dense needs a flat input but gets a {'x'.join(map(str, shape))} feature map",
                path,
                hint="put `flatten` or `gap` before it",
            )
            return Tensor(None)
        if op.units is None:
            return Tensor(None)
        cin, units = shape[0], op.units
        return i.add(
            name,
            self.kind,
            (units,),
            path,
            (x,),
            cin * units + (units if op.bias else 0),
            cin * units,
            Origin(f"{name!r} ({units} units)", path),
            op.activation,
        )

    def attrs(self, b: Lowering, scope: Any, op: Any) -> dict[str, Any]:
        if op.units == CLASSES:  # the builder's class count: a classifier
            scope.uses_classifier = True
        return {
            "units": op.units if op.units == CLASSES else b.value(scope, op.units),
            "activation": linear_none(b.value(scope, op.activation)),
            "bias": op.bias,
        }


_OPTIONS = frozenset({"activation", "bias"})
_UNITS = compact.Arg("units", "count", "a unit count")
register(
    DenseDef("dense", Dense, compact.Syntax("dense", (_UNITS,), _OPTIONS, "dense 1000 softmax"))
)
