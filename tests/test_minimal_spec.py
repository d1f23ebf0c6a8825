"""A spec of `name`, `input` and `network` alone: the title is the name, the builder a
function named after the spec, the classes keras.applications' 1000 (issue 22)."""

from __future__ import annotations

from pathlib import Path

import pytest
from irc_cnn.compiler.pipeline import check_file

import irc_cnn
from tests.conftest import run_irc

MINIMAL = "name: tiny\ninput: [32, 32, 3]\nnetwork: [conv 8 3x3, gap, dense classes softmax]\n"


@pytest.fixture()
def minimal(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(MINIMAL)
    return path


def test_three_keys_check_with_defaults_from_the_name(minimal):
    result = check_file(minimal)
    assert result.ok, result.diagnostics
    spec = result.spec
    assert (spec.title, spec.builder.name, spec.classes) == ("tiny", "tiny", 1000)
    assert result.graph.outputs == ((1000,),)
    assert result.graph.params == 3 * 3 * 3 * 8 + 2 * 8 + 2 * 8 + 8 * 1000 + 1000
    # a builder that says only its style takes the name too; --set appends to the title
    styled = check_file(minimal, sets=["builder={style: keras}", "width=0.5"])
    assert styled.ok, styled.diagnostics
    assert (styled.spec.builder.name, styled.spec.builder.style) == ("tiny", "keras")
    assert styled.spec.title == "tiny (width 0.5)"


def test_a_builder_named_after_a_reserved_spec_name_points_at_the_name(tmp_path):
    path = tmp_path / "dense.yaml"
    path.write_text(MINIMAL.replace("name: tiny", "name: dense"))
    (diag,) = check_file(path).diagnostics
    assert (diag.code, diag.span.line, diag.span.column) == ("IRC206", 1, 7)


def test_three_keys_compile_for_both_backends(minimal):
    proc = run_irc("compile", "tiny.yaml", "--backend", "all", cwd=minimal.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for module in ("generated/tiny.py", "generated/torch/tiny.py"):
        text = (minimal.parent / module).read_text()
        assert "\ndef tiny(" in text, module
    proc = run_irc("compile", "--check", "tiny.yaml", "--backend", "all", cwd=minimal.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["keras", "torch"])
def test_three_keys_build(minimal, backend):
    model = irc_cnn.build(minimal, backend)
    if backend == "keras":
        count = model.count_params()
        assert model.name == "tiny" and model.output_shape == (None, 1000)
    else:
        buffers = (b for n, b in model.named_buffers() if not n.endswith("num_batches_tracked"))
        count = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in buffers)
    assert count == irc_cnn.load(minimal).params
