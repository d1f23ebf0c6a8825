"""Weights between a Keras `.weights.h5` file and a generated torch model, without TensorFlow.

A generated torch module tags each weighted layer with the name of the Keras
layer it pairs with (`keras_name`: `resnet_b_3_b2_conv2`, `..._bn`,
`head_dense`), so weights convert by name, not by order. Keras 3 stores each
layer's variables under `layers/<path>/vars/<i>`, the group carrying the
layer's name as its `name` attribute. Conversions:

- Conv2D kernel (H, W, in, out) <-> Conv2d weight (out, in, H, W); bias as is.
- DepthwiseConv2D kernel (H, W, in, multiplier) <-> a grouped Conv2d's weight
  (in * multiplier, 1, H, W), output channel c * multiplier + m.
- SeparableConv2D depthwise_kernel, pointwise_kernel (1, 1, in * multiplier,
  out), bias <-> the generated module's `depthwise` and `pointwise` Conv2d
  weights (as above) and the pointwise bias.
- Dense kernel (in, out) <-> Linear weight (out, in); the generated Flatten
  flattens channels-last, so no reordering of the inputs is needed.
- BatchNormalization [gamma], beta, moving_mean, moving_variance <->
  [weight], bias, running_mean, running_var (gamma only where scale=True).
- LayerScale gamma <-> the generated LayerScale's `gamma`.
- Normalization (without given constants) mean, variance, count <-> the
  generated module's buffers of those names.

A file whose layers or shapes do not fit the model is refused with a
WeightsError naming the layer; nothing is loaded then.

keras.applications' published files use Keras' legacy HDF5 layout, whose layer
names are not reliable (auto-names of the Keras version that wrote them):
`load_keras_legacy_weights` reads them by position, in the order Keras lists
the layers, which the generated module carries (KERAS_WEIGHT_ORDER).

Keras names the groups of a `.weights.h5` after its own internal layer order,
which only Keras computes, so `save_keras_weights` writes into a copy of a
file Keras wrote for the same model (`model.save_weights(...)` of a freshly
built one): the layout comes from it, every value from the torch model.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import h5py
import numpy as np
import torch
from torch import nn

from ..h5weights import legacy_layers, vars_groups
from ..published import published_file

NORMALIZATION = ("mean", "variance", "count")  # a Normalization's weights, in Keras' order
# The weights Keras does not train: a legacy file lists a layer's after its trainable ones
STATISTICS = frozenset({"moving_mean", "moving_variance", *NORMALIZATION})


class WeightsError(ValueError):
    """A weights file that does not fit the model."""


def keras_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The model's weighted layers by Keras layer name."""
    return {str(m.keras_name): m for m in model.modules() if hasattr(m, "keras_name")}


def _slots(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The torch tensors of one layer in Keras' variable order, with what Keras calls them."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        if module.running_mean is None or module.running_var is None:
            raise TypeError("no Keras layout for a batch norm without running statistics")
        slots = [("gamma", module.weight)] if module.weight is not None else []
        return [
            *slots,
            ("beta", module.bias),
            ("moving_mean", module.running_mean),
            ("moving_variance", module.running_var),
        ]
    depthwise, pointwise = getattr(module, "depthwise", None), getattr(module, "pointwise", None)
    if isinstance(depthwise, nn.Conv2d) and isinstance(pointwise, nn.Conv2d):  # a separable conv
        bias = pointwise.bias
        slots = [("depthwise_kernel", depthwise), ("kernel", pointwise)]
        return [(what, conv.weight) for what, conv in slots] + (
            [("bias", bias)] if bias is not None else []
        )
    if isinstance(module, nn.LayerNorm):
        return [("gamma", module.weight), ("beta", module.bias)]
    gamma = getattr(module, "gamma", None)
    if isinstance(gamma, nn.Parameter):  # a LayerScale
        return [("gamma", gamma)]
    statistics = dict(module.named_buffers(recurse=False))
    if set(statistics) == set(NORMALIZATION):  # Keras' Normalization with weights of its own
        return [(what, statistics[what]) for what in NORMALIZATION]
    if not isinstance(module, (nn.Conv2d, nn.Linear)):
        raise TypeError(f"no Keras layout for {type(module).__name__}")
    bias = [("bias", module.bias)] if module.bias is not None else []
    # A Keras DepthwiseConv2D (the generated DepthwiseConv marks its Conv2d), not a
    # grouped Conv2D: the two store their kernels in different layouts.
    depthwise = getattr(module, "keras_depthwise", False)
    return [("depthwise_kernel" if depthwise else "kernel", module.weight), *bias]


def _convert(module: nn.Module, what: str, array: np.ndarray, to_torch: bool) -> np.ndarray:
    """A Keras array in torch's layout (`to_torch`), or a torch array in Keras'."""
    if what == "depthwise_kernel":  # (H, W, in, m) <-> (in * m, 1, H, W)
        conv = cast(nn.Conv2d, getattr(module, "depthwise", module))
        groups = conv.groups
        if to_torch:
            h, w, cin, m = array.shape
            return array.transpose(2, 3, 0, 1).reshape(cin * m, 1, h, w)
        out, _, h, w = array.shape
        return array.reshape(groups, out // groups, h, w).transpose(2, 3, 0, 1)
    if what != "kernel":
        return array
    if array.ndim == 4:  # HWIO <-> OIHW
        return array.transpose((3, 2, 0, 1) if to_torch else (2, 3, 1, 0))
    return array.T  # dense: (in, out) <-> (out, in)


def _arrays(name: str, group: h5py.Group, count: int) -> list[h5py.Dataset]:
    keys = sorted(group, key=int)
    if len(keys) != count:
        raise WeightsError(
            f"layer {name!r}: the file holds {len(keys)} array(s), the model's layer {count}"
            " (a batch norm with and without scale, or a conv with and without bias?)"
        )
    return [cast(h5py.Dataset, group[k]) for k in keys]  # Keras stores each variable as one


def _check(name: str, what: str, file_shape: tuple, model_shape: tuple) -> None:
    if file_shape != model_shape:
        raise WeightsError(
            f"layer {name!r}: {what} has shape {file_shape} in the file; "
            f"the model needs {model_shape} (Keras layout)"
        )


Slot = tuple[nn.Module, str, torch.Tensor]  # a layer, what Keras calls the tensor, the tensor


def _layer_slots(modules: Sequence[nn.Module]) -> list[Slot]:
    """The tensors of one Keras layer in the order Keras lists its weights: trainable
    ones first. `modules`: the layer's module, or a keras.Sequential's layers in order."""
    slots = [(module, what, tensor) for module in modules for what, tensor in _slots(module)]
    return [s for s in slots if s[1] not in STATISTICS] + [s for s in slots if s[1] in STATISTICS]


def _staged(
    slots: Sequence[Slot], label: str, arrays: Sequence[np.ndarray]
) -> list[tuple[torch.Tensor, np.ndarray]]:
    """Each slot's tensor with its array of a Keras file in torch's layout, after checking
    the file's shape against the model's (`label` names the layer in errors)."""
    staged = []
    for (module, what, tensor), array in zip(slots, arrays):
        expected = _convert(module, what, tensor.detach().cpu().numpy(), False).shape
        _check(label, what, tuple(array.shape), expected)
        staged.append((tensor, _convert(module, what, array, to_torch=True)))
    return staged


def _assign(staged: list[tuple[torch.Tensor, np.ndarray]]) -> None:
    """Copy every staged array into its tensor: only once all of them were checked, so
    that a file that does not fit leaves the model as it was."""
    with torch.no_grad():
        for tensor, array in staged:
            tensor.copy_(torch.from_numpy(np.array(array, order="C")))  # 0-d kept


def load_keras_weights(model: nn.Module, path: str | Path) -> None:
    """Copy every weight and batch-norm statistic of a Keras `.weights.h5` into the model.

    Every layer of the model must be in the file with the same shapes, and
    every weighted layer of the file must be in the model.
    """
    layers = keras_layers(model)
    staged: list[tuple[torch.Tensor, np.ndarray]] = []
    with h5py.File(path, "r") as file:
        groups = vars_groups(file)
        extra = sorted(n for n, g in groups.items() if len(g) and n not in layers)
        if extra:
            raise WeightsError(
                f"the file has weighted layer(s) the model lacks: {', '.join(extra[:5])}"
                + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
            )
        for name, module in layers.items():
            if name not in groups:
                raise WeightsError(f"layer {name!r} of the model is not in {path}")
            slots = _layer_slots([module])
            arrays = _arrays(name, groups[name], len(slots))
            staged += _staged(slots, name, [np.asarray(data) for data in arrays])
    _assign(staged)


def _keras_arrays(module: nn.Module) -> list[tuple[str, np.ndarray]]:
    """One layer's arrays in Keras' layout and order, with what Keras calls each."""
    return [
        (what, _convert(module, what, tensor.detach().cpu().numpy(), to_torch=False))
        for what, tensor in _slots(module)
    ]


def keras_weights(model: nn.Module) -> dict[str, list[np.ndarray]]:
    """Every weighted layer's arrays in Keras' layout and order (what Keras'
    `model.get_layer(name).get_weights()` gives), by Keras name."""
    return {
        name: [array for _, array in _keras_arrays(module)]
        for name, module in keras_layers(model).items()
    }


def save_keras_weights(model: nn.Module, path: str | Path, like: str | Path) -> None:
    """Write the model's weights as a Keras `.weights.h5` laid out like `like`.

    `like` is any weights file Keras saved for the same model (its values are
    not used); the result loads with Keras' `model.load_weights(path)`.
    """
    layers = keras_layers(model)
    with h5py.File(like, "r") as file:
        names = set(vars_groups(file))
    missing = sorted(set(layers) - names)
    if missing:
        raise WeightsError(f"layer {missing[0]!r} of the model is not in {like}")
    tmp = Path(path).with_name(Path(path).name + ".part")
    shutil.copyfile(like, tmp)
    try:
        with h5py.File(tmp, "r+") as file:
            groups = vars_groups(file)
            for name, module in layers.items():
                arrays = _keras_arrays(module)
                for (what, array), data in zip(arrays, _arrays(name, groups[name], len(arrays))):
                    _check(name, what, tuple(data.shape), array.shape)
                    data[...] = array
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


# -- Keras' legacy HDF5 layout (keras.applications' published files) ----------------


def load_keras_legacy_weights(model: nn.Module, path: str | Path, order: Sequence[str]) -> None:
    """Copy a legacy HDF5 file's weights into the model by position, as Keras does: the
    file's i-th weighted layer into the model's i-th in Keras' order (`order`, the
    generated module's KERAS_WEIGHT_ORDER; layers the model lacks, a head built
    without the top, are left out). Layer names in the file are not used: a file
    written by another Keras version has other names for unnamed layers."""
    if not order:
        raise WeightsError(
            "this network's generated module has no Keras layer order (Keras orders its "
            "weighted layers otherwise without the top), so a legacy HDF5 file cannot be "
            "read by position; load a Keras 3 `.weights.h5` file, read by name"
        )
    wanted = _file_layers(model, order)
    saved = legacy_layers(path)
    if len(saved) != len(wanted):
        raise WeightsError(
            f"{path} holds {len(saved)} layers with weights, the model {len(wanted)}"
            " (a file with the top for a model without it, or the reverse?)"
        )
    staged: list[tuple[torch.Tensor, np.ndarray]] = []
    for k, ((saved_name, arrays), (name, modules)) in enumerate(zip(saved, wanted)):
        slots = _layer_slots(modules)
        where = f"#{k} ({saved_name} in the file)"
        if len(arrays) != len(slots):
            raise WeightsError(
                f"layer {name!r} {where}: the file holds {len(arrays)} array(s), "
                f"the model's layer {len(slots)}"
            )
        staged += _staged(slots, f"{name} {where}", arrays)
    _assign(staged)


def _file_layers(model: nn.Module, order: Sequence[str]) -> list[tuple[str, list[nn.Module]]]:
    """The model's weighted layers in `order` as Keras lists them in a legacy file: the
    layers of a keras.Sequential (a module marked `keras_sequential`, its name in Keras)
    as one, which they are in Keras; layers the model lacks (its top) left out."""
    layers = keras_layers(model)
    owner = {
        str(member.keras_name): str(container.keras_sequential)
        for container in model.modules()
        if hasattr(container, "keras_sequential")
        for member in container.modules()
        if hasattr(member, "keras_name")
    }
    found: list[tuple[str, list[nn.Module]]] = []
    for name in (name for name in order if name in layers):
        group = owner.get(name)
        if group is not None and found and found[-1][0] == group:
            found[-1][1].append(layers[name])
        else:
            found.append((group or name, [layers[name]]))
    return found


def load_weights_file(
    model: nn.Module,
    weights: str | Path,
    *,
    spec: str,
    published: Mapping[str, Mapping[str, Any]],
    order: Sequence[str],
    include_top: bool,
) -> None:
    """What a generated builder's `weights=` does with a Keras file or a published name:
    a name the spec publishes is downloaded once and checked (backends.published); a
    `.weights.h5` is read by layer name, a legacy `.h5` by position."""
    path = Path(weights)
    if str(weights).isidentifier():  # a name: one word; a path has a suffix at least
        path, _ = published_file(spec, published, str(weights), include_top)
        load_keras_legacy_weights(model, path, order)  # the one published format
    elif path.name.endswith(".weights.h5"):
        load_keras_weights(model, path)
    else:
        load_keras_legacy_weights(model, path, order)
