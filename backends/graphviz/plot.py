"""Diagrams of the inferred graph, drawn like the paper's figures, as DOT text.

Two views:

- `network(graph)`: one box per network entry (a block used 20 times in a
  row is one box, `resnet_b x20`), the input at the bottom and the
  classifier at the top as in the paper's Figure 15, every edge labelled
  with the tensor shape it carries, auxiliary heads off to the side, and in
  each box the channel arithmetic of every concatenation and residual sum
  inside it (`concat 384 + 384 + 384 = 1152`).
- `block(graph, name)`: one block template's branches as its first use
  builds them (Figures 3-19): one box per op (`1x7 Conv (160)`,
  `3x3 MaxPool (stride 2 V)`; V is valid padding, as in the paper), a
  `Filter concat` box per concatenation, a `+` per residual sum (its
  shortcut drawn dashed, through the shortcut's own ops when it has any)
  and a `×` per gate (the gate's branch dashed into it), each with its
  arithmetic, and the shape on every edge.

The structure comes from compiler.resolve (the graph itself is a flat list of
layers) and every shape from the graph's layers, looked up by layer name, so
the picture shows exactly what infer computed. Spec text only reaches DOT
through html-escaped labels. `render` turns DOT into SVG or PNG with
Graphviz's `dot`; the DOT text itself needs no program.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import graphviz
from irc_cnn.compiler.graph import Graph, Shape, Stage
from irc_cnn.compiler.resolve import RConcat, RGate, RNode, ROp, RResidual, RStage, resolve
from irc_cnn.compiler.schema import Concat, Residual

FORMATS = ("dot", "svg", "png")
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
    return f"{shortcut} + {scaled} → {out}"


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


def op_label(op: Any, out: Shape, parameter: str | None = None) -> str:
    """The paper's wording for one op: `3x3 Conv (384 stride 2 V)`, `Relu activation`."""
    kind = op.kind
    if kind == "conv":
        filters = f"{parameter}={out[-1]}" if parameter else str(out[-1])
        extras = _window_extras(op.strides, op.padding)
        if op.activation is None:
            extras.append("Linear")
        elif op.activation != "relu":
            extras.append(op.activation)
        return f"{_pair(op.kernel)} Conv ({' '.join([filters, *extras])})"
    if kind in ("dwconv", "sepconv"):
        extras = _window_extras(op.strides, op.padding)
        if op.multiplier != 1:
            extras.append(f"×{op.multiplier}")
        if op.activation is None:
            extras.append("Linear")
        elif op.activation != "relu":
            extras.append(op.activation)
        name = "Depthwise Conv" if kind == "dwconv" else "Separable Conv"
        size = (
            str(out[-1])
            if kind == "dwconv"
            else f"{parameter}={out[-1]}"
            if parameter
            else str(out[-1])
        )
        return f"{_pair(op.kernel)} {name} ({' '.join([size, *extras])})"
    if kind == "pad":
        top, bottom, left, right = op.padding
        return f"Zero pad ({top}, {bottom}, {left}, {right})"
    if kind == "identity":
        return "Identity"
    if kind in ("maxpool", "avgpool"):
        extras = _window_extras(op.strides, op.padding)
        name = "MaxPool" if kind == "maxpool" else "AvgPool"
        return f"{_pair(op.pool)} {name}" + (f" ({' '.join(extras)})" if extras else "")
    if kind in ("gap", "gmp"):
        text = "Global AvgPool" if kind == "gap" else "Global MaxPool"
        return text + (" (1x1)" if op.keepdims else "")
    if kind == "bn":
        return "BatchNorm"
    if kind == "act":
        return f"{(op.activation or 'linear').capitalize()} activation"
    if kind == "dropout":
        return f"Dropout (keep {1 - op.rate:g})"
    if kind == "flatten":
        return "Flatten"
    if kind == "dense":
        activation = op.activation if op.activation not in (None, "linear") else None
        return f"Dense ({out[-1]}{' ' + activation if activation else ''})"
    raise AssertionError(f"unhandled op kind {kind}")


def _colour(kind: str) -> str:
    if kind in ("dwconv", "sepconv"):
        return COLOURS["conv"]
    if kind in ("maxpool", "avgpool", "gap", "gmp"):
        return COLOURS["pool"]
    return COLOURS.get(kind, COLOURS["other"])


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


# -- walking the resolved structure ----------------------------------------------------


def _template(spec: Any, path: tuple) -> Any:
    """The spec node at a spec path (op paths from resolve), or None."""
    node = spec
    try:
        for segment in path:
            if isinstance(segment, int) or isinstance(node, dict):
                node = node[segment]
            elif segment == "concat" and isinstance(node, Concat):
                node = node.branches
            elif segment == "residual" and isinstance(node, Residual):
                continue
            else:
                node = getattr(node, segment)
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    return node


class _Drawer:
    """Walks resolved nodes from an input node and shape, adding a box per layer.

    `arithmetic` collects ("concat" | "sum" | "gate", layer name, text) in data-flow
    order, for the network view and for tests.
    """

    def __init__(self, graph: Graph, dot: graphviz.Digraph):
        self.spec = graph.spec
        self.layers = {layer.name: layer for layer in graph.layers}
        self.dot = dot
        self.arithmetic: list[tuple[str, str, str]] = []

    def shape(self, name: str, default: Shape) -> Shape:
        layer = self.layers.get(name)
        return layer.shape if layer is not None else default

    def edge(self, tail: str, head: str, shape: Shape, **attrs: str) -> None:
        self.dot.edge(tail, head, label=" " + shape_text(shape), **attrs)

    def seq(self, nodes: Iterable[RNode], src: str, shape: Shape) -> tuple[str, Shape]:
        for node in nodes:
            if isinstance(node, ROp):
                src, shape = self.op(node, src, shape)
            elif isinstance(node, RConcat):
                src, shape = self.concat(node.name, node.branches, src, shape)
            elif isinstance(node, RGate):
                src, shape = self.gate(node, src, shape)
            else:
                src, shape = self.residual(node, src, shape)
        return src, shape

    def op(self, rop: ROp, src: str, shape: Shape) -> tuple[str, Shape]:
        if rop.op.kind == "identity":  # no layer: the branch is its input
            return src, shape
        out = self.shape(rop.name, shape)
        parameter = None
        if rop.op.kind in ("conv", "sepconv"):
            template = _template(self.spec, rop.path)
            filters = getattr(template, "filters", None)
            if isinstance(filters, str):  # a parameter or arithmetic on parameters
                parameter = filters
        self.dot.node(
            rop.name, _label(op_label(rop.op, out, parameter)), fillcolor=_colour(rop.op.kind)
        )
        self.edge(src, rop.name, shape)
        return rop.name, out

    def concat(self, name: str, branches, src: str, shape: Shape) -> tuple[str, Shape]:
        ends = [self.seq(branch, src, shape) for branch in branches]
        out = self.shape(name, shape)
        text = concat_arithmetic((s[-1] for _, s in ends), out[-1])
        self.arithmetic.append(("concat", name, text))
        self.dot.node(name, _label("Filter concat", text), fillcolor=COLOURS["concat"])
        for end, end_shape in ends:
            self.edge(end, name, end_shape)
        return name, out

    def gate(self, node: RGate, src: str, shape: Shape) -> tuple[str, Shape]:
        g, g_shape = self.seq(node.branch, src, shape)
        out = self.shape(node.name, shape)
        text = gate_arithmetic(shape[-1], g_shape, out)
        self.arithmetic.append(("gate", node.name, text))
        self.dot.node(node.name, _label("×", text), fillcolor=COLOURS["add"], style="filled")
        self.edge(src, node.name, shape)
        self.edge(g, node.name, g_shape, style="dashed")  # the gate's scales
        return node.name, out

    def residual(self, node: RResidual, src: str, shape: Shape) -> tuple[str, Shape]:
        s, s_shape = self.seq(node.shortcut, src, shape)
        if len(node.branches) > 1:
            r, r_shape = self.concat(node.prefix + "_concat", node.branches, src, shape)
        else:
            r, r_shape = self.seq(node.branches[0], src, shape)
        if node.project is not None:
            r, r_shape = self.op(node.project, r, r_shape)
        add = node.prefix + "_add"
        out = self.shape(add, s_shape)
        text = sum_arithmetic(s_shape[-1], r_shape[-1], node.scale, out[-1])
        self.arithmetic.append(("sum", add, text))
        self.dot.node(add, _label("+", text), fillcolor=COLOURS["add"], shape="box", style="filled")
        self.edge(s, add, s_shape, style="dashed")  # the shortcut, through its ops if any
        self.edge(r, add, r_shape)
        if node.activation:
            act = f"{node.prefix}_{node.activation}"
            self.dot.node(
                act,
                _label(f"{node.activation.capitalize()} activation"),
                fillcolor=COLOURS["other"],
            )
            self.edge(add, act, out)
            return act, out
        return add, out


# -- the two views ---------------------------------------------------------------------


def _groups(graph: Graph) -> list[list[tuple[RStage, Stage]]]:
    """Stages with their resolved bodies, consecutive uses from one network entry together."""
    resolved, _ = resolve(graph.spec)
    if len(resolved.stages) != len(graph.stages):
        raise PlotError("the spec's stages changed between inference and plotting")
    groups: list[list[tuple[RStage, Stage]]] = []
    for pair in zip(resolved.stages, graph.stages):
        stage = pair[1]
        last = groups[-1][-1][1] if groups else None
        if last is not None and (last.path, last.role) == (stage.path, stage.role):
            groups[-1].append(pair)
        else:
            groups.append([pair])
    return groups


def network_arithmetic(graph: Graph) -> dict[str, list[tuple[str, str, str]]]:
    """For each network box (named by its first stage), the arithmetic of its concats and sums."""
    return {box: arithmetic for box, _, arithmetic in _network_boxes(graph)}


def _network_boxes(graph: Graph):
    """(box id, its group, arithmetic) for every network entry, in order."""
    shape = graph.input
    for group in _groups(graph):
        rstage, stage = group[0]
        drawer = _Drawer(graph, graphviz.Digraph())
        drawer.seq(rstage.body, INPUT, shape)
        yield stage.name, group, drawer.arithmetic
        if stage.role == "body":
            shape = group[-1][1].shape


def network(graph: Graph) -> str:
    """The whole network, one box per network entry; DOT text."""
    spec = graph.spec
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
    for box, group, arithmetic in _network_boxes(graph):
        rstage, stage = group[0]
        count = len(group)
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
        elif stage.role == "head" or all(isinstance(node, ROp) for node in rstage.body):
            small.append(" · ".join(_op_texts(graph, rstage.body)))
        inner = [b for b in spec.blocks if b in _nested_blocks(rstage.body) - {stage.block}]
        if inner:
            small.append(f"uses {', '.join(inner)}")
        each = " each" if count > 1 else ""
        small.append(f"{stage.params:,} parameters, {_si(stage.macs)} mult-adds{each}")
        colour = COLOURS["block"] if stage.role == "body" else COLOURS[stage.role]
        dot.node(box, _label(title, *lines, bold=True, small=small), fillcolor=colour)
        dot.edge(src, box, label=" " + shape_text(shape))
        out = group[-1][1].shape
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


def _op_texts(graph: Graph, nodes: Iterable[RNode]) -> list[str]:
    layers = {layer.name: layer for layer in graph.layers}
    texts = []
    for node in nodes:
        if isinstance(node, ROp):
            layer = layers.get(node.name)
            texts.append(op_label(node.op, layer.shape if layer else ()))
        elif isinstance(node, RConcat):
            texts.append("concat")
        elif isinstance(node, RGate):
            texts.append("gate")
        else:
            texts.append("residual")
    return texts


def blocks(graph: Graph) -> list[str]:
    """The block templates the network uses, in the order the spec defines them."""
    used = set()
    for rstage in resolve(graph.spec)[0].stages:
        if rstage.block is not None:
            used.add(rstage.block)
        used.update(_nested_blocks(rstage.body))
    return [name for name in graph.spec.blocks if name in used]


def _nested_blocks(nodes: Iterable[RNode]) -> set[str]:
    found: set[str] = set()
    for node in nodes:
        if node.path[:1] == ("blocks",):
            found.add(node.path[1])
        for branch in _inner(node):
            found |= _nested_blocks(branch)
    return found


def _inner(node: RNode) -> tuple[tuple[RNode, ...], ...]:
    """The node sequences inside a composite: branches, a shortcut, a gate's branch."""
    if isinstance(node, RConcat):
        return node.branches
    if isinstance(node, RResidual):
        return (*node.branches, node.shortcut)
    if isinstance(node, RGate):
        return (node.branch,)
    return ()


def _first_use(graph: Graph, name: str) -> tuple[tuple[RNode, ...], Shape, str]:
    """A block's first use: its resolved nodes, the shape it reads, the stage it is in."""
    shape = graph.input
    found = None
    for group in _groups(graph):
        for rstage, stage in group:
            if rstage.block == name:
                return rstage.body, shape, stage.name
            if found is None:
                found = _find_run(graph, rstage.body, shape, name)
                if found is not None:
                    found = (*found, stage.name)
            if stage.role == "body":
                shape = stage.shape
    if found is not None:
        return found
    raise PlotError(f"block {name!r} is not used by the network, so it has no shapes to draw")


def _find_run(graph: Graph, nodes, shape: Shape, name: str):
    """The first run of nodes that a use of `name` inside another block unrolled to."""
    drawer = _Drawer(graph, graphviz.Digraph())
    nodes = list(nodes)
    for i, node in enumerate(nodes):
        if node.path[:2] == ("blocks", name):
            run = [node]
            for other in nodes[i + 1 :]:
                if other.path[:2] != ("blocks", name):
                    break
                run.append(other)
            return tuple(run), shape
        for branch in _inner(node):
            found = _find_run(graph, branch, shape, name)
            if found is not None:
                return found
        _, shape = drawer.seq([node], INPUT, shape)
    return None


def block(graph: Graph, name: str) -> str:
    """One block template's branches, as its first use builds them; DOT text."""
    spec = graph.spec
    if name not in spec.blocks:
        known = ", ".join(spec.blocks) or "none"
        raise PlotError(f"{spec.name} has no block {name!r}; its blocks are: {known}")
    nodes, shape, stage = _first_use(graph, name)
    template = spec.blocks[name]
    details = [template.ref] if template.ref else []
    details.append(f"as built by its first use, {stage!r}")
    use = _use_args(graph, name)
    if use:
        details.append(use)
    dot = _digraph(f"{spec.name}_{name}", f"{spec.title}: {name}", "; ".join(details))
    dot.node(INPUT, _label("Input"), shape="plain", style="")
    drawer = _Drawer(graph, dot)
    end, out = drawer.seq(nodes, INPUT, shape)
    dot.node(OUTPUT, _label("Output"), shape="plain", style="")
    drawer.edge(end, OUTPUT, out)
    return dot.source


def _use_args(graph: Graph, name: str) -> str:
    """`k=256, l=256, m=384, n=384`: the parameters of a block's first network use."""
    for node in graph.spec.network:
        if getattr(node, "kind", None) == "use" and node.block == name:
            return ", ".join(f"{k}={v}" for k, v in node.args.items())
    return ""


def render(source: str, fmt: str) -> bytes:
    """DOT text as `fmt` (dot, svg or png); svg and png need Graphviz's `dot`."""
    if fmt == "dot":
        return source.encode("utf-8")
    try:
        return graphviz.pipe("dot", fmt, source.encode("utf-8"), quiet=True)
    except graphviz.ExecutableNotFound:
        raise PlotError(MISSING_DOT.format(what=f"a .{fmt} file")) from None
    except graphviz.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode("utf-8", "replace").strip()
        raise PlotError(f"Graphviz's `dot` failed: {detail or exc}") from None
