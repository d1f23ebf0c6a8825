"""Stage 3, resolve: block templates, parameters and repeats to one concrete network.

Every block use is checked against its template (the block exists, is not
its own ancestor, gets exactly the parameters it declares), parameters are
substituted, spec defaults are applied to each op, repeats are unrolled and
every op gets its final layer name (see naming). The result still refers to
spec paths, so later stages can point at the line an op was written on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Union

from . import compact, expr, naming, ops
from .diagnostics import Diagnostic, did_you_mean
from .graph import SpecPath
from .fields import INPUT_CHANNELS, MAX_COUNT, MAX_REPEAT
from .schema import (
    Aux,
    Block,
    Concat,
    Dag,
    Gate,
    Residual,
    Spec,
    Step,
    Use,
)

MAX_LAYERS = 200_000


@dataclass(frozen=True)
class Null:
    """A block argument written null (`c: ~`): no activation or no scale where it gives
    one, but an error (at the argument) where a number is needed, where it once passed
    the check and then failed in the generated builder."""

    block: str
    param: str
    path: SpecPath


MAX_NESTING = 32  # blocks using blocks using blocks...


@dataclass(frozen=True)
class ROp:
    """A concrete op: every field a number or a name, defaults applied."""

    op: Any  # a compiler.schema op model
    name: str
    path: SpecPath


@dataclass(frozen=True)
class RConcat:
    name: str
    branches: tuple[tuple[RNode, ...], ...]
    path: SpecPath


@dataclass(frozen=True)
class RResidual:
    """`shortcut(x) + scale * project(branches(x))`, then `activation`.

    An empty `shortcut` is the identity; `project` None adds the branches'
    output (concatenated when there are several) as it is. Layers: the
    branches' concat `<prefix>_concat`, `<prefix>_scale`, `<prefix>_add`,
    `<prefix>_<activation>`; shortcut ops are named under `<prefix>_shortcut`.
    """

    prefix: str
    branches: tuple[tuple[RNode, ...], ...]
    project: ROp | None
    scale: float | None
    activation: str | None
    path: SpecPath
    shortcut: tuple[RNode, ...] = ()
    shortcut_last: bool = False  # the sum is `residual + shortcut` (order: shortcut_last)
    names: tuple[tuple[str, str], ...] = ()  # `names:` overrides: part -> whole layer name
    operator: bool = False  # Keras' `+` (sum: operator): an operation, not a layer

    def part(self, what: str) -> str:
        """The layer name of `concat`, `scale`, `add` or `activation` (named after it)."""
        default = self.activation if what == "activation" else what
        return dict(self.names).get(what, naming.join(self.prefix, default or ""))


@dataclass(frozen=True)
class RGate:
    """`x * branch(x)`: the branch's output (1x1xC or HxWxC) scales x channel-wise.

    One Multiply layer, `name`, with x first and the branch's output second.
    """

    name: str
    branch: tuple[RNode, ...]
    path: SpecPath


@dataclass(frozen=True)
class RStep:
    """One named tensor of a dag: `body` on `sources` (a sequence; two sources where it
    starts with a block of two inputs), or `merge` (`add`, `concat`) of `sources` in
    order, one layer named `name`."""

    tensor: str
    sources: tuple[str, ...]
    body: tuple[RNode, ...]
    merge: str | None
    name: str
    path: SpecPath


@dataclass(frozen=True)
class RDag:
    """A block's `dag:`: its input tensors' names, and the steps; the last is the output."""

    inputs: tuple[str, ...]
    steps: tuple[RStep, ...]
    path: SpecPath


RNode = Union[ROp, RConcat, RResidual, RGate, RDag]


@dataclass(frozen=True)
class RStage:
    name: str
    block: str | None
    number: int | None
    count: int
    body: tuple[RNode, ...]
    path: SpecPath
    role: str  # "body", "aux", "head" or "no_top" (built only without the top)
    # The inputs of a block with several (Use.sources): network entries' outputs counted
    # back, -1 the main path.
    sources: tuple[int, ...] = (-1,)


@dataclass(frozen=True)
class Resolved:
    spec: Spec
    stages: tuple[RStage, ...]


def body_paths(name: str, block: Block) -> list[SpecPath]:
    """Spec path of each node of a block's body (see Block.body)."""
    if block.seq is not None:
        return [("blocks", name, "seq", i) for i in range(len(block.seq))]
    return [("blocks", name)]


def branch_base(node: Concat | Residual, path: SpecPath) -> SpecPath:
    """Where a composite's branches live: `(..., "concat", j, k)` or `(..., "residual", "branches", j, k)`."""
    if isinstance(node, Concat):
        return (*path, "concat")
    return (*path, "residual", "branches")


def gate_paths(node: Gate, path: SpecPath) -> list[SpecPath]:
    """Spec paths of a gate's branch ops: `(..., "gate", k)`."""
    return [(*path, "gate", k) for k in range(len(node.branch))]


def step_paths(path: SpecPath, index: int, step: Step) -> list[SpecPath]:
    """Spec path of each node of a dag step's `seq:` (the dag at `path`)."""
    return [(*path, "dag", index, step.tensor, "seq", k) for k in range(len(step.seq or ()))]


def shortcut_paths(node: Residual, path: SpecPath) -> list[SpecPath]:
    """Spec paths of a residual's shortcut ops: `(..., "residual", "shortcut", k)`."""
    return [(*path, "residual", "shortcut", k) for k in range(len(node.shortcut or ()))]


class _Resolver:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.diagnostics: list[Diagnostic] = []
        self.base = ""  # the block use being expanded: name overrides are relative to it
        # Ops `run`'s count leaves for the repeats parameters give (see `repeat`).
        self.budget = MAX_LAYERS
        self.memo: dict[str, int] = {}  # op_count's, per block
        # The path of the use a two-input dag step starts with: the one place inside a
        # block where a block of two inputs may be used (see one_input).
        self.cell: SpecPath | None = None

    def error(self, code: str, message: str, path: SpecPath, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, hint=hint, path=path))

    # -- references -------------------------------------------------------

    def check_block_graph(self) -> bool:
        """Unknown blocks and cycles; False when expansion cannot proceed."""
        ok = True
        for path, use in self._uses():
            if use.block not in self.spec.blocks:
                ok = False
                self.diagnostics.append(unknown_block(use.block, self.spec.blocks, path))
        if not ok:  # nothing is expanded; the uses of known blocks get their arguments checked
            for path, use in self._uses():
                if isinstance(use, Use) and use.block in self.spec.blocks:
                    self.check_args(use, path)
            return False
        depth = self._depth()
        if depth > MAX_NESTING:
            self.error(
                "IRC404",
                f"blocks use blocks {depth} levels deep; irc accepts at most {MAX_NESTING}",
                ("blocks",),
                hint="flatten the nesting",
            )
            return False
        done: set[str] = set()
        for name in self.spec.blocks:
            found = self._cycle(name, [name], done)
            if found:
                trail, path = found
                self.error(
                    "IRC402",
                    f"block {trail[0]!r} uses itself: {' -> '.join(trail)}",
                    path,
                    hint="a block cannot contain itself, directly or through another block",
                )
                return False
        return True

    def _depth(self) -> int:
        """How deep block uses nest (iteratively: a chain may be thousands long)."""
        children = {
            name: {use.block for _, use in self._uses_in(block.body, body_paths(name, block))}
            & set(self.spec.blocks)
            for name, block in self.spec.blocks.items()
        }
        depth: dict[str, int] = {}
        for root in children:
            stack = [(root, iter(children[root]))]
            on_path = {root}
            while stack:
                name, pending = stack[-1]
                child = next(pending, None)
                if child is None:
                    stack.pop()
                    on_path.discard(name)
                    depth[name] = 1 + max((depth.get(c, 0) for c in children[name]), default=0)
                elif child not in depth and child not in on_path:  # cycles: reported later
                    stack.append((child, iter(children[child])))
                    on_path.add(child)
        return max(depth.values(), default=0)

    def _cycle(self, name: str, trail: list[str], done: set[str]):
        """(the cycle's block names, the path of its first use) or None.

        `done` holds blocks already known to be acyclic, so each is walked once.
        """
        if name in done:
            return None
        if len(trail) > MAX_NESTING:
            return None  # reported by check_block_graph
        block = self.spec.blocks[name]
        for path, use in self._uses_in(block.body, body_paths(name, block)):
            if use.block in trail:
                return [*trail, use.block], path
            found = self._cycle(use.block, [*trail, use.block], done)
            if found:
                return found[0], found[1] if len(trail) > 1 else path
        done.add(name)
        return None

    def op_count(self, nodes, memo: dict[str, int]) -> int:
        """How many ops a sequence unrolls to, without unrolling it."""
        total = 0
        for node in nodes:
            if isinstance(node, (Use, Aux)):
                if node.block not in memo:
                    memo[node.block] = self.op_count(self.spec.blocks[node.block].body, memo)
                # A parameter's repeat is known only per use: `unrolled` bounds those.
                repeat = getattr(node, "repeat", 1)
                total += memo[node.block] * (repeat if isinstance(repeat, int) else 1)
            elif isinstance(node, (Concat, Residual)):
                total += sum(self.op_count(branch, memo) for branch in node.branches)
                if isinstance(node, Residual):
                    total += 1 + self.op_count(node.shortcut or (), memo)
            elif isinstance(node, Gate):
                total += 1 + self.op_count(node.branch, memo)
            elif isinstance(node, Dag):
                total += sum(self.op_count(s.seq, memo) if s.seq else 1 for s in node.steps)
            else:
                total += 1
        return total

    def _everywhere(self):
        """(path, node, the enclosing block or None) for every node of the spec."""
        for field in ("network", "head"):
            nodes = getattr(self.spec, field)
            for path, node in _walk(nodes, [(field, i) for i in range(len(nodes))]):
                yield path, node, None
        for name, block in self.spec.blocks.items():
            for path, node in _walk(block.body, body_paths(name, block)):
                yield path, node, block

    def _uses(self):
        for path, node, _ in self._everywhere():
            if isinstance(node, (Use, Aux)):
                yield path, node

    def _uses_in(self, nodes, paths):
        for path, node in _walk(nodes, paths):
            if isinstance(node, (Use, Aux)):
                yield path, node

    def check_tensor_names(self) -> None:
        """A dag's tensors are variables of its block's generated function: none may be a
        parameter of the block or a block's function, which it would hide (nor, for a
        second input, `<name>_channels`, its channel count in torch's constructor)."""
        functions = set(self.spec.blocks) | {f"{b}_block" for b in self.spec.blocks}
        for name, block in self.spec.blocks.items():
            if block.dag is None:
                continue
            places = [(t, ("blocks", name, "inputs", i)) for i, t in enumerate(block.input_names)]
            places += [
                (step.tensor, ("blocks", name, "dag", i, step.tensor, "[key]"))
                for i, step in enumerate(block.dag)
            ]
            extra = {f"{t}_channels" for t in block.input_names[1:]} & set(block.params)
            for tensor, path in places:
                if tensor in block.params or tensor in functions:
                    what = "a parameter of the block" if tensor in block.params else "a block"
                    self.error(
                        "IRC206",
                        f"dag tensor {tensor!r} is also {what}; the generated code's "
                        "variable would hide it",
                        path,
                        hint="give the tensor another name",
                    )
            for param in sorted(extra):
                self.error(
                    "IRC206",
                    f"parameter {param!r} is the name torch's constructor gives the channels "
                    f"of the input {param.removesuffix('_channels')!r}",
                    ("blocks", name, "params", param, "[key]"),
                    hint="give the parameter or the input another name",
                )

    def check_activations(self) -> None:
        """Activation names everywhere, unused blocks included (expansion checks the rest)."""
        for path, node, block in self._everywhere():
            params = block.params if block is not None else {}
            value = getattr(node, "activation", None)
            if isinstance(value, str) and value not in compact.ACTIVATIONS and value not in params:
                self.activation(value, {}, (*path, "activation"))
        # A default is reported once, where it is written, not at every conv it reaches
        # (`concrete` builds those without it).
        for kind in ops.conv.DefaultsEntries.model_fields:
            own = getattr(self.spec.defaults, kind)
            if own is not None and own.activation not in compact.ACTIVATIONS:
                self.activation(own.activation, {}, ("defaults", kind, "activation"))

    # -- expansion --------------------------------------------------------

    def run(self) -> Resolved:
        self.check_activations()
        self.check_tensor_names()
        if not self.check_block_graph():
            return Resolved(self.spec, ())
        spec = self.spec
        memo = self.memo
        layers = 0
        for i, node in enumerate(spec.network):
            layers += self.op_count([node], memo)
            if layers > MAX_LAYERS:
                self.error(
                    "IRC404",
                    f"the network unrolls to more than {MAX_LAYERS:,} ops by this entry",
                    ("network", i),
                    hint="lower the repeat counts",
                )
                return Resolved(spec, ())
        self.budget = MAX_LAYERS - layers
        for i, node in enumerate(spec.network):
            if isinstance(node, Use) and isinstance(node.repeat, str):
                self.error(
                    "IRC403",
                    f"repeat {node.repeat!r} names a parameter, but this use is in no block",
                    ("network", i, node.block, "repeat"),
                    hint="write the number, or move the use into a block that takes it",
                )
                return Resolved(spec, ())
        counts = Counter()
        for node in spec.network:
            if isinstance(node, Use):
                counts[node.block] += node.count
        numbers: Counter[str] = Counter()
        stages: list[RStage] = []
        env = {"classes": spec.classes}
        locals_ = naming.local_names(spec.network)
        for i, (node, local) in enumerate(zip(spec.network, locals_)):
            path: SpecPath = ("network", i)
            if isinstance(node, Use):
                sources = self.sources(node, path)
                for r in range(node.count):
                    numbers[node.block] += 1
                    many = counts[node.block] > 1
                    name = naming.instance(node.block, numbers[node.block] if many else None)
                    if node.name:
                        name = naming.numbered(node.name, r, node.count > 1)
                    body = self.use(node, name, path, env)
                    stages.append(
                        RStage(
                            name,
                            node.block,
                            numbers[node.block],
                            counts[node.block],
                            body,
                            path,
                            "body",
                            sources,
                        )
                    )
            elif isinstance(node, Aux):
                self.one_input(node.block, path)
                body = self.use(
                    Use.model_construct(block=node.block, repeat=1, args={}), node.block, path, env
                )
                stages.append(RStage(node.block, node.block, None, 1, body, path, "aux"))
            elif isinstance(node, (Concat, Residual, Gate)):
                body = self.seq([node], [path], "", env, spec.network, [local])
                stages.append(RStage(local, None, None, 1, body, path, "body"))
            else:  # a plain op between blocks is a stage of its own, named like one
                name = self.layer_name(node, "", local, path)
                op = ROp(self.concrete(node, path, env), name, path)
                stages.append(RStage(name, None, None, 1, (op,), path, "body"))
        if spec.head:
            head = self.seq(spec.head, [("head", i) for i in range(len(spec.head))], "head", env)
            stages.append(RStage("head", None, None, 1, head, ("head",), "head"))
        if spec.no_top:
            paths = [("no_top", i) for i in range(len(spec.no_top))]
            tail = self.seq(spec.no_top, paths, "no_top", env)
            stages.append(RStage("no_top", None, None, 1, tail, ("no_top",), "no_top"))
        return Resolved(spec, tuple(stages))

    def sources(self, use: Use, path: SpecPath) -> tuple[int, ...]:
        """What a use in `network` reads: for a block of two inputs, the last two
        entries' outputs (`from: [-1, -2]`, the default) or what `from:` says."""
        inputs = self.spec.blocks[use.block].input_names
        where = (*path, use.block, "from")
        sources = use.reads(len(inputs))
        if len(sources) != len(inputs):
            self.error(
                "IRC408",
                f"block {use.block!r} takes {len(inputs)} input{'s' * (len(inputs) > 1)} "
                f"({', '.join(inputs)}), but `from` lists {len(sources)}",
                where,
                hint=f"write `from: {[-1, -2][: len(inputs)]}`, one entry per input",
            )
            return (-1, -2)[: len(inputs)]
        if len(inputs) == 1 and sources != (-1,):
            self.error(
                "IRC408",
                f"block {use.block!r} takes one input, the main path; `from:` names the "
                "inputs of a block of two",
                where,
                hint="drop `from:`, or give the block `inputs: [x, p]` and a `dag:`",
            )
            return (-1,)
        if use.count > 1 and sources not in ((-1,), (-1, -2)):
            self.error(
                "IRC408",
                f"a repeated use of {use.block!r} reads the two outputs before each repeat "
                f"(`from: [-1, -2]`), not {list(sources)}",
                where,
                hint="use the block once with this `from`, and repeat it in the next entry",
            )
        return sources

    def one_input(self, block: str, path: SpecPath, cell: bool = False) -> None:
        """A block of two inputs is used in `network` or first in a two-input dag step
        (`cell`), where its inputs are given; anywhere else, which would they be?"""
        inputs = self.spec.blocks[block].input_names
        if len(inputs) > 1 and not cell:
            self.error(
                "IRC408",
                f"block {block!r} takes {len(inputs)} inputs ({', '.join(inputs)}); "
                "a use here gives it one",
                path,
                hint="use it in `network` (`from: [-1, -2]`), or first in a dag step "
                "that reads two tensors (`{out: {from: [a, b], seq: [...]}}`)",
            )

    def use(self, use: Use, name: str, path: SpecPath, outer: dict) -> tuple[RNode, ...]:
        block = self.spec.blocks[use.block]
        self.check_args(use, path)
        env: dict[str, Any] = {"classes": self.spec.classes}  # class count, parameter values
        for arg, value in use.args.items():
            if arg in block.params:
                # An argument may name a parameter of the enclosing block, or compute on them.
                if isinstance(value, str) and expr.is_expression(value):
                    value = self.number(value, outer, (*path, use.block, arg), arg)
                if value is None and use.args[arg] is None:
                    value = Null(use.block, arg, (*path, use.block, arg))
                env[arg] = outer.get(value, value) if isinstance(value, str) else value
        for param, default in block.params.items():
            env.setdefault(param, default)  # a required one missing is reported: None
        outer_base, self.base = self.base, name
        try:
            body = self.seq(block.body, body_paths(use.block, block), name, env)
        finally:
            self.base = outer_base
        if block.sequential is not None and not all(isinstance(n, ROp) for n in body):
            self.error(
                "IRC406",
                f"block '{use.block}' is one keras.Sequential, a chain of layers: no residual, "
                "concat or gate inside it (nor in a block it uses)",
                ("blocks", use.block, "sequential"),
                hint="drop `sequential:`, or keep the sum or branches outside the block",
            )
        return body

    def check_args(self, use: Use, path: SpecPath) -> None:
        """Arguments the block does not declare, and required parameters not given."""
        block = self.spec.blocks[use.block]
        for arg in use.args:
            if arg not in block.params:
                self.error(
                    "IRC403",
                    f"block {use.block!r} has no parameter {arg!r}",
                    (*path, use.block, arg, "[key]"),
                    hint=did_you_mean(arg, [*block.params, "repeat"])
                    or f"a use takes `repeat` and the block's parameters: "
                    f"{', '.join(block.params) or 'it has none'}",
                )
        for param, default in block.params.items():
            if default is None and param not in use.args:
                self.error(
                    "IRC403",
                    f"block {use.block!r} needs parameter {param!r}",
                    path,
                    hint=f"write `{use.block}: {{{', '.join(f'{p}: ...' for p in block.params)}}}`",
                )

    def layer_name(self, node: Any, prefix: str, local: str, path: SpecPath) -> str:
        """The node's layer name: its override (relative to the block use) or its place."""
        override = getattr(node, "name", None)
        if override is None:
            return naming.join(prefix, local)
        return self.named(override, (*path, "name"))

    def named(self, override: str, path: SpecPath) -> str:
        """The layer name `override` (written at `path`) gives inside the current block use."""
        if not self.base and (not override or naming.USE in override):
            what = "a `*` in a layer name stands for" if override else "an empty layer name means"
            self.error(
                "IRC403",
                f"{what} the block use's own name, but this op is in no block",
                path,
                hint="write the whole name",
            )
        return naming.override(self.base, override)

    def seq(
        self, nodes, paths, prefix: str, env: dict, siblings=None, names=None
    ) -> tuple[RNode, ...]:
        """Resolve a sequence; `siblings` and `names` name a node taken out of a
        longer one (a concat or residual in `network`)."""
        out: list[RNode] = []
        siblings = nodes if siblings is None else siblings
        names = naming.local_names(nodes) if names is None else names
        for node, path, local in zip(nodes, paths, names):
            if isinstance(node, Concat):
                inner = naming.scope(prefix, local, siblings)
                name = naming.concat_layer(prefix, local, inner)
                if node.name is not None:
                    name = self.layer_name(node, prefix, local, path)
                out.append(RConcat(name, self.branches(node, path, inner, env), path))
            elif isinstance(node, Gate):
                inner = naming.scope(prefix, local, siblings)
                name = naming.concat_layer(prefix, local, inner)
                if node.name is not None:
                    name = self.layer_name(node, prefix, local, path)
                # The branch is named under the gate (`se_gate_conv1`), never beside the path.
                branch_prefix = naming.concat_layer(prefix, local, inner)
                branch = self.seq(node.branch, gate_paths(node, path), branch_prefix, env)
                out.append(RGate(name, branch, path))
            elif isinstance(node, Residual):
                out.append(self.residual(node, path, naming.scope(prefix, local, siblings), env))
            elif isinstance(node, Dag):
                out.append(self.dag(node, path, prefix, env))
            elif isinstance(node, Use):
                self.one_input(node.block, path, cell=path == self.cell)
                if node.sources is not None:
                    self.error(
                        "IRC408",
                        "`from:` picks a use's inputs among the network's entries; "
                        "here its inputs are the sequence's",
                        (*path, node.block, "from"),
                        hint="in a dag, write `from:` on the step: `{out: {from: [a, b], "
                        "seq: [...]}}`",
                    )
                repeat = self.repeat(node, path, env)
                # A parameter's repeat is a loop in the code, numbered even when it is 1.
                looped = repeat > 1 or isinstance(node.repeat, str)
                for r in range(repeat):
                    name = naming.join(prefix, f"{local}_{r + 1}" if looped else local)
                    if node.name is not None:
                        name = naming.override(self.base, naming.numbered(node.name, r, looped))
                    out.extend(self.use(node, name, path, env))
            elif isinstance(node, Aux):
                self.error(
                    "IRC406",
                    "an auxiliary head can only branch off the network's main path",
                    path,
                    hint="move `aux:` into `network:`",
                )
            else:
                name = self.layer_name(node, prefix, local, path)
                out.append(ROp(self.concrete(node, path, env), name, path))
        return tuple(out)

    def dag(self, node: Dag, path: SpecPath, prefix: str, env: dict) -> RDag:
        """The steps of a `dag:`, each reading tensors defined before it; every step but
        the last is read by a later one (Keras leaves an unread layer out of the model)."""
        known = dict.fromkeys(node.inputs)
        read: set[str] = set()
        steps: list[RStep] = []
        for i, step in enumerate(node.steps):
            where = (*path, "dag", i, step.tensor)
            if step.tensor in known:
                what = "an input of the block" if step.tensor in node.inputs else "defined before"
                self.error(
                    "IRC408",
                    f"dag tensor {step.tensor!r} is already {what}",
                    (*where, "[key]"),
                    hint="give each step a name of its own",
                )
            field = (*where, step.merge or "from")
            for j, source in enumerate(step.reads):
                if source not in known:
                    self.error(
                        "IRC408",
                        f"dag step {step.tensor!r} reads {source!r}, which is neither an "
                        "input of the block nor a step before it",
                        (*field, j)
                        if step.merge or step.sources and len(step.sources) > 1
                        else field,
                        hint=did_you_mean(source, known)
                        or f"the tensors so far: {', '.join(known)}",
                    )
            read |= set(step.reads)
            known[step.tensor] = None
            steps.append(self.step(step, where, prefix, env))
        for i, step in enumerate(node.steps[:-1]):
            if step.tensor not in read:
                self.error(
                    "IRC408",
                    f"dag step {step.tensor!r} is read by no later step, so its layers "
                    "would not be in the model",
                    (*path, "dag", i, step.tensor, "[key]"),
                    hint=f"read it in a later step, or delete it; the last step "
                    f"({node.steps[-1].tensor!r}) is the block's output",
                )
        return RDag(tuple(node.inputs), tuple(steps), path)

    def step(self, step: Step, where: SpecPath, prefix: str, env: dict) -> RStep:
        local = naming.join(prefix, step.tensor)
        if step.merge is not None:
            name = local if step.name is None else self.named(step.name, (*where, "name"))
            return RStep(step.tensor, tuple(step.reads), (), step.merge, name, where)
        paths = [(*where, "seq", k) for k in range(len(step.seq or ()))]
        nodes = list(step.seq or ())
        first = nodes[0]
        inputs = len(step.reads)
        takes = (
            len(self.spec.blocks[first.block].input_names)
            if isinstance(first, Use) and first.block in self.spec.blocks
            else 1
        )
        if inputs > 1 and takes != inputs:
            self.error(
                "IRC408",
                f"dag step {step.tensor!r} reads {inputs} tensors, so its `seq:` starts with "
                f"a use of a block of {inputs} inputs",
                (*where, "from"),
                hint="read one tensor, or start the sequence with such a block",
            )
        outer, self.cell = self.cell, paths[0] if inputs > 1 else None
        if isinstance(first, Use) and takes > 1 and first.repeat != 1:
            self.error(
                "IRC408",
                f"block {first.block!r} of {takes} inputs is used once per dag step",
                (*paths[0], first.block, "repeat"),
                hint="write one step per use",
            )
        try:
            body = self.seq(nodes, paths, local, env)
        finally:
            self.cell = outer
        return RStep(step.tensor, tuple(step.reads), body, None, "", where)

    def repeat(self, node: Use, path: SpecPath, env: dict) -> int:
        """How many times a use repeats here: its number, or its parameter's value (0
        after an error). `op_count` counted a parameter's repeat once; the others
        come out of `budget`, so nested ones cannot unroll past MAX_LAYERS."""
        if isinstance(node.repeat, int):
            return node.repeat
        where = (*path, node.block, "repeat")
        repeat = self.number(node.repeat, env, where, "repeat") or 0
        if self.budget < 0:  # past MAX_LAYERS already, and said so
            return 0
        if repeat > MAX_REPEAT:
            self.error(
                "IRC403",
                f"repeat {node.repeat!r} is {repeat:,} at this use, more than {MAX_REPEAT:,}",
                where,
                hint="pass a smaller count",
            )
            return 0
        extra = (repeat - 1) * self.op_count(self.spec.blocks[node.block].body, self.memo)
        if extra > self.budget:
            self.error(
                "IRC404",
                f"the network unrolls to more than {MAX_LAYERS:,} ops by this use",
                where,
                hint="lower the repeat counts",
            )
            self.budget = -1  # every later parameter's repeat stops too
            return 0
        self.budget -= extra
        return repeat

    def branches(self, node, path: SpecPath, prefix: str, env: dict):
        base = branch_base(node, path)
        return tuple(
            self.seq(
                branch, [(*base, j, k) for k in range(len(branch))], naming.branch(prefix, j), env
            )
            for j, branch in enumerate(node.branches)
        )

    def residual(self, node: Residual, path: SpecPath, prefix: str, env: dict) -> RResidual:
        project_path = (*path, "residual", "project")
        project = None
        if node.project is not None:
            project = ROp(
                self.concrete(node.project, project_path, env),
                self.layer_name(node.project, prefix, "project", project_path),
                project_path,
            )
        shortcut = ()
        if node.shortcut is not None:
            shortcut = self.seq(
                node.shortcut,
                shortcut_paths(node, path),
                naming.join(prefix, "shortcut"),
                env,
            )
        scale = self.param(node.scale, env, (*path, "residual", "scale"), "scale")
        scale = None if isinstance(scale, Null) else scale
        if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))):
            self.error(
                "IRC403",
                f"residual scale must be a number, got {scale!r}",
                (*path, "residual", "scale"),
            )
            scale = None
        elif scale is not None and not 0 < scale <= 1_000:  # a parameter's value: as the literal
            self.error(
                "IRC207",
                f"residual scale must be a positive number, got {scale!r}",
                (*path, "residual", "scale"),
            )
            scale = None
        if not self.spec.builder.scale:
            scale = None  # the default build has residual scaling off
        activation = self.activation(node.activation, env, (*path, "residual", "activation"))
        names = node.names.model_dump(exclude_none=True) if node.names else {}
        return RResidual(
            prefix,
            self.branches(node, path, prefix, env),
            project,
            scale,
            activation,
            path,
            shortcut,
            node.order == "shortcut_last",
            tuple(
                (part, self.named(name, (*path, "residual", "names", part)))
                for part, name in names.items()
            ),
            node.sum == "operator",
        )

    # -- values -----------------------------------------------------------

    def param(self, value: Any, env: dict, path: SpecPath, field: str) -> Any:
        if not isinstance(value, str):
            return value
        if value in env:
            return env[value]
        self.error(
            "IRC403",
            f"{field} refers to {value!r}, which is not a parameter here",
            path,
            hint=_unknown_name_hint(value, env),
        )
        return None

    def fraction(self, value: Any, env: dict, path: SpecPath, field: str) -> float | None:
        """A number in [0, 1) (a dropout rate): a literal or a block parameter's value."""
        value = self.param(value, env, path, field)
        if isinstance(value, Null):
            return self.null(value, field, "a number in [0, 1)")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            self.error("IRC207", f"{field} must be a number in [0, 1), got {value!r}", path)
            return None
        return float(value)

    def activation(self, value: Any, env: dict, path: SpecPath) -> str | None:
        if isinstance(value, str) and value not in compact.ACTIVATIONS and value in env:
            value = env[value]
        if value is None or value == "linear" or isinstance(value, Null):
            return None
        if value not in compact.ACTIVATIONS:
            self.error(
                "IRC205",
                f"unknown activation {value!r}",
                path,
                hint=compact.activation_hint(str(value)),
            )
            return None
        return value

    def concrete(self, op: Any, path: SpecPath, env: dict) -> Any:
        """The op with parameters substituted and the spec's defaults filled in."""
        update: dict[str, Any] = {}
        windows = (("kernel", 1), ("pool", 1), ("strides", 1), ("padding", 0), ("cropping", 0))
        for field, low in windows:
            value = getattr(op, field, None)
            if isinstance(value, tuple):
                update[field] = tuple(
                    self.number(v, env, (*path, field), field, low) for v in value
                )
        update |= ops.REGISTRY[op.kind].concrete(self, op, path, env)
        return op.model_copy(update=update)

    def number(self, value: Any, env: dict, path: SpecPath, field: str, low: int = 1) -> int | None:
        """A whole number at least `low`: a literal, a parameter, or arithmetic on parameters."""
        if isinstance(value, str) and expr.is_expression(value):
            try:
                parsed = expr.parse(value)
            except expr.ExprError as exc:
                self.error("IRC207", f"{field} {value!r}: {exc.message}", path)
                return None
            missing = sorted(parsed.names - set(env))
            if missing:
                self.error(
                    "IRC403",
                    f"{field} refers to {missing[0]!r}, which is not a parameter here",
                    path,
                    hint=_unknown_name_hint(missing[0], env),
                )
                return None
            for name in sorted(parsed.names):
                if isinstance(env[name], Null):
                    return self.null(env[name], field)
            if any(env[name] is None for name in parsed.names):
                return None  # a parameter already reported as invalid
            try:
                value = parsed.evaluate(env)
            except expr.ExprError as exc:
                self.error("IRC207", f"{field} {value!r}: {exc.message}", path)
                return None
        else:
            value = self.param(value, env, path, field)
        if isinstance(value, Null):
            return self.null(value, field)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            least = {0: "a non-negative whole number", 1: "a positive whole number"}
            wanted = least.get(low, f"a whole number of at least {low}")
            self.error("IRC207", f"{field} must be {wanted}, got {value!r}", path)
            return None
        if value > MAX_COUNT:  # the schema's bound on literals, for computed values too
            self.error(
                "IRC207",
                f"{field} is {len(str(value))} digits long; at most {MAX_COUNT:,} is accepted",
                path,
                hint="check the arithmetic on the block's parameters",
            )
            return None
        return value

    def null(self, value: Null, field: str, needs: str = "a whole number") -> None:
        """A null argument where a number is needed: the error is at the argument."""
        self.error(
            "IRC403",
            f"block {value.block!r} parameter {value.param!r} is null where {field} needs {needs}",
            value.path,
            hint=f"give {value.param!r} a number, or leave it out to take the block's default",
        )

    def count(self, value: Any, env: dict, path: SpecPath, field: str) -> int | str | None:
        if value == INPUT_CHANNELS:
            return value  # infer knows the residual's input channels
        return self.number(value, env, path, field)


def _walk(nodes, paths):
    """(path, node) for each node and, depth first, everything inside it."""
    for node, path in zip(nodes, paths):
        yield path, node
        if isinstance(node, (Concat, Residual)):
            base = branch_base(node, path)
            for j, branch in enumerate(node.branches):
                yield from _walk(branch, [(*base, j, k) for k in range(len(branch))])
        if isinstance(node, Residual):
            if node.project is not None:
                yield (*path, "residual", "project"), node.project
            if node.shortcut is not None:
                yield from _walk(node.shortcut, shortcut_paths(node, path))
        if isinstance(node, Gate):
            yield from _walk(node.branch, gate_paths(node, path))
        if isinstance(node, Dag):
            for i, step in enumerate(node.steps):
                yield from _walk(step.seq or (), step_paths(path, i, step))


def resolve(spec: Spec) -> tuple[Resolved, list[Diagnostic]]:
    resolver = _Resolver(spec)
    resolved = resolver.run()
    return resolved, resolver.diagnostics


def unknown_block(name: str, blocks: Iterable[str], path: SpecPath) -> Diagnostic:
    """IRC401 for a use of a block that `blocks:` does not define: resolve's check, and
    compiler.references' on a spec whose schema failed, in the same words."""
    if name in compact.KERAS_ONLY_ACTIVATIONS:  # never "did you mean" another function
        hint = compact.activation_hint(name)
    else:
        hint = did_you_mean(name, [*blocks, *ops.KINDS, *compact.ACTIVATIONS]) or (
            f"define it under `blocks:`; ops are {', '.join(ops.KINDS)}"
        )
    return Diagnostic("IRC401", f"unknown block or op {name!r}", hint=hint, path=path)


def _unknown_name_hint(name: str, env: dict) -> str:
    """How to fix a value that names no parameter. `in` is a word of its own: a
    residual projection's whole filter count (`conv in 1x1`), never arithmetic."""
    if name == INPUT_CHANNELS:
        return (
            "`in` works only alone, as a residual's `project` filters (`conv in 1x1 linear`); "
            "for arithmetic on the input's channels, give the block a parameter "
            "(`params: [c]`, `conv 6*c 1x1`) and pass the channels at each use (`{mbconv: {c: 16}}`)"
        )
    return did_you_mean(name, env) or "declare it in the block's `params`"
