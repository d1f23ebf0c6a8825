"""The result cache of `irc check` and `irc compile --check` (compiler/cache.py): a
hit prints what a full run prints without importing Pydantic, PyYAML or Jinja2,
and any change to what the result depends on is a miss."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import shutil

import pytest

from irc_cnn.compiler import cache
from irc_cnn.compiler.shipped import SHIPPED

from tests.conftest import ROOT

BASE = """\
name: base_net
title: Base
input: [32, 32, 3]
classes: 10
builder: {name: create_base}
blocks:
  unit:
    ref: a unit
    residual:
      branches: [conv 8 1x1, [conv 8 1x1, conv 8 3x3]]
      project: conv 16 1x1 linear
      scale: 0.1
network:
  - conv 16 3x3
  - unit x2
head: [gap, dense classes softmax]
"""

VARIANT = """\
extends: base.yaml
name: variant_net
network:
  - conv 16 3x3
  - unit x4
"""

# Runs the CLI in a fresh interpreter, then reports on stderr's last line which
# of the heavy libraries it imported: none on a hit, Pydantic and PyYAML on a miss.
_RUN = """
import sys
from irc_cnn.compiler.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
print(sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'yaml', 'jinja2'}), file=sys.stderr)
sys.exit(code)
"""
MISS, HIT = "['pydantic', 'yaml']", "[]"
COMPILE_MISS = "['jinja2', 'pydantic', 'yaml']"


class Run:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.code, self.stdout = proc.returncode, proc.stdout
        *self.stderr, self.imports = proc.stderr.splitlines()


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "variant.yaml").write_text(VARIANT)
    return tmp_path


def irc(folder: Path, *args: str, command: str = "check") -> Run:
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, command, *args],
        check=False,
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, "IRC_CACHE_DIR": str(folder / "cache")},
        timeout=120,
    )
    return Run(proc)


def entries(folder: Path, command: str = "check") -> list[Path]:
    return sorted((folder / "cache" / command).glob("*.json"))


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_a_hit_prints_byte_for_byte_what_a_full_check_prints(folder, fmt):
    miss = irc(folder, "variant.yaml", "base.yaml", "--format", fmt)
    hit = irc(folder, "variant.yaml", "base.yaml", "--format", fmt)
    uncached = irc(folder, "variant.yaml", "base.yaml", "--format", fmt, "--no-cache")
    assert (miss.code, miss.imports) == (0, MISS)
    assert (hit.code, hit.imports) == (0, HIT)
    assert hit.stdout == miss.stdout == uncached.stdout
    assert hit.stderr == miss.stderr == []
    if fmt == "json":
        assert [r["params"] for r in json.loads(hit.stdout)] == [5_658, 3_162]
    elif fmt == "text":
        assert (
            "variant.yaml: ok: variant_net, input 32x32x3, output 10, 5,658 parameters"
            in hit.stdout
        )


def test_an_entry_records_every_file_of_the_extends_chain_with_its_hash(folder):
    (folder / "shipped.yaml").write_text("extends: irc:variants/irv2_small\nname: mine\n")
    assert irc(folder, "variant.yaml", "shipped.yaml").code == 0
    (entry,) = entries(folder)
    files = dict(json.loads(entry.read_text())["files"])
    expected = [
        folder / "variant.yaml",
        folder / "base.yaml",
        folder / "shipped.yaml",
        SHIPPED / "variants" / "irv2_small.yaml",
        SHIPPED / "irv2.yaml",
    ]
    assert files == {str(p.resolve()): hashlib.sha256(p.read_bytes()).hexdigest() for p in expected}


def test_editing_the_spec_is_a_miss(folder):
    first = irc(folder, "variant.yaml")
    (folder / "variant.yaml").write_text(VARIANT.replace("unit x4", "unit x3"))
    second = irc(folder, "variant.yaml")
    assert second.imports == MISS
    assert "5,658 parameters" in first.stdout
    assert "4,410 parameters" in second.stdout


def test_editing_a_base_is_a_miss_and_the_variant_reports_the_base_error(folder):
    assert irc(folder, "variant.yaml").imports == MISS
    assert irc(folder, "variant.yaml").imports == HIT
    (folder / "base.yaml").write_text(BASE.replace("conv 16 1x1 linear", "conv 15 1x1 linear"))
    broken = irc(folder, "variant.yaml")
    assert (broken.code, broken.imports) == (1, MISS)
    assert broken.stdout.startswith(
        "base.yaml:11:21: error[IRC301]: residual sum adds a 15-channel"
    )
    assert "reached through extends: variant.yaml -> base.yaml" in broken.stdout


def test_errors_are_never_cached(folder):
    (folder / "bad.yaml").write_text(BASE.replace("unit x2", "unit x2\n  - nosuchblock"))
    runs = [irc(folder, "bad.yaml") for _ in range(2)]
    assert [(r.code, r.imports) for r in runs] == [(1, MISS), (1, MISS)]
    assert runs[0].stdout == runs[1].stdout != ""
    assert entries(folder) == []


@pytest.mark.parametrize(
    "options",
    [["--set", "network.1=unit x3"], ["--paper"], ["--format", "json"]],
    ids=["set", "paper", "format"],
)
def test_each_option_is_part_of_the_key(folder, options):
    plain = irc(folder, "variant.yaml")
    other = irc(folder, "variant.yaml", *options)
    assert (other.code, other.imports) == (0, MISS)
    assert len(entries(folder)) == 2
    if options[0] == "--set":
        assert "4,410 parameters" in other.stdout and "5,658" in plain.stdout
    assert irc(folder, "variant.yaml", *options).stdout == other.stdout


def test_an_option_added_to_the_command_later_is_part_of_the_key_without_a_change():
    args = argparse.Namespace(paths=["a.yaml"], format="text", paper=False, set=[], no_cache=False)
    files = [Path("a.yaml")]
    scaled = argparse.Namespace(**vars(args), scale=0.5)
    assert cache.key(args, files) != cache.key(scaled, files)
    assert cache.key(args, files) == cache.key(
        argparse.Namespace(**{**vars(args), "no_cache": True}), files
    )


@pytest.mark.parametrize("garbage", [b"", b"{not json", b'{"key": 1}', b"\xff\xfe"])
def test_a_corrupt_entry_is_a_miss_and_is_replaced(folder, garbage):
    first = irc(folder, "variant.yaml")
    (entry,) = entries(folder)
    entry.write_bytes(garbage)
    again = irc(folder, "variant.yaml")
    assert (again.code, again.imports, again.stdout) == (0, MISS, first.stdout)
    assert irc(folder, "variant.yaml").imports == HIT


def test_no_cache_neither_reads_nor_writes(folder):
    assert irc(folder, "variant.yaml", "--no-cache").imports == MISS
    assert entries(folder) == []
    irc(folder, "variant.yaml")
    assert irc(folder, "variant.yaml", "--no-cache").imports == MISS


def test_a_cache_folder_that_cannot_be_written_is_no_error(folder):
    (folder / "cache").write_text("a file where the cache folder would be")
    run = irc(folder, "variant.yaml")
    assert (run.code, run.stderr) == (0, [])
    assert "variant.yaml: ok: variant_net" in run.stdout


def test_the_key_holds_the_versions_import_finds():
    import pydantic
    import yaml

    found = cache.versions()
    assert found["pydantic"] == pydantic.VERSION
    assert found["pyyaml"] == yaml.__version__
    project = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{found["irc_cnn"]}"' in project


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("IRC_CACHE_DIR", str(tmp_path / "a"))
    assert cache.folder() == tmp_path / "a"
    monkeypatch.setenv("IRC_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.folder() == tmp_path / "xdg" / "irc"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.folder() == tmp_path / "home" / ".cache" / "irc"


def test_the_test_session_never_writes_the_users_cache(tmp_path_factory):
    # tests/conftest.py points every check of the session at pytest's own folder.
    assert Path(os.environ["IRC_CACHE_DIR"]).parent == tmp_path_factory.getbasetemp()


# -- irc compile --check ---------------------------------------------------------------


def compile_check(folder: Path, *args: str) -> Run:
    return irc(
        folder, "variant.yaml", "base.yaml", "--out", "out", "--check", *args, command="compile"
    )


@pytest.fixture()
def compiled(folder: Path) -> Path:
    written = irc(folder, "variant.yaml", "base.yaml", "--out", "out", command="compile")
    assert written.code == 0, written.stderr
    return folder


def test_a_compile_check_hit_prints_what_a_full_one_prints(compiled):
    miss, hit, uncached = (
        compile_check(compiled),
        compile_check(compiled),
        compile_check(compiled, "--no-cache"),
    )
    assert (miss.code, miss.imports) == (0, COMPILE_MISS)
    assert (hit.code, hit.imports) == (0, HIT)
    assert (uncached.code, uncached.imports) == (0, COMPILE_MISS)
    assert hit.stdout == miss.stdout == uncached.stdout == "3 file(s) in out are up to date\n"
    (entry,) = entries(compiled, "compile")
    files = dict(json.loads(entry.read_text())["files"])
    generated = [
        compiled / "out" / name for name in ("__init__.py", "base_net.py", "variant_net.py")
    ]
    for path in [compiled / "variant.yaml", compiled / "base.yaml", *generated]:
        assert files[str(path.resolve())] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_editing_a_generated_file_is_a_miss_that_finds_it_stale(compiled):
    assert compile_check(compiled).code == 0
    module = compiled / "out" / "variant_net.py"
    module.write_text(module.read_text().replace("conv2d(", "conv2d (", 1))
    stale = compile_check(compiled)
    assert (stale.code, stale.imports) == (1, COMPILE_MISS)
    assert stale.stdout.startswith("out/variant_net.py: stale; run `irc compile variant.yaml")


def test_a_spec_change_is_a_miss(compiled):
    assert compile_check(compiled).code == 0
    (compiled / "variant.yaml").write_text(VARIANT.replace("unit x4", "unit x3"))
    changed = compile_check(compiled)
    assert (changed.code, changed.imports) == (1, COMPILE_MISS)
    assert "out/variant_net.py: stale" in changed.stdout


def test_the_code_fingerprint_covers_the_templates(tmp_path, monkeypatch):
    for top in cache.CODE:
        shutil.copytree(cache.PACKAGE / top, tmp_path / top)
    monkeypatch.setattr(cache, "PACKAGE", tmp_path)
    before = cache.code_fingerprint()
    template = tmp_path / "backends" / "templates" / "statements.jinja"
    template.write_text(template.read_text() + "\n")
    assert cache.code_fingerprint() != before


def test_a_compared_file_that_cannot_be_read_afterwards_is_not_cached(tmp_path, monkeypatch):
    """The run compared a file that is gone when the entry is made: no entry, no error."""
    monkeypatch.setenv("IRC_CACHE_DIR", str(tmp_path / "cache"))
    args = argparse.Namespace(paths=[], out="out", no_cache=False)
    gone = tmp_path / "out" / "gone.py"

    def run(_: argparse.Namespace):
        print("1 file(s) in out are up to date")
        return 0, [], [gone]

    assert cache.check(args, [], run, "compile") == 0
    assert not (tmp_path / "cache" / "compile").exists()


def test_a_deleted_current_folder_runs_without_the_cache(folder):
    """The key holds the current folder; where there is none, irc checks uncached."""
    gone = folder / "gone"
    gone.mkdir()
    script = (
        "import os, sys; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]); "
        "from irc_cnn.compiler.cli import main; sys.exit(main(['check', sys.argv[2]]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(gone), str(folder / "base.yaml")],
        capture_output=True,
        text=True,
        env={**os.environ, "IRC_CACHE_DIR": str(folder / "cache")},
        timeout=120,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert "base_net" in proc.stdout
    assert entries(folder) == []
