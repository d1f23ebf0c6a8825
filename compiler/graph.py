"""The IR after inference: every layer and stage with its shape and cost.

infer builds a Graph from a resolved spec; backends, `irc check`, summaries
and tests read it. Shapes exclude the batch axis: (H, W, C) for feature maps,
(N,) for flat tensors. `params` counts every weight Keras counts (conv
kernels and biases, all four batch-norm vectors, dense weights), so it can be
compared with `model.count_params()`; `macs` counts multiply-accumulates of
convolutions and dense layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Shape = tuple[int, ...]
SpecPath = tuple[str | int, ...]
INPUT = "input"  # the network's input, as the producer named in Layer.inputs


@dataclass(frozen=True)
class Layer:
    """One Keras layer the generated code creates, with the name it gets."""

    name: str
    # conv, dwconv, sepconv, pad, maxpool, avgpool, gap, gmp, bn, act, dropout,
    # flatten, dense, concat, rescale, add (a residual sum), multiply (a gate)
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

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def params_without_top(self) -> int:
        return sum(s.params for s in self.stages if s.role == "body")
