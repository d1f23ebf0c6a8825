"""`irc schema`: the JSON Schema of the spec language, its committed copy, and check-jsonschema."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path


from tests.conftest import ROOT, run_irc

SCHEMA = ROOT / "docs" / "irc-spec.schema.json"
SPECS = sorted((ROOT / "specs").rglob("*.yaml"))
BAD = ROOT / "tests" / "bad_specs"
# The codes of structural errors: an unknown key, a value of the wrong type or
# shape, a missing key. Every bad spec expecting only these is one a schema rejects.
STRUCTURAL = {"IRC201", "IRC202", "IRC203"}


def _expected_codes(path: Path) -> set[str]:
    return set(re.findall(r"^# expect: (IRC\d+)", path.read_text(errors="replace"), re.M))


STRUCTURALLY_BROKEN = sorted(
    p for p in BAD.glob("*.yaml") if _expected_codes(p) and _expected_codes(p) <= STRUCTURAL
)


def check_jsonschema(*files: Path) -> tuple[int, dict[str, str]]:
    """Exit code, and each rejected file's deepest error (path: message)."""
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "-o", "json", "--schemafile", str(SCHEMA)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(proc.stdout)
    assert not report.get("parse_errors"), report["parse_errors"]
    errors = {}
    for error in report.get("errors", []):
        deepest = error.get("best_deep_match", error)
        errors.setdefault(error["filename"], f"{deepest['path']}: {deepest['message']}")
    return proc.returncode, errors


def test_the_committed_schema_is_what_irc_schema_prints():
    proc = run_irc("schema")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert proc.stdout == SCHEMA.read_text(), (
        "docs/irc-spec.schema.json is stale: run `irc schema > docs/irc-spec.schema.json`"
    )


def test_every_op_kind_of_the_models_has_a_compact_pattern():
    from typing import get_args

    from irc_cnn.compiler import ops

    defs = json.loads(SCHEMA.read_text())["$defs"]
    assert len(ops.Op.__subclasses__()) >= 12
    for model in ops.Op.__subclasses__():
        patterns = [f.get("pattern", "") for f in defs[model.__name__]["anyOf"]]
        for kind in get_args(model.model_fields["kind"].annotation):
            assert any(re.match(p, f"{kind} ") for p in patterns if p), kind


def test_every_spec_carries_the_modeline():
    for spec in SPECS:
        first = spec.read_text().splitlines()[0]
        relative = Path(*[".."] * len(spec.relative_to(ROOT).parent.parts), "docs", SCHEMA.name)
        assert first == f"# yaml-language-server: $schema={relative.as_posix()}", spec
        assert (spec.parent / relative).resolve() == SCHEMA.resolve()


def test_check_jsonschema_accepts_every_spec():
    code, errors = check_jsonschema(*SPECS)
    assert (code, errors) == (0, {})


def test_check_jsonschema_rejects_every_structurally_broken_spec():
    assert len(STRUCTURALLY_BROKEN) >= 15  # the rule selects the corpus, not an empty list
    code, errors = check_jsonschema(*STRUCTURALLY_BROKEN)
    assert code == 1
    missed = [p.name for p in STRUCTURALLY_BROKEN if str(p) not in errors]
    assert not missed, f"the schema accepts {missed}"


VALID = [
    # a variant repeats nothing its base says, deletes, and annotates deviations
    """\
    extends: irc:irv2
    blocks:
      resnet_b:
        seq: $delete
        residual:
          scale: {value: 0.2, paper: 0.1, why: steadier}
    """,
    # mapping forms of ops, uses with arguments, one-op branches
    """\
    name: tiny
    title: Tiny
    input: [32, 32, 3]
    classes: 10
    builder: {name: create_tiny}
    blocks:
      unit:
        params: [k]
        concat: [maxpool 3x3, {conv: {filters: k, kernel: [1, 7], strides: 1}}]
    network:
      - {conv: {filters: 16, kernel: 3x3, padding: valid}}
      - unit: {k: 8, repeat: 2}
      - relu
      - {value: dropout 0.5, paper: null, why: not in the paper}
    head: [gap, dense classes softmax]
    """,
]
INVALID = {
    "unknown_field.yaml": (
        "  - {conv: {filters: 16, kernel: 3x3, stride: 2}}",
        "'stride' was unexpected",
    ),
    "deviation_without_why.yaml": ("  - {value: conv 8 1x1, paper: conv 9 1x1}", "$.network[0]"),
    "bad_padding.yaml": ("  - {maxpool: {pool: 3x3, padding: sane}}", "'sane' is not one of"),
}


def test_valid_forms_pass(tmp_path):
    files = []
    for n, text in enumerate(VALID):
        files.append(tmp_path / f"spec{n}.yaml")
        files[-1].write_text(textwrap.dedent(text))
    code, errors = check_jsonschema(*files)
    assert (code, errors) == (0, {})


def test_invalid_forms_fail(tmp_path):
    base = "name: t\ntitle: T\ninput: [8, 8, 3]\nclasses: 2\nbuilder: {name: f}\nnetwork:\n"
    for name, (change, _) in INVALID.items():
        (tmp_path / name).write_text(base + change + "\n")
    code, errors = check_jsonschema(*(tmp_path / name for name in INVALID))
    assert code == 1
    for name, (_, error) in INVALID.items():
        assert error in errors[str(tmp_path / name)], errors
