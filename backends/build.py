"""`irc_cnn.build`: a model straight from a spec, in memory.

The module is the very text `irc compile` writes (the backend's `render`,
with the same output folder and `--set` arguments), executed into a fresh
module object instead of a file: nothing is written, and the model is the
one importing generated/ would give, layer names included. The framework is
imported by that module, when `build` runs it.
"""

from __future__ import annotations

import linecache
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from ..compiler.api import check, overrides
from . import output

if TYPE_CHECKING:
    import keras
    from torch import nn

    from ..compiler.pipeline import Result

BACKENDS = ("keras", "torch")


@overload
def build(
    spec: str | Path,
    backend: Literal["keras"] = ...,
    *,
    scale: str | None = ...,
    set: Sequence[str] = ...,
    **builder_kwargs: Any,
) -> keras.Model: ...
@overload
def build(
    spec: str | Path,
    backend: Literal["torch"],
    *,
    scale: str | None = ...,
    set: Sequence[str] = ...,
    **builder_kwargs: Any,
) -> nn.Module: ...
def build(
    spec: str | Path,
    backend: str = "keras",
    *,
    scale: str | None = None,
    set: Sequence[str] = (),
    **builder_kwargs: Any,
) -> Any:
    """Check a spec (a path, or `irc:NAME`), generate its module for `backend` and
    call the builder with `builder_kwargs` (nb_classes, include_top, weights, ...):
    a keras.Model, or a torch nn.Module. Raises irc_cnn.SpecError for an invalid
    spec, ValueError for an unknown backend."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    result = check(spec, scale, set)
    return generated_builder(result, backend, overrides(set))(**builder_kwargs)


def generated_builder(result: Result, backend: str, sets: Sequence[str]) -> Callable[..., Any]:
    """The builder of the module `irc compile --backend BACKEND` writes for a valid
    spec, its text executed into a fresh module object."""
    if backend == "keras":
        from .keras.emit import render
    else:
        from .torch.emit import render
    spec = result.spec
    assert spec is not None  # a valid spec's result
    name = spec.name
    text = render(result, Path(output.DEFAULT_OUT), sets)[f"{name}.py"]
    # A traceback through the model's code shows its lines, as it would from the file.
    origin = f"<irc: {backend} module of {result.file}>"
    linecache.cache[origin] = (len(text), None, text.splitlines(keepends=True), origin)
    module = types.ModuleType(name)
    exec(compile(text, origin, "exec"), module.__dict__)  # irc's own output, as compile writes it
    return getattr(module, spec.builder.name)
