"""The pre-commit hooks (.pre-commit-hooks.yaml), run by the real pre-commit in a user's repository.

pre-commit installs irc from a git repository at a commit, as a user's
`repo:` + `rev:` would: here a temporary repository holding this working
tree, so the hooks tested are the ones in this tree. The hook's environment is
built once per session (pip installs irc and its dependencies from PyPI) under
a temporary PRE_COMMIT_HOME.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT, copy_worktree

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("precommit")]  # one hook environment

GIT_ENV = {
    "GIT_AUTHOR_NAME": "irc test",
    "GIT_AUTHOR_EMAIL": "irc@example.invalid",
    "GIT_COMMITTER_NAME": "irc test",
    "GIT_COMMITTER_EMAIL": "irc@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}

TINY = """\
name: tiny
title: Tiny
input: [32, 32, 3]
classes: 10
builder: {name: create_tiny}
network:
  - conv 16 3x3
  - conv 16 3x3
head: [gap, dense classes softmax]
"""

TINY_SMALL = """\
extends: tiny.yaml
name: tiny_small
title: Tiny at 8x8
builder: {name: create_tiny_small}
input: [8, 8, 3]
"""


def run(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def git(cwd: Path, env: dict, *args: str) -> str:
    proc = run(["git", *args], cwd, env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("pre-commit-home")
    return {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(home)}


@pytest.fixture(scope="module")
def irc_repo(tmp_path_factory, env) -> tuple[Path, str]:
    """This working tree (tracked and new files, not ignored ones) committed in a fresh repository."""
    repo = copy_worktree(tmp_path_factory.mktemp("irc-repo"))
    git(repo, env, "init", "-q")
    git(repo, env, "add", "-A")
    git(repo, env, "commit", "-q", "-m", "irc at this working tree")
    return repo, git(repo, env, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def user_repo(tmp_path_factory, env, irc_repo) -> Path:
    """A user's repository: IR-v2, a tiny spec and a variant of it, their generated modules."""
    repo = tmp_path_factory.mktemp("user-repo")
    specs = repo / "specs"
    specs.mkdir()
    shutil.copy(ROOT / "specs" / "irv2.yaml", specs / "irv2.yaml")
    (specs / "tiny.yaml").write_text(TINY)
    (specs / "tiny_small.yaml").write_text(TINY_SMALL)
    path, rev = irc_repo
    (repo / ".pre-commit-config.yaml").write_text(
        textwrap.dedent(
            f"""\
            repos:
              - repo: {path}
                rev: {rev}
                hooks:
                  - id: irc-check
                  - id: irc-compile-check
            """
        )
    )
    (repo / "generated").mkdir()
    compiled = irc(repo, "compile", "specs")
    assert compiled.returncode == 0, compiled.stderr
    git(repo, env, "init", "-q")
    git(repo, env, "add", "-A")
    git(repo, env, "commit", "-q", "-m", "specs and their generated modules")
    installed = run([sys.executable, "-m", "pre_commit", "install"], repo, env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return repo


def irc(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "irc_cnn.compiler.cli", *args], cwd, os.environ.copy())


def commit(repo: Path, env: dict, message: str) -> subprocess.CompletedProcess:
    """`git commit` of what is staged; the installed hook runs pre-commit."""
    return run(["git", "commit", "-m", message], repo, env)


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_1154_projection_is_refused_with_its_location(user_repo, env, irc_repo):
    spec = user_repo / "specs" / "irv2.yaml"
    original = spec.read_text()
    spec.write_text(original.replace("value: conv 1152 1x1 linear", "value: conv 1154 1x1 linear"))
    line = line_of(spec, "value: conv 1154 1x1 linear")
    column = spec.read_text().splitlines()[line - 1].index("1154") + 1
    git(user_repo, env, "add", "specs/irv2.yaml")
    head = git(user_repo, env, "rev-parse", "HEAD")
    try:
        refused = commit(user_repo, env, "B projection as printed")
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0
        assert f"specs/irv2.yaml:{line}:{column}: error[IRC301]" in output
        assert "1154-channel projection to a 1152-channel input" in output
        assert re.search(r"irc check\.+Failed", output)
        assert git(user_repo, env, "rev-parse", "HEAD") == head
        # try-repo runs the repository's hooks on the staged files the same way.
        path, rev = irc_repo
        tried = run(
            [sys.executable, "-m", "pre_commit", "try-repo", str(path), "--ref", rev],
            user_repo,
            env,
        )
        assert tried.returncode == 1
        assert f"specs/irv2.yaml:{line}:{column}: error[IRC301]" in tried.stdout
    finally:
        spec.write_text(original)
        git(user_repo, env, "add", "specs/irv2.yaml")


def test_a_clean_change_commits_and_a_stale_module_does_not(user_repo, env):
    spec = user_repo / "specs" / "tiny.yaml"
    spec.write_text(TINY.replace("  - conv 16 3x3\nhead", "  - conv 32 3x3\nhead"))
    git(user_repo, env, "add", "specs/tiny.yaml")
    stale = commit(user_repo, env, "wider without regenerating")
    assert stale.returncode != 0
    assert "generated/tiny.py: stale" in stale.stdout + stale.stderr
    assert irc(user_repo, "compile", "specs").returncode == 0
    git(user_repo, env, "add", "-A")
    clean = commit(user_repo, env, "wider")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert re.search(r"irc check\.+Passed", clean.stdout + clean.stderr)
    assert re.search(r"irc compile --check\.+Passed", clean.stdout + clean.stderr)
    assert git(user_repo, env, "log", "-1", "--format=%s") == "wider"


def test_a_base_change_that_breaks_a_variant_is_refused(user_repo, env):
    # Fine at 32x32 (24x24 out); the 8x8 variant, not staged, cannot take a 9x9 window.
    base = user_repo / "specs" / "tiny.yaml"
    base.write_text(base.read_text().replace("  - conv 16 3x3\n", "  - conv 16 9x9 valid\n", 1))
    assert irc(user_repo, "check", "specs/tiny.yaml").returncode == 0
    git(user_repo, env, "add", "specs/tiny.yaml")
    refused = commit(user_repo, env, "bigger stem")
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    line = line_of(base, "conv 16 9x9 valid")
    assert f"specs/tiny.yaml:{line}:13: error[IRC304]" in output
    assert "specs/tiny_small.yaml -> specs/tiny.yaml" in output
