"""What every Python-printing backend shares: statements as data, the program
IR's values as Python, and the Jinja environment that lays them out.

Backends build `Statement`s (Python decides every name and argument); the
shared `statements.jinja` macro prints them flat, hugged or exploded the way
ruff format lays them out, so the generated files are already formatted.
`Printer` turns the IR's values, channel counts and layer names into Python
text the same way for each backend; a backend subclass prints statements.
"""

from __future__ import annotations

import functools
import textwrap
from dataclasses import dataclass
from typing import Any

import jinja2

from ..compiler import naming
from ..compiler import program as ir
from . import pysafe

WIDTH = 100  # the line length ruff formats generated/ to (pyproject.toml)


@dataclass(frozen=True)
class Statement:
    """`target = func(args)` (or `func(args)` without a target), with an optional
    comment line above it."""

    target: str | None
    func: str
    args: tuple[str, ...]
    comment: str | None = None
    kind: str = "call"
    tail: str = ""  # after the call's `)`: `x, p = cell(x, p), x`

    @property
    def head(self) -> str:
        return f"{self.target} = {self.func}(" if self.target else f"{self.func}("

    def layout(self, indent: int) -> str:
        """How ruff lays this call out at this indent: flat, hug or exploded."""
        args = ", ".join(self.args)
        if indent + len(self.head) + len(args) + 1 + len(self.tail) <= WIDTH:
            return "flat"
        if indent + 4 + len(args) <= WIDTH:
            return "hug"
        return "exploded"


@dataclass(frozen=True)
class Assign:
    """`target = expression`, short enough for one line."""

    target: str
    expression: str
    comment: str | None = None
    kind: str = "assign"


@dataclass(frozen=True)
class Loop:
    """`for i in range(start, stop):` around statements."""

    start: int
    stop: int | str  # a number, or an expression on the block's parameters
    body: tuple[object, ...]
    comment: str | None = None
    kind: str = "loop"
    over: str = ""  # `for block in <over>:` instead, over a container of modules


@dataclass(frozen=True)
class If:
    """`if condition:` around statements, and `else:` around `orelse` if any."""

    condition: str
    body: tuple[object, ...]
    orelse: tuple[object, ...] = ()
    comment: str | None = None
    kind: str = "if"


# -- the IR's values as Python ----------------------------------------------------


@dataclass
class Printer:
    """Prints the values of one function's statements: a block's (`relative` layer
    names, on the `name` argument) or the network's. `helpers` collects what the
    module's helper section must define."""

    program: ir.Program
    relative: bool
    classes: str  # the variable holding the class count
    scale_flag: str  # the variable holding the residual-scaling switch
    helpers: set[str]

    def variable(self, name: str) -> str:
        """The variable an expression's name reads."""
        return self.classes if name == ir.CLASSES_NAME else pysafe.identifier(name)

    def value(self, value: ir.Value) -> str:
        """A literal, a parameter's variable, or arithmetic on them (`widen(...)` under
        the spec's width multiplier)."""
        if isinstance(value, (ir.Param, ir.Arith)):
            if isinstance(value, ir.Param):
                text = pysafe.identifier(value.name)
            else:
                text = value.expr.python(self.variable)
            if value.widened:
                self.helpers.add("widen")
                return f"widen({text})"
            return text
        if isinstance(value, tuple) and not all(isinstance(v, int) for v in value):
            return "(" + ", ".join(self.value(v) for v in value) + ")"
        return pysafe.literal(value)

    def layer_name(self, layer: ir.LayerName) -> str:
        """A layer name expression: `f"{name}_b1_conv"` in a block, `"head_dense"` outside."""
        if not layer.relative:
            return pysafe.literal(layer.text)
        if not layer.text:
            return "name"
        return 'f"' + _within_use(layer.text) + '"'

    def looped_name(self, call: ir.CallStmt) -> str:
        """The layer name of a loop's i-th use: the base name, the separator, `{i}`."""
        tail = call.separator + '{i}"'
        if call.layer.relative:
            return 'f"' + _within_use(call.layer.text) + tail
        return 'f"' + pysafe.name_part(call.layer.text) + tail

    def loop(self, call: ir.CallStmt, body: tuple[object, ...], comment: str | None = None) -> Loop:
        """The loop over a repeated use's numbers, `first` on; a parameter's count
        ends it at `n + first`."""
        if isinstance(call.repeat, int):
            return Loop(call.first, call.first + call.repeat, body, comment)
        return Loop(call.first, f"{self.value(call.repeat)} + {call.first}", body, comment)

    def assigned(self, call: ir.CallStmt) -> tuple[str, str]:
        """The target of a call's line and what follows its `)`: a cell that keeps its
        main-path input writes `x, p = cell(x, p), x`."""
        if not call.carry:
            return call.target, ""
        return f"{call.target}, {call.carry}", f", {call.target}"

    def window(self, attrs: dict[str, ir.Value], stride: str) -> list[str]:
        """A window op's keyword arguments where they differ from stride 1 and `same`
        (`stride`: the framework's word for it)."""
        out = []
        if attrs["strides"] != (1, 1):
            out.append(f"{stride}={self.value(attrs['strides'])}")
        if attrs["padding"] != "same":
            out.append(f"padding={pysafe.literal(attrs['padding'])}")
        return out

    def activation(self, attrs: dict[str, ir.Value]) -> str:
        """An op's activation: the builder's `classifier_activation` for the class scores."""
        return (
            "classifier_activation" if attrs.get("classifier") else self.value(attrs["activation"])
        )

    def conv_options(self, op: ir.Op, stride: str) -> list[str]:
        """A conv's keyword arguments where they differ from its helper's defaults (the
        spec's `defaults:` for its kind)."""
        a = op.attrs
        out = self.window(a, stride)
        if a.get("multiplier", 1) != 1:
            out.append(f"depth_multiplier={self.value(a['multiplier'])}")
        if a.get("groups", 1) != 1:
            out.append(f"groups={self.value(a['groups'])}")
        defaults = self.program.conv_defaults[op.kind]
        if a["activation"] != defaults["activation"] or a.get("classifier"):
            out.append(f"activation={self.activation(a)}")
        if a["bias"] != defaults["bias"]:
            out.append(f"use_bias={pysafe.literal(a['bias'])}")
        if a["bn"] != defaults["bn"]:
            out.append(f"bn={pysafe.literal(a['bn'])}")
        return out

    def args(self, call: ir.CallStmt) -> list[str]:
        """A block use's keyword arguments: its parameters, then the switches it takes."""
        args = [f"{pysafe.identifier(k)}={self.value(v)}" for k, v in call.args]
        if call.scale_residuals:
            args.append(f"scale_residuals={self.scale_flag}")
        if call.classifier:
            args += [f"classes={self.classes}", "classifier_activation=classifier_activation"]
        return args


def params(function: ir.Function) -> tuple[str, ...]:
    """A block function's keyword parameters as printed: `name: type = default`."""
    out = []
    for param in function.params:
        tail = "" if param.required else f" = {pysafe.literal(param.default)}"
        out.append(f"{pysafe.identifier(param.name)}: {param.type}{tail}")
    if function.uses_classifier:
        out += ["classes: int", "classifier_activation: str | None"]
    if function.uses_residual:
        out.append("scale_residuals: bool = True")
    out.append("name: str")
    return tuple(out)


def builder(program: ir.Program) -> dict[str, Any]:
    """The builder function's name, arguments and documented outputs, which every
    backend prints alike (a PyTorch user calls what a Keras user calls)."""
    return {
        "builder": pysafe.identifier(program.builder),
        "style": program.style,
        "classes_arg": pysafe.identifier(program.classes_arg),
        "classes": pysafe.literal(program.classes),
        "scale": program.scale_switch,
        "scale_default": pysafe.literal(program.scale_default),
        "classifier_activation": pysafe.literal(program.classifier_activation),
        "any_size": program.spec.builder.any_size,
        "fixed_size": program.spec.builder.fixed_size,
        "has_aux": program.has_aux,
        "outputs": ", ".join("x".join(map(str, s)) for s in program.outputs),
        "features": "x".join(map(str, program.features_shape)),
    }


def expanded(value: Any, indent: int = 0) -> str:
    """A literal of nested dicts and tuples, one item a line with trailing commas: the
    layout the formatter keeps, so a long table stays formatted as emitted."""
    pad = "    " * (indent + 1)
    if isinstance(value, dict) and value:
        items = [f"{pad}{pysafe.literal(k)}: {expanded(v, indent + 1)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + "\n" + "    " * indent + "}"
    if isinstance(value, (tuple, list)) and value:
        items = [f"{pad}{expanded(v, indent + 1)}," for v in value]
        return "(\n" + "\n".join(items) + "\n" + "    " * indent + ")"
    return "{}" if isinstance(value, dict) else pysafe.literal(value)


def published_weights(program: ir.Program) -> str:
    """The spec's `weights:` table as the module's PUBLISHED_WEIGHTS literal."""
    return expanded(program.spec.model_dump(exclude_none=True)["weights"])


def paragraphs(program: ir.Program) -> tuple[str, ...]:
    """The module docstring's paragraphs made safe, each line of a list on its own."""
    return tuple(
        "\n".join(pysafe.text(line) for line in paragraph.split("\n"))
        for paragraph in program.docstring
    )


# -- templates ----------------------------------------------------------------------


@functools.cache
def environment(package: str) -> jinja2.Environment:
    """One environment per backend and process (each template compiled once): the
    backend's own templates, then the shared ones (statements.jinja)."""
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.PackageLoader(package, "templates"),
                jinja2.PackageLoader("irc_cnn.backends", "templates"),
            ]
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["wrap"] = wrap
    return env


def wrap(text: str, indent: int = 0, width: int = 88) -> str:
    """Wrap docstring text; paragraphs and '- ' list items keep their own lines."""
    pad = " " * indent
    out = []
    for line in text.split("\n"):
        sub = "  " if line.startswith("- ") else ""
        out += textwrap.wrap(
            line,
            width - indent,
            initial_indent=pad,
            subsequent_indent=pad + sub,
            break_on_hyphens=False,
            break_long_words=False,
        ) or [""]
    return "\n".join(out)


def _within_use(text: str) -> str:
    """The f-string body of a name relative to the block use (`{name}` in the code):
    `{name}_b1_conv`, `{name}` for "", and the use's name where a `*` stands."""
    if naming.USE in text:
        return "{name}".join(pysafe.name_part(part) for part in text.split(naming.USE))
    return "{name}" + (f"_{pysafe.name_part(text)}" if text else "")
