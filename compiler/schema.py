"""Stage 2, schema: Pydantic models of the spec language, with its local rules.

One model per concept. Every op accepts the compact string (`conv 160 1x7`)
or the explicit mapping (`{conv: {filters: 160, kernel: [1, 7]}}`); both
validate into the same model. Rules that need the whole network (shapes,
channel counts, references between blocks) run in the root model's
validator, which calls the resolve and infer stages: `Spec.model_validate`
fails on a residual sum of 1154 and 1152 channels like on a negative filter.

Models are frozen: later stages build new values and never edit these.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    FiniteFloat,
    PlainValidator,
    PrivateAttr,
    Strict,
    Tag,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from . import compact, naming, ops
from .diagnostics import Diagnostic
from .fields import (
    Ident,
    InputSide,
    LayerName,
    Model,
    PosInt,
    Repeat,
    _identifier,
    widen,
)
from .ops import conv, elementwise, norm


# Names a block's generated function uses itself, so a parameter cannot take them.
RESERVED = naming.MODULE_NAMES | naming.BLOCK_NAMES | naming.TORCH_NAMES | {"repeat"}
# Variables of generated block functions: b1, b2_1, b2_r, r, scales, shortcut, b1_scales.
_BRANCH_VARIABLE = re.compile(r"b\d+(_\d+)*(_r)?|.*_r\Z|(.*_)?(scales|shortcut)\Z")


def _scale(value: Any) -> float | str | None:
    """A residual scale: a positive number, or the name of a block parameter."""
    if value is None or isinstance(value, str):
        return value if value is None else _identifier(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not 0 < value <= 1_000:  # also false for nan
            raise PydanticCustomError(
                "irc_range", "must be a positive number, got {value}", {"value": value}
            )
        return float(value)
    raise PydanticCustomError(
        "irc_type", "must be a number or a parameter name, got {value}", {"value": repr(value)}
    )


def _param_name(value: str) -> str:
    _identifier(value)
    if value in RESERVED or value in compact.ACTIVATIONS or _BRANCH_VARIABLE.fullmatch(value):
        raise PydanticCustomError(
            "irc_identifier",
            "'{value}' is reserved (generated code or the op syntax uses it); choose another name",
            {"value": value},
        )
    return value


ParamName = Annotated[str, Strict(), AfterValidator(_param_name)]
# What a use's mapping holds beside its block's arguments, and the field each fills.
_USE_KEYS = {"repeat": "repeat", "name": "name", "from": "sources"}


def _tensor_name(value: str) -> str:
    """A `dag:` tensor's name: the generated code's variable for it, so not a name the
    module, a block function or its branches use (`b1`, `h_2`, `r`); `x`, the main path
    everywhere else, may name a block's input or a step."""
    if value != "x":
        _param_name(value)
    if re.fullmatch(r".*_\d+", value):
        raise PydanticCustomError(
            "irc_identifier",
            "'{value}' ends in `_` and a number, as the generated code's branch variables "
            "do; choose another name",
            {"value": value},
        )
    return value


TensorName = Annotated[str, Strict(), AfterValidator(_tensor_name)]


class Use(Model):
    """A use of a block template: `resnet_a x10` or `{reduction_a: {k: 256, ...}}`."""

    kind: Literal["use"] = "use"
    block: Ident
    repeat: Repeat = 1  # a number, or inside a block a parameter (`repeat: n`)
    args: dict[Ident, Union[bool, int, FiniteFloat, str, None]] = {}
    # The use's name (see Op.name); repeated, a trailing number counts up:
    # `block5` x8 is block5 ... block12.
    name: LayerName | None = None
    # The inputs of a block with several (`inputs: [x, p]`), in `network`: each a network
    # entry's output counted back, -1 the latest (the main path), -2 the one before.
    sources: Annotated[list[Literal[-1, -2]], Field(min_length=1, max_length=2)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, str):
            return ops.base.from_raw("use", data)
        if isinstance(data, dict) and len(data) == 1:
            ((block, fields),) = data.items()
            if fields is None:
                return {"block": block}
            if isinstance(fields, dict):
                args = {k: v for k, v in fields.items() if k not in _USE_KEYS}
                return {"block": block, "args": args} | {
                    _USE_KEYS[k]: fields[k] for k in _USE_KEYS if k in fields
                }
            raise PydanticCustomError(
                "irc_form",
                "block '{block}' takes a mapping of parameters (and `repeat`), got '{got}'",
                {"block": block, "got": fields},
            )
        return data

    def reads(self, inputs: int) -> tuple[int, ...]:
        """The network entries a use of a block of `inputs` inputs reads: `from:`, or the
        last `inputs` outputs (-1, the main path, then -2)."""
        return tuple(self.sources) if self.sources is not None else (-1, -2)[:inputs]

    @property
    def count(self) -> int:
        """The repeat as a number, as `network:` has it (resolve refuses a parameter there)."""
        if not isinstance(self.repeat, int):
            raise TypeError(f"repeat {self.repeat!r} is a parameter, not a number")
        return self.repeat


class Aux(Model):
    """An auxiliary head: a branch off the main path whose output is a model output."""

    kind: Literal["aux"] = "aux"
    block: Ident

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, dict) and set(data) == {"aux"}:
            return {"block": data["aux"]}
        return data


def _as_branch(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


class Concat(Model):
    """Parallel branches, concatenated along channels in the order written."""

    kind: Literal["concat"] = "concat"
    branches: Annotated[list[Branch], Field(min_length=2)]
    name: LayerName | None = None  # the Concatenate layer's (see Op.name)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, dict) and "concat" in data and set(data) <= {"concat", "name"}:
            return {"branches": data["concat"]} | ({"name": data["name"]} if "name" in data else {})
        return data


class Gate(Model):
    """`x * g(x)`: a branch whose output (1x1xC or HxWxC) scales the main path channel-wise.

    Squeeze-and-excitation is a gate of [gap keepdims, conv C/r 1x1, conv C 1x1 sigmoid].
    """

    kind: Literal["gate"] = "gate"
    branch: Branch
    name: LayerName | None = None  # the Multiply layer's (see Op.name)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, dict) and "gate" in data and set(data) <= {"gate", "name"}:
            return {"branch": data["gate"]} | ({"name": data["name"]} if "name" in data else {})
        return data


class ResidualNames(Model):
    """Names of a residual's own layers, relative to the block use as `@name` is
    (`""`: the use's own name), where keras.applications names them otherwise
    (`block35_1_mixed`, the sum `block35_1`, `block35_1_ac`)."""

    concat: LayerName | None = None
    scale: LayerName | None = None
    add: LayerName | None = None
    activation: LayerName | None = None


class Residual(Model):
    """`shortcut(x) + scale * project(concat(branches))`, then an optional activation.

    No `shortcut` is the identity; no `project` adds the branches' output as it is.
    `sum` is what Keras builds for it: an Add layer, or the `+` operator.
    `order` is the sum's operand order (`shortcut_last`: Keras' `add([x, shortcut])`),
    which decides where a framework's topological sort puts the shortcut's layers,
    so where a weights file loaded by order expects them.
    """

    kind: Literal["residual"] = "residual"
    branches: Annotated[list[Branch], Field(min_length=1)]
    project: conv.Conv | None = None
    shortcut: Branch | None = None
    order: Literal["shortcut_first", "shortcut_last"] = "shortcut_first"
    # `operator`: Keras' `+` on the two tensors, an operation and no Add layer (ConvNeXt's
    # `inputs + layer(x)`); `layer`: an Add layer.
    sum: Literal["layer", "operator"] = "layer"
    scale: Annotated[Union[float, str, None], PlainValidator(_scale)] = None
    activation: str | None = None
    names: ResidualNames | None = None

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, dict) and set(data) == {"residual"}:
            return data["residual"]
        return data


MERGES = ("add", "concat")  # what a `dag:` step computes from several tensors


class Step(Model):
    """One tensor of a block's `dag:`, named for the steps after it to read:
    `{h: {from: x, seq: [relu, conv f 1x1]}}` (a sequence on one tensor; `from: [x, p]`
    where the sequence starts with a use of a block with two inputs),
    `{s: {add: [a, b], name: ...}}` (an Add layer, operands in order) or
    `{c: {concat: [a, b, c], name: ...}}` (a Concatenate on channels)."""

    tensor: TensorName
    sources: Annotated[list[TensorName], Field(min_length=1, max_length=2)] | None = None
    seq: Branch | None = None
    add: Annotated[list[TensorName], Field(min_length=2)] | None = None
    concat: Annotated[list[TensorName], Field(min_length=2)] | None = None
    name: LayerName | None = None  # the Add or Concatenate layer's (see Op.name)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) == 1:
            ((tensor, fields),) = data.items()
            if not isinstance(fields, dict):
                raise PydanticCustomError(
                    "irc_form",
                    "dag step '{tensor}' takes a mapping: `{{from: NAME, seq: [...]}}`, "
                    "`{{add: [A, B]}}` or `{{concat: [A, B]}}`, got '{got}'",
                    {"tensor": tensor, "got": fields},
                )
            sources = fields.get("from")
            fields = {k: v for k, v in fields.items() if k != "from"}
            if sources is not None:
                fields["sources"] = sources if isinstance(sources, list) else [sources]
            return {"tensor": tensor, **fields}
        return data

    @model_validator(mode="after")
    def _one_form(self) -> Step:
        forms = [k for k in ("seq", *MERGES) if getattr(self, k) is not None]
        if len(forms) != 1:
            raise PydanticCustomError(
                "irc_step",
                "a dag step is exactly one of `from:` with `seq:`, `add:` or `concat:`; "
                "got {given}",
                {"given": ", ".join(forms) or "none"},
            )
        if (self.seq is None) != (self.sources is None):
            raise PydanticCustomError(
                "irc_step",
                "`from:` names the tensor a step's `seq:` reads, and only a `seq:` has one",
            )
        if self.name is not None and self.seq is not None:
            raise PydanticCustomError(
                "irc_step",
                "`name:` names an `add:` or `concat:` step's layer; name a `seq:` step's "
                "layers with `@name` on its ops",
            )
        return self

    @property
    def merge(self) -> str | None:
        """`add` or `concat` for a step that merges tensors, None for a sequence."""
        return next((k for k in MERGES if getattr(self, k) is not None), None)

    @property
    def reads(self) -> list[str]:
        """The tensors the step reads, in order."""
        merge = self.merge
        return list(getattr(self, merge)) if merge else list(self.sources or [])


def _node_tag(value: Any) -> str | None:
    """Which model a raw node validates as, from its first word or only key."""
    if isinstance(value, BaseModel):
        return getattr(value, "kind", None)
    if isinstance(value, str):
        tokens = compact.tokenize(value)
        word = tokens[0].text if tokens else ""
        if word in compact.ACTIVATIONS:
            return "act"
        return word if word in ops.REGISTRY else "use"
    if isinstance(value, dict) and len(value) == 2 and "name" in value:
        key = next(k for k in value if k != "name")
        if key in ("concat", "gate"):
            return key
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        if key in ops.REGISTRY or key in compact.COMPOSITE_KINDS:
            return key
        return "use"
    return None


if TYPE_CHECKING:  # what a node is; the union below is built from the op registry
    Node = Union[ops.Op, Concat, Residual, Gate, Aux, Use]
else:
    _OP_MODELS = tuple(Annotated[d.model, Tag(kind)] for kind, d in ops.REGISTRY.items())
    Node = Annotated[
        Union[
            (
                *_OP_MODELS,
                Annotated[Concat, Tag("concat")],
                Annotated[Residual, Tag("residual")],
                Annotated[Gate, Tag("gate")],
                Annotated[Aux, Tag("aux")],
                Annotated[Use, Tag("use")],
            )
        ],
        Discriminator(
            _node_tag,
            custom_error_type="irc_node",
            custom_error_message=(
                "expected an op (a string such as `conv 64 3x3`) or a mapping with one key "
                "(an op kind, `concat`, `residual`, `gate`, `aux` or a block name)"
            ),
        ),
    ]


Branch = Annotated[list[Node], BeforeValidator(_as_branch), Field(min_length=1)]


def _params(value: Any) -> Any:
    """`[k, l, m, n]` (all required) or `{scale: 0.2}` (with defaults)."""
    if isinstance(value, list):
        return {name: None for name in value} if all(isinstance(n, str) for n in value) else value
    return value


class Block(Model):
    """A block template, as one figure of the paper draws it."""

    ref: str | None = None  # where the paper draws it, e.g. "Figure 17"
    doc: str | None = None
    params: Annotated[
        dict[ParamName, Union[bool, int, FiniteFloat, str, None]], BeforeValidator(_params)
    ] = {}
    seq: Annotated[list[Node], Field(min_length=1)] | None = None
    concat: Annotated[list[Branch], Field(min_length=2)] | None = None
    residual: Residual | None = None
    # A graph of named tensors, each step reading earlier ones or the block's `inputs`;
    # the last step is the block's output.
    dag: Annotated[list[Step], Field(min_length=1)] | None = None
    # The names of the block's input tensors (a `dag:` reads them): one, the main path,
    # or two, as a NASNet cell takes the previous cell's output and the one before.
    inputs: (
        Annotated[
            list[TensorName],
            Field(min_length=1, max_length=2, json_schema_extra={"uniqueItems": True}),
        ]
        | None
    ) = None
    # Each use is one keras.Sequential layer of the block's layers, named this (relative
    # to the use as `@name` is: `""` the use's own name, `*` where the use's name goes),
    # as keras.applications' ConvNeXt nests its stem and downsampling layers.
    sequential: LayerName | None = None

    @model_validator(mode="after")
    def _one_body(self) -> Block:
        given = [k for k in BODIES if getattr(self, k) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "irc_block_body",
                "a block has exactly one body, `seq`, `concat`, `residual` or `dag`; got {given}",
                {"given": ", ".join(given) or "none"},
            )
        if self.inputs is not None and len(set(self.inputs)) < len(self.inputs):
            raise PydanticCustomError(
                "irc_block_body",
                "`inputs:` names each input once: they are the generated function's "
                "arguments; got {inputs}",
                {"inputs": ", ".join(self.inputs)},
            )
        if self.inputs is not None and self.dag is None:
            raise PydanticCustomError(
                "irc_block_body",
                "`inputs:` names the tensors a `dag:` reads; a `{body}` body reads its one "
                "input as it is",
                {"body": given[0]},
            )
        return self

    @property
    def input_names(self) -> list[str]:
        """The block's input tensors: `inputs:`, or the one main path `x`."""
        return list(self.inputs) if self.inputs is not None else ["x"]

    @property
    def body(self) -> list[Any]:
        """The block's nodes as one sequence."""
        if self.seq is not None:
            return list(self.seq)
        if self.concat is not None:
            return [Concat(branches=self.concat)]
        if self.dag is not None:
            return [Dag(inputs=self.input_names, steps=self.dag)]
        return [self.residual]


BODIES = ("seq", "concat", "residual", "dag")


class Dag(Model):
    """A block's `dag:` as one node of its body (Block.body): the steps, and the names
    its inputs have in them."""

    kind: Literal["dag"] = "dag"
    inputs: list[str]
    steps: list[Step]


class Defaults(elementwise.DefaultsEntries, norm.DefaultsEntries, conv.DefaultsEntries):
    """How a plain `conv` or `bn` is built when the op does not say: one entry per
    family that has defaults (compiler.ops.conv and .norm say which kinds, and which
    follow another's entry)."""


def _not_generated(value: str, allowed: frozenset = frozenset()) -> str:
    taken = (naming.MODULE_NAMES | naming.BUILDER_NAMES | naming.TORCH_NAMES) - allowed
    if value in taken:
        raise PydanticCustomError(
            "irc_identifier",
            "'{value}' is a name the generated module uses itself; choose another",
            {"value": value},
        )
    return value


class Builder(Model):
    """The generated entry point's name and signature."""

    name: Annotated[Ident, AfterValidator(_not_generated)]
    # seed: f(nb_classes, scale, *, include_top, ...);
    # keras: keras.applications' order, f(include_top, weights, ..., classes, ...).
    style: Literal["seed", "keras"] = "seed"
    classes_arg: Annotated[Ident, AfterValidator(_not_generated)] = "nb_classes"
    scale: bool = True  # default of the flag that turns residual scaling on
    # The default input takes any height and width with the top too, as keras.applications'
    # MobileNetV3 builds it (its top pools globally before any weight depends on the size).
    any_size: bool = False
    # The default input is the spec's size without the top too, as keras.applications'
    # NASNet builds it (its correct_pad paddings are fixed by that size).
    fixed_size: bool = False

    @model_validator(mode="after")
    def _distinct(self) -> Builder:
        if self.name == self.classes_arg:
            raise PydanticCustomError(
                "irc_identifier", "the builder and its class-count argument need different names"
            )
        if self.any_size and self.fixed_size:
            raise PydanticCustomError(
                "irc_builder",
                "any_size (any input size by default) and fixed_size (the spec's size by "
                "default) contradict each other; keep one",
            )
        return self


Multiplier = Annotated[FiniteFloat, Field(gt=0.0, le=16.0)]


class Scale(Model):
    """One named size of a network (`scales: {small: {width: 0.5, ...}}`)."""

    width: Multiplier | None = None
    depth: Multiplier | None = None
    input: tuple[InputSide, InputSide, InputSide] | None = None


def deepened(nodes: list, depth: float) -> list:
    """Nodes with every written repeat (`x N`, N > 1) under a depth multiplier.

    Rounded half up and at least 1 (compiler.resolve.widen's rule); a block
    used once stays once, so stems and reductions are never repeated. A repeat
    given by a block parameter is the argument's, unscaled.
    """
    out = []
    for node in nodes:
        if isinstance(node, Use) and isinstance(node.repeat, int) and node.repeat > 1:
            node = node.model_copy(update={"repeat": widen(node.repeat, depth)})
        elif isinstance(node, (Concat, Residual)):
            update: dict[str, Any] = {"branches": [deepened(b, depth) for b in node.branches]}
            if isinstance(node, Residual) and node.shortcut:
                update["shortcut"] = deepened(node.shortcut, depth)
            node = node.model_copy(update=update)
        elif isinstance(node, Gate):
            node = node.model_copy(update={"branch": deepened(node.branch, depth)})
        elif isinstance(node, Step) and node.seq is not None:
            node = node.model_copy(update={"seq": deepened(node.seq, depth)})
        out.append(node)
    return out


class WeightsFile(Model):
    """One published file: where it is and the hash it must have (md5, as
    keras.applications' `file_hash` is, or sha256)."""

    url: Annotated[str, Field(pattern=r"^(https?|file)://\S+$", max_length=2000)]
    md5: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] | None = None
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None

    @model_validator(mode="after")
    def _one_hash(self) -> WeightsFile:
        if (self.md5 is None) == (self.sha256 is None):
            raise PydanticCustomError(
                "irc_weights_hash", "a weights file needs exactly one of md5 and sha256"
            )
        return self


class PublishedWeights(Model):
    """Weights published for this network: the file with the top (`top`, the
    classifier included) and the one without (`no_top`), in one `format`.

    `keras-legacy-h5`: Keras' legacy HDF5 weights layout, loaded by the order of the
    weighted layers (keras.applications' ImageNet files)."""

    format: Literal["keras-legacy-h5"]
    ref: str | None = None
    top: WeightsFile | None = None
    no_top: WeightsFile | None = None

    @model_validator(mode="after")
    def _a_file(self) -> PublishedWeights:
        if self.top is None and self.no_top is None:
            raise PydanticCustomError(
                "irc_weights_file", "published weights need a `top` or a `no_top` file"
            )
        return self


# One word, as builders tell a name (`weights="imagenet"`) from a path by it.
WeightsName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]


class Spec(Model):
    """A whole network: the root of the spec language."""

    name: Ident
    title: str  # left out: the name (settings.fill_from_name)
    ref: str | None = None
    doc: str | None = None
    input: tuple[InputSide, InputSide, InputSide]
    classes: PosInt = 1000  # keras.applications' default
    # Every conv's filter count times this, rounded (see compiler.resolve.widen).
    width: Annotated[FiniteFloat, Field(gt=0.0, le=16.0)] = 1.0
    # Every written repeat (`x N`, N > 1) times this, rounded (see deepened).
    depth: Multiplier = 1.0
    # Named presets of width, depth and input; `scale` is the one in force
    # (applied to the data by compiler.layering.apply_scale).
    scales: dict[Ident, Scale] = {}
    scale: Ident | None = None
    builder: Builder  # left out, or its name: a function named after the spec
    defaults: Defaults = Defaults()
    blocks: dict[Ident, Block] = {}
    network: Annotated[list[Node], Field(min_length=1)]
    head: list[Node] = []
    # What follows the features (after `pooling`) when the model is built without the
    # top: keras.applications' ConvNeXt ends so with a LayerNormalization.
    no_top: list[Node] = []
    # Weights published for exactly this network, by name (`imagenet`); not inherited
    # by a spec that extends this one (compiler.layering).
    weights: dict[WeightsName, PublishedWeights] = {}

    _graph: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _deepen(self) -> Spec:
        if self.depth == 1.0:
            return self
        blocks = {
            name: block.model_copy(
                update={
                    "seq": deepened(block.seq, self.depth) if block.seq is not None else None,
                    "concat": [deepened(b, self.depth) for b in block.concat]
                    if block.concat is not None
                    else None,
                    "residual": deepened([block.residual], self.depth)[0]
                    if block.residual is not None
                    else None,
                    "dag": deepened(block.dag, self.depth) if block.dag is not None else None,
                }
            )
            for name, block in self.blocks.items()
        }
        return self.model_copy(
            update={"network": deepened(self.network, self.depth), "blocks": blocks}
        )

    @model_validator(mode="after")
    def _analyse(self, info: ValidationInfo) -> Spec:
        # Imported here: infer imports this module for its types.
        from .infer import infer
        from .resolve import resolve

        context = info.context or {}
        graph, diagnostics = infer(resolve(self))
        errors = [d for d in diagnostics if d.severity == "error"]
        if errors:
            raise PydanticCustomError(
                "irc_analysis",
                "{summary}",
                {
                    "summary": "; ".join(d.message for d in errors[:3])
                    + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""),
                    "diagnostics": errors,
                },
            )
        if self.builder.any_size:
            _size_independent_top(self, graph)
        if "diagnostics" in context:
            context["diagnostics"].extend(diagnostics)
        self._graph = graph
        return self

    @property
    def graph(self) -> Any:
        """The inferred graph (compiler.graph.Graph) built during validation."""
        return self._graph


def _size_independent_top(spec: Spec, graph: Any) -> None:
    """`builder.any_size` holds only where the outputs and the parameters are the same at
    another input size (twice as high and wide, and one more): an error otherwise."""
    from .infer import infer
    from .resolve import resolve

    h, w, c = spec.input
    other = spec.model_copy(update={"input": [2 * h + 1, 2 * w + 1, c]})
    bigger, diagnostics = infer(resolve(other))
    same = (
        bigger is not None
        and not any(d.severity == "error" for d in diagnostics)
        and (bigger.params, bigger.outputs) == (graph.params, graph.outputs)
    )
    if not same:
        diagnostic = Diagnostic(
            "IRC311",
            "builder.any_size: the top's outputs or parameters depend on the input's size",
            path=("builder", "any_size"),
            hint="pool globally before any weight that sees the whole map (`gap`), "
            "or leave any_size out",
        )
        raise PydanticCustomError(
            "irc_analysis",
            "{summary}",
            {"summary": diagnostic.message, "diagnostics": [diagnostic]},
        )


for _model in (Concat, Gate, Residual, Step, Block, Spec):
    _model.model_rebuild()
