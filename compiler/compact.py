"""The compact op syntax: `conv 160 1x7`, `maxpool 3x3 s2 valid`, `resnet_a x10`.

One line reads like a label in the paper's figures. `parse` turns it into the
same mapping the explicit form gives (`{conv: {filters: 160, kernel: [1, 7]}}`)
so both validate through one Pydantic model, and remembers which characters
each field came from, so an error can point at the `1154` inside
`conv 1154 1x1 linear` rather than at the whole string.

This module is the grammar; the vocabulary (each op's word, arguments and
options, a `Syntax`) is in its definition under compiler.ops, which calls
`parse` with all of them (`ops.parse`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from . import expr
from .diagnostics import closest

ACTIVATIONS = (
    "linear",
    "relu",
    "relu6",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "sigmoid",
    "tanh",
    "softmax",
    "softplus",
    "hard_sigmoid",
    "hard_swish",
    "hard_silu",
)
# Keras 3's other activations (keras.activations): irc has no op for them yet, so
# an unknown one of these is named as such, never "did you mean" a different function
# (`log_sigmoid` is not `sigmoid`).
KERAS_ONLY_ACTIVATIONS = frozenset(
    {
        "celu", "exponential", "glu", "hard_shrink",
        "hard_tanh", "leaky_relu", "log_sigmoid", "log_softmax", "mish", "soft_shrink",
        "softsign", "sparse_plus", "sparsemax", "squareplus", "tanh_shrink", "threshold",
    }
)  # fmt: skip


def activation_hint(word: str) -> str:
    """The hint for an unknown activation: a typo's correction, or what irc supports."""
    known = f"irc's activations: {', '.join(ACTIVATIONS)}"
    if word in KERAS_ONLY_ACTIVATIONS:
        return f"{word!r} is a Keras activation irc does not support yet; {known}"
    match = closest(word, ACTIVATIONS)
    return f"did you mean {match!r}?" if match else known


# The mapping node keys that are not ops (schema._node_tag): every other key is a block's use.
COMPOSITE_KINDS = ("concat", "residual", "gate", "aux")


@dataclass(frozen=True)
class Arg:
    """One positional argument after an op's word: the field it fills, its form
    (`count`, `window`, `padding`, `rate`, `number` or `name`), what the error says is missing
    (`a filter count`) and the field's name in messages (`pool size`)."""

    field: str
    form: str
    what: str
    label: str = ""


@dataclass(frozen=True)
class Syntax:
    """An op's compact form: its word, positional arguments in order, then the
    order-free options it takes (see `_options`); `example` is a whole line."""

    word: str
    args: tuple[Arg, ...] = ()
    options: frozenset[str] = frozenset()
    example: str = ""

    @property
    def shape(self) -> str:
        """What the words after the op are, as `_argument_shapes` guesses them: an
        unknown word is only corrected to an op taking the same (`count window`)."""
        shapes = {"padding": "window", "number": "rate"}
        return " ".join(shapes.get(a.form, a.form) for a in self.args)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INT = re.compile(r"-?[0-9]{1,12}\Z")  # negative counts parse, and fail as out of range
# At most 12 digits: anything longer is a typo, and int() refuses 4300.
_WINDOW = re.compile(r"([0-9]{1,12})(?:x([0-9]{1,12}))?\Z")
_SIDES = re.compile(r"([0-9]{1,12}),([0-9]{1,12}),([0-9]{1,12}),([0-9]{1,12})\Z")
_STRIDE = re.compile(r"s([0-9]{1,12})(?:x([0-9]{1,12}))?\Z")
_REPEAT = re.compile(r"x([0-9]{1,12})\Z")
_MULTIPLIER = re.compile(r"dm([0-9]{1,12})\Z")
_GROUPS = re.compile(r"g([0-9]{1,12})\Z")
_LAYER_NAME = re.compile(r"[A-Za-z0-9_*]{0,64}\Z")  # `@name` within its block use (`*`: its name)


# Yes/no options: the field and its two words (the word for true first).
FLAGS = {
    "bias": ("bias", "nobias"),
    "bn": ("bn", "nobn"),
    "scale": ("scale", "noscale"),
    "fused": ("fused", "unfused"),
}
_FLAG_OF = {word: flag for flag, words in FLAGS.items() for word in words}


class CompactError(ValueError):
    """A malformed compact op; start/end are character offsets in the string."""

    def __init__(
        self, message: str, start: int, end: int, hint: str | None = None, code: str = "IRC204"
    ):
        super().__init__(message)
        self.message, self.start, self.end, self.hint, self.code = message, start, end, hint, code


@dataclass(frozen=True)
class Token:
    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def tokenize(text: str) -> list[Token]:
    return [Token(m.group(), m.start()) for m in re.finditer(r"\S+", text)]


def parse(
    text: str, syntaxes: Mapping[str, Syntax]
) -> tuple[str, dict, dict[str, tuple[int, int]]]:
    """Parse one compact op of the vocabulary `syntaxes` (by word; compiler.ops.SYNTAX):
    (kind, fields, field -> (start, end) in text). A word that is no op is a block's use."""
    tokens = tokenize(text)
    if not tokens:
        raise CompactError("empty op", 0, max(len(text), 1), "write an op such as `conv 64 3x3`")
    head, rest = tokens[0], tokens[1:]
    spans: dict[str, tuple[int, int]] = {"kind": (head.start, head.end)}
    named = _layer_name(rest, spans)
    word = head.text
    if word in ACTIVATIONS:
        _no_more(rest, word)
        spans["activation"] = (head.start, head.end)
        return "act", {"activation": word} | named, spans
    syntax = syntaxes.get(word)
    if syntax is None:
        return "use", _parse_use(head, rest, spans, syntaxes) | named, spans
    return word, _parse_op(syntax, head, rest, spans) | named, spans


def _layer_name(rest: list[Token], spans: dict) -> dict[str, str]:
    """A last word `@name` overrides the layer's name (`@` alone: the block use's own name)."""
    if not rest or not rest[-1].text.startswith("@"):
        return {}
    token = rest.pop()
    if not _LAYER_NAME.match(token.text[1:]):
        raise CompactError(
            f"a layer name takes letters, digits, underscores and `*` (the block use's name), got {token.text!r}",
            token.start,
            token.end,
            "for example `conv 64 3x3 @block1_conv1`",
        )
    spans["name"] = (token.start, token.end)
    return {"name": token.text[1:]}


def _take(rest: list[Token], what: str, after: Token, example: str) -> Token:
    if not rest:
        raise CompactError(
            f"`{after.text}` needs {what}", after.start, after.end, f"for example `{example}`"
        )
    return rest.pop(0)


def _number(token: Token, field: str) -> int | str:
    """A positive count, or the name of a block parameter."""
    if _INT.match(token.text):
        return int(token.text)
    if _IDENT.match(token.text):
        return token.text
    if expr.is_expression(token.text):
        try:
            expr.parse(token.text)
        except expr.ExprError as exc:
            at = token.start + min(exc.offset, len(token.text) - 1)
            raise CompactError(f"{field}: {exc.message}", at, at + 1) from None
        return token.text
    raise CompactError(
        f"{field} must be a whole number, a parameter name or arithmetic on one (4*f), "
        f"got {token.text!r}",
        token.start,
        token.end,
    )


def _window(token: Token, field: str, zero: bool = False) -> list[int]:
    m = _WINDOW.match(token.text)
    if not m:
        example = "3, 1x2 or 0,1,0,1 (top, bottom, left, right)" if zero else "3x3, 1x7 or 3"
        raise CompactError(
            f"{field} must look like {example}, got {token.text!r}", token.start, token.end
        )
    h = int(m.group(1))
    return [h, int(m.group(2)) if m.group(2) else h]


def _options(kind: str, rest: list[Token], spans: dict, allowed: set[str]) -> dict[str, object]:
    """Order-free trailing words: stride, padding, activation, bias, batch norm."""
    fields: dict[str, object] = {}

    def put(field: str, value: object, token: Token) -> None:
        if field in fields:
            raise CompactError(f"{field} given twice in one op", token.start, token.end)
        fields[field] = value
        spans[field] = (token.start, token.end)

    for token in rest:
        word = token.text
        stride = _STRIDE.match(word)
        if stride and "strides" in allowed:
            h = int(stride.group(1))
            put("strides", [h, int(stride.group(2)) if stride.group(2) else h], token)
        elif word in ("same", "valid") and "padding" in allowed:
            put("padding", word, token)
        elif word in ACTIVATIONS and "activation" in allowed:
            put("activation", word, token)
        elif (flag := _FLAG_OF.get(word)) and flag in allowed:
            put(flag, word == FLAGS[flag][0], token)
        elif word == "keepdims" and "keepdims" in allowed:
            put("keepdims", True, token)
        elif (multiplier := _MULTIPLIER.match(word)) and "multiplier" in allowed:
            put("multiplier", int(multiplier.group(1)), token)
        elif (groups := _GROUPS.match(word)) and "groups" in allowed:
            put("groups", int(groups.group(1)), token)
        elif _WINDOW.match(word) and "kernel" in allowed:  # `pad correct 3x3`
            put("kernel", _window(token, "kernel"), token)
        else:
            raise _unexpected(word, token, kind, allowed)
    return fields


_OPTION_WORDS = {
    "padding": ("same", "valid"),
    "activation": ACTIVATIONS,
    **FLAGS,
    "keepdims": ("keepdims",),
}
_OPTION_HELP = {
    "strides": "s2",
    "padding": "same|valid",
    "activation": "an activation",
    "bias": "bias|nobias",
    "bn": "bn|nobn",
    "scale": "scale|noscale",
    "fused": "fused|unfused (the activation inside the layer)",
    "keepdims": "keepdims",
    "multiplier": "dm2 (a depth multiplier)",
    "groups": "g32 (groups)",
    "kernel": "3x3 (the kernel a `correct` padding is for)",
}


def _unexpected(word: str, token: Token, kind: str, allowed: set[str]) -> CompactError:
    """A trailing word no option takes: the closest word an option does take, if any."""
    vocabulary = [w for field in sorted(allowed) for w in _OPTION_WORDS.get(field, ())]
    close = closest(word, vocabulary)
    takes_activation = any(w in ACTIVATIONS for w in vocabulary)
    if close in ACTIVATIONS or (takes_activation and word in KERAS_ONLY_ACTIVATIONS):
        return CompactError(
            f"unknown activation {word!r}",
            token.start,
            token.end,
            activation_hint(word),
            code="IRC205",
        )
    if close:
        return CompactError(
            f"unexpected {word!r} in a {kind} op",
            token.start,
            token.end,
            f"did you mean {close!r}?",
        )
    accepted = ", ".join(_OPTION_HELP[a] for a in sorted(allowed)) or "nothing more"
    return CompactError(
        f"unexpected {word!r} in a {kind} op",
        token.start,
        token.end,
        f"after its sizes a {kind} takes: {accepted}",
    )


def _no_more(rest: list[Token], kind: str) -> None:
    if rest:
        raise CompactError(
            f"`{kind}` takes no arguments, got {rest[0].text!r}", rest[0].start, rest[-1].end
        )


def _parse_op(syntax: Syntax, head: Token, rest: list[Token], spans: dict) -> dict:
    """The positional arguments in order, then the options (or nothing more)."""
    fields: dict[str, object] = {}
    given = [head.text]
    examples = syntax.example.split()
    after = head
    for i, arg in enumerate(syntax.args):
        example = " ".join([*given, *examples[i + 1 :]])  # the arguments given so far
        after = _take(rest, arg.what, after, example)
        spans[arg.field] = (after.start, after.end)
        fields[arg.field] = _argument(arg, after, syntax.word)
        given.append(after.text)
    if syntax.options:
        return fields | _options(syntax.word, rest, spans, set(syntax.options))
    _no_more(rest, syntax.word)
    return fields


def _argument(arg: Arg, token: Token, kind: str) -> object:
    label = arg.label or arg.field
    if arg.form == "count":
        return _number(token, label)
    if arg.form == "window":
        return _window(token, label)
    if arg.form == "padding" and token.text == "correct":  # keras' correct_pad (ops.layout)
        return token.text
    if arg.form == "padding":  # `3` on every side, `1x2`: 1 above and below, 2 left and right
        sides = _SIDES.match(token.text)  # `0,1,0,1`: top, bottom, left, right
        if sides:
            return [int(side) for side in sides.groups()]
        h, w = _window(token, label, zero=True)
        return [h, h, w, w]
    if arg.form in ("rate", "number"):  # a rate may also be a block parameter's name
        if arg.form == "rate" and _IDENT.match(token.text):
            return token.text
        try:
            return float(token.text[:64])
        except ValueError:
            raise CompactError(
                f"{kind} {label} must be a number, got {token.text!r}", token.start, token.end
            ) from None
    return token.text  # a name


def _argument_shapes(rest: list[Token]) -> set[str]:
    """Which ARGUMENTS patterns the words after an unknown op word could be."""
    if not rest:
        return {""}
    first = rest[0].text
    if len(rest) > 1 and _WINDOW.match(rest[1].text):
        return {"count window"}
    if _WINDOW.match(first):
        return {"window", "count"}
    if re.fullmatch(r"[0-9]*\.[0-9]+", first):
        return {"rate"}
    return {"name", "count"}


def suggest(word: str, rest: list[Token], syntaxes: Mapping[str, Syntax]) -> str | None:
    """`did you mean 'conv'?` for a near-typo of an op taking the same arguments, else None.

    A word is only suggested when it is one edit or so away (difflib ratio 0.8) and
    takes what the line gives it: `sepconv 128 3x3` never gets `conv`, `avgpool 3x3`
    never gets `conv`, since either would build another network.
    """
    shapes = _argument_shapes(rest)
    same = [kind for kind, syntax in syntaxes.items() if syntax.shape in shapes]
    if "" in shapes:
        same += [a for a in ACTIVATIONS if a != "linear"]
    close = difflib.get_close_matches(word, same, 1, 0.8)
    return f"did you mean {close[0]!r}?" if close else None


def _parse_use(head: Token, rest: list[Token], spans: dict, syntaxes: Mapping[str, Syntax]) -> dict:
    fields: dict[str, object] = {"block": head.text}
    spans["block"] = (head.start, head.end)
    if rest:
        close = suggest(head.text, rest, syntaxes)
        shapes = _argument_shapes(rest)
        token = rest.pop(0)
        m = _REPEAT.match(token.text)
        if not m and not close and shapes & {"count window", "window"}:
            alike = [k for k, syntax in syntaxes.items() if syntax.shape in shapes]
            close = f"no op is named {head.text!r}; ops written like this: {', '.join(alike)}"
        if not m and close:
            raise CompactError(
                f"unknown op {head.text!r}", head.start, head.end, close, code="IRC401"
            )
        if not m:
            raise CompactError(
                f"unexpected {token.text!r} after block {head.text!r}",
                token.start,
                token.end,
                "a block use is `NAME` or `NAME xN`; if this was meant as an op, check its name",
            )
        fields["repeat"] = int(m.group(1))
        spans["repeat"] = (token.start, token.end)
        _no_more(rest, head.text)
    return fields
