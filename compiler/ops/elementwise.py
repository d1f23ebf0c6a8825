"""Ops applied to each value on its own: `act` (an activation; a bare activation
name is the same op), `dropout`, `rescaling` (`x * scale + offset`, the
preprocessing inside keras.applications' newer models) and `layerscale` (`x *
gamma`, a learned scale per channel: ConvNeXt's LayerScale)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal


from pydantic import FiniteFloat

from .. import compact
from ..fields import Model, Rate
from ..graph import SpecPath, Tensor
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


# The Keras layer an activation op builds: Activation(name), or ReLU(max_value) as
# keras.applications' MobileNetV2 writes ReLU(6.0) (relu and relu6), and hard_sigmoid
# as its MobileNetV3 writes it: `ReLU(6.0)(x + 3.0) * (1.0 / 6.0)`, one ReLU layer
# between two Keras operations (no layers).
LayerClass = Literal["Activation", "ReLU"]
RELU_LAYER = {"relu": None, "relu6": 6.0}  # what ReLU(max_value) computes
RELU_FORMS = frozenset({*RELU_LAYER, "hard_sigmoid"})  # what a ReLU layer can build


class Activation(Op):
    kind: Literal["act"] = "act"  # pyright: ignore[reportIncompatibleVariableOverride]
    activation: str
    layer: LayerClass | None = None  # None: defaults.act.layer


class ActivationDefaults(Model):
    layer: LayerClass = "Activation"


class DefaultsEntries(Model):
    """The activation op's entry of `defaults:` (compiler.schema.Defaults)."""

    act: ActivationDefaults = ActivationDefaults()


# A dropout's noise_shape entry: 1 shares one draw along the axis, None draws per position.
NoiseAxis = Literal[1] | None


class Dropout(Op):
    """Keras' Dropout; `noise_shape` (height, width, channels) as Keras' without the
    batch: `[1, 1, 1]` drops a whole sample's map at once (EfficientNet's drop connect)."""

    kind: Literal["dropout"] = "dropout"  # pyright: ignore[reportIncompatibleVariableOverride]
    rate: Rate  # a number, or a block parameter's name (`dropout p`)
    noise_shape: tuple[NoiseAxis, NoiseAxis, NoiseAxis] | None = None


class Rescaling(Op):
    """Keras' Rescaling layer: every value times `scale`, plus `offset`."""

    kind: Literal["rescaling"] = "rescaling"  # pyright: ignore[reportIncompatibleVariableOverride]
    scale: FiniteFloat
    offset: FiniteFloat = 0.0


class LayerScale(Op):
    """keras.applications' ConvNeXt LayerScale: each channel times a learned scale,
    `init` at first (ConvNeXt's layer_scale_init_value)."""

    kind: Literal["layerscale"] = "layerscale"  # pyright: ignore[reportIncompatibleVariableOverride]
    init: FiniteFloat


@dataclass(frozen=True)
class LayerScaleDef(OpDef):
    saves: Saves = saves("input")  # gamma's gradient reads it

    def infer(self, i: Inferring, op: Any, name: str, path: SpecPath, x: Tensor) -> Tensor:
        shape = x.known_shape
        return i.add(name, self.kind, shape, path, (x,), shape[-1])

    def attrs(self, b: Lowering, scope: Any, op: Any) -> dict[str, Any]:
        return {"init": op.init}


@dataclass(frozen=True)
class RescalingDef(OpDef):
    def attrs(self, b: Lowering, scope: Any, op: Any) -> dict[str, Any]:
        return {"scale": op.scale, "offset": op.offset}


@dataclass(frozen=True)
class ActivationDef(OpDef):
    saves: Saves = saves("activation")

    def concrete(self, r: Resolving, op: Any, path: SpecPath, env: dict) -> dict[str, Any]:
        activation = r.activation(op.activation, env, (*path, "activation"))
        if op.layer == "ReLU" and activation is not None and activation not in RELU_FORMS:
            r.error(
                "IRC209",
                f"a ReLU layer computes relu, relu6 or hard_sigmoid, not {activation!r}",
                (*path, "layer"),
                hint="use `layer: Activation` for this activation",
            )
        if activation is None and op.layer == "Activation":  # an identity layer, as asked
            return {"activation": "linear", "layer": op.layer}
        return {"activation": activation, "layer": _layer(op, r.spec, activation)}

    def infer(self, i: Inferring, op: Any, name: str, path: SpecPath, x: Tensor) -> Tensor:
        if not op.activation:  # linear: no layer, unless `layer: Activation` asks for one
            return x
        return i.add(name, self.kind, x.known_shape, path, (x,), activation=op.activation)

    def attrs(self, b: Lowering, scope: Any, op: Any) -> dict[str, Any]:
        activation = b.value(scope, op.activation)
        if activation == "linear" and op.layer == "Activation":  # an identity layer
            return {"activation": activation, "layer": op.layer}
        return {"activation": linear_none(activation), "layer": _layer(op, b.spec, activation)}


# The names Keras gives the operations of hard_sigmoid's ReLU form (`x + 3.0`, `* (1/6)`),
# which no layer of the same model may take.
KERAS_OPERATION_NAMES = re.compile(r"(add|multiply)(_[0-9]+)?")


def builds_operations(op: Any, spec: Any, activation: str | None) -> bool:
    """Whether an op builds Keras operations besides its layer: hard_sigmoid's ReLU form."""
    return (
        isinstance(op, Activation)
        and activation == "hard_sigmoid"
        and _layer(op, spec, activation) == "ReLU"
    )


def _layer(op: Activation, spec: Any, activation: Any) -> LayerClass:
    """The layer class an act builds: its own `layer`, else `defaults.act.layer` where
    that can compute the activation (a ReLU default leaves softmax an Activation)."""
    if op.layer is not None:
        return op.layer
    default = spec.defaults.act.layer
    computable = not isinstance(activation, str) or activation in RELU_FORMS
    return default if default != "ReLU" or computable else "Activation"


@dataclass(frozen=True)
class DropoutDef(OpDef):
    saves: Saves = saves(jax=("mask",), torch=("noise",))

    def concrete(self, r: Resolving, op: Any, path: SpecPath, env: dict) -> dict[str, Any]:
        return {"rate": r.fraction(op.rate, env, (*path, "rate"), "rate")}

    def infer(self, i: Inferring, op: Any, name: str, path: SpecPath, x: Tensor) -> Tensor:
        if op.noise_shape is not None and len(x.known_shape) != 3:
            i.error(
                "IRC306",
                "a dropout's noise_shape is (height, width, channels), for a feature map; "
                f"this input is flat ({x.known_shape[0]} values)",
                (*path, "noise_shape"),
                hint="leave noise_shape out on a flat input",
            )
            return Tensor(None)
        return i.add(name, self.kind, x.known_shape, path, (x,))

    def attrs(self, b: Lowering, scope: Any, op: Any) -> dict[str, Any]:
        return {"rate": b.value(scope, op.rate), "noise_shape": op.noise_shape}


_NAME = compact.Arg("activation", "name", "an activation name")
register(
    ActivationDef("act", Activation, compact.Syntax("act", (_NAME,), frozenset(), "act relu")),
    DropoutDef(
        "dropout",
        Dropout,
        compact.Syntax("dropout", (compact.Arg("rate", "rate", "a rate"),), example="dropout 0.2"),
    ),
    LayerScaleDef(
        "layerscale",
        LayerScale,
        compact.Syntax(
            "layerscale",
            (compact.Arg("init", "number", "an initial scale"),),
            example="layerscale 1e-6",
        ),
    ),
    RescalingDef(
        "rescaling",
        Rescaling,
        compact.Syntax(
            "rescaling", (compact.Arg("scale", "number", "a scale"),), example="rescaling 0.5"
        ),
    ),
)
