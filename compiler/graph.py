"""The IR after inference: every layer and stage with its shape and cost.

infer builds a Graph from a resolved spec; backends, `irc check`, summaries
and tests read it. Shapes exclude the batch axis: (H, W, C) for feature maps,
(N,) for flat tensors. `params` counts every weight Keras counts (conv
kernels and biases, all four batch-norm vectors, dense weights), so it can be
compared with `model.count_params()`; `macs` counts multiply-accumulates of
convolutions and dense layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

Shape = tuple[int, ...]
SpecPath = tuple[str | int, ...]
INPUT = "input"  # the network's input, as the producer named in Layer.inputs


# -- values of the walk that builds it (compiler.infer and each op's rule) --------


@dataclass(frozen=True)
class Origin:
    """Where a tensor's channel count was decided, for error notes."""

    text: str
    path: SpecPath


@dataclass(frozen=True)
class Tensor:
    shape: Shape | None  # None: unknown after an earlier error
    origin: Origin | None = None
    layer: str = INPUT  # the layer that produced it

    @property
    def known_shape(self) -> Shape:
        """The shape, where the caller has returned early on an unknown one."""
        if self.shape is None:
            raise AssertionError("the shape of a tensor after an error")
        return self.shape


def window_out(size: int, window: int, stride: int, padding: str) -> int:
    """Keras' output length along one axis."""
    if padding == "same":
        return math.ceil(size / stride)
    return (size - window) // stride + 1


# -- the graph --------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One Keras layer the generated code creates, with the name it gets."""

    name: str
    # an op's kind (compiler.ops; a conv's batch norm and activation are `bn` and
    # `act`), or concat, rescale, add (a residual sum), multiply (a gate), or
    # add_operation (a sum by Keras' `+`: an operation the model has, not a layer)
    kind: str
    shape: Shape
    params: int
    macs: int
    stage: str
    path: SpecPath
    # the layers whose outputs it reads ("input" for the network's input) and
    # its activation function (act and dense layers): what backpropagation keeps
    # depends on both (compiler.memory)
    inputs: tuple[str, ...] = ()
    activation: str | None = None
    # elements of a tensor the layer computes inside itself: a separable conv's
    # depthwise output, which the pointwise weights' gradient reads (compiler.memory)
    inner: int = 0


@dataclass(frozen=True)
class Stage:
    """One block instance (or the head) along the network."""

    name: str
    block: str | None
    number: int | None  # 1-based position among uses of the same block
    count: int  # how many uses of that block the network has
    shape: Shape
    params: int
    macs: int
    path: SpecPath
    role: str  # "body", "aux" or "head"


@dataclass(frozen=True)
class Graph:
    spec: Any  # compiler.schema.Spec
    input: Shape
    layers: tuple[Layer, ...]
    stages: tuple[Stage, ...]
    features: Shape  # the main path's output before the head
    outputs: tuple[Shape, ...]  # the main output first, then auxiliary heads
    # The resolved network it was inferred from (compiler.resolve.Resolved): resolving
    # does not depend on the input size, so the minimum-input search reuses it.
    resolved: Any = field(default=None, repr=False, compare=False)
    # The spec's `no_top:` layers, built only without the top: not in `layers`, which
    # are the model's with the top (keras' legacy files without it hold their weights)
    no_top_layers: tuple[Layer, ...] = ()

    @property
    def no_top_params(self) -> int:
        return sum(layer.params for layer in self.no_top_layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def params_without_top(self) -> int:
        return sum(s.params for s in self.stages if s.role == "body") + self.no_top_params
