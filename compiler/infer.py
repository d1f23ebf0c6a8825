"""Stage 4, infer: the shape, parameter count and cost of every layer.

One walk over the resolved network, in order, from the spec's input shape.
Global rules live here: a residual sum needs equal shapes, a concatenation
equal spatial sizes, a valid-padded window must fit its input. Each tensor
remembers where its channel count was set, so that an error can say that
the 1152 channels of a sum's input come from Reduction-A's concat.

After an error the walk goes on with the best guess (a sum keeps its input's
shape), so one run reports every independent problem; a shape that cannot
be guessed becomes unknown and silences the checks that depend on it.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

from . import ops
from .diagnostics import Diagnostic, Note
from .graph import Graph, Layer, Origin, Shape, SpecPath, Stage, Tensor, window_out
from .resolve import (
    RConcat,
    RDag,
    Resolved,
    RGate,
    RNode,
    ROp,
    RResidual,
    RStage,
    RStep,
    resolve,
)
from .fields import INPUT_CHANNELS, MAX_WINDOW
from .ops.elementwise import KERAS_OPERATION_NAMES, builds_operations

MAX_ELEMENTS = 2**31 - 1  # one tensor's elements: 32-bit indexing in TensorFlow and torch kernels


class _TooSmall(Exception):
    """A probe's input is too small for some window (raised by a probing _Inferrer)."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class _Inferrer:
    def __init__(self, resolved: Resolved, probe: bool = False):
        # probe: only whether the input is large enough; stop at the first size error
        self.probe = probe
        self.probed: dict[tuple, Tensor] = {}
        self.too_large: set[tuple] = set()  # (path, "output" | "weights") reported
        self.spec = resolved.spec
        self.resolved = resolved
        self.layers: list[Layer] = []
        self.diagnostics: list[Diagnostic] = []
        self.stage: RStage | None = None

    # -- bookkeeping --------------------------------------------------------

    def where(self) -> str:
        stage = self.stage
        if stage is None:
            return ""
        if stage.block is None:
            return f" in {stage.name!r}"
        if stage.count > 1:
            return f" in block {stage.block!r} (use {stage.number} of {stage.count})"
        return f" in block {stage.block!r}"

    def error(self, code: str, message: str, path: SpecPath, hint=None, notes=()) -> None:
        diagnostic = Diagnostic(
            code, message + self.where(), hint=hint, notes=tuple(notes), path=path
        )
        if self.probe and code in _SIZE_ERRORS:
            raise _TooSmall(diagnostic)
        self.diagnostics.append(diagnostic)

    def add(
        self,
        name: str,
        kind: str,
        shape: Shape,
        path: SpecPath,
        inputs: tuple[Tensor, ...],
        params=0,
        macs=0,
        origin: Origin | None = None,
        activation: str | None = None,
        inner: int = 0,
    ) -> Tensor:
        """Record a layer (not in a probe); its output keeps the first input's origin unless given one."""
        if not self.probe:
            self.check_size(shape, params, path)
            sources = tuple(t.layer for t in inputs)
            if self.stage is None:
                raise AssertionError(f"layer {name!r} outside every stage")
            stage = self.stage.name
            layer = Layer(name, kind, shape, params, macs, stage, path, sources, activation, inner)
            self.layers.append(layer)
        return Tensor(shape, origin or inputs[0].origin, name)

    def check_size(self, shape: Shape, params: int, path: SpecPath) -> None:
        """A layer a framework can hold: TensorFlow and torch index a tensor with 32-bit
        numbers in many kernels, so one image's output and one layer's weights are each
        at most 2^31 - 1 elements (docs/spec-language.md lists the checks)."""
        elements = math.prod(shape)
        for what, count in (("output", elements), ("weights", params)):
            if count > MAX_ELEMENTS and (path, what) not in self.too_large:
                self.too_large.add((path, what))  # once, not again for its batch norm
                self.error(
                    "IRC309",
                    f"this layer's {what} would hold {count:,} elements"
                    f"{' per image' if what == 'output' else ''}; "
                    f"a framework tensor holds at most {MAX_ELEMENTS:,}",
                    path,
                    hint="use fewer filters, a smaller depth multiplier or a smaller input",
                )

    # -- the walk -----------------------------------------------------------

    def stage_output(self, stage: RStage, x: Tensor, extra: tuple[Tensor, ...] = ()) -> Tensor:
        """A probe walks each network entry once per input shape: the repeats of one
        entry differ only in their layer names, so they give the same shapes."""
        if not self.probe:
            return self.seq(stage.body, x, extra)
        key = (stage.path, stage.role, x.shape, *(t.shape for t in extra))
        if key not in self.probed:
            self.probed[key] = self.seq(stage.body, x, extra)
        return self.probed[key]

    def inputs(self, stage: RStage, outputs: list[Tensor]) -> tuple[Tensor, ...]:
        """The tensors a network entry reads: `from:`'s entries counted back over the
        outputs so far (the network's input first)."""
        if len(outputs) < max(-s for s in stage.sources):
            self.error(
                "IRC408",
                f"`from: {list(stage.sources)}` reads {max(-s for s in stage.sources)} "
                f"entries back, but only {len(outputs)} come before (the input included)",
                (*stage.path, stage.block or "", "from"),
                hint="read -1 (the latest output) where there is no other",
            )
            return tuple(Tensor(None) for _ in stage.sources)
        return tuple(outputs[s] for s in stage.sources)

    def run(self) -> Graph:
        x = Tensor(tuple(self.spec.input), Origin("the network's input", ("input",)))
        features = x
        history = [x]  # the main path's tensor after each network entry
        outputs: list[Shape | None] = []
        aux: list[Shape | None] = []
        stages: list[Stage] = []
        no_top: list[Layer] = []
        for stage in self.resolved.stages:
            self.stage = stage
            first = len(self.layers)
            if stage.role == "no_top":  # built only without the top: counted apart, no stage
                self.stage_output(stage, features)
                no_top += self.layers[first:]
                del self.layers[first:]
                continue
            if stage.role == "aux":
                out = self.stage_output(stage, x)
                aux.append(out.shape)
            elif stage.role == "head":
                out = self.stage_output(stage, x)
                outputs.append(out.shape)
            else:
                main, *extra = self.inputs(stage, history)
                out = self.stage_output(stage, main, tuple(extra))
                x = features = out
                history.append(out)
            mine = self.layers[first:]
            stages.append(
                Stage(
                    stage.name,
                    stage.block,
                    stage.number,
                    stage.count,
                    out.shape or (),
                    sum(layer.params for layer in mine),
                    sum(layer.macs for layer in mine),
                    stage.path,
                    stage.role,
                )
            )
        if not outputs:
            outputs.append(features.shape)
        if not self.layers and not self.probe and not self.diagnostics:
            self.stage = None  # about the whole network, not its last entry
            self.error(
                "IRC308",
                "the network has no layers: it builds nothing",
                ("network",),
                hint="give `network` at least one op or block (an identity is no layer)",
            )
        self.check_names()
        body = {stage.name for stage in stages if stage.role == "body"}
        self.check_no_top_names([layer for layer in self.layers if layer.stage in body], no_top)
        return Graph(
            self.spec,
            tuple(self.spec.input),
            tuple(self.layers),
            tuple(stages),
            features.shape or (),
            tuple(s or () for s in (*outputs, *aux)),
            self.resolved,
            tuple(no_top),
        )

    def seq(self, nodes: tuple[RNode, ...], x: Tensor, extra: tuple[Tensor, ...] = ()) -> Tensor:
        """The sequence on `x`; `extra`: the other inputs of the dag it starts with."""
        for node in nodes:
            if isinstance(node, RDag):
                x, extra = self.dag(node, (x, *extra)), ()
            elif isinstance(node, ROp):
                x = self.op(node, x)
            elif isinstance(node, RConcat):
                x = self.concat(node.name, node.branches, x, node.path)
            elif isinstance(node, RGate):
                x = self.gate(node, x)
            else:
                x = self.residual(node, x)
        return x

    def dag(self, node: RDag, inputs: tuple[Tensor, ...]) -> Tensor:
        tensors = dict(zip(node.inputs, inputs))
        for step in node.steps:
            read = [tensors.get(name, Tensor(None)) for name in step.sources]
            if step.merge == "add":
                out = self.sum(step, read)
            elif step.merge == "concat":
                where = [(*step.path, "concat", i) for i in range(len(read))]
                out = self.join(step.name, read, step.path, where, step.sources)
            else:
                out = self.seq(step.body, read[0], tuple(read[1:]))
            tensors[step.tensor] = out
        return tensors[node.steps[-1].tensor]

    def sum(self, step: RStep, read: list[Tensor]) -> Tensor:
        """A dag's `add:`: one Add layer of tensors of one shape."""
        if any(t.shape is None for t in read):
            return Tensor(None)
        shapes = [t.known_shape for t in read]
        if any(len(shape) != 3 for shape in shapes):
            self.error("IRC306", "add needs feature maps", (*step.path, "add"))
            return Tensor(None)
        if len(set(shapes)) > 1:
            listed = ", ".join(
                f"{name} {'x'.join(map(str, shape))}" for name, shape in zip(step.sources, shapes)
            )
            self.error(
                "IRC302" if len({shape[:2] for shape in shapes}) > 1 else "IRC301",
                f"add {step.tensor!r} sums tensors of different shapes: {listed}",
                (*step.path, "add"),
                hint="give the tensors one size (strides, padding) and one channel count",
                notes=[
                    Note(f"{name} comes from {t.origin.text}", None)
                    for name, t in zip(step.sources, read)
                    if t.origin
                ],
            )
            return Tensor(shapes[0], read[0].origin)
        return self.add(step.name, "add", shapes[0], step.path, tuple(read))

    def gate(self, node: RGate, x: Tensor) -> Tensor:
        g = self.seq(node.branch, x)
        if x.shape is None or g.shape is None:
            return Tensor(None)
        if len(x.shape) != 3 or len(g.shape) != 3:
            self.error("IRC306", "a gate needs feature maps on both sides", node.path)
            return Tensor(None)
        if g.shape[2] != x.shape[2] or g.shape[:2] not in ((1, 1), x.shape[:2]):
            want = f"1x1x{x.shape[2]} or {'x'.join(map(str, x.shape))}"
            self.error(
                "IRC307",
                f"gate multiplies a {'x'.join(map(str, x.shape))} path by a "
                f"{'x'.join(map(str, g.shape))} branch; it needs {want}",
                node.path,
                hint=f"end the gate's branch with {x.shape[2]} filters"
                + (
                    ""
                    if g.shape[:2] in ((1, 1), x.shape[:2])
                    else " and keep its size (or pool it to 1x1)"
                ),
            )
            return Tensor(x.shape, x.origin)
        return self.add(node.name, "multiply", x.shape, node.path, (x, g))

    def concat(self, name: str, branches, x: Tensor, path: SpecPath) -> Tensor:
        outs = [self.seq(branch, x) for branch in branches]
        where = [branch[0].path if branch else path for branch in branches]
        return self.join(name, outs, path, where)

    def join(self, name: str, outs: list[Tensor], path: SpecPath, where: list, labels=()) -> Tensor:
        """A Concatenate of `outs` on channels (`where`: each one's place, for errors;
        `labels`: what to call them, a dag's tensor names, rather than branches b1, b2...)."""
        if any(o.shape is None for o in outs):
            return Tensor(None)
        ranks = {len(o.known_shape) for o in outs}
        if ranks != {3}:
            self.error("IRC306", "concat needs branches that all end in feature maps", path)
            return Tensor(None)
        sizes = [o.known_shape[:2] for o in outs]
        if len(set(sizes)) > 1:
            # The odd one out: the first branch whose size most branches (or the first) lack.
            common = max(sizes, key=lambda size: (sizes.count(size), -sizes.index(size)))
            odd = next(i for i, size in enumerate(sizes) if size != common)
            what = f"tensor {labels[odd]!r} is" if labels else f"branch {odd + 1} ends"
            labels = labels or [f"b{i + 1}" for i in range(len(outs))]
            listed = ", ".join(f"{label} {h}x{w}" for label, (h, w) in zip(labels, sizes))
            self.error(
                "IRC303",
                f"concat {what} at {sizes[odd][0]}x{sizes[odd][1]}, the others "
                f"at {common[0]}x{common[1]} ({listed})",
                where[odd],
                hint="give the branches the same strides and padding, so they end at one size",
            )
            return Tensor(None)
        channels = [o.known_shape[2] for o in outs]
        total = sum(channels)
        text = f"{name!r} ({' + '.join(map(str, channels))} = {total} channels)"
        shape = (*outs[0].known_shape[:2], total)
        return self.add(name, "concat", shape, path, tuple(outs), origin=Origin(text, path))

    def residual(self, node: RResidual, x: Tensor) -> Tensor:
        # Layers in the generated code's order: the shortcut's after the branches' when
        # the sum reads the shortcut last.
        s = x if node.shortcut_last else self.seq(node.shortcut, x)
        if len(node.branches) == 1:
            r = self.seq(node.branches[0], x)
        else:
            r = self.concat(node.part("concat"), node.branches, x, node.path)
        project = node.project
        if project is not None:
            if project.op.filters == INPUT_CHANNELS and x.shape is not None:
                op = project.op.model_copy(update={"filters": x.shape[-1]})
                project = ROp(op, project.name, project.path)
            r = self.op(project, r)
        if node.shortcut_last:
            s = self.seq(node.shortcut, x)
        if s.shape is None or r.shape is None:
            return Tensor(None)
        if len(s.shape) != 3 or len(r.shape) != 3:
            self.error("IRC306", "a residual sum needs feature maps on both sides", node.path)
            return Tensor(None)
        self.sum_mismatch(node, s, r)
        shape = s.shape
        if node.scale is not None and node.scale != 1.0:
            r = self.add(node.part("scale"), "rescale", shape, node.path, (r,))
        operands = (r, s) if node.shortcut_last else (s, r)
        kind = "add_operation" if node.operator else "add"
        out = self.add(node.part("add"), kind, shape, node.path, operands)
        if node.activation:
            name = node.part("activation")
            out = self.add(name, "act", shape, node.path, (out,), activation=node.activation)
        return out

    def projection(self, project: ROp, channels: int) -> str:
        """`380-channel projection (1152 x 0.33 -> 380)`: the arithmetic under a width."""
        written = getattr(written_op(self.spec, project.path), "filters", None)
        if self.spec.width == 1.0 or not isinstance(written, int):
            return f"{channels}-channel projection"
        return f"{channels}-channel projection ({written} x {self.spec.width:g} -> {channels})"

    def projection_hint(self, project: ROp, channels: int) -> str:
        written = written_op(self.spec, project.path)
        if written is None or not hasattr(written, "filters"):
            return f"use {channels} filters, or annotate the paper's value as a deviation"
        fixed = "`" + ops.unparse(written.model_dump() | {"filters": INPUT_CHANNELS}) + "`"
        if self.spec.width != 1.0:
            return (
                f"write {fixed}: as many filters as the residual's input at every width "
                f"(a fixed count is scaled by width {self.spec.width:g} on its own)"
            )
        return (
            f"use {channels} filters or {fixed} (as many as the input), or annotate the "
            "paper's value as a deviation"
        )

    def sum_mismatch(self, node: RResidual, s: Tensor, r: Tensor) -> None:
        """Report a sum of unequal sides, saying which side to change and how."""
        side = "shortcut" if node.shortcut else "input"
        notes = [Note(f"the {side} comes from {s.origin.text}", None)] if s.origin else []
        (sh, sw, sc), (rh, rw, rc) = s.known_shape, r.known_shape
        if node.project is not None:
            where, what = node.project.path, self.projection(node.project, rc)
        else:
            last = node.branches[-1][-1] if len(node.branches) == 1 and node.branches[0] else None
            where = last.path if isinstance(last, ROp) else node.path
            what = f"{rc}-channel result"
        if (sh, sw) != (rh, rw):
            stride = (max(1, math.ceil(sh / rh)), max(1, math.ceil(sw / rw)))
            s_text = f"s{stride[0]}" if stride[0] == stride[1] else f"s{stride[0]}x{stride[1]}"
            fix = (
                f"give the shortcut the branch's stride: `shortcut: conv {rc} 1x1 {s_text} linear`"
                if not node.shortcut and rh <= sh and rw <= sw
                else "give both sides the same strides and padding"
            )
            self.error(
                "IRC302",
                f"residual sum adds a {rh}x{rw} {'projection' if node.project else 'result'} "
                f"to a {sh}x{sw} {side}",
                where,
                hint=f"{fix}; or keep the branches at the {side}'s size (stride 1, same padding)",
                notes=notes,
            )
        elif sc != rc:
            if node.shortcut:
                hint = f"use {sc} filters here, or make the shortcut end with {rc} channels"
            elif node.project is not None:  # the projection is what to change
                hint = self.projection_hint(node.project, sc)
            else:
                hint = (
                    f"project the shortcut to {rc} channels (`shortcut: conv {rc} 1x1 linear`), "
                    f"or end the branch with {sc} filters"
                )
            self.error(
                "IRC301",
                f"residual sum adds a {what} to a {sc}-channel {side}",
                (*where, "filters") if where is not node.path else where,
                hint=hint,
                notes=notes,
            )

    def op(self, rop: ROp, x: Tensor) -> Tensor:
        op, path = rop.op, rop.path
        if x.shape is None:
            return x
        definition = ops.REGISTRY[op.kind]
        if definition.feature_map and len(x.shape) != 3:
            self.error(
                "IRC306",
                f"{op.kind} needs a feature map but gets a flat vector of {x.shape[0]}",
                path,
                hint="move it before `flatten`/`gap`",
            )
            return Tensor(None)
        return definition.infer(self, op, rop.name, path, x)

    def window(self, window, strides, padding, shape, path, what, field) -> tuple[int, int] | None:
        """The output's height and width under a window (`field`: the op's field that
        holds it, where a too-large window is reported)."""
        out = []
        for axis, size, k, s in zip(("height", "width"), shape[:2], window, strides):
            if padding == "valid" and k > size:
                self.error(
                    "IRC304",
                    f"{what} {window[0]}x{window[1]} is larger than its "
                    f"{shape[0]}x{shape[1]} input under valid padding",
                    (*path, field),
                    hint="use `same` padding, a smaller window, or a larger input",
                )
                return None
            if s > size > 1:
                self.error(
                    "IRC305",
                    f"stride {s} is larger than the input's {axis} of {size}: "
                    f"the op would skip rows and leave a {axis} of 1",
                    (*path, "strides"),
                    hint="drop the stride or move this op before the last reduction",
                )
                return None
            out.append(window_out(size, k, s, padding))
        return out[0], out[1]

    def check_names(self) -> None:
        seen: dict[str, Layer] = {}
        operations = any(
            builds_operations(written_op(self.spec, layer.path), self.spec, layer.activation)
            for layer in self.layers
        )
        for layer in self.layers:
            if operations and KERAS_OPERATION_NAMES.fullmatch(layer.name):
                self.diagnostics.append(
                    Diagnostic(
                        "IRC405",
                        f"a layer named {layer.name!r} would take the name Keras gives the "
                        "operations of hard_sigmoid's ReLU form (add, add_1, ..., multiply, ...)",
                        hint="name the layer otherwise (`@...`), or give the hard_sigmoid "
                        "`layer: Activation`",
                        path=layer.path,
                    )
                )
            if layer.name in seen:
                self.diagnostics.append(
                    Diagnostic(
                        "IRC405",
                        f"two layers would both be named {layer.name!r}",
                        hint="rename one of the blocks, or reorder the ops so their names differ",
                        path=layer.path,
                    )
                )
            seen[layer.name] = layer
        if any(layer.kind == "add_operation" for layer in self.layers):
            for layer in self.layers:
                if layer.kind != "add_operation" and KERAS_ADD_NAME.fullmatch(layer.name):
                    self.diagnostics.append(
                        Diagnostic(
                            "IRC405",
                            f"a layer named {layer.name!r} may clash with a sum by Keras' `+`, "
                            "which Keras names add, add_1, add_2, ... (sum: operator)",
                            hint="give this layer another name",
                            path=layer.path,
                        )
                    )

    def check_no_top_names(self, body: list[Layer], no_top: list[Layer]) -> None:
        """The `no_top:` layers' names, unique in the model built without the top (the
        body's layers and theirs: the head and auxiliary heads are not built then)."""
        seen = {layer.name for layer in body}
        for layer in no_top:
            if layer.name in seen:
                self.diagnostics.append(
                    Diagnostic(
                        "IRC405",
                        f"without the top, two layers would both be named {layer.name!r}",
                        hint="name this `no_top:` layer otherwise (`@...`)",
                        path=layer.path,
                    )
                )
            seen.add(layer.name)


# The names Keras gives its `+` operations, which must be unique among a model's layers.
KERAS_ADD_NAME = re.compile(r"add(_\d+)?")


def written_op(spec, path: SpecPath):
    """The op as the spec writes it at `path` (before parameters, defaults and width)."""
    node = spec
    for segment in path:
        if isinstance(node, (list, tuple, dict)):
            items: Any = node  # a str index into a list: the TypeError below
            try:
                node = items[segment]
            except (IndexError, KeyError, TypeError):
                return None
        elif segment != getattr(node, "kind", None):  # a union tag (`residual`) is no field
            node = getattr(node, str(segment), None)
    return node


def dedupe(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """One diagnostic per spec place: a bad block repeated 20 times is one error."""
    first: dict[tuple, Diagnostic] = {}
    extra: dict[tuple, int] = {}
    for diag in diagnostics:
        key = (diag.code, diag.path)
        if key in first:
            extra[key] += 1
        else:
            first[key], extra[key] = diag, 0
    out = []
    for key, diag in first.items():
        if extra[key]:
            diag = diag.with_note(
                Note(f"the same problem occurs {extra[key]} more time(s) in later uses")
            )
        out.append(diag)
    return out


def infer(
    resolved_and_diagnostics: tuple[Resolved, list[Diagnostic]],
) -> tuple[Graph | None, list[Diagnostic]]:
    """The graph and every diagnostic; an input too small for the network says its minimum."""
    resolved, diagnostics = resolved_and_diagnostics
    if any(d.severity == "error" for d in diagnostics) or not resolved.stages:
        return None, dedupe(diagnostics)
    inferrer = _Inferrer(resolved)
    graph = inferrer.run()
    found = dedupe(diagnostics + inferrer.diagnostics)
    sized = [i for i, d in enumerate(found) if d.code in _SIZE_ERRORS]
    if sized and (note := _minimum_note(resolved.spec)) is not None:
        found[sized[0]] = found[sized[0]].with_note(note)
    return graph, found


_SIZE_ERRORS = {"IRC303", "IRC304", "IRC305", "IRC302"}


def _size_error(resolved: Resolved, size: int) -> Diagnostic | None:
    """The first size error of a resolved network at a square input of this size, if any.

    Resolving does not look at the input, so a network is resolved once and
    inferred at each size tried.
    """
    spec = resolved.spec
    sized = replace(resolved, spec=spec.model_copy(update={"input": (size, size, spec.input[2])}))
    try:
        _Inferrer(sized, probe=True).run()
    except _TooSmall as exc:
        return exc.diagnostic
    return None


def fits(resolved: tuple[Resolved, list[Diagnostic]], size: int) -> bool:
    """Whether a resolved network builds at a square input of this size."""
    network, diagnostics = resolved
    if any(d.severity == "error" for d in diagnostics) or not network.stages:
        return False
    return _size_error(network, size) is None


def _minimum_note(spec) -> Note | None:
    """What the smallest input is, and which layer stops a smaller one."""
    smallest = minimum_input(spec)
    if smallest is None or smallest <= min(spec.input[:2]):
        return None  # the input is large enough: a spec error, not a size
    limit = _size_error(resolve(spec)[0], smallest - 1)
    if limit is None:
        return None
    where = ".".join(map(str, limit.path))
    return Note(
        f"the smallest square input this network accepts is {smallest}x{smallest} "
        f"(--input {smallest}); `{where}` sets it: at {smallest - 1}x{smallest - 1}, "
        f"{limit.message}"
    )


def without_top(spec):
    """The spec as built with include_top=False: no head, no auxiliary heads."""
    network = [node for node in spec.network if node.kind != "aux"]
    return spec.model_copy(update={"head": [], "network": network, "no_top": []})


def minimum_input(
    spec, above: bool = True, graph: Graph | None = None, include_top: bool = True
) -> int | None:
    """The smallest square input at which every valid-padded window still fits.

    Found by bisection, assuming that a network that fits at some size fits
    at every larger one; between 1 and the spec's own input size, or above it
    (doubling, up to the largest input a spec may give) when that is too
    small (`above`; a builder's guard leaves that out: a non-square input that
    builds may be narrower than the smallest square one). None when no size fits.
    `graph`: the spec's inferred graph, whose resolved network is probed instead of
    resolving the spec again; `include_top=False` probes without the head and the
    auxiliary heads, as `without_top(spec)` builds.
    """
    if graph is not None and graph.resolved is not None:
        resolved = (graph.resolved, [])
    else:
        resolved = resolve(spec)
    if not include_top:
        body = tuple(stage for stage in resolved[0].stages if stage.role == "body")
        resolved = (replace(resolved[0], stages=body), resolved[1])
    low, high = 1, min(spec.input[:2])
    if fits(resolved, low):
        return low
    while not fits(resolved, high):
        if high >= MAX_WINDOW or not above:
            return None
        low, high = high, min(2 * high, MAX_WINDOW)
    while high - low > 1:  # invariant: low does not fit, high fits
        mid = (low + high) // 2
        low, high = (low, mid) if fits(resolved, mid) else (mid, high)
    return high
