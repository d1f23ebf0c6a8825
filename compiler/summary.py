"""`irc summary`: a spec's cost, stage by stage, read off the inferred graph.

One row per network entry (a block used ten times in a row is one row,
`resnet_a x10`), or per block use with `expand`; each with its output shape,
parameters, multiply-accumulates and their share of the total, and the
activation memory of its layers. Below the table: the totals, the smallest
square input the network accepts (compiler.infer.minimum_input, with and
without the top) and the activation memory of one image; with a training
setup, the memory one training step needs (compiler.memory) and the largest
batch that fits a memory size.

Several specs make one comparison table instead: a row per spec with its
totals and each one's change against the first spec.

FLOPs are counted as 2 x multiply-accumulates (a multiply and an add), the
convention of most papers' and tools' FLOP figures; pooling, batch norm,
activations and sums are not counted in either.

Activation memory is defined once, here, and quoted by `irc summary --help`
and docs/summary-and-plot.md: the sum, over every layer the generated model
creates (each conv, batch norm, activation, pool, concatenation, rescaling,
sum, dropout, flatten and dense layer; the input image not counted), of the
number of elements of its output, times 4 bytes (float32), for one image.
That is what a forward pass holds if it keeps every layer's output, as
training does for backpropagation, before any framework fuses layers or
works in place; inference that frees each tensor once it is used needs
much less.

No framework is imported: this is the static analysis `irc check` runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .graph import Graph, Shape, Stage
from .infer import minimum_input
from .memory import Training, TrainingMemory, training_memory

BYTES_PER_ELEMENT = 4  # float32

ACTIVATION_MEMORY = (
    "the float32 outputs of every layer the generated model creates (convolutions, batch "
    "norms, activations, pools, concatenations, rescalings, sums, dropout, flatten, dense; "
    "not the input image) for one image, summed: what a forward pass holds if it keeps "
    "every layer's output, as training does for backpropagation"
)


@dataclass(frozen=True)
class Row:
    """One network entry (its repeats together) or, expanded, one block use."""

    name: str  # the block of a repeated entry (`resnet_a`), else the stage (`stem`, `block8_10`)
    stages: tuple[str, ...]  # the stage names it covers
    block: str | None
    role: str  # "body", "aux" or "head"
    shape: Shape  # the output of its last stage
    params: int
    macs: int
    activation_bytes: int

    @property
    def uses(self) -> int:
        return len(self.stages)


@dataclass(frozen=True)
class Summary:
    file: str
    name: str
    title: str
    input: Shape
    outputs: tuple[Shape, ...]
    rows: tuple[Row, ...]
    params: int
    params_without_top: int
    macs: int
    activation_bytes: int
    largest_activation: tuple[str, Shape]  # the layer with the largest output
    # None where no size fits (never for a spec that passed the check)
    min_input: int | None  # smallest square input, as built by default (with the top)
    min_input_without_top: int | None  # the same with include_top=False
    training: TrainingMemory | None = None  # with a training setup (--batch)
    memory_limit: int | None = None  # bytes (--memory): the largest batch that fits

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def share(self, row: Row, what: str) -> float:
        total = getattr(self, what)
        return getattr(row, what) / total if total else 0.0


def elements(shape: Shape) -> int:
    return math.prod(shape)


def summarize(
    graph: Graph,
    file: str,
    expand: bool = False,
    training: Training | None = None,
    memory_limit: int | None = None,
) -> Summary:
    spec = graph.spec
    memory: dict[str, int] = {}
    for layer in graph.layers:
        memory[layer.stage] = memory.get(layer.stage, 0) + elements(layer.shape) * BYTES_PER_ELEMENT
    groups: list[list[Stage]] = []
    for stage in graph.stages:
        last = groups[-1][-1] if groups else None
        if not expand and last is not None and (last.path, last.role) == (stage.path, stage.role):
            groups[-1].append(stage)
        else:
            groups.append([stage])
    rows = tuple(_row(group, memory, expand) for group in groups)
    largest = max(graph.layers, key=lambda layer: elements(layer.shape))
    return Summary(
        file=file,
        name=spec.name,
        title=spec.title,
        input=graph.input,
        outputs=graph.outputs,
        rows=rows,
        params=graph.params,
        params_without_top=graph.params_without_top(),
        macs=graph.macs,
        activation_bytes=sum(memory.values()),
        largest_activation=(largest.name, largest.shape),
        min_input=minimum_input(spec, graph=graph),
        min_input_without_top=minimum_input(spec, graph=graph, include_top=False),
        training=training_memory(graph, training) if training else None,
        memory_limit=memory_limit,
    )


def _row(group: list[Stage], memory: dict[str, int], expand: bool) -> Row:
    first = group[0]
    name = (first.block if len(group) > 1 else None) or first.name
    return Row(
        name=name,
        stages=tuple(s.name for s in group),
        block=first.block,
        role=first.role,
        shape=group[-1].shape,
        params=sum(s.params for s in group),
        macs=sum(s.macs for s in group),
        activation_bytes=sum(memory.get(s.name, 0) for s in group),
    )


# -- rendering ------------------------------------------------------------------------


def shape_text(shape: Shape) -> str:
    return "x".join(map(str, shape))


def si(count: float, unit: str = "") -> str:
    """2.29 G, 606.40 k: three significant figures or more, SI prefixes."""
    for prefix, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= size:
            return f"{count / size:.2f} {prefix}{unit}"
    return f"{count:.0f} {unit}".rstrip()


def mib(count: int) -> str:
    """Bytes in MiB (2**20), or KiB below a tenth of one."""
    if count < 2**20 / 10:
        return f"{count / 2**10:,.1f} KiB"
    return f"{count / 2**20:,.1f} MiB"


def percent(share: float) -> str:
    return f"{100 * share:.1f}%"


_HEADERS = ("stage", "uses", "output", "parameters", "%", "mult-adds", "%", "activations")
_ALIGN = "<><>>>>>"  # per column: < left, > right


def _cells(summary: Summary) -> list[tuple[str, ...]]:
    rows = []
    for row in summary.rows:
        label = f"{row.name} (aux)" if row.role == "aux" else row.name
        rows.append(
            (
                label,
                f"x{row.uses}" if row.uses > 1 else "",
                shape_text(row.shape),
                f"{row.params:,}",
                percent(summary.share(row, "params")),
                si(row.macs),
                percent(summary.share(row, "macs")),
                mib(row.activation_bytes),
            )
        )
    rows.append(
        (
            "total",
            "",
            "",
            f"{summary.params:,}",
            "100.0%",
            si(summary.macs),
            "100.0%",
            mib(summary.activation_bytes),
        )
    )
    return rows


def gib(count: int) -> str:
    """Bytes in GiB (2**30), or MiB below one."""
    return f"{count / 2**30:,.2f} GiB" if count >= 2**30 else mib(count)


# What the training-memory figure follows, printed under it: the two frameworks keep
# different gradients and activations (compiler/memory.py)
COUNTED_FOR = {
    "jax": "counted for Keras on JAX under XLA, which applies each weight's update as soon as "
    "its gradient exists (one layer's gradient alive at a time); --framework torch counts "
    "PyTorch's step",
    "torch": "counted for PyTorch, which keeps every weight's .grad until the optimizer steps "
    "and saves what each op's backward reads; --framework jax counts Keras under XLA",
}


def _training_lines(summary: Summary) -> list[str]:
    memory = summary.training
    if memory is None:
        return []
    setup = memory.training
    parts = memory.to_json()
    lines = [
        (
            f"training memory at batch {setup.batch} ({setup.dtype}, {setup.optimizer}, "
            f"{setup.framework}): {gib(memory.total)} = weights {gib(parts['weights'])} + "
            f"gradients {gib(parts['gradients'])} + optimizer state "
            f"{gib(parts['optimizer_state'])} + activations kept for backward "
            f"{gib(parts['activations'])}"
        ),
        COUNTED_FOR[setup.framework],
    ]
    if summary.memory_limit is not None:
        largest = memory.largest_batch(summary.memory_limit)
        lines.append(
            f"largest batch that fits {gib(summary.memory_limit)}: {largest}"
            + (" (not even one image)" if largest == 0 else "")
        )
    return lines


def _footer(summary: Summary) -> list[str]:
    outputs = ", ".join(shape_text(s) for s in summary.outputs)
    largest, shape = summary.largest_activation
    return [
        f"parameters: {summary.params:,} ({summary.params_without_top:,} without the top)",
        (
            f"multiply-accumulates: {summary.macs:,} ({si(summary.macs)}) at "
            f"{shape_text(summary.input)}; FLOPs (2 x multiply-accumulates): {si(summary.flops)}"
        ),
        f"outputs: {outputs}",
        (
            f"minimum input: {summary.min_input}x{summary.min_input} "
            f"({summary.min_input_without_top}x{summary.min_input_without_top} without the top)"
        ),
        (
            f"activation memory: {mib(summary.activation_bytes)} "
            f"({summary.activation_bytes:,} bytes) for one image in float32, every layer's "
            f"output kept; the largest is {largest!r} ({shape_text(shape)}, "
            f"{mib(elements(shape) * BYTES_PER_ELEMENT)})"
        ),
        *_training_lines(summary),
    ]


def render_text(summary: Summary) -> str:
    table = [_HEADERS, *_cells(summary)]
    widths = [max(len(row[i]) for row in table) for i in range(len(_HEADERS))]

    def line(row: tuple[str, ...]) -> str:
        cells = [c.ljust(w) if a == "<" else c.rjust(w) for c, w, a in zip(row, widths, _ALIGN)]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(r) for r in table[1:]]
    lines = [
        f"{summary.file}: {summary.title} ({summary.name}), input {shape_text(summary.input)}",
        "",
        line(table[0]),
        rule,
        *body[:-1],
        rule,
        body[-1],
        "",
        *_footer(summary),
    ]
    return "\n".join(lines) + "\n"


def _code(label: str) -> str:
    """`resnet_a`, or `aux_head` (aux): names as code, the role as text."""
    name, _, role = label.partition(" ")
    return f"`{name}` {role}".rstrip()


def render_markdown(summary: Summary) -> str:
    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"

    *rows, total = _cells(summary)
    rows = [(_code(row[0]), *row[1:]) for row in rows]
    total = tuple(f"**{c}**" if c else c for c in total)
    lines = [
        f"### {summary.title} (`{summary.file}`)",
        "",
        line(_HEADERS),
        "|" + "|".join("---" if a == "<" else "---:" for a in _ALIGN) + "|",
        *(line(row) for row in (*rows, total)),
        "",
        *(f"- {text}" for text in _footer(summary)),
    ]
    return "\n".join(lines) + "\n"


def to_json(summary: Summary) -> dict:
    return {
        "file": summary.file,
        "name": summary.name,
        "title": summary.title,
        "input": list(summary.input),
        "outputs": [list(s) for s in summary.outputs],
        "rows": [
            {
                "name": row.name,
                "stages": list(row.stages),
                "block": row.block,
                "role": row.role,
                "uses": row.uses,
                "output": list(row.shape),
                "params": row.params,
                "params_share": round(summary.share(row, "params"), 6),
                "macs": row.macs,
                "macs_share": round(summary.share(row, "macs"), 6),
                "activation_bytes": row.activation_bytes,
            }
            for row in summary.rows
        ],
        "params": summary.params,
        "params_without_top": summary.params_without_top,
        "macs": summary.macs,
        "flops": summary.flops,
        "min_input": summary.min_input,
        "min_input_without_top": summary.min_input_without_top,
        "activation_bytes": summary.activation_bytes,
        "activation_memory": ACTIVATION_MEMORY,
        "largest_activation": {
            "layer": summary.largest_activation[0],
            "shape": list(summary.largest_activation[1]),
        },
        **_training_json(summary),
    }


def _training_json(summary: Summary) -> dict:
    if summary.training is None:
        return {}
    data: dict[str, Any] = {"training_memory_bytes": summary.training.to_json()}
    if summary.memory_limit is not None:
        data["memory_limit_bytes"] = summary.memory_limit
        data["largest_batch"] = summary.training.largest_batch(summary.memory_limit)
    return data


# -- several specs: one comparison table ----------------------------------------------

# (header, the number compared against the first spec, or None)
_COMPARED = ("params", "macs", "activation_bytes", "training_total")


def _number(summary: Summary, what: str) -> int | None:
    if what == "training_total":
        return summary.training.total if summary.training else None
    return getattr(summary, what)


def change(summary: Summary, first: Summary, what: str) -> float | None:
    """The relative change of one total against the first spec's (-0.43: 43% less)."""
    mine, theirs = _number(summary, what), _number(first, what)
    if mine is None or not theirs:
        return None
    return mine / theirs - 1


def _signed(value: float | None) -> str:
    return "" if value is None else f"{100 * value:+.1f}%"


def _comparison_cells(summaries: list[Summary]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    first = summaries[0]
    training = first.training is not None
    headers = (
        "spec",
        "input",
        "parameters",
        "%",
        "mult-adds",
        "%",
        "FLOPs",
        "outputs",
        "min input",
        "activations",
        "%",
        *(("training", "%") if training else ()),
    )
    rows = []
    for summary in summaries:
        pct = {
            what: _signed(change(summary, first, what)) if summary is not first else ""
            for what in _COMPARED
        }
        rows.append(
            (
                summary.file,
                shape_text(summary.input),
                f"{summary.params:,}",
                pct["params"],
                si(summary.macs),
                pct["macs"],
                si(summary.flops),
                ", ".join(shape_text(s) for s in summary.outputs),
                f"{summary.min_input}x{summary.min_input}",
                mib(summary.activation_bytes),
                pct["activation_bytes"],
                *((gib(summary.training.total), pct["training_total"]) if summary.training else ()),
            )
        )
    return headers, rows


_COMPARISON_ALIGN = "<<>>>>><>>>>>"


def _comparison_notes(summaries: list[Summary]) -> list[str]:
    first = summaries[0]
    notes = [
        f"% is the change against the first spec, {first.file}; FLOPs = 2 x mult-adds; "
        "activations: every layer's float32 output for one image"
    ]
    if first.training is not None:
        setup = first.training.training
        notes.append(
            f"training: one step's memory at batch {setup.batch} ({setup.dtype}, "
            f"{setup.optimizer}, {setup.framework}), counted as docs/summary-and-plot.md says"
        )
    if first.memory_limit is not None:
        fits = ", ".join(
            f"{s.file} {s.training.largest_batch(s.memory_limit)}"
            for s in summaries
            if s.training and s.memory_limit is not None  # all, as they share the command's
        )
        notes.append(f"largest batch that fits {gib(first.memory_limit)}: {fits}")
    return notes


def render_comparison_text(summaries: list[Summary]) -> str:
    headers, rows = _comparison_cells(summaries)
    table = [headers, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            c.ljust(w) if a == "<" else c.rjust(w)
            for c, w, a in zip(row, widths, _COMPARISON_ALIGN)
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [line(headers), rule, *(line(r) for r in rows), "", *_comparison_notes(summaries)]
    return "\n".join(lines) + "\n"


def render_comparison_markdown(summaries: list[Summary]) -> str:
    headers, rows = _comparison_cells(summaries)

    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"

    rows = [(f"`{row[0]}`", *row[1:]) for row in rows]
    lines = [
        line(headers),
        "|"
        + "|".join("---" if a == "<" else "---:" for a in _COMPARISON_ALIGN[: len(headers)])
        + "|",
        *(line(row) for row in rows),
        "",
        *(f"- {text}" for text in _comparison_notes(summaries)),
    ]
    return "\n".join(lines) + "\n"


def comparison_json(summaries: list[Summary]) -> list[dict]:
    """Each spec's summary, with its change against the first spec (absent for the first)."""
    first = summaries[0]
    out = []
    for summary in summaries:
        data = to_json(summary)
        if summary is not first:
            data["change_against_first"] = {
                what: round(value, 6)
                for what in _COMPARED
                if (value := change(summary, first, what)) is not None
            }
        out.append(data)
    return out
