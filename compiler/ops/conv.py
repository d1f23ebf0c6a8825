"""Convolutions: `conv` (grouped with `g32`), `dwconv` (depthwise), `sepconv` (separable).

Each builds its convolution, then batch norm if asked, then its activation
(three layers: `NAME`, `NAME_bn`, `NAME_<activation>`); the spec's
`defaults:` say which when the op does not, per kind (`dwconv` and `sepconv`
follow `conv` unless given an entry of their own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .. import compact
from ..fields import INPUT_CHANNELS, Count, Model, Padding, Window, widen
from ..graph import Origin, SpecPath, Tensor
from .base import (
    Inferring,
    Lowering,
    Op,
    OpDef,
    Resolving,
    Saves,
    linear_none,
    register,
    saves,
)

if TYPE_CHECKING:
    from ..schema import Spec

_KERNEL = compact.Arg("kernel", "window", "a kernel size")
_FILTERS = compact.Arg("filters", "count", "a filter count")
_FLAGS = ("bias", "bn", "fused")
_OPTIONS = frozenset({"strides", "padding", "activation", *_FLAGS})


class Conv(Op):
    """A convolution; `groups` splits input and filters into that many independent
    convolutions (Keras' `Conv2D(groups=g)`, torch's `Conv2d(groups=g)`)."""

    kind: Literal["conv"] = "conv"  # pyright: ignore[reportIncompatibleVariableOverride]
    filters: Count
    kernel: Window
    strides: Window = (1, 1)
    padding: Padding = "same"
    groups: Count = 1
    activation: str | None = None  # None: the spec's default
    bias: bool | None = None
    bn: bool | None = None
    fused: bool | None = None  # the activation inside the conv layer (Conv2D(activation=))


class DepthwiseConv(Op):
    """A depthwise convolution: each input channel convolved on its own, `multiplier` times."""

    kind: Literal["dwconv"] = "dwconv"  # pyright: ignore[reportIncompatibleVariableOverride]
    kernel: Window
    strides: Window = (1, 1)
    padding: Padding = "same"
    multiplier: Count = 1  # channels out per channel in (Keras' depth_multiplier)
    activation: str | None = None  # None: the spec's default (defaults.dwconv)
    bias: bool | None = None
    bn: bool | None = None
    fused: bool | None = None  # the activation inside the conv layer (Conv2D(activation=))


class SeparableConv(Op):
    """A depthwise convolution then a 1x1 convolution to `filters`, as one layer."""

    kind: Literal["sepconv"] = "sepconv"  # pyright: ignore[reportIncompatibleVariableOverride]
    filters: Count
    kernel: Window
    strides: Window = (1, 1)
    padding: Padding = "same"
    multiplier: Count = 1
    activation: str | None = None  # None: the spec's default (defaults.sepconv)
    bias: bool | None = None
    bn: bool | None = None
    fused: bool | None = None  # the activation inside the conv layer (Conv2D(activation=))


class ConvDefaults(Model):
    bias: bool = False
    bn: bool = True
    activation: str = "relu"
    # The activation as the conv layer's own argument (keras.applications' VGG writes
    # Conv2D(64, 3, activation="relu")), not a layer of its own; needs bn off.
    fused: bool = False


class DefaultsEntries(Model):
    """The convolutions' entries of `defaults:` (compiler.schema.Defaults)."""

    conv: ConvDefaults = ConvDefaults()
    dwconv: ConvDefaults | None = None
    sepconv: ConvDefaults | None = None

    def of(self, kind: str) -> ConvDefaults:
        """The bias, batch-norm and activation defaults of a conv kind."""
        return getattr(self, kind, None) or self.conv


@dataclass(frozen=True)
class ConvDef(OpDef):
    """The three kinds differ in which of filters, depth multiplier and groups they have."""

    feature_map: bool = True
    saves: Saves = saves("input", "fused_activation")

    def has(self, field: str) -> bool:
        return field in self.model.model_fields

    def flags(self, op: Any, spec: Spec) -> dict[str, bool]:
        """Bias, batch norm and fused, the spec's defaults for this kind where not written."""
        own = spec.defaults.of(self.kind)
        return {f: getattr(own, f) if getattr(op, f) is None else getattr(op, f) for f in _FLAGS}

    def concrete(self, r: Resolving, op: Any, path: SpecPath, env: dict) -> dict[str, Any]:
        update: dict[str, Any] = {}
        for field in ("multiplier", "groups"):
            if self.has(field):
                update[field] = r.count(getattr(op, field), env, (*path, field), field)
        if self.has("filters"):
            filters = r.count(op.filters, env, (*path, "filters"), "filters")
            if filters == INPUT_CHANNELS and (
                self.kind != "conv" or path[-2:] != ("residual", "project")
            ):
                r.error(
                    "IRC403",
                    "`in` filters (as many as the residual's input) only fit a residual's project",
                    (*path, "filters"),
                    hint="write a number or a parameter name",
                )
                filters = None
            update["filters"] = (
                widen(filters, r.spec.width) if isinstance(filters, int) else filters
            )
        own = r.spec.defaults.of(self.kind)
        act = op.activation
        if act is None and own.activation in compact.ACTIVATIONS:
            act = own.activation
        update["activation"] = r.activation(act, env, (*path, "activation"))
        update |= self.flags(op, r.spec)
        if update["fused"] and update["bn"] and update["activation"]:
            r.error(
                "IRC208",
                "a fused activation cannot follow batch norm: the conv layer applies it "
                "before the batch norm would",
                (*path, "fused") if op.fused is not None else path,
                hint="write `nobn`, or `unfused` to keep the activation a layer of its own",
            )
        return update

    def infer(self, i: Inferring, op: Any, name: str, path: SpecPath, x: Tensor) -> Tensor:
        shape = x.known_shape
        spatial = i.window(op.kernel, op.strides, op.padding, shape, path, "conv kernel", "kernel")
        filters: int = getattr(op, "filters", 0)
        if spatial is None or filters is None:  # None: a count already reported
            return Tensor(None)
        cin = x.known_shape[2]
        kh, kw = op.kernel
        positions = spatial[0] * spatial[1]
        inner = 0
        if not self.has("multiplier"):  # conv, grouped or not
            groups = op.groups
            if groups is None or not self.divides(i, groups, cin, filters, path):
                return Tensor(None)
            f = filters
            weights = macs = kh * kw * (cin // groups) * f
        elif not self.has("filters"):  # depthwise
            f = cin * op.multiplier
            weights = macs = kh * kw * f
        else:  # depthwise to cin * multiplier channels, then 1x1 to filters
            f, depth = filters, cin * op.multiplier
            weights = macs = kh * kw * depth + depth * f
            inner = positions * depth
        shape = (*spatial, f)
        origin = Origin(f"{name!r} ({f} {'filters' if self.has('filters') else 'channels'})", path)
        params = weights + (f if op.bias else 0)
        fused = op.activation if op.fused else None
        y = i.add(
            name, self.kind, shape, path, (x,), params, positions * macs, origin, fused, inner
        )
        if op.bn:
            scale = i.spec.defaults.bn.scale
            y = i.add(name + "_bn", "bn", shape, path, (y,), f * (4 if scale else 3))
        if op.activation and not op.fused:
            y = i.add(f"{name}_{op.activation}", "act", shape, path, (y,), activation=op.activation)
        return y

    @staticmethod
    def divides(i: Inferring, groups: int, cin: int, filters: int, path: SpecPath) -> bool:
        """Groups split the input's channels and the filters evenly (Keras and torch refuse
        anything else)."""
        for count, what in ((cin, "input channels"), (filters, "filters")):
            if count % groups:
                i.error(
                    "IRC310",
                    f"{groups} groups do not divide the {count} {what}",
                    (*path, "groups"),
                    hint=f"use a number of groups that divides both {cin} and {filters}",
                )
                return False
        return True

    def attrs(self, b: Lowering, scope: Any, op: Any) -> dict[str, Any]:
        spec = b.spec
        conv = spec.defaults.of(self.kind)
        act = op.activation if op.activation is not None else conv.activation
        attrs = {
            "kernel": b.pair(scope, op.kernel),
            "strides": b.pair(scope, op.strides),
            "padding": op.padding,
            "activation": linear_none(b.value(scope, act)),
            **self.flags(op, spec),
            "bn_scale": spec.defaults.bn.scale,
        }
        for field in ("multiplier", "groups"):
            if self.has(field):
                attrs[field] = b.value(scope, getattr(op, field))
        if self.has("filters"):
            filters = op.filters
            if filters != INPUT_CHANNELS:
                filters = b.value(scope, filters, widened=True)
            if isinstance(filters, int):
                filters = widen(filters, spec.width)
            attrs["filters"] = filters
        return attrs


register(
    ConvDef(
        "conv",
        Conv,
        compact.Syntax("conv", (_FILTERS, _KERNEL), _OPTIONS | {"groups"}, "conv 64 3x3"),
        channels="filters",
    ),
    ConvDef(
        "dwconv",
        DepthwiseConv,
        compact.Syntax("dwconv", (_KERNEL,), _OPTIONS | {"multiplier"}, "dwconv 3x3"),
        channels="multiplier",
    ),
    ConvDef(
        "sepconv",
        SeparableConv,
        compact.Syntax(
            "sepconv", (_FILTERS, _KERNEL), _OPTIONS | {"multiplier"}, "sepconv 128 3x3"
        ),
        channels="filters",
    ),
)
