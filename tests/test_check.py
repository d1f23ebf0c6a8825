"""irc check on the paper's three networks: shapes, counts, the paper's own errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from irc_cnn.compiler.pipeline import check_bytes, check_file
from irc_cnn.compiler.schema import Spec
from irc_cnn.compiler.source import load
from tests.conftest import ROOT, run_irc, run_without_frameworks

STAGES = {
    # (stage after which, expected H x W x C at 299x299)
    "inception_v4": {
        "stem": (35, 35, 384),
        "reduction_a": (17, 17, 1024),
        "reduction_b": (8, 8, 1536),
    },
    "inception_resnet_v1": {
        "stem": (35, 35, 256),
        "reduction_a": (17, 17, 896),
        "reduction_b": (8, 8, 1792),
    },
    "inception_resnet_v2": {
        "stem": (35, 35, 384),
        "reduction_a": (17, 17, 1152),
        "reduction_b": (8, 8, 2144),
    },
}


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_shapes_at_299(checked, name):
    result = checked[name]
    assert result.ok, result.diagnostics
    shapes = {stage.name: stage.shape for stage in result.graph.stages}
    for stage, shape in STAGES[name].items():
        assert shapes[stage] == shape, stage


def test_repeated_blocks_keep_their_shape(checked):
    graph = checked["inception_resnet_v2"].graph
    shapes = {stage.name: stage.shape for stage in graph.stages}
    assert [shapes[f"resnet_a_{i}"] for i in (1, 10)] == [(35, 35, 384)] * 2
    assert [shapes[f"resnet_b_{i}"] for i in (1, 20)] == [(17, 17, 1152)] * 2
    assert [shapes[f"resnet_c_{i}"] for i in (1, 10)] == [(8, 8, 2144)] * 2
    assert graph.outputs == ((1001,), (1001,))


def test_parameter_count_is_the_sum_of_every_weight(checked):
    """IR-v2's aux head, counted by hand from the spec: a check on the arithmetic itself."""
    layers = {layer.name: layer for layer in checked["inception_resnet_v2"].graph.layers}
    assert layers["aux_head_conv1"].params == 1 * 1 * 1152 * 128 + 128
    assert layers["aux_head_conv2"].params == 5 * 5 * 128 * 768 + 768
    assert layers["aux_head_dense"].params == 768 * 1001 + 1001
    assert layers["aux_head_avgpool"].shape == (5, 5, 1152)
    assert layers["stem_bn"].params == 4 * 384  # gamma, beta, moving mean and variance
    assert layers["resnet_b_1_project"].macs == 17 * 17 * 384 * 1152


def test_check_specs_folder_prints_shapes_and_counts():
    proc = run_irc("check", "specs/")
    assert proc.returncode == 0, proc.stderr
    assert (
        "specs/irv2.yaml: ok: inception_resnet_v2, input 299x299x3, outputs 1001, 1001"
        in proc.stdout
    )
    for name in ("inception_v4", "inception_resnet_v1", "inception_resnet_v2"):
        line = next(ln for ln in proc.stdout.splitlines() if f"ok: {name}," in ln)
        assert re.search(r"[\d,]+ parameters", line)


def _token_position(path: Path, needle: str, token: str) -> tuple[int, int]:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return number, line.index(needle) + needle.index(token) + 1
    raise AssertionError(f"{needle!r} not in {path}")


def test_paper_values_give_exactly_the_two_contradictions():
    spec = ROOT / "specs" / "irv2.yaml"
    result = check_file("specs/irv2.yaml", paper=True)
    errors = [(d.code, d.span.line, d.span.column) for d in result.diagnostics]
    assert errors == [
        ("IRC301", *_token_position(spec, "paper: conv 1154", "1154")),
        ("IRC301", *_token_position(spec, "paper: conv 2048", "2048")),
    ]
    b, c = result.diagnostics
    assert "1154-channel projection to a 1152-channel input" in b.message
    assert "2048-channel projection to a 2144-channel input" in c.message
    assert "384 + 384 + 384 = 1152" in b.notes[0].message
    assert "'reduction_a_concat'" in b.notes[0].message
    assert "1152 + 384 + 288 + 320 = 2144" in c.notes[0].message


def test_paper_check_cli_exits_1_with_two_errors():
    proc = run_irc("check", "--paper", "specs/irv2.yaml")
    assert proc.returncode == 1
    assert proc.stdout.count("error[IRC301]") == 2
    assert "Traceback" not in proc.stdout + proc.stderr


def test_a_plain_1154_edit_is_caught_at_its_column(tmp_path):
    text = (ROOT / "specs" / "irv2.yaml").read_text()
    edited = text.replace("value: conv 1152 1x1 linear", "value: conv 1154 1x1 linear")
    assert edited != text
    copy = tmp_path / "irv2.yaml"
    copy.write_text(edited)
    result = check_file(copy)
    line, column = _token_position(copy, "value: conv 1154", "1154")
    assert [(d.code, d.span.line, d.span.column) for d in result.diagnostics] == [
        ("IRC301", line, column)
    ]
    proc = run_irc("check", str(copy))
    assert proc.returncode == 1
    assert f"{copy}:{line}:{column}: error[IRC301]" in proc.stdout


def test_model_validate_fails_on_a_channel_mismatch():
    source = load((ROOT / "specs" / "irv2.yaml").read_bytes(), "irv2.yaml", paper=True)
    with pytest.raises(ValidationError) as info:
        Spec.model_validate(source.data)
    (error,) = info.value.errors()
    assert error["type"] == "irc_analysis"
    assert "1154-channel projection to a 1152-channel input" in error["msg"]


def test_every_problem_in_a_file_is_reported_at_once():
    spec = b"""name: two_errors
title: t
input: [16, 16, 3]
classes: 10
builder: {name: build}
network:
  - conv 0 3x3
  - conv 8 3x3 rleu
  - maxpool 3x3 s2 valid
"""
    result = check_bytes(spec, "two.yaml")
    assert [(d.code, d.span.line, d.span.column) for d in result.diagnostics] == [
        ("IRC207", 7, 10),
        ("IRC205", 8, 16),
    ]


def test_json_and_github_formats():
    proc = run_irc("check", "--format", "json", "specs/irv2.yaml")
    assert proc.returncode == 0
    (entry,) = json.loads(proc.stdout)
    assert entry["ok"] and entry["outputs"] == [[1001], [1001]]
    assert entry["params"] == check_file("specs/irv2.yaml").graph.params
    proc = run_irc("check", "--paper", "--format", "json", "specs/irv2.yaml")
    (entry,) = json.loads(proc.stdout)
    assert [d["code"] for d in entry["diagnostics"]] == ["IRC301", "IRC301"]
    proc = run_irc("check", "--paper", "--format", "github", "specs/irv2.yaml")
    line, column = _token_position(ROOT / "specs" / "irv2.yaml", "paper: conv 1154", "1154")
    assert f"::error file=specs/irv2.yaml,line={line},col={column},endLine={line}," in proc.stdout


def test_missing_file_is_misuse():
    proc = run_irc("check", "specs/nope.yaml")
    assert proc.returncode == 2
    assert "no such file or folder: specs/nope.yaml" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_explains_each_command():
    proc = run_irc("--help")
    assert proc.returncode == 0
    for command in ("check", "compile", "deviations"):
        assert command in proc.stdout
    proc = run_irc("check", "--help")
    assert "--paper" in proc.stdout and "--format" in proc.stdout


def test_deviations_lists_paper_values_and_reasons():
    proc = run_irc("deviations", "--format", "json", "specs/irv2.yaml")
    assert proc.returncode == 0
    rows = json.loads(proc.stdout)
    project = next(r for r in rows if r["path"] == "blocks.resnet_b.seq.0.residual.project")
    assert project["value"] == "conv 1152 1x1 linear"
    assert project["paper"] == "conv 1154 1x1 linear"
    assert "1152" in project["why"]
    repeats = [r for r in rows if r["path"].startswith("network.")]
    assert {str(r["paper"]) for r in repeats} >= {"{'resnet_b': {'repeat': 10}}"}


def test_check_imports_no_framework():
    """`irc check` must run where TensorFlow and Keras cannot even be imported."""
    proc = run_without_frameworks("assert main(['check', 'specs/']) == 0")
    assert proc.returncode == 0, proc.stderr
    # one line per spec, and one per preset of a `scales:` table
    assert proc.stdout.count(": ok: ") == len(list((ROOT / "generated").glob("*.py"))) - 1


@pytest.mark.parametrize("cache", [(), ("--no-cache",)], ids=["cached", "uncached"])
def test_summary_line_follows_the_diagnostics_on_one_stream(cache, tmp_path):
    """stdout (the diagnostics) and stderr (the summary) into one pipe, as a terminal
    or `2>&1 | less` shows them: the summary comes last, on a line of its own."""
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        (ROOT / "specs" / "irv2.yaml").read_text().replace("1152 1x1 linear", "1154 1x1 linear")
    )
    proc = subprocess.run(
        [sys.executable, "-m", "irc_cnn.compiler.cli", "check", str(spec), *cache],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[-1] == "1 error(s) in 1 of 1 spec(s)", lines[-3:]
    assert lines[0].startswith(f"{spec}:") and "error[IRC301]" in lines[0], lines[0]
    assert lines[-2].startswith("  hint: ") and proc.stdout.endswith("spec(s)\n")
