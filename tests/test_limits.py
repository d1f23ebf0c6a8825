"""Resource limits: hostile specs fail fast, in bounded memory, with a diagnostic.

Each case runs `irc check` (and for some `irc compile`) in a fresh
interpreter, as a user would, and measures that one process: wall time
from spawn to exit (interpreter start-up included) and its peak resident
memory, read with os.wait4 by a small wrapper process (the CLI's own
rusage: neither the sum over every child the session had, nor the test
session's own peak, which Linux hands down through fork). Every case must
exit 1, print the expected diagnostic code and no traceback, and stay under
300 MB. Time is bounded only loosely here (at least 10x the slowest case's
figure in benchmarks/README.md, "Hostile inputs", measured by
benchmarks/hostile.py), so that a loaded machine cannot fail a unit test;
the tight figures live in the benchmark.

The child runs under an address-space limit (RLIMIT_AS, 2 GiB) so that a
regression cannot take the machine down with it; such a run fails instead.
Large files are generated in tmp_path, never in the repository.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from irc_cnn.compiler.pipeline import check_bytes
from tests.conftest import ROOT

# >= 10x the slowest hostile case as benchmarks/hostile.py measured it (alias bomb
# of mappings: about 1 s on an idle 2-core machine, 10 s at a load average of 17;
# benchmarks/README.md): a guard against a hang, not a speed target.
TIME_LIMIT_S = 120.0
MEMORY_LIMIT_MB = 300
GUARD_BYTES = 2 * 1024**3

HEAD = """\
name: tiny
title: Tiny
input: [32, 32, 3]
classes: 10
builder: {name: create_tiny}
"""


@dataclass
class Run:
    returncode: int | None  # None: killed at the timeout
    seconds: float
    peak_mb: float
    output: str

    def codes(self) -> list[str]:
        return re.findall(r"error\[(IRC\d{3})\]", self.output)


# A child's ru_maxrss starts from its parent's peak at fork (Linux carries the
# high-water mark across fork and exec), and this test session may hold
# TensorFlow. So a small wrapper interpreter spawns the CLI and reports the
# CLI's own rusage; the CLI's peak then includes at most the wrapper's ~10 MB.
_WRAPPER = r"""
import json, os, resource, subprocess, sys, time
limit, timeout, out_path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
with open(out_path, "wb") as out:
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "irc_cnn.compiler.cli", *sys.argv[4:]], stdout=out, stderr=subprocess.STDOUT
    )
    code = None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            code = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() - start > timeout:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.005)
    seconds = time.monotonic() - start
    proc.returncode = -9 if code is None else code
print(json.dumps({"code": code, "seconds": seconds, "maxrss": usage.ru_maxrss}))
"""


def measure(*args: str, cwd: Path, timeout: float = TIME_LIMIT_S + 10) -> Run:
    """Run the CLI once: its wall time from spawn to exit, and its peak RSS."""
    out_path = cwd / f".irc_measure_{os.getpid()}.out"
    wrapper = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(GUARD_BYTES), str(timeout), str(out_path), *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout + 30,
    )
    assert wrapper.returncode == 0, wrapper.stderr
    report = json.loads(wrapper.stdout)
    output = out_path.read_bytes().decode("utf-8", errors="replace")
    out_path.unlink()
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    peak = report["maxrss"] / (1024**2 if sys.platform == "darwin" else 1024)
    return Run(report["code"], report["seconds"], peak, output)


def assert_fails_cleanly(run: Run, code: str) -> None:
    assert run.returncode == 1, run
    assert "Traceback" not in run.output, run.output[-3000:]
    assert code in run.codes(), run.output[-3000:]
    assert run.seconds < TIME_LIMIT_S, f"took {run.seconds:.2f} s"
    assert run.peak_mb < MEMORY_LIMIT_MB, f"peak {run.peak_mb:.0f} MB"


# -- the hostile specs --------------------------------------------------------------------


def alias_bomb(levels: int = 9, width: int = 10) -> str:
    """A billion laughs: each level an alias list of the one before (width**levels strings)."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return HEAD + "\n".join(lines) + "\nnetwork: [gap]\n"


def blocks(*lines: str) -> str:
    return HEAD + "blocks:\n" + "".join(f"  {line}\n" for line in lines)


CASES: dict[str, tuple[str, str]] = {
    # name: (spec text, the diagnostic code it must get)
    "alias bomb 10^9": (alias_bomb(), "IRC106"),
    "alias bomb 10^30": (alias_bomb(levels=30), "IRC106"),
    "alias bomb of mappings": (
        HEAD
        + "a: &a {x: 1, y: 1, z: 1, w: 1}\n"
        + "".join(
            f"{c}: &{c} {{p: *{p}, q: *{p}, r: *{p}, s: *{p}, t: *{p}, u: *{p}, v: *{p}, w: *{p}}}\n"
            for p, c in zip("abcdefghij", "bcdefghijk")
        )
        + "network: [gap]\n",
        "IRC106",
    ),
    "repeat of a million": (
        blocks("r: {seq: [conv 16 3x3]}") + "network:\n  - r x1000000\n  - gap\n",
        "IRC207",
    ),
    "repeat of a million, mapping form": (
        blocks("r: {seq: [conv 16 3x3]}") + "network:\n  - {r: {repeat: 1000000}}\n  - gap\n",
        "IRC207",
    ),
    "a million ops through nested repeats": (
        blocks("a: {seq: [conv 8 1x1]}", "b: {seq: [a x1000]}")
        + "network:\n  - b x1000\n  - gap\n",
        "IRC404",
    ),
    "a billion ops through nested repeats": (
        blocks("a: {seq: [conv 8 1x1]}", "b: {seq: [a x1000]}", "c: {seq: [b x1000]}")
        + "network:\n  - c x1000\n  - gap\n",
        "IRC404",
    ),
    "nesting 10,000 deep (flow lists)": (
        HEAD + "network: " + "[" * 10_000 + "gap" + "]" * 10_000 + "\n",
        "IRC106",
    ),
    "nesting 10,000 deep (flow mappings)": (
        HEAD + "network: [gap]\nx: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n",
        "IRC106",
    ),
    "nesting 10,000 deep (block lists)": (
        HEAD + "network:\n  " + "- " * 10_000 + "gap\n",
        "IRC106",
    ),
    # int() refuses more than 4300 digits (a ValueError and a traceback until 9ee3ea5).
    "a 5000-digit integer in YAML": (
        HEAD.replace("classes: 10", "classes: " + "9" * 5000) + "network: [gap]\n",
        "IRC207",
    ),
    "a 5000-digit filter count": (HEAD + f"network:\n  - conv {'9' * 5000} 3x3\n", "IRC204"),
    "a 5000-digit kernel": (HEAD + f"network:\n  - conv 8 {'9' * 5000}x3\n", "IRC204"),
    "a 5000-digit repeat": (
        blocks("r: {seq: [conv 16 3x3]}") + f"network:\n  - r x{'9' * 5000}\n",
        "IRC204",
    ),
    # resolve walked block uses recursively: RecursionError until c02dfe5.
    "a chain of 1,000 blocks": (
        HEAD
        + "blocks:\n"
        + "".join(f"  b{i}: {{seq: [b{i + 1}]}}\n" for i in range(1000))
        + "  b1000: {seq: [conv 1 1x1]}\n"
        + "network: [b0, gap]\n",
        "IRC404",
    ),
    "nesting 100 deep through aliases": (
        HEAD
        + "".join(
            f"l{i}: &l{i} [gap]\n" if i == 0 else f"l{i}: &l{i} [*l{i - 1}]\n" for i in range(100)
        )
        + "network: [gap]\n",
        "IRC106",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_spec_fails_cleanly(name, tmp_path):
    text, code = CASES[name]
    spec = tmp_path / "hostile.yaml"
    spec.write_text(text, encoding="utf-8")
    assert_fails_cleanly(measure("check", str(spec), cwd=tmp_path), code)


@pytest.mark.parametrize("name", ["alias bomb 10^9", "a billion ops through nested repeats"])
def test_hostile_spec_fails_cleanly_in_compile(name, tmp_path):
    text, code = CASES[name]
    spec = tmp_path / "hostile.yaml"
    spec.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    run = measure("compile", str(spec), "--out", str(out), cwd=tmp_path)
    assert_fails_cleanly(run, code)
    assert list(out.iterdir()) == []


FIFTY_MB_LINES = {
    "long lines": b"#" * 999 + b"\n",
    "short lines": b"  - gap\n",
    "blank lines": b"\n",
}
# An oversized file is refused before it is parsed, and its diagnostic's excerpt
# must not read it whole either (it did, and split it into lines, until c02dfe5:
# 50 MB of short lines peaked at ~500 MB).


def _fifty_megabytes(path: Path, line: bytes = FIFTY_MB_LINES["long lines"]) -> None:
    """A spec-looking file of 50 MB: a valid head, then 50 MB of lines."""
    with open(path, "wb") as f:
        f.write(HEAD.encode() + b"network:\n")
        f.write(line * (50_000_000 // len(line)))


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param("long lines"),
        pytest.param("short lines"),
        pytest.param("blank lines"),
    ],
)
def test_fifty_megabyte_file_fails_cleanly(lines, tmp_path):
    spec = tmp_path / "big.yaml"
    _fifty_megabytes(spec, FIFTY_MB_LINES[lines])
    assert spec.stat().st_size >= 50_000_000
    assert_fails_cleanly(measure("check", str(spec), cwd=tmp_path), "IRC106")


def test_fifty_megabyte_file_in_process(tmp_path):
    """check_bytes (no file size to look at first) refuses it too, quickly."""
    spec = tmp_path / "big.yaml"
    _fifty_megabytes(spec)
    raw = spec.read_bytes()
    start = time.monotonic()
    result = check_bytes(raw, "big.yaml")
    assert time.monotonic() - start < TIME_LIMIT_S
    assert [d.code for d in result.diagnostics] == ["IRC106"]


def test_limits_hold_in_process_too():
    """The same cases through check_bytes: no exception, the same code. (A test
    session full of other objects collects garbage more slowly than the CLI; the
    bound is only a guard against a hang.)"""
    for name, (text, code) in CASES.items():
        start = time.monotonic()
        result = check_bytes(text.encode(), "hostile.yaml")
        assert time.monotonic() - start < TIME_LIMIT_S, name
        assert code in [d.code for d in result.diagnostics], (name, result.diagnostics)


# -- known bugs ------------------------------------------------------------------------------

# Specs that pass every limit (MAX_LAYERS = 200,000 ops; 2 MB) still cost
# several seconds and hundreds of MB to check (measured on 2 cores: 199 x 1000
# repeats, 7 s and 450 MB; 150,000 ops written out in 1.8 MB, 10 s and 620 MB).
# That is a trade-off, not an accident: issue 3 asks irc to compile
# 10,000-block specs (40,000 ops, about 2.6 s to check), so the op limit
# cannot be the 2 s / 300 MB budget that the hostile inputs above meet. What
# is promised for an admitted spec is a bound that grows with its size (the
# time bound >= 10x the figures benchmarks/hostile.py measures: 4-7 s idle, 44-73 s
# at a load average of 17 on 2 cores):
ADMITTED_SECONDS, ADMITTED_MB = 750.0, 1_000
WITHIN_LIMITS = {
    "199,000 ops through repeats": blocks("a: {seq: [conv 1 1x1]}", "b: {seq: [a x1000]}")
    + "network:\n  - b x199\n  - gap\n",
    "150,000 ops written out": HEAD + "network: [" + "conv 1 1x1, " * 150_000 + "gap]\n",
}


@pytest.mark.parametrize("name", sorted(WITHIN_LIMITS))
def test_largest_admitted_spec_stays_bounded(name, tmp_path):
    spec = tmp_path / "large.yaml"
    spec.write_text(WITHIN_LIMITS[name], encoding="utf-8")
    run = measure("check", str(spec), cwd=tmp_path, timeout=ADMITTED_SECONDS + 5)
    assert run.returncode in (0, 1), run
    assert run.seconds < ADMITTED_SECONDS and run.peak_mb < ADMITTED_MB, run
