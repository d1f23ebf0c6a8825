"""Property-based fuzzing of the real specs: mutated, they never crash irc.

Every spec under specs/ (recursively) is mutated by Hypothesis: a key
deleted, renamed or given a value of another type, a number perturbed, a
line duplicated or dropped, the file truncated at a random byte, random
unicode (or raw bytes) inserted; one to three mutations at once. For each
mutant:

- `check_bytes` and `check_file` return a Result and never raise;
- `irc check` (in-process for the bulk, a fresh interpreter for a sample)
  exits 0 or 1 and never prints a traceback;
- every diagnostic has a known code and a span inside the file it names
  (line <= lines + 1, column <= that line's length + 1, lines counted the
  way editors and GitHub count them: at \\n, \\r\\n or \\r);
- where the check passes, `emit.render` succeeds and every generated module
  compiles and mentions only allow-listed names (tests/codecheck.py).

The default run is derandomized (the same examples every time) and sized to
take well under a minute: IRC_FUZZ_EXAMPLES (default 300) mutants in process,
IRC_FUZZ_CLI_EXAMPLES (default 10) through the command line. Set them higher
for a longer hunt, e.g. `IRC_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz.py -s`
(-s prints a tally of what the mutants did); IRC_FUZZ_RANDOM=1 draws new
examples on every run instead of the fixed ones.

Known bugs: a failure that matches a registered known bug (KNOWN_BUGS) is
tolerated only while that bug's minimal reproducer still reproduces it, so
fixing a bug re-arms the fuzzer for it by itself. The registry is empty:
every bug the fuzzer found is fixed, and its reproducer is a regression
test at the end of this file.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from irc_cnn.backends.keras import emit
from irc_cnn.compiler.diagnostics import CODES
from irc_cnn.compiler.pipeline import Result, check_bytes, check_file
from tests.codecheck import spec_names, violations
from tests.conftest import run_cli_in_process

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").rglob("*.yaml"))
RELS = [p.relative_to(ROOT).as_posix() for p in SPECS]
TEXTS = {rel: (ROOT / rel).read_text(encoding="utf-8") for rel in RELS}

EXAMPLES = int(os.environ.get("IRC_FUZZ_EXAMPLES", "300"))
CLI_EXAMPLES = int(os.environ.get("IRC_FUZZ_CLI_EXAMPLES", "10"))

# IRC_FUZZ_RANDOM=1: a fresh random run each time (pytest --hypothesis-seed=N repeats one).
SETTINGS = {
    "derandomize": os.environ.get("IRC_FUZZ_RANDOM", "") in ("", "0"),
    "database": None,
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

# What happened to the mutants, reported at the end of the run (tests/README.md).
TALLY: Counter[str] = Counter()


# -- a copy of specs/, so that `extends: ../irv2.yaml` resolves for mutants ----


@cache
def mirror() -> Path:
    root = Path(tempfile.mkdtemp(prefix="irc_fuzz_"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    shutil.copytree(ROOT / "specs", root / "specs")
    return root


def mutant_path(rel: str) -> Path:
    """Where a mutant of `rel` is written: beside the original, in the mirror."""
    original = mirror() / rel
    return original.with_name(f"_mutant_{os.getpid()}.yaml")


# -- mutations -------------------------------------------------------------------

_KEY = re.compile(r"(?<![\w$'\"])([A-Za-z_$][\w$]*)(?=:(?:[ \t]|$))", re.MULTILINE)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_ITEM = re.compile(r"^([ \t]*- )(.+)$", re.MULTILINE)

KEY_WORDS = sorted({m.group(1) for t in TEXTS.values() for m in _KEY.finditer(t)})
HOSTILE_NAMES = [
    "__import__", "eval", "exec", "os", "class", "None", "lambda", "__init__", "keras",
    "layers", "conv2d", "x", "name", "b1", "r", "i", "input_shape", "st\u0435m", "t\u0456ny",
    "a b", "a'b", 'a"b', "a\\nb", "0abc", "$delete", "",
]  # fmt: skip
REPLACEMENTS = [
    "null", "~", "true", "false", "0", "1", "-7", "2.5", "1e400", "-.inf", ".nan", "0x10",
    "'text'", '""', "[]", "{}", "[1, 2]", "[1, 2, 3, 4]", "{a: 1}", "conv 8 3x3", "gap",
    "!!str 5", "!!python/name:os.system", "&anchor 3", "*nowhere", "'\"\"\"'",
    "\"__import__('os').system('x')\"", "|\n  text", "$delete",
]  # fmt: skip


def _at(data: st.DataObject, matches: list[re.Match], label: str) -> re.Match | None:
    if not matches:
        return None
    return matches[data.draw(st.integers(0, len(matches) - 1), label=label)]


def _leading(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def delete_key(text: str, data: st.DataObject) -> str:
    m = _at(data, list(_KEY.finditer(text)), "key to delete")
    if m is None:
        return text
    start = text.rfind("\n", 0, m.start()) + 1
    if text[start : m.start()].strip(" -") == "":
        # A block-style key: drop its line and everything indented deeper than the key.
        own = m.start() - start
        lines = text[start:].split("\n")
        n = 1
        while n < len(lines) and (not lines[n].strip() or _leading(lines[n]) > own):
            n += 1
        return text[:start] + "\n".join(lines[n:])
    # A flow-style key: drop `key: value` up to the next comma or closing bracket.
    rest = re.match(r"[^,}\]\n]*(, )?", text[m.end() :])
    return text[: m.start()] + text[m.end() + rest.end() :]


def swap_type(text: str, data: st.DataObject) -> str:
    targets = list(_KEY.finditer(text)) + list(_ITEM.finditer(text))
    m = _at(data, targets, "value to swap")
    if m is None:
        return text
    new = data.draw(st.sampled_from(REPLACEMENTS), label="replacement")
    if m.re is _ITEM:
        return text[: m.start(2)] + new + text[m.end(2) :]
    value = re.match(r":[ \t]*([^,}\]\n#]*)", text[m.end() :])
    start, end = m.end() + value.start(1), m.end() + value.end(1)
    return text[:start] + (" " if start == m.end() + 1 else "") + new + text[end:]


def perturb_number(text: str, data: st.DataObject) -> str:
    m = _at(data, list(_NUMBER.finditer(text)), "number")
    if m is None:
        return text
    digits = m.group()
    if len(digits) > 30:  # an earlier mutation's huge number
        n = 10**30
    else:
        n = float(digits) if "." in digits else int(digits)
    new = data.draw(
        st.one_of(
            st.sampled_from([0, 1, -1, -n, n + 1, n - 1, n * 2, n * 1000, 2**31, 10**12]),
            st.integers(-3, 3).map(lambda d: n + d),
            st.integers(0, 10_000),
            st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: round(f, 3)),
            st.sampled_from(["1e400", "9" * 5000, "0.99999999999999999", "1_000"]),
        ),
        label="new number",
    )
    return text[: m.start()] + str(new) + text[m.end() :]


def rename_key(text: str, data: st.DataObject) -> str:
    m = _at(data, list(_KEY.finditer(text)), "key to rename")
    if m is None:
        return text
    key = m.group(1)

    def typo(word: str) -> str:
        i = data.draw(st.integers(0, max(len(word) - 1, 0)), label="typo at")
        how = data.draw(st.sampled_from(["drop", "double", "swap", "upper"]), label="typo")
        if how == "drop":
            return word[:i] + word[i + 1 :]
        if how == "double":
            return word[: i + 1] + word[i:]
        if how == "swap" and i + 1 < len(word):
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        return word[:i] + word[i:].capitalize()

    new = data.draw(
        st.one_of(
            st.just(None),
            st.sampled_from(KEY_WORDS),
            st.sampled_from(HOSTILE_NAMES),
            st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True),
        ),
        label="new key",
    )
    new = typo(key) if new is None else new
    return text[: m.start(1)] + new + text[m.end(1) :]


def duplicate_line(text: str, data: st.DataObject) -> str:
    lines = text.split("\n")
    i = data.draw(st.integers(0, len(lines) - 1), label="line to duplicate")
    return "\n".join(lines[: i + 1] + lines[i:])


def drop_line(text: str, data: st.DataObject) -> str:
    lines = text.split("\n")
    i = data.draw(st.integers(0, len(lines) - 1), label="line to drop")
    return "\n".join(lines[:i] + lines[i + 1 :])


def insert_unicode(text: str, data: st.DataObject) -> str:
    at = data.draw(st.integers(0, len(text)), label="insert at")
    chars = data.draw(
        st.one_of(
            st.text(min_size=1, max_size=6),
            st.sampled_from(["\u2028", "\u0085", "\x00", "\ufeff", "\u202e", "\t", "\r", '"""']),
        ),
        label="inserted text",
    )
    return text[:at] + chars + text[at:]


# Byte-level mutations work on the UTF-8 encoding (surrogateescape keeps raw bytes).
def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def truncate(text: str, data: st.DataObject) -> str:
    raw = _bytes(text)
    at = data.draw(st.integers(0, len(raw)), label="truncate at byte")
    return _text(raw[:at])


def insert_bytes(text: str, data: st.DataObject) -> str:
    raw = _bytes(text)
    at = data.draw(st.integers(0, len(raw)), label="insert bytes at")
    junk = data.draw(st.binary(min_size=1, max_size=4), label="inserted bytes")
    return _text(raw[:at] + junk + raw[at:])


MUTATIONS = {
    f.__name__: f
    for f in (
        delete_key, swap_type, perturb_number, rename_key, duplicate_line, drop_line,
        truncate, insert_unicode, insert_bytes,
    )
}  # fmt: skip


@st.composite
def mutants(draw) -> tuple[str, list[str], bytes]:
    """(the spec mutated, the mutations applied, the mutant's bytes)."""
    rel = draw(st.sampled_from(RELS), label="spec")
    names = draw(st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=3))
    data = draw(st.data())
    text = TEXTS[rel]
    for name in names:
        text = MUTATIONS[name](text, data)
    return rel, names, _bytes(text)


# -- invariants --------------------------------------------------------------------


def file_lines(raw: bytes) -> list[str]:
    """A file's lines as an editor (and GitHub) counts them."""
    return re.split(r"\r\n|\r|\n", raw.decode("utf-8", errors="replace"))


def span_problems(result: Result, files: dict[str, bytes]) -> list[str]:
    """Every diagnostic (and note) must point inside the file it names."""
    problems = []
    for d in result.diagnostics:
        if d.code not in CODES:
            problems.append(f"unknown code {d.code}")
        if not d.message:
            problems.append(f"{d.code} without a message")
        if d.span is None:
            problems.append(f"{d.code} has no span: {d.message}")
            continue
        spans = [("", d.span)] + [("note of ", n.span) for n in d.notes if n.span is not None]
        for what, span in spans:
            if span.file.startswith("--set["):
                continue
            raw = files.get(span.file)
            if raw is None:
                path = (mirror() / span.file) if not Path(span.file).is_absolute() else None
                if path is None or not path.is_file():
                    problems.append(f"{what}{d.code} names {span.file!r}, which is not a file")
                    continue
                raw = path.read_bytes()
            lines = file_lines(raw)
            ok = 1 <= span.line <= len(lines) + 1 and span.column >= 1
            if ok and span.line <= len(lines):
                ok = span.column <= len(lines[span.line - 1]) + 1
            elif ok:
                ok = span.column == 1
            if not ok:
                problems.append(
                    f"{what}{d.code} at {span.line}:{span.column} is outside {span.file} "
                    f"({len(lines)} lines): {d.message}"
                )
    return problems


# -- known bugs: a matching failure is tolerated while its reproducer still fails ----
#
# When the fuzzer finds a bug that is not fixed at once, register it here: a
# predicate recognising its failure (an exception from check or render, or the
# span problems of a mutant) and a minimal reproducer that returns True while
# the bug is there; and add that reproducer as a strict xfail test below. The
# fuzzer then tolerates matching failures only while the reproducer still
# reproduces, so fixing the bug re-arms the fuzzer for it by itself.
#
# Every bug this fuzzer found so far is fixed (9ee3ea5); their reproducers are
# the regression tests at the end of this file.


@dataclass(frozen=True)
class KnownBug:
    crash: Callable[[BaseException], bool] = lambda exc: False
    positions: Callable[[bytes, list[str]], bool] = lambda raw, problems: False
    reproduces: Callable[[], bool] = lambda: False


KNOWN_BUGS: dict[str, KnownBug] = {}


@cache
def still_broken(name: str) -> bool:
    return KNOWN_BUGS[name].reproduces()


def known_crash(exc: BaseException) -> str | None:
    """The known bug an exception from check or render is, if any."""
    for name, bug in KNOWN_BUGS.items():
        if bug.crash(exc) and still_broken(name):
            return name
    return None


def known_span_bug(raw: bytes, problems: list[str]) -> str | None:
    for name, bug in KNOWN_BUGS.items():
        if bug.positions(raw, problems) and still_broken(name):
            return name
    return None


# -- the properties -------------------------------------------------------------------


def check_mutant(rel: str, raw: bytes) -> str:
    """Run every invariant on one mutant; returns what happened (for the tally)."""
    display = mutant_path(rel).relative_to(mirror()).as_posix()
    path = mutant_path(rel)
    path.write_bytes(raw)
    try:
        by_bytes = check_bytes(raw, display)
        by_file = check_file(path, display=display)
    except Exception as exc:
        bug = known_crash(exc)
        if bug is None:
            raise
        return f"known bug: {bug}"
    files = {display: raw}
    tolerated = None
    for result in (by_bytes, by_file):
        problems = span_problems(result, files)
        if problems:
            tolerated = known_span_bug(raw, problems)
            if tolerated is None:
                raise AssertionError("\n".join(problems))
        if not result.ok:
            assert result.diagnostics, "check failed without a diagnostic"
    fmt = ("text", "json", "github")[len(raw) % 3]
    code, output = run_cli_in_process("check", "--format", fmt, str(path))
    assert code in (0, 1), output
    assert "Traceback" not in output, output
    # `irc check` also checks each preset of a `scales:` table (irc compile writes each).
    presets = []
    if by_file.ok and by_file.spec.scale is None:
        presets = [check_file(path, display=display, scale=n) for n in by_file.spec.scales]
    for result in presets:
        problems = span_problems(result, files)
        assert not problems or known_span_bug(raw, problems), "\n".join(problems)
    assert (code == 0) == (by_file.ok and all(p.ok for p in presets)), output
    if tolerated:
        TALLY[f"known bug: {tolerated} (positions)"] += 1
    if not by_file.ok:
        return f"rejected: {by_file.diagnostics[0].code}"
    try:
        rendered = emit.render(by_file)
    except Exception as exc:
        bug = known_crash(exc)
        if bug is None:
            raise
        return f"known bug: {bug}"
    names = spec_names(by_file.spec)
    for filename, text in rendered.items():
        assert filename.endswith(".py"), filename
        problems = violations(text, names)
        assert not problems, f"{filename}:\n" + "\n".join(problems[:20])
    return "accepted and rendered"


@settings(max_examples=EXAMPLES, **SETTINGS)
@given(mutants())
def test_mutated_specs_never_crash_and_point_inside_the_file(mutant):
    rel, names, raw = mutant
    if raw == _bytes(TEXTS[rel]):
        TALLY["unchanged by its mutations"] += 1
    outcome = check_mutant(rel, raw)
    TALLY[outcome] += 1
    TALLY["mutants"] += 1
    for name in names:
        TALLY[f"mutation: {name}"] += 1


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "irc_cnn.compiler.cli", *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
    )


@settings(max_examples=CLI_EXAMPLES, **SETTINGS)
@given(mutants())
def test_mutated_specs_through_the_command_line(mutant):
    """A fresh interpreter, as a user runs it: exit 0 or 1, never a traceback, and
    `compile` succeeds exactly when `check` does."""
    rel, _, raw = mutant
    path = mutant_path(rel)
    path.write_bytes(raw)
    if known_crash_for(raw, path):
        return
    check = _run_cli("check", str(path))
    output = check.stdout + check.stderr
    assert check.returncode in (0, 1), output
    assert "Traceback" not in output, output
    with tempfile.TemporaryDirectory() as out:
        compiled = _run_cli("compile", str(path), "--out", out)
        output = compiled.stdout + compiled.stderr
        assert compiled.returncode == check.returncode, output
        assert "Traceback" not in output, output
        written = sorted(p.name for p in Path(out).iterdir())
        assert bool(written) == (check.returncode == 0), written
    TALLY["cli mutants"] += 1


def known_crash_for(raw: bytes, path: Path) -> str | None:
    """Whether in process this mutant hits a known crash (then the CLI would too)."""
    try:
        result = check_file(path)
        if result.ok:
            emit.render(result)
    except Exception as exc:
        bug = known_crash(exc)
        if bug is None:
            raise
        return bug
    return None


# -- the known bugs, as minimal reproducers ---------------------------------------------


# -- regressions: the bugs this fuzzer found, as minimal reproducers ---------------

_TINY = (ROOT / "tests" / "golden" / "tiny.yaml").read_text(encoding="utf-8")


def _rejected_or_rendered(text: str | bytes) -> Result:
    """Check; where the check passes, render (which must then succeed)."""
    raw = text.encode() if isinstance(text, str) else text
    result = check_bytes(raw, "tiny.yaml")
    if result.ok:
        emit.render(result)
    else:
        assert result.diagnostics and all(d.span for d in result.diagnostics)
    return result


def test_regression_huge_integer():
    """More than 4300 digits: int() raised ValueError out of check."""
    for text in (
        _TINY.replace("classes: 10", "classes: " + "9" * 5000),
        _TINY.replace("conv 64 1x1", "conv " + "9" * 5000 + " 1x1"),
        _TINY.replace("conv 64 1x1", "conv 64 " + "9" * 5000 + "x1"),
        _TINY.replace("unit x2", "unit x" + "9" * 5000),
    ):
        assert not _rejected_or_rendered(text).ok


def test_regression_deviation_complex_key():
    """A non-scalar key in a deviation: TypeError (unhashable list) in source._deviation."""
    text = _TINY.replace("        why: the golden", "        [a]: 1\n        why: the golden")
    assert not _rejected_or_rendered(text).ok


@pytest.mark.parametrize(
    "text",
    [
        _TINY.replace("bn: {scale: false}", "bn: {scale: false, epsilon: .inf}"),
        _TINY.replace("{scale: 0.2, activation: relu}", "{scale: .inf, activation: relu}"),
        _TINY.replace("{scale: 0.2, activation: relu}", "{scale: .nan, activation: relu}"),
        _TINY.replace("{scale: 1.0, activation: null}", "{scale: .nan, activation: null}"),
        _TINY.replace("{scale: 1.0, activation: null}", "{scale: .inf, activation: null}"),
    ],
    ids=["epsilon inf", "default inf", "default nan", "argument nan", "argument inf"],
)
def test_regression_non_finite_number(text):
    """A non-finite float passed check, then render raised on it."""
    _rejected_or_rendered(text)


def test_regression_unused_block_activation():
    """An unused block's activation was never validated; render raised on its layer name."""
    text = _TINY.replace("  side:\n", '  unused:\n    seq: [{act: {activation: "a b"}}]\n  side:\n')
    _rejected_or_rendered(text)


def test_regression_lone_cr_utf8_position():
    """A byte that is not UTF-8 after a lone CR was reported on the line before."""
    result = check_bytes(b"name: tiny\r\x80\n", "x.yaml")
    assert [(d.code, d.span.line, d.span.column) for d in result.diagnostics] == [("IRC102", 2, 1)]


def test_regression_yaml11_line_breaks():
    """U+2028, U+2029 and U+0085 are no line breaks for editors: positions after them
    must count lines at \\n (libyaml counted them as breaks)."""
    for sep in ("\u2028", "\u2029", "\u0085"):
        raw = f'name: tiny\ntitle: "a{sep}b"\ninput: [32, 32, 3]\nclasses: 0\n'.encode()
        result = check_bytes(raw, "x.yaml")
        assert not span_problems(result, {"x.yaml": raw}), repr(sep)
        assert ("IRC207", 4, 10) in [
            (d.code, d.span.line, d.span.column) for d in result.diagnostics
        ]


def test_report_tally():
    """Not a check: prints what the mutants did (run with -s to see it)."""
    if TALLY:
        width = max(map(len, TALLY))
        print("\nfuzz tally:")
        for key, count in sorted(TALLY.items()):
            print(f"  {key:<{width}}  {count}")
