"""Transfer: start a network (a variant) from another's weights, by layer name.

irc names a layer by where its op sits in the spec, so a base network and its
variants share the names of what they share (`block35_3_conv` is the same layer
in IR-v2 and in a 5/10/5-block variant of it). A published file is first loaded,
by order, into the network it was published for, then taken by name. Every
weight whose layer name and shapes match is copied, and the rest reported:

- loaded: copied as they are;
- adapted: the first convolution, whose input channels differ (timm's
  `adapt_input_conv`: summed over the source's channels for one channel,
  repeated and rescaled otherwise), also counted as loaded;
- new: in the model, not in the source, or a classifier of another number of
  classes (re-initialised);
- mismatched: in both, of other shapes (left as initialised);
- unused: in the source, not in the model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ...compiler.api import SpecError, check
from ...compiler.pipeline import Result
from ..build import generated_builder
from ..h5weights import named_weights


class TransferError(ValueError):
    """A source that cannot be read or built."""


@dataclass
class Mismatch:
    layer: str
    source: list[list[int]]
    model: list[list[int]]


@dataclass
class Report:
    """What a transfer did, layer by layer (names in the model's layer order)."""

    source: str
    loaded: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    mismatched: list[Mismatch] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    classifiers: list[str] = field(default_factory=list)  # the model's classifier layers

    @property
    def unexpected(self) -> list[str]:
        """What `--strict` refuses: new or mismatched layers other than a classifier."""
        return [n for n in self.new if n not in self.classifiers] + [
            m.layer for m in self.mismatched if m.layer not in self.classifiers
        ]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        rows = [
            ("loaded", len(self.loaded), ", ".join(self.adapted) and f"adapted: {', '.join(self.adapted)}"),
            ("new", len(self.new), _listing(self.new)),
            ("shape-mismatched", len(self.mismatched), _listing(m.layer for m in self.mismatched)),
            ("unused in source", len(self.unused), _listing(self.unused)),
        ]  # fmt: skip
        lines = [f"transfer from {self.source}"]
        lines += [f"  {what:<17} {count:>5}  {names}".rstrip() for what, count, names in rows]
        return "\n".join(lines) + "\n"


def _listing(names: Iterable[str], limit: int = 8) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# -- sources ------------------------------------------------------------------------


def build(result: Result, **kwargs: Any) -> keras.Model:
    """The spec's Keras model, from the generated builder `irc compile` writes (run in
    memory, as irc_cnn.build does) with `kwargs`."""
    return generated_builder(result, "keras", ())(**kwargs)


def _model_weights(model: keras.Model) -> dict[str, list[np.ndarray]]:
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def read_source(source: str | Path | keras.Model) -> tuple[str, dict[str, list[np.ndarray]]]:
    """The source's label and its weights by layer name.

    `source` is a keras.Model, a weights file, or `SPEC@NAME`: the weights SPEC
    (a path or `irc:NAME`) publishes as NAME, loaded by order into SPEC's own model
    (with the top where published with it)."""
    if isinstance(source, keras.Model):
        return source.name, _model_weights(source)
    text = str(source)
    if Path(text).is_file():
        if not text.endswith((".h5", ".hdf5")):
            raise TransferError(f"{text}: a source file is a Keras `.weights.h5` or `.h5` file")
        try:
            return text, named_weights(text)
        except OSError as exc:  # h5py's word for a file that is not HDF5, or is cut short
            raise TransferError(f"{text}: not a readable Keras weights file ({exc})") from exc
    spec, at, name = text.rpartition("@")
    if not at:
        raise TransferError(
            f"no such file: {text} (a source is a weights file or SPEC@NAME, "
            "e.g. irc:keras/inception_resnet_v2@imagenet)"
        )
    try:
        result = check(spec)
    except SpecError as exc:  # a missing file, an unknown irc:NAME, an invalid spec
        first, more = exc.diagnostics[0], len(exc.diagnostics) - 1
        also = f" (and {more} more; `irc check {spec}` shows them)" if more else ""
        raise TransferError(f"{spec}: {first.message}{also}") from exc
    published = result.valid_spec.weights.get(name)
    if published is None:
        raise TransferError(
            f"{spec} publishes no weights named {name!r} "
            f"(it publishes: {', '.join(sorted(result.valid_spec.weights)) or 'none'})"
        )
    base = build(result, weights=name, include_top=published.top is not None)
    return text, _model_weights(base)


# -- the transfer ---------------------------------------------------------------------


def adapt_input_conv(kernel: np.ndarray, channels: int) -> np.ndarray:
    """A conv kernel (H, W, in, out) for `channels` input channels, as timm's
    adapt_input_conv: one channel sums the source's; more repeat them, rescaled so
    that the output's scale is kept."""
    source = kernel.shape[2]
    if channels == 1:
        return kernel.sum(axis=2, keepdims=True)
    repeat = math.ceil(channels / source)
    return np.tile(kernel, (1, 1, repeat, 1))[:, :, :channels, :] * (source / channels)


def _classifiers(model: keras.Model) -> list[str]:
    """The Dense layers whose outputs are the model's outputs: its classifiers."""
    outputs = {id(t) for t in model.outputs}
    return [
        layer.name
        for layer in model.layers
        if isinstance(layer, keras.layers.Dense) and id(layer.output) in outputs
    ]


def _first_conv(model: keras.Model) -> str | None:
    weighted = [layer for layer in model.layers if layer.weights]
    first = weighted[0] if weighted else None
    return first.name if isinstance(first, keras.layers.Conv2D) else None


def _adaptable(arrays: list[np.ndarray], shapes: list[tuple[int, ...]]) -> bool:
    """Only the kernel's input channels differ."""
    kernel, wanted = arrays[0].shape, shapes[0]
    return (
        len(arrays) == len(shapes)
        and len(kernel) == 4
        and kernel[:2] + kernel[3:] == wanted[:2] + wanted[3:]
        and all(a.shape == s for a, s in zip(arrays[1:], shapes[1:]))
    )


def transfer(model: keras.Model, source: str | Path | keras.Model) -> Report:
    """Copy into `model` every weight of `source` whose layer name and shapes match;
    the report says what was loaded, adapted, new, mismatched and unused."""
    label, weights = read_source(source)
    report = Report(label, classifiers=_classifiers(model))
    first = _first_conv(model)
    present = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        present.add(layer.name)
        arrays = weights.get(layer.name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if arrays is None:
            report.new.append(layer.name)
        elif [a.shape for a in arrays] == shapes:
            layer.set_weights(arrays)
            report.loaded.append(layer.name)
        elif layer.name == first and _adaptable(arrays, shapes):
            kernel = adapt_input_conv(arrays[0], shapes[0][2])
            layer.set_weights([kernel, *arrays[1:]])
            report.loaded.append(layer.name)
            report.adapted.append(layer.name)
        elif layer.name in report.classifiers:
            report.new.append(layer.name)  # another number of classes: re-initialised
        else:
            shape = [list(a.shape) for a in arrays]
            report.mismatched.append(Mismatch(layer.name, shape, [list(s) for s in shapes]))
    report.unused = [name for name in weights if name not in present]
    return report
