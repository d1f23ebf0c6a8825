"""The compact op syntax: `conv 160 1x7`, `maxpool 3x3 s2 valid`, `resnet_a x10`.

One line reads like a label in the paper's figures. `parse` turns it into the
same mapping the explicit form gives (`{conv: {filters: 160, kernel: [1, 7]}}`)
so both validate through one Pydantic model, and remembers which characters
each field came from, so an error can point at the `1154` inside
`conv 1154 1x1 linear` rather than at the whole string.
"""

from __future__ import annotations

import difflib
import re
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
)
# Keras 3's other activations (keras.activations): irc has no op for them yet, so
# an unknown one of these is named as such, never "did you mean" a different function
# (`hard_sigmoid` is not `sigmoid`).
KERAS_ONLY_ACTIVATIONS = frozenset(
    {
        "celu", "exponential", "glu", "hard_shrink", "hard_sigmoid", "hard_silu", "hard_swish",
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


CONV_KINDS = ("conv", "dwconv", "sepconv")
POOL_KINDS = ("maxpool", "avgpool")
GLOBAL_POOL_KINDS = ("gap", "gmp")
OP_KINDS = (
    *CONV_KINDS,
    *POOL_KINDS,
    *GLOBAL_POOL_KINDS,
    "pad",
    "identity",
    "bn",
    "act",
    "dropout",
    "flatten",
    "dense",
)
# The mapping node keys that are not ops (schema._node_tag): every other key is a block's use.
COMPOSITE_KINDS = ("concat", "residual", "gate", "aux")
NODE_KINDS = (*OP_KINDS, *COMPOSITE_KINDS)
# What an op takes after its word, for suggesting a fix to an unknown word: only
# ops that take the same arguments are offered, so a suggestion never turns the
# line into a different kind of layer that happens to parse.
ARGUMENTS = {
    "conv": "count window",
    "sepconv": "count window",
    "dwconv": "window",
    "maxpool": "window",
    "avgpool": "window",
    "pad": "window",
    "dense": "count",
    "dropout": "rate",
    "act": "name",
}

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INT = re.compile(r"-?[0-9]{1,12}\Z")  # negative counts parse, and fail as out of range
# At most 12 digits: anything longer is a typo, and int() refuses 4300.
_WINDOW = re.compile(r"([0-9]{1,12})(?:x([0-9]{1,12}))?\Z")
_STRIDE = re.compile(r"s([0-9]{1,12})(?:x([0-9]{1,12}))?\Z")
_REPEAT = re.compile(r"x([0-9]{1,12})\Z")
_MULTIPLIER = re.compile(r"dm([0-9]{1,12})\Z")
_LAYER_NAME = re.compile(r"[A-Za-z0-9_]{0,64}\Z")  # `@name`: a layer name within its block use


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


def parse(text: str) -> tuple[str, dict, dict[str, tuple[int, int]]]:
    """Parse one compact op: (kind, fields, field -> (start, end) in text)."""
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
    parser = _PARSERS.get(word)
    if parser is None:
        return "use", _parse_use(head, rest, spans) | named, spans
    return word, parser(word, head, rest, spans) | named, spans


def _layer_name(rest: list[Token], spans: dict) -> dict[str, str]:
    """A last word `@name` overrides the layer's name (`@` alone: the block use's own name)."""
    if not rest or not rest[-1].text.startswith("@"):
        return {}
    token = rest.pop()
    if not _LAYER_NAME.match(token.text[1:]):
        raise CompactError(
            f"a layer name takes letters, digits and underscores, got {token.text!r}",
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
        example = "3, 1x2 or 0x1" if zero else "3x3, 1x7 or 3"
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
        elif word in ("bias", "nobias") and "bias" in allowed:
            put("bias", word == "bias", token)
        elif word in ("bn", "nobn") and "bn" in allowed:
            put("bn", word == "bn", token)
        elif word in ("scale", "noscale") and "scale" in allowed:
            put("scale", word == "scale", token)
        elif word == "keepdims" and "keepdims" in allowed:
            put("keepdims", True, token)
        elif (multiplier := _MULTIPLIER.match(word)) and "multiplier" in allowed:
            put("multiplier", int(multiplier.group(1)), token)
        else:
            raise _unexpected(word, token, kind, allowed)
    return fields


_OPTION_WORDS = {
    "padding": ("same", "valid"),
    "activation": ACTIVATIONS,
    "bias": ("bias", "nobias"),
    "bn": ("bn", "nobn"),
    "scale": ("scale", "noscale"),
    "keepdims": ("keepdims",),
}
_OPTION_HELP = {
    "strides": "s2",
    "padding": "same|valid",
    "activation": "an activation",
    "bias": "bias|nobias",
    "bn": "bn|nobn",
    "scale": "scale|noscale",
    "keepdims": "keepdims",
    "multiplier": "dm2 (a depth multiplier)",
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


def _parse_conv(kind: str, head: Token, rest: list[Token], spans: dict) -> dict:
    filters = _take(rest, "a filter count", head, "conv 64 3x3")
    kernel = _take(rest, "a kernel size", filters, f"conv {filters.text} 3x3")
    spans["filters"] = (filters.start, filters.end)
    spans["kernel"] = (kernel.start, kernel.end)
    fields = {"filters": _number(filters, "filters"), "kernel": _window(kernel, "kernel")}
    return fields | _options(kind, rest, spans, {"strides", "padding", "activation", "bias", "bn"})


def _parse_dwconv(kind: str, head: Token, rest: list[Token], spans: dict) -> dict:
    kernel = _take(rest, "a kernel size", head, "dwconv 3x3")
    spans["kernel"] = (kernel.start, kernel.end)
    allowed = {"strides", "padding", "activation", "bias", "bn", "multiplier"}
    return {"kernel": _window(kernel, "kernel")} | _options(kind, rest, spans, allowed)


def _parse_sepconv(kind: str, head: Token, rest: list[Token], spans: dict) -> dict:
    filters = _take(rest, "a filter count", head, "sepconv 128 3x3")
    kernel = _take(rest, "a kernel size", filters, f"sepconv {filters.text} 3x3")
    spans["filters"] = (filters.start, filters.end)
    spans["kernel"] = (kernel.start, kernel.end)
    fields = {"filters": _number(filters, "filters"), "kernel": _window(kernel, "kernel")}
    allowed = {"strides", "padding", "activation", "bias", "bn", "multiplier"}
    return fields | _options(kind, rest, spans, allowed)


def _parse_pad(kind: str, head: Token, rest: list[Token], spans: dict) -> dict:
    """`pad 3` (3 on every side), `pad 1x2` (1 above and below, 2 left and right)."""
    size = _take(rest, "a padding size", head, "pad 3")
    spans["padding"] = (size.start, size.end)
    _no_more(rest, kind)
    h, w = _window(size, "padding", zero=True)
    return {"padding": [h, h, w, w]}


def _parse_pool(kind: str, head: Token, rest: list[Token], spans: dict) -> dict:
    size = _take(rest, "a window size", head, f"{kind} 3x3 s2 valid")
    spans["pool"] = (size.start, size.end)
    return {"pool": _window(size, "pool size")} | _options(
        kind, rest, spans, {"strides", "padding"}
    )


def _parse_plain(kind: str, head: Token, rest: list[Token], spans: dict) -> dict:
    _no_more(rest, kind)
    return {}


def _parse_global_pool(kind: str, head: Token, rest: list[Token], spans: dict) -> dict:
    return _options(kind, rest, spans, {"keepdims"})


def _parse_bn(kind: str, head: Token, rest: list[Token], spans: dict) -> dict:
    return _options(kind, rest, spans, {"scale"})


def _parse_act(kind: str, head: Token, rest: list[Token], spans: dict) -> dict:
    name = _take(rest, "an activation name", head, "act relu")
    spans["activation"] = (name.start, name.end)
    _no_more(rest, kind)
    return {"activation": name.text}


def _parse_dropout(kind: str, head: Token, rest: list[Token], spans: dict) -> dict:
    rate = _take(rest, "a rate", head, "dropout 0.2")
    spans["rate"] = (rate.start, rate.end)
    _no_more(rest, kind)
    try:
        return {"rate": float(rate.text[:64])}
    except ValueError:
        raise CompactError(
            f"dropout rate must be a number, got {rate.text!r}", rate.start, rate.end
        ) from None


def _parse_dense(kind: str, head: Token, rest: list[Token], spans: dict) -> dict:
    units = _take(rest, "a unit count", head, "dense 1000 softmax")
    spans["units"] = (units.start, units.end)
    return {"units": _number(units, "units")} | _options(kind, rest, spans, {"activation", "bias"})


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


def suggest(word: str, rest: list[Token]) -> str | None:
    """`did you mean 'conv'?` for a near-typo of an op taking the same arguments, else None.

    A word is only suggested when it is one edit or so away (difflib ratio 0.8) and
    takes what the line gives it: `sepconv 128 3x3` never gets `conv`, `dwconv 3x3`
    never gets `conv` or `maxpool`, since either would build another network.
    """
    shapes = _argument_shapes(rest)
    same = [kind for kind in OP_KINDS if ARGUMENTS.get(kind, "") in shapes]
    if "" in shapes:
        same += [a for a in ACTIVATIONS if a != "linear"]
    close = difflib.get_close_matches(word, same, 1, 0.8)
    return f"did you mean {close[0]!r}?" if close else None


def _parse_use(head: Token, rest: list[Token], spans: dict) -> dict:
    fields: dict[str, object] = {"block": head.text}
    spans["block"] = (head.start, head.end)
    if rest:
        close = suggest(head.text, rest)
        shapes = _argument_shapes(rest)
        token = rest.pop(0)
        m = _REPEAT.match(token.text)
        if not m and not close and shapes & {"count window", "window"}:
            alike = [k for k in OP_KINDS if ARGUMENTS.get(k) in shapes]
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


_PARSERS = {
    "conv": _parse_conv,
    "dwconv": _parse_dwconv,
    "sepconv": _parse_sepconv,
    "pad": _parse_pad,
    "identity": _parse_plain,
    "maxpool": _parse_pool,
    "avgpool": _parse_pool,
    "gap": _parse_global_pool,
    "gmp": _parse_global_pool,
    "flatten": _parse_plain,
    "bn": _parse_bn,
    "act": _parse_act,
    "dropout": _parse_dropout,
    "dense": _parse_dense,
}


def unparse(op: dict) -> str:
    """The compact form of an op's fields (a model dump), as a spec would write it."""
    kind = op["kind"]
    words = [kind]
    if kind == "act":
        return str(op["activation"])
    if kind == "use":
        return op["block"] + (f" x{op['repeat']}" if op.get("repeat", 1) != 1 else "")
    if "filters" in op:
        words.append(str(op["filters"]))
    if "units" in op:
        words.append(str(op["units"]))
    if "rate" in op:
        words.append(str(op["rate"]))
    for field in ("kernel", "pool"):
        if field in op:
            h, w = op[field]
            words.append(f"{h}x{w}")
    if "strides" in op and tuple(op["strides"]) != (1, 1):
        h, w = op["strides"]
        words.append(f"s{h}" if h == w else f"s{h}x{w}")
    if op.get("padding") == "valid":
        words.append("valid")
    if op.get("activation") not in (None, "linear") and kind != "act":
        words.append(op["activation"])
    elif op.get("activation") == "linear":
        words.append("linear")
    for flag, on, off in (("bias", "bias", "nobias"), ("bn", "bn", "nobn")):
        if op.get(flag) is not None and kind in CONV_KINDS:
            words.append(on if op[flag] else off)
    if kind == "dense" and op.get("bias") is False:
        words.append("nobias")
    if kind == "bn" and op.get("scale") is False:
        words.append("noscale")
    if op.get("multiplier", 1) != 1:
        words.append(f"dm{op['multiplier']}")
    if kind == "pad":
        top, bottom, left, right = op["padding"]
        words.append(
            f"{top}x{left}" if (top, left) == (bottom, right) else f"{top},{bottom},{left},{right}"
        )
    if op.get("keepdims"):
        words.append("keepdims")
    if op.get("name") is not None:
        words.append(f"@{op['name']}")
    return " ".join(words)
