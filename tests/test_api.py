"""The Python API (`import irc_cnn`): a spec as data, a model built in memory, the
shipped specs; each compared with what the command line prints or writes."""

from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import irc_cnn
from irc_cnn.compiler.pipeline import check_file
from tests.conftest import ROOT, run_irc, run_without_frameworks

SMALL = "irc:variants/irv2_small"
TINY = ROOT / "tests" / "golden" / "tiny.yaml"

# Two errors in one file: IRC301 (a residual sum of 16 and 8 channels) at 10:21 and
# IRC303 (a concat of 15x15 and 32x32) at 12:35.
BAD = """\
name: bad
title: Bad
input: [32, 32, 3]
classes: 10
builder: {name: create_bad}
blocks:
  unit:
    residual:
      branches: [conv 8 1x1]
      project: conv 16 1x1 linear
  side:
    concat: [conv 8 3x3 s2 valid, conv 8 1x1]
network: [conv 8 3x3, unit, side]
head: [gap, dense classes softmax]
"""


HEAVY = {"yaml", "pydantic", "jinja2", "keras", "tensorflow", "torch", "jax"}


def _imported(code: str, cwd: Path) -> list[str]:
    """The heavy libraries imported by running `code` in a fresh interpreter in `cwd`."""
    report = f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {HEAVY!r})))"
    proc = subprocess.run(
        [sys.executable, "-c", f"import json, sys\n{code}\n{report}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_importing_irc_cnn_imports_no_framework_nor_pydantic(tmp_path):
    # From a folder outside the repository: the install's irc_cnn, not the source folder.
    assert _imported("import irc_cnn", tmp_path) == []
    assert _imported("import irc_cnn; irc_cnn.SpecError; irc_cnn.specs()", tmp_path) == []
    loaded = "import irc_cnn; assert irc_cnn.load('irc:irv2').params == 58_841_682"
    assert _imported(loaded, tmp_path) == ["pydantic", "yaml"]


def test_load_works_where_no_framework_can_be_imported():
    proc = run_without_frameworks("import irc_cnn\nprint(irc_cnn.load('irc:irv2').params)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "58841682"


def test_specs_are_what_irc_specs_lists():
    listed = run_irc("specs").stdout.splitlines()[:-1]
    assert irc_cnn.specs() == [line.split()[0] for line in listed]
    assert {"irc:irv2", "irc:keras/xception", SMALL} <= set(irc_cnn.specs())


def test_load_reports_what_irc_summary_prints(tmp_path):
    spec = irc_cnn.load(SMALL)
    proc = run_irc("summary", SMALL, "--format", "json", cwd=tmp_path)
    (table,) = json.loads(proc.stdout)
    assert (spec.file, spec.name, spec.title) == (SMALL, table["name"], table["title"])
    assert spec.input == (149, 149, 3) and spec.outputs == ((1001,), (1001,))
    assert spec.params == table["params"] == 33_547_426
    assert (spec.macs, spec.flops) == (table["macs"], table["flops"])
    assert (spec.min_input, spec.min_input_without_top) == (107, 75)
    assert (spec.min_input, spec.min_input_without_top) == (
        table["min_input"],
        table["min_input_without_top"],
    )
    assert spec.activation_bytes == table["activation_bytes"]
    assert [(r.name, r.uses, r.shape, r.params, r.macs) for r in spec.rows] == [
        (r["name"], r["uses"], tuple(r["output"]), r["params"], r["macs"]) for r in table["rows"]
    ]
    assert [r.name for r in spec.rows][:4] == ["stem", "resnet_a", "reduction_a", "resnet_b"]
    assert spec.table() == run_irc("summary", SMALL, cwd=tmp_path).stdout
    assert spec.table(expand=True) == run_irc("summary", SMALL, "--expand", cwd=tmp_path).stdout


@pytest.mark.parametrize(
    "dtype, optimizer, framework", [("float32", "momentum", "jax"), ("mixed", "adam", "torch")]
)
def test_training_memory_is_irc_summarys(dtype, optimizer, framework, tmp_path):
    spec = irc_cnn.load(SMALL)
    memory = spec.training_memory(32, dtype=dtype, optimizer=optimizer, framework=framework)
    words = ["--batch", "32", "--dtype", dtype, "--optimizer", optimizer, "--format", "json"]
    words += ["--framework", framework]
    (table,) = json.loads(run_irc("summary", SMALL, *words, cwd=tmp_path).stdout)
    assert memory.to_json() == table["training_memory_bytes"]
    assert memory.total > memory.fixed > 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch": 0}, "batch must be a positive whole number, got 0"),
        ({"dtype": "float16"}, "dtype must be one of float32, bfloat16, mixed; got 'float16'"),
        ({"optimizer": "adamw"}, "optimizer must be one of sgd, momentum, adam; got 'adamw'"),
        ({"framework": "tf"}, "framework must be one of jax, torch; got 'tf'"),
    ],
)
def test_training_memory_refuses_an_unknown_setup(kwargs, message):
    with pytest.raises(ValueError) as caught:
        irc_cnn.load(TINY).training_memory(**kwargs)
    assert str(caught.value) == message


def test_load_takes_a_scale_and_overrides():
    scales = ROOT / "specs" / "variants" / "irv2_scales.yaml"
    small = irc_cnn.load(scales, scale="small")
    assert small.params == check_file(scales, scale="small").graph.params
    assert small.params != irc_cnn.load(scales).params
    sets = ["classes=10", "network.resnet_b.repeat=5"]
    ten = irc_cnn.load("irc:irv2", set=sets)
    assert ten.outputs == ((10,), (10,))
    assert ten.params == check_file(ROOT / "specs" / "irv2.yaml", sets=sets).graph.params
    assert irc_cnn.load("irc:irv2", set="classes=10").outputs == ((10,), (10,))  # one argument


def test_an_invalid_spec_raises_one_error_with_every_diagnostic(tmp_path, monkeypatch):
    (tmp_path / "bad.yaml").write_text(BAD)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(irc_cnn.SpecError) as caught:
        irc_cnn.load("bad.yaml")
    error = caught.value
    assert isinstance(error, ValueError) and error.file == "bad.yaml"
    found = [(d.code, d.span.file, d.span.line, d.span.column) for d in error.diagnostics]
    assert found == [("IRC301", "bad.yaml", 10, 21), ("IRC303", "bad.yaml", 12, 35)]
    checked = run_irc("check", "--no-cache", "bad.yaml", cwd=tmp_path)
    assert checked.returncode == 1
    assert str(error) + "\n" == checked.stdout


@pytest.mark.parametrize(
    "spec, options, code, message",
    [
        ("irc:irv3", {}, "IRC110", "no shipped spec named 'irc:irv3'"),
        ("nope.yaml", {}, "IRC001", "cannot read nope.yaml: No such file or directory"),
        ("irc:irv2", {"set": ["network.nope=1"]}, None, "nope"),
        ("irc:irv2", {"scale": "huge"}, None, "huge"),
    ],
    ids=["unknown-name", "missing-file", "bad-set", "bad-scale"],
)
def test_every_way_a_spec_fails_is_a_spec_error(spec, options, code, message):
    with pytest.raises(irc_cnn.SpecError) as caught:
        irc_cnn.load(spec, **options)
    (diag,) = caught.value.diagnostics
    assert code is None or diag.code == code
    assert message in diag.message
    if code == "IRC110":
        assert diag.hint.startswith("did you mean irc:irv2, irc:irv1?")


def test_build_refuses_an_unknown_backend_before_anything_else():
    with pytest.raises(ValueError, match="backend must be one of keras, torch; got 'jax'"):
        irc_cnn.build("irc:irv2", "jax")


# -- build: the model the generated module gives, without the file -------------------------


def _import_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _keras_layers(model) -> list[tuple]:
    return [
        (layer.name, type(layer).__name__, [tuple(w.shape) for w in layer.weights])
        for layer in model.layers
    ]


def _torch_layers(model) -> list[tuple]:
    return [
        (name, type(module).__name__, [tuple(p.shape) for p in module.parameters(recurse=False)])
        for name, module in model.named_modules()
    ]


def _torch_count(model) -> int:
    """Weights as the spec counts them: parameters and batch norms' running statistics."""
    buffers = (b for n, b in model.named_buffers() if not n.endswith("num_batches_tracked"))
    return sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in buffers)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["keras", "torch"])
def test_build_equals_importing_the_compiled_module(backend, tmp_path, monkeypatch):
    spec = tmp_path / "tiny.yaml"
    shutil.copy(TINY, spec)
    proc = run_irc("compile", "tiny.yaml", "--backend", "all", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = tmp_path / "generated" / ("torch" if backend == "torch" else "") / "tiny.py"
    module = _import_file(written, f"compiled_tiny_{backend}")
    kwargs = {"nb_classes": 7, "include_top": True}
    compiled = module.create_tiny(**kwargs)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    built = irc_cnn.build(spec, backend, **kwargs)
    assert list(empty.iterdir()) == []  # nothing written
    if backend == "keras":
        assert _keras_layers(built) == _keras_layers(compiled)
        assert len(built.layers) > 20 and built.name == compiled.name == "tiny"
        assert built.count_params() == compiled.count_params()
        assert built.output_shape == compiled.output_shape == [(None, 7), (None, 7)]
    else:
        assert _torch_layers(built) == _torch_layers(compiled)
        assert len(list(built.modules())) > 20
        assert _torch_count(built) == _torch_count(compiled)
    spec_params = irc_cnn.load(spec, set=["classes=7"]).params
    count = built.count_params() if backend == "keras" else _torch_count(built)
    assert count == spec_params


def test_a_spec_error_from_build_is_raised_before_any_framework_import(tmp_path):
    (tmp_path / "bad.yaml").write_text(BAD)
    code = textwrap.dedent(
        f"""\
        import irc_cnn
        try:
            irc_cnn.build({str(tmp_path / "bad.yaml")!r}, "torch")
        except irc_cnn.SpecError as exc:
            print(len(exc.diagnostics))
        """
    )
    proc = run_without_frameworks(code + "assert 'torch' not in sys.modules")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "2"


@pytest.mark.slow
def test_build_of_a_shipped_variant_counts_what_load_counts():
    """The issue's acceptance check: a whole network, built from its name."""
    model = irc_cnn.build(SMALL)
    generated = importlib.import_module("generated.inception_resnet_v2_small")
    assert model.count_params() == irc_cnn.load(SMALL).params == 33_547_426
    assert _keras_layers(model) == _keras_layers(generated.create_inception_resnet_v2_small())
