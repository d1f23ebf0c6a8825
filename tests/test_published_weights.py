"""Published weights: the spec's `weights:` table, the download cache, and loading.

specs/keras/*.yaml declare keras.applications' ImageNet files; the URLs and
hashes are read back from keras.applications' own code here, never copied.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from irc_cnn.backends import published
from irc_cnn.compiler.pipeline import check_bytes, check_file

from tests.conftest import ROOT, SPEC_FILES, run_irc, scaled_difference

# Every spec that publishes weights, by the keras.applications builder they are for
KERAS_SPECS = {
    "ConvNeXtTiny": "specs/keras/convnext_tiny.yaml",
    "DenseNet121": "specs/keras/densenet121.yaml",
    "DenseNet169": "specs/keras/densenet169.yaml",
    "DenseNet201": "specs/keras/densenet201.yaml",
    "EfficientNetV2B0": "specs/keras/efficientnet_v2_b0.yaml",
    "InceptionResNetV2": "specs/keras/inception_resnet_v2.yaml",
    "InceptionV3": "specs/keras/inception_v3.yaml",
    "MobileNetV3Large": "specs/keras/mobilenet_v3_large.yaml",
    "MobileNetV3Small": "specs/keras/mobilenet_v3_small.yaml",
    "NASNetMobile": "specs/keras/nasnet_mobile.yaml",
    "ResNet50": "specs/keras/resnet50.yaml",
    "ResNet50V2": "specs/keras/resnet50v2.yaml",
    "ResNet101": "specs/keras/resnet101.yaml",
    "ResNet152": "specs/keras/resnet152.yaml",
    "VGG16": "specs/keras/vgg16.yaml",
    "VGG19": "specs/keras/vgg19.yaml",
    "Xception": "specs/keras/xception.yaml",
}


class _Asked(Exception):
    """keras.applications asked for its file: what it asked is in args."""


@pytest.mark.slow
@pytest.mark.parametrize("application", sorted(KERAS_SPECS))
@pytest.mark.parametrize("include_top", [True, False])
def test_declared_files_are_keras_applications(application, include_top, monkeypatch):
    """keras.applications' builder is run with weights="imagenet" and its download
    intercepted: the file name, URL and hash it asks for are the spec's."""
    keras = pytest.importorskip("keras")
    from keras.src.utils import file_utils

    def get_file(fname=None, origin=None, cache_subdir="datasets", file_hash=None, **kw):
        raise _Asked(fname, origin, file_hash)

    monkeypatch.setattr(file_utils, "get_file", get_file)
    with pytest.raises(_Asked) as asked:
        getattr(keras.applications, application)(weights="imagenet", include_top=include_top)
    fname, url, file_hash = asked.value.args
    published = check_file(KERAS_SPECS[application]).spec.weights["imagenet"]
    declared = published.top if include_top else published.no_top
    assert published.format == "keras-legacy-h5"
    md5 = len(file_hash) == 32  # keras takes either (ConvNeXt's are sha256)
    expected = (url, file_hash, None) if md5 else (url, None, file_hash)
    assert (declared.url, declared.md5, declared.sha256) == expected
    basename = url.rsplit("/", 1)[1]
    assert KERAS_CACHE_NAMES.get(basename, basename) == fname


# keras.applications saves these files under a name of its own, not the URL's (irc keeps
# the URL's, under the hash: backends/published.py)
KERAS_CACHE_NAMES = {
    "NASNet-mobile.h5": "nasnet_mobile.h5",
    "NASNet-mobile-no-top.h5": "nasnet_mobile_no_top.h5",
}


def test_every_spec_that_publishes_weights_is_checked_against_keras():
    publishing = {
        str(path.relative_to(ROOT))
        for path in SPEC_FILES
        if path.parent.name == "keras" and check_file(path).spec.weights
    }
    assert publishing == set(KERAS_SPECS.values())


BASE = """
name: tiny_published
title: t
input: [8, 8, 3]
classes: 3
builder: {name: build}
network: [conv 4 3x3]
head: [gap, dense classes softmax]
weights:
  imagenet:
    format: keras-legacy-h5
    top: TOP
"""
GOOD = "{url: 'file:///w.h5', md5: 0a58e3b7378bc2990ea3b43d5981f1f6}"


def _errors(text: str) -> list[tuple[int, int, str]]:
    result = check_bytes(text.encode(), "w.yaml")
    return [
        (d.span.line, d.span.column, d.message) for d in result.diagnostics if d.severity == "error"
    ]


def test_a_weights_table_validates():
    result = check_bytes(BASE.replace("TOP", GOOD).encode(), "w.yaml")
    assert result.ok, result.diagnostics
    assert result.spec.weights["imagenet"].top.url == "file:///w.h5"
    assert result.spec.weights["imagenet"].no_top is None


@pytest.mark.parametrize(
    "top, line, column, words",
    [
        ("{url: 'file:///w.h5'}", 12, 10, "exactly one of md5 and sha256"),
        ("{url: 'file:///w.h5', md5: abc}", 12, 37, "md5"),
        ("{url: 'ftp://x/w.h5', md5: 0a58e3b7378bc2990ea3b43d5981f1f6}", 12, 16, "url"),
        (GOOD[:-1] + ", size: 3}", 12, 71, "unknown key 'size'"),
    ],
)
def test_a_bad_weights_table_is_located(top, line, column, words):
    errors = _errors(BASE.replace("TOP", top))
    assert len(errors) == 1, errors
    assert errors[0][:2] == (line, column) and words in errors[0][2]


def test_a_variant_does_not_inherit_its_base_s_published_weights(tmp_path):
    """A variant is another network: the base's file would not fit it."""
    variant = tmp_path / "v.yaml"
    variant.write_text("extends: irc:keras/xception\nname: xception_variant\n")
    assert check_file(variant).spec.weights == {}
    assert "imagenet" in check_file("specs/keras/xception.yaml").spec.weights


# -- the download cache ------------------------------------------------------------


def _published(tmp_path, content: bytes = b"weights"):
    source = tmp_path / "served" / "net_weights.h5"
    source.parent.mkdir()
    source.write_bytes(content)
    return source, {"url": source.as_uri(), "sha256": hashlib.sha256(content).hexdigest()}


def test_fetch_downloads_once_into_the_cache_and_checks_the_hash(tmp_path, monkeypatch):
    monkeypatch.setenv(published.CACHE_ENV, str(tmp_path / "cache"))
    source, entry = _published(tmp_path)
    path = published.fetch(entry)
    assert path == tmp_path / "cache" / entry["sha256"] / "net_weights.h5"
    assert path.read_bytes() == b"weights"
    source.unlink()  # found again without the source
    assert published.fetch(entry) == path


def test_fetch_takes_keras_md5_hashes(tmp_path):
    source, _ = _published(tmp_path)
    entry = {"url": source.as_uri(), "md5": hashlib.md5(b"weights").hexdigest()}
    assert published.fetch(entry, tmp_path / "c").read_bytes() == b"weights"


def test_a_hash_mismatch_is_an_error_and_nothing_is_kept(tmp_path):
    source, entry = _published(tmp_path)
    source.write_bytes(b"tampered")
    with pytest.raises(published.PublishedWeightsError, match="not the declared"):
        published.fetch(entry, tmp_path / "cache")
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


def test_a_corrupt_cached_file_is_fetched_again(tmp_path):
    _, entry = _published(tmp_path)
    path = published.fetch(entry, tmp_path / "cache")
    path.write_bytes(b"bitrot")
    assert published.fetch(entry, tmp_path / "cache").read_bytes() == b"weights"


def test_an_unreachable_url_is_an_error(tmp_path):
    entry = {"url": (tmp_path / "missing.h5").as_uri(), "md5": "0" * 32}
    with pytest.raises(published.PublishedWeightsError, match="cannot download"):
        published.fetch(entry, tmp_path / "cache")


def test_unknown_names_say_what_the_spec_publishes():
    table = check_file("specs/keras/xception.yaml").spec.model_dump()["weights"]
    with pytest.raises(published.PublishedWeightsError) as error:
        published.choose("keras_xception", table, "imagenet21k", True)
    assert str(error.value).startswith(
        "keras_xception publishes no weights named 'imagenet21k' (it publishes: imagenet)"
    )
    with pytest.raises(published.PublishedWeightsError, match=r"it publishes: none"):
        published.choose("inception_resnet_v2", {}, "imagenet", True)
    assert published.choose("keras_xception", table, "imagenet", False)["md5"] == (
        "b0042744bf5b25fce3cb969f33bebb97"
    )


def test_the_cache_module_imports_no_framework():
    code = (
        "import sys, irc_cnn.backends.published; "
        "print(sorted(m for m in ('keras', 'tensorflow', 'torch', 'h5py') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- loading keras.applications' file layout, served through the cache ---------------

# keras.applications' builder, irc's spec and builder, the input side used (the
# smallest keras.applications takes, to keep the networks fast)
SERVED = {  # ConvNeXt: a file layer that is a keras.Sequential of two of irc's
    "ConvNeXtTiny": ("specs/keras/convnext_tiny.yaml", "convnext_tiny", 32),
    "InceptionResNetV2": ("specs/keras/inception_resnet_v2.yaml", "inception_resnet_v2", 75),
    "Xception": ("specs/keras/xception.yaml", "xception", 71),
    "ResNet50": ("specs/keras/resnet50.yaml", "resnet50", 32),
}
KERAS_TOLERANCE = 1e-5
TORCH_TOLERANCE = 1e-4


def _load_module(path: Path, name: str):
    loader = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


@dataclass
class Served:
    """A legacy HDF5 file written by Keras from keras.applications' model (`reference`,
    logits out), and irc's modules compiled with the spec's published URL pointing at it."""

    application: str
    include_top: bool
    size: int
    file: Path
    cache: Path
    keras_module: Any
    torch_module: Any
    builder: str
    reference: Any


@pytest.fixture(scope="module", params=[(a, t) for a in sorted(SERVED) for t in (True, False)])
def served(request, tmp_path_factory) -> Served:
    keras = pytest.importorskip("keras")
    h5py = pytest.importorskip("h5py")
    from keras.src.legacy.saving import legacy_h5_format

    from tests.test_keras_applications import randomise

    application, include_top = request.param
    spec, builder, size = SERVED[application]
    root = tmp_path_factory.mktemp(f"{application}_{include_top}")
    declared = check_file(spec).spec.weights["imagenet"]
    url = (declared.top if include_top else declared.no_top).url
    file = root / "served" / url.rsplit("/", 1)[1]  # the published file's own name
    file.parent.mkdir()
    keras.backend.clear_session()
    reference = getattr(keras.applications, application)(
        weights=None,
        include_top=include_top,
        input_shape=(size, size, 3),
        classifier_activation=None,
    )
    randomise(reference, seed=11)  # batch-norm statistics and biases not their defaults
    with h5py.File(file, "w") as out:  # Keras' own legacy writer: the published layout
        legacy_h5_format.save_weights_to_hdf5_group(out, reference)
    kind = "sha256" if (declared.top if include_top else declared.no_top).sha256 else "md5"
    digest = hashlib.new(kind, file.read_bytes()).hexdigest()  # the kind the spec declares
    part = "top" if include_top else "no_top"
    proc = run_irc(
        "compile", spec, "--backend", "all", "--out", str(root / "pkg"),
        "--set", f"weights.imagenet.{part}={{url: '{file.as_uri()}', {kind}: {digest}}}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    name = check_file(spec).spec.name
    return Served(
        application,
        include_top,
        size,
        file,
        root / "cache",
        _load_module(root / "pkg" / f"{name}.py", f"served_{name}_{part}"),
        _load_module(root / "pkg" / "torch" / f"{name}.py", f"served_torch_{name}_{part}"),
        builder,
        reference,
    )


def _images(size: int) -> np.ndarray:
    return np.random.default_rng(5).uniform(-1, 1, (2, size, size, 3)).astype("float32")


@pytest.fixture(scope="module")
def keras_loaded(served):
    """irc's Keras model built with weights="imagenet" (the file, through the cache)
    and keras.applications' model that wrote the file, read back by its own
    load_weights (the same network: a second keras.applications build cost 1-3 s)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(published.CACHE_ENV, str(served.cache))
        ours = getattr(served.keras_module, served.builder)(
            weights="imagenet",
            include_top=served.include_top,
            input_shape=(served.size, served.size, 3),
            classifier_activation=None,
        )
    theirs = served.reference
    theirs.load_weights(served.file)
    return ours, theirs


@pytest.mark.slow
def test_irc_keras_loads_the_file_as_keras_applications_does(served, keras_loaded):
    ours, theirs = keras_loaded
    images = _images(served.size)
    expected = np.asarray(theirs(images, training=False))
    got = np.asarray(ours(images, training=False))
    assert got.shape == expected.shape
    assert not np.allclose(expected[0], expected[1])  # a degenerate network agrees trivially
    assert float(np.abs(got - expected).max()) <= KERAS_TOLERANCE
    # downloaded once into the cache, under the declared hash
    cached = list(served.cache.rglob("*.h5"))
    assert [p.name for p in cached] == [served.file.name]
    assert cached[0].read_bytes() == served.file.read_bytes()


@pytest.mark.slow
def test_irc_torch_converts_the_same_file(served, keras_loaded):
    torch = pytest.importorskip("torch")
    ours, _ = keras_loaded
    images = _images(served.size)
    expected = np.asarray(ours(images, training=False))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(published.CACHE_ENV, str(served.cache))
        model = getattr(served.torch_module, served.builder)(
            weights="imagenet", include_top=served.include_top, classifier_activation=None
        ).eval()
    with torch.no_grad():
        got = model(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()
    if got.ndim == 4:
        got = got.transpose(0, 2, 3, 1)  # NCHW features to Keras' NHWC
    assert got.shape == expected.shape
    assert scaled_difference(got, expected) <= TORCH_TOLERANCE


@pytest.mark.slow
def test_a_name_the_spec_does_not_publish_is_an_error_in_both_backends(served):
    for module in (served.keras_module, served.torch_module):
        with pytest.raises(ValueError, match=r"publishes no weights named 'imagenet21k' \(it"):
            getattr(module, served.builder)(weights="imagenet21k", include_top=False)
