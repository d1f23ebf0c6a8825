"""Every code block of docs/spec-language.md is checked: a spec the doc shows must pass
`irc check`, or fail with the code the doc says it does.

A block is a whole spec file unless an HTML comment on the line before it says
otherwise, as a YAML flow mapping after `irc:`:

    <!-- irc: {as: blocks, in: {input: [32, 32, 64], network: [se, gap]}, expect: IRC301} -->

- `as`: where the block's value goes in the spec checked: a dotted path of
  mappings (`network`, `blocks`, `blocks.resnet_b.seq.residual`, which in a
  variant edits the base's item); without it, the block is the spec's top level.
- `in`: the rest of that spec (default `name: doc_example`, `input: [32, 32, 3]`
  when it has no `extends`); the block's keys win.
- `expect`: the one code the check must fail with.
- `output of`: the block is not a spec but the first diagnostic line that
  `irc ARGS` prints.
"""

from __future__ import annotations

import re

import pytest
import yaml
from irc_cnn.compiler.pipeline import check_file

from tests.conftest import ROOT, run_irc

DOC = ROOT / "docs" / "spec-language.md"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_MARKER = re.compile(r"<!-- irc: (\{.*\}) -->\n\Z")


def _blocks() -> list[tuple[int, str, dict]]:
    """(line, text, marker) of every fenced block."""
    text = DOC.read_text(encoding="utf-8")
    found = []
    for m in _FENCE.finditer(text):
        before = text[: m.start()]
        marker = _MARKER.search(before)
        line = before.count("\n") + 1
        found.append((line, m.group(2), yaml.safe_load(marker.group(1)) if marker else {}))
    return found


BLOCKS = _blocks()


def _spec(text: str, marker: dict) -> str:
    """The spec file a block stands for (see the module docstring)."""
    if "as" not in marker and "in" not in marker:
        return text
    rest = dict(marker.get("in", {}))
    if "extends" not in rest:
        rest = {"name": "doc_example", "input": [32, 32, 3], **rest}
    value = yaml.safe_load(text)
    if "as" not in marker:
        return yaml.safe_dump({**rest, **value}, sort_keys=False)
    *outer, last = marker["as"].split(".")
    target = rest
    for key in outer:
        target = target.setdefault(key, {})
    target[last] = value
    return yaml.safe_dump(rest, sort_keys=False)


def test_the_doc_has_blocks_of_every_kind():
    markers = [marker for _, _, marker in BLOCKS]
    assert len(BLOCKS) >= 12
    assert any("as" in m for m in markers) and any("expect" in m for m in markers)
    assert any("output of" in m for m in markers)


@pytest.mark.parametrize("line,text,marker", BLOCKS, ids=[f"line{line}" for line, _, _ in BLOCKS])
def test_every_block_checks_as_the_doc_says(line, text, marker, tmp_path):
    if "output of" in marker:
        proc = run_irc(*marker["output of"].split())
        errors = [row for row in proc.stdout.splitlines() if ": error[" in row]
        assert errors[:1] == [text.strip()], proc.stdout
        return
    path = tmp_path / "doc_example.yaml"
    path.write_text(_spec(text, marker), encoding="utf-8")
    result = check_file(path)
    codes = [d.code for d in result.diagnostics if d.severity == "error"]
    if "expect" in marker:
        assert codes == [marker["expect"]], result.diagnostics
    else:
        assert result.ok, (path.read_text(), result.diagnostics)
