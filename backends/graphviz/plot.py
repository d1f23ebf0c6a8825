"""Diagrams of a checked spec, drawn like the paper's figures, as DOT text.

Two views of a pipeline Result:

- `network(result)`: one box per network entry (a block used 20 times in a
  row is one box, `resnet_b x20`), the input at the bottom and the
  classifier at the top as in the paper's Figure 15, every edge labelled
  with the tensor shape it carries, auxiliary heads off to the side, and in
  each box the channel arithmetic of every concatenation, residual sum and
  gate inside it (`concat 384 + 384 + 384 = 1152`).
- `block(result, name)`: one block template's statements as its first use
  builds them (Figures 3-19): one box per op (`1x7 Conv (160)`,
  `3x3 MaxPool (stride 2 V)`; V is valid padding, as in the paper; a filter
  count the template gives as a parameter or arithmetic shows it, `k=256`),
  a `Filter concat` box per concatenation, a `+` per residual sum (its
  shortcut drawn dashed, through the shortcut's own ops when it has any)
  and a `×` per gate (the gate's branch dashed into it), each with its
  arithmetic, and the shape on every edge. Blocks it uses are drawn inline.

The structure is the program IR (compiler.program), the form the Keras and
torch backends print: a network box is one network statement (a loop of
block uses is one), a block view is one function's body. Values come from
evaluating the IR's under the use's arguments (program.evaluate), names from
the IR's layer names within the use, and every shape from infer's graph,
looked up by layer name, so the picture shows exactly what infer computed.
Spec text only reaches DOT through html-escaped labels. `render` turns DOT
into SVG or PNG with Graphviz's `dot`; the DOT text itself needs no program.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import graphviz

from ...compiler import ops
from ...compiler import program as ir
from ...compiler.graph import Shape, Stage
from ...compiler.pipeline import Result

FORMATS = ("dot", "svg", "png", "pdf")
MISSING_DOT = (
    "Graphviz's `dot` program is needed to write {what} but is not installed; install "
    "the Debian package `graphviz` (apt-get install graphviz; Homebrew: brew install "
    "graphviz), or write a .dot file, which needs no program"
)

# Node ids that no layer can have (layer names are Python identifiers).
INPUT, OUTPUT = "(input)", "(output)"

FONT = "Helvetica"
COLOURS = {
    "conv": "#fff2cc",
    "pool": "#dae8fc",
    "concat": "#d5e8d4",
    "add": "#f8cecc",
    "dense": "#e1d5e7",
    "other": "#f5f5f5",
    "block": "#fff2cc",
    "aux": "#e1d5e7",
    "head": "#dae8fc",
}


class PlotError(Exception):
    """A diagram cannot be made: an unknown block, or no `dot` to render with."""


# -- text -------------------------------------------------------------------------------


def shape_text(shape: Shape) -> str:
    return "x".join(map(str, shape))


def concat_arithmetic(channels: Iterable[int], total: int) -> str:
    """`384 + 384 + 384 = 1152`."""
    return f"{' + '.join(map(str, channels))} = {total}"


def sum_arithmetic(shortcut: int, residual: int, scale: float | None, out: int) -> str:
    """`1152 + 0.1×1152 → 1152`: the shortcut's channels, the scaled residual's, the sum's."""
    scaled = f"{scale:g}×{residual}" if scale is not None and scale != 1.0 else str(residual)
    return add_arithmetic((shortcut, scaled), out)


def add_arithmetic(channels: Iterable[int | str], out: int) -> str:
    """`44 + 44 → 44`: a dag's `add:`, each operand's channels and the sum's."""
    return f"{' + '.join(map(str, channels))} → {out}"


def gate_arithmetic(channels: int, gate: Shape, out: Shape) -> str:
    """`1088 × 1x1x1088 → 17x17x1088`: the path's channels, the gate's shape, the product's."""
    return f"{channels} × {shape_text(gate)} → {shape_text(out)}"


def _pair(pair: Any) -> str:
    return f"{pair[0]}x{pair[1]}"


def _window_extras(strides: Any, padding: str) -> list[str]:
    extras = []
    if tuple(strides) != (1, 1):
        extras.append(
            f"stride {strides[0]}" if strides[0] == strides[1] else f"stride {_pair(strides)}"
        )
    if padding == "valid":
        extras.append("V")
    return extras


def op_label(kind: str, attrs: dict[str, Any], out: Shape, parameter: str | None = None) -> str:
    """The paper's wording for one op (`attrs`: its concrete values, by program.Op's field
    names): `3x3 Conv (384 stride 2 V)`, `Relu activation`. `parameter`: the block
    parameter its filter count is, if any (`k=256`)."""
    return OPS[kind][0](attrs, out, parameter)


# -- one entry per op kind (compiler.ops): its label and its box's colour --------------

Label = Callable[[dict[str, Any], Shape, "str | None"], str]


def _conv(name: str) -> Label:
    def label(attrs: dict[str, Any], out: Shape, parameter: str | None) -> str:
        size = f"{parameter}={out[-1]}" if parameter and "filters" in attrs else str(out[-1])
        extras = _window_extras(attrs["strides"], attrs["padding"])
        if attrs.get("multiplier", 1) != 1:
            extras.append(f"×{attrs['multiplier']}")
        if attrs.get("groups", 1) != 1:
            extras.append(f"{attrs['groups']} groups")
        extras += _activation_extras(attrs["activation"])
        return f"{_pair(attrs['kernel'])} {name} ({' '.join([size, *extras])})"

    return label


def _pad(attrs: dict[str, Any], out: Shape, parameter: str | None) -> str:
    if attrs["padding"] == "correct":  # keras' correct_pad: by the input's size
        return f"Zero pad (correct for {_pair(attrs['kernel'])})"
    top, bottom, left, right = attrs["padding"]
    return f"Zero pad ({top}, {bottom}, {left}, {right})"


def _reshape(attrs: dict[str, Any], out: Shape, parameter: str | None) -> str:
    return f"Reshape {shape_text(out)}"


def _crop(attrs: dict[str, Any], out: Shape, parameter: str | None) -> str:
    top, bottom, left, right = attrs["cropping"]
    return f"Crop ({top}, {bottom}, {left}, {right})"


def _pool(name: str) -> Label:
    def label(attrs: dict[str, Any], out: Shape, parameter: str | None) -> str:
        extras = _window_extras(attrs["strides"], attrs["padding"])
        return f"{_pair(attrs['pool'])} {name}" + (f" ({' '.join(extras)})" if extras else "")

    return label


def _global_pool(name: str) -> Label:
    def label(attrs: dict[str, Any], out: Shape, parameter: str | None) -> str:
        return name + (" (1x1)" if attrs["keepdims"] else "")

    return label


def _fixed(text: str) -> Label:
    return lambda attrs, out, parameter: text


def _activation(attrs: dict[str, Any], out: Shape, parameter: str | None) -> str:
    return f"{(attrs['activation'] or 'linear').capitalize()} activation"


def _dropout(attrs: dict[str, Any], out: Shape, parameter: str | None) -> str:
    shared = " per sample" if attrs["noise_shape"] == (1, 1, 1) else ""
    return f"Dropout{shared} (keep {1 - attrs['rate']:g})"


def _rescaling(attrs: dict[str, Any], out: Shape, parameter: str | None) -> str:
    return f"Rescale (×{attrs['scale']:g} + {attrs['offset']:g})"


def _layer_scale(attrs: dict[str, Any], out: Shape, parameter: str | None) -> str:
    return f"LayerScale (×{attrs['init']:g} at first)"


def _normalization(attrs: dict[str, Any], out: Shape, parameter: str | None) -> str:
    return "Normalize" + (" (adapted)" if attrs["mean"] is None else "")


def _dense(attrs: dict[str, Any], out: Shape, parameter: str | None) -> str:
    activation = attrs["activation"]
    return f"Dense ({out[-1]}{' ' + activation if activation else ''})"


OPS: dict[str, tuple[Label, str]] = {
    "conv": (_conv("Conv"), COLOURS["conv"]),
    "dwconv": (_conv("Depthwise Conv"), COLOURS["conv"]),
    "sepconv": (_conv("Separable Conv"), COLOURS["conv"]),
    "pad": (_pad, COLOURS["other"]),
    "crop": (_crop, COLOURS["other"]),
    "identity": (_fixed("Identity"), COLOURS["other"]),
    "flatten": (_fixed("Flatten"), COLOURS["other"]),
    "reshape": (_reshape, COLOURS["other"]),
    "maxpool": (_pool("MaxPool"), COLOURS["pool"]),
    "avgpool": (_pool("AvgPool"), COLOURS["pool"]),
    "gap": (_global_pool("Global AvgPool"), COLOURS["pool"]),
    "gmp": (_global_pool("Global MaxPool"), COLOURS["pool"]),
    "bn": (_fixed("BatchNorm"), COLOURS["other"]),
    "layernorm": (_fixed("LayerNorm"), COLOURS["other"]),
    "normalization": (_normalization, COLOURS["other"]),
    "act": (_activation, COLOURS["other"]),
    "dropout": (_dropout, COLOURS["other"]),
    "rescaling": (_rescaling, COLOURS["other"]),
    "layerscale": (_layer_scale, COLOURS["other"]),
    "dense": (_dense, COLOURS["dense"]),
}


def _activation_extras(activation: str | None) -> list[str]:
    """A conv's activation where it is not the paper's usual ReLU."""
    if activation is None:
        return ["Linear"]
    return [] if activation == "relu" else [activation]


def _escape(text: str) -> str:
    """Spec text as HTML-label text: markup characters inert, no line breaks of its own."""
    return html.escape(" ".join(text.split()), quote=False)


def _label(title: str, *lines: str, bold: bool = False, small: Iterable[str] = ()) -> str:
    """An HTML-like label: a title, plain lines, then small grey lines; all text escaped."""
    parts = [f"<B>{_escape(title)}</B>" if bold else _escape(title)]
    parts += [_escape(line) for line in lines]
    parts += [f'<FONT POINT-SIZE="10" COLOR="#555555">{_escape(line)}</FONT>' for line in small]
    return "<" + "<BR/>".join(parts) + ">"


def _si(count: int) -> str:
    for prefix, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= size:
            return f"{count / size:.2f} {prefix}"
    return str(count)


def _digraph(name: str, title: str, subtitle: str) -> graphviz.Digraph:
    dot = graphviz.Digraph(
        name,
        graph_attr={
            "rankdir": "BT",  # input at the bottom, as the paper draws
            "ordering": "out",  # branches left to right in the order written
            "nodesep": "0.25",
            "ranksep": "0.35",
            "fontname": FONT,
            "labelloc": "t",
            "label": _label(title, bold=True, small=[subtitle]),
        },
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": FONT, "fontsize": "12"},
        edge_attr={"fontname": FONT, "fontsize": "9", "color": "#444444", "arrowsize": "0.6"},
    )
    return dot


# -- walking the program --------------------------------------------------------------


@dataclass(frozen=True)
class _Use:
    """Where statements are drawn: inside the block use named `name` (`""` at network
    level), whose parameters have the values `env` (Program.arguments)."""

    name: str
    env: dict[str, Any]


def _root(program: ir.Program) -> _Use:
    return _Use("", {ir.CLASSES_NAME: program.classes})


def _text(value: ir.Value) -> str:
    """A value as a spec writes it: a parameter's name, arithmetic without spaces (`4*f`)."""
    if isinstance(value, ir.Param):
        return value.name
    if isinstance(value, ir.Arith):
        names = {ir.CLASSES_NAME: ir.CLASSES}
        return value.expr.python(lambda name: names.get(name, name)).replace(" ", "")
    return f"{value}"


def _parameter(op: ir.Op) -> str | None:
    """What a conv's filter count is written as where it is not a number (`k`, `4*f`, `in`)."""
    filters = op.attrs.get("filters") if op.kind in ("conv", "sepconv") else None
    return None if filters is None or isinstance(filters, int) else _text(filters)


def _called(program: ir.Program, stmts: Iterable[ir.Stmt]) -> set[str]:
    """The blocks the statements call, directly or through the blocks they call."""
    found: set[str] = set()
    for stmt in stmts:
        if isinstance(stmt, ir.CallStmt):
            found |= {stmt.block} | _called(program, program.function(stmt.block).body)
        for inner in _inner(stmt):
            found |= _called(program, inner)
    return found


def _inner(stmt: ir.Stmt) -> tuple[tuple[ir.Stmt, ...], ...]:
    """The statement sequences inside a composite: branches, a shortcut, a gate's branch."""
    if isinstance(stmt, ir.ResidualStmt):
        return (*stmt.branches, stmt.shortcut)
    if isinstance(stmt, (ir.ConcatStmt, ir.GateStmt)):
        return stmt.branches
    return ()


class _Drawer:
    """Walks program statements from an input node and shape, adding a box per layer.

    Names are the statements' layer names within the block use being drawn, every
    shape the graph's layer of that name. `arithmetic` collects ("concat" | "sum" |
    "gate", layer name, text) in data-flow order, for the network view and for tests.
    """

    def __init__(self, program: ir.Program, dot: graphviz.Digraph):
        self.program = program
        self.layers = {layer.name: layer for layer in program.graph.layers}
        self.dot = dot
        self.arithmetic: list[tuple[str, str, str]] = []
        # Named tensors: a dag's (node, shape) by variable while its body is drawn; the
        # network's kept ones (`p`, for `from: -2`) otherwise.
        self.tensors: dict[str, tuple[str, Shape]] = {}

    def shape(self, name: str, default: Shape) -> Shape:
        """The shape of the layer `name`, or `default` where the op makes none (an `act`
        whose activation parameter is linear at this use)."""
        layer = self.layers.get(name)
        return layer.shape if layer is not None else default

    def edge(self, tail: str, head: str, shape: Shape, **attrs: str) -> None:
        self.dot.edge(tail, head, label=" " + shape_text(shape), **attrs)

    def value(self, use: _Use, value: ir.Value) -> Any:
        """A value as this use builds it (`linear` as no activation, as the ops say it)."""
        value = ir.evaluate(value, use.env, self.program.width)
        return None if value == "linear" else value

    def attrs(self, op: ir.Op, use: _Use) -> dict[str, Any]:
        return {field: self.value(use, value) for field, value in op.attrs.items()}

    def uses(self, call: ir.CallStmt, use: _Use) -> list[_Use]:
        """The block uses a call makes: each repeat's name, the parameters' values."""
        env = self.program.arguments(call, use.env)
        return [_Use(name, env) for name in call.instances(use.name, use.env)]

    def seq(self, stmts: Iterable[ir.Stmt], use: _Use, src: str, shape: Shape):
        for stmt in stmts:
            src, shape = getattr(self, stmt.stmt)(stmt, use, src, shape)
        return src, shape

    def builds(self, op: ir.Op, use: _Use) -> bool:
        """Whether the op makes a layer at this use: an identity never does, nor an `act`
        whose activation is linear here (the generated code skips it)."""
        if not ops.REGISTRY[op.kind].builds:
            return False
        return op.kind != "act" or self.attrs(op, use)["activation"] is not None

    def op(self, op: ir.Op, use: _Use, src: str, shape: Shape) -> tuple[str, Shape]:
        if not self.builds(op, use):  # no layer: what follows reads the op's input
            return src, shape
        name = op.layer.within(use.name)
        out = self.shape(name, shape)
        label = op_label(op.kind, self.attrs(op, use), out, _parameter(op))
        self.dot.node(name, _label(label), fillcolor=OPS[op.kind][1])
        self.edge(src, name, shape)
        return name, out

    def call(self, call: ir.CallStmt, use: _Use, src: str, shape: Shape) -> tuple[str, Shape]:
        function = self.program.function(call.block)
        if not function.dag:
            for inner in self.uses(call, use):
                src, shape = self.seq(function.body, inner, src, shape)
            return src, shape
        main = self.tensors.get(call.source, (src, shape))
        others = [self.tensors.get(name, (src, shape)) for name in call.extra]
        for inner in self.uses(call, use):
            out = self.dag(function, inner, [main, *others])
            if call.carry:  # the next repeat's second input is this one's first
                others = [main]
            main = out
        if call.carry:
            self.tensors[call.carry] = others[0]
        return main

    def dag(self, function: ir.Function, use: _Use, inputs: list) -> tuple[str, Shape]:
        """A dag block's statements, each reading its source's tensor by name."""
        outer, self.tensors = self.tensors, dict(zip(function.inputs, inputs))
        try:
            for stmt in function.body:
                src, shape = self.tensors[getattr(stmt, "source", function.inputs[0])]
                self.tensors[stmt.target] = getattr(self, stmt.stmt)(stmt, use, src, shape)
            return self.tensors[function.output]
        finally:
            self.tensors = outer

    def keep(self, stmt: ir.KeepStmt, use: _Use, src: str, shape: Shape) -> tuple[str, Shape]:
        self.tensors[stmt.target] = (src, shape)
        return src, shape

    def merge(self, stmt: ir.MergeStmt, use: _Use, src: str, shape: Shape) -> tuple[str, Shape]:
        """A dag's `add:` (a `+` box) or `concat:` (a `Filter concat`) of named tensors."""
        ends = [self.tensors[name] for name in stmt.sources]
        name = stmt.layer.within(use.name)
        out = self.shape(name, ends[0][1])
        channels = [end_shape[-1] for _, end_shape in ends]
        if stmt.kind == "concat":
            kind, title, text = "concat", "Filter concat", concat_arithmetic(channels, out[-1])
        else:
            kind, title, text = "sum", "+", add_arithmetic(channels, out[-1])
        self.arithmetic.append((kind, name, text))
        colour = COLOURS["concat" if kind == "concat" else "add"]
        self.dot.node(name, _label(title, text), fillcolor=colour)
        for end, end_shape in ends:
            self.edge(end, name, end_shape)
        return name, out

    def join(self, name: str, branches, use: _Use, src: str, shape: Shape) -> tuple[str, Shape]:
        """Branches from one input into a `Filter concat` named `name`."""
        ends = [self.seq(branch, use, src, shape) for branch in branches]
        out = self.shape(name, shape)
        text = concat_arithmetic((s[-1] for _, s in ends), out[-1])
        self.arithmetic.append(("concat", name, text))
        self.dot.node(name, _label("Filter concat", text), fillcolor=COLOURS["concat"])
        for end, end_shape in ends:
            self.edge(end, name, end_shape)
        return name, out

    def concat(self, stmt: ir.ConcatStmt, use: _Use, src: str, shape: Shape):
        return self.join(stmt.layer.within(use.name), stmt.branches, use, src, shape)

    def gate(self, stmt: ir.GateStmt, use: _Use, src: str, shape: Shape) -> tuple[str, Shape]:
        g, g_shape = self.seq(stmt.branch, use, src, shape)
        name = stmt.layer.within(use.name)
        out = self.shape(name, shape)
        text = gate_arithmetic(shape[-1], g_shape, out)
        self.arithmetic.append(("gate", name, text))
        self.dot.node(name, _label("×", text), fillcolor=COLOURS["add"], style="filled")
        self.edge(src, name, shape)
        self.edge(g, name, g_shape, style="dashed")  # the gate's scales
        return name, out

    def residual(self, stmt: ir.ResidualStmt, use: _Use, src: str, shape: Shape):
        s, s_shape = self.seq(stmt.shortcut, use, src, shape)
        if stmt.concat is not None:
            concat = stmt.concat.within(use.name)
            r, r_shape = self.join(concat, stmt.branches, use, src, shape)
        else:
            r, r_shape = self.seq(stmt.branches[0], use, src, shape)
        if stmt.project is not None:
            r, r_shape = self.op(stmt.project, use, r, r_shape)
        add = stmt.part("add").within(use.name)
        out = self.shape(add, s_shape)
        # The default build has residual scaling off (the builder's `scale` switch).
        scale = self.value(use, stmt.scale) if self.program.scale_default else None
        text = sum_arithmetic(s_shape[-1], r_shape[-1], scale, out[-1])
        self.arithmetic.append(("sum", add, text))
        self.dot.node(add, _label("+", text), fillcolor=COLOURS["add"], shape="box", style="filled")
        self.edge(s, add, s_shape, style="dashed")  # the shortcut, through its ops if any
        self.edge(r, add, r_shape)
        activation = self.value(use, stmt.activation)
        if activation:
            act = stmt.part(activation).within(use.name)
            self.dot.node(
                act, _label(f"{activation.capitalize()} activation"), fillcolor=COLOURS["other"]
            )
            self.edge(add, act, out)
            return act, out
        return add, out

    def find(self, stmts, use: _Use, shape: Shape, block: str) -> tuple[_Use, list] | None:
        """The first use of `block` among the statements and inside them: the use and
        the shapes of the tensors it reads, or None."""
        for stmt in stmts:
            shape = self.tensors.get(getattr(stmt, "source", ""), (INPUT, shape))[1]
            if isinstance(stmt, ir.CallStmt):
                first = self.uses(stmt, use)[0]
                shapes = [shape, *(self.tensors.get(n, (INPUT, shape))[1] for n in stmt.extra)]
                if stmt.block == block:
                    return first, shapes
                function = self.program.function(stmt.block)
                outer = self.tensors
                if function.dag:
                    self.tensors = {n: (INPUT, s) for n, s in zip(function.inputs, shapes)}
                try:
                    found = self.find(function.body, first, shape, block)
                finally:
                    self.tensors = outer
            else:
                found = None
                for inner in _inner(stmt):
                    found = found or self.find(inner, use, shape, block)
            if found is not None:
                return found
            self.tensors[stmt.target] = self.seq([stmt], use, INPUT, shape)
        return None

    def texts(self, stmts: Iterable[ir.Stmt], use: _Use) -> list[str]:
        """Each op's wording (a block called, its ops), `concat`, `gate` or `residual`."""
        texts = []
        for stmt in stmts:
            if isinstance(stmt, ir.Op):
                if stmt.kind == "identity" or self.builds(stmt, use):
                    out = self.shape(stmt.layer.within(use.name), ())
                    texts.append(op_label(stmt.kind, self.attrs(stmt, use), out))
            elif isinstance(stmt, ir.CallStmt):
                body = self.program.function(stmt.block).body
                texts += [t for inner in self.uses(stmt, use) for t in self.texts(body, inner)]
            else:
                texts.append(stmt.stmt)
        return texts


# -- the two views ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One network entry: its statements, the stages infer made of them (a loop's
    repeats; one for anything else), and what the first stage builds: statements and
    the use they are in (a block's body in its first use, or the entry's own)."""

    stmts: tuple[ir.Stmt, ...]
    stages: tuple[Stage, ...]
    body: tuple[ir.Stmt, ...]
    use: _Use


def _entries(program: ir.Program) -> list[_Entry]:
    """The network's statements, each with its stages, then the head's."""
    graph = program.graph
    stages = {stage.name: stage for stage in graph.stages}
    layers = {layer.name: layer for layer in graph.layers}
    root = _root(program)
    entries = []
    for stmt in program.network:
        if isinstance(stmt, ir.KeepStmt):  # a variable kept for a later cell: no box
            continue
        if isinstance(stmt, ir.CallStmt):
            names = stmt.instances("")
            body, use = program.function(stmt.block).body, _Use(names[0], program.arguments(stmt))
        else:  # an op or composite between blocks: the stage its last layer is in
            last = stmt.part("add") if isinstance(stmt, ir.ResidualStmt) else stmt.layer
            layer = layers.get(last.within(""))
            if layer is None:  # no layer of its own (`act linear`, an identity): no box
                continue
            names = [layer.stage]
            body, use = (stmt,), root
        entries.append(_Entry((stmt,), tuple(stages[name] for name in names), body, use))
    head = [stage for stage in graph.stages if stage.role == "head"]
    if head:
        entries.append(_Entry(program.head, tuple(head), program.head, root))
    return entries


def network_arithmetic(result: Result) -> dict[str, list[tuple[str, str, str]]]:
    """For each network box (named by its first stage), the arithmetic of its concats and sums."""
    boxes = _network_boxes(ir.build(result))
    return {box: arithmetic for box, _, arithmetic in boxes}


def _network_boxes(program: ir.Program):
    """(box id, its entry, arithmetic) for every network entry, in order."""
    history = [program.graph.input]  # the main path after each entry, for `from: -2`
    for entry in _entries(program):
        drawer = _Drawer(program, graphviz.Digraph())
        dag = _dag_inputs(program, entry, history)
        if dag is not None:
            function, inputs = dag
            drawer.dag(function, entry.use, list(inputs.values()))
        else:
            drawer.seq(entry.body, entry.use, INPUT, history[-1])
        yield entry.stages[0].name, entry, drawer.arithmetic
        if entry.stages[0].role == "body":
            history.append(entry.stages[-1].shape)


def _dag_inputs(
    program: ir.Program, entry: _Entry, history: list
) -> tuple[ir.Function, dict[str, tuple[str, Shape]]] | None:
    """For an entry that uses a dag block: the block, and the tensors it reads as
    (INPUT, shape) by its input names; None for any other entry."""
    (stmt, *_) = entry.stmts
    if not isinstance(stmt, ir.CallStmt) or not program.function(stmt.block).dag:
        return None
    function = program.function(stmt.block)
    sources = [-2 if v == ir.PREVIOUS else -1 for v in (stmt.source, *stmt.extra)]
    return function, {n: (INPUT, history[s]) for n, s in zip(function.inputs, sources)}


def network(result: Result) -> str:
    """The whole network, one box per network entry; DOT text."""
    program = ir.build(result)
    spec, graph = program.spec, program.graph
    dot = _digraph(
        f"{spec.name}",
        spec.title,
        f"{graph.params:,} parameters, {_si(graph.macs)} multiply-accumulates at "
        f"{shape_text(graph.input)}",
    )
    dot.node(INPUT, _label("Input", shape_text(graph.input)), shape="plain", style="")
    src, shape = INPUT, graph.input
    head: tuple[str, Shape] | None = None
    aux: list[tuple[str, Shape]] = []
    texts = _Drawer(program, graphviz.Digraph())
    for box, entry, arithmetic in _network_boxes(program):
        stage = entry.stages[0]
        count = len(entry.stages)
        title = (stage.block if count > 1 else None) or stage.name
        if count > 1:
            title += f" ×{count}"
        lines = [f"{kind} {text}" for kind, _, text in arithmetic]
        small = []
        if stage.block is not None:
            if stage.block not in title:  # a use renamed with `name:` says its block
                small.append(f"block {stage.block}")
            if spec.blocks[stage.block].ref:
                small.append(spec.blocks[stage.block].ref)
        elif stage.role == "head" or all(isinstance(s, ir.Op) for s in entry.stmts):
            small.append(" · ".join(texts.texts(entry.body, entry.use)))
        inner = _called(program, entry.stmts) - {stage.block}
        if inner:
            small.append(f"uses {', '.join(b for b in spec.blocks if b in inner)}")
        each = " each" if count > 1 else ""
        small.append(f"{stage.params:,} parameters, {_si(stage.macs)} mult-adds{each}")
        colour = COLOURS["block"] if stage.role == "body" else COLOURS[stage.role]
        dot.node(box, _label(title, *lines, bold=True, small=small), fillcolor=colour)
        dot.edge(src, box, label=" " + shape_text(shape))
        out = entry.stages[-1].shape
        if stage.role == "body":
            src, shape = box, out
        elif stage.role == "aux":
            aux.append((box, out))
        else:
            head = (box, out)
    for box, out, node, what in [
        (*(head or (src, shape)), OUTPUT, "Output"),
        *((box, out, f"({box} output)", "Auxiliary output") for box, out in aux),
    ]:
        dot.node(node, _label(what), shape="plain", style="")
        dot.edge(box, node, label=" " + shape_text(out))
    return dot.source


def blocks(result: Result) -> list[str]:
    """The block templates the network uses, in the order the spec defines them."""
    program = ir.build(result)
    used = _called(program, (*program.network, *program.head))
    return [name for name in program.spec.blocks if name in used]


def _first_use(program: ir.Program, name: str) -> tuple[_Use, list, str]:
    """A block's first use (a network entry's before one inside another block): the
    use, the shapes of the tensors it reads, the stage it is in."""
    drawer = _Drawer(program, graphviz.Digraph())
    shape = program.graph.input
    found: tuple[_Use, list, str] | None = None
    history = [shape]  # the main path after each entry, for `from: -2`
    for entry in _entries(program):
        stage = entry.stages[0]
        dag = _dag_inputs(program, entry, history)
        inputs = dag[1] if dag is not None else {}
        if stage.block == name:  # the entry is a use of the block
            shapes = [s for _, s in inputs.values()] if inputs else [shape]
            return entry.use, shapes, stage.name
        if found is None:
            drawer.tensors = dict(inputs)
            inside = drawer.find(entry.body, entry.use, shape, name)
            found = None if inside is None else (*inside, stage.name)
        if stage.role == "body":
            shape = entry.stages[-1].shape
            history.append(shape)
    if found is not None:
        return found
    raise PlotError(f"block {name!r} is not used by the network, so it has no shapes to draw")


def block(result: Result, name: str) -> str:
    """One block template's statements, as its first use builds them; DOT text."""
    spec = result.valid_spec
    if name not in spec.blocks:
        known = ", ".join(spec.blocks) or "none"
        raise PlotError(f"{spec.name} has no block {name!r}; its blocks are: {known}")
    program = ir.build(result)
    use, shapes, stage = _first_use(program, name)
    template = spec.blocks[name]
    details = [template.ref] if template.ref else []
    details.append(f"as built by its first use, {stage!r}")
    args = _use_args(program, name)
    if args:
        details.append(args)
    dot = _digraph(f"{spec.name}_{name}", f"{spec.title}: {name}", "; ".join(details))
    function = program.function(name)
    drawer = _Drawer(program, dot)
    if function.dag:  # an input node per tensor
        inputs = [INPUT if i == 0 else f"(input {n})" for i, n in enumerate(function.inputs)]
        for node, tensor in zip(inputs, function.inputs):
            dot.node(node, _label(f"Input {tensor}"), shape="plain", style="")
        end, out = drawer.dag(function, use, list(zip(inputs, shapes)))
    else:
        dot.node(INPUT, _label("Input"), shape="plain", style="")
        end, out = drawer.seq(function.body, use, INPUT, shapes[0])
    dot.node(OUTPUT, _label("Output"), shape="plain", style="")
    drawer.edge(end, OUTPUT, out)
    return dot.source


def _use_args(program: ir.Program, name: str) -> str:
    """`k=256, l=256, m=384, n=384`: the arguments of a block's first network use."""
    for stmt in program.network:
        if isinstance(stmt, ir.CallStmt) and stmt.block == name and not stmt.aux:
            return ", ".join(f"{k}={_text(v)}" for k, v in stmt.args)
    return ""


def render(source: str, fmt: str) -> bytes:
    """DOT text as `fmt` (dot, svg, png or pdf); all but dot need Graphviz's `dot`."""
    if fmt == "dot":
        return source.encode("utf-8")
    try:
        return graphviz.pipe("dot", fmt, source.encode("utf-8"), quiet=True)
    except graphviz.ExecutableNotFound:
        raise PlotError(MISSING_DOT.format(what=f"a .{fmt} file")) from None
    except graphviz.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode("utf-8", "replace").strip()
        raise PlotError(f"Graphviz's `dot` failed: {detail or exc}") from None
