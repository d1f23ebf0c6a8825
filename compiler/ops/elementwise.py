"""Ops applied to each value on its own: `act` (an activation; a bare activation
name is the same op) and `dropout`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, FiniteFloat

from .. import compact
from ..graph import SpecPath, Tensor
from .base import Inferring, Lowering, Op, OpDef, Resolving, Saves, register, saves


class Activation(Op):
    kind: Literal["act"] = "act"  # pyright: ignore[reportIncompatibleVariableOverride]
    activation: str


class Dropout(Op):
    kind: Literal["dropout"] = "dropout"  # pyright: ignore[reportIncompatibleVariableOverride]
    rate: Annotated[FiniteFloat, Field(ge=0.0, lt=1.0)]


@dataclass(frozen=True)
class ActivationDef(OpDef):
    saves: Saves = saves("activation")

    def concrete(self, r: Resolving, op: Any, path: SpecPath, env: dict) -> dict[str, Any]:
        return {"activation": r.activation(op.activation, env, (*path, "activation"))}

    def infer(self, i: Inferring, op: Any, name: str, path: SpecPath, x: Tensor) -> Tensor:
        if not op.activation:  # linear: no layer
            return x
        return i.add(name, self.kind, x.known_shape, path, (x,), activation=op.activation)

    def attrs(self, b: Lowering, scope: Any, op: Any) -> dict[str, Any]:
        value = b.value(scope, op.activation)
        return {"activation": None if value == "linear" else value}


@dataclass(frozen=True)
class DropoutDef(OpDef):
    saves: Saves = saves(jax=("mask",), torch=("noise",))

    def attrs(self, b: Lowering, scope: Any, op: Any) -> dict[str, Any]:
        return {"rate": op.rate}


_NAME = compact.Arg("activation", "name", "an activation name")
register(
    ActivationDef("act", Activation, compact.Syntax("act", (_NAME,), frozenset(), "act relu")),
    DropoutDef(
        "dropout",
        Dropout,
        compact.Syntax("dropout", (compact.Arg("rate", "rate", "a rate"),), example="dropout 0.2"),
    ),
)
