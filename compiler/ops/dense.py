"""`dense`: a fully connected layer, with its own activation, on a flat input or on
each position of a feature map (Keras' Dense on the last axis: ConvNeXt's pointwise
convolutions)."""

from __future__ import annotations

import math
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
        if op.units is None:
            return Tensor(None)
        cin, units = shape[-1], op.units
        positions = math.prod(shape[:-1])  # 1 on a flat input; H x W on a map
        return i.add(
            name,
            self.kind,
            (*shape[:-1], units),
            path,
            (x,),
            cin * units + (units if op.bias else 0),
            positions * cin * units,
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
