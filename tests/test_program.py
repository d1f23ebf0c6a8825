"""The program IR's values and names under one block use (what `irc plot` draws from).

`evaluate` and `Program.arguments` give the concrete value of any IR value in one
use of a block; `LayerName.within` and `CallStmt.instances` the names that use's
layers get. Both must agree with resolve and infer, which the checks against the
inferred graph below prove for the shipped specs. No framework is imported.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from irc_cnn.compiler import expr
from irc_cnn.compiler import program as ir
from irc_cnn.compiler.pipeline import check_bytes, check_file

ROOT = Path(__file__).resolve().parent.parent


def test_evaluate_binds_parameters_arithmetic_tuples_and_width():
    env = {"f": 64, "s": 2, "act": "linear"}
    assert ir.evaluate(ir.Param("f"), env) == 64
    assert ir.evaluate(ir.Arith(expr.parse("4*f")), env) == 256
    assert ir.evaluate(ir.Arith(expr.parse("(f - 4) // s")), env) == 30
    assert ir.evaluate((ir.Param("s"), 1), env) == (2, 1)
    assert ir.evaluate(ir.Param("act"), env) == "linear"
    # widened values take the width multiplier (rounded half up), unwidened ones do not
    assert ir.evaluate(ir.Param("f", widened=True), env, 0.3) == 19  # 19.2
    assert ir.evaluate(ir.Arith(expr.parse("2*s + 1"), widened=True), env, 0.5) == 3  # 2.5
    assert ir.evaluate(ir.Param("f"), env, 0.3) == 64
    for literal in ("valid", None, 0.1, True, (3, 3)):
        assert ir.evaluate(literal, env) == literal


def test_arguments_of_resnet50s_calls_and_the_call_inside_a_block():
    program = ir.build(check_file(ROOT / "specs/keras/resnet50.yaml"))
    calls = [s for s in program.network if isinstance(s, ir.CallStmt)]
    conv3 = next(c for c in calls if c.layer.text == "conv3_block1")
    # s is not given: the block's default (2); f is given (128); the class count rides along
    assert program.arguments(conv3) == {ir.CLASSES_NAME: 1000, "f": 128, "s": 2}
    residual = program.function("projection_block").body[0]
    inner = residual.branches[0][0]  # {bottleneck: {f: f, s: s, name: ""}}
    assert isinstance(inner, ir.CallStmt) and inner.block == "bottleneck"
    bound = program.arguments(inner, program.arguments(conv3))
    assert bound == {ir.CLASSES_NAME: 1000, "f": 128, "s": 2}
    conv = program.function("bottleneck").body[-2]  # conv 4*f 1x1 valid @3_conv
    assert ir.evaluate(conv.attrs["filters"], bound) == 512


def test_the_class_count_in_arithmetic():
    text = b"""\
name: t
title: T
input: [8, 8, 3]
classes: 10
builder: {name: create_t}
blocks:
  unit:
    params: {k: 2}
    seq: [conv classes//k 1x1]
network: [unit]
"""
    program = ir.build(check_bytes(text, "t.yaml"))
    (call,) = program.network
    conv = program.function("unit").body[0]
    assert ir.evaluate(conv.attrs["filters"], program.arguments(call)) == 5


def _op_names(program: ir.Program, stmts, instance: str, out: dict[str, str]) -> None:
    """Each op's concrete name and kind in the block use named `instance`."""
    for stmt in stmts:
        if isinstance(stmt, ir.Op) and stmt.kind != "identity":
            out[stmt.layer.within(instance)] = stmt.kind
        elif isinstance(stmt, ir.CallStmt):
            for name in stmt.instances(instance):
                _op_names(program, program.function(stmt.block).body, name, out)
        elif isinstance(stmt, ir.ResidualStmt):
            project = [stmt.project] if stmt.project else []
            _op_names(program, [*stmt.shortcut, *project], instance, out)
        for branch in getattr(stmt, "branches", ()):
            _op_names(program, branch, instance, out)


@pytest.mark.parametrize(
    "path",
    [
        "specs/irv2.yaml",
        "specs/keras/resnet50.yaml",
        "specs/variants/se_irv2.yaml",
        "specs/keras/mobilenet.yaml",
    ],
)
def test_names_within_uses_are_infers_layer_and_stage_names(path):
    """Nested uses (resnet50's bottleneck, se_irv2's se), loops, named uses, and the
    use's name inside a layer name (mobilenet's `conv_dw_*_bn`)."""
    result = check_file(ROOT / path)
    program = ir.build(result)
    ops: dict[str, str] = {}
    _op_names(program, [*program.network, *program.head], "", ops)
    layers = {layer.name: layer.kind for layer in result.graph.layers}
    assert {name: layers.get(name) for name in ops} == ops
    # and every layer of an op is named by one (an `act` layer may be a sum's activation)
    assert {n for n, k in layers.items() if k in OP_KINDS} == {
        n for n, k in ops.items() if k != "act"
    }
    calls = [s for s in program.network if isinstance(s, ir.CallStmt)]
    stages = [stage.name for stage in result.graph.stages if stage.block is not None]
    assert [name for call in calls for name in call.instances("")] == stages


OP_KINDS = {"conv", "dwconv", "sepconv", "pad", "maxpool", "avgpool", "gap", "gmp", "bn"}
OP_KINDS |= {"dropout", "flatten", "dense", "reshape"}


def test_a_star_in_a_layer_name_is_the_uses_name_and_numbered_uses_count_up():
    result = check_file(ROOT / "specs/keras/mobilenet.yaml")
    names = [layer.name for layer in result.graph.layers]
    # `{separable: {repeat: 5, name: "7"}}`: the uses 7 ... 11, each name in its place
    assert [n for n in names if n.startswith("conv_dw_") and n.endswith("_bn")] == [
        f"conv_dw_{i}_bn" for i in range(1, 14)
    ]
    assert [n for n in names if n.startswith("conv_pad_")] == [
        f"conv_pad_{i}" for i in (2, 4, 6, 12)
    ]


def test_an_activation_of_the_class_scores_is_the_classifiers():
    """MobileNet's `conv classes 1x1`, `reshape flat`, `softmax`: the softmax is the
    builder's classifier_activation (default: the one written); no other act is."""
    program = ir.build(check_file(ROOT / "specs/keras/mobilenet.yaml"))
    flagged = [
        s.layer.text for s in program.head if isinstance(s, ir.Op) and s.attrs.get("classifier")
    ]
    assert flagged == ["predictions"]
    assert program.classifier_activation == "softmax"
    inner = [op for f in program.functions for op in f.body if isinstance(op, ir.Op)]
    assert [op for op in inner if op.attrs.get("classifier")] == []
    assert {op.kind for op in inner} >= {"act", "conv"}


UNUSED = b"""\
name: unused
title: Unused
input: [16, 16, 3]
classes: 4
builder: {name: create_unused}
blocks:
  side: {seq: [avgpool 4x4 s4 valid, flatten, dense 8 relu]}
  unit: {seq: [conv 8 3x3]}
network: [unit x2]
head: [gap, dense classes softmax]
"""


def test_a_block_nothing_uses_is_left_out():
    """An unused block has no shapes (infer never reached it), so its flatten's size is
    unknown; it is dead code, and every backend leaves it out rather than fail."""
    from irc_cnn.backends.keras import emit as keras_emit
    from irc_cnn.backends.torch import emit as torch_emit

    result = check_bytes(UNUSED, "unused.yaml")
    assert result.ok
    assert [f.block for f in ir.build(result).functions] == ["unit"]
    keras_module = keras_emit.render(result)["unused.py"]
    torch_module = torch_emit.render(result)["unused.py"]
    assert "def unit(" in keras_module and "def side(" not in keras_module
    assert "class Unit(" in torch_module and "class Side(" not in torch_module
