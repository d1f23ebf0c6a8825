"""Layer and variable names, decided once for every stage and backend.

A layer's name is built from where its op sits in the spec, never from
build order: `resnet_b_3_b2_conv2` is the second conv of branch 2 of the
third Inception-ResNet-B block. infer uses these names for its per-layer
shapes and the Keras backend emits the same names, so the two can be
compared layer by layer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

# Python names a generated module defines or calls at module level: imports,
# constants, helpers and the builtins its code uses.
MODULE_NAMES = frozenset(
    {
        "annotations", "keras", "layers", "KerasTensor",
        "CHANNEL_AXIS", "INPUT_SHAPE", "MIN_INPUT_SIZE", "MIN_INPUT_SIZE_NO_TOP",
        "BN_EPSILON", "BN_MOMENTUM", "WIDTH",
        "conv2d", "batch_norm", "activation_layer", "max_pool", "avg_pool", "global_avg_pool",
        "global_max_pool", "concat", "add", "dropout", "flatten", "dense", "residual_sum", "widen",
        "depthwise_conv2d", "separable_conv2d", "zero_pad", "gate", "layer_norm", "relu_layer",
        "crop", "rescaling", "normalization", "layer_scale", "LayerScale", "identity_layer",
        "sequential", "layers_of", "Callable", "reshape",
        "check_input_shape", "weights_file", "published_file", "PUBLISHED_WEIGHTS",
        "range", "tuple", "len", "ValueError",
    }
)  # fmt: skip
# The builder's arguments and variables (besides the class-count argument).
BUILDER_NAMES = frozenset(
    {
        "x", "p", "i", "inputs", "outputs", "aux", "model", "include_top", "weights",
        "input_tensor", "input_shape", "pooling", "classifier_activation", "scale",
    }
)  # fmt: skip
# Inside a block's function: its fixed arguments and variables.
BLOCK_NAMES = frozenset(
    {"x", "r", "i", "name", "scale_residuals", "classes", "classifier_activation"}
)


def function_names(blocks: Sequence[str], builder: str, classes_arg: str) -> dict[str, str]:
    """Each block's function name: its own, or with `_block` appended when that
    would shadow a name the generated module or its builder uses."""
    taken = MODULE_NAMES | BUILDER_NAMES | {builder, classes_arg}
    out: dict[str, str] = {}
    for block in blocks:
        name = block
        while name in taken:
            name += "_block"
        taken = taken | {name}
        out[block] = name
    return out


def node_key(node: Any) -> str:
    """The word a node is named by: its op kind, activation or block name."""
    kind = node.kind
    if kind == "act":
        return node.activation
    if kind in ("use", "aux"):
        return node.block
    return kind


def local_names(nodes: Sequence[Any]) -> list[str]:
    """Names of the nodes of one sequence: `conv`, or `conv1`, `conv2`... when repeated."""
    keys = [node_key(n) for n in nodes]
    totals = Counter(keys)
    seen: Counter[str] = Counter()
    names = []
    for key in keys:
        seen[key] += 1
        names.append(key if totals[key] == 1 else f"{key}{seen[key]}")
    return names


def join(prefix: str, name: str) -> str:
    return f"{prefix}_{name}" if prefix else name


def composites(nodes: Sequence[Any]) -> int:
    return sum(1 for n in nodes if n.kind in ("concat", "residual", "gate"))


def scope(prefix: str, local: str, nodes: Sequence[Any]) -> str:
    """Prefix for what a composite node (concat, residual) contains.

    A sequence's only composite adds nothing, so a block whose body is one
    concat names its layers `reduction_a_b1_conv`, and one that is a residual
    followed by `bn, relu` names them `resnet_b_1_b1_conv`, `resnet_b_1_add`,
    `resnet_b_1_bn`.
    """
    return prefix if composites(nodes) == 1 else join(prefix, local)


def concat_layer(prefix: str, local: str, inner: str) -> str:
    """The Concatenate layer of a concat node whose contents are named under `inner`."""
    return join(prefix, local) if inner == prefix else inner


def branch(prefix: str, index: int) -> str:
    """Prefix of the index-th (0-based) branch of a concat or residual."""
    return join(prefix, f"b{index + 1}")


USE = "*"  # in a layer name, the block use's name (`conv_dw_*_bn`)


def override(base: str, name: str) -> str:
    """A layer's name given as `name:`/`@name` inside the block use named `base`.

    Relative to the use (`conv2_block1` + `1_conv`); `""` is the use's own name;
    a `*` stands for the use's name where the name puts it (`conv_dw_*_bn` in the
    use `3` is `conv_dw_3_bn`, keras.applications' MobileNet); outside any use
    (`network`, `head`) the override is the whole name.
    """
    if USE in name:
        return name.replace(USE, base)
    return join(base, name) if name else base


def numbered(name: str, index: int, looped: bool) -> str:
    """The index-th (0-based) repeat of a use named `name`; `looped`: repeated (more
    than once, or a parameter's count, which the code loops over even when it is 1).

    A trailing number counts up (`block5` x8: block5 ... block12); otherwise the
    repeats are `name_1`, `name_2`, ... like unnamed ones.
    """
    if not looped:
        return name
    stem, first = split_number(name)
    return f"{stem}{first + index}" if first is not None else f"{name}_{index + 1}"


def split_number(name: str) -> tuple[str, int | None]:
    """`block5` -> ("block", 5); `7` -> ("", 7); `block` -> ("block", None)."""
    digits = len(name) - len(name.rstrip("0123456789"))
    if digits == 0 or digits > 9:
        return name, None
    return name[:-digits], int(name[-digits:])


def instance(block: str, number: int | None) -> str:
    """Name of one use of a block: `stem`, or `resnet_a_3` when it is used more than once."""
    return block if number is None else f"{block}_{number}"


def camel(name: str) -> str:
    """`resnet_a` -> `ResnetA`: a class name for a block or a network."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Block"


# Class names a generated class-based module (the torch backend) defines itself.
CLASS_NAMES = frozenset(
    {
        "Conv", "DepthwiseConv", "SeparableConv", "MaxPool", "AvgPool", "SamePad", "GlobalPool",
        "Flatten", "Dense", "LayerNorm", "Crop", "Rescaling", "Normalization", "LayerScale", "Reshape",
        "SharedDropout",
    }
)  # fmt: skip
# Other names the torch module uses: imports, helpers, builtins, constructor variables.
TORCH_NAMES = CLASS_NAMES | frozenset(
    {
        "torch", "nn", "F", "same_padding", "padding_layer", "activation_module", "self",
        "super", "max", "float", "isinstance", "block", "channels", "in_channels",
        "load_weights", "load_weights_file", "PUBLISHED_WEIGHTS", "KERAS_WEIGHT_ORDER",
    }
)  # fmt: skip

# Attributes nn.Module (or the generated classes) already define: a module
# attribute named like one gets a trailing underscore (program._Scope.attribute).
MODULE_ATTRIBUTES = frozenset(
    {
        "training", "forward", "train", "eval", "parameters", "buffers", "modules", "children",
        "apply", "cuda", "cpu", "to", "type", "float", "double", "half", "bfloat16", "state_dict",
        "load_state_dict", "named_modules", "named_parameters", "register_buffer", "zero_grad",
        "requires_grad_", "extra_repr", "dump_patches", "call_super_init", "compile", "get_submodule",
        "forward_features", "forward_head", "include_top", "pooling", "out_channels", "block",
    }
)  # fmt: skip


def class_names(blocks: Sequence[str], taken_names: Sequence[str] = ()) -> dict[str, str]:
    """Each block's class name: CamelCase, with `Block` appended while it collides
    with a helper class or one of `taken_names` (block parameters, which would shadow it)."""
    taken = set(CLASS_NAMES) | set(taken_names)
    out: dict[str, str] = {}
    for block in blocks:
        name = camel(block)
        while name in taken:
            name += "Block"
        taken.add(name)
        out[block] = name
    return out


def network_class(spec_name: str, classes: Sequence[str], builder: str) -> str:
    """The network's class name: the spec's name in CamelCase, never a block's class."""
    name = camel(spec_name)
    taken = set(classes) | CLASS_NAMES | {builder}
    while name in taken:
        name += "Net"
    return name
