"""The corpus of broken specs in tests/bad_specs: each one gets exactly the diagnostics it states.

A spec's first lines say what irc must report, in order:

    # expect: IRC104 at 13:1, note at 10:1
    # expect: IRC205 at 10:17, hint contains "did you mean 'relu'?"
    # xfail: why irc's answer today is wrong

The list is matched exactly: as many diagnostics as `# expect:` lines, with
these codes at these lines and columns, in this order. `note at L:C` also
requires a note at that position; `hint contains "..."` a hint containing the
text. A file that cannot hold a comment (the empty file) takes its list from
expected.json (file name -> [[code, line, column], ...]).

A `# xfail:` line marks a case where irc reports the wrong code or an unhelpful
position today: its `# expect:` lines state the right answer, and the case is a
strict xfail until irc gives it (then the marker must go).

Each file is checked twice: in-process against its expectation, and through the
command line (`irc check FILE`, run in this process for each file, and once as
`python -m irc_cnn.compiler.cli check` on all of them), which must exit 1, print
every diagnostic the pipeline found as `file:line:col: error[CODE]`, and never a
traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

from irc_cnn.compiler.diagnostics import render_github, render_text
from irc_cnn.compiler.pipeline import Result, annotation_anchors, check_file
from tests.conftest import run_cli_in_process

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "bad_specs"
SIDECAR = CORPUS / "expected.json"

_EXPECT = re.compile(r"# expect: (IRC\d{3}) at (\d+):(\d+)(?:, (.*))?\Z")
_NOTE = re.compile(r"note at (\d+):(\d+)\Z")
_HINT = re.compile(r'hint contains "(.*)"\Z')


@dataclass(frozen=True)
class Expected:
    code: str
    line: int
    column: int
    note: tuple[int, int] | None = None
    hint: str | None = None

    def __str__(self) -> str:
        return f"{self.code} at {self.line}:{self.column}"


@dataclass
class Case:
    path: Path
    expected: list[Expected] = field(default_factory=list)
    xfail: str | None = None

    @property
    def rel(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


def _parse_expect(line: str) -> Expected:
    m = _EXPECT.match(line)
    if not m:
        raise ValueError(f"malformed expectation: {line!r}")
    code, row, col, extras = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
    note = hint = None
    for extra in extras.split(", ") if extras else []:
        if n := _NOTE.match(extra):
            note = (int(n.group(1)), int(n.group(2)))
        elif h := _HINT.match(extra):
            hint = h.group(1)
        else:
            raise ValueError(f"unknown clause {extra!r} in {line!r}")
    return Expected(code, row, col, note, hint)


def load_case(path: Path) -> Case:
    """Read a file's header (ASCII comment lines, even in a file that is not UTF-8)."""
    case = Case(path)
    for raw in path.read_bytes().split(b"\n"):
        line = raw.rstrip(b"\r").decode("ascii", errors="replace")
        if line.startswith("# expect:"):
            case.expected.append(_parse_expect(line))
        elif line.startswith("# xfail:"):
            case.xfail = line.removeprefix("# xfail:").strip()
        else:
            break
    sidecar = json.loads(SIDECAR.read_text(encoding="utf-8"))
    if path.name in sidecar:
        assert not case.expected, f"{path.name}: expectation both in the file and in expected.json"
        case.expected = [Expected(code, line, col) for code, line, col in sidecar[path.name]]
    return case


CASES = [load_case(p) for p in sorted(CORPUS.glob("*.yaml"))]


def _params():
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        yield pytest.param(case, id=case.path.stem, marks=marks)


@cache
def checked(path: Path) -> Result:
    return check_file(path)


def test_corpus_is_complete():
    assert len(CASES) >= 40
    missing = [c.path.name for c in CASES if not c.expected]
    assert not missing, f"no `# expect:` line and no entry in expected.json: {missing}"
    sidecar = json.loads(SIDECAR.read_text(encoding="utf-8"))
    assert not [n for n in sidecar if not (CORPUS / n).is_file()], (
        "expected.json names a missing file"
    )
    assert (CORPUS / "empty.yaml").read_bytes() == b""


@pytest.mark.parametrize("case", list(_params()))
def test_diagnostics_match_expectation(case: Case):
    result = checked(case.path)
    assert not result.ok
    got = [
        (d.code, d.span.line, d.span.column) if d.span else (d.code, None, None)
        for d in result.diagnostics
    ]
    want = [(e.code, e.line, e.column) for e in case.expected]
    lines = result.source.lines if result.source else None
    assert got == want, "\n".join(render_text(d, lines) for d in result.diagnostics)
    for exp, diag in zip(case.expected, result.diagnostics):
        if exp.note is not None:
            notes = [(n.span.line, n.span.column) for n in diag.notes if n.span]
            assert exp.note in notes, f"{exp}: no note at {exp.note}: {diag.notes}"
        if exp.hint is not None:
            assert diag.hint and exp.hint in diag.hint, f"{exp}: hint {diag.hint!r}"


# -- through the command line -------------------------------------------------


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "irc_cnn.compiler.cli", *args],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )


_ERROR_LINE = re.compile(r"^(\S+):(\d+):(\d+): error\[(IRC\d{3})\]", re.MULTILINE)


@cache
def _cli_runs() -> dict[str, tuple[int, str]]:
    """`irc check FILE` for every file, in this process (an interpreter start per file cost
    50 s here; test_one_process_checks_every_file runs them through one)."""
    return {c.rel: run_cli_in_process("check", c.rel) for c in CASES}


def _wanted(case: Case) -> list[tuple[str, str, str, str]]:
    """(file, line, column, code) of each diagnostic the CLI must print for a case."""
    return [
        # relative, as the CLI was given it; a base's file for an error in the base
        (
            Path(os.path.relpath(d.span.file)).as_posix(),
            str(d.span.line),
            str(d.span.column),
            d.code,
        )
        for d in checked(case.path).diagnostics
    ]


# One worker runs them all, so that _cli_runs (5 s) runs once.
@pytest.mark.xdist_group("bad_specs_cli")
@pytest.mark.parametrize("case", [pytest.param(c, id=c.path.stem) for c in CASES])
def test_cli_reports_every_diagnostic(case: Case):
    code, output = _cli_runs()[case.rel]
    assert code == 1, output
    assert "Traceback" not in output
    assert _ERROR_LINE.findall(output) == _wanted(case), output


def test_one_process_checks_every_file():
    """`python -m irc_cnn.compiler.cli check` on the whole corpus at once, as CI would run
    it: exit 1, no traceback, and every file's diagnostics, file after file."""
    proc = _run("check", *(c.rel for c in CASES))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert _ERROR_LINE.findall(proc.stdout) == [row for c in CASES for row in _wanted(c)]


def _case(name: str) -> Case:
    return next(c for c in CASES if c.path.name == name)


def test_json_format_carries_codes_and_positions():
    case = _case("two_errors.yaml")
    proc = _run("check", "--format", "json", case.rel)
    assert proc.returncode == 1, proc.stderr
    (result,) = json.loads(proc.stdout)
    assert result["file"] == case.rel
    assert result["ok"] is False
    got = [(d["code"], d["span"]["line"], d["span"]["column"]) for d in result["diagnostics"]]
    assert got == [(e.code, e.line, e.column) for e in case.expected]
    assert all(d["span"]["file"] == case.rel for d in result["diagnostics"])


def test_github_format_annotates_each_error():
    case = _case("two_errors.yaml")
    proc = _run("check", "--format", "github", case.rel)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(case.expected), proc.stdout
    for line, exp in zip(lines, case.expected):
        assert line.startswith(f"::error file={case.rel},line={exp.line},col={exp.column},"), line
        assert f"title={exp.code}::" in line


def test_github_annotations_name_only_files_that_exist():
    """Every corpus case as --format github renders it: GitHub attaches an annotation
    only to a file of the repository, never to `irc:irv2`."""
    for case in CASES:
        result = checked(case.path)
        anchors = annotation_anchors(result.source)
        for d in result.diagnostics:
            line = render_github(d, result.file, result.lines, anchors)
            found = re.match(r"::error (?:file=([^,:]*),)?", line)
            assert found[1] is None or (ROOT / found[1]).is_file(), (case.rel, line)
    case = _case("shipped_base_too_small.yaml")
    proc = _run("check", "--format", "github", case.rel)
    lines = proc.stdout.splitlines()
    assert len(lines) == 2, proc.stdout
    for line, exp in zip(lines, case.expected):
        assert line.startswith(f"::error file={case.rel},line=5,col=10,endLine=5,endColumn=18,")
        assert f"%0Anote: the value is at irc:irv2:{exp.line}:{exp.column}, in a shipped" in line


def test_missing_file_is_misuse():
    missing = "tests/bad_specs/does_not_exist.yaml"
    assert not (ROOT / missing).exists()
    proc = _run("check", missing)
    assert proc.returncode == 2
    assert missing in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_missing_file_in_process_is_a_diagnostic():
    result = check_file(ROOT / "tests" / "bad_specs" / "does_not_exist.yaml")
    assert not result.ok
    assert [d.code for d in result.diagnostics] == ["IRC001"]
