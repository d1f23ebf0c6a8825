"""Messages that point the right way (issue 11): hints, carets, width arithmetic, --set and --input.

The bad specs in tests/bad_specs pin each message's code and position; these
tests cover what a file cannot: `--set` and `--input` arguments, exit codes,
and a sweep over generated mistakes that no hint suggests the very word it
rejects and no message speaks Pydantic.
"""

from __future__ import annotations

import itertools
import re

import pytest
import yaml
from pydantic import TypeAdapter

from irc_cnn.compiler import ops, schema
from irc_cnn.compiler.pipeline import Result, check_bytes, check_file
from tests.conftest import ROOT, run_irc
from tests.test_bad_specs import CASES, checked

IRV2 = "specs/irv2.yaml"
PYDANTIC_WORDING = re.compile(
    r"Input should|should have|after validation|valid dictionary|Field required|Extra inputs"
)
SUGGESTION = re.compile(r"did you mean '([^']*)'")


def caret_text(result: Result, diag) -> str:
    """The characters under a diagnostic's caret."""
    span = diag.span
    line = result.lines[span.file][span.line - 1]
    end = span.end_column if span.end_line == span.line and span.end_column else span.column + 1
    return line[span.column - 1 : end - 1]


def assert_hints_sound(result: Result) -> None:
    for diag in result.diagnostics:
        assert not PYDANTIC_WORDING.search(diag.message), diag.message
        for suggested in SUGGESTION.findall(diag.hint or ""):
            rejected = caret_text(result, diag) if diag.span and result.lines else None
            assert suggested != rejected, f"{diag.message}: hint {diag.hint!r}"


# -- width --------------------------------------------------------------------------------


def test_width_error_shows_the_arithmetic_and_suggests_conv_in():
    result = check_file(IRV2, sets=["width=0.33"])
    first = result.diagnostics[0]
    assert first.code == "IRC301"
    assert (first.span.file, first.span.line, first.span.column) == (IRV2, 90, 25)
    assert "380-channel projection (1152 x 0.33 -> 380) to a 381-channel input" in first.message
    assert "`conv in 1x1 linear`" in first.hint
    assert "use 381" not in first.hint  # typing 381 would be scaled again
    proc = run_irc("check", IRV2, "--set", "width=0.33")
    assert proc.returncode == 1
    assert "1152 x 0.33 -> 380" in proc.stdout and "conv in 1x1 linear" in proc.stdout


def test_paper_error_keeps_the_plain_count_and_offers_conv_in():
    first = check_file(IRV2, paper=True).diagnostics[0]
    assert "1154-channel projection to a 1152-channel input" in first.message
    assert first.hint.startswith("use 1152 filters or `conv in 1x1 linear`")


# -- --set ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argument", "column", "end", "suggestion"),
    [("widht=0.5", 1, 6, "width"), ("builder.nmae=x", 9, 13, "name")],
)
def test_unknown_key_in_a_set_points_at_the_key(argument, column, end, suggestion):
    (diag,) = check_file("specs/irv1.yaml", sets=[argument]).diagnostics
    assert diag.code == "IRC201"
    assert (diag.span.file, diag.span.line, diag.span.column) == ("--set[1]", 1, column)
    assert diag.span.end_column == end
    assert diag.hint == f"did you mean {suggestion!r}?"


@pytest.mark.parametrize(
    "argument", ["width", "input=[1, 2", "network.nothing.repeat=3", "name.deeper=1"]
)
def test_a_set_that_cannot_be_applied_is_misuse(argument):
    proc = run_irc("check", IRV2, "--set", argument)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error[IRC1" in proc.stderr and "Traceback" not in proc.stderr
    assert "irc: error: a --set argument cannot be applied" in proc.stderr


def test_a_set_that_makes_the_spec_invalid_is_an_error_in_the_spec():
    proc = run_irc("summary", IRV2, "--set", "width=0")
    assert proc.returncode == 1
    assert "--set[1]:1:7: error[IRC207]" in proc.stderr
    # a key the spec lacks is created (here under a number: an error, not a traceback)
    proc = run_irc("check", IRV2, "--set", "width.deeper=1")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "--set[1]:1:14: error[IRC202]: width: expected a number, got a mapping" in proc.stdout


# -- --input ----------------------------------------------------------------------------------


def test_too_small_input_says_the_minimum_and_which_layer_sets_it():
    result = check_file(IRV2, input_size=(224, 224))
    assert [d.code for d in result.diagnostics] == ["IRC304", "IRC304"]
    (note,) = [n.message for n in result.diagnostics[0].notes]
    assert note.startswith("the smallest square input this network accepts is 299x299")
    assert "`blocks.aux_head.seq.2.kernel` sets it: at 298x298, conv kernel 5x5" in note
    proc = run_irc("check", IRV2, "--input", "224")
    assert proc.returncode == 1 and "accepts is 299x299 (--input 299)" in proc.stdout


def test_input_keeps_the_channels_and_takes_height_by_width():
    result = check_file("specs/keras/inception_resnet_v2.yaml", input_size=(224, 192))
    assert result.ok and result.graph.input == (224, 192, 3)
    proc = run_irc("summary", IRV2, "--input", "320", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert '"input": [\n      320,\n      320,\n      3\n    ]' in proc.stdout


@pytest.mark.parametrize("bad", ["22a", "0", "224x", "x224", "-3"])
def test_malformed_input_is_misuse(bad):
    proc = run_irc("check", IRV2, f"--input={bad}")
    assert proc.returncode == 2 and "--input" in proc.stderr


# -- the user's text is quoted, never filled in ------------------------------------------


@pytest.mark.parametrize(
    ("op", "column", "quoted"),
    [
        ("conv 8 3x3 {hint}", 16, "unexpected '{hint}' in a conv op"),
        ("conv 8 {code}x3", 12, "got '{code}x3'"),
        ("conv 8 3x3 s{end}", 16, "unexpected 's{end}' in a conv op"),
    ],
)
def test_braces_in_a_compact_op_are_quoted_as_written(op, column, quoted):
    """Pydantic fills its error context into the message; the message is a value there
    (the type checker's LiteralString found it: `{hint}` came out as the hint)."""
    text = f"name: t\ntitle: t\ninput: [32, 32, 3]\nclasses: 10\nbuilder: {{name: build}}\n"
    result = check_bytes(f"{text}network:\n  - {op}\n  - gap\n".encode(), "t.yaml")
    (diag,) = result.diagnostics
    assert (diag.code, diag.span.line, diag.span.column) == ("IRC204", 7, column)
    assert quoted in diag.message


# -- no hint suggests what it rejects ----------------------------------------------------


def test_bad_specs_hints_never_suggest_the_rejected_word():
    for case in CASES:
        result = checked(case.path)
        if result.lines:
            assert_hints_sound(result)


HEADER = """\
name: tiny
title: Tiny
input: [32, 32, 3]
classes: 10
builder: {name: create_tiny}
blocks:
  unit:
    residual:
      branches: [conv 8 3x3]
      project: conv in 1x1 linear
"""


def typos(word: str) -> list[str]:
    """A dropped, a doubled and a swapped letter."""
    out = {word[:i] + word[i + 1 :] for i in range(len(word))}
    out |= {word[:i] + word[i] + word[i:] for i in range(len(word))}
    out |= {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1)}
    return sorted(out - {word})


def mistakes() -> list[str]:
    """Specs with one mistake each: typos of words the language knows, keys in the wrong place."""
    words = ("valid", "same", "relu", "linear", "nobias", "noscale")
    ops = [f"conv 8 3x3 {w}" for word in words for w in typos(word)]
    ops += [f"maxpool 3x3 {w}" for w in ("relu", "bias", "valdi")] + ["bn relu", "gap 2"]
    keys = ("filters", "kernel", "strides", "padding", "activation", "epsilon", "units", "rate")
    ops += [f"{{conv: {{filters: 8, kernel: 3, {k}: 1}}}}" for k in keys[5:]]
    ops += [f"{{conv: {{filters: 8, kernel: 3, {w}: 1}}}}" for k in keys[:5] for w in typos(k)[:4]]
    ops += [f"{{bn: {{{k}: true}}}}" for k in ("epsilon", "momentum", "sclae", "filters")]
    ops += [f"{{unit: {{{w}: 2}}}}" for w in typos("repeat")[:6]]
    specs = [HEADER + f"network:\n  - conv 8 3x3\n  - {op}\n  - gap\n" for op in ops]
    tops = ("extends", "width", "classes", "network", "defaults")
    specs += [f"{w}: 1\n" + HEADER + "network: [conv 8 3x3, gap]\n" for t in tops for w in typos(t)]
    return specs


def test_generated_mistakes_get_sound_hints():
    texts = mistakes()
    assert len(texts) > 150
    failed = 0
    for text in texts:
        result = check_bytes(text.encode(), "mistake.yaml")
        failed += not result.ok
        assert_hints_sound(result)
    assert failed >= len(texts) - 5  # a typo can land on another valid word (`nobias` -> `bias`)


def test_typos_of_known_words_are_recognised():
    """Every one-letter typo of a padding or activation word gets a suggestion."""
    for word, typo in itertools.chain.from_iterable(
        ((w, t) for t in typos(w) if len(t) > 3) for w in ("valid", "relu", "linear")
    ):
        (diag,) = check_bytes(
            (HEADER + f"network: [conv 8 3x3 {typo}, gap]\n").encode(), "t.yaml"
        ).diagnostics
        assert diag.hint and "did you mean" in diag.hint, (typo, diag)


def test_every_spec_under_specs_is_still_clean():
    for path in sorted((ROOT / "specs").rglob("*.yaml")):
        assert check_file(path.relative_to(ROOT)).ok, path


# -- the docs show every op kind's mapping form ------------------------------------------

DOC_ROW = re.compile(r"^\| `([^`]+)` \| `(\{[^`]+\})` \|$", re.MULTILINE)


def test_docs_show_a_mapping_form_for_every_op_kind_equal_to_its_compact_form():
    rows = DOC_ROW.findall((ROOT / "docs" / "spec-language.md").read_text(encoding="utf-8"))
    node = TypeAdapter(schema.Node)
    kinds = set()
    for compact_form, mapping_form in rows:
        op = node.validate_python(compact_form)
        assert node.validate_python(yaml.safe_load(mapping_form)) == op, mapping_form
        kinds.add(op.kind)
    assert kinds == set(ops.KINDS)
