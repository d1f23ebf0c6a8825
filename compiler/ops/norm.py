"""Normalisation: `bn` (batch norm, per channel over the batch) and `layernorm`
(per position over the channels, as ConvNeXt uses it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, FiniteFloat

from .. import compact
from ..fields import Model
from ..graph import SpecPath, Tensor
from .base import Inferring, Lowering, Op, OpDef, Resolving, Saves, register, saves

Epsilon = Annotated[FiniteFloat, Field(gt=0.0)]


class BatchNorm(Op):
    kind: Literal["bn"] = "bn"  # pyright: ignore[reportIncompatibleVariableOverride]
    scale: bool | None = None


class LayerNorm(Op):
    """Keras' LayerNormalization over the channel axis: a learned scale and offset per
    channel (torch: LayerNorm over channels, on a channels-last view)."""

    kind: Literal["layernorm"] = "layernorm"  # pyright: ignore[reportIncompatibleVariableOverride]
    epsilon: Epsilon = 1e-3  # Keras' default; ConvNeXt uses 1e-6


class BatchNormDefaults(Model):
    scale: bool = True
    epsilon: Epsilon = 1e-3
    momentum: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] = 0.99


class DefaultsEntries(Model):
    """Batch norm's entry of `defaults:` (compiler.schema.Defaults)."""

    bn: BatchNormDefaults = BatchNormDefaults()


@dataclass(frozen=True)
class BatchNormDef(OpDef):
    # Its input, from which XLA recomputes its output (so an activation right after it
    # keeps nothing more); its moving mean and variance are weights without gradients.
    saves: Saves = saves("input", "moving_statistics", jax=("recomputed",))

    def concrete(self, r: Resolving, op: Any, path: SpecPath, env: dict) -> dict[str, Any]:
        return {"scale": r.spec.defaults.bn.scale if op.scale is None else op.scale}

    def infer(self, i: Inferring, op: Any, name: str, path: SpecPath, x: Tensor) -> Tensor:
        shape = x.known_shape  # gamma (unless scale is off), beta, moving mean and variance
        return i.add(name, self.kind, shape, path, (x,), shape[-1] * (4 if op.scale else 3))

    def attrs(self, b: Lowering, scope: Any, op: Any) -> dict[str, Any]:
        return {"scale": b.spec.defaults.bn.scale if op.scale is None else op.scale}


@dataclass(frozen=True)
class LayerNormDef(OpDef):
    saves: Saves = saves("input")

    def infer(self, i: Inferring, op: Any, name: str, path: SpecPath, x: Tensor) -> Tensor:
        shape = x.known_shape  # gamma and beta
        return i.add(name, self.kind, shape, path, (x,), 2 * shape[-1])

    def attrs(self, b: Lowering, scope: Any, op: Any) -> dict[str, Any]:
        return {"epsilon": op.epsilon}


register(
    BatchNormDef("bn", BatchNorm, compact.Syntax("bn", (), frozenset({"scale"}), "bn noscale")),
    LayerNormDef("layernorm", LayerNorm, compact.Syntax("layernorm", (), frozenset(), "layernorm")),
)
