"""The `irc` command in a user's loop: where paths point, what printed commands do,
annotations GitHub can read, output folders, and deviations named where they live."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from irc_cnn.compiler.diagnostics import CODES, Diagnostic, Note, Span, render_github
from tests.conftest import ROOT, run_irc

TESTS = ROOT / "tests"
BAD_KERNEL = "bad_specs/bad_kernel_text.yaml"  # IRC204 at 8:13, relative to tests/
SMALL = "specs/variants/irv2_small.yaml"  # extends specs/irv2.yaml


def _irc(words: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a printed `irc ...` command line exactly as given (with this interpreter)."""
    assert words[0] == "irc", words
    return run_irc(*words[1:], cwd=cwd)


# -- irc deviations --------------------------------------------------------------------------


def test_deviations_name_the_file_and_line_that_hold_each_value():
    proc = run_irc("deviations", SMALL, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == 9
    assert {r["file"] for r in rows} == {"specs/irv2.yaml"}  # all inherited through extends
    assert {r["spec"] for r in rows} == {SMALL}
    for row in rows:
        lines = (ROOT / row["file"]).read_text().splitlines()
        assert lines[row["line"] - 1][row["column"] - 1 :].startswith(row["value"]), row
    project = next(r for r in rows if r["path"] == "blocks.resnet_b.seq.0.residual.project")
    assert (project["line"], project["column"]) == (90, 20)


def test_deviations_text_names_the_base_file():
    proc = run_irc("deviations", SMALL)
    assert proc.returncode == 0, proc.stderr
    assert (
        f"specs/irv2.yaml:90:20: blocks.resnet_b.seq.0.residual.project (inherited by {SMALL})"
        in proc.stdout.splitlines()
    )


def test_deviations_validate_first(tmp_path):
    spec = tmp_path / "typo.yaml"
    spec.write_text((ROOT / "specs" / "irv2.yaml").read_text().replace("\nnetwork:", "\nnetwrk:"))
    proc = run_irc("deviations", str(spec))
    assert proc.returncode == 1, proc.stdout
    assert "error[IRC201]: unknown key 'netwrk'" in proc.stderr
    assert "error[IRC203]: missing key 'network'" in proc.stderr
    assert "blocks.resnet_b" not in proc.stdout


def test_generated_docstring_names_file_and_line():
    text = (ROOT / "generated" / "inception_resnet_v2_small.py").read_text()
    found = re.search(r"blocks\.resnet_b\.seq\.0\.residual\.project \(([^:]+):(\d+)\)", text)
    assert found, text[:3000]
    file, line = found[1], int(found[2])
    assert file == "specs/irv2.yaml"
    assert "conv 1152 1x1 linear" in (ROOT / file).read_text().splitlines()[line - 1]
    assert "(line " not in text


# -- paths relative to the current folder ----------------------------------------------------


def test_compile_paths_are_relative_to_the_current_folder(tmp_path):
    out = tmp_path / "x" / "y"
    args = ("../specs/irv2.yaml", "--out", str(out), "--check", "--format", "github")
    proc = run_irc("compile", *args, cwd=TESTS)
    assert proc.returncode == 1  # nothing there yet: missing
    assert f"missing; run `irc compile ../specs/irv2.yaml --out {out}` to write it" in proc.stdout
    proc = run_irc(
        "compile", BAD_KERNEL, "--out", str(out), "--check", "--format", "github", cwd=TESTS
    )
    assert proc.returncode == 1
    assert proc.stdout.startswith(f"::error file={BAD_KERNEL},line=8,col=13,"), proc.stdout
    proc = run_irc("compile", BAD_KERNEL, "--out", str(out), cwd=TESTS)
    assert proc.stdout.startswith(f"{BAD_KERNEL}:8:13: error[IRC204]"), proc.stdout
    assert not out.exists()


@pytest.mark.parametrize(
    "command, expected",
    [
        (["check", "../" + SMALL], "../specs/variants/irv2_small.yaml: ok: "),
        (["deviations", "../" + SMALL], "../specs/irv2.yaml:90:20: blocks.resnet_b"),
        (["summary", "../" + SMALL], "../specs/variants/irv2_small.yaml"),
        (["explain", "../" + SMALL, "input"], "  set at ../specs/variants/irv2_small.yaml:8:8"),
        (
            ["explain", "../" + SMALL, "blocks.resnet_b.seq.0.residual.project"],
            "  set at ../specs/irv2.yaml:90:20",
        ),
        (["check", "--paper", "../" + SMALL], "../specs/irv2.yaml:91:25: error[IRC301]"),
        (["check", "--format", "github", BAD_KERNEL], f"::error file={BAD_KERNEL},line=8,col=13"),
        (["check", "--format", "json", BAD_KERNEL], f'"file": "{BAD_KERNEL}"'),
        (["diff", "../specs/irv2.yaml", "../" + SMALL], "../specs/variants/irv2_small.yaml"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_paths_are_relative_to_the_current_folder(command, expected):
    proc = run_irc(*command, cwd=TESTS)
    assert "Traceback" not in proc.stderr
    assert expected in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_plot_output_is_named_as_given(tmp_path):
    proc = run_irc("plot", "../specs/irv2.yaml", "-o", str(tmp_path / "n.dot"), cwd=TESTS)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"wrote {tmp_path / 'n.dot'}\n"


# -- printed commands run as printed ---------------------------------------------------------

SETS = ("--set", "network.resnet_b.repeat=3", "--set", "input=[149, 149, 3]")


def test_header_regenerate_command_runs_as_printed(tmp_path):
    out = tmp_path / "a" / "b"
    proc = run_irc("compile", "../" + SMALL, "--out", str(out), *SETS, cwd=TESTS)
    assert proc.returncode == 0, proc.stderr
    module = out / "inception_resnet_v2_small.py"
    before = module.read_text()
    header = before.splitlines()[2]
    prefix = "# Regenerate (in the folder above this file's): "
    assert header.startswith(prefix), header
    words = shlex.split(header[len(prefix) :])
    assert words[words.index("--out") + 1] == "b"
    assert words.count("--set") == 2
    module.write_text(before.replace("1152", "1154", 1))
    proc = _irc(words, cwd=out.parent)
    assert proc.returncode == 0, proc.stderr
    assert module.read_text() == before


def test_generated_header_of_the_repository_regenerates_generated():
    header = (ROOT / "generated" / "inception_resnet_v2.py").read_text().splitlines()[2]
    assert header.endswith("): irc compile specs/irv2.yaml"), header


def test_stale_hint_runs_as_printed(tmp_path):
    out = tmp_path / "g"
    proc = run_irc("compile", "../" + SMALL, "--out", str(out), *SETS, cwd=TESTS)
    assert proc.returncode == 0, proc.stderr
    module = out / "inception_resnet_v2_small.py"
    before = module.read_text()
    module.write_text(before.replace("1152", "1154", 1))
    proc = run_irc("compile", "--check", "../" + SMALL, "--out", str(out), *SETS, cwd=TESTS)
    assert proc.returncode == 1
    hint = re.search(r"stale; run `(.*)` to regenerate", proc.stdout)
    assert hint, proc.stdout
    proc = _irc(shlex.split(hint[1]), cwd=TESTS)
    assert proc.returncode == 0, proc.stderr
    assert module.read_text() == before


# -- --format github ---------------------------------------------------------------------------


def test_github_escapes_properties_and_message():
    span = Span("dir/has,comma:colon%\nnew.yaml", 3, 5, 3, 9)
    note = Note("the input\ncomes from here", Span("b.yaml", 1, 2))
    diag = Diagnostic("IRC301", "100% wrong: a, b\r\nc", span, "use 1152", (note,))
    line = render_github(diag)
    assert line == (
        "::error file=dir/has%2Ccomma%3Acolon%25%0Anew.yaml,line=3,col=5,endLine=3,endColumn=9,"
        "title=IRC301::100%25 wrong: a, b%0D%0Ac%0Anote: the input%0Acomes from here "
        "(at b.yaml:1:2)%0Ahint: use 1152"
    )
    assert "\n" not in line


def test_github_annotation_for_an_odd_file_name(tmp_path):
    spec = tmp_path / "has,comma:colon%.yaml"
    shutil.copy(TESTS / BAD_KERNEL, spec)
    proc = run_irc("check", "--format", "github", spec.name, cwd=tmp_path)
    assert proc.returncode == 1
    (line,) = proc.stdout.splitlines()
    assert line.startswith(
        "::error file=has%2Ccomma%3Acolon%25.yaml,line=8,col=13,endLine=8,endColumn="
    ), line


def test_github_carries_notes_and_hint():
    proc = run_irc("check", "--paper", "--format", "github", "specs/irv2.yaml")
    assert proc.returncode == 1
    first = proc.stdout.splitlines()[0]
    assert first.startswith(
        "::error file=specs/irv2.yaml,line=91,col=25,endLine=91,endColumn=29,title=IRC301::"
    ), first
    assert "%0Anote: the input comes from 'reduction_a_concat'" in first
    assert "%0Ahint: use 1152 filters" in first


def _annotated_files(stdout: str) -> list[str]:
    return [m[1] for m in re.finditer(r"^::error (?:.*,)?file=([^,:]*)", stdout, re.MULTILINE)]


def test_github_annotates_a_shipped_bases_error_on_the_users_extends_line(tmp_path):
    """GitHub attaches annotations to files of the repository only: `irc:irv2` is none."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "mine.yaml").write_text("extends: irc:irv2\nname: mine\n")
    (tmp_path / "specs" / "top.yaml").write_text("name: top\n\nextends: mine.yaml\n")
    proc = run_irc("check", "--paper", "--format", "github", "specs", cwd=tmp_path)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert len(lines) == 4  # the two IRC301 of irv2's paper values, per spec
    assert all((tmp_path / f).is_file() for f in _annotated_files(proc.stdout))
    assert _annotated_files(proc.stdout) == ["specs/mine.yaml"] * 4  # top reaches it via mine
    assert lines[0].startswith(
        "::error file=specs/mine.yaml,line=1,col=10,endLine=1,endColumn=18,title=IRC301::"
        "residual sum adds a 1154-channel projection"
    ), lines[0]
    assert "%0Anote: the value is at irc:irv2:91:25, in a shipped spec" in lines[0]


def test_github_names_no_file_for_a_shipped_spec_checked_by_name():
    proc = run_irc("check", "--paper", "--format", "github", "irc:irv2", "--no-cache")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and _annotated_files(proc.stdout) == []
    assert lines[0].startswith("::error title=IRC301::irc:irv2:91:25: residual sum"), lines[0]


@pytest.mark.parametrize(
    "argument, code",
    [("network.resnet_b.repeat=0", "IRC207"), ("network.nope=1", "IRC112"), ("nonsense", "IRC111")],
)
def test_github_attributes_a_set_error_to_the_spec(argument, code):
    proc = run_irc("check", "--format", "github", "specs/irv2.yaml", "--set", argument)
    assert proc.returncode == (
        2 if code in ("IRC111", "IRC112") else 1
    )  # cannot be applied: misuse
    (line,) = proc.stdout.splitlines()
    assert line.startswith(f"::error file=specs/irv2.yaml,title={code}::--set[1] {argument!r}"), (
        line
    )
    assert "--set[" not in line.split("::")[1]


# -- output folders ----------------------------------------------------------------------------


def test_compile_creates_the_output_folder(tmp_path):
    out = tmp_path / "new" / "nested"
    proc = run_irc("compile", "specs/irv2.yaml", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["__init__.py", "inception_resnet_v2.py"]


def test_compile_creates_no_folder_when_a_spec_fails(tmp_path):
    proc = run_irc("compile", str(TESTS / BAD_KERNEL), "--out", str(tmp_path / "new" / "out"))
    assert proc.returncode == 1
    assert list(tmp_path.iterdir()) == []


def test_compile_refuses_an_output_path_that_is_a_file(tmp_path):
    out = tmp_path / "file"
    out.write_text("x")
    proc = run_irc("compile", "specs/irv2.yaml", "--out", str(out))
    assert proc.returncode == 2
    assert proc.stderr == f"irc: error: cannot write to {out}: not a folder\n"


def test_plot_creates_the_output_folder(tmp_path):
    target = tmp_path / "newdir" / "deeper" / "x.dot"
    proc = run_irc("plot", "specs/irv2.yaml", "-o", str(target))
    assert proc.returncode == 0, proc.stderr
    assert target.read_text().startswith("digraph")


def test_plot_refuses_a_folder_under_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    proc = run_irc("plot", "specs/irv2.yaml", "-o", str(tmp_path / "file" / "x.dot"))
    assert proc.returncode == 2
    assert "is not a folder" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "file").read_text() == "x"


def test_plot_creates_no_folder_when_the_spec_fails(tmp_path):
    proc = run_irc("plot", str(TESTS / BAD_KERNEL), "-o", str(tmp_path / "new" / "x.dot"))
    assert proc.returncode == 1
    assert list(tmp_path.iterdir()) == []


# -- --version, codes, docs ----------------------------------------------------------------


def test_version_is_the_installed_distributions():
    proc = run_irc("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"irc {importlib.metadata.version('irc-cnn')}\n"


def _codes_in(folder: Path) -> set[str]:
    return {
        code
        for path in folder.rglob("*.py")
        if path.name != "diagnostics.py"
        for code in re.findall(r"\bIRC\d{3}\b", path.read_text(encoding="utf-8"))
    }


def test_every_code_used_is_registered_and_every_registered_code_used():
    used = _codes_in(ROOT / "compiler") | _codes_in(ROOT / "backends")
    assert used == set(CODES)


def test_codes_lists_every_code_with_meaning_and_example():
    proc = run_irc("codes")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 * len(CODES)
    for code, (meaning, example) in CODES.items():
        index = lines.index(f"{code}  {meaning}")
        assert lines[index + 1] == f"        e.g. {example}"


def test_codes_shows_one():
    proc = run_irc("codes", "IRC301")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "IRC301  residual sum of unequal channels\n"
        "        e.g. project: conv 1154 1x1 linear, summed with a 1152-channel input\n"
    )
    proc = run_irc("codes", "IRC999")
    assert proc.returncode == 2 and "no diagnostic code 'IRC999'" in proc.stderr


def test_docs_lists_and_prints_the_installed_docs():
    proc = run_irc("docs")
    assert proc.returncode == 0, proc.stderr
    topics = sorted(p.stem for p in (ROOT / "docs").glob("*.md"))
    assert [line.split()[0] for line in proc.stdout.splitlines()[: len(topics)]] == topics
    proc = run_irc("docs", "spec-language")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (ROOT / "docs" / "spec-language.md").read_text(encoding="utf-8")
    proc = run_irc("docs", "nope")
    assert proc.returncode == 2 and "topics: " in proc.stderr


def test_unknown_key_hint_names_a_command_that_works(tmp_path):
    spec = tmp_path / "odd.yaml"
    spec.write_text((ROOT / "specs" / "irv2.yaml").read_text() + "zzqqxx: 1\n")
    proc = run_irc("check", str(spec))
    assert proc.returncode == 1
    hint = re.search(r"hint: remove it; `(irc docs [\w-]+)`", proc.stdout)
    assert hint, proc.stdout
    assert _irc(hint[1].split(), cwd=ROOT).returncode == 0


def test_docs_do_not_point_outside_the_repository():
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        assert "../shared" not in path.read_text(encoding="utf-8"), path


# -- what each command imports -------------------------------------------------------------

_IMPORTS = """
import sys
from irc_cnn.compiler.cli import main
try:
    main({args!r})
except SystemExit:
    pass
print(sorted({{m.split('.')[0] for m in sys.modules}} & {{'pydantic', 'yaml', 'jinja2', 'graphviz'}}))
"""


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--help"], []),
        (["--version"], []),
        (["codes"], []),
        (["docs"], []),
        (["check", "--no-cache", "specs/irv2.yaml"], ["pydantic", "yaml"]),
        (["compile", "--check", "specs/irv2.yaml"], ["jinja2", "pydantic", "yaml"]),
    ],
    ids=lambda v: " ".join(v) if v and v[0] != "jinja2" and v[0] != "pydantic" else None,
)
def test_commands_import_only_what_they_use(args, expected):
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORTS.format(args=args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == repr(expected)


def test_no_help_text_shows_a_doubled_percent_sign():
    """argparse %-formats argument help but prints a description as written."""
    from irc_cnn.compiler.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    helps = {name: parser.format_help() for name, parser in commands.items()}
    assert [name for name, text in helps.items() if "%%" in text] == []
    assert "first spec in %." in " ".join(helps["summary"].split())


ALL_SCALES = """\
name: scaled
title: Scaled
input: [32, 32, 3]
classes: 10
builder: {name: create_scaled, scale: false}
defaults: {bn: {scale: false}}
scales:
  small: {width: 0.5}
scale: small
blocks:
  unit:
    residual: {branches: [conv 8 1x1], project: conv in 1x1 linear, scale: 0.2}
network: [conv 16 3x3, unit, bn noscale]
head: [gap, dense classes softmax]
"""


def test_every_scale_the_readme_tells_apart_is_what_it_says(tmp_path):
    """README's "Which scale is which": each form in one spec, each doing its own thing."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split('### Which "scale" is which', 1)[1].split("\n\n")[2]
    assert len(table.splitlines()) == 2 + 6
    (tmp_path / "scaled.yaml").write_text(ALL_SCALES)
    (tmp_path / "unscaled.yaml").write_text(ALL_SCALES.replace("scale: small\n", ""))
    proc = run_irc("check", "scaled.yaml", "unscaled.yaml", "--no-cache", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    params = re.findall(r"output 10, ([\d,]+) parameters", proc.stdout)
    # scale: small in force (the width-0.5 preset); the other at width 1, then its preset
    assert params == ["454", "1,026", "454"]
    assert proc.stdout.startswith("scaled.yaml: ok: scaled, ")  # its own name stays
    proc = run_irc("compile", "scaled.yaml", "--scale", "small", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    module = (tmp_path / "generated" / "scaled_small.py").read_text()
    assert "def create_scaled_small(\n    nb_classes: int = 10,\n    scale: bool = False," in module
    assert "0.2" in module  # the residual's factor, applied when scale=True
