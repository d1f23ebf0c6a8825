"""What generated code may contain: a fixed allow-list of names, checked on the AST.

Used by the fuzzer and the injection tests. Generated code is the Keras
backend's template plus a spec's *data*; the only names a spec contributes
are its own identifiers (block function names, block parameter names, the
builder's name and its class-count argument), which the schema has checked.
Everything else a module mentions must be one of the names below, which the
templates emit. A spec that makes the module call, import, or even mention
anything else (`__import__`, `eval`, `os`, `open`, ...) has changed the code
beyond its data.

When the templates gain a helper, constant or local variable, add its name
here; that is the review point for what generated code may do.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from typing import Any

# Imports a generated module makes, exactly.
IMPORTS = {
    ("from", "__future__", "annotations"),
    ("import", "keras", None),
    ("from", "keras", "KerasTensor"),
    ("from", "keras", "layers"),
    # ConvNeXt's LayerScale, keras.applications' own class (generated code defines none)
    ("from", "keras.src.applications.convnext", "LayerScale"),
    ("from", "collections.abc", "Callable"),  # the sequential helper's annotation
    # inside weights_file only: a published name is downloaded and checked by irc_cnn
    ("from", "irc_cnn.backends.published", "published_file"),
}

# Module-level definitions of the templates: helpers and constants.
HELPERS = frozenset(
    {
        "conv2d", "batch_norm", "activation", "max_pool", "avg_pool", "global_avg_pool",
        "global_max_pool", "concat", "add", "dropout", "flatten", "dense", "residual_sum",
        "check_input_shape", "widen", "activation_layer", "depthwise_conv2d", "separable_conv2d",
        "zero_pad", "gate", "weights_file", "published_file", "layer_norm", "relu_layer", "crop", "rescaling",
        "reshape", "correct_pad", "relu_hard_sigmoid", "relu_form",
        "normalization", "layer_scale", "LayerScale", "identity_layer", "sequential",
        "layers_of",  # a sequential block's local function: its layers, built on any input
    }
)  # fmt: skip
CONSTANTS = frozenset(
    {
        "CHANNEL_AXIS", "INPUT_SHAPE", "MIN_INPUT_SIZE", "MIN_INPUT_SIZE_NO_TOP", "BN_EPSILON",
        "BN_MOMENTUM", "WIDTH", "PUBLISHED_WEIGHTS",
    }
)  # fmt: skip
# Arguments and locals of the templates' functions.
LOCALS = frozenset(
    {
        "x", "p", "r", "inputs", "outputs", "model", "aux", "i", "name", "input_shape",
        "input_tensor", "include_top", "weights", "pooling", "classes", "classifier_activation",
        "scale", "scale_residuals", "minimum", "size", "filters", "kernel_size", "strides",
        "padding", "use_bias", "bn", "pool_size", "tensors", "rate", "units", "function",
        "nb_classes", "prefix", "depth_multiplier", "keepdims", "dtype", "path", "_",
        "scale_name", "add_name", "activation_name", "shortcut_last", "operands", "groups",
        "fused", "epsilon", "max_value", "cropping", "offset", "spatial", "adjust", "correct", "noise_shape",
        "mean", "variance", "init",
        "operator", "layers_of", "stand_in", "chain",
    }
)  # fmt: skip
# Builtins: called by the templates, or named in annotations.
BUILTIN_CALLS = frozenset({"ValueError", "tuple", "len", "range", "max", "int", "str"})
ANNOTATIONS = frozenset(
    {"KerasTensor", "keras", "int", "float", "str", "bool", "tuple", "list", "Callable"}
)
# Attributes the templates read: keras.Model, layers.Conv2D, input_tensor.shape, ...
ATTRIBUTES = frozenset(
    {
        "Model", "utils", "get_source_inputs", "Input", "Conv2D", "BatchNormalization",
        "Activation", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
        "GlobalMaxPooling2D", "Concatenate", "Dropout", "Flatten", "Dense", "Rescaling", "Add",
        "shape", "load_weights", "DepthwiseConv2D", "SeparableConv2D", "ZeroPadding2D",
        "Multiply", "isidentifier", "LayerNormalization", "ReLU", "Cropping2D", "Reshape",
        "Normalization",
        "Sequential", "layers",
    }
)  # fmt: skip
MODULES = frozenset({"keras", "layers"})
# `module.Class(...)(x)`: any of Keras' layers, or a Sequential.
LAYER_CONSTRUCTORS = {("layers", name) for name in ATTRIBUTES} | {("keras", "Sequential")}
# Branch, projection, shortcut and gate-scale variables: b1, b2, r, b1_1, b1_r, b2_1_r,
# shortcut, b1_shortcut, scales, b2_scales, shortcut_1, scales_r, ...
_BRANCH_VAR = re.compile(r"(b\d+|r|shortcut|scales)(_(\d+|r|shortcut|scales))*\Z")
# The same variables of a dag step's branches, named after its tensor: h_1, h_r, ...
_STEP_VAR = re.compile(r"(.+?)(_(\d+|r|shortcut|scales))+\Z")

FIXED = HELPERS | CONSTANTS | LOCALS | BUILTIN_CALLS | ANNOTATIONS | MODULES

# Never in generated code, unless the spec itself named one of its blocks or
# parameters so (then the module defines it, and the name means that definition).
DANGEROUS = frozenset(
    {
        "__import__", "eval", "exec", "compile", "open", "os", "sys", "subprocess", "shutil",
        "getattr", "setattr", "delattr", "globals", "locals", "vars", "importlib", "builtins",
        "breakpoint", "input", "exit", "quit", "memoryview", "type", "object", "super",
        "pickle", "marshal", "socket", "ctypes", "pathlib",
    }
)  # fmt: skip

_FORBIDDEN_NODES = (
    ast.ClassDef, ast.Lambda, ast.Global, ast.Nonlocal, ast.Delete, ast.With, ast.AsyncWith,
    ast.Try, ast.AsyncFunctionDef, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr,
    ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Starred,
)  # fmt: skip


def spec_names(spec: Any) -> set[str]:
    """The identifiers a spec contributes: its blocks (and their `_block` renamings),
    block parameters, a dag's tensors (its inputs and steps, and the variables of a
    step's branches, `h_1`, `h_r`, ...), the builder's name and class-count argument."""
    names: set[str] = set()
    for block_name, block in (getattr(spec, "blocks", None) or {}).items():
        names |= {block_name, f"{block_name}_block"}
        names |= set(getattr(block, "params", None) or {})
        names |= set(getattr(block, "inputs", None) or ())
        names |= {step.tensor for step in getattr(block, "dag", None) or ()}
    builder = getattr(spec, "builder", None)
    if builder is not None:
        names |= {builder.name, getattr(builder, "classes_arg", "nb_classes")}
    return names


def _defined(tree: ast.Module) -> set[str]:
    """Names the module binds itself: functions, their arguments, assignment targets."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            out.add(node.name)
            args = node.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
                out.add(arg.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
    return out


def violations(source: str, allowed_spec_names: Iterable[str] = ()) -> list[str]:
    """Everything in `source` outside the allow-list; [] when the module is clean.

    Compiles the text too (`compile`, which also catches what `ast.parse`
    lets through: duplicate arguments, `return` outside a function, ...).
    """
    try:
        compile(source, "<generated>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return [f"does not compile: {exc}"]
    tree = ast.parse(source)
    own = set(allowed_spec_names)
    defined = _defined(tree)
    problems: list[str] = []

    def name_ok(name: str) -> bool:
        if name in own:
            # A spec's own identifier: fine wherever the module defines it.
            return name in defined or name not in DANGEROUS
        if name.startswith("__") or name in DANGEROUS:
            return False
        step = _STEP_VAR.match(name)
        if step is not None and step.group(1) in own:
            return True
        return name in FIXED or bool(_BRANCH_VAR.match(name))

    for node in ast.walk(tree):
        if isinstance(node, _FORBIDDEN_NODES):
            problems.append(f"line {node.lineno}: {type(node).__name__} is never generated")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if ("import", alias.name, None) not in IMPORTS or alias.asname:
                    problems.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if ("from", node.module, alias.name) not in IMPORTS or alias.asname:
                    problems.append(f"line {node.lineno}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Name):
            if not name_ok(node.id):
                problems.append(f"line {node.lineno}: name {node.id!r}")
        elif isinstance(node, ast.Attribute):
            if node.attr not in ATTRIBUTES:
                problems.append(f"line {node.lineno}: attribute .{node.attr}")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                callable_ok = func.id in HELPERS | BUILTIN_CALLS or (
                    func.id in own and func.id in defined
                )
                if not callable_ok:
                    problems.append(f"line {node.lineno}: call of {func.id!r}")
            elif isinstance(func, ast.Attribute):
                pass  # its attribute is checked above; its base is a Name or a Call
            elif isinstance(func, ast.Call):
                # layers.Conv2D(...)(x): the inner call must be a layer constructor (Keras'
                # layers, keras.Sequential, keras.applications' LayerScale)
                inner = func.func
                if not (
                    isinstance(inner, ast.Attribute)
                    and isinstance(inner.value, ast.Name)
                    and (inner.value.id, inner.attr) in LAYER_CONSTRUCTORS
                ) and not (isinstance(inner, ast.Name) and inner.id == "LayerScale"):
                    problems.append(f"line {node.lineno}: call of a call result")
            else:
                problems.append(f"line {node.lineno}: call of {type(func).__name__}")
        elif isinstance(node, ast.FunctionDef):
            if node.name not in HELPERS and node.name not in own:
                problems.append(f"line {node.lineno}: def {node.name}")
            if node.decorator_list:
                problems.append(f"line {node.lineno}: decorator on {node.name}")
        elif isinstance(node, ast.arg) and not name_ok(node.arg):
            problems.append(f"line {node.lineno}: argument {node.arg!r}")
    return problems


def executable_dump(source: str) -> str:
    """The module's code with all text taken out: docstrings dropped, comments are
    gone with the parse, and every other string constant kept only if it is one the
    code needs (layer names, paddings, activations) -- i.e. text constants of
    docstrings are removed, nothing else."""
    tree = ast.parse(source)

    def strip_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            return body[1:]
        return body

    tree.body = strip_docstring(tree.body)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):  # classes: the torch backend
            node.body = strip_docstring(node.body) or [ast.Pass()]
    return ast.dump(tree, annotate_fields=True, include_attributes=False)


def attributes_assigned_twice(source: str) -> list[str]:
    """`Class.attr` for each `self.attr = ...` that a class's `__init__` can execute
    twice on one path (an `if`'s branches are alternatives; a loop's body runs once
    here, since `self.x = ...` inside a loop would repeat anyway and is reported).

    Two uses of one block that got the same attribute would make torch keep only
    the second module and call it twice: a smaller model that shares weights.
    """
    found: list[str] = []

    def walk(stmts: list[ast.stmt], seen: frozenset[str], where: str) -> frozenset[str]:
        for stmt in stmts:
            if isinstance(stmt, ast.If):
                seen = walk(stmt.body, seen, where) | walk(stmt.orelse, seen, where)
                continue
            if isinstance(stmt, (ast.For, ast.While)):
                inner = walk(stmt.body, seen, where)
                repeated = inner - seen
                found.extend(f"{where}.{name} (in a loop)" for name in sorted(repeated))
                seen = inner
                continue
            targets = stmt.targets if isinstance(stmt, ast.Assign) else []
            if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
                targets = [stmt.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ):
                    if target.attr in seen:
                        found.append(f"{where}.{target.attr}")
                    seen = seen | {target.attr}
        return seen

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    walk(item.body, frozenset(), node.name)
    return found
