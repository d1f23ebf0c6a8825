"""The torch backend: the program IR, generated/torch/, weights, and equality with Keras.

Fast tests check the IR, the golden file, freshness and imports, parameter
counts (models built on the meta device) and the weights converter on the
tiny spec. Slow tests build every spec in Keras and torch, give the torch
model the Keras model's weights (batch-norm statistics randomised first) and
compare the outputs; and export, compile and train the tiny spec's model and
a paper network.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from irc_cnn.compiler import expr
from irc_cnn.compiler import program as ir
from irc_cnn.compiler.pipeline import check_file

from tests.codecheck import attributes_assigned_twice, executable_dump
from tests.conftest import (
    BUILT_WHOLE,
    ROOT,
    SPEC_FILES,
    calibrate_batch_norm,
    run_irc,
    run_without_frameworks,
    scaled_difference,
)
from tests.test_injection import HOSTILE_TEXTS, TEXT_PLACES
from tests.test_injection import check as check_text

torch = pytest.importorskip("torch")
h5py = pytest.importorskip("h5py")

from irc_cnn.backends.torch import emit
from irc_cnn.backends.torch.weights import (
    WeightsError,
    keras_layers,
    load_keras_weights,
    save_keras_weights,
)

GOLDEN = ROOT / "tests" / "golden"
TOLERANCE = 1e-4


def spec_id(path) -> str:
    return str(path.relative_to(ROOT / "specs"))


def expected_modules() -> set[str]:
    """One module per spec, one more per scale preset, and the package __init__."""
    specs = [check_file(p).spec for p in SPEC_FILES]
    names = {f"{spec.name}.py" for spec in specs}
    names |= {f"{spec.name}_{scale}.py" for spec in specs for scale in spec.scales}
    return names | {"__init__.py"}


def torch_builder(result):
    module = importlib.import_module(f"generated.torch.{result.spec.name}")
    return getattr(module, result.spec.builder.name)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny golden spec's torch module, imported from a temporary package."""
    out = tmp_path_factory.mktemp("tiny") / "tinypkg"
    out.mkdir()
    (out / "__init__.py").write_text("")
    (out / "tiny_torch.py").write_text((GOLDEN / "tiny_torch.py").read_text())
    sys.path.insert(0, str(out.parent))
    try:
        module = importlib.import_module("tinypkg.tiny_torch")
    finally:
        sys.path.remove(str(out.parent))
    return module, check_file("tests/golden/tiny.yaml")


def param_count(model) -> int:
    """What irc counts: parameters and batch-norm running statistics."""
    buffers = sum(
        b.numel() for n, b in model.named_buffers() if not n.endswith("num_batches_tracked")
    )
    return sum(p.numel() for p in model.parameters()) + buffers


# -- the IR ------------------------------------------------------------------------


def test_channels_are_linear_expressions_substituted_at_use_sites():
    n, m = ir.Param("n"), ir.Param("m")
    out = ir.Channels(0, ((ir.IN_CHANNELS, 1), (n, 1), (m, 1)))
    bound = out.substitute({ir.IN_CHANNELS: ir.Channels(384), "n": ir.Channels(384)}, 1.0)
    assert bound == ir.Channels(768, ((m, 1),))
    assert bound.substitute({"m": ir.Channels(384)}, 1.0).value == 1152
    widened = ir.Channels(0, ((ir.Param("n", widened=True), 1),))
    assert widened.substitute({"n": ir.Channels(384)}, 0.5).value == 192


def test_program_of_irv2_has_blocks_loops_and_channels():
    program = ir.build(check_file("specs/irv2.yaml"))
    assert [f.class_name for f in program.functions] == [
        "Stem", "ResnetA", "ReductionA", "ResnetB", "ReductionB", "ResnetC", "AuxHead",
    ]  # fmt: skip
    calls = [s for s in program.network if isinstance(s, ir.CallStmt)]
    loops = [(c.block, c.first, c.repeat) for c in calls if c.looped]
    assert loops == [("resnet_a", 1, 10), ("resnet_b", 1, 20), ("resnet_c", 1, 10)]
    reduction_a = next(c for c in calls if c.block == "reduction_a")
    assert (reduction_a.in_channels.value, reduction_a.out_channels.value) == (384, 1152)
    assert [c.block for c in calls if c.aux] == ["aux_head"]
    assert program.features_channels.value == 2144
    resnet_b = next(f for f in program.functions if f.block == "resnet_b")
    residual = resnet_b.body[0]
    assert isinstance(residual, ir.ResidualStmt)
    assert residual.project.out_channels.value == 1152
    assert residual.project.layer == ir.LayerName("project", relative=True)
    assert residual.scale == 0.1


def test_parameter_arithmetic_is_substituted_at_use_sites():
    """`4*f` is 256 at a use with f=64 and `4 * g` where the caller passes its `g`."""
    four_f = ir.Arith(expr.parse("4*f"))
    out = ir.Channels(0, ((four_f, 1),))
    assert out.substitute({"f": ir.Channels(64)}, 1.0).value == 256
    passed = out.substitute({"f": ir.Channels(0, ((ir.Param("g"), 1),))}, 1.0)
    assert passed == ir.Channels(0, ((ir.Arith(expr.parse("4*g")), 1),))
    assert out.substitute({"f": ir.Channels(10)}, 0.5).value == 40  # not widened


def test_arithmetic_of_numbers_is_a_number_widened(tmp_path):
    """`2*16` at network level under width 0.5 is 16, as resolve counts it (it was an
    unevaluated expression, and the network's out_channels None)."""
    spec = tmp_path / "num.yaml"
    spec.write_text(
        "name: num\ntitle: Num\ninput: [16, 16, 3]\nclasses: 10\nwidth: 0.5\n"
        "builder: {name: create_num}\nnetwork:\n  - {conv: {filters: 2*16, kernel: 3}}\n"
    )
    program = ir.build(check_file(spec))
    assert program.network[0].out_channels == ir.Channels(16)
    assert program.features_channels == ir.Channels(16)


def test_features_of_classes_channels_are_the_class_count(tmp_path):
    """A body that ends in a conv of `classes` filters (SqueezeNet's) has as many feature
    channels as the builder's class count (`out_channels` was None)."""
    spec = tmp_path / "sq.yaml"
    spec.write_text(
        "name: sq\ntitle: Sq\ninput: [16, 16, 3]\nclasses: 10\nbuilder: {name: create_sq}\n"
        "network: [conv 8 3x3, conv classes 1x1]\nhead: [gap]\n"
    )
    out = tmp_path / "sqpkg"
    proc = run_irc("compile", "--backend", "torch", str(spec), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    model = load_module(out / "torch" / "sq.py").create_sq(nb_classes=7)
    assert model.out_channels == 7
    assert model(torch.zeros(2, 3, 16, 16)).shape == (2, 7)


def test_program_of_resnet50_has_shortcuts_names_and_channels():
    result = check_file("specs/keras/resnet50.yaml")
    program = ir.build(result)
    calls = [s for s in program.network if isinstance(s, ir.CallStmt)]
    assert [c.out_channels.value for c in calls] == [256, 256, 512, 512, 1024, 1024, 2048, 2048]
    assert [(c.layer.text, c.separator, c.first) for c in calls[:2]] == [
        ("conv2_block1", "_", 1),
        ("conv2_block", "", 2),  # a named repeat counts on: conv2_block2, conv2_block3
    ]
    projection = next(f for f in program.functions if f.block == "projection_block")
    residual = projection.body[0]
    assert residual.project is None and residual.shortcut_var == "shortcut"
    assert [op.layer.text for op in residual.shortcut] == ["0_conv", "0_bn"]
    inferred = {layer.name for layer in result.graph.layers}
    top = [op.layer.text for op in program.ops if not op.layer.relative]
    assert top and set(top) <= inferred


def test_program_layer_names_are_infers():
    """Every op the IR prints in the network is a layer infer named the same way."""
    result = check_file("specs/keras/inception_resnet_v2.yaml")
    program = ir.build(result)
    inferred = {layer.name for layer in result.graph.layers}
    top = [op.layer.text for op in program.ops if not op.layer.relative]
    assert top and set(top) <= inferred


# -- generated code ------------------------------------------------------------------


def test_golden_file():
    files = emit.render(check_file("tests/golden/tiny.yaml"))
    assert files["tiny.py"] == (GOLDEN / "tiny_torch.py").read_text()


def test_generated_torch_is_up_to_date_with_specs():
    proc = run_irc("compile", "--check", "--backend", "torch", "specs")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    modules = {p.name for p in (ROOT / "generated" / "torch").glob("*.py")}
    assert modules == expected_modules()


def test_check_names_a_stale_torch_file(tmp_path):
    out = tmp_path / "generated"
    out.mkdir()
    assert (
        run_irc("compile", "--backend", "all", "specs/irv2.yaml", "--out", str(out)).returncode == 0
    )
    target = out / "torch" / "inception_resnet_v2.py"
    target.write_text(target.read_text().replace("1152", "1154", 1))
    proc = run_irc("compile", "--check", "--backend", "all", "specs/irv2.yaml", "--out", str(out))
    assert proc.returncode == 1
    assert f"{target}: stale" in proc.stdout
    assert "inception_resnet_v2.py: stale" not in proc.stdout.replace(str(target), "")


def test_generated_torch_is_formatted_and_imports_only_torch():
    paths = [*(ROOT / "generated" / "torch").glob("*.py"), GOLDEN / "tiny_torch.py"]
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for path in (p for p in paths if p.stem != "__init__"):
        tree = ast.parse(path.read_text())
        imports = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                imports |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imports.add(node.module)
        assert imports <= {"__future__", "torch", "torch.nn.functional"}, (path, imports)
        # irc_cnn only where a Keras file or a published name is loaded, imported there
        (loader,) = [n for n in tree.body if getattr(n, "name", None) == "load_weights"]
        inner = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
        lazy = [n.module for n in ast.walk(loader) if isinstance(n, ast.ImportFrom)]
        assert lazy == ["irc_cnn.backends.torch.weights"]
        assert len(inner) == len([n for n in tree.body if isinstance(n, ast.Import)]) + len(
            [n for n in tree.body if isinstance(n, ast.ImportFrom)]
        ) + len(lazy), path


def test_no_generated_module_assigns_an_attribute_twice():
    """nn.Module keeps the last module assigned to an attribute: a second use of one
    name would silently share its weights with the first (issue 18)."""
    paths = [*(ROOT / "generated" / "torch").glob("*.py"), GOLDEN / "tiny_torch.py"]
    assert len(paths) == len(expected_modules()) + 1  # the golden file
    twice = {path.name: attributes_assigned_twice(path.read_text()) for path in paths}
    assert {name: found for name, found in twice.items() if found} == {}


def test_attributes_assigned_twice_sees_a_repeat_but_not_alternatives():
    """The AST check itself: a plain reassignment and one in a loop are found; the
    two branches of an `if` are not a repeat."""
    source = (
        "class A:\n"
        "    def __init__(self, top):\n"
        "        self.a = 1\n"
        "        if top:\n"
        "            self.b = 2\n"
        "        else:\n"
        "            self.b = None\n"
        "        self.a = 3\n"
        "        for i in range(2):\n"
        "            self.c = i\n"
    )
    assert attributes_assigned_twice(source) == ["A.a", "A.c (in a loop)"]


# One block used inside two network-level residuals: each use is its own module.
# Its torch model once had 994 parameters, the second `self.mb` replacing the first.
SHARED_USE_SPEC = """\
name: e
title: e
input: [32, 32, 3]
classes: 10
builder: {name: e, style: keras, classes_arg: classes}
blocks:
  mb:
    params: [f]
    seq:
      - conv f 1x1
      - conv f 3x3
network:
  - conv 8 3x3
  - residual: {branches: [[{mb: {f: 8}}, dropout 0.1]]}
  - residual: {branches: [[{mb: {f: 8}}, dropout 0.2]]}
  - gap
  - dense 10
"""


@pytest.mark.slow
def test_one_block_in_two_inline_residuals_is_two_modules(tmp_path):
    pytest.importorskip("keras")
    result, keras_module, module = compile_both(tmp_path, "e", SHARED_USE_SPEC)
    assert result.graph.params == 1746
    assert attributes_assigned_twice(Path(module.__file__).read_text()) == []
    assert param_count(module.e()) == 1746
    diff = assert_equal_to_keras(result, keras_module.e, module.e, tmp_path)
    assert diff < TOLERANCE


CLASSES_CONV_SPEC = """\
name: c
title: c
input: [32, 32, 3]
classes: 10
builder: {name: c}
network:
  - conv 8 3x3
  - conv classes 1x1
  - gap
"""


@pytest.mark.slow
def test_a_conv_of_classes_filters_follows_the_builders_class_count(tmp_path):
    """`conv classes 1x1` passed the check, then the Keras module called
    conv2d(x, "classes", ...) and failed with a TypeError."""
    pytest.importorskip("keras")
    result, keras_module, torch_module = compile_both(tmp_path, "c", CLASSES_CONV_SPEC)
    seven = check_file(result.file, sets=["classes=7"]).graph.params
    assert seven == 332
    model = keras_module.c(nb_classes=7)
    assert tuple(model.output.shape) == (None, 7) and model.count_params() == seven
    assert param_count(torch_module.c(nb_classes=7)) == seven


CONV_CLASSIFIER_SPEC = """\
name: cc
title: cc
input: [16, 16, 3]
classes: 10
builder: {name: cc}
defaults: {conv: {bn: false, bias: true}}
network:
  - conv 8 3x3 s2
  - gate: [gap, reshape 1x1, conv 8 1x1 sigmoid]
head:
  - gap keepdims
  - conv classes 1x1 linear
  - reshape flat
  - softmax @predictions
"""


@pytest.mark.slow
def test_an_activation_after_a_conv_classifier_is_the_builders(tmp_path):
    """MobileNet's classifier (`conv classes 1x1`, `reshape flat`, `softmax`) follows
    `classes` and `classifier_activation` in Keras and torch; `reshape 1x1` squeezes."""
    keras = pytest.importorskip("keras")
    result, keras_module, torch_module = compile_both(tmp_path, "cc", CONV_CLASSIFIER_SPEC)
    model = keras_module.cc(nb_classes=7, classifier_activation="sigmoid")
    assert tuple(model.output.shape) == (None, 7)
    predictions = model.get_layer("predictions")
    assert keras.activations.serialize(predictions.activation) == "sigmoid"
    assert [type(layer).__name__ for layer in model.layers][-3:] == [
        "Conv2D",
        "Reshape",
        "Activation",
    ]
    assert model.count_params() == check_file(result.file, sets=["classes=7"]).graph.params
    diff = assert_equal_to_keras(result, keras_module.cc, torch_module.cc, tmp_path)
    assert diff < TOLERANCE
    images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    for activation, sums in (("softmax", True), ("sigmoid", False)):
        torch_model = torch_module.cc(nb_classes=7, classifier_activation=activation).eval()
        with torch.no_grad():
            out = torch_model(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()
        assert out.shape == (2, 7) and np.all((out > 0) & (out < 1))
        assert np.allclose(out.sum(axis=1), 1.0, atol=1e-5) == sums


@pytest.mark.slow
@pytest.mark.parametrize("fused", ["", " fused"])
def test_a_conv_classifiers_own_activation_is_the_builders(tmp_path, fused):
    """`conv classes 1x1 softmax` (its activation a layer of its own, or inside the
    Conv2D with `fused`) follows `classifier_activation` in Keras and torch."""
    keras = pytest.importorskip("keras")
    text = CONV_CLASSIFIER_SPEC.replace(
        "  - conv classes 1x1 linear\n  - reshape flat\n  - softmax @predictions\n",
        f"  - conv classes 1x1 softmax{fused} @predictions\n  - reshape flat\n",
    )
    result, keras_module, torch_module = compile_both(tmp_path, "cc", text)
    model = keras_module.cc(nb_classes=7, classifier_activation="sigmoid")
    assert tuple(model.output.shape) == (None, 7)
    assert model.count_params() == check_file(result.file, sets=["classes=7"]).graph.params
    last = [layer for layer in model.layers if layer.name.startswith("predictions")][-1]
    assert type(last).__name__ == ("Conv2D" if fused else "Activation")
    assert keras.activations.serialize(last.activation) == "sigmoid"
    images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    for activation, sums in (("softmax", True), ("sigmoid", False), (None, False)):
        model = keras_module.cc(nb_classes=7, classifier_activation=activation)
        torch_model = torch_module.cc(nb_classes=7, classifier_activation=activation).eval()
        model.save_weights(tmp_path / "k.weights.h5")
        load_keras_weights(torch_model, tmp_path / "k.weights.h5")
        expected = np.asarray(model(images, training=False))
        with torch.no_grad():
            out = torch_model(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()
        assert np.abs(out - expected).max() < TOLERANCE
        assert np.all((out > 0) & (out < 1)) == (activation is not None)
        assert np.allclose(out.sum(axis=1), 1.0, atol=1e-5) == sums


REPEAT_SPEC = """\
name: rep
title: Rep
input: [32, 32, 3]
classes: 10
builder: {name: rep}
blocks:
  unit:
    params: [f]
    seq:
      - residual:
          branches: [[conv f 1x1, conv f 3x3 linear]]
  grow:
    params: [k]
    seq:
      - concat: [identity, conv k 3x3]
  stage:
    params: [f, n, k]
    seq:
      - conv f 3x3 s2
      - {unit: {f: f, repeat: n}}
      - {grow: {k: k, repeat: n}}
      - {unit: {f: f+n*k, repeat: n-1, name: tail1}}
network:
  - conv 8 3x3
  - {stage: {f: 16, n: 3, k: 4, name: s1}}
  - {stage: {f: 32, n: 2, k: 8, name: s2}}
head: [gap, dense classes softmax]
"""


@pytest.mark.slow
def test_a_repeat_may_be_a_block_parameter(tmp_path):
    """`repeat: n` and `repeat: n-1` loop over the argument in both backends; a block
    that keeps its channels and one that adds k each time (`in + n*k` after it)."""
    pytest.importorskip("keras")
    result, keras_module, torch_module = compile_both(tmp_path, "rep", REPEAT_SPEC)
    source = (tmp_path / "reppkg" / "rep.py").read_text()
    assert "for i in range(1, n + 1):" in source and "for i in range(1, n - 1 + 1):" in source
    model = keras_module.rep()
    names = {layer.name for layer in model.layers[1:]}
    assert names == {layer.name for layer in result.graph.layers}
    # s1 repeats unit 3 times, grow 3 times and the tail twice; s2 twice, twice, once
    units = sorted(n for n in names if n.endswith("_add"))
    assert units == [
        *(f"s1_tail{i}_add" for i in (1, 2)),
        *(f"s1_unit1_{i}_add" for i in (1, 2, 3)),
        "s2_tail1_add",
        *(f"s2_unit1_{i}_add" for i in (1, 2)),
    ]
    assert model.get_layer("s1_tail2_add").output.shape[-1] == 16 + 3 * 4
    assert model.count_params() == result.graph.params == 86_210
    assert assert_equal_to_keras(result, keras_module.rep, torch_module.rep, tmp_path) < TOLERANCE


def test_a_parameters_repeat_that_multiplies_channels_is_refused_cleanly(tmp_path):
    """`dwconv dm2` repeated n times doubles the channels n times: no backend can write
    2**n, so `irc check` refuses it (IRC407 at the use) and `irc compile` writes nothing."""
    spec = tmp_path / "mul.yaml"
    spec.write_text(
        "name: mul\ninput: [16, 16, 3]\nclasses: 4\n"
        "blocks:\n  twice: {seq: [dwconv 3x3 dm2]}\n"
        "  stage:\n    params: [n]\n    seq: [{twice: {repeat: n}}]\n"
        "network: [{stage: {n: 2}}]\nhead: [gap, dense classes softmax]\n"
    )
    out = tmp_path / "out"
    for command in (["check"], ["compile", "--out", str(out)]):
        proc = run_irc(*command, str(spec))
        assert proc.returncode == 1
        said = proc.stdout + proc.stderr  # check reports on stdout, compile on stderr
        assert "mul.yaml:8:11: error[IRC407]: block 'twice' repeated by a parameter" in said
        assert "hint: write the repeat as a number" in said
        assert "Traceback" not in said
    assert "nothing written" in proc.stderr and not out.exists()


@pytest.mark.parametrize("how", sorted(HOSTILE_TEXTS))
@pytest.mark.parametrize("place", sorted(TEXT_PLACES))
def test_free_text_is_inert_in_torch_modules(place, how):
    """Hostile text changes docstrings only: the code is the one plain text gives."""
    result = check_text(TEXT_PLACES[place](HOSTILE_TEXTS[how]))
    if not result.ok:
        return  # refused with a diagnostic: test_injection's business
    hostile = executable_dump(emit.render(result)["tiny.py"])
    assert hostile == plain_torch_module(place)


@functools.cache
def plain_torch_module(place: str) -> str:
    return executable_dump(emit.render(check_text(TEXT_PLACES[place]("plain text")))["tiny.py"])


def test_compile_imports_no_framework(tmp_path):
    out = tmp_path / "generated"
    out.mkdir()
    body = f"assert main(['compile', '--backend', 'all', 'specs', '--out', {str(out)!r}]) == 0"
    proc = run_without_frameworks(body + "\nassert 'torch' not in sys.modules")
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in (out / "torch").glob("*.py")} == expected_modules()


def test_a_repeated_block_that_changes_channels_builds(tmp_path):
    """Each repeat takes the channels the one before gave: 3 -> 11 -> 19 -> 27."""
    spec = tmp_path / "grow.yaml"
    spec.write_text(
        "name: grow\ntitle: Grow\ninput: [16, 16, 3]\nclasses: 10\nbuilder: {name: create_grow}\n"
        "blocks:\n  unit:\n    concat: [[maxpool 3x3], [conv 8 3x3]]\n"
        "network:\n  - unit x3\nhead: [gap, dense classes]\n"
    )
    out = tmp_path / "growpkg"
    out.mkdir()
    proc = run_irc("compile", "--backend", "torch", str(spec), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    result = check_file(spec)
    model = load_module(out / "torch" / "grow.py").create_grow()
    assert [block.out_channels for block in model.unit] == [11, 19, 27]
    assert model(torch.zeros(2, 3, 16, 16)).shape == (2, 10)
    assert param_count(model) == result.graph.params


def test_a_spec_without_a_head_builds(tmp_path):
    """No head: no empty `if include_top:` (a syntax error before)."""
    spec = tmp_path / "bare.yaml"
    spec.write_text(
        "name: bare\ntitle: Bare\ninput: [16, 16, 8]\nclasses: 10\n"
        "builder: {name: create_bare}\nnetwork: [dwconv 3x3 s2 dm2 nobn linear]\n"
    )
    out = tmp_path / "barepkg"
    proc = run_irc("compile", "--backend", "torch", str(spec), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    model = load_module(out / "torch" / "bare.py").create_bare()
    assert model(torch.zeros(1, 8, 16, 16)).shape == (1, 16, 8, 8)
    assert param_count(model) == check_file(spec).graph.params == 3 * 3 * 16  # no bias


def test_a_depth_multiplier_parameter_is_a_clean_error(tmp_path):
    """Channels are linear in in_channels: in_channels * m is refused, naming the line."""
    spec = tmp_path / "dm.yaml"
    spec.write_text(
        "name: dm\ntitle: Dm\ninput: [16, 16, 3]\nclasses: 10\nbuilder: {name: create_dm}\n"
        "blocks:\n  unit:\n    params: {m: 2}\n    seq:\n"
        "      - {dwconv: {kernel: 3, multiplier: m}}\n"
        "network:\n  - unit\nhead: [gap, dense classes]\n"
    )
    out = tmp_path / "out"
    for command in (["check"], ["compile", "--backend", "torch", "--out", str(out)]):
        proc = run_irc(*command, str(spec))
        assert proc.returncode == 1
        assert "Traceback" not in proc.stderr
        said = proc.stdout + proc.stderr  # check reports on stdout, compile on stderr
        assert "dm.yaml:10:9: error[IRC407]: a dwconv's depth multiplier must be a number" in said
        assert "hint: write the number" in said
    assert "nothing written" in proc.stderr and not out.exists()


@pytest.mark.parametrize("path", SPEC_FILES, ids=spec_id)
def test_parameter_counts_equal_irc_summary(path):
    """Built on the meta device: no memory, no initialisation, the counts only."""
    from irc_cnn.compiler.summary import summarize

    result = check_file(path.relative_to(ROOT))
    total = summarize(result.graph, result.file).params
    build = torch_builder(result)
    with torch.device("meta"):
        assert param_count(build()) == total == result.graph.params
        assert param_count(build(include_top=False)) == result.graph.params_without_top()


# -- weights -------------------------------------------------------------------------


def write_keras_layout(model, path, corrupt: str | None = None) -> None:
    """A `.weights.h5` in Keras' layout, written from the torch model's own values."""
    from irc_cnn.backends.torch.weights import _convert, _slots

    with h5py.File(path, "w") as file:
        for i, (name, module) in enumerate(keras_layers(model).items()):
            group = file.create_group(f"layers/layer_{i}/vars")
            group.attrs["name"] = name
            for j, (what, tensor) in enumerate(_slots(module)):
                array = _convert(module, what, tensor.detach().numpy(), to_torch=False)
                if name == corrupt and j == 0:
                    array = np.zeros((*array.shape[:-1], array.shape[-1] + 1), "float32")
                group[str(j)] = array


def test_weights_round_trip_through_keras_layout(tiny, tmp_path):
    module, _ = tiny
    torch.manual_seed(0)
    source, target = module.create_tiny(), module.create_tiny()
    for bn in (m for m in source.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    write_keras_layout(source, tmp_path / "a.weights.h5")
    load_keras_weights(target, tmp_path / "a.weights.h5")
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name
    save_keras_weights(target, tmp_path / "b.weights.h5", like=tmp_path / "a.weights.h5")
    with h5py.File(tmp_path / "a.weights.h5") as a, h5py.File(tmp_path / "b.weights.h5") as b:
        names = []
        a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        assert names and all(np.array_equal(a[n][...], b[n][...]) for n in names)


def test_mismatched_shape_is_refused_naming_the_layer(tiny, tmp_path):
    module, _ = tiny
    model = module.create_tiny()
    write_keras_layout(model, tmp_path / "bad.weights.h5", corrupt="unit_2_b2_conv2")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(
        WeightsError, match=r"layer 'unit_2_b2_conv2': kernel has shape \(1, 3, 8, 9\)"
    ):
        load_keras_weights(model, tmp_path / "bad.weights.h5")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing loaded


def test_missing_and_extra_layers_are_refused(tiny, tmp_path):
    module, _ = tiny
    write_keras_layout(module.create_tiny(), tmp_path / "top.weights.h5")
    with pytest.raises(WeightsError, match="the model lacks: head_dense, side_dense"):
        load_keras_weights(module.create_tiny(include_top=False), tmp_path / "top.weights.h5")
    write_keras_layout(module.create_tiny(include_top=False), tmp_path / "notop.weights.h5")
    with pytest.raises(WeightsError, match="layer 'side_dense' of the model is not in"):
        load_keras_weights(module.create_tiny(), tmp_path / "notop.weights.h5")


def test_bn_noscale_has_no_trained_scale(tiny):
    module, _ = tiny
    bn = module.create_tiny().stem.conv.bn
    assert bn.weight is None and bn.bias.requires_grad
    assert [n for n, _ in bn.named_parameters()] == ["bias"]


# -- the model in torch --------------------------------------------------------------


def test_training_step_and_channels_last(tiny):
    module, _ = tiny
    torch.manual_seed(0)
    model = module.create_tiny(classifier_activation=None)
    x = torch.randn(4, 3, 32, 32)
    labels = torch.tensor([0, 1, 2, 3])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(3):
        main, aux = model(x)
        loss = torch.nn.functional.cross_entropy(main, labels)
        loss = loss + 0.4 * torch.nn.functional.cross_entropy(aux, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    model.eval()
    with torch.no_grad():
        expected = model(x)[0]
        model_cl = model.to(memory_format=torch.channels_last)
        got = model_cl(x.to(memory_format=torch.channels_last))[0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_tf_same_padding_is_uneven_under_a_stride(tiny):
    """A 3x3 stride-2 `same` conv of a 6-pixel input pads 0 before and 1 after, as TF does."""
    module, _ = tiny
    assert module.same_padding(6, 3, 2) == (0, 1)
    assert module.same_padding(7, 3, 2) == (1, 1)
    assert module.same_padding(7, 3, 1) == (1, 1)


# -- equality with the Keras model, every spec (slow) ---------------------------------


def randomise_batch_norm(
    model, seed: int, shape: tuple[int, ...] = (), inference: bool = False
) -> None:
    """Non-default statistics (and gamma, beta), so a swapped mean and variance would show:
    gamma and beta at random, then statistics near the data's (conftest.calibrate_batch_norm,
    `shape` and `inference` as there); layer scales at random too."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            values = []
            for var in layer.weights:
                low, high = (0.5, 1.5) if var.name in ("gamma", "moving_variance") else (-0.2, 0.2)
                values.append(rng.uniform(low, high, tuple(var.shape)).astype("float32"))
            layer.set_weights(values)
        elif type(layer).__name__ == "LayerScale":  # ConvNeXt's 1e-6 would hide its block
            layer.set_weights([rng.uniform(0.2, 1.0, tuple(v.shape)) for v in layer.weights])
    calibrate_batch_norm(model, rng, shape, inference)


# Networks whose batch-norm statistics are those each layer sees in inference
# (conftest.calibrate_batch_norm): MobileNetV3's outputs grow faster than the rounding
# errors under the perturbations of statistics from a training step.
INFERENCE_STATISTICS = {"keras_mobilenet_v3_small", "keras_mobilenet_v3_large"}


@pytest.mark.slow
@pytest.mark.parametrize("path", BUILT_WHOLE, ids=spec_id)
def test_outputs_equal_keras_with_its_weights(path, tmp_path):
    keras = pytest.importorskip("keras")
    result = check_file(path.relative_to(ROOT))
    name = result.spec.name
    keras.backend.clear_session()
    keras_build = getattr(importlib.import_module(f"generated.{name}"), result.spec.builder.name)
    assert_equal_to_keras(result, keras_build, torch_builder(result), tmp_path)


# Every form the torch backend prints beyond Inception's: depthwise and separable
# convolutions with a depth multiplier of 2 (the kernel layouts differ only then),
# uneven zero padding, a squeeze-and-excitation gate on 1x1 keepdims pooling, identity,
# a residual with a projected shortcut, parameter arithmetic, layer-name overrides and
# a named repeated use.
FORMS_SPEC = """\
name: forms
title: Forms
input: [19, 17, 3]
classes: 5
builder: {name: create_forms}
defaults:
  conv: {bias: true, bn: true, activation: relu}
  sepconv: {bias: true, bn: false, activation: linear}
blocks:
  unit:
    params: {f: 4, s: 2}
    seq:
      - {pad: {padding: [1, 0, 2, 1], name: pad}}
      - {dwconv: {kernel: 3, multiplier: 2, strides: s, name: dw}}
      - {sepconv: {filters: 2*f, kernel: 3, multiplier: 2, name: sep}}
      - identity
      - gate:
          - gap keepdims
          - conv f//2 1x1 nobn
          - {conv: {filters: 2*f, kernel: 1, activation: sigmoid, bn: false}}
      - residual:
          branches: [[conv 2*f 3x3, {conv: {filters: f+f, kernel: 1, name: last}}]]
          shortcut: [{conv: {filters: 2*f, kernel: 1, strides: 1, name: short}}]
          order: shortcut_last
          activation: relu
          names: {add: "", activation: out}
network:
  - conv 8 3x3 @stem
  - {unit: {f: 6, name: u}}
  - {unit: {f: 4, s: 1, repeat: 2, name: v1}}
head: [flatten, dense classes]  # not gap: images' averages alike give alike logits
"""


@pytest.mark.slow
def test_new_forms_equal_keras(tmp_path):
    pytest.importorskip("keras")
    result, keras_module, torch_module = compile_both(tmp_path, "forms", FORMS_SPEC)
    builds = (keras_module.create_forms, torch_module.create_forms)
    diff = assert_equal_to_keras(result, *builds, tmp_path)
    assert diff < TOLERANCE


# The dag form: a one-input dag block (a step whose sequence holds a concat, an add of
# three tensors, a concat with the input), a cell of two inputs read as `from: [-1, -1]`
# and `[-2, -1]` (after a plain op, which keeps its input for it), a cell used inside
# another's dag step, and a loop of cells.
DAG_SPEC = """\
name: dag_forms
title: Dag forms
input: [15, 13, 3]
classes: 5
builder: {name: create_dag_forms}
defaults:
  conv: {bias: true, bn: true, activation: relu}
blocks:
  split:
    params: {f: 4}
    dag:
      - h: {from: x, seq: [conv f 1x1, {concat: [[conv f 3x3], [maxpool 3x3, conv f 1x1]]}]}
      - a: {from: h, seq: conv 2*f 1x1}
      - b: {from: x, seq: conv 2*f 3x3}
      - s: {add: [a, b, h], name: three}
      - out: {concat: [s, x]}
  cell:
    params: [f]
    inputs: [ip, p]
    dag:
      - a: {from: ip, seq: conv f 1x1}
      - b: {from: p, seq: conv f 3x3}
      - out: {concat: [a, b], name: "*_cat"}
  wrap:
    params: [f]
    inputs: [ip, p]
    dag:
      - q: {from: p, seq: relu}
      - out: {from: [ip, q], seq: [{cell: {f: f, name: inner}}, bn]}
network:
  - conv 8 3x3 @stem
  - split
  - {cell: {f: 6, from: [-1, -1]}}
  - {wrap: {f: 6}}
  - relu
  - {cell: {f: 5, from: [-2, -1]}}
  - {wrap: {f: 4, repeat: 2}}
head: [gap, dense classes]
"""


@pytest.mark.slow
def test_dag_forms_equal_keras(tmp_path):
    pytest.importorskip("keras")
    result, keras_module, torch_module = compile_both(tmp_path, "dag_forms", DAG_SPEC)
    source = (tmp_path / "dag_formspkg" / "dag_forms.py").read_text()
    # the network keeps the relu's input for the cell after it; each cell keeps its own
    assert '    p = x\n    x = activation_layer(x, "relu", name="relu")\n' in source
    assert 'x, p = cell(p, x, f=5, name="cell_2"), x' in source
    builds = (keras_module.create_dag_forms, torch_module.create_dag_forms)
    assert assert_equal_to_keras(result, *builds, tmp_path) < TOLERANCE
    model = keras_module.create_dag_forms()

    def reads(name: str) -> list[str]:
        (node,) = model.get_layer(name)._inbound_nodes
        return [t._keras_history.operation.name for t in node.input_tensors]

    assert reads("split_three") == ["split_a_conv_relu", "split_b_conv_relu", "split_h_concat"]
    assert reads("split_out") == ["split_three", "stem_relu"]  # the block's input, x
    assert reads("cell_1_a_conv") == reads("cell_1_b_conv") == ["split_out"]  # [-1, -1]
    assert reads("cell_2_a_conv") == ["wrap_1_out_bn"]  # -2: the output before the relu
    assert reads("cell_2_b_conv") == ["relu"]
    # the loop's cells read the output before them and the one before that
    assert reads("wrap_2_inner_a_conv") == ["cell_2_cat"] and reads("wrap_2_q_relu") == ["relu"]
    assert reads("wrap_3_inner_a_conv") == ["wrap_2_out_bn"]
    assert reads("wrap_3_q_relu") == ["cell_2_cat"]
    assert model.get_layer("wrap_3_inner_cat").output.shape == (None, 15, 13, 8)


# ConvNeXt's forms: a block as one keras.Sequential, dense on a map, a layer scale, a
# sum by Keras' `+` operator, and a layer norm the model ends with without the top.
TAIL_SPEC = """\
name: tail
title: Tail
input: [12, 12, 3]
classes: 4
builder: {name: create_tail}
defaults:
  conv: {bias: true, bn: false, activation: linear}
blocks:
  stem:
    sequential: ""
    seq: [conv 8 2x2 s2 valid @conv, {layernorm: {epsilon: 1.0e-6, name: norm}}]
  unit:
    seq:
      - residual:
          sum: operator
          branches: [[dense 16 @up, gelu @gelu, dense 8 @down, layerscale 0.5 @scale]]
network:
  - {stem: {name: s}}
  - {unit: {name: u}}
head: [gap, dense classes]
no_top:
  - {layernorm: {epsilon: 1.0e-6, name: tail_norm}}
"""


@pytest.mark.slow
def test_sequential_operator_sum_and_no_top_equal_keras(tmp_path):
    keras = pytest.importorskip("keras")
    result, keras_module, torch_module = compile_both(tmp_path, "tail", TAIL_SPEC)
    keras.backend.clear_session()
    reference = keras_module.create_tail(include_top=False, pooling="avg")
    kinds = [type(layer).__name__ for layer in reference.layers[1:]]
    assert kinds == [
        "Sequential",  # the stem's Conv2D and LayerNormalization inside
        "Dense",
        "Activation",
        "Dense",
        "LayerScale",  # then the sum, an operation: no layer
        "GlobalAveragePooling2D",
        "LayerNormalization",  # no_top's
    ]
    assert [layer.name for layer in reference.layers[1].layers] == ["s_conv", "s_norm"]
    assert reference.count_params() == result.graph.params_without_top() == 424
    model = torch_module.create_tail(include_top=False, pooling="avg")
    assert assert_torch_equals_keras(reference, model, result.graph.input, tmp_path) <= TOLERANCE


def load_module(path):
    loader = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


def compile_both(tmp_path, name: str, text: str):
    """A spec written to tmp_path and compiled by `irc compile --backend all`: its check
    result and its Keras and torch modules."""
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(text)
    out = tmp_path / f"{name}pkg"
    proc = run_irc("compile", "--backend", "all", str(spec), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return (
        check_file(spec),
        load_module(out / f"{name}.py"),
        load_module(out / "torch" / f"{name}.py"),
    )


def assert_equal_to_keras(result, keras_build, torch_build, tmp_path) -> float:
    """Build both, give torch the Keras weights (random batch-norm statistics), compare
    the outputs; the largest difference, relative to outputs above 1 (scaled_difference)."""
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)  # the same initial weights every run: no flaky case
    reference = keras_build(classifier_activation=None)
    inference = result.spec.name in INFERENCE_STATISTICS
    randomise_batch_norm(reference, 0, tuple(result.graph.input), inference)
    assert reference.count_params() == result.graph.params
    model = torch_build(classifier_activation=None)
    return assert_torch_equals_keras(reference, model, result.graph.input, tmp_path)


def assert_torch_equals_keras(reference, model, input_shape, tmp_path) -> float:
    """Give the torch module the Keras model's weights (through a .weights.h5 file) and
    compare the outputs on two images of input_shape; the largest difference, relative
    to outputs above 1 (scaled_difference)."""
    reference.save_weights(tmp_path / "k.weights.h5")
    assert param_count(model) == reference.count_params()
    load_keras_weights(model, tmp_path / "k.weights.h5")
    model.eval()
    images = np.random.default_rng(1).uniform(-1, 1, (2, *input_shape)).astype("float32")
    expected = reference(images, training=False)  # eager: predict would trace the graph first
    expected = [np.asarray(e) for e in expected] if isinstance(expected, list) else expected
    with torch.no_grad():
        got = model(torch.from_numpy(images).permute(0, 3, 1, 2))
    expected = expected if isinstance(expected, list) else [np.asarray(expected)]
    got = got if isinstance(got, list) else [got]
    assert [e.shape for e in expected] == [tuple(g.shape) for g in got]
    for e, g in zip(expected, got):
        assert not np.allclose(e[0], e[1])  # a degenerate network would agree trivially
        assert scaled_difference(g.numpy(), e) <= TOLERANCE
    return max(scaled_difference(g.numpy(), e) for e, g in zip(expected, got))


@pytest.mark.slow
def test_torch_weights_load_into_keras(tmp_path):
    """The reverse: torch -> .weights.h5 -> keras `load_weights`, same outputs."""
    keras = pytest.importorskip("keras")
    result = check_file("specs/variants/inception_v4_half.yaml")
    keras.backend.clear_session()
    module = importlib.import_module("generated.inception_v4_half")
    reference = module.create_inception_v4_half(classifier_activation=None)
    reference.save_weights(tmp_path / "layout.weights.h5")
    torch.manual_seed(3)
    model = torch_builder(result)(classifier_activation=None)
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
    save_keras_weights(model, tmp_path / "t.weights.h5", like=tmp_path / "layout.weights.h5")
    reference.load_weights(tmp_path / "t.weights.h5")
    model.eval()
    images = np.random.default_rng(2).uniform(-1, 1, (2, *result.graph.input)).astype("float32")
    with torch.no_grad():
        got = model(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()
    expected = np.asarray(reference(images, training=False))
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)


# -- export and compile (slow) --------------------------------------------------------


def export_and_compile(model, x, tolerance: float) -> None:
    """torch.export and torch.compile (inductor: needs a C compiler) give the eager outputs."""
    with torch.no_grad():
        expected = model(x)
        expected = expected if isinstance(expected, list) else [expected]
        exported = torch.export.export(model, (x,)).module()(x)
        compiled = torch.compile(model)(x)
        for got in (exported, compiled):
            got = got if isinstance(got, list) else [got]
            for a, b in zip(got, expected):
                torch.testing.assert_close(a, b, atol=tolerance, rtol=tolerance)


@pytest.mark.slow
def test_export_and_compile_tiny(tiny):
    module, _ = tiny
    export_and_compile(module.create_tiny().eval(), torch.randn(2, 3, 32, 32), 1e-5)


@pytest.mark.slow
def test_export_and_compile_a_paper_network():
    """Inception-ResNet-v1 (its stem has TF's uneven `same` padding under a stride)."""
    model = torch_builder(check_file("specs/irv1.yaml"))(classifier_activation=None).eval()
    export_and_compile(model, torch.randn(1, 3, 299, 299), 1e-4)
