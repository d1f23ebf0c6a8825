"""Shipped specs: a spec outside the repository extends one by name (`extends: irc:irv2`)."""

from __future__ import annotations

import ast
import json
import textwrap
from pathlib import Path

import pytest

from irc_cnn.compiler.layering import explain
from irc_cnn.compiler.pipeline import check_file
from irc_cnn.compiler.shipped import SHIPPED, shipped_names
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


# -- every command takes a shipped spec by name, from any folder ------------------------------


def test_irc_specs_shows_the_titles_irc_check_gives():
    """A title's placeholders (`width {width}`) are filled, with the base's settings."""
    proc = run_irc("specs")
    assert proc.returncode == 0, proc.stderr
    titles = {line.split()[0]: line.split(None, 1)[1] for line in proc.stdout.splitlines()[:-1]}
    assert titles == {f"irc:{n}": check_file(f"irc:{n}").spec.title for n in shipped_names()}
    assert titles["irc:variants/inception_v4_half"] == "Inception-v4 (width 0.5)"
    assert "{" not in proc.stdout


def test_check_names_a_shipped_spec_as_given(tmp_path):
    proc = run_irc("check", "irc:irv2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "irc:irv2: ok: inception_resnet_v2, input 299x299x3, outputs 1001, 1001, "
        "58,841,682 parameters, 14.15 G multiply-accumulates\n"
    )


def test_check_paper_points_into_a_shipped_spec_by_name(tmp_path):
    proc = run_irc("check", "--paper", "--no-cache", "irc:irv2", cwd=tmp_path)
    assert proc.returncode == 1
    irv2 = (ROOT / "specs" / "irv2.yaml").read_text().splitlines()
    line = next(i for i, text in enumerate(irv2, 1) if "paper: conv 1154 1x1 linear" in text)
    assert f"irc:irv2:{line}:25: error[IRC301]" in proc.stdout
    assert "paper: conv 1154 1x1 linear" in proc.stdout  # the excerpt, read from the shipped file


def _without_files(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("a", "b")}


def test_diff_a_variant_against_its_shipped_base(tmp_path):
    small = (ROOT / "specs" / "variants" / "irv2_small.yaml").as_posix()
    by_name = run_irc("diff", "irc:irv2", small, "--format", "json", cwd=tmp_path)
    by_path = run_irc(
        "diff", "specs/irv2.yaml", "specs/variants/irv2_small.yaml", "--format", "json"
    )
    assert by_name.returncode == by_path.returncode == 1, by_name.stderr  # they differ
    report = json.loads(by_name.stdout)
    assert (report["a"], report["b"]) == ("irc:irv2", small)
    assert ["input", [299, 299, 3], [149, 149, 3]] in report["settings"]
    assert _without_files(report) == _without_files(json.loads(by_path.stdout))
    text = run_irc("diff", "irc:irv2", "irc:variants/irv2_small", cwd=tmp_path)
    assert text.stdout.startswith("--- irc:irv2\n+++ irc:variants/irv2_small\n")


def test_summary_of_a_shipped_spec_by_name(tmp_path):
    proc = run_irc("summary", "irc:keras/xception", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (table,) = json.loads(proc.stdout)
    expected = check_file(ROOT / "specs" / "keras" / "xception.yaml").graph
    assert (table["file"], table["name"]) == ("irc:keras/xception", "keras_xception")
    assert (table["params"], table["macs"]) == (expected.params, expected.macs)


def test_explain_and_deviations_name_shipped_files(tmp_path):
    proc = run_irc("explain", "irc:variants/irv2_small", "input", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:3] == [
        "input = [149, 149, 3]",
        "  set at irc:variants/irv2_small:8:8",
        "  overrides irc:irv2:13:8: input = [299, 299, 3]",
    ]
    proc = run_irc("deviations", "irc:variants/irv2_small", "--format", "json", cwd=tmp_path)
    rows = json.loads(proc.stdout)
    assert len(rows) == 9
    assert {(r["spec"], r["file"]) for r in rows} == {("irc:variants/irv2_small", "irc:irv2")}


def test_plot_a_shipped_spec_by_name(tmp_path):
    proc = run_irc("plot", "irc:irv2", "-o", "net.dot", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    here = run_irc("plot", "specs/irv2.yaml", "-o", str(tmp_path / "here.dot"))
    assert here.returncode == 0, here.stderr
    assert (tmp_path / "net.dot").read_text() == (tmp_path / "here.dot").read_text()


def _code(path: Path) -> str:
    """A module's AST without docstrings (which name the spec file the module came from)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            node.body = body[1:]
    return ast.dump(tree)


def test_compile_a_shipped_spec_into_the_current_folder(tmp_path):
    proc = run_irc("compile", "irc:variants/irv2_small", "--backend", "all", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for sub in ("", "torch/"):
        written = tmp_path / "generated" / sub / "inception_resnet_v2_small.py"
        text = written.read_text()
        assert "irc compile irc:variants/irv2_small" in text.splitlines()[2]
        assert "(irc:irv2:90)" in text  # an inherited deviation, by the base's name
        assert _code(written) == _code(ROOT / "generated" / sub / "inception_resnet_v2_small.py")
    again = run_irc(
        "compile", "--check", "irc:variants/irv2_small", "--backend", "all", cwd=tmp_path
    )
    assert again.returncode == 0, again.stdout + again.stderr


@pytest.mark.parametrize(
    "words",
    [
        ["check", "irc:irv3"],
        ["compile", "irc:irv3"],
        ["summary", "irc:irv3"],
        ["deviations", "irc:irv3"],
        ["diff", "irc:irv2", "irc:irv3"],
        ["explain", "irc:irv3", "input"],
        ["plot", "irc:irv3", "-o", "x.dot"],
    ],
    ids=lambda words: words[0],
)
def test_an_unknown_shipped_name_is_misuse_with_the_closest_names(words, tmp_path):
    proc = run_irc(*words, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == (
        "irc: error: no shipped spec named 'irc:irv3'; did you mean irc:irv2, irc:irv1? "
        "`irc specs` lists the shipped specs\n"
    )
    assert list(tmp_path.iterdir()) == []
