"""Pooling: `maxpool` and `avgpool` over a window, `gap` and `gmp` over the whole map."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .. import compact
from ..fields import Padding, Window
from ..graph import SpecPath, Tensor
from .base import Inferring, Lowering, Op, OpDef, Saves, register, saves


class Pool(Op):
    kind: Literal["maxpool", "avgpool"] = "maxpool"  # pyright: ignore[reportIncompatibleVariableOverride]
    pool: Window
    strides: Window = (1, 1)
    padding: Padding = "same"


class GlobalPool(Op):
    kind: Literal["gap", "gmp"] = "gap"  # pyright: ignore[reportIncompatibleVariableOverride]
    keepdims: bool = False  # 1x1xC (for a gate's convs) instead of a flat C


@dataclass(frozen=True)
class PoolDef(OpDef):
    feature_map: bool = True

    def infer(self, i: Inferring, op: Any, name: str, path: SpecPath, x: Tensor) -> Tensor:
        shape = x.known_shape
        spatial = i.window(op.pool, op.strides, op.padding, shape, path, self.kind, "pool")
        if spatial is None:
            return Tensor(None)
        return i.add(name, self.kind, (*spatial, shape[2]), path, (x,))

    def attrs(self, b: Lowering, scope: Any, op: Any) -> dict[str, Any]:
        return {
            "pool": b.pair(scope, op.pool),
            "strides": b.pair(scope, op.strides),
            "padding": op.padding,
        }


@dataclass(frozen=True)
class GlobalPoolDef(OpDef):
    feature_map: bool = True

    def infer(self, i: Inferring, op: Any, name: str, path: SpecPath, x: Tensor) -> Tensor:
        channels = x.known_shape[2]
        shape = (1, 1, channels) if op.keepdims else (channels,)
        return i.add(name, self.kind, shape, path, (x,))

    def attrs(self, b: Lowering, scope: Any, op: Any) -> dict[str, Any]:
        return {"keepdims": op.keepdims}


def _pool(kind: str, keeps: Saves) -> PoolDef:
    size = compact.Arg("pool", "window", "a window size", "pool size")
    syntax = compact.Syntax(
        kind, (size,), frozenset({"strides", "padding"}), f"{kind} 3x3 s2 valid"
    )
    return PoolDef(kind, Pool, syntax, saves=keeps)


def _global(kind: str, keeps: Saves = Saves()) -> GlobalPoolDef:
    syntax = compact.Syntax(kind, (), frozenset({"keepdims"}), f"{kind} keepdims")
    return GlobalPoolDef(kind, GlobalPool, syntax, saves=keeps)


# A max pool's gradient goes where the maximum was: XLA finds it again from its input
# and output, torch keeps the argmax's indices. torch's average pool keeps its input.
register(
    _pool("maxpool", saves("input", jax=("output",), torch=("indices",))),
    _pool("avgpool", saves(torch=("input",))),
    _global("gap"),
    _global("gmp", saves("input", "output")),
)
