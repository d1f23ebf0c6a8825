"""Integer arithmetic on block parameters: `4*f`, `f//2`, `n + 32`, `(a - b) * 2`.

A spec may write a numeric field as an expression over its block's
parameters. This module parses one with its own tiny recursive-descent
parser (no `eval`, no Python grammar): whole numbers, parameter names,
`+ - * //` and parentheses, nothing else. A parsed `Expr` evaluates against
the parameters' values (resolve) and prints as the same arithmetic in
Python over the parameter variables (the Keras backend), so the generated
block function computes what the compiler computed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

MAX_LENGTH = 200  # longer is a typo, and keeps the parser's recursion shallow
MAX_DEPTH = 20  # parentheses nested deeper are a typo
_TOKEN = re.compile(r"\s*(?:(\d{1,12})|([A-Za-z_][A-Za-z0-9_]*)|(//|[-+*()]))")
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "//": 2}


class ExprError(ValueError):
    """A malformed expression; `offset` is the character it was noticed at."""

    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.message, self.offset = message, offset


@dataclass(frozen=True)
class Expr:
    """A parsed expression: `op` is "num", "name" or a binary operator."""

    op: str
    value: int | str | None = None
    left: Expr | None = None
    right: Expr | None = None

    @property
    def names(self) -> set[str]:
        if isinstance(self.value, str):  # op "name"
            return {self.value}
        if isinstance(self.value, int):  # op "num"
            return set()
        left, right = self.operands
        return left.names | right.names

    @property
    def operands(self) -> tuple[Expr, Expr]:
        """A binary operator's left and right (a number or a name has none)."""
        if self.left is None or self.right is None:
            raise TypeError(f"{self.op!r} has no operands")
        return self.left, self.right

    def evaluate(self, env: Mapping[str, object]) -> int:
        """The value; raises ExprError when a name is not a whole number or // divides by 0."""
        if isinstance(self.value, int):  # op "num"
            return self.value
        if isinstance(self.value, str):  # op "name"
            value = env.get(self.value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ExprError(f"{self.value!r} is {value!r}, not a whole number", 0)
            return value
        left, right = self.operands
        a, b = left.evaluate(env), right.evaluate(env)
        if self.op == "+":
            return a + b
        if self.op == "-":
            return a - b
        if self.op == "*":
            return a * b
        if b == 0:
            raise ExprError("division by zero", 0)
        return a // b

    def python(self, name: Callable[[str], str] = str, parent: int = 0) -> str:
        """The same arithmetic as Python source; `name` maps each parameter to its variable."""
        if isinstance(self.value, int):  # op "num"
            return str(self.value)
        if isinstance(self.value, str):  # op "name"
            return name(self.value)
        level = _PRECEDENCE[self.op]
        left, right = self.operands
        text = f"{left.python(name, level)} {self.op} {right.python(name, level + 1)}"
        return f"({text})" if level < parent else text


def is_expression(text: str) -> bool:
    """Whether a string is arithmetic rather than a plain name or number."""
    return bool(re.search(r"[-+*/()]", text))


def parse(text: str) -> Expr:
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters", 0)
    tokens: list[tuple[str, str, int]] = []  # (kind, text, offset)
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                break
            bad = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise ExprError(
                f"unexpected {text[bad]!r}: use whole numbers, parameter names, + - * // and ( )",
                bad,
            )
        kind = "num" if m.group(1) else "name" if m.group(2) else "op"
        group = cast(int, m.lastindex)  # the one of the three groups that matched
        tokens.append((kind, m.group(group), m.start(group)))
        pos = m.end()
    parser = _Parser(tokens, len(text))
    expr = parser.sum()
    if parser.i < len(tokens):
        raise ExprError(f"unexpected {tokens[parser.i][1]!r}", tokens[parser.i][2])
    return expr


class _Parser:
    def __init__(self, tokens: list[tuple[str, str, int]], end: int):
        self.tokens, self.i, self.end = tokens, 0, end
        self.depth = 0  # parentheses open around the current token

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def sum(self) -> Expr:
        left = self.product()
        while self.peek() in ("+", "-"):
            op = self.tokens[self.i][1]
            self.i += 1
            left = Expr(op, left=left, right=self.product())
        return left

    def product(self) -> Expr:
        left = self.atom()
        while self.peek() in ("*", "//"):
            op = self.tokens[self.i][1]
            self.i += 1
            left = Expr(op, left=left, right=self.atom())
        return left

    def atom(self) -> Expr:
        if self.i >= len(self.tokens):
            raise ExprError("the expression ends too early", self.end)
        kind, text, offset = self.tokens[self.i]
        self.i += 1
        if kind == "num":
            return Expr("num", int(text))
        if kind == "name":
            return Expr("name", text)
        if text == "(":
            if self.depth >= MAX_DEPTH:  # deep nesting: a typo, and a bound on recursion
                raise ExprError("too many parentheses", offset)
            self.depth += 1
            inner = self.sum()
            if self.peek() != ")":
                raise ExprError("missing ')'", self.tokens[self.i][2] if self.peek() else self.end)
            self.i += 1
            self.depth -= 1
            return inner
        raise ExprError(f"expected a number or a name, got {text!r}", offset)
