"""Variants: extends and its merge rules, --set, explain, width, `in` filters, diff."""

from __future__ import annotations

import json
import textwrap
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
    assert diag.code == "IRC111" and "unit" in (diag.hint or "")


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
    assert proc.returncode == 0, proc.stderr
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
    assert f"({small.graph.params - full.graph.params:+,})" in text


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
