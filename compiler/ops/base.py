"""What an op kind is, and the registry every stage looks an op up in.

An `OpDef` says everything the compiler knows about one op kind: its Pydantic
model (fields, defaults, local rules), its compact syntax, its entry under a
spec's `defaults:`, how resolve makes it concrete, its shape and cost rule,
what a training step keeps of it, and the attributes the program IR carries.
Each family module (conv.py, pool.py, ...) defines its kinds and registers
them; the stages call the hooks and never test an op's kind themselves.

The hooks receive the stage as a small protocol (`Resolving`, `Inferring`,
`Lowering`) so this package depends on no stage module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, get_args

from pydantic import model_validator
from pydantic_core import PydanticCustomError

from .. import compact
from ..fields import LayerName, Model

if TYPE_CHECKING:
    from ..graph import Origin, Shape, SpecPath, Tensor
    from ..schema import Spec


class Op(Model):
    """Base of the leaf ops' models; `kind` names the op in specs and in layer names.

    `name` overrides the layer's name within its block use (`@1_conv` in a use
    named `conv2_block1` is `conv2_block1_1_conv`; `""` is the use's own name;
    in `network` and `head` it is the whole name).
    """

    # Each op narrows `kind` to its Literal: sound, as models are frozen (model_config),
    # which pyright does not read; hence the ignore on each subclass's `kind`.
    kind: str
    name: LayerName | None = None

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        kinds = get_args(cls.model_fields["kind"].annotation)  # the Literal's values
        key = next(iter(data)) if isinstance(data, dict) and len(data) == 1 else ""
        return from_raw(key if key in kinds else kinds[0], data)


# -- the stages, as the hooks see them -----------------------------------------------


class Resolving(Protocol):
    """compiler.resolve's resolver: values made concrete in a block use's scope."""

    @property
    def spec(self) -> Spec: ...
    def error(self, code: str, message: str, path: SpecPath, hint: str | None = None) -> None: ...
    def number(
        self, value: Any, env: dict, path: SpecPath, field: str, low: int = 1
    ) -> int | None: ...
    def count(self, value: Any, env: dict, path: SpecPath, field: str) -> int | str | None: ...
    def activation(self, value: Any, env: dict, path: SpecPath) -> str | None: ...
    def fraction(self, value: Any, env: dict, path: SpecPath, field: str) -> float | None: ...


class Inferring(Protocol):
    """compiler.infer's walk: records layers, reports errors, applies windows."""

    @property
    def spec(self) -> Spec: ...
    def error(
        self, code: str, message: str, path: SpecPath, hint: str | None = None, notes=()
    ) -> None: ...
    def add(
        self,
        name: str,
        kind: str,
        shape: Shape,
        path: SpecPath,
        inputs: tuple[Tensor, ...],
        params: int = 0,
        macs: int = 0,
        origin: Origin | None = None,
        activation: str | None = None,
        inner: int = 0,
    ) -> Tensor: ...
    def window(
        self, window, strides, padding, shape: Shape, path: SpecPath, what: str, field: str
    ) -> tuple[int, int] | None: ...


class Scope(Protocol):
    """The function (block or network) a statement is lowered into."""

    uses_classifier: bool


class Lowering(Protocol):
    """compiler.program's builder: values as the IR keeps them (parameters symbolic)."""

    @property
    def spec(self) -> Spec: ...
    def value(self, scope: Any, value: Any, widened: bool = False) -> Any: ...
    def pair(self, scope: Any, value: Any) -> tuple: ...


# -- one op kind ------------------------------------------------------------------


@dataclass(frozen=True)
class Saves:
    """What backpropagation keeps of an op's layer, per framework (compiler.memory):
    `input`, `output`, `view` (the output is its inputs side by side), `activation`
    (what its activation function needs), `fused_activation` (an activation inside the
    layer, whose output is kept), `recomputed` (XLA recomputes its output from its kept
    input, so an activation right after it keeps nothing), `moving_statistics` (two
    weights per channel that get no gradient: batch norm's mean and variance),
    `statistics_only` (no weight gets a gradient: a normalization's), and what
    a layer stores of its own: `mask` (XLA's dropout, a byte per element), `noise`
    (torch's dropout, an activation per element), `indices` (torch's max pool, int64)."""

    jax: frozenset[str] = frozenset()
    torch: frozenset[str] = frozenset()

    def __getitem__(self, framework: str) -> frozenset[str]:
        return self.jax if framework == "jax" else self.torch


def saves(*words: str, jax: tuple[str, ...] = (), torch: tuple[str, ...] = ()) -> Saves:
    """`words` under every framework, plus each framework's own."""
    return Saves(frozenset((*words, *jax)), frozenset((*words, *torch)))


@dataclass(frozen=True)
class OpDef:
    """One op kind. Subclasses override the hooks their kinds need.

    `feature_map`: the op needs an HxWxC input (a flat vector is an error).
    `builds`: it makes a layer (`identity` makes none: its output is its input).
    `saves`: what backpropagation keeps of its layer, per framework (see Saves).
    `channels`: how the IR counts its output channels from its attributes: `same`
    as its input, `filters`, `units`, `multiplier` (input times it) or `flat`.
    """

    kind: str
    model: type[Op]
    syntax: compact.Syntax
    feature_map: bool = False
    builds: bool = True
    saves: Saves = Saves()
    channels: str = "same"

    def concrete(self, r: Resolving, op: Any, path: SpecPath, env: dict) -> dict[str, Any]:
        """Fields to replace, parameters substituted and the spec's defaults applied
        (windows, strides and paddings are resolve's own, for every op)."""
        return {}

    def infer(self, i: Inferring, op: Any, name: str, path: SpecPath, x: Tensor) -> Tensor:
        """The op's layers recorded through `i`, and its output."""
        return i.add(name, self.kind, x.known_shape, path, (x,))

    def attrs(self, b: Lowering, scope: Any, op: Any) -> dict[str, Any]:
        """What the program IR keeps for the backends (see compiler.program.Op)."""
        return {}


def linear_none(value: Any) -> Any:
    """An activation as the IR keeps it: `linear` (none) is None."""
    return None if value == "linear" else value


REGISTRY: dict[str, OpDef] = {}  # by kind, in the order the families register them
SYNTAX: dict[str, compact.Syntax] = {}  # by word: the compact forms


def register(*defs: OpDef) -> None:
    for d in defs:
        if d.kind in REGISTRY:
            raise AssertionError(f"op kind {d.kind!r} defined twice")
        REGISTRY[d.kind] = d
        SYNTAX[d.syntax.word] = d.syntax


def parse(text: str) -> tuple[str, dict, dict[str, tuple[int, int]]]:
    """One compact op or block use (see compact.parse) in irc's vocabulary."""
    return compact.parse(text, SYNTAX)


def from_raw(kind: str, data: Any) -> Any:
    """Accept the compact string or `{kind: {fields}}` for one op kind (or a use)."""
    if isinstance(data, str):
        try:
            parsed_kind, fields, _ = parse(data)
        except compact.CompactError as exc:
            raise PydanticCustomError(  # the message as a value: no user text as a template
                "irc_compact",
                "{message}",
                {
                    "message": exc.message,
                    "start": exc.start,
                    "end": exc.end,
                    "hint": exc.hint,
                    "code": exc.code,
                },
            ) from None
        return {"kind": parsed_kind, **fields}
    if isinstance(data, dict) and len(data) == 1 and kind in data:
        fields = data[kind]
        if fields is None:
            return {"kind": kind}
        if isinstance(fields, str):
            raise PydanticCustomError(
                "irc_form",
                "write '{kind}' as one string (`{kind} {fields}`) or give a mapping of its fields",
                {"kind": kind, "fields": fields},
            )
        if isinstance(fields, dict):
            return {"kind": kind, **fields}
    return data


def unparse(op: Mapping[str, Any]) -> str:
    """The compact form of an op's fields (a model dump), as a spec would write it:
    its positional arguments, then each option that differs from the model's default."""
    kind = op["kind"]
    if kind == "act":
        return str(op["activation"])
    if kind == "use":
        return op["block"] + (f" x{op['repeat']}" if op.get("repeat", 1) != 1 else "")
    d = REGISTRY[kind]
    default = {name: f.default for name, f in d.model.model_fields.items()}
    op = default | dict(op)  # a parsed op has only the fields written
    words = [kind]
    for arg in d.syntax.args:
        value = op[arg.field]
        if arg.form == "window":
            value = f"{value[0]}x{value[1]}"
        elif arg.form == "padding" and value != "correct":
            top, bottom, left, right = value
            value = (
                f"{top}x{left}"
                if (top, left) == (bottom, right)
                else f"{top},{bottom},{left},{right}"
            )
        words.append(str(value))
    options = d.syntax.options
    if "strides" in options and tuple(op["strides"]) != (1, 1):
        h, w = op["strides"]
        words.append(f"s{h}" if h == w else f"s{h}x{w}")
    if "padding" in options and op["padding"] == "valid":
        words.append("valid")
    if "groups" in options and op["groups"] != 1:
        words.append(f"g{op['groups']}")
    if "activation" in options and op["activation"] is not None:
        words.append(op["activation"])
    for flag, (on, off) in compact.FLAGS.items():
        if flag in options and op[flag] != default[flag]:
            words.append(on if op[flag] else off)
    if "multiplier" in options and op["multiplier"] != 1:
        words.append(f"dm{op['multiplier']}")
    if "keepdims" in options and op["keepdims"]:
        words.append("keepdims")
    if "kernel" in options and op["kernel"] is not None:
        words.append(f"{op['kernel'][0]}x{op['kernel'][1]}")
    if op.get("name") is not None:
        words.append(f"@{op['name']}")
    return " ".join(words)
