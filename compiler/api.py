"""The Python API's spec side: a checked spec as data, and the shipped specs.

`irc_cnn.load` and `irc_cnn.specs` live here; `irc_cnn.build` (which runs a
framework) lives in backends/build.py. What a spec reports is what `irc check`
and `irc summary` print, computed by the same code (compiler.summary and
compiler.memory), so a notebook and the command line cannot disagree.

Importing this module imports neither PyYAML nor Pydantic; `load` does.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from .diagnostics import Diagnostic, render_text
from .shipped import SHIPPED_PREFIX, shipped_names

if TYPE_CHECKING:
    from .graph import Shape
    from .memory import TrainingMemory
    from .pipeline import Result
    from .summary import Row, Summary


class SpecError(ValueError):
    """A spec with errors (or a `set` argument that cannot be applied).

    `diagnostics` holds every problem found, each with its code, message and
    position (`d.code`, `d.message`, `d.span.file`, `d.span.line`,
    `d.span.column`); str() is what `irc check` prints for them.
    """

    def __init__(self, file: str, diagnostics: Sequence[Diagnostic], text: str) -> None:
        super().__init__(text)
        self.file = file
        self.diagnostics = tuple(diagnostics)


@dataclass(frozen=True)
class Spec:
    """A checked spec: its name and outputs, its cost, and the rows of `irc summary`."""

    file: str  # as diagnostics name it: the path given, or irc:NAME
    name: str
    title: str
    input: Shape  # (height, width, channels)
    outputs: tuple[Shape, ...]  # the main output first, then auxiliary heads
    params: int  # every weight, as keras' count_params() counts them
    params_without_top: int
    macs: int  # multiply-accumulates of one image
    min_input: int  # the smallest square input the network accepts
    min_input_without_top: int
    activation_bytes: int  # every layer's float32 output for one image
    rows: tuple[Row, ...] = field(repr=False)  # irc summary's rows: one per network entry
    summary: Summary = field(repr=False, compare=False)
    result: Result = field(repr=False, compare=False)  # the pipeline's, for backends

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def training_memory(
        self,
        batch: int = 1,
        dtype: str = "float32",
        optimizer: str = "momentum",
        framework: str = "jax",
    ) -> TrainingMemory:
        """Bytes one training step needs (`irc summary --batch`): weights, gradients,
        optimizer state, activations; `.total`, `.largest_batch(memory)`. `framework`:
        whose step, jax (Keras under XLA) or torch (PyTorch)."""
        from .memory import DTYPES, FRAMEWORKS, OPTIMIZER_SLOTS, Training, training_memory

        _choose("dtype", dtype, DTYPES)
        _choose("optimizer", optimizer, OPTIMIZER_SLOTS)
        _choose("framework", framework, FRAMEWORKS)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive whole number, got {batch!r}")
        setup = Training(batch, dtype, optimizer, framework)
        return training_memory(self.result.graph, setup)

    def table(self, expand: bool = False) -> str:
        """The table `irc summary` prints (`expand`: one row per block use)."""
        from .summary import render_text, summarize

        table = summarize(self.result.graph, self.file, expand) if expand else self.summary
        return render_text(table)


def _choose(what: str, value: str, choices: Collection[str]) -> None:
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(choices)}; got {value!r}")


def overrides(set: Sequence[str] | str) -> tuple[str, ...]:
    """The `set` argument as `--set` arguments: one string is one argument, not its letters."""
    return (set,) if isinstance(set, str) else tuple(set)


def check(spec: str | Path, scale: str | None = None, set: Sequence[str] = ()) -> Result:
    """The pipeline's result for a path or `irc:NAME`; SpecError unless it is valid."""
    from .pipeline import check_file

    spec = spec if isinstance(spec, Path) else str(spec)
    result = check_file(spec, sets=overrides(set), scale=scale)
    if not result.ok:
        text = "\n".join(render_text(d, result.lines) for d in result.diagnostics)
        raise SpecError(result.file, result.diagnostics, text)
    return result


def load(spec: str | Path, *, scale: str | None = None, set: Sequence[str] = ()) -> Spec:
    """Check a spec (a path, or `irc:NAME` for a shipped one) as `irc check` does and
    return it as data; `scale` is a `scales:` preset, `set` holds `--set PATH=VALUE`
    overrides. Raises SpecError, carrying every diagnostic, for an invalid spec."""
    from .summary import summarize

    result = check(spec, scale, set)
    table = summarize(result.graph, result.file)
    # Every compared field is the Summary's own, under the same name.
    numbers = {f.name: getattr(table, f.name) for f in fields(Spec) if f.compare}
    return Spec(**numbers, summary=table, result=result)


def specs() -> list[str]:
    """The shipped specs, as `irc:NAME` (what `irc specs` lists, and `load` takes)."""
    return [SHIPPED_PREFIX + name for name in shipped_names()]
