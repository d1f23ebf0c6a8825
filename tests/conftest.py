"""Shared fixtures: the repository's specs, checked once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.pipeline import Result, check_file

ROOT = Path(__file__).resolve().parent.parent
SPECS = {
    "inception_v4": ROOT / "specs" / "inception_v4.yaml",
    "inception_resnet_v1": ROOT / "specs" / "irv1.yaml",
    "inception_resnet_v2": ROOT / "specs" / "irv2.yaml",
}


@pytest.fixture(scope="session", autouse=True)
def _at_root() -> None:
    """Spec paths in diagnostics and generated headers are relative to the repository."""
    os.chdir(ROOT)


@pytest.fixture(scope="session")
def checked() -> dict[str, Result]:
    return {name: check_file(path.relative_to(ROOT)) for name, path in SPECS.items()}


def run_irc(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "compiler.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
