"""What one training step needs in memory, estimated from the inferred graph.

The answer to "what batch fits my 16 GB GPU": weights, their gradients, the
optimizer's state, and the activations that backpropagation must keep from
the forward pass, at a batch size, for one framework's training step: `jax`
(Keras on JAX, compiled by XLA) or `torch` (PyTorch, eager). The two keep
different gradients and activations. docs/summary-and-plot.md says how each
part is counted; benchmarks/training_memory.py compares the total with XLA's
own memory analysis of a compiled Keras training step and with torch's
profiler on a real step of the generated torch module.

Under XLA, which tensors the forward pass keeps for the backward pass follows
from what each layer's gradient needs:

- a convolution (depthwise and separable ones too) or dense layer needs its
  input (for the weight gradient); a separable convolution also keeps its
  depthwise output, which its pointwise weights' gradient reads;
- batch norm needs its input (to recompute the normalised values);
- an activation needs its input (ReLU: its sign; sigmoid, tanh and softmax
  their output instead). Right after a batch norm, nothing more is kept:
  the input is the batch norm's input (kept) normalised with per-channel
  statistics, and XLA recomputes it in the backward pass. A dense layer's
  own activation (the classifier's softmax) keeps the layer's output;
- a max pool needs its input and output (where the maximum was);
- an average or global pool, a sum, a rescaling need nothing (their gradient
  depends on shapes and constants only); a gate's product (squeeze and
  excitation) needs both its inputs, the feature map and the scales;
- dropout keeps its mask, one byte per element;
- a concatenation or flatten needs nothing and stores nothing of its own: its
  output is its inputs laid side by side, so where a later layer keeps it,
  its inputs are what is kept.

A tensor kept by two layers (the concat read by four branches' first
convolutions) is counted once. The backward pass's own short-lived buffers
are counted as two tensors the size of the largest activation: at its peak
the gradient flowing into a layer and the one flowing out of it coexist.

Gradients: a compiled training step (Keras on JAX, under XLA) applies each
weight's update as soon as that weight's gradient is computed (the update
is elementwise), so one layer's gradient is alive at a time: the estimate
counts the largest layer's. A framework that holds every gradient until
the optimizer runs (PyTorch's `.grad`, eager TensorFlow) needs the
trainable weights' size again.

PyTorch (`_RULES["torch"]`, each op's `saves.torch`) saves
what each op's derivative formula names, and nothing is fused or recomputed: ReLU's backward reads its
result, so every ReLU output is kept (and a conv's output under a ReLU
without batch norm is not); `torch.cat` writes a new tensor, kept where a
later op keeps it; an average pool keeps its input; a max pool keeps its
input and int64 indices (8 bytes per output element) instead of its output;
dropout on the CPU keeps a noise tensor of the activation dtype. Every
`.grad` exists once the backward pass ends, so the gradients are all the
trainable weights. No transient gradients are added: torch's peak comes as
the backward pass begins, when the gradients flowing are the head's, small.
The total sums the parts; the measured peak is lower by up to the
gradients, which fill as the saved activations are freed.

No framework is imported.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from .graph import INPUT, Graph, Layer

# (bytes of a weight, of a gradient, of an optimizer slot, of an activation)
DTYPES = {
    "float32": (4, 4, 4, 4),
    "bfloat16": (2, 2, 2, 2),
    # Keras' mixed_bfloat16: float32 variables, gradients and optimizer state,
    # bfloat16 activations
    "mixed": (4, 4, 4, 2),
}
OPTIMIZER_SLOTS = {"sgd": 0, "momentum": 1, "adam": 2}  # per trainable weight
MASK_BYTES = 1  # a dropout mask: one boolean per element
# The backward pass's own buffers at its peak: the gradient flowing into one layer
# and the one flowing out, counted as two tensors of the largest activation's size.
TRANSIENT = 2

# What the layers of a network's forms keep, by framework (an op's own is its
# OpDef.saves): a gate's product keeps both its inputs; a concat is a view of its
# inputs under XLA, a new tensor in torch (torch.cat copies).
_FORM_SAVES = {
    "jax": {"multiply": frozenset({"input"}), "concat": frozenset({"view"})},
    "torch": {"multiply": frozenset({"input"})},
}
FROM_OUTPUT = {"sigmoid", "tanh", "softmax"}  # activations whose gradient reads the output


@dataclass(frozen=True)
class Training:
    """The training setup the estimate is for."""

    batch: int = 1
    dtype: str = "float32"
    optimizer: str = "momentum"
    framework: str = "jax"


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes one training step needs, in parts; activations grow with the batch."""

    training: Training
    weights: int
    gradients: int
    optimizer_state: int
    activations_per_image: int

    @property
    def fixed(self) -> int:
        """What does not grow with the batch."""
        return self.weights + self.gradients + self.optimizer_state

    @property
    def total(self) -> int:
        return self.fixed + self.training.batch * self.activations_per_image

    def largest_batch(self, memory: int) -> int:
        """The largest batch whose step fits in `memory` bytes (0: not even one image)."""
        return max(0, (memory - self.fixed) // self.activations_per_image)

    def to_json(self) -> dict:
        batch = self.training.batch
        return {
            "batch": batch,
            "dtype": self.training.dtype,
            "optimizer": self.training.optimizer,
            "framework": self.training.framework,
            "weights": self.weights,
            "gradients": self.gradients,
            "optimizer_state": self.optimizer_state,
            "activations": batch * self.activations_per_image,
            "total": self.total,
        }


def _trainable(layer: Layer) -> int:
    """A layer's weights that get gradients: all but batch norm's moving mean and variance,
    and none of a normalization's (its mean, variance and count are statistics)."""
    kept = _saves(layer, "jax")
    if "statistics_only" in kept:
        return 0
    moving = "moving_statistics" in kept
    return layer.params - (2 * layer.shape[-1] if moving else 0)


def _saves(layer: Layer, framework: str) -> frozenset[str]:
    # Imported here: the command line imports this module for its tables on a path (a
    # cached check) that must not load the op registry's pydantic models.
    from . import ops

    definition = ops.REGISTRY.get(layer.kind)
    if definition is not None:
        return definition.saves[framework]
    return _FORM_SAVES[framework].get(layer.kind, frozenset())


def _after_recomputed(layer: Layer, by_name: dict[str, Layer], framework: str) -> bool:
    """Whether its input is an output the framework recomputes from a kept input in the
    backward pass (batch norm's, under XLA)."""
    source = by_name.get(layer.inputs[0]) if layer.inputs else None
    return source is not None and "recomputed" in _saves(source, framework)


@dataclass(frozen=True)
class _Autograd:
    """What one framework's training step keeps beyond each op's `saves`: which
    activations' gradients read their output (`from_output`), what a layer stores besides
    graph tensors per element of its output (`extra`: by `saves` word, elements of the
    activation dtype and bytes), how many tensors of the largest activation's size the
    backward pass adds at the peak, and whether every gradient is alive at once."""

    framework: str
    from_output: frozenset[str]
    extra: dict[str, tuple[int, int]]
    transient: int
    all_gradients: bool

    def keeps(
        self, layer: Layer, saves: frozenset[str], by_name: dict[str, Layer]
    ) -> Iterator[str]:
        """The tensors a layer's gradient reads, as this framework keeps them (module
        docstring): torch keeps what each derivative formula names, nothing recomputed."""
        if "input" in saves:
            yield from layer.inputs
        if "output" in saves or layer.activation in self.from_output:
            yield layer.name
        elif "fused_activation" in saves and layer.activation:
            yield layer.name
        elif "activation" in saves and not _after_recomputed(layer, by_name, self.framework):
            yield from layer.inputs

    def extras(self, saves: frozenset[str]) -> tuple[int, int]:
        sizes = [self.extra[word] for word in saves if word in self.extra]
        return sum(e for e, _ in sizes), sum(b for _, b in sizes)


_RULES = {
    "jax": _Autograd("jax", frozenset(FROM_OUTPUT), {"mask": (0, MASK_BYTES)}, TRANSIENT, False),
    # threshold_backward reads ReLU's result; max pool keeps int64 argmax indices (8 bytes
    # per output element); dropout on the CPU multiplies by a noise tensor of the
    # activation dtype
    "torch": _Autograd(
        "torch", frozenset(FROM_OUTPUT | {"relu"}), {"noise": (1, 0), "indices": (0, 8)}, 0, True
    ),
}
FRAMEWORKS = tuple(_RULES)


def kept_elements(graph: Graph, framework: str = "jax") -> tuple[int, int]:
    """Elements per image of every tensor the backward pass keeps (each once, a separable
    conv's depthwise output included), plus its transient gradients; and bytes per image of
    what has a size of its own whatever the dtype (dropout masks, max pool indices)."""
    rules = _RULES[framework]
    by_name = {layer.name: layer for layer in graph.layers}
    kept: set[str] = set()

    def keep(name: str) -> None:
        layer = by_name.get(name)
        if layer is not None and "view" in _saves(layer, framework):
            for source in layer.inputs:
                keep(source)
        else:
            kept.add(name)

    extra_elements = extra_bytes = 0
    for layer in graph.layers:
        saves = _saves(layer, framework)
        for name in rules.keeps(layer, saves, by_name):
            keep(name)
        elements, size = rules.extras(saves)
        extra_elements += elements * math.prod(layer.shape)
        extra_bytes += size * math.prod(layer.shape)
    sizes = {name: math.prod(layer.shape) for name, layer in by_name.items()}
    sizes[INPUT] = math.prod(graph.input)
    inner = sum(layer.inner for layer in graph.layers)
    transient = rules.transient * max(sizes.values())
    return sum(sizes[name] for name in kept) + inner + extra_elements + transient, extra_bytes


def training_memory(graph: Graph, training: Training) -> TrainingMemory:
    weight, gradient, slot, activation = DTYPES[training.dtype]
    trainable = sum(_trainable(layer) for layer in graph.layers)
    largest = max(_trainable(layer) for layer in graph.layers)
    elements, extra = kept_elements(graph, training.framework)
    return TrainingMemory(
        training=training,
        weights=graph.params * weight,
        gradients=(trainable if _RULES[training.framework].all_gradients else largest) * gradient,
        optimizer_state=trainable * OPTIMIZER_SLOTS[training.optimizer] * slot,
        activations_per_image=elements * activation + extra,
    )


_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*\Z")


def parse_bytes(text: str) -> int:
    """`16GiB` (2**30), `16GB` (10**9), `500MiB`, or a number of bytes. A bare `16G`
    is refused: GPU memory is quoted in GiB, disks in GB, and the two differ by 7%."""
    m = _SIZE.match(text)
    unit = m.group(2).lower() if m else None
    if m is not None and unit in ("k", "m", "g", "t"):
        number, letter = m.group(1), m.group(2).upper()
        raise ValueError(
            f"{text!r} is ambiguous: write {number}{letter}iB ({number} x 2^"
            f"{10 * ' kmgt'.index(unit)} bytes, as GPU memory is quoted) or {number}{letter}B "
            f"({number} x 10^{3 * ' kmgt'.index(unit)})"
        )
    if m is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a memory size; write e.g. 16GiB, 24GB or 8000MiB")
    return int(float(m.group(1)) * _UNITS[unit])
