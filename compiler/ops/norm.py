"""Normalisation: `bn` (batch norm, per channel over the batch), `layernorm`
(per position over the channels, as ConvNeXt uses it) and `normalization`
(Keras' Normalization: a fixed mean and variance per channel, the preprocessing
inside ConvNeXt and EfficientNet)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import ConfigDict, Field, FiniteFloat, PlainValidator, model_validator
from pydantic_core import PydanticCustomError

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


MAX_STATISTICS = 65_536  # values in a normalization's mean or variance: channels at most


def _statistic(value: Any, low: float) -> float | list[float]:
    """A normalization's mean or variance: one number per channel, or one for every
    channel; finite, and at least `low` (a variance is not negative)."""
    values = value if isinstance(value, list) else [value]
    if not 1 <= len(values) <= MAX_STATISTICS:
        raise PydanticCustomError(
            "irc_range", "must hold 1 to {max} numbers", {"max": MAX_STATISTICS}
        )
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise PydanticCustomError(
                "irc_type",
                "must be a number or a list of numbers, got {value}",
                {"value": repr(v)[:40]},
            )
        if v < low:
            raise PydanticCustomError(
                "irc_range", "must not be below {low}, got {value}", {"low": low, "value": v}
            )
    return [float(v) for v in values] if isinstance(value, list) else float(value)


Statistic = Annotated[
    Union[float, list[float]],
    PlainValidator(
        lambda v: _statistic(v, -math.inf), json_schema_input_type=Union[float, list[float]]
    ),
]
Variance = Annotated[
    Union[float, list[float]],
    PlainValidator(lambda v: _statistic(v, 0.0), json_schema_input_type=Union[float, list[float]]),
]


class Normalization(Op):
    """Keras' Normalization over the channel axis: `(x - mean) / max(sqrt(variance), 1e-7)`.

    With `mean` and `variance` given they are constants and the layer has no weights
    (ConvNeXt's PreStem); without them the layer holds them as its own non-trainable
    weights, with Keras' `count` (2 x C + 1), zero mean and unit variance until weights
    are loaded (EfficientNet's, adapted to ImageNet)."""

    # Both or neither (_paired), which the JSON Schema says too.
    model_config = ConfigDict(
        json_schema_extra={"dependentRequired": {"mean": ["variance"], "variance": ["mean"]}}
    )

    kind: Literal["normalization"] = "normalization"  # pyright: ignore[reportIncompatibleVariableOverride]
    mean: Statistic | None = None
    variance: Variance | None = None

    @model_validator(mode="after")
    def _paired(self) -> Normalization:
        if (self.mean is None) != (self.variance is None):
            raise PydanticCustomError(
                "irc_normalization",
                "give both mean and variance, or neither (weights of its own)",
            )
        sizes = {len(v) for v in (self.mean, self.variance) if isinstance(v, list)}
        if len(sizes) > 1:
            raise PydanticCustomError(
                "irc_normalization", "mean and variance have different lengths"
            )
        return self


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


@dataclass(frozen=True)
class NormalizationDef(OpDef):
    saves: Saves = saves("statistics_only")

    def infer(self, i: Inferring, op: Any, name: str, path: SpecPath, x: Tensor) -> Tensor:
        shape = x.known_shape
        for field in ("mean", "variance"):
            values = getattr(op, field)
            if isinstance(values, list) and len(values) != shape[-1]:
                i.error(
                    "IRC312",
                    f"normalization's {field} has {len(values)} values for {shape[-1]} channels",
                    (*path, field),
                    hint="give one number per channel, or one number for all",
                )
                return Tensor(None)
        # Constants: no weights. Otherwise mean, variance (per channel) and count.
        params = 0 if op.mean is not None else 2 * shape[-1] + 1
        return i.add(name, self.kind, shape, path, (x,), params)

    def attrs(self, b: Lowering, scope: Any, op: Any) -> dict[str, Any]:
        return {"mean": op.mean, "variance": op.variance}


register(
    BatchNormDef("bn", BatchNorm, compact.Syntax("bn", (), frozenset({"scale"}), "bn noscale")),
    LayerNormDef("layernorm", LayerNorm, compact.Syntax("layernorm", (), frozenset(), "layernorm")),
    NormalizationDef(
        "normalization",
        Normalization,
        compact.Syntax("normalization", (), frozenset(), "normalization"),
    ),
)
