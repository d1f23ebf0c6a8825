"""irc as a Python library: a spec as data, a model built from it in memory.

    import irc_cnn

    spec = irc_cnn.load("irc:variants/irv2_small")  # a path, or irc:NAME
    spec.params, spec.macs, spec.min_input, spec.rows, spec.training_memory(32).total
    model = irc_cnn.build("irc:variants/irv2_small", nb_classes=10)  # a keras.Model
    module = irc_cnn.build("my.yaml", "torch")  # an nn.Module
    irc_cnn.specs()  # the shipped specs
    report = irc_cnn.transfer(model, "irc:keras/inception_resnet_v2@imagenet")  # by layer name

docs/python.md (`irc docs python`) describes it. Importing this package imports
nothing more: each name loads its module when first used, PyYAML and Pydantic
with `load`, the framework with `build` or `transfer`.

The package's modules live in the repository's top-level folders (compiler/,
backends/, specs/, docs/), mapped under irc_cnn by pyproject.toml; this
folder holds only this file. irc reads the data folders irc_cnn.specs and
irc_cnn.docs by path, never imports them: an imported `irc_cnn.specs` would
replace the function `irc_cnn.specs` as this module's attribute.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backends.build import build
    from .backends.keras.transfer import transfer
    from .compiler.api import Spec, SpecError, load, specs

_HOMES = {
    "Spec": "compiler.api",
    "SpecError": "compiler.api",
    "build": "backends.build",
    "load": "compiler.api",
    "specs": "compiler.api",
    "transfer": "backends.keras.transfer",
}
__all__ = ["Spec", "SpecError", "build", "load", "specs", "transfer"]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
