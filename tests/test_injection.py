"""Code injection: no spec text reaches generated code except as inert data.

Every place a spec puts text is tried with hostile strings: quotes and
triple quotes, newlines (and the Unicode line breaks U+2028, U+0085),
backslashes, NUL, `__import__('os').system(...)`, format braces, a
right-to-left override, a BOM. Every place a spec puts a *name* is tried
with Python keywords, dunders, Unicode look-alikes (Cyrillic letters,
fullwidth forms), names with quotes or spaces, and names the generated code
itself uses (`keras`, `layers`, `conv2d`, `x`, `INPUT_SHAPE`, ...).

The proof, for each case, is one of:

- irc rejects the spec with a diagnostic (code and position), no crash; or
- the generated module compiles, mentions only allow-listed names
  (tests/codecheck.py), and
  * for free text: its executable code is identical (ast.dump, docstrings
    dropped) to the module generated from the same spec with plain text --
    the text changed nothing but docstrings and comments;
  * for names: Keras builds it into exactly the network irc inferred (every
    layer's name and shape, the parameter count) -- the name changed no
    other name's meaning.

The file a spec is read from is a text too: its path lands in the
generated header and docstring.
"""

from __future__ import annotations

import types

import pytest
import yaml

from irc_cnn.backends.keras import emit
from irc_cnn.compiler.pipeline import Result, check_bytes
from tests.codecheck import executable_dump, spec_names, violations
from tests.conftest import ROOT

TINY = (ROOT / "tests" / "golden" / "tiny.yaml").read_text(encoding="utf-8")


def q(text: str) -> str:
    """A YAML double-quoted scalar for any text (ASCII escapes only)."""
    return yaml.safe_dump(text, default_style='"', width=10**9, allow_unicode=False).strip()


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def check(text: str, file: str = "tiny.yaml") -> Result:
    return check_bytes(text.encode("utf-8"), file)


def clean_rejection(result: Result) -> None:
    assert not result.ok
    assert result.diagnostics, "rejected without a diagnostic"
    for d in result.diagnostics:
        assert d.code.startswith("IRC") and d.span is not None and d.message, d


def module_text(result: Result) -> str:
    files = emit.render(result)
    (name,) = [n for n in files if n != "__init__.py"]
    for text in files.values():
        problems = violations(text, spec_names(result.spec))
        assert not problems, "\n".join(problems)
    return files[name]


# -- the allow-list itself ----------------------------------------------------------------


GOLDEN = (ROOT / "tests" / "golden" / "tiny.py").read_text(encoding="utf-8")
TAMPERED = {
    "import os": GOLDEN.replace("import keras\n", "import keras\nimport os\n"),
    "__import__": GOLDEN.replace("    x = inputs\n", "    x = inputs\n    __import__('os')\n"),
    "eval": GOLDEN.replace("    x = inputs\n", "    x = inputs\n    eval('1')\n"),
    "open": GOLDEN.replace("    x = inputs\n", "    x = inputs\n    open('/etc/passwd')\n"),
    "getattr": GOLDEN.replace("    x = inputs\n", "    x = getattr(inputs, 'x', inputs)\n"),
    "dunder attribute": GOLDEN.replace("    x = inputs\n", "    x = inputs.__class__\n"),
    "unknown call": GOLDEN.replace("    x = inputs\n", "    x = system(inputs)\n"),
    "docstring broken out": GOLDEN.replace(
        "irc's golden-file test", 'irc\'s golden-file test"""\nimport os\n"""'
    ),
    "lambda": GOLDEN.replace("    x = inputs\n", "    x = (lambda: inputs)()\n"),
    "class": GOLDEN.replace("\n\ndef conv2d(", "\n\nclass X:\n    pass\n\n\ndef conv2d("),
    "syntax error": GOLDEN + "\ndef broken(:\n",
    "duplicate argument": GOLDEN.replace(
        "def dropout(x: KerasTensor, rate: float", "def dropout(x: KerasTensor, x: float"
    )
    if "def dropout(x: KerasTensor, rate: float" in GOLDEN
    else GOLDEN + "\n\ndef f(x, x):\n    return x\n",
}


def test_allow_list_accepts_the_golden_module():
    result = check(TINY)
    assert violations(GOLDEN, spec_names(result.spec)) == []


@pytest.mark.parametrize("how", sorted(TAMPERED))
def test_allow_list_catches_tampered_code(how):
    tampered = TAMPERED[how]
    assert tampered != GOLDEN
    assert violations(tampered, spec_names(check(TINY).spec)), how


# -- free text ---------------------------------------------------------------------------

TEXT_PLACES = {
    "title": lambda t: replace_once(TINY, "title: Tiny residual network", f"title: {q(t)}"),
    "ref": lambda t: replace_once(TINY, "ref: irc's golden-file test", f"ref: {q(t)}"),
    "doc": lambda t: replace_once(
        TINY, "ref: irc's golden-file test\n", f"ref: irc's golden-file test\ndoc: {q(t)}\n"
    ),
    "block ref": lambda t: replace_once(TINY, "  reduce:\n", f"  reduce:\n    ref: {q(t)}\n"),
    "block doc": lambda t: replace_once(TINY, "  reduce:\n", f"  reduce:\n    doc: {q(t)}\n"),
    "why": lambda t: replace_once(
        TINY, "why: the golden file shows how a deviation reaches the docstring", f"why: {q(t)}"
    ),
    "paper value": lambda t: replace_once(TINY, "paper: conv 32 1x1 linear", f"paper: {q(t)}"),
    "seed value": lambda t: replace_once(
        TINY, "        why: the golden", f"        seed: {q(t)}\n        why: the golden"
    ),
}

HOSTILE_TEXTS = {
    "triple quotes": '"""',
    "breakout": '"""; __import__("os").system("echo pwned"); """',
    "single triple quotes": "'''; import os; '''",
    "newline code": "a\nimport os\nos.system('echo pwned')",
    "crlf": "a\r\nimport os",
    "line separator": "a\u2028import os",
    "next line": "a\u0085import os",
    "nul": "a\x00b",
    "trailing quote": 'ends in a quote"',
    "trailing backslash": "ends in a backslash\\",
    "backslash escapes": "\\N{BULLET} \\x41 \\u0041 \\",
    "import call": "__import__('os').system('echo pwned')",
    "format braces": "{name} {0} {x!r} %s %(x)s",
    "rtl override": "abc\u202e// evil \u202d",
    "bom": "\ufeffBOM",
    "comment": "# coding: latin-1",
    "tabs": "\tindented\ttext",
    "astral": "\U0001f600 emoji",
    "long": "word " * 5000,
}

PLAIN = "plain text"


def _plain_module(place: str) -> str:
    result = check(TEXT_PLACES[place](PLAIN))
    assert result.ok, [d.message for d in result.diagnostics]
    return executable_dump(module_text(result))


@pytest.mark.parametrize("how", sorted(HOSTILE_TEXTS))
@pytest.mark.parametrize("place", sorted(TEXT_PLACES))
def test_text_changes_nothing_but_docstrings(place, how):
    text = TEXT_PLACES[place](HOSTILE_TEXTS[how])
    result = check(text)
    if not result.ok:
        clean_rejection(result)
        return
    hostile = module_text(result)
    assert executable_dump(hostile) == _plain_module(place)
    # The payload is inert: the module (without keras) defines and runs nothing of it.
    assert "pwned" not in executable_dump(hostile)


@pytest.mark.parametrize("how", sorted(HOSTILE_TEXTS))
def test_paper_mode_with_hostile_paper_value_does_not_crash(how):
    """--paper validates the paper's values: a hostile one is an error, not a crash."""
    result = check_bytes(
        TEXT_PLACES["paper value"](HOSTILE_TEXTS[how]).encode(), "t.yaml", paper=True
    )
    clean_rejection(result)


# -- the file name --------------------------------------------------------------------

FILE_NAMES = {
    "plain": "specs/tiny.yaml",
    "quote": "specs/it's.yaml",
    "double quote": 'specs/say "hi".yaml',
    "space": "specs/my spec.yaml",
    "unicode": "specs/café ünïcode.yaml",
    "braces": "specs/{name}.yaml",
    "trailing backslash": "specs/a\\",
    "newline": "specs/a\nimport os\n.yaml",
    "carriage return": "specs/a\rimport os\r.yaml",
}
# Names that break the generated module today: the path reaches the module
# docstring unescaped (the header comment is filtered since c02dfe5).
BAD_FILE_NAMES = {
    "triple quotes": 'specs/a"""; __import__("os").system("echo pwned"); """.yaml',
    "backslash N": "specs\\Ninja.yaml",
    "backslash x": "specs\\x.yaml",
}


def _file_name_case(file: str) -> None:
    result = check(TINY, file)
    assert result.ok
    plain = module_text(check(TINY, "specs/tiny.yaml"))
    assert executable_dump(module_text(result)) == executable_dump(plain)


@pytest.mark.parametrize("how", sorted(FILE_NAMES))
def test_file_name_is_inert(how):
    _file_name_case(FILE_NAMES[how])


@pytest.mark.parametrize("how", sorted(BAD_FILE_NAMES))
def test_hostile_file_name_is_inert(how):
    _file_name_case(BAD_FILE_NAMES[how])


def test_hostile_file_name_through_the_command_line(tmp_path):
    """End to end, for the record: what `irc compile` writes for a file named with `\"\"\"`.

    The path reaches the header and docstring through the text filter, so the
    module compiles, holds only the allowed names, and does nothing hostile at
    import.
    """
    from tests.conftest import run_irc

    name = 'a"""; open("pwned", "w"); """.yaml'
    spec = tmp_path / name
    spec.write_text(TINY, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    proc = run_irc("compile", str(spec), "--out", str(out))
    assert proc.returncode in (0, 1, 2), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    for path in out.glob("*.py"):
        namespace: dict = {}
        try:
            code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
        except SyntaxError:
            continue
        assert not violations(path.read_text(encoding="utf-8"), spec_names(check(TINY).spec))
        exec(code, namespace)  # noqa: S102 -- proves the import does nothing hostile
    assert not (tmp_path / "pwned").exists() and not (ROOT / "pwned").exists()


# -- names -------------------------------------------------------------------------------


def _rename_block(old: str, new: str, spec: str = TINY) -> str:
    """Rename block `old` everywhere (definition and uses), uses in the mapping form."""
    spec = replace_once(spec, f"  {old}:\n", f"  {q(new)}:\n")
    lines = []
    for line in spec.split("\n"):
        stripped = line.strip()
        if stripped == f"- {old}":
            line = line.replace(f"- {old}", f"- {q(new)}: null")
        elif stripped.startswith(f"- {old} x"):
            count = stripped.split(" x")[1]
            line = line.replace(stripped, f"- {q(new)}: {{repeat: {count}}}")
        elif stripped.startswith(f"- {old}:"):
            line = line.replace(f"- {old}:", f"- {q(new)}:")
        elif stripped == f"- aux: {old}":
            line = line.replace(f"aux: {old}", f"aux: {q(new)}")
        lines.append(line)
    return "\n".join(lines)


NAME_PLACES = {
    "spec name": lambda n: replace_once(TINY, "name: tiny\n", f"name: {q(n)}\n"),
    "block name": lambda n: _rename_block("unit", n),
    "aux block name": lambda n: _rename_block("side", n),
    "param name": lambda n: replace_once(
        replace_once(
            replace_once(TINY, "params: [n]", f"params: [{q(n)}]"),
            "conv n 3x3 s2 valid",
            f"{{conv: {{filters: {q(n)}, kernel: 3, strides: 2, padding: valid}}}}",
        ),
        "reduce: {n: 16}",
        f"reduce: {{{q(n)}: 16}}",
    ),
    "param with default": lambda n: replace_once(
        replace_once(
            TINY,
            "{scale: 0.2, activation: relu}",
            f"{{scale: 0.2, activation: relu, {q(n)}: 8}}",
        ),
        "        - conv 8 1x1\n",
        f"        - {{conv: {{filters: {q(n)}, kernel: 1}}}}\n",
    ),
    "builder name": lambda n: replace_once(
        TINY, "{name: create_tiny, scale: true}", f"{{name: {q(n)}, scale: true}}"
    ),
    "classes argument": lambda n: replace_once(
        TINY,
        "{name: create_tiny, scale: true}",
        f"{{name: create_tiny, scale: true, classes_arg: {q(n)}}}",
    ),
}

# Not identifiers Python could use: every place must reject them.
NOT_NAMES = {
    "keyword": "class",
    "keyword None": "None",
    "soft keyword async": "async",
    "dunder import": "__import__",
    "dunder init": "__init__",
    "dunder class": "__class__",
    "cyrillic e": "st\u0435m",
    "cyrillic i": "t\u0456ny",
    "fullwidth": "\uff53\uff54\uff45\uff4d",
    "zero width space": "st\u200bem",
    "quote": "a'b",
    "double quote": 'a"b',
    "space": "a b",
    "newline": "a\nb",
    "code": "x); __import__('os').system('echo pwned'); (x",
    "leading digit": "1abc",
    "empty": "",
}
# Identifiers a spec may well use that the generated code uses too.
CODE_NAMES = [
    "eval", "range", "keras", "conv2d", "INPUT_SHAPE", "x", "inputs", "include_top", "scale",
    "nb_classes", "create_tiny", "stem",
]  # fmt: skip


@pytest.mark.parametrize("how", sorted(NOT_NAMES))
@pytest.mark.parametrize("place", sorted(NAME_PLACES))
def test_non_identifier_is_rejected(place, how):
    result = check(NAME_PLACES[place](NOT_NAMES[how]))
    clean_rejection(result)


def build_and_compare(result: Result) -> None:
    """Import the module (no files: a fresh module object) and build it in Keras."""
    keras = pytest.importorskip("keras")
    text = module_text(result)
    module = types.ModuleType(f"irc_injection_{result.spec.name}")
    exec(compile(text, f"<{result.spec.name}>", "exec"), module.__dict__)  # noqa: S102
    try:
        model = getattr(module, result.spec.builder.name)()
        graph = result.graph
        built = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
        inferred = {layer.name: tuple(layer.shape) for layer in graph.layers}
        assert {k: v for k, v in built.items() if k != "input"} == inferred
        assert model.count_params() == graph.params
    finally:
        # Keras' state only: a gc.collect() over the whole process costs 0.4-0.6 s a build,
        # and Python's own collector frees the tiny model
        keras.backend.clear_session(free_memory=False)


# (place, name) pairs that irc accepts and then generates wrong code for (the
# module fails to build, or builds a different network): each gets a strict
# xfail. At commit e0f5cb8 there were 29 of the 112 (16 names then): a block
# named like a module constant or a builder argument (`def INPUT_SHAPE(...)`
# replaced the constant; the builder's `include_top` argument hid
# `def include_top`), a builder named like a builtin, helper or block
# (`def conv2d` replaced the helper), a class-count argument named like
# anything the builder uses (`x`, `keras`, `inputs`, `input_shape`: a
# duplicate argument or a clobbered variable). naming.function_names fixed
# them all; add a pair here if a new collision is found and not fixed at once.
COLLISIONS: dict[str, set[str]] = {}


def _collision_params():
    for place in sorted(NAME_PLACES):
        for name in CODE_NAMES:
            marks = []
            if name in COLLISIONS.get(place, ()):
                marks = [
                    pytest.mark.xfail(
                        strict=True,
                        reason="bug: a spec identifier collides with a name the generated code "
                        "uses; irc accepts the spec and the module builds something else (or "
                        "fails)",
                    )
                ]
            yield pytest.param(place, name, id=f"{place}-{name}", marks=marks)


@pytest.mark.slow
@pytest.mark.parametrize(("place", "name"), list(_collision_params()))
def test_code_name_is_rejected_or_harmless(place, name):
    result = check(NAME_PLACES[place](name))
    if not result.ok:
        clean_rejection(result)
        return
    build_and_compare(result)


# -- values passed as block arguments ----------------------------------------------------


def test_block_argument_is_checked_like_the_literal():
    """A value reaches generated code as a literal either way; both need the same rules."""
    written = check(replace_once(TINY, "      scale: scale\n", "      scale: -1.0\n"))
    assert "IRC207" in [d.code for d in written.diagnostics]
    default = check(
        replace_once(TINY, "{scale: 0.2, activation: relu}", "{scale: -1.0, activation: relu}")
    )
    argument = check(
        replace_once(TINY, "{scale: 1.0, activation: null}", "{scale: -1.0, activation: null}")
    )
    clean_rejection(argument)
    clean_rejection(default)
