"""irc's keras.applications specs list their layers as keras.applications does.

keras.applications' published ImageNet files are legacy HDF5 files, loaded by
order: the i-th weighted layer of the file into the i-th of `model.layers`. So
the generated model's weighted layers must come in keras.applications' order,
with the same weight shapes; and every layer keras.applications names must
carry that name (`get_layer(name)`, feature extraction by name). The replay of
Keras' ordering rule in backends/keras/order.py, which torch uses to read such
files without Keras, must give the order Keras gives.
"""

from __future__ import annotations

import re

import pytest

keras = pytest.importorskip("keras")

from irc_cnn.backends.keras.order import layer_order, weighted_order
from irc_cnn.compiler.graph import Graph
from irc_cnn.compiler.pipeline import check_bytes, check_file
from keras.applications import InceptionResNetV2, ResNet50, Xception
from keras.src.utils.naming import to_snake_case

from generated.keras_inception_resnet_v2 import inception_resnet_v2
from generated.keras_resnet50 import resnet50
from generated.keras_xception import xception

# spec, keras.applications' builder, irc's, the smallest input keras.applications takes
NETWORKS = {
    "inception_resnet_v2": ("specs/keras/inception_resnet_v2.yaml", InceptionResNetV2, inception_resnet_v2, 75),
    "xception": ("specs/keras/xception.yaml", Xception, xception, 71),
    "resnet50": ("specs/keras/resnet50.yaml", ResNet50, resnet50, 32),
}  # fmt: skip


def _auto_named(layer) -> bool:
    """A name Keras made up from the class (`conv2d_57`), which a file cannot rely on."""
    return re.fullmatch(to_snake_case(type(layer).__name__) + r"(_\d+)?", layer.name) is not None


@pytest.fixture(scope="module", params=[(n, t) for n in NETWORKS for t in (True, False)])
def pair(request):
    name, top = request.param
    spec, reference, generated, size = NETWORKS[name]
    kwargs = {"include_top": top, "input_shape": (size, size, 3)}
    if top:  # another number of classes: the classifier's shape is compared too
        kwargs["classes"] = 7
    return name, top, reference(weights=None, **kwargs), generated(**kwargs), check_file(spec)


@pytest.mark.slow
def test_weighted_layers_come_in_keras_applications_order(pair):
    _, _, reference, generated, _ = pair
    ours = [[tuple(w.shape) for w in layer.weights] for layer in generated.layers if layer.weights]
    theirs = [
        [tuple(w.shape) for w in layer.weights] for layer in reference.layers if layer.weights
    ]
    assert len(ours) == len(theirs)
    mismatched = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    assert mismatched == []


@pytest.mark.slow
def test_every_keras_applications_name_is_irc_s_in_the_same_order(pair):
    name, _, reference, generated, _ = pair
    named = [layer.name for layer in reference.layers[1:] if not _auto_named(layer)]
    ours = [layer.name for layer in generated.layers[1:]]
    assert set(named) - set(ours) == set()
    assert [n for n in ours if n in set(named)] == named
    for layer in named:
        assert generated.get_layer(layer).output.shape == reference.get_layer(layer).output.shape
    if name == "inception_resnet_v2":  # the scaled sums, named as Keras 2 named them
        sums = [f"block35_{i}" for i in range(1, 11)] + [f"block17_{i}" for i in range(1, 21)]
        sums += [f"block8_{i}" for i in range(1, 11)]
        assert [type(generated.get_layer(s)).__name__ for s in sums] == ["Add"] * 40
        blocks = [n for n in named if re.fullmatch(r"block(35|17|8)_\d+_(mixed|conv|ac)", n)]
        assert len(blocks) == 3 * 40 - 1  # no ReLU after block8_10's sum


@pytest.mark.slow
def test_the_replay_of_keras_order_is_keras_order(pair):
    _, top, _, generated, result = pair
    graph: Graph = result.graph
    assert layer_order(graph, top) == [layer.name for layer in generated.layers[1:]]
    assert weighted_order(graph, top) == [layer.name for layer in generated.layers if layer.weights]


SHORTCUT = """
name: shortcut_order
title: t
input: [16, 16, 3]
classes: 3
builder: {name: build}
network:
  - conv 8 3x3
  - residual:
      branches: [[conv 8 3x3, conv 16 3x3 s2 linear nobn]]
      shortcut: [conv 16 1x1 s2 linear nobn]
      order: ORDER
      names: {add: merged}
head: [gap, dense classes softmax]
"""


@pytest.mark.parametrize(
    "order, expected",
    [
        ("shortcut_first", ["conv", "b1_conv1", "shortcut_conv", "b1_conv2"]),
        ("shortcut_last", ["conv", "b1_conv1", "b1_conv2", "shortcut_conv"]),
    ],
)
def test_order_decides_where_the_shortcut_s_layers_sort(order, expected):
    """The sum's operand order is the only difference; Keras' rule sorts the shortcut's
    conv (as deep as the branch's second conv) before or after it by it."""
    result = check_bytes(SHORTCUT.replace("ORDER", order).encode(), "order.yaml")
    assert result.ok, result.diagnostics
    convs = [n.removeprefix("residual_") for n in weighted_order(result.graph) if "conv" in n]
    assert [c.removesuffix("_bn") for c in convs if not c.endswith("_bn")] == expected
    merged = next(layer for layer in result.graph.layers if layer.name == "merged")
    first = expected[2]
    assert merged.kind == "add" and merged.inputs[0].removeprefix("residual_") == first
