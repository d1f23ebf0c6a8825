"""`pip install .` into a fresh virtual environment, then irc used from outside the repository.

The environment gets irc itself from a real, non-editable `pip install` of
this working tree; its dependencies (PyYAML, Pydantic, Jinja2, graphviz) come
from the test run's own site-packages through a .pth file, so the test takes
seconds rather than a download.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from irc_cnn.compiler.pipeline import check_file
from tests.conftest import ROOT, copy_worktree

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("install")]  # one venv

MINE = """\
# My Inception-ResNet-v2: Figure 15's 5/10/5 blocks, 10 classes, a lighter B block.
extends: irc:irv2
name: my_irv2
title: My Inception-ResNet-v2
builder: {name: create_my_irv2}
classes: 10
network:
  - stem
  - resnet_a x5
  - reduction_a: {k: 256, l: 256, m: 384, n: 384}
  - resnet_b x10
  - aux: aux_head
  - reduction_b
  - resnet_c x5
"""


def run(args: list, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv holding irc from `pip install .` of a copy of this working tree."""
    root = tmp_path_factory.mktemp("install")
    source = copy_worktree(root / "irc")
    env = root / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", env], root)
    assert made.returncode == 0, made.stderr
    site = site_packages(env)
    # The running interpreter's site-packages (pip, setuptools, the dependencies)
    # go after the venv's own; their .pth files (an editable irc) are not read.
    ours = [p for p in sys.path if p.endswith("site-packages")]
    (site / "test-dependencies.pth").write_text("\n".join(ours) + "\n")
    installed = run(
        [env / "bin" / "python", "-m", "pip", "install", "--no-deps", "--no-build-isolation", "."],
        source,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return env


def site_packages(env: Path) -> Path:
    return Path(sysconfig.get_path("purelib", vars={"base": str(env), "platbase": str(env)}))


def test_the_install_is_one_namespace_with_specs_and_schema(venv):
    site = site_packages(venv)
    assert sorted(p.name for p in site.iterdir() if p.name != "__pycache__") == [
        "irc_cnn",
        "irc_cnn-0.1.0.dist-info",
        "test-dependencies.pth",
    ]
    package = site / "irc_cnn"
    assert sorted(p.name for p in package.iterdir() if p.name != "__pycache__") == [
        "__init__.py",
        "backends",
        "compiler",
        "docs",
        "specs",
    ]

    def specs(folder: Path) -> list[str]:
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.yaml"))

    assert specs(package / "specs") == specs(ROOT / "specs")
    assert "variants/irv2_small.yaml" in specs(package / "specs")
    assert (package / "backends" / "keras" / "templates" / "module.py.jinja").is_file()
    # Each shipped spec's modeline names the shipped schema, as in the repository.
    schema = package / "docs" / "irc-spec.schema.json"
    assert schema.read_text() == (ROOT / "docs" / "irc-spec.schema.json").read_text()
    first = (package / "specs" / "irv2.yaml").read_text().splitlines()[0]
    assert (package / "specs" / first.split("$schema=")[1]).resolve() == schema.resolve()
    where = run(
        [venv / "bin" / "python", "-c", "import irc_cnn.compiler as c; print(c.__file__)"], site
    )
    assert Path(where.stdout.strip()).is_relative_to(site)


def test_check_and_compile_a_users_variant_outside_the_repository(venv, tmp_path):
    work = tmp_path / "my-project"
    work.mkdir()
    (work / "mine.yaml").write_text(MINE)
    # The same network reached another way: the repository's spec and --set.
    sets = ["classes=10", *(f"network.resnet_{b}.repeat={n}" for b, n in zip("abc", (5, 10, 5)))]
    params = check_file(ROOT / "specs" / "irv2.yaml", sets=sets).graph.params
    assert params == 33_018_948

    checked = run([venv / "bin" / "irc", "check", "mine.yaml"], work)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith(
        f"mine.yaml: ok: my_irv2, input 299x299x3, outputs 10, 10, {params:,} parameters"
    )

    (work / "models").mkdir()
    compiled = run([venv / "bin" / "irc", "compile", "mine.yaml", "--out", "models"], work)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    module = (work / "models" / "my_irv2.py").read_text()
    assert "def create_my_irv2(" in module
    tree = ast.parse(module)
    imported = {
        alias.name.split(".")[0]
        for node in tree.body  # at module level: the framework only
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])
    }
    assert imported == {"__future__", "keras"}
    # irc_cnn only inside weights_file, for a published name (docs/weights.md)
    lazy = [
        n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n not in tree.body
    ]
    assert lazy == ["irc_cnn.backends.published"]
    assert sorted(p.name for p in (work / "models").iterdir()) == ["__init__.py", "my_irv2.py"]


def test_an_error_in_a_users_override_of_a_shipped_spec_is_located(venv, tmp_path):
    (tmp_path / "bad.yaml").write_text(
        textwrap.dedent(
            """\
            extends: irc:irv2
            blocks:
              resnet_b:
                seq:
                  - residual:
                      branches: [conv 192 1x1, [conv 128 1x1, conv 160 1x7, conv 192 7x1]]
                      project: conv 1154 1x1 linear
                      scale: 0.1
            """
        )
    )
    checked = run([venv / "bin" / "irc", "check", "bad.yaml"], tmp_path)
    assert checked.returncode == 1
    assert "bad.yaml:7:25: error[IRC301]" in checked.stdout


def test_the_python_api_from_outside_the_repository(venv, tmp_path):
    (tmp_path / "mine.yaml").write_text(MINE)
    code = (
        "import sys, irc_cnn\n"
        "assert not {'yaml', 'pydantic'} & set(sys.modules), sorted(sys.modules)\n"
        "print(len(irc_cnn.specs()), irc_cnn.specs()[:3])\n"
        "print(irc_cnn.load('mine.yaml').params, irc_cnn.load('irc:irv2').params)\n"
        "print(irc_cnn.__file__)\n"
    )
    proc = run([venv / "bin" / "python", "-c", code], tmp_path)
    assert proc.returncode == 0, proc.stderr
    count, params, where = proc.stdout.splitlines()
    shipped = sorted((ROOT / "specs").rglob("*.yaml"))
    assert count == f"{len(shipped)} ['irc:inception_v4', 'irc:irv1', 'irc:irv2']"
    assert params == "33018948 58841682"
    assert Path(where) == site_packages(venv) / "irc_cnn" / "__init__.py"
