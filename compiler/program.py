"""The program IR: a checked network as code structure, for code backends.

infer's Graph is flat: every layer of every repeat, with its shape. A
backend that writes readable code needs the spec's own structure instead:
one function (or class) per block template with its parameters, calls with
arguments, loops for repeats, branches and sums. `build(result)` walks the
spec once and returns a Program that a backend only prints: the Keras
backend as functions of helper calls, the torch backend as nn.Module
classes, `irc plot` as boxes. So the backends differ only in how they print.

What the walk decides, so that every backend agrees:

- every statement's layer name (compiler.naming's rules, those infer uses),
  relative to the enclosing block's `name` argument inside a block;
- every value with the spec's defaults applied and the width multiplier
  taken into account; a value that is a block parameter stays a `Param`;
- the variables statements read and write (`x`, branch results `b1`, `b2`,
  a residual's `r`), so generated code in any language reads alike; an
  `identity` reads and leaves its input (no statement), unless a sequence
  is nothing but identities (then one `target = source`);
- file names relative to one folder (the output's parent), each place
  (`file:line`) in the file that wrote it: a variant's inherited block or
  deviation names its base spec;
- every tensor's channel count as a `Channels` expression: a constant at
  network level, linear in `in_channels` and the block's parameters inside
  a block (frameworks that need a layer's input size, like torch, print it);
- the flat input size of a dense layer after `flatten`, from infer's shapes.

Nothing here imports a framework.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeGuard

from . import expr, naming, ops, settings
from .infer import minimum_input
from .fields import CLASSES, INPUT_CHANNELS, widen
from .resolve import body_paths, branch_base, gate_paths, shortcut_paths, step_paths
from .schema import Aux, Block, Concat, Dag, Gate, Residual, Spec, Use
from .shipped import SHIPPED_PREFIX
from .source import describe

IN_CHANNELS = "in_channels"  # the symbol of a block's (first) input channel count
PREVIOUS = "p"  # the network's variable for the output before the main path's (`from: -2`)
# The class count inside arithmetic (`classes//2`): a name no parameter can have.
CLASSES_NAME = "(classes)"


class ProgramError(Exception):
    """A spec the code backends cannot express. `irc check` builds the program too and
    reports this as IRC407 at `path` (the spec path of the node); `where` is that place
    as text (file:line) for the backends' own message."""

    def __init__(self, message: str, path: tuple = (), where: str = "", hint: str = "") -> None:
        text = f"{message}; {hint}" if hint else message
        super().__init__(f"{where}: {text}" if where else text)
        self.message = message
        self.path = path
        self.hint = hint


# -- values ---------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A value that is a block parameter; `widened`: under the spec's width multiplier."""

    name: str
    widened: bool = False


@dataclass(frozen=True)
class Arith:
    """Integer arithmetic on block parameters (`4*f`); `widened` as for Param."""

    expr: expr.Expr
    widened: bool = False


Value = Any  # a literal (int, float, str, bool, None, tuple), a Param or an Arith


@dataclass(frozen=True)
class Input:
    """The channel count of a block's second input (`inputs: [ip, p]`: `p`), as a symbol;
    the first input's is `in_channels`."""

    name: str

    @property
    def variable(self) -> str:
        """Its variable in code that prints channel counts (torch's constructors)."""
        return f"{self.name}_channels"


@dataclass(frozen=True)
class Channels:
    """A channel count: `const + sum(coef * symbol)`; a symbol is `in_channels`, an
    Input, `classes`, a Param (a filter count given as a block parameter) or an Arith."""

    const: int = 0
    terms: tuple[tuple[str | Input | Param | Arith, int], ...] = ()

    def __add__(self, other: Channels) -> Channels:
        merged: dict[str | Input | Param | Arith, int] = dict(self.terms)
        for symbol, coef in other.terms:
            merged[symbol] = merged.get(symbol, 0) + coef
        return Channels(self.const + other.const, tuple((s, c) for s, c in merged.items() if c))

    @property
    def value(self) -> int | None:
        """The count when it is a constant."""
        return None if self.terms else self.const

    def substitute(self, binding: dict[str, Channels], width: float) -> Channels:
        """The count with symbols replaced (a use site's input and arguments)."""
        out = Channels(self.const)
        for symbol, coef in self.terms:
            if isinstance(symbol, Arith):
                out = out + _scaled(_substitute_arith(symbol, binding, width), coef)
                continue
            key = _binding_key(symbol)
            if key not in binding:
                out = out + Channels(0, ((symbol, coef),))
                continue
            bound = binding[key]
            if isinstance(symbol, Param) and symbol.widened:
                bound = _widen_channels(bound, width)
            out = out + Channels(bound.const * coef, tuple((s, c * coef) for s, c in bound.terms))
        return out


def _binding_key(symbol: str | Input | Param) -> str:
    """The name a use site binds a symbol by (Channels.substitute)."""
    if isinstance(symbol, Input):
        return symbol.variable
    return symbol.name if isinstance(symbol, Param) else symbol


def _scaled(count: Channels, coef: int) -> Channels:
    return Channels(count.const * coef, tuple((s, c * coef) for s, c in count.terms))


def _substitute_arith(symbol: Arith, binding: dict[str, Channels], width: float) -> Channels:
    """An expression with its parameters bound: a number when every one is a number,
    else the same arithmetic over the use site's parameters and expressions."""
    names: dict[str, expr.Expr] = {}
    for name in symbol.expr.names:
        bound = binding.get(name, Channels(0, ((Param(name), 1),)))
        if bound.value is not None:
            names[name] = expr.Expr("num", bound.value)
            continue
        (term, coef), *more = bound.terms
        if more or coef != 1 or bound.const or not isinstance(term, (Param, Arith)):
            raise ProgramError(f"cannot substitute {bound} into an expression")
        if getattr(term, "widened", False):
            raise ProgramError("a width multiplier inside an expression is not supported")
        names[name] = _tree(term)
    inner = _rename(symbol.expr, names)
    if not inner.names:
        value = inner.evaluate({})
        return Channels(widen(value, width) if symbol.widened else value)
    return Channels(0, ((Arith(inner, symbol.widened), 1),))


def _tree(symbol: Param | Arith) -> expr.Expr:
    """A parameter or an expression as an expression tree."""
    return symbol.expr if isinstance(symbol, Arith) else expr.Expr("name", symbol.name)


def _rename(tree: expr.Expr, names: dict[str, expr.Expr]) -> expr.Expr:
    if isinstance(tree.value, str):  # op "name"
        return names.get(tree.value, tree)
    if tree.op == "num":
        return tree
    left, right = tree.operands
    return expr.Expr(tree.op, left=_rename(left, names), right=_rename(right, names))


def _widen_channels(count: Channels, width: float) -> Channels:
    if count.value is not None:
        return Channels(widen(count.value, width))
    if (
        len(count.terms) == 1
        and isinstance(count.terms[0][0], (Param, Arith))
        and count.terms[0][1] == 1
    ):
        return Channels(0, ((replace(count.terms[0][0], widened=True), 1),))
    raise ProgramError("a width multiplier applies only to a number or a parameter")


# The input of a block repeated a parameter's count of times, as a symbol (Builder.repeated).
_REPEATED_INPUT = "(repeated input)"


def _class_scores(count: Channels) -> bool:
    """Whether a channel count is the builder's class count, as `dense classes` or
    `conv classes 1x1` give it (and the ops after them keep it)."""
    if count.const or len(count.terms) != 1:
        return False
    symbol, coef = count.terms[0]
    written = isinstance(symbol, Arith) and symbol.expr == expr.Expr("name", CLASSES_NAME)
    return coef == 1 and (symbol == CLASSES or written)


def _symbol(value: Value) -> Channels:
    """The channel count a conv's filters or a dense's units give."""
    if isinstance(value, (Param, Arith)):
        return Channels(0, ((value, 1),))
    if value == CLASSES:
        return Channels(0, ((CLASSES, 1),))
    return Channels(int(value))


# -- statements -----------------------------------------------------------------


@dataclass(frozen=True)
class LayerName:
    """A layer name: `{name}` + "_" + text inside a block (`relative`), text itself outside."""

    text: str
    relative: bool

    def within(self, instance: str) -> str:
        """The concrete name inside the block use named `instance` (`""` outside any)."""
        return naming.override(instance, self.text) if self.relative else self.text


@dataclass(frozen=True)
class Op:
    """One spec op: `target = op(source)`. `attrs` hold its values by field, with the
    spec's defaults applied, as its definition's `attrs` hook gives them (compiler.ops;
    a conv's: filters, kernel, strides, padding, activation, bias, bn, bn_scale).
    `attribute`: the op's module in class-based code, unique in its class
    (_Scope.attribute), named by the op's place even where `layer` is an override."""

    kind: str
    attrs: dict[str, Value]
    layer: LayerName
    source: str
    target: str
    in_channels: Channels
    out_channels: Channels
    line: int
    flat: bool  # the output is a flat vector, not a feature map
    attribute: str = ""
    stmt: str = "op"


@dataclass(frozen=True)
class ConcatStmt:
    """Branches that each read `source` into their own variable, concatenated on channels."""

    source: str
    target: str
    branches: tuple[tuple[Any, ...], ...]
    variables: tuple[str, ...]
    layer: LayerName
    channels: Channels
    stmt: str = "concat"


@dataclass(frozen=True)
class MergeStmt:
    """A dag's `add:` or `concat:`: `target = kind(sources)`, one layer."""

    kind: str  # "add" or "concat"
    sources: tuple[str, ...]
    target: str
    layer: LayerName
    channels: Channels
    stmt: str = "merge"


@dataclass(frozen=True)
class KeepStmt:
    """`target = source`: the network keeps a tensor for a later cell (`from: -2`)."""

    source: str
    target: str
    stmt: str = "keep"


@dataclass(frozen=True)
class GateStmt:
    """`target = source * scales`, `scales` the branch's output from `source`."""

    source: str
    target: str
    scales: str
    branch: tuple[Any, ...]
    layer: LayerName
    channels: Channels
    stmt: str = "gate"

    @property
    def branches(self) -> tuple[tuple[Any, ...], ...]:
        return (self.branch,)


@dataclass(frozen=True)
class ResidualStmt:
    """`target = shortcut(source) + scale * project(branches)`, then `activation`.

    The branches are concatenated into `residual` (layer `concat`) when there
    are several; the scale applies only where the builder's `scale` switch is on.
    No `shortcut` statements: `shortcut_var` is `source`; no `project`: the
    branches' output is added as it is.
    """

    source: str
    target: str
    residual: str
    branches: tuple[tuple[Any, ...], ...]
    variables: tuple[str, ...]
    concat: LayerName | None
    project: Op | None
    scale: Value | None
    activation: Value | None
    layer: LayerName  # the prefix of the sum's layers (`add`, `scale`, the activation)
    channels: Channels
    shortcut: tuple[Any, ...] = ()
    shortcut_var: str = ""
    scale_attribute: str = ""  # class-based code's attributes for the scale and activation
    activation_attribute: str = ""
    stmt: str = "residual"
    shortcut_last: bool = False  # `residual + shortcut`: the shortcut's layers come last
    names: tuple[tuple[str, str], ...] = ()  # `names:` overrides, relative as `@name` is
    operator: bool = False  # Keras' `+` operator, no Add layer (`sum: operator`)

    def part(self, what: str) -> LayerName:
        """The layer name of one part of the sum: `add`, `scale`, or its activation."""
        key = what if what in ("add", "scale") else "activation"
        override = dict(self.names).get(key)
        if override is not None:
            return LayerName(override, self.layer.relative)
        return LayerName(naming.join(self.layer.text, what), self.layer.relative)


@dataclass(frozen=True)
class CallStmt:
    """A use of a block: `target = function(source, args)`, or a loop of `repeat` uses
    numbered `first`.. when `looped` (layer names `<layer>_<i>`)."""

    source: str
    target: str
    block: str
    function: str
    args: tuple[tuple[str, Value], ...]
    scale_residuals: bool  # the block (or one it uses) has a scaled residual sum
    classifier: bool  # the block (or one it uses) has a classifier dense
    layer: LayerName  # the instance name, or the loop's base name
    attribute: str  # the instance's (or the loop's) module in class-based code, unique
    first: int
    repeat: Value  # a number, or the enclosing block's parameter (`repeat: n`)
    looped: bool  # names `<layer><separator><i>`
    aux: bool  # an auxiliary head, built only with the top
    in_channels: Channels
    out_channels: Channels
    shape: tuple[int, ...] | None  # the output shape at the spec's input (network level)
    stmt: str = "call"
    separator: str = "_"  # "" where a named use's repeats count on from its number
    # A block of two inputs: the second's variable and channels; `carry`: the variable
    # that takes the main path's value before the call (`x, p = cell(x, p), x`), so
    # that the next use can read it as `from: -2`.
    extra: tuple[str, ...] = ()
    extra_channels: tuple[Channels, ...] = ()
    carry: str = ""
    carry_channels: Channels = Channels()  # the carried variable's after the call

    def instances(self, instance: str, env: Mapping[str, Any] | None = None) -> list[str]:
        """The names of the block uses this call makes inside the use named `instance`
        (`""` at network level): one, or a loop's `<layer><separator><i>` for each i;
        `env`: the enclosing use's parameters, where the repeat is one of them."""
        base = self.layer.within(instance)
        if not self.looped:
            return [base]
        repeat = evaluate(self.repeat, env or {})
        return [f"{base}{self.separator}{i}" for i in range(self.first, self.first + repeat)]


Stmt = Op | ConcatStmt | GateStmt | ResidualStmt | CallStmt | MergeStmt | KeepStmt


@dataclass(frozen=True)
class BlockParam:
    name: str
    type: str
    default: Value  # None when required
    required: bool


@dataclass(frozen=True)
class Function:
    """One block template, as a function or class of the generated code."""

    block: str
    name: str  # function name (naming.function_names)
    class_name: str  # class name (naming.class_names)
    params: tuple[BlockParam, ...]
    doc: tuple[str, ...]  # summary line, the block's doc, where it sits in the spec
    body: tuple[Stmt, ...]
    uses_residual: bool
    uses_classifier: bool
    out_channels: Channels
    sequential: LayerName | None = None  # each use one keras.Sequential layer, so named
    inputs: tuple[str, ...] = ("x",)  # the input tensors' variables (a dag's `inputs:`)
    output: str = "x"  # the variable it returns (a dag's last step)
    dag: bool = False  # its statements read and write named tensors (a `dag:` body)


@dataclass(frozen=True)
class Program:
    """One spec as a module: header facts, block functions, the network and its head."""

    spec: Spec
    file: str
    sha256: str
    docstring: tuple[str, ...]  # raw paragraphs (ref, doc, deviations); backends make them safe
    functions: tuple[Function, ...]
    network: tuple[Stmt, ...]
    head: tuple[Stmt, ...]
    no_top: tuple[Stmt, ...]  # after the pooling, when built without the top
    builder: str
    network_class: str
    style: str
    classes_arg: str
    classes: int
    scale_switch: bool  # the builder takes `scale` (some block has a scaled residual sum)
    scale_default: bool
    classifier_activation: str | None
    has_aux: bool
    input_shape: tuple[int, ...]
    features_shape: tuple[int, ...]
    features_channels: Channels  # `classes` where the body ends in a conv of `classes` filters
    outputs: tuple[tuple[int, ...], ...]
    width: float
    conv_defaults: dict[str, dict[str, Value]]  # by conv kind: activation, bias, bn
    bn_defaults: dict[str, Value]
    graph: Any = field(repr=False, compare=False)  # infer's Graph, for the minimum input

    def function(self, block: str) -> Function:
        return next(f for f in self.functions if f.block == block)

    def arguments(self, call: CallStmt, env: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The values one call gives its block's parameters: its arguments evaluated in
        the caller's `env` (None: the network's), the block's defaults for the rest; with
        the class count, so that `evaluate` can compute any value of the block under them."""
        outer = {CLASSES_NAME: self.classes} if env is None else env
        given = dict(call.args)
        bound: dict[str, Any] = {CLASSES_NAME: self.classes}
        for param in self.function(call.block).params:
            if param.name in given:
                bound[param.name] = evaluate(given[param.name], outer, self.width)
            else:
                bound[param.name] = param.default
        return bound

    def min_input(self, include_top: bool = True) -> int | None:
        """The smallest square input a builder lets through, up to the spec's own
        (infer.minimum_input; a bisection, so computed only for a backend that prints it)."""
        return minimum_input(self.spec, False, self.graph, include_top)

    @property
    def ops(self) -> list[Op]:
        """Every op statement, in blocks and the network, in order (for backends' helpers)."""
        out: list[Op] = []
        stack = [s for f in self.functions for s in f.body]
        stack += [*self.network, *self.head, *self.no_top]
        for stmt in stack:
            out += _ops(stmt)
        return out


def evaluate(value: Value, env: Mapping[str, Any], width: float = 1.0) -> Any:
    """A value as one block use builds it: a parameter looked up in `env`
    (Program.arguments), arithmetic computed, a widened one under the width
    multiplier `width`; a tuple item by item; a literal as it is."""
    if isinstance(value, tuple):
        return tuple(evaluate(v, env, width) for v in value)
    if isinstance(value, Param):
        number = env[value.name]
    elif isinstance(value, Arith):
        number = value.expr.evaluate(env)
    else:
        return value
    return widen(number, width) if value.widened else number


def _ops(stmt: Stmt) -> list[Op]:
    if isinstance(stmt, Op):
        return [stmt]
    if isinstance(stmt, (ConcatStmt, GateStmt, ResidualStmt)):
        inner = [op for branch in stmt.branches for s in branch for op in _ops(s)]
        if isinstance(stmt, ResidualStmt):
            shortcut = [op for s in stmt.shortcut for op in _ops(s)]
            inner += [stmt.project] if stmt.project is not None else []
            inner = inner + shortcut if stmt.shortcut_last else shortcut + inner
        return inner
    return []


# -- the walk -------------------------------------------------------------------


@dataclass
class _Scope:
    """Where statements are built: inside a block (`relative` names) or the network."""

    relative: bool
    params: set[str]
    uses_residual: bool = False
    uses_classifier: bool = False
    attributes: set[str] = field(default_factory=set)

    def attribute(self, name: str) -> str:
        """The attribute of a module this scope builds, in class-based code (the torch
        backend's nn.Module): `name` (a layer name, unique in the scope but for a
        user's overrides and names nn.Module defines), numbered on while it is taken.
        Every backend reads it from the IR, so none can assign one attribute twice."""
        if name in naming.MODULE_ATTRIBUTES:
            name += "_"
        unique, number = name, 1
        while unique in self.attributes:
            number += 1
            unique = f"{name}_{number}"
        self.attributes.add(unique)
        return unique


class _Builder:
    def __init__(self, result: Any, root: Path):
        self.result = result
        self.root = root
        self.file = relative(result.file, root)
        self.spec: Spec = result.spec
        self.graph = result.graph
        self.fn_names = naming.function_names(
            list(self.spec.blocks), self.spec.builder.name, self.spec.builder.classes_arg
        )
        params = [p for block in self.spec.blocks.values() for p in block.params]
        self.class_names = naming.class_names(list(self.spec.blocks), params)
        self.functions: dict[str, Function] = {}
        self.shapes: dict[tuple, set] = {}
        for layer in self.graph.layers:
            self.shapes.setdefault((layer.path, layer.kind), set()).add(layer.shape)

    # -- values

    def value(self, scope: _Scope, value: Value, widened: bool = False) -> Value:
        if isinstance(value, str) and value in scope.params:
            return Param(value, widened and self.spec.width != 1.0)
        if isinstance(value, str) and (expr.is_expression(value) or value == CLASSES):
            tree = expr.parse(value)  # `classes` alone too: the builder's class count
            if not tree.names:  # `2*32`: a number
                return tree.evaluate({})
            if CLASSES in tree.names and CLASSES not in scope.params:
                scope.uses_classifier = True  # the class count is a builder argument
                tree = _rename(tree, {CLASSES: expr.Expr("name", CLASSES_NAME)})
            return Arith(tree, widened and self.spec.width != 1.0)
        return value

    def pair(self, scope: _Scope, value: Any) -> tuple:
        return tuple(self.value(scope, v) for v in value)

    def line(self, path: tuple) -> int:
        _, span = self.result.source.locate(path)
        return span.line if span else 0

    def place(self, path: tuple) -> str:
        """`file:line` of a spec path, in the file that wrote it (a base spec's, for
        what a variant inherits)."""
        _, span = self.result.source.locate(path)
        return f"{relative(span.file, self.root)}:{span.line}" if span else self.file

    def op(self, scope, node, path, layer: str, source, target, channels, residual_in=None) -> Op:
        definition = ops.REGISTRY[node.kind]
        attrs = definition.attrs(self, scope, node)
        kind = node.kind
        out = self.out_channels(definition, attrs, path, channels, residual_in)
        if _class_scores(out) and attrs.get("activation") is not None:
            # An activation of the class scores is the classifier's: the builder's
            # classifier_activation, the written one its default (Program).
            attrs = {**attrs, "classifier": True}
            scope.uses_classifier = True
        override = getattr(node, "name", None)
        return Op(
            kind,
            attrs,
            LayerName(layer if override is None else override, scope.relative),
            source,
            target,
            channels,
            out,
            self.line(path),
            any(len(shape) == 1 for shape in self.shapes.get((path, kind), ())),
            scope.attribute(layer),
        )

    def out_channels(
        self, definition: ops.OpDef, attrs: dict, path: tuple, channels: Channels, residual_in
    ) -> Channels:
        """An op's output channels, by its definition's `channels` rule."""
        rule = definition.channels
        if rule == "filters":
            out = residual_in if attrs["filters"] == INPUT_CHANNELS else _symbol(attrs["filters"])
            if out is None:  # the check allows `in` filters only in a residual's projection
                raise ProgramError("`in` filters outside a residual", path, self.place(path))
            return out
        if rule == "multiplier":
            multiplier = attrs["multiplier"]
            if not isinstance(multiplier, int):
                raise ProgramError(
                    f"a {definition.kind}'s depth multiplier must be a number here (its "
                    "output channel count is printed as in_channels times it), not a block "
                    "parameter or an expression",
                    path,
                    self.place(path),
                    "write the number",
                )
            return _scaled(channels, multiplier)
        if rule == "units":
            return _symbol(attrs["units"])
        if rule == "flat":
            shapes = self.shapes.get((path, definition.kind), set())
            if len(shapes) != 1:
                raise ProgramError(
                    f"{definition.kind} at {'.'.join(map(str, path))} is used at {len(shapes)} "
                    "sizes; a code backend needs one"
                )
            size = next(iter(shapes))[0]
            if _class_scores(channels) and size == self.result.spec.classes:
                return channels  # a 1x1 map of class scores, flattened: still the scores
            return Channels(size)
        return channels

    # -- sequences

    def seq(
        self,
        scope,
        nodes,
        paths,
        prefix,
        source,
        target,
        channels,
        siblings=None,
        names=None,
        extra: tuple[tuple[str, Channels], ...] = (),
    ) -> tuple[list[Stmt], Channels]:
        """Statements for one sequence, reading `source` and leaving `target`
        (`siblings` and `names` name a node taken out of a longer one, as in resolve.seq;
        `extra`: the second input, variable and channels, of the block it starts with)."""
        out: list[Stmt] = []
        siblings = nodes if siblings is None else siblings
        names = naming.local_names(nodes) if names is None else names
        current = source
        passed = None  # the last identity, which the sequence ends with if it is all identities
        for node, path, local in zip(nodes, paths, names):
            definition = ops.REGISTRY.get(node.kind)
            if definition is not None and not definition.builds:  # identity: nothing to print
                passed = (node, path, local)
                continue
            if isinstance(node, (Concat, Gate)):
                inner = naming.scope(prefix, local, siblings)
                layer = naming.concat_layer(prefix, local, inner)
                build = self.concat if isinstance(node, Concat) else self.gate
                stmt = build(scope, node, path, inner, layer, current, target, channels)
                channels = stmt.channels
            elif isinstance(node, Residual):
                inner = naming.scope(prefix, local, siblings)
                stmt = self.residual(scope, node, path, inner, current, target, channels)
                channels = stmt.channels
            elif isinstance(node, Use):
                stmt = self.use(scope, node, naming.join(prefix, local), current, target)
                if node.name is not None:
                    stmt = _named(stmt, node.name)
                if extra:
                    variables, counts = zip(*extra)
                    stmt = replace(stmt, extra=variables, extra_channels=counts)
                stmt = self.bind(stmt, channels, path)
                channels = stmt.out_channels
            else:
                stmt = self.op(
                    scope, node, path, naming.join(prefix, local), current, target, channels
                )
                channels = stmt.out_channels
            out.append(stmt)
            current, extra = target, ()
        if current != target:  # only identities: `target = source`
            if passed is None:  # no node at all: the check refuses an empty sequence
                raise ProgramError(f"{prefix or 'the network'}: an empty sequence")
            node, path, local = passed
            out.append(
                self.op(scope, node, path, naming.join(prefix, local), current, target, channels)
            )
        return out, channels

    def dag(
        self, scope: _Scope, node: Dag, path: tuple, inputs: dict[str, Channels]
    ) -> tuple[list[Stmt], Channels]:
        """A block's `dag:`: each step's statements write the step's own variable, reading
        its sources' (the block's inputs are its arguments)."""
        out: list[Stmt] = []
        channels = dict(inputs)
        for i, step in enumerate(node.steps):
            if step.merge is not None:
                layer = step.name if step.name is not None else step.tensor
                counts = [channels[name] for name in step.reads]
                total = counts[0]
                if step.merge == "concat":
                    total = Channels()
                    for count in counts:
                        total = total + count
                out.append(
                    MergeStmt(
                        step.merge,
                        tuple(step.reads),
                        step.tensor,
                        LayerName(layer, scope.relative),
                        total,
                    )
                )
                channels[step.tensor] = total
                continue
            first, *extra = step.reads
            stmts, channels[step.tensor] = self.seq(
                scope,
                step.seq,
                step_paths(path, i, step),
                step.tensor,
                first,
                step.tensor,
                channels[first],
                extra=tuple((name, channels[name]) for name in extra),
            )
            out += stmts
        return out, channels[node.steps[-1].tensor]

    def branches(self, scope, node, path, prefix, source, variables, channels):
        base = branch_base(node, path)
        outs, counts = [], []
        for j, (branch, var) in enumerate(zip(node.branches, variables)):
            paths = [(*base, j, k) for k in range(len(branch))]
            stmts, count = self.seq(
                scope, branch, paths, naming.branch(prefix, j), source, var, channels
            )
            outs.append(tuple(stmts))
            counts.append(count)
        total = Channels()
        for count in counts:
            total = total + count
        return tuple(outs), total

    def concat(self, scope, node, path, inner, layer, source, target, channels) -> ConcatStmt:
        variables = _branch_vars(target, len(node.branches))
        branches, total = self.branches(scope, node, path, inner, source, variables, channels)
        return ConcatStmt(
            source,
            target,
            branches,
            tuple(variables),
            LayerName(layer if node.name is None else node.name, scope.relative),
            total,
        )

    def gate(self, scope, node, path, inner, layer, source, target, channels) -> GateStmt:
        scales = "scales" if target == "x" else f"{target}_scales"
        paths = gate_paths(node, path)
        branch, _ = self.seq(scope, node.branch, paths, layer, source, scales, channels)
        name = LayerName(layer if node.name is None else node.name, scope.relative)
        return GateStmt(source, target, scales, tuple(branch), name, channels)

    def residual(self, scope, node, path, prefix, source, target, channels) -> ResidualStmt:
        # Only a scaled sum takes the builder's scaling switch (as the Keras backend decides).
        scope.uses_residual |= node.scale is not None
        variables = _branch_vars(target, len(node.branches))
        r = "r" if target == "x" else f"{target}_r"
        shortcut, shortcut_var, out = [], source, channels
        if node.shortcut:
            shortcut_var = "shortcut" if target == "x" else f"{target}_shortcut"
            shortcut, out = self.seq(
                scope,
                node.shortcut,
                shortcut_paths(node, path),
                naming.join(prefix, "shortcut"),
                source,
                shortcut_var,
                channels,
            )
        branches, total = self.branches(scope, node, path, prefix, source, variables, channels)
        several = len(node.branches) > 1
        project_source = r if several else variables[0]
        project = None
        if node.project is not None:
            project = self.op(
                scope,
                node.project,
                (*path, "residual", "project"),
                naming.join(prefix, "project"),
                project_source,
                r,
                total,
                residual_in=channels,
            )
        scale = self.value(scope, node.scale)
        activation = ops.base.linear_none(self.value(scope, node.activation))
        # the activation's module is named for it, or `act` where a parameter gives it
        word = "act" if isinstance(activation, Param) else activation
        names = node.names.model_dump(exclude_none=True) if node.names else {}
        concat = names.get("concat", naming.join(prefix, "concat"))
        return ResidualStmt(
            source,
            target,
            r,
            branches,
            tuple(variables),
            LayerName(concat, scope.relative) if several else None,
            project,
            scale,
            activation,
            LayerName(prefix, scope.relative),
            out,
            tuple(shortcut),
            shortcut_var,
            "" if scale is None else scope.attribute(naming.join(prefix, "scale")),
            "" if activation is None else scope.attribute(naming.join(prefix, str(word))),
            shortcut_last=node.order == "shortcut_last",
            names=tuple(names.items()),
            operator=node.sum == "operator",
        )

    def use(self, scope, use: Use, layer: str, source, target, **kw) -> CallStmt:
        function = self.function(use.block)
        args = tuple((k, self.value(scope, v)) for k, v in use.args.items())
        scope.uses_residual |= function.uses_residual
        scope.uses_classifier |= function.uses_classifier
        return CallStmt(
            source,
            target,
            use.block,
            function.name,
            args,
            function.uses_residual,
            function.uses_classifier,
            LayerName(layer, scope.relative),
            scope.attribute(kw.get("attribute", layer)),
            kw.get("first", 1),
            self.value(scope, use.repeat),
            kw.get("looped", not isinstance(use.repeat, int) or use.repeat > 1),
            kw.get("aux", False),
            Channels(),
            Channels(),
            kw.get("shape"),
        )

    def bind(self, call: CallStmt, channels: Channels, path: tuple = ()) -> CallStmt:
        """The call with its input and output channel counts (the block's own, substituted);
        `path`: the use's, where a parameter's repeat may be refused."""
        function = self.functions[call.block]
        binding = {IN_CHANNELS: channels}
        if call.extra_channels:
            (second,) = call.extra_channels
            binding[Input(function.inputs[1]).variable] = second
        given = dict(call.args)
        for param in function.params:
            value = given.get(param.name, None if param.required else param.default)
            if isinstance(value, (Param, Arith)):
                binding[param.name] = Channels(0, ((replace(value, widened=False), 1),))
            elif isinstance(value, int) and not isinstance(value, bool):
                binding[param.name] = Channels(value)
        if not isinstance(call.repeat, int):
            out = self.repeated(function, binding, channels, call, path)
            return replace(call, in_channels=channels, out_channels=out)
        out, before = channels, Channels()
        for _ in range(call.repeat):  # each repeat takes what the one before gave
            before = out
            out = function.out_channels.substitute({**binding, IN_CHANNELS: out}, self.spec.width)
            if call.carry:  # the next repeat's second input: this one's first
                binding[Input(function.inputs[1]).variable] = before
        return replace(call, in_channels=channels, out_channels=out, carry_channels=before)

    def repeated(
        self, function: Function, binding: dict, channels: Channels, call, path
    ) -> Channels:
        """The channels after a parameter's count `n` of uses: the block's own output
        where it does not depend on its input (`conv f`), else the input plus n times
        what one use adds (a DenseNet layer's `in + k`: `in + n*k`)."""
        marked = function.out_channels.substitute(
            {**binding, IN_CHANNELS: Channels(0, ((_REPEATED_INPUT, 1),))}, self.spec.width
        )
        grows = dict(marked.terms).get(_REPEATED_INPUT, 0)
        added = Channels(marked.const, tuple(t for t in marked.terms if t[0] != _REPEATED_INPUT))
        if grows == 0:
            return added
        symbols = [
            (s, c) for s, c in added.terms if isinstance(s, (Param, Arith)) and not s.widened
        ]
        if grows != 1 or len(symbols) < len(added.terms):  # `classes`, a widened count
            raise ProgramError(
                f"block {call.block!r} repeated by a parameter changes its input's channels "
                "in a way a code backend cannot write as arithmetic on the parameters",
                path,
                self.place(path),
                "write the repeat as a number",
            )
        count = _tree(call.repeat)
        terms = [(expr.Expr("num", added.const), 1)] if added.const else []
        terms += [(_tree(symbol), coef) for symbol, coef in symbols]
        out = channels
        for term, coef in terms:
            out = out + Channels(0, ((Arith(expr.Expr("*", left=count, right=term)), coef),))
        return out

    # -- blocks and the network

    def function(self, name: str) -> Function:
        if name in self.functions:
            return self.functions[name]
        block: Block = self.spec.blocks[name]
        scope = _Scope(True, set(block.params))
        inputs = block.input_names
        if block.dag is not None:
            counts = [Channels(0, ((IN_CHANNELS, 1),))]
            counts += [Channels(0, ((Input(i), 1),)) for i in inputs[1:]]
            body, out = self.dag(
                scope,
                Dag(inputs=inputs, steps=block.dag),
                ("blocks", name),
                dict(zip(inputs, counts)),
            )
        else:
            body, out = self.seq(
                scope,
                block.body,
                body_paths(name, block),
                "",
                "x",
                "x",
                Channels(0, ((IN_CHANNELS, 1),)),
            )
        params = tuple(
            BlockParam(p, "int" if d is None else _param_type(d), d, d is None)
            for p, d in block.params.items()
        )
        doc = [(block.ref or name.replace("_", " ").capitalize()) + "."]
        if block.doc:
            doc.append(block.doc)
        where = f"Spec: {self.place(('blocks', name))}."
        stage = next((s for s in self.graph.stages if s.block == name), None)
        if stage is not None:
            where += f" Output at the spec's input: {'x'.join(map(str, stage.shape))}."
        doc.append(where)
        function = Function(
            name,
            self.fn_names[name],
            self.class_names[name],
            params,
            tuple(doc),
            tuple(body),
            scope.uses_residual,
            scope.uses_classifier,
            out,
            None if block.sequential is None else LayerName(block.sequential, True),
            tuple(inputs),
            block.dag[-1].tensor if block.dag is not None else "x",
            block.dag is not None,
        )
        self.functions[name] = function
        return function

    def network(self) -> tuple[list[Stmt], list[Stmt], list[Stmt], Channels]:
        """The network's, the head's and the `no_top:` statements, and the features'
        channels."""
        spec, graph = self.spec, self.graph
        scope = _Scope(False, set())
        shapes = {stage.path: stage.shape for stage in graph.stages}  # a repeat's last wins
        counts = Counter()
        for node in spec.network:
            if isinstance(node, Use):
                counts[node.block] += node.count
        numbers: Counter[str] = Counter()
        channels = Channels(spec.input[2])
        previous = Channels()  # what PREVIOUS holds, where a statement has set it
        out: list[Stmt] = []
        names = naming.local_names(spec.network)
        for i, (node, local) in enumerate(zip(spec.network, names)):
            path = ("network", i)
            if self.keeps_input(i):
                out.append(KeepStmt("x", PREVIOUS))
                previous = channels
            if isinstance(node, Use):
                first = numbers[node.block] + 1
                numbers[node.block] += node.count
                many = counts[node.block] > 1
                instance = naming.instance(node.block, first if many else None)
                looped = node.count > 1
                stmt = self.use(
                    scope,
                    node,
                    node.block if looped else instance,
                    "x",
                    "x",
                    attribute=local if looped else instance,
                    first=first,
                    looped=looped,
                    shape=shapes.get(path),
                )
                if node.name is not None:
                    stmt = _named(stmt, node.name)
                if self.is_cell(node):
                    stmt, previous = self.cell(stmt, node, channels, previous)
                else:
                    stmt = self.bind(stmt, channels)
                channels = stmt.out_channels
                out.append(stmt)
            elif isinstance(node, Aux):
                use = Use.model_construct(block=node.block, repeat=1, args={})
                stmt = self.use(scope, use, node.block, "x", "aux", aux=True, looped=False)
                out.append(self.bind(stmt, channels))
            else:
                stmts, channels = self.seq(
                    scope, [node], [path], "", "x", "x", channels, spec.network, [local]
                )
                out += stmts
        head_paths = [("head", i) for i in range(len(spec.head))]
        head, _ = self.seq(scope, spec.head, head_paths, "head", "x", "x", channels)
        tail_paths = [("no_top", i) for i in range(len(spec.no_top))]
        no_top, _ = self.seq(scope, spec.no_top, tail_paths, "no_top", "x", "x", channels)
        self.scope = scope
        return out, head, no_top, channels

    def cell(
        self, call: CallStmt, use: Use, channels: Channels, previous: Channels
    ) -> tuple[CallStmt, Channels]:
        """A network use of a block of two inputs (`from:` -1, the main path `x`, or -2,
        PREVIOUS), which leaves in PREVIOUS its main-path input (`x, p = cell(x, p), x`);
        with what PREVIOUS holds after it."""
        sources = use.reads(2)
        variables = ["x" if s == -1 else PREVIOUS for s in sources]
        counts = [channels if s == -1 else previous for s in sources]
        call = replace(
            call,
            source=variables[0],
            extra=(variables[1],),
            extra_channels=(counts[1],),
            carry=PREVIOUS,
        )
        call = self.bind(call, counts[0])
        return call, call.carry_channels

    def is_cell(self, node: Any) -> TypeGuard[Use]:
        """Whether a network entry is a use of a block of two inputs."""
        return isinstance(node, Use) and len(self.spec.blocks[node.block].input_names) > 1

    def keeps_input(self, index: int) -> bool:
        """Whether the network's entry `index` first keeps its input in PREVIOUS: the next
        entry that is no auxiliary head reads it (`from: -2`), and this one is no cell,
        which keeps its input itself."""
        network = self.spec.network
        node = network[index]
        if isinstance(node, Aux):  # no output of the main path: the entry before keeps it
            return False
        # the next entry that is no auxiliary head (a generator: once per entry, so the
        # 150,000 entries of test_limits' spec stay linear)
        later = (j for j in range(index + 1, len(network)) if not isinstance(network[j], Aux))
        position = next(later, None)
        following = network[position] if position is not None else None
        if not self.is_cell(following):
            return False
        if -2 not in following.reads(2) or self.is_cell(node):
            return False
        if isinstance(node, Use) and node.count > 1:
            path = ("network", position)
            raise ProgramError(
                f"`from: -2` reads the output before the last repeat of {node.block!r}, "
                "a value the generated loop does not keep",
                (*path, following.block, "from"),
                self.place(path),
                "repeat the block one time less and use it once more before this entry",
            )
        return True


def _named(call: CallStmt, name: str) -> CallStmt:
    """A use with a `name:` override: its own name, or its repeats' numbered from it
    (`block5` repeated: `block5`, `block6`, ...; else `name_1`, `name_2`, ...)."""
    if not call.looped:
        return replace(call, layer=replace(call.layer, text=name))
    stem, number = naming.split_number(name)
    if number is None:
        return replace(call, layer=replace(call.layer, text=name), first=1)
    return replace(call, layer=replace(call.layer, text=stem), first=number, separator="")


def _branch_vars(target: str, count: int) -> list[str]:
    base = "b" if target == "x" else f"{target}_"
    return [f"{base}{j + 1}" for j in range(count)]


def _param_type(default: Any) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    return "str | None"


def relative(name: str, root: Path) -> str:
    """A file name as seen from `root` (a `--set[N]` label and a shipped spec's
    `irc:NAME` stay as they are)."""
    if name.startswith(("--set", SHIPPED_PREFIX)):
        return name
    return Path(os.path.relpath(Path(name).resolve(), root)).as_posix()


def _docstring(builder: _Builder) -> tuple[str, ...]:
    """The module docstring's paragraphs: the settings in force, the spec's reference
    and doc, and every deviation with the file and line that set it."""
    spec, source = builder.spec, builder.result.source
    lines = [f"Built with {settings.in_force(spec)}."]
    lines += [text for text in (spec.ref, spec.doc) if text]
    if source.deviations:
        entries = [f"Deviations ({len(source.deviations)}; `irc deviations {builder.file}`):"]
        for dev in source.deviations:
            where = ".".join(map(str, dev.path))
            place = f"{relative(dev.span.file, builder.root)}:{dev.span.line}"
            parts = [f"{where} ({place}): {describe(dev.value)}"]
            if dev.has_paper:
                parts.append(f"paper: {describe(dev.paper)}")
            if dev.has_seed:
                parts.append(f"seed: {describe(dev.seed)}")
            entries.append("- " + "; ".join(parts) + ". " + dev.why)
        lines.append("\n".join(entries))
    return tuple(lines)


def build(result: Any, root: Path | None = None) -> Program:
    """The Program of one checked spec (a pipeline.Result whose `ok` is true); file
    names in it are relative to `root` (default: the current folder)."""
    spec = result.spec
    root = Path.cwd() if root is None else root.resolve()
    builder = _Builder(result, root)
    # A block's function is built where the network (or a block it uses) uses it, so a
    # block nothing uses is left out: dead code, and shapes infer never computed.
    network, head, no_top, features = builder.network()
    functions = tuple(builder.functions[name] for name in spec.blocks if name in builder.functions)
    classifier = next(
        (s for s in reversed(head) if isinstance(s, Op) and s.attrs.get("classifier")), None
    )
    uses_residual = any(f.uses_residual for f in functions) or builder.scope.uses_residual
    defaults = spec.defaults
    return Program(
        spec=spec,
        file=builder.file,
        sha256=hashlib.sha256(result.source.text.encode("utf-8")).hexdigest(),
        docstring=_docstring(builder),
        functions=functions,
        network=tuple(network),
        head=tuple(head),
        no_top=tuple(no_top),
        builder=spec.builder.name,
        network_class=naming.network_class(
            spec.name, [f.class_name for f in functions], spec.builder.name
        ),
        style=spec.builder.style,
        classes_arg=spec.builder.classes_arg,
        classes=spec.classes,
        scale_switch=uses_residual,
        scale_default=spec.builder.scale,
        classifier_activation=classifier.attrs["activation"] if classifier else None,
        has_aux=any(isinstance(s, CallStmt) and s.aux for s in network),
        input_shape=tuple(spec.input),
        features_shape=tuple(result.graph.features),
        features_channels=features,
        outputs=tuple(tuple(s) for s in result.graph.outputs),
        width=spec.width,
        conv_defaults={
            kind: {
                "activation": ops.base.linear_none(defaults.of(kind).activation),
                "bias": defaults.of(kind).bias,
                "bn": defaults.of(kind).bn,
                "fused": defaults.of(kind).fused,
            }
            for kind in ops.conv.DefaultsEntries.model_fields
        },
        bn_defaults={
            "scale": defaults.bn.scale,
            "epsilon": defaults.bn.epsilon,
            "momentum": defaults.bn.momentum,
        },
        graph=result.graph,
    )
