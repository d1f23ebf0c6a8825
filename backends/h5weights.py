"""Reading Keras weights files with h5py alone, no Keras and no TensorFlow.

Two layouts: Keras 3's `.weights.h5` (each layer's variables under
`layers/<path>/vars/<i>`, the `vars` group naming its layer in a `name`
attribute) and the legacy HDF5 layout of Keras 2 and keras.applications'
published files (`layer_names` in order, each layer's `weight_names`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import h5py
import numpy as np


def _strings(values: Iterable[Any]) -> list[str]:
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _attribute_list(group: h5py.Group, name: str) -> list[str]:
    """A list attribute of a legacy file, which Keras splits into `name0`, `name1`, ...
    when it is longer than HDF5's attribute limit."""
    if name in group.attrs:
        return _strings(cast(Iterable[Any], group.attrs[name]))
    values: list[str] = []
    chunk = 0
    while f"{name}{chunk}" in group.attrs:
        values += _strings(cast(Iterable[Any], group.attrs[f"{name}{chunk}"]))
        chunk += 1
    return values


def legacy_layers(path: str | Path) -> list[tuple[str, list[np.ndarray]]]:
    """The weighted layers of a legacy HDF5 weights file, in the file's (Keras') order:
    each layer's name in the file and its arrays in Keras' variable order."""
    out: list[tuple[str, list[np.ndarray]]] = []
    with h5py.File(path, "r") as file:
        group = cast(h5py.Group, file["model_weights"] if "model_weights" in file else file)
        for name in _attribute_list(group, "layer_names"):
            layer = cast(h5py.Group, group[name])
            weights = _attribute_list(layer, "weight_names")
            if weights:
                out.append((name, [np.asarray(layer[w]) for w in weights]))
    return out


def vars_groups(file: h5py.File) -> dict[str, h5py.Group]:
    """A Keras 3 `.weights.h5` file's `vars` groups by their layer's name (the group's
    `name` attribute): the one reader of that layout, for transfer and for torch."""
    out: dict[str, h5py.Group] = {}

    def visit(path: str, obj: Any) -> None:
        if isinstance(obj, h5py.Group) and path.endswith("/vars") and "name" in obj.attrs:
            out[str(obj.attrs["name"])] = obj

    file.visititems(visit)
    return out


def named_weights(path: str | Path) -> dict[str, list[np.ndarray]]:
    """A weights file's arrays by layer name, in either layout (`.weights.h5`: Keras 3)."""
    if not str(path).endswith(".weights.h5"):
        return dict(legacy_layers(path))
    with h5py.File(path, "r") as file:
        return {
            name: [np.asarray(group[k]) for k in sorted(group, key=int)]
            for name, group in vars_groups(file).items()
            if len(group)
        }
