"""The op registry (compiler.ops): each op kind defined in one place, printed by one
entry per backend; and the ops added through it (grouped convolution, layer
normalisation, cropping, rescaling, normalization) equal to Keras' and torch's own
layers."""

from __future__ import annotations

import ast
import re
import tokenize
from pathlib import Path

import numpy as np
import pytest

from irc_cnn.backends.graphviz import plot
from irc_cnn.backends.keras import emit as keras_emit
from irc_cnn.backends.torch import emit as torch_emit
from irc_cnn.compiler import naming, ops
from irc_cnn.compiler.pipeline import check_bytes
from tests.conftest import ROOT
from tests.test_torch_backend import compile_both, param_count

PRINTERS = {
    "backends/keras/emit.py": keras_emit.OPS,
    "backends/torch/emit.py": torch_emit.OPS,
    "backends/graphviz/plot.py": plot.OPS,
}
# Kinds whose word other modules use for something else, and why:
ELSEWHERE = {
    "bn": "a conv's `bn` field, and the batch-norm layer a conv adds",
    "act": "the layer every activation builds (a conv's, a residual's), and `act NAME`",
}
# A kind that is also the name of a generated Keras module's helper function is
# spelled, besides, in compiler/naming.py's list of the names a module defines.
HELPER_NAMES = "compiler/naming.py"


def test_every_backend_prints_every_op_kind_and_nothing_else():
    assert ops.KINDS[:3] == ("conv", "dwconv", "sepconv") and "layernorm" in ops.KINDS
    for where, entries in PRINTERS.items():
        assert set(entries) == set(ops.KINDS), where


def _string_literals(path: Path) -> set[str]:
    out = set()
    with path.open("rb") as file:
        for token in tokenize.tokenize(file.readline):
            if token.type == tokenize.STRING and not token.string.lstrip("rbRB").startswith(
                ("f", "F")
            ):
                value = ast.literal_eval(token.string)
                if isinstance(value, str):
                    out.add(value)
    return out


def test_an_op_kind_is_spelled_only_where_it_is_defined_and_printed():
    """As code (a string literal that is the kind), an op's kind appears in its family's
    module and in each backend's printing entry, nowhere else in compiler/ or backends/."""
    sources = [p for folder in ("compiler", "backends") for p in (ROOT / folder).rglob("*.py")]
    literals = {p.relative_to(ROOT).as_posix(): _string_literals(p) for p in sources}
    for kind, definition in ops.REGISTRY.items():
        home = f"compiler/ops/{type(definition).__module__.rsplit('.', 1)[-1]}.py"
        spelled = {path for path, values in literals.items() if kind in values}
        allowed = {home, *PRINTERS} | ({HELPER_NAMES} if kind in naming.MODULE_NAMES else set())
        if kind in ELSEWHERE:
            continue
        assert spelled <= allowed, (kind, sorted(spelled - allowed))
        assert home in spelled, kind


def test_dwconv_is_written_in_at_most_five_files():
    """The issue's measure: the word, anywhere (templates, docstrings), in <= 5 files."""
    files = [p for folder in ("compiler", "backends") for p in (ROOT / folder).rglob("*.*")]
    hits = sorted(
        p.relative_to(ROOT).as_posix()
        for p in files
        if p.suffix in (".py", ".jinja") and re.search(r"\bdwconv\b", p.read_text())
    )
    assert len(hits) <= 5, hits


def test_a_grouped_conv_counts_a_kth_of_the_weights():
    text = BASE + "network:\n  - conv 32 3x3\n  - conv 64 3x3 bias g4\n"
    result = check_bytes(text.encode(), "g.yaml")
    assert result.ok, [d.message for d in result.diagnostics]
    grouped = next(layer for layer in result.graph.layers if layer.name == "conv2")
    assert grouped.params == 3 * 3 * (32 // 4) * 64 + 64
    assert grouped.macs == 16 * 16 * 3 * 3 * (32 // 4) * 64
    assert ops.unparse(result.spec.network[1].model_dump()) == "conv 64 3x3 g4 bias"


def test_groups_may_be_a_block_parameter():
    text = BASE + (
        "blocks:\n  b: {params: [g], seq: ['conv 64 3x3 g', bn]}\n"
        "network:\n  - conv 32 3x3\n  - {b: {g: 8}}\n"
    )
    text = text.replace("'conv 64 3x3 g'", "{conv: {filters: 64, kernel: 3, groups: g}}")
    result = check_bytes(text.encode(), "g.yaml")
    assert result.ok, [d.message for d in result.diagnostics]
    conv = next(layer for layer in result.graph.layers if layer.name == "b_conv")
    assert conv.params == 3 * 3 * 4 * 64


BASE = """\
name: n
title: N
input: [16, 16, 3]
classes: 10
builder: {name: n}
defaults:
  conv: {bias: false, bn: false, activation: linear}
"""
EQUAL_SPEC = (
    BASE
    + """\
network:
  - {rescaling: {scale: 0.5, offset: -1.0}}
  - {normalization: {mean: [0.5, -1.0, 2.0], variance: [4.0, 0.25, 1.0]}}
  - normalization
  - conv 12 3x3
  - conv 24 3x3 s2 g4 bias
  - {layernorm: {epsilon: 1.0e-6}}
  - conv 24 1x1 g3
  - {crop: {cropping: [1, 0, 0, 2]}}
  - layernorm
  - dense 16
  - layerscale 0.5
  - {act: {activation: linear, layer: Activation}}
head: [gap, layernorm]
"""
)


@pytest.mark.slow
def test_grouped_conv_and_layer_norm_equal_keras_and_torch_layers(tmp_path):
    """The generated modules against a model built from Keras' own layers (nobody's
    code here): the same parameters, the same weights, the same outputs; and the torch
    module against both."""
    keras = pytest.importorskip("keras")
    import torch

    from irc_cnn.backends.torch.weights import load_keras_weights
    from keras.src.applications.convnext import LayerScale

    result, keras_module, torch_module = compile_both(tmp_path, "n", EQUAL_SPEC)
    keras.utils.set_random_seed(1)
    model = keras_module.n()
    layers = keras.layers
    inputs = keras.Input((16, 16, 3))
    x = layers.Rescaling(0.5, -1.0)(inputs)
    x = layers.Normalization(mean=[0.5, -1.0, 2.0], variance=[4.0, 0.25, 1.0])(x)
    x = layers.Normalization()(x)
    x = layers.Conv2D(12, 3, padding="same", use_bias=False)(x)
    x = layers.Conv2D(24, 3, strides=2, padding="same", groups=4)(x)
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    x = layers.Conv2D(24, 1, groups=3, use_bias=False)(x)
    x = layers.Cropping2D(((1, 0), (0, 2)))(x)
    x = layers.LayerNormalization()(x)
    x = layers.Dense(16)(x)  # on each position of the map
    x = LayerScale(0.5, 16)(x)  # keras.applications' own
    x = layers.Activation("linear")(x)
    x = layers.GlobalAveragePooling2D()(x)
    reference = keras.Model(inputs, layers.LayerNormalization()(x))
    ours = [type(layer).__name__ for layer in model.layers[1:]]
    assert ours == [type(layer).__name__ for layer in reference.layers[1:]]
    grouped = [layer.groups for layer in model.layers if isinstance(layer, layers.Conv2D)]
    assert grouped == [1, 4, 3]
    assert model.count_params() == reference.count_params() == result.graph.params
    # The weights Normalization holds itself: mean, variance, count (2 x 3 + 1), none
    # for the one given constants.
    norms = [layer for layer in model.layers if isinstance(layer, layers.Normalization)]
    assert [layer.count_params() for layer in norms] == [0, 7]
    dense = model.get_layer("dense")
    assert dense.output.shape == (None, 7, 6, 16) and dense.count_params() == 24 * 16 + 16
    scale = next(layer for layer in model.layers if type(layer) is LayerScale)
    reference_scale = reference.layers[-4]
    unnumbered = [re.sub(r"_\d+\Z", "", w.name) for w in (*scale.weights, *reference_scale.weights)]
    assert unnumbered == ["variable", "variable"]  # auto-named alike, numbered per model
    assert scale.get_config()["init_values"] == 0.5 and scale.get_config()["projection_dim"] == 16
    rng = np.random.default_rng(0)  # non-default gammas, betas, means, variances too
    low = {"variance": 0.25, "count": 0}  # a variance is positive
    weights = [
        rng.uniform(low.get(v.name, -0.5), 2.0, v.shape).astype(v.dtype) for v in model.weights
    ]
    model.set_weights(weights)
    # Through a file, as Normalization reads its weights into its constants on loading.
    model.save_weights(tmp_path / "k.weights.h5")
    model.load_weights(tmp_path / "k.weights.h5")
    reference.load_weights(tmp_path / "k.weights.h5")
    images = rng.uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    expected = np.asarray(reference(images))
    assert np.abs(np.asarray(model(images)) - expected).max() < 1e-6

    net = torch_module.n()
    assert param_count(net) == result.graph.params
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [m.groups for m in convs] == [1, 4, 3]
    norms = [m for m in net.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert [m.eps for m in norms] == [1e-6, 1e-3, 1e-3]
    load_keras_weights(net, tmp_path / "k.weights.h5")
    net.eval()
    with torch.no_grad():
        got = net(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()
    assert np.abs(got - expected).max() < 1e-4


DROPOUT_SPEC = """\
name: dp
title: DP
input: [8, 8, 3]
classes: 10
builder: {name: dp}
blocks:
  top:
    params: {p: 0.2}
    seq: [gap, dropout p, dense classes softmax]
network: [conv 8 3x3]
head:
  - {top: {p: 0.5}}
"""


@pytest.mark.slow
def test_a_dropout_rate_may_be_a_block_parameter(tmp_path):
    """The rate is the block function's argument in both backends: 0.5 at this use."""
    keras = pytest.importorskip("keras")
    import torch

    result, keras_module, torch_module = compile_both(tmp_path, "dp", DROPOUT_SPEC)
    assert result.ok
    rates = [l.rate for l in keras_module.dp().layers if isinstance(l, keras.layers.Dropout)]
    drops = [m.p for m in torch_module.dp().modules() if isinstance(m, torch.nn.Dropout)]
    assert rates == drops == [0.5]


SHARED_DROPOUT_SPEC = (
    BASE
    + """\
network:
  - conv 4 3x3
  - {dropout: {rate: 0.5, noise_shape: [1, 1, 1]}}
  - {dropout: {rate: 0.5, noise_shape: [1, 1, null]}}
"""
)


@pytest.mark.slow
def test_a_dropout_noise_shape_shares_one_draw_along_its_axes(tmp_path):
    """EfficientNet's Dropout(noise_shape=(None, 1, 1, 1)): a whole sample's map is kept
    or dropped; [1, 1, null] draws per channel. Keras' layer and torch's module alike."""
    keras = pytest.importorskip("keras")
    import torch

    result, keras_module, torch_module = compile_both(tmp_path, "n", SHARED_DROPOUT_SPEC)
    model = keras_module.n()
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [tuple(d.noise_shape) for d in drops] == [(None, 1, 1, 1), (None, 1, 1, None)]
    images = np.random.default_rng(0).uniform(-1, 1, (64, 16, 16, 3)).astype("float32")
    features = keras.Model(model.input, model.layers[1].output)(images)
    for layer, per_sample in zip(drops, (True, False)):
        out = np.asarray(layer(features, training=True))
        dropped = out == 0
        # whole channels at once (one draw per sample and channel) ...
        channels = dropped.reshape(64, -1, 4).all(axis=1)
        assert dropped.any()
        assert np.array_equal(dropped, np.broadcast_to(channels[:, None, None, :], dropped.shape))
        # ... and per sample, all of a sample's channels together
        whole = channels.all(axis=1) | ~channels.any(axis=1)
        assert bool(whole.all()) == per_sample
    net = torch_module.n().train()
    x = torch.ones(64, 4, 16, 16)
    for module, per_sample in zip((net.dropout1, net.dropout2), (True, False)):
        out = module(x)
        assert set(out.unique().tolist()) == {0.0, 2.0}
        zero = out == 0
        assert torch.equal(zero, zero[:, :, :1, :1].expand_as(zero))  # shared over the map
        whole = zero.flatten(1).all(dim=1) | (~zero).flatten(1).all(dim=1)
        assert bool(whole.all()) == per_sample
    assert not net.eval().dropout1(x).eq(0).any()
