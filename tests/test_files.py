"""Files: `irc compile` never leaves a half-written output or a stray temp file.

- Atomic writes: a failure while the new files are staged (the second file
  cannot be encoded) or while they are moved into place (the second
  `os.replace` fails) must leave every file under the output folder as it
  was, and no temp file behind.
- A bad output folder (missing, a file, under a file, read-only, a device)
  is a usage error: exit 2, one line naming the folder, no traceback.
- Eight concurrent `irc compile` runs of one spec into one folder leave
  exactly the files a single run writes, byte for byte, and no temp files.
- Written files get the permissions any new file gets (the umask), like
  the files they replace.

Read-only folders and root: CI runs as root, which writes into a mode-0555
folder regardless (CAP_DAC_OVERRIDE). The read-only test therefore runs the
CLI in a child that first drops CAP_DAC_OVERRIDE (and CAP_DAC_READ_SEARCH)
from its capability bounding set with prctl(PR_CAPBSET_DROP): the execve'd
interpreter then has neither capability, and the folder's mode applies to
it as to any user. As a normal user the chmod alone does it. The test
checks that the child really cannot write there and skips otherwise.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from irc_cnn.backends import output
from irc_cnn.backends.keras import emit
from irc_cnn.compiler.pipeline import check_file
from tests.conftest import ROOT

TINY = ROOT / "tests" / "golden" / "tiny.yaml"


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under a folder: its bytes and mode (hidden files included)."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def rendered() -> dict[str, str]:
    return emit.render(check_file(TINY))


@pytest.fixture
def stale_output(tmp_path) -> Path:
    """An output folder holding older versions of every file a compile writes."""
    out = tmp_path / "generated"
    out.mkdir()
    for name in rendered():
        (out / name).write_text(f"# an older {name}\n", encoding="utf-8")
    return out


# -- atomic writes, in process -----------------------------------------------------------


def test_failure_while_staging_changes_nothing(stale_output):
    """The second file cannot be written (it cannot be encoded): nothing changes."""
    files = rendered()
    names = sorted(files)
    assert len(names) >= 2
    files[names[-1]] = files[names[-1]] + "\udc80"  # a lone surrogate: UTF-8 refuses it
    before = snapshot(stale_output)
    with pytest.raises(UnicodeError):
        output.write(files, stale_output)
    assert snapshot(stale_output) == before


def _failing_replace(monkeypatch, fail_on: int) -> list:
    calls: list = []
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        calls.append((src, dst))
        if len(calls) == fail_on:
            raise OSError(28, "No space left on device (simulated)", str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return calls


def test_failure_while_replacing_leaves_no_temp_file(stale_output, monkeypatch):
    calls = _failing_replace(monkeypatch, fail_on=2)
    with pytest.raises(OSError):
        output.write(rendered(), stale_output)
    assert len(calls) >= 2, "the simulated failure never happened"
    assert sorted(snapshot(stale_output)) == sorted(rendered())


def test_failure_while_replacing_changes_nothing(stale_output, monkeypatch):
    before = {k: v for k, v in snapshot(stale_output).items() if k in rendered()}
    calls = _failing_replace(monkeypatch, fail_on=2)
    with pytest.raises(OSError):
        output.write(rendered(), stale_output)
    assert len(calls) >= 2, "the simulated failure never happened"
    after = {k: v for k, v in snapshot(stale_output).items() if k in rendered()}
    assert after == before


def test_a_second_write_of_the_same_files_changes_nothing(tmp_path):
    out = tmp_path / "generated"
    out.mkdir()
    assert sorted(output.write(rendered(), out)) == sorted(rendered())
    before = snapshot(out)
    assert output.write(rendered(), out) == []
    assert snapshot(out) == before


# -- permissions -------------------------------------------------------------------------


def _umask_mode(folder: Path) -> int:
    """The mode a plain new file gets in this folder under the current umask."""
    probe = folder / ".mode_probe"
    probe.write_text("")
    mode = stat.S_IMODE(probe.stat().st_mode)
    probe.unlink()
    return mode


def test_written_files_get_the_umask_mode(tmp_path):
    out = tmp_path / "generated"
    out.mkdir()
    output.write(rendered(), out)
    expected = _umask_mode(out)
    modes = {name: oct(mode) for name, (_, mode) in snapshot(out).items()}
    assert modes == {name: oct(expected) for name in rendered()}


# -- bad output folders, through the command line -------------------------------------------


def run_irc(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "irc_cnn.compiler.cli", *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def assert_usage_error(proc: subprocess.CompletedProcess, folder: Path) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output, output
    assert str(folder) in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_missing_output_folder_is_created(tmp_path):
    out = tmp_path / "absent" / "generated"
    proc = run_irc("compile", str(TINY), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["__init__.py", "tiny.py"]


def test_output_folder_that_is_a_file(tmp_path):
    out = tmp_path / "generated"
    out.write_text("I am a file\n")
    assert_usage_error(run_irc("compile", str(TINY), "--out", str(out)), out)
    assert out.read_text() == "I am a file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generated"]


def test_output_folder_under_a_file(tmp_path):
    parent = tmp_path / "file"
    parent.write_text("x")
    out = parent / "generated"
    assert_usage_error(run_irc("compile", str(TINY), "--out", str(out)), out)


def test_output_folder_that_is_a_device():
    out = Path("/dev/null")
    if not out.exists():
        pytest.skip("no /dev/null")
    assert_usage_error(run_irc("compile", str(TINY), "--out", str(out)), out)


_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _drop_dac_capabilities() -> None:
    """In the child, before exec: no capability to bypass file permissions."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


@pytest.fixture
def read_only_folder(tmp_path):
    out = tmp_path / "generated"
    out.mkdir()
    (out / "tiny.py").write_text("# an older tiny.py\n")
    out.chmod(0o555)
    probe = subprocess.run(
        [sys.executable, "-c", f"open({str(out / 'probe')!r}, 'w')"],
        preexec_fn=_drop_dac_capabilities,
        capture_output=True,
        check=False,
    )
    if probe.returncode == 0:
        out.chmod(0o755)
        pytest.skip("cannot make a folder read-only for the child (no prctl, or a capability left)")
    yield out
    out.chmod(0o755)


def test_read_only_output_folder(read_only_folder):
    before = snapshot(read_only_folder)
    proc = run_irc(
        "compile", str(TINY), "--out", str(read_only_folder), preexec_fn=_drop_dac_capabilities
    )
    assert_usage_error(proc, read_only_folder)
    assert snapshot(read_only_folder) == before


# -- concurrency -------------------------------------------------------------------------------

RUNS = 8


def _spec_copy(tmp_path: Path) -> Path:
    spec = tmp_path / "spec" / "tiny.yaml"
    spec.parent.mkdir()
    shutil.copy(TINY, spec)
    return spec


def _reference(tmp_path: Path, spec: Path) -> dict:
    """What one run writes (into a sibling folder: headers name the spec relative to it)."""
    out = tmp_path / "single" / "generated"
    out.mkdir(parents=True)
    proc = run_irc("compile", str(spec), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return snapshot(out)


@pytest.mark.parametrize("start", ["empty", "stale"])
def test_concurrent_compiles_leave_one_correct_file(tmp_path, start):
    spec = _spec_copy(tmp_path)
    reference = _reference(tmp_path, spec)
    out = tmp_path / "race" / "generated"
    out.mkdir(parents=True)
    if start == "stale":
        for name in reference:
            (out / name).write_text(f"# an older {name}\n")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "irc_cnn.compiler.cli", "compile", str(spec), "--out", str(out)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(RUNS)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for code, stdout, stderr in results:
        assert code == 0, stdout + stderr
        assert "Traceback" not in stdout + stderr
    got = snapshot(out)
    assert sorted(got) == sorted(reference), "temp files left, or files missing"
    assert {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in reference.items()}


# -- two specs, one module ------------------------------------------------------------------


def test_two_specs_with_one_name_are_an_error(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    shutil.copy(TINY, specs / "a.yaml")
    (specs / "b.yaml").write_text(TINY.read_text().replace("conv 64 1x1", "conv 65 1x1"))
    out = tmp_path / "generated"
    out.mkdir()
    proc = run_irc("compile", str(specs), "--out", str(out))
    assert proc.returncode in (1, 2), proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert list(out.iterdir()) == []


def test_backend_all_changes_both_folders_or_neither(tmp_path):
    """`--backend all` writes the Keras and the torch modules as one: a torch module
    that cannot be replaced leaves the Keras module as it was too."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY.read_text())
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "irc_cnn.compiler.cli",
        "compile",
        str(spec),
        "--out",
        str(out),
    ]
    assert subprocess.run([*command, "--backend", "all"], capture_output=True).returncode == 0
    keras_before = (out / "tiny.py").read_text()
    (out / "torch" / "tiny.py").unlink()
    (out / "torch" / "tiny.py").mkdir()  # a folder where the torch module goes: replace fails
    spec.write_text(TINY.read_text().replace("title:", "title: Changed", 1))
    failed = subprocess.run([*command, "--backend", "all"], capture_output=True, text=True)
    assert failed.returncode == 2, failed.stderr
    assert "cannot write to" in failed.stderr
    assert (out / "tiny.py").read_text() == keras_before
    assert sorted(p.name for p in out.iterdir()) == ["__init__.py", "tiny.py", "torch"]
