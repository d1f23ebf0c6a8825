"""The generated Keras code builds exactly the network irc inferred.

Each network is built once per module (about 2-4 s each on 2 cores); the
tests compare the model with the compiler's static analysis layer by layer.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from irc_cnn.compiler import summary
from irc_cnn.compiler.pipeline import check_file
from tests.conftest import BUILT_WHOLE, ROOT, grouped, unnested

keras = pytest.importorskip("keras")

pytestmark = pytest.mark.slow

PAPER_NETWORKS = {"inception_v4", "inception_resnet_v1", "inception_resnet_v2"}


def builder(result):
    module = importlib.import_module(f"generated.{result.spec.name}")
    return getattr(module, result.spec.builder.name)


@pytest.fixture(
    scope="module",
    params=grouped(BUILT_WHOLE, "generated_models", lambda p: str(p.relative_to(ROOT / "specs"))),
)
def built(request):
    """Every spec, the variants included, built once with its defaults (keras.applications'
    deeper presets at 64x64 in tests/test_keras_applications.py: conftest.KERAS_PRESETS),
    at the spec's input where its builder takes any size by default (`builder.any_size`)."""
    result = check_file(request.param.relative_to(ROOT))
    assert result.ok, result.diagnostics
    keras.backend.clear_session()
    model = builder(result)()
    if result.spec.builder.any_size:
        assert model.input_shape == (None, None, None, result.spec.input[2])
        keras.backend.clear_session()
        model = builder(result)(input_shape=tuple(result.spec.input))
    return result.spec.name, model, result.graph


def test_parameter_count_equals_static_count(built):
    _, model, graph = built
    assert model.count_params() == graph.params


def test_every_layer_has_the_inferred_shape(built):
    _, model, graph = built
    layers = {layer.name: layer for layer in unnested(model.layers)}  # irc infers those
    for layer in graph.layers:
        if layer.kind == "add_operation":  # Keras' `+`: an operation, not a layer
            continue
        assert tuple(layers[layer.name].output.shape[1:]) == layer.shape, layer.name
    inferred = {layer.name for layer in graph.layers}
    assert set(layers) - inferred == {"input"}


def test_forward_pass_is_finite(built):
    _, model, graph = built
    images = np.random.default_rng(0).uniform(size=(2, *graph.input)).astype("float32")
    outputs = model.predict(images, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    assert [o.shape for o in outputs] == [(2, *shape) for shape in graph.outputs]
    for output in outputs:
        assert np.isfinite(output).all()
        np.testing.assert_allclose(output.sum(axis=1), 1.0, rtol=1e-4)  # softmax outputs


def test_save_and_safe_load_round_trip(built, tmp_path):
    name, model, graph = built
    if name not in PAPER_NETWORKS:
        pytest.skip("saved and loaded for the paper's three networks only (10 s each)")
    images = np.random.default_rng(1).uniform(size=(2, *graph.input)).astype("float32")
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    before = model.predict(images, verbose=0)
    after = loaded.predict(images, verbose=0)
    for a, b in zip(
        before if isinstance(before, list) else [before],
        after if isinstance(after, list) else [after],
    ):
        np.testing.assert_array_equal(a, b)


def test_scale_flag_controls_every_rescaling_layer(checked):
    for name in ("inception_resnet_v1", "inception_resnet_v2"):
        create = builder(checked[name])
        on = create(scale=True, include_top=False)
        off = create(scale=False, include_top=False)
        rescaling = lambda m: [l for l in m.layers if isinstance(l, keras.layers.Rescaling)]  # noqa: E731
        blocks = [
            s for s in checked[name].graph.stages if s.block and s.block.startswith("resnet_")
        ]
        assert len(rescaling(on)) == len(blocks)
        assert rescaling(off) == []
        assert on.count_params() == off.count_params()


def test_v1_scaling_is_off_by_default_as_the_seed_readme_says(checked):
    model = builder(checked["inception_resnet_v1"])(include_top=False)
    assert not any(isinstance(l, keras.layers.Rescaling) for l in model.layers)


def test_arguments_are_checked(checked):
    create = builder(checked["inception_resnet_v2"])
    with pytest.raises(
        ValueError, match="pooling must be None, 'avg' or 'max'; received pooling='mean'"
    ):
        create(include_top=False, pooling="mean")
    with pytest.raises(ValueError, match=r"at least 299 \(include_top=True\)"):
        create(input_shape=(298, 298, 3))
    with pytest.raises(ValueError, match="input_shape must be"):
        create(input_shape=(299, 299))
    model = create(include_top=False, pooling="avg", input_shape=(75, 75, 3))
    assert model.output.shape[1:] == (2144,)
    with pytest.raises(ValueError, match=r"at least 75 \(include_top=False\)"):
        create(include_top=False, input_shape=(74, 74, 3))


def test_classes_and_logits(checked):
    model = builder(checked["inception_v4"])(nb_classes=7, classifier_activation=None)
    assert model.output.shape[1:] == (7,)
    assert model.get_layer("head_dense").activation.__name__ == "linear"


@pytest.mark.slow
def test_summary_totals_equal_keras(built):
    """irc summary's totals, on the same build (docs/summary-and-plot.md). Parameters: model.count_params(). Activation memory: every layer's output, 4 bytes
    each: a nested keras.Sequential's layers' (ConvNeXt's stem), and the output of an
    operation that is no layer (Keras' `+`, a tensor all the same), but for the two
    operations of hard_sigmoid's ReLU form, which the summary leaves out."""
    name, model, graph = built
    table = summary.summarize(graph, name)
    assert model.count_params() == table.params, name
    operations = unnested(model.operations)
    # hard_sigmoid's ReLU form counts as its ReLU layer (docs/summary-and-plot.md): the
    # `x + 3.0` before it and the `* (1 / 6)` after it are left out
    around_relu = {
        id(op)
        for layer in model.layers
        if type(layer).__name__ == "ReLU"
        for op in (
            layer._inbound_nodes[0].input_tensors[0]._keras_history.operation,
            layer._outbound_nodes[0].operation if layer._outbound_nodes else None,
        )
        if type(op).__name__ in ("Add", "Multiply") and op not in model.layers
    }
    outputs = sum(
        math.prod(each.output.shape[1:])
        for each in operations
        if type(each).__name__ != "InputLayer" and id(each) not in around_relu
    )
    assert 4 * outputs == table.activation_bytes, name
