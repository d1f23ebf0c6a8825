"""Under a mixed-precision policy every generated classifier returns float32.

Keras' mixed-precision guide asks that the last layer compute and return
float32 (a softmax in bfloat16 or float16 loses the small probabilities). The
classifier Dense of every generated module is built with dtype="float32";
keras.applications' is not, and returns the policy's compute dtype. Each
spec is built with its top at its smallest input, so the test stays quick; the
keras.applications presets (conftest.KERAS_PRESETS) are their bases' code with other
repeat counts and are left out.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from irc_cnn.compiler.infer import minimum_input
from irc_cnn.compiler.pipeline import check_file

from tests.conftest import BUILT_WHOLE, ROOT

keras = pytest.importorskip("keras")

POLICIES = ("mixed_bfloat16", "mixed_float16")


@pytest.fixture
def policy(request):
    """The policy set on a clean Keras state, float32 again after. One gc.collect per test
    (0.4-0.6 s over the whole process): at teardown, where it frees the test's model."""
    keras.backend.clear_session(free_memory=False)
    keras.mixed_precision.set_global_policy(request.param)
    yield request.param
    keras.mixed_precision.set_global_policy("float32")
    keras.backend.clear_session()


def _outputs(model, size: int) -> list:
    x = np.random.default_rng(0).uniform(-1, 1, (1, size, size, 3)).astype("float32")
    out = model(x, training=False)
    return list(out) if isinstance(out, (list, tuple)) else [out]


@pytest.mark.parametrize("policy", POLICIES, indirect=True)
def test_golden_classifier_returns_float32(policy):
    module = importlib.import_module("tests.golden.tiny")
    result = check_file("tests/golden/tiny.yaml")
    model = getattr(module, result.spec.builder.name)()
    size = result.spec.input[0]
    outputs = _outputs(model, size)
    assert len(outputs) == len(result.graph.outputs)
    for out in outputs:
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
    # the layers before the classifier do compute in the policy's precision
    compute = {layer.compute_dtype for layer in model.layers if layer.weights}
    assert {"float32", policy.removeprefix("mixed_")} <= compute


# One policy per spec: which classifier forms return float32 does not depend on which
# 16-bit type computes the rest (the golden test above takes both).
@pytest.mark.slow
@pytest.mark.parametrize("policy", ["mixed_float16"], indirect=True)
@pytest.mark.parametrize("spec", BUILT_WHOLE, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_every_generated_classifier_returns_float32(policy, spec):
    result = check_file(spec.relative_to(ROOT))
    module = importlib.import_module(f"generated.{result.spec.name}")
    build = getattr(module, result.spec.builder.name)
    size = minimum_input(result.spec)
    model = build(input_shape=(size, size, result.spec.input[2]))
    for out in _outputs(model, size):
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
        assert np.all(np.isfinite(np.asarray(out)))


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["mixed_bfloat16"], indirect=True)
def test_keras_applications_returns_the_compute_dtype(policy):
    """What the generated builders improve on: keras.applications returns bfloat16."""
    model = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3))
    (out,) = _outputs(model, 32)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
