"""Transfer: a variant starts from its base's weights, layer by layer by name.

No network: the IR-v2 weights file is made here (keras.applications' model with
random weights and batch-norm statistics, written with Keras' legacy writer)
and published by a local spec through a file:// URL, as irc:keras/inception_resnet_v2
publishes ImageNet's.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")

from irc_cnn.backends.keras import transfer as tr
from irc_cnn.backends.keras.order import weighted_order
from irc_cnn.compiler.pipeline import check_file

from tests.conftest import ROOT, run_irc
from tests.test_keras_applications import randomise

VARIANT = """
extends: irc:keras/inception_resnet_v2
name: keras_inception_resnet_v2_small
title: "Inception-ResNet-v2 (keras.applications, 5/10/5 blocks, {input})"
classes: 10
network:
  block35.repeat: 5
  block17.repeat: 10
  block81.repeat: 4        # and the unscaled last block8: 5 C blocks
"""


@pytest.fixture(scope="module")
def irv2(tmp_path_factory):
    """keras.applications' IR-v2 (with the top), its legacy file, and a spec that
    publishes that file as `imagenet`; the 5/10/5-block variant with 10 classes."""
    from keras.src.legacy.saving import legacy_h5_format

    root = tmp_path_factory.mktemp("transfer")
    keras.backend.clear_session()
    reference = keras.applications.InceptionResNetV2(weights=None, input_shape=(75, 75, 3))
    randomise(reference, seed=3)
    file = root / "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5"
    with h5py.File(file, "w") as out:
        legacy_h5_format.save_weights_to_hdf5_group(out, reference)
    md5 = hashlib.md5(file.read_bytes()).hexdigest()
    base = root / "base.yaml"
    base.write_text(
        "extends: irc:keras/inception_resnet_v2\n"
        "weights:\n  imagenet:\n    format: keras-legacy-h5\n"
        f"    top: {{url: '{file.as_uri()}', md5: {md5}}}\n"
    )
    variant = root / "variant.yaml"
    variant.write_text(VARIANT)
    return root, reference, base, variant


@pytest.mark.slow
def test_irc_transfer_into_a_5_10_5_variant_loads_all_but_the_classifier(irv2):
    root, reference, base, variant = irv2
    out = root / "small.weights.h5"
    proc = run_irc(
        "transfer", f"{base}@imagenet", str(variant), "-o", str(out), "--format", "json",
        "--strict", env={"IRC_CACHE_DIR": str(root / "cache")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    graph = check_file(variant).graph
    weighted = weighted_order(graph)  # the variant's layers with weights, as Keras lists them
    assert report["new"] == ["predictions"] == report["classifiers"]
    assert report["mismatched"] == [] and report["adapted"] == []
    assert report["loaded"] == [n for n in weighted if n != "predictions"]
    # every weighted layer of the base is loaded or unused, but its 1000-class classifier
    base_weighted = [layer for layer in reference.layers if layer.weights]
    assert len(report["loaded"]) + len(report["unused"]) == len(base_weighted) - 1
    # the base's blocks the variant does not have, and nothing else, went unused
    dropped = re.compile(r"block35_([6-9]|10)_|block17_(1[1-9]|20)_|block8_([6-9]|10)_")
    assert report["unused"] and all(dropped.match(name) for name in report["unused"])
    # the written file: the base's weights where the names match
    model = tr.build(check_file(variant), input_shape=(75, 75, 3))
    model.load_weights(out)
    for name in ("block35_3_conv", "block17_10_conv", "conv_7b_bn"):
        for ours, theirs in zip(model.get_layer(name).weights, reference.get_layer(name).weights):
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


TINY = """
name: tiny_transfer
title: t
input: [16, 16, CHANNELS]
classes: CLASSES
builder: {name: build}
network:
  - conv 8 3x3 s2 @stem
  - conv FILTERS 3x3 @body
  - conv 8 1x1 @neck
head: [gap @pool, dense classes softmax @predictions]
"""


def _tiny(tmp_path, channels=3, classes=3, filters=8):
    path = tmp_path / f"tiny_{channels}_{classes}_{filters}.yaml"
    text = TINY.replace("CHANNELS", str(channels)).replace("CLASSES", str(classes))
    path.write_text(text.replace("FILTERS", str(filters)))
    return path


@pytest.fixture
def tiny_source(tmp_path):
    keras.utils.set_random_seed(1)
    model = tr.build(check_file(_tiny(tmp_path)))
    path = tmp_path / "tiny.weights.h5"
    model.save_weights(path)
    return model, path


@pytest.mark.parametrize("channels", [1, 5])
def test_another_number_of_input_channels_adapts_the_first_conv(tmp_path, tiny_source, channels):
    source, path = tiny_source
    model = tr.build(check_file(_tiny(tmp_path, channels=channels)))
    report = tr.transfer(model, path)
    assert report.adapted == ["stem"] and "stem" in report.loaded
    assert report.new == report.mismatched == report.unused == []
    kernel = np.asarray(source.get_layer("stem").weights[0])
    got = np.asarray(model.get_layer("stem").weights[0])
    if channels == 1:  # timm: summed over the RGB channels
        np.testing.assert_allclose(got[:, :, 0], kernel.sum(axis=2), rtol=1e-6)
    else:  # repeated (R, G, B, R, G) and scaled by 3/5
        np.testing.assert_allclose(got[:, :, 3], kernel[:, :, 0] * 3 / 5, rtol=1e-6)
        np.testing.assert_allclose(got[:, :, 4], kernel[:, :, 1] * 3 / 5, rtol=1e-6)


def test_another_number_of_classes_reinitialises_the_classifier(tmp_path, tiny_source):
    _, path = tiny_source
    model = tr.build(check_file(_tiny(tmp_path, classes=7)))
    report = tr.transfer(model, path)
    assert report.new == ["predictions"] == report.classifiers
    assert report.loaded == ["stem", "stem_bn", "body", "body_bn", "neck", "neck_bn"]
    assert report.unexpected == []


def test_a_changed_layer_is_mismatched_and_strict_fails_writing_nothing(tmp_path, tiny_source):
    source, path = tiny_source
    changed = _tiny(tmp_path, filters=16)
    report = tr.transfer(tr.build(check_file(changed)), source)  # a model as the source
    assert [m.layer for m in report.mismatched] == ["body", "body_bn", "neck"]
    assert report.mismatched[0].source == [[3, 3, 8, 8]]
    assert report.mismatched[0].model == [[3, 3, 8, 16]]
    assert report.unexpected == ["body", "body_bn", "neck"]
    out = tmp_path / "out.weights.h5"
    proc = run_irc("transfer", str(path), str(changed), "-o", str(out), "--strict")
    assert proc.returncode == 1
    assert "--strict: 3 layer(s) other than the classifier" in proc.stderr
    assert "shape-mismatched      3  body, body_bn, neck" in proc.stdout
    assert not out.exists() and list(tmp_path.glob("*.partial*")) == []


@pytest.mark.parametrize(
    "source, words",
    [
        ("missing.h5", "no such file: missing.h5"),
        ("irc:keras/xception@imagenet21k", "publishes no weights named 'imagenet21k'"),
        ("irc:nope@imagenet", "no shipped spec named 'irc:nope'"),
    ],
)
def test_a_bad_source_is_misuse(tmp_path, source, words):
    proc = run_irc("transfer", source, str(_tiny(tmp_path)), "-o", str(tmp_path / "o.weights.h5"))
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr


def test_an_output_that_is_a_folder_is_misuse_before_keras_starts(tmp_path):
    """It printed the report, then an IsADirectoryError traceback at the rename."""
    folder = tmp_path / "o.weights.h5"
    folder.mkdir()
    proc = run_irc("transfer", "missing.h5", str(_tiny(tmp_path)), "-o", str(folder))
    assert proc.returncode == 2
    assert proc.stderr == f"irc: error: -o {folder} is a folder; name the file to write\n"


def test_a_source_that_is_not_hdf5_is_misuse_not_a_traceback(tmp_path):
    source = tmp_path / "bad.h5"
    source.write_text("not an HDF5 file\n")
    out = tmp_path / "o.weights.h5"
    proc = run_irc("transfer", str(source), str(_tiny(tmp_path)), "-o", str(out))
    assert proc.returncode == 2, proc.stderr
    assert f"{source}: not a readable Keras weights file" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


@pytest.mark.slow
@pytest.mark.training
def test_finetune_example_transfers_and_writes_its_plot(tmp_path):
    """examples/finetune_variant.py, a few steps: the report and both results."""
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    plot = tmp_path / "curves.png"
    script = ROOT / "examples" / "finetune_variant.py"
    args = ["--steps", "3", "--batch-size", "8", "--plot", str(plot)]
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "  new                   2  hidden, predictions\n" in proc.stdout
    assert "  loaded               12\n" in proc.stdout
    numbers = re.search(r"transferred: held out accuracy (\S+); random start: held out "
                        r"accuracy (\S+); plot: ", proc.stdout)  # fmt: skip
    assert numbers, proc.stdout
    assert all(0 <= float(n) <= 1 for n in numbers.groups())
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
