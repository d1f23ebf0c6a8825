"""Python statements as data, laid out the way ruff format lays them out.

Backends build `Statement`s (Python decides every name and argument); the
templates' `statement` macro prints them flat, hugged or exploded, so the
generated files are already formatted.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def head(self) -> str:
        return f"{self.target} = {self.func}(" if self.target else f"{self.func}("

    def layout(self, indent: int) -> str:
        """How ruff lays this call out at this indent: flat, hug or exploded."""
        args = ", ".join(self.args)
        if indent + len(self.head) + len(args) + 1 <= WIDTH:
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
    stop: int
    body: tuple[object, ...]
    comment: str | None = None
    kind: str = "loop"


@dataclass(frozen=True)
class If:
    """`if condition:` around statements."""

    condition: str
    body: tuple[object, ...]
    comment: str | None = None
    kind: str = "if"
