"""The CI workflow, the pre-commit hooks and the configurations docs/ci.md tells users to copy."""

from __future__ import annotations

import re
import shutil
import tomllib

import yaml

from irc_cnn.compiler.cli import build_parser
from tests.conftest import ROOT, run_irc

HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_the_workflow_runs_what_ci_runs():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    assert steps[1]["uses"].startswith("actions/setup-python@")
    assert steps[1]["with"]["python-version"] == "3.11"
    assert "graphviz" in steps[2]["run"]
    assert steps[-1]["run"] == "bash .ci/run"


def test_hooks_run_irc_commands_on_the_whole_specs_folder():
    commands = build_parser()._subparsers._group_actions[0].choices
    assert [h["id"] for h in HOOKS] == ["irc-check", "irc-compile-check"]
    for hook in HOOKS:
        program, command, *flags = hook["entry"].split()
        assert program == "irc" and command in commands
        assert all(flag in commands[command]._option_string_actions for flag in flags)
        assert hook["language"] == "python"
        # A base spec's change must re-check the unstaged variants that extend it.
        assert hook["pass_filenames"] is False and hook["args"] == ["specs"]
        assert re.search(hook["files"], "specs/variants/irv2_small.yaml")


def test_the_documented_configurations_use_these_hooks():
    text = (ROOT / "docs" / "ci.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    configs = [yaml.safe_load(b) for b in blocks]
    precommit = next(c for c in configs if isinstance(c, dict) and "repos" in c)
    (repo,) = precommit["repos"]
    assert repo["repo"] == "local"  # runnable as written: no placeholder repository
    requirement = f"irc-cnn=={VERSION}"
    for documented, hook in zip(repo["hooks"], HOOKS, strict=True):
        assert documented.pop("additional_dependencies") == [requirement]
        assert documented == {k: v for k, v in hook.items() if k != "description"}
    workflow = next(c for c in configs if isinstance(c, dict) and "jobs" in c)
    runs = [s.get("run", "") for s in workflow["jobs"]["specs"]["steps"]]
    assert f'python -m pip install "{requirement}"' in runs
    assert "irc check --format github specs" in runs
    assert "irc compile --check --format github specs" in runs
    assert "OWNER" not in text and "REV" not in text


def test_the_documented_torch_hook_arguments_check_the_torch_modules(tmp_path):
    """docs/ci.md: torch users give irc-compile-check `args: [specs, --backend, all]`."""
    text = (ROOT / "docs" / "ci.md").read_text()
    (args,) = {m for m in re.findall(r"`args: (\[specs, [^`]*\])`", text)}
    args = yaml.safe_load(args)
    assert args == ["specs", "--backend", "all"]
    _, command, *flags = HOOKS[1]["entry"].split()
    (tmp_path / "specs").mkdir()
    shutil.copy(ROOT / "tests" / "golden" / "tiny.yaml", tmp_path / "specs" / "tiny.yaml")
    assert run_irc("compile", "specs", cwd=tmp_path).returncode == 0  # Keras modules only
    assert run_irc(command, *flags, *HOOKS[1]["args"], cwd=tmp_path).returncode == 0
    proc = run_irc(command, *flags, *args, cwd=tmp_path)
    assert proc.returncode == 1 and "generated/torch/tiny.py: missing" in proc.stdout
    assert run_irc("compile", *args, cwd=tmp_path).returncode == 0
    assert run_irc(command, *flags, *args, cwd=tmp_path).returncode == 0


def test_the_documented_outputs_are_what_irc_prints(tmp_path):
    text = (ROOT / "docs" / "ci.md").read_text()
    spec = next(b for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL) if "irc:irv2" in b)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "my_irv2.yaml").write_text(spec.split("\n", 1)[1])  # less its comment
    for command in ("irc check --format github specs", "irc check specs"):
        shown = re.search(rf"```\n\$ {re.escape(command)}\n(.*?)```", text, re.DOTALL).group(1)
        proc = run_irc(*command.split()[1:], cwd=tmp_path)
        assert proc.returncode == 1
        assert proc.stdout + proc.stderr == shown, command
