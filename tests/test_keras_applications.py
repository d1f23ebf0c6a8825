"""specs/keras/inception_resnet_v2.yaml equals keras.applications.InceptionResNetV2.

The generated model and keras.applications' are paired layer by layer by the
structure of their graphs, never by layer names or creation order: both are
walked from the output back to the input, each layer's inputs in order
(a Concatenate's inputs are its branches in order, a residual sum's the
shortcut then the residual). keras.applications computes a sum as one
CustomScaleLayer, `x + scale * r`; the generated code builds the same sum
from built-in layers, Rescaling(scale) on `r` then Add (no Rescaling when
the scale is 1). The walk reads both as one op `sum(scale)` and checks that
the two graphs are the same graph op for op, edge for edge; the weighted
layers are then paired by their place in it.

keras.applications' model is randomly initialised and its batch-norm
statistics and zero-initialised biases are randomised too, so that a
misplaced or missing weight changes the output.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras.applications import InceptionResNetV2

from irc_cnn.compiler.pipeline import check_file
from generated.keras_inception_resnet_v2 import inception_resnet_v2

SPEC = "specs/keras/inception_resnet_v2.yaml"
PARAMS_TOP = 55_873_736
PARAMS_NO_TOP = 54_336_736
TOLERANCE = 1e-4
BATCH = 2


# -- the structural walk -----------------------------------------------------------


def _producer(tensor):
    return tensor._keras_history.operation


def _inputs(layer) -> list:
    (node,) = layer._inbound_nodes  # every layer of these models is called once
    return list(node.input_tensors)


def _activation(layer) -> str:
    return keras.activations.serialize(layer.activation)


def _signature(layer) -> tuple:
    """What a layer computes, independent of its name, in a form both models share."""
    kind = type(layer).__name__
    if kind == "InputLayer":  # height and width: see the tests of input sizes
        return ("input", layer.batch_shape[-1])
    if kind == "Conv2D":
        return (
            "conv",
            layer.filters,
            tuple(layer.kernel_size),
            tuple(layer.strides),
            layer.padding,
            tuple(layer.dilation_rate),
            layer.use_bias,
            _activation(layer),
            layer.data_format,
        )
    if kind == "BatchNormalization":
        return ("bn", layer.axis % 4, layer.epsilon, layer.momentum, layer.center, layer.scale)
    if kind == "Activation":
        return ("activation", _activation(layer))
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return (kind, tuple(layer.pool_size), tuple(layer.strides), layer.padding)
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        return (kind, layer.keepdims)
    if kind == "Concatenate":
        return ("concat", layer.axis % 4)
    if kind == "Dense":
        return ("dense", layer.units, layer.use_bias, _activation(layer))
    if kind == "CustomScaleLayer":  # keras.applications: inputs[0] + inputs[1] * scale
        return ("sum", float(layer.scale))
    raise AssertionError(f"unexpected layer {layer.name!r} of type {kind}")


def structure(model) -> tuple[list[tuple], list]:
    """The graph in canonical order, and the layer behind each entry.

    Entries are (signature, positions of the inputs) in post-order from the
    output, inputs visited in order. A generated `Add([x, Rescaling(s)(r)])`
    becomes ("sum", s) with inputs (x, r); a bare `Add([x, r])` is ("sum", 1.0).
    """
    order: list[tuple] = []
    owners: list = []
    position: dict[int, int] = {}

    def operands(layer) -> tuple[list, tuple]:
        if type(layer).__name__ != "Add":
            return [_producer(t) for t in _inputs(layer)], _signature(layer)
        shortcut, residual = (_producer(t) for t in _inputs(layer))
        scale = 1.0
        if type(residual).__name__ == "Rescaling":
            assert float(residual.offset) == 0.0, residual.name
            assert len(residual._outbound_nodes) == 1, residual.name
            scale = float(residual.scale)
            (residual,) = (_producer(t) for t in _inputs(residual))
        return [shortcut, residual], ("sum", scale)

    (output,) = model.outputs
    stack: list[tuple[object, bool]] = [(_producer(output), False)]
    while stack:
        layer, expanded = stack.pop()
        if id(layer) in position:
            continue
        parents, signature = operands(layer) if type(layer).__name__ != "InputLayer" else ([], None)
        if not expanded:
            stack.append((layer, True))
            stack.extend((p, False) for p in reversed(parents) if id(p) not in position)
            continue
        if signature is None:
            signature = _signature(layer)
        position[id(layer)] = len(order)
        order.append((signature, tuple(position[id(p)] for p in parents)))
        owners.append(layer)
    return order, owners


def pair_weighted_layers(reference, generated) -> list[tuple]:
    """(reference layer, generated layer) for every layer with weights, by structure."""
    ref_graph, ref_layers = structure(reference)
    gen_graph, gen_layers = structure(generated)
    assert len(ref_graph) == len(gen_graph)
    for i, (a, b) in enumerate(zip(ref_graph, gen_graph)):
        assert a == b, (
            f"graphs differ at op {i}: {ref_layers[i].name} {a} vs {gen_layers[i].name} {b}"
        )
    pairs = [(a, b) for a, b in zip(ref_layers, gen_layers) if a.weights or b.weights]
    # Complete and one-to-one: every weighted layer of either model, exactly once.
    for model, side in ((reference, 0), (generated, 1)):
        weighted = {id(layer) for layer in model.layers if layer.weights}
        paired = [id(pair[side]) for pair in pairs]
        assert len(paired) == len(set(paired)) == len(weighted)
        assert set(paired) == weighted
    for a, b in pairs:
        assert type(a) is type(b), (a.name, b.name)
        assert [w.shape for w in a.weights] == [w.shape for w in b.weights], (a.name, b.name)
        assert [w.name for w in a.weights] == [w.name for w in b.weights], (a.name, b.name)
    return pairs


def randomise(model, seed: int) -> None:
    """Random batch-norm statistics and offsets, random biases; kernels keep their init."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if not layer.weights:
            continue
        values = []
        for variable, value in zip(layer.weights, layer.get_weights()):
            if variable.name == "moving_variance":
                value = rng.uniform(0.5, 1.5, value.shape)
            elif variable.name in ("moving_mean", "beta", "bias"):
                value = rng.normal(0.0, 0.1, value.shape)
            values.append(value.astype("float32"))
        layer.set_weights(values)


def copy_weights(reference, generated) -> int:
    pairs = pair_weighted_layers(reference, generated)
    for a, b in pairs:
        b.set_weights(a.get_weights())
    return len(pairs)


def max_difference(a, b, shape) -> float:
    x = np.random.default_rng(7).uniform(-1.0, 1.0, (BATCH, *shape)).astype("float32")
    ya, yb = np.asarray(a(x, training=False)), np.asarray(b(x, training=False))
    assert ya.shape == yb.shape
    assert np.all(np.isfinite(ya))
    assert not np.allclose(ya[0], ya[1])  # a degenerate model would agree trivially
    return float(np.max(np.abs(ya - yb)))


# -- models, built once per module -------------------------------------------------


@pytest.fixture(scope="module")
def top():
    reference = InceptionResNetV2(weights=None)
    randomise(reference, 1)
    generated = inception_resnet_v2()
    return reference, generated


@pytest.fixture(scope="module")
def no_top_avg():
    reference = InceptionResNetV2(weights=None, include_top=False, pooling="avg")
    randomise(reference, 2)
    generated = inception_resnet_v2(include_top=False, pooling="avg")
    return reference, generated


@pytest.fixture(scope="module")
def no_top_150():
    reference = InceptionResNetV2(weights=None, include_top=False, input_shape=(150, 150, 3))
    randomise(reference, 3)
    generated = inception_resnet_v2(include_top=False, input_shape=(150, 150, 3))
    return reference, generated


# -- tests -------------------------------------------------------------------------


def test_irc_counts_what_keras_applications_has():
    result = check_file(SPEC)
    assert result.ok
    assert result.graph.params == PARAMS_TOP
    assert result.graph.params_without_top() == PARAMS_NO_TOP


def test_signature_is_keras_applications():
    ours = inspect.signature(inception_resnet_v2).parameters
    theirs = inspect.signature(InceptionResNetV2).parameters
    names = [
        "include_top",
        "weights",
        "input_tensor",
        "input_shape",
        "pooling",
        "classes",
        "classifier_activation",
    ]
    assert list(ours)[: len(names)] == names
    for name in names[2:]:
        assert ours[name].default == theirs[name].default, name
    assert ours["weights"].default is None  # no download: a path or nothing


@pytest.mark.slow
def test_parameter_counts(top, no_top_avg):
    for reference, generated in (top, no_top_avg):
        assert generated.count_params() == reference.count_params()
    assert top[1].count_params() == PARAMS_TOP
    assert no_top_avg[1].count_params() == PARAMS_NO_TOP


@pytest.mark.slow
def test_structure_pairs_every_weighted_layer(top):
    reference, generated = top
    pairs = pair_weighted_layers(reference, generated)
    assert len(pairs) == 449  # 244 convs, 204 batch norms, 1 dense
    # The sums: 39 scaled (10 x 0.17, 20 x 0.1, 9 x 0.2), the last block's by 1.0.
    graph, _ = structure(generated)
    sums = [signature[1] for signature, _ in graph if signature[0] == "sum"]
    assert sums == [0.17] * 10 + [0.1] * 20 + [0.2] * 9 + [1.0]


@pytest.mark.slow
def test_outputs_agree_with_top(top):
    reference, generated = top
    copy_weights(reference, generated)
    assert max_difference(reference, generated, (299, 299, 3)) <= TOLERANCE
    # Random weights give a nearly flat softmax, so compare the pooled features too.
    classifiers = [[layer for layer in m.layers if type(layer).__name__ == "Dense"] for m in top]
    features = [keras.Model(m.input, dense.input) for m, (dense,) in zip(top, classifiers)]
    assert max_difference(*features, (299, 299, 3)) <= TOLERANCE


@pytest.mark.slow
def test_outputs_agree_without_top_avg_pooled(no_top_avg):
    reference, generated = no_top_avg
    copy_weights(reference, generated)
    assert generated.output_shape == reference.output_shape == (None, 1536)
    assert max_difference(reference, generated, (299, 299, 3)) <= TOLERANCE


@pytest.mark.slow
def test_outputs_agree_at_150(no_top_150):
    reference, generated = no_top_150
    copy_weights(reference, generated)
    assert generated.output_shape == reference.output_shape == (None, 3, 3, 1536)
    assert max_difference(reference, generated, (150, 150, 3)) <= TOLERANCE


@pytest.mark.slow
def test_keras_weights_file_loads_through_weights_argument(top, tmp_path):
    """Keras 3 matches a .weights.h5 file by layer class and position in model.layers.

    model.layers is ordered by the graph (depth from the input, then the order
    of a walk from the output), not by names or creation order, so the
    generated model's extra weightless Rescaling layers do not disturb it.
    """
    reference, _ = top
    path = tmp_path / "keras_applications.weights.h5"
    reference.save_weights(path)
    generated = inception_resnet_v2(weights=str(path))
    assert max_difference(reference, generated, (299, 299, 3)) <= TOLERANCE
    # and the file put every weight where the structural pairing would
    for a, b in pair_weighted_layers(reference, generated):
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(wa, wb)


@pytest.mark.slow
def test_default_input_without_top_takes_any_size(no_top_avg):
    reference, generated = no_top_avg
    assert reference.input_shape == (None, None, None, 3)
    assert generated.input_shape == reference.input_shape


@pytest.mark.slow
def test_minimum_input_is_75():
    model = inception_resnet_v2(include_top=False, input_shape=(75, 75, 3))
    assert model.output_shape == (None, 1, 1, 1536)


def test_74_is_refused_like_keras_applications():
    with pytest.raises(ValueError, match=r"at least 75 .*\(74, 74, 3\)"):
        inception_resnet_v2(include_top=False, input_shape=(74, 74, 3))
    with pytest.raises(ValueError, match="75"):
        InceptionResNetV2(weights=None, include_top=False, input_shape=(74, 74, 3))
