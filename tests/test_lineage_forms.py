"""The forms Xception, ResNet and SE networks need (issue 12): shapes, counts, names, errors.

Each form is checked through the whole pipeline (`check_bytes`), in the compact
syntax and the mapping form, against numbers worked out by hand here. The Keras
side (the generated code builds exactly these shapes and counts) is in
test_differential.py, whose random specs use every form.
"""

from __future__ import annotations

import pytest
from irc_cnn.compiler import compact, expr, ops
from irc_cnn.compiler.pipeline import check_bytes

HEAD = """\
name: t
title: T
input: [{h}, {w}, {c}]
classes: 10
builder: {{name: create_t}}
"""


def check(body: str, h: int = 16, w: int = 16, c: int = 8):
    return check_bytes((HEAD.format(h=h, w=w, c=c) + body).encode(), "t.yaml")


def layers(body: str, **kw) -> dict:
    result = check(body, **kw)
    assert result.ok, [(d.code, d.message, d.hint) for d in result.diagnostics]
    return {layer.name: layer for layer in result.graph.layers}


def codes(body: str, **kw) -> list[tuple[str, int, int]]:
    return [(d.code, d.span.line, d.span.column) for d in check(body, **kw).diagnostics]


# -- depthwise and separable convolutions -----------------------------------------------


def test_dwconv_counts_and_shapes():
    got = layers("network: [dwconv 3x3 s2 dm2 nobn linear]")
    layer = got["dwconv"]
    assert layer.shape == (8, 8, 16)
    assert layer.params == 3 * 3 * 8 * 2  # no bias by default (defaults.conv.bias false)
    assert layer.macs == 8 * 8 * 3 * 3 * 16


def test_sepconv_counts_depthwise_and_pointwise():
    got = layers("network: [sepconv 32 3x3 dm2 bias]")
    depthwise, pointwise = 3 * 3 * 8 * 2, 8 * 2 * 32
    assert got["sepconv"].params == depthwise + pointwise + 32
    assert got["sepconv"].macs == 16 * 16 * (depthwise + pointwise)
    assert got["sepconv_bn"].params == 4 * 32
    assert "sepconv_relu" in got


def test_compact_and_mapping_forms_are_one_model():
    compact_form = layers("network: [sepconv 32 3x3 s2 valid dm2 linear bias nobn]")
    mapping = layers(
        "network:\n  - {sepconv: {filters: 32, kernel: [3, 3], strides: 2, padding: valid,"
        " multiplier: 2, activation: linear, bias: true, bn: false}}"
    )
    assert {k: (v.shape, v.params) for k, v in compact_form.items()} == {
        k: (v.shape, v.params) for k, v in mapping.items()
    }


def test_defaults_for_sepconv_apart_from_conv():
    got = layers(
        "defaults:\n  sepconv: {bias: true, bn: false, activation: linear}\n"
        "network: [sepconv 4 3x3, conv 4 3x3]"
    )
    assert set(got) == {"sepconv", "conv", "conv_bn", "conv_relu"}
    assert got["sepconv"].params == 3 * 3 * 8 + 8 * 4 + 4


# -- padding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op, shape",
    [
        ("pad 3", (22, 22, 8)),
        ("pad 1x2", (18, 20, 8)),
        ("{pad: {padding: [0, 1, 2, 3]}}", (17, 21, 8)),
        ("{pad: {padding: [1, 2]}}", (18, 20, 8)),
        ("pad 0x1", (16, 18, 8)),
    ],
)
def test_pad_shapes(op, shape):
    got = layers(f"network: ['{op}']" if op.startswith("pad") else f"network: [{op}]")
    assert got["pad"].shape == shape
    assert got["pad"].params == 0


def test_pad_then_valid_conv_is_resnets_stem():
    got = layers(
        "network: [pad 3, conv 64 7x7 s2 valid, pad 1, maxpool 3x3 s2 valid]", h=224, w=224, c=3
    )
    assert got["conv"].shape == (112, 112, 64)
    assert got["maxpool"].shape == (56, 56, 64)


# -- residuals with a shortcut, without a projection ---------------------------------------


def test_plain_sum_x_plus_f_x():
    got = layers("network:\n  - residual: {branches: [[conv 8 3x3, conv 8 3x3 linear]]}")
    # A composite alone in `network` adds no name of its own (see docs, Layer names).
    assert got["add"].shape == (16, 16, 8)
    assert [layer.kind for layer in got.values()] == ["conv", "bn", "act", "conv", "bn", "add"]


def test_shortcut_with_its_own_layers():
    body = """\
blocks:
  unit:
    residual:
      branches: [[conv 4 1x1 s2, conv 4 3x3, conv 16 1x1 linear]]
      shortcut: [conv 16 1x1 s2 linear nobn bias, bn]
      activation: relu
network: [unit]
"""
    got = layers(body)
    assert got["unit_shortcut_conv"].shape == (8, 8, 16)
    assert got["unit_shortcut_conv"].params == 8 * 16 + 16
    assert got["unit_shortcut_bn"].params == 4 * 16
    assert got["unit_add"].shape == (8, 8, 16)
    assert got["unit_relu"].shape == (8, 8, 16)


def test_missing_shortcut_projection_says_so():
    body = "network:\n  - residual: {branches: [[conv 4 1x1, conv 32 1x1 linear]]}\n"
    (diag,) = check(body).diagnostics
    assert (diag.code, diag.span.line, diag.span.column) == ("IRC301", 7, 45)
    assert "32-channel result to a 8-channel input" in diag.message
    assert "shortcut: conv 32 1x1 linear" in diag.hint
    assert "annotate" not in diag.hint


def test_strided_branch_suggests_a_strided_shortcut():
    body = "network:\n  - residual: {branches: [[conv 8 3x3 s2 linear]]}\n"
    (diag,) = check(body).diagnostics
    assert diag.code == "IRC302"
    assert "8x8 result to a 16x16 input" in diag.message
    assert "shortcut: conv 8 1x1 s2 linear" in diag.hint


def test_projection_mismatch_keeps_the_papers_hint():
    body = "network:\n  - residual: {branches: [conv 4 1x1], project: conv 10 1x1 linear}\n"
    (diag,) = check(body).diagnostics
    assert diag.code == "IRC301"
    assert diag.hint == (
        "use 8 filters or `conv in 1x1 linear` (as many as the input), "
        "or annotate the paper's value as a deviation"
    )


# -- gates ---------------------------------------------------------------------------------


SE = """\
blocks:
  se:
    params: [c, ratio]
    seq:
      - gate: [gap keepdims, conv c//ratio 1x1 relu nobn bias, conv c 1x1 sigmoid nobn bias]
network:
  - conv 32 3x3
  - se: {c: 32, ratio: 4}
"""


def test_squeeze_and_excitation_as_a_gate():
    got = layers(SE)
    assert got["se_gate_gap"].shape == (1, 1, 32)
    assert got["se_gate_conv1"].shape == (1, 1, 8)
    assert got["se_gate_conv1"].params == 32 * 8 + 8
    assert got["se_gate_conv2"].params == 8 * 32 + 32
    assert got["se_gate"].shape == (16, 16, 32)
    assert got["se_gate"].kind == "multiply"


def test_gate_of_the_wrong_width_is_reported():
    body = SE.replace("se: {c: 32, ratio: 4}", "se: {c: 16, ratio: 4}")
    (diag,) = check(body).diagnostics
    assert (diag.code, diag.span.line, diag.span.column) == ("IRC307", 10, 9)
    assert "16x16x32 path by a 1x1x16 branch" in diag.message
    assert "32 filters" in diag.hint


# -- identity, arithmetic, names -----------------------------------------------------------


def test_identity_branch_in_a_concat():
    got = layers("network:\n  - concat: [identity, conv 4 3x3]")
    assert got["concat"].shape == (16, 16, 12)
    assert "concat_b1_identity" not in got


def test_block_parameters_in_every_numeric_field():
    body = """\
blocks:
  unit:
    params: {f: 4, s: 2, k: 3, p: 1}
    seq:
      - {pad: {padding: p}}
      - {conv: {filters: 4*f, kernel: k, strides: s, padding: valid}}
      - {maxpool: {pool: [1, k], strides: [1, s - 1]}}
      - {dwconv: {kernel: k + 2, multiplier: 1}}
network:
  - unit: {f: 2 , s: 2}
"""
    got = layers(body)
    assert got["unit_pad"].shape == (18, 18, 8)
    assert got["unit_conv"].shape == (8, 8, 8)
    assert got["unit_conv"].params == 3 * 3 * 8 * 8
    assert got["unit_dwconv"].params == 5 * 5 * 8
    # but a depth multiplier: the code prints a dwconv's channels as in_channels * m
    (diag,) = check(body.replace("multiplier: 1", "multiplier: f//2")).diagnostics
    assert (diag.code, diag.span.line, diag.span.column) == ("IRC407", 13, 9)
    assert "depth multiplier must be a number" in diag.message


@pytest.mark.parametrize(
    "text, env, value, python",
    [
        ("4*f", {"f": 64}, 256, "4 * f"),
        ("f//2", {"f": 7}, 3, "f // 2"),
        ("(a - b) * 2", {"a": 5, "b": 2}, 6, "(a - b) * 2"),
        ("a - (b - 1)", {"a": 5, "b": 2}, 4, "a - (b - 1)"),
        ("n + 32", {"n": 1}, 33, "n + 32"),
    ],
)
def test_expressions(text, env, value, python):
    parsed = expr.parse(text)
    assert parsed.evaluate(env) == value
    assert parsed.python() == python
    assert eval(parsed.python(), {}, dict(env)) == value  # the printed Python agrees


@pytest.mark.parametrize("text", ["4*", "f**2", "__import__('os')", "f.x", "(f", "f)", "2 f"])
def test_bad_expressions_are_refused(text):
    with pytest.raises(expr.ExprError):
        expr.parse(text)


def test_name_overrides_relative_to_the_use():
    body = """\
blocks:
  unit:
    params: [f]
    seq:
      - conv f 1x1 linear nobn @1_conv
      - bn @1_bn
      - relu @1_relu
      - conv f 1x1 linear @
network:
  - conv 8 3x3 @stem_conv
  - {unit: {f: 8, name: conv2_block1}}
  - {unit: {f: 8, name: conv2_block2, repeat: 2}}
head: [gap @avg_pool, dense classes softmax @predictions]
"""
    got = layers(body)
    for name in (
        "stem_conv",
        "conv2_block1_1_conv",
        "conv2_block1_1_bn",
        "conv2_block1_1_relu",
        "conv2_block1",
        "conv2_block1_bn",
        "conv2_block3_1_conv",
        "avg_pool",
        "predictions",
    ):
        assert name in got, name


def test_name_override_clash_is_reported():
    body = "network: [conv 8 3x3 @same, conv 8 3x3 nobn linear @same]\n"
    assert codes(body) == [("IRC405", 6, 29)]  # the second of the two


# -- suggestions for unknown words ----------------------------------------------------------


@pytest.mark.parametrize(
    "line, suggestion",
    [
        ("convv 16 3x3", "conv"),
        ("sepconvv 16 3x3", "sepconv"),
        ("dwconvv 3x3", "dwconv"),
        ("maxpoll 3x3", "maxpool"),
        ("depthconv 3x3", None),  # not a typo of dwconv or of a pool: no guess
        ("groupconv 16 3x3", None),  # conv would build another network
    ],
)
def test_unknown_op_words_suggest_only_the_same_kind(line, suggestion):
    tokens = compact.tokenize(line)
    hint = compact.suggest(tokens[0].text, tokens[1:], ops.SYNTAX)
    assert hint == (f"did you mean {suggestion!r}?" if suggestion else None)


def test_se_inception_resnet_v2_adds_exactly_the_se_modules():
    """SE on 10 A, 20 B and 10 C blocks, r = 16: 2 x C x C/16 weights + C/16 + C biases each."""
    from irc_cnn.compiler.pipeline import check_file

    base = check_file("specs/irv2.yaml").graph
    se = check_file("specs/variants/se_irv2.yaml").graph

    def module(c: int) -> int:
        return 2 * c * (c // 16) + c // 16 + c

    assert se.params - base.params == 10 * module(384) + 20 * module(1152) + 10 * module(2144)
    gates = [layer for layer in se.layers if layer.kind == "multiply"]
    assert len(gates) == 40
    assert {layer.shape for layer in gates} == {(35, 35, 384), (17, 17, 1152), (8, 8, 2144)}


def test_plot_draws_the_shortcut_path_and_the_gate():
    pytest.importorskip("graphviz")
    from irc_cnn.backends.graphviz import plot
    from irc_cnn.compiler.pipeline import check_file

    resnet = check_file("specs/keras/resnet50.yaml")
    dot = plot.block(resnet, "projection_block")
    # the shortcut's own ops, then a dashed edge from its batch norm into the sum
    assert "1x1 Conv (4*f=256 V Linear)" in dot
    assert 'conv2_block1_0_bn -> conv2_block1_add [label=" 56x56x256" style=dashed]' in dot
    assert "256 + 256 → 256" in dot
    se = check_file("specs/variants/se_irv2.yaml")
    se_block = plot.block(se, "resnet_a")
    assert "384 × 1x1x384 → 35x35x384" in se_block
    # the gate's convs with the SE block's parameters (numbers only, before the program IR)
    assert "1x1 Conv (c//ratio=24)" in se_block and "1x1 Conv (c=384 sigmoid)" in se_block
    arithmetic = plot.network_arithmetic(se)["resnet_a_1"]
    assert ("gate", "resnet_a_1_b1_se_gate", "384 × 1x1x384 → 35x35x384") in arithmetic


def test_diff_reads_shortcuts_optional_projections_and_gates():
    """`irc diff` raised AttributeError on a residual without `project` (found by hand)."""
    from tests.conftest import run_irc

    run = run_irc("diff", "specs/irv2.yaml", "specs/variants/se_irv2.yaml")
    assert run.returncode == 1, run.stderr  # as diff(1): they differ
    assert "block added: se" in run.stdout
    assert "b1_se: - -> se" in run.stdout
    run = run_irc("diff", "specs/keras/resnet50.yaml", "specs/keras/xception.yaml")
    assert run.returncode == 1, run.stderr
    assert "parameters: 25,636,712 -> 22,910,480" in run.stdout


def test_unparse_round_trips_the_new_words():
    for text in (
        "dwconv 3x3 s2 dm2 linear nobn",
        "sepconv 64 3x3 dm2 @block2_sepconv1",
        "pad 1x2",
        "pad 0,1,0,1 @conv_pad_1",  # uneven: MobileNet's strided blocks
        "crop 1,0,1,0",  # NASNet's adjust path
        "gap keepdims",
        "conv 64 3x3 s2 g4 linear",
        "conv 8 3x3 relu nobn fused",
        "layernorm @stem_ln",
    ):
        kind, fields, _ = ops.parse(text)
        again = ops.unparse({"kind": kind, **fields})
        assert ops.parse(again)[:2] == (kind, fields), (text, again)
    assert ops.parse("pad 0,1,0,1")[1] == {"padding": [0, 1, 0, 1]}
    with pytest.raises(compact.CompactError, match=r"0,1,0,1 \(top, bottom, left, right\)"):
        ops.parse("pad 0,1,0")


def test_the_parenthesis_limit_counts_nesting_not_tokens():
    long_flat = "+".join(["f"] * 21) + "+(f)"  # one pair of parentheses, late in the text
    assert expr.parse(long_flat).evaluate({"f": 1}) == 22
    assert expr.parse("(" * 20 + "f" + ")" * 20).evaluate({"f": 3}) == 3
    with pytest.raises(expr.ExprError, match="too many parentheses"):
        expr.parse("(" * 21 + "f" + ")" * 21)
