"""Shipped specs: a spec outside the repository extends one by name (`extends: irc:irv2`)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from irc_cnn.compiler.layering import SHIPPED, explain, shipped_names
from irc_cnn.compiler.pipeline import check_file
from tests.conftest import ROOT, run_irc

MINE = """\
extends: irc:irv2
name: my_irv2
title: My Inception-ResNet-v2
builder: {name: create_my_irv2}
classes: 10
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_every_spec_under_specs_is_shipped_by_name():
    on_disk = sorted(
        p.relative_to(ROOT / "specs").with_suffix("").as_posix()
        for p in (ROOT / "specs").rglob("*.yaml")
    )
    assert shipped_names() == on_disk
    assert {"irv2", "keras/inception_resnet_v2", "variants/irv2_small"} <= set(on_disk)
    assert SHIPPED.resolve() == (ROOT / "specs").resolve()  # the editable install's view


def test_a_spec_elsewhere_extends_a_shipped_one(tmp_path):
    mine = write(tmp_path, "mine.yaml", MINE)
    result = check_file(mine)
    assert result.ok, result.diagnostics
    # The same network as the repository's spec with classes set to 10: only the
    # two classifiers (main 2144 -> 10, aux 768 -> 10) differ from 58,841,682.
    same = check_file(ROOT / "specs" / "irv2.yaml", sets=["classes=10"])
    assert result.graph.params == same.graph.params == 58_841_682 - 991 * (2144 + 1 + 768 + 1)
    assert result.spec.name == "my_irv2" and result.graph.outputs == ((10,), (10,))


def test_inherited_values_name_the_shipped_file(tmp_path):
    mine = write(tmp_path, "mine.yaml", MINE)
    found = explain(check_file(mine).source, "blocks.resnet_b.seq.residual.project")
    irv2 = (ROOT / "specs" / "irv2.yaml").read_text().splitlines()
    line = next(i for i, text in enumerate(irv2, 1) if "value: conv 1152 1x1 linear" in text)
    assert (found["span"].file, found["span"].line) == ("irc:irv2", line)


def test_an_error_in_an_inherited_value_points_into_the_shipped_spec(tmp_path):
    # At 149x149 the seed's aux head (5x5 valid conv on a 1x1 map) cannot run.
    mine = write(tmp_path, "mine.yaml", MINE + "input: [149, 149, 3]\n")
    proc = run_irc("check", str(mine))
    assert proc.returncode == 1
    irv2 = (ROOT / "specs" / "irv2.yaml").read_text().splitlines()
    line = next(i for i, text in enumerate(irv2, 1) if "conv 768 5x5 valid" in text)
    assert f"irc:irv2:{line}:18: error[IRC304]" in proc.stdout
    assert f"{mine.as_posix()} -> irc:irv2" in proc.stdout
    assert "conv 768 5x5 valid" in proc.stdout  # the excerpt comes from the shipped file


def test_a_shipped_variant_reaches_its_own_base_by_name(tmp_path):
    # irc:variants/irv2_small extends ../irv2.yaml; that base is named irc:irv2 too.
    mine = write(
        tmp_path,
        "small.yaml",
        """\
        extends: irc:variants/irv2_small
        name: my_small
        builder: {name: create_my_small}
        """,
    )
    result = check_file(mine)
    assert result.ok and result.graph.params == 33_547_426
    assert result.source.chain == (mine.as_posix(), "irc:variants/irv2_small", "irc:irv2")
    stem = explain(result.source, "blocks.stem")
    assert stem["span"].file == "irc:irv2"


def test_an_unknown_shipped_name_is_located_with_suggestions(tmp_path):
    mine = write(tmp_path, "mine.yaml", "name: x\nextends: irc:irv3\n")
    (diag,) = check_file(mine).diagnostics
    assert (diag.code, diag.span.line, diag.span.column) == ("IRC110", 2, 10)
    assert "irc:irv3" in diag.message
    assert "irc:irv2" in diag.hint and "irc specs" in diag.hint


def test_a_shipped_name_cannot_leave_the_specs_folder(tmp_path):
    for target in ("irc:../pyproject", "irc:/etc/passwd", "irc:", "irc:irv2.yaml"):
        mine = write(tmp_path, "mine.yaml", f"name: x\nextends: '{target}'\n")
        (diag,) = check_file(mine).diagnostics
        assert (diag.code, diag.span.line) == ("IRC110", 2), target


def test_irc_specs_lists_the_shipped_names():
    proc = run_irc("specs")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == [f"irc:{n}" for n in shipped_names()]
    assert "irc:irv2                         Inception-ResNet-v2" in lines
