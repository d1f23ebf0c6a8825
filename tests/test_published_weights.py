"""Published weights: the spec's `weights:` table, the download cache, and loading.

specs/keras/*.yaml declare keras.applications' ImageNet files; the URLs and
hashes are read back from keras.applications' own code here, never copied.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from irc_cnn.backends import published
from irc_cnn.compiler.pipeline import check_bytes, check_file

KERAS_SPECS = {
    "InceptionResNetV2": "specs/keras/inception_resnet_v2.yaml",
    "Xception": "specs/keras/xception.yaml",
    "ResNet50": "specs/keras/resnet50.yaml",
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
    assert (declared.url, declared.md5, declared.sha256) == (url, file_hash, None)
    assert url.endswith("/" + fname)


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
    source, entry = _published(tmp_path)
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
