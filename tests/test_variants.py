"""Variants: extends and its merge rules, --set, explain, width, `in` filters, diff."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from irc_cnn.compiler.layering import explain
from irc_cnn.compiler.pipeline import check_file
from tests.conftest import ROOT, run_irc

BASE = """\
name: base_net
title: Base
input: [32, 32, 3]
classes: 10
builder: {name: create_base}
defaults:
  conv: {bias: false, bn: true}
blocks:
  unit:
    ref: a unit
    residual:
      branches: [conv 8 1x1, [conv 8 1x1, conv 8 3x3]]
      project: conv 16 1x1 linear
      scale: 0.1
network:
  - conv 16 3x3
  - unit x2
head: [gap, dense classes softmax]
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture()
def base(tmp_path: Path) -> Path:
    return write(tmp_path, "base.yaml", BASE)


def test_mappings_merge_and_lists_replace(base, tmp_path):
    child = write(
        tmp_path,
        "child.yaml",
        """\
        extends: base.yaml
        name: child_net
        defaults:
          conv: {bias: true}
        network:
          - conv 16 3x3
          - unit x5
        """,
    )
    result = check_file(child)
    assert result.ok, result.diagnostics
    spec = result.spec
    assert spec.name == "child_net" and spec.title == "Base"  # merged top level
    assert spec.defaults.conv.bias is True and spec.defaults.conv.bn is True  # merged deeply
    assert [s.name for s in result.graph.stages if s.block == "unit"] == [
        f"unit_{i}" for i in range(1, 6)
    ]
    # Positions follow the file that set each value.
    assert result.source.spans[("network", 1)].file == str(child.as_posix())
    assert result.source.spans[("title",)].file == str(base.as_posix())


def test_delete_removes_an_inherited_key(base, tmp_path):
    child = write(
        tmp_path,
        "child.yaml",
        """\
        extends: base.yaml
        blocks:
          unit:
            ref: $delete
            residual: {scale: $delete}
        """,
    )
    result = check_file(child)
    assert result.ok, result.diagnostics
    unit = result.spec.blocks["unit"]
    assert unit.ref is None and unit.residual.scale is None
    assert unit.residual.project.filters == 16  # untouched siblings stay
    assert not any(layer.kind == "rescale" for layer in result.graph.layers)


def test_chain_of_three(base, tmp_path):
    write(tmp_path, "middle.yaml", "extends: base.yaml\nclasses: 7\n")
    top = write(tmp_path, "top.yaml", "extends: middle.yaml\ninput: [48, 48, 3]\n")
    result = check_file(top)
    assert result.ok, result.diagnostics
    assert result.graph.outputs == ((7,),) and result.graph.input == (48, 48, 3)
    assert result.source.chain == (
        top.as_posix(),
        (tmp_path / "middle.yaml").as_posix(),
        base.as_posix(),
    )


def test_extends_cycle(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\nname: a\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\nname: b\n")
    result = check_file(tmp_path / "a.yaml")
    (diag,) = result.diagnostics
    assert diag.code == "IRC109"
    assert "a.yaml -> " in diag.message and diag.message.endswith("a.yaml")


def test_missing_base(tmp_path):
    child = write(tmp_path, "child.yaml", "name: c\nextends: nowhere.yaml\n")
    (diag,) = check_file(child).diagnostics
    assert (diag.code, diag.span.line, diag.span.column) == ("IRC110", 2, 10)
    assert "nowhere.yaml" in diag.message


def test_error_in_a_base_points_into_the_base(base, tmp_path):
    broken = base.read_text().replace("conv 8 3x3]]", "conv 8 3x3 rleu]]")
    base.write_text(broken)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nname: child_net\n")
    (diag,) = check_file(child).diagnostics
    line = next(i for i, text in enumerate(broken.splitlines(), 1) if "rleu" in text)
    assert (diag.code, diag.span.file, diag.span.line) == ("IRC205", base.as_posix(), line)
    assert any(
        "extends" in note.message and child.as_posix() in note.message for note in diag.notes
    )


def test_error_in_a_set_value_points_at_the_argument(base):
    result = check_file(base, sets=["network.unit.repeat=0"])
    (diag,) = result.diagnostics
    assert (diag.code, diag.span.file, diag.span.line, diag.span.column) == (
        "IRC207",
        "--set[1]",
        1,
        21,
    )
    proc = run_irc("check", str(base), "--set", "network.unit.repeat=0")
    assert proc.returncode == 1
    assert "--set[1]:1:21: error[IRC207]" in proc.stdout
    assert "network.unit.repeat=0" in proc.stdout  # the excerpt is the argument


def test_set_paths_and_yaml_values(base):
    result = check_file(
        base, sets=["network.unit.repeat=3", "input=[40, 40, 3]", "blocks.unit.residual.scale=0.3"]
    )
    assert result.ok, result.diagnostics
    assert result.graph.input == (40, 40, 3)
    assert sum(1 for s in result.graph.stages if s.block == "unit") == 3
    assert result.spec.blocks["unit"].residual.scale == 0.3
    (diag,) = check_file(base, sets=["network.nothing.repeat=3"]).diagnostics
    assert diag.code == "IRC112" and "unit" in (diag.hint or "")


def test_explain_through_two_extends_and_a_set(base, tmp_path):
    write(
        tmp_path,
        "middle.yaml",
        "extends: base.yaml\nblocks:\n  unit:\n    residual:\n      scale: 0.2\n",
    )
    top = write(
        tmp_path,
        "top.yaml",
        "extends: middle.yaml\nblocks:\n  unit:\n    residual:\n      scale: 0.25\n",
    )
    result = check_file(top, sets=["blocks.unit.residual.scale=0.3"])
    found = explain(result.source, "blocks.unit.residual.scale")
    assert found["value"] == 0.3
    assert (found["span"].file, found["span"].column) == ("--set[1]", 28)
    history = [(h["span"].file, h["value"]) for h in found["history"]]
    assert history == [
        (base.as_posix(), 0.1),
        ((tmp_path / "middle.yaml").as_posix(), 0.2),
        (top.as_posix(), 0.25),
    ]
    proc = run_irc(
        "explain", str(top), "blocks.unit.residual.scale", "--set", "blocks.unit.residual.scale=0.3"
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "blocks.unit.residual.scale = 0.3"
    assert lines[1] == "  set at --set[1]:1:28"
    assert [ln.split(": ")[0].split("overrides ")[1].rsplit(":", 2)[0] for ln in lines[2:5]] == [
        top.as_posix(),
        (tmp_path / "middle.yaml").as_posix(),
        base.as_posix(),
    ]


def test_explain_shows_the_paper_value():
    proc = run_irc("explain", "specs/irv2.yaml", "blocks.resnet_b.seq.residual.project")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:3] == [
        "blocks.resnet_b.seq.0.residual.project = conv 1152 1x1 linear",
        "  set at specs/irv2.yaml:90:20",
        "  paper: conv 1154 1x1 linear",
    ]


def test_width_rounds_half_up_and_in_follows_the_input(base, tmp_path):
    child = write(
        tmp_path,
        "thin.yaml",
        """\
        extends: base.yaml
        width: 0.3
        blocks:
          unit:
            residual: {project: conv in 1x1 linear}
        """,
    )
    result = check_file(child)
    assert result.ok, result.diagnostics
    layers = {layer.name: layer for layer in result.graph.layers}
    assert layers["conv"].shape[-1] == 5  # 16 * 0.3 = 4.8 -> 5
    assert layers["unit_1_b1_conv"].shape[-1] == 2  # 8 * 0.3 = 2.4 -> 2
    assert layers["unit_1_project"].shape[-1] == 5  # `in`: the residual's input
    (diag,) = check_file(base, sets=["network.0={conv: {filters: in, kernel: 3}}"]).diagnostics
    assert diag.code == "IRC403" and "only fit a residual's project" in diag.message


def test_diff_reports_repeats_input_and_parameter_delta():
    small = check_file("specs/variants/irv2_small.yaml")
    full = check_file("specs/irv2.yaml")
    proc = run_irc("diff", "--format", "json", "specs/irv2.yaml", "specs/variants/irv2_small.yaml")
    assert proc.returncode == 1, proc.stderr  # they differ
    report = json.loads(proc.stdout)
    assert report["uses"] == {"resnet_a": [10, 5], "resnet_b": [20, 10], "resnet_c": [10, 5]}
    assert ["input", [299, 299, 3], [149, 149, 3]] in [
        [p, list(a), list(b)] for p, a, b in report["settings"] if p == "input"
    ]
    assert report["params"] == [
        full.graph.params,
        small.graph.params,
        small.graph.params - full.graph.params,
    ]
    assert report["macs"][2] == small.graph.macs - full.graph.macs
    text = run_irc("diff", "specs/irv2.yaml", "specs/variants/irv2_small.yaml").stdout
    assert "uses of resnet_b: 20 -> 10" in text
    delta = small.graph.params - full.graph.params
    assert f"({delta:+,}, {100 * delta / full.graph.params:+.2f}%)" in text


def test_diff_prints_a_residual_sum_as_arithmetic(tmp_path):
    """It printed `sum: scale 0.1, then None -> scale 0.2, then None`."""
    variant = tmp_path / "v.yaml"
    variant.write_text(
        "extends: irc:irv2\nname: v\nblocks.resnet_b.seq.residual.scale: 0.2\n"
        "blocks.resnet_c.seq.residual.activation: elu\n"
    )
    text = run_irc("diff", "specs/irv2.yaml", str(variant)).stdout
    assert "    sum: x + 0.1 * r -> x + 0.2 * r\n" in text
    assert "    sum: x + 0.1 * r -> x + 0.1 * r, then elu\n" in text
    assert "None" not in text


@pytest.mark.parametrize(
    "path", sorted((ROOT / "specs" / "variants").glob("*.yaml")), ids=lambda p: p.stem
)
def test_variants_check(path):
    result = check_file(path.relative_to(ROOT))
    assert result.ok, result.diagnostics


def test_an_absent_value_can_carry_the_papers_op():
    spec = b"""name: n
title: t
input: [8, 8, 3]
classes: 4
builder: {name: build}
network: [conv 4 3x3]
head:
  - gap
  - {value: null, paper: dropout 0.2, why: the implementation has no dropout}
  - dense classes softmax
"""
    from irc_cnn.compiler.pipeline import check_bytes

    kinds = [layer.kind for layer in check_bytes(spec, "n.yaml").graph.layers]
    assert "dropout" not in kinds
    paper = [layer.kind for layer in check_bytes(spec, "n.yaml", paper=True).graph.layers]
    assert paper[-2:] == ["dropout", "dense"]


def test_diff_of_a_folder_is_misuse():
    proc = run_irc("diff", "specs", "specs/irv2.yaml")
    assert proc.returncode == 2
    assert "irc diff compares two spec files; specs is not one" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- editing lists: items named by what they use ---------------------------------


def _rows(result):
    """Deviations as what they say, without the paths that editing renumbers."""
    return [
        (d.span.file, d.span.line, d.span.column, repr(d.value), repr(d.paper), d.why)
        for d in result.source.deviations
    ]


def test_deleting_the_aux_head_keeps_every_other_annotation():
    base = check_file("specs/irv2.yaml")
    no_aux = check_file("specs/variants/irv2_no_aux.yaml")
    assert no_aux.ok, no_aux.diagnostics
    aux = [d for d in base.source.deviations if d.path == ("network", 4)]
    assert len(aux) == 1 and aux[0].value == {"aux": "aux_head"}
    assert _rows(no_aux) == [row for row in _rows(base) if row not in _rows_of(aux)]
    # The repeats after the deleted item moved up one place, annotations with them.
    paths = {d.path: d.value for d in no_aux.source.deviations if d.path[0] == "network"}
    assert paths == {
        ("network", 1): {"resnet_a": {"repeat": 10}},
        ("network", 3): {"resnet_b": {"repeat": 20}},
        ("network", 5): {"resnet_c": {"repeat": 10}},
    }
    assert no_aux.graph.outputs == ((1001,),)
    aux_params = sum(layer.params for layer in base.graph.layers if layer.name.startswith("aux_"))
    assert aux_params > 0 and no_aux.graph.params == base.graph.params - aux_params
    listed = run_irc("deviations", "specs/variants/irv2_no_aux.yaml")
    assert listed.returncode == 0, listed.stderr
    assert (
        listed.stdout.splitlines()[-1]
        == f"{len(base.source.deviations) - 1} deviation(s) in 1 spec(s)"
    )
    assert (
        "specs/irv2.yaml:147:12: network.3 (inherited by specs/variants/irv2_no_aux.yaml)\n"
        "    used:  resnet_b: {'repeat': 20}"
    ) in listed.stdout


def _rows_of(deviations):
    return [
        (d.span.file, d.span.line, d.span.column, repr(d.value), repr(d.paper), d.why)
        for d in deviations
    ]


def test_paper_check_of_a_variant_that_deletes_what_the_paper_lacks():
    """Against the paper the aux item is absent already: deleting it is no error."""
    base = check_file("specs/irv2.yaml", paper=True)
    no_aux = check_file("specs/variants/irv2_no_aux.yaml", paper=True)
    codes = [(d.code, d.span.file, d.span.line, d.span.column) for d in no_aux.diagnostics]
    assert codes == [(d.code, d.span.file, d.span.line, d.span.column) for d in base.diagnostics]
    assert [c[0] for c in codes] == ["IRC301", "IRC301"]


def test_insert_replace_and_set_a_field_in_a_variant(base, tmp_path):
    child = write(
        tmp_path,
        "child.yaml",
        """\
        extends: base.yaml
        network:
          $before unit: [conv 16 1x1, maxpool 2 s2]
          conv1: conv 16 5x5   # two convs now: named by their layer names
          unit.repeat: 3
          $after unit: relu
        head:
          gap: gmp
        blocks:
          unit:
            residual:
              branches:
                1: $delete
        """.replace("1: $delete", "'1': $delete"),
    )
    result = check_file(child)
    assert result.ok, result.diagnostics
    assert [(s.name, s.shape) for s in result.graph.stages] == [
        ("conv1", (32, 32, 16)),
        ("conv2", (32, 32, 16)),
        ("maxpool", (16, 16, 16)),
        ("unit_1", (16, 16, 16)),
        ("unit_2", (16, 16, 16)),
        ("unit_3", (16, 16, 16)),
        ("relu", (16, 16, 16)),
        ("head", (10,)),
    ]
    layers = {layer.name: layer for layer in result.graph.layers}
    assert layers["conv1"].params == 5 * 5 * 3 * 16  # the replaced 3x3, now 5x5, no bias
    assert "unit_1_b2_conv1" not in layers and "unit_1_b1_conv" in layers
    assert "head_gmp" in layers
    spans = result.source.spans
    assert (spans[("network", 1)].file, spans[("network", 1)].line) == (child.as_posix(), 3)
    assert spans[("network", 3, "unit", "repeat")].line == 5
    assert (spans[("network", 4)].line, spans[("network", 0)].line) == (6, 4)
    # the untouched item keeps the base's position
    assert spans[("head", 1)].file == base.as_posix()


def test_unknown_and_ambiguous_names_point_at_the_key(base, tmp_path):
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nnetwork:\n  uint: $delete\n")
    (diag,) = check_file(child).diagnostics
    assert (diag.code, diag.span.file, diag.span.line, diag.span.column) == (
        "IRC112",
        child.as_posix(),
        3,
        3,
    )
    assert diag.message == "no item 'uint' in network" and diag.hint == "did you mean 'unit'?"
    twice = write(tmp_path, "twice.yaml", "extends: base.yaml\nhead:\n  $after gap: [dense 8]\n")
    result = check_file(twice, sets=["head.dense=$delete"])
    (diag,) = result.diagnostics
    # at the item's name, the key's last segment: `dense` in `head.dense=$delete`
    assert (diag.code, diag.span.file, diag.span.column) == ("IRC112", "--set[1]", 6)
    assert diag.message == "'dense' is ambiguous in head: 2 items use it"
    assert diag.hint == "name one of dense1, dense2, or give its index"
    result = check_file(twice, sets=["head.dense1=$delete"])
    assert result.ok and result.graph.outputs == ((10,),)
    (diag,) = check_file(base, sets=["network.7=$delete"]).diagnostics
    assert diag.message == "network has 2 item(s); there is no index 7"
    (diag,) = check_file(base, sets=["network.conv.filters=8"]).diagnostics
    assert diag.code == "IRC112" and "one-line op" in diag.message


def test_set_deletes_items_and_blocks():
    result = check_file("specs/irv2.yaml", sets=["network.aux_head=$delete"])
    assert result.ok and result.graph.outputs == ((1001,),)
    by_index = check_file("specs/irv2.yaml", sets=["network.4=$delete"])
    assert by_index.graph.params == result.graph.params
    in_block = check_file("specs/irv2.yaml", sets=["blocks.stem.seq.bn=$delete"])
    assert "stem_bn" not in {layer.name for layer in in_block.graph.layers}
    proc = run_irc("check", "specs/inception_v4.yaml", "--set", "blocks.inception_c=$delete")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "error[IRC401]: unknown block or op 'inception_c'" in proc.stdout
    assert "valid dictionary" not in proc.stdout


def test_explain_names_an_item_by_its_block():
    proc = run_irc("explain", "specs/irv2.yaml", "network.aux_head")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "network.4 = aux: aux_head",
        "  set at specs/irv2.yaml:150:12",
        "  paper: (absent)",
        "  why: The paper gives no auxiliary head for the Inception-ResNets; the seed has one.",
    ]


@pytest.mark.slow
def test_no_aux_variant_builds_one_output():
    keras = pytest.importorskip("keras")
    import importlib

    result = check_file("specs/variants/irv2_no_aux.yaml")
    keras.backend.clear_session()
    module = importlib.import_module("generated.inception_resnet_v2_no_aux")
    model = module.create_inception_resnet_v2_no_aux()
    assert len(model.outputs) == 1 and tuple(model.outputs[0].shape) == (None, 1001)
    assert model.count_params() == result.graph.params == 55_465_961


# -- diff: --set on either side, percentages, exit codes -------------------------


def test_diff_exit_codes_and_set_on_either_side():
    same = run_irc("diff", "specs/irv2.yaml", "specs/irv2.yaml")
    assert same.returncode == 0 and same.stdout.splitlines()[-1] == "  no differences"
    proc = run_irc(
        "diff", "specs/irv2.yaml", "specs/irv2.yaml", "--set-b", "network.aux_head=$delete"
    )
    assert proc.returncode == 1, proc.stderr
    assert "  outputs: [[1001], [1001]] -> [[1001]]" in proc.stdout
    assert "  parameters: 58,841,682 -> 55,465,961 (-3,375,721, -5.74%)" in proc.stdout
    back = run_irc(
        "diff",
        "specs/irv2.yaml",
        "specs/variants/irv2_no_aux.yaml",
        "--format",
        "json",
        "--set-a",
        "network.aux_head=$delete",
        "--set-a",
        "blocks.aux_head=$delete",
        "--set-b",
        "name=inception_resnet_v2",
        "--set-b",
        "title=Inception-ResNet-v2",
        "--set-b",
        "builder.name=create_inception_resnet_v2",
    )
    report = json.loads(back.stdout)
    assert back.returncode == 0 and report["differs"] is False, report
    assert report["params_percent"] == 0.0
    broken = run_irc("diff", "specs/irv2.yaml", "specs/irv2.yaml", "--set-b", "depth=0")
    assert broken.returncode == 2 and "--set[1]:1:7: error[IRC207]" in broken.stderr
    assert "Exit codes, as diff(1): 0 the specs are the same, 1 they differ, 2 trouble" in (
        " ".join(run_irc("diff", "--help").stdout.split())
    )


# -- depth, titles, scales --------------------------------------------------------


@pytest.mark.parametrize(
    ("depth", "repeats"),
    [
        (0.5, (5, 10, 5)),
        (0.33, (3, 7, 3)),
        (0.25, (3, 5, 3)),
        (0.01, (1, 1, 1)),
        (1.5, (15, 30, 15)),
    ],
)
def test_depth_rounds_repeats_half_up_at_least_one(depth, repeats):
    """10 x 0.25 = 2.5 -> 3 and 20 x 0.33 = 6.6 -> 7: half up; x 0.01 -> at least 1."""
    result = check_file("specs/irv2.yaml", sets=[f"depth={depth}"])
    assert result.ok, result.diagnostics
    uses = Counter(s.block for s in result.graph.stages)
    assert (uses["resnet_a"], uses["resnet_b"], uses["resnet_c"]) == repeats
    assert uses["stem"] == uses["reduction_a"] == uses["reduction_b"] == 1  # used once: once


def test_depth_reaches_repeats_inside_blocks_and_branches(base, tmp_path):
    child = write(
        tmp_path,
        "deep.yaml",
        """\
        extends: base.yaml
        depth: 0.5
        blocks:
          pair: {seq: [unit x3]}
          fork: {concat: [[unit x5], [conv 16 1x1]]}
        network: [conv 16 3x3, pair, fork, conv 16 1x1, unit x7]
        """,
    )
    result = check_file(child)
    assert result.ok, result.diagnostics
    names = [layer.name for layer in result.graph.layers if layer.name.endswith("_add")]
    assert sum(n.startswith("pair_unit_") for n in names) == 2  # 3 x 0.5 = 1.5 -> 2
    assert sum(n.startswith("fork_b1_unit_") for n in names) == 3  # 5 x 0.5 = 2.5 -> 3
    assert sum(1 for s in result.graph.stages if s.block == "unit") == 4  # 7 x 0.5 -> 4


def test_a_title_knows_the_settings_of_the_arguments_before_it_in_their_order(base):
    """`--set[10]` comes after `--set[9]` (label strings sort the other way) and
    `--input` after every `--set`."""
    fillers = ["doc=filler"] * 8
    late = check_file(base, sets=["width=0.5", *fillers, "title=T"])
    assert (len(late.source.chain), late.spec.title) == (1, "T")  # title set 10th, last
    early = check_file(base, sets=["title=T", *fillers, "width=0.5"])
    assert early.spec.title == "T (width 0.5)"
    resized = check_file(base, sets=["title=T"], input_size=(40, 40))
    assert resized.spec.title == "T (input 40x40)"


def test_depth_reaches_repeats_in_a_gate_branch_and_a_shortcut(base, tmp_path):
    child = write(
        tmp_path,
        "deep_forms.yaml",
        """\
        extends: base.yaml
        depth: 0.5
        blocks:
          pw: {seq: [conv 16 1x1 @]}
          gated: {seq: [{gate: [gap keepdims, pw x5, conv 16 1x1 sigmoid nobn]}]}
          cut: {residual: {shortcut: [pw x3], branches: [[conv 16 1x1]]}}
        network: [conv 16 3x3, gated, cut]
        """,
    )
    result = check_file(child)
    assert result.ok, result.diagnostics
    convs = [layer.name for layer in result.graph.layers if layer.kind == "conv"]
    assert sum(n.startswith("gated_gate_pw_") for n in convs) == 3  # 5 x 0.5 = 2.5 -> 3
    assert sum(n.startswith("cut_shortcut_pw_") for n in convs) == 2  # 3 x 0.5 = 1.5 -> 2


def test_title_placeholders_and_settings_changed_after_it(base, tmp_path):
    assert check_file("specs/variants/irv2_small.yaml").spec.title == (
        "Inception-ResNet-v2 (5/10/5 blocks, 149x149)"
    )
    moved = check_file("specs/variants/irv2_small.yaml", sets=["input=[160, 160, 3]"])
    assert moved.spec.title == "Inception-ResNet-v2 (5/10/5 blocks, 160x160)"
    # No placeholder: what changed after the title was written is appended.
    assert check_file(base, sets=["width=0.5", "depth=2"]).spec.title == (
        "Base (width 0.5, depth 2)"
    )
    child = write(tmp_path, "child.yaml", "extends: base.yaml\ninput: [48, 48, 3]\n")
    assert check_file(child).spec.title == "Base (input 48x48)"  # the title is the base's
    own = write(tmp_path, "own.yaml", "extends: base.yaml\ntitle: Mine\ninput: [48, 48, 3]\n")
    assert check_file(own).spec.title == "Mine"  # written beside the input: not stale


def test_generated_docstrings_state_the_settings_in_force():
    from irc_cnn.backends.keras import emit

    result = check_file("specs/variants/irv2_small.yaml", sets=["input=[160,160,3]", "depth=0.5"])
    text = emit.render(result)["inception_resnet_v2_small.py"]
    docstring = next(line for line in text.splitlines() if line.startswith('"""'))
    assert docstring.startswith(
        '"""Inception-ResNet-v2 (5/10/5 blocks, 160x160) (depth 0.5): a Keras 3 model builder'
    )
    assert "\nBuilt with input 160x160x3, width 1, depth 0.5.\n" in text
    assert "    Built with input 160x160x3, width 1, depth 0.5.\n" in text  # the builder's
    assert "for i in range(1, 4):" in text  # resnet_a: 5 x 0.5 = 2.5 -> 3


SCALES = {
    "small": ((160, 160, 3), 8_708_241),
    "base": ((299, 299, 3), 55_465_961),
    "large": ((331, 331, 3), 85_905_001),
}


def test_scales_select_width_depth_and_input():
    plain = check_file("specs/variants/irv2_scales.yaml")
    assert plain.ok and plain.spec.scale is None and list(plain.spec.scales) == list(SCALES)
    for name, (shape, params) in SCALES.items():
        result = check_file("specs/variants/irv2_scales.yaml", scale=name)
        assert result.ok, result.diagnostics
        spec = result.spec
        assert (spec.name, spec.builder.name, spec.scale) == (
            f"inception_resnet_v2_scales_{name}",
            f"create_inception_resnet_v2_scales_{name}",
            name,
        )
        assert (result.graph.input, result.graph.params) == (shape, params)
    small = check_file("specs/variants/irv2_scales.yaml", scale="small")
    assert small.spec.title == "Inception-ResNet-v2 (160x160, width 0.5, depth 0.5) (scale small)"
    assert sum(1 for s in small.graph.stages if s.block == "resnet_b") == 10
    # explain shows where the preset's value came from
    proc = run_irc("explain", "specs/variants/irv2_scales.yaml", "width", "--scale", "small")
    assert proc.stdout.splitlines()[:2] == [
        "width = 0.5",
        "  set at specs/variants/irv2_scales.yaml:10:18",
    ]


def test_unknown_scale_is_a_diagnostic(tmp_path):
    (diag,) = check_file("specs/variants/irv2_scales.yaml", scale="smal").diagnostics
    assert (diag.code, diag.span.file, diag.span.column, diag.hint) == (
        "IRC113",
        "--scale",
        1,
        "did you mean 'small'?",
    )
    (diag,) = check_file("specs/irv2.yaml", scale="small").diagnostics
    assert diag.message == "scale 'small': the spec has no `scales:` table"
    # A variant that picks a preset by name (a typo first).
    base_spec = (ROOT / "specs/variants/irv2_scales.yaml").as_posix()
    picked = write(tmp_path, "picked.yaml", f"extends: {base_spec}\nname: mine\nscale: lareg\n")
    (diag,) = check_file(picked).diagnostics
    assert (diag.code, diag.span.file, diag.span.line, diag.span.column) == (
        "IRC113",
        picked.as_posix(),
        3,
        8,
    )
    assert diag.hint == "did you mean 'large'?"
    picked.write_text(picked.read_text().replace("lareg", "large"))
    result = check_file(picked)
    assert result.ok and result.spec.name == "mine" and result.graph.params == SCALES["large"][1]


@pytest.mark.parametrize(
    "command", ["check", "compile", "deviations", "explain", "summary", "plot"]
)
def test_every_command_with_set_takes_scale(command, tmp_path):
    spec = "specs/variants/irv2_scales.yaml"
    args = {
        "check": [spec],
        "compile": [spec, "--out", str(tmp_path)],
        "deviations": [spec],
        "explain": [spec, "input"],
        "summary": [spec],
        "plot": [spec, "-o", str(tmp_path / "n.dot")],
    }[command]
    proc = run_irc(command, *args, "--scale", "small")
    assert proc.returncode == 0, proc.stderr
    if command == "compile":
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "__init__.py",
            "inception_resnet_v2_scales_small.py",
        ]
    if command in ("check", "summary", "explain"):
        assert "160" in proc.stdout
    assert run_irc(command, *args, "--scale", "smal").returncode == 2  # a bad flag value


def test_compile_writes_one_module_per_scale(tmp_path):
    proc = run_irc("compile", "specs/variants/irv2_scales.yaml", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "__init__.py",
        "inception_resnet_v2_scales.py",
        *(f"inception_resnet_v2_scales_{n}.py" for n in sorted(SCALES)),
    ]
    small = (tmp_path / "inception_resnet_v2_scales_small.py").read_text()
    assert "def create_inception_resnet_v2_scales_small(" in small
    assert "INPUT_SHAPE = (160, 160, 3)" in small and "WIDTH = 0.5" in small


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCALES))
def test_each_scale_builds_with_irc_parameter_count(name):
    keras = pytest.importorskip("keras")
    import importlib

    result = check_file("specs/variants/irv2_scales.yaml", scale=name)
    keras.backend.clear_session()
    module = importlib.import_module(f"generated.inception_resnet_v2_scales_{name}")
    model = getattr(module, f"create_inception_resnet_v2_scales_{name}")()
    assert tuple(model.input.shape[1:]) == SCALES[name][0]
    assert model.count_params() == result.graph.params == SCALES[name][1]


def test_check_checks_every_preset(tmp_path):
    proc = run_irc("check", "specs/variants/irv2_scales.yaml")
    assert proc.returncode == 0, proc.stderr
    assert [line.split(", ")[0].split(": ok: ")[1] for line in proc.stdout.splitlines()] == [
        "inception_resnet_v2_scales",
        *(f"inception_resnet_v2_scales_{name}" for name in SCALES),
    ]
    broken = write(
        tmp_path,
        "thin.yaml",
        f"extends: {(ROOT / 'specs/variants/irv2_scales.yaml').as_posix()}\n"
        "scales:\n  small: {width: 0.33}\n",
    )
    proc = run_irc("check", str(broken))
    assert proc.returncode == 1
    assert "380-channel projection (1152 x 0.33 -> 380) to a 381-channel input" in proc.stdout
    assert "  note: at the spec's scale 'small' (--scale small)" in proc.stdout
    assert f"{broken}: ok: inception_resnet_v2_scales, input 299x299x3" in proc.stdout


def test_an_annotation_goes_when_its_value_is_changed():
    """x20 with `paper: x10` set to x5: the annotation no longer describes the value."""
    base = check_file("specs/irv2.yaml")
    changed = check_file("specs/irv2.yaml", sets=["network.resnet_b.repeat=5"])
    assert [
        d.path
        for d in base.source.deviations
        if d.path not in {d.path for d in changed.source.deviations}
    ] == [("network", 3)]
    assert sum(1 for s in changed.graph.stages if s.block == "resnet_b") == 5


# -- irc explain: defaults, unknown paths, overrides inside a block (issue 22) ---------------

MY_IRV2 = """\
extends: irc:irv2
name: my_irv2
blocks:
  resnet_b:
    seq:
      - residual:
          branches:
            - conv 192 1x1
            - [conv 128 1x1, conv 160 1x7, conv 192 7x1]
          project: conv 1152 1x1 linear
          scale: 0.2
      - relu
"""


@pytest.mark.parametrize(
    "path, shown",
    [
        ("width", "width = 1.0 (default: no file sets it)"),
        ("defaults.bn.epsilon", "defaults.bn.epsilon = 0.001 (default: no file sets it)"),
        ("builder.classes_arg", "builder.classes_arg = nb_classes (default: no file sets it)"),
        ("scales", "scales = {} (default: no file sets it)"),
    ],
)
def test_explain_shows_a_default_as_a_value(path, shown):
    proc = run_irc("explain", "tests/golden/tiny.yaml", path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == shown + "\n"


def test_explain_of_a_path_that_leads_nowhere_is_misuse():
    proc = run_irc("explain", "tests/golden/tiny.yaml", "widht")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        "irc: error: explain widht: no value at widht in tests/golden/tiny.yaml: no file sets "
        "it, and the spec language has no default there; did you mean 'width'?\n"
    )
    assert "IRC111" not in proc.stderr  # that is --set's code


def test_explain_lists_a_variants_overrides_inside_an_inherited_block(tmp_path):
    (tmp_path / "my_irv2.yaml").write_text(MY_IRV2)
    proc = run_irc("explain", "my_irv2.yaml", "blocks.resnet_b", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "blocks.resnet_b: set at irc:irv2:83:5; each value where it was set:",
        "  ref = Figure 17  (irc:irv2:83:10)",
        "  seq.0.residual.branches.0 = conv 192 1x1  (my_irv2.yaml:8:15)",
        "  seq.0.residual.branches.1.0 = conv 128 1x1  (my_irv2.yaml:9:16)",
        "  seq.0.residual.branches.1.1 = conv 160 1x7  (my_irv2.yaml:9:30)",
        "  seq.0.residual.branches.1.2 = conv 192 7x1  (my_irv2.yaml:9:44)",
        "  seq.0.residual.project = conv 1152 1x1 linear  (my_irv2.yaml:10:20)",
        "  seq.0.residual.scale = 0.2  (my_irv2.yaml:11:18)",
        "  seq.1 = relu  (my_irv2.yaml:12:9)",
        "  overrides irc:irv2:85:7: blocks.resnet_b.seq = [{residual: {branches: [conv 192 1x1, "
        "[conv 128 1x1, conv 160 1x7, conv 192 7x1]], project: conv 1152 1x1 linear, "
        "scale: 0.1}}, bn, relu]",
    ]
    assert "{'" not in proc.stdout  # YAML, not a Python repr


def test_explain_of_a_missing_file_is_misuse(tmp_path):
    proc = run_irc("explain", "nope.yaml", "width", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == "irc: error: no such file or folder: nope.yaml\n"


def test_a_mapping_of_fields_edits_an_item_and_a_node_replaces_it(base, tmp_path):
    """`NAME: {FIELD: v}` under a list is `NAME.FIELD: v`; a mapping whose key is an op
    kind, a composite or a block is a node, and replaces the item whole."""
    fields = write(
        tmp_path,
        "fields.yaml",
        """\
        extends: base.yaml
        network:
          unit: {repeat: 3, name: u}
        blocks:
          wide: {seq: [conv 32 1x1]}
        """,
    )
    result = check_file(fields)
    assert result.ok, result.diagnostics
    unit = result.spec.network[1]
    assert (unit.block, unit.repeat, unit.name) == ("unit", 3, "u")
    assert result.source.spans[("network", 1, "unit", "repeat")].line == 3
    # a one-line op has no fields to set, in either form
    (diag,) = check_file(fields, sets=["head={gap: {keepdims: true}}"]).diagnostics
    assert (diag.code, diag.message) == (
        "IRC112",
        "head.gap is a one-line op; its fields cannot be set one by one",
    )
    nodes = write(
        tmp_path,
        "nodes.yaml",
        """\
        extends: base.yaml
        network:
          conv: {conv: {filters: 16, kernel: 1}}
          unit: wide
        blocks:
          wide: {seq: [conv 32 1x1]}
        head:
          gap: {gmp: {}}
        """,
    )
    result = check_file(nodes)
    assert result.ok, result.diagnostics
    conv, wide = result.spec.network
    assert (conv.filters, conv.kernel, wide.block, wide.repeat) == (16, (1, 1), "wide", 1)
    assert result.spec.head[0].kind == "gmp"
    by_block = write(
        tmp_path, "by_block.yaml", "extends: nodes.yaml\nnetwork:\n  wide: {unit: {}}\n"
    )
    result = check_file(by_block)
    assert result.ok and result.spec.network[1].block == "unit"


@pytest.mark.parametrize(
    "text",
    ["seq: {residual: {scale: 0.2}}", "seq: {residual.scale: 0.2}"],
    ids=["mapping", "dotted"],
)
def test_a_residual_scale_edited_either_way_keeps_the_base_residual(text, tmp_path):
    """The newcomer's edit in a variant of irc:irv2: the mapping form sets the one
    field, as the dotted key does; the branches and projection stay the base's."""
    spec = f"extends: irc:irv2\nname: my_irv2\nblocks:\n  resnet_b:\n    {text}\n"
    edited = check_file(write(tmp_path, "my_irv2.yaml", spec))
    assert edited.ok, edited.diagnostics
    residual = edited.spec.blocks["resnet_b"].seq[0]
    assert residual.scale == 0.2
    assert len(residual.branches) == 2 and residual.project.filters == 1152
    assert edited.graph.params == check_file("irc:irv2").graph.params
    assert edited.source.spans[("blocks", "resnet_b", "seq", 0, "residual", "scale")].line == 5
