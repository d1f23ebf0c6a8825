"""The type checker over compiler/ and backends/: 0 errors.

basedpyright (pyright's engine, node inside its wheel: nothing downloaded, no node
needed on PATH) with pyproject.toml's [tool.pyright] settings, the ones pyright
and editors read. It resolves third-party imports in this interpreter's
environment, the one the suite runs in.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_compiler_and_backends_type_check_clean():
    proc = subprocess.run(
        [sys.executable, "-m", "basedpyright", "--outputjson", "--pythonpath", sys.executable],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.stdout.lstrip().startswith("{"), proc.stdout + proc.stderr  # not a crash
    report = json.loads(proc.stdout)
    errors = [d for d in report["generalDiagnostics"] if d["severity"] == "error"]
    lines = [
        f"{d['file']}:{d['range']['start']['line'] + 1}:{d['range']['start']['character'] + 1}:"
        f" {d['message']} ({d.get('rule', '')})"
        for d in errors
    ]
    assert not lines, f"{len(lines)} type error(s):\n" + "\n".join(lines)
    assert report["summary"]["filesAnalyzed"] >= 30  # compiler/ and backends/, not nothing
    assert proc.returncode == 0, proc.stderr
